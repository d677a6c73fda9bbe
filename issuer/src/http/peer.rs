//! The roles in separate processes (issue 14 item 5), over mutual TLS — the other process's
//! server certificate checked against a CA, this process presenting a client certificate under
//! the other's operator CA:
//!
//! - a Credential Authority or Key Store process that does not serve the Verifier role has the
//!   evidence appraised by the Verifier process it is given (`twi serve --verifier-url`,
//!   [`VerifierPeer`]);
//! - a Verifier process that does not serve the CA role obtains mechanism A's credential from
//!   the CA process it is given (`--ca-url`, [`CaPeer`]).
//!
//! The Verifier keeps what it appraised for the other role to redeem once, through the
//! database the processes share (as mechanism B's result, `redemption.rs`). The clients are the
//! caller's: `twi serve` gives the one `twi run --issuer-url` uses, with its retries under one
//! `Idempotency-Key`; `asking.rs` turns their answers into this service's.

use std::sync::Arc;

pub use crate::log_peer::{LogPeer, PeerError};

use super::wire::CredentialResponse;
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

/// A Credential Authority in another process, as mechanism A's Verifier calls it
/// (`twi serve --ca-url`).
pub trait CaPeer: Send + Sync {
    /// Its base URL, for messages.
    fn url(&self) -> &str;

    /// `POST /v1/ca/credential` with mechanism a, `evidence` and the attestation result this
    /// Verifier signed for it: the credential, or why not.
    fn credential(&self, evidence: &EvidenceJson, attestation_result: &str) -> Result<CredentialResponse, PeerError>;
}

/// The roles of other processes this one calls.
#[derive(Clone, Default)]
pub struct Peers {
    /// For a CA or Key Store without the Verifier role.
    pub verifier: Option<Arc<dyn VerifierPeer>>,
    /// For a Verifier without the CA role (mechanism A).
    pub ca: Option<Arc<dyn CaPeer>>,
}

impl std::fmt::Debug for Peers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peers")
            .field("verifier", &self.verifier.as_ref().map(|p| p.url().to_string()))
            .field("ca", &self.ca.as_ref().map(|p| p.url().to_string()))
            .finish()
    }
}
