//! Secret metadata and the in-memory secret value. Values never leave through this crate's
//! formatting or serialization: `SecretValue` is not `Serialize`, and prints `[redacted]`.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::{
    error::InvalidInput,
    ids::{HouseId, MemberId, SecretId},
    names::SecretName,
};

/// Who may use a secret's value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// May be injected into sandboxes (the default).
    #[default]
    Environment,
    /// Used only by the control plane itself (a model key, say); never injected.
    Capability,
}

impl Audience {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Environment => "environment",
            Self::Capability => "capability",
        }
    }

    /// Parses `environment` or `capability`.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        match s {
            "environment" => Ok(Self::Environment),
            "capability" => Ok(Self::Capability),
            _ => Err(InvalidInput::new("audience", "must be environment or capability")),
        }
    }
}

/// Everything about a secret except its value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecretMeta {
    /// Its id (stable across versions).
    pub id: SecretId,
    /// The house it belongs to.
    pub house_id: HouseId,
    /// Its name, unique in the house.
    pub name: SecretName,
    /// Who may use the value.
    pub audience: Audience,
    /// Usable by every agent in the house; otherwise only by its author's environments.
    pub shared: bool,
    /// The current version, starting at 1; each `set` of an existing secret adds one.
    pub version: i64,
    /// The member who created it.
    pub author_id: MemberId,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its metadata or value last changed.
    pub updated_at: DateTime<Utc>,
    /// When its value was last rotated (set again), if ever.
    pub rotated_at: Option<DateTime<Utc>>,
}

impl SecretMeta {
    /// Whether `member` may rotate, bind, or have dispatches resolve this secret in their own
    /// name: anyone in the house when it is shared, else only its author. The one place this
    /// rule lives (SPEC §2: a non-shared secret is its author's alone).
    pub fn usable_by(&self, member: MemberId) -> bool {
        self.shared || self.author_id == member
    }
}

/// A member reached for another member's non-shared secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "secret {name} is private to the member who created it: only they can rotate it, change its \
     sharing or audience, bind it, or have a dispatch use it"
)]
pub struct PrivateSecret {
    /// The secret.
    pub name: SecretName,
}

impl crate::Classify for PrivateSecret {
    fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::Forbidden
    }
}

/// A secret's plaintext, held only in memory and wiped on drop.
///
/// `Debug` and `Display` print `[redacted]`, there is no `Serialize`, and the bytes are read
/// only through [`SecretValue::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Zeroizing<String>);

impl SecretValue {
    /// The largest value accepted, in bytes.
    pub const MAX_BYTES: usize = 64 * 1024;

    /// The shortest value that output redaction can hide (SPEC §2). A shorter value would be
    /// replaced wherever its bytes happen to occur, which garbles output and spells the value
    /// out by where the markers sit, so an environment-audience value this short is refused at
    /// `set`, and one stored before the rule is injected unredacted with a warning.
    pub const MIN_REDACTED_BYTES: usize = 8;

    /// Wraps a value, checking it is 1 byte to 64 KiB.
    pub fn new(value: String) -> Result<Self, InvalidInput> {
        let value = Zeroizing::new(value);
        if value.is_empty() || value.len() > Self::MAX_BYTES {
            return Err(InvalidInput::new("secret value", "must be 1 byte to 64 KiB"));
        }
        Ok(Self(value))
    }

    /// The plaintext. Every call site is a place a value could leak: keep them few.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_value_never_formats_its_contents() {
        let v = SecretValue::new("sk-canary-123".into()).unwrap();
        assert_eq!(format!("{v:?} {v} {:?}", Some(&v)), "[redacted] [redacted] Some([redacted])");
        assert_eq!(v.expose(), "sk-canary-123");
    }

    #[test]
    fn secret_value_size_rule() {
        let rule = "invalid secret value: must be 1 byte to 64 KiB";
        assert_eq!(SecretValue::new(String::new()).unwrap_err().to_string(), rule);
        assert_eq!(SecretValue::new("x".repeat(64 * 1024 + 1)).unwrap_err().to_string(), rule);
        assert!(SecretValue::new("x".repeat(64 * 1024)).is_ok());
    }
}
