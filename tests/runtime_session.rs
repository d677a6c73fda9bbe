//! `Session::run` over the SEV-SNP backend end to end on the host. The guest side is the real runtime code; the host
//! side is a fake loader + issuer behind an in-memory [`Link`]: whenever the guest waits for a
//! byte and none is queued, the fake host reads what the guest wrote so far and answers it
//! (honestly, with a real `twi_issuer::Issuer` and a launch on the simulated PSP, unless the
//! test's script says otherwise). When the host has nothing more to say the link reports
//! itself closed, so no test can hang.
//!
//! This scripted host exists for what an honest host never sends (malformed frames, forged or
//! replayed firmware answers, messages out of turn); the honest flows and the loader's own
//! tampering run against the real bridge in `runtime_bridge.rs`.
//!
//! The guest's firmware requests are SEV-SNP guest messages sealed under the launch's VMPCK0;
//! the tests know that key (they play the PSP that planted it) and so can open what the guest
//! sent, and seal answers of their own.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::LazyLock;

use der::Decode;
use twi_attester::snp::certs::CertTable;
use twi_attester::snp::guest_msg::{self, GuestMsgError, HEADER_SIZE, Header, MAX_MESSAGE, Vmpck, msg_type};
use twi_attester::snp::key::{KEY_REQ_SIZE, KeyRequest, KeyResponse, field};
use twi_attester::snp::msg::{ReportRequest, ReportResponse, STATUS_INVALID_PARAMETERS, STATUS_SUCCESS};
use twi_attester::snp::report::AttestationReport;
use twi_attester::snp::secrets::VMPCK_OFFSETS;
use twi_host_loader::sim::snp::{SimLaunch, SimPsp};
use twi_issuer::policy::Policy;
use twi_issuer::{CredentialRequest, EvidenceBundle, Issued, Issuer, IssuerConfig};
use twi_proto::frame::{MAX_ENCODED_FRAME, cobs_decode, cobs_encode, crc32};
use twi_proto::msg::{
    AttestationResult, CAP_MECHANISM_A, CAP_MECHANISM_B, CAP_MECHANISM_C, CAP_MECHANISM_D, CAP_SIM_DOORBELL, Challenge,
    Credential, CredentialKind, Done, DoorbellKind, DoorbellRequest, DoorbellResponse, ErrorCode, ErrorMsg, Evidence,
    Freshness, Hello, KeyRelease, Message, PROTOCOL_VERSION, Platform,
};
use twi_proto::{MessageReader, ProtoError, encode_frame, write_message};
use twi_runtime::channel::{Channel, ChannelError, Link, MAX_MALFORMED_FRAMES};
use twi_runtime::credential::{CredentialError, check_credential};
use twi_runtime::pairwise::TestedKey;
use twi_runtime::sealing::{SealError, SealingKey};
use twi_runtime::session::{self, Acquisition, Event, Outcome, SEALED_CREDENTIAL_CONTEXT, SessionError, Trust};
use twi_runtime::tee::sim::SimSnpDoorbell;
use twi_runtime::tee::snp::{self as snp_tee, Answer, DoorbellError, Exit, SnpDoorbell, SnpError, SnpGuest, SnpTee};
use twi_runtime::tee::{Certificates, TeeError};
use twi_runtime::vault::Vault;
use x509_cert::Certificate;
use zeroize::Zeroizing;

use twi_testkit::TestRng;
use twi_testkit::certs::TestCa;
use twi_testkit::rng::{key_from_seed, public_sec1};

/// The target the sessions acquire for.
const TARGET: &str = "twi:test";

/// The seed of the Credential Key in every session: the tests can regenerate the key outside
/// the vault and so know the secret scalar the guest must never send.
const KEY_SEED: u64 = 0x7E57_C0DE_5EED_0001;
/// The seed of the RNG the session draws the sealing nonce from.
const SEAL_SEED: u64 = 0x5EA1_0000_5EED_0002;
const RUNTIME_NAME: &str = "twi-runtime/test";
const WORKLOAD_ID: &str = "spiffe://example.org/payroll";
/// What the guest sends to an honest host.
const HONEST_SEQUENCE: [&str; 6] = ["Hello", "Initiate", "DoorbellRequest", "Evidence", "DoorbellRequest", "Done"];

/// What the simulated chip measures of every launch (nothing sets it).
const LAUNCH_DIGEST: [u8; 48] = [0; 48];

/// The issuer's appraisal policy: the launch is `payroll`, under mechanism c.
fn policy() -> Policy {
    Policy::from_toml(&format!(
        "version = \"session-1\"\ntrust_domain = \"example.org\"\n\n[[workload]]\nid = \"payroll\"\nmechanism = \"c\"\n\n\
         [[workload.reference]]\nplatform = \"sim-snp\"\nmeasurement = \"{}\"\n",
        hex::encode(LAUNCH_DIGEST)
    ))
    .expect("the test policy")
}

/// The simulated chip (three P-384 keys and their chain), made once for all tests. Its state
/// directory is not needed once it is loaded. Each session is a fresh launch on it.
static PSP: LazyLock<SimPsp> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("tempdir");
    SimPsp::load_or_create(dir.path()).expect("simulated PSP")
});

// ---------------------------------------------------------------------------------------
// The fake host

/// The loader and the issuer, as the real ones behave.
struct Host {
    /// The issuer's state (its provenance log is written there).
    state: tempfile::TempDir,
    issuer: Issuer,
    psp: &'static SimPsp,
    /// The guest's launch on the simulated chip: its VMPCK0 and the PSP's sequence numbers.
    sim: SimLaunch,
    /// The nonce of the last Challenge the host sent.
    nonce: Option<Vec<u8>>,
    /// The last credential the issuer issued.
    issued: Option<Issued>,
}

impl Host {
    fn new(accept_simulated_tee: bool) -> Self {
        let state = tempfile::tempdir().expect("tempdir");
        let config = IssuerConfig {
            trust_domain: "example.org".into(),
            sim_snp_root: accept_simulated_tee.then(|| PSP.root().clone()),
        };
        let issuer = Issuer::open(state.path(), config, policy()).expect("issuer");
        let sim = PSP.launch().expect("a launch on the simulated PSP");
        Self { state, issuer, psp: &PSP, sim, nonce: None, issued: None }
    }

    /// A fresh nonce from the issuer's Verifier for this launch.
    fn challenge(&mut self) -> Vec<u8> {
        self.issuer.initiate(Platform::SimSnp, &LAUNCH_DIGEST, TARGET, CredentialKind::X509, None).expect("nonce").nonce
    }

    /// The issuer anchor the launch manifest carries.
    fn anchor(&self) -> Vec<u8> {
        self.issuer.ca().unwrap().public_key_sec1()
    }

    /// The VMPCK0 the PSP planted in this launch's secrets page.
    fn vmpck(&self) -> [u8; 32] {
        vmpck_of(&self.sim)
    }

    /// What the real loader and issuer answer to `msg` (`None`: nothing).
    fn honest_reply(&mut self, msg: &Message) -> Option<Message> {
        match msg {
            Message::Initiate(_) => {
                let nonce = self.challenge();
                self.nonce = Some(nonce.clone());
                Some(Challenge { nonce, key_release: false, freshness: Freshness::PresentNonce }.into())
            }
            Message::DoorbellRequest(request) => {
                let (status, response) = self.sim.guest_request(self.psp, &request.request);
                // An extended guest request also gets the chip's certificate table.
                let certificates = (request.kind == DoorbellKind::SnpExtGuestRequest && status == 0)
                    .then(|| self.psp.certificate_table().expect("certificate table"));
                Some(DoorbellResponse { kind: request.kind, status, response, certificates }.into())
            }
            Message::Evidence(evidence) => {
                // The guest's certificate table when it forwarded one, the host's when the guest
                // named it (this host hands every launch the same one), else the host's copies.
                let delivered = self.psp.certificate_table().expect("certificate table");
                let endorsements = match (&evidence.certificates, &evidence.certificates_sha384) {
                    (Some(table), _) => twi_issuer::snp::endorsements_from_table(table).expect("usable table"),
                    (None, Some(digest)) => {
                        assert_eq!(
                            digest[..],
                            CertTable::parse(&delivered).unwrap().sha384(),
                            "a table never delivered"
                        );
                        twi_issuer::snp::endorsements_from_table(&delivered).expect("usable table")
                    }
                    (None, None) => self.psp.endorsements().expect("endorsements"),
                };
                let bundle = EvidenceBundle::of_message(evidence, &endorsements);
                let evidence = twi_issuer::Evidence { bundle, events: &[] };
                Some(match self.issuer.ca_credential(CredentialRequest::Evidence { evidence, renewal_of: None }) {
                    Ok(issued) => {
                        let reply = Credential {
                            certificate: issued.certificate_der.clone(),
                            workload_id: issued.workload_id.clone(),
                            attestation_result: None,
                            wit: None,
                        };
                        self.issued = Some(issued);
                        reply.into()
                    }
                    Err(rejection) => ErrorMsg::new(ErrorCode::VerificationFailed, &rejection.to_string()).into(),
                })
            }
            Message::Hello(_) | Message::Done(_) | Message::Error(_) | Message::Log(_) => None,
            other => panic!("the guest sent a host-to-guest message: {other:?}"),
        }
    }
}

/// VMPCK0 as `launch` plants it in the guest's secrets page.
fn vmpck_of(launch: &SimLaunch) -> [u8; 32] {
    let page = launch.secrets_page();
    page[VMPCK_OFFSETS[0]..VMPCK_OFFSETS[0] + 32].try_into().expect("32 bytes")
}

