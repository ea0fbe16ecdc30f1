//! The crate's error type. No variant carries a secret value or a token.

use arbe_core::{Classify, EnvironmentName, ErrorKind, Forbidden, InvalidInput, SecretName};
use arbe_runtime::RuntimeError;
use arbe_store::StoreError;
use arbe_vault::VaultError;

/// Why a binding could not be resolved for a dispatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindingProblem {
    /// No secret of that name exists in the house.
    Missing,
    /// The secret has audience `capability`: the control plane uses it, sandboxes never see it.
    CapabilityOnly,
    /// The secret is not shared, and the dispatch was not posted by its author.
    NotShared,
}

impl BindingProblem {
    /// Why a secret cannot be injected into a sandbox for a dispatch posted by `poster`
    /// (`None`: it can). A non-shared secret serves only its author's own dispatches
    /// ([`arbe_core::SecretMeta::usable_by`]).
    pub fn of(secret: Option<&arbe_core::SecretMeta>, poster: Option<arbe_core::MemberId>) -> Option<Self> {
        match secret {
            None => Some(Self::Missing),
            Some(meta) if meta.audience == arbe_core::Audience::Capability => Some(Self::CapabilityOnly),
            Some(meta) if !poster.is_some_and(|poster| meta.usable_by(poster)) => Some(Self::NotShared),
            Some(_) => None,
        }
    }

    /// What a user can do about it.
    pub fn hint(self, name: &arbe_core::SecretName) -> String {
        match self {
            Self::Missing => format!("printf '%s' \"$VALUE\" | arbe secret set {name}"),
            Self::CapabilityOnly => "set it again with --audience environment".into(),
            Self::NotShared => "its author can share it: arbe secret set --shared".into(),
        }
    }

    /// The problem in words.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Missing => "is not set in the house",
            Self::CapabilityOnly => "has audience capability and is never injected into sandboxes",
            Self::NotShared => "is private to another member: only dispatches its author posts can use it",
        }
    }
}

/// What went wrong with an environment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// The input broke a rule.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// The member's role does not allow the action.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// Required bindings cannot be resolved; every one of them is named.
    #[error("environment {environment} cannot dispatch: {}", describe_problems(.problems))]
    UnresolvedSecrets {
        /// The environment.
        environment: EnvironmentName,
        /// Each required binding that failed, and why.
        problems: Vec<(SecretName, BindingProblem)>,
    },
    /// The repository is not in the environment's `allowed_repos`.
    #[error("repo {repo} is not in the allowed repos of environment {environment}")]
    RepoNotAllowed {
        /// The environment.
        environment: EnvironmentName,
        /// The repository (a canonical URL; never carries credentials).
        repo: String,
    },
    /// The runtime does not keep houses apart, and using it here would let one house reach
    /// another.
    #[error("runtime {runtime} cannot be used here: {rule}")]
    NotIsolated {
        /// The runtime.
        runtime: &'static str,
        /// Why not.
        rule: String,
    },
    /// The request names a runtime and a sandbox on another runtime.
    #[error("runtime conflicts with the sandbox: sandbox {sandbox} runs on {runtime}; name that runtime or none")]
    RuntimeMismatch {
        /// The sandbox's name.
        sandbox: String,
        /// Its runtime.
        runtime: String,
    },
    /// The environment names a GitHub installation its house has not connected.
    #[error(
        "GitHub installation {installation} is not connected to this house: an owner connects it through the GitHub \
         App's install flow (arbe github connect)"
    )]
    GitHubNotConnected {
        /// The installation.
        installation: i64,
    },
    /// The signed-in GitHub user cannot reach the installation.
    #[error("GitHub user {login} cannot reach installation {installation} of the app")]
    GitHubNotReachable {
        /// The installation.
        installation: i64,
        /// The GitHub user.
        login: String,
    },
    /// The member reached for another member's non-shared secret.
    #[error(transparent)]
    Private(#[from] arbe_core::PrivateSecret),
    /// No GitHub App is configured.
    #[error("the GitHub App is not configured: set GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY on the server")]
    GitHubNotConfigured,
    /// The GitHub App's settings are unusable.
    #[error("invalid GitHub App setting {field}: {rule}")]
    GitHubConfig {
        /// The setting.
        field: &'static str,
        /// The rule it broke.
        rule: &'static str,
    },
    /// GitHub answered with an error, or could not be reached.
    #[error("github {operation}: {message}")]
    GitHub {
        /// What was attempted (`create installation token`).
        operation: &'static str,
        /// The HTTP status, when GitHub answered.
        status: Option<u16>,
        /// What GitHub said, or why it could not be reached.
        message: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The vault failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The runtime failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

fn describe_problems(problems: &[(SecretName, BindingProblem)]) -> String {
    let mut out = String::from("required secrets ");
    for (i, (name, problem)) in problems.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        out.push_str(name.as_str());
        out.push(' ');
        out.push_str(problem.describe());
    }
    out
}

impl Classify for EnvError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) | Self::UnresolvedSecrets { .. } | Self::RepoNotAllowed { .. } => ErrorKind::InvalidInput,
            Self::Forbidden(_) | Self::Private(_) | Self::GitHubNotReachable { .. } => ErrorKind::Forbidden,
            // Like any object of another house: not found in this one.
            Self::GitHubNotConnected { .. } => ErrorKind::NotFound,
            Self::RuntimeMismatch { .. } => ErrorKind::Conflict,
            Self::GitHubNotConfigured => ErrorKind::Unsupported,
            Self::GitHubConfig { .. } | Self::NotIsolated { .. } => ErrorKind::Misconfigured,
            Self::GitHub { status, .. } => match status {
                None => ErrorKind::Unavailable,
                Some(401) => ErrorKind::Unauthenticated,
                Some(403) => ErrorKind::Forbidden,
                Some(404) => ErrorKind::NotFound,
                Some(422) => ErrorKind::InvalidInput,
                Some(429) => ErrorKind::RateLimited,
                Some(s) if *s >= 500 => ErrorKind::Unavailable,
                Some(_) => ErrorKind::Internal,
            },
            Self::Store(err) => err.kind(),
            Self::Vault(err) => err.kind(),
            Self::Runtime(err) => err.kind(),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = EnvError> = std::result::Result<T, E>;
