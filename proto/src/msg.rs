//! The messages of the guest ↔ host channel, one CBOR-encoded [`Message`] per frame.
//!
//! Structs are CBOR maps with small integer keys (`#[n(k)]`), enums carry
//! explicit indices, so the wire format does not depend on Rust names or
//! field order. [`decode`] treats its input as hostile: it checks the CBOR
//! shape before handing it to the derived decoder and then validates every
//! field limit, and [`encode`] applies the same limits so that a sender cannot
//! produce what a receiver would refuse.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use minicbor::{Decode, Encode};

use crate::frame::{self, FrameDecoder, FrameError, MAX_PAYLOAD};

/// Version carried in [`Hello::version`].
pub const PROTOCOL_VERSION: u16 = 1;

/// [`Hello::capabilities`] bit: the runtime uses the simulated doorbell
/// ([`DoorbellRequest`] / [`DoorbellResponse`]) instead of real TEE hardware.
pub const CAP_SIM_DOORBELL: u32 = 1;
/// [`Hello::capabilities`] bit: the runtime takes mechanism A (the Verifier obtains the
/// credential and returns it with the attestation result: [`Credential::attestation_result`]).
pub const CAP_MECHANISM_A: u32 = 1 << 1;
/// [`Hello::capabilities`] bit: the runtime takes mechanism B ([`AttestationResult`], then it
/// sends a [`CredentialRequest`] to the Credential Authority).
pub const CAP_MECHANISM_B: u32 = 1 << 2;
/// [`Hello::capabilities`] bit: the runtime takes mechanism C (Evidence with the key goes to the
/// Credential Authority, which calls the Verifier; the [`Credential`] answers it).
pub const CAP_MECHANISM_C: u32 = 1 << 3;
/// [`Hello::capabilities`] bit: the runtime takes mechanism D (the Key Store releases a
/// provisioned Credential Key, HPKE-encrypted to an ephemeral key the Evidence binds:
/// [`Challenge::key_release`], [`KeyRelease`]).
pub const CAP_MECHANISM_D: u32 = 1 << 4;

/// Longest [`Hello::runtime`], in bytes.
pub const MAX_RUNTIME_LEN: usize = 64;
/// Shortest accepted verifier nonce, in bytes.
pub const MIN_NONCE_LEN: usize = 16;
/// Longest accepted verifier nonce, in bytes.
pub const MAX_NONCE_LEN: usize = 64;
/// Longest [`DoorbellRequest::request`].
pub const MAX_DOORBELL_REQUEST: usize = 8 * 1024;
/// Longest [`DoorbellResponse::response`]: it carries a report or quote, so
/// it gets the same room as [`Evidence::evidence`].
pub const MAX_DOORBELL_RESPONSE: usize = 12 * 1024;
/// Longest [`Evidence::evidence`] (an SNP report or a TDX quote).
pub const MAX_EVIDENCE: usize = 12 * 1024;
/// Longest SEV-SNP certificate table ([`DoorbellResponse::certificates`],
/// [`Evidence::certificates`]): two pages, room for AMD's VCEK, ASK and ARK (about 4.7 KiB
/// of DER) and the table.
pub const MAX_CERT_TABLE: usize = 8 * 1024;
/// Length of a SEC1 uncompressed P-384 point (`0x04 ‖ X ‖ Y`).
pub const P384_PUBLIC_KEY_LEN: usize = 97;
/// Longest [`Credential::certificate`] (X.509 DER).
pub const MAX_CERTIFICATE: usize = 8 * 1024;
/// Longest [`Credential::workload_id`], in bytes.
pub const MAX_WORKLOAD_ID: usize = 256;
/// Longest attestation result (an EAR JWT, compact JWS) in [`AttestationResult::ear`],
/// [`CredentialRequest::ear`] and [`Credential::attestation_result`], in bytes.
pub const MAX_ATTESTATION_RESULT: usize = 4 * 1024;
/// Longest [`CredentialRequest::proof`]: a DER ECDSA P-384 signature is at most 104 bytes.
pub const MAX_PROOF: usize = 112;
/// Length of [`KeyRelease::enc`]: HPKE DHKEM(P-384) `enc`, an uncompressed P-384 point.
pub const HPKE_ENC_LEN: usize = 97;
/// Length of [`KeyRelease::ciphertext`]: a 48-byte P-384 scalar sealed with AES-256-GCM
/// (16-byte tag).
pub const KEY_RELEASE_CIPHERTEXT_LEN: usize = 48 + 16;
/// Domain separation prefix of the HPKE `info` of a [`KeyRelease`] ([`key_release_info`]).
pub const KEY_RELEASE_INFO_CONTEXT: &[u8] = b"TWI-KEY-RELEASE-v1\0";
/// Domain separation prefix of the HPKE `aad` of a [`KeyRelease`] ([`key_release_aad`]).
pub const KEY_RELEASE_AAD_CONTEXT: &[u8] = b"TWI-KEY-RELEASE-CERT-v1\0";
/// Domain separation prefix of the [`CredentialRequest::proof`] input.
pub const CREDENTIAL_REQUEST_CONTEXT: &[u8] = b"TWI-CREDREQ-v1\0";
/// Longest [`ErrorMsg::message`] and [`LogLine::line`], in bytes.
pub const MAX_TEXT: usize = 256;

