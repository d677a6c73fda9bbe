//! Checking the credential the host hands back, against the issuer trust anchor that the
//! measured launch manifest carries. The host relays the credential, so it could forge one:
//! this check is what makes "the payload has a credential" mean "the issuer issued it for
//! this key".

use p384::ecdsa::signature::hazmat::PrehashVerifier;
use twi_proto::asn1::{self, DerError, Reader, tag};
use twi_proto::csr::ECDSA_SHA384_ALGORITHM;
use twi_proto::x509::Certificate;

/// id-ce-subjectAltName (2.5.29.17), the OID's contents.
const SUBJECT_ALT_NAME: [u8; 3] = [0x55, 0x1d, 0x11];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialError {
    NotDer,
    UnexpectedSignatureAlgorithm,
    BadAnchor,
    BadSignature,
    WrongKey,
    WrongSubjectAltName,
    /// The WIT is not a compact JWS with a JSON claims set.
    BadWit,
}

impl CredentialError {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NotDer => "the credential is not a DER X.509 certificate",
            Self::UnexpectedSignatureAlgorithm => "the credential is not signed with ecdsa-with-SHA384",
            Self::BadAnchor => "the launch manifest's issuer anchor is not a P-384 public key",
            Self::BadSignature => "the credential's signature does not verify under the issuer anchor",
            Self::WrongKey => "the credential certifies a different public key than the Credential Key",
            Self::WrongSubjectAltName => "the credential does not name exactly the announced workload URI",
            Self::BadWit => "the WIT is not a compact JWS whose claims carry sub and cnf.jwk",
        }
    }
}

impl core::fmt::Display for CredentialError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Accepts `certificate_der` only if the issuer anchor signed it, it certifies `our_key`,
/// and its only SAN is the URI `workload_id`. Validity dates are not checked: the runtime
/// has no trusted clock (the host controls the RTC); the issuer keeps lifetimes short.
///
/// The certificate is read field by field ([`twi_proto::x509`], the reader the workload's TLS
/// client uses too), not decoded whole: the signature is checked over the exact
/// `tbsCertificate` bytes, the key is compared with the SPKI the runtime itself encodes for
/// it, and the SAN extension is the only one read.
pub fn check_credential(
    certificate_der: &[u8],
    issuer_anchor_sec1: &[u8],
    our_key: &[u8],
    workload_id: &str,
) -> Result<(), CredentialError> {
    let certificate = Certificate::parse(certificate_der).map_err(|_| CredentialError::NotDer)?;
    if certificate.signature_algorithm.encoded != ECDSA_SHA384_ALGORITHM {
        return Err(CredentialError::UnexpectedSignatureAlgorithm);
    }
    let anchor = twi_proto::point::p384_verifying_key(issuer_anchor_sec1).ok_or(CredentialError::BadAnchor)?;
    let signature = asn1::ecdsa_p384_signature(certificate.signature).map_err(|_| CredentialError::BadSignature)?;
    // ecdsa-with-SHA384: the shared SHA-384 (twi_proto::hash), not the verifier's own copy.
    let digest = twi_proto::hash::sha384(&[certificate.tbs]);
    anchor.verify_prehash(&digest, &signature).map_err(|_| CredentialError::BadSignature)?;
    if twi_proto::csr::spki_der(our_key).ok().as_deref() != Some(certificate.spki.encoded) {
        return Err(CredentialError::WrongKey);
    }
    match subject_alt_name(&certificate).map_err(|_| CredentialError::NotDer)? {
        Some(uri) if uri == workload_id.as_bytes() => Ok(()),
        _ => Err(CredentialError::WrongSubjectAltName),
    }
}

/// The certificate's validity (`notBefore`, `notAfter`), seconds since the Unix epoch.
///
/// # Errors
/// [`CredentialError::NotDer`] if it is not a certificate with readable times.
pub fn validity(certificate_der: &[u8]) -> Result<(u64, u64), CredentialError> {
    Certificate::parse(certificate_der).map(|c| c.validity).map_err(|_| CredentialError::NotDer)
}

/// The URI of the one subjectAltName extension if its only name is one URI; `None` when there
/// is no SAN, two SAN extensions (RFC 5280 §4.2 forbids it), or a SAN naming anything else.
fn subject_alt_name<'a>(certificate: &Certificate<'a>) -> Result<Option<&'a [u8]>, DerError> {
    let (mut count, mut uri) = (0, None);
    certificate.extensions.each(|extension| {
        if extension.id == SUBJECT_ALT_NAME {
            count += 1;
            let mut names = Reader::new(asn1::only(extension.value, tag::SEQUENCE)?.contents);
            let first = names.element()?;
            // [6] IMPLICIT IA5String: uniformResourceIdentifier.
            uri = (first.tag == 0x86 && names.is_empty()).then_some(first.contents);
        }
        Ok(())
    })?;
    Ok(if count == 1 { uri } else { None })
}

/// Accepts the WIT that came with the credential only if its `sub` is `workload_id` and its
/// `cnf.jwk` is `our_key` (P-384, `x` and `y` base64url): a WIT for another key is useless to
/// this launch, and one naming another workload is the host's mix-up. Its signature is the
/// issuer's WIT key's, which the manifest does not carry: relying parties check it against
/// the issuer's published keys. The claims are read by [`twi_proto::wit`] (a strict JSON
/// reader: an escaped claim or a repeated name is refused; the issuer writes neither).
pub fn check_wit(token: &str, our_key: &[u8], workload_id: &str) -> Result<(), CredentialError> {
    let text = twi_proto::wit::claims_text(token).map_err(|_| CredentialError::BadWit)?;
    let claims = twi_proto::wit::WitClaims::read(&text).map_err(|_| CredentialError::BadWit)?;
    if claims.sub != Some(workload_id) {
        return Err(CredentialError::WrongSubjectAltName);
    }
    let jwk = claims.jwk.ok_or(CredentialError::BadWit)?;
    let coordinate = |value: Option<&str>| {
        twi_proto::wit::base64url_decode(value.ok_or(CredentialError::BadWit)?).map_err(|_| CredentialError::BadWit)
    };
    let (x, y) = (coordinate(jwk.x)?, coordinate(jwk.y)?);
    let matches = our_key.len() == 97 && our_key[0] == 0x04 && our_key[1..49] == x[..] && our_key[49..] == y[..];
    if jwk.crv != Some("P-384") || !matches {
        return Err(CredentialError::WrongKey);
    }
    Ok(())
}
