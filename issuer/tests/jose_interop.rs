//! The WIT, its proof token and the EAR JWT verify with a standard JOSE library: Python's
//! `jwcrypto` (`qemu/install-deps` installs it), driven by the test kit's `jose_check.py`.
//!
//! This test fails, rather than skips, when python3 or jwcrypto cannot be had: interoperability
//! is a requirement (issue 6), not a nicety.

mod support;

use std::time::{Duration, SystemTime};

use p384::ecdsa::SigningKey;
use p384::elliptic_curve::Generate;
use serde_json::{Map, json};
use twi_issuer::ear::claim;
use twi_issuer::jose::{self, Jwk};
use twi_issuer::wit::{Wit, sign_wpt};
use twi_testkit::tools::{Python, jose_check};

fn public_jwk(key: &SigningKey) -> serde_json::Value {
    let jwk = Jwk::from_p384(&p384::PublicKey::from(key.verifying_key()));
    serde_json::to_value(jwk).unwrap()
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

    let wit = Wit::new(
        "https://issuer.example.org",
        "spiffe://example.org/payroll-app",
        &workload_sec1,
        now,
        Duration::from_secs(3600),
    )
    .unwrap()
    .with_claim("location", "DE")
    .unwrap()
    .with_claim("handles-pii", true)
    .unwrap()
    .with_claim("clearance", 2)
    .unwrap();
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

    let out = jose_check(&input);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "jwcrypto did not accept the tokens:\n{stdout}\n{stderr}");
    assert!(stdout.contains("ok   EAR binds the WIT's key"), "{stdout}");
    assert!(stdout.contains("ok   rejects a WIT with alg none"), "{stdout}");
    assert!(stdout.trim_end().ends_with("all checks passed"), "{stdout}");
}
