//! The runtime's session against the host loader's real bridge, without QEMU: every byte the
//! guest code writes goes through `twi_host_loader::bridge::Bridge::feed`, and what the bridge
//! answers is the guest's next input. Behind the bridge: the real embedded issuer with the
//! development policy `twi run` writes, and a launch on the simulated PSP. The same code runs
//! in the image (`twi run --platform sim`); here a failure points at the guest's session or
//! the bridge, not at QEMU.
//!
//! Mechanisms A, B and C end with a credential for the vault's key that the bridge saw the
//! guest accept; the bridge's tampering decorators (`twi run --tamper`) each end the session
//! with the refusal a hostile host earns. The scripted hostile host (malformed frames, forged
//! firmware answers) is `runtime_session.rs`: an honest bridge never sends those bytes.

use std::cell::RefCell;
use std::collections::VecDeque;

use der::Decode;
use twi_attester::snp::secrets::VMPCK_OFFSETS;
use twi_host_loader::bridge::firmware::SimSnp;
use twi_host_loader::bridge::tamper::{Tamper, TamperedFirmware, TamperedRoles};
use twi_host_loader::bridge::{Bridge, Config, Event};
use twi_host_loader::policy_file::{Measured, development_policy};
use twi_host_loader::sim::snp::SimPsp;
use twi_issuer::policy::Mechanism;
use twi_issuer::{Issuer, IssuerConfig};
use twi_proto::msg::{CredentialKind, ErrorCode, Platform};
use twi_runtime::channel::{Channel, ChannelError, Link};
use twi_runtime::pairwise::TestedKey;
use twi_runtime::session::{self, Acquisition, Outcome, SessionError, Trust};
use twi_runtime::tee::sim::SimSnpDoorbell;
use twi_runtime::tee::snp::{SnpGuest, SnpTee};
use twi_runtime::vault::Vault;
use twi_testkit::TestRng;

/// What the simulated chip measured of this launch; the development policy admits it.
const DIGEST: [u8; 48] = [0x5A; 48];
const TARGET: &str = "twi:bridge-test";
const KEY_SEED: u64 = 0xB21D_6E00_0000_0001;

/// The guest's end of the channel: bytes the guest wrote reach the bridge when the guest waits
/// for an answer; the bridge's replies are what the guest reads.
struct BridgeLink<'a> {
    bridge: Bridge<'a>,
    from_guest: Vec<u8>,
    to_guest: VecDeque<u8>,
    /// The bridge's progress lines, in order.
    progress: Vec<String>,
    /// Why the bridge stopped, if it failed.
    failed: Option<String>,
}

impl Link for &mut BridgeLink<'_> {
    fn write_all(&mut self, bytes: &[u8]) {
        self.from_guest.extend_from_slice(bytes);
    }

    fn read_byte(&mut self) -> Option<u8> {
        if self.to_guest.is_empty() && self.failed.is_none() {
            let bytes = std::mem::take(&mut self.from_guest);
            match self.bridge.feed(&bytes) {
                Ok((reply, events)) => {
                    self.to_guest.extend(reply);
                    self.progress.extend(events.into_iter().filter_map(|e| match e {
                        Event::Progress(line) => Some(line),
                        _ => None,
                    }));
                }
                Err(e) => self.failed = Some(e.to_string()),
            }
        }
        // Nothing more from the host: it hung up.
        self.to_guest.pop_front()
    }
}

/// The host: a simulated chip and an issuer whose development policy admits [`DIGEST`] under
/// `mechanism`.
struct Host {
    _dir: tempfile::TempDir,
    psp: SimPsp,
    issuer: Issuer,
}

impl Host {
    fn new(mechanism: Mechanism) -> Self {
        Self::with_policy(mechanism, "")
    }

