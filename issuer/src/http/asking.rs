//! Asking a role of another process ([`super::peer`]: the Verifier, or mechanism A's CA) from
//! a request's handler: off the async workers, its refusals turned into this service's answers.

use std::sync::Arc;

use axum::http::StatusCode;

use super::api::ApiError;
use super::peer::{CaPeer, PeerError, VerifierPeer};
use super::wire::CredentialResponse;
use crate::evidence::{EvidenceJson, OwnedEvidence};
use crate::policy::Mechanism;

/// Seconds a client waits before asking again when the other role cannot be reached.
const UNAVAILABLE_RETRY_AFTER: u64 = 5;

/// The attestation result `peer` signs for `evidence` appraised for `mechanism`, asked off the
/// async workers; its refusals as this service's answers.
pub(super) async fn appraised(
    peer: &Arc<dyn VerifierPeer>,
    mechanism: Mechanism,
    evidence: &OwnedEvidence,
) -> Result<String, ApiError> {
    let (peer, json) = (peer.clone(), EvidenceJson::new(&evidence.evidence()));
    let asked = move || peer.appraise(mechanism, &json).map_err(|e| answer("Verifier", peer.url(), e));
    off_workers(asked, "Verifier").await
}

/// The credential `peer` (mechanism A's Credential Authority) issues on `evidence` and the
/// attestation result this Verifier signed for it, asked off the async workers.
pub(super) async fn issued_by(
    peer: &Arc<dyn CaPeer>,
    evidence: &OwnedEvidence,
    attestation_result: String,
) -> Result<CredentialResponse, ApiError> {
    let (peer, json) = (peer.clone(), EvidenceJson::new(&evidence.evidence()));
    let asked = move || {
        let answer_of = |e| answer("Credential Authority", peer.url(), e);
        peer.credential(&json, &attestation_result).map_err(answer_of)
    };
    off_workers(asked, "Credential Authority").await
}

/// Runs the blocking call `asked` to another role off the async workers.
async fn off_workers<T: Send + 'static>(
    asked: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
    role: &'static str,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(asked).await.map_err(|e| {
        eprintln!("twi serve: the call to the {role} failed: {e}");
        ApiError::internal(format!("the call to the {role} failed (see the service's log)"))
    })?
}

/// The answer for the refusal of `role` at `url`: the evidence's fault (400, 403) passes
/// through; a refusal of this process's own credentials (401, …) is this service's fault (502);
/// a peer that is busy, unreachable or failing is 503 with `Retry-After`.
fn answer(role: &str, url: &str, error: PeerError) -> ApiError {
    match error {
        PeerError::Refused { status: status @ (400 | 403), reason } => ApiError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN),
            message: format!("the {role} ({url}) refused the evidence: {reason}"),
            code: None,
            retry_after: None,
        },
        PeerError::Refused { status: 429, reason } => ApiError::retry_later(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the {role} ({url}) is busy: {reason}"),
            UNAVAILABLE_RETRY_AFTER,
        ),
        PeerError::Refused { status, reason } => {
            eprintln!("twi serve: the {role} at {url} refused this process ({status}): {reason}");
            ApiError {
                status: StatusCode::BAD_GATEWAY,
                message: format!(
                    "the {role} this service calls ({url}) refused it ({status}): the service's --verifier-url/--ca-url, --peer-ca or --role-cert is misconfigured"
                ),
                code: None,
                retry_after: None,
            }
        }
        PeerError::Unavailable(reason) => ApiError::retry_later(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the {role} this service calls cannot be reached: {reason}"),
            UNAVAILABLE_RETRY_AFTER,
        ),
    }
}
