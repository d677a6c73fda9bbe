//! The provenance log of another process as a Credential Authority calls it (`twi serve
//! --log-url`): the [`LogPeer`] (the client is the caller's), the bodies of the log's
//! role-to-role endpoints, and why a role of another process gave no answer ([`PeerError`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::policy::Binding;
use crate::provenance::ProvenanceRecord;

/// Why a role of another process gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerError {
    /// It answered `status` (4xx) with `reason`: the evidence, or this process's credentials;
    /// 502: its answer did not fit the question.
    Refused { status: u16, reason: String },
    /// It could not be reached, or failed itself (after the client's retries).
    Unavailable(String),
}

impl std::fmt::Display for PeerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused { status, reason } => write!(f, "refused ({status}): {reason}"),
            Self::Unavailable(reason) => write!(f, "unavailable: {reason}"),
        }
    }
}

/// `POST /v1/log/statements`: the records of one issuance, for the log to sign.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    pub records: Vec<ProvenanceRecord>,
}

/// The answer: the log's origin (what credentials name) and each record's signed statement
/// (COSE_Sign1, hex), in the order asked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignResponse {
    pub origin: String,
    pub statements: Vec<String>,
}

/// `POST /v1/log/append`: statements the log signed (hex), appended in one transaction with the
/// tree head that covers them; the answer is the issuance's `provenance` (head, proofs, receipts).
/// `binding`: the issuance's, which the log keeps in its private binding table for each of the
/// statements it sealed to an auditor key (so that a renewal can be checked against it).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppendRequest {
    pub statements: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<Binding>,
}

/// `POST /v1/log/binding`: the binding of a credential whose record the log sealed, from its
/// private binding table (404 when the log has no record of the credential).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingRequest {
    pub credential_id: String,
}

/// The answer: the binding, or (`binding` absent) the auditor key id (hex) of a sealed record
/// the table holds no row for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingAnswer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<Binding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_to: Option<String>,
}

/// The provenance log in another process, as the Credential Authority calls it
/// (`twi serve --log-url`), over mutual TLS with its role certificate.
pub trait LogPeer: Send + Sync {
    /// Its base URL, for messages.
    fn url(&self) -> &str;

    /// `POST /v1/log/statements`.
    fn sign(&self, request: &SignRequest) -> Result<SignResponse, PeerError>;

    /// `POST /v1/log/append`.
    fn append(&self, request: &AppendRequest) -> Result<Value, PeerError>;

    /// `GET /v1/log/proof/{id}`: the credential's statement with its proof; `None` if unlogged.
    fn proof(&self, id: &str) -> Result<Option<Value>, PeerError>;

    /// `POST /v1/log/binding`: the binding a sealed record holds; `None` if unlogged.
    fn binding(&self, request: &BindingRequest) -> Result<Option<BindingAnswer>, PeerError>;
}
