//! The TLS files of TWI's services — `twi serve` (its `--tls-*`, `--operator-ca`, `--role-*`
//! options and the database's `sslcert`/`sslkey`) and the relying party `twi-rp` (its
//! `server_*` and `issuer_ca` fields) — read one way: PEM certificates (at least one), a
//! private key (PKCS#8 or SEC1) refused when group or others may read it, naming the `chmod`
//! that fixes it, and CA certificates as a root store. Each error names the setting (`what`)
//! and the file.

use std::path::{Path, PathBuf};

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A TLS file that cannot be used; says which setting named it and why.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{what}: cannot read {path}: {error}")]
    Read { what: &'static str, path: PathBuf, error: std::io::Error },
    #[error("{what}: {path} {reason}")]
    Pem { what: &'static str, path: PathBuf, reason: String },
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, FileError> {
    std::fs::read(path).map_err(|error| FileError::Read { what, path: path.to_path_buf(), error })
}

/// Every certificate in the PEM file `path` (at least one), in order.
pub fn certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, FileError> {
    let pem = read(what, path)?;
    let bad = |reason: String| FileError::Pem { what, path: path.to_path_buf(), reason };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("is not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad("holds no `BEGIN CERTIFICATE` block".into()));
    }
    Ok(certs)
}

/// The bytes of the secret file `path`, refused when group or others may read it: whoever read
/// it could be this service. Zeroized when dropped.
pub fn read_private(what: &'static str, path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>, FileError> {
    use std::os::unix::fs::PermissionsExt;
    let metadata =
        std::fs::metadata(path).map_err(|error| FileError::Read { what, path: path.to_path_buf(), error })?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(FileError::Pem {
            what,
            path: path.to_path_buf(),
            reason: format!(
                "is readable by group or others (mode {mode:03o}), so it is refused: make it private with `chmod 600 {}`",
                path.display()
            ),
        });
    }
    Ok(zeroize::Zeroizing::new(read(what, path)?))
}

/// The private key in `path` (PKCS#8 or SEC1 PEM), read by [`read_private`].
pub fn private_key(what: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, FileError> {
    let pem = read_private(what, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| FileError::Pem {
        what,
        path: path.to_path_buf(),
        reason: format!("holds no PKCS#8 or SEC1 private key: {e}"),
    })
}

/// The CA certificates in `path` as a root store (each must be usable as a trust anchor).
pub fn roots(what: &'static str, path: &Path) -> Result<RootCertStore, FileError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(what, path)? {
        roots.add(cert).map_err(|e| FileError::Pem {
            what,
            path: path.to_path_buf(),
            reason: format!("is not a usable CA certificate: {e}"),
        })?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A SEC1 PEM block: what this crate reads (rustls judges the key inside when it is used).
    const KEY: &str = "-----BEGIN EC PRIVATE KEY-----\nMAMCAQE=\n-----END EC PRIVATE KEY-----\n";

    #[test]
    fn a_key_others_may_read_is_refused_with_the_chmod_and_a_private_one_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.key");
        std::fs::write(&path, KEY).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = private_key("--tls-key", &path).unwrap_err().to_string();
        assert!(error.starts_with("--tls-key: ") && error.contains("mode 644"), "{error}");
        assert!(error.contains(&format!("chmod 600 {}", path.display())), "{error}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(private_key("--tls-key", &path).unwrap(), PrivateKeyDer::Sec1(_)));
        std::fs::write(&path, "not a key").unwrap();
        assert!(private_key("--tls-key", &path).unwrap_err().to_string().contains("holds no PKCS#8 or SEC1"));
    }

    #[test]
    fn a_file_without_certificates_is_named_with_its_setting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "nothing here").unwrap();
        let error = certificates("issuer_ca", &path).unwrap_err().to_string();
        assert!(error.starts_with("issuer_ca: ") && error.contains("no `BEGIN CERTIFICATE`"), "{error}");
        let error = roots("issuer_ca", &dir.path().join("missing.pem")).unwrap_err().to_string();
        assert!(error.contains("cannot read"), "{error}");
    }
}
