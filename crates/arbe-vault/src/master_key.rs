//! The master key (KEK): 256 bits, given to the vault by its caller. The binaries read it from
//! `ARBE_MASTER_KEY` (base64) or from `~/.arbe/master.key` through [`MasterKey::load_or_create`].

use std::{
    fs,
    io::Write,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::Path,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{
    VaultError,
    aead::{Cipher, KEY_LEN, generate_key},
};

/// A master key and its public id (a fingerprint that names it in `house_keys.kek_id`).
#[derive(Clone)]
pub struct MasterKey {
    cipher: Cipher,
    id: String,
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey").field("id", &self.id).finish_non_exhaustive()
    }
}

impl MasterKey {
    /// A new random master key.
    pub fn generate() -> Self {
        Self::from_bytes(generate_key())
    }

    /// Wraps 32 key bytes.
    pub fn from_bytes(key: Zeroizing<[u8; KEY_LEN]>) -> Self {
        let mut hash = Sha256::new();
        hash.update(b"arbe.master-key-id.v1\0");
        hash.update(key.as_slice());
        let digest = hash.finalize();
        let id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Self { cipher: Cipher::new(&key), id, key }
    }

    /// Parses the standard base64 of 32 bytes (what `ARBE_MASTER_KEY` holds).
    pub fn from_base64(text: &str) -> Result<Self, VaultError> {
        let bytes = Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| VaultError::MasterKeyFormat)?);
        let key: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| VaultError::MasterKeyFormat)?;
        Ok(Self::from_bytes(Zeroizing::new(key)))
    }

    /// The key as standard base64, for writing it to a key file or a secret store.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.key.as_slice()))
    }

    /// The key's public fingerprint: 16 hex digits, safe to log.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn cipher(&self) -> &Cipher {
        &self.cipher
    }

    /// Loads the key file at `path`, or creates it (mode 0600, parent folder 0700) with a new
    /// random key when it does not exist. Refuses a file that its group or others can read or
    /// write. Returns the key and whether it was just created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), VaultError> {
        let file_error = |reason: String| VaultError::MasterKeyFile { path: path.display().to_string(), reason };
        match fs::metadata(path) {
            Ok(meta) => {
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(file_error(format!(
                        "is accessible to group or others (mode {mode:04o}); run `chmod 600 {}`",
                        path.display()
                    )));
                }
                let text = Zeroizing::new(fs::read_to_string(path).map_err(|err| file_error(err.to_string()))?);
                let key = Self::from_base64(&text).map_err(|_| file_error("must hold 32 bytes in base64".into()))?;
                Ok((key, false))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(parent)
                        .map_err(|err| file_error(format!("cannot create its folder: {err}")))?;
                }
                let key = Self::generate();
                let created = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path);
                match created {
                    Ok(mut file) => {
                        file.write_all(key.to_base64().as_bytes())
                            .and_then(|()| file.write_all(b"\n"))
                            .and_then(|()| file.sync_all())
                            .map_err(|err| file_error(err.to_string()))?;
                        tracing::info!(path = %path.display(), key_id = key.id(), "created a new master key file");
                        Ok((key, true))
                    }
                    // Another process created it first: use theirs.
                    Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Self::load_or_create(path),
                    Err(err) => Err(file_error(err.to_string())),
                }
            }
            Err(err) => Err(file_error(err.to_string())),
        }
    }
}

/// The master key in use and the ones before it, which the vault still accepts for opening
/// data keys until a master-key rotation has rewrapped them all.
#[derive(Clone, Debug)]
pub struct MasterKeys {
    /// Wraps every new data key, and every data key a rotation touches.
    pub current: MasterKey,
    /// Older keys, for data keys not yet rewrapped.
    pub previous: Vec<MasterKey>,
}

impl MasterKeys {
    /// Just one key.
    pub fn new(current: MasterKey) -> Self {
        Self { current, previous: Vec::new() }
    }

    pub(crate) fn by_id(&self, id: &str) -> Option<&MasterKey> {
        std::iter::once(&self.current).chain(&self.previous).find(|key| key.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_created_0600_and_loaded_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("home/.arbe/master.key");
        let (created, was_created) = MasterKey::load_or_create(&path).unwrap();
        assert!(was_created);
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        let (loaded, was_created) = MasterKey::load_or_create(&path).unwrap();
        assert!(!was_created);
        assert_eq!(loaded.id(), created.id());
    }

    #[test]
    fn key_file_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        MasterKey::load_or_create(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = MasterKey::load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("accessible to group or others (mode 0644)"), "{err}");
        assert!(err.contains("chmod 600"), "{err}");
    }

    #[test]
    fn base64_key_must_be_32_bytes() {
        let key = MasterKey::generate();
        assert_eq!(MasterKey::from_base64(&key.to_base64()).unwrap().id(), key.id());
        let err = MasterKey::from_base64("c2hvcnQ=").unwrap_err().to_string();
        assert_eq!(err, "invalid master key: must be 32 bytes in standard base64");
        assert!(!format!("{key:?}").contains(key.to_base64().as_str()));
    }
}
