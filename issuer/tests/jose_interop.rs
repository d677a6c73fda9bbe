//! The WIT (ES384, and ES256 as a `wit_alg = "ES256"` policy makes it), its proof token and the
//! EAR JWT verify with a standard JOSE library: Python's `jwcrypto` (`qemu/install-deps`
//! installs it), driven by the test kit's `jose_check.py`.
//!
//! This test fails, rather than skips, when python3 or jwcrypto cannot be had: interoperability
//! is a requirement (issue 6), not a nicety.

mod support;

use std::time::{Duration, SystemTime};

use p384::ecdsa::SigningKey;
use p384::elliptic_curve::Generate;
use serde_json::{Map, json};
use twi_issuer::ear::claim;
use twi_issuer::jose::{self, EcSigningKey, Jwk};
use twi_issuer::wit::{Wit, sign_wpt};
use twi_testkit::tools::{Python, jose_check};

fn public_jwk(key: &SigningKey) -> serde_json::Value {
    let jwk = Jwk::from_p384(&p384::PublicKey::from(key.verifying_key()));
    serde_json::to_value(jwk).unwrap()
}

/// payroll-app's WIT for the guest key `workload` (SEC1), valid from `now`, located in DE.
fn payroll_wit(workload_sec1: &[u8], now: SystemTime) -> Wit {
    let (iss, sub) = ("https://issuer.example.org", "spiffe://example.org/payroll-app");
    Wit::new(iss, sub, workload_sec1, now, Duration::from_secs(3600)).unwrap().with_claim("location", "DE").unwrap()
}

#[test]
fn wit_wpt_and_ear_verify_with_jwcrypto() {
    // Fail before anything is made when jwcrypto is missing.
    Python::with(&["jwcrypto", "cryptography"]);
    let ca = SigningKey::try_generate().unwrap();
    let verifier = SigningKey::try_generate().unwrap();
    let workload = SigningKey::try_generate().unwrap();
    let workload_sec1 = workload.verifying_key().to_sec1_point(false).as_bytes().to_vec();
    let now = SystemTime::now();

    let wit =
        payroll_wit(&workload_sec1, now).with_claim("handles-pii", true).unwrap().with_claim("clearance", 2).unwrap();
    let wit_token = wit.sign(&ca, Some("ca-2026")).unwrap();
    let aud = "https://payroll-db.example.org/records";
    let wpt_token = sign_wpt(&workload, &wit_token, aud, now, Duration::from_secs(120)).unwrap();

    let mut policy_claims = Map::new();
    policy_claims.insert("workload-id".into(), "spiffe://example.org/payroll-app".into());
    let policy_id = "twi-policy:example.org@2026-11-23.1".to_string();
    let ear =
        support::affirming_ear(&workload_sec1, &[0x42; 32], claim::GENUINE_HARDWARE, policy_id, policy_claims, now);
    let ear_token = ear.sign_jwt(&verifier, None).unwrap();

    // Tokens jwcrypto must refuse: another key, a flipped payload, alg none.
    let (head, rest) = wit_token.split_once('.').unwrap();
    let (payload, sig) = rest.split_once('.').unwrap();
    let mut flipped = payload.as_bytes().to_vec();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let flipped = format!("{head}.{}.{sig}", String::from_utf8(flipped).unwrap());
    let none_header = jose::b64url(br#"{"alg":"none","typ":"wit+jwt"}"#);
    let must_fail = json!([
        { "name": "a WIT under another key", "token": wit_token, "key": public_jwk(&verifier) },
        { "name": "a WIT with a changed payload", "token": flipped, "key": public_jwk(&ca) },
        { "name": "a WIT with alg none", "token": format!("{none_header}.{payload}."), "key": public_jwk(&ca) },
        { "name": "a WPT signed by the CA instead of the workload",
          "token": sign_wpt(&ca, &wit_token, aud, now, Duration::from_secs(120)).unwrap(),
          "key": public_jwk(&workload) },
    ]);
    let input = json!({
        "wit": { "token": wit_token, "issuer_key": public_jwk(&ca),
                 "claims": { "location": "DE", "handles-pii": true, "clearance": 2 } },
        "wpt": { "token": wpt_token, "aud": aud },
        "ear": { "token": ear_token, "verifier_key": public_jwk(&verifier), "status": "affirming" },
        "must_fail": must_fail,
    });

    jwcrypto_passes(&input, &["EAR binds the WIT's key", "rejects a WIT with alg none"]);
}

/// jose_check.py (jwcrypto) passes every check on `input`, among them `named`.
#[track_caller]
fn jwcrypto_passes(input: &serde_json::Value, named: &[&str]) {
    let out = jose_check(input);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "jwcrypto did not accept the tokens:\n{stdout}\n{stderr}");
    for check in named {
        assert!(stdout.contains(&format!("ok   {check}\n")), "{check:?} did not pass:\n{stdout}");
    }
    assert!(stdout.trim_end().ends_with("all checks passed"), "{stdout}");
}

