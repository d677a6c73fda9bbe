//! Issue 14: the issuer serves requests side by side. A Credential Authority whose provenance
//! log is another process (`twi serve --log-url`) makes two issuances at once, and the log
//! sees both inside its `sign` call together: no issuer-wide lock is held across the remote
//! call (with one, the second issuance could not reach the log until the first returned, and
//! the meeting below would time out).

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use p384::ecdsa::SigningKey;
use twi_attester::snp::msg::{ReportRequest, ReportResponse};
use twi_issuer::http::{LogPeer, PeerError};
use twi_issuer::log_peer::{AppendRequest, BindingAnswer, BindingRequest, SignRequest, SignResponse};
use twi_issuer::{
    CaKeys, CredentialRequest, Evidence, EvidenceBundle, HeldKeys, Issued, Issuer, IssuerCa, IssuerConfig,
    KeyStoreKeys, LogKeys, Rejection, VerifierKeys,
};
use twi_proto::msg::{CredentialKind, Platform};
use twi_sim::snp::SimPsp;

mod support;
use support::http::{MEASUREMENT, TARGET, policy, workload_key};

/// How long an issuance inside the log waits for the other one to arrive.
const MEETING: Duration = Duration::from_secs(20);

/// The log process as the Credential Authority calls it: the log-role issuer here, answering
/// what `twi serve --roles log` answers; each `sign` waits until `together` calls are inside it.
struct MeetingLog {
    log: Issuer,
    together: usize,
    inside: Mutex<usize>,
    arrived: Condvar,
}

impl MeetingLog {
    /// Waits, up to [`MEETING`], until `together` signing calls are inside; whether they were.
    fn meet(&self) -> bool {
        let mut inside = self.inside.lock().unwrap();
        *inside += 1;
        self.arrived.notify_all();
        let (inside, waited) = self.arrived.wait_timeout_while(inside, MEETING, |n| *n < self.together).unwrap();
        drop(inside);
        !waited.timed_out()
    }
}

impl LogPeer for MeetingLog {
    fn url(&self) -> &str {
        "https://log.test"
    }

    fn sign(&self, request: &SignRequest) -> Result<SignResponse, PeerError> {
        if !self.meet() {
            return Err(PeerError::Unavailable(format!("{} issuances never were in the log together", self.together)));
        }
        let signed = self.log.log_sign_for_ca(request.records.clone()).map_err(unavailable)?;
        signed.map_err(|reason| PeerError::Refused { status: 400, reason })
    }

    fn append(&self, request: &AppendRequest) -> Result<serde_json::Value, PeerError> {
        let appended =
            self.log.log_append_for_ca(&request.statements, request.binding.as_ref()).map_err(unavailable)?;
        appended.map_err(|reason| PeerError::Refused { status: 400, reason })
    }

    fn proof(&self, id: &str) -> Result<Option<serde_json::Value>, PeerError> {
        self.log.log_proof(id).map_err(unavailable)
    }

    fn binding(&self, request: &BindingRequest) -> Result<Option<BindingAnswer>, PeerError> {
        self.log.log_binding_for_ca(&request.credential_id).map_err(unavailable)
    }
}

fn unavailable(error: twi_issuer::IssuerError) -> PeerError {
    PeerError::Unavailable(error.to_string())
}

/// A mechanism-C issuance at `issuer` for a fresh key, on a report from `psp`.
fn issue(issuer: &Issuer, psp: &SimPsp) -> Result<Issued, Rejection> {
    let nonce = issuer.initiate(Platform::SimSnp, &MEASUREMENT, TARGET, CredentialKind::X509, None)?.nonce;
    let (signing, public_key): (SigningKey, Vec<u8>) = workload_key();
    let (report_data, csr) = twi_testkit::tacra::enroll(&signing, &nonce, &issuer.rp_id(), TARGET);
    let response = psp.handle_report_request(&ReportRequest { report_data, vmpl: 0 }.to_bytes());
    let report = ReportResponse::parse(&response).unwrap().report.to_vec();
    let endorsements = psp.endorsements().unwrap();
    let bundle = EvidenceBundle {
        platform: Platform::SimSnp,
        evidence: &report,
        public_key: &public_key,
        nonce: &nonce,
        target: TARGET,
        csr: Some(&csr),
        endorsements: &endorsements,
    };
    let evidence = Evidence { bundle, events: &[] };
    issuer.ca_credential(CredentialRequest::Evidence { evidence, renewal_of: None })
}

