//! EST (RFC 7030) on the issuer's service (`twi_issuer::http::est`): `cacerts` and
//! `simpleenroll` answer certs-only PKCS#7 that OpenSSL reads, enrollment goes through the same
//! appraisal as mechanism C's JSON request, and a CSR without evidence, for another key than
//! the evidence binds, or with a broken signature is refused with its reason.

mod support;

use std::path::Path;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use base64ct::{Base64, Encoding};
use der::{Decode, DecodePem, Encode};
use p384::ecdsa::SigningKey;
use support::http::*;
use twi_issuer::http::Roles;
use twi_issuer::http::est::{self, CACERTS_PATH, CERTS_ONLY, EVIDENCE_HEADER, PKCS10, SIMPLEENROLL_PATH};
use twi_testkit::tools::{openssl, utf8};
use x509_cert::Certificate;

/// The certificates OpenSSL reads from a base64 certs-only answer `body` (`base64 -d | openssl
/// pkcs7 -inform DER -print_certs`), DER.
fn openssl_certificates(dir: &Path, body: &[u8]) -> Vec<Vec<u8>> {
    let (b64, der) = (dir.join("answer.b64"), dir.join("answer.p7"));
    std::fs::write(&b64, body).unwrap();
    let decoded = openssl(&["base64", "-d", "-in", utf8(&b64), "-out", utf8(&der)]);
    assert!(decoded.status.success(), "openssl base64 -d: {}", String::from_utf8_lossy(&decoded.stderr));
    let printed = openssl(&["pkcs7", "-inform", "DER", "-in", utf8(&der), "-print_certs"]);
    assert!(printed.status.success(), "openssl pkcs7: {}", String::from_utf8_lossy(&printed.stderr));
    let text = String::from_utf8(printed.stdout).unwrap();
    let blocks: Vec<&str> = text.split("-----END CERTIFICATE-----").filter(|b| b.contains("-----BEGIN")).collect();
    blocks
        .iter()
        .map(|block| {
            let pem = format!("{}-----END CERTIFICATE-----\n", &block[block.find("-----BEGIN").unwrap()..]);
            Certificate::from_pem(pem.as_bytes()).unwrap().to_der().unwrap()
        })
        .collect()
}

fn assert_certs_only(headers: &axum::http::HeaderMap) {
    assert_eq!(headers[header::CONTENT_TYPE], CERTS_ONLY);
    assert_eq!(headers["content-transfer-encoding"], "base64");
}

/// A `simpleenroll` request: `csr` as the base64 body, `evidence` (JSON) in the header if any.
fn enroll_request(csr: &[u8], evidence: Option<&serde_json::Value>) -> Request<Body> {
    let mut request =
        Request::builder().method(Method::POST).uri(SIMPLEENROLL_PATH).header(header::CONTENT_TYPE, PKCS10);
    if let Some(evidence) = evidence {
        request = request.header(EVIDENCE_HEADER, Base64::encode_string(&serde_json::to_vec(evidence).unwrap()));
    }
    request.body(Body::from(est::base64_lines(csr))).unwrap()
}

/// Enrollment evidence for `key` on a fresh nonce, its CSR taken out (it rides in the body).
fn enrollment(service: &Service, key: &SigningKey) -> (serde_json::Value, Vec<u8>) {
    let nonce = service.nonce();
    let mut evidence = service.evidence(key, &nonce);
    let csr = hex::decode(evidence["csr"].as_str().unwrap()).unwrap();
    evidence.as_object_mut().unwrap().remove("csr");
    (evidence, csr)
}

fn reason(body: &[u8]) -> String {
    let answer: serde_json::Value = serde_json::from_slice(body).unwrap();
    answer["error"].as_str().unwrap().to_string()
}

#[test]
fn cacerts_is_the_ca_certificate_as_certs_only_pkcs7_that_openssl_reads() {
    let service = service(Roles::ALL);
    let dir = tempfile::tempdir().unwrap();
    let (status, ca_pem) = service.call_raw(Method::GET, "/v1/ca/certificate", None);
    assert_eq!(status, StatusCode::OK);
    let ca = Certificate::from_pem(&ca_pem).unwrap().to_der().unwrap();
    let request = Request::builder().uri(CACERTS_PATH).body(Body::empty()).unwrap();
    let (status, headers, body) = service.send(request);
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_certs_only(&headers);
    assert!(body.split(|b| *b == b'\n').all(|line| line.len() <= 76), "RFC 2045 lines");
    assert_eq!(openssl_certificates(dir.path(), &body), std::slice::from_ref(&ca));
    // Our own reader agrees with OpenSSL.
    assert_eq!(est::certificates(&est::from_base64("answer", &body).unwrap()).unwrap(), [ca]);
}

