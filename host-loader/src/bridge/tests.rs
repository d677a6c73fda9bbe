//! The bridge driven without QEMU: the tests play an honest guest (its key, its sealed
//! MSG_REPORT_REQ under the VMPCK0 the simulated PSP planted, its evidence) against the real
//! embedded issuer and the simulated PSP, then make the guest, the issuer's link or the
//! firmware misbehave one way at a time.

use p384::elliptic_curve::Generate;
use twi_attester::snp::certs::CertTable;
use twi_attester::snp::guest_msg::{MAX_MESSAGE, Requester, Vmpck, msg_type};
use twi_attester::snp::msg::{ReportRequest, ReportResponse};
use twi_attester::snp::secrets::VMPCK_OFFSETS;
use twi_issuer::{Issuer, IssuerConfig};
use twi_proto::msg::{
    CAP_MECHANISM_C, CAP_SIM_DOORBELL, CredentialKind, Done, DoorbellKind, DoorbellRequest, ErrorCode, Evidence,
    Freshness, Hello, Initiate, Message, PROTOCOL_VERSION, Platform,
};
use twi_sim::snp::SimPsp;

use super::firmware::SimSnp;
use super::tamper::{Tamper, TamperedFirmware, TamperedRoles};
use super::*;
use crate::policy_file::{Measured, development_policy};

const DIGEST: [u8; 48] = [7; 48];

/// The host's side: a simulated chip and an issuer whose development policy admits `DIGEST`.
struct Host {
    _dir: tempfile::TempDir,
    psp: SimPsp,
    issuer: Issuer,
}

impl Host {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut psp = SimPsp::load_or_create(&dir.path().join("sim-snp")).unwrap();
        psp.set_launch_digest(DIGEST);
        let config = IssuerConfig { trust_domain: "example.org".into(), sim_snp_root: Some(psp.root().clone()) };
        let (_, policy) = development_policy(
            "example.org",
            "demo",
            Measured { snp: &DIGEST, mrtd: None, sbom: None, other_host_profiles: &[] },
            false,
            Mechanism::C,
        )
        .unwrap();
        let issuer = Issuer::open(&dir.path().join("issuer"), config, policy).unwrap();
        Self { _dir: dir, psp, issuer }
    }

    /// A bridge for one launch, and the guest's side of that launch's guest-message channel.
    fn launch(&mut self, tamper: Option<Tamper>) -> (Bridge<'_>, Guest) {
        let launch = self.psp.launch().unwrap();
        let page = launch.secrets_page();
        let vmpck: [u8; 32] = page[VMPCK_OFFSETS[0]..VMPCK_OFFSETS[0] + 32].try_into().unwrap();
        let guest = Guest::new(vmpck, self.issuer.rp_id());
        let config = Config { measurement: DIGEST.to_vec(), mechanism: None, renew: None };
        let firmware = SimSnp { psp: &self.psp, launch };
        let bridge = match tamper {
            Some(t) => Bridge::new(config, TamperedRoles::new(&mut self.issuer, t), TamperedFirmware::new(firmware, t)),
            None => Bridge::new(config, &mut self.issuer, firmware),
        };
        (bridge, guest)
    }
}

/// An honest guest: its Credential Key and its end of the guest-message channel.
struct Guest {
    key: p384::ecdsa::SigningKey,
    requester: Requester,
    /// The issuer's identifier, as the measured manifest would carry it.
    rp_id: String,
}

/// The target the guest acquires for.
const TARGET: &str = "twi:test";

impl Guest {
    fn new(vmpck: [u8; 32], rp_id: String) -> Self {
        let key = p384::ecdsa::SigningKey::try_generate().unwrap();
        Self { key, requester: Requester::new(Vmpck::new(vmpck), 0), rp_id }
    }

    fn initiate() -> Message {
        Initiate { target: TARGET.into(), credential_type: CredentialKind::X509, hint: None }.into()
    }

    fn public_key(&self) -> Vec<u8> {
        self.key.verifying_key().to_sec1_point(false).as_bytes().to_vec()
    }

    fn hello(capabilities: u32) -> Message {
        Hello { version: PROTOCOL_VERSION, platform: Platform::SimSnp, capabilities, runtime: "bridge-test".into() }
            .into()
    }

