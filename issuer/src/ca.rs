//! The Credential Authority's signing identity: a P-384 key and a self-signed CA certificate,
//! created on first use and kept in the issuer's state directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use der::{DecodePem, EncodePem};
use p384::ecdsa::SigningKey;
use p384::elliptic_curve::Generate;
use p384::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use x509_cert::Certificate;
use x509_cert::name::Name;

use crate::IssuerError;
use crate::x509::{Kind, Profile, issue, random_serial};

const KEY_FILE: &str = "issuer-ca.key.pem";
const CERT_FILE: &str = "issuer-ca.pem";
/// The CA outlives many short credentials; ten years, like a private root.
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// The CA key and certificate.
pub struct IssuerCa {
    key: SigningKey,
    certificate: Certificate,
    cert_pem: String,
}

impl std::fmt::Debug for IssuerCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerCa").field("subject", &self.subject().to_string()).finish_non_exhaustive()
    }
}

impl IssuerCa {
    /// Loads the CA from `dir`, or creates it there (key file mode 0600) when absent. Several
    /// processes may call this at once on a new directory: they agree on one CA.
    pub fn load_or_create(dir: &Path, trust_domain: &str) -> Result<Self, IssuerError> {
        fs::create_dir_all(dir).map_err(|e| IssuerError::State(dir.to_path_buf(), e.to_string()))?;
        let _lock = lock_state_dir(dir)?;
        let key_path = dir.join(KEY_FILE);
        let cert_path = dir.join(CERT_FILE);
        if key_path.exists() != cert_path.exists() {
            // Half a CA: never replace a key that may anchor deployed images and credentials.
            let (present, missing) = if key_path.exists() { (&key_path, &cert_path) } else { (&cert_path, &key_path) };
            return Err(IssuerError::State(
                missing.clone(),
                format!("missing while {} exists; restore it or remove both to create a new CA", present.display()),
            ));
        }
        if key_path.exists() {
            let key_pem = read(&key_path)?;
            let key = SigningKey::from_pkcs8_pem(&key_pem)
                .map_err(|e| IssuerError::State(key_path.clone(), e.to_string()))?;
            let cert_pem = read(&cert_path)?;
            let certificate = Certificate::from_pem(cert_pem.as_bytes())
                .map_err(|e| IssuerError::State(cert_path.clone(), e.to_string()))?;
            return Ok(Self { key, certificate, cert_pem });
        }
        let key = SigningKey::try_generate().map_err(|_| IssuerError::Rng)?;
        let subject: Name = format!("CN=TWI issuer CA for {trust_domain},O=TWI")
            .parse()
            .map_err(|e: der::Error| IssuerError::Certificate(e.to_string()))?;
        let profile = Profile { subject, issuer: None, kind: Kind::Ca { path_len: Some(0) }, extra: Vec::new() };
        let spki = x509_cert::spki::SubjectPublicKeyInfoOwned::from_key(key.verifying_key())
            .map_err(|e| IssuerError::Certificate(e.to_string()))?;
        let certificate = issue(profile, random_serial()?, CA_LIFETIME, spki, &key)?;
        let cert_pem = certificate.to_pem(LineEnding::LF).map_err(|e| IssuerError::Certificate(e.to_string()))?;
        let key_pem = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| IssuerError::Certificate(e.to_string()))?;
        write_private(&key_path, key_pem.as_bytes())?;
        fs::write(&cert_path, &cert_pem).map_err(|e| IssuerError::State(cert_path.clone(), e.to_string()))?;
        Ok(Self { key, certificate, cert_pem })
    }

    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    pub fn certificate_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn subject(&self) -> &Name {
        self.certificate.tbs_certificate().subject()
    }

    /// SEC1 uncompressed public key: what an image embeds as its issuer anchor.
    pub fn public_key_sec1(&self) -> Vec<u8> {
        self.key.verifying_key().to_sec1_point(false).as_bytes().to_vec()
    }
}

/// An exclusive lock on a state directory (released on drop): creating keys and certificates
/// is check-then-write, which two processes starting together on a fresh directory would
/// otherwise interleave, leaving a key that does not match its certificate.
pub fn lock_state_dir(dir: &Path) -> Result<fs::File, IssuerError> {
    let path = dir.join(".twi-state.lock");
    let err = |e: std::io::Error| IssuerError::State(path.clone(), e.to_string());
    let file = fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(err)?;
    file.lock().map_err(err)?;
    Ok(file)
}

fn read(path: &Path) -> Result<String, IssuerError> {
    fs::read_to_string(path).map_err(|e| IssuerError::State(path.to_path_buf(), e.to_string()))
}

/// Writes a secret file readable by its owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), IssuerError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |e: std::io::Error| IssuerError::State(PathBuf::from(path), e.to_string());
    let mut file =
        fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).map_err(err)?;
    file.write_all(bytes).map_err(err)
}
