//! The relying party ("payroll-db") on loopback, called with credentials the TWI issuer issued
//! on (made-up-PKI) SEV-SNP evidence: mTLS with the X.509 credential, and WIT + WPT over
//! server-authenticated TLS. Each refusal is checked for its status, its `WWW-Authenticate: WPT`
//! challenge and the check it names; and two builds with different measurements, one identity,
//! get the same answers.

mod support;
#[path = "../../verifier/tests/synthetic/mod.rs"]
mod synthetic;

use std::time::{Duration, SystemTime};

use base64ct::{Base64UrlUnpadded, Encoding};
use p384::ecdsa::SigningKey;
use p384::elliptic_curve::Generate;
use p384::pkcs8::EncodePrivateKey;
use serde_json::{Value, json};
use support::net::{Answer, Client, Rp, Setup, send, start, start_with};
use support::{APP, LEDGER, Launch, world};
use twi_issuer::wit::{Wit, sign_wpt};

const ROWS: &str = "alice,4200\nbob,3900\n";

fn now() -> SystemTime {
    SystemTime::now()
}

/// A WPT by `key` for `wit` and the request target `aud`, valid for a minute.
fn wpt(key: &SigningKey, wit: &str, aud: &str) -> String {
    sign_wpt(key, wit, aud, now(), Duration::from_secs(60)).unwrap()
}

async fn mtls(rp: &Rp, launch: &Launch, path: &str) -> Answer {
    let client = Client::with_certificate(&rp.server_ca_pem, &launch.certificate_pem, &launch.key);
    send(&client, rp, "GET", path, &[]).await.unwrap()
}

async fn with_wit(rp: &Rp, path: &str, wit: &str, proof: &str) -> Answer {
    let authorization = format!("WPT {proof}");
    let headers = [("workload-identity-token", wit), ("authorization", authorization.as_str())];
    send(&Client::new(&rp.server_ca_pem), rp, "GET", path, &headers).await.unwrap()
}

/// WIT + a fresh WPT of `launch` for `path`.
async fn wimse(rp: &Rp, launch: &Launch, path: &str) -> Answer {
    let proof = wpt(&launch.key, &launch.wit, &format!("{}{path}", rp.url));
    with_wit(rp, path, &launch.wit, &proof).await
}

#[track_caller]
fn assert_unauthenticated(answer: &Answer, check: &str) {
    assert_eq!(answer.status, 401, "{answer:?}");
    assert_eq!(answer.challenge(), Some("WPT"), "a 401 must carry WWW-Authenticate: WPT: {answer:?}");
    assert_eq!(answer.check(), check, "{}", answer.detail());
    assert!(!answer.detail().is_empty());
}

#[track_caller]
fn assert_rows(answer: &Answer) {
    assert_eq!((answer.status, answer.body.as_str()), (200, ROWS), "{answer:?}");
    assert_eq!(answer.headers["content-type"], "text/csv");
}