    /// MSG_REPORT_REQ for TACRA's REPORTDATA (freshness `nonce`, an enrollment of the key),
    /// sealed for the PSP.
    fn report_request(&mut self, nonce: &[u8]) -> Message {
        let (report_data, _) = twi_testkit::tacra::enroll(&self.key, nonce, &self.rp_id, TARGET);
        let mut sealed = vec![0u8; MAX_MESSAGE];
        let payload = ReportRequest { report_data, vmpl: 0 }.to_bytes();
        let len = self.requester.seal_request(msg_type::REPORT_REQ, 1, &payload, &mut sealed).unwrap();
        sealed.truncate(len);
        DoorbellRequest { kind: DoorbellKind::SnpExtGuestRequest, request: sealed }.into()
    }

    /// The report and certificate table out of the PSP's answer.
    fn report(&mut self, answer: &Message) -> (Vec<u8>, Option<Vec<u8>>) {
        let Message::DoorbellResponse(answer) = answer else { panic!("expected a DoorbellResponse: {answer:?}") };
        assert_eq!(answer.status, 0);
        let mut plain = vec![0u8; MAX_MESSAGE];
        let len = self.requester.open_response(&answer.response, &mut plain).unwrap();
        (ReportResponse::parse(&plain[..len]).unwrap().report.to_vec(), answer.certificates.clone())
    }

    fn evidence(&self, report: Vec<u8>, nonce: &[u8], table: Table) -> Message {
        let (certificates, certificates_sha384) = match table {
            Table::None => (None, None),
            Table::Named(table) => (None, Some(CertTable::parse(&table).unwrap().sha384().to_vec())),
            Table::Forwarded(table) => (Some(table), None),
        };
        Evidence {
            platform: Platform::SimSnp,
            evidence: report,
            public_key: self.public_key(),
            nonce: nonce.to_vec(),
            event_log: None,
            certificates,
            target: TARGET.into(),
            csr: Some(twi_testkit::tacra::csr(&self.key)),
            certificates_sha384,
            evidence_sha384: None,
        }
        .into()
    }
}

/// What the guest's evidence says of the certificate table it got.
enum Table {
    /// Nothing (it got none).
    None,
    /// Its SHA-384, as the runtime names a table the loader delivered over the channel.
    Named(Vec<u8>),
    /// The table itself, as a runtime forwards one the hypervisor wrote (or an older runtime).
    Forwarded(Vec<u8>),
}

/// Hello (no answer), then Initiate: the one reply to it.
fn greet(bridge: &mut Bridge<'_>, capabilities: u32) -> Message {
    let step = bridge.receive(Guest::hello(capabilities)).unwrap();
    assert!(step.replies.is_empty(), "a Hello is not answered: {:?}", step.replies);
    reply(bridge, Guest::initiate())
}

/// The one reply to `message`.
fn reply(bridge: &mut Bridge<'_>, message: Message) -> Message {
    let step = bridge.receive(message).unwrap();
    assert_eq!(step.replies.len(), 1, "{:?}", step.replies);
    step.replies.into_iter().next().unwrap()
}

fn nonce_of(message: &Message) -> Vec<u8> {
    let Message::Challenge(challenge) = message else { panic!("expected a Challenge: {message:?}") };
    challenge.nonce.clone()
}

fn error_of(message: &Message) -> (ErrorCode, String) {
    let Message::Error(e) = message else { panic!("expected an Error: {message:?}") };
    (e.code, e.message.clone())
}

/// Hello → Challenge → the PSP's report → Evidence naming the certificate table the guest got,
/// up to the reply to the evidence.
fn exchange(bridge: &mut Bridge<'_>, guest: &mut Guest) -> Message {
    exchange_with(bridge, guest, |table| Table::Named(table.expect("the PSP's certificate table")))
}

/// [`exchange`], with the evidence saying what `table` makes of the table the guest got.
fn exchange_with(bridge: &mut Bridge<'_>, guest: &mut Guest, table: impl FnOnce(Option<Vec<u8>>) -> Table) -> Message {
    exchange_steps(bridge, guest, table).replies.into_iter().next().unwrap()
}

