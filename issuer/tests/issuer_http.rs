//! The issuer's HTTP service (`twi_issuer::http`, what `twi serve` runs), driven in-process
//! with tower's `oneshot` on reports signed by a simulated SEV-SNP chip (`SimPsp`): every
//! mechanism over HTTP (D: the Key Store's provisioning and release), and each refusal a 4xx
//! whose `error` says why.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use p384::elliptic_curve::Generate;
use sha2::Digest;
use tower::ServiceExt;
use twi_issuer::http::{ClientAddr, Limits, MAX_BODY, RateLimit, Roles, TlsSettings, Transport};
use twi_issuer::{Issuer, IssuerConfig};

mod support;
use support::http::*;

#[test]
fn mechanism_c_issues_and_a_replayed_nonce_is_refused_with_its_reason() {
    let service = service(Roles::ALL);
    let (status, ca_pem) = service.call_raw(Method::GET, "/v1/ca/certificate", None);
    assert_eq!(status, StatusCode::OK);
    let (signing, key) = workload_key();
    let nonce = service.nonce();
    let request = serde_json::json!({ "mechanism": "c", "evidence": service.evidence(&signing, &nonce) });
    let (status, answer) = service.post("/v1/ca/credential", request.clone());
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_credential(&answer, &key, &ca_pem);

    let (status, answer) = service.post("/v1/ca/credential", request);
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(error(&answer).contains("the nonce was already used (replay)"), "{answer}");

    // A nonce the Verifier never issued establishes no AF_L2 freshness.
    let request = serde_json::json!({ "mechanism": "c", "evidence": service.evidence(&signing, &[7; 32]) });
    let (status, answer) = service.post("/v1/ca/credential", request);
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(error(&answer).contains("requires freshness AF_L2"), "{answer}");
}

/// A launch the policy lists under a host profile it does not admit (`admit = false`) is a 403
/// whose sentence names that profile and the one the workload admits.
#[test]
fn a_launch_under_a_host_profile_not_admitted_is_a_403_naming_it() {
    let mut service = service(Roles::ALL);
    let text = format!(
        "version = \"http-profiles\"\ntrust_domain = \"example.org\"\n\n[[workload]]\nid = \"payroll-app\"\n\
         mechanism = \"c\"\n\n[[workload.reference]]\nlabel = \"v1 (host linux-6.11)\"\nplatform = \"sim-snp\"\n\
         measurement = \"{}\"\nhost_profile = \"linux-6.11\"\n\n[[workload.reference]]\nlabel = \"v1 (host amd-snp-legacy)\"\n\
         platform = \"sim-snp\"\nmeasurement = \"{}\"\nhost_profile = \"amd-snp-legacy\"\nadmit = false\n",
        hex::encode([0x11; 48]),
        hex::encode(MEASUREMENT)
    );
    let policy = twi_issuer::policy::Policy::from_toml(&text).unwrap();
    let config = IssuerConfig { trust_domain: "example.org".into(), sim_snp_root: Some(service.psp.root().clone()) };
    let issuer = Issuer::open(&service._dir.path().join("profiles"), config, policy).unwrap();
    service.rp_id = issuer.rp_id();
    service.router = twi_issuer::http::router(issuer, Roles::ALL);
    // The challenge does not know the launch (no workload admits it), and gives a nonce.
    let challenge = serde_json::json!({
        "platform": "sim-snp", "measurement": hex::encode(MEASUREMENT), "target": TARGET, "credential_type": "x509",
    });
    let (status, answer) = service.post("/v1/challenge", challenge);
    assert_eq!(status, StatusCode::OK, "{answer}");
    let nonce = hex::decode(answer["nonce"].as_str().unwrap()).unwrap();
    let (signing, _) = workload_key();
    let request = serde_json::json!({ "mechanism": "c", "evidence": service.evidence(&signing, &nonce) });
    let (status, answer) = service.post("/v1/ca/credential", request);
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let text = error(&answer);
    assert!(text.contains("launched under host profile amd-snp-legacy"), "{answer}");
    assert!(text.contains("the workload admits host profile linux-6.11 only"), "{answer}");
}

#[test]
fn mechanism_a_returns_the_credential_from_the_verifier() {
    let service = service_with(Roles::ALL, "AF_L2", "a");
    let (_, ca_pem) = service.call_raw(Method::GET, "/v1/ca/certificate", None);
    let (signing, key) = workload_key();
    let nonce = service.nonce();
    let (status, answer) = service.post(
        "/v1/verifier/evidence",
        serde_json::json!({ "mechanism": "a", "evidence": service.evidence(&signing, &nonce) }),
    );
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_credential(&answer, &key, &ca_pem);
    // Issue 14: mechanism c, which the policy does not give this workload, is refused.
    let nonce = service.nonce();
    let request = serde_json::json!({ "mechanism": "c", "evidence": service.evidence(&signing, &nonce) });
    let (status, answer) = service.post("/v1/ca/credential", request);
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(error(&answer).contains("under mechanism a only (the policy's `mechanism`), not c"), "{answer}");
}

