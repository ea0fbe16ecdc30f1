#![doc = include_str!("../README.md")]

mod connect;
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
use arbe_store::Store;
use arbe_vault::Vault;

pub use diagnose::EnvDiagnosis;
pub use environments::{CreateEnvironment, EnvironmentPatch};
pub use error::{BindingProblem, EnvError, Result};
pub use github::{
    ConnectStart, GITHUB_API_URL, GITHUB_APP_CLIENT_ID, GITHUB_APP_CLIENT_SECRET, GITHUB_APP_ID,
    GITHUB_APP_PRIVATE_KEY, GITHUB_APP_SLUG, GITHUB_WEB_URL, GitHubApp, GitHubAppConfig, GitHubOAuthClient, GitHubUser,
    Installation, InstallationAccount, InstallationRepo, InstallationToken,
};
pub use keys::{KeyOrigin, ModelKey, OperatorKeys, WorkerKeys};
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
    /// Which houses those operator keys serve (every house by default).
    pub operator_keys: OperatorKeys,
}

impl EnvConfig {
    /// `default_runtime`, no GitHub App, no worker keys.
    pub fn new(default_runtime: RuntimeName) -> Self {
        Self { default_runtime, github: None, worker_keys: WorkerKeys::none(), operator_keys: OperatorKeys::default() }
    }
}

/// Environments of houses: seed 001's operations, resolution at dispatch, sandboxes reached on
/// demand, and the diagnose preflight. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Environments {
    store: Store,
    vault: Vault,
    runtimes: Arc<RuntimeRegistry>,
    config: EnvConfig,
    /// Installation tokens minted in this process, by sandbox, until they expire: a token an
    /// earlier dispatch left behind in the sandbox (in `.git/config`, say) is redacted by later
    /// ones while GitHub could still accept it.
    minted: Arc<std::sync::Mutex<std::collections::HashMap<arbe_core::SandboxId, Vec<github::InstallationToken>>>>,
}

impl Environments {
    /// The service over `store`, `vault` and the configured `runtimes`.
    pub fn new(store: Store, vault: Vault, runtimes: Arc<RuntimeRegistry>, config: EnvConfig) -> Self {
        Self { store, vault, runtimes, config, minted: Arc::default() }
    }

    /// The sandboxes service over the same store and runtimes.
    pub fn sandboxes(&self) -> Sandboxes {
        Sandboxes::new(self.clone())
    }

    /// The same service with another policy for the operator's own model keys.
    pub fn with_operator_keys(&self, operator_keys: OperatorKeys) -> Self {
        let mut copy = self.clone();
        copy.config.operator_keys = operator_keys;
        copy
    }

    /// The runtime an environment gets when its creator names neither a runtime nor a sandbox.
    pub fn default_runtime(&self) -> &RuntimeName {
        &self.config.default_runtime
    }

    /// The GitHub App; [`EnvError::GitHubNotConfigured`] (kind `Unsupported`, HTTP 501) when
    /// there is none.
    fn github(&self) -> Result<&GitHubApp> {
        self.config.github.as_deref().ok_or(EnvError::GitHubNotConfigured)
    }
}
