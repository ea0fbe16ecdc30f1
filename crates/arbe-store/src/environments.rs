//! Environments (seed 001): names unique per house without regard to case among live rows,
//! addressable by name or id, soft-deleted.

use arbe_core::{
    Environment, EnvironmentId, EnvironmentName, EnvironmentRef, HouseId, MemberId, RepoRef, RuntimeName, SandboxId,
    SecretBinding,
};
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use crate::{Result, Store, StoreError, column, now, on};

/// An environment to create.
#[derive(Clone, Debug)]
pub struct NewEnvironment {
    /// The house.
    pub house_id: HouseId,
    /// Its author.
    pub author_id: MemberId,
    /// Its name.
    pub name: EnvironmentName,
    /// Its runtime.
    pub runtime: RuntimeName,
    /// Its sandbox (already recorded in the same house).
    pub sandbox_id: SandboxId,
    /// The default repository.
    pub default_repo: Option<RepoRef>,
    /// The repo policy.
    pub allowed_repos: Vec<RepoRef>,
    /// The GitHub App installation.
    pub github_installation_id: Option<i64>,
    /// The secrets it needs.
    pub secret_bindings: Vec<SecretBinding>,
}

#[derive(sqlx::FromRow)]
struct EnvironmentRow {
    id: Uuid,
    house_id: Uuid,
    author_id: Uuid,
    name: String,
    runtime: String,
    sandbox_id: Uuid,
    default_repo: Option<String>,
    allowed_repos: Json<Vec<RepoRef>>,
    github_installation_id: Option<i64>,
    secret_bindings: Json<Vec<SecretBinding>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

impl TryFrom<EnvironmentRow> for Environment {
    type Error = StoreError;
    fn try_from(row: EnvironmentRow) -> Result<Self> {
        Ok(Environment {
            id: EnvironmentId::from_uuid(row.id),
            house_id: HouseId::from_uuid(row.house_id),
            author_id: MemberId::from_uuid(row.author_id),
            name: column("environments", EnvironmentName::parse(&row.name))?,
            runtime: column("environments", RuntimeName::parse(&row.runtime))?,
            sandbox_id: SandboxId::from_uuid(row.sandbox_id),
            default_repo: row
                .default_repo
                .as_deref()
                .map(RepoRef::parse)
                .transpose()
                .map_err(|err| StoreError::Corrupt { table: "environments", reason: err.to_string() })?,
            allowed_repos: row.allowed_repos.0,
            github_installation_id: row.github_installation_id,
            secret_bindings: row.secret_bindings.0,
            created_at: row.created_at,
            updated_at: row.updated_at,
            deleted_at: row.deleted_at,
        })
    }
}

macro_rules! environment_columns {
    () => {
        "id, house_id, author_id, name, runtime, sandbox_id, default_repo, allowed_repos, \
         github_installation_id, secret_bindings, created_at, updated_at, deleted_at"
    };
}

const NAME_TAKEN: &str = "an environment with this name (compared without case) already exists in the house";

impl Store {
    /// Creates an environment. Its sandbox must belong to the same house.
    pub async fn create_environment(&self, new: NewEnvironment) -> Result<Environment> {
        // The sandbox must be this house's: an id from another house is simply not found.
        self.sandbox(new.house_id, new.sandbox_id).await?;
        let at = now();
        let env = Environment {
            id: EnvironmentId::new(),
            house_id: new.house_id,
            author_id: new.author_id,
            name: new.name,
            runtime: new.runtime,
            sandbox_id: new.sandbox_id,
            default_repo: new.default_repo,
            allowed_repos: new.allowed_repos,
            github_installation_id: new.github_installation_id,
            secret_bindings: new.secret_bindings,
            created_at: at,
            updated_at: at,
            deleted_at: None,
        };
        on!(&self.write, |pool| {
            sqlx::query(concat!(
                "INSERT INTO environments (",
                environment_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL)"
            ))
            .bind(env.id.as_uuid())
            .bind(env.house_id.as_uuid())
            .bind(env.author_id.as_uuid())
            .bind(env.name.as_str())
            .bind(env.runtime.as_str())
            .bind(env.sandbox_id.as_uuid())
            .bind(env.default_repo.as_ref().map(RepoRef::as_str))
            .bind(Json(&env.allowed_repos))
            .bind(env.github_installation_id)
            .bind(Json(&env.secret_bindings))
            .bind(env.created_at)
            .bind(env.updated_at)
            .execute(pool)
            .await
            .map(|res| res.rows_affected())
        })
        .map_err(StoreError::unique("environment", NAME_TAKEN))?;
        Ok(env)
    }

