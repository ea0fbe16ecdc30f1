//! Houses (tenants), their members, roles, and the one table that says who may do what.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    error::{Classify, ErrorKind, InvalidInput},
    ids::{ApiKeyId, HouseId, MemberId},
    names::Name,
};

/// A tenant: every other object belongs to exactly one house.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct House {
    /// Its id.
    pub id: HouseId,
    /// Its unique name (`default` for the house `arbe up` creates).
    pub name: Name,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A member's role in a house, from least to most privileged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A house member: may read.
    Reader,
    /// Member-write: may create and change.
    Writer,
    /// May also delete and manage members.
    Owner,
}

impl Role {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reader => "reader",
            Self::Writer => "writer",
            Self::Owner => "owner",
        }
    }

    /// Parses `owner`, `writer` or `reader`.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        match s {
            "owner" => Ok(Self::Owner),
            "writer" => Ok(Self::Writer),
            "reader" => Ok(Self::Reader),
            _ => Err(InvalidInput::new("role", "must be owner, writer or reader")),
        }
    }

    /// Whether this role may perform `action`, according to [`RULES`].
    pub fn allows(self, action: Action) -> bool {
        self >= action.min_role()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something a member may try to do in a house.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// See the house, its members, environments, secret metadata, sandboxes, threads, agents.
    Read,
    /// Create or rotate a secret.
    SetSecret,
    /// Delete a secret.
    DeleteSecret,
    /// Create or change an environment (including its bindings).
    WriteEnvironment,
    /// Soft-delete an environment.
    DeleteEnvironment,
    /// Provision, start, stop or run commands in a sandbox.
    OperateSandbox,
    /// Destroy a sandbox.
    DestroySandbox,
    /// Create threads and entries, which dispatches agents.
    Dispatch,
    /// Cancel a running thread.
    CancelThread,
    /// Create or change agents.
    WriteAgent,
    /// Create API keys for oneself.
    CreateOwnApiKey,
    /// Add, remove or change the role of members.
    ManageMembers,
    /// Rotate the house's data key (re-encrypts its secrets).
    RotateKeys,
}

/// The rule table: the least role allowed to perform each action (seed 001: GET is for house
/// members, POST and PATCH for member-write, DELETE for owners).
pub const RULES: &[(Action, Role)] = &[
    (Action::Read, Role::Reader),
    (Action::SetSecret, Role::Writer),
    (Action::DeleteSecret, Role::Owner),
    (Action::WriteEnvironment, Role::Writer),
    (Action::DeleteEnvironment, Role::Owner),
    (Action::OperateSandbox, Role::Writer),
    (Action::DestroySandbox, Role::Owner),
    (Action::Dispatch, Role::Writer),
    (Action::CancelThread, Role::Writer),
    (Action::WriteAgent, Role::Writer),
    (Action::CreateOwnApiKey, Role::Reader),
    (Action::ManageMembers, Role::Owner),
    (Action::RotateKeys, Role::Owner),
];

impl Action {
    /// What the action does, in words (`delete secrets`), for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Read => "read the house",
            Self::SetSecret => "set secrets",
            Self::DeleteSecret => "delete secrets",
            Self::WriteEnvironment => "create or change environments",
            Self::DeleteEnvironment => "delete environments",
            Self::OperateSandbox => "operate sandboxes",
            Self::DestroySandbox => "destroy sandboxes",
            Self::Dispatch => "dispatch threads",
            Self::CancelThread => "cancel threads",
            Self::WriteAgent => "create or change agents",
            Self::CreateOwnApiKey => "create API keys",
            Self::ManageMembers => "manage members",
            Self::RotateKeys => "rotate the house key",
        }
    }

    /// The least role that may perform this action.
    pub fn min_role(self) -> Role {
        RULES
            .iter()
            .find(|(action, _)| *action == self)
            .map(|(_, role)| *role)
            // Every action has a row (a unit test checks); fail closed regardless.
            .unwrap_or(Role::Owner)
    }
}

/// A member of a house.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its id.
    pub id: MemberId,
    /// The house it belongs to.
    pub house_id: HouseId,
    /// A display name, unique within the house.
    pub name: Name,
    /// What it may do.
    pub role: Role,
    /// When it joined.
    pub created_at: DateTime<Utc>,
}

impl Member {
    /// `Ok` when this member's role allows `action` ([`RULES`]), else why not.
    pub fn require(&self, action: Action) -> Result<(), Forbidden> {
        if self.role.allows(action) {
            Ok(())
        } else {
            Err(Forbidden { role: self.role, action, needs: action.min_role() })
        }
    }
}

/// A member's role does not allow an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a {role} may not {} (it takes {needs})", action.describe())]
pub struct Forbidden {
    /// The member's role.
    pub role: Role,
    /// What was attempted.
    pub action: Action,
    /// The least role that may.
    pub needs: Role,
}

impl Classify for Forbidden {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Forbidden
    }
}

/// An API key's metadata. The key itself is `arbe_<id>_<secret>`; only a hash of the secret part
/// is stored, and the key acts with its member's role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyMeta {
    /// The public id inside the key.
    pub id: ApiKeyId,
    /// The member it acts as.
    pub member_id: MemberId,
    /// The member's house.
    pub house_id: HouseId,
    /// A label chosen by its creator.
    pub label: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_exactly_one_rule() {
        let all = [
            Action::Read,
            Action::SetSecret,
            Action::DeleteSecret,
            Action::WriteEnvironment,
            Action::DeleteEnvironment,
            Action::OperateSandbox,
            Action::DestroySandbox,
            Action::Dispatch,
            Action::CancelThread,
            Action::WriteAgent,
            Action::CreateOwnApiKey,
            Action::ManageMembers,
            Action::RotateKeys,
        ];
        assert_eq!(all.len(), RULES.len());
        for action in all {
            assert_eq!(RULES.iter().filter(|(a, _)| *a == action).count(), 1, "{action:?}");
        }
    }

    #[test]
    fn seed_001_roles_for_environments() {
        assert!(Role::Reader.allows(Action::Read));
        assert!(!Role::Reader.allows(Action::WriteEnvironment));
        assert!(Role::Writer.allows(Action::WriteEnvironment));
        assert!(!Role::Writer.allows(Action::DeleteEnvironment));
        assert!(Role::Owner.allows(Action::DeleteEnvironment));
    }

    #[test]
    fn role_parse_names_the_rule() {
        assert_eq!(Role::parse("writer").unwrap(), Role::Writer);
        assert_eq!(Role::parse("admin").unwrap_err().to_string(), "invalid role: must be owner, writer or reader");
    }
}
