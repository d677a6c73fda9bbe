//! The messages of the guest ↔ host channel, one CBOR-encoded [`Message`] per frame.
//!
//! Structs are CBOR maps with small integer keys (`#[n(k)]`), enums carry
//! explicit indices, so the wire format does not depend on Rust names or
//! field order. [`decode`] treats its input as hostile: it checks the CBOR
//! shape before handing it to the derived decoder and then validates every
//! field limit, and [`encode`] applies the same limits so that a sender cannot
//! produce what a receiver would refuse.

mod acquisition;
mod attestation;
mod common;
mod from_guest;
mod from_host;
mod relay;
mod wire;

pub use acquisition::*;
pub use attestation::*;
pub use common::*;
pub use relay::*;
pub use wire::*;

use alloc::string::String;
use alloc::vec::Vec;

use minicbor::{Decode, Encode};

/// Version carried in [`Hello::version`]. 2: TACRA acquisition (Initiate, then the Challenge;
/// the TACRA REPORTDATA binding).
pub const PROTOCOL_VERSION: u16 = 2;

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

/// Longest [`ErrorMsg::message`] and [`LogLine::line`], in bytes.
pub const MAX_TEXT: usize = 256;

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
    /// Guest → host: open a relayed connection.
    #[n(12)]
    Connect(#[n(0)] Connect),
    /// Host → guest.
    #[n(13)]
    Connected(#[n(0)] Connected),
    /// Guest → host: bytes for a connection.
    #[n(14)]
    Send(#[n(0)] Send),
    /// Guest → host: ask for a connection's bytes.
    #[n(15)]
    Receive(#[n(0)] Receive),
    /// Host → guest.
    #[n(16)]
    Received(#[n(0)] Received),
    /// Guest → host.
    #[n(17)]
    Close(#[n(0)] Close),
    /// Guest → host: the host's time, please.
    #[n(18)]
    TimeRequest(#[n(0)] TimeRequest),
    /// Host → guest.
    #[n(19)]
    Time(#[n(0)] Time),
    /// Guest → host: TACRA Initiate (answered by a Challenge).
    #[n(20)]
    Initiate(#[n(0)] Initiate),
}

/// Whether `index` is a [`Message`] variant index; keep in sync with the enum
/// (the `every_variant_round_trips` test checks it).
fn is_message_index(index: u64) -> bool {
    index <= 20
}

/// Whether `index` is one of the messages the host sends ([`from_host`]); keep in sync with it (the
/// `the_guest_reads_what_the_host_sends_and_writes_what_it_sends` test checks it).
fn is_from_host_index(index: u64) -> bool {
    matches!(index, 1 | 3 | 5 | 6 | 9 | 11 | 13 | 16 | 19)
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
    Connect(Connect),
    Connected(Connected),
    Send(Send),
    Receive(Receive),
    Received(Received),
    Close(Close),
    TimeRequest(TimeRequest),
    Time(Time),
    Initiate(Initiate),
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
            Message::Connect(_) => "Connect",
            Message::Connected(_) => "Connected",
            Message::Send(_) => "Send",
            Message::Receive(_) => "Receive",
            Message::Received(_) => "Received",
            Message::Close(_) => "Close",
            Message::TimeRequest(_) => "TimeRequest",
            Message::Time(_) => "Time",
            Message::Initiate(_) => "Initiate",
        }
    }

    /// Checks the per-field limits. [`decode`] and [`encode`] call this.
    pub fn validate(&self) -> Result<(), ProtoError> {
        match self {
            Message::Hello(m) => max_len("runtime", m.runtime.len(), MAX_RUNTIME_LEN),
            Message::Challenge(m) => {
                if m.freshness.has_handle() {
                    check_nonce(&m.nonce)
                } else {
                    max_len("nonce", m.nonce.len(), 0)
                }
            }
            Message::Initiate(m) => {
                max_len("target", m.target.len(), MAX_ACQUIRE_TARGET)?;
                max_len("hint", m.hint.as_ref().map_or(0, String::len), MAX_HINT)
            }
            Message::DoorbellRequest(m) => max_len("request", m.request.len(), MAX_DOORBELL_REQUEST),
            Message::DoorbellResponse(m) => {
                max_len("response", m.response.len(), MAX_DOORBELL_RESPONSE)?;
                max_len("certificates", m.certificates.as_ref().map_or(0, Vec::len), MAX_CERT_TABLE)
            }
            Message::Evidence(m) => validate_evidence(m),
            Message::Credential(m) => {
                max_len("certificate", m.certificate.len(), MAX_CERTIFICATE)?;
                max_len("workload_id", m.workload_id.len(), MAX_WORKLOAD_ID)?;
                max_len("wit", m.wit.as_ref().map_or(0, String::len), MAX_WIT)?;
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
            Message::Connect(m) => max_len("target", m.target.len(), MAX_TARGET),
            Message::Send(m) => max_len("data", m.data.len(), MAX_RELAY_DATA),
            Message::Receive(m) => max_len("max", m.max as usize, MAX_RELAY_DATA),
            Message::Received(m) => max_len("data", m.data.len(), MAX_RELAY_DATA),
            Message::Connected(_) | Message::Close(_) | Message::TimeRequest(_) | Message::Time(_) => Ok(()),
        }
    }
}

/// The limits of an [`Evidence`] message (see [`Message::validate`]).
fn validate_evidence(m: &Evidence) -> Result<(), ProtoError> {
    max_len("evidence", m.evidence.len(), MAX_EVIDENCE)?;
    if m.public_key.len() != P384_PUBLIC_KEY_LEN || m.public_key.first() != Some(&0x04) {
        return Err(ProtoError::InvalidField("public_key"));
    }
    // The freshness element: a handle (16..=64 bytes), an 8-byte timestamp, an epoch
    // marker, or nothing.
    max_len("nonce", m.nonce.len(), MAX_NONCE_LEN)?;
    max_len("target", m.target.len(), MAX_ACQUIRE_TARGET)?;
    max_len("csr", m.csr.as_ref().map_or(0, Vec::len), MAX_CSR)?;
    max_len("certificates", m.certificates.as_ref().map_or(0, Vec::len), MAX_CERT_TABLE)?;
    match (&m.certificates, &m.certificates_sha384) {
        (_, None) => {}
        (None, Some(digest)) if digest.len() == CERT_TABLE_DIGEST_LEN => {}
        _ => return Err(ProtoError::InvalidField("certificates_sha384")),
    }
    match &m.evidence_sha384 {
        None => {}
        Some(digest) if digest.len() == EVIDENCE_DIGEST_LEN && m.evidence.is_empty() => {}
        Some(_) => return Err(ProtoError::InvalidField("evidence_sha384")),
    }
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
