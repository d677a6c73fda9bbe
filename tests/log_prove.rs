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
use twi_issuer::provenance::{AuditorKey, AuditorSecret, SignedStatement};
use twi_issuer::{CredentialRequest, Evidence, EvidenceBundle, Issued, Issuer, IssuerConfig, Rejection};
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
    issue_as(state, None, None).unwrap()
}

/// [`issue`], its records sealed to `auditor` if given, renewing `renewal_of` if given.
fn issue_as(state: &Path, auditor: Option<&AuditorKey>, renewal_of: Option<&str>) -> Result<Issued, Rejection> {
    std::fs::create_dir_all(state.join("chip")).unwrap();
    let mut psp = SimPsp::load_or_create(&state.join("chip")).unwrap();
    psp.set_launch_digest(MEASUREMENT);
    let config = IssuerConfig { trust_domain: "example.org".into(), sim_snp_root: Some(psp.root().clone()) };
    let policy = Policy::from_toml(&policy_text()).unwrap();
    let mut issuer = Issuer::open(&state.join("issuer"), config, policy).unwrap();
    issuer.seal_records_to(auditor.cloned());
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
    issuer.ca_credential(CredentialRequest::Evidence { evidence, renewal_of })
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

/// An issuer under its own OID arc (STATE/issuer/oid-arc): a client without that state reads
/// the credential under the default arc, finds no log entry in it and says so, naming
/// `--oid-arc`; with `--oid-arc`, `twi log prove` and `twi provenance show` match the
/// credential to its statement over HTTPS.
#[test]
fn an_issuer_under_its_own_arc_is_read_with_oid_arc() {
    const ARC: &str = "1.3.6.1.4.1.99999.7";
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(state.join("issuer")).unwrap();
    std::fs::write(state.join("issuer").join(twi_issuer::oids::ARC_FILE), ARC).unwrap();
    let issued = issue(&state);
    let pem = dir.path().join("credential.pem");
    std::fs::write(&pem, &issued.certificate_pem).unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, policy_text()).unwrap();
    let served = Served::start(TWI, &["--state", path(&state), "--policy", path(&policy)]);
    let ca = state.join("issuer/issuer-ca.pem");
    let elsewhere = dir.path().join("client-state"); // another machine: no oid-arc file
    let run = |command: &[&str], extra: &[&str]| {
        let remote = ["--issuer-url", &served.url, "--issuer-ca", path(&ca)];
        TWI.run(&[&["--state", path(&elsewhere)][..], command, &[path(&pem)], &remote, extra].concat())
    };
    let named = "ok the credential names this statement (SHA-256 ";
    for command in [&["log", "prove"][..], &["provenance", "show"][..]] {
        let out = run(command, &[]);
        assert!(out.status.success(), "{command:?}: {}", stderr(&out));
        let said = format!("{}{}", stderr(&out), String::from_utf8_lossy(&out.stdout));
        assert!(said.contains("names no log entry under OID arc 1.2.840.113556"), "{command:?}:\n{said}");
        assert!(said.contains("--oid-arc") && !said.contains(named), "{command:?}:\n{said}");
        let out = run(command, &["--oid-arc", ARC]);
        assert!(out.status.success(), "{command:?} --oid-arc: {}", stderr(&out));
        let said = format!("{}{}", stderr(&out), String::from_utf8_lossy(&out.stdout));
        assert!(said.contains(named), "{command:?} --oid-arc:\n{said}");
    }
    let out = run(&["log", "prove"], &["--oid-arc", "1.3.6.1.4.1.32473.1"]);
    assert!(!out.status.success() && stderr(&out).contains("documentation arc"), "{}", stderr(&out));
}

