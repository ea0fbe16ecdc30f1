//! GitHub App installations connected to a house. Rows are written only after the connect flow
//! proved that an owner's GitHub user can reach the installation (arbe-env does the proving).

use arbe_core::{GitHubConnection, HouseId, UserId};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Result, Store, StoreError, on};

#[derive(sqlx::FromRow)]
struct ConnectionRow {
    house_id: Uuid,
    installation_id: i64,
    account_login: String,
    github_login: String,
    connected_by: Option<Uuid>,
    connected_at: DateTime<Utc>,
}

impl From<ConnectionRow> for GitHubConnection {
    fn from(row: ConnectionRow) -> Self {
        GitHubConnection {
            house_id: HouseId::from_uuid(row.house_id),
            installation_id: row.installation_id,
            account_login: row.account_login,
            github_login: row.github_login,
            connected_by: row.connected_by.map(UserId::from_uuid),
            connected_at: row.connected_at,
        }
    }
}

macro_rules! connection_columns {
    () => {
        "house_id, installation_id, account_login, github_login, connected_by, connected_at"
    };
}

impl Store {
    /// Records a verified connection; connecting the same installation again refreshes who
    /// proved it and when.
    pub async fn connect_github_installation(&self, connection: &GitHubConnection) -> Result<GitHubConnection> {
        on!(&self.write, |pool| {
            sqlx::query(concat!(
                "INSERT INTO github_connections (",
                connection_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (house_id, installation_id) DO UPDATE SET account_login = excluded.account_login, \
                 github_login = excluded.github_login, connected_by = excluded.connected_by, \
                 connected_at = excluded.connected_at"
            ))
            .bind(connection.house_id.as_uuid())
            .bind(connection.installation_id)
            .bind(&connection.account_login)
            .bind(&connection.github_login)
            .bind(connection.connected_by.map(|u| u.as_uuid()))
            .bind(connection.connected_at)
            .execute(pool)
            .await
            .map(|res| res.rows_affected())
        })
        .map_err(StoreError::unique("github installation", "already connected"))?;
        self.github_connection(connection.house_id, connection.installation_id).await
    }

    /// The house's connection to `installation`; `NotFound` when the house has not connected it.
    pub async fn github_connection(&self, house: HouseId, installation: i64) -> Result<GitHubConnection> {
        let row: Option<ConnectionRow> = on!(&self.read, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                connection_columns!(),
                " FROM github_connections WHERE house_id = $1 AND installation_id = $2"
            ))
            .bind(house.as_uuid())
            .bind(installation)
            .fetch_optional(pool)
            .await
        })?;
        row.map(Into::into).ok_or(StoreError::NotFound { what: "github installation" })
    }

    /// The installations the house connected, by id.
    pub async fn list_github_connections(&self, house: HouseId) -> Result<Vec<GitHubConnection>> {
        let rows: Vec<ConnectionRow> = on!(&self.read, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                connection_columns!(),
                " FROM github_connections WHERE house_id = $1 ORDER BY installation_id"
            ))
            .bind(house.as_uuid())
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Removes the house's connection to `installation`; `NotFound` when there is none.
    /// Environments that name it keep the id but can no longer mint tokens from it.
    pub async fn disconnect_github_installation(&self, house: HouseId, installation: i64) -> Result<()> {
        let n = on!(&self.write, |pool| {
            sqlx::query("DELETE FROM github_connections WHERE house_id = $1 AND installation_id = $2")
                .bind(house.as_uuid())
                .bind(installation)
                .execute(pool)
                .await
                .map(|res| res.rows_affected())
        })?;
        if n == 0 {
            return Err(StoreError::NotFound { what: "github installation" });
        }
        Ok(())
    }
}
