//! The endpoints, one function each: decode the body, check that this process serves the
//! role asked, ask the issuer (`asks.rs`) off the async workers, answer in the wire types.

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use twi_proto::msg::Platform;

use super::api::{ApiError, AppState, body, logged, with_issuer};
use super::tls::Operator;
use super::wire::{
    self, AttestationResultResponse, ChallengeRequest, ChallengeResponse, CredentialAuthorityRequest,
    CredentialResponse, KeyReleaseRequest, KeyReleaseResponse, OwnedEvidence, ProvisionRequest, ProvisionResponse,
    VerifierRequest, unhex,
};
use crate::asks::CredentialRequest;
use crate::ca::CredentialRequestIn;
use crate::issuer::Issuer;
use crate::policy::{Mechanism, platform_name};

pub(super) async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok", "roles": state.roles.names() }))
}

/// `GET /metrics`: the process's counters (Prometheus text format 0.0.4; counts only).
pub(super) async fn metrics() -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::metrics::exposition())
}

pub(super) async fn keys(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let roles = state.roles;
    with_issuer(&state, move |issuer| {
        let published = issuer.published_keys();
        let mut keys = Vec::new();
        keys.extend(published.verifier.filter(|_| roles.verifier));
        keys.extend(published.wit.into_iter().filter(|_| roles.credential_authority));
        keys.extend(published.log.filter(|_| roles.log));
        if roles.key_store {
            let store = issuer.key_store().map_err(|e| ApiError::internal(format!("the Key Store: {e}")))?;
            keys.push(store.jwk());
        }
        Ok(Json(serde_json::json!({ "keys": keys })))
    })
    .await
}

pub(super) async fn ca_certificate(State(state): State<AppState>) -> Result<Response, ApiError> {
    let pem = with_issuer(&state, |issuer| {
        Ok(issuer.ca().map_err(|e| ApiError::internal(e.to_string()))?.certificate_pem().to_string())
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "application/pem-certificate-chain")], pem).into_response())
}

/// The SPIFFE bundle (`application/json`, SPIFFE Trust Domain and Bundle §4).
pub(super) async fn trust_bundle(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let bundle = with_issuer(&state, |issuer| {
        issuer.trust_bundle().map_err(|e| ApiError::internal(format!("the trust bundle: {e}")))
    });
    Ok(Json(bundle.await?))
}

pub(super) async fn challenge(
    State(state): State<AppState>,
    json: Result<Json<ChallengeRequest>, JsonRejection>,
) -> Result<Json<ChallengeResponse>, ApiError> {
    let request = body(json)?;
    let platform = wire::platform(&request.platform)?;
    let measurement = match &request.measurement {
        Some(text) => unhex("measurement", text)?,
        None => Vec::new(),
    };
    if request.target.is_empty() {
        return Err(ApiError::bad_request("name the `target` the workload asks a credential for (TACRA Initiate)"));
    }
    let kind = twi_proto::msg::CredentialKind::from_name(&request.credential_type).ok_or_else(|| {
        ApiError::bad_request(format!("credential_type {:?} is not x509 or wit", request.credential_type))
    })?;
    with_issuer(&state, move |issuer| {
        let challenge = issuer.initiate(platform, &measurement, &request.target, kind, request.hint.as_deref())?;
        Ok(Json(ChallengeResponse {
            nonce: hex::encode(challenge.nonce),
            mechanism: challenge.mechanism,
            freshness: challenge.freshness.name().to_string(),
        }))
    })
    .await
}

pub(super) async fn verifier_evidence(
    State(state): State<AppState>,
    operator: Option<Extension<Operator>>,
    json: Result<Json<VerifierRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let request = body(json)?;
    let evidence = request.evidence.decode()?;
    // Mechanism B's workload, or the Credential Authority (c) or Key Store (d) of another
    // process over mutual TLS: the Verifier's attestation result.
    let for_a_role = matches!(request.mechanism, Mechanism::C | Mechanism::D) && operator.is_some();
    match request.mechanism {
        Mechanism::A => Ok(Json(verifier_credential(&state, evidence).await?).into_response()),
        mechanism if mechanism == Mechanism::B || for_a_role => {
            let result = with_issuer(&state, move |issuer| {
                let result = issuer.verifier_appraisal(&evidence.evidence(), mechanism);
                result.map_err(|r| logged(&format!("verifier (mechanism {mechanism})"), r))
            })
            .await?;
            Ok(Json(AttestationResultResponse { attestation_result: result.ear_jwt, workload_id: result.workload_id })
                .into_response())
        }
        other => Err(ApiError::bad_request(format!(
            "mechanism {other} does not send evidence to the Verifier: mechanism c sends it to the Credential Authority (POST /v1/ca/credential){}; only a Credential Authority or Key Store process asks the Verifier for these mechanisms, with a client certificate under its operator CA",
            if other == Mechanism::D { ", mechanism d to the Key Store (POST /v1/key-store/release)" } else { "" }
        ))),
    }
}

