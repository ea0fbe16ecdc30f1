#![doc = include_str!("../README.md")]

pub mod aead;
mod error;
mod master_key;
mod vault;

pub use error::{Result, VaultError};
pub use master_key::{MasterKey, MasterKeys};
pub use vault::{MAX_SECRET_CHARS, ResolvedSecret, RotationReport, SetOptions, Vault};
