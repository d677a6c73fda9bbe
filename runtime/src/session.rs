//! The runtime's side of the channel protocol, independent of the machine: it runs the same
//! on the bare-metal target (over COM2) and in host tests (over an in-memory link).
//!
//! ```text
//! guest                                   host (loader + issuer)
//!   Hello {version, platform, caps}  ──▶
//!                                    ◀──  Challenge {nonce}
//!   DoorbellRequest {sealed MSG_REPORT_REQ} ──▶   (sim TEE only: the simulated PSP; an
//!                                    ◀──  DoorbellResponse {sealed MSG_REPORT_RSP,
//!                                              certificate table}   extended guest request)
//!   Evidence {report, key, nonce, certificate table} ──▶
//!                                    ◀──  Credential {certificate, workload id, [EAR: mech. A]} | Error
//!                                    ◀──  or (mechanism B) AttestationResult {EAR binding the key}
//!   CredentialRequest {EAR, key, proof} ──▶   (mechanism B: proof = the vault's signature)
//!                                    ◀──  Credential {certificate, workload id} | Error
//!                                    ◀──  or (mechanism D) KeyRelease {certificate, enc, ct}
//!   DoorbellRequest {sealed MSG_KEY_REQ} ──▶   (sim only; the credential is sealed to
//!                                    ◀──  DoorbellResponse             the launch-bound key)
//!   Done {credential_accepted}       ──▶
//! ```
//!
//! Mechanism D: the Challenge says `key_release`; the runtime then generates an ephemeral HPKE
//! key pair in the vault and the Evidence (REPORTDATA and `public_key`) binds that ephemeral
//! public key instead of the Credential Key. The Key Store answers with a KeyRelease: the
//! provisioned certificate and its private key, HPKE-encrypted to the ephemeral key with
//! `info` = nonce ‖ ephemeral key and `aad` = SHA-256(certificate). The vault opens it and
//! installs the key as the Credential Key; the certificate must then certify exactly that key
//! under the manifest's issuer anchor, as for the other mechanisms.
//!
//! Every frame from the host is hostile: a malformed one is answered with an Error frame and
//! skipped (up to a bound), an unexpected message ends the session with an Error frame.

use alloc::string::String;
use alloc::vec::Vec;

use rand_core::TryCryptoRng;
use sha2::{Digest, Sha256};
use twi_attester::binding;
use twi_attester::snp::certs::CertTable;
use twi_attester::snp::key::KeyRequest;
use twi_attester::snp::report::AttestationReport;
use twi_proto::msg::{
    CAP_MECHANISM_A, CAP_MECHANISM_B, CAP_MECHANISM_C, CAP_MECHANISM_D, Challenge, Credential, CredentialRequest, Done,
    DoorbellKind, DoorbellRequest, ErrorCode, ErrorMsg, Evidence, Hello, KeyRelease, MAX_CERT_TABLE, Message,
    PROTOCOL_VERSION, Platform, credential_request_signed_bytes, key_release_aad, key_release_info,
};
use twi_proto::{MessageReader, ProtoError, write_message};

use crate::credential::{CredentialError, check_credential};
use crate::sealing::{SealError, SealingKey};
use crate::snp::{Answer, Doorbell, Exit, SnpError, SnpGuest};
use crate::tdx::{self as tdx_guest, EventLog, TdxError};
use crate::vault::{Vault, VaultError};
use twi_attester::tdx::getquote::GetQuoteError;

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
    /// Mechanism A: an attestation result (EAR JWT, its length) came with the credential.
    AttestationResultWithCredential(usize),
    /// Mechanism B: the Verifier's attestation result (its length) arrived; the runtime
    /// forwards it to the Credential Authority with a proof of possession.
    AttestationResultReceived(usize),
    /// The credential was sealed to the launch (its sealed size).
    CredentialSealed(usize),
    /// Mechanism D: the Evidence binds an ephemeral HPKE key generated in the vault.
    ReleaseKeyBound,
    /// Mechanism D: the Key Store's release opened in the vault and is the Credential Key now.
    KeyReleased,
    /// What became of the host's certificate table (extended guest request).
    Certificates(Certificates),
}

