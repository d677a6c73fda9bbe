//! `Session::run` over the TDX backend (`TdxTee`) through the `TdxModule` trait, on the host. The module is a fake that
//! wraps the host loader's simulated TDX module and quoting enclave (`twi_host_loader::sim::tdx`), so
//! TDREPORTs and quotes are real-format; each test makes it misbehave in one way. The host
//! side of the channel is a queue of frames prepared in advance (Challenge, then Credential);
//! when it runs dry the link reports itself closed, so no test can hang.

use std::collections::VecDeque;
use std::sync::LazyLock;

use sha2::{Digest, Sha384};
use twi_attester::tdx::getquote::{self, GetQuoteError, Header};
use twi_attester::tdx::quote::ParsedQuote;
use twi_attester::tdx::td_report::TD_REPORT_SIZE;
use twi_host_loader::sim::tdx::SimTdx;
use twi_proto::msg::{
    Challenge, Credential, CredentialKind, DoorbellKind, DoorbellRequest, DoorbellResponse, ErrorCode, Freshness,
    Message, Platform, event_type,
};
use twi_proto::{MessageReader, write_message};
use twi_runtime::channel::{Channel, Link};
use twi_runtime::pairwise::TestedKey;
use twi_runtime::session::{self, Acquisition, Event, SessionError, Trust};
use twi_runtime::tee::sim::SimTdxModule;
use twi_runtime::tee::tdx::{TdxError, TdxModule, TdxTee};
use twi_runtime::tee::{Measurement, TeeError};
use twi_runtime::vault::Vault;

use twi_testkit::TestRng;
use twi_testkit::certs::TestCa;
use twi_testkit::rng::{key_from_seed, public_sec1};

const WORKLOAD_ID: &str = "spiffe://example.org/payroll";
const KEY_SEED: u64 = 0x7E57_C0DE_5EED_0101;
const CA_SEED: u64 = 0xCA5E_ED00_0000_0101;
const NONCE: [u8; 32] = [0x4E; 32];
/// TDX_OPERAND_INVALID with the operand id of RDX (Module ABI completion status).
const OPERAND_INVALID_RDX: u64 = 0xC000_0100_0000_0002;

/// The simulated platform's state directory: its keys are made once and loaded by each test.
static SIM_DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("tempdir");
    SimTdx::load_or_create(dir.path()).expect("simulated TDX platform");
    dir
});

fn sim_tdx() -> SimTdx {
    let mut sim = SimTdx::load_or_create(SIM_DIR.path()).expect("simulated TDX platform");
    sim.launch(Sha384::digest(b"test TD").into());
    sim
}

/// How the fake module misbehaves.
#[derive(Clone, Copy, Debug, Default)]
struct Faults {
    /// GetQuote reports "in flight" for this many polls before it answers.
    in_flight_polls: u32,
    /// GetQuote ends with this failure status instead of a quote.
    quote_status: Option<u64>,
    /// TDG.MR.RTMR.EXTEND fails with this status.
    extend_status: Option<u64>,
    /// The module acknowledges the extend of this measurement (by position) without applying
    /// it, so the quote's RTMRs disagree with the guest's log.
    drop_extend: Option<usize>,
    /// The quote's header says this version and attestation key type (a format this build does
    /// not parse), the rest unchanged.
    quote_header: Option<(u16, u16)>,
}

/// A TDX module over the simulator, recording what reached it.
struct FakeModule {
    sim: SimTdx,
    faults: Faults,
    calls: Vec<String>,
    request: Vec<u8>,
    capacity: usize,
    polls: u32,
    pauses: u32,
    /// The pauses the TEE asked for, and their sum.
    delays: Vec<u64>,
    waited_ms: u64,
    extends: usize,
}

impl FakeModule {
    fn new(faults: Faults) -> Self {
        Self {
            sim: sim_tdx(),
            faults,
            calls: Vec::new(),
            request: Vec::new(),
            capacity: 0,
            polls: 0,
            pauses: 0,
            delays: Vec::new(),
            waited_ms: 0,
            extends: 0,
        }
    }
}

