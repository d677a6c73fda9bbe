//! The TLS 1.3 server (RFC 8446) and the client certificate's workload identity.
//!
//! rustls with the `ring` provider; TLS 1.2 is off. The server's own key may be ECDSA P-256 or
//! P-384 (PKCS#8 or SEC1 PEM). Client certificates are optional at the TLS layer, because WIT +
//! WPT callers use server-authenticated TLS only (draft-ietf-wimse-wpt §4); a certificate that
//! *is* presented must chain to the configured issuer CA with EKU clientAuth, or the handshake
//! fails (rustls's `WebPkiClientVerifier`, RFC 5280 §6 path validation by rustls-webpki).
//!
//! The identity of a certificate is its single URI SAN, a SPIFFE ID (SPIFFE `X509-SVID.md` §2:
//! "An X.509 SVID MUST contain exactly one URI SAN"; draft-ietf-wimse-workload-creds §4.1). The
//! subject name is ignored.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;
use twi_tls_files::{FileError, certificates, private_key};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

/// A problem with the TLS files or settings; names the configuration field.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("`{field}`: {path} {reason}")]
    Pem { field: &'static str, path: PathBuf, reason: String },
    #[error("`{field}`: {reason}")]
    Rustls { field: &'static str, reason: String },
}

/// The rustls server configuration: TLS 1.3 only, HTTP/1.1 by ALPN, and client certificates
/// verified against `issuer_ca` when one is configured.
pub fn server_config(
    chain: &Path,
    key: &Path,
    issuer_ca: Option<&Path>,
    simulated_tee_oid: Option<&der::asn1::ObjectIdentifier>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = certificates("`server_certificate`", chain)?;
    let key = private_key("`server_key`", key)?;
    let verifier = match issuer_ca {
        Some(path) => {
            let roots = twi_tls_files::roots("`issuer_ca`", path)?;
            let webpki = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::Rustls { field: "issuer_ca", reason: e.to_string() })?;
            match simulated_tee_oid {
                None => webpki,
                Some(marker) => Arc::new(crate::simulated::SimulatedAware {
                    inner: webpki,
                    marker: *marker,
                    issuer_ca: issuer_ca_certificate(path)?,
                    algorithms: provider.signature_verification_algorithms,
                }),
            }
        }
        None => WebPkiClientVerifier::no_client_auth(),
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Rustls { field: "server_certificate", reason: e.to_string() })?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Rustls {
            field: "server_key",
            reason: format!("the key and certificate do not make a usable pair (ECDSA P-256 or P-384): {e}"),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The first certificate of the `issuer_ca` file, parsed.
fn issuer_ca_certificate(path: &Path) -> Result<x509_cert::Certificate, TlsError> {
    use der::Decode;
    let first = certificates("`issuer_ca`", path)?.remove(0);
    x509_cert::Certificate::from_der(first.as_ref()).map_err(|e| TlsError::Pem {
        field: "issuer_ca",
        path: path.to_path_buf(),
        reason: format!("does not parse as X.509: {e}"),
    })
}

/// The workload identifier of a verified client certificate chain (leaf first): its one URI
/// SAN, a `spiffe://` ID. `None` when the client presented no certificate.
pub fn peer_identity(chain: Option<&[CertificateDer<'_>]>) -> Option<Result<String, String>> {
    let leaf = chain?.first()?;
    Some(identity_of(leaf.as_ref()))
}

fn identity_of(der: &[u8]) -> Result<String, String> {
    use der::Decode;
    let cert = x509_cert::Certificate::from_der(der).map_err(|e| format!("it does not parse: {e}"))?;
    let san = cert
        .tbs_certificate()
        .get_extension::<SubjectAltName>()
        .map_err(|e| format!("its subjectAltName does not parse: {e}"))?
        .ok_or("it has no subjectAltName")?;
    let uris: Vec<&str> = san
        .1
        .0
        .iter()
        .filter_map(|name| match name {
            GeneralName::UniformResourceIdentifier(uri) => Some(uri.as_str()),
            _ => None,
        })
        .collect();
    match uris.as_slice() {
        [uri] if uri.starts_with("spiffe://") && crate::config::is_workload_identifier(uri) => Ok(uri.to_string()),
        [uri] => Err(format!("its URI SAN {uri:?} is not a spiffe:// workload identifier")),
        _ => Err(format!("it has {} URI SANs; an X.509-SVID has exactly one", uris.len())),
    }
}
