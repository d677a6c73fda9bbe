//! Policy-driven issuance through the `Issuer` API, on reports signed by simulated SEV-SNP
//! chips (`SimPsp`): a replayed nonce, a CS_L3 renewal on another chip, AF_L0 and AF_L1.

use std::path::Path;

use p384::ecdsa::SigningKey;
use p384::elliptic_curve::Generate;
use p384::pkcs8::DecodePrivateKey;
use sha2::Digest;
use twi_issuer::freshness::FreshnessError;
use twi_issuer::policy::{Policy, PolicyRejection};
use twi_issuer::{
    CredentialRequest, CredentialRequestIn, Evidence, EvidenceBundle, EvidenceRejection, Issued, Issuer, IssuerConfig,
    Rejection,
};
use twi_proto::msg::{CredentialKind, Platform};
use twi_sim::snp::SimPsp;
use twi_testkit::tacra::credential_request_proof as prove;

const MEASUREMENT: [u8; 48] = [0x5A; 48];

fn policy(freshness: &str, stickiness: &str, measurement: &[u8; 48]) -> Policy {
    policy_by(freshness, stickiness, measurement, "c")
}

/// As [`policy`], acquiring by `mechanism` (`d`: Retrieval).
fn policy_by(freshness: &str, stickiness: &str, measurement: &[u8; 48], mechanism: &str) -> Policy {
    policy_with("", freshness, stickiness, measurement, mechanism)
}

/// As [`policy_by`], with the top-level settings `top` (e.g. `wit_alg = "ES256"`).
fn policy_with(top: &str, freshness: &str, stickiness: &str, measurement: &[u8; 48], mechanism: &str) -> Policy {
    Policy::from_toml(&format!(
        r#"
{top}
version = "test-1"
trust_domain = "example.org"

[[workload]]
id = "payroll-app"
mechanism = "{mechanism}"
freshness = "{freshness}"
stickiness = "{stickiness}"

[workload.claims]
location = "DE"

[[workload.reference]]
label = "v1 (sim)"
platform = "sim-snp"
measurement = "{}"
"#,
        hex::encode(measurement)
    ))
    .unwrap()
}

/// A chip under `dir`; `root_from`: share the ARK and ASK of another chip (one simulated
/// vendor, two chips with their own CHIP_ID and VCEK).
fn chip(dir: &Path, root_from: Option<&Path>) -> SimPsp {
    std::fs::create_dir_all(dir).unwrap();
    if let Some(from) = root_from {
        for name in ["ark.pem", "ark.key.pem", "ask.pem", "ask.key.pem"] {
            std::fs::copy(from.join(name), dir.join(name)).unwrap();
        }
    }
    let mut psp = SimPsp::load_or_create(dir).unwrap();
    psp.set_launch_digest(MEASUREMENT);
    psp
}

fn issuer(state: &Path, psp: &SimPsp, policy: Policy) -> Issuer {
    let config = IssuerConfig { trust_domain: "example.org".into(), sim_snp_root: Some(psp.root().clone()) };
    Issuer::open(state, config, policy).unwrap()
}

/// A nonce from the issuer's Verifier for the chips' launch.
fn challenge(issuer: &mut Issuer) -> Vec<u8> {
    issuer.initiate(Platform::SimSnp, &MEASUREMENT, TARGET, CredentialKind::X509, None).unwrap().nonce
}

/// The target the tests acquire for.
const TARGET: &str = twi_testkit::tacra::TARGET;

/// A report of `psp` binding an acquisition (TACRA), and the chip's endorsements.
struct Attested {
    report: Vec<u8>,
    endorsements: Vec<Vec<u8>>,
    /// Enrollment: the CSR that goes with the evidence.
    csr: Option<Vec<u8>>,
}

impl Attested {
    /// Enrollment of `key` with freshness `nonce`, for the issuer `rp_id`.
    fn enroll(psp: &SimPsp, rp_id: &str, key: &SigningKey, nonce: &[u8]) -> Self {
        let (report_data, csr) = twi_testkit::tacra::enroll(key, nonce, rp_id, TARGET);
        Self::of(psp, report_data, Some(csr))
    }

    /// Retrieval to the encryption key `cek` (SEC1) with freshness `nonce`.
    fn retrieve(psp: &SimPsp, rp_id: &str, cek: &[u8], nonce: &[u8]) -> Self {
        Self::of(psp, twi_testkit::tacra::retrieve(cek, nonce, rp_id, TARGET), None)
    }

    fn of(psp: &SimPsp, report_data: [u8; 64], csr: Option<Vec<u8>>) -> Self {
        Self { report: psp.report(report_data, 0), endorsements: psp.endorsements().unwrap(), csr }
    }

    /// The evidence as the loader relays it, for `key` and `nonce`.
    fn evidence<'a>(&'a self, key: &'a [u8], nonce: &'a [u8]) -> Evidence<'a> {
        let bundle = EvidenceBundle {
            platform: Platform::SimSnp,
            evidence: &self.report,
            public_key: key,
            nonce,
            endorsements: &self.endorsements,
            target: TARGET,
            csr: self.csr.as_deref(),
        };
        Evidence { bundle, events: &[] }
    }
}

fn sec1(key: &SigningKey) -> Vec<u8> {
    key.verifying_key().to_sec1_point(false).as_bytes().to_vec()
}

/// Evidence from `psp` enrolling `key` with freshness `nonce`, presented to `issuer`.
fn present(
    issuer: &mut Issuer,
    psp: &SimPsp,
    key: &SigningKey,
    nonce: &[u8],
    renewal_of: Option<&str>,
) -> Result<Issued, Rejection> {
    let attested = Attested::enroll(psp, &issuer.rp_id(), key, nonce);
    let public = sec1(key);
    issuer.ca_credential(CredentialRequest::Evidence { evidence: attested.evidence(&public, nonce), renewal_of })
}

fn workload_key() -> SigningKey {
    SigningKey::try_generate().unwrap()
}

#[test]
fn a_replayed_nonce_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let psp = chip(&dir.path().join("chip"), None);
    let mut issuer = issuer(&dir.path().join("issuer"), &psp, policy("AF_L2", "CS_L1", &MEASUREMENT));
    let key = workload_key();
    let nonce = challenge(&mut issuer);
    let issued = present(&mut issuer, &psp, &key, &nonce, None).unwrap();
    assert_eq!(issued.workload_id, "spiffe://example.org/payroll-app");
    assert_eq!(issued.provenance["records"].as_array().unwrap().len(), 2, "one record per credential");
    let refused = present(&mut issuer, &psp, &key, &nonce, None).unwrap_err();
    assert_eq!(
        refused,
        Rejection::Freshness {
            workload: "spiffe://example.org/payroll-app".into(),
            level: "AF_L2",
            error: FreshnessError::Replayed
        }
    );
    assert!(refused.to_string().contains("the nonce was already used (replay)"), "{refused}");
    // A nonce the issuer never issued establishes nothing: AF_L2 refuses it.
    let refused = present(&mut issuer, &psp, &key, &[7; 32], None).unwrap_err();
    assert!(refused.to_string().contains("requires freshness AF_L2"), "{refused}");
}

/// The issuer counts the signatures it makes (`twi_issuer::metrics`, which the benchmark's
/// `openssl speed` bound reads): one mechanism-C issuance makes at least the credential, the
/// WIT, the EAR, the two records' statements, their receipts (one signature over the tree
/// head's root for both) and the signed tree head: 7. Other tests in this process only add to
/// the count.
#[test]
fn an_issuance_counts_the_signatures_it_makes() {
    let dir = tempfile::tempdir().unwrap();
    let psp = chip(&dir.path().join("chip"), None);
    let mut issuer = issuer(&dir.path().join("issuer"), &psp, policy("AF_L2", "CS_L1", &MEASUREMENT));
    let (key, nonce) = (workload_key(), challenge(&mut issuer));
    let before = twi_issuer::metrics::ecdsa_signatures();
    present(&mut issuer, &psp, &key, &nonce, None).unwrap();
    let made = twi_issuer::metrics::ecdsa_signatures() - before;
    assert!(made >= 7, "an issuance made {made} counted signatures");
}

