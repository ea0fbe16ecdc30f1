//! The store's error type.

use arbe_core::{Classify, ErrorKind, Forbidden, InvalidInput, QuotaExceeded};

/// What went wrong talking to the database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No such object in this house.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for (`environment`, `thread`, …).
        what: &'static str,
    },
    /// A uniqueness rule or a concurrent change got in the way.
    #[error("{what} conflict: {rule}")]
    Conflict {
        /// The object (`environment`, `secret`, …).
        what: &'static str,
        /// The rule, in words.
        rule: &'static str,
    },
    /// The input broke a rule.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// No valid credentials: an unknown, malformed or revoked API key, or a wrong admin token.
    /// The message never says which.
    #[error("invalid or revoked credentials")]
    Unauthenticated,
    /// The actor's role does not allow the action.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// A house quota would be overrun; nothing was changed.
    #[error(transparent)]
    Quota(#[from] QuotaExceeded),
    /// A row could not be read back into its type.
    #[error("corrupt row in {table}: {reason}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// Why.
        reason: String,
    },
    /// Bringing the schema up to date failed.
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database said no, or could not be reached.
    #[error("database error")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::RowNotFound => Self::NotFound { what: "row" },
            err => Self::Database(err),
        }
    }
}

impl StoreError {
    /// Maps a unique-key violation to [`StoreError::Conflict`], leaving other errors alone.
    pub(crate) fn unique(what: &'static str, rule: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |err| match err.as_database_error() {
            Some(db) if db.is_unique_violation() => Self::Conflict { what, rule },
            Some(db) if db.is_foreign_key_violation() => Self::NotFound { what: "referenced object" },
            _ => err.into(),
        }
    }
}

impl Classify for StoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::Conflict { .. } => ErrorKind::Conflict,
            Self::Invalid(_) => ErrorKind::InvalidInput,
            Self::Unauthenticated => ErrorKind::Unauthenticated,
            Self::Forbidden(_) => ErrorKind::Forbidden,
            Self::Quota(_) => ErrorKind::QuotaExceeded,
            Self::Corrupt { .. } | Self::Migrate(_) => ErrorKind::Internal,
            Self::Database(err) => match err {
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => ErrorKind::Unavailable,
                sqlx::Error::Tls(_) | sqlx::Error::Configuration(_) => ErrorKind::Misconfigured,
                _ => ErrorKind::Internal,
            },
        }
    }
}

/// The store's result type.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
