#![doc = include_str!("../README.md")]

mod diagnose;
mod environments;
mod error;
mod github;
mod keys;
mod resolve;
mod sandboxes;

use std::sync::Arc;

use arbe_core::RuntimeName;
use arbe_runtime::RuntimeRegistry;
use arbe_store::{Actor, Store};
use arbe_vault::Vault;

pub use diagnose::EnvDiagnosis;
pub use environments::{CreateEnvironment, EnvironmentPatch};
pub use error::{BindingProblem, EnvError, Result};
pub use github::{
    GITHUB_API_URL, GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY, GitHubApp, GitHubAppConfig, Installation,
    InstallationAccount, InstallationToken,
};
pub use keys::{ModelKey, WorkerKeys};
pub use resolve::Resolution;
pub use sandboxes::{EnvVarName, ReadySandbox, SandboxDiagnosis, SandboxPing, Sandboxes};

// Re-exported so an embedding service needs only this crate for the common calls.
pub use arbe_core::environment::BindOutcome;
pub use arbe_core::{EnvironmentRef, SandboxRef};
pub use arbe_runtime::{Check, CheckStatus};

/// What the environments service needs besides the store, vault and runtimes.
#[derive(Clone, Debug)]
pub struct EnvConfig {
    /// The runtime an environment gets when its creator names neither a runtime nor a sandbox.
    pub default_runtime: RuntimeName,
    /// The GitHub App, when `GITHUB_APP_ID` and `GITHUB_APP_PRIVATE_KEY` are set.
    pub github: Option<Arc<GitHubApp>>,
    /// Where model keys come from besides house secrets: the worker's environment and
    /// `~/.arbe/keys/`.
    pub worker_keys: WorkerKeys,
}

/// Environments of houses: seed 001's operations, resolution at dispatch, sandboxes reached on
/// demand, and the diagnose preflight. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Environments {
    store: Store,
    vault: Vault,
    runtimes: Arc<RuntimeRegistry>,
    config: EnvConfig,
}

impl Environments {
    /// The service over `store`, `vault` and the configured `runtimes`.
    pub fn new(store: Store, vault: Vault, runtimes: Arc<RuntimeRegistry>, config: EnvConfig) -> Self {
        Self { store, vault, runtimes, config }
    }

    /// The sandboxes service over the same store and runtimes.
    pub fn sandboxes(&self) -> Sandboxes {
        Sandboxes::new(self.clone())
    }

    /// The runtime an environment gets when its creator names neither a runtime nor a sandbox.
    pub fn default_runtime(&self) -> &RuntimeName {
        &self.config.default_runtime
    }

    fn github(&self) -> Result<&GitHubApp> {
        self.config.github.as_deref().ok_or(EnvError::GitHubNotConfigured)
    }

    /// The installations of the GitHub App; [`EnvError::GitHubNotConfigured`] (kind
    /// `Unsupported`, HTTP 501) when there is none.
    pub async fn github_installations(&self, actor: &Actor) -> Result<Vec<Installation>> {
        actor.require(arbe_core::Action::Read)?;
        self.github()?.list_installations().await
    }
}
