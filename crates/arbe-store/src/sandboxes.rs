//! Sandbox rows. The runtime adapters own the machines; this is the house's record of them.

use arbe_core::{
    HouseId, Labels, Name, QuotaExceeded, QuotaKind, Resources, RuntimeName, Sandbox, SandboxId, SandboxState,
};
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use crate::{Pool, Result, Store, StoreError, column, identity::lock_house, now, on};

/// A sandbox to record, before or after the runtime provisioned it.
#[derive(Clone, Debug)]
pub struct NewSandbox {
    /// The house.
    pub house_id: HouseId,
    /// The runtime it lives on.
    pub runtime: RuntimeName,
    /// Its name, unique in the house.
    pub name: Name,
    /// Its state now (the runtime's id is recorded with [`Store::set_sandbox_state`] once the
    /// runtime made it, never taken from a caller).
    pub state: SandboxState,
    /// Its image, where the runtime has images.
    pub image: Option<String>,
    /// What it may use.
    pub resources: Resources,
    /// Labels.
    pub labels: Labels,
}

#[derive(sqlx::FromRow)]
struct SandboxRow {
    id: Uuid,
    house_id: Uuid,
    runtime: String,
    external_id: Option<String>,
    name: String,
    state: String,
    image: Option<String>,
    resources: Json<Resources>,
    labels: Json<Labels>,
    created_at: DateTime<Utc>,
    last_active_at: DateTime<Utc>,
}

impl TryFrom<SandboxRow> for Sandbox {
    type Error = StoreError;
    fn try_from(row: SandboxRow) -> Result<Self> {
        Ok(Sandbox {
            id: SandboxId::from_uuid(row.id),
            house_id: HouseId::from_uuid(row.house_id),
            runtime: column("sandboxes", RuntimeName::parse(&row.runtime))?,
            external_id: row.external_id,
            name: column("sandboxes", Name::parse(&row.name))?,
            state: column("sandboxes", SandboxState::parse(&row.state))?,
            image: row.image,
            resources: row.resources.0,
            labels: row.labels.0,
            created_at: row.created_at,
            last_active_at: row.last_active_at,
        })
    }
}

macro_rules! sandbox_columns {
    () => {
        "id, house_id, runtime, external_id, name, state, image, resources, labels, created_at, last_active_at"
    };
}

