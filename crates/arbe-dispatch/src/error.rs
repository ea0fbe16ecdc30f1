//! The crate's error type. No variant carries a secret value.

use arbe_core::{Classify, ErrorKind, Forbidden, InvalidInput};
use arbe_env::EnvError;
use arbe_store::StoreError;

/// What went wrong posting to, cancelling or following a thread.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DispatchError {
    /// The input broke a rule.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// The member's role does not allow the action.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Environments failed.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// The vault failed.
    #[error(transparent)]
    Vault(#[from] arbe_vault::VaultError),
}

impl Classify for DispatchError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) => ErrorKind::InvalidInput,
            Self::Forbidden(_) => ErrorKind::Forbidden,
            Self::Store(err) => err.kind(),
            Self::Env(err) => err.kind(),
            Self::Vault(err) => err.kind(),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = DispatchError> = std::result::Result<T, E>;