/// The TEE platform the evidence comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
#[cbor(index_only)]
pub enum Platform {
    /// SEV-SNP report formats produced by the host's simulator.
    #[n(0)]
    SimSnp,
    /// Real AMD SEV-SNP hardware.
    #[n(1)]
    Snp,
    /// Real Intel TDX hardware.
    #[n(2)]
    Tdx,
    /// TDX quote formats produced by the host's simulator.
    #[n(3)]
    SimTdx,
}

/// Which hardware doorbell a simulated request stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
#[cbor(index_only)]
pub enum DoorbellKind {
    /// SEV-SNP `SNP_GUEST_REQUEST` (e.g. `MSG_REPORT_REQ`).
    #[n(0)]
    SnpGuestRequest,
    /// TDX `TDG.VP.VMCALL<GetQuote>`: request = the GHCI GetQuote buffer's header and
    /// TDREPORT; response = the buffer's header and quote, as the VMM leaves them.
    #[n(1)]
    TdxGetQuote,
    /// TDX `TDG.MR.REPORT`: request = the 64-byte REPORTDATA; response = the 1024-byte
    /// TDREPORT_STRUCT.
    #[n(2)]
    TdxReport,
    /// TDX `TDG.MR.RTMR.EXTEND`: request = u8 RTMR index (0..=3) ‖ 48-byte SHA-384 digest;
    /// response empty.
    #[n(3)]
    TdxRtmrExtend,
    /// SEV-SNP `SNP_EXT_GUEST_REQUEST`: request = the sealed guest message, as for
    /// [`DoorbellKind::SnpGuestRequest`]; response = the sealed answer, and
    /// [`DoorbellResponse::certificates`] = the certificate table the host wrote into the
    /// guest's certificate pages (GHCB specification, SNP Extended Guest Request).
    #[n(4)]
    SnpExtGuestRequest,
}

/// Longest [`Evidence::event_log`], in events.
pub const MAX_EVENTS: usize = 8;
/// Longest [`RtmrEvent::data`], in bytes.
pub const MAX_EVENT_DATA: usize = 256;

/// One measurement the runtime extended into a TDX RTMR: a verifier replays
/// `RTMR[rtmr] = SHA-384(RTMR[rtmr] ‖ digest)` over the log and compares with the quote.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct RtmrEvent {
    /// RTMR index, 0..=3.
    #[n(0)]
    pub rtmr: u8,
    /// What was measured (the runtime's event types, `twi_proto::msg::event_type`).
    #[n(1)]
    pub event_type: u32,
    /// SHA-384 of `data`: exactly 48 bytes.
    #[n(2)]
    #[cbor(with = "minicbor::bytes")]
    pub digest: Vec<u8>,
    /// The measured bytes, at most [`MAX_EVENT_DATA`].
    #[n(3)]
    #[cbor(with = "minicbor::bytes")]
    pub data: Vec<u8>,
}

