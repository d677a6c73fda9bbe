//! The provenance log's read endpoints: anyone may fetch the current checkpoint (a C2SP
//! signed note, `text/plain; charset=utf-8` as tlog-tiles serves it), its verifier key, a
//! credential's record with its inclusion proof, consistency proofs, and the SBOM a record
//! names (`GET /v1/log/sbom/sha384-HEX`, from the policy's SBOM store), and check them offline
//! (`twi log prove`, `twi provenance show --issuer-url`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::api::{ApiError, AppState, with_issuer};
use crate::policy::{SbomDigest, SbomError};

/// The paths, under the Credential Authority's role (the log lives with it).
pub const CHECKPOINT_PATH: &str = "/v1/log/checkpoint";
pub const VKEY_PATH: &str = "/v1/log/key";
pub const PROOF_PATH: &str = "/v1/log/proof";
pub const CONSISTENCY_PATH: &str = "/v1/log/consistency";
pub const SBOM_PATH: &str = "/v1/log/sbom";

/// The media type of a CycloneDX JSON document.
const CYCLONEDX_JSON: &str = "application/vnd.cyclonedx+json";

const TEXT: &str = "text/plain; charset=utf-8";

fn internal(e: crate::error::IssuerError) -> ApiError {
    ApiError::internal(format!("the provenance log: {e}"))
}

pub(super) async fn checkpoint(State(state): State<AppState>) -> Result<Response, ApiError> {
    let note = with_issuer(&state, |issuer| issuer.log_checkpoint().map_err(internal)).await?;
    Ok(([(header::CONTENT_TYPE, TEXT)], note).into_response())
}

pub(super) async fn vkey(State(state): State<AppState>) -> Result<Response, ApiError> {
    let vkey = with_issuer(&state, |issuer| issuer.log_vkey().map_err(internal)).await?;
    Ok(([(header::CONTENT_TYPE, TEXT)], vkey + "\n").into_response())
}

pub(super) async fn proof(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let found = with_issuer(&state, move |issuer| issuer.log_proof(&id).map_err(internal).map(|p| (id, p))).await?;
    match found {
        (_, Some(proof)) => Ok(Json(proof)),
        (id, None) => Err(ApiError::not_found(format!(
            "the provenance log has no record of credential {id:?}: give an X.509 serial (hex) or a WIT jti this issuer issued"
        ))),
    }
}

pub(super) async fn consistency(
    State(state): State<AppState>,
    Path((first, second)): Path<(u64, u64)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let proof = with_issuer(&state, move |issuer| {
        issuer
            .log_consistency(first, second)
            .map_err(|e| ApiError::bad_request(format!("{e}: ask for 1 <= FIRST <= SECOND <= the tree size")))
    });
    Ok(Json(proof.await?))
}

/// `GET /v1/log/sbom/sha384-HEX`: the SBOM document of that digest from the policy's SBOM store,
/// byte for byte (the client checks the digest again); 400 for a malformed digest, 404 when
/// the store does not hold it.
pub(super) async fn sbom(State(state): State<AppState>, Path(digest): Path<String>) -> Result<Response, ApiError> {
    let Some(parsed) = SbomDigest::parse_path_form(&digest) else {
        return Err(ApiError::bad_request(format!(
            "{digest:?} is not an SBOM digest: ask for {SBOM_PATH}/sha384- and the 96 hex digits of its SHA-384"
        )));
    };
    let found = with_issuer(&state, move |issuer| Ok(issuer.log_sbom(&parsed))).await?;
    match found {
        Ok(bytes) => Ok(([(header::CONTENT_TYPE, CYCLONEDX_JSON)], bytes).into_response()),
        Err(SbomError::Missing { .. }) => Err(ApiError::not_found(format!(
            "this issuer stores no SBOM {parsed}: its operator adds an image's SBOM with `twi policy add-image` (the policy's sboms/ store)"
        ))),
        Err(e) => Err(ApiError::internal(format!("the SBOM store cannot serve {parsed}: {e}"))),
    }
}