/// A P-384 private key made by `openssl genpkey` at `file` (PKCS#8 PEM, 0600).
fn p384_key(file: &Path, what: &str) {
    use std::os::unix::fs::PermissionsExt;
    let args = ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", path(file)];
    twi_testkit::tools::assert_ok(&twi_testkit::tools::openssl(&args), &format!("openssl genpkey ({what})"));
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The auditor's key pair as `openssl` makes it: `auditor.key` (PKCS#8, 0600) and `auditor.pub`
/// (SPKI), the files `--auditor-key-private` and `--auditor-key` take.
fn auditor_keys(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (private, public) = (dir.join("auditor.key"), dir.join("auditor.pub"));
    p384_key(&private, "the auditor's key");
    let out = twi_testkit::tools::openssl(&["pkey", "-in", path(&private), "-pubout", "-out", path(&public)]);
    twi_testkit::tools::assert_ok(&out, "openssl pkey -pubout");
    (private, public)
}

/// Records sealed to an auditor key (issue 16 item 2, the SCITT draft's MAY): a log holding a
/// record in clear and then sealed ones audits; a sealed record is proved (offline and over
/// HTTPS) without the key and shown as encrypted to it; with the auditor's private key `twi
/// provenance show` and `twi log prove` read it; a wrong or unprotected key is refused; pycose
/// decrypts it on its own to the exact record JSON; a renewal naming it is granted, checked
/// against the binding the issuer's private binding table keeps for it.
#[test]
fn records_sealed_to_an_auditor_prove_and_audit_without_the_key_and_read_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let plain = issue(&state);
    let (private, public) = auditor_keys(dir.path());
    let auditor = AuditorKey::load(&public).unwrap();
    let sealed = issue_as(&state, Some(&auditor), None).unwrap();
    let kid = hex::encode(auditor.kid());
    for record in sealed.provenance["records"].as_array().unwrap() {
        assert_eq!(
            (&record["record"], record["encrypted_to"].as_str()),
            (&serde_json::Value::Null, Some(kid.as_str()))
        );
    }
    let (plain_pem, sealed_pem) = (dir.path().join("plain.pem"), dir.path().join("sealed.pem"));
    std::fs::write(&plain_pem, &plain.certificate_pem).unwrap();
    std::fs::write(&sealed_pem, &sealed.certificate_pem).unwrap();

    provisioned_sealed(&state, &private, &kid);

    // The mixed log audits with the log key alone.
    let out = TWI.run(&["--state", path(&state), "log", "audit"]);
    assert!(out.status.success(), "twi log audit: {}", stderr(&out));

    shown_without_and_with_the_key(&state, &plain_pem, &sealed_pem, &private, &kid);
    proved_without_and_with_the_key(dir.path(), &state, &sealed, &private, &kid);
    decrypted_by_pycose(&state, &sealed, &private);

    // A renewal naming it is checked against the binding in the private binding table.
    let renewed = issue_as(&state, Some(&auditor), Some(&sealed.serial_hex)).unwrap();
    assert_eq!(renewed.workload_id, "spiffe://example.org/payroll-app");
}

/// `twi provenance show`: the plain record as before; the sealed one as encrypted to `kid`
/// (its inclusion still verified), read with the key; a wrong key and a 0644 key refused.
fn shown_without_and_with_the_key(state: &Path, plain: &Path, sealed: &Path, private: &Path, kid: &str) {
    let show = |extra: &[&str]| TWI.run(&[&["--state", path(state), "provenance", "show"][..], extra].concat());
    let out = show(&[path(plain)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("workload: spiffe://example.org/payroll-app"));
    let out = show(&[path(sealed)]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.contains(&format!("record: encrypted to auditor key {kid}")), "{text}");
    assert!(text.contains("verified under the log key") && !text.contains("payroll-app"), "{text}");
    let out = show(&[path(sealed), "--auditor-key-private", path(private), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["workload"], "spiffe://example.org/payroll-app");
    assert_eq!((report["encrypted_to"].as_str(), report["inclusion"]["verified"].as_bool()), (Some(kid), Some(true)));

    let other = private.with_file_name("other.key");
    let out = twi_testkit::tools::openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-384",
        "-out",
        path(&other),
    ]);
    twi_testkit::tools::assert_ok(&out, "openssl genpkey (another key)");
    let out = show(&[path(sealed), "--auditor-key-private", path(&other)]);
    assert!(!out.status.success(), "a wrong key read the record");
    assert!(
        stderr(&out).contains(&format!("encrypted to auditor key {kid}, not to the given key")),
        "{}",
        stderr(&out)
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = show(&[path(sealed), "--auditor-key-private", path(&other)]);
    assert!(!out.status.success() && stderr(&out).contains("chmod 600"), "{}", stderr(&out));
}

/// `twi log prove`: offline and from `twi serve --auditor-key` over HTTPS, without the key
/// (encrypted to `kid`, proved) and with it (the record).
fn proved_without_and_with_the_key(dir: &Path, state: &Path, sealed: &Issued, private: &Path, kid: &str) {
    let out = TWI.run(&["--state", path(state), "log", "prove", &sealed.serial_hex]);
    assert!(out.status.success(), "offline: {}", stderr(&out));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((&shown["record"], shown["encrypted_to"].as_str()), (&serde_json::Value::Null, Some(kid)));
    assert!(stderr(&out).contains("give --auditor-key-private to read it"), "{}", stderr(&out));

    let policy = dir.join("policy.toml");
    std::fs::write(&policy, policy_text()).unwrap();
    let public = private.with_file_name("auditor.pub");
    let served =
        Served::start(TWI, &["--state", path(state), "--policy", path(&policy), "--auditor-key", path(&public)]);
    let ca = state.join("issuer/issuer-ca.pem");
    let args = ["--issuer-url", &served.url, "--issuer-ca", path(&ca), "--auditor-key-private", path(private)];
    let out = TWI.run(&[&["log", "prove", &sealed.wit_jti][..], &args].concat());
    assert!(out.status.success(), "over HTTPS: {}", stderr(&out));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (shown["record"]["credential_id"].as_str(), shown["record"]["credential_kind"].as_str()),
        (Some(sealed.wit_jti.as_str()), Some("wit"))
    );
    assert!(stderr(&out).contains(&format!("ok the record decrypted with auditor key {kid}")), "{}", stderr(&out));
}

