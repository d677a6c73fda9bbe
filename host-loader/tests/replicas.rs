//! Issuer replicas on PostgreSQL (issue 14 item 6), as an operator runs them: a throwaway
//! cluster (Debian's server on loopback, started by the test kit), three `twi serve` processes
//! (TLS, as by default) on one state directory and one database, and workloads of a simulated
//! SEV-SNP chip issuing concurrently through all of them: by mechanism C, each taking its nonce
//! from one replica and its credential from the next; by mechanism B, the nonce from one, the
//! attestation result from the next and the credential from the third. Then `twi log audit --database` accepts
//! the one log they wrote, its leaf indices are 0..n-1 without a gap, and every credential a
//! client received has its record there.
//!
//! Crash safety, on the embedded store and on PostgreSQL: the service is killed (SIGKILL) while
//! 1,000 clients have an issuance in flight, three times over, and restarted on the same state; the log it
//! reopens holds whole issuances only (an X.509 record and its WIT record, adjacent, from one
//! evidence), the audit accepts it, and every credential a client received is in it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use p384::ecdsa::SigningKey;
use p384::elliptic_curve::Generate;
use twi_host_loader::answers::Obtained;
use twi_host_loader::remote::{ClientTls, RemoteIssuer};
use twi_host_loader::sim::snp::SimPsp;
use twi_issuer::database::Postgres;
use twi_issuer::policy::Mechanism;
use twi_issuer::provenance::ProvenanceLog;
use twi_issuer::{CredentialRequestIn, Evidence, EvidenceBundle};
use twi_proto::msg::{CredentialKind, Initiate, Platform};
use twi_testkit::postgres::Cluster;
use twi_testkit::scenario::{Served, Twi};
use twi_testkit::tacra::{TARGET, enroll};

const TWI: Twi = Twi(env!("CARGO_BIN_EXE_twi"));
const MEASUREMENT: [u8; 48] = [0x5A; 48];
const MEASUREMENT_B: [u8; 48] = [0x5B; 48];
const MEASUREMENT_D: [u8; 48] = [0x5D; 48];
const MEASUREMENT_A: [u8; 48] = [0xAA; 48];
const REPLICAS: usize = 3;
const CLIENTS: usize = 4;
const ISSUANCES: usize = 3;
/// Issuances in flight when the service is killed (issue 14: "SIGKILL while 1000 concurrent
/// issuances are in flight"): as many clients, each with its own connection.
const IN_FLIGHT: usize = 1000;
/// What the service needs to hold [`IN_FLIGHT`] clients of one address at once: connections
/// beyond them, and a challenge rate the one loopback address does not exhaust.
const MANY_CLIENTS: [&str; 6] =
    ["--max-connections", "1100", "--challenge-rate", "100000", "--challenge-burst", "100000"];

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The policy: `payroll-app` (MEASUREMENT) acquires by mechanism C, `ledger-app`
/// (MEASUREMENT_B) by mechanism B, `vault-app` (MEASUREMENT_D) by mechanism D, `audit-app`
/// (MEASUREMENT_A) by mechanism A.
fn write_policy(dir: &Path) -> PathBuf {
    let policy = dir.join("policy.toml");
    let workload = |id: &str, mechanism: &str, measurement: &[u8; 48]| {
        format!(
            "[[workload]]\nid = \"{id}\"\nmechanism = \"{mechanism}\"\nfreshness = \"AF_L2\"\n\
             stickiness = \"CS_L1\"\n\n[[workload.reference]]\nlabel = \"v1 (sim)\"\nplatform = \"sim-snp\"\n\
             measurement = \"{}\"\n\n",
            hex::encode(measurement)
        )
    };
    let text = format!(
        "version = \"replicas-1\"\ntrust_domain = \"example.org\"\n\n{}{}{}{}",
        workload("payroll-app", "c", &MEASUREMENT),
        workload("ledger-app", "b", &MEASUREMENT_B),
        workload("vault-app", "d", &MEASUREMENT_D),
        workload("audit-app", "a", &MEASUREMENT_A)
    );
    std::fs::write(&policy, text).unwrap();
    policy
}

/// The issuer state, the simulated chips' directory (its SEV-SNP chip made) and the policy,
/// under `dir`.
fn layout(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (state, chips, policy) = (dir.join("state"), dir.join("chips"), write_policy(dir));
    std::fs::create_dir_all(chips.join("sim-snp")).unwrap();
    SimPsp::load_or_create(&chips.join("sim-snp")).unwrap();
    (state, chips, policy)
}

/// One workload's acquisition: the nonce from `initiate_at`, the credential from `issue_at`;
/// the X.509 serial and the logged ids (with their indices) the answer names.
fn acquire(
    chip: &Path,
    initiate_at: &RemoteIssuer,
    issue_at: &RemoteIssuer,
    rp_id: &str,
) -> (String, Vec<(String, u64)>) {
    try_acquire(chip, initiate_at, issue_at, rp_id, true).unwrap()
}

/// A launch of `measurement` on `chip` attesting a new key for the nonce `initiate_at` gave.
struct Attested {
    key: SigningKey,
    public: Vec<u8>,
    nonce: Vec<u8>,
    report: Vec<u8>,
    csr: Vec<u8>,
    endorsements: Vec<Vec<u8>>,
}

impl Attested {
    fn new(chip: &Path, measurement: [u8; 48], initiate_at: &RemoteIssuer, rp_id: &str) -> Result<Self, String> {
        let mut psp = SimPsp::load_or_create(chip).unwrap();
        psp.set_launch_digest(measurement);
        let initiate = Initiate { target: TARGET.into(), credential_type: CredentialKind::X509, hint: None };
        let challenge =
            initiate_at.initiate(Platform::SimSnp, &measurement, &initiate).map_err(|d| format!("{d:?}"))?;
        let key = SigningKey::try_generate().unwrap();
        let public = key.verifying_key().to_sec1_point(false).as_bytes().to_vec();
        let (report_data, csr) = enroll(&key, &challenge.nonce, rp_id, TARGET);
        let (report, endorsements) = (psp.report(report_data, 0), psp.endorsements().unwrap());
        Ok(Self { key, public, nonce: challenge.nonce, report, csr, endorsements })
    }

    fn evidence(&self) -> Evidence<'_> {
        let bundle = EvidenceBundle {
            platform: Platform::SimSnp,
            evidence: &self.report,
            public_key: &self.public,
            nonce: &self.nonce,
            target: TARGET,
            csr: Some(&self.csr),
            endorsements: &self.endorsements,
        };
        Evidence { bundle, events: &[] }
    }
}

/// The X.509 serial and the logged ids (with their indices) an answer names.
fn logged(obtained: &Obtained) -> (String, Vec<(String, u64)>) {
    let records = obtained.credential.provenance["records"].as_array().unwrap();
    let logged = records
        .iter()
        .map(|r| (r["credential_id"].as_str().unwrap().to_string(), r["index"].as_u64().unwrap()))
        .collect();
    (obtained.credential.serial.clone(), logged)
}

/// [`acquire`], an error for any refusal or broken connection (a service being killed);
/// `check_replay`: then present the spent nonce again at `initiate_at`, which must refuse it.
fn try_acquire(
    chip: &Path,
    initiate_at: &RemoteIssuer,
    issue_at: &RemoteIssuer,
    rp_id: &str,
    check_replay: bool,
) -> Result<(String, Vec<(String, u64)>), String> {
    let attested = Attested::new(chip, MEASUREMENT, initiate_at, rp_id)?;
    let obtained = issue_at.issue(&attested.evidence(), Some(Mechanism::C))?;
    if check_replay {
        // The nonce was spent at `issue_at`: the replica that issued it refuses it now.
        let replay = initiate_at.issue(&attested.evidence(), Some(Mechanism::C)).unwrap_err();
        assert!(replay.contains("already used"), "a replayed nonce: {replay}");
    }
    Ok(logged(&obtained))
}

/// Mechanism B across replicas: the nonce from `at[0]`, the attestation result from the
/// Verifier of `at[1]`, the credential from the Credential Authority of `at[2]`; presented again
/// at `at[3]`, the result is refused as redeemed.
fn acquire_b(chip: &Path, at: [&RemoteIssuer; 4], rp_id: &str) -> (String, Vec<(String, u64)>) {
    let attested = Attested::new(chip, MEASUREMENT_B, at[0], rp_id).unwrap();
    let (ear, workload) = at[1].attestation_result(&attested.evidence()).unwrap();
    assert_eq!(workload, "spiffe://example.org/ledger-app");
    let proof = twi_testkit::tacra::credential_request_proof(&attested.key, &attested.nonce, &ear, &attested.public);
    let request = CredentialRequestIn { ear: &ear, public_key: &attested.public, proof: &proof };
    let obtained = at[2].redeem(&request).unwrap();
    let replay = at[3].redeem(&request).unwrap_err();
    assert!(replay.contains("already redeemed"), "a redeemed result presented again: {replay}");
    logged(&obtained)
}

