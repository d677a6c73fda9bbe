//! The pairwise consistency test of a new signing key (FIPS 140-3 IG 10.3.A): before the key is
//! used, it signs and the signature is verified with its public key. What it signs is the key's
//! own PKCS#10 request, the first message Enrollment has it sign in any case: the session sends
//! that request as it is, so the key's first signature is made once, and a session can only be
//! given a key that passed the test ([`TestedKey`]).

use alloc::vec::Vec;

use crate::vault::{KeyId, Vault};

/// A signing key in the vault that passed its pairwise consistency test, and the PKCS#10
/// request (DER) the test signed.
#[derive(Debug)]
pub struct TestedKey {
    key: KeyId,
    csr: Vec<u8>,
}

impl TestedKey {
    /// Tests `key` in `vault`: it signs its PKCS#10 request, which must verify with its public
    /// key. `None` if anything fails (the caller removes the key).
    pub fn test(vault: &Vault, key: KeyId) -> Option<Self> {
        let public = vault.public_key(key).ok()?;
        let info = twi_proto::csr::request_info_der(&public).ok()?;
        let signature = vault.sign(key, &info).ok()?;
        if !verifies(&public, &info, signature.as_bytes()) {
            return None;
        }
        let csr = twi_proto::csr::assemble(&public, signature.as_bytes()).ok()?;
        Some(Self { key, csr })
    }

    /// The key.
    pub fn key(&self) -> KeyId {
        self.key
    }

    /// Its PKCS#10 request, signed by it.
    pub fn csr(&self) -> &[u8] {
        &self.csr
    }
}

/// Whether `der` is an ECDSA P-384 signature over SHA-384(`message`) by the SEC1 key `public`.
fn verifies(public: &[u8], message: &[u8], der: &[u8]) -> bool {
    use p384::ecdsa::signature::hazmat::PrehashVerifier;
    let Some(key) = twi_proto::point::p384_verifying_key(public) else { return false };
    let Ok(signature) = twi_proto::asn1::ecdsa_p384_signature(der) else { return false };
    key.verify_prehash(&twi_proto::hash::sha384(&[message]), &signature).is_ok()
}
