//! `session::run` end to end on the host. The guest side is the real runtime code; the host
//! side is a fake loader + issuer behind an in-memory [`Link`]: whenever the guest waits for a
//! byte and none is queued, the fake host reads what the guest wrote so far and answers it
//! (honestly, with a real `twi_issuer::Issuer` and the simulated PSP, unless the test's script
//! says otherwise). When the host has nothing more to say the link reports itself closed,
//! so no test can hang.

mod support;

use std::collections::VecDeque;
use std::sync::LazyLock;
use std::time::Duration;

use der::Decode;
use twi_attester::binding;
use twi_attester::snp::msg::{ReportRequest, ReportResponse, STATUS_SUCCESS};
use twi_attester::snp::report::AttestationReport;
use twi_host::sim::snp::SimPsp;
use twi_issuer::{EvidenceBundle, Issued, Issuer, IssuerConfig};
use twi_proto::frame::{MAX_ENCODED_FRAME, cobs_decode, cobs_encode, crc32};
use twi_proto::msg::{
    CAP_SIM_DOORBELL, Challenge, Credential, Done, DoorbellKind, DoorbellResponse, ErrorCode, ErrorMsg, Evidence,
    Hello, Message, PROTOCOL_VERSION, Platform,
};
use twi_proto::{MessageReader, encode_frame, write_message};
use twi_runtime::credential::{CredentialError, check_credential};
use twi_runtime::session::{self, Channel, Link, MAX_MALFORMED_FRAMES, Outcome, SessionError, Trust};
use twi_runtime::vault::Vault;
use x509_cert::Certificate;

use support::{TestCa, TestRng, key_from_seed, public_sec1};

/// The seed of the Credential Key in every session: the tests can regenerate the key outside
/// the vault and so know the secret scalar the guest must never send.
const KEY_SEED: u64 = 0x7E57_C0DE_5EED_0001;
const RUNTIME_NAME: &str = "twi-runtime/test";
const WORKLOAD_ID: &str = "spiffe://example.org/payroll";

/// The simulated chip (three P-384 keys and their chain), made once for all tests. Its state
/// directory is not needed once it is loaded.
static PSP: LazyLock<SimPsp> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("tempdir");
    SimPsp::load_or_create(dir.path()).expect("simulated PSP")
});

// ---------------------------------------------------------------------------------------
// The fake host

/// The loader and the issuer, as the real ones behave.
struct Host {
    issuer: Issuer,
    psp: &'static SimPsp,
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
            workload: "payroll".into(),
            lifetime: Duration::from_secs(3600),
            sim_snp_root: accept_simulated_tee.then(|| PSP.root().clone()),
        };
        let issuer = Issuer::open(state.path(), config).expect("issuer");
        Self { issuer, psp: &PSP, nonce: None, issued: None }
    }

    /// The issuer anchor the launch manifest carries.
    fn anchor(&self) -> Vec<u8> {
        self.issuer.ca().public_key_sec1()
    }

    /// What the real loader and issuer answer to `msg` (`None`: nothing).
    fn honest_reply(&mut self, msg: &Message) -> Option<Message> {
        match msg {
            Message::Hello(_) => {
                let nonce = self.issuer.challenge().expect("nonce");
                self.nonce = Some(nonce.clone());
                Some(Challenge { nonce }.into())
            }
            Message::DoorbellRequest(request) => Some(
                DoorbellResponse {
                    kind: request.kind,
                    status: 0,
                    response: self.psp.handle_report_request(&request.request),
                }
                .into(),
            ),
            Message::Evidence(evidence) => {
                let endorsements = self.psp.endorsements().expect("endorsements");
                let bundle = EvidenceBundle {
                    platform: evidence.platform,
                    evidence: &evidence.evidence,
                    public_key: &evidence.public_key,
                    nonce: &evidence.nonce,
                    endorsements: &endorsements,
                };
                Some(match self.issuer.issue(&bundle) {
                    Ok(issued) => {
                        let reply = Credential {
                            certificate: issued.certificate_der.clone(),
                            workload_id: issued.workload_id.clone(),
                        };
                        self.issued = Some(issued);
                        reply.into()
                    }
                    Err(rejection) => ErrorMsg::new(ErrorCode::VerificationFailed, &rejection.to_string()).into(),
                })
            }
            Message::Done(_) | Message::Error(_) | Message::Log(_) => None,
            other => panic!("the guest sent a host-to-guest message: {other:?}"),
        }
    }
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

