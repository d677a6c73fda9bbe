//! What the issuer's integration tests share: an attestation result (EAR) as a TWI Verifier
//! signs it, made here independently of the issuer's own Verifier.

#![allow(dead_code)]

pub mod http;

use std::time::SystemTime;

use twi_issuer::ear::{Appraisal, Ear, FreshnessInput, FreshnessKind, TrustVector, VerifierId};

/// An EAR for the `twi` submod of an admitted launch, binding `key_sec1` and `nonce` (as a
/// `present-nonce` freshness input too), valid five minutes: `hardware` is the trust vector's
/// hardware claim (its status follows from it), `policy_id` and `verifier_claims` what the
/// policy concluded.
pub fn affirming_ear(
    key_sec1: &[u8],
    nonce: &[u8],
    hardware: i8,
    policy_id: String,
    verifier_claims: serde_json::Map<String, serde_json::Value>,
    now: SystemTime,
) -> Ear {
    let appraisal = Appraisal {
        status: None,
        trust_vector: TrustVector::admitted_launch(hardware),
        policy_ids: vec![policy_id],
        nonce: Some(nonce.to_vec()),
        key_spki_der: None,
        verifier_claims,
        freshness: Some(FreshnessInput { kind: FreshnessKind::PresentNonce, value: nonce.to_vec() }),
    }
    .bind_key(key_sec1)
    .unwrap();
    let verifier_id = VerifierId { build: "twi-issuer 0.1.0".into(), developer: "https://example.org/twi".into() };
    let mut ear = Ear::new(verifier_id, now, "twi", appraisal);
    ear.nonce = Some(nonce.to_vec());
    ear.exp = Some(twi_issuer::jose::unix_seconds(now) + 300);
    ear
}