#[test]
fn mechanism_b_redeems_the_verifiers_result_once_with_a_proof_of_possession() {
    let service = service_with(Roles::ALL, "AF_L2", "b");
    let (_, ca_pem) = service.call_raw(Method::GET, "/v1/ca/certificate", None);
    let (signing, key) = workload_key();
    let nonce = service.nonce();
    let (status, answer) = service.post(
        "/v1/verifier/evidence",
        serde_json::json!({ "mechanism": "b", "evidence": service.evidence(&signing, &nonce) }),
    );
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["workload_id"], WORKLOAD_ID);
    let ear = answer["attestation_result"].as_str().unwrap().to_string();

    // The EAR verifies under the Verifier's published key, which is not the CA's.
    let (status, jwks) = service.call(Method::GET, "/v1/keys", None);
    assert_eq!(status, StatusCode::OK);
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids, ["twi-verifier", "twi-wit", "twi-log", "twi-keystore"]);
    // Each role its own key: the Verifier's EAR key, the CA's WIT key, the log key and the
    // CA's X.509 key are four different keys, and the EAR verifies under the Verifier's only.
    let ca = <x509_cert::Certificate as der::DecodePem>::from_pem(&ca_pem).unwrap();
    let ca_key =
        p384::PublicKey::from_sec1_bytes(ca.tbs_certificate().subject_public_key_info().subject_public_key.raw_bytes())
            .unwrap();
    let published: Vec<p384::PublicKey> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| serde_json::from_value::<twi_issuer::jose::Jwk>(k.clone()).unwrap().to_p384().unwrap())
        .collect();
    let mut all = published.clone();
    all.push(ca_key);
    for (i, a) in all.iter().enumerate() {
        assert!(all[i + 1..].iter().all(|b| b != a), "a signing key is shared between roles");
    }
    let now = std::time::SystemTime::now();
    twi_issuer::ear::Ear::verify_jwt(&ear, &published[0].into(), now).expect("the EAR is the Verifier's");
    for other in [published[1], published[2], published[3], ca_key] {
        assert!(twi_issuer::ear::Ear::verify_jwt(&ear, &other.into(), now).is_err());
    }

    let proof = twi_testkit::tacra::credential_request_proof(&signing, &nonce, &ear, &key);
    let request = serde_json::json!({
        "mechanism": "b",
        "attestation_result": ear,
        "public_key": hex::encode(&key),
        "proof": hex::encode(&proof),
    });
    // A proof by another key is refused, with the reason.
    let (other, _) = workload_key();
    let forged = twi_testkit::tacra::credential_request_proof(&other, &nonce, &ear, &key);
    let mut bad = request.clone();
    bad["proof"] = hex::encode(forged).into();
    let (status, answer) = service.post("/v1/ca/credential", bad);
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(error(&answer).contains("proof of possession does not verify"), "{answer}");

    let (status, answer) = service.post("/v1/ca/credential", request.clone());
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_credential(&answer, &key, &ca_pem);
    let (status, answer) = service.post("/v1/ca/credential", request);
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(error(&answer).contains("already redeemed (replay)"), "{answer}");
}

/// The answers of one request sent twice at once: exactly one issued (200), the other
/// refused as a replay with `reason`. The issuer works on both concurrently (no issuer-wide
/// lock), so only the nonce store's and the pending results' own atomic take keeps it once.
fn issued_once(answers: [(StatusCode, serde_json::Value); 2], reason: &str) {
    let statuses = answers.each_ref().map(|(status, _)| *status);
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(ok, 1, "exactly one of two concurrent redemptions issues: {answers:?}");
    let (status, refused) = answers.iter().find(|(status, _)| *status != StatusCode::OK).unwrap();
    assert_eq!(*status, StatusCode::FORBIDDEN, "{refused}");
    assert!(error(refused).contains(reason), "{refused}");
}

/// Issue 14: two requests presenting one verifier nonce at the same moment — one credential.
#[test]
fn one_nonce_presented_twice_at_once_issues_once() {
    let service = service(Roles::ALL);
    for _ in 0..4 {
        let (signing, _) = workload_key();
        let nonce = service.nonce();
        let request = serde_json::json!({ "mechanism": "c", "evidence": service.evidence(&signing, &nonce) });
        issued_once(service.post_twice_at_once("/v1/ca/credential", &request), "the nonce was already used (replay)");
    }
}

/// Issue 14: one mechanism-B attestation result redeemed twice at the same moment — one
/// credential.
#[test]
fn one_attestation_result_redeemed_twice_at_once_issues_once() {
    let service = service_with(Roles::ALL, "AF_L2", "b");
    for _ in 0..4 {
        let (signing, key) = workload_key();
        let nonce = service.nonce();
        let evidence = serde_json::json!({ "mechanism": "b", "evidence": service.evidence(&signing, &nonce) });
        let (status, answer) = service.post("/v1/verifier/evidence", evidence);
        assert_eq!(status, StatusCode::OK, "{answer}");
        let ear = answer["attestation_result"].as_str().unwrap().to_string();
        let proof = twi_testkit::tacra::credential_request_proof(&signing, &nonce, &ear, &key);
        let request = serde_json::json!({
            "mechanism": "b", "attestation_result": ear, "public_key": hex::encode(&key), "proof": hex::encode(&proof),
        });
        issued_once(service.post_twice_at_once("/v1/ca/credential", &request), "already redeemed (replay)");
    }
}

#[test]
fn a_hint_the_policy_does_not_honour_is_refused_at_initiate_with_tacras_reason() {
    let service = service(Roles::ALL);
    let ask = |hint: &str| {
        service.post(
            "/v1/challenge",
            serde_json::json!({
                "platform": "sim-snp",
                "measurement": hex::encode(MEASUREMENT),
                "target": TARGET,
                "hint": hint,
            }),
        )
    };
    // The policy lists no hints for the workload: any hint is refused, none is fine.
    let (status, answer) = ask("rotate");
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["code"], "rejected-hint", "{answer}");
    assert!(error(&answer).contains("the hint \"rotate\", which the policy does not honour"), "{answer}");
    assert!(!service.nonce().is_empty());
}

