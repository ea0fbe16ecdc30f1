//! Errors of a model call. A provider failure carries its classified cause, so the agent loop
//! can tell the user why in words they can act on (seed 002).

use std::time::Duration;

use arbe_core::{Classify, ErrorClass, ErrorKind, InvalidInput};
use serde::{Deserialize, Serialize};

/// A model call that failed at the provider or on the way there, classified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderFailure {
    /// Why, for users: auth, billing, quota, network or unknown.
    pub class: ErrorClass,
    /// A short message, without any key.
    pub message: String,
    /// The provider (`openrouter`).
    pub provider: String,
    /// The model as the provider names it.
    pub model: String,
    /// The HTTP status, when there was one (mid-stream errors have none).
    pub status: Option<u16>,
    /// Whether the same request may succeed later.
    pub retryable: bool,
    /// How long the provider asked us to wait.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "millis")]
    pub retry_after: Option<Duration>,
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

impl std::fmt::Display for ProviderFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}, {}", self.message, self.class, self.provider)?;
        if let Some(status) = self.status {
            write!(f, ", HTTP {status}")?;
        }
        f.write_str(")")
    }
}

/// What went wrong with a model call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LlmError {
    /// The provider (or the way to it) failed.
    #[error("model call failed: {0}")]
    Provider(ProviderFailure),
    /// The request broke a rule (an unknown provider, say).
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// No key was found for the provider.
    #[error("no {var} found: set it as a house secret, in the environment, or in ~/.arbe/keys/{var}")]
    MissingKey {
        /// The variable, e.g. `OPENROUTER_API_KEY`.
        var: &'static str,
    },
    /// Replay found no recorded answer for a request.
    #[error(
        "cassette {path} has no recorded answer for request {fingerprint}; record it again against a real provider"
    )]
    CassetteMiss {
        /// The cassette file.
        path: String,
        /// The request's fingerprint.
        fingerprint: String,
    },
    /// The cassette file could not be read or written.
    #[error("cassette {path}: {reason}")]
    CassetteFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

impl LlmError {
    /// The classified cause of the failure, as `signal.thread.agent_failed` reports it.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Provider(failure) => failure.class,
            Self::MissingKey { .. } => ErrorClass::Auth,
            Self::Invalid(_) | Self::CassetteMiss { .. } | Self::CassetteFile { .. } => ErrorClass::Unknown,
        }
    }

    /// The provider failure, if this is one.
    pub fn failure(&self) -> Option<&ProviderFailure> {
        match self {
            Self::Provider(failure) => Some(failure),
            _ => None,
        }
    }
}

impl Classify for LlmError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Provider(f) => match f.class {
                ErrorClass::Auth => ErrorKind::Unauthenticated,
                ErrorClass::Billing => ErrorKind::QuotaExceeded,
                ErrorClass::Quota => ErrorKind::RateLimited,
                ErrorClass::Network => ErrorKind::Unavailable,
                ErrorClass::AgentExit | ErrorClass::Unknown => ErrorKind::Internal,
            },
            Self::Invalid(_) => ErrorKind::InvalidInput,
            Self::MissingKey { .. } => ErrorKind::Misconfigured,
            Self::CassetteMiss { .. } => ErrorKind::NotFound,
            Self::CassetteFile { .. } => ErrorKind::Internal,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = LlmError> = std::result::Result<T, E>;
