//! The error vocabulary shared by every crate.
//!
//! Each crate keeps its own `thiserror` enum and implements [`Classify`], so callers decide what
//! to do from one [`ErrorKind`]: the server maps it to an HTTP status, the CLI to an exit code,
//! dispatch to a retry decision. [`ErrorClass`] is the user-facing cause of a failed agent run.

use std::{borrow::Cow, fmt};

use serde::{Deserialize, Serialize};

/// What a caller should do about an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input breaks a rule; fix it and try again.
    InvalidInput,
    /// The object does not exist (or belongs to another house).
    NotFound,
    /// The request clashes with existing state, such as a taken name.
    Conflict,
    /// No valid credentials were presented.
    Unauthenticated,
    /// The caller's role does not allow this action.
    Forbidden,
    /// A hard quota or limit was reached.
    QuotaExceeded,
    /// Too many requests; retry later.
    RateLimited,
    /// A dependency is down or unreachable; retry later.
    Unavailable,
    /// The operation ran out of time.
    Timeout,
    /// The backend cannot do this at all.
    Unsupported,
    /// The deployment is configured wrongly; an operator must act.
    Misconfigured,
    /// A bug or an unexpected state.
    Internal,
}

impl ErrorKind {
    /// Whether trying the same thing again later can succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::RateLimited | Self::Unavailable | Self::Timeout)
    }

    /// The snake_case name used in API problems and `--json` output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidInput => "invalid_input",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::QuotaExceeded => "quota_exceeded",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::Unsupported => "unsupported",
            Self::Misconfigured => "misconfigured",
            Self::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Implemented by every crate's error type.
pub trait Classify: std::error::Error + Send + Sync + 'static {
    /// What the caller should do about this error.
    fn kind(&self) -> ErrorKind;
}

/// Why an agent run failed, as shown to users in `signal.thread.agent_failed` (seed 002).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The provider rejected the key.
    Auth,
    /// The account is out of money or credit.
    Billing,
    /// A rate limit or usage quota was hit.
    Quota,
    /// The provider or sandbox could not be reached.
    Network,
    /// The agent itself ended abnormally (step limit, timeout, crash).
    AgentExit,
    /// Nothing more specific is known.
    Unknown,
}

impl ErrorClass {
    /// The wire name (`auth`, `billing`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Billing => "billing",
            Self::Quota => "quota",
            Self::Network => "network",
            Self::AgentExit => "agent_exit",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value broke a rule. Names the field and the rule, and never the value itself:
/// a user who types a secret where a name belongs must not see it echoed into logs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {rule}")]
pub struct InvalidInput {
    /// The field, as the user knows it (`secret name`, `environment name`, `repo`, …).
    pub field: Cow<'static, str>,
    /// The rule that was broken, in words.
    pub rule: Cow<'static, str>,
}

impl InvalidInput {
    /// A new error for `field` breaking `rule`.
    pub fn new(field: impl Into<Cow<'static, str>>, rule: impl Into<Cow<'static, str>>) -> Self {
        Self { field: field.into(), rule: rule.into() }
    }
}

impl Classify for InvalidInput {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_kinds_are_retryable() {
        assert!(ErrorKind::Unavailable.is_retryable());
        assert!(ErrorKind::RateLimited.is_retryable());
        assert!(ErrorKind::Timeout.is_retryable());
        assert!(!ErrorKind::InvalidInput.is_retryable());
        assert!(!ErrorKind::QuotaExceeded.is_retryable());
    }

    #[test]
    fn error_class_serializes_as_seed_002_names() {
        let json = serde_json::to_string(&ErrorClass::AgentExit).unwrap();
        assert_eq!(json, "\"agent_exit\"");
    }
}
