//! TLS for `twi serve` (RFC 8446 TLS 1.3 through rustls with its `ring` provider, the
//! provider the relying party and the loader's client already use). The RATS-for-TWI draft
//! says every hop between Workload, Verifier, Credential Authority and Key Store is mutually
//! authenticated, confidential and integrity-protected; this module makes the listener's half:
//!
//! - the server certificate comes from files (`--tls-cert`/`--tls-key`) or, by default, is
//!   issued by the service's own CA into its state directory at first start (`tls-server.pem`,
//!   `tls-server.key.pem`, mode 0600), for the names it is reached by (DNS and IP SANs, EKU
//!   serverAuth, RFC 5280 §4.2.1.6 and §4.2.1.12), and re-issued when a name is missing or it
//!   is about to expire; clients verify it under the CA images embed (`issuer-ca.pem`);
//! - owner and administrator endpoints need a client certificate under the operator CA
//!   (`--operator-ca FILE`): the handshake checks the chain (rustls-webpki, RFC 5280 §6, EKU
//!   clientAuth) and lets a client without one in, because workloads' own endpoints need no
//!   client certificate; the endpoints that do check for an [`Operator`] on the request.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use der::asn1::{Ia5String, OctetString};
use der::{DecodePem, Encode, EncodePem};
use p384::ecdsa::{DerSignature, SigningKey};
use p384::pkcs8::{EncodePrivateKey, LineEnding};
use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;
pub use twi_tls_files::{FileError, certificates, private_key};
use x509_cert::Certificate;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName,
};
use x509_cert::name::Name;
use x509_cert::spki::{SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};
use x509_cert::time::Validity;

use crate::ca::IssuerCa;

/// The server certificate the CA issues (file names in the state directory).
pub const SERVER_CERT_FILE: &str = "tls-server.pem";
pub const SERVER_KEY_FILE: &str = "tls-server.key.pem";
/// Lifetime of an issued server certificate; re-issued at start within [`RENEW_BEFORE`].
const SERVER_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);
const RENEW_BEFORE: Duration = Duration::from_secs(7 * 24 * 3600);

/// The owner or administrator a request comes from: the subject of the client certificate that
/// chained to the operator CA in the connection's handshake. Only the TLS listener inserts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operator {
    pub subject: String,
}

/// A TLS file or setting that does not work; says which and what to do.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("cannot write the server certificate {path}: {error}; check the state directory's permissions")]
    Write { path: PathBuf, error: String },
    #[error("issuing the server certificate: {0}")]
    Issue(String),
    #[error("{option}: {reason}")]
    Rustls { option: &'static str, reason: String },
}

/// Why a process without the CA's keys needs its server certificate from files.
const NO_CA: &str = "this process does not hold the Credential Authority's keys (it does not serve the ca, key-store or log role), so it cannot issue its own: give --tls-cert and --tls-key";

/// Where the server's certificate comes from, and who may use owner endpoints.
#[derive(Clone, Debug, Default)]
pub struct TlsSettings {
    /// `--tls-cert` and `--tls-key`: a chain (leaf first) and its key (PKCS#8 or SEC1 PEM).
    pub files: Option<(PathBuf, PathBuf)>,
    /// Without files: the DNS names and IP addresses the issued certificate names.
    pub names: Vec<String>,
    /// `--operator-ca`: client certificates under it may use owner endpoints.
    pub operator_ca: Option<PathBuf>,
}

/// The rustls server configuration: TLS 1.3, HTTP/1.1 by ALPN, the server certificate of
/// `settings` (issued by `ca` into `dir` when no files are given), and client certificates
/// checked against the operator CA when one is configured.
pub fn server_config(
    ca: Option<&IssuerCa>,
    dir: &Path,
    settings: &TlsSettings,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (chain, key) = match &settings.files {
        Some((cert, key)) => (certificates("--tls-cert", cert)?, private_key("--tls-key", key)?),
        None => {
            let ca = ca.ok_or_else(|| TlsError::Issue(NO_CA.into()))?;
            let (cert, key) = issued_server_certificate(ca, dir, &settings.names)?;
            (certificates("the issued server certificate", &cert)?, private_key("the issued server key", &key)?)
        }
    };
    let verifier = match &settings.operator_ca {
        Some(path) => {
            let roots = twi_tls_files::roots("--operator-ca", path)?;
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::Rustls { option: "--operator-ca", reason: e.to_string() })?
        }
        None => WebPkiClientVerifier::no_client_auth(),
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Rustls { option: "--tls-cert", reason: e.to_string() })?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Rustls {
            option: "--tls-key",
            reason: format!("the key and certificate do not make a usable pair (ECDSA P-256/P-384, RSA, Ed25519): {e}"),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The operator of a connection whose handshake verified a client certificate (leaf first).
pub fn operator_of(chain: Option<&[CertificateDer<'_>]>) -> Option<Operator> {
    use der::Decode;
    let leaf = chain?.first()?;
    let cert = Certificate::from_der(leaf.as_ref()).ok()?;
    Some(Operator { subject: cert.tbs_certificate().subject().to_string() })
}

/// The server certificate and key files in `dir`, issued by `ca` for `names` unless the ones
/// there name them all and stay valid long enough.
pub fn issued_server_certificate(ca: &IssuerCa, dir: &Path, names: &[String]) -> Result<(PathBuf, PathBuf), TlsError> {
    let (cert_path, key_path) = (dir.join(SERVER_CERT_FILE), dir.join(SERVER_KEY_FILE));
    if key_path.exists() && current(&cert_path, names) {
        return Ok((cert_path, key_path));
    }
    use p384::elliptic_curve::Generate;
    let key = SigningKey::try_generate().map_err(|e| TlsError::Issue(format!("no randomness for the key: {e}")))?;
    let certificate = issue(ca, &key, names)?;
    let pem = certificate.to_pem(LineEnding::LF).map_err(|e| TlsError::Issue(e.to_string()))?;
    let key_pem = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| TlsError::Issue(e.to_string()))?;
    let write = |path: &Path, bytes: &[u8]| {
        crate::state::write_private(path, bytes)
            .map_err(|e| TlsError::Write { path: path.to_path_buf(), error: e.to_string() })
    };
    write(&key_path, key_pem.as_bytes())?;
    write(&cert_path, pem.as_bytes())?;
    Ok((cert_path, key_path))
}

/// Whether the certificate at `path` names every one of `names` and is valid beyond
/// [`RENEW_BEFORE`].
fn current(path: &Path, names: &[String]) -> bool {
    let Ok(pem) = std::fs::read(path) else { return false };
    let Ok(cert) = Certificate::from_pem(&pem) else { return false };
    let not_after = cert.tbs_certificate().validity().not_after.to_system_time();
    if not_after < SystemTime::now() + RENEW_BEFORE {
        return false;
    }
    let Ok(Some((_, san))) = cert.tbs_certificate().get_extension::<SubjectAltName>() else { return false };
    let wanted = match alt_names(names) {
        Ok(wanted) => wanted,
        Err(_) => return false,
    };
    wanted.iter().all(|name| san.0.contains(name))
}

/// DNS names and IP addresses as subject alternative names.
fn alt_names(names: &[String]) -> Result<Vec<GeneralName>, TlsError> {
    let mut out = Vec::new();
    for name in names {
        let general = match name.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => GeneralName::IpAddress(octets(&ip.octets())?),
            Ok(IpAddr::V6(ip)) => GeneralName::IpAddress(octets(&ip.octets())?),
            Err(_) => GeneralName::DnsName(
                Ia5String::new(name).map_err(|e| TlsError::Issue(format!("the name {name:?} is not ASCII: {e}")))?,
            ),
        };
        if !out.contains(&general) {
            out.push(general);
        }
    }
    Ok(out)
}

