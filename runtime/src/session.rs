//! The runtime's side of the channel protocol, independent of the machine: it runs the same
//! on the bare-metal target (over COM2) and in host tests (over an in-memory link).
//!
//! ```text
//! guest                                   host (loader + issuer)
//!   Hello {version, platform, caps}  ──▶
//!                                    ◀──  Challenge {nonce}
//!   DoorbellRequest {report request} ──▶   (sim TEE only: the simulated firmware)
//!                                    ◀──  DoorbellResponse {report response}
//!   Evidence {report, key, nonce}    ──▶
//!                                    ◀──  Credential {certificate, workload id} | Error
//!   Done {credential_accepted}       ──▶
//! ```
//!
//! Every frame from the host is hostile: a malformed one is answered with an Error frame and
//! skipped (up to a bound), an unexpected message ends the session with an Error frame.

use alloc::string::String;
use alloc::vec::Vec;

use twi_attester::binding;
use twi_attester::snp::msg::{ReportRequest, ReportResponse};
use twi_attester::snp::report::AttestationReport;
use twi_proto::msg::{
    Challenge, Credential, Done, DoorbellKind, DoorbellRequest, ErrorCode, ErrorMsg, Evidence, Hello, Message,
    PROTOCOL_VERSION, Platform,
};
use twi_proto::{MessageReader, ProtoError, write_message};

use crate::credential::{CredentialError, check_credential};
use crate::vault::{Vault, VaultError};

/// Malformed frames tolerated in one session before the runtime gives up on the host.
pub const MAX_MALFORMED_FRAMES: u32 = 8;

/// A byte pipe to the host (COM2 on the machine).
pub trait Link {
    fn write_all(&mut self, bytes: &[u8]);
    /// Blocks until the next byte; `None` when the link is closed (host tests only).
    fn read_byte(&mut self) -> Option<u8>;
}

/// What the session reports as it goes, for the console and the boot figures.
#[derive(Debug)]
pub enum Event<'a> {
    ChallengeReceived,
    ReportReceived,
    EvidenceSent,
    MalformedFrame(&'a ProtoError),
    CredentialAccepted(&'a str),
}

#[derive(Debug)]
pub enum SessionError {
    LinkClosed,
    TooManyMalformedFrames,
    /// The host sent a message that does not fit the protocol state.
    Unexpected(&'static str),
    /// The host answered with an Error message.
    HostError(ErrorCode, String),
    Vault(VaultError),
    Binding,
    /// The (simulated) firmware refused or returned something unusable.
    Firmware(&'static str),
    Credential(CredentialError),
    Encode,
}

impl core::fmt::Display for SessionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::LinkClosed => f.write_str("the host closed the channel"),
            Self::TooManyMalformedFrames => f.write_str("the host sent too many malformed frames"),
            Self::Unexpected(what) => write!(f, "unexpected message from the host: {what}"),
            Self::HostError(code, message) => write!(f, "the host reported an error ({code:?}): {message}"),
            Self::Vault(e) => write!(f, "key vault: {e:?}"),
            Self::Binding => f.write_str("the challenge nonce cannot be bound into REPORTDATA"),
            Self::Firmware(what) => write!(f, "attestation firmware: {what}"),
            Self::Credential(e) => write!(f, "credential rejected: {e}"),
            Self::Encode => f.write_str("a message could not be encoded"),
        }
    }
}

/// The framed, validated message channel over a [`Link`].
pub struct Channel<L: Link> {
    link: L,
    reader: MessageReader,
    malformed: u32,
    out: Vec<u8>,
}

impl<L: Link> core::fmt::Debug for Channel<L> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Channel").field("malformed", &self.malformed).finish_non_exhaustive()
    }
}

impl<L: Link> Channel<L> {
    pub fn new(link: L) -> Self {
        Self { link, reader: MessageReader::new(), malformed: 0, out: Vec::new() }
    }

    pub fn send(&mut self, msg: &Message) -> Result<(), SessionError> {
        self.out.clear();
        write_message(msg, &mut self.out).map_err(|_| SessionError::Encode)?;
        self.link.write_all(&self.out);
        Ok(())
    }

    /// The next well-formed message. A malformed frame is answered with an Error frame,
    /// reported to `events`, and skipped.
    pub fn recv(&mut self, events: &mut dyn FnMut(Event<'_>)) -> Result<Message, SessionError> {
        loop {
            let byte = self.link.read_byte().ok_or(SessionError::LinkClosed)?;
            match self.reader.push(byte) {
                None => continue,
                Some(Ok(msg)) => return Ok(msg),
                Some(Err(error)) => {
                    events(Event::MalformedFrame(&error));
                    self.malformed += 1;
                    let reply = ErrorMsg::new(error.code(), "malformed frame from the host");
                    self.send(&Message::Error(reply))?;
                    if self.malformed >= MAX_MALFORMED_FRAMES {
                        return Err(SessionError::TooManyMalformedFrames);
                    }
                }
            }
        }
    }

    /// Tells the host why the session ends, then returns `error`.
    fn abort(&mut self, code: ErrorCode, error: SessionError) -> SessionError {
        let mut text = String::new();
        let _ = core::fmt::write(&mut text, format_args!("{error}"));
        let _ = self.send(&Message::Error(ErrorMsg::new(code, &text)));
        error
    }
}

/// What the session needs from the launch: who may issue our credential.
#[derive(Debug)]
pub struct Trust<'a> {
    /// SEC1 P-384 public key of the issuer CA, from the measured launch manifest.
    pub issuer_anchor: &'a [u8],
}