/// A test's deviation from the honest host: `Some(bytes)` is sent instead of the honest
/// answer (empty: say nothing), `None` keeps the honest answer.
type Script = Box<dyn FnMut(&Message, &mut Host) -> Option<Vec<u8>>>;

/// The in-memory link, with the fake host at its far end.
struct FakeLink {
    host: Host,
    script: Script,
    /// Every byte the guest wrote, in order.
    wire: Vec<u8>,
    /// How much of `wire` the host has read.
    read: usize,
    reader: MessageReader,
    /// Every message the guest sent, in order.
    sent: Vec<Message>,
    to_guest: VecDeque<u8>,
}

impl FakeLink {
    fn new(host: Host, script: Script) -> Self {
        Self {
            host,
            script,
            wire: Vec::new(),
            read: 0,
            reader: MessageReader::new(),
            sent: Vec::new(),
            to_guest: VecDeque::new(),
        }
    }

    fn honest() -> Self {
        Self::new(Host::new(true), Box::new(|_, _| None))
    }

    /// An honest host, except that `script` answers the guest's messages named `name`.
    fn tampering(name: &'static str, mut script: impl FnMut(&Message, &mut Host) -> Vec<u8> + 'static) -> Self {
        Self::new(Host::new(true), Box::new(move |msg, host| (msg.name() == name).then(|| script(msg, host))))
    }

    /// An honest host, except that `script` answers the guest's DoorbellRequest of `stage`.
    fn tampering_doorbell(stage: Stage, mut script: impl FnMut(&Message, &mut Host) -> Vec<u8> + 'static) -> Self {
        let mut seen = 0;
        Self::new(
            Host::new(true),
            Box::new(move |msg, host| {
                if msg.name() != "DoorbellRequest" {
                    return None;
                }
                seen += 1;
                (seen - 1 == stage.index()).then(|| script(msg, host))
            }),
        )
    }

    /// The host reads what the guest wrote since its last turn and answers each message.
    fn host_turn(&mut self) {
        while let Some(msg) = self.next_from_guest() {
            let reply = match (self.script)(&msg, &mut self.host) {
                Some(bytes) => bytes,
                None => self.host.honest_reply(&msg).map(|m| frame(&m)).unwrap_or_default(),
            };
            self.to_guest.extend(reply);
            self.sent.push(msg);
        }
    }

    /// After the session: records what the guest wrote last, without answering.
    fn drain(&mut self) {
        while let Some(msg) = self.next_from_guest() {
            self.sent.push(msg);
        }
    }

    /// The next complete message in what the guest wrote, if any.
    fn next_from_guest(&mut self) -> Option<Message> {
        while let Some(&byte) = self.wire.get(self.read) {
            self.read += 1;
            match self.reader.push(byte) {
                None => {}
                Some(Err(e)) => panic!("the guest sent a malformed frame: {e}"),
                Some(Ok(msg)) => return Some(msg),
            }
        }
        None
    }

    /// Every firmware request the guest sent, with its header and plaintext: opened with the
    /// launch's VMPCK0 as the PSP would (but without touching the PSP's sequence numbers).
    fn firmware_requests(&self) -> Vec<(&DoorbellRequest, Header, Vec<u8>)> {
        let key = Vmpck::new(self.host.vmpck());
        self.sent
            .iter()
            .filter_map(|m| if let Message::DoorbellRequest(r) = m { Some(r) } else { None })
            .map(|request| {
                let mut plain = vec![0u8; MAX_MESSAGE];
                let (header, len) = guest_msg::open(&key, &request.request, &mut plain)
                    .expect("every firmware request is a guest message sealed under VMPCK0");
                plain.truncate(len);
                (request, header, plain)
            })
            .collect()
    }
}

impl Link for &mut FakeLink {
    fn write_all(&mut self, bytes: &[u8]) {
        self.wire.extend_from_slice(bytes);
    }

    fn read_byte(&mut self) -> Option<u8> {
        if self.to_guest.is_empty() {
            self.host_turn();
        }
        // Still nothing: the host has nothing more to say and hangs up.
        self.to_guest.pop_front()
    }
}

fn frame(msg: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    write_message(msg, &mut out).expect("encodable");
    out
}

/// The two firmware exchanges of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// MSG_REPORT_REQ, after the Challenge.
    Report,
    /// MSG_KEY_REQ, after the credential was accepted.
    Key,
}

impl Stage {
    const ALL: [Stage; 2] = [Stage::Report, Stage::Key];

    fn index(self) -> usize {
        match self {
            Self::Report => 0,
            Self::Key => 1,
        }
    }

    /// The sequence number of the firmware's response at this stage (requests take the odd
    /// numbers from 1, responses the next even one).
    fn response_seqno(self) -> u64 {
        2 * self.index() as u64 + 2
    }

    /// The response's message type.
    fn response_type(self) -> u8 {
        match self {
            Self::Report => msg_type::REPORT_RSP,
            Self::Key => msg_type::KEY_RSP,
        }
    }

    /// What an honest guest sends up to and including this stage's DoorbellRequest.
    fn sent_until(self) -> Vec<&'static str> {
        match self {
            Self::Report => vec!["Hello", "Initiate", "DoorbellRequest"],
            Self::Key => vec!["Hello", "Initiate", "DoorbellRequest", "Evidence", "DoorbellRequest"],
        }
    }
}

// ---------------------------------------------------------------------------------------
// Running a session

struct Session {
    /// The key the session was given (the Credential Key of mechanisms A, B, C).
    key: twi_runtime::vault::KeyId,
    /// The PKCS#10 request its pairwise consistency test signed.
    csr: Vec<u8>,
    result: Result<Outcome, SessionError>,
    /// `Debug` of every event the session reported.
    events: Vec<String>,
    vault: Vault,
    /// The guest's end of the firmware channel, as the session left it.
    snp: SnpGuest,
    link: FakeLink,
}

impl Session {
    fn sent_names(&self) -> Vec<&'static str> {
        self.link.sent.iter().map(Message::name).collect()
    }

    /// The Error messages the guest sent, in order.
    fn errors_sent(&self) -> Vec<&ErrorMsg> {
        self.link.sent.iter().filter_map(|m| if let Message::Error(e) = m { Some(e) } else { None }).collect()
    }

    fn public_key(&self) -> Vec<u8> {
        // The credential's key (under mechanism D the released one), else the session's.
        let key = self.result.as_ref().map_or(self.key, |outcome| outcome.key);
        self.vault.public_key(key).expect("a key").to_vec()
    }

    /// The report the guest sent as Evidence.
    fn evidence_report(&self) -> AttestationReport {
        let evidence = self.link.sent.iter().find_map(|m| if let Message::Evidence(e) = m { Some(e) } else { None });
        AttestationReport::parse(&evidence.expect("the guest sent Evidence").evidence).expect("a report")
    }
}

/// Runs the guest's session against `link`, with the Credential Key from [`KEY_SEED`] and the
/// VMPCK0 of the host's launch. Whatever the outcome, the guest must not have sent its private
/// key or its VMPCK, and must have sent every firmware request sealed.
fn run(mut link: FakeLink) -> Session {
    let vault = Vault::new();
    let (key, _) = vault.generate(&mut TestRng(KEY_SEED)).expect("key generation");
    let tested = TestedKey::test(&vault, key).expect("the pairwise consistency test");
    let mut snp = SnpGuest::from_secrets_page(&link.host.sim.secrets_page()).expect("the launch planted VMPCK0");
    let anchor = link.host.anchor();
    let rp_id = link.host.issuer.rp_id();
    let events = RefCell::new(Vec::new());
    let result = {
        let on_malformed = |e: &ProtoError| events.borrow_mut().push(format!("MalformedFrame({e:?})"));
        let channel = Channel::new(&mut link, &on_malformed);
        let mut tee = SnpTee::new(&mut snp, SimSnpDoorbell::new(&channel), Platform::SimSnp);
        let mut record = |event: Event<'_>| events.borrow_mut().push(format!("{event:?}"));
        let mut session = session::Session {
            channel: &channel,
            vault: &vault,
            trust: Trust { issuer_anchor: &anchor, rp_id: &rp_id, epoch_marker: None },
            runtime_name: RUNTIME_NAME,
            events: &mut record,
        };
        let request = Acquisition { target: TARGET, credential_type: CredentialKind::X509, hint: None };
        session.run(&mut tee, &mut TestRng(SEAL_SEED), &[], &tested, &request)
    };
    link.drain();
    assert_eq!(link.read, link.wire.len(), "the guest left a partial frame on the wire");
    assert_secrets_never_sent(&link);
    Session { result, events: events.into_inner(), vault, key, csr: tested.csr().to_vec(), snp, link }
}

/// A doorbell that only records that it was rung.
struct Ringing<'a>(&'a mut bool);

impl SnpDoorbell for Ringing<'_> {
    fn guest_request(&mut self, _: &[u8], _: Exit) -> Result<Answer, DoorbellError> {
        *self.0 = true;
        Err(DoorbellError::Refused(0))
    }
}