fn exchange_steps(bridge: &mut Bridge<'_>, guest: &mut Guest, table: impl FnOnce(Option<Vec<u8>>) -> Table) -> Step {
    let nonce = nonce_of(&greet(bridge, CAP_SIM_DOORBELL | CAP_MECHANISM_C));
    let answer = reply(bridge, guest.report_request(&nonce));
    let (report, got) = guest.report(&answer);
    let step = bridge.receive(guest.evidence(report, &nonce, table(got))).unwrap();
    assert!(step.events.iter().any(|e| matches!(e, Event::Evidence(_))), "the evidence is kept");
    step
}

#[test]
fn an_honest_exchange_ends_with_the_credential_accepted() {
    let mut host = Host::new();
    let (mut bridge, mut guest) = host.launch(None);
    let credential = exchange(&mut bridge, &mut guest);
    let Message::Credential(credential) = credential else { panic!("expected a Credential: {credential:?}") };
    assert_eq!(credential.workload_id, "spiffe://example.org/demo");
    // The credential certifies the guest's key.
    let certificate = <x509_cert::Certificate as der::Decode>::from_der(&credential.certificate).unwrap();
    let spki = certificate.tbs_certificate().subject_public_key_info().subject_public_key.raw_bytes().to_vec();
    assert_eq!(spki, guest.public_key());
    assert!(bridge.outcome().failure.is_none() && !bridge.outcome().accepted);
    let step = bridge.receive(Done { credential_accepted: true }.into()).unwrap();
    assert!(step.replies.is_empty());
    let outcome = bridge.into_outcome();
    assert!(outcome.accepted && outcome.challenged && outcome.failure.is_none(), "{outcome:?}");
    assert_eq!(outcome.issued.unwrap().certificate_der, credential.certificate);
}

/// The same exchange as bytes on a wire, split anywhere: frames in, frames out.
#[test]
fn bytes_in_any_split_give_the_same_replies() {
    let mut host = Host::new();
    let (mut bridge, _) = host.launch(None);
    let mut wire = Vec::new();
    twi_proto::write_message(&Guest::hello(CAP_SIM_DOORBELL | CAP_MECHANISM_C), &mut wire).unwrap();
    twi_proto::write_message(&Guest::initiate(), &mut wire).unwrap();
    let (half, rest) = wire.split_at(wire.len() / 2);
    let (nothing, _) = bridge.feed(half).unwrap();
    assert!(nothing.is_empty(), "half a frame is not answered");
    let (frames, events) = bridge.feed(rest).unwrap();
    let mut reader = twi_proto::MessageReader::new();
    let replies: Vec<_> = frames.iter().filter_map(|&b| reader.push(b)).collect();
    assert!(matches!(replies.as_slice(), [Ok(Message::Challenge(_))]), "{replies:?}");
    assert!(events.iter().any(|e| matches!(e, Event::Progress(p) if p.starts_with("booted: bridge-test"))));
    // A corrupt frame is answered with Error(Malformed), and the bridge carries on.
    let (frames, _) = bridge.feed(&[0x05, 0x01, 0x02, 0x03, 0x04, 0x00]).unwrap();
    let replies: Vec<_> = frames.iter().filter_map(|&b| reader.push(b)).collect();
    assert!(matches!(replies.as_slice(), [Ok(Message::Error(e))] if e.code == ErrorCode::Malformed), "{replies:?}");
}

#[test]
fn hellos_the_bridge_cannot_serve_are_refused_with_the_reason() {
    let mut host = Host::new();
    let (mut bridge, _) = host.launch(None);
    let old = Hello { version: PROTOCOL_VERSION + 1, platform: Platform::SimSnp, capabilities: 0, runtime: "x".into() };
    let (code, text) = error_of(&reply(&mut bridge, old.into()));
    assert_eq!(code, ErrorCode::UnsupportedVersion);
    assert!(text.contains("is not supported"), "{text}");
    assert!(bridge.outcome().failure.as_deref().is_some_and(|f| f.starts_with("the guest speaks protocol version")));
    drop(bridge);

    let (mut bridge, _) = host.launch(None);
    let tdx = Hello {
        version: PROTOCOL_VERSION,
        platform: Platform::SimTdx,
        capabilities: CAP_MECHANISM_C,
        runtime: "x".into(),
    };
    let (_, text) = error_of(&reply(&mut bridge, tdx.into()));
    assert_eq!(text, "platform SimTdx cannot run under `--platform sim`");
    drop(bridge);

    let (mut bridge, _) = host.launch(None);
    let (_, text) = error_of(&greet(&mut bridge, CAP_SIM_DOORBELL));
    assert!(text.starts_with("the guest does not advertise credential acquisition mechanism c"), "{text}");
    assert!(!bridge.outcome().challenged);
}

