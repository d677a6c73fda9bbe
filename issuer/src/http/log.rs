//! The provenance log's read endpoints: anyone may fetch the current checkpoint (a C2SP
//! signed note, `text/plain; charset=utf-8` as tlog-tiles serves it), its verifier key, a
//! credential's record with its inclusion proof, consistency proofs, and the SBOM a record
//! names (`GET /v1/log/sbom/sha384-HEX`, from the policy's SBOM store) with the statements
//! attached to it (`GET /v1/log/attachment/sha384-HEX`), and check them offline
//! (`twi log prove`, `twi provenance show --issuer-url`).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use super::api::{ApiError, AppState, body, with_issuer};
use super::tls::Operator;
use crate::log_peer::{AppendRequest, BindingAnswer, BindingRequest, SignRequest, SignResponse};
use crate::policy::{SbomDigest, SbomError};

/// The paths, under the Credential Authority's role (the log lives with it).
pub const CHECKPOINT_PATH: &str = "/v1/log/checkpoint";
pub const VKEY_PATH: &str = "/v1/log/key";
pub const PROOF_PATH: &str = "/v1/log/proof";
pub const CONSISTENCY_PATH: &str = "/v1/log/consistency";
pub const SBOM_PATH: &str = "/v1/log/sbom";
pub const ATTACHMENT_PATH: &str = "/v1/log/attachment";
/// For a Credential Authority in another process (a client certificate under the operator CA).
pub const STATEMENTS_PATH: &str = "/v1/log/statements";
pub const APPEND_PATH: &str = "/v1/log/append";
pub const BINDING_PATH: &str = "/v1/log/binding";

/// The media type of a CycloneDX JSON document.
const CYCLONEDX_JSON: &str = "application/vnd.cyclonedx+json";

const TEXT: &str = "text/plain; charset=utf-8";

fn internal(e: crate::error::IssuerError) -> ApiError {
    ApiError::internal(format!("the provenance log: {e}"))
}

/// Only a role (a client certificate under the operator CA) asks the log to sign or append.
fn from_a_role(operator: Option<Extension<Operator>>, what: &str) -> Result<(), ApiError> {
    let asking = format!("a Credential Authority process asks the log to {what}");
    super::api::from_a_role(operator, &asking, "twi serve --log-url … --role-cert … --role-key …")
}

/// `POST /v1/log/statements`: one issuance's records, signed as statements (400 if they are
/// not well-formed records of this trust domain).
pub(super) async fn statements(
    State(state): State<AppState>,
    operator: Option<Extension<Operator>>,
    json: Result<Json<SignRequest>, JsonRejection>,
) -> Result<Json<SignResponse>, ApiError> {
    from_a_role(operator, "sign records")?;
    let records = body(json)?.records;
    let signed = with_issuer(&state, move |issuer| issuer.log_sign_for_ca(records).map_err(internal)).await?;
    Ok(Json(signed.map_err(ApiError::bad_request)?))
}

/// `POST /v1/log/append`: statements this log signed, appended with a new signed tree head in
/// one transaction; the head, proofs and receipts (400 for a statement it did not sign).
pub(super) async fn append(
    State(state): State<AppState>,
    operator: Option<Extension<Operator>>,
    json: Result<Json<AppendRequest>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    from_a_role(operator, "append statements")?;
    let AppendRequest { statements, binding } = body(json)?;
    let appended =
        with_issuer(&state, move |issuer| issuer.log_append_for_ca(&statements, binding.as_ref()).map_err(internal));
    Ok(Json(appended.await?.map_err(ApiError::bad_request)?))
}

/// `POST /v1/log/binding`: for a renewal at a Credential Authority process, the binding a
/// sealed record holds, from the private binding table (only to a role; 404 for a credential
/// the log has no record of). Never served to anyone else.
pub(super) async fn binding(
    State(state): State<AppState>,
    operator: Option<Extension<Operator>>,
    json: Result<Json<BindingRequest>, JsonRejection>,
) -> Result<Json<BindingAnswer>, ApiError> {
    from_a_role(operator, "read a sealed record's binding")?;
    let id = body(json)?.credential_id;
    let found = with_issuer(&state, move |issuer| issuer.log_binding_for_ca(&id).map_err(internal).map(|b| (id, b)));
    match found.await? {
        (_, Some(answer)) => Ok(Json(answer)),
        (id, None) => Err(ApiError::not_found(format!("the provenance log has no record of credential {id:?}"))),
    }
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

/// `GET /v1/log/attachment/sha384-HEX`: a statement attached to an SBOM (`twi build --attach`;
/// a vendor statement is a COSE_Sign1) from the policy's store, byte for byte, as
/// `application/octet-stream` (the client checks the digest again); 400 for a malformed digest,
/// 404 when the store does not hold it.
pub(super) async fn attachment(
    State(state): State<AppState>,
    Path(digest): Path<String>,
) -> Result<Response, ApiError> {
    let Some(parsed) = SbomDigest::parse_path_form(&digest) else {
        return Err(ApiError::bad_request(format!(
            "{digest:?} is not a statement digest: ask for {ATTACHMENT_PATH}/sha384- and the 96 hex digits of its SHA-384"
        )));
    };
    let found = with_issuer(&state, move |issuer| Ok(issuer.log_attachment(&parsed))).await?;
    match found {
        Ok(bytes) => Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()),
        Err(SbomError::Missing { .. }) => Err(ApiError::not_found(format!(
            "this issuer stores no attached statement {parsed}: `twi policy add-image` stores those an image's SBOM lists"
        ))),
        Err(e) => Err(ApiError::internal(format!("the SBOM store cannot serve the statement {parsed}: {e}"))),
    }
}