#[tokio::test]
async fn mtls_serves_the_allowed_workload_and_forbids_another() {
    let rp = start().await;
    let w = world();
    assert_rows(&mtls(&rp, &w.v1, "/rows").await);
    assert_rows(&mtls(&rp, &w.v1, "/rows/2026-11").await);
    let refused = mtls(&rp, &w.ledger, "/rows").await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(refused.check(), "allow");
    assert!(refused.detail().contains(LEDGER), "{}", refused.detail());
    assert!(refused.challenge().is_none(), "authenticated, so no challenge");
    // ledger's own route.
    assert_eq!(mtls(&rp, &w.ledger, "/ledger").await.body, "ledger\n");
    // X.509 credentials carry no business claims: a route that requires some says to use WIT + WPT.
    let claims = mtls(&rp, &w.v1, "/rows/pii").await;
    assert_eq!((claims.status, claims.check().as_str()), (403, "claims"), "{claims:?}");
    assert!(claims.detail().contains("WIT + WPT"), "{}", claims.detail());
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused_in_the_handshake() {
    let rp = start().await;
    let (certificate, key) = support::foreign_certificate(APP);
    let client = Client::with_certificate(&rp.server_ca_pem, &certificate, &key);
    let error = send(&client, &rp, "GET", "/rows", &[]).await.expect_err("a foreign certificate was accepted");
    // TLS 1.3: the client's handshake completes before the server has checked its certificate;
    // the server's alert ends the connection before any HTTP answer. The foreign CA has the
    // same name as the issuer CA (both "TWI issuer CA for example.org"), so path building
    // finds the configured CA and the signature check fails: rustls says decrypt_error.
    assert!(error.contains("AlertReceived"), "{error}");
    assert!(error.contains("DecryptError"), "{error}");
    // A CA of another name: no path to the issuer CA at all.
    let key = SigningKey::try_generate().unwrap();
    let certificate = support::stranger_certificate(APP, &key);
    let client = Client::with_certificate(&rp.server_ca_pem, &certificate, &key);
    let error = send(&client, &rp, "GET", "/rows", &[]).await.expect_err("a stranger's certificate was accepted");
    assert!(error.contains("AlertReceived(UnknownCA)"), "{error}");
    // The same relying party still serves the issuer's credential.
    assert_rows(&mtls(&rp, &world().v1, "/rows").await);
}

#[tokio::test]
async fn a_simulated_credential_is_accepted_only_when_configured() {
    let w = world();
    let marker = twi_issuer::oids::Oids::default().simulated_tee.to_string();
    let key = SigningKey::try_generate().unwrap();
    let certificate = support::simulated_certificate(APP, &key, &marker, &w.ca_key_pem);
    // By default, as any standard verifier: the unknown critical extension fails the handshake.
    let rp = start().await;
    let client = Client::with_certificate(&rp.server_ca_pem, &certificate, &key);
    let error = send(&client, &rp, "GET", "/rows", &[]).await.expect_err("a simulated credential was accepted");
    assert!(error.contains("AlertReceived"), "{error}");
    // Told about the marker, the relying party serves it (and still every hardware credential).
    let settings = format!("simulated_tee_oid = \"{marker}\"\n");
    let rp = start_with(Setup { settings, ..Setup::default() }).await;
    let client = Client::with_certificate(&rp.server_ca_pem, &certificate, &key);
    assert_rows(&send(&client, &rp, "GET", "/rows", &[]).await.unwrap());
    assert_rows(&mtls(&rp, &w.v1, "/rows").await);
    // A marked certificate from another CA bearing the issuer CA's name is still refused.
    let other = SigningKey::try_generate().unwrap();
    let other_pem = other.to_pkcs8_pem(p384::pkcs8::LineEnding::LF).unwrap();
    let forged = support::simulated_certificate(APP, &key, &marker, &other_pem);
    let client = Client::with_certificate(&rp.server_ca_pem, &forged, &key);
    let error = send(&client, &rp, "GET", "/rows", &[]).await.expect_err("a forged simulated credential was accepted");
    assert!(error.contains("AlertReceived"), "{error}");
}

#[tokio::test]
async fn no_credentials_and_tls_1_2_are_refused() {
    let rp = start().await;
    let plain = send(&Client::new(&rp.server_ca_pem), &rp, "GET", "/rows", &[]).await.unwrap();
    assert_unauthenticated(&plain, "credentials");
    // Not even the route's existence is revealed before authentication.
    let unknown = send(&Client::new(&rp.server_ca_pem), &rp, "GET", "/nothing", &[]).await.unwrap();
    assert_unauthenticated(&unknown, "credentials");
    let error = send(&Client::tls12_only(&rp.server_ca_pem), &rp, "GET", "/rows", &[]).await.unwrap_err();
    assert!(error.contains("handshake"), "{error}");
}

#[tokio::test]
async fn wit_and_wpt_are_accepted_in_both_header_forms_with_claims() {
    let rp = start().await;
    let w = world();
    assert_rows(&wimse(&rp, &w.v1, "/rows").await);
    // The WIT's business claims (location DE, handles-pii) satisfy the claims route.
    let pii = wimse(&rp, &w.v1, "/rows/pii").await;
    assert_eq!((pii.status, pii.body.as_str()), (200, "alice,DE-1234\n"), "{pii:?}");
    // ledger is on that route's list, but its WIT says location US.
    let ledger = wimse(&rp, &w.ledger, "/rows/pii").await;
    assert_eq!((ledger.status, ledger.check().as_str()), (403, "claims"), "{ledger:?}");
    assert!(ledger.detail().contains("location = \"DE\"; the WIT has \"US\""), "{}", ledger.detail());
    // The older draft's Workload-Proof-Token header, and a lower-case scheme name.
    let proof = wpt(&w.v1.key, &w.v1.wit, &format!("{}/rows", rp.url));
    let legacy = [("workload-identity-token", w.v1.wit.as_str()), ("workload-proof-token", proof.as_str())];
    assert_rows(&send(&Client::new(&rp.server_ca_pem), &rp, "GET", "/rows", &legacy).await.unwrap());
    let proof = wpt(&w.v1.key, &w.v1.wit, &format!("{}/rows", rp.url));
    let lower = format!("wpt {proof}");
    let headers = [("workload-identity-token", w.v1.wit.as_str()), ("authorization", lower.as_str())];
    assert_rows(&send(&Client::new(&rp.server_ca_pem), &rp, "GET", "/rows", &headers).await.unwrap());
}

#[tokio::test]
async fn a_wit_without_its_key_is_useless() {
    let rp = start().await;
    let w = world();
    let aud = format!("{}/rows", rp.url);
    // Someone who copied the WIT but holds another key (here: another workload's).
    let stolen = wpt(&w.ledger.key, &w.v1.wit, &aud);
    assert_unauthenticated(&with_wit(&rp, "/rows", &w.v1.wit, &stolen).await, "wpt.signature");
    let random = wpt(&SigningKey::try_generate().unwrap(), &w.v1.wit, &aud);
    assert_unauthenticated(&with_wit(&rp, "/rows", &w.v1.wit, &random).await, "wpt.signature");
    // The WIT alone, as a bearer token.
    let alone = [("workload-identity-token", w.v1.wit.as_str())];
    let answer = send(&Client::new(&rp.server_ca_pem), &rp, "GET", "/rows", &alone).await.unwrap();
    assert_unauthenticated(&answer, "wpt.header");
    let bearer = format!("Bearer {}", w.v1.wit);
    let as_bearer = [("authorization", bearer.as_str())];
    let answer = send(&Client::new(&rp.server_ca_pem), &rp, "GET", "/rows", &as_bearer).await.unwrap();
    assert_unauthenticated(&answer, "credentials");
}

#[tokio::test]
async fn a_wpt_is_good_once_briefly_and_for_one_target() {
    let rp = start().await;
    let w = world();
    let aud = format!("{}/rows", rp.url);
    let proof = wpt(&w.v1.key, &w.v1.wit, &aud);
    assert_rows(&with_wit(&rp, "/rows", &w.v1.wit, &proof).await);
    let replayed = with_wit(&rp, "/rows", &w.v1.wit, &proof).await;
    assert_unauthenticated(&replayed, "wpt.jti");
    assert!(replayed.detail().contains("already used"), "{}", replayed.detail());

    let expired = sign_wpt(&w.v1.key, &w.v1.wit, &aud, now() - Duration::from_secs(600), Duration::from_secs(60));
    assert_unauthenticated(&with_wit(&rp, "/rows", &w.v1.wit, &expired.unwrap()).await, "wpt.exp");
    let long = sign_wpt(&w.v1.key, &w.v1.wit, &aud, now(), Duration::from_secs(3600)).unwrap();
    let answer = with_wit(&rp, "/rows", &w.v1.wit, &long).await;
    assert_unauthenticated(&answer, "wpt.exp");
    assert!(answer.detail().contains("short-lived"), "{}", answer.detail());

    // Another target: another path, another authority, a query, a trailing slash.
    for other in [
        format!("{}/ledger", rp.url),
        "https://payroll-db.example.org/rows".to_string(),
        format!("{aud}?month=11"),
        format!("{aud}/"),
    ] {
        let proof = wpt(&w.v1.key, &w.v1.wit, &other);
        let answer = with_wit(&rp, "/rows", &w.v1.wit, &proof).await;
        assert_unauthenticated(&answer, "wpt.aud");
        assert!(answer.detail().contains(&aud), "the expected target is named: {}", answer.detail());
    }
    // The target URI leaves out the query the request carries.
    let proof = wpt(&w.v1.key, &w.v1.wit, &aud);
    let authorization = format!("WPT {proof}");
    let headers = [("workload-identity-token", w.v1.wit.as_str()), ("authorization", authorization.as_str())];
    let answer = send(&Client::new(&rp.server_ca_pem), &rp, "GET", "/rows?month=11", &headers).await.unwrap();
    assert_rows(&answer);
}

#[tokio::test]
async fn wits_the_issuer_did_not_sign_or_that_were_altered_are_refused() {
    let rp = start().await;
    let w = world();
    let aud = format!("{}/rows", rp.url);
    let now = now();
    let make = |kid: &str, signer: &SigningKey| {
        let public = w.v1.key.verifying_key().to_sec1_point(false).as_bytes().to_vec();
        let wit = Wit::new("https://evil.example", APP, &public, now, Duration::from_secs(600)).unwrap();
        wit.sign(signer, Some(kid)).unwrap()
    };
    // An unknown kid; the WIT key's kid but another issuer's key; the Verifier's kid (an issuer
    // key, but not a WIT key).
    let foreign = SigningKey::try_generate().unwrap();
    for (wit, check) in [
        (make("other-issuer", &foreign), "wit.kid"),
        (make("twi-wit", &foreign), "wit.signature"),
        (make("twi-verifier", &foreign), "wit.kid"),
    ] {
        let proof = wpt(&w.v1.key, &wit, &aud);
        assert_unauthenticated(&with_wit(&rp, "/rows", &wit, &proof).await, check);
    }
    // The real WIT with its claims altered (ledger's identity swapped in): the signature breaks.
    let tampered = retarget(&w.v1.wit, LEDGER);
    let proof = wpt(&w.v1.key, &tampered, &aud);
    assert_unauthenticated(&with_wit(&rp, "/rows", &tampered, &proof).await, "wit.signature");
    // A WPT made for another WIT: `wth` does not match the WIT it came with.
    let proof = wpt(&w.v1.key, &w.v2.wit, &aud);
    assert_unauthenticated(&with_wit(&rp, "/rows", &w.v1.wit, &proof).await, "wpt.wth");
    // A WIT the real issuer key signed, expired an hour ago.
    let public = w.v1.key.verifying_key().to_sec1_point(false).as_bytes().to_vec();
    let old = Wit::new("i", APP, &public, now - Duration::from_secs(7200), Duration::from_secs(3600)).unwrap();
    let old = old.sign(&w.wit_key, Some("twi-wit")).unwrap();
    let proof = wpt(&w.v1.key, &old, &aud);
    assert_unauthenticated(&with_wit(&rp, "/rows", &old, &proof).await, "wit.exp");
    // The same, current: accepted (so the refusals above are about what was changed).
    let fresh = Wit::new("i", APP, &public, now, Duration::from_secs(600)).unwrap();
    let fresh = fresh.sign(&w.wit_key, Some("twi-wit")).unwrap();
    assert_rows(&with_wit(&rp, "/rows", &fresh, &wpt(&w.v1.key, &fresh, &aud)).await);
}

/// `token` with its `sub` replaced, signature kept.
fn retarget(token: &str, sub: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&Base64UrlUnpadded::decode_vec(parts[1]).unwrap()).unwrap();
    claims["sub"] = sub.into();
    let payload = Base64UrlUnpadded::encode_string(claims.to_string().as_bytes());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

/// The authorization never reads a measurement: v1 and v2 of payroll-app (different code, so
/// different measurements; the credentials say so) get the same answers on every route, by
/// both ways in, while ledger's build does not.
#[tokio::test]
async fn two_measurements_one_identity_the_same_answers() {
    let rp = start().await;
    let w = world();
    assert_ne!(w.v1.measurement, w.v2.measurement);
    assert_eq!((w.v1.identity.as_str(), w.v2.identity.as_str()), (APP, APP));
    // The credentials differ: each X.509 credential names the evidence it was issued on.
    assert_ne!(evidence_extension(&w.v1.certificate_der), evidence_extension(&w.v2.certificate_der));
    assert!(evidence_extension(&w.v1.certificate_der).is_some());
    for path in ["/rows", "/rows/pii", "/ledger", "/nothing"] {
        let (a, b) = (mtls(&rp, &w.v1, path).await, mtls(&rp, &w.v2, path).await);
        assert_eq!((a.status, &a.body), (b.status, &b.body), "mTLS {path}");
        let (a, b) = (wimse(&rp, &w.v1, path).await, wimse(&rp, &w.v2, path).await);
        assert_eq!((a.status, &a.body), (b.status, &b.body), "WIT {path}");
    }
    assert_rows(&mtls(&rp, &w.v2, "/rows").await);
    assert_eq!(mtls(&rp, &w.ledger, "/rows").await.status, 403);
}

fn evidence_extension(der: &[u8]) -> Option<Vec<u8>> {
    use der::Decode;
    let cert = x509_cert::Certificate::from_der(der).unwrap();
    let oid = twi_issuer::oids::Oids::default().evidence_sha384;
    cert.tbs_certificate().extensions()?.iter().find(|e| e.extn_id == oid).map(|e| e.extn_value.as_bytes().to_vec())
}

#[tokio::test]
async fn both_credentials_must_name_one_workload() {
    let rp = start().await;
    let w = world();
    let client = Client::with_certificate(&rp.server_ca_pem, &w.v1.certificate_pem, &w.v1.key);
    let aud = format!("{}/rows", rp.url);
    let same = wpt(&w.v1.key, &w.v1.wit, &aud);
    let authorization = format!("WPT {same}");
    let headers = [("workload-identity-token", w.v1.wit.as_str()), ("authorization", authorization.as_str())];
    assert_rows(&send(&client, &rp, "GET", "/rows", &headers).await.unwrap());
    let other = wpt(&w.ledger.key, &w.ledger.wit, &aud);
    let authorization = format!("WPT {other}");
    let headers = [("workload-identity-token", w.ledger.wit.as_str()), ("authorization", authorization.as_str())];
    assert_unauthenticated(&send(&client, &rp, "GET", "/rows", &headers).await.unwrap(), "identity");
    // A bad WIT beside a good certificate is not ignored.
    let headers = [("workload-identity-token", "x.y.z"), ("authorization", "WPT a.b.c")];
    assert_unauthenticated(&send(&client, &rp, "GET", "/rows", &headers).await.unwrap(), "wit.jws");
}

#[tokio::test]
async fn routes_and_methods_are_checked_after_authentication() {
    let rp = start().await;
    let w = world();
    let client = Client::with_certificate(&rp.server_ca_pem, &w.ledger.certificate_pem, &w.ledger.key);
    let missing = mtls(&rp, &w.ledger, "/nothing").await;
    assert_eq!((missing.status, missing.check().as_str()), (404, "route"));
    let delete = send(&client, &rp, "DELETE", "/ledger", &[]).await.unwrap();
    assert_eq!(delete.status, 405, "{delete:?}");
    assert_eq!(delete.headers["allow"], "GET, POST");
    assert_eq!(send(&client, &rp, "POST", "/ledger", &[]).await.unwrap().status, 200);
}

/// A JWS signed with jsonwebtoken (so these tokens do not come from the issuer's code).
fn jws(alg: jsonwebtoken::Algorithm, pkcs8: &[u8], typ: &str, kid: Option<&str>, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(alg);
    header.typ = Some(typ.into());
    header.kid = kid.map(Into::into);
    jsonwebtoken::encode(&header, claims, &jsonwebtoken::EncodingKey::from_ec_der(pkcs8)).unwrap()
}

fn p256_jwk(key: &p256::ecdsa::SigningKey, kid: Option<&str>) -> Value {
    let point = key.verifying_key().to_sec1_point(false);
    let b64 = |bytes: &[u8]| Base64UrlUnpadded::encode_string(bytes);
    let mut jwk = json!({"kty": "EC", "crv": "P-256", "alg": "ES256",
        "x": b64(&point.as_bytes()[1..33]), "y": b64(&point.as_bytes()[33..])});
    if let Some(kid) = kid {
        jwk["kid"] = kid.into();
    }
    jwk
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()
}

fn jti() -> String {
    twi_issuer::jose::random_id().unwrap()
}

/// ES256 end to end: an issuer WIT key on P-256 (a second WIT key in the JWKS) and a workload
/// key on P-256, so the WPT's `alg` is ES256; a WPT whose `alg` is not the `cnf` key's is refused.
#[tokio::test]
async fn es256_wits_and_wpts_are_accepted() {
    let issuer = p256::ecdsa::SigningKey::try_generate().unwrap();
    let workload = p256::ecdsa::SigningKey::try_generate().unwrap();
    let mut jwks: Value = serde_json::from_str(&world().issuer_jwks).unwrap();
    jwks["keys"].as_array_mut().unwrap().push(p256_jwk(&issuer, Some("p256-wit")));
    let setup = Setup {
        jwks: jwks.to_string(),
        settings: "wit_key_ids = [\"twi-wit\", \"p256-wit\"]".into(),
        server_key: &rcgen::PKCS_ECDSA_P256_SHA256,
        ..Setup::default()
    };
    let rp = start_with(setup).await;
    let t = unix(now());
    let claims = json!({"sub": APP, "iat": t, "exp": t + 600, "cnf": {"jwk": p256_jwk(&workload, None)}});
    let issuer_der = issuer.to_pkcs8_der().unwrap().as_bytes().to_vec();
    let wit = jws(jsonwebtoken::Algorithm::ES256, &issuer_der, "wit+jwt", Some("p256-wit"), &claims);
    let proof_claims = |wit: &str| {
        json!({"aud": format!("{}/rows", rp.url), "exp": t + 60, "jti": jti(),
            "wth": Base64UrlUnpadded::encode_string(&<sha2::Sha256 as sha2::Digest>::digest(wit.as_bytes()))})
    };
    let workload_der = workload.to_pkcs8_der().unwrap().as_bytes().to_vec();
    let proof = jws(jsonwebtoken::Algorithm::ES256, &workload_der, "wpt+jwt", None, &proof_claims(&wit));
    assert_rows(&with_wit(&rp, "/rows", &wit, &proof).await);
    // `typ` must say wpt+jwt (a WIT-typed token is not a proof).
    let mistyped = jws(jsonwebtoken::Algorithm::ES256, &workload_der, "JWT", None, &proof_claims(&wit));
    assert_unauthenticated(&with_wit(&rp, "/rows", &wit, &mistyped).await, "wpt.typ");
    // The issuer's own ES384 WIT beside it still works on the same relying party.
    assert_rows(&wimse(&rp, &world().v1, "/rows").await);
    // A P-384 proof for a WIT whose cnf says ES256.
    let p384_der = world().v1.key.to_pkcs8_der().unwrap().as_bytes().to_vec();
    let wrong = jws(jsonwebtoken::Algorithm::ES384, &p384_der, "wpt+jwt", None, &proof_claims(&wit));
    assert_unauthenticated(&with_wit(&rp, "/rows", &wit, &wrong).await, "wpt.alg");
}

/// `tth` binds a Txn-Token and `oth` other tokens; a token the WPT does not bind, or a binding
/// to a token that is not there, refuses the request.
#[tokio::test]
async fn other_tokens_must_be_bound_by_the_wpt() {
    let rp = start().await;
    let w = world();
    let key = w.v1.key.to_pkcs8_der().unwrap().as_bytes().to_vec();
    let hash = |s: &str| Base64UrlUnpadded::encode_string(&<sha2::Sha256 as sha2::Digest>::digest(s.as_bytes()));
    let t = unix(now());
    let proof = |extra: Value| {
        let mut claims =
            json!({"aud": format!("{}/rows", rp.url), "exp": t + 60, "jti": jti(), "wth": hash(&w.v1.wit)});
        claims.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        format!("WPT {}", jws(jsonwebtoken::Algorithm::ES384, &key, "wpt+jwt", None, &claims))
    };
    let client = Client::new(&rp.server_ca_pem);
    let call = |auth: String, more: Vec<(&'static str, &'static str)>| {
        let (client, rp, wit) = (client.clone(), &rp, w.v1.wit.clone());
        async move {
            let mut headers = vec![("workload-identity-token", wit.as_str()), ("authorization", auth.as_str())];
            headers.extend(more);
            send(&client, rp, "GET", "/rows", &headers).await.unwrap()
        }
    };
    let txn = "eyJ0eG4iOjF9.e30.c2ln";
    assert_rows(&call(proof(json!({"tth": hash(txn)})), vec![("txn-token", txn)]).await);
    assert_unauthenticated(&call(proof(json!({})), vec![("txn-token", txn)]).await, "wpt.tth");
    assert_unauthenticated(&call(proof(json!({"tth": hash(txn)})), vec![]).await, "wpt.tth");
    let oth = json!({"oth": {"x-user-context": hash("ctx-token")}});
    assert_rows(&call(proof(oth.clone()), vec![("x-user-context", "ctx-token")]).await);
    assert_unauthenticated(&call(proof(oth.clone()), vec![("x-user-context", "other")]).await, "wpt.oth");
    assert_unauthenticated(&call(proof(oth), vec![]).await, "wpt.oth");
}

#[tokio::test]
async fn the_server_key_may_be_p256_or_p384() {
    for alg in [&rcgen::PKCS_ECDSA_P256_SHA256, &rcgen::PKCS_ECDSA_P384_SHA384] {
        let rp = start_with(Setup { server_key: alg, ..Setup::default() }).await;
        assert_rows(&mtls(&rp, &world().v1, "/rows").await);
    }
}

/// The server key must be the owner's alone: one that group or others may read is refused at
/// start, naming the setting and the `chmod` that fixes it.
#[test]
fn a_server_key_others_may_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (_, chain, key) = support::net::server_certificate(&rcgen::PKCS_ECDSA_P384_SHA384);
    let (chain_path, key_path) = (dir.path().join("server.pem"), dir.path().join("server.key.pem"));
    std::fs::write(&chain_path, chain).unwrap();
    std::fs::write(&key_path, key).unwrap();
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = twi_rp::tls::server_config(&chain_path, &key_path, None, None).unwrap_err().to_string();
    assert!(error.starts_with("`server_key`: ") && error.contains("mode 644"), "{error}");
    assert!(error.contains(&format!("chmod 600 {}", key_path.display())), "{error}");
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(twi_rp::tls::server_config(&chain_path, &key_path, None, None).is_ok());
}