#[test]
fn malformed_bodies_are_400_with_a_reason() {
    let service = service(Roles::ALL);
    let cases: [(&str, &[u8], &str); 6] = [
        ("/v1/challenge", b"{not json", "not a valid request"),
        ("/v1/challenge", br#"{"platform": 5}"#, "platform"),
        ("/v1/challenge", br#"{"platform": "sev"}"#, "unknown platform \"sev\""),
        ("/v1/challenge", br#"{"platform": "sim-snp", "colour": "red"}"#, "unknown field `colour`"),
        (
            "/v1/ca/credential",
            br#"{"mechanism": "c", "evidence": {"platform": "sim-snp", "evidence": "zz", "public_key": "", "nonce": ""}}"#,
            "`evidence.evidence` is not hex",
        ),
        ("/v1/ca/credential", br#"{"mechanism": "b", "public_key": "00"}"#, "mechanism b needs `attestation_result`"),
    ];
    for (path, body, reason) in cases {
        let (status, answer) = service.call(Method::POST, path, Some(body.to_vec()));
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {}: {answer}", String::from_utf8_lossy(body));
        assert!(error(&answer).contains(reason), "{reason:?} not in {answer}");
    }
    // Without a JSON content type.
    let request = Request::builder().method(Method::POST).uri("/v1/challenge").body(Body::from("{}")).unwrap();
    let status = service.runtime.block_on(async { service.router.clone().oneshot(request).await.unwrap().status() });
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[test]
fn an_oversized_body_is_refused_before_it_is_parsed() {
    let service = service(Roles::ALL);
    let mut body = br#"{"platform": "sim-snp", "measurement": ""#.to_vec();
    body.resize(MAX_BODY + 1, b'a');
    let (status, answer) = service.call(Method::POST, "/v1/challenge", Some(body));
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert!(error(&answer).contains(&format!("larger than the limit of {MAX_BODY} bytes")), "{answer}");
}

#[test]
fn unknown_routes_are_404_and_wrong_methods_405_in_json() {
    let service = service(Roles::ALL);
    let (status, answer) = service.call(Method::GET, "/v1/nothing-here", None);
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(error(&answer).contains("no endpoint /v1/nothing-here"), "{answer}");
    let (status, answer) = service.call(Method::GET, "/v1/challenge", None);
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(error(&answer).contains("does not take this method"), "{answer}");
    let (status, answer) = service.call(Method::GET, "/v1/health", None);
    assert_eq!(
        (status, answer["roles"].clone()),
        (StatusCode::OK, serde_json::json!(["verifier", "ca", "key-store", "log"]))
    );
}

#[test]
fn a_verifier_only_process_serves_no_credential_authority() {
    let service = service(Roles::parse("verifier").unwrap());
    let (status, answer) = service.call(Method::GET, "/v1/ca/certificate", None);
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
    assert!(error(&answer).contains("does not serve the Credential Authority role"), "{answer}");
    let (signing, _) = workload_key();
    let nonce = service.nonce();
    let (status, answer) = service.post(
        "/v1/verifier/evidence",
        serde_json::json!({ "mechanism": "a", "evidence": service.evidence(&signing, &nonce) }),
    );
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{answer}");
    assert!(error(&answer).contains("does not serve the Credential Authority role"), "{answer}");
    let (_, jwks) = service.call(Method::GET, "/v1/keys", None);
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1, "only the Verifier's key: {jwks}");
    let (status, answer) = service.call(Method::GET, "/v1/log/checkpoint", None);
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{answer}");
    assert!(error(&answer).contains("does not serve the Log role"), "{answer}");
    // Mechanism C's appraisal is the Credential Authority's to ask for (over mutual TLS, with a
    // certificate under the operator CA), not a workload's.
    let (status, answer) = service.post(
        "/v1/verifier/evidence",
        serde_json::json!({ "mechanism": "c", "evidence": service.evidence(&signing, &nonce) }),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(error(&answer).contains("client certificate under its operator CA"), "{answer}");
}

#[test]
fn a_body_sent_too_slowly_is_cut_off_with_408() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let config = IssuerConfig { trust_domain: "example.org".into(), sim_snp_root: None };
    let issuer = Issuer::open(dir.path(), config, policy(&MEASUREMENT, "AF_L2", "c")).unwrap();
    let app = twi_issuer::http::router_with_timeout(issuer, Roles::ALL, std::time::Duration::from_millis(300));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let address = listener.local_addr().unwrap();
    runtime.spawn(async move { axum::serve(listener, app).await });
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    // Ten bytes announced, one sent, then silence.
    stream
        .write_all(
            b"POST /v1/challenge HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{",
        )
        .unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.ends_with(b"}") {
        let n = stream.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("not received and answered within 300 ms"), "{text}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

/// The HPKE `info` and `aad` of a release of `certificate_der` for `nonce` to `ephemeral`.
fn release_context(nonce: &[u8], ephemeral: &[u8], certificate_der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let certificate_sha256: [u8; 32] = sha2::Sha256::digest(certificate_der).into();
    (twi_proto::msg::key_release_info(nonce, ephemeral), twi_proto::msg::key_release_aad(&certificate_sha256).to_vec())
}

fn unhex(answer: &serde_json::Value, field: &str) -> Vec<u8> {
    hex::decode(answer[field].as_str().unwrap_or_else(|| panic!("no `{field}` in {answer}"))).unwrap()
}

#[test]
fn mechanism_d_releases_the_provisioned_key_once_per_nonce_to_the_bound_ephemeral_key_only() {
    use twi_attester::hpke;
    // AF_L0: the Key Store's own one-release-per-nonce rule is what refuses a replay.
    let service = service_with(Roles::ALL, "AF_L0", "d");
    let (_, ca_pem) = service.call_raw(Method::GET, "/v1/ca/certificate", None);
    let ephemeral = p384::SecretKey::try_generate().unwrap();
    let ephemeral_public = hpke::serialize_public_key(&ephemeral.public_key()).to_vec();
    let release = |nonce: &[u8]| {
        let evidence = service.retrieval(&ephemeral_public, nonce);
        service.post("/v1/key-store/release", serde_json::json!({ "evidence": evidence }))
    };

    // Nothing provisioned yet: refused, saying what to do.
    let (status, answer) = release(&[0x41; 32]);
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(
        error(&answer).contains(&format!("no credential is provisioned for {WORKLOAD_ID} in the Key Store")),
        "{answer}"
    );

    // The workload owner's step: provisioned once, then held.
    let provision = serde_json::json!({ "platform": "sim-snp", "measurement": hex::encode(MEASUREMENT) });
    let (status, provisioned) = service.post_as_owner("/v1/key-store/provision", provision.clone());
    assert_eq!(status, StatusCode::OK, "{provisioned}");
    assert_eq!(
        (provisioned["workload_id"].as_str(), provisioned["created"].as_bool()),
        (Some(WORKLOAD_ID), Some(true))
    );
    let (status, again) = service.post_as_owner("/v1/key-store/provision", provision);
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["created"], false, "{again}");
    assert_eq!(again["certificate"], provisioned["certificate"], "the same credential is held");
    let provisioned_key = unhex(&provisioned, "public_key");
    let provisioned_der = unhex(&provisioned, "certificate");
    let cert = <x509_cert::Certificate as der::Decode>::from_der(&provisioned_der).unwrap();
    assert_eq!(cert.tbs_certificate().subject_public_key_info().subject_public_key.raw_bytes(), provisioned_key);

    // The release: a certificate issued now for the provisioned key (a serial of its own, the
    // issuer's extensions), the key sealed to the ephemeral key the evidence binds, a receipt
    // under the Key Store's published key.
    let nonce = [0x42u8; 32];
    let (status, released) = release(&nonce);
    assert_eq!(status, StatusCode::OK, "{released}");
    let released_der = unhex(&released, "certificate");
    assert_ne!(released_der, provisioned_der);
    let released_cert = <x509_cert::Certificate as der::Decode>::from_der(&released_der).unwrap();
    assert_ne!(released_cert.tbs_certificate().serial_number(), cert.tbs_certificate().serial_number());
    let marker = twi_issuer::oids::Oids::default().simulated_tee;
    assert!(released_cert.tbs_certificate().extensions().unwrap().iter().any(|e| e.extn_id == marker && e.critical));
    assert_credential(&released, &provisioned_key, &ca_pem);
    let (info, aad) = release_context(&nonce, &ephemeral_public, &released_der);
    let (enc, ciphertext) = (unhex(&released, "enc"), unhex(&released, "ciphertext"));
    let mut scalar = [0u8; 48];
    hpke::open(&ephemeral, &enc, &info, &aad, &ciphertext, &mut scalar).expect("the bound ephemeral key opens it");
    let opened = p384::SecretKey::from_slice(&scalar).unwrap();
    assert_eq!(
        hpke::serialize_public_key(&opened.public_key()).as_slice(),
        provisioned_key.as_slice(),
        "the released key is the provisioned key"
    );
    // Only the bound key opens it, and only for this nonce.
    let other = p384::SecretKey::try_generate().unwrap();
    assert!(hpke::open(&other, &enc, &info, &aad, &ciphertext, &mut scalar).is_err());
    let (other_info, _) = release_context(&[0x43; 32], &ephemeral_public, &released_der);
    assert!(hpke::open(&ephemeral, &enc, &other_info, &aad, &ciphertext, &mut scalar).is_err());
    // The receipt verifies under the key /v1/keys publishes for the Key Store.
    let (_, jwks) = service.call(Method::GET, "/v1/keys", None);
    let published = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == "twi-keystore").unwrap().clone();
    assert_eq!(published, released["key_store_key"]);
    let jwk: twi_issuer::jose::Jwk = serde_json::from_value(published).unwrap();
    let receipt = twi_issuer::jose::verify_compact(
        released["receipt"].as_str().unwrap(),
        p384::ecdsa::VerifyingKey::from(&jwk.to_p384().unwrap()),
        "twi-key-release+jwt",
    )
    .expect("the receipt verifies under the Key Store's key");
    assert_eq!(receipt.claims["ephemeral-key"], hex::encode(&ephemeral_public).as_str());

    // The same nonce again: the Key Store refuses, with its reason.
    let (status, answer) = release(&nonce);
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(error(&answer).contains("already released a key for this challenge (replay)"), "{answer}");

    // Enrollment evidence (a CSR for a signing key) gets no key release.
    let evidence = service.evidence(&workload_key().0, &[0x44; 32]);
    let (status, answer) = service.post("/v1/key-store/release", serde_json::json!({ "evidence": evidence }));
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(error(&answer).contains("retrieval evidence binds an encryption key"), "{answer}");
}

#[test]
fn mechanism_d_under_af_l2_takes_the_verifiers_nonce_once() {
    let service = service_with(Roles::ALL, "AF_L2", "d");
    let provision = serde_json::json!({ "platform": "sim-snp", "measurement": hex::encode(MEASUREMENT) });
    assert_eq!(service.post_as_owner("/v1/key-store/provision", provision).0, StatusCode::OK);
    let ephemeral = p384::SecretKey::try_generate().unwrap();
    let ephemeral_public = twi_attester::hpke::serialize_public_key(&ephemeral.public_key()).to_vec();
    let nonce = service.nonce();
    let evidence = service.retrieval(&ephemeral_public, &nonce);
    let request = serde_json::json!({ "evidence": evidence });
    let (status, answer) = service.post("/v1/key-store/release", request.clone());
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = service.post("/v1/key-store/release", request);
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(error(&answer).contains("the nonce was already used (replay)"), "{answer}");
    // A measurement no workload admits has nothing to provision.
    let provision = serde_json::json!({ "platform": "sim-snp", "measurement": hex::encode([0x11; 48]) });
    let (status, answer) = service.post_as_owner("/v1/key-store/provision", provision);
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(error(&answer).contains("the policy admits no workload with measurement 1111"), "{answer}");
    // Mechanism d's evidence does not go to the Verifier's endpoint.
    let (status, answer) = service.post(
        "/v1/verifier/evidence",
        serde_json::json!({ "mechanism": "d", "evidence": service.retrieval(&ephemeral_public, &[0; 32]) }),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(error(&answer).contains("POST /v1/key-store/release"), "{answer}");
}

#[test]
fn a_process_without_the_key_store_role_answers_501() {
    let service = service(Roles::parse("verifier,ca").unwrap());
    let provision = serde_json::json!({ "platform": "sim-snp", "measurement": hex::encode(MEASUREMENT) });
    let (status, answer) = service.post_as_owner("/v1/key-store/provision", provision);
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{answer}");
    assert!(error(&answer).contains("does not serve the Key Store role"), "{answer}");
    let (_, key) = workload_key();
    let evidence = service.retrieval(&key, &[0x42; 32]);
    let (status, answer) = service.post("/v1/key-store/release", serde_json::json!({ "evidence": evidence }));
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{answer}");
    assert!(error(&answer).contains("does not serve the Key Store role"), "{answer}");
    let (_, jwks) = service.call(Method::GET, "/v1/keys", None);
    assert!(jwks["keys"].as_array().unwrap().iter().all(|k| k["kid"] != "twi-keystore"), "{jwks}");
    // A Key Store without the Verifier in its process releases nothing.
    let service = service_with(Roles::parse("key-store,ca").unwrap(), "AF_L0", "d");
    let (status, answer) = service.post("/v1/key-store/release", serde_json::json!({ "evidence": evidence }));
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{answer}");
    assert!(error(&answer).contains("does not serve the Verifier role"), "{answer}");
}

#[test]
fn the_spiffe_bundle_names_the_svid_authorities_only_and_go_spiffes_rules_verify_both_svids() {
    let service = service(Roles::ALL);
    let (signing, _) = workload_key();
    let nonce = service.nonce();
    let request = serde_json::json!({ "mechanism": "c", "evidence": service.evidence(&signing, &nonce) });
    let (status, answer) = service.post("/v1/ca/credential", request);
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, bundle) = service.call(Method::GET, twi_issuer::bundle::BUNDLE_PATH, None);
    assert_eq!(status, StatusCode::OK, "{bundle}");
    let uses: Vec<_> = bundle["keys"].as_array().unwrap().iter().map(|k| k["use"].as_str().unwrap()).collect();
    assert_eq!(uses, ["x509-svid", "wit-svid"], "{bundle}");

    // Broken bundles the rules refuse: two certificates in an x509-svid entry, no `keys`, a WIT
    // authority without `kid`.
    let mut two_certs = bundle.clone();
    let cert = two_certs["keys"][0]["x5c"][0].clone();
    two_certs["keys"][0]["x5c"] = serde_json::json!([cert.clone(), cert]);
    let mut no_kid = bundle.clone();
    no_kid["keys"][1].as_object_mut().unwrap().remove("kid");
    let oids = twi_issuer::oids::Oids::default();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let input = serde_json::json!({
        "bundle": bundle,
        "trust_domain": "example.org",
        "x509_svid": [answer["certificate_pem"]],
        "handled_critical": [oids.simulated_tee.to_string()],
        "wit": answer["wit"],
        "now": now,
        // The Verifier's attestation result is signed, but by no WIT authority.
        "must_fail_wits": [{ "name": "the Verifier's attestation result", "token": answer["attestation_result"] }],
        "must_fail_bundles": [
            { "name": "two certificates in an x509-svid entry", "bundle": two_certs },
            { "name": "no keys", "bundle": { "spiffe_refresh_hint": 300 } },
            { "name": "a wit-svid entry without kid", "bundle": no_kid },
        ],
    });
    let out = twi_testkit::tools::spiffe_bundle_check(&input);
    twi_testkit::tools::assert_ok(&out, "the SPIFFE bundle check (go-spiffe's rules)");
    let said = String::from_utf8_lossy(&out.stdout);
    for check in [
        "X.509-SVID verifies",
        "X.509-SVID with an unhandled critical extension is refused",
        "WIT-SVID verifies",
        "refused WIT: the Verifier's attestation result",
        "refused bundle: no keys",
    ] {
        assert!(said.contains(&format!("ok   {check}")), "the check did not run {check:?}:\n{said}");
    }
}

#[test]
fn the_log_serves_c2sp_checkpoints_and_rfc9162_proofs_that_gos_sumdb_note_and_tlog_verify() {
    let service = service(Roles::ALL);
    let issue = || {
        let (signing, _) = workload_key();
        let nonce = service.nonce();
        let request = serde_json::json!({ "mechanism": "c", "evidence": service.evidence(&signing, &nonce) });
        let (status, answer) = service.post("/v1/ca/credential", request);
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer
    };
    let text = |path: &str| {
        let (status, bytes) = service.call_raw(Method::GET, path, None);
        assert_eq!(status, StatusCode::OK, "{path}");
        String::from_utf8(bytes).unwrap()
    };
    let first = issue();
    let old_checkpoint = text("/v1/log/checkpoint");
    assert_eq!(first["provenance"]["checkpoint"], old_checkpoint.as_str(), "the run's checkpoint is the log's");
    issue();
    let checkpoint = text("/v1/log/checkpoint");
    let vkey = text("/v1/log/key");
    assert!(vkey.starts_with("example.org/twi-log+"), "{vkey}");
    let serial = first["provenance"]["records"][0]["credential_id"].as_str().unwrap();
    let (status, proof) = service.call(Method::GET, &format!("/v1/log/proof/{serial}"), None);
    assert_eq!(status, StatusCode::OK, "{proof}");
    assert_eq!(proof["checkpoint"], checkpoint.as_str());
    let (status, consistency) = service.call(Method::GET, "/v1/log/consistency/2/4", None);
    assert_eq!(status, StatusCode::OK, "{consistency}");
    let (status, missing) = service.call(Method::GET, "/v1/log/proof/00", None);
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(error(&missing).contains("no record of credential"), "{missing}");

    let signature_line = checkpoint.rfind("\n\n").unwrap();
    let input = serde_json::json!({
        "vkey": vkey,
        "checkpoint": checkpoint,
        "proof": proof,
        "consistency": { "old_checkpoint": old_checkpoint, "consistency_proof": consistency["consistency_proof"] },
        "must_fail_notes": [
            { "name": "another tree size", "note": checkpoint.replacen("\n4\n", "\n5\n", 1) },
            { "name": "no signature", "note": &checkpoint[..signature_line + 2] },
        ],
    });
    let out = twi_testkit::tools::c2sp_check(&input);
    twi_testkit::tools::assert_ok(&out, "the C2SP checkpoint check (Go's sumdb/note and sumdb/tlog)");
    let said = String::from_utf8_lossy(&out.stdout);
    for check in
        ["record included", "log grew append-only", "refused note: another tree size", "refused note: no signature"]
    {
        assert!(said.contains(&format!("ok   {check}")), "the check did not run {check:?}:\n{said}");
    }
    // The records are SCITT signed statements and the RFC 9942 receipts (the run's, and the
    // proof's against the later tree) prove them: both verify with pycose under the log's key;
    // a receipt for another record, or a statement with one payload byte changed, does not.
    let (_, jwks) = service.call(Method::GET, "/v1/keys", None);
    let log_key = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == "twi-log").unwrap().clone();
    let records = first["provenance"]["records"].as_array().unwrap();
    let mut receipts: Vec<_> =
        records.iter().map(|r| serde_json::json!({ "receipt": r["receipt"], "statement": r["statement"] })).collect();
    receipts.push(serde_json::json!({ "receipt": proof["receipt"], "statement": proof["statement"] }));
    let mut altered = hex::decode(records[0]["statement"].as_str().unwrap()).unwrap();
    // The second digit of `issued_at`: still JSON, still the same `sub`, another record.
    let at = altered.windows(12).position(|w| w == b"\"issued_at\":".as_slice()).unwrap() + 13;
    altered[at] ^= 0x01;
    let input = serde_json::json!({
        "log_key": log_key,
        "receipts": receipts,
        "must_fail": [
            { "name": "another record's receipt", "receipt": records[1]["receipt"], "statement": records[0]["statement"] },
            { "name": "an altered statement", "receipt": records[0]["receipt"], "statement": hex::encode(&altered) },
        ],
    });
    let out = twi_testkit::tools::cose_receipt_check(&input);
    twi_testkit::tools::assert_ok(&out, "the COSE statement and receipt check (pycose)");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("ok   receipt 2 proves its signed statement (leaf 0 of 4)"), "{said}");
    assert!(said.contains("ok   refused: another record's receipt"), "{said}");
    assert!(said.contains("signature over the recomputed root does not verify"), "refused for another reason: {said}");
    assert!(said.contains("ok   refused: an altered statement"), "{said}");
    assert!(said.contains("the statement's signature does not verify"), "refused for another reason: {said}");
}

/// `GET /v1/log/sbom/sha384-HEX` (what `twi provenance show --issuer-url` fetches): the stored
/// document byte for byte as CycloneDX JSON; 404 naming the digest when the store lacks it,
/// 400 for a malformed digest, 500 (not the document) when the stored file was changed, 501
/// from a process without the log role.
#[test]
fn the_log_serves_a_stored_sbom_by_digest_and_refuses_absent_and_malformed_ones() {
    use twi_issuer::policy::{SbomDigest, store_sbom};
    let mut service = service(Roles::ALL);
    let store = service._dir.path().join("sboms");
    let sbom = br#"{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"components":[{"type":"library","name":"p384","version":"0.14.1"}]}"#;
    let digest = store_sbom(&store, sbom, None).unwrap();
    let config = IssuerConfig { trust_domain: "example.org".into(), sim_snp_root: Some(service.psp.root().clone()) };
    let policy = policy(&MEASUREMENT, "AF_L2", "c").with_sbom_store(&store);
    let issuer = Issuer::open(&service._dir.path().join("with-store"), config, policy).unwrap();
    service.router = twi_issuer::http::router(issuer, Roles::ALL);
    let get = |path: &str| service.send(Request::builder().uri(path).body(Body::empty()).unwrap());

    for path in [format!("/v1/log/sbom/{}", digest.path_form()), format!("/v1/log/sbom/{digest}")] {
        let (status, headers, bytes) = get(&path);
        assert_eq!(status, StatusCode::OK, "{path}: {}", String::from_utf8_lossy(&bytes));
        assert_eq!(headers[header::CONTENT_TYPE], "application/vnd.cyclonedx+json");
        assert_eq!(bytes, sbom.as_slice(), "{path}");
    }
    let absent = SbomDigest::of(b"another document");
    let (status, answer) = service.call(Method::GET, &format!("/v1/log/sbom/{}", absent.path_form()), None);
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert!(error(&answer).contains(&format!("stores no SBOM {absent}")), "{answer}");
    let hex = hex::encode(digest.0);
    for malformed in ["sha384-zz", &format!("sha256-{hex}"), &format!("sha384-{}", &hex[2..]), "sbom.cdx.json"] {
        let (status, answer) = service.call(Method::GET, &format!("/v1/log/sbom/{malformed}"), None);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{malformed}: {answer}");
        assert!(error(&answer).contains("is not an SBOM digest"), "{answer}");
    }
    // A stored file changed behind the store's back is not served as the document.
    std::fs::write(store.join(digest.file_name()), br#"{"bomFormat":"CycloneDX"}"#).unwrap();
    let (status, answer) = service.call(Method::GET, &format!("/v1/log/sbom/{}", digest.path_form()), None);
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{answer}");
    assert!(error(&answer).contains("is not the SBOM it is named for"), "{answer}");

    let verifier = support::http::service(Roles::parse("verifier").unwrap());
    let (status, answer) = verifier.call(Method::GET, &format!("/v1/log/sbom/{}", digest.path_form()), None);
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{answer}");
}

/// `GET /v1/log/attachment/sha384-HEX` (what `twi provenance show --issuer-url` fetches for the
/// statements an SBOM lists as attached): the stored bytes as they are; 404 naming the digest
/// when the store lacks it, 400 for a malformed digest, 500 when the stored file was changed.
#[test]
fn the_log_serves_a_stored_attached_statement_by_digest() {
    use twi_issuer::policy::{ATTACHMENT_LIMIT, SbomDigest, store_attachment};
    let mut service = service(Roles::ALL);
    let store = service._dir.path().join("sboms");
    std::fs::create_dir_all(&store).unwrap();
    let statement = [0xd2u8, 0x84, 0x43, 0xa1, 0x01, 0x38, 0x22, 0xa0, 0xf6, 0x40];
    let digest = SbomDigest::of(&statement);
    store_attachment(&store, &statement, &digest, ATTACHMENT_LIMIT).unwrap();
    let config = IssuerConfig { trust_domain: "example.org".into(), sim_snp_root: Some(service.psp.root().clone()) };
    let policy = policy(&MEASUREMENT, "AF_L2", "c").with_sbom_store(&store);
    let issuer = Issuer::open(&service._dir.path().join("with-store"), config, policy).unwrap();
    service.router = twi_issuer::http::router(issuer, Roles::ALL);
    let get = |path: &str| service.send(Request::builder().uri(path).body(Body::empty()).unwrap());

    let (status, headers, bytes) = get(&format!("/v1/log/attachment/{}", digest.path_form()));
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(headers[header::CONTENT_TYPE], "application/octet-stream");
    assert_eq!(bytes, statement.as_slice());
    let absent = SbomDigest::of(b"another statement");
    let (status, answer) = service.call(Method::GET, &format!("/v1/log/attachment/{}", absent.path_form()), None);
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert!(error(&answer).contains(&format!("stores no attached statement {absent}")), "{answer}");
    let (status, answer) = service.call(Method::GET, "/v1/log/attachment/sha384-zz", None);
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(error(&answer).contains("is not a statement digest"), "{answer}");
    // The SBOM under the same digest is not the statement: the two are stored apart.
    let (status, _) = service.call(Method::GET, &format!("/v1/log/sbom/{}", digest.path_form()), None);
    assert_eq!(status, StatusCode::NOT_FOUND);
    let file = std::fs::read_dir(&store).unwrap().next().unwrap().unwrap().path();
    std::fs::write(file, b"changed").unwrap();
    let (status, answer) = service.call(Method::GET, &format!("/v1/log/attachment/{}", digest.path_form()), None);
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{answer}");
}

#[test]
fn the_verifier_re_signs_its_attestation_result_as_a_cwt_that_veraison_reads() {
    let service = service(Roles::ALL);
    let (signing, _) = workload_key();
    let nonce = service.nonce();
    let request = serde_json::json!({ "mechanism": "c", "evidence": service.evidence(&signing, &nonce) });
    let (status, answer) = service.post("/v1/ca/credential", request);
    assert_eq!(status, StatusCode::OK, "{answer}");
    let jwt = answer["attestation_result"].as_str().unwrap();
    let (status, converted) = service.post("/v1/verifier/ear-cwt", serde_json::json!({ "attestation_result": jwt }));
    assert_eq!(status, StatusCode::OK, "{converted}");
    let cwt = hex::decode(converted["cwt"].as_str().unwrap()).unwrap();
    let (_, jwks) = service.call(Method::GET, "/v1/keys", None);
    let key = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == "twi-verifier").unwrap();
    let key = serde_json::to_vec(key).unwrap();
    let from_jwt = ear::Ear::from_jwt_jwk(jwt, ear::Algorithm::ES384, &key).unwrap();
    let from_cwt = ear::Ear::from_cose_jwk(&cwt, ear::Algorithm::ES384, &key)
        .unwrap_or_else(|e| panic!("Veraison's ear refused the served CWT: {e}"));
    from_cwt.validate().unwrap();
    assert_eq!(from_cwt.submods["twi"].status, from_jwt.submods["twi"].status);
    // The same claims (the freshness value is bytes in CBOR, base64url text in JSON).
    let (c, j) = (&from_cwt.submods["twi"].verifier_claims, &from_jwt.submods["twi"].verifier_claims);
    for name in ["workload-id", "binding", "claims"] {
        assert_eq!(c[name], j[name], "{name}");
    }
    let kind = |claims: &std::collections::BTreeMap<String, ear::RawValue>| match &claims["tacra_freshness"] {
        ear::RawValue::Map(m) => m.iter().find(|(k, _)| *k == ear::RawValue::String("kind".into())).unwrap().1.clone(),
        other => panic!("tacra_freshness is {other:?}"),
    };
    assert_eq!(kind(c), kind(j));
    assert_eq!(from_cwt.nonce, from_jwt.nonce);
    // A token the Verifier did not sign is not converted.
    let (status, refused) =
        service.post("/v1/verifier/ear-cwt", serde_json::json!({ "attestation_result": answer["wit"] }));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(error(&refused).contains("send an unexpired attestation result this Verifier signed"), "{refused}");
}

#[test]
fn provisioning_without_the_owners_client_certificate_is_refused_with_401() {
    let service = service_with(Roles::ALL, "AF_L0", "d");
    let provision = serde_json::json!({ "platform": "sim-snp", "measurement": hex::encode(MEASUREMENT) });
    let (status, answer) = service.post("/v1/key-store/provision", provision.clone());
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert!(error(&answer).contains("client certificate issued under the service's operator CA"), "{answer}");
    // Nothing was provisioned: the owner's own request is the first.
    let (status, answer) = service.post_as_owner("/v1/key-store/provision", provision);
    assert_eq!((status, answer["created"].as_bool()), (StatusCode::OK, Some(true)), "{answer}");
}

/// A challenge request from `client` (what the listener marks each request with).
fn challenge_from(service: &Service, client: [u8; 4]) -> (StatusCode, Option<String>, serde_json::Value) {
    let body = serde_json::json!({
        "platform": "sim-snp",
        "measurement": hex::encode(MEASUREMENT),
        "target": TARGET,
        "credential_type": "x509",
    });
    let request = Request::builder()
        .method(Method::POST)
        .uri("/v1/challenge")
        .header(header::CONTENT_TYPE, "application/json")
        .extension(ClientAddr(std::net::IpAddr::from(client)))
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap();
    service.runtime.block_on(async {
        let response = service.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let retry = response.headers().get(header::RETRY_AFTER).map(|v| v.to_str().unwrap().to_string());
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, retry, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    })
}

#[test]
fn a_challenge_flood_from_one_client_gets_429_while_another_client_is_served() {
    let service = service(Roles::ALL);
    let burst = RateLimit::default().burst;
    let mut answered = Vec::new();
    for _ in 0..200 {
        answered.push(challenge_from(&service, [192, 0, 2, 66]));
    }
    let served = answered.iter().filter(|(status, ..)| *status == StatusCode::OK).count();
    // The burst, plus what the bucket refilled while the flood ran.
    assert!(served >= burst as usize && served < 60, "{served} of 200 challenges served");
    let (status, retry, answer) = answered.last().unwrap();
    assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
    assert!(retry.as_deref().is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s >= 1)), "Retry-After: {retry:?}");
    assert!(error(answer).contains("faster than the service allows"), "{answer}");
    assert!(answered.iter().all(|(status, ..)| status.as_u16() != 500), "never 500 under a flood");
    // Another client is served all the while.
    let (status, _, answer) = challenge_from(&service, [192, 0, 2, 7]);
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["freshness"], "present-nonce", "{answer}");
}