#[test]
fn evidence_out_of_turn_or_over_another_nonce_is_refused() {
    let mut host = Host::new();
    let (mut bridge, guest) = host.launch(None);
    // Before any challenge.
    let early = guest.evidence(vec![0; 1184], &[1; 32], Table::None);
    let (code, text) = error_of(&reply(&mut bridge, early));
    assert_eq!((code, text.as_str()), (ErrorCode::UnexpectedMessage, "evidence before a Challenge"));
    assert_eq!(bridge.outcome().failure.as_deref(), Some("the guest sent evidence before a Challenge"));
    // Over another nonce than the challenge's, or for another target than the Initiate's.
    let nonce = nonce_of(&greet(&mut bridge, CAP_SIM_DOORBELL | CAP_MECHANISM_C));
    let (code, text) = error_of(&reply(&mut bridge, guest.evidence(vec![0; 1184], &[1; 32], Table::None)));
    assert_eq!((code, text.as_str()), (ErrorCode::VerificationFailed, "nonce echo mismatch"));
    let Message::Evidence(mut other) = guest.evidence(vec![0; 1184], &nonce, Table::None) else { unreachable!() };
    other.target = "https://elsewhere.example/".into();
    let (code, text) = error_of(&reply(&mut bridge, other.into()));
    assert_eq!((code, text.as_str()), (ErrorCode::VerificationFailed, "target mismatch"));
    // A CredentialRequest without an attestation result before it (mechanism B only).
    let request = twi_proto::msg::CredentialRequest { ear: "x".into(), public_key: guest.public_key(), proof: vec![1] };
    let (code, _) = error_of(&reply(&mut bridge, request.into()));
    assert_eq!(code, ErrorCode::UnexpectedMessage);
    // Host-to-guest messages are not the guest's to send.
    let (code, text) = error_of(&reply(
        &mut bridge,
        twi_proto::msg::Challenge { nonce: vec![0; 32], key_release: false, freshness: Freshness::PresentNonce }.into(),
    ));
    assert_eq!(code, ErrorCode::UnexpectedMessage);
    assert!(text.ends_with("is not a message a guest sends"), "{text}");
}

#[test]
fn a_guest_that_refuses_the_credential_fails_the_run() {
    let mut host = Host::new();
    let (mut bridge, mut guest) = host.launch(None);
    assert!(matches!(exchange(&mut bridge, &mut guest), Message::Credential(_)));
    bridge.receive(Done { credential_accepted: false }.into()).unwrap();
    let outcome = bridge.into_outcome();
    assert_eq!(outcome.failure.as_deref(), Some("the guest rejected the credential"));
    assert!(!outcome.accepted);
}

/// The hostile host's alterations are caught: the issuer refuses evidence altered on its way
/// and a nonce it never issued; the guest's channel refuses an altered firmware answer.
#[test]
fn tampering_decorators_are_caught() {
    let mut host = Host::new();
    let (mut bridge, mut guest) = host.launch(Some(Tamper::EvidenceByte(0x90)));
    let (code, text) = error_of(&exchange(&mut bridge, &mut guest));
    assert_eq!(code, ErrorCode::VerificationFailed);
    assert!(text.contains("the report's signature does not verify"), "{text}");
    let failure = bridge.into_outcome().failure.unwrap();
    assert!(failure.starts_with("the issuer rejected the evidence: SEV-SNP report rejected"), "{failure}");

    let (mut bridge, mut guest) = host.launch(Some(Tamper::Nonce));
    let (_, text) = error_of(&exchange(&mut bridge, &mut guest));
    assert!(text.contains("REPORTDATA is not the TACRA binding of this freshness element"), "{text}");
    drop(bridge);

    let (mut bridge, mut guest) = host.launch(Some(Tamper::FirmwareAnswerByte(0x70)));
    let nonce = nonce_of(&greet(&mut bridge, CAP_SIM_DOORBELL | CAP_MECHANISM_C));
    let answer = reply(&mut bridge, guest.report_request(&nonce));
    let Message::DoorbellResponse(answer) = answer else { panic!() };
    let mut plain = vec![0u8; MAX_MESSAGE];
    assert!(guest.requester.open_response(&answer.response, &mut plain).is_err(), "an altered answer must not open");
    drop(bridge);

    // Untampered, the same host still issues: the decorators changed nothing lasting.
    let (mut bridge, mut guest) = host.launch(None);
    assert!(matches!(exchange(&mut bridge, &mut guest), Message::Credential(_)));
}

