//! Problems of the issuer itself — its state, its randomness, what it failed to encode or sign
//! — as opposed to refusals of what it was shown (`rejection.rs`). Every message names the
//! file or the step, so that an operator knows what to restore or retry.

use std::path::PathBuf;

use crate::database::DatabaseError;
use crate::freshness::FreshnessError;
use crate::provenance::LogError;

/// Problems of the issuer itself (not of the evidence it was shown).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssuerError {
    #[error("the operating system's random number generator failed")]
    Rng,
    #[error("issuer state at {0}: {1}")]
    State(PathBuf, String),
    #[error("certificate encoding: {0}")]
    Certificate(String),
    #[error("the public key is not a valid P-384 point")]
    BadPublicKey,
    #[error("the Verifier cannot make a challenge: {0}")]
    Challenge(#[from] FreshnessError),
    #[error("the replicas' store is unavailable ({0}); try again shortly")]
    Database(#[from] DatabaseError),
    #[error("the provenance log: {0}")]
    Log(#[from] LogError),
    #[error("signing the {what}: {reason}")]
    Token { what: &'static str, reason: String },
    #[error("the simulated TEE's root cannot be used: {0}; recreate the simulator state (remove its directory)")]
    SimulatedRoot(String),
    #[error(
        "the policy admits no single workload with measurement {measurement} on {platform}, so there is nothing to provision: admit the image first (`twi policy add-image`)"
    )]
    NothingToProvision { platform: &'static str, measurement: String },
    #[error(
        "this process does not hold {0}: it serves other roles (`twi serve --roles`); ask the process that serves this one"
    )]
    NotHeld(&'static str),
    #[error("the provenance log at {url} (--log-url) {error}")]
    LogPeer { url: String, error: crate::log_peer::PeerError },
    #[error("the Credential Authority at {url} (--ca-url) {error}")]
    CaPeer { url: String, error: crate::log_peer::PeerError },
    /// A bound of the service's in-memory state is reached (a limit, not a fault): come back
    /// when some of it expires.
    #[error("{0}; try again later")]
    Full(String),
}

impl IssuerError {
    /// A token (WIT, attestation result) that could not be made or signed.
    pub(crate) fn token(what: &'static str, reason: impl std::fmt::Display) -> Self {
        Self::Token { what, reason: reason.to_string() }
    }

    /// A certificate that could not be made.
    pub(crate) fn certificate(reason: impl std::fmt::Display) -> Self {
        Self::Certificate(reason.to_string())
    }
}
