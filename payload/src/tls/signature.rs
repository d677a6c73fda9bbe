//! ECDSA verification (FIPS 186-5 §6.4.2) for certificate chains and CertificateVerify: P-384,
//! and P-256 with the `p256` feature, over SHA-256 or SHA-384, signatures in DER.

use ecdsa::signature::hazmat::PrehashVerifier;

/// The curves a public key may be on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Curve {
    P384,
    #[cfg(feature = "p256")]
    P256,
}

/// The hash an ECDSA signature is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha256,
    Sha384,
}

/// A public key: its curve and its uncompressed point (SEC1 `0x04 ‖ X ‖ Y`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PublicKey<'a> {
    pub(crate) curve: Curve,
    pub(crate) point: &'a [u8],
}

impl PublicKey<'_> {
    /// Whether `signature` (DER `ECDSA-Sig-Value`) signs `message` hashed with `hash`.
    pub(crate) fn verifies(&self, hash: Hash, message: &[u8], signature: &[u8]) -> bool {
        let mut buf = [0u8; 48];
        let digest: &[u8] = match hash {
            Hash::Sha256 => {
                buf[..32].copy_from_slice(&twi_proto::hash::sha256(&[message]));
                &buf[..32]
            }
            Hash::Sha384 => {
                buf.copy_from_slice(&twi_proto::hash::sha384(&[message]));
                &buf
            }
        };
        match self.curve {
            Curve::P384 => verify_p384(self.point, digest, signature).is_some(),
            #[cfg(feature = "p256")]
            Curve::P256 => verify_p256(self.point, digest, signature).is_some(),
        }
    }
}

fn verify_p384(point: &[u8], digest: &[u8], signature: &[u8]) -> Option<()> {
    let key = twi_proto::point::p384_verifying_key(point)?;
    let signature = twi_proto::asn1::ecdsa_p384_signature(signature).ok()?;
    key.verify_prehash(digest, &signature).ok()
}

#[cfg(feature = "p256")]
fn verify_p256(point: &[u8], digest: &[u8], signature: &[u8]) -> Option<()> {
    let key = twi_proto::point::public_key_from_uncompressed::<p256::NistP256>(point)?;
    let key = p256::ecdsa::VerifyingKey::from(key);
    let mut r_s = [0u8; 64];
    twi_proto::asn1::ecdsa_from_der(signature, &mut r_s).ok()?;
    let signature = p256::ecdsa::Signature::from_slice(&r_s).ok()?;
    key.verify_prehash(digest, &signature).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use ecdsa::signature::hazmat::PrehashSigner;
    use sha2::{Digest, Sha256, Sha384};

    const MESSAGE: &[u8] = b"TLS 1.3, server CertificateVerify";

    /// (curve, hash, public key, DER signature over MESSAGE) for every pair compiled in.
    fn cases() -> Vec<(Curve, Hash, Vec<u8>, Vec<u8>)> {
        let k384 = p384::ecdsa::SigningKey::from_slice(&[0x42; 48]).unwrap();
        let pub384 = k384.verifying_key().to_sec1_point(false).as_bytes().to_vec();
        let s384_384: p384::ecdsa::Signature = k384.sign_prehash(&Sha384::digest(MESSAGE)).unwrap();
        let s384_256: p384::ecdsa::Signature = k384.sign_prehash(&Sha256::digest(MESSAGE)).unwrap();
        #[cfg_attr(not(feature = "p256"), allow(unused_mut))]
        let mut cases = alloc::vec![
            (Curve::P384, Hash::Sha384, pub384.clone(), s384_384.to_der().as_bytes().to_vec()),
            (Curve::P384, Hash::Sha256, pub384, s384_256.to_der().as_bytes().to_vec()),
        ];
        #[cfg(feature = "p256")]
        {
            let k256 = p256::ecdsa::SigningKey::from_slice(&[0x24; 32]).unwrap();
            let pub256 = k256.verifying_key().to_sec1_point(false).as_bytes().to_vec();
            let s256_256: p256::ecdsa::Signature = k256.sign_prehash(&Sha256::digest(MESSAGE)).unwrap();
            let s256_384: p256::ecdsa::Signature = k256.sign_prehash(&Sha384::digest(MESSAGE)).unwrap();
            cases.push((Curve::P256, Hash::Sha256, pub256.clone(), s256_256.to_der().as_bytes().to_vec()));
            cases.push((Curve::P256, Hash::Sha384, pub256, s256_384.to_der().as_bytes().to_vec()));
        }
        cases
    }

    #[test]
    fn each_pair_verifies_its_own_signatures_only() {
        let cases = cases();
        for (i, (curve, hash, point, signature)) in cases.iter().enumerate() {
            let key = PublicKey { curve: *curve, point };
            assert!(key.verifies(*hash, MESSAGE, signature), "case {i}");
            assert!(!key.verifies(*hash, b"another message", signature), "case {i}");
            let mut bad = signature.clone();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            assert!(!key.verifies(*hash, MESSAGE, &bad), "case {i}");
            let short = PublicKey { curve: *curve, point: &point[..point.len() - 1] };
            assert!(!short.verifies(*hash, MESSAGE, signature), "case {i}");
            assert!(!key.verifies(*hash, MESSAGE, &signature[..signature.len() - 1]), "case {i}");
            for (j, (c, h, p, _)) in cases.iter().enumerate().filter(|(j, _)| *j != i) {
                let other = PublicKey { curve: *c, point: p };
                assert!(!other.verifies(*h, MESSAGE, signature), "case {i} under {j}");
            }
        }
    }
}
