//! Fresh stores for tests, on either backend (feature `testkit`).
//!
//! PostgreSQL tests need a server: `cargo xtask test` starts a throwaway one and sets
//! `ARBE_TEST_PG_URL`. Without it they fail, naming the variable; they never skip.

use arbe_core::{House, Name, Role, SecretValue, env_vars::ARBE_TEST_PG_URL};
use sqlx::{Connection, PgConnection};

use crate::{Actor, Admin, AdminToken, ApiKeySecret, Backend, Claim, NewThread, Store, StoreConfig};

/// A store and what keeps its database alive.
#[derive(Debug)]
pub struct TestStore {
    /// The store.
    pub store: Store,
    /// The database's URL, for a second store on the same database (a second "process").
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    _database: Option<PgDatabase>,
}

/// A PostgreSQL test database, dropped (best effort) with its `TestStore`, so a developer's own
/// server does not fill up with them; a SQLite file goes with its temporary folder.
#[derive(Debug)]
struct PgDatabase {
    server: String,
    name: String,
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // A thread of its own: this may run inside a runtime that is shutting down.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            runtime.block_on(async move {
                if let Ok(mut admin) = PgConnection::connect(&server).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}

/// Runs each listed `async fn(TestStore)` of module `$cases` (at the crate root) as two tests,
/// `sqlite::<case>` and `postgres::<case>`, so one suite covers both backends.
#[macro_export]
// `crate::$cases` is meant: the cases live in the calling test crate.
#[allow(clippy::crate_in_macro_def)]
macro_rules! both_backends {
    ($cases:ident => $($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::$cases::$case($crate::testkit::sqlite().await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::$cases::$case($crate::testkit::postgres().await).await
                }
            )*
        }
    };
}

/// Runs each listed `async fn(TestStore)` of module `$cases` on PostgreSQL only, as
/// `postgres_only::<case>`: for what only PostgreSQL has (LISTEN/NOTIFY), rather than a case
/// that returns early, and passes, on SQLite.
#[macro_export]
#[allow(clippy::crate_in_macro_def)]
macro_rules! postgres_only {
    ($cases:ident => $($case:ident),* $(,)?) => {
        mod postgres_only {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::$cases::$case($crate::testkit::postgres().await).await
                }
            )*
        }
    };
}

/// A store on a new SQLite file in a temporary folder.
pub async fn sqlite() -> TestStore {
    sqlite_with(|_| {}).await
}

/// A store on a new SQLite file, with its config adjusted first (quotas, say).
pub async fn sqlite_with(adjust: impl FnOnce(&mut StoreConfig)) -> TestStore {
    let dir = tempfile::tempdir().expect("create a temporary folder");
    let url = format!("sqlite://{}", dir.path().join("arbe.db").display());
    let mut config = StoreConfig::new(&url);
    adjust(&mut config);
    let store = Store::connect(&config).await.expect("open a fresh SQLite store");
    TestStore { store, url, _dir: Some(dir), _database: None }
}

/// A second store on the same database (a second process, as far as the database can tell),
/// with its config adjusted first.
pub async fn reopen(test: &TestStore, adjust: impl FnOnce(&mut StoreConfig)) -> Store {
    let mut config = StoreConfig::new(&test.url);
    adjust(&mut config);
    Store::connect(&config).await.expect("open the test database again")
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
    let (url, database) = new_pg_database().await;
    let store = Store::connect(&StoreConfig::new(&url)).await.expect("open a fresh PostgreSQL store");
    TestStore { store, url, _dir: None, _database: Some(database) }
}

async fn new_pg_database() -> (String, PgDatabase) {
    let server = pg_server_url();
    let name = format!("arbe_test_{}", uuid::Uuid::now_v7().simple());
    let mut admin = PgConnection::connect(&server).await.expect("connect to ARBE_TEST_PG_URL");
    let create = format!("CREATE DATABASE {name}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(create)).execute(&mut admin).await.expect("create a test database");
    admin.close().await.ok();
    (replace_database(&server, &name), PgDatabase { server, name })
}

/// What keeps a test database alive: its folder (SQLite), or its name to drop (PostgreSQL).
#[derive(Debug)]
pub struct DatabaseGuard {
    _dir: Option<tempfile::TempDir>,
    _database: Option<PgDatabase>,
}

/// A new database on `backend` brought up to migration `version` only (no store opened on
/// it), for tests that prove a later migration carries old rows over. Keep the guard alive
/// while the database is used.
pub async fn database_at_version(backend: Backend, version: i64) -> (String, DatabaseGuard) {
    let (url, guard) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("create a temporary folder");
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("arbe.db").display());
            (url, DatabaseGuard { _dir: Some(dir), _database: None })
        }
        Backend::Postgres => {
            let (url, database) = new_pg_database().await;
            (url, DatabaseGuard { _dir: None, _database: Some(database) })
        }
    };
    match backend {
        Backend::Sqlite => {
            let mut migrator = sqlx::migrate!("./migrations/sqlite");
            migrator.migrations = migrator.migrations.iter().filter(|m| m.version <= version).cloned().collect();
            let pool = sqlx::SqlitePool::connect(&url).await.expect("open the SQLite file");
            migrator.run(&pool).await.expect("migrate to the version");
            pool.close().await;
        }
        Backend::Postgres => {
            let mut migrator = sqlx::migrate!("./migrations/postgres");
            migrator.migrations = migrator.migrations.iter().filter(|m| m.version <= version).cloned().collect();
            let pool = sqlx::PgPool::connect(&url).await.expect("open the PostgreSQL database");
            migrator.run(&pool).await.expect("migrate to the version");
            pool.close().await;
        }
    }
    (url, guard)
}

