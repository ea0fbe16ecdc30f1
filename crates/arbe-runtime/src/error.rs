//! The one error type every adapter returns; its kind tells the caller what to do.

use arbe_core::{Classify, ErrorKind};

/// A runtime operation failed.
#[derive(Debug, thiserror::Error)]
#[error("{runtime} {operation}: {message}")]
pub struct RuntimeError {
    /// What the caller should do: `NotFound`, `Unavailable` (retryable), `Timeout`,
    /// `QuotaExceeded` (a limit), `InvalidInput`, `Unauthenticated`, `Unsupported`, …
    pub kind: ErrorKind,
    /// The adapter (`docker`).
    pub runtime: &'static str,
    /// The operation (`exec`).
    pub operation: &'static str,
    /// What happened, in words.
    pub message: String,
    /// The underlying error, if any.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl RuntimeError {
    /// A new error.
    pub fn new(runtime: &'static str, operation: &'static str, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, runtime, operation, message: message.into(), source: None }
    }

    /// Attaches the underlying error.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The sandbox does not exist (or no longer does).
    pub fn not_found(runtime: &'static str, operation: &'static str, id: &str) -> Self {
        Self::new(runtime, operation, ErrorKind::NotFound, format!("sandbox {id} not found"))
    }

    /// The adapter cannot do this at all.
    pub fn unsupported(runtime: &'static str, operation: &'static str) -> Self {
        Self::new(
            runtime,
            operation,
            ErrorKind::Unsupported,
            format!("the {runtime} runtime does not support {operation}"),
        )
    }
}

impl Classify for RuntimeError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// The crate's result type.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
