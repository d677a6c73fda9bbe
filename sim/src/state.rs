//! The simulated machine's state directory: a lock so concurrent runs on a fresh directory
//! agree on one machine, secret files readable by their owner only, and small hex files
//! (chip id, PPID) made once and read back afterwards.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::{SimError, random};

/// Creates `dir` and holds an exclusive lock on it until the returned file is dropped.
pub fn lock(dir: &Path) -> Result<fs::File, SimError> {
    fs::create_dir_all(dir).map_err(|e| SimError::state(dir, e))?;
    let path = dir.join(".twi-state.lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| SimError::state(&path, e))?;
    file.lock().map_err(|e| SimError::state(&path, e))?;
    Ok(file)
}

/// Writes a secret file readable by its owner only (mode 0600).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), SimError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| SimError::state(path, e))?;
    file.write_all(bytes).map_err(|e| SimError::state(path, e))
}

/// Reads a text file of the state.
pub fn read_text(path: &Path) -> Result<String, SimError> {
    fs::read_to_string(path).map_err(|e| SimError::state(path, e))
}

/// `N` random bytes kept as hex in `path`: read back when the file exists, else drawn and
/// written (`secret`: owner-only).
pub fn hex_bytes<const N: usize>(path: &Path, secret: bool) -> Result<[u8; N], SimError> {
    if path.exists() {
        let text = zeroize::Zeroizing::new(read_text(path)?);
        let bytes = zeroize::Zeroizing::new(
            hex::decode(text.trim()).map_err(|e| SimError::Corrupt { path: path.into(), what: e.to_string() })?,
        );
        return <[u8; N]>::try_from(bytes.as_slice())
            .map_err(|_| SimError::Corrupt { path: path.into(), what: format!("expected {N} bytes of hex") });
    }
    let mut bytes = [0u8; N];
    random(&mut bytes)?;
    let text = zeroize::Zeroizing::new(hex::encode(bytes));
    if secret {
        write_private(path, text.as_bytes())?;
    } else {
        fs::write(path, text.as_bytes()).map_err(|e| SimError::state(path, e))?;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_files_are_made_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let _lock = lock(&dir.path().join("machine")).unwrap();
        let path = dir.path().join("machine/id.hex");
        let first: [u8; 16] = hex_bytes(&path, true).unwrap();
        assert_eq!(hex_bytes::<16>(&path, true).unwrap(), first);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        // Another length than the file holds is refused, naming the file.
        let error = hex_bytes::<8>(&path, true).unwrap_err().to_string();
        assert!(error.contains("id.hex is corrupt: expected 8 bytes"), "{error}");
    }
}
