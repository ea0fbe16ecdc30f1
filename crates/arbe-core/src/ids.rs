//! Typed ids: UUID v7 newtypes, so a `HouseId` can never be passed where a `ThreadId` belongs.
//!
//! v7 ids sort by creation time, which keeps b-tree inserts local and makes `ORDER BY id`
//! a creation order within one process.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::InvalidInput;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, format = Uuid))]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered (v7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID, for rows read back from storage.
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            /// The UUID inside.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }

            /// Parses the hyphenated (or simple) UUID form a user types.
            pub fn parse(s: &str) -> Result<Self, InvalidInput> {
                Uuid::parse_str(s.trim())
                    .map(Self)
                    .map_err(|_| InvalidInput::new($field, "must be a UUID"))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = InvalidInput;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }
    };
}

id_type!(
    /// A house (tenant).
    HouseId, "house_id"
);
id_type!(
    /// A user: a person or a service account, with memberships in one or more houses.
    UserId, "user_id"
);
id_type!(
    /// A membership of a user in a house (the id entries and secrets name as their author).
    MemberId, "member_id"
);
id_type!(
    /// An API key: the public, non-secret part of `arbe_<id>_<secret>`.
    ApiKeyId, "api_key_id"
);
id_type!(
    /// A house secret (all of its versions).
    SecretId, "secret_id"
);
id_type!(
    /// An environment.
    EnvironmentId, "environment_id"
);
id_type!(
    /// A sandbox row (not the runtime's own external id).
    SandboxId, "sandbox_id"
);
id_type!(
    /// A conversation thread.
    ThreadId, "thread_id"
);
id_type!(
    /// One entry of a thread.
    EntryId, "entry_id"
);
id_type!(
    /// An agent (bot).
    AgentId, "agent_id"
);
id_type!(
    /// A dispatch job in the durable queue.
    JobId, "job_id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_time_ordered_and_round_trip() {
        let a = ThreadId::new();
        let b = ThreadId::new();
        assert!(a < b);
        assert_eq!(ThreadId::parse(&a.to_string()).unwrap(), a);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, format!("\"{a}\""));
    }

    #[test]
    fn id_parse_error_names_the_field() {
        let err = HouseId::parse("not-a-uuid").unwrap_err();
        assert_eq!(err.to_string(), "invalid house_id: must be a UUID");
    }
}