impl Store {
    /// Records a sandbox. Names are unique per house. The house's `sandboxes` quota counts its
    /// sandboxes that are not destroyed in the same transaction; at the cap nothing is written.
    pub async fn create_sandbox(&self, new: NewSandbox) -> Result<Sandbox> {
        let cap = self.quota(new.house_id, QuotaKind::Sandboxes).await?;
        let at = now();
        let sandbox = Sandbox {
            id: SandboxId::new(),
            house_id: new.house_id,
            runtime: new.runtime,
            external_id: None,
            name: new.name,
            state: new.state,
            image: new.image,
            resources: new.resources,
            labels: new.labels,
            created_at: at,
            last_active_at: at,
        };
        macro_rules! insert {
            ($pool:expr, $backend:ident) => {{
                let mut tx = $pool.begin().await?;
                if let Some(limit) = cap {
                    lock_house!($backend, &mut *tx, sandbox.house_id);
                    let live: i64 = sqlx::query_scalar(
                        "SELECT count(*) FROM sandboxes WHERE house_id = $1 AND state <> 'destroyed'",
                    )
                    .bind(sandbox.house_id.as_uuid())
                    .fetch_one(&mut *tx)
                    .await?;
                    if live.max(0) as u64 >= limit {
                        return Err(QuotaExceeded { quota: QuotaKind::Sandboxes, limit }.into());
                    }
                }
                sqlx::query(concat!(
                    "INSERT INTO sandboxes (",
                    sandbox_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                ))
                .bind(sandbox.id.as_uuid())
                .bind(sandbox.house_id.as_uuid())
                .bind(sandbox.runtime.as_str())
                .bind(&sandbox.external_id)
                .bind(sandbox.name.as_str())
                .bind(sandbox.state.as_str())
                .bind(&sandbox.image)
                .bind(Json(&sandbox.resources))
                .bind(Json(&sandbox.labels))
                .bind(sandbox.created_at)
                .bind(sandbox.last_active_at)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::unique("sandbox", "a sandbox with this name already exists in the house"))?;
                tx.commit().await?;
            }};
        }
        match &self.write {
            Pool::Sqlite(pool) => insert!(pool, sqlite),
            Pool::Postgres(pool) => insert!(pool, postgres),
        }
        Ok(sandbox)
    }

    /// A sandbox of `house`.
    pub async fn sandbox(&self, house: HouseId, id: SandboxId) -> Result<Sandbox> {
        let row: Option<SandboxRow> = on!(&self.read, |pool| {
            sqlx::query_as(concat!("SELECT ", sandbox_columns!(), " FROM sandboxes WHERE house_id = $1 AND id = $2"))
                .bind(house.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(pool)
                .await
        })?;
        row.ok_or(StoreError::NotFound { what: "sandbox" })?.try_into()
    }

    /// A sandbox of `house` by name.
    pub async fn sandbox_by_name(&self, house: HouseId, name: &str) -> Result<Sandbox> {
        let row: Option<SandboxRow> = on!(&self.read, |pool| {
            sqlx::query_as(concat!("SELECT ", sandbox_columns!(), " FROM sandboxes WHERE house_id = $1 AND name = $2"))
                .bind(house.as_uuid())
                .bind(name)
                .fetch_optional(pool)
                .await
        })?;
        row.ok_or(StoreError::NotFound { what: "sandbox" })?.try_into()
    }

    /// A sandbox of `house` by the runtime's own id for it: an id the house does not own is
    /// `NotFound`.
    pub async fn sandbox_by_external_id(&self, house: HouseId, external_id: &str) -> Result<Sandbox> {
        let row: Option<SandboxRow> = on!(&self.read, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                sandbox_columns!(),
                " FROM sandboxes WHERE house_id = $1 AND external_id = $2 ORDER BY id DESC LIMIT 1"
            ))
            .bind(house.as_uuid())
            .bind(external_id)
            .fetch_optional(pool)
            .await
        })?;
        row.ok_or(StoreError::NotFound { what: "sandbox" })?.try_into()
    }

    /// The sandboxes of `house`, optionally on one runtime, oldest first.
    pub async fn list_sandboxes(&self, house: HouseId, runtime: Option<&RuntimeName>) -> Result<Vec<Sandbox>> {
        let rows: Vec<SandboxRow> = on!(&self.read, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                sandbox_columns!(),
                " FROM sandboxes WHERE house_id = $1 AND ($2 IS NULL OR runtime = $2) ORDER BY id"
            ))
            .bind(house.as_uuid())
            .bind(runtime.map(RuntimeName::as_str))
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Whether a house other than `house` has a sandbox on `runtime` that is not destroyed (a
    /// runtime that shares one account between sandboxes serves one house only).
    pub async fn runtime_used_by_another_house(&self, house: HouseId, runtime: &str) -> Result<bool> {
        let n: i64 = on!(&self.read, |pool| {
            sqlx::query_scalar(
                "SELECT count(*) FROM sandboxes WHERE house_id <> $1 AND runtime = $2 AND state <> 'destroyed'",
            )
            .bind(house.as_uuid())
            .bind(runtime)
            .fetch_one(pool)
            .await
        })?;
        Ok(n > 0)
    }

    /// Records a state change, and the runtime's id once it is known.
    pub async fn set_sandbox_state(
        &self,
        house: HouseId,
        id: SandboxId,
        state: SandboxState,
        external_id: Option<&str>,
    ) -> Result<()> {
        let n = on!(&self.write, |pool| {
            sqlx::query(
                "UPDATE sandboxes SET state = $3, external_id = COALESCE($4, external_id) \
                 WHERE house_id = $1 AND id = $2",
            )
            .bind(house.as_uuid())
            .bind(id.as_uuid())
            .bind(state.as_str())
            .bind(external_id)
            .execute(pool)
            .await
            .map(|res| res.rows_affected())
        })?;
        if n == 0 { Err(StoreError::NotFound { what: "sandbox" }) } else { Ok(()) }
    }

    /// Marks a sandbox as used now, so the idle reaper leaves it alone.
    pub async fn touch_sandbox(&self, house: HouseId, id: SandboxId) -> Result<()> {
        let n = on!(&self.write, |pool| {
            sqlx::query("UPDATE sandboxes SET last_active_at = $3 WHERE house_id = $1 AND id = $2")
                .bind(house.as_uuid())
                .bind(id.as_uuid())
                .bind(now())
                .execute(pool)
                .await
                .map(|res| res.rows_affected())
        })?;
        if n == 0 { Err(StoreError::NotFound { what: "sandbox" }) } else { Ok(()) }
    }

    /// Started sandboxes on `runtime` not used since `before`, across houses (for the idle reaper).
    pub async fn idle_sandboxes(&self, runtime: &RuntimeName, before: DateTime<Utc>) -> Result<Vec<Sandbox>> {
        let rows: Vec<SandboxRow> = on!(&self.read, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                sandbox_columns!(),
                " FROM sandboxes WHERE runtime = $1 AND state = 'started' AND last_active_at < $2 ORDER BY id"
            ))
            .bind(runtime.as_str())
            .bind(before)
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter().map(TryInto::try_into).collect()
    }
}

impl Store {
    /// Sandboxes across every house by runtime and state, for `/metrics`.
    pub async fn sandbox_counts(&self) -> Result<Vec<(String, String, u64)>> {
        let rows: Vec<(String, String, i64)> = on!(&self.read, |pool| {
            sqlx::query_as(
                "SELECT runtime, state, count(*) FROM sandboxes GROUP BY runtime, state ORDER BY runtime, state",
            )
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(|(runtime, state, n)| (runtime, state, n.max(0) as u64)).collect())
    }
}