    /// [`Host::new`] whose workload's policy ends with `extra` (TOML under its `[[workload]]`).
    fn with_policy(mechanism: Mechanism, extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut psp = SimPsp::load_or_create(&dir.path().join("sim-snp")).unwrap();
        psp.set_launch_digest(DIGEST);
        let config = IssuerConfig { trust_domain: "example.org".into(), sim_snp_root: Some(psp.root().clone()) };
        let measured = Measured { snp: &DIGEST, mrtd: None, sbom: None, other_host_profiles: &[] };
        let (text, _) = development_policy("example.org", "demo", measured, false, mechanism).unwrap();
        let policy = twi_issuer::policy::Policy::from_toml(&format!("{text}{extra}")).unwrap();
        let issuer = Issuer::open(&dir.path().join("issuer"), config, policy).unwrap();
        Self { _dir: dir, psp, issuer }
    }
}

/// What one session through the bridge left behind.
struct Run {
    result: Result<Outcome, SessionError>,
    vault: Vault,
    key: twi_runtime::vault::KeyId,
    accepted: bool,
    issued_certificate: Option<Vec<u8>>,
    progress: Vec<String>,
    bridge_failure: Option<String>,
}

/// One launch: the runtime's session for a fresh vault key through a bridge to `host`, which
/// picks `mechanism` and applies `tamper` (if any) as `twi run --tamper` does.
fn run(host: &mut Host, mechanism: Mechanism, tamper: Option<Tamper>) -> Run {
    run_hinted(host, mechanism, tamper, None)
}

/// [`run`] whose workload Initiates with `hint`.
fn run_hinted(host: &mut Host, mechanism: Mechanism, tamper: Option<Tamper>, hint: Option<&str>) -> Run {
    let launch = host.psp.launch().unwrap();
    let mut snp = SnpGuest::from_secrets_page(&launch.secrets_page()).expect("the launch planted VMPCK0");
    assert!(launch.secrets_page()[VMPCK_OFFSETS[0]..VMPCK_OFFSETS[0] + 32].iter().any(|&b| b != 0));
    let (anchor, rp_id) = (host.issuer.ca().unwrap().public_key_sec1(), host.issuer.rp_id());
    let config = Config { measurement: DIGEST.to_vec(), mechanism: Some(mechanism), renew: None };
    let firmware = SimSnp { psp: &host.psp, launch };
    let bridge = match tamper {
        Some(t) => Bridge::new(config, TamperedRoles::new(&mut host.issuer, t), TamperedFirmware::new(firmware, t)),
        None => Bridge::new(config, &mut host.issuer, firmware),
    };
    let mut link =
        BridgeLink { bridge, from_guest: Vec::new(), to_guest: VecDeque::new(), progress: Vec::new(), failed: None };
    let vault = Vault::new();
    let (key, _) = vault.generate(&mut TestRng(KEY_SEED)).expect("key generation");
    let key = TestedKey::test(&vault, key).expect("the pairwise consistency test");
    let malformed = RefCell::new(Vec::new());
    let result = {
        let on_malformed = |e: &twi_proto::ProtoError| malformed.borrow_mut().push(format!("{e:?}"));
        let channel = Channel::new(&mut link, &on_malformed);
        let mut tee = SnpTee::new(&mut snp, SimSnpDoorbell::new(&channel), Platform::SimSnp);
        let mut events = |_: session::Event<'_>| {};
        let mut session = session::Session {
            channel: &channel,
            vault: &vault,
            trust: Trust { issuer_anchor: &anchor, rp_id: &rp_id, epoch_marker: None },
            runtime_name: "twi-runtime/bridge-test",
            events: &mut events,
        };
        let request = Acquisition { target: TARGET, credential_type: CredentialKind::X509, hint };
        session.run(&mut tee, &mut TestRng(KEY_SEED + 1), &[], &key, &request)
    };
    // What the guest said last (its Done or Error) reaches the bridge too.
    let rest = std::mem::take(&mut link.from_guest);
    if let Err(e) = link.bridge.feed(&rest) {
        link.failed.get_or_insert(e.to_string());
    }
    assert!(malformed.into_inner().is_empty(), "the bridge sent a malformed frame");
    let outcome = link.bridge.outcome();
    let (accepted, issued_certificate) = (outcome.accepted, outcome.issued.as_ref().map(|o| o.certificate_der.clone()));
    Run {
        result,
        vault,
        key: key.key(),
        accepted,
        issued_certificate,
        progress: link.progress,
        bridge_failure: link.failed,
    }
}