/// Runs raw SQL against the database at `url` (rows of an older schema, say).
pub async fn execute_raw(url: &str, sql: &str) {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.expect("open the SQLite file");
        sqlx::raw_sql(sql).execute(&mut conn).await.expect("run raw SQL");
    } else {
        let mut conn = PgConnection::connect(url).await.expect("connect to PostgreSQL");
        sqlx::raw_sql(sql).execute(&mut conn).await.expect("run raw SQL");
    }
}

/// A user with an API key and a membership of `house` with `role`, acting through that key the
/// way every request does: `(actor, key)`.
pub async fn member(store: &Store, house: &House, name: &str, role: Role) -> (Actor, SecretValue) {
    let user = store.create_user(&Name::parse(name).expect("a valid user name")).await.expect("create a user");
    store.add_member(house.id, user.id, role).await.expect("add a member");
    let (id, key, hash) = ApiKeySecret::generate();
    store.create_api_key(user.id, id, "test", &hash).await.expect("create an API key");
    let actor = store.authenticate_in(key.expose(), house.id).await.expect("authenticate with the new key");
    (actor, key)
}

/// The operator, proven by a fresh admin token.
pub fn admin() -> Admin {
    let token = AdminToken::generate();
    AdminToken::new(&token).verify(token.expose()).expect("a token verifies itself")
}

/// A claim on a new job of a new thread of `house`: what a worker holds while it runs a
/// dispatch, and what reading secret values takes.
pub async fn claim(store: &Store, house: arbe_core::HouseId) -> Claim {
    let thread = store
        .create_thread(NewThread {
            house_id: house,
            author_id: arbe_core::MemberId::new(),
            parent: arbe_core::ParentRef::parse("testkit").expect("a valid channel"),
            environment: None,
            model_override: None,
            agent_ids: vec![],
        })
        .await
        .expect("create a thread");
    let job = store.enqueue_job(house, thread.id, 1).await.expect("queue a job");
    let claim = store.claim_job("testkit", std::time::Duration::from_secs(600)).await.expect("claim").expect("a job");
    assert_eq!(claim.id, job.id, "another queued job was older than this one");
    claim
}

/// A claim on the job that a user message `actor` posts to a new thread of its house starts:
/// what a worker holds while it answers that member (non-shared secrets resolve only for their
/// author's own dispatches).
pub async fn claim_posted_by(store: &Store, actor: &Actor) -> Claim {
    let thread = store
        .create_thread(NewThread {
            house_id: actor.house_id(),
            author_id: actor.member_id(),
            parent: arbe_core::ParentRef::parse("testkit").expect("a valid channel"),
            environment: None,
            model_override: None,
            agent_ids: vec![],
        })
        .await
        .expect("create a thread");
    let body = arbe_core::EntryBody::UserMessage { author_id: actor.member_id(), text: "go".into() };
    let (_, job) = store.append_and_enqueue(actor.house_id(), thread.id, body).await.expect("post and queue");
    let claim = store.claim_job("testkit", std::time::Duration::from_secs(600)).await.expect("claim").expect("a job");
    assert_eq!(claim.id, job.id, "another queued job was older than this one");
    claim
}

/// A house with an owner, a writer and a reader, each acting through an API key of its own.
#[derive(Clone, Debug)]
pub struct HouseFixture {
    /// The house.
    pub house: House,
    /// Its owner.
    pub owner: Actor,
    /// A writer.
    pub writer: Actor,
    /// A reader.
    pub reader: Actor,
}

/// Creates house `name` with users `<name>-owner`, `<name>-writer` and `<name>-reader`.
pub async fn house(store: &Store, name: &str) -> HouseFixture {
    let house = store.create_house(&Name::parse(name).expect("a valid house name")).await.expect("create a house");
    let (owner, _) = member(store, &house, &format!("{name}-owner"), Role::Owner).await;
    let (writer, _) = member(store, &house, &format!("{name}-writer"), Role::Writer).await;
    let (reader, _) = member(store, &house, &format!("{name}-reader"), Role::Reader).await;
    HouseFixture { house, owner, writer, reader }
}