/// The certificate table of the extended guest request, as the runtime found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Certificates {
    /// Forwarded with the evidence: this many certificates, this many bytes.
    Forwarded { count: usize, bytes: usize },
    /// The host supplied none (or an empty table): the verifier uses its own copies.
    None,
    /// The host's table is malformed or too large to forward; the verifier uses its own copies.
    Dropped,
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
    Firmware(SnpError),
    /// The (simulated) TDX module or quoting service refused or returned something unusable.
    Tdx(TdxError),
    /// Sealing the credential to the launch failed.
    Seal(SealError),
    Credential(CredentialError),
    /// Mechanism D: the Key Store's release could not be opened or installed.
    KeyRelease(VaultError),
    Encode,
}

impl core::fmt::Display for SessionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::LinkClosed => f.write_str("the host closed the channel"),
            Self::TooManyMalformedFrames => f.write_str("the host sent too many malformed frames"),
            Self::Unexpected(what) => write!(f, "unexpected message from the host: {what}"),
            Self::HostError(code, message) => write!(f, "the host reported an error ({code:?}): {message}"),
            Self::Vault(e) => write!(f, "key vault: {e}"),
            Self::Binding => f.write_str("the challenge nonce cannot be bound into REPORTDATA"),
            Self::Firmware(e) => write!(f, "attestation firmware: {e}"),
            Self::Tdx(e) => write!(f, "TDX: {e}"),
            Self::Seal(e) => write!(f, "sealing the credential failed: {e:?}"),
            Self::Credential(e) => write!(f, "credential rejected: {e}"),
            Self::KeyRelease(e) => write!(f, "key release refused: {e}"),
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

/// How firmware requests reach the firmware.
pub enum Tee<'a> {
    /// The host simulates the PSP: sealed requests travel over the channel as doorbell
    /// messages (the same bytes hardware would get).
    SimSnp,
    /// Real SEV-SNP: the GHCB guest request (VMGEXIT).
    Snp(&'a mut Doorbell<'a>),
    /// The host simulates the TDX module and the quoting service: TDG.MR.REPORT,
    /// TDG.MR.RTMR.EXTEND and the GetQuote buffer travel over the channel ([`run_tdx`]).
    SimTdx,
}

impl core::fmt::Debug for Tee<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::SimSnp => "SimSnp",
            Self::Snp(_) => "Snp",
            Self::SimTdx => "SimTdx",
        })
    }
}

impl Tee<'_> {
    fn platform(&self) -> Platform {
        match self {
            Self::SimSnp => Platform::SimSnp,
            Self::Snp(_) => Platform::Snp,
            Self::SimTdx => Platform::SimTdx,
        }
    }
}

/// A successful session: the credential, checked, and sealed to this launch.
#[derive(Debug)]
pub struct Outcome {
    pub certificate: Vec<u8>,
    pub workload_id: String,
    /// The credential sealed under the launch-bound key (see [`crate::sealing`]).
    pub sealed_credential: Vec<u8>,
}

/// What sealing binds the credential to (authenticated as associated data).
pub const SEALED_CREDENTIAL_CONTEXT: &[u8] = b"twi sealed credential v1";

