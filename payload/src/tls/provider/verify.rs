//! ECDSA signature verification: the only signatures this client accepts.
//!
//! Used twice: by webpki for each certificate of the server's chain (X.509 `signatureAlgorithm`
//! ecdsa-with-SHA384 / ecdsa-with-SHA256, RFC 5758 §3.2; keys id-ecPublicKey on secp384r1 or
//! secp256r1, RFC 5480 §2.1.1), and by rustls for the server's CertificateVerify (RFC 8446
//! §4.4.3: ecdsa_secp384r1_sha384, and ecdsa_secp256r1_sha256 with the `p256` feature, which
//! costs about 20 KiB of ROM for a second curve's arithmetic). Signatures are DER
//! `ECDSA-Sig-Value` (RFC 5480 §2.2 / RFC 3279 §2.2.3); public keys are uncompressed SEC1
//! points (RFC 5480 §2.2 makes them the form every implementation supports; a compressed key is
//! refused, which keeps the curves' square roots out of the ROM: `twi_proto::point`). The
//! cross pairs (a P-256 key with SHA-384 and the reverse) exist only for certificate chains,
//! where a CA's curve and a leaf's hash may differ. RSA and EdDSA are not offered: a server
//! whose chain needs them fails with an unsupported-signature-algorithm error.

use ecdsa::signature::hazmat::PrehashVerifier;
use rustls::SignatureScheme;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm, alg_id};
use sha2::digest::Digest;
use sha2::{Sha256, Sha384};

#[derive(Debug, Clone, Copy)]
enum Curve {
    #[cfg(feature = "p256")]
    P256,
    P384,
}

#[derive(Debug, Clone, Copy)]
enum HashAlg {
    Sha256,
    Sha384,
}

/// One (curve, hash) pair as webpki sees it.
#[derive(Debug)]
struct Ecdsa {
    curve: Curve,
    hash: HashAlg,
}

static P384_SHA384: Ecdsa = Ecdsa { curve: Curve::P384, hash: HashAlg::Sha384 };
static P384_SHA256: Ecdsa = Ecdsa { curve: Curve::P384, hash: HashAlg::Sha256 };
#[cfg(feature = "p256")]
static P256_SHA256: Ecdsa = Ecdsa { curve: Curve::P256, hash: HashAlg::Sha256 };
#[cfg(feature = "p256")]
static P256_SHA384: Ecdsa = Ecdsa { curve: Curve::P256, hash: HashAlg::Sha384 };

/// What the provider tells rustls and webpki it can verify.
#[cfg(feature = "p256")]
pub(crate) static ALGORITHMS: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
    all: &[&P384_SHA384, &P256_SHA256, &P384_SHA256, &P256_SHA384],
    mapping: &[
        (SignatureScheme::ECDSA_NISTP384_SHA384, &[&P384_SHA384]),
        (SignatureScheme::ECDSA_NISTP256_SHA256, &[&P256_SHA256]),
    ],
};

/// What the provider tells rustls and webpki it can verify (P-384 keys only).
#[cfg(not(feature = "p256"))]
pub(crate) static ALGORITHMS: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
    all: &[&P384_SHA384, &P384_SHA256],
    mapping: &[(SignatureScheme::ECDSA_NISTP384_SHA384, &[&P384_SHA384])],
};

impl SignatureVerificationAlgorithm for Ecdsa {
    fn verify_signature(&self, public_key: &[u8], message: &[u8], signature: &[u8]) -> Result<(), InvalidSignature> {
        let mut digest = [0u8; 48];
        let digest = match self.hash {
            HashAlg::Sha256 => prefix(&mut digest, &Sha256::digest(message)),
            HashAlg::Sha384 => prefix(&mut digest, &Sha384::digest(message)),
        };
        match self.curve {
            #[cfg(feature = "p256")]
            Curve::P256 => verify_p256(public_key, digest, signature),
            Curve::P384 => verify_p384(public_key, digest, signature),
        }
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        match self.curve {
            #[cfg(feature = "p256")]
            Curve::P256 => alg_id::ECDSA_P256,
            Curve::P384 => alg_id::ECDSA_P384,
        }
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        match self.hash {
            HashAlg::Sha256 => alg_id::ECDSA_SHA256,
            HashAlg::Sha384 => alg_id::ECDSA_SHA384,
        }
    }
}

fn prefix<'a>(buf: &'a mut [u8; 48], digest: &[u8]) -> &'a [u8] {
    let len = digest.len().min(buf.len());
    buf[..len].copy_from_slice(&digest[..len]);
    &buf[..len]
}