/// `router` served over `transport` on a loopback port under `limits`, in `runtime`.
fn listen(
    runtime: &tokio::runtime::Runtime,
    router: Router,
    transport: Transport,
    limits: Limits,
) -> std::net::SocketAddr {
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let address = listener.local_addr().unwrap();
    runtime.spawn(twi_issuer::http::serve_until(listener, router, transport, limits, std::future::pending()));
    address
}

/// Reads until the peer closes (`Ok(bytes)`), or the read times out (`Err`).
fn read_to_close(stream: &mut std::net::TcpStream, within: std::time::Duration) -> Result<Vec<u8>, std::io::Error> {
    use std::io::Read;
    stream.set_read_timeout(Some(within)).unwrap();
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(all),
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(all),
            Err(e) => return Err(e),
        }
    }
}

#[test]
fn idle_and_slow_connections_are_closed_and_the_cap_answers_503() {
    use std::io::Write;
    use std::time::{Duration, Instant};
    let service = service(Roles::ALL);
    let idle = Duration::from_millis(400);
    let limits = Limits { max_connections: 2, handshake_timeout: idle, idle_timeout: idle };
    let plain = listen(&service.runtime, service.router.clone(), Transport::PlainLoopback, limits);
    // Idle: nothing sent at all.
    let started = Instant::now();
    let mut silent = std::net::TcpStream::connect(plain).unwrap();
    assert!(read_to_close(&mut silent, Duration::from_secs(10)).is_ok(), "an idle socket stayed open");
    assert!(started.elapsed() < Duration::from_secs(5), "closed after {:?}", started.elapsed());
    // Slow: half a request head, then silence.
    let mut slow = std::net::TcpStream::connect(plain).unwrap();
    slow.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n").unwrap();
    assert!(read_to_close(&mut slow, Duration::from_secs(10)).is_ok(), "a slow request head stayed open");
    // Kept alive after an answer, then idle: closed too.
    let mut kept = std::net::TcpStream::connect(plain).unwrap();
    kept.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let answer = read_to_close(&mut kept, Duration::from_secs(10)).expect("a kept-alive idle connection stayed open");
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));

    // The cap: two connections held (each sending a byte at a time to stay under the header
    // timeout is not needed: the test is faster than it), a third answered 503.
    let limits = Limits {
        max_connections: 2,
        handshake_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(30),
    };
    let capped = listen(&service.runtime, service.router.clone(), Transport::PlainLoopback, limits);
    let _held: Vec<_> = (0..2).map(|_| std::net::TcpStream::connect(capped).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut third = std::net::TcpStream::connect(capped).unwrap();
    third.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let answer = String::from_utf8_lossy(&read_to_close(&mut third, Duration::from_secs(10)).unwrap()).into_owned();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.to_lowercase().contains("retry-after: 1"), "{answer}");
    assert!(answer.contains("as many connections as it is configured to"), "{answer}");
}

