#![doc = include_str!("../README.md")]

mod access;
mod agents;
mod audit;
mod environments;
mod error;
mod github;
mod identity;
mod jobs;
mod keys;
mod listen;
mod sandboxes;
mod secrets;
mod threads;

#[cfg(feature = "testkit")]
pub mod testkit;

use std::{str::FromStr, time::Duration};

use arbe_core::Quotas;
use chrono::{DateTime, SubsecRound, Utc};
use sqlx::{
    postgres::{PgPool, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous},
};

pub use access::{Access, Actor, Admin, AdminToken, ApiKeySecret, Bootstrap, Caller, NewApiKey};
pub use agents::{AgentPatch, NewAgent};
pub use audit::{AuditActor, MAX_AUDIT_PAGE, OPERATOR};
pub use environments::NewEnvironment;
pub use error::{Result, StoreError};
pub use identity::MAX_LABEL_CHARS;
pub use jobs::{CancelledJobs, Claim, Lease};
pub use keys::{SealedVersion, WrappedHouseKey};
pub use listen::EntryListener;
pub use sandboxes::NewSandbox;
pub use secrets::{NewSecretVersion, SealedSecret};
pub use threads::NewThread;

/// How to reach the database, and the operator's default quotas. Libraries take this; only the
/// binaries build it from `ARBE_DATABASE_URL` or `~/.arbe/`.
#[derive(Clone)]
pub struct StoreConfig {
    /// `sqlite://<path>`, `sqlite::memory:` or `postgres://…`.
    pub url: String,
    /// Connections to keep for reads (SQLite) or for everything (PostgreSQL).
    pub max_connections: u32,
    /// The quotas of every house without its own overrides (none capped by default).
    pub quotas: Quotas,
    /// Serve one house only: creating a second is refused. Set when the operator turned on the
    /// unisolated local runtime (`ARBE_LOCAL_RUNTIME=trusted`), which only one house may use.
    pub single_house: bool,
}

impl StoreConfig {
    /// A config for `url` with the default pool size and no quotas.
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), max_connections: 8, quotas: Quotas::default(), single_house: false }
    }
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A PostgreSQL URL may carry a password: show it without its user information.
        let url = match (self.url.find("://"), self.url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}[redacted]{}", &self.url[..scheme + 3], &self.url[at..])
            }
            _ => self.url.clone(),
        };
        f.debug_struct("StoreConfig")
            .field("url", &url)
            .field("max_connections", &self.max_connections)
            .field("quotas", &self.quotas)
            .field("single_house", &self.single_house)
            .finish()
    }
}

/// Which database a store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite (the default).
    Sqlite,
    /// PostgreSQL (scale-out).
    Postgres,
}

#[derive(Clone, Debug)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$p` bound to the concrete pool, so one body serves both backends and is
/// type-checked against each. Where the SQL differs, the body matches on [`Pool`] itself.
macro_rules! on {
    ($pool:expr, |$p:ident| $body:expr) => {
        match $pool {
            $crate::Pool::Sqlite($p) => $body,
            $crate::Pool::Postgres($p) => $body,
        }
    };
}
pub(crate) use on;

/// The repository: one API over SQLite and PostgreSQL.
///
/// Every read and write of a house's objects takes the house id and filters on it, so a caller
/// holding another house's id gets `NotFound`, never the object.
#[derive(Clone, Debug)]
pub struct Store {
    /// SQLite: one connection, so writers queue in the pool instead of spinning on
    /// `SQLITE_BUSY`. PostgreSQL: the same pool as `read`.
    write: Pool,
    read: Pool,
    /// Quotas of houses without overrides of their own.
    default_quotas: Quotas,
    /// Refuse a second house ([`StoreConfig::single_house`]).
    single_house: bool,
}

impl Store {
    /// Connects and brings the schema up to date.
    pub async fn connect(config: &StoreConfig) -> Result<Self> {
        let store = if config.url.starts_with("sqlite:") {
            Self::connect_sqlite(config).await?
        } else if config.url.starts_with("postgres://") || config.url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(config.max_connections.max(1))
                .acquire_timeout(Duration::from_secs(10))
                .connect(&config.url)
                .await?;
            Self {
                write: Pool::Postgres(pool.clone()),
                read: Pool::Postgres(pool),
                default_quotas: config.quotas,
                single_house: config.single_house,
            }
        } else {
            return Err(StoreError::Invalid(arbe_core::InvalidInput::new(
                "database url",
                "must start with sqlite: or postgres://",
            )));
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn connect_sqlite(config: &StoreConfig) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(&config.url)?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let in_memory = options.get_filename().as_os_str().is_empty()
            || config.url.contains(":memory:")
            || config.url.contains("mode=memory");
        if in_memory {
            // Each connection to `:memory:` is its own database: keep exactly one, forever.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await?;
            return Ok(Self {
                write: Pool::Sqlite(pool.clone()),
                read: Pool::Sqlite(pool),
                default_quotas: config.quotas,
                single_house: config.single_house,
            });
        }
        // WAL lets readers run beside the single writer; NORMAL syncs at checkpoints, which
        // in WAL mode keeps the database consistent across a crash (only the last commits
        // before a power loss may roll back).
        let options = options.journal_mode(SqliteJournalMode::Wal).synchronous(SqliteSynchronous::Normal);
        let write = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
        let read =
            SqlitePoolOptions::new().max_connections(config.max_connections.max(1)).connect_with(options).await?;
        Ok(Self {
            write: Pool::Sqlite(write),
            read: Pool::Sqlite(read),
            default_quotas: config.quotas,
            single_house: config.single_house,
        })
    }

    async fn migrate(&self) -> Result<()> {
        match &self.write {
            Pool::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await?,
            Pool::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// Which database this store runs on.
    pub fn backend(&self) -> Backend {
        match self.write {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Checks the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        on!(&self.read, |pool| sqlx::query("SELECT 1").execute(pool).await.map(|res| res.rows_affected()))?;
        Ok(())
    }

    /// Closes every connection, waiting for queries in flight.
    pub async fn close(&self) {
        for pool in [&self.write, &self.read] {
            on!(pool, |pool| pool.close().await);
        }
    }
}

/// Now, at the microsecond precision both backends store, so a value read back equals the
/// value written.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Parses a column that holds one of core's validated values; a failure means the row was
/// written by something other than this crate.
pub(crate) fn column<T, E: std::fmt::Display>(table: &'static str, res: std::result::Result<T, E>) -> Result<T> {
    res.map_err(|err| StoreError::Corrupt { table, reason: err.to_string() })
}