/// While the guest boots, the issuer's Verifier checks the chain of the certificate table this
/// host will deliver: the evidence that comes with it is then appraised on the kept chain (the
/// report itself still verified), and a table altered on its way to the guest is still refused.
#[test]
fn the_delivered_tables_chain_is_checked_while_the_guest_boots() {
    let mut host = Host::new();
    let (mut bridge, mut guest) = host.launch(None);
    bridge.prepare();
    let step = exchange_steps(&mut bridge, &mut guest, |t| Table::Named(t.unwrap()));
    assert!(matches!(step.replies.as_slice(), [Message::Credential(_)]), "{:?}", step.replies);
    drop(bridge);
    assert_eq!(host.issuer.cached_chain_hits(), 1, "the evidence was appraised on the chain checked ahead");

    let mut host = Host::new();
    let (mut bridge, mut guest) = host.launch(None);
    assert!(matches!(exchange(&mut bridge, &mut guest), Message::Credential(_)));
    drop(bridge);
    assert_eq!(host.issuer.cached_chain_hits(), 0, "without it, the chain is verified at the evidence");

    let mut host = Host::new();
    let (mut bridge, mut guest) = host.launch(Some(Tamper::CertificateTableByte(0x200)));
    bridge.prepare();
    let (code, text) = error_of(&exchange(&mut bridge, &mut guest));
    assert_eq!(code, ErrorCode::VerificationFailed, "{text}");
    drop(bridge);
    assert_eq!(host.issuer.cached_chain_hits(), 0, "an altered table is not the chain checked ahead");
}

/// The timeline holds the acquisition's messages, not the workload's relayed traffic (a
/// time request here) nor its log lines.
#[test]
fn the_timeline_records_the_acquisition_not_the_relayed_traffic() {
    let mut host = Host::new();
    let (mut bridge, mut guest) = host.launch(None);
    assert!(matches!(reply(&mut bridge, Message::TimeRequest(twi_proto::msg::TimeRequest {})), Message::Time(_)));
    assert!(matches!(exchange(&mut bridge, &mut guest), Message::Credential(_)));
    let asked: Vec<&str> = bridge.outcome().timeline.exchanges().iter().map(|e| e.asked).collect();
    assert_eq!(asked, ["Hello", "Initiate", "DoorbellRequest", "Evidence"]);
}

/// The certificate table crosses the channel once: the guest names the one it got by digest and
/// the bridge presents the table it delivered; a guest that sends the table itself (an older
/// runtime, or one whose hypervisor wrote the table) still gets its credential; a guest that
/// sends none gets the host's copies.
#[test]
fn the_certificate_table_is_named_or_forwarded() {
    let mut host = Host::new();
    for (table, source) in [
        (
            (|t: Option<Vec<u8>>| Table::Named(t.unwrap())) as fn(Option<Vec<u8>>) -> Table,
            "endorsements: VCEK and ASK from the certificate table this host delivered (sha384:",
        ),
        (|t| Table::Forwarded(t.unwrap()), "endorsements: VCEK and ASK from the guest's certificate table"),
        (|_| Table::None, "endorsements: the guest forwarded no certificate table; using the host's VCEK and ASK"),
    ] {
        let (mut bridge, mut guest) = host.launch(None);
        let step = exchange_steps(&mut bridge, &mut guest, table);
        assert!(matches!(step.replies.as_slice(), [Message::Credential(_)]), "{:?}", step.replies);
        let progress: Vec<_> = step
            .events
            .iter()
            .filter_map(|e| if let Event::Progress(p) = e { Some(p.as_str()) } else { None })
            .collect();
        assert!(progress.iter().any(|p| p.starts_with(source)), "{progress:?}");
    }
}

