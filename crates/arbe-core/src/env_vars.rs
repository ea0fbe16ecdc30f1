//! Names of the environment variables arbe's binaries read. Libraries never read them;
//! they are listed here so every binary spells them the same way.

/// Database URL: a SQLite file (the default) or `postgres://…`.
pub const ARBE_DATABASE_URL: &str = "ARBE_DATABASE_URL";
/// Base64 master key (KEK) of the vault; else `~/.arbe/master.key`.
pub const ARBE_MASTER_KEY: &str = "ARBE_MASTER_KEY";
/// Where the CLI finds the server.
pub const ARBE_URL: &str = "ARBE_URL";
/// The API key the CLI authenticates with; else `~/.arbe/credentials`.
pub const ARBE_API_KEY: &str = "ARBE_API_KEY";
/// `human` or `json` log lines.
pub const ARBE_LOG_FORMAT: &str = "ARBE_LOG_FORMAT";
/// Grace period on shutdown, seconds.
pub const ARBE_DRAIN_SECONDS: &str = "ARBE_DRAIN_SECONDS";
/// PostgreSQL server URL the test suites create their throwaway databases on.
pub const ARBE_TEST_PG_URL: &str = "ARBE_TEST_PG_URL";