// ---------------------------------------------------------------------------------------
// Running a session

struct Session {
    result: Result<Outcome, SessionError>,
    /// `Debug` of every event the session reported.
    events: Vec<String>,
    vault: Vault,
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
        self.vault.public_key().expect("a key").to_vec()
    }
}

/// Runs the guest's session against `link`, with the Credential Key from [`KEY_SEED`].
/// Whatever the outcome, the guest must not have sent its private key.
fn run(mut link: FakeLink) -> Session {
    let vault = Vault::new();
    vault.generate(&mut TestRng(KEY_SEED)).expect("key generation");
    let anchor = link.host.anchor();
    let trust = Trust { issuer_anchor: &anchor };
    let mut events = Vec::new();
    let result = {
        let mut channel = Channel::new(&mut link);
        session::run(&mut channel, &vault, &trust, RUNTIME_NAME, &mut |event| events.push(format!("{event:?}")))
    };
    link.drain();
    assert_eq!(link.read, link.wire.len(), "the guest left a partial frame on the wire");
    assert_key_never_sent(&link.wire);
    Session { result, events, vault, link }
}

/// The Credential Key's secret scalar (big-endian, 48 bytes), regenerated outside the vault.
fn secret_scalar() -> Vec<u8> {
    key_from_seed(KEY_SEED).to_bytes().to_vec()
}

/// Whether `needle` occurs in the guest's raw output or in any frame payload it sent (COBS
/// rewrites zero bytes, so a secret could hide from a scan of the raw bytes alone).
fn guest_output_contains(wire: &[u8], needle: &[u8]) -> bool {
    let contains = |hay: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    contains(wire)
        || wire.split(|&b| b == 0).filter(|f| !f.is_empty()).filter_map(|f| cobs_decode(f).ok()).any(|p| contains(&p))
}

fn assert_key_never_sent(wire: &[u8]) {
    let scalar = secret_scalar();
    let mut reversed = scalar.clone();
    reversed.reverse();
    assert!(!guest_output_contains(wire, &scalar), "the guest sent its private key");
    assert!(!guest_output_contains(wire, &reversed), "the guest sent its private key (little-endian)");
}

