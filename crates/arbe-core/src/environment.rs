//! Environments (seed 001): one sandbox, a repo policy and the names of the secrets it needs.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    ids::{EnvironmentId, HouseId, MemberId, SandboxId},
    names::{EnvironmentName, RepoRef, RuntimeName, SecretName},
};

/// A secret an environment needs, by name; the value resolves at dispatch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecretBinding {
    /// The house secret's name.
    pub name: SecretName,
    /// Missing and required fails a dispatch; missing and optional is a warning.
    pub required: bool,
}

/// What binding a secret did to an environment's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindOutcome {
    /// The binding is new.
    Added,
    /// The binding existed with the same `required` flag: nothing changed.
    Unchanged,
    /// The binding existed and its `required` flag flipped.
    Changed,
}

/// Adds or updates a binding (seed 001: idempotent; a different `--optional` upgrades or
/// downgrades).
pub fn bind_secret(bindings: &mut Vec<SecretBinding>, name: SecretName, required: bool) -> BindOutcome {
    match bindings.iter_mut().find(|b| b.name == name) {
        Some(b) if b.required == required => BindOutcome::Unchanged,
        Some(b) => {
            b.required = required;
            BindOutcome::Changed
        }
        None => {
            bindings.push(SecretBinding { name, required });
            BindOutcome::Added
        }
    }
}

/// A named execution context in a house.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Environment {
    /// Its id.
    pub id: EnvironmentId,
    /// The house it belongs to.
    pub house_id: HouseId,
    /// Who created it; its non-shared secrets are the ones it may resolve.
    pub author_id: MemberId,
    /// Unique in the house without regard to case, among live environments.
    pub name: EnvironmentName,
    /// The runtime its sandbox lives on.
    pub runtime: RuntimeName,
    /// Its sandbox.
    pub sandbox_id: SandboxId,
    /// The repository to clone by default.
    pub default_repo: Option<RepoRef>,
    /// The only repositories a dispatch may clone or push.
    pub allowed_repos: Vec<RepoRef>,
    /// GitHub App installation to mint `GITHUB_TOKEN` from.
    pub github_installation_id: Option<i64>,
    /// Secrets it needs, by name.
    pub secret_bindings: Vec<SecretBinding>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Set by the (soft) delete; a deleted environment is hidden from lists and lookups.
    pub deleted_at: Option<DateTime<Utc>>,
}

impl Environment {
    /// The copy a thread keeps, so later edits or teardown never rewrite its history.
    pub fn snapshot(&self) -> EnvironmentSnapshot {
        EnvironmentSnapshot {
            id: self.id,
            name: self.name.clone(),
            runtime: self.runtime.clone(),
            sandbox_id: self.sandbox_id,
            default_repo: self.default_repo.clone(),
            allowed_repos: self.allowed_repos.clone(),
            github_installation_id: self.github_installation_id,
            secret_bindings: self.secret_bindings.clone(),
            author_id: self.author_id,
        }
    }

    /// Whether a dispatch in this environment may touch `repo`.
    pub fn allows_repo(&self, repo: &RepoRef) -> bool {
        self.allowed_repos.iter().any(|r| r.same_repo(repo))
    }
}

/// An environment as a thread saw it when it was created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnvironmentSnapshot {
    /// The environment's id (the row itself may since be gone).
    pub id: EnvironmentId,
    /// Its name then.
    pub name: EnvironmentName,
    /// Its runtime then.
    pub runtime: RuntimeName,
    /// Its sandbox then.
    pub sandbox_id: SandboxId,
    /// Its default repository then.
    pub default_repo: Option<RepoRef>,
    /// Its repo policy then.
    pub allowed_repos: Vec<RepoRef>,
    /// Its GitHub App installation then.
    pub github_installation_id: Option<i64>,
    /// Its bindings then.
    pub secret_bindings: Vec<SecretBinding>,
    /// Its author, whose non-shared secrets it may resolve.
    pub author_id: MemberId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_secret_is_idempotent_and_flips_required() {
        let name = SecretName::parse("GITHUB_TOKEN").unwrap();
        let mut bindings = Vec::new();
        assert_eq!(bind_secret(&mut bindings, name.clone(), true), BindOutcome::Added);
        assert_eq!(bind_secret(&mut bindings, name.clone(), true), BindOutcome::Unchanged);
        assert_eq!(bind_secret(&mut bindings, name.clone(), false), BindOutcome::Changed);
        assert_eq!(bindings, vec![SecretBinding { name, required: false }]);
    }
}
