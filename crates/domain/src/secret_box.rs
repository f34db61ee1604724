//! Sealing of secrets that must be used again (webhook signing secrets, AWS
//! secret keys), so the database never holds them in the clear.
//!
//! XChaCha20-Poly1305 with a random 24-byte nonce per value, keyed by the
//! server's 32-byte secret key. A sealed value is `v1:` + base64(nonce ‖
//! ciphertext ‖ tag); opening it with another key fails rather than giving
//! garbage.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::SecretString;
use sha2::{Digest, Sha256};

const VERSION: &str = "v1:";
const NONCE_BYTES: usize = 24;

/// Seals and opens secrets with the server's key. `Debug` shows nothing.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
    /// SHA-256 of the key, the root from which other keys are derived.
    derivation_root: [u8; 32],
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(redacted)")
    }
}

/// Why a key or a sealed value was refused.
#[derive(Debug, thiserror::Error)]
pub enum SecretBoxError {
    #[error("the secret key must be the base64 of exactly 32 bytes")]
    MalformedKey,
    #[error("the sealed value is damaged or was sealed with another secret key")]
    CannotOpen,
}

impl SecretBox {
    /// A box with a 32-byte key.
    pub fn new(key: &[u8; 32]) -> Self {
        SecretBox {
            cipher: XChaCha20Poly1305::new(key.into()),
            derivation_root: Sha256::new()
                .chain_update(b"switchboard-key-derivation-v1\0")
                .chain_update(key)
                .finalize()
                .into(),
        }
    }

    /// A box with a key given as base64 text.
    pub fn from_base64(key: &str) -> Result<Self, SecretBoxError> {
        let bytes = BASE64
            .decode(key.trim())
            .map_err(|_| SecretBoxError::MalformedKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SecretBoxError::MalformedKey)?;
        Ok(SecretBox::new(&key))
    }

    /// A key for another purpose (signing file URLs, say), derived from the
    /// server's key: the same on every instance that shares the key, and
    /// telling nothing of the key or of keys for other purposes.
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        Sha256::new()
            .chain_update(self.derivation_root)
            .chain_update((purpose.len() as u64).to_be_bytes())
            .chain_update(purpose.as_bytes())
            .finalize()
            .into()
    }

    /// A new random key as base64 text.
    pub fn generate_key() -> String {
        BASE64.encode(XChaCha20Poly1305::generate_key(&mut OsRng))
    }

    /// Seals a secret for storage.
    pub fn seal(&self, secret: &str) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(&nonce, secret.as_bytes())
            .expect("encryption of an in-memory value cannot fail");
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        format!("{VERSION}{}", BASE64.encode(bytes))
    }

    /// Opens a sealed secret.
    pub fn open(&self, sealed: &str) -> Result<SecretString, SecretBoxError> {
        let bytes = sealed
            .strip_prefix(VERSION)
            .and_then(|encoded| BASE64.decode(encoded).ok())
            .filter(|bytes| bytes.len() > NONCE_BYTES)
            .ok_or(SecretBoxError::CannotOpen)?;
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), ciphertext)
            .map_err(|_| SecretBoxError::CannotOpen)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| SecretBoxError::CannotOpen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn seals_and_opens_and_refuses_other_keys_and_damage() {
        let key = SecretBox::generate_key();
        let secret_box = SecretBox::from_base64(&key).unwrap();
        let sealed = secret_box.seal("whsec_abc");
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("whsec_abc"));
        assert_ne!(
            sealed,
            secret_box.seal("whsec_abc"),
            "a fresh nonce every time"
        );
        assert_eq!(
            secret_box.open(&sealed).unwrap().expose_secret(),
            "whsec_abc"
        );
        let other = SecretBox::from_base64(&SecretBox::generate_key()).unwrap();
        assert!(other.open(&sealed).is_err());
        let mut damaged = sealed.clone();
        damaged.pop();
        damaged.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(secret_box.open(&damaged).is_err());
        assert!(SecretBox::from_base64("c2hvcnQ=").is_err());
        assert_eq!(format!("{secret_box:?}"), "SecretBox(redacted)");
    }
}