/// Issue 14: the policy's mechanism is enforced, whichever route the host takes: a workload
/// under mechanism c is refused over a, b and d with a sentence naming what the policy gives;
/// a `[[workload.target]]`'s mechanism rules that target.
#[test]
fn a_mechanism_the_policy_does_not_give_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let psp = chip(&dir.path().join("chip"), None);
    let mut issuer = issuer(&dir.path().join("issuer"), &psp, policy("AF_L2", "CS_L1", &MEASUREMENT));
    let key = workload_key();
    let public = sec1(&key);
    let refusal = |e: Rejection| {
        assert!(matches!(e, Rejection::Target(_)), "{e}");
        e.to_string()
    };
    let nonce = challenge(&mut issuer);
    let attested = Attested::enroll(&psp, &issuer.rp_id(), &key, &nonce);
    let why = refusal(issuer.verifier_credential(&attested.evidence(&public, &nonce)).unwrap_err());
    assert!(why.contains("under mechanism c only (the policy's `mechanism`), not a"), "{why}");
    let nonce = challenge(&mut issuer);
    let attested = Attested::enroll(&psp, &issuer.rp_id(), &key, &nonce);
    let why = refusal(issuer.verifier_attestation_result(&attested.evidence(&public, &nonce)).unwrap_err());
    assert!(why.contains("under mechanism c only (the policy's `mechanism`), not b"), "{why}");
    let nonce = challenge(&mut issuer);
    let cek = sec1(&workload_key());
    let attested = Attested::retrieve(&psp, &issuer.rp_id(), &cek, &nonce);
    let why = issuer.key_store_release(&attested.evidence(&cek, &nonce)).unwrap_err().to_string();
    assert!(why.contains("by Enrollment, not Retrieval: the policy decides the mode"), "{why}");
    let nonce = challenge(&mut issuer);
    present(&mut issuer, &psp, &key, &nonce, None).expect("mechanism c, the policy's");

    // A target under mechanism a: c is refused for it, a served.
    let text = policy_text_with_target("a");
    let mut issuer = self::issuer(&dir.path().join("issuer-2"), &psp, Policy::from_toml(&text).unwrap());
    let nonce = challenge(&mut issuer);
    let why = refusal(present(&mut issuer, &psp, &key, &nonce, None).unwrap_err());
    assert!(why.contains(&format!("acquires for target `{TARGET}` under mechanism a only")), "{why}");
    let nonce = challenge(&mut issuer);
    let attested = Attested::enroll(&psp, &issuer.rp_id(), &key, &nonce);
    issuer.verifier_credential(&attested.evidence(&public, &nonce)).expect("mechanism a, the target's");
}

/// The test policy (mechanism c) with one `[[workload.target]]`, for [`TARGET`], under `mechanism`.
fn policy_text_with_target(mechanism: &str) -> String {
    format!(
        "version = \"test-1\"\ntrust_domain = \"example.org\"\n\n[[workload]]\nid = \"payroll-app\"\nmechanism = \"c\"\n\n\
         [[workload.reference]]\nplatform = \"sim-snp\"\nmeasurement = \"{}\"\n\n\
         [[workload.target]]\nname = \"{TARGET}\"\nmechanism = \"{mechanism}\"\n",
        hex::encode(MEASUREMENT)
    )
}

/// Issue 14: a nonce is spent only when appraisal begins on well-formed evidence. A truncated
/// report is refused and leaves the nonce usable; a well-formed report whose signature fails
/// spends it.
#[test]
fn malformed_evidence_leaves_the_nonce_usable() {
    let dir = tempfile::tempdir().unwrap();
    let psp = chip(&dir.path().join("chip"), None);
    let mut issuer = issuer(&dir.path().join("issuer"), &psp, policy("AF_L2", "CS_L1", &MEASUREMENT));
    let key = workload_key();
    let public = sec1(&key);
    let nonce = challenge(&mut issuer);
    let mut attested = Attested::enroll(&psp, &issuer.rp_id(), &key, &nonce);
    let report = attested.report.clone();
    attested.report.truncate(100);
    let request = CredentialRequest::Evidence { evidence: attested.evidence(&public, &nonce), renewal_of: None };
    let refused = issuer.ca_credential(request).unwrap_err();
    assert!(matches!(refused, Rejection::Evidence(EvidenceRejection::Verifier(_))), "{refused}");
    assert!(refused.to_string().contains("is 100 bytes, expected 1184"), "{refused}");
    // Without a CSR, an Enrollment is malformed too.
    attested.report = report.clone();
    let bundle = EvidenceBundle { csr: None, ..attested.evidence(&public, &nonce).bundle };
    let refused = issuer
        .ca_credential(CredentialRequest::Evidence { evidence: Evidence { bundle, events: &[] }, renewal_of: None });
    assert!(matches!(refused, Err(Rejection::Evidence(EvidenceRejection::MissingCsr))), "{refused:?}");
    let issued = issuer
        .ca_credential(CredentialRequest::Evidence { evidence: attested.evidence(&public, &nonce), renewal_of: None });
    assert_eq!(
        issued.expect("the nonce survived the malformed evidence").workload_id,
        "spiffe://example.org/payroll-app"
    );

    // Well formed, but signed wrongly: appraisal began, the nonce is spent.
    let nonce = challenge(&mut issuer);
    let mut attested = Attested::enroll(&psp, &issuer.rp_id(), &key, &nonce);
    let good = attested.report.clone();
    let last = attested.report.len() - 600;
    attested.report[last] ^= 1;
    let request = CredentialRequest::Evidence { evidence: attested.evidence(&public, &nonce), renewal_of: None };
    assert!(matches!(issuer.ca_credential(request), Err(Rejection::Evidence(EvidenceRejection::Verifier(_)))));
    attested.report = good;
    let request = CredentialRequest::Evidence { evidence: attested.evidence(&public, &nonce), renewal_of: None };
    let refused = issuer.ca_credential(request).unwrap_err();
    assert!(refused.to_string().contains("the nonce was already used (replay)"), "{refused}");
}

#[test]
fn af_l0_takes_any_nonce_and_af_l1_the_current_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let psp = chip(&dir.path().join("chip"), None);
    let mut any = issuer(&dir.path().join("issuer-l0"), &psp, policy("AF_L0", "CS_L1", &MEASUREMENT));
    present(&mut any, &psp, &workload_key(), &[7; 32], None).unwrap();

    let mut epochs = issuer(&dir.path().join("issuer-l1"), &psp, policy("AF_L1", "CS_L1", &MEASUREMENT));
    let challenge = epochs.initiate(Platform::SimSnp, &MEASUREMENT, TARGET, CredentialKind::X509, None).unwrap().nonce;
    let epoch = epochs.current_epoch().unwrap();
    assert_eq!(challenge, epoch.id(), "an AF_L1 workload is challenged with the current epoch id");
    let issued = present(&mut epochs, &psp, &workload_key(), &challenge, None).unwrap();
    // The attestation result names TACRA's freshness input: the kind and the element bound.
    let ear = twi_issuer::jose::decode_unverified(&issued.ear_jwt).unwrap().claims;
    let input = &ear["submods"]["twi"]["ear_verifier_claims"]["tacra_freshness"];
    assert_eq!(input["kind"], "present-epoch", "{ear:?}");
    assert_eq!(input["value"], twi_issuer::jose::b64url(&challenge));
    // The epoch is shared: another workload instance may bind it too.
    present(&mut epochs, &psp, &workload_key(), &challenge, None).unwrap();
    let refused = present(&mut epochs, &psp, &workload_key(), &[7; 32], None).unwrap_err();
    assert!(refused.to_string().contains("requires freshness AF_L1"), "{refused}");
}

#[test]
fn a_cs_l3_renewal_on_another_chip_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = chip(&dir.path().join("chip-a"), None);
    let second = chip(&dir.path().join("chip-b"), Some(&dir.path().join("chip-a")));
    let mut issuer = issuer(&dir.path().join("issuer"), &first, policy("AF_L2", "CS_L3", &MEASUREMENT));
    let key = workload_key();
    let nonce = challenge(&mut issuer);
    let issued = present(&mut issuer, &first, &key, &nonce, None).unwrap();
    // The WIT carries the policy's decision under a collision-resistant name (its OID as a
    // URN, the X.509 extension's), and no unregistered short names.
    let claims = twi_issuer::jose::decode_unverified(&issued.wit).unwrap().claims;
    let oids = twi_issuer::oids::Oids::default();
    let decision = &claims[&oids.claim_name(&oids.policy_binding)];
    assert_eq!(decision["stickiness"], "CS_L3");
    assert_eq!(decision["binding"], issued.admission.binding.to_json());
    assert!(claims.keys().all(|name| !name.starts_with("twi-")), "{claims:?}");

    // The same chip renews (by X.509 serial or by WIT jti).
    let nonce = challenge(&mut issuer);
    present(&mut issuer, &first, &key, &nonce, Some(&issued.serial_hex)).unwrap();
    let nonce = challenge(&mut issuer);
    let jti = issued.wit_jti.clone();
    present(&mut issuer, &first, &key, &nonce, Some(&jti)).unwrap();

    // Another chip does not.
    let nonce = challenge(&mut issuer);
    let refused = present(&mut issuer, &second, &key, &nonce, Some(&issued.serial_hex)).unwrap_err();
    let Rejection::Renewal(renewal) = &refused else { panic!("expected a renewal refusal, got {refused}") };
    assert_eq!(renewal.differences[0].field, "chip_id");
    assert!(refused.to_string().starts_with("renewal of spiffe://example.org/payroll-app refused"), "{refused}");

    // A first issuance on the second chip is fine: stickiness binds renewals only.
    let nonce = challenge(&mut issuer);
    present(&mut issuer, &second, &key, &nonce, None).unwrap();
    // And a renewal of something this issuer never issued is refused as such.
    let nonce = challenge(&mut issuer);
    let refused = present(&mut issuer, &first, &key, &nonce, Some("00")).unwrap_err();
    assert_eq!(refused, Rejection::UnknownPreviousCredential("00".into()));
}

