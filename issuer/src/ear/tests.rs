//! The EAR unit tests: JWT and CWT carry the same claims, and every damage is refused.

use super::*;
use p384::elliptic_curve::Generate;
use std::time::Duration;

fn sample(workload_key: &SigningKey) -> Ear {
    let sec1 = workload_key.verifying_key().to_sec1_point(false).as_bytes().to_vec();
    let mut claims = Map::new();
    claims.insert("workload-id".into(), "spiffe://example.org/payroll-app".into());
    claims.insert("claims".into(), json!({ "location": "DE", "handles-pii": true, "tier": 2 }));
    let appraisal = Appraisal {
        status: Some(Status::Affirming),
        trust_vector: TrustVector::admitted_launch(claim::GENUINE_HARDWARE),
        policy_id: Some("twi-policy:example.org@7".into()),
        key_spki_der: None,
        policy_claims: claims,
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
    let ear = sample(&workload);
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_100);
    let jwt = ear.sign_jwt(&verifier, Some("verifier-1")).unwrap();
    assert_eq!(Ear::verify_jwt(&jwt, verifier.verifying_key(), now).unwrap(), ear);
    let cwt = ear.sign_cwt(&verifier, Some(b"verifier-1")).unwrap();
    assert_eq!(cwt[0], 0xD2, "COSE_Sign1 tag 18");
    let back = Ear::verify_cwt(&cwt, verifier.verifying_key(), now).unwrap();
    assert_eq!(back, ear);
    let bound = back.submods["twi"].bound_key().unwrap().unwrap();
    assert_eq!(bound, p384::PublicKey::from(workload.verifying_key()));
    // JSON names as Veraison writes them.
    let json = ear.to_json();
    assert_eq!(json["eat_profile"], EAR_PROFILE);
    assert_eq!(json["submods"]["twi"]["ear.status"], "affirming");
    assert_eq!(json["submods"]["twi"]["ear.trustworthiness-vector"]["hardware"], 2);
    assert!(json["submods"]["twi"]["ear.veraison.key-attestation"]["akpub"].is_string());
}

#[test]
fn cbor_labels_are_the_drafts() {
    let ear = sample(&SigningKey::try_generate().unwrap());
    let cbor = ear.to_cbor().unwrap();
    let m = cbor.as_map().unwrap();
    let keys: Vec<i64> = m.iter().map(|(k, _)| as_i64(k).unwrap()).collect();
    assert_eq!(keys, [265, 6, 4, 1004, 266, 10]);
    let submods = as_map(get(m, 266).unwrap(), "").unwrap();
    let twi = as_map(&submods[0].1, "").unwrap();
    assert_eq!(get(twi, 1000).and_then(as_i64), Some(2));
    let tv = as_map(get(twi, 1001).unwrap(), "").unwrap();
    assert_eq!(get(tv, 4).and_then(as_i64), Some(2));
    assert!(get(twi, -70002).is_some());
}

#[test]
fn refuses_wrong_key_expired_tampered_and_garbage() {
    let verifier = SigningKey::try_generate().unwrap();
    let other = SigningKey::try_generate().unwrap();
    let ear = sample(&other);
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_100);
    let late = SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_300);
    let jwt = ear.sign_jwt(&verifier, None).unwrap();
    assert!(matches!(Ear::verify_jwt(&jwt, other.verifying_key(), now), Err(EarError::Jose(JoseError::BadSignature))));
    assert!(matches!(Ear::verify_jwt(&jwt, verifier.verifying_key(), late), Err(EarError::Expired { .. })));
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
}
