//! Secrets at rest: password-type setting values and generated database passwords are sealed
//! before they enter the store (REFERENCE §11 Q31).
//!
//! Main decision: XChaCha20-Poly1305 with a random 24-byte nonce per value and one 32-byte key
//! kept in `<home>/secret.key` (mode 0600, created on first use). A stolen copy of the store alone
//! reveals no secret; the key file is the thing to protect (and to back up with the store).
//! Sealed values read `sealed:v1:<base64(nonce ‖ ciphertext)>`; a value without that prefix is
//! returned as it is, so stores written before sealing keep working.
//!
//! Known gap: the key is never rotated, and a home without its `secret.key` cannot open the
//! sealed values of its store. (`uniq` checks compare unsealed values: `settings::validate`.)
use fs_err::os::unix::fs::OpenOptionsExt as _;
use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore as _;

use crate::error::Error;

const PREFIX: &str = "sealed:v1:";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;

/// The sealing key of a home.
pub struct Vault {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(***)")
    }
}

impl Vault {
    /// Loads the key at `path`, creating it (0600) when it does not exist.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let key = match fs_err::read(path) {
            Ok(key) => key,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = vec![0u8; KEY_LEN];
                rand::rngs::OsRng.fill_bytes(&mut key);
                let mut file = fs_err::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)?;
                file.write_all(&key)?;
                file.sync_all()?;
                key
            }
            Err(e) => return Err(e.into()),
        };
        let cipher = XChaCha20Poly1305::new_from_slice(&key).map_err(|_| {
            Error::Failed(format!(
                "secret key `{}` is not {KEY_LEN} bytes long",
                path.display()
            ))
        })?;
        Ok(Self { cipher })
    }

    /// Seals `plain` for the store.
    pub fn seal(&self, plain: &str) -> Result<String, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), plain.as_bytes())
            .map_err(|_| Error::Failed("a secret could not be sealed for the store".into()))?;
        let mut raw = nonce.to_vec();
        raw.extend(sealed);
        Ok(format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(raw)
        ))
    }

    /// Opens a value written by [`Vault::seal`]; other values are returned unchanged.
    pub fn unseal(&self, text: &str) -> Result<String, Error> {
        let Some(encoded) = text.strip_prefix(PREFIX) else {
            return Ok(text.to_owned());
        };
        let bad = || {
            Error::Failed(
                "a sealed secret in the store cannot be opened with this home's `secret.key`"
                    .into(),
            )
        };
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(encoded)
            .map_err(|_| bad())?;
        if raw.len() < NONCE_LEN {
            return Err(bad());
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), sealed)
            .map_err(|_| bad())?;
        String::from_utf8(plain).map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trips_and_hides_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::open(&dir.path().join("secret.key")).unwrap();
        let sealed = vault.seal("p@ss wörd").unwrap();
        assert!(sealed.starts_with(PREFIX) && !sealed.contains("p@ss"));
        assert_ne!(
            sealed,
            vault.seal("p@ss wörd").unwrap(),
            "a fresh nonce per value"
        );
        assert_eq!(vault.unseal(&sealed).unwrap(), "p@ss wörd");
        assert_eq!(vault.unseal("plain").unwrap(), "plain");
        // The key persists: a second open reads the same key.
        let again = Vault::open(&dir.path().join("secret.key")).unwrap();
        assert_eq!(again.unseal(&sealed).unwrap(), "p@ss wörd");
    }

    #[test]
    fn another_key_or_tampering_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = Vault::open(&dir.path().join("a.key")).unwrap();
        let b = Vault::open(&dir.path().join("b.key")).unwrap();
        let sealed = a.seal("secret").unwrap();
        assert!(b.unseal(&sealed).is_err());
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(a.unseal(&tampered).is_err());
    }

    #[test]
    fn the_key_file_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        Vault::open(&path).unwrap();
        assert_eq!(
            fs_err::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
