//! The Credential Authority's endpoints for a Key Store of another process (`twi serve --roles
//! key-store --ca-url`): certify the key it provisions for a workload, and the key it releases
//! to an appraised launch. Only a role asks (a client certificate under the operator CA: 403
//! without); a malformed body is 400; a log process this CA cannot reach is 503 with
//! `Retry-After`.

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::{Extension, Json};

use super::api::{ApiError, AppState, body, logged, with_issuer};
use super::tls::Operator;
use super::wire::{platform, unhex};
use crate::key_store_ca::{ProvisionCertified, ProvisionCertifyRequest, ReleaseCertified, ReleaseCertifyRequest};
use crate::rejection::Rejection;

/// Only a role (a client certificate under the operator CA) asks the CA for the Key Store.
fn from_a_key_store(operator: Option<Extension<Operator>>, what: &str) -> Result<(), ApiError> {
    let asking = format!("a Key Store process asks the Credential Authority to {what}");
    super::api::from_a_role(operator, &asking, "twi serve --roles key-store --ca-url … --role-cert … --role-key …")
}

/// `POST /v1/ca/key-store/provision`: the key certified for the workload this CA's policy
/// admits with the measurement on the platform, the provisioning logged.
pub(super) async fn provision(
    State(state): State<AppState>,
    operator: Option<Extension<Operator>>,
    json: Result<Json<ProvisionCertifyRequest>, JsonRejection>,
) -> Result<Json<ProvisionCertified>, ApiError> {
    from_a_key_store(operator, "certify a provisioned key")?;
    let request = body(json)?;
    let platform = platform(&request.platform)?;
    let measurement = unhex("measurement", &request.measurement)?;
    let key = unhex("public_key", &request.public_key)?;
    let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(&key)
        .map_err(|_| ApiError::bad_request("public_key is not a P-384 point (SEC1, hex)"))?;
    if request.owner.trim().is_empty() {
        return Err(ApiError::bad_request("name the `owner` who asked the Key Store to provision"));
    }
    let certificate = with_issuer(&state, move |issuer| {
        let certified = issuer.ca_provision(platform, &measurement, &request.owner, &key);
        certified.map_err(|e| match e {
            crate::IssuerError::NothingToProvision { .. } => ApiError::forbidden(e.to_string()),
            e => logged("credential authority (for a key store's provisioning)", Rejection::Internal(e)),
        })
    })
    .await?;
    Ok(Json(ProvisionCertified { certificate: hex::encode(certificate) }))
}

/// `POST /v1/ca/key-store/release`: the released key certified for the launch the Verifier's
/// attestation result and the evidence stand for, checked here; the certificate and WIT logged.
pub(super) async fn release(
    State(state): State<AppState>,
    operator: Option<Extension<Operator>>,
    json: Result<Json<ReleaseCertifyRequest>, JsonRejection>,
) -> Result<Json<ReleaseCertified>, ApiError> {
    from_a_key_store(operator, "certify a released key")?;
    let request = body(json)?;
    let evidence = request.evidence.decode()?;
    let key = unhex("public_key", &request.public_key)?;
    let ear = request.attestation_result;
    let issued = with_issuer(&state, move |issuer| {
        let issued = issuer.ca_certify_release(&evidence.evidence(), &ear, &key);
        issued.map_err(|r| logged("credential authority (for a key store's release)", r))
    })
    .await?;
    Ok(Json(ReleaseCertified {
        certificate: hex::encode(&issued.certificate_der),
        wit: issued.wit,
        wit_jti: issued.wit_jti,
        provenance: issued.provenance,
    }))
}