fn expect_err(session: &Session) -> &SessionError {
    match &session.result {
        Ok(outcome) => panic!("the session succeeded: {outcome:?}"),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------------------------------
// Hostile frames

/// Frames a hostile or noisy host may send, each with the Error code the guest must answer.
fn malformed_frames() -> Vec<(&'static str, Vec<u8>, ErrorCode)> {
    let challenge = twi_proto::encode(&Challenge { nonce: vec![7; 32] }.into()).unwrap();
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

    // The guest spoke the protocol in order, and accepted the credential.
    assert_eq!(session.sent_names(), ["Hello", "DoorbellRequest", "Evidence", "Done"]);
    assert_eq!(
        session.link.sent[0],
        Message::Hello(Hello {
            version: PROTOCOL_VERSION,
            platform: Platform::SimSnp,
            capabilities: CAP_SIM_DOORBELL,
            runtime: RUNTIME_NAME.into(),
        })
    );
    assert_eq!(session.link.sent[3], Message::Done(Done { credential_accepted: true }));
    assert_eq!(
        session.events,
        ["ChallengeReceived", "ReportReceived", "EvidenceSent", &format!("CredentialAccepted({WORKLOAD_ID:?})")]
    );

    // The Evidence binds the vault's key and the issuer's nonce into a report of the PSP.
    let nonce = session.link.host.nonce.clone().expect("a challenge was sent");
    let Message::Evidence(evidence) = &session.link.sent[2] else { unreachable!() };
    assert_eq!(evidence.platform, Platform::SimSnp);
    assert_eq!(evidence.public_key, public_key);
    assert_eq!(evidence.nonce, nonce);
    let report = AttestationReport::parse(&evidence.evidence).expect("a report");
    assert_eq!(report.report_data, binding::report_data(&nonce, &public_key).unwrap());
    let Message::DoorbellRequest(request) = &session.link.sent[1] else { unreachable!() };
    assert_eq!(request.kind, DoorbellKind::SnpGuestRequest);
    assert_eq!(ReportRequest::parse(&request.request).unwrap().report_data, report.report_data);

    // The outcome is the credential the issuer issued, for the vault's key.
    let issued = session.link.host.issued.as_ref().expect("the issuer issued a credential");
    assert_eq!(outcome.certificate, issued.certificate_der);
    assert_eq!(outcome.workload_id, WORKLOAD_ID);
    let cert = Certificate::from_der(&outcome.certificate).expect("DER");
    let spki = cert.tbs_certificate().subject_public_key_info();
    assert_eq!(spki.subject_public_key.as_bytes(), Some(public_key.as_slice()));
    assert_eq!(cert.tbs_certificate().issuer(), session.link.host.issuer.ca().subject());
    assert_eq!(check_credential(&outcome.certificate, &session.link.host.anchor(), &public_key, WORKLOAD_ID), Ok(()));
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
fn issuer_rejection_is_reported_as_a_host_error() {
    // An issuer that does not accept the simulated TEE refuses the Evidence.
    let session = run(FakeLink::new(Host::new(false), Box::new(|_, _| None)));
    match expect_err(&session) {
        SessionError::HostError(ErrorCode::VerificationFailed, message) => {
            assert!(message.contains("simulated TEE"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // The guest has nothing to say to an Error: no Done, no Error of its own.
    assert_eq!(session.sent_names(), ["Hello", "DoorbellRequest", "Evidence"]);
}

// ---------------------------------------------------------------------------------------
// Malformed frames

#[test]
fn malformed_frame_is_answered_with_an_error_and_skipped() {
    let link = FakeLink::tampering("Hello", |msg, host| {
        let mut bytes = b"\x13garbage \xFF\x01 from the host\0".to_vec();
        bytes.extend(frame(&host.honest_reply(msg).unwrap()));
        bytes
    });
    let session = run(link);
    assert!(session.result.is_ok(), "{:?}", session.result);
    assert_eq!(session.sent_names(), ["Hello", "Error", "DoorbellRequest", "Evidence", "Done"]);
    assert_eq!(session.errors_sent()[0].code, ErrorCode::Malformed);
    assert_eq!(session.link.sent[4], Message::Done(Done { credential_accepted: true }));
    assert!(session.events[0].starts_with("MalformedFrame("), "{:?}", session.events);
    assert_eq!(session.events[1], "ChallengeReceived");
}

#[test]
fn malformed_frames_below_the_limit_are_tolerated_across_the_session() {
    // MAX_MALFORMED_FRAMES - 1 bad frames of every kind, spread over the three host turns.
    let budget = (MAX_MALFORMED_FRAMES - 1) as usize;
    let turns = [budget / 3, budget / 3, budget - 2 * (budget / 3)];
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
            let mut bytes = garbage.pop_front().unwrap_or_default();
            bytes.extend(frame(&reply));
            Some(bytes)
        }),
    );
    let session = run(link);
    assert!(session.result.is_ok(), "{:?}", session.result);
    let sent_codes: Vec<ErrorCode> = session.errors_sent().iter().map(|e| e.code).collect();
    assert_eq!(sent_codes, codes);
    assert_eq!(session.events.iter().filter(|e| e.starts_with("MalformedFrame(")).count(), budget);
    assert_eq!(session.link.sent.last(), Some(&Message::Done(Done { credential_accepted: true })));
}

#[test]
fn too_many_malformed_frames_end_the_session() {
    let n = MAX_MALFORMED_FRAMES as usize;
    let (garbage, codes) = n_malformed_frames(n);
    let link = FakeLink::tampering("Hello", move |msg, host| {
        // A valid Challenge follows, but the guest must have given up before it.
        let mut bytes = garbage.clone();
        bytes.extend(frame(&host.honest_reply(msg).unwrap()));
        bytes
    });
    let session = run(link);
    assert!(matches!(expect_err(&session), SessionError::TooManyMalformedFrames), "{:?}", session.result);
    // One Error per bad frame, and nothing after: the session ended at the limit.
    let mut expected = vec!["Hello"];
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
    let link = FakeLink::tampering("Hello", |_, _| {
        frame(&Credential { certificate: vec![0x30, 0x00], workload_id: WORKLOAD_ID.into() }.into())
    });
    let session = run(link);
    assert!(matches!(expect_err(&session), SessionError::Unexpected("Credential")), "{:?}", session.result);
    assert_eq!(session.sent_names(), ["Hello", "Error"]);
    assert_eq!(session.errors_sent()[0].code, ErrorCode::UnexpectedMessage);
}

#[test]
fn unexpected_message_instead_of_doorbell_response_is_refused() {
    // Another Challenge, and a response for the wrong doorbell.
    let wrong_kind = |msg: &Message, host: &mut Host| {
        let Some(Message::DoorbellResponse(mut response)) = host.honest_reply(msg) else { unreachable!() };
        response.kind = DoorbellKind::TdxGetQuote;
        frame(&response.into())
    };
    let cases: Vec<(&str, FakeLink)> = vec![
        ("Challenge", FakeLink::tampering("DoorbellRequest", |_, _| frame(&Challenge { nonce: vec![1; 32] }.into()))),
        ("DoorbellResponse", FakeLink::tampering("DoorbellRequest", wrong_kind)),
    ];
    for (what, link) in cases {
        let session = run(link);
        assert!(
            matches!(expect_err(&session), SessionError::Unexpected(name) if *name == what),
            "{:?}",
            session.result
        );
        assert_eq!(session.sent_names(), ["Hello", "DoorbellRequest", "Error"], "{what}");
        assert_eq!(session.errors_sent()[0].code, ErrorCode::UnexpectedMessage, "{what}");
    }
}

#[test]
fn unexpected_message_instead_of_credential_is_refused() {
    let link = FakeLink::tampering("Evidence", |_, _| frame(&Challenge { nonce: vec![1; 32] }.into()));
    let session = run(link);
    assert!(matches!(expect_err(&session), SessionError::Unexpected("Challenge")), "{:?}", session.result);
    assert_eq!(session.sent_names(), ["Hello", "DoorbellRequest", "Evidence", "Error"]);
    assert_eq!(session.errors_sent()[0].code, ErrorCode::UnexpectedMessage);
}

// ---------------------------------------------------------------------------------------
// The simulated doorbell

/// Answers the guest's DoorbellRequest with `response(request bytes, psp)` as MSG_REPORT_RSP.
fn doorbell_answer(status: u64, response: fn(&[u8], &SimPsp) -> Vec<u8>) -> FakeLink {
    FakeLink::tampering("DoorbellRequest", move |msg, host| {
        let Message::DoorbellRequest(request) = msg else { unreachable!() };
        let response = response(&request.request, host.psp);
        frame(&DoorbellResponse { kind: request.kind, status, response }.into())
    })
}

fn assert_doorbell_refused(session: &Session, why: &str) {
    assert!(
        matches!(expect_err(session), SessionError::Firmware(what) if *what == why),
        "expected Firmware({why:?}), got {:?}",
        session.result
    );
    assert_eq!(session.sent_names(), ["Hello", "DoorbellRequest", "Error"], "{why}");
    let error = session.errors_sent()[0];
    assert_eq!(error.code, ErrorCode::DoorbellFailed, "{why}");
    assert!(error.message.contains(why), "{}", error.message);
    assert!(!session.events.iter().any(|e| e == "ReportReceived"));
}

#[test]
fn report_for_other_report_data_is_refused() {
    // A genuine report of the PSP, but for REPORTDATA the guest did not ask for.
    let session = run(doorbell_answer(0, |request, psp| {
        let mut request = ReportRequest::parse(request).unwrap();
        request.report_data[0] ^= 0xFF;
        psp.handle_report_request(&request.to_bytes())
    }));
    assert_doorbell_refused(&session, "the report does not carry the requested REPORTDATA");
}

#[test]
fn failed_doorbell_status_is_refused() {
    // The VMM reports failure, even though a valid report came with it.
    let session = run(doorbell_answer(0x1_0000_0000, |request, psp| psp.handle_report_request(request)));
    assert_doorbell_refused(&session, "the guest request failed");
}

#[test]
fn unusable_report_responses_are_refused() {
    type Tamper = fn(&[u8], &SimPsp) -> Vec<u8>;
    let cases: [(&str, Tamper); 4] = [
        ("malformed MSG_REPORT_RSP", |_, _| Vec::new()),
        ("malformed MSG_REPORT_RSP", |request, psp| psp.handle_report_request(request)[..0x20 + 100].to_vec()),
        ("MSG_REPORT_RSP carries a failure status", |request, psp| {
            // The PSP refuses a request for VMPL 4.
            let mut request = ReportRequest::parse(request).unwrap();
            request.vmpl = 4;
            psp.handle_report_request(&request.to_bytes())
        }),
        ("malformed report", |request, psp| {
            let response = psp.handle_report_request(request);
            let mut report = ReportResponse::parse(&response).unwrap().report.to_vec();
            report[..4].copy_from_slice(&1u32.to_le_bytes()); // report version 1 is not supported
            let mut out = vec![0; response.len()];
            ReportResponse::encode(STATUS_SUCCESS, &report, &mut out).unwrap();
            out
        }),
    ];
    for (why, tamper) in cases {
        assert_doorbell_refused(&run(doorbell_answer(0, tamper)), why);
    }
}

#[test]
fn host_error_instead_of_doorbell_response_ends_the_session() {
    let link = FakeLink::tampering("DoorbellRequest", |_, _| {
        frame(&ErrorMsg::new(ErrorCode::DoorbellFailed, "no simulated TDX module").into())
    });
    let session = run(link);
    assert!(
        matches!(expect_err(&session), SessionError::HostError(ErrorCode::DoorbellFailed, m) if m == "no simulated TDX module"),
        "{:?}",
        session.result
    );
    // The host said why it gave up; the guest does not answer an Error with an Error.
    assert_eq!(session.sent_names(), ["Hello", "DoorbellRequest"]);
}

// ---------------------------------------------------------------------------------------
// The credential

#[test]
fn credential_from_another_ca_is_rejected_and_reported() {
    let link = FakeLink::tampering("Evidence", |msg, _| {
        let Message::Evidence(Evidence { public_key, .. }) = msg else { unreachable!() };
        let impostor = TestCa::new(0xBAD, "CN=TWI issuer CA for example.org,O=TWI");
        let certificate = impostor.issue_workload(public_key, WORKLOAD_ID);
        frame(&Credential { certificate, workload_id: WORKLOAD_ID.into() }.into())
    });
    let session = run(link);
    assert!(
        matches!(expect_err(&session), SessionError::Credential(CredentialError::BadSignature)),
        "{:?}",
        session.result
    );
    assert_eq!(session.sent_names(), ["Hello", "DoorbellRequest", "Evidence", "Error", "Done"]);
    let error = session.errors_sent()[0];
    assert_eq!(error.code, ErrorCode::CredentialRejected);
    assert!(error.message.contains(CredentialError::BadSignature.as_str()), "{}", error.message);
    assert_eq!(session.link.sent[4], Message::Done(Done { credential_accepted: false }));
    assert!(!session.events.iter().any(|e| e.starts_with("CredentialAccepted")));
}

#[test]
fn credential_for_another_workload_than_announced_is_rejected() {
    // The issuer's genuine credential, relayed with another workload id.
    let link = FakeLink::new(
        Host::new(true),
        Box::new(|msg, host| {
            let Some(Message::Credential(mut credential)) = host.honest_reply(msg) else { return None };
            credential.workload_id = "spiffe://example.org/admin".into();
            Some(frame(&credential.into()))
        }),
    );
    let session = run(link);
    assert!(
        matches!(expect_err(&session), SessionError::Credential(CredentialError::WrongSubjectAltName)),
        "{:?}",
        session.result
    );
    assert_eq!(session.errors_sent()[0].code, ErrorCode::CredentialRejected);
    assert_eq!(session.link.sent.last(), Some(&Message::Done(Done { credential_accepted: false })));
}

#[test]
fn host_error_instead_of_credential_ends_the_session() {
    let link = FakeLink::tampering("Evidence", |_, _| {
        frame(&ErrorMsg::new(ErrorCode::PolicyRejected, "measurement is not in the policy").into())
    });
    let session = run(link);
    match expect_err(&session) {
        SessionError::HostError(code, message) => {
            assert_eq!(*code, ErrorCode::PolicyRejected);
            assert_eq!(message, "measurement is not in the policy");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(session.sent_names(), ["Hello", "DoorbellRequest", "Evidence"]);
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
        ("after Hello", FakeLink::tampering("Hello", |_, _| Vec::new()), vec!["Hello"]),
        (
            "after DoorbellRequest",
            FakeLink::tampering("DoorbellRequest", |_, _| Vec::new()),
            vec!["Hello", "DoorbellRequest"],
        ),
        (
            "mid-Credential",
            FakeLink::tampering("Evidence", half_a_credential),
            vec!["Hello", "DoorbellRequest", "Evidence"],
        ),
    ];
    for (when, link, sent) in cases {
        let session = run(link);
        assert!(matches!(expect_err(&session), SessionError::LinkClosed), "{when}: {:?}", session.result);
        assert_eq!(session.sent_names(), sent, "{when}");
    }
}