#[tokio::test]
async fn a_full_replay_cache_refuses_new_proofs_with_503() {
    let rp = start_with(Setup { settings: "replay_cache_capacity = 1".into(), ..Setup::default() }).await;
    let w = world();
    assert_rows(&wimse(&rp, &w.v1, "/rows").await);
    let busy = wimse(&rp, &w.v1, "/rows").await;
    assert_eq!(busy.status, 503, "{busy:?}");
    assert_eq!(busy.headers["retry-after"], "1");
    // mTLS callers do not need the cache.
    assert_rows(&mtls(&rp, &w.v1, "/rows").await);
}

#[tokio::test]
async fn route_data_comes_from_files_next_to_the_config() {
    let rp_dir = tempfile::tempdir().unwrap();
    std::fs::write(rp_dir.path().join("rows.csv"), ROWS).unwrap();
    let routes = format!(
        "[[route]]\npath = \"/rows\"\nallow = [\"{APP}\"]\nbody_file = \"{}\"\ncontent_type = \"text/csv\"\n",
        rp_dir.path().join("rows.csv").display()
    );
    let rp = start_with(Setup { routes, ..Setup::default() }).await;
    assert_rows(&mtls(&rp, &world().v1, "/rows").await);
    // A missing file is named when the relying party loads.
    let config = std::fs::read_to_string(rp.dir.path().join("rp.toml")).unwrap().replace("rows.csv", "gone.csv");
    std::fs::write(rp.dir.path().join("broken.toml"), config).unwrap();
    let e = twi_rp::RelyingParty::from_config_file(&rp.dir.path().join("broken.toml")).unwrap_err();
    assert!(e.to_string().contains("route[0].body_file") && e.to_string().contains("gone.csv"), "{e}");
}
