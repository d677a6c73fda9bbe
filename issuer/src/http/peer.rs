//! The roles in separate processes (issue 14 item 5): a Credential Authority or Key Store
//! process that does not serve the Verifier role has the evidence appraised by the Verifier
//! process it is given (`twi serve --verifier-url`), over mutual TLS — the Verifier's server
//! certificate checked against a CA, this process presenting a client certificate under the
//! Verifier's operator CA. The Verifier answers with its signed attestation result and keeps
//! what it appraised for the asking role to redeem once, through the database the processes
//! share (as mechanism B's result, `redemption.rs`).
//!
//! The client is the caller's ([`VerifierPeer`]): `twi serve` gives the one `twi run
//! --issuer-url` uses, with its retries under one `Idempotency-Key`; `asking.rs` turns its
//! answers into this service's.

use crate::evidence::EvidenceJson;
use crate::policy::Mechanism;

/// A Verifier in another process.
pub trait VerifierPeer: Send + Sync {
    /// Its base URL, for messages.
    fn url(&self) -> &str;

    /// `POST /v1/verifier/evidence` with `mechanism` (c or d) and `evidence`: the Verifier's
    /// attestation result (EAR JWT) for it, or why not.
    fn appraise(&self, mechanism: Mechanism, evidence: &EvidenceJson) -> Result<String, PeerError>;
}

/// Why the Verifier gave no attestation result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerError {
    /// It answered `status` (4xx) with `reason`: the evidence, or this process's credentials.
    Refused { status: u16, reason: String },
    /// It could not be reached, or failed itself (after the client's retries).
    Unavailable(String),
}