#[test]
fn simpleenroll_certifies_the_csrs_key_on_evidence_bound_to_that_csr() {
    let service = service(Roles::ALL);
    let dir = tempfile::tempdir().unwrap();
    let (signing, key) = workload_key();
    let (evidence, csr) = enrollment(&service, &signing);
    let (status, headers, body) = service.send(enroll_request(&csr, Some(&evidence)));
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_certs_only(&headers);
    let certificates = openssl_certificates(dir.path(), &body);
    let [issued] = certificates.as_slice() else { panic!("one certificate, not {}", certificates.len()) };
    let cert = Certificate::from_der(issued).unwrap();
    let spki = cert.tbs_certificate().subject_public_key_info();
    assert_eq!(spki.subject_public_key.raw_bytes(), key, "the certificate certifies the CSR's key");
    // The issuance record rides beside it and names the same certificate.
    let record = est::from_base64("record", headers[est::CREDENTIAL_HEADER].as_bytes()).unwrap();
    let record: serde_json::Value = serde_json::from_slice(&record).unwrap();
    assert_eq!(record["workload_id"], WORKLOAD_ID, "{record}");
    let pem = Certificate::from_pem(record["certificate_pem"].as_str().unwrap().as_bytes()).unwrap();
    assert_eq!(&pem.to_der().unwrap(), issued);
    // The nonce was spent by this enrollment: the same request again is a replay.
    let (status, _, body) = service.send(enroll_request(&csr, Some(&evidence)));
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(reason(&body).contains("replay"), "{}", reason(&body));
}

/// `simplereenroll` (RFC 7030 §4.2.2): fresh evidence and CSR, naming the credential renewed
/// in its header; granted for a credential this issuer logged for the workload, refused for
/// one it never issued and without the header, each with its reason.
#[test]
fn simplereenroll_renews_a_logged_credential_on_fresh_evidence() {
    let service = service(Roles::ALL);
    let (signing, key) = workload_key();
    let (evidence, csr) = enrollment(&service, &signing);
    let (status, headers, body) = service.send(enroll_request(&csr, Some(&evidence)));
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let record = est::from_base64("record", headers[est::CREDENTIAL_HEADER].as_bytes()).unwrap();
    let first: serde_json::Value = serde_json::from_slice(&record).unwrap();
    let serial = first["serial"].as_str().unwrap().to_string();

    let reenroll = |renewal_of: Option<&str>| {
        let (evidence, csr) = enrollment(&service, &signing);
        let mut request = enroll_request(&csr, Some(&evidence));
        *request.uri_mut() = est::SIMPLEREENROLL_PATH.parse().unwrap();
        if let Some(previous) = renewal_of {
            request.headers_mut().insert(est::RENEWAL_HEADER, previous.parse().unwrap());
        }
        service.send(request)
    };
    let (status, headers, body) = reenroll(Some(&serial));
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_certs_only(&headers);
    let der = est::from_base64("answer", &body).unwrap();
    let [renewed] = <[Vec<u8>; 1]>::try_from(est::certificates(&der).unwrap()).unwrap();
    let renewed = Certificate::from_der(&renewed).unwrap();
    assert_eq!(renewed.tbs_certificate().subject_public_key_info().subject_public_key.raw_bytes(), key);
    assert_ne!(hex::encode(renewed.tbs_certificate().serial_number().as_bytes()), serial, "a new credential");

    let (status, _, body) = reenroll(Some("00ff"));
    assert_eq!(status, StatusCode::FORBIDDEN, "{}", String::from_utf8_lossy(&body));
    assert!(reason(&body).contains("credential 00ff has no provenance record"), "{}", reason(&body));
    let (status, _, body) = reenroll(None);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(reason(&body).contains(est::RENEWAL_HEADER), "{}", reason(&body));
}

/// `csrattrs` (RFC 7030 §4.5): base64 DER that OpenSSL parses as the P-384 key attribute and
/// the ecdsa-with-SHA384 signature.
#[test]
fn csrattrs_asks_for_a_p384_key_signed_with_sha384_as_openssl_reads_it() {
    let service = service(Roles::ALL);
    let dir = tempfile::tempdir().unwrap();
    let request = Request::builder().uri(est::CSRATTRS_PATH).body(Body::empty()).unwrap();
    let (status, headers, body) = service.send(request);
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers[header::CONTENT_TYPE], est::CSRATTRS);
    let b64 = dir.path().join("csrattrs.b64");
    std::fs::write(&b64, &body).unwrap();
    let parsed = openssl(&["asn1parse", "-inform", "PEM", "-in", utf8(&b64)]);
    let text = String::from_utf8_lossy(&parsed.stdout);
    assert!(parsed.status.success(), "{}", String::from_utf8_lossy(&parsed.stderr));
    let objects: Vec<&str> = text.lines().filter_map(|l| l.split("OBJECT            :").nth(1)).collect();
    assert_eq!(objects, ["id-ecPublicKey", "secp384r1", "ecdsa-with-SHA384"], "{text}");
}