/// `wit_alg = "ES256"`: the issuer makes a P-256 WIT key in its state (0600), signs WITs with it
/// (alg ES256, kid twi-wit-es256) and publishes it in its JWKS and SPIFFE bundle with crv P-256
/// and alg ES256; the default policy keeps the P-384 key, and neither key verifies the other's
/// WITs. After the switch the previous key stays published (JWKS and bundle), so the WITs it
/// signed verify, until its file is deleted.
#[test]
fn a_wit_alg_es256_policy_signs_wits_with_a_p256_key_it_publishes() {
    use std::os::unix::fs::PermissionsExt;
    use twi_issuer::jose::{Jwk, decode_unverified};
    use twi_issuer::wit::Wit;
    let dir = tempfile::tempdir().unwrap();
    let psp = chip(&dir.path().join("chip"), None);
    let state = dir.path().join("issuer");
    let es256 = policy_with("wit_alg = \"ES256\"", "AF_L2", "CS_L1", &MEASUREMENT, "c");
    let mut issuer = issuer(&state, &psp, es256);
    let nonce = challenge(&mut issuer);
    let issued = present(&mut issuer, &psp, &workload_key(), &nonce, None).unwrap();
    let header = decode_unverified(&issued.wit).unwrap().header;
    assert_eq!((header["alg"].as_str(), header["kid"].as_str()), (Some("ES256"), Some("twi-wit-es256")));
    let [published] = <[_; 1]>::try_from(issuer.published_keys().wit).unwrap();
    assert_eq!(published["kid"], "twi-wit-es256");
    assert_eq!((published["crv"].as_str(), published["alg"].as_str()), (Some("P-256"), Some("ES256")));
    let p256 = serde_json::from_value::<Jwk>(published).unwrap().to_public().unwrap();
    let now = std::time::SystemTime::now();
    assert_eq!(Wit::verify(&issued.wit, p256, now).unwrap().sub, "spiffe://example.org/payroll-app");
    let bundle = issuer.trust_bundle().unwrap();
    let wit_svid: Vec<_> = bundle["keys"].as_array().unwrap().iter().filter(|k| k["use"] == "wit-svid").collect();
    assert_eq!(wit_svid.len(), 1, "{bundle}");
    assert_eq!((wit_svid[0]["kid"].as_str(), wit_svid[0]["crv"].as_str()), (Some("twi-wit-es256"), Some("P-256")));
    assert_eq!(wit_svid[0]["alg"], "ES256");
    let mode = std::fs::metadata(state.join("wit-key-p256.pem")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(!state.join("wit-key.pem").exists(), "no P-384 WIT key is made for an ES256 policy");
    drop(issuer);

    // The same state under the default policy: ES384 under the P-384 key, which refuses the
    // ES256 WIT (and the P-256 key the ES384 one) by alg before any signature check.
    let mut issuer = self::issuer(&state, &psp, policy("AF_L2", "CS_L1", &MEASUREMENT));
    let nonce = challenge(&mut issuer);
    let es384 = present(&mut issuer, &psp, &workload_key(), &nonce, None).unwrap();
    let header = decode_unverified(&es384.wit).unwrap().header;
    assert_eq!((header["alg"].as_str(), header["kid"].as_str()), (Some("ES384"), Some("twi-wit")));
    let [signing, previous] = <[_; 2]>::try_from(issuer.published_keys().wit).unwrap();
    assert_eq!((signing["kid"].as_str(), previous["kid"].as_str()), (Some("twi-wit"), Some("twi-wit-es256")));
    let p384 = serde_json::from_value::<Jwk>(signing).unwrap().to_public().unwrap();
    assert!(Wit::verify(&es384.wit, p384, now).is_ok());
    let refused = Wit::verify(&issued.wit, p384, now).unwrap_err().to_string();
    assert!(refused.contains("alg ES256") && refused.contains("P-384"), "{refused}");
    assert!(Wit::verify(&es384.wit, p256, now).is_err());
    // The ES256 WIT signed before the switch verifies under the key still published for it.
    let previous = serde_json::from_value::<Jwk>(previous).unwrap().to_public().unwrap();
    assert_eq!(Wit::verify(&issued.wit, previous, now).unwrap().sub, "spiffe://example.org/payroll-app");
    let wit_svid_kids = |issuer: &twi_issuer::Issuer| -> Vec<String> {
        let bundle = issuer.trust_bundle().unwrap();
        let keys = bundle["keys"].as_array().unwrap().iter().filter(|k| k["use"] == "wit-svid");
        keys.map(|k| k["kid"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(wit_svid_kids(&issuer), ["twi-wit", "twi-wit-es256"]);
    // go-spiffe's rules (re-implemented in Python) read the two-key bundle and verify the ES256
    // WIT under its previous key by `kid`.
    let unix_now = now.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let input = serde_json::json!({
        "bundle": issuer.trust_bundle().unwrap(), "trust_domain": "example.org",
        "wit": issued.wit, "now": unix_now,
    });
    let out = twi_testkit::tools::spiffe_bundle_check(&input);
    twi_testkit::tools::assert_ok(&out, "the SPIFFE bundle check of the two WIT keys");
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok   WIT-SVID verifies"));
    let jwks = twi_issuer::wit_jwks(&state, twi_issuer::jose::Alg::Es384).unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2, "{jwks}");
    drop(issuer);

    // Once the operator deletes the previous key's file, only the signing key is published.
    std::fs::remove_file(state.join("wit-key-p256.pem")).unwrap();
    let issuer = self::issuer(&state, &psp, policy("AF_L2", "CS_L1", &MEASUREMENT));
    assert_eq!(issuer.published_keys().wit.len(), 1);
    assert_eq!(wit_svid_kids(&issuer), ["twi-wit"]);
}

#[test]
fn an_unknown_measurement_names_the_closest_match() {
    let dir = tempfile::tempdir().unwrap();
    let psp = chip(&dir.path().join("chip"), None);
    let mut issuer = issuer(&dir.path().join("issuer"), &psp, policy("AF_L2", "CS_L1", &[0x11; 48]));
    let nonce = challenge(&mut issuer);
    let refused = present(&mut issuer, &psp, &workload_key(), &nonce, None).unwrap_err();
    assert!(matches!(refused, Rejection::Policy(PolicyRejection::NoMatch { .. })), "{refused}");
    let text = refused.to_string();
    assert!(text.contains("closest: workload `payroll-app` reference #0 \"v1 (sim)\""), "{text}");
    assert!(text.contains("differs in 1 field"), "{text}");
}

/// Mechanism B: the Credential Authority issues on the Verifier's attestation result only with
/// a proof of possession by the bound key, and refuses a tampered result, another key's proof,
/// a request for another key, and a replay. In one process.
#[test]
fn mechanism_b_credential_requests_are_checked_by_the_credential_authority() {
    let dir = tempfile::tempdir().unwrap();
    let psp = chip(&dir.path().join("chip"), None);
    let mut issuers = [issuer(&dir.path().join("issuer"), &psp, policy_by("AF_L2", "CS_L1", &MEASUREMENT, "b"))];
    mechanism_b_is_checked(&mut issuers, &psp, (0, 0));
}

/// The same across two replicas on one state directory and one PostgreSQL database: the
/// result one replica's Verifier signed is redeemed at the other, once (the signer refuses it
/// afterwards too). What waits in the database is the evidence, appraised again when redeemed:
/// a row rewritten to name other evidence (of another key, equally genuine) is refused.
#[test]
fn mechanism_b_results_are_redeemed_once_at_any_replica() {
    use std::sync::Arc;
    use twi_issuer::database::Postgres;

    let cluster = twi_testkit::postgres::Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let psp = chip(&dir.path().join("chip"), None);
    let replica = || {
        let config = IssuerConfig { trust_domain: "example.org".into(), sim_snp_root: Some(psp.root().clone()) };
        let policy = policy_by("AF_L2", "CS_L1", &MEASUREMENT, "b");
        let pg = Arc::new(Postgres::connect(&cluster.url()).unwrap());
        Issuer::open_shared(&dir.path().join("issuer"), config, policy, Some(pg)).unwrap()
    };
    let mut replicas = [replica(), replica()];
    mechanism_b_is_checked(&mut replicas, &psp, (0, 1));
    mechanism_b_is_checked(&mut replicas, &psp, (1, 0));

    // A waiting row rewritten to hold another launch's evidence (another key, same chip).
    let (signing, other) = (SigningKey::try_generate().unwrap(), SigningKey::try_generate().unwrap());
    let nonce = challenge(&mut replicas[0]);
    let attested = Attested::enroll(&psp, &replicas[0].rp_id(), &signing, &nonce);
    let ear = replicas[0].verifier_attestation_result(&attested.evidence(&sec1(&signing), &nonce)).unwrap().ear_jwt;
    let other_nonce = challenge(&mut replicas[0]);
    let swapped = Attested::enroll(&psp, &replicas[0].rp_id(), &other, &other_nonce);
    let swapped = twi_issuer::evidence::EvidenceJson::new(&swapped.evidence(&sec1(&other), &other_nonce));
    let row = cluster.psql("SELECT convert_from(launch, 'UTF8') FROM attestation_results");
    let mut kept: serde_json::Value = serde_json::from_slice(&row.stdout).unwrap();
    kept["evidence"] = serde_json::to_value(swapped).unwrap();
    let update = cluster.psql(&format!("UPDATE attestation_results SET launch = convert_to($j${kept}$j$, 'UTF8')"));
    assert!(String::from_utf8_lossy(&update.stdout).contains("UPDATE 1"), "{update:?}");
    let (key, proof) = (sec1(&signing), prove(&signing, &nonce, &ear, &sec1(&signing)));
    let request = CredentialRequestIn { ear: &ear, public_key: &key, proof: &proof };
    let e = replicas[1].ca_credential(CredentialRequest::AttestationResult(request)).unwrap_err();
    assert!(e.to_string().contains("the attestation result's evidence binds another key"), "{e}");
}

/// Mechanism B with the Verifier of `issuers[at.0]` and the Credential Authority of
/// `issuers[at.1]` (the same issuer, or two replicas): the refusals leave the result usable;
/// the real request is honoured once, and the result is refused afterwards everywhere.
fn mechanism_b_is_checked(issuers: &mut [Issuer], psp: &SimPsp, at: (usize, usize)) {
    let signing = SigningKey::try_generate().unwrap();
    let key = sec1(&signing);
    let nonce = challenge(&mut issuers[at.0]);
    let attested = Attested::enroll(psp, &issuers[at.0].rp_id(), &signing, &nonce);
    let result = issuers[at.0].verifier_attestation_result(&attested.evidence(&key, &nonce)).unwrap();
    assert_eq!(result.workload_id, "spiffe://example.org/payroll-app");
    let ear = result.ear_jwt;
    let refused = |issuer: &mut Issuer, ear: &str, key: &[u8], proof: &[u8]| {
        let request = CredentialRequestIn { ear, public_key: key, proof };
        let e = issuer.ca_credential(CredentialRequest::AttestationResult(request)).unwrap_err();
        assert!(matches!(e, Rejection::CredentialRequest(_)), "{e}");
        e.to_string()
    };
    let ca = &mut issuers[at.1];

    // A tampered attestation result (one payload character changed): not the Verifier's.
    let mut tampered = ear.clone().into_bytes();
    let i = ear.find('.').unwrap() + 10;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let why = refused(ca, &tampered, &key, &prove(&signing, &nonce, &tampered, &key));
    assert!(why.contains("the attestation result is not the Verifier's"), "{why}");

    // A proof by another key.
    let other = SigningKey::try_generate().unwrap();
    let why = refused(ca, &ear, &key, &prove(&other, &nonce, &ear, &key));
    assert!(why.contains("the proof of possession does not verify"), "{why}");

    // A request for another key (with that key's valid proof): the result binds ours.
    let other_key = sec1(&other);
    let why = refused(ca, &ear, &other_key, &prove(&other, &nonce, &ear, &other_key));
    assert!(why.contains("binds another key"), "{why}");

    // The real request is honoured (the refusals above did not consume the result) …
    let proof = prove(&signing, &nonce, &ear, &key);
    let request = CredentialRequestIn { ear: &ear, public_key: &key, proof: &proof };
    let issued = ca.ca_credential(CredentialRequest::AttestationResult(request)).unwrap();
    assert_eq!(issued.workload_id, "spiffe://example.org/payroll-app");
    assert_eq!(issued.ear_jwt, ear);
    assert_eq!(issued.provenance["records"][0]["record"]["decision"]["criteria"]["mechanism"], "b");
    // … once, wherever it is presented again.
    for issuer in issuers.iter_mut() {
        let why = refused(issuer, &ear, &key, &proof);
        assert!(why.contains("already redeemed"), "{why}");
    }
}

/// Mechanism D: Evidence binding an ephemeral HPKE key for `nonce`, presented for a release.
fn present_for_release(
    issuer: &mut Issuer,
    psp: &SimPsp,
    ephemeral: &[u8],
    nonce: &[u8],
) -> Result<twi_issuer::KeyReleased, Rejection> {
    let attested = Attested::retrieve(psp, &issuer.rp_id(), ephemeral, nonce);
    issuer.key_store_release(&attested.evidence(ephemeral, nonce))
}

/// The issuer serves requests side by side (`twi serve` shares it): owners provisioning one
/// workload at once get one credential, and no second one is made and logged in vain.
#[test]
fn concurrent_provisioning_of_one_workload_makes_one_credential() {
    let dir = tempfile::tempdir().unwrap();
    let psp = chip(&dir.path().join("chip"), None);
    let issuer = issuer(&dir.path().join("issuer"), &psp, policy_by("AF_L0", "CS_L1", &MEASUREMENT, "d"));
    // The checkpoint's second line is the log's size (C2SP tlog-checkpoint).
    let logged = || issuer.log_checkpoint().unwrap().lines().nth(1).unwrap().parse::<u64>().unwrap();
    let before = logged();
    let answers: Vec<_> = std::thread::scope(|scope| {
        let asks: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| issuer.key_store_provision(Platform::SimSnp, &MEASUREMENT, "test owner").unwrap()))
            .collect();
        asks.into_iter().map(|ask| ask.join().unwrap()).collect()
    });
    assert_eq!(answers.iter().filter(|(_, created)| *created).count(), 1, "exactly one request made the credential");
    assert!(answers.iter().all(|(p, _)| p.serial_hex == answers[0].0.serial_hex), "all were given the same credential");
    assert_eq!(logged(), before + 1, "one provisioning record, no credential made in vain");
}

#[test]
fn mechanism_d_releases_the_provisioned_key_once_per_nonce_encrypted_to_the_bound_key() {
    use std::os::unix::fs::PermissionsExt;
    use twi_attester::hpke;
    use twi_issuer::keystore::KeyStoreError;

    let dir = tempfile::tempdir().unwrap();
    let psp = chip(&dir.path().join("chip"), None);
    let state = dir.path().join("issuer");
    // AF_L0, so that the Key Store's own one-release-per-nonce rule is what refuses a replay.
    let mut issuer = issuer(&state, &psp, policy_by("AF_L0", "CS_L1", &MEASUREMENT, "d"));
    let ephemeral = p384::SecretKey::try_generate().unwrap();
    let ephemeral_public = hpke::serialize_public_key(&ephemeral.public_key());
    let nonce = [0x42u8; 32];

    // Nothing provisioned yet: refused, and says what to do.
    let refused = present_for_release(&mut issuer, &psp, &ephemeral_public, &nonce).unwrap_err();
    assert!(
        matches!(&refused, Rejection::KeyStore(KeyStoreError::NotProvisioned(w)) if w == "spiffe://example.org/payroll-app"),
        "{refused}"
    );

    let (provisioned, created) = issuer.key_store_provision(Platform::SimSnp, &MEASUREMENT, "test owner").unwrap();
    assert!(created);
    assert!(!issuer.key_store_provision(Platform::SimSnp, &MEASUREMENT, "test owner").unwrap().1, "provisioned once");
    // Provisioning is logged like any issuance, and the certificate names its record.
    let proof = issuer.log_proof(&provisioned.serial_hex).unwrap().expect("the provisioning is in the log");
    let statement = hex::decode(proof["statement"].as_str().unwrap()).unwrap();
    let record = twi_issuer::provenance::SignedStatement::decode(&statement).unwrap().record().cloned().unwrap();
    assert_eq!(record.workload_id, "spiffe://example.org/payroll-app", "{record:?}");
    assert_eq!(record.decision.criteria["provisioned_by"], "test owner", "{record:?}");
    assert_eq!((record.evidence_sha384.as_str(), record.decision.status.as_str()), ("", "none"));
    let named = hex::decode(proof["statement_sha256"].as_str().unwrap()).unwrap();
    assert!(provisioned.certificate_der.windows(32).any(|w| w == named), "the certificate names its log entry");
    let slot = std::fs::read_dir(state.join("keystore"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("key.pem").exists())
        .expect("a provisioned slot");
    assert_eq!(std::fs::metadata(slot.join("key.pem")).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&slot).unwrap().permissions().mode() & 0o777, 0o700);
    let provisioned_key = SigningKey::from_pkcs8_pem(&std::fs::read_to_string(slot.join("key.pem")).unwrap()).unwrap();

    // Another nonce, since the refused attempt above consumed nothing at the Key Store, but
    // use a fresh one anyway.
    let nonce = [0x43u8; 32];
    let released = present_for_release(&mut issuer, &psp, &ephemeral_public, &nonce).unwrap();
    // The released certificate is issued for this launch: the provisioned key, a serial of its
    // own, and the issuer's extensions (evidence digest, policy binding, the simulated marker).
    use der::Decode;
    let issued = x509_cert::Certificate::from_der(&released.issued.certificate_der).unwrap();
    let spki = issued.tbs_certificate().subject_public_key_info();
    assert_eq!(spki.subject_public_key.raw_bytes(), provisioned.public_key.as_slice());
    assert_ne!(released.issued.serial_hex, provisioned.serial_hex);
    let oids = twi_issuer::oids::Oids::default();
    let extensions = issued.tbs_certificate().extensions().unwrap();
    for oid in [oids.evidence_sha384, oids.policy_binding, oids.simulated_tee] {
        assert!(extensions.iter().any(|e| e.extn_id == oid), "the released certificate lacks {oid}");
    }
    assert_eq!(released.issued.workload_id, "spiffe://example.org/payroll-app");
    let cert_sha256: [u8; 32] = sha2::Sha256::digest(&released.issued.certificate_der).into();
    let info = twi_proto::msg::key_release_info(&nonce, &ephemeral_public);
    let aad = twi_proto::msg::key_release_aad(&cert_sha256);
    let mut scalar = [0u8; 48];
    hpke::open(&ephemeral, &released.release.enc, &info, &aad, &released.release.ciphertext, &mut scalar).unwrap();
    assert_eq!(scalar, <[u8; 48]>::from(provisioned_key.to_bytes()), "the released key is the provisioned key");
    // Encrypted to the bound key only: another key, or another nonce in `info`, does not open it.
    let other = p384::SecretKey::try_generate().unwrap();
    let ct = &released.release.ciphertext;
    assert!(hpke::open(&other, &released.release.enc, &info, &aad, ct, &mut scalar).is_err());
    let other_info = twi_proto::msg::key_release_info(&[0x44; 32], &ephemeral_public);
    assert!(hpke::open(&ephemeral, &released.release.enc, &other_info, &aad, ct, &mut scalar).is_err());
    // Logged, with the mechanism, and the receipt names the release.
    let records = released.issued.provenance["records"].as_array().unwrap();
    assert_eq!(records[0]["record"]["decision"]["criteria"]["mechanism"], "d");
    assert_eq!(records[0]["credential_id"].as_str().unwrap(), released.issued.serial_hex);
    // The released certificate and its WIT each name their own record's signed statement.
    let named = extensions.iter().find(|e| e.extn_id == oids.log_entry).expect("the log-entry extension");
    let entry = twi_issuer::provenance::entry::LogEntry::from_der(named.extn_value.as_bytes()).unwrap();
    assert_eq!(entry.origin, "example.org/twi-log");
    assert_eq!(hex::encode(entry.statement_sha256), records[0]["statement_sha256"].as_str().unwrap());
    let statement = hex::decode(records[0]["statement"].as_str().unwrap()).unwrap();
    assert_eq!(entry.statement_sha256, <[u8; 32]>::from(sha2::Sha256::digest(&statement)));
    let wit = twi_issuer::jose::decode_unverified(&released.issued.wit).unwrap();
    let claim = &wit.claims[&oids.claim_name(&oids.log_entry)];
    assert_eq!(claim["statement_sha256"], records[1]["statement_sha256"]);
    assert_eq!(records[1]["credential_id"].as_str().unwrap(), released.issued.wit_jti);
    let receipt = twi_issuer::jose::decode_unverified(&released.release.receipt).unwrap();
    assert_eq!(receipt.claims["x509-serial"], released.issued.serial_hex.as_str());
    assert_eq!(receipt.header["kid"], "twi-keystore");

    // The same nonce again (AF_L0 lets it through freshness): the Key Store refuses.
    let refused = present_for_release(&mut issuer, &psp, &ephemeral_public, &nonce).unwrap_err();
    assert_eq!(refused, Rejection::KeyStore(KeyStoreError::AlreadyReleased));
    assert!(refused.to_string().contains("replay"), "{refused}");

    // Evidence binds its key for one mode only. Retrieval evidence (no CSR: its subject is the
    // CEK's SubjectPublicKeyInfo) taken to the Credential Authority gets no certificate for the
    // encryption key, and enrollment evidence (a CSR) gets no key release.
    let rp_id = issuer.rp_id();
    let nonce = [0x45u8; 32];
    let attested = Attested::retrieve(&psp, &rp_id, &ephemeral_public, &nonce);
    let evidence = attested.evidence(&ephemeral_public, &nonce);
    assert!(matches!(
        issuer.ca_credential(CredentialRequest::Evidence { evidence, renewal_of: None }),
        Err(Rejection::Evidence(EvidenceRejection::MissingCsr))
    ));
    let nonce = [0x46u8; 32];
    let enrolled = workload_key();
    let attested = Attested::enroll(&psp, &rp_id, &enrolled, &nonce);
    assert!(matches!(
        issuer.key_store_release(&attested.evidence(&sec1(&enrolled), &nonce)),
        Err(Rejection::Evidence(EvidenceRejection::UnexpectedCsr))
    ));
}

// ---------------------------------------------------------------------------------------------
// Workload Provenance (issue 16 item 1): the SBOM the admitted reference entry names, the
// workload's demands on it, and the credential that carries its digest.

/// A CycloneDX document supplied by `vendor`, listing `crates` (name, version).
fn sbom_document(vendor: &str, crates: &[(&str, &str)]) -> Vec<u8> {
    let components: Vec<serde_json::Value> = crates
        .iter()
        .map(|(name, version)| {
            serde_json::json!({
                "type": "library", "name": name, "version": version,
                "purl": format!("pkg:cargo/{name}@{version}"), "bom-ref": format!("{name}@{version}"),
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
        "metadata": { "supplier": { "name": vendor }, "component": { "type": "firmware", "name": "payroll", "version": "image" } },
        "components": components,
    }))
    .unwrap()
}

const CRATES: &[(&str, &str)] = &[("p384", "0.14.0"), ("rustls", "0.23.31"), ("twi-runtime", "0.1.0")];

/// A policy file in `dir` whose reference entry names `document`'s digest, with `demands`
/// under `[workload.provenance]`; the document stored beside it. Returns the policy's path.
fn provenance_policy(dir: &Path, demands: &str, document: &[u8]) -> std::path::PathBuf {
    use twi_issuer::policy::{SbomDigest, sbom_store_of, store_sbom};
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("policy.toml");
    let digest = SbomDigest::of(document);
    let text = format!(
        "version = \"test-1\"\ntrust_domain = \"example.org\"\n\n[[workload]]\nid = \"payroll-app\"\nmechanism = \"c\"\n\n\
         [workload.provenance]\n{demands}\n\n\
         [[workload.reference]]\nlabel = \"v1\"\nplatform = \"sim-snp\"\nmeasurement = \"{}\"\nsbom = \"{digest}\"\n",
        hex::encode(MEASUREMENT)
    );
    std::fs::write(&path, text).unwrap();
    store_sbom(&sbom_store_of(&path), document, Some(&digest)).unwrap();
    path
}

/// Issues under the policy at `path` (an issuer state of its own beside it).
fn issue_under(path: &Path, psp: &SimPsp) -> Result<Issued, Rejection> {
    let mut issuer = issuer(&path.with_file_name("state"), psp, Policy::load(path).unwrap());
    let nonce = challenge(&mut issuer);
    present(&mut issuer, psp, &workload_key(), &nonce, None)
}

#[test]
fn provenance_demands_met_put_the_sbom_digest_in_the_credential_and_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let psp = chip(&dir.path().join("chip"), None);
    let document = sbom_document("Example Corp", CRATES);
    let digest = twi_issuer::policy::SbomDigest::of(&document);
    let demands = "sbom = \"required\"\nvendor = \"Example Corp\"\ndeny = [\"openssl\", \"p384@<0.14\"]\nmin_versions = { rustls = \"0.23.0\" }";
    let issued = issue_under(&provenance_policy(&dir.path().join("met"), demands, &document), &psp).unwrap();
    let checked = issued.admission.provenance.as_ref().expect("the admission records the provenance it checked");
    assert_eq!(checked.sbom, digest);
    assert_eq!(checked.checks.len(), 5, "{:?}", checked.checks);
    // The certificate carries the digest under the arc's SBOM OID, as openssl reads it.
    let oids = twi_issuer::oids::Oids::default();
    let pem = dir.path().join("credential.pem");
    std::fs::write(&pem, &issued.certificate_pem).unwrap();
    let pem = twi_testkit::tools::utf8(&pem);
    let out = twi_testkit::tools::openssl(&["x509", "-in", pem, "-noout", "-text", "-certopt", "ext_dump"]);
    twi_testkit::tools::assert_ok(&out, "openssl x509 -text");
    let text = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(text.contains(&format!("{}:", oids.sbom_sha384)), "{text}");
    // ext_dump: the value's DER in hex, an OCTET STRING of 48 bytes (04 30) holding the digest.
    let first: Vec<String> = digest.0[..6].iter().map(|b| format!("{b:02x}")).collect();
    assert!(
        text.contains(&format!("0000 - 04 30 {}", first.join(" "))),
        "the extension is not the SBOM digest:\n{text}"
    );
    // The WIT carries it under the OID's URN, the record and the attestation result too.
    let wit = twi_issuer::jose::decode_unverified(&issued.wit).unwrap();
    assert_eq!(wit.claims[&oids.claim_name(&oids.sbom_sha384)], digest.to_string());
    for record in issued.provenance["records"].as_array().unwrap() {
        assert_eq!(record["record"]["decision"]["criteria"]["sbom"], digest.to_string());
        let checks = record["record"]["decision"]["criteria"]["provenance"].as_str().unwrap();
        assert!(
            checks.contains("deny: p384@<0.14 absent") && checks.contains("vendor: \\\"Example Corp\\\""),
            "{checks}"
        );
    }
    let ear = twi_issuer::jose::decode_unverified(&issued.ear_jwt).unwrap();
    let ear = serde_json::Value::Object(ear.claims).to_string();
    assert!(ear.contains(&digest.to_string()), "the EAR does not record the SBOM: {ear}");
}

#[test]
fn each_provenance_demand_that_fails_refuses_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let psp = chip(&dir.path().join("chip"), None);
    let document = sbom_document("Example Corp", CRATES);
    let cases = [
        ("vendor = \"Other Corp\"", "provenance demand vendor = \"Other Corp\" fails: the SBOM names \"Example Corp\""),
        ("deny = [\"rustls\"]", "provenance demand deny = \"rustls\" fails: the image contains rustls 0.23.31"),
        ("deny = [\"p384@<0.15\"]", "provenance demand deny = \"p384@<0.15\" fails: the image contains p384 0.14.0"),
        (
            "min_versions = { p384 = \"0.14.1\" }",
            "provenance demand min_versions.p384 = \"0.14.1\" fails: the image contains p384 0.14.0",
        ),
    ];
    for (i, (demand, says)) in cases.iter().enumerate() {
        let refused = issue_under(&provenance_policy(&dir.path().join(format!("{i}")), demand, &document), &psp)
            .expect_err(demand);
        assert!(matches!(refused, Rejection::Policy(PolicyRejection::Provenance(_))), "{refused}");
        assert!(refused.to_string().contains(says), "{demand}: {refused}");
    }
    // The document changed in the store: refused, whatever the demands.
    let path = provenance_policy(&dir.path().join("tampered"), "sbom = \"required\"", &document);
    let stored = std::fs::read_dir(twi_issuer::policy::sbom_store_of(&path)).unwrap().next().unwrap().unwrap().path();
    std::fs::write(&stored, sbom_document("Example Corp", &[("p384", "0.14.0")])).unwrap();
    let refused = issue_under(&path, &psp).unwrap_err().to_string();
    assert!(
        refused.contains("is not the SBOM it is named for") && refused.contains("sbom = \"required\""),
        "{refused}"
    );
    // Gone from the store: refused, saying how to store it.
    std::fs::remove_file(&stored).unwrap();
    let refused = issue_under(&path, &psp).unwrap_err().to_string();
    assert!(refused.contains("run `twi policy add-image`"), "{refused}");
    // A reference entry that names no SBOM cannot meet a demand.
    let text = std::fs::read_to_string(&path).unwrap();
    let without: String =
        text.lines().filter(|l| !l.starts_with("sbom = \"sha384")).map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, without).unwrap();
    let refused = issue_under(&path, &psp).unwrap_err().to_string();
    assert!(refused.contains("its reference entry \"v1\" names no SBOM"), "{refused}");
    // Without demands, an entry's SBOM still goes into the credential, unread.
    let path = provenance_policy(&dir.path().join("undemanded"), "", &document);
    let text = std::fs::read_to_string(&path).unwrap().replace("[workload.provenance]\n", "");
    std::fs::write(&path, text).unwrap();
    let issued = issue_under(&path, &psp).unwrap();
    let checked = issued.admission.provenance.unwrap();
    assert_eq!((checked.sbom, checked.checks.len()), (twi_issuer::policy::SbomDigest::of(&document), 0));
}

