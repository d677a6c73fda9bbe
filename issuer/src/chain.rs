//! Certificate-chain checks shared by every endorsement path (simulated VCEK chains now,
//! AMD and Intel chains as their verifiers land).

use std::time::SystemTime;

use der::{Decode, Encode};
use p384::ecdsa::signature::Verifier;
use x509_cert::Certificate;
use x509_cert::ext::pkix::BasicConstraints;

use crate::oids::ECDSA_WITH_SHA384;

/// Why a chain does not hold, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("certificate {0} is not DER X.509")]
    NotDer(&'static str),
    #[error("certificate {child} names issuer {issuer}, but the next certificate is {parent}")]
    IssuerMismatch { child: String, issuer: String, parent: String },
    #[error("the signature on {0} does not verify under its issuer's key")]
    BadSignature(String),
    #[error("{0} is signed with an algorithm this verifier does not accept (only ecdsa-with-SHA384 so far)")]
    UnsupportedAlgorithm(String),
    #[error("{0} is not valid at the verification time (valid {1} .. {2})")]
    Expired(String, String, String),
    #[error("{0} signs other certificates but is not a CA (basicConstraints)")]
    NotCa(String),
}

pub fn parse(der: &[u8], what: &'static str) -> Result<Certificate, ChainError> {
    Certificate::from_der(der).map_err(|_| ChainError::NotDer(what))
}

fn subject(cert: &Certificate) -> String {
    cert.tbs_certificate().subject().to_string()
}

/// Verifies `child`'s signature with `parent`'s key and that the names chain.
pub fn verify_issued_by(child: &Certificate, parent: &Certificate) -> Result<(), ChainError> {
    let tbs = child.tbs_certificate();
    if tbs.issuer() != parent.tbs_certificate().subject() {
        return Err(ChainError::IssuerMismatch {
            child: subject(child),
            issuer: tbs.issuer().to_string(),
            parent: subject(parent),
        });
    }
    if child.signature_algorithm().oid != ECDSA_WITH_SHA384 {
        return Err(ChainError::UnsupportedAlgorithm(subject(child)));
    }
    let spki = parent.tbs_certificate().subject_public_key_info();
    let key_bytes = spki.subject_public_key.as_bytes().ok_or_else(|| ChainError::BadSignature(subject(child)))?;
    let key =
        p384::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes).map_err(|_| ChainError::BadSignature(subject(child)))?;
    let signature = child
        .signature()
        .as_bytes()
        .and_then(|der| p384::ecdsa::Signature::from_der(der).ok())
        .ok_or_else(|| ChainError::BadSignature(subject(child)))?;
    let tbs_der = tbs.to_der().map_err(|_| ChainError::NotDer("tbsCertificate"))?;
    key.verify(&tbs_der, &signature).map_err(|_| ChainError::BadSignature(subject(child)))
}

pub fn check_validity(cert: &Certificate, now: SystemTime) -> Result<(), ChainError> {
    let validity = cert.tbs_certificate().validity();
    let not_before = validity.not_before.to_system_time();
    let not_after = validity.not_after.to_system_time();
    if now < not_before || now > not_after {
        return Err(ChainError::Expired(
            subject(cert),
            validity.not_before.to_string(),
            validity.not_after.to_string(),
        ));
    }
    Ok(())
}

fn check_is_ca(cert: &Certificate) -> Result<(), ChainError> {
    match cert.tbs_certificate().get_extension::<BasicConstraints>() {
        Ok(Some((_, bc))) if bc.ca => Ok(()),
        _ => Err(ChainError::NotCa(subject(cert))),
    }
}

/// `chain[0]` is the leaf; each certificate is issued by the next; the last is issued by
/// `anchor` (which must be self-signed). Every certificate must be valid at `now`.
pub fn verify_chain(chain: &[Certificate], anchor: &Certificate, now: SystemTime) -> Result<(), ChainError> {
    verify_issued_by(anchor, anchor)?;
    check_validity(anchor, now)?;
    check_is_ca(anchor)?;
    for (i, cert) in chain.iter().enumerate() {
        check_validity(cert, now)?;
        let parent = chain.get(i + 1).unwrap_or(anchor);
        if i + 1 < chain.len() {
            check_is_ca(parent)?;
        }
        verify_issued_by(cert, parent)?;
    }
    Ok(())
}