#[test]
fn a_plain_est_client_without_evidence_is_told_what_is_missing() {
    let service = service(Roles::ALL);
    let (signing, _) = workload_key();
    let csr = twi_testkit::tacra::csr(&signing);
    let (status, headers, body) = service.send(enroll_request(&csr, None));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(headers.get(header::RETRY_AFTER).is_none());
    let said = reason(&body);
    assert!(said.contains("twi-evidence") && said.contains("/v1/challenge"), "{said}");
    // Not a PKCS#10 body type: 415 naming the one EST takes.
    let request = Request::builder()
        .method(Method::POST)
        .uri(SIMPLEENROLL_PATH)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap();
    let (status, _, body) = service.send(request);
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(reason(&body).contains(PKCS10), "{}", reason(&body));
    // A body that is not base64.
    let mut request = enroll_request(&csr, None);
    *request.body_mut() = Body::from("%%% not base64 %%%");
    let (status, _, body) = service.send(request);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(reason(&body).contains("not base64"), "{}", reason(&body));
}

#[test]
fn a_csr_for_another_key_than_the_evidence_binds_is_refused() {
    let service = service(Roles::ALL);
    let (bound, _) = workload_key();
    let (other, other_key) = workload_key();
    // The evidence binds `bound`'s CSR; the body is `other`'s CSR.
    let (evidence, _) = enrollment(&service, &bound);
    let other_csr = twi_testkit::tacra::csr(&other);
    let (status, _, body) = service.send(enroll_request(&other_csr, Some(&evidence)));
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(reason(&body).contains("another key than the evidence's"), "{}", reason(&body));
    // The evidence's key changed to match: REPORTDATA still binds the first CSR.
    let (mut evidence, _) = enrollment(&service, &bound);
    evidence["public_key"] = hex::encode(&other_key).into();
    let (status, _, body) = service.send(enroll_request(&other_csr, Some(&evidence)));
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(reason(&body).to_lowercase().contains("report"), "{}", reason(&body));
    // The evidence naming a CSR of its own other than the body's.
    let (mut evidence, csr) = enrollment(&service, &bound);
    evidence["csr"] = hex::encode(&other_csr).into();
    let (status, _, body) = service.send(enroll_request(&csr, Some(&evidence)));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(reason(&body).contains("a CSR other than the request body's"), "{}", reason(&body));
}

#[test]
fn a_csr_with_a_tampered_signature_is_refused() {
    let service = service(Roles::ALL);
    let (signing, _) = workload_key();
    let (evidence, mut csr) = enrollment(&service, &signing);
    // The last bytes are the ECDSA signature's s: flip one.
    let last = csr.len() - 2;
    csr[last] ^= 0x01;
    let (status, _, body) = service.send(enroll_request(&csr, Some(&evidence)));
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(reason(&body).contains("the certification request"), "{}", reason(&body));
}

#[test]
fn est_needs_the_credential_authority_and_the_verifier() {
    let (signing, _) = workload_key();
    let csr = twi_testkit::tacra::csr(&signing);
    let verifier_only = service(Roles::parse("verifier").unwrap());
    let (status, _, _) = verifier_only.send(enroll_request(&csr, None));
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "no CA role, no EST routes: the role is named");
    let ca_only = service(Roles::parse("ca").unwrap());
    let (status, _, body) = ca_only.send(enroll_request(&csr, None));
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
    assert!(reason(&body).contains("Verifier"), "{}", reason(&body));
}

#[test]
fn a_retried_enrollment_with_its_idempotency_key_gets_the_same_certificate_and_record() {
    let service = service(Roles::ALL);
    let (signing, _) = workload_key();
    let (evidence, csr) = enrollment(&service, &signing);
    let keyed = |evidence: &serde_json::Value| {
        let mut request = enroll_request(&csr, Some(evidence));
        request.headers_mut().insert(twi_issuer::http::idempotency::HEADER, "enroll-1".parse().unwrap());
        service.send(request)
    };
    let (status, first_headers, first) = keyed(&evidence);
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&first));
    // The retry (the client's time ran out, say): the same answer, not a replayed nonce.
    let (status, headers, again) = keyed(&evidence);
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&again));
    assert_eq!(again, first, "the retry got another certificate");
    assert_certs_only(&headers);
    assert_eq!(headers[est::CREDENTIAL_HEADER], first_headers[est::CREDENTIAL_HEADER]);
    // The same key and CSR with other evidence is another request.
    let mut other = evidence.clone();
    other["nonce"] = serde_json::Value::String(hex::encode([0u8; 32]));
    let (status, _, body) = keyed(&other);
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{}", String::from_utf8_lossy(&body));
}