/// Runs the protocol above with the key already in `vault`.
#[allow(clippy::too_many_arguments)]
pub fn run<L: Link, R: TryCryptoRng + ?Sized>(
    channel: &mut Channel<L>,
    vault: &Vault,
    snp: &mut SnpGuest,
    tee: &mut Tee<'_>,
    rng: &mut R,
    trust: &Trust<'_>,
    runtime_name: &str,
    events: &mut dyn FnMut(Event<'_>),
) -> Result<Outcome, SessionError> {
    if matches!(tee, Tee::SimTdx) {
        return Err(SessionError::Unexpected("a TDX session runs through session::run_tdx"));
    }
    let platform = tee.platform();
    let (nonce, key_release) = hello_and_challenge(channel, platform, runtime_name, events)?;
    let public_key = bound_key(channel, vault, key_release, rng, events)?;

    let report_data = binding::report_data_for(binding_purpose(key_release), &nonce, &public_key)
        .map_err(|_| SessionError::Binding)?;
    let (report, certificate_buffer) =
        firmware(channel, tee, events, |doorbell| snp.report_with_certificates(&report_data, doorbell))?;
    events(Event::ReportReceived);
    let (certificates, outcome) = forwardable_certificates(certificate_buffer.as_deref());
    events(Event::Certificates(outcome));
    // The report parsed inside `snp.report`. The sealing key binds the COMMITTED TCB: the
    // hypervisor chooses REPORTED_TCB (it may set it below the committed one), while the
    // firmware refuses key requests above the committed TCB.
    let committed_tcb = AttestationReport::parse(&report)
        .map(|r| r.committed_tcb.0)
        .map_err(|_| SessionError::Firmware(SnpError::Malformed("attestation report")))?;

    channel.send(&Message::Evidence(Evidence {
        platform,
        evidence: report,
        public_key: public_key.to_vec(),
        nonce: nonce.clone(),
        event_log: None,
        certificates,
    }))?;
    events(Event::EvidenceSent);

    let (certificate, workload_id) =
        receive_credential(channel, vault, trust, &public_key, &nonce, key_release, events)?;

    let key =
        firmware(channel, tee, events, |doorbell| snp.derive_key(&KeyRequest::launch_bound(committed_tcb), doorbell))?;
    let sealing = SealingKey::new(key);
    let sealed_credential = sealing.seal(SEALED_CREDENTIAL_CONTEXT, &certificate, rng).map_err(SessionError::Seal)?;
    let unsealed = sealing.unseal(SEALED_CREDENTIAL_CONTEXT, &sealed_credential).map_err(SessionError::Seal)?;
    if unsealed.as_slice() != certificate.as_slice() {
        return Err(SessionError::Seal(SealError::Unseal));
    }
    events(Event::CredentialSealed(sealed_credential.len()));

    channel.send(&Message::Done(Done { credential_accepted: true }))?;
    Ok(Outcome { certificate, workload_id, sealed_credential })
}

/// The part of the host's certificate buffer worth forwarding with the evidence: the table and
/// its certificates, checked to lie within the buffer, without the buffer's unused tail. The
/// certificates themselves are the verifier's to check, against its own roots.
pub fn forwardable_certificates(buffer: Option<&[u8]>) -> (Option<Vec<u8>>, Certificates) {
    let Some(buffer) = buffer else { return (None, Certificates::None) };
    match CertTable::parse(buffer) {
        Ok(table) if table.is_empty() => (None, Certificates::None),
        Ok(table) if table.used_len() <= MAX_CERT_TABLE => {
            let used = table.used_len();
            (Some(buffer[..used].to_vec()), Certificates::Forwarded { count: table.len(), bytes: used })
        }
        _ => (None, Certificates::Dropped),
    }
}

/// What the evidence binds its key for: the ephemeral release key under mechanism D, else the
/// Credential Key.
fn binding_purpose(key_release: bool) -> binding::Purpose {
    if key_release { binding::Purpose::KeyRelease } else { binding::Purpose::Credential }
}

/// The credential acquisition mechanisms this runtime takes, as [`Hello::capabilities`] bits.
pub const RUNTIME_MECHANISMS: u32 = CAP_MECHANISM_A | CAP_MECHANISM_B | CAP_MECHANISM_C | CAP_MECHANISM_D;

/// The key the Evidence binds: the Credential Key, or under mechanism D (`key_release`) a fresh
/// ephemeral HPKE key generated in the vault for the Key Store to encrypt the release to.
fn bound_key<L: Link, R: TryCryptoRng + ?Sized>(
    channel: &mut Channel<L>,
    vault: &Vault,
    key_release: bool,
    rng: &mut R,
    events: &mut dyn FnMut(Event<'_>),
) -> Result<crate::vault::PublicKeySec1, SessionError> {
    if !key_release {
        return vault.public_key().map_err(|e| channel.abort(ErrorCode::Internal, SessionError::Vault(e)));
    }
    let key =
        vault.generate_release_key(rng).map_err(|e| channel.abort(ErrorCode::Internal, SessionError::Vault(e)))?;
    events(Event::ReleaseKeyBound);
    Ok(key)
}

/// Hello, then the verifier's Challenge: returns the nonce and whether the host announced a key
/// release (mechanism D).
fn hello_and_challenge<L: Link>(
    channel: &mut Channel<L>,
    platform: Platform,
    runtime_name: &str,
    events: &mut dyn FnMut(Event<'_>),
) -> Result<(Vec<u8>, bool), SessionError> {
    let simulated = matches!(platform, Platform::SimSnp | Platform::SimTdx);
    channel.send(&Message::Hello(Hello {
        version: PROTOCOL_VERSION,
        platform,
        capabilities: RUNTIME_MECHANISMS | if simulated { twi_proto::msg::CAP_SIM_DOORBELL } else { 0 },
        runtime: String::from(runtime_name),
    }))?;
    let (nonce, key_release) = match channel.recv(events)? {
        Message::Challenge(Challenge { nonce, key_release }) => (nonce, key_release),
        Message::Error(e) => return Err(SessionError::HostError(e.code, e.message)),
        other => {
            return Err(channel.abort(ErrorCode::UnexpectedMessage, SessionError::Unexpected(other.name())));
        }
    };
    events(Event::ChallengeReceived);
    Ok((nonce, key_release))
}

/// The issuer's Credential, checked against the anchor of the measured manifest and our key.
/// A refused credential is reported to the host (Error, then Done {false}).
///
/// Mechanisms A and C answer the Evidence with the Credential (under A it carries the
/// Verifier's attestation result). Under mechanism B the Verifier answers with an
/// AttestationResult: the runtime forwards it to the Credential Authority in a
/// CredentialRequest, with the vault's signature over it as proof of possession
/// ([`credential_request_signed_bytes`]), and then expects the Credential.
///
/// Under mechanism D (`key_release`; `public_key` is then the ephemeral key the Evidence bound)
/// only a KeyRelease is accepted: the vault opens it and installs the released key, and the
/// certificate must certify that key.
fn receive_credential<L: Link>(
    channel: &mut Channel<L>,
    vault: &Vault,
    trust: &Trust<'_>,
    public_key: &[u8],
    nonce: &[u8],
    key_release: bool,
    events: &mut dyn FnMut(Event<'_>),
) -> Result<(Vec<u8>, String), SessionError> {
    let mut requested = false;
    let mut credential_key = public_key.to_vec();
    let Credential { certificate, workload_id, attestation_result } = loop {
        match channel.recv(events)? {
            Message::Credential(c) if !key_release => break c,
            Message::KeyRelease(release) if key_release => {
                let KeyRelease { certificate, workload_id, enc, ciphertext } = release;
                let certificate_sha256: [u8; 32] = Sha256::digest(&certificate).into();
                let info = key_release_info(nonce, public_key);
                let aad = key_release_aad(&certificate_sha256);
                match vault.install_released_key(&enc, &info, &aad, &ciphertext) {
                    Ok(installed) => credential_key = installed.to_vec(),
                    Err(e) => {
                        let error = channel.abort(ErrorCode::CredentialRejected, SessionError::KeyRelease(e));
                        channel.send(&Message::Done(Done { credential_accepted: false }))?;
                        return Err(error);
                    }
                }
                events(Event::KeyReleased);
                break Credential { certificate, workload_id, attestation_result: None };
            }
            Message::AttestationResult(result) if !requested && !key_release => {
                events(Event::AttestationResultReceived(result.ear.len()));
                let ear_sha256: [u8; 32] = Sha256::digest(result.ear.as_bytes()).into();
                let signed = credential_request_signed_bytes(nonce, public_key, &ear_sha256);
                let proof =
                    vault.sign(&signed).map_err(|e| channel.abort(ErrorCode::Internal, SessionError::Vault(e)))?;
                channel.send(&Message::CredentialRequest(CredentialRequest {
                    ear: result.ear,
                    public_key: public_key.to_vec(),
                    proof: proof.as_bytes().to_vec(),
                }))?;
                requested = true;
            }
            Message::Error(e) => return Err(SessionError::HostError(e.code, e.message)),
            other => {
                return Err(channel.abort(ErrorCode::UnexpectedMessage, SessionError::Unexpected(other.name())));
            }
        }
    };
    if let Err(e) = check_credential(&certificate, trust.issuer_anchor, &credential_key, &workload_id) {
        let error = channel.abort(ErrorCode::CredentialRejected, SessionError::Credential(e));
        channel.send(&Message::Done(Done { credential_accepted: false }))?;
        return Err(error);
    }
    events(Event::CredentialAccepted(&workload_id));
    if let Some(result) = &attestation_result {
        events(Event::AttestationResultWithCredential(result.len()));
    }
    Ok((certificate, workload_id))
}

/// Something the runtime measures into an RTMR before it asks for a quote.
#[derive(Debug, Clone, Copy)]
pub struct Measurement<'a> {
    pub rtmr: u8,
    pub event_type: u32,
    pub data: &'a [u8],
}

/// Why a TDX module call failed: the module's (or the VMM's) answer, or the channel under a
/// module that lives on the host (the simulator).
#[derive(Debug)]
pub enum ModuleError {
    Tdx(TdxError),
    Session(SessionError),
}

impl From<TdxError> for ModuleError {
    fn from(e: TdxError) -> Self {
        Self::Tdx(e)
    }
}

/// The channel, as a module that lives on the host sees it: one DoorbellRequest of `kind`
/// answered by its DoorbellResponse. The outer `Err` is a channel failure, the inner one the
/// status the (simulated) module returned.
pub trait HostDoorbell {
    #[allow(clippy::type_complexity)]
    fn call(&mut self, kind: DoorbellKind, request: &[u8]) -> Result<Result<Vec<u8>, u64>, SessionError>;
}

struct ChannelDoorbell<'c, L: Link> {
    channel: &'c mut Channel<L>,
    events: &'c mut (dyn FnMut(Event<'_>) + 'c),
}

impl<L: Link> HostDoorbell for ChannelDoorbell<'_, L> {
    fn call(&mut self, kind: DoorbellKind, request: &[u8]) -> Result<Result<Vec<u8>, u64>, SessionError> {
        sim_doorbell_of(self.channel, kind, request, &mut *self.events)
    }
}

