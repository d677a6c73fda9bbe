//! The PKCS#10 certification request (RFC 2986) of TACRA's Enrollment: the runtime makes one for
//! each fresh vault key, signed by that key (which proves possession), and binds its DER into
//! REPORTDATA as the binding's subject (`twi_attester::tacra`); the Credential Authority verifies the
//! signature and certifies exactly the key inside. Retrieval binds the encryption key's
//! SubjectPublicKeyInfo instead ([`spki_der`]).
//!
//! Only what the runtime's keys are: P-384 (`id-ecPublicKey`, `secp384r1`, RFC 5480) with
//! `ecdsa-with-SHA384` (RFC 5758). The subject is empty and there are no attributes: the
//! issuer's policy names the workload, never the request.

use alloc::vec::Vec;

use der::{Decode, Encode};
use p384::ecdsa::signature::Verifier;
use x509_cert::request::CertReq;

use crate::asn1;

/// ecdsa-with-SHA384 (RFC 5758).
pub const ECDSA_WITH_SHA384: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
/// id-ecPublicKey (RFC 5480).
pub const ID_EC_PUBLIC_KEY: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp384r1 (RFC 5480).
pub const SECP384R1: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// Length of a SEC1 uncompressed P-384 point.
const SEC1_LEN: usize = 97;

/// Why a request could not be made or was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CsrError {
    /// The key is not a SEC1 uncompressed P-384 point.
    BadKey,
    /// The bytes are not a DER certification request.
    NotDer,
    /// The request's key is not P-384, or it is not signed with ecdsa-with-SHA384.
    Algorithm,
    /// The request's signature does not verify under its own key.
    BadSignature,
    /// Encoding failed (it does not for well-formed inputs).
    Encoding,
}

impl core::fmt::Display for CsrError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::BadKey => "the key is not an uncompressed P-384 point",
            Self::NotDer => "the certification request is not DER PKCS#10",
            Self::Algorithm => "the certification request is not for a P-384 key signed with ecdsa-with-SHA384",
            Self::BadSignature => "the certification request's signature does not verify under its own key",
            Self::Encoding => "the certification request could not be encoded",
        })
    }
}

impl core::error::Error for CsrError {}