/// The runtime's RTMR event types.
pub mod event_type {
    /// RTMR1: the launch manifest the runtime loaded (its postcard body).
    pub const LAUNCH_MANIFEST: u32 = 0x5457_0001;
    /// RTMR2: the issuer anchor the runtime will trust (SEC1 P-384 public key).
    pub const ISSUER_ANCHOR: u32 = 0x5457_0002;
}

/// Error codes of an [`ErrorMsg`]. The discriminants are the wire values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
#[cbor(index_only)]
pub enum ErrorCode {
    /// A frame or message could not be decoded or broke a field limit.
    #[n(1)]
    Malformed = 1,
    /// The peer speaks another [`PROTOCOL_VERSION`].
    #[n(2)]
    UnsupportedVersion = 2,
    /// The message is unknown or not valid at this point of the exchange.
    #[n(3)]
    UnexpectedMessage = 3,
    /// The evidence did not verify.
    #[n(4)]
    VerificationFailed = 4,
    /// The evidence verified but policy refused it.
    #[n(5)]
    PolicyRejected = 5,
    /// A bug or resource problem on the sender's side.
    #[n(6)]
    Internal = 6,
    /// The (simulated) TEE doorbell failed.
    #[n(7)]
    DoorbellFailed = 7,
    /// The guest refused the issued credential.
    #[n(8)]
    CredentialRejected = 8,
}

/// Guest → host, first message.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct Hello {
    /// The sender's [`PROTOCOL_VERSION`]. Not checked by [`decode`], so the
    /// receiver can answer with [`ErrorCode::UnsupportedVersion`].
    #[n(0)]
    pub version: u16,
    /// The platform the guest runs on.
    #[n(1)]
    pub platform: Platform,
    /// Bit flags, e.g. [`CAP_SIM_DOORBELL`].
    #[n(2)]
    pub capabilities: u32,
    /// Name and version of the runtime, at most [`MAX_RUNTIME_LEN`] bytes.
    #[n(3)]
    pub runtime: String,
}

/// Host → guest: the verifier's freshness nonce.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct Challenge {
    /// [`MIN_NONCE_LEN`]`..=`[`MAX_NONCE_LEN`] bytes.
    #[n(0)]
    #[cbor(with = "minicbor::bytes")]
    pub nonce: Vec<u8>,
    /// Mechanism D: the host will answer the Evidence with a [`KeyRelease`], so the Evidence
    /// must bind a fresh ephemeral HPKE public key (generated in the vault) instead of the
    /// Credential Key. Absent on the wire means `false` (mechanisms A, B, C).
    #[n(1)]
    #[cbor(default)]
    pub key_release: bool,
}

/// Guest → host: the exact bytes the guest would hand to the TEE hardware
/// (the host simulates the TEE).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct DoorbellRequest {
    /// Which doorbell this stands for.
    #[n(0)]
    pub kind: DoorbellKind,
    /// Request bytes, at most [`MAX_DOORBELL_REQUEST`].
    #[n(1)]
    #[cbor(with = "minicbor::bytes")]
    pub request: Vec<u8>,
}

/// Host → guest: what the real doorbell would have returned.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct DoorbellResponse {
    /// Echo of the request's kind.
    #[n(0)]
    pub kind: DoorbellKind,
    /// Firmware / VMM status the real doorbell would return; 0 = success.
    #[n(1)]
    pub status: u64,
    /// Response bytes, at most [`MAX_DOORBELL_RESPONSE`].
    #[n(2)]
    #[cbor(with = "minicbor::bytes")]
    pub response: Vec<u8>,
    /// [`DoorbellKind::SnpExtGuestRequest`]: the certificate table, at most
    /// [`MAX_CERT_TABLE`] bytes (`None`: the host has no certificates).
    #[n(3)]
    #[cbor(with = "minicbor::bytes")]
    pub certificates: Option<Vec<u8>>,
}