/// Mechanism A at the Verifier: the credential from the CA of this process, or from the CA of
/// another process it calls (`peer`) with its attestation result.
async fn verifier_credential(state: &AppState, evidence: OwnedEvidence) -> Result<CredentialResponse, ApiError> {
    if state.roles.credential_authority {
        let issued = with_issuer(state, move |issuer| {
            issuer.verifier_credential(&evidence.evidence()).map_err(|r| logged("verifier (mechanism a)", r))
        });
        return Ok(CredentialResponse::new(&issued.await?));
    }
    let Some(ca) = &state.peers.ca else {
        return Err(ApiError::role_missing(
            "Credential Authority",
            "mechanism A's Verifier obtains the credential from it: serve both roles, or give `twi serve --ca-url`",
        ));
    };
    let evidence = std::sync::Arc::new(evidence);
    let appraised = evidence.clone();
    let result = with_issuer(state, move |issuer| {
        let result = issuer.verifier_appraisal(&appraised.evidence(), Mechanism::A);
        result.map_err(|r| logged("verifier (mechanism a)", r))
    });
    let ear_jwt = result.await?.ear_jwt;
    let mut issued = super::asking::issued_by(ca, &evidence, ear_jwt.clone()).await?;
    // The workload's result names its credential, as in one process.
    let der = der::pem::decode_vec(issued.certificate_pem.as_bytes())
        .map_err(|e| ApiError {
            status: axum::http::StatusCode::BAD_GATEWAY,
            message: format!("the Credential Authority answered a certificate_pem that is not PEM: {e}"),
            code: None,
            retry_after: None,
        })?
        .1;
    let named = with_issuer(state, move |issuer| {
        issuer.attestation_result_naming(&ear_jwt, &der).map_err(|e| logged("verifier (mechanism a)", e.into()))
    });
    issued.attestation_result = Some(named.await?);
    Ok(issued)
}

pub(super) async fn ca_credential(
    State(state): State<AppState>,
    operator: Option<Extension<Operator>>,
    json: Result<Json<CredentialAuthorityRequest>, JsonRejection>,
) -> Result<Json<CredentialResponse>, ApiError> {
    let request = body(json)?;
    let issued = match request.mechanism {
        // The Verifier of another process, over mutual TLS, for mechanism A.
        Mechanism::A if operator.is_some() => {
            let (Some(evidence), Some(ear)) = (&request.evidence, &request.attestation_result) else {
                return Err(ApiError::bad_request(
                    "mechanism a from a Verifier needs `evidence` and `attestation_result`",
                ));
            };
            let (evidence, ear) = (evidence.decode()?, ear.clone());
            with_issuer(&state, move |issuer| {
                let (evidence, mechanism) = (evidence.evidence(), Mechanism::A);
                let request =
                    CredentialRequest::Appraised { evidence, attestation_result: &ear, mechanism, renewal_of: None };
                issuer.ca_credential(request).map_err(|r| logged("credential authority (for a verifier)", r))
            })
            .await?
        }
        Mechanism::C => {
            let Some(evidence) = &request.evidence else {
                return Err(ApiError::bad_request("mechanism c needs `evidence`"));
            };
            let renewal_of = request.renewal_of.clone();
            enrolled(&state, evidence.decode()?, renewal_of, "credential authority (mechanism c)").await?
        }
        Mechanism::B => attestation_result_request(&state, &request).await?,
        other => {
            return Err(ApiError::bad_request(format!(
                "the Credential Authority takes mechanism b (attestation result) or c (evidence) requests, not {other}{}",
                if other == Mechanism::A {
                    ": mechanism a sends evidence to the Verifier (POST /v1/verifier/evidence); only a Verifier process asks the Credential Authority for it, with a client certificate under its operator CA"
                } else {
                    ""
                }
            )));
        }
    };
    Ok(Json(CredentialResponse::new(&issued)))
}

/// Mechanism C at the Credential Authority (the JSON API and EST): the evidence appraised by
/// this process's Verifier, or by the Verifier of another process it calls (`peer`); with
/// `renewal_of`, a renewal of that credential.
pub(super) async fn enrolled(
    state: &AppState,
    evidence: OwnedEvidence,
    renewal_of: Option<String>,
    role: &'static str,
) -> Result<crate::asks::Issued, ApiError> {
    let ear =
        appraised_elsewhere(state, Mechanism::C, &evidence, "mechanism C's Credential Authority calls it").await?;
    with_issuer(state, move |issuer| {
        let (evidence, renewal_of) = (evidence.evidence(), renewal_of.as_deref());
        let request = match &ear {
            Some(attestation_result) => {
                CredentialRequest::Appraised { evidence, attestation_result, mechanism: Mechanism::C, renewal_of }
            }
            None => CredentialRequest::Evidence { evidence, renewal_of },
        };
        issuer.ca_credential(request).map_err(|r| logged(role, r))
    })
    .await
}