/// `id-ecPublicKey` with `secp384r1` (RFC 5480), the AlgorithmIdentifier of every runtime key.
const EC_P384_ALGORITHM: [u8; 18] =
    [0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
/// `AlgorithmIdentifier { ecdsa-with-SHA384 }` (RFC 5758: no parameters), whole: what the
/// request is signed with, and what the runtime requires of the credential its issuer signs.
pub const ECDSA_SHA384_ALGORITHM: [u8; 12] = [0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];

/// A BIT STRING with no unused bits.
fn bit_string(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut contents = Vec::with_capacity(bytes.len() + 1);
    contents.push(0);
    contents.extend_from_slice(bytes);
    asn1::write(out, asn1::tag::BIT_STRING, &contents);
}

/// The DER SubjectPublicKeyInfo of a P-384 key (SEC1 uncompressed point): Retrieval's subject.
/// Written by hand ([`asn1`]) so the guest carries no generic encoder: the issuer reads it back
/// with `x509-cert` ([`verify`]; the tests compare the bytes with `x509-cert`'s own encoding).
///
/// # Errors
/// [`CsrError::BadKey`].
pub fn spki_der(sec1: &[u8]) -> Result<Vec<u8>, CsrError> {
    if sec1.len() != SEC1_LEN || sec1[0] != 0x04 {
        return Err(CsrError::BadKey);
    }
    let mut contents = EC_P384_ALGORITHM.to_vec();
    bit_string(&mut contents, sec1);
    Ok(asn1::element(asn1::tag::SEQUENCE, &contents))
}

/// The DER `CertificationRequestInfo` for `sec1`: what the key signs. Version 1 (0), an empty
/// subject, the key, no attributes.
///
/// # Errors
/// [`CsrError::BadKey`].
pub fn request_info_der(sec1: &[u8]) -> Result<Vec<u8>, CsrError> {
    let mut contents = alloc::vec![asn1::tag::INTEGER, 1, 0, asn1::tag::SEQUENCE, 0];
    contents.extend_from_slice(&spki_der(sec1)?);
    contents.extend_from_slice(&[0xa0, 0]); // attributes [0] IMPLICIT SET OF: empty
    Ok(asn1::element(asn1::tag::SEQUENCE, &contents))
}

/// The DER request for `sec1` with `signature_der` (ECDSA P-384/SHA-384 over
/// [`request_info_der`], DER-encoded).
///
/// # Errors
/// [`CsrError::BadKey`].
pub fn assemble(sec1: &[u8], signature_der: &[u8]) -> Result<Vec<u8>, CsrError> {
    let mut contents = request_info_der(sec1)?;
    contents.extend_from_slice(&ECDSA_SHA384_ALGORITHM);
    bit_string(&mut contents, signature_der);
    Ok(asn1::element(asn1::tag::SEQUENCE, &contents))
}

/// Checks `csr_der` (a P-384 key, signed by it with ecdsa-with-SHA384) and returns its key as
/// a SEC1 uncompressed point.
///
/// # Errors
/// [`CsrError`].
pub fn verify(csr_der: &[u8]) -> Result<[u8; SEC1_LEN], CsrError> {
    let request = CertReq::from_der(csr_der).map_err(|_| CsrError::NotDer)?;
    let spki = &request.info.public_key;
    let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.decode_as::<der::asn1::ObjectIdentifier>().ok());
    if request.algorithm.oid != ECDSA_WITH_SHA384 || spki.algorithm.oid != ID_EC_PUBLIC_KEY || curve != Some(SECP384R1)
    {
        return Err(CsrError::Algorithm);
    }
    let sec1: [u8; SEC1_LEN] =
        spki.subject_public_key.as_bytes().and_then(|b| b.try_into().ok()).ok_or(CsrError::BadKey)?;
    let key = crate::point::p384_verifying_key(&sec1).ok_or(CsrError::BadKey)?;
    let signature = request.signature.as_bytes().ok_or(CsrError::BadSignature)?;
    let signature = p384::ecdsa::Signature::from_der(signature).map_err(|_| CsrError::BadSignature)?;
    let signed = request.info.to_der().map_err(|_| CsrError::Encoding)?;
    key.verify(&signed, &signature).map_err(|_| CsrError::BadSignature)?;
    Ok(sec1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p384::ecdsa::signature::Signer;

    fn key() -> p384::ecdsa::SigningKey {
        p384::ecdsa::SigningKey::from_slice(&[0x42; 48]).unwrap()
    }

    fn sec1(key: &p384::ecdsa::SigningKey) -> Vec<u8> {
        key.verifying_key().to_sec1_point(false).as_bytes().to_vec()
    }

    fn signed_request(key: &p384::ecdsa::SigningKey) -> Vec<u8> {
        let public = sec1(key);
        let signature: p384::ecdsa::Signature = key.sign(&request_info_der(&public).unwrap());
        assemble(&public, signature.to_der().as_bytes()).unwrap()
    }

    /// The hand-written encoding is byte for byte what `x509-cert` writes for the same request.
    #[test]
    fn the_encoding_is_x509_certs() {
        use der::asn1::{BitString, SetOfVec};
        use x509_cert::name::Name;
        use x509_cert::request::{CertReqInfo, Version};
        use x509_cert::spki::{AlgorithmIdentifier, SubjectPublicKeyInfo};
        let key = key();
        let public = sec1(&key);
        let spki = SubjectPublicKeyInfo {
            algorithm: AlgorithmIdentifier {
                oid: ID_EC_PUBLIC_KEY,
                parameters: Some(der::Any::encode_from(&SECP384R1).unwrap()),
            },
            subject_public_key: BitString::from_bytes(&public).unwrap(),
        };
        assert_eq!(spki_der(&public).unwrap(), spki.to_der().unwrap());
        let info = CertReqInfo {
            version: Version::V1,
            subject: Name::default(),
            public_key: spki,
            attributes: SetOfVec::new(),
        };
        assert_eq!(request_info_der(&public).unwrap(), info.to_der().unwrap());
        let signature: p384::ecdsa::Signature = key.sign(&info.to_der().unwrap());
        let request = CertReq {
            info,
            algorithm: AlgorithmIdentifier { oid: ECDSA_WITH_SHA384, parameters: None },
            signature: BitString::from_bytes(signature.to_der().as_bytes()).unwrap(),
        };
        assert_eq!(assemble(&public, signature.to_der().as_bytes()).unwrap(), request.to_der().unwrap());
    }

    #[test]
    fn a_request_verifies_to_its_key() {
        let key = key();
        assert_eq!(verify(&signed_request(&key)).unwrap().to_vec(), sec1(&key));
    }

    #[test]
    fn a_request_signed_by_another_key_is_refused() {
        let (key, other) = (key(), p384::ecdsa::SigningKey::from_slice(&[0x43; 48]).unwrap());
        let public = sec1(&key);
        let signature: p384::ecdsa::Signature = other.sign(&request_info_der(&public).unwrap());
        let forged = assemble(&public, signature.to_der().as_bytes()).unwrap();
        assert_eq!(verify(&forged), Err(CsrError::BadSignature));
    }

    #[test]
    fn every_flipped_byte_is_refused_or_changes_nothing_it_binds() {
        let key = key();
        let good = signed_request(&key);
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            assert!(verify(&bad).is_err(), "byte {i} flipped still verifies");
        }
        assert_eq!(verify(b"not der"), Err(CsrError::NotDer));
        assert_eq!(spki_der(&[4; 96]), Err(CsrError::BadKey));
    }
}