#[test]
fn a_tls_handshake_that_never_comes_is_cut_off() {
    use std::time::{Duration, Instant};
    let service = service(Roles::ALL);
    let dir = tempfile::tempdir().unwrap();
    let ca = twi_issuer::IssuerCa::load_or_create(dir.path(), "example.org").unwrap();
    let settings = TlsSettings { names: vec!["127.0.0.1".into()], ..TlsSettings::default() };
    let config = twi_issuer::http::tls::server_config(Some(&ca), dir.path(), &settings).unwrap();
    let limits = Limits { handshake_timeout: Duration::from_millis(300), ..Limits::default() };
    let address = listen(&service.runtime, service.router.clone(), Transport::Tls(config), limits);
    let started = Instant::now();
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    assert!(read_to_close(&mut stream, Duration::from_secs(10)).is_ok(), "a silent TLS client stayed connected");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn when_every_nonce_is_outstanding_a_challenge_is_503_with_retry_after_not_500() {
    let service = service(Roles::ALL);
    // 10,000 nonces (the Verifier's bound) from 500 clients, each within its burst.
    for client in 0..500u16 {
        let [high, low] = client.to_be_bytes();
        for _ in 0..20 {
            let (status, _, answer) = challenge_from(&service, [10, 1, high, low]);
            assert_eq!(status, StatusCode::OK, "{answer}");
        }
    }
    let (status, retry, answer) = challenge_from(&service, [10, 2, 0, 1]);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert!(retry.is_some(), "no Retry-After");
    assert!(error(&answer).contains("nonces are outstanding"), "{answer}");
    assert!(!error(&answer).contains("random number generator"), "a misleading reason: {answer}");
    assert!(!error(&answer).contains("the issuer failed"), "a limit is not a failure: {answer}");
}

/// Issue 14 item 8: a credential request is idempotent per `Idempotency-Key`: a retry with the
/// same key and body gets the same credential (on main: refused as a replay of the spent
/// nonce), the same key with another body is refused, and without the key the nonce stays spent.
#[test]
fn a_retried_request_with_its_idempotency_key_gets_the_same_credential() {
    let service = service(Roles::ALL);
    let (signing, _) = workload_key();
    let request = serde_json::json!({ "mechanism": "c", "evidence": service.evidence(&signing, &service.nonce()) });
    let (status, first) = service.post_with_key("/v1/ca/credential", &request, "request-1");
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, again) = service.post_with_key("/v1/ca/credential", &request, "request-1");
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!((&again["serial"], &again["certificate_pem"]), (&first["serial"], &first["certificate_pem"]));
    let (status, answer) = service.post("/v1/ca/credential", request);
    assert_eq!(status, StatusCode::FORBIDDEN, "without the key the nonce is spent: {answer}");
    let other = serde_json::json!({ "mechanism": "c", "evidence": service.evidence(&signing, &service.nonce()) });
    let (status, answer) = service.post_with_key("/v1/ca/credential", &other, "request-1");
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(error(&answer).contains("another request body"), "{answer}");
}

