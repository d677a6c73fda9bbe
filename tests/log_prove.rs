//! `twi log prove CREDENTIAL` (issue 16 item 2): a credential's record — a SCITT signed
//! statement — proved from a served log over HTTPS (checkpoint, inclusion proof, COSE receipt,
//! the statement under the log key, the credential naming the statement) and from the state's
//! own log offline; a credential that names another statement, or one the log never saw, is
//! refused. No QEMU: the credentials are issued in process on a simulated SEV-SNP chip, by the
//! issuer over the state that `twi serve` then serves.

use std::path::Path;
use std::process::Output;

use base64ct::Encoding;
use p384::ecdsa::SigningKey;
use p384::elliptic_curve::Generate;
use twi_host_loader::sim::snp::SimPsp;
use twi_issuer::policy::Policy;
use twi_issuer::{CredentialRequest, Evidence, EvidenceBundle, Issued, Issuer, IssuerConfig};
use twi_proto::msg::{CredentialKind, Platform};
use twi_testkit::scenario::{Served, Twi};
use twi_testkit::tools::utf8 as path;

const TWI: Twi = Twi(env!("CARGO_BIN_EXE_twi-e2e"));
const MEASUREMENT: [u8; 48] = [0x5A; 48];
const TARGET: &str = twi_testkit::tacra::TARGET;

fn policy_text() -> String {
    format!(
        "version = \"log-1\"\ntrust_domain = \"example.org\"\n\n[[workload]]\nid = \"payroll-app\"\nmechanism = \"c\"\n\
         freshness = \"AF_L2\"\nstickiness = \"CS_L1\"\n\n[[workload.reference]]\nlabel = \"v1 (sim)\"\n\
         platform = \"sim-snp\"\nmeasurement = \"{}\"\n",
        hex::encode(MEASUREMENT)
    )
}

/// One credential issued in process by the issuer of `state` on a simulated chip's evidence.
fn issue(state: &Path) -> Issued {
    std::fs::create_dir_all(state.join("chip")).unwrap();
    let mut psp = SimPsp::load_or_create(&state.join("chip")).unwrap();
    psp.set_launch_digest(MEASUREMENT);
    let config = IssuerConfig { trust_domain: "example.org".into(), sim_snp_root: Some(psp.root().clone()) };
    let policy = Policy::from_toml(&policy_text()).unwrap();
    let mut issuer = Issuer::open(&state.join("issuer"), config, policy).unwrap();
    let nonce = issuer.initiate(Platform::SimSnp, &MEASUREMENT, TARGET, CredentialKind::X509, None).unwrap().nonce;
    let key = SigningKey::try_generate().unwrap();
    let public = key.verifying_key().to_sec1_point(false).as_bytes().to_vec();
    let (report_data, csr) = twi_testkit::tacra::enroll(&key, &nonce, &issuer.rp_id(), TARGET);
    let report = psp.report(report_data, 0);
    let endorsements = psp.endorsements().unwrap();
    let bundle = EvidenceBundle {
        platform: Platform::SimSnp,
        evidence: &report,
        public_key: &public,
        nonce: &nonce,
        endorsements: &endorsements,
        target: TARGET,
        csr: Some(&csr),
    };
    let evidence = Evidence { bundle, events: &[] };
    issuer.ca_credential(CredentialRequest::Evidence { evidence, renewal_of: None }).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_credential_is_proved_from_the_served_log_and_offline_and_a_mismatch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let issued = issue(&state);
    let second = issue(&state);
    let pem = dir.path().join("credential.pem");
    std::fs::write(&pem, &issued.certificate_pem).unwrap();
    let wit = dir.path().join("credential.wit");
    std::fs::write(&wit, &issued.wit).unwrap();
    let jwks = dir.path().join("issuer-jwks.json");
    let log_key = twi_issuer::provenance::audit::state_log_key(&state.join("issuer")).unwrap();
    let published = twi_issuer::jose::Jwk::published(log_key, "twi-log");
    std::fs::write(&jwks, serde_json::json!({ "keys": [published] }).to_string()).unwrap();
    let vkey = issued.provenance["checkpoint_vkey"].as_str().unwrap().to_string();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, policy_text()).unwrap();
    let served = Served::start(TWI, &["--state", path(&state), "--policy", path(&policy)]);
    let ca = state.join("issuer/issuer-ca.pem");
    let online = |credential: &str| {
        let args = ["--issuer-url", &served.url, "--issuer-ca", path(&ca), "--vkey", &vkey, "--jwks", path(&jwks)];
        TWI.run(&[&["log", "prove", credential][..], &args].concat())
    };

    // The certificate and the WIT, each proved over HTTPS, every check named.
    for (file, id) in [(&pem, &issued.serial_hex), (&wit, &issued.wit_jti)] {
        let out = online(path(file));
        assert!(out.status.success(), "twi log prove {}: {}", file.display(), stderr(&out));
        let said = stderr(&out);
        for check in [
            "ok checkpoint of 4 records verified under example.org/twi-log+",
            "ok RFC 9162 inclusion of leaf",
            "ok RFC 9942 COSE receipt",
            "ok SCITT signed statement (COSE_Sign1, iss spiffe://example.org/twi-issuer, sub ",
            "ok the credential names this statement (SHA-256 ",
        ] {
            assert!(said.contains(check), "{check:?} missing from:\n{said}");
        }
        let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(shown["record"]["credential_id"], id.as_str());
        assert_eq!(shown["log"], "example.org/twi-log");
    }
    // Offline, from the state's own log.
    let out = TWI.run(&["--state", path(&state), "log", "prove", path(&pem)]);
    assert!(out.status.success(), "offline twi log prove: {}", stderr(&out));
    assert!(stderr(&out).contains("ok signed tree head of 4 records verified under the state's log key"));
    assert!(stderr(&out).contains("ok the credential names this statement"));
    // By id only: proved, and said that there was no credential to match.
    let out = online(&issued.serial_hex);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("only its id"), "{}", stderr(&out));

    // A WIT whose log-entry claim names the other issuance's statement: refused.
    let other = second.provenance["records"][1]["statement_sha256"].as_str().unwrap();
    let ours = issued.provenance["records"][1]["statement_sha256"].as_str().unwrap();
    let claims = issued.wit.split('.').nth(1).unwrap();
    let decoded = base64ct::Base64UrlUnpadded::decode_vec(claims).unwrap();
    let forged_claims = String::from_utf8(decoded).unwrap().replace(ours, other);
    assert_ne!(forged_claims.find(other), None, "the WIT names its statement");
    let encoded = base64ct::Base64UrlUnpadded::encode_string(forged_claims.as_bytes());
    let parts: Vec<&str> = issued.wit.split('.').collect();
    let forged = dir.path().join("forged.wit");
    std::fs::write(&forged, format!("{}.{encoded}.{}", parts[0], parts[2])).unwrap();
    let out = online(path(&forged));
    assert!(!out.status.success(), "a credential naming another statement was proved");
    assert!(stderr(&out).contains("the credential and the log disagree"), "{}", stderr(&out));
    // A credential the log never saw.
    let out = online("00");
    assert!(!out.status.success() && stderr(&out).contains("no record of credential"), "{}", stderr(&out));
}
