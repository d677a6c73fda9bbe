//! The Credential Authority's signing identity: a P-384 key and a self-signed CA certificate,
//! created on first use and kept in the issuer's state directory. Its public key is the issuer
//! anchor every image embeds, so it is never replaced behind an operator's back. It signs
//! under the profiles of `x509.rs`; for mechanism D it certifies a provisioned key, or checks
//! that the owner's own certificate chains to it.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use der::{DecodePem, Encode, EncodePem};
use p384::ecdsa::{SigningKey, VerifyingKey};
use p384::elliptic_curve::Generate;
use p384::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use x509_cert::Certificate;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use super::x509::{ExtraExtension, Kind, Profile, issue, random_serial};
use crate::error::IssuerError;
use crate::state;

const KEY_FILE: &str = "issuer-ca.key.pem";
const CERT_FILE: &str = "issuer-ca.pem";
/// The CA outlives many short credentials; ten years, like a private root.
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A certificate the Credential Authority issued.
#[derive(Debug, Clone)]
pub(crate) struct Certified {
    pub der: Vec<u8>,
    pub pem: String,
    pub serial_hex: String,
}

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
    /// Loads the CA from `dir`, or creates it there (key file mode 0600) when absent, named
    /// for `trust_domain`. Several processes may call this at once on a new directory: they
    /// agree on one CA.
    pub fn load_or_create(dir: &Path, trust_domain: &str) -> Result<Self, IssuerError> {
        state::private_dir(dir)?;
        let _lock = state::lock(dir)?;
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
            let key = SigningKey::from_pkcs8_pem(&state::read_secret(&key_path)?)
                .map_err(|e| IssuerError::State(key_path.clone(), e.to_string()))?;
            let cert_pem = state::read(&cert_path)?;
            let certificate = Certificate::from_pem(cert_pem.as_bytes())
                .map_err(|e| IssuerError::State(cert_path.clone(), e.to_string()))?;
            return Ok(Self { key, certificate, cert_pem });
        }
        let ca = Self::create(trust_domain)?;
        let key_pem = ca.key.to_pkcs8_pem(LineEnding::LF).map_err(IssuerError::certificate)?;
        state::write_private(&key_path, key_pem.as_bytes())?;
        fs::write(&cert_path, &ca.cert_pem).map_err(|e| IssuerError::State(cert_path.clone(), e.to_string()))?;
        Ok(ca)
    }

    fn create(trust_domain: &str) -> Result<Self, IssuerError> {
        let key = SigningKey::try_generate().map_err(|_| IssuerError::Rng)?;
        let subject: Name =
            format!("CN=TWI issuer CA for {trust_domain},O=TWI").parse().map_err(IssuerError::certificate)?;
        let profile = Profile { subject, issuer: None, kind: Kind::Ca { path_len: Some(0) }, extra: Vec::new() };
        let spki = SubjectPublicKeyInfoOwned::from_key(key.verifying_key()).map_err(IssuerError::certificate)?;
        let certificate = issue(profile, random_serial()?, CA_LIFETIME, spki, &key)?;
        let cert_pem = certificate.to_pem(LineEnding::LF).map_err(IssuerError::certificate)?;
        Ok(Self { key, certificate, cert_pem })
    }

    /// The CA's signing key, for the certificates other modules profile (the service's TLS
    /// server certificate).
    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// The key credentials verify under.
    pub fn verifying_key(&self) -> &VerifyingKey {
        self.key.verifying_key()
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

    /// Signs `subject`'s certificate of `kind` (plus `extra`) for `spki`, valid for `lifetime`,
    /// under `serial` (chosen before: the provenance record names it first).
    pub(crate) fn sign_serial(
        &self,
        serial: SerialNumber,
        subject: Name,
        kind: Kind,
        extra: Vec<ExtraExtension>,
        spki: SubjectPublicKeyInfoOwned,
        lifetime: Duration,
    ) -> Result<Certified, IssuerError> {
        let profile = Profile { subject, issuer: Some(self.subject().clone()), kind, extra };
        let serial_hex = hex::encode(serial.as_bytes());
        let certificate = issue(profile, serial, lifetime, spki, &self.key)?;
        let der = certificate.to_der().map_err(IssuerError::certificate)?;
        let pem = certificate.to_pem(der::pem::LineEnding::LF).map_err(IssuerError::certificate)?;
        Ok(Certified { der, pem, serial_hex })
    }

    /// Mechanism D: a certificate for a provisioned key of `workload_id` (a SPIFFE ID or any
    /// URI), valid for `lifetime`, naming no log entry (the Key Store's unit tests; issuance
    /// logs first and uses [`Self::certify_key_named`]).
    #[cfg(test)]
    pub(crate) fn certify_key(
        &self,
        workload_id: &str,
        key: &VerifyingKey,
        lifetime: Duration,
    ) -> Result<Certified, IssuerError> {
        self.certify_key_named(workload_id, key, lifetime, random_serial()?, Vec::new())
    }

    /// A certificate for a provisioned key of `workload_id` (a SPIFFE ID or any URI), valid
    /// for `lifetime`, under `serial`, with the extensions `extra`.
    pub(crate) fn certify_key_named(
        &self,
        workload_id: &str,
        key: &VerifyingKey,
        lifetime: Duration,
        serial: SerialNumber,
        extra: Vec<ExtraExtension>,
    ) -> Result<Certified, IssuerError> {
        let spki = SubjectPublicKeyInfoOwned::from_key(key).map_err(IssuerError::certificate)?;
        let kind = Kind::Workload { uri: workload_id.into(), dns: Vec::new() };
        self.sign_serial(serial, subject_of(workload_id)?, kind, extra, spki, lifetime)
    }

    /// Mechanism D, the owner's own certificate (DER) for `workload_id`: it must chain to this
    /// CA (the anchor runtimes check a released credential against) and name the workload.
    pub(crate) fn check_owner_certificate(
        &self,
        der: &[u8],
        workload_id: &str,
        now: SystemTime,
    ) -> Result<(), IssuerError> {
        let cert = <Certificate as der::Decode>::from_der(der)
            .map_err(|e| IssuerError::Certificate(format!("the owner's certificate is not DER: {e}")))?;
        twi_verifier::chain::verify_chain(std::slice::from_ref(&cert), &self.certificate, now).map_err(|e| {
            IssuerError::Certificate(format!(
                "the owner's certificate is not one this issuer's CA ({}) issued and a runtime would accept: {e}",
                self.subject()
            ))
        })?;
        if !names(&cert, workload_id) {
            return Err(IssuerError::Certificate(format!(
                "the owner's certificate does not name {workload_id} as its URI subject alternative name"
            )));
        }
        Ok(())
    }
}

/// `CN=<last path segment>,O=<trust domain>` for a SPIFFE ID; `CN=<id>,O=TWI workload` for
/// another URI.
fn subject_of(workload_id: &str) -> Result<Name, IssuerError> {
    let (common_name, organisation) = match workload_id.strip_prefix("spiffe://") {
        Some(rest) => {
            let (domain, path) = rest.split_once('/').unwrap_or((rest, ""));
            (path.rsplit('/').next().filter(|p| !p.is_empty()).unwrap_or(domain), domain)
        }
        None => (workload_id, "TWI workload"),
    };
    format!("CN={common_name},O={organisation}")
        .parse()
        .map_err(|e: der::Error| IssuerError::Certificate(format!("workload id {workload_id:?}: {e}")))
}

/// Whether `cert` carries `uri` as a URI subject alternative name.
fn names(cert: &Certificate, uri: &str) -> bool {
    use x509_cert::ext::pkix::SubjectAltName;
    use x509_cert::ext::pkix::name::GeneralName;
    let Ok(Some(san)) = cert.tbs_certificate().get_extension::<SubjectAltName>() else { return false };
    san.1.0.iter().any(|name| matches!(name, GeneralName::UniformResourceIdentifier(u) if u.as_str() == uri))
}
