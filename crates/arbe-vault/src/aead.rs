//! The one primitive the vault uses: AES-256-GCM with a fresh random 96-bit nonce per seal and a
//! 128-bit tag. Public so the Wycheproof vectors and the benchmark exercise exactly this code.

use aes_gcm::{
    Aes256Gcm,
    aead::{Aead, Generate, KeyInit, Payload},
};
use zeroize::Zeroizing;

/// The nonce length in bytes (96 bits).
pub const NONCE_LEN: usize = 12;
/// The key length in bytes (256 bits).
pub const KEY_LEN: usize = 32;

/// Opening failed: wrong key, nonce, associated data, or tampered ciphertext. Deliberately
/// carries no detail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenError;

/// An AES-256-GCM key ready to seal and open.
#[derive(Clone)]
pub struct Cipher(Aes256Gcm);

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher([redacted])")
    }
}

impl Cipher {
    /// A cipher for a 256-bit key.
    pub fn new(key: &[u8; KEY_LEN]) -> Self {
        Self(Aes256Gcm::new(key.into()))
    }

    /// Encrypts `plaintext` bound to `aad` under a fresh random nonce; returns the nonce and the
    /// ciphertext with its tag.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> ([u8; NONCE_LEN], Vec<u8>) {
        let nonce = aes_gcm::Nonce::<aes_gcm::aead::consts::U12>::generate();
        let ciphertext = self.seal_with_nonce(&nonce.into(), aad, plaintext);
        (nonce.into(), ciphertext)
    }

    /// Encrypts under a caller-chosen nonce. Only for known-answer tests: reusing a nonce under
    /// one key destroys GCM's security.
    pub fn seal_with_nonce(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        self.0
            .encrypt(nonce.into(), Payload { msg: plaintext, aad })
            .expect("AES-GCM encryption fails only past 64 GiB of plaintext")
    }

    /// Decrypts and authenticates. Any nonce that is not 96 bits is refused.
    pub fn open(&self, nonce: &[u8], aad: &[u8], ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        let nonce: &[u8; NONCE_LEN] = nonce.try_into().map_err(|_| OpenError)?;
        self.0.decrypt(nonce.into(), Payload { msg: ciphertext, aad }).map(Zeroizing::new).map_err(|_| OpenError)
    }
}

/// A fresh random 256-bit key.
pub fn generate_key() -> Zeroizing<[u8; KEY_LEN]> {
    let key = aes_gcm::Key::<Aes256Gcm>::generate();
    Zeroizing::new(key.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_with_fresh_nonces() {
        let cipher = Cipher::new(&generate_key());
        let (n1, c1) = cipher.seal(b"aad", b"hello");
        let (n2, c2) = cipher.seal(b"aad", b"hello");
        assert_ne!(n1, n2);
        assert_ne!(c1, c2);
        assert_eq!(cipher.open(&n1, b"aad", &c1).unwrap().as_slice(), b"hello");
        assert_eq!(cipher.open(&n1, b"other", &c1), Err(OpenError));
        assert_eq!(cipher.open(&n1[..8], b"aad", &c1), Err(OpenError));
    }
}
