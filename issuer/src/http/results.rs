//! `POST /v1/verifier/ear-cwt`: the Verifier's attestation result (JWT) re-signed as a CWT
//! (`crate::results`).

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;

use super::api::{ApiError, AppState, body, with_issuer};
use super::wire::{EarCwtRequest, EarCwtResponse};

pub const EAR_CWT_PATH: &str = "/v1/verifier/ear-cwt";

pub(super) async fn ear_cwt(
    State(state): State<AppState>,
    json: Result<Json<EarCwtRequest>, JsonRejection>,
) -> Result<Json<EarCwtResponse>, ApiError> {
    let request = body(json)?;
    let cwt = with_issuer(&state, move |issuer| {
        issuer.attestation_result_cwt(&request.attestation_result).map_err(|e| {
            ApiError::bad_request(format!("{e}: send an unexpired attestation result this Verifier signed"))
        })
    });
    Ok(Json(EarCwtResponse { cwt: hex::encode(cwt.await?) }))
}
