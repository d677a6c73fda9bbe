//! Why the issuer refused what it was shown: each role's own refusal, carried whole (the
//! verifier's hints included), so that the message says what failed and what to fix. The
//! issuer's own failures travel as [`Rejection::Internal`] (an HTTP 500, not a 403).

use crate::ca::RequestRefused;
use crate::error::IssuerError;
use crate::freshness::FreshnessError;
use crate::keystore::KeyStoreError;
use crate::policy::{PolicyRejection, RenewalRefused};
use crate::verifier::EvidenceRejection;

/// Why evidence (or a request) was not good enough for a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The Verifier's: the evidence does not verify, or does not bind what it must.
    #[error("{0}")]
    Evidence(#[from] EvidenceRejection),
    #[error("the appraisal policy refused the evidence: {0}")]
    Policy(#[from] PolicyRejection),
    #[error("{workload} requires freshness {level}: {error}")]
    Freshness { workload: String, level: &'static str, error: FreshnessError },
    #[error("{0}")]
    Renewal(#[from] RenewalRefused),
    #[error(
        "credential {0} has no provenance record at this issuer: a renewal must name a credential this issuer issued (its X.509 serial in hex, or its WIT jti)"
    )]
    UnknownPreviousCredential(String),
    #[error(
        "the provenance record of credential {id} is encrypted to auditor key {kid} and the issuer's private binding table holds no row for it (the record was logged before the table existed), so a renewal cannot be checked against the binding the record holds: request a new credential instead (without renewal_of)"
    )]
    SealedPreviousRecord { id: String, kid: String },
    #[error("the Credential Authority refused the credential request: {0}")]
    CredentialRequest(#[from] RequestRefused),
    #[error("the Key Store refused the release: {0}")]
    KeyStore(#[from] KeyStoreError),
    #[error("the issuer failed: {0}")]
    Internal(#[from] IssuerError),
    /// TACRA: the workload is not served for the target (or not with that credential type).
    #[error("{0}")]
    Target(#[from] crate::policy::TargetRefusal),
    /// TACRA: an `absent-*` freshness element the target's policy does not accept.
    #[error("{workload} requires freshness {kind} for {target}: {reason}")]
    AbsentFreshness { workload: String, kind: &'static str, target: String, reason: String },
    /// TACRA: the evidence is for the other mode than the policy's for the target.
    #[error("{workload} acquires for {target} by {expected}, not {got}: the policy decides the mode")]
    Mode { workload: String, target: String, expected: &'static str, got: &'static str },
}

impl From<twi_verifier::Rejection> for Rejection {
    fn from(rejection: twi_verifier::Rejection) -> Self {
        Self::Evidence(EvidenceRejection::Verifier(rejection))
    }
}