/// A host that hands the guest one certificate table and would present another is refused by
/// the bridge, before the issuer sees anything: here the table is altered between the bridge
/// and the guest (the guest names what it got), and a guest names a table no doorbell answer
/// carried.
#[test]
fn a_certificate_table_other_than_the_delivered_one_is_refused() {
    let mut host = Host::new();
    let (mut bridge, mut guest) = host.launch(None);
    let swapped = |table: Option<Vec<u8>>| {
        let mut table = table.unwrap();
        table[0xA0] ^= 1;
        Table::Named(table)
    };
    let (code, text) = error_of(&exchange_with(&mut bridge, &mut guest, swapped));
    assert_eq!(
        (code, text.as_str()),
        (ErrorCode::VerificationFailed, "the evidence names a certificate table this host did not deliver")
    );
    let failure = bridge.into_outcome().failure.unwrap();
    assert!(failure.starts_with("the guest's evidence names certificate table sha384:"), "{failure}");
    assert!(failure.contains("which this host did not deliver (it delivered sha384:"), "{failure}");

    // No extended guest request, so nothing delivered: a named table cannot be presented.
    let table = host.psp.certificate_table().unwrap();
    let (mut bridge, guest) = host.launch(None);
    let nonce = nonce_of(&greet(&mut bridge, CAP_SIM_DOORBELL | CAP_MECHANISM_C));
    let (code, _) = error_of(&reply(&mut bridge, guest.evidence(vec![0; 1184], &nonce, Table::Named(table))));
    assert_eq!(code, ErrorCode::VerificationFailed);
    let failure = bridge.into_outcome().failure.unwrap();
    assert!(failure.contains("(it delivered none in this launch)"), "{failure}");
}

/// Real hardware has no simulated doorbell (`crate::hardware` answers every doorbell with
/// `NotSimulated`): a guest asking for one misbehaves, and the run fails saying so.
#[test]
fn a_hardware_guest_asking_for_the_simulated_doorbell_fails() {
    struct RealTd;
    impl Firmware for RealTd {
        fn platform(&self) -> Platform {
            Platform::Tdx
        }
        fn option(&self) -> &'static str {
            "tdx"
        }
        fn doorbell(&mut self, _: &DoorbellRequest) -> Result<twi_proto::msg::DoorbellResponse, FirmwareError> {
            Err(FirmwareError::NotSimulated)
        }
        fn endorsements(&mut self, _: &[u8]) -> Result<Endorsements, FirmwareError> {
            Err(FirmwareError::Unavailable("none".into()))
        }
        fn collateral(&mut self, _: &[u8]) -> Result<Option<twi_verifier::tdx::Collateral>, FirmwareError> {
            Ok(None)
        }
    }
    let mut host = Host::new();
    let mut bridge = Bridge::new(Config::default(), &mut host.issuer, RealTd);
    let request = DoorbellRequest { kind: DoorbellKind::TdxReport, request: vec![0; 64] };
    let (code, text) = error_of(&reply(&mut bridge, request.into()));
    assert_eq!(
        (code, text.as_str()),
        (ErrorCode::UnexpectedMessage, "a guest on real hardware asked for the simulated doorbell")
    );
    assert_eq!(
        bridge.outcome().failure.as_deref(),
        Some("the guest misbehaved: a guest on real hardware asked for the simulated doorbell")
    );
}

/// The simulated TD's MRTD the TDX host's policy admits.
const MRTD: [u8; 48] = [9; 48];

/// The host's side of `--platform sim-tdx`: a simulated TDX module and quoting enclave, and an
/// issuer that trusts its root and whose development policy admits `MRTD`.
struct TdHost {
    _dir: tempfile::TempDir,
    tdx: twi_sim::tdx::SimTdx,
    issuer: Issuer,
}