/// The workload component's SHA-384 in the vendor tests (the runtime ELF's, in a real build).
const ELF_SHA384: &str =
    "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

/// A CycloneDX document as `twi build` writes it, as far as the vendor demand reads it: the
/// workload component `payroll` (version `image`, SHA-384 [`ELF_SHA384`]), the builder's
/// declared supplier, and each of `attached` (name, bytes) listed by its SHA-384.
fn sbom_attaching(attached: &[(&str, &[u8])]) -> Vec<u8> {
    use sha2::Sha384;
    let data: Vec<serde_json::Value> = attached
        .iter()
        .map(|(name, bytes)| {
            serde_json::json!({
                "type": "data", "name": name, "version": "attached", "bom-ref": format!("attach:{name}"),
                "hashes": [{ "alg": "SHA-384", "content": hex::encode(Sha384::digest(bytes)) }], "scope": "excluded",
            })
        })
        .collect();
    let subject = serde_json::json!({
        "type": "firmware", "name": "payroll", "version": "image",
        "hashes": [{ "alg": "SHA-384", "content": ELF_SHA384 }],
    });
    serde_json::to_vec(&serde_json::json!({
        "bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
        "metadata": { "supplier": { "name": "Example Corp" }, "component": subject },
        "components": data,
    }))
    .unwrap()
}