/// pycose opens the sealed statements with the auditor's key to the exact JSON the issuer
/// encrypted (as coset/RustCrypto open it); another key is refused by pycose's own AEAD check.
fn decrypted_by_pycose(state: &Path, sealed: &Issued, private: &Path) {
    let secret = AuditorSecret::load(private).unwrap();
    let other = AuditorSecret::generate().unwrap();
    let log_key = twi_issuer::provenance::audit::state_log_key(&state.join("issuer")).unwrap();
    let mut records = Vec::new();
    for record in sealed.provenance["records"].as_array().unwrap() {
        let statement = record["statement"].as_str().unwrap();
        let read = SignedStatement::decode(&hex::decode(statement).unwrap()).unwrap();
        let json = serde_json::to_string(&read.open(&secret).unwrap()).unwrap();
        records.push(serde_json::json!({ "statement": statement, "record_json": json }));
    }
    let first = records[0]["statement"].clone();
    let input = serde_json::json!({
        "log_key": twi_issuer::jose::Jwk::published(log_key, "twi-log"),
        "auditor": { "d": hex::encode(&secret.to_bytes()[..]) },
        "records": records,
        "must_fail": [
            { "name": "another auditor key (kid ignored: the AEAD check)", "statement": first, "d": hex::encode(&other.to_bytes()[..]), "ignore_kid": true },
            { "name": "another auditor key (by its kid)", "statement": first, "d": hex::encode(&other.to_bytes()[..]) },
        ],
    });
    let out = twi_testkit::tools::cose_encrypt_check(&input);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "pycose: {said}{}", stderr(&out));
    assert_eq!(said.matches("ok   ").count(), 4, "{said}");
}

/// `twi keystore provision --auditor-key` (records written by the CLI itself): the
/// provisioning record is sealed too, and read back with the auditor's key.
fn provisioned_sealed(state: &Path, private: &Path, kid: &str) {
    let owner = private.with_file_name("owner.pem");
    p384_key(&owner, "the owner's key");
    let public = private.with_file_name("auditor.pub");
    let workload = ["--workload-id", "spiffe://example.org/payroll-app", "--key", path(&owner)];
    let out = TWI.run(
        &[&["--state", path(state), "keystore", "provision"][..], &workload, &["--auditor-key", path(&public)]]
            .concat(),
    );
    assert!(out.status.success(), "twi keystore provision --auditor-key: {}", stderr(&out));
    let serial = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let prove = |extra: &[&str]| TWI.run(&[&["--state", path(state), "log", "prove", &serial][..], extra].concat());
    let out = prove(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((&shown["record"], shown["encrypted_to"].as_str()), (&serde_json::Value::Null, Some(kid)));
    let out = prove(&["--auditor-key-private", path(private)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["record"]["decision"]["criteria"]["step"], "owner-provisioning");
}