/// FIPS 186-5 §6.4.2 over a digest (truncated to the order's length by `ecdsa`).
#[cfg(feature = "p256")]
fn verify_p256(public_key: &[u8], digest: &[u8], signature: &[u8]) -> Result<(), InvalidSignature> {
    let key = twi_proto::point::public_key_from_uncompressed::<p256::NistP256>(public_key).ok_or(InvalidSignature)?;
    let key = p256::ecdsa::VerifyingKey::from(key);
    let mut r_s = [0u8; 64];
    twi_proto::asn1::ecdsa_from_der(signature, &mut r_s).map_err(|_| InvalidSignature)?;
    let signature = p256::ecdsa::Signature::from_slice(&r_s).map_err(|_| InvalidSignature)?;
    key.verify_prehash(digest, &signature).map_err(|_| InvalidSignature)
}

fn verify_p384(public_key: &[u8], digest: &[u8], signature: &[u8]) -> Result<(), InvalidSignature> {
    let key = twi_proto::point::p384_verifying_key(public_key).ok_or(InvalidSignature)?;
    let signature = twi_proto::asn1::ecdsa_p384_signature(signature).map_err(|_| InvalidSignature)?;
    key.verify_prehash(digest, &signature).map_err(|_| InvalidSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use ecdsa::signature::hazmat::PrehashSigner;

    const MESSAGE: &[u8] = b"TLS 1.3, server CertificateVerify";

    /// (algorithm, public key, DER signature over MESSAGE) for every pair compiled in.
    fn cases() -> Vec<(&'static Ecdsa, Vec<u8>, Vec<u8>)> {
        let k384 = p384::ecdsa::SigningKey::from_slice(&[0x42; 48]).unwrap();
        let pub384 = k384.verifying_key().to_sec1_point(false).as_bytes().to_vec();
        let s384_384: p384::ecdsa::Signature = k384.sign_prehash(&Sha384::digest(MESSAGE)).unwrap();
        let s384_256: p384::ecdsa::Signature = k384.sign_prehash(&Sha256::digest(MESSAGE)).unwrap();
        #[cfg_attr(not(feature = "p256"), allow(unused_mut))]
        let mut cases = alloc::vec![
            (&P384_SHA384, pub384.clone(), s384_384.to_der().as_bytes().to_vec()),
            (&P384_SHA256, pub384, s384_256.to_der().as_bytes().to_vec()),
        ];
        #[cfg(feature = "p256")]
        {
            let k256 = p256::ecdsa::SigningKey::from_slice(&[0x24; 32]).unwrap();
            let pub256 = k256.verifying_key().to_sec1_point(false).as_bytes().to_vec();
            let s256_256: p256::ecdsa::Signature = k256.sign_prehash(&Sha256::digest(MESSAGE)).unwrap();
            let s256_384: p256::ecdsa::Signature = k256.sign_prehash(&Sha384::digest(MESSAGE)).unwrap();
            cases.push((&P256_SHA256, pub256.clone(), s256_256.to_der().as_bytes().to_vec()));
            cases.push((&P256_SHA384, pub256, s256_384.to_der().as_bytes().to_vec()));
        }
        cases
    }

    #[test]
    fn each_pair_verifies_its_own_signatures_only() {
        let cases = cases();
        for (i, (alg, public, signature)) in cases.iter().enumerate() {
            assert!(alg.verify_signature(public, MESSAGE, signature).is_ok(), "case {i}");
            assert!(alg.verify_signature(public, b"another message", signature).is_err(), "case {i}");
            let mut bad = signature.clone();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            assert!(alg.verify_signature(public, MESSAGE, &bad).is_err(), "case {i}");
            assert!(alg.verify_signature(&public[..public.len() - 1], MESSAGE, signature).is_err(), "case {i}");
            assert!(alg.verify_signature(public, MESSAGE, &signature[..signature.len() - 1]).is_err(), "case {i}");
            for (j, (other, _, _)) in cases.iter().enumerate().filter(|(j, _)| *j != i) {
                assert!(other.verify_signature(public, MESSAGE, signature).is_err(), "case {i} under {j}");
            }
        }
    }

    #[test]
    fn tls_schemes_map_to_their_curve_and_hash() {
        let schemes: Vec<_> = ALGORITHMS.mapping.iter().map(|(s, _)| *s).collect();
        #[cfg(feature = "p256")]
        assert_eq!(schemes, [SignatureScheme::ECDSA_NISTP384_SHA384, SignatureScheme::ECDSA_NISTP256_SHA256]);
        #[cfg(not(feature = "p256"))]
        assert_eq!(schemes, [SignatureScheme::ECDSA_NISTP384_SHA384]);
        assert_eq!(P384_SHA384.public_key_alg_id(), alg_id::ECDSA_P384);
        assert_eq!(P384_SHA384.signature_alg_id(), alg_id::ECDSA_SHA384);
        assert_eq!(P384_SHA256.signature_alg_id(), alg_id::ECDSA_SHA256);
    }
}
