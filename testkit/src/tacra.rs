//! TACRA acquisitions as a test plays the workload, built independently of the runtime's code:
//! the PKCS#10 request with x509-cert's `RequestBuilder` (the runtime assembles its own), the
//! SubjectPublicKeyInfo with p384's encoder, and the binding hashed here from the draft's
//! definition (`len32(x) ‖ x` for freshness, rp_id, target, subject; SHA-512). A mistake in
//! either implementation makes the issuer's recomputation disagree.

use der::Encode;
use p384::ecdsa::{DerSignature, SigningKey};
use p384::pkcs8::EncodePublicKey;
use sha2::{Digest, Sha512};
use x509_cert::builder::{Builder, RequestBuilder};
use x509_cert::name::Name;

/// The target the tests acquire for when the target does not matter.
pub const TARGET: &str = "twi:test";

/// A PKCS#10 request (DER) for `key`, signed by it, with an empty subject.
pub fn csr(key: &SigningKey) -> Vec<u8> {
    let builder = RequestBuilder::new(Name::default()).expect("an empty subject");
    builder.build::<_, DerSignature>(key).expect("the test key signs").to_der().expect("DER")
}

/// The DER SubjectPublicKeyInfo of a P-384 key given as a SEC1 point.
pub fn spki(sec1: &[u8]) -> Vec<u8> {
    let key = p384::PublicKey::from_sec1_bytes(sec1).expect("a P-384 point");
    key.to_public_key_der().expect("SPKI").as_bytes().to_vec()
}

/// TACRA's REPORTDATA: SHA-512(len32(freshness) ‖ freshness ‖ len32(rp_id) ‖ rp_id ‖
/// len32(target) ‖ target ‖ len32(subject) ‖ subject).
pub fn report_data(freshness: &[u8], rp_id: &str, target: &str, subject: &[u8]) -> [u8; 64] {
    let mut h = Sha512::new();
    for part in [freshness, rp_id.as_bytes(), target.as_bytes(), subject] {
        h.update((part.len() as u32).to_be_bytes());
        h.update(part);
    }
    h.finalize().into()
}

/// Enrollment of `key` for `target`: the REPORTDATA and the CSR that goes with the evidence.
pub fn enroll(key: &SigningKey, freshness: &[u8], rp_id: &str, target: &str) -> ([u8; 64], Vec<u8>) {
    let csr = csr(key);
    (report_data(freshness, rp_id, target, &csr), csr)
}

/// Retrieval to the encryption key `cek_sec1` for `target`: the REPORTDATA.
pub fn retrieve(cek_sec1: &[u8], freshness: &[u8], rp_id: &str, target: &str) -> [u8; 64] {
    report_data(freshness, rp_id, target, &spki(cek_sec1))
}

/// Mechanism B's proof of possession (draft-novak-twi-attestation, as the runtime makes it):
/// `by`'s DER ECDSA P-384 signature over `"TWI-CREDREQ-v1\0" ‖ nonce ‖ public_key ‖
/// SHA-256(ear)`, written here from the format, not with the project's own encoder. `by` signs
/// for `public_key` (SEC1): another key's, to build a refused request.
pub fn credential_request_proof(by: &SigningKey, nonce: &[u8], ear: &str, public_key: &[u8]) -> Vec<u8> {
    use p384::ecdsa::signature::Signer;
    let mut signed = b"TWI-CREDREQ-v1\0".to_vec();
    signed.extend_from_slice(nonce);
    signed.extend_from_slice(public_key);
    signed.extend_from_slice(&sha2::Sha256::digest(ear.as_bytes()));
    let proof: DerSignature = by.sign(&signed);
    proof.as_bytes().to_vec()
}
