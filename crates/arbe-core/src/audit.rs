//! The audit trail: who changed what and when, append-only. An event names its target (a
//! secret's name, an environment, a member, a key id, an installation id), never a value.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{HouseId, UserId};

/// What was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditAction {
    /// A secret was created.
    SecretCreated,
    /// A secret got a new value (a rotation), or its `shared`/`audience` changed.
    SecretRotated,
    /// A secret's previous value was made current again.
    SecretRolledBack,
    /// A secret was deleted.
    SecretDeleted,
    /// The house's data key was rotated.
    HouseKeyRotated,
    /// An environment was created.
    EnvironmentCreated,
    /// An environment's fields changed (name, sandbox, repos, installation, bindings).
    EnvironmentUpdated,
    /// A secret was bound to an environment (or its `required` flag flipped).
    SecretBound,
    /// A secret binding was removed from an environment.
    SecretUnbound,
    /// An environment was deleted.
    EnvironmentDeleted,
    /// A user became a member.
    MemberAdded,
    /// A member's role changed.
    MemberRoleChanged,
    /// A membership ended.
    MemberRemoved,
    /// An API key was created.
    ApiKeyCreated,
    /// An API key was revoked.
    ApiKeyRevoked,
    /// A GitHub App installation was connected to the house.
    GitHubInstallationConnected,
    /// A GitHub App installation was disconnected from the house.
    GitHubInstallationDisconnected,
}

impl AuditAction {
    /// Every action, for tables and tests.
    pub const ALL: [AuditAction; 17] = [
        Self::SecretCreated,
        Self::SecretRotated,
        Self::SecretRolledBack,
        Self::SecretDeleted,
        Self::HouseKeyRotated,
        Self::EnvironmentCreated,
        Self::EnvironmentUpdated,
        Self::SecretBound,
        Self::SecretUnbound,
        Self::EnvironmentDeleted,
        Self::MemberAdded,
        Self::MemberRoleChanged,
        Self::MemberRemoved,
        Self::ApiKeyCreated,
        Self::ApiKeyRevoked,
        Self::GitHubInstallationConnected,
        Self::GitHubInstallationDisconnected,
    ];

    /// The stored and printed name (`secret.rotated`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SecretCreated => "secret.created",
            Self::SecretRotated => "secret.rotated",
            Self::SecretRolledBack => "secret.rolled_back",
            Self::SecretDeleted => "secret.deleted",
            Self::HouseKeyRotated => "house_key.rotated",
            Self::EnvironmentCreated => "environment.created",
            Self::EnvironmentUpdated => "environment.updated",
            Self::SecretBound => "environment.secret_bound",
            Self::SecretUnbound => "environment.secret_unbound",
            Self::EnvironmentDeleted => "environment.deleted",
            Self::MemberAdded => "member.added",
            Self::MemberRoleChanged => "member.role_changed",
            Self::MemberRemoved => "member.removed",
            Self::ApiKeyCreated => "api_key.created",
            Self::ApiKeyRevoked => "api_key.revoked",
            Self::GitHubInstallationConnected => "github.installation_connected",
            Self::GitHubInstallationDisconnected => "github.installation_disconnected",
        }
    }

    /// The action stored as `name`, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.as_str() == name)
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One recorded change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEvent {
    /// Its position in the trail: increasing, never reused.
    pub seq: i64,
    /// The house it happened in; `None` for a user's own API keys, which act in every house.
    pub house_id: Option<HouseId>,
    /// Who did it; `None` for the operator (the admin token).
    pub actor_user_id: Option<UserId>,
    /// Their name at the time (`operator` for the admin token).
    pub actor_name: String,
    /// What was done.
    pub action: AuditAction,
    /// What it was done to, by name or id: never a value.
    pub target: String,
    /// When.
    pub at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_round_trips_through_its_stored_name() {
        for action in AuditAction::ALL {
            assert_eq!(AuditAction::parse(action.as_str()), Some(action));
        }
        let names: std::collections::HashSet<_> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(names.len(), AuditAction::ALL.len(), "stored names are unique");
        assert_eq!(AuditAction::parse("secret.read"), None);
    }
}
