//! Sealing: authenticated encryption (ChaCha20-Poly1305) of the secrets the
//! service must show again later (`sluice config` prints a credential's
//! password and client key), so the catalog never holds them in clear.
//!
//! The key is 32 random bytes in a file beside the data (`secrets.key`),
//! created readable only by its owner on first start. Whoever has both the
//! catalog and that file can read the secrets; the catalog alone cannot.

use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use crate::error::{Result, TenancyError};

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;

/// Seals and opens secrets with one key.
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    pub fn new(key: [u8; KEY_LEN]) -> Sealer {
        Sealer {
            cipher: ChaCha20Poly1305::new(&Key::from(key)),
        }
    }

    /// Reads the key file, creating it (mode 0600) with a fresh key if it
    /// does not exist.
    pub fn load_or_create(path: &Path) -> Result<Sealer> {
        let fail = |what: &str, e: std::io::Error| {
            TenancyError::Seal(format!("{what} {}: {e}", path.display()))
        };
        match std::fs::read(path) {
            Ok(bytes) => {
                let key: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
                    TenancyError::Seal(format!(
                        "{} holds {} bytes, not a {KEY_LEN}-byte key; restore it from a backup (deleting it makes stored secrets unreadable)",
                        path.display(),
                        bytes.len()
                    ))
                })?;
                Ok(Sealer::new(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; KEY_LEN] = rand::random();
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let mut file = options.open(path).map_err(|e| fail("creating", e))?;
                file.write_all(&key).map_err(|e| fail("writing", e))?;
                file.sync_all().map_err(|e| fail("syncing", e))?;
                Ok(Sealer::new(key))
            }
            Err(e) => Err(fail("reading", e)),
        }
    }

    /// Base64 of a fresh nonce followed by the ciphertext and its tag.
    pub fn seal(&self, plaintext: &[u8]) -> Result<String> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut out = nonce.to_vec();
        let sealed = self
            .cipher
            .encrypt(&Nonce::from(nonce), plaintext)
            .map_err(|_| TenancyError::Seal("sealing a secret failed".into()))?;
        out.extend_from_slice(&sealed);
        Ok(B64.encode(out))
    }

    /// The plaintext of [`Sealer::seal`]'s output; fails if it was sealed
    /// with another key or altered.
    pub fn open(&self, sealed: &str) -> Result<Vec<u8>> {
        let bytes = B64
            .decode(sealed)
            .map_err(|e| TenancyError::Seal(format!("a sealed secret is not base64: {e}")))?;
        if bytes.len() < NONCE_LEN {
            return Err(TenancyError::Seal("a sealed secret is truncated".into()));
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().unwrap_or([0; NONCE_LEN]);
        self.cipher
            .decrypt(&Nonce::from(nonce), ciphertext)
            .map_err(|_| {
                TenancyError::Seal(
                    "a sealed secret does not open with this secrets.key (was the key file replaced?); rotate the credential to issue a new one".into(),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_round_trip_and_refuse_other_keys_and_tampering() {
        let a = Sealer::new([1; 32]);
        let sealed = a.seal(b"hunter2").unwrap();
        assert!(!sealed.contains("hunter2"));
        assert_eq!(a.open(&sealed).unwrap(), b"hunter2");
        // A fresh nonce each time.
        assert_ne!(a.seal(b"hunter2").unwrap(), sealed);
        assert!(Sealer::new([2; 32]).open(&sealed).is_err());
        let mut bytes = B64.decode(&sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(a.open(&B64.encode(bytes)).is_err());
        assert!(a.open("AAAA").is_err());
    }

    #[test]
    fn key_file_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.key");
        let sealed = Sealer::load_or_create(&path).unwrap().seal(b"x").unwrap();
        assert_eq!(std::fs::read(&path).unwrap().len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = Sealer::load_or_create(&path).unwrap();
        assert_eq!(again.open(&sealed).unwrap(), b"x");
        std::fs::write(&path, b"short").unwrap();
        assert!(Sealer::load_or_create(&path).is_err());
    }
}
