//! The EAR unit tests: JWT and CWT carry the same claims under draft-ietf-rats-ear-04's names,
//! the status follows the trustworthiness vector, and every damage is refused.

use super::cbor::{as_i64, as_map, get};
use super::*;
use p384::elliptic_curve::Generate;
use serde_json::json;
use std::time::Duration;

fn sample(workload_key: &SigningKey, hardware: i8) -> Ear {
    let sec1 = workload_key.verifying_key().to_sec1_point(false).as_bytes().to_vec();
    let mut claims = Map::new();
    claims.insert("workload-id".into(), "spiffe://example.org/payroll-app".into());
    claims.insert("claims".into(), json!({ "location": "DE", "handles-pii": true, "tier": 2 }));
    let appraisal = Appraisal {
        status: None,
        trust_vector: TrustVector::admitted_launch(hardware),
        policy_ids: vec!["twi-policy:example.org@7".into()],
        nonce: Some(vec![7; 32]),
        key_spki_der: None,
        verifier_claims: claims,
        freshness: Some(FreshnessInput { kind: FreshnessKind::PresentNonce, value: vec![7; 32] }),
    }
    .bind_key(&sec1)
    .unwrap();
    let mut ear = Ear::new(
        VerifierId { build: "twi-issuer 0.1.0".into(), developer: "https://example.org/twi".into() },
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000),
        "twi",
        appraisal,
    );
    ear.nonce = Some(vec![7; 32]);
    ear.exp = Some(1_750_000_300);
    ear
}

#[test]
fn jwt_and_cwt_round_trip_the_same_claims() {
    let verifier = SigningKey::try_generate().unwrap();
    let workload = SigningKey::try_generate().unwrap();
    let ear = sample(&workload, claim::GENUINE_HARDWARE);
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_100);
    let jwt = ear.sign_jwt(&verifier, Some("verifier-1")).unwrap();
    assert_eq!(Ear::verify_jwt(&jwt, verifier.verifying_key(), now).unwrap(), ear);
    let header = jose::decode_unverified(&jwt).unwrap().header;
    assert_eq!(header["typ"], "eat+jwt");
    let cwt = ear.sign_cwt(&verifier, Some(b"verifier-1")).unwrap();
    assert_eq!(cwt[0], 0xD2, "COSE_Sign1 tag 18");
    let back = Ear::verify_cwt(&cwt, verifier.verifying_key(), now).unwrap();
    assert_eq!(back, ear);
    let bound = back.submods["twi"].bound_key().unwrap().unwrap();
    assert_eq!(bound, p384::PublicKey::from(workload.verifying_key()));
    // JSON names as draft-ietf-rats-ear-04 writes them.
    let json = ear.to_json();
    assert_eq!(json["eat_profile"], "tag:ietf.org,2026:rats/ear#04");
    assert_eq!(json["ear_verifier_id"]["build"], "twi-issuer 0.1.0");
    assert_eq!(json["ear_status"], "affirming");
    let twi = &json["submods"]["twi"];
    assert_eq!(twi["ear_status"], "affirming");
    assert_eq!(twi["ear_trustworthiness_vector"]["hardware"], 2);
    assert_eq!(twi["ear_appraisal_policy_ids"], json!(["twi-policy:example.org@7"]));
    assert_eq!(twi["ear_verifier_claims"]["tacra_freshness"]["kind"], "present-nonce");
    assert_eq!(twi["ear_verifier_claims"]["workload-id"], "spiffe://example.org/payroll-app");
    assert!(twi["ear_veraison_key_attestation"]["akpub"].is_string());
    for old in ["ear.status", "ear.verifier-id", "ear.appraisal-policy-id"] {
        assert!(!json.contains_key(old) && twi.get(old).is_none(), "{old} is the older draft's name");
    }
}