/// The Credential Key's secret scalar (big-endian, 48 bytes), regenerated outside the vault.
fn secret_scalar() -> Vec<u8> {
    key_from_seed(KEY_SEED).to_bytes().to_vec()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Whether `needle` occurs in the guest's raw output or in any frame payload it sent (COBS
/// rewrites zero bytes, so a secret could hide from a scan of the raw bytes alone).
fn guest_output_contains(wire: &[u8], needle: &[u8]) -> bool {
    contains(wire, needle)
        || wire
            .split(|&b| b == 0)
            .filter(|f| !f.is_empty())
            .filter_map(|f| cobs_decode(f).ok())
            .any(|p| contains(&p, needle))
}

/// `secret` in either byte order does not occur in the guest's output.
fn assert_never_sent(wire: &[u8], secret: &[u8], what: &str) {
    let mut reversed = secret.to_vec();
    reversed.reverse();
    assert!(!guest_output_contains(wire, secret), "the guest sent its {what}");
    assert!(!guest_output_contains(wire, &reversed), "the guest sent its {what} (reversed)");
}

fn assert_secrets_never_sent(link: &FakeLink) {
    assert_never_sent(&link.wire, &secret_scalar(), "private key");
    assert_never_sent(&link.wire, &link.host.vmpck(), "VMPCK0");
    // Every firmware request went out sealed, in sequence, its plaintext nowhere in it: the
    // host never sees what the guest asks the firmware.
    for (i, (request, header, plain)) in link.firmware_requests().into_iter().enumerate() {
        // The report goes through the extended request (for the certificate table), the rest
        // through the plain one.
        let kind = if header.msg_type == msg_type::REPORT_REQ {
            DoorbellKind::SnpExtGuestRequest
        } else {
            DoorbellKind::SnpGuestRequest
        };
        assert_eq!(request.kind, kind);
        assert_eq!((header.seqno, header.vmpck_id), (2 * i as u64 + 1, 0), "request {i}");
        assert!(!contains(&request.request, &plain), "request {i} carries its plaintext");
        if header.msg_type == msg_type::REPORT_REQ {
            let report_data = &plain[..64];
            assert!(!guest_output_contains(&frame(&request.clone().into()), report_data), "REPORTDATA in the clear");
        }
    }
}

fn expect_err(session: &Session) -> &SessionError {
    match &session.result {
        Ok(outcome) => panic!("the session succeeded: {outcome:?}"),
        Err(e) => e,
    }
}

/// The guest's VMPCK is gone: asked for one more report, its SnpGuest refuses before the
/// doorbell rings (nothing more can be sealed under a key whose sequence may be out of step).
fn assert_vmpck_wiped(session: &mut Session) {
    let mut rung = false;
    let result = session.snp.report(&[0x11; 64], &mut Ringing(&mut rung));
    assert_eq!(result, Err(SnpError::Envelope(GuestMsgError::KeyWiped)));
    assert!(!rung, "the guest rang the doorbell again after a refused answer");
}

// ---------------------------------------------------------------------------------------
// Hostile frames

/// Frames a hostile or noisy host may send, each with the Error code the guest must answer.
fn malformed_frames() -> Vec<(&'static str, Vec<u8>, ErrorCode)> {
    let challenge = twi_proto::encode(
        &Challenge { nonce: vec![7; 32], key_release: false, freshness: Freshness::PresentNonce }.into(),
    )
    .unwrap();
    let mut bad_crc = Vec::new();
    cobs_encode(challenge.iter().copied().chain((crc32(&challenge) ^ 1).to_le_bytes()), &mut bad_crc);
    bad_crc.push(0);
    let framed = |payload: &[u8]| {
        let mut out = Vec::new();
        encode_frame(payload, &mut out).unwrap();
        out
    };
    let mut oversized = vec![0x55; MAX_ENCODED_FRAME + 10];
    oversized.push(0);
    vec![
        ("garbage bytes", b"not a frame\0".to_vec(), ErrorCode::Malformed),
        ("checksum mismatch", bad_crc, ErrorCode::Malformed),
        ("payload is not CBOR", framed(b"\xFF\xFF\xFF"), ErrorCode::Malformed),
        // [99, {}]: a message index this version does not know.
        ("unknown message", framed(&[0x82, 0x18, 0x63, 0xA0]), ErrorCode::UnexpectedMessage),
        // [1, {0: h'0102'}]: a Challenge with a 2-byte nonce.
        ("nonce too short", framed(&[0x82, 0x01, 0xA1, 0x00, 0x42, 0x01, 0x02]), ErrorCode::Malformed),
        ("oversized frame", oversized, ErrorCode::Malformed),
    ]
}

/// `n` malformed frames, cycling through [`malformed_frames`], with their expected codes.
fn n_malformed_frames(n: usize) -> (Vec<u8>, Vec<ErrorCode>) {
    let kinds = malformed_frames();
    let mut bytes = Vec::new();
    let mut codes = Vec::new();
    for (_, frame, code) in kinds.iter().cycle().take(n) {
        bytes.extend_from_slice(frame);
        codes.push(*code);
    }
    (bytes, codes)
}

// ---------------------------------------------------------------------------------------
// The honest host

#[test]
fn session_obtains_a_credential_for_the_vault_key() {
    let session = run(FakeLink::honest());
    let outcome = session.result.as_ref().expect("the session succeeds");
    let public_key = session.public_key();

    // The guest spoke the protocol in order, accepted the credential and sealed it.
    assert_eq!(session.sent_names(), HONEST_SEQUENCE);
    assert_eq!(
        session.link.sent[0],
        Message::Hello(Hello {
            version: PROTOCOL_VERSION,
            platform: Platform::SimSnp,
            capabilities: CAP_SIM_DOORBELL | session::RUNTIME_MECHANISMS,
            runtime: RUNTIME_NAME.into(),
        })
    );
    assert_eq!(session.link.sent[5], Message::Done(Done { credential_accepted: true }));
    assert_eq!(
        session.events,
        [
            "ChallengeReceived",
            "ReportReceived",
            &format!(
                "Certificates(Named {{ count: 3, bytes: {} }})",
                session.link.host.psp.certificate_table().unwrap().len()
            ),
            "EvidenceSent",
            &format!("CredentialAccepted({WORKLOAD_ID:?})"),
            &format!("CredentialSealed({})", outcome.sealed_credential.len()),
        ]
    );

    // The Evidence binds the vault's key and the issuer's nonce into a report of the PSP.
    let nonce = session.link.host.nonce.clone().expect("a challenge was sent");
    let Message::Evidence(evidence) = &session.link.sent[3] else { unreachable!() };
    assert_eq!(evidence.platform, Platform::SimSnp);
    assert_eq!(evidence.public_key, public_key);
    assert_eq!(evidence.nonce, nonce);
    let report = AttestationReport::parse(&evidence.evidence).expect("a report");
    // TACRA's binding: the nonce, the issuer's identifier, the target and the CSR, which is for
    // the vault's key and signed by it (an independent implementation recomputes it).
    let csr = evidence.csr.as_deref().expect("enrollment evidence carries its CSR");
    assert_eq!(twi_proto::csr::verify(csr).unwrap().to_vec(), public_key);
    let rp_id = session.link.host.issuer.rp_id();
    assert_eq!(evidence.target, TARGET);
    assert_eq!(report.report_data, twi_testkit::tacra::report_data(&nonce, &rp_id, TARGET, csr));
    // The report came through the extended guest request; its certificate table (VCEK, ASK,
    // ARK) came from the loader over the channel, so the evidence names it by the SHA-384 of
    // the bytes the host gave instead of sending them back.
    let table = session.link.host.psp.certificate_table().unwrap();
    assert_eq!(evidence.certificates, None);
    let digest: [u8; 48] = <sha2::Sha384 as sha2::Digest>::digest(&table).into();
    assert_eq!(evidence.certificates_sha384.as_deref(), Some(&digest[..]));

    // The report and then the launch-bound key were asked of the firmware in guest messages
    // sealed under VMPCK0, never in plaintext.
    let requests = session.link.firmware_requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].0.kind, DoorbellKind::SnpExtGuestRequest);
    assert_eq!(requests[1].0.kind, DoorbellKind::SnpGuestRequest);
    let (request, header, plain) = &requests[0];
    assert_eq!((header.msg_type, header.seqno), (msg_type::REPORT_REQ, 1));
    assert_eq!(ReportRequest::parse(plain), Ok(ReportRequest { report_data: report.report_data, vmpl: 0 }));
    assert!(ReportRequest::parse(&request.request).is_err(), "MSG_REPORT_REQ went out in plaintext");
    let (request, header, plain) = &requests[1];
    assert_eq!((header.msg_type, header.seqno), (msg_type::KEY_REQ, 3));
    assert_eq!(KeyRequest::parse(plain), Ok(KeyRequest::launch_bound(report.reported_tcb.0)));
    assert!(KeyRequest::parse(&request.request).is_err(), "MSG_KEY_REQ went out in plaintext");

    // The outcome is the credential the issuer issued, for the vault's key.
    let issued = session.link.host.issued.as_ref().expect("the issuer issued a credential");
    assert_eq!(outcome.certificate, issued.certificate_der);
    assert_eq!(outcome.workload_id, WORKLOAD_ID);
    let cert = Certificate::from_der(&outcome.certificate).expect("DER");
    let spki = cert.tbs_certificate().subject_public_key_info();
    assert_eq!(spki.subject_public_key.as_bytes(), Some(public_key.as_slice()));
    assert_eq!(cert.tbs_certificate().issuer(), session.link.host.issuer.ca().unwrap().subject());
    assert_eq!(check_credential(&outcome.certificate, &session.link.host.anchor(), &public_key, WORKLOAD_ID), Ok(()));
}

