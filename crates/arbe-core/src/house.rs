//! Houses (tenants), their members, roles, and the one table that says who may do what.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    error::{Classify, ErrorKind, InvalidInput},
    ids::{ApiKeyId, HouseId, MemberId, UserId},
    names::Name,
};

/// A tenant: every other object belongs to exactly one house.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

    /// Whether this role may perform `action`, according to [`Action::min_role`].
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
    /// Delete agents.
    DeleteAgent,
    /// Add, remove or change the role of members.
    ManageMembers,
    /// Rotate the house's data key (re-encrypts its secrets).
    RotateKeys,
    /// Connect or disconnect a GitHub App installation.
    ConnectGitHub,
    /// Read the audit trail.
    ReadAudit,
}

impl Action {
    /// Every action, for tables and tests.
    pub const ALL: [Action; 15] = [
        Self::Read,
        Self::SetSecret,
        Self::DeleteSecret,
        Self::WriteEnvironment,
        Self::DeleteEnvironment,
        Self::OperateSandbox,
        Self::DestroySandbox,
        Self::Dispatch,
        Self::CancelThread,
        Self::WriteAgent,
        Self::DeleteAgent,
        Self::ManageMembers,
        Self::RotateKeys,
        Self::ConnectGitHub,
        Self::ReadAudit,
    ];

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
            Self::DeleteAgent => "delete agents",
            Self::ManageMembers => "manage members",
            Self::RotateKeys => "rotate the house key",
            Self::ConnectGitHub => "connect GitHub installations",
            Self::ReadAudit => "read the audit trail",
        }
    }

    /// The rule table: the least role allowed to perform each action (seed 001: GET is for
    /// house members, POST and PATCH for member-write, DELETE for owners). One exhaustive
    /// match, so every action has exactly one rule and a new action cannot compile without one;
    /// no other code decides who may do what.
    pub fn min_role(self) -> Role {
        match self {
            Self::Read => Role::Reader,
            Self::SetSecret
            | Self::WriteEnvironment
            | Self::OperateSandbox
            | Self::Dispatch
            | Self::CancelThread
            | Self::WriteAgent => Role::Writer,
            Self::DeleteSecret
            | Self::DeleteEnvironment
            | Self::DestroySandbox
            | Self::DeleteAgent
            | Self::ManageMembers
            | Self::RotateKeys
            | Self::ConnectGitHub
            | Self::ReadAudit => Role::Owner,
        }
    }
}

/// A user: a person or a service account. Users act through API keys, and their memberships
/// say what they may do in each house.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// Its unique name.
    pub name: Name,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A membership: a user in a house with a role. Entries, secrets and environments name their
/// author by this id, so authorship is always within one house.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    /// Its id.
    pub id: MemberId,
    /// The house it belongs to.
    pub house_id: HouseId,
    /// The user it is a membership of.
    pub user_id: UserId,
    /// The user's name.
    pub name: Name,
    /// What it may do.
    pub role: Role,
    /// When it joined.
    pub created_at: DateTime<Utc>,
}

impl Member {
    /// `Ok` when this member's role allows `action` ([`Action::min_role`]), else why not.
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

/// An API key's metadata. The key itself is `arbe_<id>_<secret>`: the id is the non-secret
/// part it is looked up by, and only a hash of the secret part is stored. A key acts as its
/// user, in whichever house a request names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKeyMeta {
    /// The public id inside the key.
    pub id: ApiKeyId,
    /// The user it acts as.
    pub user_id: UserId,
    /// A label chosen by its creator.
    pub label: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last authenticated a request (kept to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A per-house quota the operator sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum QuotaKind {
    /// Sandboxes that are not destroyed.
    Sandboxes,
    /// Dispatches queued or running at once.
    ConcurrentDispatches,
    /// Bytes one sandbox's workspace may hold.
    WorkspaceBytes,
}

impl QuotaKind {
    /// The wire name (`concurrent_dispatches`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sandboxes => "sandboxes",
            Self::ConcurrentDispatches => "concurrent_dispatches",
            Self::WorkspaceBytes => "workspace_bytes",
        }
    }
}

impl fmt::Display for QuotaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A house's quotas. `None` means no cap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Quotas {
    /// Sandboxes that are not destroyed.
    pub sandboxes: Option<u64>,
    /// Dispatches queued or running at once.
    pub concurrent_dispatches: Option<u64>,
    /// Bytes one sandbox's workspace may hold.
    pub workspace_bytes: Option<u64>,
}

impl Quotas {
    /// `overrides` where set, these (the operator's defaults) elsewhere.
    pub fn with(self, overrides: Quotas) -> Quotas {
        Quotas {
            sandboxes: overrides.sandboxes.or(self.sandboxes),
            concurrent_dispatches: overrides.concurrent_dispatches.or(self.concurrent_dispatches),
            workspace_bytes: overrides.workspace_bytes.or(self.workspace_bytes),
        }
    }

    /// The cap of `kind`, if any.
    pub fn get(&self, kind: QuotaKind) -> Option<u64> {
        match kind {
            QuotaKind::Sandboxes => self.sandboxes,
            QuotaKind::ConcurrentDispatches => self.concurrent_dispatches,
            QuotaKind::WorkspaceBytes => self.workspace_bytes,
        }
    }
}

/// A quota would be overrun: nothing was changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("quota {quota} reached: {}", describe_quota(*.quota, *.limit))]
pub struct QuotaExceeded {
    /// Which quota.
    pub quota: QuotaKind,
    /// Its cap.
    pub limit: u64,
}

fn describe_quota(quota: QuotaKind, limit: u64) -> String {
    match quota {
        QuotaKind::Sandboxes => format!("the house may have at most {limit} sandboxes that are not destroyed"),
        QuotaKind::ConcurrentDispatches => {
            format!("the house may have at most {limit} dispatches queued or running at once")
        }
        QuotaKind::WorkspaceBytes => format!("a workspace of the house may hold at most {limit} bytes"),
    }
}

impl Classify for QuotaExceeded {
    fn kind(&self) -> ErrorKind {
        ErrorKind::QuotaExceeded
    }
}

/// A GitHub App installation connected to a house: an owner proved, with their GitHub user
/// token, that they can reach it. Only connected installations may be named on the house's
/// environments, and dispatch mints tokens only for them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GitHubConnection {
    /// The house.
    pub house_id: HouseId,
    /// The installation's id on GitHub.
    pub installation_id: i64,
    /// The account (organisation or user) the App is installed on: every repository a token
    /// is minted for must belong to it.
    pub account_login: String,
    /// The GitHub user who proved access.
    pub github_login: String,
    /// The arbe user who connected it, while that user exists.
    pub connected_by: Option<UserId>,
    /// When.
    pub connected_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_listed_once() {
        for (i, action) in Action::ALL.iter().enumerate() {
            assert!(!Action::ALL[..i].contains(action), "{action:?} twice");
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

    #[test]
    fn quotas_take_overrides_and_name_themselves() {
        let defaults = Quotas { sandboxes: Some(10), concurrent_dispatches: Some(4), workspace_bytes: None };
        let house = Quotas { sandboxes: Some(2), ..Quotas::default() };
        let effective = defaults.with(house);
        assert_eq!(effective, Quotas { sandboxes: Some(2), concurrent_dispatches: Some(4), workspace_bytes: None });
        let err = QuotaExceeded { quota: QuotaKind::Sandboxes, limit: 2 };
        assert_eq!(
            err.to_string(),
            "quota sandboxes reached: the house may have at most 2 sandboxes that are not destroyed"
        );
        assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
    }
}