#[test]
fn the_status_is_the_worst_tier_of_the_vector() {
    let workload = SigningKey::try_generate().unwrap();
    let simulated = sample(&workload, claim::UNRECOGNIZED_HARDWARE);
    assert_eq!(simulated.status(), Status::Contraindicated);
    let json = simulated.to_json();
    assert_eq!(json["ear_status"], "contraindicated");
    assert_eq!(json["submods"]["twi"]["ear_status"], "contraindicated");
    let unsafe_tcb = sample(&workload, claim::UNSAFE_HARDWARE);
    assert_eq!(unsafe_tcb.status(), Status::Warning);
    // The Verifier may say worse than its vector, never better.
    let mut worse = sample(&workload, claim::GENUINE_HARDWARE);
    worse.submods.get_mut("twi").unwrap().status = Some(Status::Warning);
    assert_eq!(worse.status(), Status::Warning);
    let verifier = SigningKey::try_generate().unwrap();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_100);
    let jwt = worse.sign_jwt(&verifier, None).unwrap();
    assert_eq!(Ear::verify_jwt(&jwt, verifier.verifying_key(), now).unwrap(), worse);
    let mut better = sample(&workload, claim::UNRECOGNIZED_HARDWARE).to_json();
    better["submods"]["twi"]["ear_status"] = "affirming".into();
    assert!(matches!(Ear::from_json(&better), Err(EarError::Malformed(m)) if m.contains("better than its")));
    let mut overall = sample(&workload, claim::UNRECOGNIZED_HARDWARE).to_json();
    overall["ear_status"] = "affirming".into();
    assert!(matches!(Ear::from_json(&overall), Err(EarError::Malformed(m)) if m.contains("worst submod")));
    assert_eq!(Status::of_claim(-97), Status::Contraindicated);
    assert_eq!(Status::of_claim(-2), Status::Affirming);
    assert_eq!(Status::of_claim(1), Status::None);
}

#[test]
fn cbor_labels_are_the_drafts() {
    let ear = sample(&SigningKey::try_generate().unwrap(), claim::GENUINE_HARDWARE);
    let cbor = ear.to_cbor().unwrap();
    let m = cbor.as_map().unwrap();
    let keys: Vec<i64> = m.iter().map(|(k, _)| as_i64(k).unwrap()).collect();
    assert_eq!(keys, [265, 6, 4, 1004, 1000, 266, 10]);
    let submods = as_map(get(m, 266).unwrap(), "").unwrap();
    let twi = as_map(&submods[0].1, "").unwrap();
    assert_eq!(get(twi, 1000).and_then(as_i64), Some(2));
    let tv = as_map(get(twi, 1001).unwrap(), "").unwrap();
    assert_eq!(get(tv, 4).and_then(as_i64), Some(2));
    assert_eq!(get(twi, 1003).and_then(|v| v.as_array()).map(Vec::len), Some(1));
    let claims = as_map(get(twi, 1006).unwrap(), "").unwrap();
    let freshness = claims.iter().find(|(k, _)| k.as_text() == Some(FRESHNESS_CLAIM)).unwrap();
    let value = as_map(&freshness.1, "").unwrap().iter().find(|(k, _)| k.as_text() == Some("value")).unwrap();
    assert_eq!(value.1.as_bytes(), Some(&vec![7; 32]));
    assert!(get(twi, -70002).is_some());
}

#[test]
fn refuses_wrong_key_expired_tampered_and_garbage() {
    let verifier = SigningKey::try_generate().unwrap();
    let other = SigningKey::try_generate().unwrap();
    let ear = sample(&other, claim::GENUINE_HARDWARE);
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_100);
    let late = SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_300);
    let jwt = ear.sign_jwt(&verifier, None).unwrap();
    assert!(matches!(Ear::verify_jwt(&jwt, other.verifying_key(), now), Err(EarError::Jose(JoseError::BadSignature))));
    assert!(matches!(Ear::verify_jwt(&jwt, verifier.verifying_key(), late), Err(EarError::Expired { .. })));
    // A token typed as another kind of JWT is not an EAR.
    let plain = jose::sign_compact(&verifier, "JWT", None, &ear.to_json()).unwrap();
    assert!(matches!(
        Ear::verify_jwt(&plain, verifier.verifying_key(), now),
        Err(EarError::Jose(JoseError::Type { .. }))
    ));
    let cwt = ear.sign_cwt(&verifier, None).unwrap();
    assert_eq!(Ear::verify_cwt(&cwt, other.verifying_key(), now), Err(EarError::BadSignature));
    assert!(matches!(Ear::verify_cwt(&cwt, verifier.verifying_key(), late), Err(EarError::Expired { .. })));
    for i in 0..cwt.len() {
        let mut bad = cwt.clone();
        bad[i] ^= 0x01;
        assert!(Ear::verify_cwt(&bad, verifier.verifying_key(), now).is_err(), "flip at {i} accepted");
    }
    for len in 0..cwt.len() {
        assert!(Ear::verify_cwt(&cwt[..len], verifier.verifying_key(), now).is_err());
    }
    let mut empty = ear.clone();
    empty.submods.clear();
    assert!(matches!(empty.sign_jwt(&verifier, None), Err(EarError::Malformed(_))));
    let mut short = ear.clone();
    short.submods.get_mut("twi").unwrap().nonce = Some(vec![1; 4]);
    assert!(matches!(short.sign_cwt(&verifier, None), Err(EarError::Malformed(_))));
}