/// Guest → host: attestation evidence binding the workload key.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct Evidence {
    /// Platform that produced `evidence`.
    #[n(0)]
    pub platform: Platform,
    /// SNP report or TDX quote, at most [`MAX_EVIDENCE`] bytes.
    #[n(1)]
    #[cbor(with = "minicbor::bytes")]
    pub evidence: Vec<u8>,
    /// SEC1 uncompressed P-384 point, exactly [`P384_PUBLIC_KEY_LEN`] bytes.
    #[n(2)]
    #[cbor(with = "minicbor::bytes")]
    pub public_key: Vec<u8>,
    /// Echo of [`Challenge::nonce`].
    #[n(3)]
    #[cbor(with = "minicbor::bytes")]
    pub nonce: Vec<u8>,
    /// TDX: the RTMR events the runtime extended, in order (at most [`MAX_EVENTS`]).
    #[n(4)]
    pub event_log: Option<Vec<RtmrEvent>>,
    /// SEV-SNP: the certificate table of the extended guest request (VCEK or VLEK, ASK,
    /// ARK), as the host gave it to the runtime, at most [`MAX_CERT_TABLE`] bytes. The
    /// verifier checks the certificates as it would any others.
    #[n(5)]
    #[cbor(with = "minicbor::bytes")]
    pub certificates: Option<Vec<u8>>,
}

/// Host → guest: the issued workload credential.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct Credential {
    /// X.509 certificate (DER), at most [`MAX_CERTIFICATE`] bytes.
    #[n(0)]
    #[cbor(with = "minicbor::bytes")]
    pub certificate: Vec<u8>,
    /// Workload identity, e.g. a `spiffe://` URI, at most [`MAX_WORKLOAD_ID`] bytes.
    #[n(1)]
    pub workload_id: String,
    /// Mechanism A: the Verifier's attestation result (EAR JWT, at most
    /// [`MAX_ATTESTATION_RESULT`] bytes) that came with the credential and names it.
    #[n(2)]
    pub attestation_result: Option<String>,
}

/// Host → guest (mechanism B): the Verifier's signed attestation result (EAR JWT) binding the
/// workload key; the guest forwards it to the Credential Authority in a [`CredentialRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct AttestationResult {
    /// Compact JWS, at most [`MAX_ATTESTATION_RESULT`] bytes.
    #[n(0)]
    pub ear: String,
}

/// Guest → host (mechanism B): a request to the Credential Authority for a credential on the
/// key the attestation result binds, with proof that the sender holds that key.
///
/// `proof` is the Credential Key's ECDSA P-384 / SHA-384 signature, DER-encoded, over
/// [`credential_request_signed_bytes`]: `"TWI-CREDREQ-v1\0" ‖ nonce ‖ public_key ‖
/// SHA-256(ear)`, where `nonce` is the verifier nonce of the [`Challenge`] (the EAR's
/// `eat_nonce`), `public_key` the 97-byte SEC1 point and `ear` the JWT's ASCII bytes. The
/// private key never leaves the guest's vault.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct CredentialRequest {
    /// The EAR JWT as received, at most [`MAX_ATTESTATION_RESULT`] bytes.
    #[n(0)]
    pub ear: String,
    /// SEC1 uncompressed P-384 point, exactly [`P384_PUBLIC_KEY_LEN`] bytes.
    #[n(1)]
    #[cbor(with = "minicbor::bytes")]
    pub public_key: Vec<u8>,
    /// DER ECDSA signature, at most [`MAX_PROOF`] bytes.
    #[n(2)]
    #[cbor(with = "minicbor::bytes")]
    pub proof: Vec<u8>,
}

/// The bytes a [`CredentialRequest::proof`] signs: `"TWI-CREDREQ-v1\0" ‖ nonce ‖ public_key ‖
/// ear_sha256` (no length prefixes: the nonce length is the EAR's and the key is fixed-size).
pub fn credential_request_signed_bytes(nonce: &[u8], public_key: &[u8], ear_sha256: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(CREDENTIAL_REQUEST_CONTEXT.len() + nonce.len() + public_key.len() + 32);
    out.extend_from_slice(CREDENTIAL_REQUEST_CONTEXT);
    out.extend_from_slice(nonce);
    out.extend_from_slice(public_key);
    out.extend_from_slice(ear_sha256);
    out
}