impl TdxModule for FakeModule {
    fn rtmr_extend(&mut self, rtmr: u8, digest: &[u8; 48]) -> Result<(), TdxError> {
        self.calls.push(format!("extend {rtmr} {}", hex::encode(&digest[..4])));
        if let Some(status) = self.faults.extend_status {
            return Err(TdxError::Doorbell(status));
        }
        let position = self.extends;
        self.extends += 1;
        if self.faults.drop_extend != Some(position) {
            let mut request = vec![rtmr];
            request.extend_from_slice(digest);
            assert_eq!(self.sim.extend(&request), 0);
        }
        Ok(())
    }

    fn report(&mut self, report_data: &[u8; 64]) -> Result<Vec<u8>, TdxError> {
        self.calls.push("report".into());
        self.sim.report(report_data).map_err(TdxError::Doorbell)
    }

    fn submit_quote(&mut self, buffer: &[u8], request_len: usize) -> Result<(), TdxError> {
        self.calls.push("submit".into());
        self.request = buffer[..request_len].to_vec();
        self.capacity = buffer.len();
        Ok(())
    }

    fn poll_quote(&mut self, out: &mut [u8]) -> Result<usize, TdxError> {
        self.polls += 1;
        let answer = if self.polls <= self.faults.in_flight_polls {
            let header = Header {
                version: getquote::VERSION,
                status: getquote::status::IN_FLIGHT,
                in_len: TD_REPORT_SIZE as u32,
                out_len: 0,
            };
            header.to_bytes().to_vec()
        } else if let Some(status) = self.faults.quote_status {
            // The VMM answers in the guest's buffer, over its request.
            let mut buffer = vec![0u8; self.capacity];
            buffer[..self.request.len()].copy_from_slice(&self.request);
            let len = getquote::encode_response(Err(status), &mut buffer).expect("room for a header");
            buffer.truncate(len);
            buffer
        } else {
            let mut answer = self.sim.get_quote(&self.request, self.capacity);
            if let Some((version, key_type)) = self.faults.quote_header {
                let header = getquote::HEADER_SIZE;
                answer[header..header + 2].copy_from_slice(&version.to_le_bytes());
                answer[header + 2..header + 4].copy_from_slice(&key_type.to_le_bytes());
            }
            answer
        };
        let n = answer.len().min(out.len());
        out[..n].copy_from_slice(&answer[..n]);
        Ok(n)
    }

    fn pause(&mut self, ms: u64) -> u64 {
        self.pauses += 1;
        self.waited_ms += ms;
        self.delays.push(ms);
        ms
    }
}

/// The host: frames queued in advance; what the guest writes is kept.
struct ScriptedLink {
    to_guest: VecDeque<u8>,
    wire: Vec<u8>,
}

impl Link for &mut ScriptedLink {
    fn write_all(&mut self, bytes: &[u8]) {
        self.wire.extend_from_slice(bytes);
    }
    fn read_byte(&mut self) -> Option<u8> {
        self.to_guest.pop_front()
    }
}

fn frame(msg: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    write_message(msg, &mut out).expect("encodable");
    out
}

struct Outcome {
    result: Result<session::Outcome, SessionError>,
    module: FakeModule,
    sent: Vec<Message>,
}

impl Outcome {
    fn names(&self) -> Vec<&'static str> {
        self.sent.iter().map(Message::name).collect()
    }

    fn error_codes(&self) -> Vec<ErrorCode> {
        self.sent.iter().filter_map(|m| if let Message::Error(e) = m { Some(e.code) } else { None }).collect()
    }

    fn tdx_error(&self) -> &TdxError {
        match &self.result {
            Err(SessionError::Tee(TeeError::Tdx(e))) => e,
            other => panic!("expected a TDX error, got {other:?}"),
        }
    }
}

/// What the sessions acquire.
const REQUEST: Acquisition<'static> =
    Acquisition { target: "twi:test", credential_type: CredentialKind::X509, hint: None };

const MANIFEST: &[u8] = b"the launch manifest's postcard body";
const SECOND_MANIFEST_EVENT: &[u8] = b"a later RTMR1 event";

