//! Asking the Verifier of another process ([`super::peer`]) from a request's handler: off the
//! async workers, its refusals turned into this service's answers.

use std::sync::Arc;

use axum::http::StatusCode;

use super::api::ApiError;
use super::peer::{PeerError, VerifierPeer};
use crate::evidence::{EvidenceJson, OwnedEvidence};
use crate::policy::Mechanism;

/// Seconds a client waits before asking again when the Verifier cannot be reached.
const UNAVAILABLE_RETRY_AFTER: u64 = 5;

/// The attestation result `peer` signs for `evidence` appraised for `mechanism`, asked off the
/// async workers; its refusals as this service's answers.
pub(super) async fn appraised(
    peer: &Arc<dyn VerifierPeer>,
    mechanism: Mechanism,
    evidence: &OwnedEvidence,
) -> Result<String, ApiError> {
    let (peer, json) = (peer.clone(), EvidenceJson::new(&evidence.evidence()));
    let asked = tokio::task::spawn_blocking(move || peer.appraise(mechanism, &json).map_err(|e| answer(&*peer, e)));
    asked.await.map_err(|e| {
        eprintln!("twi serve: the call to the Verifier failed: {e}");
        ApiError::internal("the call to the Verifier failed (see the service's log)")
    })?
}

/// The answer for the Verifier's refusal: the evidence's fault (400, 403) passes through; a
/// refusal of this process's own credentials (401) is this service's fault (502); a Verifier
/// that is busy, unreachable or failing is 503 with `Retry-After`.
fn answer(peer: &dyn VerifierPeer, error: PeerError) -> ApiError {
    let url = peer.url();
    match error {
        PeerError::Refused { status: status @ (400 | 403), reason } => ApiError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN),
            message: format!("the Verifier ({url}) refused the evidence: {reason}"),
            code: None,
            retry_after: None,
        },
        PeerError::Refused { status: 429, reason } => ApiError::retry_later(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the Verifier ({url}) is busy: {reason}"),
            UNAVAILABLE_RETRY_AFTER,
        ),
        PeerError::Refused { status, reason } => {
            eprintln!("twi serve: the Verifier at {url} refused this process ({status}): {reason}");
            ApiError {
                status: StatusCode::BAD_GATEWAY,
                message: format!(
                    "the Verifier this service calls ({url}) refused it ({status}): the service's --verifier-url, --verifier-ca or --role-cert is misconfigured"
                ),
                code: None,
                retry_after: None,
            }
        }
        PeerError::Unavailable(reason) => ApiError::retry_later(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the Verifier this service calls cannot be reached: {reason}"),
            UNAVAILABLE_RETRY_AFTER,
        ),
    }
}