/// The CSR the key's pairwise consistency test signed is the one Enrollment sends: the key's
/// first signature is made once, at boot, and the session signs no other request.
#[test]
fn enrollment_sends_the_csr_the_pairwise_test_signed() {
    let session = run(FakeLink::honest());
    session.result.as_ref().expect("the session succeeds");
    let evidence = session.link.sent.iter().find_map(|m| if let Message::Evidence(e) = m { Some(e) } else { None });
    let sent = evidence.expect("the guest sent Evidence").csr.as_deref().expect("enrollment carries its CSR");
    assert_eq!(sent, session.csr.as_slice());
    assert_eq!(twi_proto::csr::verify(sent).unwrap().to_vec(), session.public_key());
}

/// The host's certificate table is the host's: with none, or with one the guest cannot read, the
/// session still succeeds (the verifier uses its own copies of the VCEK and ASK), and nothing
/// malformed is forwarded.
#[test]
fn certificate_table_is_forwarded_only_when_usable() {
    let certificates = |table: Option<Vec<u8>>| {
        FakeLink::tampering_doorbell(Stage::Report, move |msg, host| {
            let Message::DoorbellRequest(request) = msg else { unreachable!() };
            let (status, response) = host.sim.guest_request(host.psp, &request.request);
            frame(&DoorbellResponse { kind: request.kind, status, response, certificates: table.clone() }.into())
        })
    };
    let mut unterminated = vec![0xA5u8; 4096];
    unterminated[..16].copy_from_slice(&twi_attester::snp::certs::GUID_VCEK);
    for (table, event) in [
        (None, "Certificates(None)"),
        (Some(vec![0u8; 4096]), "Certificates(None)"),
        (Some(unterminated), "Certificates(Dropped)"),
    ] {
        let session = run(certificates(table));
        session.result.as_ref().expect("the session succeeds without certificates");
        assert!(session.events.iter().any(|e| e == event), "{:?}", session.events);
        let Message::Evidence(evidence) = &session.link.sent[3] else { unreachable!() };
        assert_eq!((&evidence.certificates, &evidence.certificates_sha384), (&None, &None));
    }

    // A table with room to spare is forwarded without the buffer's unused tail.
    let mut padded = PSP.certificate_table().unwrap();
    let used = padded.len();
    padded.resize(2 * 4096, 0);
    let (forwarded, outcome) = snp_tee::forwardable_certificates(Some(&padded));
    assert_eq!(forwarded.as_deref(), Some(&padded[..used]));
    assert_eq!(outcome, Certificates::Forwarded { count: 3, bytes: used });
    // Named (the loader delivered it), it is named by the same bytes.
    let (named, outcome) = snp_tee::named_certificates(Some(&padded));
    let digest: [u8; 48] = <sha2::Sha384 as sha2::Digest>::digest(&padded[..used]).into();
    assert_eq!(named, Some(digest));
    assert_eq!(outcome, Certificates::Named { count: 3, bytes: used });
}

/// The key the simulated PSP `psp` derives for `request`, as raw bytes.
fn derived_key(psp: &SimPsp, request: &KeyRequest) -> Zeroizing<[u8; 32]> {
    let response = KeyResponse::parse(&psp.handle_key_request(&request.to_bytes())).expect("MSG_KEY_RSP");
    assert_eq!(response.status, STATUS_SUCCESS, "{request:?}");
    response.key
}

#[test]
fn sealed_credential_unseals_only_under_the_launch_bound_key() {
    let session = run(FakeLink::honest());
    let outcome = session.result.as_ref().expect("the session succeeds");
    let sealed = &outcome.sealed_credential;
    let tcb = session.evidence_report().reported_tcb.0;

    // The firmware's launch-bound key for the reported TCB unseals exactly the certificate.
    let launch_bound = derived_key(&PSP, &KeyRequest::launch_bound(tcb));
    let key = SealingKey::new(launch_bound.clone());
    let unsealed = key.unseal(SEALED_CREDENTIAL_CONTEXT, sealed).expect("the sealed credential unseals");
    assert_eq!(unsealed.as_slice(), outcome.certificate.as_slice());
    assert_eq!(sealed.len(), 1 + 12 + outcome.certificate.len() + 16);
    assert!(session.events.contains(&format!("CredentialSealed({})", sealed.len())));
    // The blob does not show the credential in the clear.
    assert!(!contains(sealed, WORKLOAD_ID.as_bytes()));
    assert!(!contains(sealed, &session.public_key()));

    // Nothing else unseals it: another context, a key for a lower TCB, a key bound to fewer
    // launch fields, the same request on another chip.
    assert_eq!(key.unseal(b"twi sealed something else v1", sealed).map(|_| ()), Err(SealError::Unseal));
    let fewer_fields =
        KeyRequest { guest_field_select: field::MEASUREMENT | field::GUEST_POLICY, ..KeyRequest::launch_bound(tcb) };
    let other_chip_dir = tempfile::tempdir().expect("tempdir");
    let other_chip = SimPsp::load_or_create(other_chip_dir.path()).expect("another simulated chip");
    for (what, other) in [
        ("a lower TCB", derived_key(&PSP, &KeyRequest::launch_bound(tcb - 1))),
        ("fewer launch fields", derived_key(&PSP, &fewer_fields)),
        ("another chip", derived_key(&other_chip, &KeyRequest::launch_bound(tcb))),
    ] {
        assert_ne!(*other, *launch_bound, "{what}");
        let result = SealingKey::new(other).unseal(SEALED_CREDENTIAL_CONTEXT, sealed);
        assert_eq!(result.map(|_| ()), Err(SealError::Unseal), "{what}");
    }

    // The guest kept the derived key to itself.
    assert_never_sent(&session.link.wire, launch_bound.as_ref(), "sealing key");
}

#[test]
fn credential_key_never_leaves_the_vault() {
    // The vault's key is the one TestRng(KEY_SEED) generates outside it: its scalar is known.
    let outside = key_from_seed(KEY_SEED);
    let session = run(FakeLink::honest());
    assert!(session.result.is_ok(), "{:?}", session.result);
    assert_eq!(session.public_key(), public_sec1(&outside));

    let scalar = secret_scalar();
    assert_eq!(scalar.len(), 48);
    assert!(scalar.iter().any(|&b| b != 0));
    // The scan does see 48-byte values the guest sends: the public key's X coordinate...
    assert!(guest_output_contains(&session.link.wire, &session.public_key()[1..49]));
    // ...but never the private scalar, in any byte order (checked for every session by `run`).
    assert!(!guest_output_contains(&session.link.wire, &scalar));
    // Nor does the vault's or the outcome's Debug output show it.
    let shown = format!("{:?} {:?} {:?}", session.vault, session.result, session.events);
    for text in [hex::encode(&scalar), hex::encode_upper(&scalar), format!("{scalar:?}")] {
        assert!(!shown.contains(&text), "Debug output shows the private key");
    }
}

#[test]
fn vmpck_and_report_request_never_leave_the_guest_in_plaintext() {
    let session = run(FakeLink::honest());
    assert!(session.result.is_ok(), "{:?}", session.result);
    let wire = &session.link.wire;

    // VMPCK0 (checked for every session by `run`), nor in any Debug output.
    let vmpck = session.link.host.vmpck();
    assert!(vmpck.iter().any(|&b| b != 0));
    assert!(!guest_output_contains(wire, &vmpck));
    let shown = format!("{:?} {:?} {:?} {:?}", session.snp, session.vault, session.result, session.events);
    for text in [hex::encode(vmpck), hex::encode_upper(vmpck), format!("{vmpck:?}")] {
        assert!(!shown.contains(&text), "Debug output shows VMPCK0");
    }

    // The scan does see the 64-byte REPORTDATA where the guest sends it: in the report, in
    // the Evidence...
    let report_data = session.evidence_report().report_data;
    assert!(guest_output_contains(wire, &report_data));
    // ...but never in a firmware request: those carry only the sealed MSG_REPORT_REQ.
    let requests: Vec<&Message> = session.link.sent.iter().filter(|m| m.name() == "DoorbellRequest").collect();
    assert_eq!(requests.len(), 2);
    for request in requests {
        assert!(!guest_output_contains(&frame(request), &report_data), "REPORTDATA in a DoorbellRequest");
        let Message::DoorbellRequest(request) = request else { unreachable!() };
        assert!(!contains(&request.request, &report_data));
        assert!(!contains(&request.request, &ReportRequest { report_data, vmpl: 0 }.to_bytes()));
    }
}