#[test]
fn replicas_on_one_database_issue_concurrently_into_one_log() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start();
    let (state, chips, policy) = layout(dir.path());
    let url = cluster.url();
    let args = [
        ["--state", path(&state)],
        ["--policy", path(&policy)],
        ["--simulated-tee", path(&chips)],
        ["--database", url.as_str()],
    ];
    let replicas: Vec<Served> = (0..REPLICAS).map(|_| Served::start(TWI, args.as_flattened())).collect();
    let tls = ClientTls { ca: Some(state.join("issuer/issuer-ca.pem")), client: None };
    let urls: Vec<String> = replicas.iter().map(|r| r.url.clone()).collect();
    let client = |i: usize| RemoteIssuer::new(&urls[i % REPLICAS], &tls).unwrap();
    let rp_id = client(0).ca_certificate().unwrap().1.tbs_certificate().subject().to_string();
    let received: Vec<(String, Vec<(String, u64)>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (chip, rp_id, client) = (chips.join("sim-snp"), &rp_id, &client);
                s.spawn(move || {
                    (0..ISSUANCES)
                        .map(|i| match c % 2 {
                            0 => acquire(&chip, &client(c + i), &client(c + i + 1), rp_id),
                            _ => acquire_b(
                                &chip,
                                [&client(c + i), &client(c + i + 1), &client(c + i + 2), &client(c + i + 1)],
                                rp_id,
                            ),
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    let n = (CLIENTS * ISSUANCES * 2) as u64;
    let audit = TWI.run(&["log", "audit", "--state", path(&state), "--database", &url]);
    let said = String::from_utf8_lossy(&audit.stderr).to_string() + &String::from_utf8_lossy(&audit.stdout);
    assert!(audit.status.success(), "twi log audit refused the replicas' log:\n{said}");
    assert!(said.contains(&format!("{n} records")), "{said}");
    // Leaf indices 0..n-1, each once, and each credential where its answer said.
    let rows = cluster.psql("SELECT idx || ' ' || credential_id FROM leaves ORDER BY idx");
    let rows = String::from_utf8(rows.stdout).unwrap();
    let stored: Vec<(u64, String)> =
        rows.lines().map(|l| l.split_once(' ').map(|(i, id)| (i.parse().unwrap(), id.to_string())).unwrap()).collect();
    assert_eq!(stored.iter().map(|(i, _)| *i).collect::<Vec<_>>(), (0..n).collect::<Vec<_>>(), "{rows}");
    for (serial, logged) in &received {
        assert!(logged.iter().any(|(id, _)| id == serial), "the answer logs its certificate {serial}: {logged:?}");
        for (id, index) in logged {
            assert_eq!(&stored[usize::try_from(*index).unwrap()].1, id, "record {index}");
        }
    }
    assert_eq!(received.len(), CLIENTS * ISSUANCES);
}

/// Mechanism B's two roles in two processes that share no memory, only the database and the
/// state directory: `twi serve --roles verifier` signs the attestation result and
/// `twi serve --roles ca` redeems it (once); each refuses the other's endpoint (501). Both reach
/// the database over mutual TLS (a cluster that admits TCP only with a client certificate).
#[test]
fn a_verifier_process_and_a_ca_process_share_mechanism_b_through_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, tls) = Cluster::start_tls();
    let (_, chips, policy) = layout(dir.path());
    let url = tls.url(&cluster.url(), true);
    let [ca_state, verifier_state] = ["ca", "verifier"].map(|r| dir.path().join(r));
    twi_issuer::IssuerCa::load_or_create(&ca_state.join("issuer"), "example.org").unwrap();
    let issuer_ca = ca_state.join("issuer/issuer-ca.pem");
    let operator = twi_testkit::tools::OperatorPki::new(dir.path(), "operator");
    let (server_cert, server_key) = operator.server(dir.path(), "verifier");
    let serve = |state: &Path, more: &[&str]| {
        let args = [
            ["--state", path(state)],
            ["--policy", path(&policy)],
            ["--simulated-tee", path(&chips)],
            ["--database", url.as_str()],
        ];
        Served::start(TWI, &[args.as_flattened(), more].concat())
    };
    let verifier_tls = ["--tls-cert", path(&server_cert), "--tls-key", path(&server_key)];
    let verifier = serve(
        &verifier_state,
        &[&["--roles", "verifier", "--issuer-ca", path(&issuer_ca)], &verifier_tls[..]].concat(),
    );
    // The CA process is given the Verifier's public key (it calls no Verifier for mechanism B):
    // what `openssl pkey -in VERIFIER-STATE/issuer/verifier-key.pem -pubout` prints.
    let verifier_key = dir.path().join("verifier-public.pem");
    let out = twi_testkit::tools::openssl(&[
        "pkey",
        "-in",
        path(&verifier_state.join("issuer/verifier-key.pem")),
        "-pubout",
        "-out",
        path(&verifier_key),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The log with the CA (a log process of its own: `a_log_process_holds_the_logs_keys_…`).
    let ca = serve(&ca_state, &["--roles", "ca,log", "--verifier-key", path(&verifier_key)]);
    let (verifier_anchor, tls) =
        [&operator.ca, &issuer_ca].map(|ca| ClientTls { ca: Some(ca.clone()), client: None }).into();
    let (verifier, ca) =
        (RemoteIssuer::new(&verifier.url, &verifier_anchor).unwrap(), RemoteIssuer::new(&ca.url, &tls).unwrap());
    let rp_id = ca.ca_certificate().unwrap().1.tbs_certificate().subject().to_string();
    let (serial, logged) = acquire_b(&chips.join("sim-snp"), [&verifier, &verifier, &ca, &ca], &rp_id);
    assert!(logged.iter().any(|(id, _)| *id == serial), "{logged:?}");
    let attested = Attested::new(&chips.join("sim-snp"), MEASUREMENT_B, &verifier, &rp_id).unwrap();
    let refused = ca.attestation_result(&attested.evidence()).unwrap_err();
    assert!(refused.contains("does not serve the Verifier role"), "the CA process has no Verifier: {refused}");
    assert!(!ca_state.join("issuer/verifier-key.pem").exists(), "the CA process made no Verifier key");
}

/// Mechanisms A, C and D with the roles in processes that call each other over mutual TLS,
/// each presenting a certificate under the other's operator CA and redeeming the Verifier's
/// result once through the database: `twi serve --roles verifier` appraises; `twi serve --roles
/// ca,key-store,log --verifier-url` has it appraise mechanism C's evidence for its Credential
/// Authority and D's for its Key Store; a second `twi serve --roles verifier --ca-url` obtains
/// mechanism A's credential from that CA. A client without such a certificate cannot ask the
/// Verifier for C's appraisal, nor the CA for A's credential.

#[test]
fn roles_in_separate_processes_call_each_other_over_mutual_tls_for_mechanisms_a_c_and_d() {
    use twi_issuer::http::{CaPeer, PeerError, VerifierPeer};
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start();
    let (_, chips, policy) = layout(dir.path());
    let roles = twi_testkit::tools::OperatorPki::new(dir.path(), "roles");
    let url = cluster.url();
    // Each process its own state. The CA's exists first, as `twi build --state` makes it (images
    // are built against it); the Verifier is given its certificate, and a TLS server
    // certificate under the operator's CA (it holds no CA to issue one).
    let [ca_state, verifier_state] = ["ca", "verifier"].map(|r| dir.path().join(r));
    twi_issuer::IssuerCa::load_or_create(&ca_state.join("issuer"), "example.org").unwrap();
    let issuer_ca = ca_state.join("issuer/issuer-ca.pem");
    let (server_cert, server_key) = roles.server(dir.path(), "verifier");
    let common = [
        ["--policy", path(&policy)],
        ["--simulated-tee", path(&chips)],
        ["--database", url.as_str()],
        ["--operator-ca", path(&roles.ca)],
    ];
    let verifier_tls = [["--tls-cert", path(&server_cert)], ["--tls-key", path(&server_key)]];
    let verifier_only =
        [["--roles", "verifier"], ["--issuer-ca", path(&issuer_ca)], ["--state", path(&verifier_state)]];
    let verifier = Served::start(
        TWI,
        &[common.as_flattened(), verifier_only.as_flattened(), verifier_tls.as_flattened()].concat(),
    );
    let role = ["--verifier-url", &verifier.url, "--role-cert", path(&roles.client_cert)];
    let others = [&["--roles", "ca,key-store,log", "--role-key", path(&roles.client_key)], &role[..]].concat();
    let ca_only = [["--state", path(&ca_state)], ["--peer-ca", path(&roles.ca)]];
    let ca = Served::start(TWI, &[common.as_flattened(), ca_only.as_flattened(), &others].concat());
    // A second process of the Verifier (its state: the same keys), for mechanism A: it fetches
    // the CA's certificate from the CA process.
    let role_a = ["--ca-url", &ca.url, "--role-cert", path(&roles.client_cert), "--role-key", path(&roles.client_key)];
    let verifier_a_only =
        [["--roles", "verifier"], ["--state", path(&verifier_state)], ["--peer-ca", path(&issuer_ca)]];
    let verifier_a = Served::start(
        TWI,
        &[common.as_flattened(), verifier_a_only.as_flattened(), verifier_tls.as_flattened(), &role_a[..]].concat(),
    );
    holds_only_its_own_keys(&ca_state, &verifier_state);
    let anchor = Some(issuer_ca.clone());
    let tls = ClientTls { ca: anchor.clone(), client: None };
    let verifier_anchor = ClientTls { ca: Some(roles.ca.clone()), client: None };
    let (verifier, ca_client) =
        (RemoteIssuer::new(&verifier.url, &verifier_anchor).unwrap(), RemoteIssuer::new(&ca.url, &tls).unwrap());
    let rp_id = ca_client.ca_certificate().unwrap().1.tbs_certificate().subject().to_string();
    let chip = chips.join("sim-snp");

    // C: the nonce from the Verifier, the credential from the CA, which had the Verifier
    // appraise the evidence; presented again, the Verifier refuses the spent nonce.
    let attested = Attested::new(&chip, MEASUREMENT, &verifier, &rp_id).unwrap();
    let obtained = ca_client.issue(&attested.evidence(), Some(Mechanism::C)).unwrap();
    assert_eq!(obtained.credential.workload_id, "spiffe://example.org/payroll-app");
    let replay = ca_client.issue(&attested.evidence(), Some(Mechanism::C)).unwrap_err();
    assert!(replay.contains("the Verifier") && replay.contains("already used"), "{replay}");
    // A renewal of it at the CA, on fresh evidence the Verifier appraised.
    let fresh = Attested::new(&chip, MEASUREMENT, &verifier, &rp_id).unwrap();
    let renewed = ca_client.renew(&fresh.evidence(), &obtained.credential.serial).unwrap();
    assert_ne!(renewed.credential.serial, obtained.credential.serial);
    let fresh = Attested::new(&chip, MEASUREMENT, &verifier, &rp_id).unwrap();
    let unknown = ca_client.renew(&fresh.evidence(), "00ff").unwrap_err();
    assert!(unknown.contains("no provenance record"), "{unknown}");
    // Only a role with a certificate under the operator CA asks the Verifier for mechanism C.
    let attested = Attested::new(&chip, MEASUREMENT, &verifier, &rp_id).unwrap();
    let evidence = twi_issuer::http::wire::EvidenceJson::new(&attested.evidence());
    match verifier.appraise(Mechanism::C, &evidence) {
        Err(PeerError::Refused { status: 400, reason }) => assert!(reason.contains("client certificate"), "{reason}"),
        other => panic!("a workload asked the Verifier for mechanism c's appraisal: {other:?}"),
    }

    // A: the Verifier process obtains the credential from the CA process.
    let verifier_a = RemoteIssuer::new(&verifier_a.url, &verifier_anchor).unwrap();
    let attested = Attested::new(&chip, MEASUREMENT_A, &verifier_a, &rp_id).unwrap();
    let obtained = verifier_a.issue(&attested.evidence(), Some(Mechanism::A)).unwrap();
    assert_eq!(obtained.credential.workload_id, "spiffe://example.org/audit-app");
    // Its attestation result, from the Verifier process, names the credential from the CA process.
    let verifier_key = {
        use p384::pkcs8::DecodePrivateKey;
        let pem = std::fs::read_to_string(verifier_state.join("issuer/verifier-key.pem")).unwrap();
        *p384::ecdsa::SigningKey::from_pkcs8_pem(&pem).unwrap().verifying_key()
    };
    let ear = obtained.credential.attestation_result.as_deref().unwrap();
    let ear = twi_issuer::ear::Ear::verify_jwt(ear, &verifier_key, std::time::SystemTime::now()).unwrap();
    let named = &ear.submods["twi"].verifier_claims["credential"];
    assert_eq!(named["x509-serial"], obtained.credential.serial.as_str());
    let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&obtained.certificate_der));
    assert_eq!(named["x509-sha256"], sha256.as_str());
    let replay = verifier_a.issue(&attested.evidence(), Some(Mechanism::A)).unwrap_err();
    assert!(replay.contains("already used"), "{replay}");
    let evidence = twi_issuer::http::wire::EvidenceJson::new(&attested.evidence());
    match CaPeer::credential(&ca_client, &evidence, obtained.credential.attestation_result.as_deref().unwrap()) {
        Err(PeerError::Refused { status: 400, reason }) => {
            assert!(reason.contains("only a Verifier process"), "{reason}")
        }
        other => panic!("a workload asked the CA for mechanism a's credential: {other:?}"),
    }

    // D: the owner provisions at the Key Store; the release is appraised by the Verifier.
    let owner = ClientTls { ca: anchor, client: Some((roles.client_cert.clone(), roles.client_key.clone())) };
    let (provisioned, created) =
        RemoteIssuer::new(&ca.url, &owner).unwrap().provision(Platform::SimSnp, &MEASUREMENT_D).unwrap();
    assert!(created);
    let released = release(&chip, &verifier, &ca_client, &rp_id);
    let (obtained, release, _) = released.unwrap();
    assert_eq!(obtained.credential.workload_id, "spiffe://example.org/vault-app");
    assert_eq!(release.provisioned.public_key, provisioned.public_key, "the provisioned key is released");
    assert!(ca_client.log_proof(&obtained.credential.serial).is_ok(), "the release is logged");

    // The Verifier's results reach the asking process through the database only.
    let alone = TWI
        .run(&[&["serve", "--state", path(&ca_state), "--policy", path(&policy), "--roles", "ca"], &role[..]].concat());
    let said = String::from_utf8_lossy(&alone.stderr);
    assert!(!alone.status.success() && said.contains("--database"), "{said}");
    refuses_what_a_role_process_lacks(dir.path(), &policy, &roles);
}

/// An auditor's public key made by `openssl` in `dir` (its private half is not needed here).
fn auditor_key(dir: &Path) -> PathBuf {
    let (private, public) = (dir.join("auditor.key"), dir.join("auditor.pub"));
    let args = ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", path(&private)];
    twi_testkit::tools::assert_ok(&twi_testkit::tools::openssl(&args), "openssl genpkey");
    let args = ["pkey", "-in", path(&private), "-pubout", "-out", path(&public)];
    twi_testkit::tools::assert_ok(&twi_testkit::tools::openssl(&args), "openssl pkey -pubout");
    public
}

/// A process holds the keys of the roles it serves, none of the others'.
fn holds_only_its_own_keys(ca_state: &Path, verifier_state: &Path) {
    const VERIFIER_KEYS: [&str; 2] = ["verifier-key.pem", "epoch-key.pem"];
    const CA_KEYS: [&str; 6] = [
        "issuer-ca.key.pem",
        "wit-key.pem",
        "log-key.pem",
        "binding-key.pem",
        "keystore-key.pem",
        "keystore-wrap-key.pem",
    ];
    let held = |file: &str| verifier_state.join("issuer").join(file).exists();
    assert!(VERIFIER_KEYS.iter().all(|f| held(f)), "the Verifier process's state lacks some of {VERIFIER_KEYS:?}");
    let others: Vec<_> = CA_KEYS.iter().filter(|f| held(f)).collect();
    assert!(others.is_empty(), "the Verifier process's state holds {others:?}");
    let held = |file: &str| ca_state.join("issuer").join(file).exists();
    assert!(CA_KEYS.iter().all(|f| held(f)), "the CA process's state lacks some of {CA_KEYS:?}");
    let others: Vec<_> = VERIFIER_KEYS.iter().filter(|f| held(f)).collect();
    assert!(others.is_empty(), "the CA process's state holds the Verifier's {others:?}");
}

/// A Verifier-only process needs the CA's certificate and a server certificate of its own; a
/// --verifier-key must be a P-384 public key. Each refusal names what to give.
fn refuses_what_a_role_process_lacks(dir: &Path, policy: &Path, roles: &twi_testkit::tools::OperatorPki) {
    let fresh = dir.join("fresh-verifier");
    let serve = |more: &[&str]| {
        let out = TWI.run(&[&["serve", "--state", path(&fresh), "--policy", path(policy)], more].concat());
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let said = serve(&["--roles", "verifier"]);
    assert!(said.contains("--issuer-ca") && said.contains("--ca-url"), "{said}");
    let said = serve(&["--roles", "verifier", "--issuer-ca", path(&roles.ca), "--listen", "127.0.0.1:0"]);
    assert!(said.contains("--tls-cert") && said.contains("--tls-key"), "{said}");
    let said = serve(&["--roles", "ca,log", "--verifier-key", path(&roles.ca)]);
    assert!(said.contains("--verifier-key") && said.contains("P-384 public key"), "{said}");
    assert!(!fresh.join("issuer/issuer-ca.key.pem").exists(), "a refused process made no CA");
}

/// Mechanism D: a launch of MEASUREMENT_D on `chip` binds a new ephemeral key to the nonce
/// from `verifier` (TACRA Retrieval) and asks `key_store` for the provisioned key.
fn release(
    chip: &Path,
    verifier: &RemoteIssuer,
    key_store: &RemoteIssuer,
    rp_id: &str,
) -> Result<(Obtained, twi_issuer::keystore::Release, serde_json::Value), String> {
    let evidence = release_evidence(chip, verifier, rp_id)?.decode().map_err(|e| e.to_string())?;
    key_store.release(&evidence.evidence())
}

/// The evidence of a launch of the mechanism-D workload on `chip` asking for a release: fresh
/// for a challenge of `verifier`, its key an ephemeral one, bound to `rp_id`.
fn release_evidence(
    chip: &Path,
    verifier: &RemoteIssuer,
    rp_id: &str,
) -> Result<twi_issuer::evidence::EvidenceJson, String> {
    let mut psp = SimPsp::load_or_create(chip).unwrap();
    psp.set_launch_digest(MEASUREMENT_D);
    let initiate = Initiate { target: TARGET.into(), credential_type: CredentialKind::X509, hint: None };
    let nonce = verifier.initiate(Platform::SimSnp, &MEASUREMENT_D, &initiate).map_err(|d| format!("{d:?}"))?.nonce;
    let ephemeral = SigningKey::try_generate().unwrap().verifying_key().to_sec1_point(false).as_bytes().to_vec();
    let report = psp.report(twi_testkit::tacra::retrieve(&ephemeral, &nonce, rp_id, TARGET), 0);
    let endorsements = psp.endorsements().unwrap();
    let bundle = EvidenceBundle {
        platform: Platform::SimSnp,
        evidence: &report,
        public_key: &ephemeral,
        nonce: &nonce,
        target: TARGET,
        csr: None,
        endorsements: &endorsements,
    };
    Ok(twi_issuer::evidence::EvidenceJson::new(&Evidence { bundle, events: &[] }))
}

/// What killing the service while it issues must leave: the log `twi log audit` accepts, of
/// whole issuances (records 2k and 2k+1 are one X.509 and one WIT credential from the same
/// evidence), holding every credential a client received.
fn assert_whole_issuances(log: &ProvenanceLog, received: &[String], audit: &[&str]) {
    let out = TWI.run(audit);
    let said = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "twi log audit refused the log after the kills:\n{said}");
    assert_eq!(log.len() % 2, 0, "{} records: an issuance was cut in half", log.len());
    let mut ids = Vec::new();
    for pair in 0..log.len() / 2 {
        let record = |i: u64| log.record(i).unwrap().record().cloned().expect("a record in clear");
        let (x509, wit) = (record(2 * pair), record(2 * pair + 1));
        assert_eq!((x509.credential_kind.as_str(), wit.credential_kind.as_str()), ("x509", "wit"), "pair {pair}");
        assert_eq!(
            x509.evidence_sha384,
            wit.evidence_sha384,
            "records {} and {} are not one issuance",
            2 * pair,
            2 * pair + 1
        );
        ids.push(x509.credential_id);
    }
    // Logged but never delivered: issuances the kill cut off after their commit.
    eprintln!("after the kills: {} issuances logged, {} delivered", ids.len(), received.len());
    for serial in received {
        assert!(ids.contains(serial), "certificate {serial} was delivered but is not in the log");
    }
}

/// A client issues through `url` until `stop`: the serials delivered, or why it was refused
/// before `stop` (the service was not killed yet).
fn issue_until(
    url: &str,
    state: &Path,
    chip: &Path,
    rp_id: &str,
    stop: &AtomicBool,
    done: &AtomicUsize,
) -> Result<Vec<String>, String> {
    let tls = ClientTls { ca: Some(state.join("issuer/issuer-ca.pem")), client: None };
    let client = RemoteIssuer::new(url, &tls).unwrap();
    let mut delivered = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match try_acquire(chip, &client, &client, rp_id, false) {
            Ok((serial, _)) => {
                delivered.push(serial);
                done.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) if !stop.load(Ordering::SeqCst) => return Err(e),
            // Killed under us: the retries gave up; what it logged is checked at the end.
            Err(_) => break,
        }
    }
    Ok(delivered)
}

/// Three rounds of: start `twi serve ARGS`, let [`IN_FLIGHT`] clients issue through it, SIGKILL
/// it once as many issuances went through (every client then has one in flight). The serials
/// delivered over all rounds.
fn kill_while_issuing(args: &[&str], state: &Path, chip: &Path) -> Vec<String> {
    let mut received = Vec::new();
    let args = [args, MANY_CLIENTS.as_slice()].concat();
    for round in 0..3 {
        let served = Served::start(TWI, &args);
        let tls = ClientTls { ca: Some(state.join("issuer/issuer-ca.pem")), client: None };
        let rp_id = RemoteIssuer::new(&served.url, &tls)
            .unwrap()
            .ca_certificate()
            .unwrap()
            .1
            .tbs_certificate()
            .subject()
            .to_string();
        let (stop, done, url) = (AtomicBool::new(false), AtomicUsize::new(0), served.url.clone());
        let delivered: Vec<Result<Vec<String>, String>> = std::thread::scope(|s| {
            let workers: Vec<_> =
                (0..IN_FLIGHT).map(|_| s.spawn(|| issue_until(&url, state, chip, &rp_id, &stop, &done))).collect();
            let deadline = Instant::now() + Duration::from_secs(300);
            while done.load(Ordering::SeqCst) < IN_FLIGHT && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            // At a different point of the clients' next issuances each round.
            std::thread::sleep(Duration::from_millis(17 * round));
            // SIGKILL (Child::kill) with the clients still issuing; from here a refusal is the kill.
            stop.store(true, Ordering::SeqCst);
            drop(served);
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        let went = done.load(Ordering::SeqCst);
        assert!(went >= IN_FLIGHT, "round {round}: {went} issuances of {IN_FLIGHT} went through before the kill");
        for client in delivered {
            received.extend(client.unwrap_or_else(|e| panic!("round {round}: refused before the kill: {e}")));
        }
    }
    received
}

#[test]
fn a_killed_service_leaves_whole_issuances_in_the_embedded_log() {
    let dir = tempfile::tempdir().unwrap();
    let (state, chips, policy) = layout(dir.path());
    let args = ["--state", path(&state), "--policy", path(&policy), "--simulated-tee", path(&chips)];
    let received = kill_while_issuing(&args, &state, &chips.join("sim-snp"));
    let log = ProvenanceLog::open(&state.join("issuer/provenance.sqlite")).expect("the log reopens after the kills");
    assert_whole_issuances(&log, &received, &["log", "audit", "--state", path(&state)]);
}

#[test]
fn a_killed_replica_leaves_whole_issuances_in_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start();
    let (state, chips, policy) = layout(dir.path());
    let url = cluster.url();
    let args =
        ["--state", path(&state), "--policy", path(&policy), "--simulated-tee", path(&chips), "--database", &url];
    let received = kill_while_issuing(&args, &state, &chips.join("sim-snp"));
    let log = ProvenanceLog::open_postgres(Arc::new(Postgres::connect(&url).unwrap())).expect("the log reopens");
    assert_whole_issuances(&log, &received, &["log", "audit", "--state", path(&state), "--database", &url]);
}

/// Mechanism D across replicas that share the database but not a state directory (each has
/// its own copy of the keys): the owner provisions at one replica, over HTTPS with the owner's
/// client certificate, and a launch's key is released at the other; the owner provisions
/// again with `twi keystore provision --database` on a third copy, and that key is what the
/// replicas release next. No replica keeps the Key Store's credentials in files.
#[test]
fn replicas_with_their_own_state_share_the_key_store_through_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start();
    let (state, chips, policy) = layout(dir.path());
    let roles = twi_testkit::tools::OperatorPki::new(dir.path(), "roles");
    let url = cluster.url();
    let args = |state: &Path| -> Vec<String> {
        let dirs = [path(state), path(&policy), path(&chips), url.as_str(), path(&roles.ca)];
        let flags = ["--state", "--policy", "--simulated-tee", "--database", "--operator-ca"];
        flags.iter().zip(dirs).flat_map(|(f, v)| [f.to_string(), v.to_string()]).collect()
    };
    let served = |state: &Path| {
        let args = args(state);
        Served::start(TWI, &args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let first = served(&state);
    let copy = |to: &str| {
        let to = dir.path().join(to);
        assert!(std::process::Command::new("cp").args(["-a", path(&state), path(&to)]).status().unwrap().success());
        to
    };
    let (state_b, state_c) = (copy("state-b"), copy("state-c"));
    let second = served(&state_b);
    let anchor = Some(state.join("issuer/issuer-ca.pem"));
    let tls = ClientTls { ca: anchor.clone(), client: None };
    let (at_first, at_second) =
        (RemoteIssuer::new(&first.url, &tls).unwrap(), RemoteIssuer::new(&second.url, &tls).unwrap());
    let rp_id = at_first.ca_certificate().unwrap().1.tbs_certificate().subject().to_string();
    let chip = chips.join("sim-snp");

    let owner = ClientTls { ca: anchor, client: Some((roles.client_cert.clone(), roles.client_key.clone())) };
    let (provisioned, created) =
        RemoteIssuer::new(&first.url, &owner).unwrap().provision(Platform::SimSnp, &MEASUREMENT_D).unwrap();
    assert!(created);
    let (obtained, released, _) = release(&chip, &at_first, &at_second, &rp_id).unwrap();
    assert_eq!(
        released.provisioned.public_key, provisioned.public_key,
        "released at the replica it was not provisioned at"
    );
    assert!(at_first.log_proof(&obtained.credential.serial).is_ok(), "the release is in the one log");
    let again = RemoteIssuer::new(&second.url, &owner).unwrap().provision(Platform::SimSnp, &MEASUREMENT_D).unwrap();
    assert_eq!((again.0.serial_hex, again.1), (provisioned.serial_hex, false), "the other replica holds it too");

    // The owner's own key, provisioned from a third copy of the state straight into the database.
    let owner_key = SigningKey::try_generate().unwrap();
    let key_file = dir.path().join("owner.key");
    std::fs::write(
        &key_file,
        p384::pkcs8::EncodePrivateKey::to_pkcs8_pem(&owner_key, Default::default()).unwrap().as_bytes(),
    )
    .unwrap();
    let fresh = dir.path().join("not-a-copy");
    let cli = ["keystore", "provision", "--state", path(&fresh), "--workload-id", "spiffe://example.org/vault-app"];
    let said = TWI.run(&[&cli[..], &["--key", path(&key_file), "--database", url.as_str()]].concat());
    let refused = String::from_utf8_lossy(&said.stderr);
    assert!(!said.status.success() && refused.contains("needs a copy of their state directory"), "{refused}");
    let cli = ["keystore", "provision", "--state", path(&state_c), "--workload-id", "spiffe://example.org/vault-app"];
    let said = TWI.run(&[&cli[..], &["--key", path(&key_file), "--database", url.as_str()]].concat());
    assert!(said.status.success(), "{}", String::from_utf8_lossy(&said.stderr));
    let (_, owners, _) = release(&chip, &at_second, &at_first, &rp_id).unwrap();
    assert_eq!(owners.provisioned.public_key, owner_key.verifying_key().to_sec1_point(false).as_bytes());
    for state in [&state, &state_b, &state_c] {
        assert!(!state.join("issuer/keystore").exists(), "{} keeps Key Store files", state.display());
    }
    let audit = TWI.run(&["log", "audit", "--state", path(&state_b), "--database", &url]);
    assert!(audit.status.success(), "{}", String::from_utf8_lossy(&audit.stderr));
}

/// The provenance log in a process of its own (issue 14 item 5): `--roles verifier`, `--roles
/// ca,key-store` and `--roles log`, each with its own state, over mutual TLS. A mechanism-C
/// issuance and its renewal at the CA: the Verifier appraises the evidence, the log signs the
/// records before the CA signs the credentials naming them, then appends them; mechanism D's
/// provisioning and release, logged the same way; the log process's proofs
/// (`twi log prove` against it, the credential naming its statement) and its audit (`twi log
/// audit` of its state) accept them, and each state holds only its role's key files. The log's
/// sign and append endpoints refuse a caller without a role certificate (403), a malformed
/// record and a statement the log did not sign (400). A CA without the log role and without
/// --log-url, and a Key Store without the CA or --ca-url, are refused at the start, naming what
/// is missing.
#[test]
fn a_log_process_holds_the_logs_keys_and_logs_for_a_ca_process() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start();
    let (_, chips, policy) = layout(dir.path());
    let roles = twi_testkit::tools::OperatorPki::new(dir.path(), "roles");
    let url = cluster.url();
    let [ca_state, verifier_state, log_state] = ["ca", "verifier", "log"].map(|r| dir.path().join(r));
    twi_issuer::IssuerCa::load_or_create(&ca_state.join("issuer"), "example.org").unwrap();
    let issuer_ca = ca_state.join("issuer/issuer-ca.pem");
    let own_tls = |name: &str| {
        let (cert, key) = roles.server(dir.path(), name);
        vec!["--tls-cert".to_string(), path(&cert).to_string(), "--tls-key".into(), path(&key).into()]
    };
    let (verifier_tls, log_tls) = (own_tls("verifier"), own_tls("log"));
    let served = |state: &Path, roles_named: &str, more: &[&str]| {
        let base = ["--policy", path(&policy), "--operator-ca", path(&roles.ca), "--state", path(state)];
        Served::start(TWI, &[&base[..], &["--roles", roles_named][..], more].concat())
    };
    let common = ["--simulated-tee", path(&chips), "--database", url.as_str(), "--issuer-ca", path(&issuer_ca)];
    let verifier_tls: Vec<&str> = verifier_tls.iter().map(String::as_str).collect();
    let verifier = served(&verifier_state, "verifier", &[&common[..], &verifier_tls[..]].concat());
    // The log keeps its log in its own state (the embedded store), apart from the database, and
    // seals its records to an auditor key.
    let log_tls: Vec<&str> = log_tls.iter().map(String::as_str).collect();
    let auditor = auditor_key(dir.path());
    let log_own = ["--issuer-ca", path(&issuer_ca), "--auditor-key", path(&auditor)];
    let log = served(&log_state, "log", &[&log_own[..], &log_tls[..]].concat());
    let role = ["--role-cert", path(&roles.client_cert), "--role-key", path(&roles.client_key)];
    let peers = ["--verifier-url", &verifier.url, "--log-url", &log.url, "--peer-ca", path(&roles.ca)];
    let ca = served(&ca_state, "ca,key-store", &[&common[..4], &role[..], &peers[..]].concat());

    let (anchor, role_anchor) = (ClientTls { ca: Some(issuer_ca.clone()), client: None }, Some(roles.ca.clone()));
    let verifier = RemoteIssuer::new(&verifier.url, &ClientTls { ca: role_anchor.clone(), client: None }).unwrap();
    let ca_client = RemoteIssuer::new(&ca.url, &anchor).unwrap();
    let rp_id = ca_client.ca_certificate().unwrap().1.tbs_certificate().subject().to_string();
    let chip = chips.join("sim-snp");
    let attested = Attested::new(&chip, MEASUREMENT, &verifier, &rp_id).unwrap();
    let obtained = ca_client.issue(&attested.evidence(), Some(Mechanism::C)).unwrap();
    assert_eq!(obtained.credential.workload_id, "spiffe://example.org/payroll-app");
    // A renewal reads the previous record's binding back from the log process (sealed: from its
    // private binding table, which only a role reads).
    let records = obtained.credential.provenance["records"].as_array().unwrap();
    assert!(records.iter().all(|r| r["record"].is_null() && r["encrypted_to"].is_string()), "{records:?}");
    let fresh = Attested::new(&chip, MEASUREMENT, &verifier, &rp_id).unwrap();
    let renewed = ca_client.renew(&fresh.evidence(), &obtained.credential.serial).unwrap();
    let fresh = Attested::new(&chip, MEASUREMENT, &verifier, &rp_id).unwrap();
    let unknown = ca_client.renew(&fresh.evidence(), "00ff").unwrap_err();
    assert!(unknown.contains("no provenance record"), "{unknown}");

    // The log process proves each credential (which names its statement), and its state audits.
    for (i, credential) in [&obtained, &renewed].into_iter().enumerate() {
        let pem = dir.path().join(format!("credential-{i}.pem"));
        std::fs::write(&pem, &credential.credential.certificate_pem).unwrap();
        let prove = ["log", "prove", path(&pem), "--issuer-url", &log.url, "--issuer-ca", path(&roles.ca)];
        let out = TWI.run(&prove);
        assert!(out.status.success(), "twi log prove: {}", String::from_utf8_lossy(&out.stderr));
        let indices: Vec<u64> = logged(credential).1.into_iter().map(|(_, index)| index).collect();
        assert_eq!(indices, [2 * i as u64, 2 * i as u64 + 1], "the issuances' records, adjacent, in order");
    }
    // D: the owner's provisioning and the release, each logged by the log process.
    let owner =
        ClientTls { ca: Some(issuer_ca.clone()), client: Some((roles.client_cert.clone(), roles.client_key.clone())) };
    let (provisioned, created) =
        RemoteIssuer::new(&ca.url, &owner).unwrap().provision(Platform::SimSnp, &MEASUREMENT_D).unwrap();
    assert!(created);
    let log_client = RemoteIssuer::new(&log.url, &ClientTls { ca: role_anchor.clone(), client: None }).unwrap();
    assert!(log_client.log_proof(&provisioned.serial_hex).is_ok(), "the provisioning is logged");
    let (released, release, _) = release(&chip, &verifier, &ca_client, &rp_id).unwrap();
    assert_eq!(release.provisioned.public_key, provisioned.public_key, "the provisioned key is released");
    assert!(log_client.log_proof(&released.credential.serial).is_ok(), "the release is logged");
    let audit = TWI.run(&["log", "audit", "--state", path(&log_state)]);
    assert!(audit.status.success(), "twi log audit: {}", String::from_utf8_lossy(&audit.stderr));
    each_holds_only_its_keys(&[
        (&ca_state, &CA_AND_KEY_STORE[..]),
        (&verifier_state, &VERIFIER_ONLY[..]),
        (&log_state, &LOG_ONLY[..]),
    ]);
    log_endpoints_refuse(&log.url, &roles);
    refuses_a_split_it_cannot_serve(dir.path(), &policy);
}

/// The four roles in four processes (issue 14 item 5), each with its own state, over mutual
/// TLS: `--roles verifier`, `--roles ca` (calling the log and the Verifier), `--roles log` and
/// `--roles key-store`, which holds only the Key Store's keys and has the keys it provisions
/// and releases certified by the CA process (`--ca-url`). Mechanism D: the owner provisions at
/// the Key Store (the CA certifies the key for the workload its policy admits and the log
/// records the provisioning); a launch's release, appraised by the Verifier, gets the released
/// key certified by the CA for that launch (which checks the Verifier's result and the evidence
/// itself), its certificate and WIT logged; `twi log prove` of it against the log process and
/// the log's audit accept them; its certificate has the extensions of a release by one process
/// serving every role. The CA's endpoints for a Key Store refuse a caller without a
/// role certificate (403) and malformed bodies (400), and answer 503 while its log is down; the
/// Key Store answers 503 while the CA is down.
#[test]
fn a_key_store_process_has_its_keys_certified_by_a_ca_process() {
    use twi_issuer::KeyStoreCaPeer;
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start();
    let url = cluster.url();
    let split = SplitRoles::new(dir.path(), Some(&url));
    let (roles, chips) = (&split.roles, &split.chips);
    let [ca_state, verifier_state, log_state, key_store_state] = &split.states;
    let (common, role, tls) = (split.common(), split.role(), split.tls());
    let (verifier, log, ca) = split.verifier_log_ca();
    let to_verifier = ["--verifier-url", verifier.url.as_str()];
    let to_ca = ["--ca-url", ca.url.as_str()];
    let key_store = split.serve(
        key_store_state,
        "key-store",
        &[&common[..], &role[..], &to_verifier[..], &to_ca[..], &tls[3][..]].concat(),
    );

    let anyone = ClientTls { ca: Some(roles.ca.clone()), client: None };
    let owner =
        ClientTls { ca: Some(roles.ca.clone()), client: Some((roles.client_cert.clone(), roles.client_key.clone())) };
    let [verifier, ca_client, log_client, key_store_client] =
        [&verifier.url, &ca.url, &log.url, &key_store.url].map(|url| RemoteIssuer::new(url, &anyone).unwrap());
    let ca_certificate = ca_client.ca_certificate().unwrap().1;
    let rp_id = ca_certificate.tbs_certificate().subject().to_string();

    // The owner provisions at the Key Store; the CA certifies the key, the log records it.
    let owner_at_key_store = RemoteIssuer::new(&key_store.url, &owner).unwrap();
    let (provisioned, created) = owner_at_key_store.provision(Platform::SimSnp, &MEASUREMENT_D).unwrap();
    assert!(created);
    assert_eq!(provisioned.workload_id, "spiffe://example.org/vault-app");
    let certificate = <x509_cert::Certificate as der::Decode>::from_der(&provisioned.certificate_der).unwrap();
    twi_verifier::chain::verify_issued_by(&certificate, &ca_certificate).expect("the CA process certified it");
    assert!(log_client.log_proof(&provisioned.serial_hex).is_ok(), "the provisioning is logged");
    let (again, created) = owner_at_key_store.provision(Platform::SimSnp, &MEASUREMENT_D).unwrap();
    assert!(!created && again.serial_hex == provisioned.serial_hex, "the Key Store keeps what it provisioned");

    // A launch's release: the Verifier appraises, the CA certifies the released key for it.
    let chip = chips.join("sim-snp");
    let (released, key_release, _) = release(&chip, &verifier, &key_store_client, &rp_id).unwrap();
    assert_eq!(released.credential.workload_id, "spiffe://example.org/vault-app");
    assert_eq!(key_release.provisioned.public_key, provisioned.public_key, "the provisioned key is released");
    let certificate = <x509_cert::Certificate as der::Decode>::from_der(&released.certificate_der).unwrap();
    twi_verifier::chain::verify_issued_by(&certificate, &ca_certificate).expect("the CA process certified it");
    assert_ne!(released.credential.serial, provisioned.serial_hex, "a certificate for this launch");
    let logged_ids: Vec<String> = logged(&released).1.into_iter().map(|(id, _)| id).collect();
    assert_eq!(logged_ids.len(), 2, "the release's certificate and WIT are logged: {logged_ids:?}");
    assert!(logged_ids.contains(&released.credential.serial), "{logged_ids:?}");
    let pem = dir.path().join("released.pem");
    std::fs::write(&pem, &released.credential.certificate_pem).unwrap();
    let prove = ["log", "prove", path(&pem), "--issuer-url", &log.url, "--issuer-ca", path(&roles.ca)];
    let out = TWI.run(&prove);
    assert!(out.status.success(), "twi log prove: {}", String::from_utf8_lossy(&out.stderr));
    let audit = TWI.run(&["log", "audit", "--state", path(log_state)]);
    assert!(audit.status.success(), "twi log audit: {}", String::from_utf8_lossy(&audit.stderr));
    each_holds_only_its_keys(&[
        (ca_state, &CA_ONLY[..]),
        (verifier_state, &VERIFIER_ONLY[..]),
        (log_state, &LOG_ONLY[..]),
        (key_store_state, &KEY_STORE_ONLY[..]),
    ]);

    ca_endpoints_for_a_key_store_refuse(&ca.url, roles, &released);
    one_release_certificate_per_result(&ca.url, &verifier, roles, &chip, &rp_id);
    // A process serving the Verifier and the Key Store (a copy of both states: the CA knows
    // its Verifier's key, it unwraps the credentials provisioned above) releases through the
    // CA process, which certifies and logs the release.
    let both_state = dir.path().join("verifier-key-store");
    copy_states(&[verifier_state, key_store_state], &both_state);
    let both =
        split.serve(&both_state, "verifier,key-store", &[&common[..], &role[..], &to_ca[..], &tls[3][..]].concat());
    let both = RemoteIssuer::new(&both.url, &anyone).unwrap();
    let (through_ca, key_release, _) = release(&chip, &both, &both, &rp_id).unwrap();
    assert_eq!(key_release.provisioned.public_key, provisioned.public_key, "the provisioned key is released");
    let certificate = <x509_cert::Certificate as der::Decode>::from_der(&through_ca.certificate_der).unwrap();
    twi_verifier::chain::verify_issued_by(&certificate, &ca_certificate).expect("the CA process certified it");
    assert_eq!(logged(&through_ca).1.len(), 2, "the release's certificate and WIT are logged");
    assert!(log_client.log_proof(&through_ca.credential.serial).is_ok(), "logged by the log process");
    // One process serving every role releases a certificate with the same extensions.
    let all_state = dir.path().join("all");
    let all = split.serve(&all_state, "verifier,ca,key-store,log", &["--simulated-tee", path(chips)]);
    let all_anchor = Some(all_state.join("issuer/issuer-ca.pem"));
    let all_client = RemoteIssuer::new(&all.url, &ClientTls { ca: all_anchor.clone(), client: None }).unwrap();
    let all_owner = ClientTls { ca: all_anchor, client: owner.client.clone() };
    RemoteIssuer::new(&all.url, &all_owner).unwrap().provision(Platform::SimSnp, &MEASUREMENT_D).unwrap();
    let all_rp_id = all_client.ca_certificate().unwrap().1.tbs_certificate().subject().to_string();
    let (in_one, _, _) = release(&chip, &all_client, &all_client, &all_rp_id).unwrap();
    let (split, together) = (extensions(&released.certificate_der), extensions(&in_one.certificate_der));
    assert_eq!(split, together, "the released certificates' extensions");
    let launch = split.iter().filter(|(oid, _)| oid.starts_with(twi_issuer::oids::DEFAULT_ARC)).count();
    assert!(launch >= 2, "the release's certificate names the launch and its log entry: {split:?}");
    // The CA's log is down: the CA answers 503 (after its own retries), as does the Key Store.
    drop(log);
    let role_at_ca = RemoteIssuer::new(&ca.url, &owner).unwrap();
    let asked = twi_issuer::key_store_ca::ProvisionCertifyRequest {
        platform: "sim-snp".into(),
        measurement: hex::encode(MEASUREMENT_D),
        owner: "CN=test".into(),
        public_key: hex::encode(&provisioned.public_key),
    };
    match KeyStoreCaPeer::provision(&role_at_ca, &asked) {
        Err(twi_issuer::http::PeerError::Unavailable(reason)) => assert!(reason.contains("503"), "{reason}"),
        other => panic!("a CA without its log certified a key: {other:?}"),
    }
    // A release the CA could not log leaves its result unmarked: the client's retries (the same
    // request, each run again after a 503) are answered 503 each time, not refused as a replay.
    let unlogged = release_certify_request(&verifier, roles, &chip, &rp_id);
    match KeyStoreCaPeer::release(&role_at_ca, &unlogged) {
        Err(twi_issuer::http::PeerError::Unavailable(reason)) => assert!(reason.contains("503"), "{reason}"),
        other => panic!("a release the CA could not log: {:?}", other.map(|c| c.wit_jti)),
    }
    // The CA is down: the Key Store answers 503 (after its own retries), not 500.
    drop(ca);
    let down = owner_at_key_store.provision(Platform::SimSnp, &MEASUREMENT).unwrap_err();
    assert!(down.contains("503") && down.contains("--ca-url"), "{down}");
}

/// Roles in processes of their own (issue 14 item 5), each with its own state (`states`: ca,
/// verifier, log, key-store), over mutual TLS: every process serves a certificate under the
/// operators' CA, the one `--peer-ca` names. With a `database`, the Verifier, the CA and the
/// Key Store keep their nonces, certified results and credentials there; without, each in its
/// own memory and state.
struct SplitRoles {
    roles: twi_testkit::tools::OperatorPki,
    chips: PathBuf,
    policy: PathBuf,
    states: [PathBuf; 4],
    /// `--tls-cert`/`--tls-key` of the ca, verifier, log and key-store processes.
    tls: Vec<Vec<String>>,
    database: Option<String>,
}

impl SplitRoles {
    fn new(dir: &Path, database: Option<&str>) -> Self {
        let (_, chips, policy) = layout(dir);
        let roles = twi_testkit::tools::OperatorPki::new(dir, "roles");
        let states = ["ca", "verifier", "log", "key-store"].map(|r| dir.join(r));
        twi_issuer::IssuerCa::load_or_create(&states[0].join("issuer"), "example.org").unwrap();
        let tls = ["ca", "verifier", "log", "key-store"]
            .iter()
            .map(|name| {
                let (cert, key) = roles.server(dir, name);
                vec!["--tls-cert".to_string(), path(&cert).to_string(), "--tls-key".into(), path(&key).into()]
            })
            .collect();
        Self { roles, chips, policy, states, tls, database: database.map(str::to_string) }
    }

    /// `twi serve --roles ROLES_NAMED` on `state`, with the policy, the operators' CA and `more`.
    fn serve(&self, state: &Path, roles_named: &str, more: &[&str]) -> Served {
        let base = ["--policy", path(&self.policy), "--operator-ca", path(&self.roles.ca), "--state", path(state)];
        Served::start(TWI, &[&base[..], &["--roles", roles_named][..], more].concat())
    }

    /// The simulated chips, and the database if there is one.
    fn common(&self) -> Vec<&str> {
        let database = self.database.iter().flat_map(|url| ["--database", url.as_str()]);
        ["--simulated-tee", path(&self.chips)].into_iter().chain(database).collect()
    }

    /// A role's client certificate for calling the others, and the CA their certificates are under.
    fn role(&self) -> [&str; 6] {
        let pki = &self.roles;
        ["--role-cert", path(&pki.client_cert), "--role-key", path(&pki.client_key), "--peer-ca", path(&pki.ca)]
    }

    fn tls(&self) -> Vec<Vec<&str>> {
        self.tls.iter().map(|t| t.iter().map(String::as_str).collect()).collect()
    }

    /// The Verifier, the log and the CA (calling the other two), each in its own process.
    fn verifier_log_ca(&self) -> (Served, Served, Served) {
        let [ca_state, verifier_state, log_state, _] = &self.states;
        let (common, role, tls) = (self.common(), self.role(), self.tls());
        let issuer_ca = ca_state.join("issuer/issuer-ca.pem");
        let issuer_ca_arg = ["--issuer-ca", path(&issuer_ca)];
        let verifier = self.serve(verifier_state, "verifier", &[&common[..], &issuer_ca_arg[..], &tls[1][..]].concat());
        let log = self.serve(log_state, "log", &[&issuer_ca_arg[..], &tls[2][..]].concat());
        let to_verifier = ["--verifier-url", verifier.url.as_str()];
        let to_log = ["--log-url", log.url.as_str()];
        let ca =
            self.serve(ca_state, "ca", &[&common[..], &role[..], &to_verifier[..], &to_log[..], &tls[0][..]].concat());
        (verifier, log, ca)
    }
}

/// Without a database (one process serving the Verifier, the CA and the log: a CA process of
/// its own needs one, its Verifier's results are redeemed there), the CA keeps the results it
/// certified a release on in its own memory: a Key Store's release request is certified once
/// per Verifier result all the same, through the same endpoint a Key Store process calls.
#[test]
fn without_a_database_the_ca_certifies_one_release_per_result() {
    let dir = tempfile::tempdir().unwrap();
    let split = SplitRoles::new(dir.path(), None);
    let (common, tls) = (split.common(), split.tls());
    let one = split.serve(&split.states[0], "verifier,ca,log", &[&common[..], &tls[0][..]].concat());
    let anyone = ClientTls { ca: Some(split.roles.ca.clone()), client: None };
    let client = RemoteIssuer::new(&one.url, &anyone).unwrap();
    let rp_id = client.ca_certificate().unwrap().1.tbs_certificate().subject().to_string();
    one_release_certificate_per_result(&one.url, &client, &split.roles, &split.chips.join("sim-snp"), &rp_id);
}

/// Copies the key files and state of each of `states` into `to` (a process serving their roles
/// together).
fn copy_states(states: &[&PathBuf], to: &Path) {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    for state in states {
        copy(state, to);
    }
}

/// The CA process certifies one release per Verifier result: the release request a Key Store
/// would send, sent twice, is refused the second time (403, as a replayed result is for
/// mechanisms B and C), and so is the same result for another key.
fn one_release_certificate_per_result(
    ca_url: &str,
    verifier: &RemoteIssuer,
    roles: &twi_testkit::tools::OperatorPki,
    chip: &Path,
    rp_id: &str,
) {
    use twi_issuer::KeyStoreCaPeer;
    use twi_issuer::http::PeerError;
    use twi_issuer::key_store_ca::ReleaseCertifyRequest;
    let role_at_ca = as_a_role(ca_url, roles);
    let request = release_certify_request(verifier, roles, chip, rp_id);
    let key = || SigningKey::try_generate().unwrap().verifying_key().to_sec1_point(false).as_bytes().to_vec();
    let first = KeyStoreCaPeer::release(&role_at_ca, &request).expect("the CA certifies a release on a current result");
    assert!(!first.wit_jti.is_empty() && !first.certificate.is_empty());
    let for_another_key = ReleaseCertifyRequest { public_key: hex::encode(key()), ..request.clone() };
    for again in [request, for_another_key] {
        match KeyStoreCaPeer::release(&role_at_ca, &again) {
            Err(PeerError::Refused { status: 403, reason }) => {
                assert!(reason.contains("already certified a release on this attestation result"), "{reason}")
            }
            other => panic!("the CA certified a second release on one Verifier result: {:?}", other.map(|c| c.wit_jti)),
        }
    }
}

/// A client of the process at `url` with the roles' client certificate.
fn as_a_role(url: &str, roles: &twi_testkit::tools::OperatorPki) -> RemoteIssuer {
    let role =
        ClientTls { ca: Some(roles.ca.clone()), client: Some((roles.client_cert.clone(), roles.client_key.clone())) };
    RemoteIssuer::new(url, &role).unwrap()
}

/// The request a Key Store process sends the CA for a release: the evidence of a new launch,
/// the result of the `verifier` process for it (asked as a role) and a new key to certify.
fn release_certify_request(
    verifier: &RemoteIssuer,
    roles: &twi_testkit::tools::OperatorPki,
    chip: &Path,
    rp_id: &str,
) -> twi_issuer::key_store_ca::ReleaseCertifyRequest {
    use twi_issuer::http::VerifierPeer;
    let role_at_verifier = as_a_role(VerifierPeer::url(verifier), roles);
    let evidence = release_evidence(chip, verifier, rp_id).unwrap();
    let attestation_result = role_at_verifier.appraise(Mechanism::D, &evidence).expect("the Verifier appraises it");
    let key = SigningKey::try_generate().unwrap().verifying_key().to_sec1_point(false).as_bytes().to_vec();
    twi_issuer::key_store_ca::ReleaseCertifyRequest { evidence, attestation_result, public_key: hex::encode(key) }
}

/// A certificate's extensions: their OIDs and criticality, in order.
fn extensions(der: &[u8]) -> Vec<(String, bool)> {
    let certificate = <x509_cert::Certificate as der::Decode>::from_der(der).unwrap();
    let extensions = certificate.tbs_certificate().extensions().cloned().unwrap_or_default();
    extensions.iter().map(|e| (e.extn_id.to_string(), e.critical)).collect()
}

/// The CA's endpoints for a Key Store: 403 without a role certificate; 400 for a malformed
/// body; 403 for a release whose attestation result is not the Verifier's.
fn ca_endpoints_for_a_key_store_refuse(ca_url: &str, roles: &twi_testkit::tools::OperatorPki, released: &Obtained) {
    use twi_issuer::KeyStoreCaPeer;
    use twi_issuer::http::PeerError;
    use twi_issuer::key_store_ca::{ProvisionCertifyRequest, ReleaseCertifyRequest};
    let anchor = Some(roles.ca.clone());
    let anyone = RemoteIssuer::new(ca_url, &ClientTls { ca: anchor.clone(), client: None }).unwrap();
    let role = ClientTls { ca: anchor, client: Some((roles.client_cert.clone(), roles.client_key.clone())) };
    let role = RemoteIssuer::new(ca_url, &role).unwrap();
    let key = SigningKey::try_generate().unwrap().verifying_key().to_sec1_point(false).as_bytes().to_vec();
    let provision = ProvisionCertifyRequest {
        platform: "sim-snp".into(),
        measurement: hex::encode(MEASUREMENT_D),
        owner: "CN=test".into(),
        public_key: hex::encode(&key),
    };
    match KeyStoreCaPeer::provision(&anyone, &provision) {
        Err(PeerError::Refused { status: 403, reason }) => assert!(reason.contains("client certificate"), "{reason}"),
        other => panic!("the CA certified a key for a caller without a role certificate: {other:?}"),
    }
    let malformed = [
        ProvisionCertifyRequest { public_key: "not hex".into(), ..provision.clone() },
        ProvisionCertifyRequest { public_key: "04".into(), ..provision.clone() },
        ProvisionCertifyRequest { platform: "vax".into(), ..provision.clone() },
        ProvisionCertifyRequest { owner: " ".into(), ..provision.clone() },
    ];
    for bad in malformed {
        match KeyStoreCaPeer::provision(&role, &bad) {
            Err(PeerError::Refused { status: 400, .. }) => {}
            other => panic!("the CA took a malformed provisioning {bad:?}: {other:?}"),
        }
    }
    let unknown = ProvisionCertifyRequest { measurement: "00".repeat(48), ..provision };
    match KeyStoreCaPeer::provision(&role, &unknown) {
        Err(PeerError::Refused { status: 403, reason }) => assert!(reason.contains("nothing to provision"), "{reason}"),
        other => panic!("the CA certified a key for a workload its policy does not admit: {other:?}"),
    }
    // A release: the evidence of a launch it never saw, under a result that is not the Verifier's.
    let evidence = twi_issuer::evidence::EvidenceJson {
        platform: "sim-snp".into(),
        evidence: "00".into(),
        public_key: hex::encode(&key),
        nonce: "00".into(),
        target: TARGET.into(),
        csr: None,
        endorsements: Vec::new(),
        event_log: Vec::new(),
    };
    let release = ReleaseCertifyRequest {
        evidence,
        attestation_result: released.credential.wit.clone(),
        public_key: hex::encode(&key),
    };
    match KeyStoreCaPeer::release(&anyone, &release) {
        Err(PeerError::Refused { status: 403, .. }) => {}
        other => panic!("the CA certified a release for a caller without a role certificate: {other:?}"),
    }
    let bad_key = ReleaseCertifyRequest { public_key: "zz".into(), ..release.clone() };
    let bad_evidence = ReleaseCertifyRequest {
        evidence: twi_issuer::evidence::EvidenceJson { platform: "vax".into(), ..release.evidence.clone() },
        ..release.clone()
    };
    for bad in [bad_key, bad_evidence] {
        match KeyStoreCaPeer::release(&role, &bad) {
            Err(PeerError::Refused { status: 400, .. }) => {}
            other => panic!("the CA took a malformed release {bad:?}: {other:?}"),
        }
    }
    match KeyStoreCaPeer::release(&role, &release) {
        Err(PeerError::Refused { status: 403, reason }) => assert!(reason.contains("attestation result"), "{reason}"),
        other => panic!("the CA certified a release on a WIT presented as the Verifier's result: {other:?}"),
    }
}

const CA_ONLY: [&str; 2] = ["issuer-ca.key.pem", "wit-key.pem"];
const KEY_STORE_ONLY: [&str; 2] = ["keystore-key.pem", "keystore-wrap-key.pem"];
const VERIFIER_ONLY: [&str; 2] = ["verifier-key.pem", "epoch-key.pem"];
const CA_AND_KEY_STORE: [&str; 4] = ["issuer-ca.key.pem", "wit-key.pem", "keystore-key.pem", "keystore-wrap-key.pem"];
const LOG_ONLY: [&str; 3] = ["log-key.pem", "binding-key.pem", "provenance.sqlite"];

/// Each state holds its own roles' key files, none of another's.
fn each_holds_only_its_keys(states: &[(&Path, &[&str])]) {
    let all: Vec<&str> = [&VERIFIER_ONLY[..], &CA_AND_KEY_STORE[..], &LOG_ONLY[..]].concat();
    for (state, own) in states {
        let held: Vec<&str> = all.iter().copied().filter(|f| state.join("issuer").join(f).exists()).collect();
        let mut expected = own.to_vec();
        expected.sort();
        let mut held_sorted = held.clone();
        held_sorted.sort();
        assert_eq!(held_sorted, expected, "the key files in {}", state.display());
    }
    let checkpoint_keys = |state: &Path| {
        std::fs::read_dir(state.join("issuer"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains("checkpoint"))
            .count()
    };
    for (state, own) in states {
        let holds = checkpoint_keys(state) > 0;
        assert_eq!(holds, own.contains(&"log-key.pem"), "only the log holds a checkpoint key: {}", state.display());
    }
}

/// The log's sign, append and binding endpoints: 403 without a role certificate; 400 for a
/// malformed record or a statement this log did not sign.
fn log_endpoints_refuse(log_url: &str, roles: &twi_testkit::tools::OperatorPki) {
    use twi_issuer::http::{LogPeer, PeerError};
    use twi_issuer::log_peer::{AppendRequest, SignRequest};
    let anchor = Some(roles.ca.clone());
    let anyone = RemoteIssuer::new(log_url, &ClientTls { ca: anchor.clone(), client: None }).unwrap();
    let role = ClientTls { ca: anchor, client: Some((roles.client_cert.clone(), roles.client_key.clone())) };
    let role = RemoteIssuer::new(log_url, &role).unwrap();
    let record = twi_issuer::provenance::ProvenanceRecord {
        workload_id: "spiffe://example.org/payroll-app".into(),
        credential_kind: "x509".into(),
        credential_id: "0a1b".into(),
        evidence_sha384: "00".repeat(48),
        decision: twi_issuer::provenance::VerifierDecision {
            status: "affirming".into(),
            verifier: "test".into(),
            criteria: Default::default(),
        },
        policy_version: "replicas-1".into(),
        issued_at: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
    };
    match anyone.sign(&SignRequest { records: vec![record.clone()] }) {
        Err(PeerError::Refused { status: 403, reason }) => assert!(reason.contains("client certificate"), "{reason}"),
        other => panic!("the log signed for a caller without a role certificate: {other:?}"),
    }
    match anyone.append(&AppendRequest { statements: vec!["00".into()], binding: None }) {
        Err(PeerError::Refused { status: 403, .. }) => {}
        other => panic!("the log appended for a caller without a role certificate: {other:?}"),
    }
    // The private binding table: to a role only; 404 for a credential the log has no record of.
    let asked = twi_issuer::log_peer::BindingRequest { credential_id: "0a1b".into() };
    match anyone.binding(&asked) {
        Err(PeerError::Refused { status: 403, .. }) => {}
        other => panic!("the log answered a binding to a caller without a role certificate: {other:?}"),
    }
    assert!(role.binding(&asked).unwrap().is_none(), "an unlogged credential has no binding");
    let signed = role.sign(&SignRequest { records: vec![record.clone()] }).unwrap();
    assert_eq!(signed.statements.len(), 1, "a well-formed record is signed");
    let malformed = [
        twi_issuer::provenance::ProvenanceRecord { credential_kind: "jwt".into(), ..record.clone() },
        twi_issuer::provenance::ProvenanceRecord { workload_id: "spiffe://other.org/x".into(), ..record.clone() },
        twi_issuer::provenance::ProvenanceRecord { issued_at: 1, ..record.clone() },
    ];
    for bad in malformed {
        match role.sign(&SignRequest { records: vec![bad.clone()] }) {
            Err(PeerError::Refused { status: 400, .. }) => {}
            other => panic!("the log signed a malformed record {bad:?}: {other:?}"),
        }
    }
    // A statement under another key than the log's: re-signed by a key of the test's.
    let other_key = SigningKey::try_generate().unwrap();
    let forged =
        twi_issuer::provenance::SignedStatement::sign(record, "spiffe://example.org/twi-issuer", &other_key, "twi-log")
            .unwrap();
    let forged = hex::encode(forged.to_leaf().unwrap());
    for statements in [vec![forged], vec!["not hex".to_string()]] {
        match role.append(&AppendRequest { statements, binding: None }) {
            Err(PeerError::Refused { status: 400, .. }) => {}
            other => panic!("the log appended a statement it did not sign: {other:?}"),
        }
    }
}

/// A CA process serving neither the log nor --log-url, and a Key Store without the CA or
/// --ca-url, are refused at the start with what is missing; they make no keys.
fn refuses_a_split_it_cannot_serve(dir: &Path, policy: &Path) {
    let fresh = dir.join("fresh");
    let serve = |more: &[&str]| {
        let out = TWI.run(&[&["serve", "--state", path(&fresh), "--policy", path(policy)], more].concat());
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let said = serve(&["--roles", "ca"]);
    assert!(said.contains("--log-url"), "{said}");
    let said = serve(&["--roles", "key-store"]);
    assert!(said.contains("key-store") && said.contains("--ca-url"), "{said}");
    assert!(!fresh.join("issuer").exists(), "a refused process made no keys");
}

/// Mechanism-C issuances per second at `at`: `clients` threads, `each` issuances apiece, every
/// one of them logged. The evidence is made (and its nonces fetched, at most 5 a second from one
/// client address) before the clock starts: what is timed is the credential requests alone.
fn issuance_rate(chip: &Path, at: &RemoteIssuer, rp_id: &str, clients: usize, each: usize) -> f64 {
    let attested: Vec<Vec<Attested>> = (0..clients)
        .map(|_| (0..each).map(|_| Attested::new(chip, MEASUREMENT, at, rp_id).unwrap()).collect())
        .collect();
    let start = Instant::now();
    let logged: usize = std::thread::scope(|s| {
        let workers: Vec<_> = attested
            .iter()
            .map(|launches| {
                s.spawn(move || {
                    let issued = launches.iter().map(|a| at.issue(&a.evidence(), Some(Mechanism::C)).unwrap());
                    issued.map(|obtained| logged(&obtained).1.len()).sum::<usize>()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    let rate = (clients * each) as f64 / start.elapsed().as_secs_f64();
    assert_eq!(logged, 2 * clients * each, "each issuance logs its X.509 and WIT records");
    rate
}

/// A measurement, run by hand (`cargo test -p twi-host-loader --test replicas -- --ignored
/// issuance_rate_with --nocapture`; the debug build): mechanism-C issuances per second with
/// one client and with several, at one process serving every role (its log embedded) and at a
/// process serving the Verifier, the CA and the Key Store whose log is a log process
/// (`--log-url`). The issuer serves requests concurrently (no issuer-wide lock: appraisal, the
/// CA's signatures and the calls to a log process run side by side; only a nonce's spending
/// and the log's append are taken in turn), so several clients get more than one where cores
/// are free; the log process adds its calls' time to each.
#[test]
#[ignore = "a measurement: run by hand with --nocapture"]
fn issuance_rate_with_an_embedded_and_a_remote_log() {
    let dir = tempfile::tempdir().unwrap();
    let split = SplitRoles::new(dir.path(), None);
    let [ca_state, _, log_state, _] = &split.states;
    let (chips, role, tls) = (&split.chips, split.role(), split.tls());
    let chip = chips.join("sim-snp");
    let all_state = dir.path().join("all");
    let issuer_ca = ca_state.join("issuer/issuer-ca.pem");
    let all = split.serve(&all_state, "verifier,ca,key-store,log", &["--simulated-tee", path(chips)]);
    let log = split.serve(log_state, "log", &[&["--issuer-ca", path(&issuer_ca)][..], &tls[2][..]].concat());
    let to_log = ["--log-url", log.url.as_str(), "--simulated-tee", path(chips)];
    let ca = split.serve(ca_state, "verifier,ca,key-store", &[&role[..], &to_log[..]].concat());
    for (name, served, anchor) in
        [("embedded log", &all, all_state.join("issuer/issuer-ca.pem")), ("log process", &ca, issuer_ca.clone())]
    {
        print_issuance_rates(name, &chip, &served.url, anchor);
        std::thread::sleep(Duration::from_secs(4));
    }
}

/// Prints the mechanism-C issuance rate at the issuer at `url` (its CA `anchor`) with one client
/// and with several, after a warm-up.
fn print_issuance_rates(name: &str, chip: &Path, url: &str, anchor: PathBuf) {
    const CONCURRENT: usize = 8;
    let at = RemoteIssuer::new(url, &ClientTls { ca: Some(anchor), client: None }).unwrap();
    let rp_id = at.ca_certificate().unwrap().1.tbs_certificate().subject().to_string();
    issuance_rate(chip, &at, &rp_id, 1, 2); // warm up
    std::thread::sleep(Duration::from_secs(4)); // the challenge bucket refills
    let one = issuance_rate(chip, &at, &rp_id, 1, 8);
    let many = issuance_rate(chip, &at, &rp_id, CONCURRENT, 4);
    println!("{name}: {one:.1} issuances/s with one client, {many:.1}/s with {CONCURRENT}");
}

/// A measurement, run by hand (`cargo test -p twi-host-loader --test replicas -- --ignored
/// issuance_rate_on --nocapture`; the debug build): mechanism-C issuances per second with one
/// client and with several at one process serving every role whose state is in PostgreSQL
/// (`--database`: the log, nonces and results, as replicas keep them), through the process's
/// pool of `twi_issuer::database::CONNECTIONS` connections.
#[test]
#[ignore = "a measurement: run by hand with --nocapture"]
fn issuance_rate_on_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start();
    let (state, chips, policy) = layout(dir.path());
    let url = cluster.url();
    let args =
        ["--state", path(&state), "--policy", path(&policy), "--simulated-tee", path(&chips), "--database", &url];
    let served = Served::start(TWI, &args);
    print_issuance_rates("database", &chips.join("sim-snp"), &served.url, state.join("issuer/issuer-ca.pem"));
}