/// A statement of `vendor` for the workload component `payroll image` of SHA-384 `sha384`.
fn vendor_statement(key: &SigningKey, vendor: &str, sha384: &str) -> Vec<u8> {
    use twi_issuer::policy::vendor::{STATEMENT_TYPE, Subject, VendorStatement, sign};
    let subject = Subject { name: "payroll".into(), version: "image".into(), sha384: sha384.into() };
    sign(&VendorStatement { kind: STATEMENT_TYPE.into(), vendor: vendor.into(), subject }, key).unwrap()
}

/// A policy in `dir` demanding vendor "Example Corp" under `key`'s public half (a PEM file
/// beside the policy), admitting an image whose SBOM lists `attached`; `stored`: the statements
/// the policy's store holds (as `twi policy add-image` stores them).
fn vendor_policy(dir: &Path, key: &SigningKey, attached: &[(&str, &[u8])], stored: &[&[u8]]) -> std::path::PathBuf {
    use p384::pkcs8::{EncodePublicKey, LineEnding};
    use twi_issuer::policy::{SbomDigest, sbom_store_of, store_attachment};
    std::fs::create_dir_all(dir).unwrap();
    let pem = key.verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
    std::fs::write(dir.join("vendor.pub.pem"), pem).unwrap();
    let demands = "vendor = \"Example Corp\"\nvendor_key = \"vendor.pub.pem\"";
    let path = provenance_policy(dir, demands, &sbom_attaching(attached));
    for bytes in stored {
        store_attachment(&sbom_store_of(&path), bytes, &SbomDigest::of(bytes), 1 << 20).unwrap();
    }
    path
}