/// A successful session: the credential, checked.
#[derive(Debug)]
pub struct Outcome {
    pub certificate: Vec<u8>,
    pub workload_id: String,
}

/// Runs the protocol above with the key already in `vault`.
pub fn run<L: Link>(
    channel: &mut Channel<L>,
    vault: &Vault,
    trust: &Trust<'_>,
    runtime_name: &str,
    events: &mut dyn FnMut(Event<'_>),
) -> Result<Outcome, SessionError> {
    let public_key = vault.public_key().map_err(SessionError::Vault)?;
    channel.send(&Message::Hello(Hello {
        version: PROTOCOL_VERSION,
        platform: Platform::SimSnp,
        capabilities: twi_proto::msg::CAP_SIM_DOORBELL,
        runtime: String::from(runtime_name),
    }))?;

    let nonce = match channel.recv(events)? {
        Message::Challenge(Challenge { nonce }) => nonce,
        Message::Error(e) => return Err(SessionError::HostError(e.code, e.message)),
        other => {
            return Err(channel.abort(ErrorCode::UnexpectedMessage, SessionError::Unexpected(other.name())));
        }
    };
    events(Event::ChallengeReceived);

    let report_data = binding::report_data(&nonce, &public_key).map_err(|_| SessionError::Binding)?;
    let report = match request_sim_snp_report(channel, &report_data, events) {
        Ok(report) => report,
        Err(e @ SessionError::Firmware(_)) => return Err(channel.abort(ErrorCode::DoorbellFailed, e)),
        Err(e @ SessionError::Unexpected(_)) => return Err(channel.abort(ErrorCode::UnexpectedMessage, e)),
        // As in the other states: the host sent the Error itself, closed the link, or was
        // already told about each malformed frame.
        Err(e) => return Err(e),
    };
    events(Event::ReportReceived);

    channel.send(&Message::Evidence(Evidence {
        platform: Platform::SimSnp,
        evidence: report,
        public_key: public_key.to_vec(),
        nonce,
    }))?;
    events(Event::EvidenceSent);

    let Credential { certificate, workload_id } = match channel.recv(events)? {
        Message::Credential(c) => c,
        Message::Error(e) => return Err(SessionError::HostError(e.code, e.message)),
        other => {
            return Err(channel.abort(ErrorCode::UnexpectedMessage, SessionError::Unexpected(other.name())));
        }
    };
    if let Err(e) = check_credential(&certificate, trust.issuer_anchor, &public_key, &workload_id) {
        let error = channel.abort(ErrorCode::CredentialRejected, SessionError::Credential(e));
        channel.send(&Message::Done(Done { credential_accepted: false }))?;
        return Err(error);
    }
    events(Event::CredentialAccepted(&workload_id));
    channel.send(&Message::Done(Done { credential_accepted: true }))?;
    Ok(Outcome { certificate, workload_id })
}

/// The simulated SEV-SNP doorbell: the exact MSG_REPORT_REQ payload goes to the host's
/// simulated PSP, and its MSG_REPORT_RSP comes back. The answer is checked as if the host
/// were lying: status, size, version, and that it carries our REPORTDATA.
fn request_sim_snp_report<L: Link>(
    channel: &mut Channel<L>,
    report_data: &[u8; 64],
    events: &mut dyn FnMut(Event<'_>),
) -> Result<Vec<u8>, SessionError> {
    let request = ReportRequest { report_data: *report_data, vmpl: 0 };
    channel.send(&Message::DoorbellRequest(DoorbellRequest {
        kind: DoorbellKind::SnpGuestRequest,
        request: request.to_bytes().to_vec(),
    }))?;
    let response = match channel.recv(events)? {
        Message::DoorbellResponse(r) if r.kind == DoorbellKind::SnpGuestRequest => r,
        Message::Error(e) => return Err(SessionError::HostError(e.code, e.message)),
        other => return Err(SessionError::Unexpected(other.name())),
    };
    if response.status != 0 {
        return Err(SessionError::Firmware("the guest request failed"));
    }
    let parsed =
        ReportResponse::parse(&response.response).map_err(|_| SessionError::Firmware("malformed MSG_REPORT_RSP"))?;
    if parsed.status != 0 {
        return Err(SessionError::Firmware("MSG_REPORT_RSP carries a failure status"));
    }
    let report = AttestationReport::parse(parsed.report).map_err(|_| SessionError::Firmware("malformed report"))?;
    if report.report_data != *report_data {
        return Err(SessionError::Firmware("the report does not carry the requested REPORTDATA"));
    }
    Ok(parsed.report.to_vec())
}