impl TdHost {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut tdx = twi_sim::tdx::SimTdx::load_or_create(&dir.path().join("sim-tdx")).unwrap();
        tdx.launch(MRTD);
        let config = IssuerConfig { trust_domain: "example.org".into(), sim_snp_root: None };
        let measured = Measured { snp: &DIGEST, mrtd: Some(&MRTD), sbom: None, other_host_profiles: &[] };
        let (_, policy) = development_policy("example.org", "demo", measured, false, Mechanism::C).unwrap();
        let mut issuer = Issuer::open(&dir.path().join("issuer"), config, policy).unwrap();
        issuer.accept_simulated_tdx(tdx.root(), tdx.collateral().unwrap()).unwrap();
        Self { _dir: dir, tdx, issuer }
    }

    fn launch(&mut self) -> Bridge<'_> {
        let config = Config { measurement: MRTD.to_vec(), mechanism: None, renew: None };
        Bridge::new(config, &mut self.issuer, super::firmware::SimTd { tdx: &mut self.tdx })
    }
}

/// What the TD's evidence says of the quote it got.
enum Quote {
    /// Its SHA-384, as the runtime names a quote the loader delivered (`--platform sim-tdx`).
    Named,
    /// The quote itself, as a runtime on hardware (or an older one) sends it.
    Forwarded,
    /// The SHA-384 of other bytes than the quote delivered.
    NamedOther(Vec<u8>),
}

/// A TD's Hello under the simulated TDX module (mechanism C).
fn td_hello() -> Message {
    let capabilities = CAP_SIM_DOORBELL | CAP_MECHANISM_C;
    Hello { version: PROTOCOL_VERSION, platform: Platform::SimTdx, capabilities, runtime: "bridge-test".into() }.into()
}

/// A TD's Evidence for `key` and `nonce`: the quote `evidence`, or its name `evidence_sha384`.
fn td_evidence(
    key: &p384::ecdsa::SigningKey,
    nonce: Vec<u8>,
    evidence: Vec<u8>,
    evidence_sha384: Option<Vec<u8>>,
) -> Message {
    Evidence {
        platform: Platform::SimTdx,
        evidence,
        public_key: key.verifying_key().to_sec1_point(false).as_bytes().to_vec(),
        nonce,
        event_log: Some(Vec::new()),
        certificates: None,
        target: TARGET.into(),
        csr: Some(twi_testkit::tacra::csr(key)),
        certificates_sha384: None,
        evidence_sha384,
    }
    .into()
}

/// An honest TD under the simulated TDX module: Hello, Initiate, TDG.MR.REPORT over TACRA's
/// REPORTDATA and GetQuote through the simulated doorbell, then the evidence as `quote` says;
/// the bridge's step on the evidence, and the quote it delivered.
fn td_exchange(bridge: &mut Bridge<'_>, rp_id: &str, quote: Quote) -> (Step, Vec<u8>) {
    use twi_attester::tdx::getquote;
    use twi_attester::tdx::td_report::TD_REPORT_SIZE;
    let key = p384::ecdsa::SigningKey::try_generate().unwrap();
    assert!(bridge.receive(td_hello()).unwrap().replies.is_empty());
    let nonce = nonce_of(&reply(bridge, Guest::initiate()));
    let (report_data, _) = twi_testkit::tacra::enroll(&key, &nonce, rp_id, TARGET);
    let doorbell =
        |bridge: &mut Bridge<'_>, kind, request: Vec<u8>| match reply(bridge, DoorbellRequest { kind, request }.into())
        {
            Message::DoorbellResponse(r) if r.status == 0 => r.response,
            other => panic!("{kind:?}: {other:?}"),
        };
    let td_report: [u8; TD_REPORT_SIZE] =
        doorbell(bridge, DoorbellKind::TdxReport, report_data.to_vec()).try_into().unwrap();
    let mut request = vec![0u8; getquote::HEADER_SIZE + TD_REPORT_SIZE];
    getquote::encode_request(&td_report, &mut request).unwrap();
    let answer = doorbell(bridge, DoorbellKind::TdxGetQuote, request);
    let delivered = getquote::parse_response(&answer).unwrap().to_vec();
    let sha384 = |bytes: &[u8]| Some(<sha2::Sha384 as sha2::Digest>::digest(bytes).to_vec());
    let (evidence, evidence_sha384) = match quote {
        Quote::Named => (Vec::new(), sha384(&delivered)),
        Quote::Forwarded => (delivered.clone(), None),
        Quote::NamedOther(other) => (Vec::new(), sha384(&other)),
    };
    (bridge.receive(td_evidence(&key, nonce, evidence, evidence_sha384)).unwrap(), delivered)
}