/// `vendor_key`: the vendor demand is met by an attached, measured statement the vendor signed
/// for the SBOM's workload component, and the appraisal records it; the pycose check reads the
/// statement on its own. The key may be inline PEM too.
#[test]
fn a_signed_vendor_statement_meets_the_vendor_demand_and_is_recorded() {
    use p384::pkcs8::{EncodePublicKey, LineEnding};
    let dir = tempfile::tempdir().unwrap();
    let psp = chip(&dir.path().join("chip"), None);
    let key = workload_key();
    let statement = vendor_statement(&key, "Example Corp", ELF_SHA384);
    let path = vendor_policy(&dir.path().join("met"), &key, &[("vendor.cose", &statement)], &[&statement]);
    let issued = issue_under(&path, &psp).unwrap();
    let kid = hex::encode(twi_issuer::policy::vendor::key_id(key.verifying_key()));
    let checks = &issued.admission.provenance.as_ref().unwrap().checks;
    let recorded = format!("vendor statement: vendor.cose (\"Example Corp\"), key {kid}");
    assert!(checks.contains(&recorded), "{checks:?}");
    for record in issued.provenance["records"].as_array().unwrap() {
        let criteria = record["record"]["decision"]["criteria"]["provenance"].as_str().unwrap();
        assert!(criteria.contains(&kid) && criteria.contains("vendor statement: vendor.cose"), "{criteria}");
    }

    // The same key given inline in the policy.
    let pem = key.verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
    let text = std::fs::read_to_string(&path).unwrap().replace("\"vendor.pub.pem\"", &format!("\"\"\"\n{pem}\"\"\""));
    std::fs::write(&path, text).unwrap();
    std::fs::remove_file(path.with_file_name("vendor.pub.pem")).unwrap();
    issue_under(&path, &psp).unwrap();

    // pycose reads the statement, and refuses it altered.
    let mut altered = statement.clone();
    let at = altered.windows(7).position(|w| w == b"Example").unwrap();
    altered[at] = b'F';
    let input = serde_json::json!({
        "key_pem": pem,
        "statement": hex::encode(&statement),
        "expect": { "vendor": "Example Corp", "subject": { "name": "payroll", "version": "image", "sha384": ELF_SHA384 } },
        "must_fail": [{ "name": "a statement altered in place", "statement": hex::encode(&altered) }],
    });
    let out = twi_testkit::tools::vendor_statement_check(&input);
    twi_testkit::tools::assert_ok(&out, "the pycose vendor statement check");
}