/// What `pg_dump` prints for the database at `url`: every byte PostgreSQL would hand a backup.
/// Uses `pg_dump` from `ARBE_TEST_PG_BIN` (set by `cargo xtask test`), else from `PATH`.
pub fn pg_dump(url: &str) -> Vec<u8> {
    let program = match std::env::var_os("ARBE_TEST_PG_BIN") {
        Some(dir) => std::path::Path::new(&dir).join("pg_dump"),
        None => "pg_dump".into(),
    };
    let out =
        std::process::Command::new(&program).args(["--no-owner", "--data-only", url]).output().unwrap_or_else(|err| {
            panic!("run {}: {err}; set ARBE_TEST_PG_BIN to PostgreSQL's bin folder", program.display())
        });
    assert!(out.status.success(), "pg_dump failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
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

/// Raw writes the API forbids, for tests that prove tampering is caught.
#[derive(Debug)]
pub struct Tamper<'a>(&'a Store);

impl TestStore {
    /// Raw access to this store's rows.
    pub fn tamper(&self) -> Tamper<'_> {
        Tamper(&self.store)
    }
}

impl<'a> Tamper<'a> {
    /// Raw access to `store`'s rows.
    pub fn of(store: &'a Store) -> Self {
        Tamper(store)
    }
}

impl Tamper<'_> {
    /// Runs one statement through the store's writer, answering the database's error in words
    /// (for rules the schema itself enforces, such as append-only tables).
    pub async fn execute(&self, sql: &str) -> std::result::Result<u64, String> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        crate::on!(&self.0.write, |pool| sqlx::query(sql).execute(pool).await.map(|res| res.rows_affected()))
            .map_err(|err| err.to_string())
    }

    /// Creates the table [`Tamper::plain_insert`] writes to.
    pub async fn prepare_plain_inserts(&self) {
        crate::on!(&self.0.write, |pool| {
            let create = match &self.0.write {
                crate::Pool::Sqlite(_) => {
                    "CREATE TABLE IF NOT EXISTS bench_reference (id BLOB PRIMARY KEY, body TEXT NOT NULL, created_at TEXT NOT NULL)"
                }
                crate::Pool::Postgres(_) => {
                    "CREATE TABLE IF NOT EXISTS bench_reference (id UUID PRIMARY KEY, body JSONB NOT NULL, created_at TIMESTAMPTZ NOT NULL)"
                }
            };
            sqlx::query(create).execute(pool).await.map(|res| res.rows_affected())
        })
        .expect("create the reference table");
    }

    /// Inserts one row with an entry's payload and none of its rules (no sequence number, no
    /// fence, no trigger), through the store's own writer pool: the reference the store
    /// benchmark compares appends with.
    pub async fn plain_insert(&self, body: &str) {
        let json = serde_json::json!({"kind": "user.message", "text": body}).to_string();
        crate::on!(&self.0.write, |pool| {
            let insert = match &self.0.write {
                crate::Pool::Sqlite(_) => "INSERT INTO bench_reference (id, body, created_at) VALUES ($1, $2, $3)",
                crate::Pool::Postgres(_) => {
                    "INSERT INTO bench_reference (id, body, created_at) VALUES ($1, $2::jsonb, $3)"
                }
            };
            sqlx::query(insert)
                .bind(uuid::Uuid::now_v7())
                .bind(&json)
                .bind(crate::now())
                .execute(pool)
                .await
                .map(|res| res.rows_affected())
        })
        .expect("insert a reference row");
    }

    /// Overwrites the ciphertext and nonce of one stored secret version.
    pub async fn overwrite_secret_version(
        &self,
        house: arbe_core::HouseId,
        name: &arbe_core::SecretName,
        version: i64,
        ciphertext: &[u8],
        nonce: &[u8],
    ) {
        let n = crate::on!(&self.0.write, |pool| {
            sqlx::query(
                "UPDATE secret_versions SET ciphertext = $4, nonce = $5 \
                 WHERE version = $3 AND secret_id = (SELECT id FROM secrets WHERE house_id = $1 AND name = $2)",
            )
            .bind(house.as_uuid())
            .bind(name.as_str())
            .bind(version)
            .bind(ciphertext)
            .bind(nonce)
            .execute(pool)
            .await
            .map(|res| res.rows_affected())
        })
        .expect("overwrite a secret version");
        assert_eq!(n, 1, "no such secret version");
    }

    /// Renames a secret in place, behind the vault's back.
    pub async fn rename_secret(&self, house: arbe_core::HouseId, from: &str, to: &str) {
        let n = crate::on!(&self.0.write, |pool| {
            sqlx::query("UPDATE secrets SET name = $3 WHERE house_id = $1 AND name = $2")
                .bind(house.as_uuid())
                .bind(from)
                .bind(to)
                .execute(pool)
                .await
                .map(|res| res.rows_affected())
        })
        .expect("rename a secret");
        assert_eq!(n, 1, "no such secret");
    }

    /// Overwrites a wrapped house data key.
    pub async fn overwrite_house_key(&self, house: arbe_core::HouseId, version: i64, wrapped_key: &[u8], nonce: &[u8]) {
        let n = crate::on!(&self.0.write, |pool| {
            sqlx::query("UPDATE house_keys SET wrapped_key = $3, nonce = $4 WHERE house_id = $1 AND version = $2")
                .bind(house.as_uuid())
                .bind(version)
                .bind(wrapped_key)
                .bind(nonce)
                .execute(pool)
                .await
                .map(|res| res.rows_affected())
        })
        .expect("overwrite a house key");
        assert_eq!(n, 1, "no such house key");
    }
}