fn progress(step: &Step) -> Vec<&str> {
    step.events.iter().filter_map(|e| if let Event::Progress(p) = e { Some(p.as_str()) } else { None }).collect()
}

/// The TDX quote crosses the channel once: the TD names the quote it got by digest and the
/// bridge presents the quote it delivered (the issuer verifies it, so the credential comes);
/// the evidence kept for `evidence.bin` carries that quote and the name. A TD that sends the
/// quote itself (on hardware, or an older runtime) still gets its credential.
#[test]
fn the_tdx_quote_is_named_or_forwarded() {
    let mut host = TdHost::new();
    let rp_id = host.issuer.rp_id();
    let mut bridge = host.launch();
    let (step, delivered) = td_exchange(&mut bridge, &rp_id, Quote::Named);
    assert!(matches!(step.replies.as_slice(), [Message::Credential(_)]), "{:?} {:?}", step.replies, progress(&step));
    let name = hex::encode(<sha2::Sha384 as sha2::Digest>::digest(&delivered));
    let line = format!(
        "evidence received: the {}-byte quote this host delivered, named by the guest (sha384:{name}), SimTdx",
        delivered.len()
    );
    assert!(progress(&step).contains(&line.as_str()), "{:?}", progress(&step));
    let Some(Event::Evidence(kept)) = step.events.iter().find(|e| matches!(e, Event::Evidence(_))) else { panic!() };
    assert_eq!(kept.evidence, delivered, "the quote the host presented is the one it delivered");
    assert_eq!(kept.evidence_sha384.as_deref().map(hex::encode), Some(name));
    drop(bridge);

    let mut bridge = host.launch();
    let (step, delivered) = td_exchange(&mut bridge, &rp_id, Quote::Forwarded);
    assert!(matches!(step.replies.as_slice(), [Message::Credential(_)]), "{:?}", step.replies);
    let line = format!("evidence received: {}-byte report, SimTdx", delivered.len());
    assert!(progress(&step).contains(&line.as_str()), "{:?}", progress(&step));
}

/// A TD naming a quote this host never delivered is refused by the bridge before the issuer
/// sees anything: a name of other bytes than the quotes the launch delivered (as for a quote
/// altered on its way to the guest), and a name in a launch that delivered no quote at all.
#[test]
fn a_quote_other_than_the_delivered_one_is_refused() {
    let mut host = TdHost::new();
    let rp_id = host.issuer.rp_id();
    let mut bridge = host.launch();
    let (step, first) = td_exchange(&mut bridge, &rp_id, Quote::Named);
    assert!(matches!(step.replies.as_slice(), [Message::Credential(_)]));
    // A second acquisition in the same launch, naming other bytes than its quote.
    let (step, second) = td_exchange(&mut bridge, &rp_id, Quote::NamedOther(b"not a quote".to_vec()));
    let [refusal] = step.replies.as_slice() else { panic!("{:?}", step.replies) };
    assert_eq!(
        error_of(refusal),
        (ErrorCode::VerificationFailed, "the evidence names a quote this host did not deliver".into())
    );
    let failure = bridge.into_outcome().failure.unwrap();
    let name = |bytes: &[u8]| hex::encode(<sha2::Sha384 as sha2::Digest>::digest(bytes));
    assert!(
        failure.starts_with(&format!(
            "the guest's evidence names quote sha384:{}, which this host did not deliver (it delivered sha384:{}, sha384:{})",
            name(b"not a quote"),
            name(&first),
            name(&second)
        )),
        "{failure}"
    );

    // No GetQuote in this launch, so nothing delivered: a named quote cannot be presented.
    let mut bridge = host.launch();
    bridge.receive(td_hello()).unwrap();
    let nonce = nonce_of(&reply(&mut bridge, Guest::initiate()));
    let key = p384::ecdsa::SigningKey::try_generate().unwrap();
    let (code, _) = error_of(&reply(&mut bridge, td_evidence(&key, nonce, Vec::new(), Some(vec![0x11; 48]))));
    assert_eq!(code, ErrorCode::VerificationFailed);
    let failure = bridge.into_outcome().failure.unwrap();
    assert!(failure.contains("(it delivered none in this launch)"), "{failure}");
}