    /// `Ok` when no live environment of `house` has `name` (compared without case), else the
    /// same conflict `create_environment` would answer, so a caller can check before doing work
    /// (provisioning a sandbox, say).
    pub async fn environment_name_free(&self, house: HouseId, name: &EnvironmentName) -> Result<()> {
        match self.environment(house, &EnvironmentRef::Name(name.clone())).await {
            Ok(_) => Err(StoreError::Conflict { what: "environment", rule: NAME_TAKEN }),
            Err(StoreError::NotFound { .. }) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// A live environment of `house`, by id or by name (without regard to case).
    pub async fn environment(&self, house: HouseId, by: &EnvironmentRef) -> Result<Environment> {
        let row: Option<EnvironmentRow> = on!(&self.read, |pool| {
            match by {
                EnvironmentRef::Id(id) => {
                    sqlx::query_as(concat!(
                        "SELECT ",
                        environment_columns!(),
                        " FROM environments WHERE house_id = $1 AND id = $2 AND deleted_at IS NULL"
                    ))
                    .bind(house.as_uuid())
                    .bind(id.as_uuid())
                    .fetch_optional(pool)
                    .await
                }
                EnvironmentRef::Name(name) => {
                    sqlx::query_as(concat!(
                        "SELECT ",
                        environment_columns!(),
                        " FROM environments WHERE house_id = $1 AND lower(name) = $2 AND deleted_at IS NULL"
                    ))
                    .bind(house.as_uuid())
                    .bind(name.key())
                    .fetch_optional(pool)
                    .await
                }
            }
        })?;
        row.ok_or(StoreError::NotFound { what: "environment" })?.try_into()
    }

    /// The live environments of `house`, by name.
    pub async fn list_environments(&self, house: HouseId) -> Result<Vec<Environment>> {
        let rows: Vec<EnvironmentRow> = on!(&self.read, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                environment_columns!(),
                " FROM environments WHERE house_id = $1 AND deleted_at IS NULL ORDER BY lower(name)"
            ))
            .bind(house.as_uuid())
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Writes the changeable fields of a live environment (name, runtime, sandbox, repos,
    /// installation, bindings) and returns it as stored.
    pub async fn update_environment(&self, env: &Environment) -> Result<Environment> {
        self.sandbox(env.house_id, env.sandbox_id).await?;
        let row: Option<EnvironmentRow> = on!(&self.write, |pool| {
            sqlx::query_as(concat!(
                "UPDATE environments SET name = $3, runtime = $4, sandbox_id = $5, default_repo = $6, \
                 allowed_repos = $7, github_installation_id = $8, secret_bindings = $9, updated_at = $10 \
                 WHERE house_id = $1 AND id = $2 AND deleted_at IS NULL RETURNING ",
                environment_columns!()
            ))
            .bind(env.house_id.as_uuid())
            .bind(env.id.as_uuid())
            .bind(env.name.as_str())
            .bind(env.runtime.as_str())
            .bind(env.sandbox_id.as_uuid())
            .bind(env.default_repo.as_ref().map(RepoRef::as_str))
            .bind(Json(&env.allowed_repos))
            .bind(env.github_installation_id)
            .bind(Json(&env.secret_bindings))
            .bind(now())
            .fetch_optional(pool)
            .await
        })
        .map_err(StoreError::unique("environment", NAME_TAKEN))?;
        row.ok_or(StoreError::NotFound { what: "environment" })?.try_into()
    }

    /// Soft-deletes a live environment: it disappears from lookups and lists, its name is free
    /// again, and threads keep their snapshot of it.
    pub async fn delete_environment(&self, house: HouseId, id: EnvironmentId) -> Result<()> {
        let n = on!(&self.write, |pool| {
            sqlx::query(
                "UPDATE environments SET deleted_at = $3 WHERE house_id = $1 AND id = $2 AND deleted_at IS NULL",
            )
            .bind(house.as_uuid())
            .bind(id.as_uuid())
            .bind(now())
            .execute(pool)
            .await
            .map(|res| res.rows_affected())
        })?;
        if n == 0 { Err(StoreError::NotFound { what: "environment" }) } else { Ok(()) }
    }

    /// Removes an environment row for good (house teardown, retention). Threads that pointed at
    /// it keep their snapshot; their `environment_id` becomes null.
    pub async fn purge_environment(&self, house: HouseId, id: EnvironmentId) -> Result<()> {
        let n = on!(&self.write, |pool| {
            sqlx::query("DELETE FROM environments WHERE house_id = $1 AND id = $2")
                .bind(house.as_uuid())
                .bind(id.as_uuid())
                .execute(pool)
                .await
                .map(|res| res.rows_affected())
        })?;
        if n == 0 { Err(StoreError::NotFound { what: "environment" }) } else { Ok(()) }
    }
}
