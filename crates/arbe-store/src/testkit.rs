//! Fresh stores for tests, on either backend (feature `testkit`).
//!
//! PostgreSQL tests need a server: `cargo xtask test` starts a throwaway one and sets
//! `ARBE_TEST_PG_URL`. Without it they fail, naming the variable; they never skip.

use arbe_core::env_vars::ARBE_TEST_PG_URL;
use sqlx::{Connection, PgConnection};

use crate::{Store, StoreConfig};

/// A store and what keeps its database alive.
#[derive(Debug)]
pub struct TestStore {
    /// The store.
    pub store: Store,
    /// The database's URL, for a second store on the same database (a second "process").
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

/// A store on a new SQLite file in a temporary folder.
pub async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().expect("create a temporary folder");
    let url = format!("sqlite://{}", dir.path().join("arbe.db").display());
    let store = Store::connect(&StoreConfig::new(&url)).await.expect("open a fresh SQLite store");
    TestStore { store, url, _dir: Some(dir) }
}

/// The PostgreSQL server URL the tests use. Panics, naming the variable, when it is not set.
pub fn pg_server_url() -> String {
    std::env::var(ARBE_TEST_PG_URL).unwrap_or_else(|_| {
        panic!(
            "{ARBE_TEST_PG_URL} is not set: PostgreSQL tests need a server. \
             Run them through `cargo xtask test` (it starts a throwaway PostgreSQL), \
             or set {ARBE_TEST_PG_URL}=postgres://user@host:port/db"
        )
    })
}

/// A store on a new, empty PostgreSQL database on the server at `ARBE_TEST_PG_URL`.
pub async fn postgres() -> TestStore {
    let server = pg_server_url();
    let name = format!("arbe_test_{}", uuid::Uuid::now_v7().simple());
    let mut admin = PgConnection::connect(&server).await.expect("connect to ARBE_TEST_PG_URL");
    let create = format!("CREATE DATABASE {name}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(create)).execute(&mut admin).await.expect("create a test database");
    admin.close().await.ok();
    let url = replace_database(&server, &name);
    let store = Store::connect(&StoreConfig::new(&url)).await.expect("open a fresh PostgreSQL store");
    TestStore { store, url, _dir: None }
}

/// `server` with its database path replaced by `name`.
fn replace_database(server: &str, name: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server, None),
    };
    let authority_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::replace_database;

    #[test]
    fn replaces_only_the_database() {
        assert_eq!(replace_database("postgres://a@h:5/arbe", "t1"), "postgres://a@h:5/t1");
        assert_eq!(replace_database("postgres://a@h:5", "t1"), "postgres://a@h:5/t1");
        assert_eq!(replace_database("postgres://a@h:5/x?sslmode=disable", "t1"), "postgres://a@h:5/t1?sslmode=disable");
    }
}
