//! The vault's error type. No variant carries a secret value; decryption failures carry which
//! row failed and nothing about why.

use arbe_core::{Classify, ErrorKind, Forbidden, InvalidInput, PrivateSecret, SecretName};
use arbe_store::StoreError;

/// What went wrong in the vault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The input broke a rule.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// The member's role does not allow the action.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// The secret is another member's non-shared secret.
    #[error(transparent)]
    Private(#[from] PrivateSecret),
    /// A secret's ciphertext did not authenticate: it was tampered with, copied from another
    /// row or house, or sealed under a different key.
    #[error(
        "secret {name} (version {version}) failed to decrypt: its ciphertext was altered or belongs to another row"
    )]
    SecretTampered {
        /// The secret.
        name: SecretName,
        /// The version that failed.
        version: i64,
    },
    /// A wrapped data key did not authenticate under the master key that claims to wrap it.
    #[error(
        "data key version {version} of house {house} failed to unwrap: the wrapped key was altered or belongs to another house"
    )]
    HouseKeyTampered {
        /// The house.
        house: arbe_core::HouseId,
        /// The data key version.
        version: i64,
    },
    /// A data key is wrapped by a master key the vault was not given.
    #[error("a data key is wrapped by master key {kek_id}, which is not configured; pass it as a previous master key")]
    UnknownMasterKey {
        /// The fingerprint of the missing key.
        kek_id: String,
    },
    /// A secret points at a data key version that does not exist.
    #[error("data key version {version} of house {house} is missing")]
    MissingHouseKey {
        /// The house.
        house: arbe_core::HouseId,
        /// The version.
        version: i64,
    },
    /// The master key text is not 32 bytes of base64.
    #[error("invalid master key: must be 32 bytes in standard base64")]
    MasterKeyFormat,
    /// The master key file could not be used.
    #[error("master key file {path} {reason}")]
    MasterKeyFile {
        /// The file.
        path: String,
        /// Why not.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Classify for VaultError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) => ErrorKind::InvalidInput,
            Self::Forbidden(_) | Self::Private(_) => ErrorKind::Forbidden,
            Self::SecretTampered { .. } | Self::HouseKeyTampered { .. } | Self::MissingHouseKey { .. } => {
                ErrorKind::Internal
            }
            Self::UnknownMasterKey { .. } | Self::MasterKeyFormat | Self::MasterKeyFile { .. } => {
                ErrorKind::Misconfigured
            }
            Self::Store(err) => err.kind(),
        }
    }
}

/// The vault's result type.
pub type Result<T, E = VaultError> = std::result::Result<T, E>;