/// One session against `faults`; the host answers Hello with a Challenge and the Evidence with
/// a credential for the vault's key.
fn run(faults: Faults) -> Outcome {
    let ca = TestCa::new(CA_SEED, "CN=Test TDX issuer");
    let anchor = ca.anchor();
    let vault = Vault::new();
    let (key, _) = vault.generate(&mut TestRng(KEY_SEED)).expect("key generation");
    let certificate = ca.issue_workload(&public_sec1(&key_from_seed(KEY_SEED)), WORKLOAD_ID);
    let mut to_guest = frame(&Message::Challenge(Challenge {
        nonce: NONCE.to_vec(),
        key_release: false,
        freshness: Freshness::PresentNonce,
    }));
    to_guest.extend(frame(&Message::Credential(Credential {
        certificate,
        workload_id: WORKLOAD_ID.into(),
        attestation_result: None,
        wit: None,
    })));
    let mut link = ScriptedLink { to_guest: to_guest.into(), wire: Vec::new() };
    let measurements = [
        Measurement { rtmr: 1, event_type: event_type::LAUNCH_MANIFEST, data: MANIFEST },
        Measurement { rtmr: 2, event_type: event_type::ISSUER_ANCHOR, data: &anchor },
        Measurement { rtmr: 1, event_type: event_type::LAUNCH_MANIFEST, data: SECOND_MANIFEST_EVENT },
    ];
    let mut tee = TdxTee::new(FakeModule::new(faults), Platform::Tdx);
    let result = run_session(&mut link, &mut tee, &vault, &anchor, &measurements, key);
    let module = tee.into_module();
    let mut reader = MessageReader::new();
    let sent = link.wire.iter().filter_map(|&b| reader.push(b)).map(|m| m.expect("well-formed guest frame")).collect();
    Outcome { result, module, sent }
}

