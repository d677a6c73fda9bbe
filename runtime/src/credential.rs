//! Checking the credential the host hands back, against the issuer trust anchor that the
//! measured launch manifest carries. The host relays the credential, so it could forge one:
//! this check is what makes "the payload has a credential" mean "the issuer issued it for
//! this key".

use der::{Decode, Encode};
use p384::ecdsa::signature::Verifier;
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

/// ecdsa-with-SHA384 (RFC 5758).
const ECDSA_WITH_SHA384: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
/// id-ecPublicKey (RFC 5480) and its secp384r1 parameter.
const ID_EC_PUBLIC_KEY: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP384R1: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("1.3.132.0.34");

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
pub fn check_credential(
    certificate_der: &[u8],
    issuer_anchor_sec1: &[u8],
    our_key: &[u8],
    workload_id: &str,
) -> Result<(), CredentialError> {
    let cert = Certificate::from_der(certificate_der).map_err(|_| CredentialError::NotDer)?;
    if cert.signature_algorithm().oid != ECDSA_WITH_SHA384 {
        return Err(CredentialError::UnexpectedSignatureAlgorithm);
    }
    let anchor =
        p384::ecdsa::VerifyingKey::from_sec1_bytes(issuer_anchor_sec1).map_err(|_| CredentialError::BadAnchor)?;
    let tbs = cert.tbs_certificate().to_der().map_err(|_| CredentialError::NotDer)?;
    let signature_der = cert.signature().as_bytes().ok_or(CredentialError::BadSignature)?;
    let signature = p384::ecdsa::Signature::from_der(signature_der).map_err(|_| CredentialError::BadSignature)?;
    anchor.verify(&tbs, &signature).map_err(|_| CredentialError::BadSignature)?;

    let spki = cert.tbs_certificate().subject_public_key_info();
    let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.decode_as::<der::asn1::ObjectIdentifier>().ok());
    if spki.algorithm.oid != ID_EC_PUBLIC_KEY
        || curve != Some(SECP384R1)
        || spki.subject_public_key.as_bytes() != Some(our_key)
    {
        return Err(CredentialError::WrongKey);
    }

    let san = match cert.tbs_certificate().get_extension::<SubjectAltName>() {
        Ok(Some((_critical, san))) => san,
        _ => return Err(CredentialError::WrongSubjectAltName),
    };
    match san.0.as_slice() {
        [GeneralName::UniformResourceIdentifier(uri)] if uri.as_str() == workload_id => Ok(()),
        _ => Err(CredentialError::WrongSubjectAltName),
    }
}

/// Accepts the WIT that came with the credential only if its `sub` is `workload_id` and its
/// `cnf.jwk` is `our_key` (P-384, `x` and `y` base64url): a WIT for another key is useless to
/// this launch, and one naming another workload is the host's mix-up. Its signature is the
/// issuer's WIT key's, which the manifest does not carry: relying parties check it against
/// the issuer's published keys.
pub fn check_wit(token: &str, our_key: &[u8], workload_id: &str) -> Result<(), CredentialError> {
    use base64ct::{Base64UrlUnpadded, Encoding};
    let mut parts = token.split('.');
    let payload = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(payload), Some(_), None) => payload,
        _ => return Err(CredentialError::BadWit),
    };
    let json = Base64UrlUnpadded::decode_vec(payload).map_err(|_| CredentialError::BadWit)?;
    let claims: serde_json::Value = serde_json::from_slice(&json).map_err(|_| CredentialError::BadWit)?;
    if claims.get("sub").and_then(|s| s.as_str()) != Some(workload_id) {
        return Err(CredentialError::WrongSubjectAltName);
    }
    let jwk = claims.get("cnf").and_then(|c| c.get("jwk")).ok_or(CredentialError::BadWit)?;
    let coordinate =
        |name: &str| jwk.get(name).and_then(|v| v.as_str()).and_then(|v| Base64UrlUnpadded::decode_vec(v).ok());
    let (x, y) = (coordinate("x").ok_or(CredentialError::BadWit)?, coordinate("y").ok_or(CredentialError::BadWit)?);
    let matches = our_key.len() == 97 && our_key[0] == 0x04 && our_key[1..49] == x[..] && our_key[49..] == y[..];
    if jwk.get("crv").and_then(|c| c.as_str()) != Some("P-384") || !matches {
        return Err(CredentialError::WrongKey);
    }
    Ok(())
}
