//! The issuer's state directory: every role's keys (PKCS#8 PEM, mode 0600), the CA, the Key
//! Store and the provenance log live there, created on first use. Several processes may share
//! one directory (two `twi run`s, a `twi serve` and a `twi keystore provision`): whatever is
//! check-then-write happens under an exclusive lock on the directory.

use std::fs;
use std::path::{Path, PathBuf};

use p384::ecdsa::SigningKey;
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

/// Writes a secret file readable by its owner only.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), IssuerError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |e: std::io::Error| IssuerError::State(PathBuf::from(path), e.to_string());
    let mut file =
        fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).map_err(err)?;
    file.write_all(bytes).map_err(err)
}

/// Reads a state file as text, naming it when it cannot.
pub(crate) fn read(path: &Path) -> Result<String, IssuerError> {
    fs::read_to_string(path).map_err(|e| IssuerError::State(path.to_path_buf(), e.to_string()))
}

/// Loads the P-384 key `name` (PKCS#8 PEM) from `dir`, or creates it (mode 0600).
pub(crate) fn load_or_create_key(dir: &Path, name: &str) -> Result<SigningKey, IssuerError> {
    fs::create_dir_all(dir).map_err(|e| IssuerError::State(dir.to_path_buf(), e.to_string()))?;
    let _lock = lock(dir)?;
    let path = dir.join(name);
    if path.exists() {
        return SigningKey::from_pkcs8_pem(&read(&path)?).map_err(|e| {
            IssuerError::State(path.clone(), format!("not a P-384 PKCS#8 key ({e}); restore it or remove it"))
        });
    }
    use p384::elliptic_curve::Generate;
    let key = SigningKey::try_generate().map_err(|_| IssuerError::Rng)?;
    let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(IssuerError::certificate)?;
    write_private(&path, pem.as_bytes())?;
    Ok(key)
}
