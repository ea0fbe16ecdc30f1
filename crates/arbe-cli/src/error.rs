//! Why a command failed, and the exit code each reason gets (README's table).

use arbe_client::ClientError;
use arbe_core::ErrorKind;

/// Exit codes: 0 is success; each failure has its own, so scripts can tell them apart.
pub(crate) mod code {
    /// Something unexpected (a bug, or an answer the CLI does not understand).
    pub(crate) const INTERNAL: u8 = 1;
    /// The command line or an input broke a rule (clap's own usage errors are 2 as well).
    pub(crate) const INVALID: u8 = 2;
    /// No such object in the house (or it belongs to another house).
    pub(crate) const NOT_FOUND: u8 = 3;
    /// It clashes with what is there (a taken name, a sandbox in the wrong state).
    pub(crate) const CONFLICT: u8 = 4;
    /// No valid API key: run `arbe up` or `arbe login`.
    pub(crate) const UNAUTHENTICATED: u8 = 5;
    /// Your role in the house does not allow it.
    pub(crate) const FORBIDDEN: u8 = 6;
    /// A quota or rate limit was reached.
    pub(crate) const LIMITED: u8 = 7;
    /// The server (or what it depends on) cannot be reached, or timed out.
    pub(crate) const UNAVAILABLE: u8 = 8;
    /// The server cannot do this at all, or is configured wrongly.
    pub(crate) const UNSUPPORTED: u8 = 9;
    /// The dispatch that `thread entries read` followed failed.
    pub(crate) const DISPATCH_FAILED: u8 = 10;
    /// The dispatch that `thread entries read` followed was cancelled.
    pub(crate) const DISPATCH_CANCELLED: u8 = 11;
    /// `diagnose` found a blocker.
    pub(crate) const BLOCKED: u8 = 12;
}

/// The exit code of an error of `kind`.
pub(crate) fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::InvalidInput => code::INVALID,
        ErrorKind::NotFound => code::NOT_FOUND,
        ErrorKind::Conflict => code::CONFLICT,
        ErrorKind::Unauthenticated => code::UNAUTHENTICATED,
        ErrorKind::Forbidden => code::FORBIDDEN,
        ErrorKind::QuotaExceeded | ErrorKind::RateLimited => code::LIMITED,
        ErrorKind::Unavailable | ErrorKind::Timeout => code::UNAVAILABLE,
        ErrorKind::Unsupported | ErrorKind::Misconfigured => code::UNSUPPORTED,
        _ => code::INTERNAL,
    }
}

/// A failed command: what to say, what to suggest, and its kind.
#[derive(Debug)]
pub(crate) struct CliError {
    /// The error's kind (its exit code).
    pub(crate) kind: ErrorKind,
    /// One line saying what went wrong.
    pub(crate) message: String,
    /// What to do about it, if there is something.
    pub(crate) hint: Option<String>,
}

impl CliError {
    /// An error of `kind`.
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), hint: None }
    }

    /// A bad command line or input.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// A local failure (a file that cannot be read or written).
    pub(crate) fn local(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// Adds a hint.
    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl From<ClientError> for CliError {
    fn from(err: ClientError) -> Self {
        let kind = err.kind();
        let hint = match (&err, kind) {
            (ClientError::Unreachable { .. }, _) => {
                Some("start a server with `arbe up` (or set ARBE_URL to the one you use)".to_owned())
            }
            (_, ErrorKind::Unauthenticated) => Some(
                "run `arbe up` on this HOME (it writes ~/.arbe/credentials), or `arbe login`, or set ARBE_API_KEY"
                    .to_owned(),
            ),
            (_, ErrorKind::Forbidden) => Some("ask an owner of the house for a role that allows it".to_owned()),
            _ => None,
        };
        Self { kind, message: err.to_string(), hint }
    }
}