/// `vendor_key`: a statement under another key, altered, for another component or of another
/// vendor, one the SBOM does not list (so not measured), and one the store holds other bytes
/// for, are each refused saying why; the declared supplier name alone no longer counts.
#[test]
fn a_vendor_statement_that_does_not_meet_the_demand_is_refused_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let psp = chip(&dir.path().join("chip"), None);
    let key = workload_key();
    let good = vendor_statement(&key, "Example Corp", ELF_SHA384);
    let other_key = vendor_statement(&workload_key(), "Example Corp", ELF_SHA384);
    let mut altered = good.clone();
    let at = altered.windows(7).position(|w| w == b"Example").unwrap();
    altered[at] = b'F';
    let other_component = vendor_statement(&key, "Example Corp", &"ab".repeat(48));
    let other_vendor = vendor_statement(&key, "Other Corp", ELF_SHA384);
    let cases: [(&str, &[u8], &str); 4] = [
        ("other-key", &other_key, "it is signed by key "),
        ("altered", &altered, "its signature does not verify under the policy's vendor_key"),
        ("component", &other_component, "it vouches for payroll image (sha384 abab"),
        ("vendor", &other_vendor, "it is a statement of \"Other Corp\", not of \"Example Corp\""),
    ];
    for (name, statement, says) in cases {
        let path = vendor_policy(&dir.path().join(name), &key, &[("vendor.cose", statement)], &[statement]);
        let refused = issue_under(&path, &psp).expect_err(name);
        assert!(matches!(refused, Rejection::Policy(PolicyRejection::Provenance(_))), "{refused}");
        let refused = refused.to_string();
        assert!(refused.contains("provenance demand vendor = \"Example Corp\" with vendor_key"), "{refused}");
        assert!(refused.contains(&format!("vendor.cose: {says}")), "{name}: {refused}");
    }
    // In the store but not attached: the SBOM (and so the measurement) does not list it.
    let path = vendor_policy(&dir.path().join("unlisted"), &key, &[], &[&good]);
    let refused = issue_under(&path, &psp).unwrap_err().to_string();
    assert!(refused.contains("the SBOM lists no attached statement"), "{refused}");
    // Listed, but the store lacks it, or holds other bytes under its digest.
    let path = vendor_policy(&dir.path().join("unstored"), &key, &[("vendor.cose", &good)], &[]);
    let refused = issue_under(&path, &psp).unwrap_err().to_string();
    assert!(refused.contains("vendor.cose: the policy's store does not hold it"), "{refused}");
    let stored = twi_issuer::policy::sbom_store_of(&path)
        .join(format!("{}.attached", twi_issuer::policy::SbomDigest::of(&good).path_form()));
    std::fs::write(&stored, &other_vendor).unwrap();
    let refused = issue_under(&path, &psp).unwrap_err().to_string();
    assert!(refused.contains("is not the attached statement the SBOM lists under that SHA-384"), "{refused}");
    std::fs::write(&stored, vec![b'x'; twi_issuer::policy::vendor::MAX_LEN + 1]).unwrap();
    let refused = issue_under(&path, &psp).unwrap_err().to_string();
    assert!(refused.contains("is larger than the 65536 bytes accepted"), "{refused}");
}

#[test]
fn a_provenance_table_the_format_refuses_names_the_field() {
    let base = |demands: &str| {
        format!(
            "version = \"1\"\ntrust_domain = \"example.org\"\n[[workload]]\nid = \"w\"\n[workload.provenance]\n{demands}\n\
             [[workload.reference]]\nplatform = \"sim-snp\"\nmeasurement = \"{}\"\n",
            hex::encode(MEASUREMENT)
        )
    };
    for (demands, says) in [
        ("sbom = \"optional\"", "provenance.sbom = \"optional\": the only value is \"required\""),
        ("deny = [\"p384@<<1\"]", "provenance.deny \"p384@<<1\": after '@' write a semver requirement"),
        ("deny = [\"@1\"]", "provenance.deny \"@1\": name a crate"),
        ("min_versions = { p384 = \"one\" }", "provenance.min_versions.p384 = \"one\" is not a semver version"),
        ("vendor = \" \"", "provenance.vendor is empty"),
        ("vendor_key = \"vendor.pub.pem\"", "provenance.vendor_key needs provenance.vendor"),
        ("vendor = \"V\"\nvendor_key = \"no-such.pem\"", "provenance.vendor_key: cannot read no-such.pem"),
        ("vendor = \"V\"\nvendor_key = \"-----BEGIN PUBLIC KEY-----\"", "is not a P-384 public key in PEM"),
        ("vendors = \"x\"", "unknown field `vendors`"),
    ] {
        let e = Policy::from_toml(&base(demands)).unwrap_err().to_string();
        assert!(e.contains(says), "{demands}: {e}");
    }
    let e = Policy::from_toml(&base("").replace("platform = ", "sbom = \"sha384:00\"\nplatform = ")).unwrap_err();
    assert!(e.to_string().contains("is not an SBOM digest"), "{e}");
}