/// One session over `tee`, with `link` playing the host.
fn run_session(
    link: &mut ScriptedLink,
    tee: &mut TdxTee<FakeModule>,
    vault: &Vault,
    anchor: &[u8],
    measurements: &[Measurement<'_>],
    key: twi_runtime::vault::KeyId,
) -> Result<session::Outcome, SessionError> {
    let key = TestedKey::test(vault, key).expect("the pairwise consistency test");
    let ignore = |_: &twi_proto::ProtoError| {};
    let channel = Channel::new(link, &ignore);
    let mut events = |_: Event<'_>| {};
    let mut session = session::Session {
        channel: &channel,
        vault,
        trust: Trust { issuer_anchor: anchor, rp_id: "CN=Test TDX issuer", epoch_marker: None },
        runtime_name: "twi-runtime/test",
        events: &mut events,
    };
    session.run(tee, &mut TestRng(0x5EED), measurements, &key, &REQUEST)
}

fn digest_prefix(data: &[u8]) -> String {
    hex::encode(&Sha384::digest(data)[..4])
}

#[test]
fn extends_reach_the_module_in_order_and_the_quote_matches_the_log() {
    let outcome = run(Faults::default());
    let anchor = TestCa::new(CA_SEED, "CN=Test TDX issuer").anchor();
    assert_eq!(
        outcome.module.calls,
        [
            format!("extend 1 {}", digest_prefix(MANIFEST)),
            format!("extend 2 {}", digest_prefix(&anchor)),
            format!("extend 1 {}", digest_prefix(SECOND_MANIFEST_EVENT)),
            "report".into(),
            "submit".into(),
        ]
    );
    assert_eq!(outcome.module.polls, 1);
    assert_eq!(outcome.names(), ["Hello", "Initiate", "Evidence", "Done"]);
    let Some(Message::Evidence(evidence)) = outcome.sent.get(2) else { panic!("no Evidence") };
    // The hardware module's platform is what the Hello and the Evidence carry.
    assert_eq!(evidence.platform, Platform::Tdx);
    let Some(Message::Hello(hello)) = outcome.sent.first() else { panic!("no Hello") };
    assert_eq!(hello.platform, Platform::Tdx);
    assert_eq!(hello.capabilities & twi_proto::msg::CAP_SIM_DOORBELL, 0, "hardware asks for no sim doorbell");
    let log = evidence.event_log.as_ref().expect("an event log");
    assert_eq!(log.iter().map(|e| e.rtmr).collect::<Vec<_>>(), [1, 2, 1]);
    let quote = ParsedQuote::parse(&evidence.evidence).expect("a quote");
    assert_eq!(quote.quote.body.rtmr, outcome.module.sim.rtmrs());
    assert_ne!(quote.quote.body.rtmr[1], [0; 48]);
    assert_eq!(quote.len, evidence.evidence.len(), "the quote is passed on whole and alone");
    // On hardware the loader never sees the quote (the VMM's shared buffer): it is sent, not named.
    assert_eq!(evidence.evidence_sha384, None);
    let done = outcome.result.expect("the session succeeds");
    assert_eq!(done.workload_id, WORKLOAD_ID);
}

#[test]
fn an_in_flight_quote_is_polled_with_a_pause_until_it_is_ready() {
    let outcome = run(Faults { in_flight_polls: 3, ..Faults::default() });
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert_eq!((outcome.module.polls, outcome.module.pauses), (4, 3));
    assert_eq!(outcome.names(), ["Hello", "Initiate", "Evidence", "Done"]);
}

/// How many polls fit in the time bound: the first, and one after each pause the backoff allows
/// before 35 s of waiting.
fn polls_within_the_time_bound() -> u32 {
    let (mut polls, mut waited) = (1u32, 0u64);
    while let Some(delay) = getquote::poll::next_delay(polls - 1, waited) {
        waited += delay;
        polls += 1;
    }
    polls
}

#[test]
fn in_flight_polling_stops_at_its_time_bound_with_a_clear_error() {
    // The quote would be ready one poll after the bound: a runtime that kept polling would
    // succeed, and fail this test.
    let bound = polls_within_the_time_bound();
    let outcome = run(Faults { in_flight_polls: bound, ..Faults::default() });
    let TdxError::QuoteTimeout { polls, waited_ms } = *outcome.tdx_error() else {
        panic!("expected a timeout, got {:?}", outcome.result)
    };
    assert_eq!((polls, outcome.module.polls), (bound, bound));
    assert_eq!(outcome.module.pauses, bound - 1);
    // Bounded by time: at least 35 s (QEMU's and Linux's own quote timeout is 30 s), backing
    // off from 10 ms to once a second.
    assert_eq!(waited_ms, outcome.module.waited_ms);
    assert!(waited_ms >= 35_000, "{waited_ms} ms");
    assert_eq!(&outcome.module.delays[..3], &[10, 20, 40]);
    assert_eq!(outcome.module.delays.last(), Some(&1000));
    assert_eq!(outcome.names(), ["Hello", "Initiate", "Error"]);
    assert_eq!(outcome.error_codes(), [ErrorCode::DoorbellFailed]);
    let Some(Message::Error(e)) = outcome.sent.last() else { unreachable!() };
    assert!(e.message.contains("still in flight after 35 s"), "{}", e.message);
    // One poll less in flight and the quote arrives within the bound.
    let outcome = run(Faults { in_flight_polls: bound - 1, ..Faults::default() });
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
}

#[test]
fn a_quote_format_the_guest_does_not_parse_is_still_sent_as_evidence() {
    // A quote version or attestation key type newer than this build: the guest checks only its
    // REPORTDATA and RTMRs (at the offsets every version shares) and leaves the rest to the
    // verifier, so a quoting-enclave update does not stop attestation.
    let outcome = run(Faults { quote_header: Some((4, 3)), ..Faults::default() });
    let Some(Message::Evidence(evidence)) = outcome.sent.get(2) else { panic!("no Evidence: {:?}", outcome.names()) };
    assert_eq!(&evidence.evidence[..4], &[4, 0, 3, 0]);
    assert!(ParsedQuote::parse(&evidence.evidence).is_err(), "the verifier's parser refuses it");
    assert_eq!(outcome.names(), ["Hello", "Initiate", "Evidence", "Done"]);
}

#[test]
fn a_get_quote_error_status_ends_the_session_with_an_error_frame() {
    let outcome = run(Faults { quote_status: Some(getquote::status::QGS_UNAVAILABLE), ..Faults::default() });
    assert_eq!(*outcome.tdx_error(), TdxError::GetQuote(GetQuoteError::Failed(getquote::status::QGS_UNAVAILABLE)));
    assert_eq!(outcome.names(), ["Hello", "Initiate", "Error"]);
    assert_eq!(outcome.error_codes(), [ErrorCode::DoorbellFailed]);
}

#[test]
fn a_failed_extend_ends_the_session_before_any_report() {
    let outcome = run(Faults { extend_status: Some(OPERAND_INVALID_RDX), ..Faults::default() });
    assert_eq!(*outcome.tdx_error(), TdxError::Doorbell(OPERAND_INVALID_RDX));
    assert_eq!(outcome.module.calls.len(), 1, "{:?}", outcome.module.calls);
    assert_eq!(outcome.names(), ["Hello", "Initiate", "Error"]);
    assert_eq!(outcome.error_codes(), [ErrorCode::DoorbellFailed]);
}

#[test]
fn a_quote_whose_rtmrs_disagree_with_the_log_is_refused() {
    // The module acknowledges the issuer-anchor extend but never applies it.
    let outcome = run(Faults { drop_extend: Some(1), ..Faults::default() });
    assert_eq!(*outcome.tdx_error(), TdxError::RtmrMismatch);
    assert_eq!(outcome.names(), ["Hello", "Initiate", "Error"]);
    assert_eq!(outcome.error_codes(), [ErrorCode::DoorbellFailed]);
}

/// The host loader's side of `--platform sim-tdx`: answers each DoorbellRequest with the
/// simulated TDX module (GetQuote "in flight" for the first `in_flight` polls), the Evidence
/// with a credential.
struct SimHostLink {
    sim: SimTdx,
    in_flight: u32,
    certificate: Vec<u8>,
    to_guest: VecDeque<u8>,
    wire: Vec<u8>,
    reader: MessageReader,
    read: usize,
    requests: Vec<DoorbellRequest>,
    /// The quotes the GetQuote answers delivered (what the loader keeps), and the evidence.
    delivered: Vec<Vec<u8>>,
    evidence: Option<twi_proto::msg::Evidence>,
}

impl SimHostLink {
    fn answer(&mut self, msg: Message) -> Option<Message> {
        match msg {
            Message::Initiate(_) => Some(Message::Challenge(Challenge {
                nonce: NONCE.to_vec(),
                key_release: false,
                freshness: Freshness::PresentNonce,
            })),
            Message::DoorbellRequest(request) => {
                self.requests.push(request.clone());
                let (status, response) = match request.kind {
                    DoorbellKind::TdxRtmrExtend => (self.sim.extend(&request.request), Vec::new()),
                    DoorbellKind::TdxReport => match self.sim.report(&request.request) {
                        Ok(report) => (0, report),
                        Err(status) => (status, Vec::new()),
                    },
                    DoorbellKind::TdxGetQuote if self.in_flight > 0 => {
                        self.in_flight -= 1;
                        let header = Header {
                            version: getquote::VERSION,
                            status: getquote::status::IN_FLIGHT,
                            in_len: TD_REPORT_SIZE as u32,
                            out_len: 0,
                        };
                        (0, header.to_bytes().to_vec())
                    }
                    DoorbellKind::TdxGetQuote => {
                        let answer = self.sim.get_quote(&request.request, twi_runtime::tee::tdx::GET_QUOTE_BUFFER);
                        self.delivered.push(getquote::parse_response(&answer).expect("a quote").to_vec());
                        (0, answer)
                    }
                    other => panic!("unexpected doorbell {other:?}"),
                };
                Some(Message::DoorbellResponse(DoorbellResponse {
                    kind: request.kind,
                    status,
                    response,
                    certificates: None,
                }))
            }
            Message::Evidence(evidence) => {
                self.evidence = Some(evidence);
                Some(Message::Credential(Credential {
                    certificate: self.certificate.clone(),
                    workload_id: WORKLOAD_ID.into(),
                    attestation_result: None,
                    wit: None,
                }))
            }
            _ => None,
        }
    }
}

impl Link for &mut SimHostLink {
    fn write_all(&mut self, bytes: &[u8]) {
        self.wire.extend_from_slice(bytes);
    }
    fn read_byte(&mut self) -> Option<u8> {
        while self.to_guest.is_empty() && self.read < self.wire.len() {
            let byte = self.wire[self.read];
            self.read += 1;
            if let Some(msg) = self.reader.push(byte)
                && let Some(reply) = self.answer(msg.expect("well-formed guest frame"))
            {
                self.to_guest.extend(frame(&reply));
            }
        }
        self.to_guest.pop_front()
    }
}

#[test]
fn the_simulated_module_speaks_doorbell_requests_and_resends_the_quote_request_while_in_flight() {
    let ca = TestCa::new(CA_SEED, "CN=Test TDX issuer");
    let anchor = ca.anchor();
    let vault = Vault::new();
    let (key, _) = vault.generate(&mut TestRng(KEY_SEED)).expect("key generation");
    let mut link = SimHostLink {
        sim: sim_tdx(),
        in_flight: 2,
        certificate: ca.issue_workload(&public_sec1(&key_from_seed(KEY_SEED)), WORKLOAD_ID),
        to_guest: VecDeque::new(),
        wire: Vec::new(),
        reader: MessageReader::new(),
        read: 0,
        requests: Vec::new(),
        delivered: Vec::new(),
        evidence: None,
    };
    let measurements = [
        Measurement { rtmr: 1, event_type: event_type::LAUNCH_MANIFEST, data: MANIFEST },
        Measurement { rtmr: 2, event_type: event_type::ISSUER_ANCHOR, data: &anchor },
    ];
    let result = {
        let ignore = |_: &twi_proto::ProtoError| {};
        let channel = Channel::new(&mut link, &ignore);
        let mut tee = TdxTee::new(SimTdxModule::new(&channel), Platform::SimTdx);
        let mut events = |_: Event<'_>| {};
        let mut session = session::Session {
            channel: &channel,
            vault: &vault,
            trust: Trust { issuer_anchor: &anchor, rp_id: "CN=Test TDX issuer", epoch_marker: None },
            runtime_name: "twi-runtime/test",
            events: &mut events,
        };
        let key = TestedKey::test(&vault, key).expect("the pairwise consistency test");
        session.run(&mut tee, &mut TestRng(0x5EED), &measurements, &key, &REQUEST)
    };
    assert!(result.is_ok(), "{result:?}");
    let kinds: Vec<_> = link.requests.iter().map(|r| r.kind).collect();
    use DoorbellKind::{TdxGetQuote, TdxReport, TdxRtmrExtend};
    assert_eq!(kinds, [TdxRtmrExtend, TdxRtmrExtend, TdxReport, TdxGetQuote, TdxGetQuote, TdxGetQuote]);
    // The extend requests are index ‖ SHA-384(data), in the order measured.
    assert_eq!(link.requests[0].request[0], 1);
    assert_eq!(link.requests[0].request[1..], Sha384::digest(MANIFEST)[..]);
    assert_eq!(link.requests[1].request[0], 2);
    // Every poll re-sends the same GHCI request: header + the TDREPORT.
    let quote_requests: Vec<_> = link.requests[3..].iter().map(|r| &r.request).collect();
    assert!(quote_requests.iter().all(|r| *r == quote_requests[0]));
    assert_eq!(quote_requests[0].len(), getquote::HEADER_SIZE + TD_REPORT_SIZE);
    assert_eq!(link.sim.rtmrs()[2], twi_attester::tdx::rtmr::extend(&[0; 48], &Sha384::digest(&anchor).into()));
    // The quote came down in the GetQuote answer from the loader, which keeps it: the evidence
    // names it by the SHA-384 of the quote's bytes instead of sending it back up.
    let [quote] = &link.delivered[..] else { panic!("one quote delivered: {:?}", link.delivered.len()) };
    let evidence = link.evidence.as_ref().expect("the evidence");
    assert!(evidence.evidence.is_empty(), "the quote does not cross the channel twice");
    assert_eq!(evidence.evidence_sha384.as_deref(), Some(&Sha384::digest(quote)[..]));
    assert_eq!(evidence.platform, Platform::SimTdx);
}
