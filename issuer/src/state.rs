//! The issuer's state directory: every role's keys (PKCS#8 PEM, mode 0600), the CA, the Key
//! Store and the provenance log live there, created on first use. The directory is 0700 and
//! key files 0600 whatever the umask (set explicitly, and tightened when found looser); a key
//! file that group or others may read is refused, with the `chmod` that fixes it: whoever could
//! read it could sign as this issuer. Several processes may share
//! one directory (two `twi run`s, a `twi serve` and a `twi keystore provision`): whatever is
//! check-then-write happens under an exclusive lock on the directory.

use std::fs;
use std::path::{Path, PathBuf};

use p384::ecdsa::SigningKey;
use p384::elliptic_curve::Generate;
use p384::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};

use crate::error::IssuerError;

/// An exclusive lock on a state directory (released on drop): creating keys and certificates
/// is check-then-write, which two processes starting together on a fresh directory would
/// otherwise interleave, leaving a key that does not match its certificate.
pub(crate) fn lock(dir: &Path) -> Result<fs::File, IssuerError> {
    let path = dir.join(".twi-state.lock");
    let err = |e: std::io::Error| IssuerError::State(path.clone(), e.to_string());
    let file = fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(err)?;
    file.lock().map_err(err)?;
    Ok(file)
}

/// Creates `dir` (and its missing parents) accessible to its owner only, and tightens an
/// existing one to 0700.
pub(crate) fn private_dir(dir: &Path) -> Result<(), IssuerError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let err = |e: std::io::Error| IssuerError::State(dir.to_path_buf(), e.to_string());
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(err)?;
    if fs::metadata(dir).map_err(err)?.permissions().mode() & 0o777 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    Ok(())
}

/// Writes a secret file readable by its owner only (0600, also when it existed before).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), IssuerError> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let err = |e: std::io::Error| IssuerError::State(PathBuf::from(path), e.to_string());
    let mut file =
        fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).map_err(err)?;
    file.set_permissions(fs::Permissions::from_mode(0o600)).map_err(err)?;
    file.write_all(bytes).map_err(err)
}

/// Reads a key file, refusing one that group or others may read.
pub(crate) fn read_secret(path: &Path) -> Result<zeroize::Zeroizing<String>, IssuerError> {
    use std::os::unix::fs::PermissionsExt;
    let mode =
        fs::metadata(path).map_err(|e| IssuerError::State(path.to_path_buf(), e.to_string()))?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(IssuerError::State(
            path.to_path_buf(),
            format!(
                "this key is readable by group or others (mode {:03o}), so it is refused: anyone who read it could sign as this issuer; make it private with `chmod 600 {}` (and replace it if others may have read it)",
                mode & 0o777,
                path.display()
            ),
        ));
    }
    read(path).map(zeroize::Zeroizing::new)
}

/// Reads a state file as text, naming it when it cannot.
pub(crate) fn read(path: &Path) -> Result<String, IssuerError> {
    fs::read_to_string(path).map_err(|e| IssuerError::State(path.to_path_buf(), e.to_string()))
}

/// A signing key the state directory keeps as a PKCS#8 PEM file.
pub(crate) trait StateKey: DecodePrivateKey + EncodePrivateKey + Generate {
    /// Its curve, for messages.
    const CURVE: &'static str;
}

impl StateKey for SigningKey {
    const CURVE: &'static str = "P-384";
}

impl StateKey for p256::ecdsa::SigningKey {
    const CURVE: &'static str = "P-256";
}

/// Loads the P-384 key `name` (PKCS#8 PEM) from `dir`, or creates it (mode 0600).
pub(crate) fn load_or_create_key(dir: &Path, name: &str) -> Result<SigningKey, IssuerError> {
    load_or_create(dir, name)
}

/// Loads the key `name` (PKCS#8 PEM, on `K`'s curve) from `dir`, or creates it (mode 0600).
pub(crate) fn load_or_create<K: StateKey>(dir: &Path, name: &str) -> Result<K, IssuerError> {
    private_dir(dir)?;
    let _lock = lock(dir)?;
    let path = dir.join(name);
    if path.exists() {
        return K::from_pkcs8_pem(&read_secret(&path)?).map_err(|e| {
            IssuerError::State(path.clone(), format!("not a {} PKCS#8 key ({e}); restore it or remove it", K::CURVE))
        });
    }
    let key = K::try_generate().map_err(|_| IssuerError::Rng)?;
    let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(IssuerError::certificate)?;
    write_private(&path, pem.as_bytes())?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// Modes are set, not left to the umask: a loose directory or key file found is tightened
    /// (when written) or refused (when read), naming the `chmod` that fixes it.
    #[test]
    fn the_state_is_private_and_a_loose_key_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("issuer");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let key = load_or_create_key(&dir, "some-key.pem").unwrap();
        assert_eq!(mode(&dir), 0o700, "the state directory is tightened");
        let path = dir.join("some-key.pem");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(load_or_create_key(&dir, "some-key.pem").unwrap(), key);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let error = load_or_create_key(&dir, "some-key.pem").unwrap_err().to_string();
        assert!(error.contains("mode 644") && error.contains(&format!("chmod 600 {}", path.display())), "{error}");
        write_private(&path, b"rewritten").unwrap();
        assert_eq!(mode(&path), 0o600, "rewriting an existing file makes it private");
        // A P-256 key (the ES256 WIT key) is kept the same way; a P-384 file is not one.
        let p256: p256::ecdsa::SigningKey = load_or_create(&dir, "p256-key.pem").unwrap();
        assert_eq!(mode(&dir.join("p256-key.pem")), 0o600);
        assert_eq!(load_or_create::<p256::ecdsa::SigningKey>(&dir, "p256-key.pem").unwrap(), p256);
        fs::set_permissions(dir.join("p256-key.pem"), fs::Permissions::from_mode(0o640)).unwrap();
        let error = load_or_create::<p256::ecdsa::SigningKey>(&dir, "p256-key.pem").unwrap_err().to_string();
        assert!(error.contains("mode 640"), "{error}");
        load_or_create_key(&dir, "other-key.pem").unwrap();
        let error = load_or_create::<p256::ecdsa::SigningKey>(&dir, "other-key.pem").unwrap_err().to_string();
        assert!(error.contains("not a P-256 PKCS#8 key"), "{error}");
        let fresh = root.path().join("a/b");
        private_dir(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o700);
    }
}