/// The SEC1 public key a DER certificate certifies.
fn certified_key(der: &[u8]) -> Vec<u8> {
    let certificate = x509_cert::Certificate::from_der(der).expect("a certificate");
    certificate.tbs_certificate().subject_public_key_info().subject_public_key.raw_bytes().to_vec()
}

#[test]
fn mechanisms_a_b_and_c_end_with_a_credential_for_the_vault_key_the_bridge_saw_accepted() {
    for mechanism in [Mechanism::A, Mechanism::B, Mechanism::C] {
        let mut host = Host::new(mechanism);
        let run = run(&mut host, mechanism, None);
        let outcome = run.result.unwrap_or_else(|e| panic!("{mechanism:?}: {e}; bridge: {:?}", run.progress));
        assert_eq!(outcome.key, run.key, "{mechanism:?}");
        assert_eq!(outcome.workload_id, "spiffe://example.org/demo");
        let vault_key = run.vault.public_key(run.key).unwrap().to_vec();
        assert_eq!(certified_key(&outcome.certificate), vault_key, "{mechanism:?}: the certificate names another key");
        assert_eq!(run.issued_certificate.as_deref(), Some(&outcome.certificate[..]), "{mechanism:?}");
        assert!(run.accepted, "{mechanism:?}: the bridge did not see the guest accept; {:?}", run.progress);
        assert!(!outcome.sealed_credential.is_empty(), "{mechanism:?}: nothing sealed");
        assert_eq!(run.bridge_failure, None, "{mechanism:?}");
    }
}

#[test]
fn every_tampering_the_bridge_can_do_ends_without_an_accepted_credential() {
    // Each with the reason the guest learns (from the issuer through the host, or its own).
    let tampers = [
        (Tamper::EvidenceByte(0x50), "the report's signature does not verify"),
        (Tamper::Nonce, "REPORTDATA is not the TACRA binding"),
        (Tamper::FirmwareAnswerByte(0x40), "guest message authentication failed"),
        (Tamper::CertificateTableByte(0xA0), "the endorsement chain does not hold"),
    ];
    for (tamper, reason) in tampers {
        let mut host = Host::new(Mechanism::C);
        let run = run(&mut host, Mechanism::C, Some(tamper));
        let Err(e) = &run.result else { panic!("{tamper:?}: the guest accepted a credential; {:?}", run.progress) };
        assert!(e.to_string().contains(reason), "{tamper:?}: {e}");
        assert!(!run.accepted, "{tamper:?}: the bridge recorded an acceptance");
    }
}

#[test]
fn a_hint_the_target_lists_is_honoured_and_any_other_is_refused_before_evidence() {
    let target = format!("\n[[workload.target]]\nname = \"{TARGET}\"\nhints = [\"rotate\"]\n");
    let mut host = Host::with_policy(Mechanism::C, &target);
    let honoured = run_hinted(&mut host, Mechanism::C, None, Some("rotate"));
    let outcome = honoured.result.unwrap_or_else(|e| panic!("{e}; bridge: {:?}", honoured.progress));
    assert!(honoured.accepted && outcome.workload_id == "spiffe://example.org/demo");

    let refused = run_hinted(&mut host, Mechanism::C, None, Some("rotate-all-keys"));
    let Err(SessionError::Channel(ChannelError::HostError(code, text))) = &refused.result else {
        panic!("an unlisted hint was not refused with the host's error: {:?}", refused.result.map(|o| o.workload_id))
    };
    assert_eq!(*code, ErrorCode::RejectedHint, "{text}");
    assert!(text.contains("the hint \"rotate-all-keys\", which the policy does not honour"), "{text}");
    assert!(!refused.accepted && refused.issued_certificate.is_none());
    assert!(
        !refused.progress.iter().any(|l| l.contains("evidence received")),
        "evidence after a refused hint: {:?}",
        refused.progress
    );
}