/// Host → guest (mechanism D): the Key Store's release of the credential the workload owner
/// provisioned, and of its private key, HPKE-encrypted (RFC 9180 base mode,
/// DHKEM(P-384, HKDF-SHA384), HKDF-SHA384, AES-256-GCM) to the ephemeral public key that the
/// Evidence bound (its [`Evidence::public_key`]).
///
/// The plaintext is the 48-byte big-endian P-384 scalar of the Credential Key;
/// `info` = [`key_release_info`]`(nonce, ephemeral_public_key)` and `aad` =
/// [`key_release_aad`]`(SHA-256(certificate))`, so a release opens only for the key and
/// challenge it was made for, and only with the certificate it came with.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct KeyRelease {
    /// The provisioned X.509 certificate (DER), at most [`MAX_CERTIFICATE`] bytes.
    #[n(0)]
    #[cbor(with = "minicbor::bytes")]
    pub certificate: Vec<u8>,
    /// Workload identity, at most [`MAX_WORKLOAD_ID`] bytes.
    #[n(1)]
    pub workload_id: String,
    /// HPKE `enc`, exactly [`HPKE_ENC_LEN`] bytes starting with 0x04.
    #[n(2)]
    #[cbor(with = "minicbor::bytes")]
    pub enc: Vec<u8>,
    /// HPKE ciphertext of the private key, exactly [`KEY_RELEASE_CIPHERTEXT_LEN`] bytes.
    #[n(3)]
    #[cbor(with = "minicbor::bytes")]
    pub ciphertext: Vec<u8>,
}

/// The HPKE `info` of a [`KeyRelease`]: `"TWI-KEY-RELEASE-v1\0" ‖ u16be(len(nonce)) ‖ nonce ‖
/// ephemeral_public_key` (the 97-byte SEC1 point the Evidence bound).
pub fn key_release_info(nonce: &[u8], ephemeral_public_key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(KEY_RELEASE_INFO_CONTEXT.len() + 2 + nonce.len() + ephemeral_public_key.len());
    out.extend_from_slice(KEY_RELEASE_INFO_CONTEXT);
    out.extend_from_slice(&u16::try_from(nonce.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(nonce);
    out.extend_from_slice(ephemeral_public_key);
    out
}

/// The HPKE `aad` of a [`KeyRelease`]: `"TWI-KEY-RELEASE-CERT-v1\0" ‖ SHA-256(certificate)`.
pub fn key_release_aad(certificate_sha256: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(KEY_RELEASE_AAD_CONTEXT.len() + 32);
    out.extend_from_slice(KEY_RELEASE_AAD_CONTEXT);
    out.extend_from_slice(certificate_sha256);
    out
}

/// Either direction: the sender gives up.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct ErrorMsg {
    /// What went wrong.
    #[n(0)]
    pub code: ErrorCode,
    /// Human-readable detail, at most [`MAX_TEXT`] bytes.
    #[n(1)]
    pub message: String,
}

impl ErrorMsg {
    /// Builds an error message, truncating `message` to [`MAX_TEXT`] bytes on
    /// a char boundary so that it always passes validation.
    pub fn new(code: ErrorCode, message: &str) -> Self {
        Self { code, message: String::from(truncate(message, MAX_TEXT)) }
    }
}

/// Guest → host, last message.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct Done {
    /// Whether the guest accepted the credential.
    #[n(0)]
    pub credential_accepted: bool,
}

/// Guest → host: a progress line the host may show.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct LogLine {
    /// At most [`MAX_TEXT`] bytes.
    #[n(0)]
    pub line: String,
}

impl LogLine {
    /// Builds a log line, truncating to [`MAX_TEXT`] bytes on a char boundary.
    pub fn new(line: &str) -> Self {
        Self { line: String::from(truncate(line, MAX_TEXT)) }
    }
}

