//! Interop: Veraison's `ear` crate 0.6 (draft-ietf-rats-ear-04, an implementation independent of
//! ours) verifies and decodes the attestation results the TWI Verifier signs, as JWT and as CWT,
//! and its validation (profile, claim names and types, verifier id, the overall status no
//! better than the submods') accepts them.

mod support;

use std::time::SystemTime;

use p384::ecdsa::SigningKey;
use p384::elliptic_curve::Generate;
use twi_issuer::ear::{Status, claim};

fn verifier_jwk(key: &SigningKey) -> Vec<u8> {
    serde_json::to_vec(&twi_issuer::jose::Jwk::published(key.verifying_key(), "twi-verifier")).unwrap()
}

fn sample(hardware: i8) -> (SigningKey, twi_issuer::ear::Ear, Vec<u8>) {
    let verifier = SigningKey::try_generate().unwrap();
    let workload = SigningKey::try_generate().unwrap();
    let sec1 = workload.verifying_key().to_sec1_point(false).as_bytes().to_vec();
    let mut claims = serde_json::Map::new();
    claims.insert("workload-id".into(), "spiffe://example.org/payroll-app".into());
    let policy_id = "twi-policy:example.org@2026-11-23.1".to_string();
    let ear = support::affirming_ear(&sec1, &[0x42; 32], hardware, policy_id, claims, SystemTime::now());
    (verifier, ear, sec1)
}

fn check_decoded(theirs: &ear::Ear, ours: &twi_issuer::ear::Ear, status: &str) {
    assert_eq!(theirs.profile, "tag:ietf.org,2026:rats/ear#04");
    assert_eq!(theirs.iat as u64, ours.iat);
    assert_eq!(theirs.vid.build, ours.verifier_id.build);
    assert_eq!(theirs.vid.developer, ours.verifier_id.developer);
    assert_eq!(theirs.status.map(|s| s.to_string()), Some(status.to_string()));
    let twi = &theirs.submods["twi"];
    assert_eq!(twi.status.to_string(), status);
    assert_eq!(twi.policy_ids, ["twi-policy:example.org@2026-11-23.1"]);
    assert_eq!(Some(twi.trust_vector.hardware.value()), ours.submods["twi"].trust_vector.hardware);
    let ka = twi.key_attestation.as_ref().expect("the key attestation is Veraison's extension");
    assert_eq!(ka.pub_key.as_slice(), ours.submods["twi"].key_spki_der.as_deref().unwrap());
    assert!(twi.verifier_claims.contains_key("workload-id"));
    assert!(twi.verifier_claims.contains_key("tacra_freshness"));
    theirs.validate().expect("Veraison's validation accepts the EAR");
}

#[test]
fn veraison_ear_reads_and_validates_our_jwt() {
    for (hardware, status) in
        [(claim::GENUINE_HARDWARE, "affirming"), (claim::UNRECOGNIZED_HARDWARE, "contraindicated")]
    {
        let (verifier, ours, _) = sample(hardware);
        assert_eq!(ours.status().name(), status);
        let jwt = ours.sign_jwt(&verifier, Some("twi-verifier")).unwrap();
        let theirs = ear::Ear::from_jwt_jwk(&jwt, ear::Algorithm::ES384, &verifier_jwk(&verifier))
            .unwrap_or_else(|e| panic!("Veraison's ear refused our JWT: {e}"));
        check_decoded(&theirs, &ours, status);
        // Under another key it is refused.
        let other = SigningKey::try_generate().unwrap();
        assert!(ear::Ear::from_jwt_jwk(&jwt, ear::Algorithm::ES384, &verifier_jwk(&other)).is_err());
    }
}

#[test]
fn veraison_ear_reads_and_validates_our_cwt() {
    for (hardware, status) in
        [(claim::GENUINE_HARDWARE, "affirming"), (claim::UNRECOGNIZED_HARDWARE, "contraindicated")]
    {
        let (verifier, ours, _) = sample(hardware);
        let cwt = ours.sign_cwt(&verifier, Some(b"twi-verifier")).unwrap();
        let theirs = ear::Ear::from_cose_jwk(&cwt, ear::Algorithm::ES384, &verifier_jwk(&verifier))
            .unwrap_or_else(|e| panic!("Veraison's ear refused our CWT: {e}"));
        check_decoded(&theirs, &ours, status);
    }
}

#[test]
fn what_veraison_writes_we_read() {
    // The other direction: an EAR Veraison's crate builds (claims only; its signing wants a PEM
    // key of its own) reads back through our decoder with the same meaning.
    let (_, ours, _) = sample(claim::UNRECOGNIZED_HARDWARE);
    let json = serde_json::to_string(&ours.to_json()).unwrap();
    let theirs: ear::Ear = serde_json::from_str(&json).unwrap();
    let rewritten = serde_json::to_value(&theirs).unwrap();
    let back = twi_issuer::ear::Ear::from_json(rewritten.as_object().unwrap()).unwrap();
    assert_eq!(back, ours);
    assert_eq!(back.status(), Status::Contraindicated);
    let mut cbor = Vec::new();
    coset::cbor::ser::into_writer(&theirs, &mut cbor).unwrap();
    let value: coset::cbor::value::Value = coset::cbor::de::from_reader(cbor.as_slice()).unwrap();
    assert_eq!(twi_issuer::ear::Ear::from_cbor(&value).unwrap(), ours);
}