/// What the TDX protocol needs from the TDX module and the VMM's quoting service. On hardware
/// (`twi_runtime::platform::tdx::HwTdx`) these are TDCALL / TDVMCALL and ignore `host`; under
/// the simulator ([`SimTdxModule`]) they are DoorbellRequests on the channel carrying the same
/// bytes.
pub trait TdxModule {
    /// What the Hello and the Evidence say this is.
    fn platform(&self) -> Platform;
    /// TDG.MR.RTMR.EXTEND of `digest` into RTMR `rtmr`.
    fn rtmr_extend(&mut self, host: &mut dyn HostDoorbell, rtmr: u8, digest: &[u8; 48]) -> Result<(), ModuleError>;
    /// TDG.MR.REPORT over `report_data`: the TDREPORT, a private copy (checked by the caller).
    fn report(&mut self, host: &mut dyn HostDoorbell, report_data: &[u8; 64]) -> Result<Vec<u8>, ModuleError>;
    /// TDG.VP.VMCALL<GetQuote>: hands the request (`buffer[..request_len]`: GHCI header and
    /// TDREPORT; `buffer.len()` is the whole buffer the VMM may fill) to the VMM, once.
    fn submit_quote(
        &mut self,
        host: &mut dyn HostDoorbell,
        buffer: &[u8],
        request_len: usize,
    ) -> Result<(), ModuleError>;
    /// One look at the GetQuote buffer: copies what the VMM left there into `out` (private) and
    /// returns how many bytes it copied. While the status is in flight that may be the header
    /// only.
    fn poll_quote(&mut self, host: &mut dyn HostDoorbell, out: &mut [u8]) -> Result<usize, ModuleError>;
    /// Waits between two polls of an in-flight GetQuote.
    fn pause(&mut self);
}

