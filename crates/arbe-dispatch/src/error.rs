//! The crate's error type. No variant carries a secret value.

use arbe_core::{Action, Classify, ErrorKind, InvalidInput, Role};
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
    #[error("a {role} may not {} (it takes {needs})", action.describe())]
    Forbidden {
        /// The member's role.
        role: Role,
        /// What was attempted.
        action: Action,
        /// The least role that may.
        needs: Role,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Environments failed.
    #[error(transparent)]
    Env(#[from] EnvError),
}

impl Classify for DispatchError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) => ErrorKind::InvalidInput,
            Self::Forbidden { .. } => ErrorKind::Forbidden,
            Self::Store(err) => err.kind(),
            Self::Env(err) => err.kind(),
        }
    }
}

pub(crate) fn require(actor: &arbe_core::Member, action: Action) -> Result<(), DispatchError> {
    if actor.role.allows(action) {
        Ok(())
    } else {
        Err(DispatchError::Forbidden { role: actor.role, action, needs: action.min_role() })
    }
}

/// The crate's result type.
pub type Result<T, E = DispatchError> = std::result::Result<T, E>;