/// For a process without the Verifier role: the attestation result the Verifier process it
/// calls signs for `evidence` appraised for `mechanism` (C or D); `None` when this process
/// serves the Verifier itself; 501 saying `why` it is needed when it has neither.
async fn appraised_elsewhere(
    state: &AppState,
    mechanism: Mechanism,
    evidence: &OwnedEvidence,
    why: &str,
) -> Result<Option<String>, ApiError> {
    match (&state.peers.verifier, state.roles.verifier) {
        (_, true) => Ok(None),
        (Some(peer), false) => Ok(Some(super::asking::appraised(peer, mechanism, evidence).await?)),
        (None, false) => Err(ApiError::role_missing(
            "Verifier",
            &format!("{why}: serve both roles, or give `twi serve --verifier-url`"),
        )),
    }
}

/// Mechanism B at the Credential Authority: the attestation result and the proof.
async fn attestation_result_request(
    state: &AppState,
    request: &CredentialAuthorityRequest,
) -> Result<crate::asks::Issued, ApiError> {
    let (Some(ear), Some(key), Some(proof)) = (&request.attestation_result, &request.public_key, &request.proof) else {
        return Err(ApiError::bad_request(
            "mechanism b needs `attestation_result` (the Verifier's EAR), `public_key` and `proof` (hex)",
        ));
    };
    if request.evidence.is_some() {
        return Err(ApiError::bad_request(
            "mechanism b sends no evidence to the Credential Authority: the attestation result stands for it",
        ));
    }
    let ear = ear.clone();
    let key = unhex("public_key", key)?;
    let proof = unhex("proof", proof)?;
    with_issuer(state, move |issuer| {
        let request = CredentialRequestIn { ear: &ear, public_key: &key, proof: &proof };
        issuer
            .ca_credential(CredentialRequest::AttestationResult(request))
            .map_err(|r| logged("credential authority (mechanism b)", r))
    })
    .await
}

/// The Key Store's endpoints in a process without the role.
fn key_store_served(state: &AppState) -> Result<(), ApiError> {
    if state.roles.key_store {
        Ok(())
    } else {
        Err(ApiError::role_missing("Key Store", "mechanism d: start it with `--roles` including key-store"))
    }
}

/// Mechanism D needs the policy's workload for the launch: say so when there is none.
fn provisioning_target(issuer: &Issuer, platform: Platform, measurement: &[u8]) -> Result<(), ApiError> {
    if issuer.policy().workload_for(platform, measurement).is_none() {
        return Err(ApiError::forbidden(format!(
            "the policy admits no workload with measurement {} on {}: nothing to provision",
            hex::encode(measurement),
            platform_name(platform)
        )));
    }
    Ok(())
}

pub(super) async fn key_store_provision(
    State(state): State<AppState>,
    operator: Option<Extension<Operator>>,
    json: Result<Json<ProvisionRequest>, JsonRejection>,
) -> Result<Json<ProvisionResponse>, ApiError> {
    key_store_served(&state)?;
    let Some(Extension(operator)) = operator else { return Err(ApiError::owner_only("provisioning")) };
    let request = body(json)?;
    let platform = wire::platform(&request.platform)?;
    let measurement = unhex("measurement", &request.measurement)?;
    with_issuer(&state, move |issuer| {
        provisioning_target(issuer, platform, &measurement)?;
        let (provisioned, created) =
            issuer.key_store_provision(platform, &measurement, &operator.subject).map_err(|e| {
                // The CA process's answers keep their status (503 with Retry-After, 502).
                let mut answer = ApiError::from(crate::rejection::Rejection::Internal(e));
                answer.message = format!("the Key Store cannot provision a credential: {}", answer.message);
                answer
            })?;
        if created {
            eprintln!(
                "twi serve: key store provisioned a credential for {} (serial {}) at the request of {}",
                provisioned.workload_id, provisioned.serial_hex, operator.subject
            );
        }
        Ok(Json(ProvisionResponse::new(&provisioned, created)))
    })
    .await
}

pub(super) async fn key_store_release(
    State(state): State<AppState>,
    json: Result<Json<KeyReleaseRequest>, JsonRejection>,
) -> Result<Json<KeyReleaseResponse>, ApiError> {
    key_store_served(&state)?;
    let request = body(json)?;
    let evidence = request.evidence.decode()?;
    let why = "the Key Store releases a key only on its appraisal";
    let ear = appraised_elsewhere(&state, Mechanism::D, &evidence, why).await?;
    with_issuer(&state, move |issuer| {
        let evidence = evidence.evidence();
        let released = match &ear {
            Some(ear) => issuer.key_store_release_appraised(&evidence, ear),
            None => issuer.key_store_release(&evidence),
        };
        let released = released.map_err(|r| logged("key store (mechanism d)", r))?;
        let key_store_key = issuer.key_store().map_err(|e| ApiError::internal(format!("the Key Store: {e}")))?.jwk();
        let release = released.release;
        Ok(Json(KeyReleaseResponse {
            credential: CredentialResponse::new(&released.issued),
            certificate: hex::encode(&release.provisioned.certificate_der),
            enc: hex::encode(&release.enc),
            ciphertext: hex::encode(&release.ciphertext),
            receipt: release.receipt,
            key_store_key,
        }))
    })
    .await
}