/// Every message of the channel. Encoded as `[index, {fields}]`.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(flat)]
pub enum Message {
    /// Guest → host, first message.
    #[n(0)]
    Hello(#[n(0)] Hello),
    /// Host → guest.
    #[n(1)]
    Challenge(#[n(0)] Challenge),
    /// Guest → host.
    #[n(2)]
    DoorbellRequest(#[n(0)] DoorbellRequest),
    /// Host → guest.
    #[n(3)]
    DoorbellResponse(#[n(0)] DoorbellResponse),
    /// Guest → host.
    #[n(4)]
    Evidence(#[n(0)] Evidence),
    /// Host → guest.
    #[n(5)]
    Credential(#[n(0)] Credential),
    /// Either direction.
    #[n(6)]
    Error(#[n(0)] ErrorMsg),
    /// Guest → host, last message.
    #[n(7)]
    Done(#[n(0)] Done),
    /// Guest → host.
    #[n(8)]
    Log(#[n(0)] LogLine),
    /// Host → guest (mechanism B).
    #[n(9)]
    AttestationResult(#[n(0)] AttestationResult),
    /// Guest → host (mechanism B).
    #[n(10)]
    CredentialRequest(#[n(0)] CredentialRequest),
    /// Host → guest (mechanism D).
    #[n(11)]
    KeyRelease(#[n(0)] KeyRelease),
}

/// Whether `index` is a [`Message`] variant index; keep in sync with the enum
/// (the `every_variant_round_trips` test checks it).
fn is_message_index(index: u64) -> bool {
    index <= 11
}

macro_rules! impl_from {
    ($($variant:ident($ty:ident)),* $(,)?) => {$(
        impl From<$ty> for Message {
            fn from(m: $ty) -> Self {
                Message::$variant(m)
            }
        }
    )*};
}

impl_from!(
    Hello(Hello),
    Challenge(Challenge),
    DoorbellRequest(DoorbellRequest),
    DoorbellResponse(DoorbellResponse),
    Evidence(Evidence),
    Credential(Credential),
    Error(ErrorMsg),
    Done(Done),
    Log(LogLine),
    AttestationResult(AttestationResult),
    CredentialRequest(CredentialRequest),
    KeyRelease(KeyRelease),
);

impl Message {
    /// The variant name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Message::Hello(_) => "Hello",
            Message::Challenge(_) => "Challenge",
            Message::DoorbellRequest(_) => "DoorbellRequest",
            Message::DoorbellResponse(_) => "DoorbellResponse",
            Message::Evidence(_) => "Evidence",
            Message::Credential(_) => "Credential",
            Message::Error(_) => "Error",
            Message::Done(_) => "Done",
            Message::Log(_) => "Log",
            Message::AttestationResult(_) => "AttestationResult",
            Message::CredentialRequest(_) => "CredentialRequest",
            Message::KeyRelease(_) => "KeyRelease",
        }
    }

    /// Checks the per-field limits. [`decode`] and [`encode`] call this.
    pub fn validate(&self) -> Result<(), ProtoError> {
        match self {
            Message::Hello(m) => max_len("runtime", m.runtime.len(), MAX_RUNTIME_LEN),
            Message::Challenge(m) => check_nonce(&m.nonce),
            Message::DoorbellRequest(m) => max_len("request", m.request.len(), MAX_DOORBELL_REQUEST),
            Message::DoorbellResponse(m) => {
                max_len("response", m.response.len(), MAX_DOORBELL_RESPONSE)?;
                max_len("certificates", m.certificates.as_ref().map_or(0, Vec::len), MAX_CERT_TABLE)
            }
            Message::Evidence(m) => {
                max_len("evidence", m.evidence.len(), MAX_EVIDENCE)?;
                if m.public_key.len() != P384_PUBLIC_KEY_LEN || m.public_key.first() != Some(&0x04) {
                    return Err(ProtoError::InvalidField("public_key"));
                }
                check_nonce(&m.nonce)?;
                max_len("certificates", m.certificates.as_ref().map_or(0, Vec::len), MAX_CERT_TABLE)?;
                let events = m.event_log.as_deref().unwrap_or_default();
                max_len("event_log", events.len(), MAX_EVENTS)?;
                for event in events {
                    max_len("event data", event.data.len(), MAX_EVENT_DATA)?;
                    if event.rtmr > 3 || event.digest.len() != 48 {
                        return Err(ProtoError::InvalidField("event_log"));
                    }
                }
                Ok(())
            }
            Message::Credential(m) => {
                max_len("certificate", m.certificate.len(), MAX_CERTIFICATE)?;
                max_len("workload_id", m.workload_id.len(), MAX_WORKLOAD_ID)?;
                max_len(
                    "attestation_result",
                    m.attestation_result.as_ref().map_or(0, String::len),
                    MAX_ATTESTATION_RESULT,
                )
            }
            Message::AttestationResult(m) => max_len("ear", m.ear.len(), MAX_ATTESTATION_RESULT),
            Message::CredentialRequest(m) => {
                max_len("ear", m.ear.len(), MAX_ATTESTATION_RESULT)?;
                if m.public_key.len() != P384_PUBLIC_KEY_LEN || m.public_key.first() != Some(&0x04) {
                    return Err(ProtoError::InvalidField("public_key"));
                }
                max_len("proof", m.proof.len(), MAX_PROOF)
            }
            Message::KeyRelease(m) => {
                max_len("certificate", m.certificate.len(), MAX_CERTIFICATE)?;
                max_len("workload_id", m.workload_id.len(), MAX_WORKLOAD_ID)?;
                if m.enc.len() != HPKE_ENC_LEN || m.enc.first() != Some(&0x04) {
                    return Err(ProtoError::InvalidField("enc"));
                }
                if m.ciphertext.len() != KEY_RELEASE_CIPHERTEXT_LEN {
                    return Err(ProtoError::InvalidField("ciphertext"));
                }
                Ok(())
            }
            Message::Error(m) => max_len("message", m.message.len(), MAX_TEXT),
            Message::Done(_) => Ok(()),
            Message::Log(m) => max_len("line", m.line.len(), MAX_TEXT),
        }
    }
}

fn max_len(field: &'static str, len: usize, max: usize) -> Result<(), ProtoError> {
    if len > max { Err(ProtoError::FieldTooLong(field)) } else { Ok(()) }
}

fn check_nonce(nonce: &[u8]) -> Result<(), ProtoError> {
    if (MIN_NONCE_LEN..=MAX_NONCE_LEN).contains(&nonce.len()) { Ok(()) } else { Err(ProtoError::InvalidField("nonce")) }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// Why a message could not be sent or received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtoError {
    /// The frame around the message was bad.
    Frame(FrameError),
    /// The payload is not a well-formed message (bad CBOR, wrong types,
    /// missing fields, trailing bytes, unknown enum values inside a message).
    Malformed,
    /// The message index is not one this version knows.
    UnknownMessage,
    /// The named field exceeds its limit.
    FieldTooLong(&'static str),
    /// The named field has an invalid value (e.g. nonce length, key format).
    InvalidField(&'static str),
    /// The encoded message exceeds [`MAX_PAYLOAD`].
    TooLarge,
}

impl ProtoError {
    /// The code to send back in an [`ErrorMsg`].
    pub fn code(&self) -> ErrorCode {
        match self {
            ProtoError::UnknownMessage => ErrorCode::UnexpectedMessage,
            ProtoError::Frame(_)
            | ProtoError::Malformed
            | ProtoError::FieldTooLong(_)
            | ProtoError::InvalidField(_)
            | ProtoError::TooLarge => ErrorCode::Malformed,
        }
    }
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::Frame(e) => write!(f, "bad frame: {e}"),
            ProtoError::Malformed => f.write_str("malformed message"),
            ProtoError::UnknownMessage => f.write_str("unknown message type"),
            ProtoError::FieldTooLong(field) => write!(f, "field `{field}` too long"),
            ProtoError::InvalidField(field) => write!(f, "field `{field}` invalid"),
            ProtoError::TooLarge => f.write_str("message too large"),
        }
    }
}

impl core::error::Error for ProtoError {}

impl From<FrameError> for ProtoError {
    fn from(e: FrameError) -> Self {
        ProtoError::Frame(e)
    }
}

/// Encodes `msg` as a CBOR payload after checking the same limits [`decode`] enforces.
pub fn encode(msg: &Message) -> Result<Vec<u8>, ProtoError> {
    msg.validate()?;
    // Writing to a Vec cannot fail; the field limits keep it well below MAX_PAYLOAD.
    let payload = minicbor::to_vec(msg).map_err(|_| ProtoError::Malformed)?;
    if payload.len() > MAX_PAYLOAD {
        return Err(ProtoError::TooLarge);
    }
    Ok(payload)
}

/// Decodes and validates one message from a frame payload.
///
/// Errors: [`ProtoError::UnknownMessage`] for a message index this version
/// does not know; [`ProtoError::Malformed`] for anything that is not exactly
/// one well-typed message (including trailing bytes); `FieldTooLong` /
/// `InvalidField` when [`Message::validate`] refuses it.
pub fn decode(payload: &[u8]) -> Result<Message, ProtoError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(ProtoError::TooLarge);
    }
    check_shape(payload)?;
    // Tell an unknown message type apart from a malformed one.
    let mut probe = minicbor::Decoder::new(payload);
    probe.array().map_err(|_| ProtoError::Malformed)?;
    let index = probe.u64().map_err(|_| ProtoError::Malformed)?;
    if !is_message_index(index) {
        return Err(ProtoError::UnknownMessage);
    }
    let msg: Message = minicbor::decode(payload).map_err(|_| ProtoError::Malformed)?;
    msg.validate()?;
    Ok(msg)
}

/// Checks that `buf` is exactly one well-formed CBOR item using only what
/// [`encode`] produces: definite lengths and no tags.
///
/// This runs before the derived decoder so that hostile input cannot make it
/// allocate beyond the payload size: minicbor's `skip` (used for unknown map
/// keys) keeps a heap stack for nested indefinite-length items. It also
/// rejects trailing bytes. It never recurses: definite lengths only need a
/// count of the items still expected, and that count is bounded by the input
/// length because every item takes at least one byte.
fn check_shape(buf: &[u8]) -> Result<(), ProtoError> {
    const BAD: ProtoError = ProtoError::Malformed;
    let mut pos = 0usize;
    let mut pending = 1usize;
    while pending > 0 {
        pending -= 1;
        let initial = *buf.get(pos).ok_or(BAD)?;
        pos += 1;
        let (major, info) = (initial >> 5, initial & 0x1f);
        let arg = match info {
            0..=23 => u64::from(info),
            24..=27 => {
                let n = 1usize << (info - 24);
                let bytes = buf.get(pos..pos.saturating_add(n)).ok_or(BAD)?;
                pos += n;
                bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
            }
            // 28..=30 are reserved, 31 is indefinite length or "break".
            _ => return Err(BAD),
        };
        let remaining = buf.len().saturating_sub(pos);
        // Lengths above what is left cannot be satisfied; this also keeps
        // `pending` and `pos` far from overflow.
        let count = usize::try_from(arg).ok().filter(|&n| n <= remaining).ok_or(BAD);
        match major {
            0 | 1 | 7 => {} // integers, simple values and floats: all in the header
            2 | 3 => pos += count?,
            4 => pending += count?,
            5 => pending += count?.checked_mul(2).ok_or(BAD)?,
            _ => return Err(BAD), // 6: tags
        }
    }
    if pos == buf.len() { Ok(()) } else { Err(BAD) }
}

/// Encodes `msg` and appends it as one frame to `out`.
pub fn write_message(msg: &Message, out: &mut Vec<u8>) -> Result<(), ProtoError> {
    let payload = encode(msg)?;
    frame::encode_frame(&payload, out)?;
    Ok(())
}

/// Incremental message receiver: a [`FrameDecoder`] plus [`decode`].
#[derive(Debug, Default)]
pub struct MessageReader {
    frames: FrameDecoder,
}

impl MessageReader {
    /// Creates a reader (allocates the frame buffer once).
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one byte; returns `Some` when a frame is complete. After an
    /// error the reader carries on with the next frame.
    pub fn push(&mut self, byte: u8) -> Option<Result<Message, ProtoError>> {
        let payload = self.frames.push(byte)?;
        Some(payload.map_err(ProtoError::from).and_then(|p| decode(&p)))
    }

    /// Drops any partially received frame.
    pub fn reset(&mut self) {
        self.frames.reset();
    }
}