/// A simulated SEV-SNP chip in `dir` launched with [`MEASUREMENT`], and an issuer
/// configuration that trusts it.
fn chip(dir: &std::path::Path) -> (SimPsp, IssuerConfig) {
    let mut psp = SimPsp::load_or_create(&dir.join("chip")).unwrap();
    psp.set_launch_digest(MEASUREMENT);
    let config = IssuerConfig { trust_domain: "example.org".into(), sim_snp_root: Some(psp.root().clone()) };
    (psp, config)
}

#[test]
fn two_issuances_are_inside_the_remote_log_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (psp, config) = chip(dir.path());
    let policy = || policy(&MEASUREMENT, "AF_L2", "c");
    // The log process: its own state, the log's keys only.
    let ca_state = dir.path().join("ca");
    let ca_certificate = IssuerCa::load_or_create(&ca_state, "example.org").unwrap().certificate().clone();
    let log_keys = HeldKeys {
        verifier: VerifierKeys::Unknown,
        ca: CaKeys::Public(Box::new(ca_certificate)),
        key_store: KeyStoreKeys::NotHeld,
        log: LogKeys::Held,
    };
    let log = Issuer::open_holding(&dir.path().join("log"), config.clone(), policy(), None, log_keys).unwrap();
    let log = Arc::new(MeetingLog { log, together: 2, inside: Mutex::new(0), arrived: Condvar::new() });
    // The Verifier and the Credential Authority, calling that log.
    let keys = HeldKeys { log: LogKeys::Peer(log.clone()), ..HeldKeys::default() };
    let issuer = Issuer::open_holding(&ca_state, config, policy(), None, keys).unwrap();

    let issued: Vec<Result<Issued, Rejection>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2).map(|_| s.spawn(|| issue(&issuer, &psp))).collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let serials: Vec<String> = issued.into_iter().map(|i| i.unwrap().serial_hex).collect();
    assert_ne!(serials[0], serials[1], "two issuances, two credentials");
    for serial in &serials {
        assert!(log.log.log_proof(serial).unwrap().is_some(), "the log holds credential {serial}");
    }
}

/// Issue 14: issuances appending at once are committed together (group commit): one
/// transaction, one signed tree head and one receipt signature for the batch. Sixteen at once
/// on the embedded log: every one delivered with its own records, fewer tree heads than
/// issuances, each record's receipt valid under the log key, and the whole log audits.
#[test]
fn issuances_at_once_share_a_tree_head_and_the_log_audits() {
    let dir = tempfile::tempdir().unwrap();
    let (psp, config) = chip(dir.path());
    let state = dir.path().join("issuer");
    let issuer = Issuer::open(&state, config, policy(&MEASUREMENT, "AF_L2", "c")).unwrap();
    let issued: Vec<Issued> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..16).map(|_| s.spawn(|| issue(&issuer, &psp))).collect();
        workers.into_iter().map(|w| w.join().unwrap().unwrap()).collect()
    });
    let log_key = twi_issuer::provenance::audit::state_log_key(&state).unwrap();
    let mut heads = std::collections::BTreeSet::new();
    for one in &issued {
        let provenance = &one.provenance;
        heads.insert(provenance["tree_head"]["size"].as_u64().unwrap());
        let records = provenance["records"].as_array().unwrap();
        let ids: Vec<&str> = records.iter().map(|r| r["credential_id"].as_str().unwrap()).collect();
        assert_eq!(ids, [one.serial_hex.as_str(), one.wit_jti.as_str()], "its own records, in order");
        for record in records {
            let leaf = hex::decode(record["statement"].as_str().unwrap()).unwrap();
            let receipt = hex::decode(record["receipt"].as_str().unwrap()).unwrap();
            let proved = twi_issuer::provenance::receipt::verify(&receipt, &leaf, &log_key).unwrap();
            assert_eq!(proved.size, provenance["tree_head"]["size"].as_u64().unwrap());
        }
    }
    let audited = twi_issuer::provenance::audit::audit(&state.join("provenance.sqlite"), &log_key, |_, _| {}).unwrap();
    assert_eq!(audited.records, 32, "16 issuances, 2 records each");
    assert!(audited.heads < 16, "{} signed tree heads for 16 issuances at once: none shared", audited.heads);
    assert_eq!(heads.len() as u64, audited.heads, "each head the issuances got is the log's");
}