#[test]
fn issuer_rejection_is_reported_as_a_host_error() {
    // An issuer that does not accept the simulated TEE refuses the Evidence.
    let session = run(FakeLink::new(Host::new(false), Box::new(|_, _| None)));
    match expect_err(&session) {
        SessionError::Channel(ChannelError::HostError(ErrorCode::VerificationFailed, message)) => {
            assert!(message.contains("simulated TEE"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // The guest has nothing to say to an Error: no Done, no Error of its own, no key request.
    assert_eq!(session.sent_names(), ["Hello", "Initiate", "DoorbellRequest", "Evidence"]);
}

// ---------------------------------------------------------------------------------------
// Malformed frames

#[test]
fn malformed_frame_is_answered_with_an_error_and_skipped() {
    let link = FakeLink::tampering("Initiate", |msg, host| {
        let mut bytes = b"\x13garbage \xFF\x01 from the host\0".to_vec();
        bytes.extend(frame(&host.honest_reply(msg).unwrap()));
        bytes
    });
    let session = run(link);
    assert!(session.result.is_ok(), "{:?}", session.result);
    assert_eq!(
        session.sent_names(),
        ["Hello", "Initiate", "Error", "DoorbellRequest", "Evidence", "DoorbellRequest", "Done"]
    );
    assert_eq!(session.errors_sent()[0].code, ErrorCode::Malformed);
    assert_eq!(session.link.sent[6], Message::Done(Done { credential_accepted: true }));
    assert!(session.events[0].starts_with("MalformedFrame("), "{:?}", session.events);
    assert_eq!(session.events[1], "ChallengeReceived");
}

#[test]
fn malformed_frames_below_the_limit_are_tolerated_across_the_session() {
    // MAX_MALFORMED_FRAMES - 1 bad frames of every kind, spread over the four host turns
    // (Challenge, both DoorbellResponses, Credential).
    let budget = (MAX_MALFORMED_FRAMES - 1) as usize;
    let turns = [budget / 4, budget / 4, budget / 4, budget - 3 * (budget / 4)];
    let mut kinds = malformed_frames().into_iter().cycle();
    let mut codes = Vec::new();
    let mut garbage: VecDeque<Vec<u8>> = turns
        .iter()
        .map(|&n| {
            let mut bytes = Vec::new();
            for (_, frame, code) in kinds.by_ref().take(n) {
                bytes.extend(frame);
                codes.push(code);
            }
            bytes
        })
        .collect();
    let link = FakeLink::new(
        Host::new(true),
        Box::new(move |msg, host| {
            let reply = host.honest_reply(msg)?;
            let mut bytes = garbage.pop_front().expect("one batch of garbage per host turn");
            bytes.extend(frame(&reply));
            Some(bytes)
        }),
    );
    let session = run(link);
    assert!(session.result.is_ok(), "{:?}", session.result);
    let sent_codes: Vec<ErrorCode> = session.errors_sent().iter().map(|e| e.code).collect();
    assert_eq!(sent_codes, codes);
    assert_eq!(session.events.iter().filter(|e| e.starts_with("MalformedFrame(")).count(), budget);
    assert!(session.events.iter().any(|e| e.starts_with("CredentialSealed(")), "{:?}", session.events);
    assert_eq!(session.link.sent.last(), Some(&Message::Done(Done { credential_accepted: true })));
}

#[test]
fn too_many_malformed_frames_end_the_session() {
    let n = MAX_MALFORMED_FRAMES as usize;
    let (garbage, codes) = n_malformed_frames(n);
    let link = FakeLink::tampering("Initiate", move |msg, host| {
        // A valid Challenge follows, but the guest must have given up before it.
        let mut bytes = garbage.clone();
        bytes.extend(frame(&host.honest_reply(msg).unwrap()));
        bytes
    });
    let session = run(link);
    assert!(
        matches!(expect_err(&session), SessionError::Channel(ChannelError::TooManyMalformedFrames)),
        "{:?}",
        session.result
    );
    // One Error per bad frame, and nothing after: the session ended at the limit.
    let mut expected = vec!["Hello", "Initiate"];
    expected.extend(std::iter::repeat_n("Error", n));
    assert_eq!(session.sent_names(), expected);
    let sent_codes: Vec<ErrorCode> = session.errors_sent().iter().map(|e| e.code).collect();
    assert_eq!(sent_codes, codes);
    assert!(!session.events.iter().any(|e| e == "ChallengeReceived"));
}

// ---------------------------------------------------------------------------------------
// Messages out of place

#[test]
fn unexpected_message_instead_of_challenge_is_refused() {
    let link = FakeLink::tampering("Initiate", |_, _| {
        frame(
            &Credential {
                certificate: vec![0x30, 0x00],
                workload_id: WORKLOAD_ID.into(),
                attestation_result: None,
                wit: None,
            }
            .into(),
        )
    });
    let session = run(link);
    assert!(
        matches!(expect_err(&session), SessionError::Channel(ChannelError::Unexpected("Credential"))),
        "{:?}",
        session.result
    );
    assert_eq!(session.sent_names(), ["Hello", "Initiate", "Error"]);
    assert_eq!(session.errors_sent()[0].code, ErrorCode::UnexpectedMessage);
}

#[test]
fn unexpected_message_instead_of_doorbell_response_is_refused() {
    // Another Challenge, and a response for the wrong doorbell, at either firmware exchange.
    let wrong_kind = |msg: &Message, host: &mut Host| {
        let Some(Message::DoorbellResponse(mut response)) = host.honest_reply(msg) else { unreachable!() };
        response.kind = DoorbellKind::TdxGetQuote;
        frame(&response.into())
    };
    for stage in Stage::ALL {
        let cases: Vec<(&str, FakeLink)> = vec![
            (
                "Challenge",
                FakeLink::tampering_doorbell(stage, |_, _| {
                    frame(
                        &Challenge { nonce: vec![1; 32], key_release: false, freshness: Freshness::PresentNonce }
                            .into(),
                    )
                }),
            ),
            ("DoorbellResponse", FakeLink::tampering_doorbell(stage, wrong_kind)),
        ];
        for (what, link) in cases {
            let mut session = run(link);
            assert!(
                matches!(expect_err(&session), SessionError::Channel(ChannelError::Unexpected(name)) if *name == what),
                "{stage:?}: {:?}",
                session.result
            );
            let mut expected = stage.sent_until();
            expected.push("Error");
            assert_eq!(session.sent_names(), expected, "{stage:?} {what}");
            assert_eq!(session.errors_sent()[0].code, ErrorCode::UnexpectedMessage, "{stage:?} {what}");
            assert!(!session.events.iter().any(|e| e.starts_with("CredentialSealed(")));
            // The request may have reached the firmware: its sequence number is spent.
            assert_vmpck_wiped(&mut session);
        }
    }
}

#[test]
fn unexpected_message_instead_of_credential_is_refused() {
    let link = FakeLink::tampering("Evidence", |_, _| {
        frame(&Challenge { nonce: vec![1; 32], key_release: false, freshness: Freshness::PresentNonce }.into())
    });
    let session = run(link);
    assert!(
        matches!(expect_err(&session), SessionError::Channel(ChannelError::Unexpected("Challenge"))),
        "{:?}",
        session.result
    );
    assert_eq!(session.sent_names(), ["Hello", "Initiate", "DoorbellRequest", "Evidence", "Error"]);
    assert_eq!(session.errors_sent()[0].code, ErrorCode::UnexpectedMessage);
}

// ---------------------------------------------------------------------------------------
// The simulated doorbell: a firmware that answers wrongly, through the genuine channel

/// The firmware answers the guest's `stage` request with `answer(plaintext request, psp)`,
/// sealed under the launch's VMPCK0 exactly as the PSP seals its answers, and the doorbell
/// reports `status`.
fn firmware_answer(stage: Stage, status: u64, answer: fn(&[u8], &SimPsp) -> Vec<u8>) -> FakeLink {
    FakeLink::tampering_doorbell(stage, move |msg, host| {
        let Message::DoorbellRequest(request) = msg else { unreachable!() };
        let psp = host.psp;
        let (sealed_status, response) =
            host.sim.guest_request_with(&request.request, |_, plain| Some(answer(plain, psp)));
        assert_eq!(sealed_status, 0, "the simulated PSP opens the guest's request");
        frame(&DoorbellResponse { kind: request.kind, status, response, certificates: None }.into())
    })
}

/// The session ended at `stage`'s firmware exchange with `Firmware(why)`, and told the host so.
fn assert_doorbell_refused(session: &Session, stage: Stage, why: &SnpError) {
    assert!(
        matches!(expect_err(session), SessionError::Tee(TeeError::Snp(what)) if what == why),
        "expected Firmware({why:?}) at {stage:?}, got {:?}",
        session.result
    );
    let mut expected = stage.sent_until();
    expected.push("Error");
    assert_eq!(session.sent_names(), expected, "{why:?}");
    let error = session.errors_sent()[0];
    assert_eq!(error.code, ErrorCode::DoorbellFailed, "{why:?}");
    assert!(error.message.contains(&why.to_string()), "{}", error.message);
    match stage {
        Stage::Report => assert!(!session.events.iter().any(|e| e == "ReportReceived")),
        Stage::Key => assert!(session.events.iter().any(|e| e.starts_with("CredentialAccepted("))),
    }
    assert!(!session.events.iter().any(|e| e.starts_with("CredentialSealed(")));
}

#[test]
fn report_for_other_report_data_is_refused() {
    // A genuine report of the PSP, sealed correctly, but for REPORTDATA the guest did not ask for.
    let session = run(firmware_answer(Stage::Report, 0, |request, psp| {
        let mut request = ReportRequest::parse(request).unwrap();
        request.report_data[0] ^= 0xFF;
        psp.handle_report_request(&request.to_bytes())
    }));
    assert_doorbell_refused(&session, Stage::Report, &SnpError::ReportDataMismatch);
}

#[test]
fn failed_doorbell_status_is_refused() {
    // The VMM reports failure, even though a valid sealed answer came with it.
    for stage in Stage::ALL {
        let mut session = run(firmware_answer(stage, 0x1_0000_0000, |request, psp| {
            if request.len() == KEY_REQ_SIZE {
                psp.handle_key_request(request).to_vec()
            } else {
                psp.handle_report_request(request)
            }
        }));
        assert_doorbell_refused(&session, stage, &SnpError::Doorbell(DoorbellError::Refused(0x1_0000_0000)));
        assert_vmpck_wiped(&mut session);
    }
    // The PSP refuses a request it cannot open (here: it holds another launch's VMPCK0) with a
    // status and no answer.
    let link = FakeLink::tampering("DoorbellRequest", |msg, host| {
        let Message::DoorbellRequest(request) = msg else { unreachable!() };
        let mut other_launch = host.psp.launch().expect("another launch");
        let (status, response) = other_launch.guest_request(host.psp, &request.request);
        frame(&DoorbellResponse { kind: request.kind, status, response, certificates: None }.into())
    });
    let mut session = run(link);
    assert_doorbell_refused(
        &session,
        Stage::Report,
        &SnpError::Doorbell(DoorbellError::Refused(u64::from(STATUS_INVALID_PARAMETERS))),
    );
    assert_vmpck_wiped(&mut session);
}

#[test]
fn unusable_report_responses_are_refused() {
    type Tamper = fn(&[u8], &SimPsp) -> Vec<u8>;
    let cases: [(SnpError, Tamper); 3] = [
        (SnpError::Malformed("MSG_REPORT_RSP"), |_, _| Vec::new()),
        (SnpError::Malformed("MSG_REPORT_RSP"), |request, psp| {
            psp.handle_report_request(request)[..0x20 + 100].to_vec()
        }),
        (SnpError::Firmware(STATUS_INVALID_PARAMETERS), |request, psp| {
            // The PSP refuses a request for VMPL 4.
            let mut request = ReportRequest::parse(request).unwrap();
            request.vmpl = 4;
            psp.handle_report_request(&request.to_bytes())
        }),
    ];
    for (why, tamper) in cases {
        assert_doorbell_refused(&run(firmware_answer(Stage::Report, 0, tamper)), Stage::Report, &why);
    }
}

#[test]
fn a_report_version_the_guest_does_not_know_is_still_sent_as_evidence() {
    // New firmware may bring a report version this build has never seen (version 4 arrived
    // that way). The guest checks only the length and REPORT_DATA and leaves the version to
    // the verifier: it must not stop attesting. (It used to refuse anything but 2-5.)
    fn with_version<const V: u32>(request: &[u8], psp: &SimPsp) -> Vec<u8> {
        let response = psp.handle_report_request(request);
        let mut report = ReportResponse::parse(&response).unwrap().report.to_vec();
        report[..4].copy_from_slice(&V.to_le_bytes());
        let mut out = vec![0; response.len()];
        ReportResponse::encode(STATUS_SUCCESS, &report, &mut out).unwrap();
        out
    }
    type Tamper = fn(&[u8], &SimPsp) -> Vec<u8>;
    let cases: [(u32, Tamper); 2] = [(1, with_version::<1>), (6, with_version::<6>)];
    for (version, tamper) in cases {
        let session = run(firmware_answer(Stage::Report, 0, tamper));
        let evidence = sent_evidence(&session);
        assert_eq!(&evidence.evidence[..4], &version.to_le_bytes());
        assert!(session.events.iter().any(|e| e == "ReportReceived"), "{:?}", session.events);
        // The verifier, which parses strictly, is the one that refuses it.
        assert!(AttestationReport::parse(&evidence.evidence).is_err());
        assert!(
            matches!(expect_err(&session), SessionError::Channel(ChannelError::HostError(..))),
            "{:?}",
            session.result
        );
    }
}

#[test]
fn unusable_key_responses_are_refused() {
    type Tamper = fn(&[u8], &SimPsp) -> Vec<u8>;
    let cases: [(SnpError, Tamper); 3] = [
        (SnpError::Malformed("MSG_KEY_RSP"), |_, _| Vec::new()),
        (SnpError::Malformed("MSG_KEY_RSP"), |request, psp| psp.handle_key_request(request)[..63].to_vec()),
        (SnpError::Firmware(STATUS_INVALID_PARAMETERS), |request, psp| {
            // The PSP refuses a key for a TCB above the platform's.
            let mut request = KeyRequest::parse(request).unwrap();
            request.tcb_version = u64::MAX;
            psp.handle_key_request(&request.to_bytes()).to_vec()
        }),
    ];
    for (why, tamper) in cases {
        let session = run(firmware_answer(Stage::Key, 0, tamper));
        assert_doorbell_refused(&session, Stage::Key, &why);
        // The credential was accepted but could not be sealed: no Done, no outcome.
        assert!(!session.sent_names().contains(&"Done"));
    }
}

#[test]
fn host_error_instead_of_doorbell_response_ends_the_session() {
    for stage in Stage::ALL {
        let link = FakeLink::tampering_doorbell(stage, |_, _| {
            frame(&ErrorMsg::new(ErrorCode::DoorbellFailed, "no simulated TDX module").into())
        });
        let mut session = run(link);
        assert!(
            matches!(expect_err(&session), SessionError::Channel(ChannelError::HostError(ErrorCode::DoorbellFailed, m)) if m == "no simulated TDX module"),
            "{stage:?}: {:?}",
            session.result
        );
        // The host said why it gave up; the guest does not answer an Error with an Error.
        assert_eq!(session.sent_names(), stage.sent_until());
        assert_vmpck_wiped(&mut session);
    }
}

// ---------------------------------------------------------------------------------------
// The guest-message envelope: the host cannot forge, alter or replay the firmware's answers

/// An honest host, except that the DoorbellResponse at `stage` is passed through `alter`.
fn altering_response(stage: Stage, alter: impl Fn(&mut DoorbellResponse, &Host) + 'static) -> FakeLink {
    FakeLink::tampering_doorbell(stage, move |msg, host| {
        let Some(Message::DoorbellResponse(mut response)) = host.honest_reply(msg) else { unreachable!() };
        assert_eq!(response.status, 0, "the simulated PSP answers the guest's request");
        alter(&mut response, host);
        frame(&response.into())
    })
}

/// The session ended at `stage` because the firmware's answer did not open (`why`), and the
/// guest will never use its VMPCK again.
fn assert_envelope_refused(mut session: Session, stage: Stage, why: GuestMsgError) {
    assert_doorbell_refused(&session, stage, &SnpError::Envelope(why));
    assert!(!session.sent_names().contains(&"Done"));
    assert_vmpck_wiped(&mut session);
}

#[test]
fn replayed_doorbell_response_is_refused() {
    // The host answers the key request with the firmware's earlier, genuine answer to the
    // report request (in a DoorbellResponse of the key request's kind).
    let mut report_response: Option<Vec<u8>> = None;
    let link = FakeLink::new(
        Host::new(true),
        Box::new(move |msg, host| {
            let Message::DoorbellRequest(request) = msg else { return None };
            let reply = match &report_response {
                None => host.honest_reply(msg)?,
                Some(earlier) => {
                    DoorbellResponse { kind: request.kind, status: 0, response: earlier.clone(), certificates: None }
                        .into()
                }
            };
            if let Message::DoorbellResponse(r) = &reply {
                report_response.get_or_insert_with(|| r.response.clone());
            }
            Some(frame(&reply))
        }),
    );
    let session = run(link);
    let why = GuestMsgError::Sequence { expected: Stage::Key.response_seqno(), actual: Stage::Report.response_seqno() };
    assert_envelope_refused(session, Stage::Key, why);
}

#[test]
fn doorbell_response_sealed_under_another_vmpck_is_refused() {
    // The same answer, header and all, sealed under another launch's VMPCK0 on the same chip.
    for stage in Stage::ALL {
        let link = altering_response(stage, |response, host| {
            let mut plain = vec![0u8; MAX_MESSAGE];
            let (header, len) = guest_msg::open(&Vmpck::new(host.vmpck()), &response.response, &mut plain).unwrap();
            let other = vmpck_of(&host.psp.launch().expect("another launch"));
            assert_ne!(other, host.vmpck());
            let mut out = vec![0u8; MAX_MESSAGE];
            let n = guest_msg::seal(&Vmpck::new(other), &header, &plain[..len], &mut out).unwrap();
            out.truncate(n);
            response.response = out;
        });
        assert_envelope_refused(run(link), stage, GuestMsgError::Authentication);
    }
}

#[test]
fn altered_doorbell_response_is_refused() {
    // One bit flipped at `offset(len)` of the sealed answer, and what the guest must say.
    type Offset = fn(usize) -> usize;
    let cases = |stage: Stage| -> Vec<(&'static str, Offset, GuestMsgError)> {
        let seqno = stage.response_seqno();
        let msg_type = stage.response_type();
        vec![
            ("first ciphertext byte", |_| HEADER_SIZE, GuestMsgError::Authentication),
            ("middle ciphertext byte", |len| (HEADER_SIZE + len) / 2, GuestMsgError::Authentication),
            ("last ciphertext byte", |len| len - 1, GuestMsgError::Authentication),
            ("authentication tag", |_| 0x05, GuestMsgError::Authentication),
            ("MSG_VERSION (must equal the request's)", |_| 0x35, GuestMsgError::UnsupportedHeader),
            ("reserved header byte (authenticated)", |_| 0x50, GuestMsgError::Authentication),
            ("sequence number", |_| 0x20, GuestMsgError::Sequence { expected: seqno, actual: seqno ^ 1 }),
            ("message type", |_| 0x34, GuestMsgError::WrongType { expected: msg_type, actual: msg_type ^ 1 }),
            ("VMPCK id", |_| 0x3C, GuestMsgError::WrongKey),
            ("MSG_SIZE", |_| 0x36, GuestMsgError::Truncated),
            ("ALGO", |_| 0x30, GuestMsgError::UnsupportedHeader),
        ]
    };
    for stage in Stage::ALL {
        for (what, offset, why) in cases(stage) {
            let link = altering_response(stage, move |response, _| {
                let at = offset(response.response.len());
                response.response[at] ^= 1;
            });
            let session = run(link);
            assert!(
                matches!(&session.result, Err(SessionError::Tee(TeeError::Snp(_)))),
                "{stage:?} {what}: {:?}",
                session.result
            );
            assert_envelope_refused(session, stage, why);
        }
        // Cut short by one byte.
        let link = altering_response(stage, |response, _| {
            response.response.pop();
        });
        assert_envelope_refused(run(link), stage, GuestMsgError::Truncated);
    }
}

/// The simulated PSP of `host`, rung directly (no channel), counting the rings.
struct PspDoorbell<'a> {
    host: &'a mut Host,
    rung: usize,
}

impl SnpDoorbell for PspDoorbell<'_> {
    fn guest_request(&mut self, sealed: &[u8], _: Exit) -> Result<Answer, DoorbellError> {
        self.rung += 1;
        match self.host.sim.guest_request(self.host.psp, sealed) {
            (0, response) => Ok(Answer::sealed(response)),
            (status, _) => Err(DoorbellError::Refused(status)),
        }
    }
}

#[test]
fn after_a_refused_answer_the_guest_never_uses_its_vmpck_again() {
    // The probe in `assert_vmpck_wiped` is not vacuous: after an honest session the guest's
    // VMPCK still works, and the next request gets a report from its launch.
    let mut session = run(FakeLink::honest());
    assert!(session.result.is_ok(), "{:?}", session.result);
    let Session { snp, link, .. } = &mut session;
    let host = &mut link.host;
    let mut doorbell = PspDoorbell { host, rung: 0 };
    let report = snp.report(&[0x11; 64], &mut doorbell).expect("a third exchange, in sequence");
    assert_eq!(doorbell.rung, 1);
    assert_eq!(AttestationReport::parse(&report).unwrap().report_data, [0x11; 64]);

    // After a refused answer the session sends nothing more to the firmware, and the guest
    // could not even if asked: its key is gone (see `assert_vmpck_wiped` in every case above).
    let session = run(altering_response(Stage::Report, |response, _| response.response[HEADER_SIZE] ^= 1));
    assert_eq!(session.sent_names(), ["Hello", "Initiate", "DoorbellRequest", "Error"]);
    assert_envelope_refused(session, Stage::Report, GuestMsgError::Authentication);
}

// ---------------------------------------------------------------------------------------
// The credential

#[test]
fn credential_from_another_ca_is_rejected_and_reported() {
    let link = FakeLink::tampering("Evidence", |msg, _| {
        let Message::Evidence(Evidence { public_key, .. }) = msg else { unreachable!() };
        let impostor = TestCa::new(0xBAD, "CN=TWI issuer CA for example.org,O=TWI");
        let certificate = impostor.issue_workload(public_key, WORKLOAD_ID);
        frame(&Credential { certificate, workload_id: WORKLOAD_ID.into(), attestation_result: None, wit: None }.into())
    });
    let session = run(link);
    assert!(
        matches!(expect_err(&session), SessionError::Credential(CredentialError::BadSignature)),
        "{:?}",
        session.result
    );
    // Rejected, reported, and not sealed: no key request follows.
    assert_eq!(session.sent_names(), ["Hello", "Initiate", "DoorbellRequest", "Evidence", "Error", "Done"]);
    let error = session.errors_sent()[0];
    assert_eq!(error.code, ErrorCode::CredentialRejected);
    assert!(error.message.contains(CredentialError::BadSignature.as_str()), "{}", error.message);
    assert_eq!(session.link.sent[5], Message::Done(Done { credential_accepted: false }));
    assert!(!session.events.iter().any(|e| e.starts_with("CredentialAccepted")));
    assert!(!session.events.iter().any(|e| e.starts_with("CredentialSealed")));
}

#[test]
fn credential_for_another_workload_than_announced_is_rejected() {
    // The issuer's genuine credential, relayed with another workload id.
    let link = FakeLink::tampering("Evidence", |msg, host| {
        let Some(Message::Credential(mut credential)) = host.honest_reply(msg) else { unreachable!() };
        credential.workload_id = "spiffe://example.org/admin".into();
        frame(&credential.into())
    });
    let session = run(link);
    assert!(
        matches!(expect_err(&session), SessionError::Credential(CredentialError::WrongSubjectAltName)),
        "{:?}",
        session.result
    );
    assert_eq!(session.errors_sent()[0].code, ErrorCode::CredentialRejected);
    assert_eq!(session.sent_names(), ["Hello", "Initiate", "DoorbellRequest", "Evidence", "Error", "Done"]);
    assert_eq!(session.link.sent.last(), Some(&Message::Done(Done { credential_accepted: false })));
}

#[test]
fn host_error_instead_of_credential_ends_the_session() {
    let link = FakeLink::tampering("Evidence", |_, _| {
        frame(&ErrorMsg::new(ErrorCode::PolicyRejected, "measurement is not in the policy").into())
    });
    let session = run(link);
    match expect_err(&session) {
        SessionError::Channel(ChannelError::HostError(code, message)) => {
            assert_eq!(*code, ErrorCode::PolicyRejected);
            assert_eq!(message, "measurement is not in the policy");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(session.sent_names(), ["Hello", "Initiate", "DoorbellRequest", "Evidence"]);
}

// ---------------------------------------------------------------------------------------
// The link

#[test]
fn host_closing_the_link_ends_the_session() {
    let half_a_credential = |msg: &Message, host: &mut Host| {
        let bytes = frame(&host.honest_reply(msg).unwrap());
        bytes[..bytes.len() / 2].to_vec()
    };
    let cases: Vec<(&str, FakeLink, Vec<&str>)> = vec![
        ("after Initiate", FakeLink::tampering("Initiate", |_, _| Vec::new()), vec!["Hello", "Initiate"]),
        (
            "after the report DoorbellRequest",
            FakeLink::tampering_doorbell(Stage::Report, |_, _| Vec::new()),
            Stage::Report.sent_until(),
        ),
        (
            "mid-Credential",
            FakeLink::tampering("Evidence", half_a_credential),
            vec!["Hello", "Initiate", "DoorbellRequest", "Evidence"],
        ),
        (
            "after the key DoorbellRequest",
            FakeLink::tampering_doorbell(Stage::Key, |_, _| Vec::new()),
            Stage::Key.sent_until(),
        ),
    ];
    for (when, link, sent) in cases {
        let session = run(link);
        assert!(
            matches!(expect_err(&session), SessionError::Channel(ChannelError::Closed)),
            "{when}: {:?}",
            session.result
        );
        assert_eq!(session.sent_names(), sent, "{when}");
    }
}

// ---------------------------------------------------------------------------------------
// Mechanisms A and B

/// A stand-in for the Verifier's EAR JWT (the guest forwards it without reading it).
const TEST_EAR: &str = "eyJhbGciOiJFUzM4NCJ9.eyJ0d2kiOnRydWV9.c2lnbmF0dXJl";

/// Under mechanism B the Verifier answers the Evidence with an attestation result; the guest
/// forwards it to the Credential Authority with the vault's signature as proof of possession,
/// never the key, and gets the credential.
#[test]
fn mechanism_b_forwards_the_attestation_result_with_a_proof_of_possession() {
    use p384::ecdsa::signature::Verifier;
    use sha2::{Digest, Sha256};
    let link = FakeLink::new(
        Host::new(true),
        Box::new(|msg, host| match msg {
            Message::Evidence(_) => {
                // The honest issuer appraises and issues; the credential waits for the request.
                assert!(matches!(host.honest_reply(msg), Some(Message::Credential(_))));
                Some(frame(&AttestationResult { ear: TEST_EAR.into() }.into()))
            }
            Message::CredentialRequest(request) => {
                let nonce = host.nonce.clone().expect("a challenge");
                let digest: [u8; 32] = Sha256::digest(request.ear.as_bytes()).into();
                let signed = twi_proto::msg::credential_request_signed_bytes(&nonce, &request.public_key, &digest);
                let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(&request.public_key).expect("a P-384 key");
                let proof = p384::ecdsa::Signature::from_der(&request.proof).expect("a DER signature");
                if request.ear != TEST_EAR || key.verify(&signed, &proof).is_err() {
                    return Some(frame(&ErrorMsg::new(ErrorCode::PolicyRejected, "bad credential request").into()));
                }
                let issued = host.issued.as_ref().expect("issued");
                Some(frame(
                    &Credential {
                        certificate: issued.certificate_der.clone(),
                        workload_id: issued.workload_id.clone(),
                        attestation_result: None,
                        wit: None,
                    }
                    .into(),
                ))
            }
            _ => None,
        }),
    );
    let session = run(link);
    let outcome = session.result.as_ref().expect("the session succeeds");
    assert_eq!(
        session.sent_names(),
        ["Hello", "Initiate", "DoorbellRequest", "Evidence", "CredentialRequest", "DoorbellRequest", "Done"]
    );
    let Message::Hello(hello) = &session.link.sent[0] else { unreachable!() };
    let mechanisms = CAP_MECHANISM_A | CAP_MECHANISM_B | CAP_MECHANISM_C | CAP_MECHANISM_D;
    assert_eq!(hello.capabilities & mechanisms, session::RUNTIME_MECHANISMS);
    assert!(session.events.contains(&format!("AttestationResultReceived({})", TEST_EAR.len())), "{:?}", session.events);
    let Message::CredentialRequest(request) = &session.link.sent[4] else { unreachable!() };
    assert_eq!(request.public_key, session.public_key());
    // The proof is the vault key's signature over the documented input, and binds the nonce.
    let nonce = session.link.host.nonce.clone().unwrap();
    let digest: [u8; 32] = Sha256::digest(TEST_EAR.as_bytes()).into();
    let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(&request.public_key).unwrap();
    let proof = p384::ecdsa::Signature::from_der(&request.proof).unwrap();
    key.verify(&twi_proto::msg::credential_request_signed_bytes(&nonce, &request.public_key, &digest), &proof).unwrap();
    let mut other = nonce.clone();
    other[0] ^= 1;
    assert!(
        key.verify(&twi_proto::msg::credential_request_signed_bytes(&other, &request.public_key, &digest), &proof)
            .is_err()
    );
    assert_eq!(outcome.workload_id, WORKLOAD_ID);
}

/// A second attestation result instead of the credential is refused (one request per session).
#[test]
fn mechanism_b_a_second_attestation_result_is_refused() {
    let link = FakeLink::new(
        Host::new(true),
        Box::new(|msg, host| match msg {
            Message::Evidence(_) => {
                host.honest_reply(msg);
                Some(frame(&AttestationResult { ear: TEST_EAR.into() }.into()))
            }
            Message::CredentialRequest(_) => Some(frame(&AttestationResult { ear: TEST_EAR.into() }.into())),
            _ => None,
        }),
    );
    let session = run(link);
    assert!(
        matches!(expect_err(&session), SessionError::Channel(ChannelError::Unexpected("AttestationResult"))),
        "{:?}",
        session.result
    );
}

/// Under mechanism A the credential comes with the attestation result: the guest checks the
/// credential as always and records that a result came with it.
#[test]
fn mechanism_a_credential_with_an_attestation_result_is_accepted_and_recorded() {
    let link = FakeLink::tampering("Evidence", |msg, host| {
        let Some(Message::Credential(mut credential)) = host.honest_reply(msg) else { panic!("no credential") };
        credential.attestation_result = Some(TEST_EAR.into());
        frame(&credential.into())
    });
    let session = run(link);
    assert!(session.result.is_ok(), "{:?}", session.result);
    assert!(
        session.events.contains(&format!("AttestationResultWithCredential({})", TEST_EAR.len())),
        "{:?}",
        session.events
    );
}

// ---------------------------------------------------------------------------------------
// Mechanism D: the Key Store's release, opened in the vault

/// The seed of the key the workload owner provisioned in the Key Store.
const PROVISIONED_SEED: u64 = 0x0D0D_0000_5EED_0003;

/// A certificate for `key` under the host's issuer CA (what the owner provisioned), made with
/// the CA key its state holds.
fn provisioned_certificate(host: &Host, key: &[u8]) -> Vec<u8> {
    let pem = std::fs::read_to_string(host.state.path().join("issuer-ca.key.pem")).expect("the CA key");
    TestCa::from_pem(&pem, host.issuer.ca().unwrap().subject().clone()).issue_workload(key, WORKLOAD_ID)
}

/// The Key Store's honest release for `evidence`: the provisioned key sealed to the ephemeral
/// key the Evidence binds; `edit` may then alter it.
fn key_release(evidence: &Evidence, host: &Host, edit: fn(&mut KeyRelease)) -> Vec<u8> {
    use sha2::Digest;
    use twi_attester::hpke;
    let provisioned = key_from_seed(PROVISIONED_SEED);
    let certificate = provisioned_certificate(host, &public_sec1(&provisioned));
    let info = twi_proto::msg::key_release_info(&evidence.nonce, &evidence.public_key);
    let aad = twi_proto::msg::key_release_aad(&sha2::Sha256::digest(&certificate).into());
    let mut ciphertext = vec![0u8; 48 + hpke::TAG_LEN];
    let scalar = provisioned.to_bytes();
    let enc = hpke::seal(&evidence.public_key, &info, &aad, &scalar, &mut ciphertext, &mut TestRng(99)).unwrap();
    let mut release = KeyRelease { certificate, workload_id: WORKLOAD_ID.into(), enc: enc.to_vec(), ciphertext };
    edit(&mut release);
    frame(&release.into())
}

/// A host that asks for mechanism D and answers the Evidence with `answer`.
fn mechanism_d_link(answer: impl Fn(&Evidence, &Host) -> Vec<u8> + 'static) -> FakeLink {
    FakeLink::new(
        Host::new(true),
        Box::new(move |msg, host| match msg {
            Message::Initiate(_) => {
                let nonce = host.challenge();
                host.nonce = Some(nonce.clone());
                Some(frame(&Challenge { nonce, key_release: true, freshness: Freshness::PresentNonce }.into()))
            }
            Message::Evidence(evidence) => Some(answer(evidence, host)),
            _ => None,
        }),
    )
}

fn sent_evidence(session: &Session) -> &Evidence {
    session.link.sent.iter().find_map(|m| if let Message::Evidence(e) = m { Some(e) } else { None }).unwrap()
}

#[test]
fn mechanism_d_installs_the_released_key_as_the_credential_key() {
    let session = run(mechanism_d_link(|evidence, host| key_release(evidence, host, |_| {})));
    let outcome = session.result.as_ref().expect("the session succeeds");
    assert_eq!(session.sent_names(), HONEST_SEQUENCE);
    let provisioned = public_sec1(&key_from_seed(PROVISIONED_SEED));
    let boot = public_sec1(&key_from_seed(KEY_SEED));
    // The vault now holds the provisioned key, and the credential certifies it.
    assert_eq!(session.public_key(), provisioned);
    check_credential(&outcome.certificate, &session.link.host.anchor(), &provisioned, WORKLOAD_ID).unwrap();
    // The Evidence bound a third key: the ephemeral HPKE key, generated for this release.
    let evidence = sent_evidence(&session);
    assert_ne!(evidence.public_key, provisioned);
    assert_ne!(evidence.public_key, boot);
    let report = session.evidence_report();
    assert_eq!(
        report.report_data,
        twi_testkit::tacra::retrieve(&evidence.public_key, &evidence.nonce, &session.link.host.issuer.rp_id(), TARGET)
    );
    assert!(session.events.iter().any(|e| e == "ReleaseKeyBound"), "{:?}", session.events);
    assert!(session.events.iter().any(|e| e == "KeyReleased"), "{:?}", session.events);
    // Neither the released scalar nor anything of the ephemeral key's secret went back out.
    assert_never_sent(&session.link.wire, &key_from_seed(PROVISIONED_SEED).to_bytes(), "released key");
    // The decryption key the release was sealed to is gone; the session's key and the released one stay.
    assert_eq!(session.vault.len(), 2);
}

#[test]
fn mechanism_d_refuses_an_altered_release_and_keeps_no_credential() {
    for (what, edit) in [
        ("ciphertext", (|r: &mut KeyRelease| r.ciphertext[7] ^= 1) as fn(&mut KeyRelease)),
        ("tag", |r: &mut KeyRelease| r.ciphertext[63] ^= 0x80),
        ("enc", |r: &mut KeyRelease| r.enc[40] ^= 1),
        ("certificate (aad)", |r: &mut KeyRelease| {
            let last = r.certificate.len() - 1;
            r.certificate[last] ^= 1
        }),
    ] {
        let session = run(mechanism_d_link(move |evidence, host| key_release(evidence, host, edit)));
        let error = expect_err(&session);
        assert!(
            matches!(error, SessionError::KeyRelease(twi_runtime::vault::VaultError::ReleaseDidNotOpen)),
            "{what}: {error}"
        );
        assert!(error.to_string().contains("key release refused"), "{error}");
        assert_eq!(
            session.sent_names(),
            ["Hello", "Initiate", "DoorbellRequest", "Evidence", "Error", "Done"],
            "{what}"
        );
        assert_eq!(session.errors_sent()[0].code, ErrorCode::CredentialRejected);
        assert_eq!(session.link.sent[5], Message::Done(Done { credential_accepted: false }));
        assert_eq!(session.public_key(), public_sec1(&key_from_seed(KEY_SEED)), "{what}: the boot key stays");
    }
}

#[test]
fn mechanism_d_refuses_a_plain_credential_and_a_certificate_for_another_key() {
    // A Credential where the KeyRelease belongs: it could only certify the ephemeral key.
    let session = run(mechanism_d_link(|evidence, host| {
        frame(
            &Credential {
                certificate: provisioned_certificate(host, &evidence.public_key),
                workload_id: WORKLOAD_ID.into(),
                attestation_result: None,
                wit: None,
            }
            .into(),
        )
    }));
    assert!(
        matches!(expect_err(&session), SessionError::Channel(ChannelError::Unexpected("Credential"))),
        "{}",
        expect_err(&session)
    );
    // A release whose certificate certifies another key than the one released.
    let session = run(mechanism_d_link(|evidence, host| {
        use sha2::Digest;
        use twi_attester::hpke;
        let other = public_sec1(&key_from_seed(0xBAD));
        let certificate = provisioned_certificate(host, &other);
        let info = twi_proto::msg::key_release_info(&evidence.nonce, &evidence.public_key);
        let aad = twi_proto::msg::key_release_aad(&sha2::Sha256::digest(&certificate).into());
        let mut ciphertext = vec![0u8; 64];
        let scalar = key_from_seed(PROVISIONED_SEED).to_bytes();
        let enc = hpke::seal(&evidence.public_key, &info, &aad, &scalar, &mut ciphertext, &mut TestRng(5)).unwrap();
        frame(&KeyRelease { certificate, workload_id: WORKLOAD_ID.into(), enc: enc.to_vec(), ciphertext }.into())
    }));
    assert!(matches!(expect_err(&session), SessionError::Credential(_)), "{}", expect_err(&session));
    assert_eq!(session.link.sent.last(), Some(&Message::Done(Done { credential_accepted: false })));
}