/// The simulated TDX module and quoting service (`twi run --platform sim-tdx`): every call is
/// a DoorbellRequest of its kind; GetQuote is polled by sending the request again, and the
/// host's answer is the start of the buffer.
#[derive(Debug, Default)]
pub struct SimTdxModule {
    quote_request: Vec<u8>,
}

fn doorbell_answer(answer: Result<Result<Vec<u8>, u64>, SessionError>) -> Result<Vec<u8>, ModuleError> {
    match answer {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(status)) => Err(ModuleError::Tdx(TdxError::Doorbell(status))),
        Err(e) => Err(ModuleError::Session(e)),
    }
}

impl TdxModule for SimTdxModule {
    fn platform(&self) -> Platform {
        Platform::SimTdx
    }

    fn rtmr_extend(&mut self, host: &mut dyn HostDoorbell, rtmr: u8, digest: &[u8; 48]) -> Result<(), ModuleError> {
        let request = tdx_guest::rtmr_extend_request(rtmr, digest);
        doorbell_answer(host.call(DoorbellKind::TdxRtmrExtend, &request)).map(drop)
    }

    fn report(&mut self, host: &mut dyn HostDoorbell, report_data: &[u8; 64]) -> Result<Vec<u8>, ModuleError> {
        doorbell_answer(host.call(DoorbellKind::TdxReport, report_data))
    }