/// Issue 16 item 4: a DNS SAN only when the workload's policy names one. openssl's RFC 6125
/// host check (an implementation other than ours) matches the named hosts and no other; a
/// workload without `dns_names` gets none; a bad name is refused when the policy loads.
#[test]
fn dns_names_in_the_policy_become_dns_sans_and_only_then() {
    let dir = tempfile::tempdir().unwrap();
    let psp = chip(&dir.path().join("chip"), None);
    let with = policy_text_dns("dns_names = [\"payroll.example.org\", \"payroll.internal\"]\n");
    let named = issue_under(&write_in(&dir.path().join("named"), &with), &psp).unwrap();
    let plain = issue_under(&write_in(&dir.path().join("plain"), &policy_text_dns("")), &psp).unwrap();
    let check = |issued: &Issued, host: &str| {
        let pem = dir.path().join("credential.pem");
        std::fs::write(&pem, &issued.certificate_pem).unwrap();
        let out =
            twi_testkit::tools::openssl(&["x509", "-in", twi_testkit::tools::utf8(&pem), "-noout", "-checkhost", host]);
        twi_testkit::tools::assert_ok(&out, "openssl x509 -checkhost");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(text.contains("does match") || text.contains("does NOT match"), "{text}");
        text.contains("does match")
    };
    assert!(check(&named, "payroll.example.org") && check(&named, "payroll.internal"));
    assert!(!check(&named, "other.example.org") && !check(&named, "example.org"));
    assert!(!check(&plain, "payroll.example.org"), "a workload whose policy names no DNS name got one");
    // The SPIFFE URI SAN is still there, the first and only URI.
    let cert = <x509_cert::Certificate as der::DecodePem>::from_pem(named.certificate_pem.as_bytes()).unwrap();
    let san = cert.tbs_certificate().get_extension::<x509_cert::ext::pkix::SubjectAltName>().unwrap().unwrap().1;
    let uris: Vec<String> = san
        .0
        .iter()
        .filter_map(|n| match n {
            x509_cert::ext::pkix::name::GeneralName::UniformResourceIdentifier(u) => Some(u.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(uris, ["spiffe://example.org/payroll-app"]);
    assert_eq!(san.0.len(), 3);
    // A wildcard is refused when the policy loads, naming the field and the workload.
    let error = Policy::from_toml(&policy_text_dns("dns_names = [\"*.example.org\"]\n")).unwrap_err().to_string();
    assert!(error.contains("workload `payroll-app`: dns_names: \"*.example.org\" is a wildcard"), "{error}");
}

fn policy_text_dns(extra: &str) -> String {
    format!(
        "version = \"dns-1\"\ntrust_domain = \"example.org\"\n\n[[workload]]\nid = \"payroll-app\"\nmechanism = \"c\"\n\
         freshness = \"AF_L2\"\nstickiness = \"CS_L1\"\n{extra}\n[[workload.reference]]\nlabel = \"v1 (sim)\"\n\
         platform = \"sim-snp\"\nmeasurement = \"{}\"\n",
        hex::encode(MEASUREMENT)
    )
}

/// `text` as `dir/policy.toml`.
fn write_in(dir: &Path, text: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("policy.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// An auditor key for `seal_records_to` (its private half is not needed here).
fn auditor_key() -> twi_issuer::provenance::AuditorKey {
    use p384::pkcs8::{EncodePublicKey, LineEnding};
    let public = p384::SecretKey::try_generate().unwrap().public_key();
    twi_issuer::provenance::AuditorKey::from_pem(&public.to_public_key_pem(LineEnding::LF).unwrap()).unwrap()
}

/// The binding's values in clear (the chip id under CS_L3): what must not reach the log.
fn binding_values(issued: &Issued) -> Vec<String> {
    let values = issued.admission.binding.to_json()["values"].clone();
    let values: Vec<String> = values.as_object().unwrap().values().map(|v| v.to_string().replace('"', "")).collect();
    assert!(values.iter().any(|v| v.len() >= 16), "a CS_L3 binding names the chip: {values:?}");
    values
}

/// Records sealed to an auditor key (issue 16): a renewal is checked against the binding kept
/// in the private binding table, exactly as an open record's is — the same chip renews by
/// serial and by `jti`, another chip is refused on `chip_id` — while the log (its rows and its
/// proof answers) holds only the sealed statements. A row moved to another credential does not
/// open (the issuer's fault: an internal error saying so), and a sealed record without a row is
/// refused with why. `tamper(sql)` runs SQL on the store with its append-only triggers off.
fn sealed_records_renew_from_the_private_table(
    issuer: &mut Issuer,
    chips: (&SimPsp, &SimPsp),
    tamper: &dyn Fn(&str),
    log_bytes: &dyn Fn() -> Vec<u8>,
) {
    let auditor = auditor_key();
    issuer.seal_records_to(Some(auditor.clone()));
    let (first, second) = chips;
    let key = workload_key();
    let nonce = challenge(issuer);
    let issued = present(issuer, first, &key, &nonce, None).unwrap();
    let records = issued.provenance["records"].as_array().unwrap();
    assert!(records.iter().all(|r| r["record"].is_null() && r["encrypted_to"] == hex::encode(auditor.kid())));

    let nonce = challenge(issuer);
    present(issuer, first, &key, &nonce, Some(&issued.serial_hex)).unwrap();
    let nonce = challenge(issuer);
    present(issuer, first, &key, &nonce, Some(&issued.wit_jti)).unwrap();
    let nonce = challenge(issuer);
    let refused = present(issuer, second, &key, &nonce, Some(&issued.serial_hex)).unwrap_err();
    let Rejection::Renewal(renewal) = &refused else { panic!("expected a renewal refusal, got {refused}") };
    assert_eq!(renewal.differences[0].field, "chip_id");

    // Nothing of the binding in clear in the store's bytes or in the proofs served.
    let stored = log_bytes();
    let proofs = [&issued.serial_hex, &issued.wit_jti].map(|id| issuer.log_proof(id).unwrap().unwrap().to_string());
    for value in binding_values(&issued).iter().filter(|v| v.len() >= 16) {
        assert!(!stored.windows(value.len()).any(|w| w == value.as_bytes()), "{value} is in the store in clear");
        assert!(proofs.iter().all(|p| !p.contains(value.as_str())), "{value} is in a proof answer");
    }

    // The serial's row replaced by the jti's (a row moved to another credential): refused.
    let (serial, jti) = (&issued.serial_hex, &issued.wit_jti);
    tamper(&format!(
        "UPDATE private_bindings SET enc = (SELECT enc FROM private_bindings WHERE credential_id = '{jti}'), \
         sealed = (SELECT sealed FROM private_bindings WHERE credential_id = '{jti}') WHERE credential_id = '{serial}'"
    ));
    let nonce = challenge(issuer);
    let refused = present(issuer, first, &key, &nonce, Some(serial)).unwrap_err();
    assert!(matches!(refused, Rejection::Internal(_)), "{refused}");
    assert!(refused.to_string().contains(&format!("the private binding row of credential {serial} does not open")));

    // The jti's row gone: refused as a sealed record the table has no row for.
    tamper(&format!("DELETE FROM private_bindings WHERE credential_id = '{jti}'"));
    let nonce = challenge(issuer);
    let refused = present(issuer, first, &key, &nonce, Some(jti)).unwrap_err();
    assert!(matches!(refused, Rejection::SealedPreviousRecord { .. }), "{refused}");
    assert!(refused.to_string().contains("private binding table holds no row"), "{refused}");
    assert!(refused.to_string().contains(&hex::encode(auditor.kid())), "{refused}");
}

#[test]
fn a_renewal_of_a_sealed_record_is_checked_against_the_private_binding_table() {
    let dir = tempfile::tempdir().unwrap();
    let first = chip(&dir.path().join("chip-a"), None);
    let second = chip(&dir.path().join("chip-b"), Some(&dir.path().join("chip-a")));
    let state = dir.path().join("issuer");
    let mut issuer = issuer(&state, &first, policy("AF_L2", "CS_L3", &MEASUREMENT));
    let log = state.join("provenance.sqlite");
    let tamper = |sql: &str| {
        let conn = rusqlite::Connection::open(&log).unwrap();
        conn.execute_batch(&format!(
            "DROP TRIGGER IF EXISTS private_bindings_append_only_update;\n             DROP TRIGGER IF EXISTS private_bindings_append_only_delete; {sql};"
        ))
        .unwrap();
    };
    // The log's file and its write-ahead log (where recent commits sit until a checkpoint).
    let log_bytes = || {
        let wal = state.join("provenance.sqlite-wal");
        [std::fs::read(&log).unwrap(), std::fs::read(wal).unwrap_or_default()].concat()
    };
    sealed_records_renew_from_the_private_table(&mut issuer, (&first, &second), &tamper, &log_bytes);
    // The table's key is the state's, 0600.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(state.join("binding-key.pem")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// The same with the log in the replicas' PostgreSQL database, renewed at another replica.
#[test]
fn a_renewal_of_a_sealed_record_in_the_database_is_checked_at_any_replica() {
    use std::sync::Arc;
    use twi_issuer::database::Postgres;

    let cluster = twi_testkit::postgres::Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let first = chip(&dir.path().join("chip-a"), None);
    let second = chip(&dir.path().join("chip-b"), Some(&dir.path().join("chip-a")));
    let replica = || {
        let config = IssuerConfig { trust_domain: "example.org".into(), sim_snp_root: Some(first.root().clone()) };
        let pg = Arc::new(Postgres::connect(&cluster.url()).unwrap());
        let policy = policy("AF_L2", "CS_L3", &MEASUREMENT);
        Issuer::open_shared(&dir.path().join("issuer"), config, policy, Some(pg)).unwrap()
    };
    let mut issuer = replica();
    let tamper = |sql: &str| {
        let out = cluster.psql(&format!(
            "ALTER TABLE private_bindings DISABLE TRIGGER private_bindings_append_only; {sql}; \
             ALTER TABLE private_bindings ENABLE TRIGGER private_bindings_append_only"
        ));
        assert!(out.status.success() && !String::from_utf8_lossy(&out.stderr).contains("ERROR"), "{out:?}");
    };
    let log_bytes = || {
        let out = cluster
            .psql("SELECT encode(record, 'escape') FROM leaves; SELECT encode(sealed, 'escape') FROM private_bindings");
        assert!(out.status.success(), "{out:?}");
        out.stdout
    };
    sealed_records_renew_from_the_private_table(&mut issuer, (&first, &second), &tamper, &log_bytes);

    // A sealed record issued at one replica renews at another (which holds the same state keys).
    issuer.seal_records_to(Some(auditor_key()));
    let key = workload_key();
    let nonce = challenge(&mut issuer);
    let issued = present(&mut issuer, &first, &key, &nonce, None).unwrap();
    let mut other = replica();
    let nonce = challenge(&mut other);
    present(&mut other, &first, &key, &nonce, Some(&issued.serial_hex)).unwrap();
    // Updates and deletes of the table are refused by the database.
    let out = cluster.psql("DELETE FROM private_bindings");
    assert!(String::from_utf8_lossy(&out.stderr).contains("append-only"), "{out:?}");
}
