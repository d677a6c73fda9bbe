//! Messages of either direction: errors, log lines, the end of a session.

use alloc::string::String;

use minicbor::{Decode, Encode};

use super::{MAX_TEXT, truncate};

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
    /// TACRA: the issuer does not serve this target for this workload.
    #[n(9)]
    InvalidTarget = 9,
    /// TACRA: the issuer cannot issue this credential type for the target.
    #[n(10)]
    UnsupportedType = 10,
    /// TACRA: the issuer does not honour the Initiate's hint for this target.
    #[n(11)]
    RejectedHint = 11,
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