    fn submit_quote(
        &mut self,
        _host: &mut dyn HostDoorbell,
        buffer: &[u8],
        request_len: usize,
    ) -> Result<(), ModuleError> {
        self.quote_request = buffer.get(..request_len).ok_or(TdxError::Malformed("GetQuote request length"))?.to_vec();
        Ok(())
    }

    fn poll_quote(&mut self, host: &mut dyn HostDoorbell, out: &mut [u8]) -> Result<usize, ModuleError> {
        let answer = doorbell_answer(host.call(DoorbellKind::TdxGetQuote, &self.quote_request))?;
        // The VMM's answer is the start of the shared buffer: copy it over our private buffer
        // (bounded by it).
        let n = answer.len().min(out.len());
        out[..n].copy_from_slice(&answer[..n]);
        Ok(n)
    }

    fn pause(&mut self) {}
}

/// The TDX protocol, over any [`TdxModule`]:
///
/// ```text
///   Hello {platform Tdx | SimTdx}                    ──▶
///                                                    ◀──  Challenge {nonce}
///   TDG.MR.RTMR.EXTEND (i, digest)                         once per measurement
///   TDG.MR.REPORT (REPORTDATA)                             → TDREPORT, checked
///   TDG.VP.VMCALL<GetQuote> (GHCI buffer)                  polled while in flight (bounded)
///   Evidence {quote, key, nonce, event log}          ──▶
///                                                    ◀──  Credential | Error
///   Done {credential_accepted}                       ──▶
/// ```
///
/// Under the simulator each TDX call is a DoorbellRequest/DoorbellResponse pair on the channel
/// ([`SimTdxModule`]). A failed call ends the session with an Error(DoorbellFailed) frame.
///
/// The credential is not sealed: the TDX module offers no key derivation to a TD
/// ([`Outcome::sealed_credential`] is empty).
#[allow(clippy::too_many_arguments)]
pub fn run_tdx<L: Link, M: TdxModule + ?Sized, R: TryCryptoRng + ?Sized>(
    channel: &mut Channel<L>,
    module: &mut M,
    vault: &Vault,
    rng: &mut R,
    trust: &Trust<'_>,
    measurements: &[Measurement<'_>],
    runtime_name: &str,
    events: &mut dyn FnMut(Event<'_>),
) -> Result<Outcome, SessionError> {
    let platform = module.platform();
    let (nonce, key_release) = hello_and_challenge(channel, platform, runtime_name, events)?;
    let public_key = bound_key(channel, vault, key_release, rng, events)?;

    let mut log = EventLog::default();
    for m in measurements {
        let digest = log
            .record(m.rtmr, m.event_type, m.data)
            .map_err(|e| channel.abort(ErrorCode::Internal, SessionError::Tdx(e)))?;
        let result = module.rtmr_extend(&mut ChannelDoorbell { channel, events: &mut *events }, m.rtmr, &digest);
        result.map_err(|e| module_abort(channel, e))?;
    }

    let report_data = binding::report_data_for(binding_purpose(key_release), &nonce, &public_key)
        .map_err(|_| SessionError::Binding)?;
    let answer = module.report(&mut ChannelDoorbell { channel, events: &mut *events }, &report_data);
    let answer = answer.map_err(|e| module_abort(channel, e))?;
    let td_report = tdx_guest::check_td_report(&answer, &report_data).map_err(|e| tdx_abort(channel, e))?;
    events(Event::ReportReceived);

    let (mut buffer, request_len) = tdx_guest::get_quote_buffer(&td_report).map_err(|e| tdx_abort(channel, e))?;
    let submitted = module.submit_quote(&mut ChannelDoorbell { channel, events: &mut *events }, &buffer, request_len);
    submitted.map_err(|e| module_abort(channel, e))?;
    let mut polls = 0;
    let quote = loop {
        let n = module.poll_quote(&mut ChannelDoorbell { channel, events: &mut *events }, &mut buffer);
        let n = n.map_err(|e| module_abort(channel, e))?;
        polls += 1;
        match tdx_guest::take_quote(&buffer[..n.min(buffer.len())], &report_data, &log) {
            Err(TdxError::GetQuote(GetQuoteError::InFlight)) if polls < tdx_guest::MAX_QUOTE_POLLS => module.pause(),
            Err(TdxError::GetQuote(GetQuoteError::InFlight)) => {
                return Err(tdx_abort(channel, TdxError::QuoteTimeout(polls)));
            }
            Err(e) => return Err(tdx_abort(channel, e)),
            Ok(quote) => break quote,
        }
    };

    channel.send(&Message::Evidence(Evidence {
        platform,
        evidence: quote,
        public_key: public_key.to_vec(),
        nonce: nonce.clone(),
        event_log: Some(log.events().to_vec()),
        certificates: None,
    }))?;
    events(Event::EvidenceSent);

    let (certificate, workload_id) =
        receive_credential(channel, vault, trust, &public_key, &nonce, key_release, events)?;
    channel.send(&Message::Done(Done { credential_accepted: true }))?;
    Ok(Outcome { certificate, workload_id, sealed_credential: Vec::new() })
}

fn tdx_abort<L: Link>(channel: &mut Channel<L>, e: TdxError) -> SessionError {
    channel.abort(ErrorCode::DoorbellFailed, SessionError::Tdx(e))
}

/// A module failure ends the session with an Error frame; a channel failure is already final.
fn module_abort<L: Link>(channel: &mut Channel<L>, e: ModuleError) -> SessionError {
    match e {
        ModuleError::Tdx(e) => tdx_abort(channel, e),
        ModuleError::Session(e) => e,
    }
}

/// Runs one firmware exchange `op` through the TEE's doorbell. Under the simulator the
/// doorbell is a DoorbellRequest/DoorbellResponse pair on the channel; a channel failure
/// inside it ends the session as any other would. Firmware failures are reported to the host
/// with Error(DoorbellFailed).
fn firmware<L: Link, T>(
    channel: &mut Channel<L>,
    tee: &mut Tee<'_>,
    events: &mut dyn FnMut(Event<'_>),
    op: impl FnOnce(&mut Doorbell<'_>) -> Result<T, SnpError>,
) -> Result<T, SessionError> {
    let mut channel_failure = None;
    let result = match tee {
        Tee::Snp(doorbell) => op(&mut **doorbell),
        Tee::SimTdx => Err(SnpError::NoSecrets),
        Tee::SimSnp => {
            let mut sim = |sealed: &[u8], exit: Exit| match sim_doorbell(channel, sealed, exit, events) {
                Ok(answer) => answer,
                Err(e) => {
                    channel_failure = Some(e);
                    Err(u64::MAX)
                }
            };
            op(&mut sim)
        }
    };
    if let Some(e) = channel_failure {
        return Err(e);
    }
    result.map_err(|e| channel.abort(ErrorCode::DoorbellFailed, SessionError::Firmware(e)))
}

/// The simulated doorbell: the sealed request goes to the host's simulated PSP as a
/// DoorbellRequest of the exit's kind; its DoorbellResponse carries the firmware status, the
/// sealed answer and (extended request) the certificate table. The outer `Err` is a channel
/// failure, the inner one the firmware's status.
#[allow(clippy::type_complexity)]
fn sim_doorbell<L: Link>(
    channel: &mut Channel<L>,
    sealed: &[u8],
    exit: Exit,
    events: &mut dyn FnMut(Event<'_>),
) -> Result<Result<Answer, u64>, SessionError> {
    let kind = match exit {
        Exit::GuestRequest => DoorbellKind::SnpGuestRequest,
        Exit::ExtGuestRequest => DoorbellKind::SnpExtGuestRequest,
    };
    Ok(sim_doorbell_answer(channel, kind, sealed, events)?
        .map(|(sealed, certificates)| Answer { sealed, certificates }))
}

/// A simulated doorbell of `kind`: the outer `Err` is a channel failure, the inner one the
/// status the (simulated) firmware returned.
#[allow(clippy::type_complexity)]
fn sim_doorbell_of<L: Link>(
    channel: &mut Channel<L>,
    kind: DoorbellKind,
    request: &[u8],
    events: &mut dyn FnMut(Event<'_>),
) -> Result<Result<Vec<u8>, u64>, SessionError> {
    Ok(sim_doorbell_answer(channel, kind, request, events)?.map(|(response, _)| response))
}

/// As [`sim_doorbell_of`], with the response's certificate table.
#[allow(clippy::type_complexity)]
fn sim_doorbell_answer<L: Link>(
    channel: &mut Channel<L>,
    kind: DoorbellKind,
    request: &[u8],
    events: &mut dyn FnMut(Event<'_>),
) -> Result<Result<(Vec<u8>, Option<Vec<u8>>), u64>, SessionError> {
    channel.send(&Message::DoorbellRequest(DoorbellRequest { kind, request: request.to_vec() }))?;
    match channel.recv(events)? {
        Message::DoorbellResponse(r) if r.kind == kind => {
            Ok(if r.status == 0 { Ok((r.response, r.certificates)) } else { Err(r.status) })
        }
        Message::Error(e) => Err(SessionError::HostError(e.code, e.message)),
        other => Err(channel.abort(ErrorCode::UnexpectedMessage, SessionError::Unexpected(other.name()))),
    }
}
