//! Issuer replicas on PostgreSQL (issue 14 item 6), as an operator runs them: a throwaway
//! cluster (Debian's server on loopback, started by the test kit), three `twi serve` processes
//! (TLS, as by default) on one state directory and one database, and workloads of a simulated
//! SEV-SNP chip issuing concurrently through all of them by mechanism C, each taking its nonce
//! from one replica and its credential from the next. Then `twi log audit --database` accepts
//! the one log they wrote, its leaf indices are 0..n-1 without a gap, and every credential a
//! client received has its record there.

use std::path::{Path, PathBuf};

use p384::ecdsa::SigningKey;
use p384::elliptic_curve::Generate;
use twi_attester::snp::msg::{ReportRequest, ReportResponse};
use twi_host_loader::remote::{ClientTls, RemoteIssuer};
use twi_host_loader::sim::snp::SimPsp;
use twi_issuer::policy::Mechanism;
use twi_issuer::{Evidence, EvidenceBundle};
use twi_proto::msg::{CredentialKind, Initiate, Platform};
use twi_testkit::postgres::Cluster;
use twi_testkit::scenario::{Served, Twi};
use twi_testkit::tacra::{TARGET, enroll};

const TWI: Twi = Twi(env!("CARGO_BIN_EXE_twi"));
const MEASUREMENT: [u8; 48] = [0x5A; 48];
const REPLICAS: usize = 3;
const CLIENTS: usize = 4;
const ISSUANCES: usize = 3;

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn write_policy(dir: &Path) -> PathBuf {
    let policy = dir.join("policy.toml");
    let text = format!(
        "version = \"replicas-1\"\ntrust_domain = \"example.org\"\n\n[[workload]]\nid = \"payroll-app\"\n\
         mechanism = \"c\"\nfreshness = \"AF_L2\"\nstickiness = \"CS_L1\"\n\n[[workload.reference]]\n\
         label = \"v1 (sim)\"\nplatform = \"sim-snp\"\nmeasurement = \"{}\"\n",
        hex::encode(MEASUREMENT)
    );
    std::fs::write(&policy, text).unwrap();
    policy
}

/// One workload's acquisition: the nonce from `initiate_at`, the credential from `issue_at`;
/// the X.509 serial and the logged ids (with their indices) the answer names.
fn acquire(
    chip: &Path,
    initiate_at: &RemoteIssuer,
    issue_at: &RemoteIssuer,
    rp_id: &str,
) -> (String, Vec<(String, u64)>) {
    let mut psp = SimPsp::load_or_create(chip).unwrap();
    psp.set_launch_digest(MEASUREMENT);
    let initiate = Initiate { target: TARGET.into(), credential_type: CredentialKind::X509, hint: None };
    let challenge = initiate_at.initiate(Platform::SimSnp, &MEASUREMENT, &initiate).unwrap();
    let key = SigningKey::try_generate().unwrap();
    let public = key.verifying_key().to_sec1_point(false).as_bytes().to_vec();
    let (report_data, csr) = enroll(&key, &challenge.nonce, rp_id, TARGET);
    let response = psp.handle_report_request(&ReportRequest { report_data, vmpl: 0 }.to_bytes());
    let report = ReportResponse::parse(&response).unwrap().report.to_vec();
    let endorsements = psp.endorsements().unwrap();
    let bundle = EvidenceBundle {
        platform: Platform::SimSnp,
        evidence: &report,
        public_key: &public,
        nonce: &challenge.nonce,
        target: TARGET,
        csr: Some(&csr),
        endorsements: &endorsements,
    };
    let evidence = Evidence { bundle, events: &[] };
    let obtained = issue_at.issue(&evidence, Some(Mechanism::C)).unwrap();
    // The nonce was spent at `issue_at`: the replica that issued it refuses it now.
    let replay = initiate_at.issue(&evidence, Some(Mechanism::C)).unwrap_err();
    assert!(replay.contains("already used"), "a replayed nonce: {replay}");
    let records = obtained.credential.provenance["records"].as_array().unwrap();
    let logged = records
        .iter()
        .map(|r| (r["credential_id"].as_str().unwrap().to_string(), r["index"].as_u64().unwrap()))
        .collect();
    (obtained.credential.serial, logged)
}

#[test]
fn replicas_on_one_database_issue_concurrently_into_one_log() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start();
    let (state, chips, policy) = (dir.path().join("state"), dir.path().join("chips"), write_policy(dir.path()));
    std::fs::create_dir_all(chips.join("sim-snp")).unwrap();
    SimPsp::load_or_create(&chips.join("sim-snp")).unwrap();
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
                        .map(|i| acquire(&chip, &client(c + i), &client(c + i + 1), rp_id))
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