/// A request answered 408 (the client's time ran out) is not cancelled: its credential, logged,
/// is delivered to the retry with the same `Idempotency-Key` instead of never.
#[test]
fn a_request_answered_408_delivers_its_credential_to_the_retry() {
    let service = service_timed(std::time::Duration::from_millis(1));
    let (signing, key) = workload_key();
    // The challenge itself may time out at 1 ms: ask until one is answered.
    let nonce = (0..200)
        .find_map(|_| {
            let body = serde_json::json!({
                "platform": "sim-snp", "measurement": hex::encode(MEASUREMENT), "target": TARGET, "credential_type": "x509",
            });
            let (status, answer) = service.post("/v1/challenge", body);
            (status == StatusCode::OK).then(|| hex::decode(answer["nonce"].as_str().unwrap()).unwrap())
        })
        .expect("a challenge within 1 ms");
    let request = serde_json::json!({ "mechanism": "c", "evidence": service.evidence(&signing, &nonce) });
    let (status, answer) = service.post_with_key("/v1/ca/credential", &request, "slow-1");
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{answer}");
    let delivered = (0..300).find_map(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let (status, answer) = service.post_with_key("/v1/ca/credential", &request, "slow-1");
        (status == StatusCode::OK).then_some(answer)
    });
    let delivered = delivered.expect("the retry got the credential the timed-out request made");
    // At 1 ms the CA certificate's request may time out too: ask until it is answered.
    let ca_pem = (0..200)
        .find_map(|_| {
            let (status, pem) = service.call_raw(Method::GET, "/v1/ca/certificate", None);
            (status == StatusCode::OK).then_some(pem)
        })
        .expect("the CA certificate within 1 ms");
    assert_credential(&delivered, &key, &ca_pem);
}