/// A WIT as the Credential Authority signs it under `wit_alg = "ES256"` (its P-256 WIT key, kid
/// `twi-wit-es256`), checked by jwcrypto under the JWK the issuer publishes, accepting ES256
/// only; the guest's proof stays ES384 under its P-384 cnf key. jwcrypto refuses the token
/// under another algorithm, another key, or relabelled.
#[test]
fn an_es256_wit_verifies_with_jwcrypto() {
    Python::with(&["jwcrypto", "cryptography"]);
    let ca = p256::ecdsa::SigningKey::try_generate().unwrap();
    let wit_key = EcSigningKey::P256(ca.clone());
    let other = p256::ecdsa::SigningKey::try_generate().unwrap();
    let (p384_ca, workload) = (SigningKey::try_generate().unwrap(), SigningKey::try_generate().unwrap());
    let workload_sec1 = workload.verifying_key().to_sec1_point(false).as_bytes().to_vec();
    let now = SystemTime::now();
    let wit = payroll_wit(&workload_sec1, now);
    let token = wit.sign(&wit_key, Some("twi-wit-es256")).unwrap();
    let aud = "https://payroll-db.example.org/records";
    let wpt = sign_wpt(&workload, &token, aud, now, Duration::from_secs(120)).unwrap();
    let published = Jwk::published(wit_key.public(), "twi-wit-es256");
    assert_eq!((published["crv"].as_str(), published["alg"].as_str()), (Some("P-256"), Some("ES256")));
    let p256_jwk = |key: &p256::ecdsa::SigningKey| serde_json::to_value(Jwk::from_public(key.verifying_key())).unwrap();
    let relabelled =
        format!("{}.{}", jose::b64url(br#"{"alg":"ES384","typ":"wit+jwt"}"#), token.split_once('.').unwrap().1);
    let es384 = wit.sign(&p384_ca, None).unwrap();
    let input = json!({
        "wit": { "token": token, "issuer_key": published, "alg": "ES256", "claims": { "location": "DE" } },
        "wpt": { "token": wpt, "aud": aud },
        "must_fail": [
            { "name": "the ES256 WIT when only ES384 is accepted", "token": token, "key": p256_jwk(&ca), "alg": "ES384" },
            { "name": "the ES256 WIT under another P-256 key", "token": token, "key": p256_jwk(&other), "alg": "ES256" },
            { "name": "the ES256 WIT relabelled ES384", "token": relabelled, "key": p256_jwk(&ca), "alg": "ES384" },
            { "name": "an ES384 WIT under the P-256 key", "token": es384, "key": p256_jwk(&ca), "alg": "ES256" },
        ],
    });
    let named = ["wit+jwt header alg ES256", "wpt+jwt header alg ES384", "rejects the ES256 WIT relabelled ES384"];
    jwcrypto_passes(&input, &named);
}