fn octets(bytes: &[u8]) -> Result<OctetString, TlsError> {
    OctetString::new(bytes).map_err(|e| TlsError::Issue(e.to_string()))
}

fn issue(ca: &IssuerCa, key: &SigningKey, names: &[String]) -> Result<Certificate, TlsError> {
    let bad = |e: &dyn std::fmt::Display| TlsError::Issue(e.to_string());
    let subject: Name = "CN=TWI issuer service,O=TWI".parse().map_err(|e| bad(&e))?;
    let profile = ServerProfile { subject, issuer: ca.subject().clone(), names: alt_names(names)? };
    let serial = crate::ca::random_serial().map_err(|e| bad(&e))?;
    let validity = Validity::from_now(SERVER_LIFETIME).map_err(|e| bad(&e))?;
    let spki = SubjectPublicKeyInfoOwned::from_key(key.verifying_key()).map_err(|e| bad(&e))?;
    let builder = CertificateBuilder::new(profile, serial, validity, spki).map_err(|e| bad(&e))?;
    builder.build::<_, DerSignature>(ca.signing_key()).map_err(|e| bad(&e))
}

/// A TLS server certificate: keyUsage digitalSignature, EKU serverAuth, the names as SANs.
struct ServerProfile {
    subject: Name,
    issuer: Name,
    names: Vec<GeneralName>,
}

impl BuilderProfile for ServerProfile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        _spk: SubjectPublicKeyInfoRef<'_>,
        issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        use der::oid::AssociatedOid;
        fn extension<T: Encode>(
            oid: der::asn1::ObjectIdentifier,
            critical: bool,
            value: &T,
        ) -> x509_cert::builder::Result<Extension> {
            Ok(Extension { extn_id: oid, critical, extn_value: OctetString::new(value.to_der()?)? })
        }
        let serve_auth = der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.1");
        Ok(vec![
            extension(AuthorityKeyIdentifier::OID, false, &AuthorityKeyIdentifier::try_from(issuer_spk)?)?,
            extension(BasicConstraints::OID, true, &BasicConstraints { ca: false, path_len_constraint: None })?,
            extension(KeyUsage::OID, true, &KeyUsage(KeyUsages::DigitalSignature.into()))?,
            extension(ExtendedKeyUsage::OID, false, &ExtendedKeyUsage(vec![serve_auth]))?,
            extension(SubjectAltName::OID, false, &SubjectAltName(self.names.clone()))?,
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The issued certificate names what it is reached by, is kept while it does, and is
    /// issued again for a new name.
    #[test]
    fn the_server_certificate_is_issued_once_per_set_of_names() {
        let dir = tempfile::tempdir().unwrap();
        let ca = IssuerCa::load_or_create(dir.path(), "example.org").unwrap();
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
        let (cert, key) = issued_server_certificate(&ca, dir.path(), &names).unwrap();
        let first = std::fs::read(&cert).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(current(&cert, &names));
        issued_server_certificate(&ca, dir.path(), &names[..1]).unwrap();
        assert_eq!(std::fs::read(&cert).unwrap(), first, "kept while it names them");
        let more = [names.clone(), vec!["issuer.example".to_string()]].concat();
        issued_server_certificate(&ca, dir.path(), &more).unwrap();
        assert_ne!(std::fs::read(&cert).unwrap(), first, "issued again for a new name");
        assert!(current(&cert, &more));
        let settings = TlsSettings { names: more, ..TlsSettings::default() };
        server_config(Some(&ca), dir.path(), &settings).expect("a usable rustls configuration");
    }
}