/// `GET /metrics`: the counters an operator scrapes (Prometheus text format), which move with
/// an issuance: one more certificate, two more log records under one more tree head, and the
/// signatures it made. Counts only: no credential or identifier in the text.
#[test]
fn metrics_count_what_an_issuance_made() {
    let service = service(Roles::ALL);
    let scrape = || {
        let (status, text) = service.call_raw(Method::GET, "/metrics", None);
        let text = String::from_utf8(text).expect("the metrics are text");
        assert_eq!(status, StatusCode::OK, "{text}");
        let read = |name| twi_issuer::metrics::read(&text, name).unwrap_or_else(|| panic!("{name} in {text}"));
        let counts = [
            "twi_ecdsa_signatures_total",
            "twi_x509_certificates_total",
            "twi_log_records_total",
            "twi_log_tree_heads_total",
        ]
        .map(read);
        (counts, text)
    };
    let (before, _) = scrape();
    let (signing, _) = workload_key();
    let request = serde_json::json!({ "mechanism": "c", "evidence": service.evidence(&signing, &service.nonce()) });
    let (status, issued) = service.post("/v1/ca/credential", request);
    assert_eq!(status, StatusCode::OK, "{issued}");
    let (after, text) = scrape();
    // Other tests in this process issue too: at least this issuance's part.
    assert!(after[0] >= before[0] + 7, "signatures {before:?} -> {after:?}");
    assert!(after[1] > before[1] && after[2] >= before[2] + 2 && after[3] > before[3], "{before:?} -> {after:?}");
    let serial = issued["serial"].as_str().unwrap();
    assert!(!text.contains(serial) && !text.contains("spiffe://"), "an identifier in the metrics: {text}");
}
