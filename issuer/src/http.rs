//! The issuer's roles over HTTP (`twi serve`): the same [`Issuer`] calls the loader makes
//! in-process, as JSON endpoints, so that the Verifier, the Credential Authority and the Key
//! Store can run as a service that `twi run --issuer-url` talks to.
//!
//! Format: JSON bodies; byte strings (evidence, keys, nonces, proofs, DER certificates) are
//! lowercase hex, as in the loader's `evidence.json`. Every refusal is a 4xx with
//! `{"error": "<reason>"}` saying what to fix; the issuer's own failures are 5xx with the same
//! shape. Request bodies are limited to [`MAX_BODY`] bytes (413 beyond), and a request must be
//! received and answered within [`REQUEST_TIMEOUT`] (408 beyond: a body sent too slowly).
//!
//! | method and path | role | body → answer |
//! | --- | --- | --- |
//! | `GET /v1/health` | any | `{"status":"ok","roles":[..]}` |
//! | `GET /v1/keys` | any | JWKS of the served roles' JSON signing keys (Verifier: EAR; CA: WIT; log; Key Store: release receipts) |
//! | `GET /v1/ca/certificate` | CA | the CA certificate (PEM) credentials chain to |
//! | `POST /v1/challenge` | Verifier | [`ChallengeRequest`] → [`ChallengeResponse`] (nonce or AF_L1 epoch id) |
//! | `POST /v1/verifier/evidence` | Verifier | [`VerifierRequest`]: mechanism `a` → [`CredentialResponse`] (the Verifier asked the CA); `b` → [`AttestationResultResponse`] (signed EAR binding the key) |
//! | `POST /v1/ca/credential` | CA | [`CredentialAuthorityRequest`]: mechanism `c` (evidence; the CA calls the Verifier) or `b` (EAR + proof of possession) → [`CredentialResponse`] |
//! | `POST /v1/key-store/provision` | Key Store (+ CA) | [`ProvisionRequest`] → [`ProvisionResponse`]: mechanism D's workload-owner step (the CA certifies a fresh key for the workload the policy admits; kept if one is provisioned already) |
//! | `POST /v1/key-store/release` | Key Store (+ Verifier) | [`KeyReleaseRequest`] (evidence binding the ephemeral HPKE key under `Purpose::KeyRelease`) → [`KeyReleaseResponse`] (the provisioned credential, the key HPKE-sealed to that ephemeral key, the signed receipt) |
//!
//! Each role signs with its own key, as in-process: the CA's X.509 key (`issuer-ca.key.pem`)
//! and WIT key (`wit-key.pem`), the Verifier's EAR key (`verifier-key.pem`) and AF_L1 epoch
//! key (`epoch-key.pem`), the provenance log's key (`log-key.pem`), the Key Store's receipt
//! key (`keystore-key.pem`); the CA checks an EAR under the Verifier's public key only.
//!
//! The roles live in one process today: mechanism A's Verifier calls the CA, and C's CA
//! calls the Verifier, in-process; B's CA redeems the Verifier's result from the same
//! process's handoff; D's Key Store releases only on the appraisal of the Verifier in the same
//! process (so `/v1/key-store/release` needs the `verifier` role too, and provisioning the
//! `ca` role). `--roles` chooses which roles' endpoints a process exposes; a Key Store endpoint
//! in a process without the `key-store` role answers 501.
//!
//! Provisioning is the workload owner's step and is not authenticated here (it never reveals a
//! key: it makes sure one is provisioned); put the service behind an authenticating proxy
//! before exposing it beyond a development host.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use twi_proto::msg::{Platform, RtmrEvent};

use crate::keystore::Provisioned;
use crate::policy::{Mechanism, platform_name};
use crate::{CredentialRequestIn, EvidenceBundle, Issued, Issuer, Rejection};

/// The largest request body accepted (evidence is at most 12 KiB, 24 KiB as hex, plus
/// endorsement certificates and an event log).
pub const MAX_BODY: usize = 128 * 1024;

/// How long one request may take, from its headers to the answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Which roles a process serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Roles {
    pub verifier: bool,
    pub credential_authority: bool,
    /// Mechanism D's Key Store.
    pub key_store: bool,
}

impl Roles {
    /// Every role: `verifier,ca,key-store`, what `twi serve` serves by default.
    pub const ALL: Self = Self { verifier: true, credential_authority: true, key_store: true };

    /// `verifier`, `ca` (or `credential-authority`), `key-store` (or `keystore`),
    /// comma-separated.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut roles = Self { verifier: false, credential_authority: false, key_store: false };
        for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match name {
                "verifier" => roles.verifier = true,
                "ca" | "credential-authority" => roles.credential_authority = true,
                "key-store" | "keystore" => roles.key_store = true,
                other => return Err(format!("unknown role {other:?}: expected verifier, ca and/or key-store")),
            }
        }
        if !roles.verifier && !roles.credential_authority && !roles.key_store {
            return Err("name at least one role: verifier, ca, key-store".into());
        }
        Ok(roles)
    }

    pub fn names(self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.verifier {
            names.push("verifier");
        }
        if self.credential_authority {
            names.push("ca");
        }
        if self.key_store {
            names.push("key-store");
        }
        names
    }
}

/// An answer other than success: the status and a reason a person can act on.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    fn bad_request(message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, message: message.into() }
    }

    fn internal(message: impl Into<String>) -> Self {
        Self { status: StatusCode::INTERNAL_SERVER_ERROR, message: message.into() }
    }

    /// A role this process does not serve.
    fn role_missing(role: &str, why: &str) -> Self {
        Self {
            status: StatusCode::NOT_IMPLEMENTED,
            message: format!("this issuer process does not serve the {role} role ({why}); see `twi serve --roles`"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorResponse { error: self.message })).into_response()
    }
}

impl From<Rejection> for ApiError {
    fn from(rejection: Rejection) -> Self {
        let status = match rejection {
            Rejection::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::FORBIDDEN,
        };
        Self { status, message: rejection.to_string() }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Self {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                message: format!("the request body is larger than the limit of {MAX_BODY} bytes"),
            },
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                message: "send the request body as JSON with `Content-Type: application/json`".into(),
            },
            _ => Self::bad_request(format!("the request body is not a valid request: {}", rejection.body_text())),
        }
    }
}

/// Every error answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: String,
}

/// `POST /v1/challenge`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    /// `sim-snp`, `snp`, `tdx` or `sim-tdx`.
    pub platform: String,
    /// The launch measurement the evidence is expected to carry (hex): the policy decides from
    /// it whether the challenge is a verifier nonce or the current AF_L1 epoch id, and which
    /// mechanism the workload uses.
    #[serde(default)]
    pub measurement: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ChallengeResponse {
    /// What the evidence must bind (hex).
    pub nonce: String,
    /// The policy's mechanism for the workload that measurement belongs to (`a`..`d`), if any.
    pub mechanism: Option<Mechanism>,
}

/// Evidence as the loader relays it (byte strings in hex).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceJson {
    pub platform: String,
    pub evidence: String,
    pub public_key: String,
    pub nonce: String,
    /// DER certificates the host supplies with the report, leaf first (SNP: VCEK, ASK).
    #[serde(default)]
    pub endorsements: Vec<String>,
    /// The TD's RTMR event log (TDX).
    #[serde(default)]
    pub event_log: Vec<EventJson>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventJson {
    pub rtmr: u8,
    pub event_type: u32,
    pub digest: String,
    pub data: String,
}

impl EvidenceJson {
    /// The JSON form of what [`Issuer`] takes in-process.
    pub fn new(bundle: &EvidenceBundle<'_>, events: &[RtmrEvent]) -> Self {
        Self {
            platform: platform_name(bundle.platform).to_string(),
            evidence: hex::encode(bundle.evidence),
            public_key: hex::encode(bundle.public_key),
            nonce: hex::encode(bundle.nonce),
            endorsements: bundle.endorsements.iter().map(hex::encode).collect(),
            event_log: events
                .iter()
                .map(|e| EventJson {
                    rtmr: e.rtmr,
                    event_type: e.event_type,
                    digest: hex::encode(&e.digest),
                    data: hex::encode(&e.data),
                })
                .collect(),
        }
    }

    fn decode(&self) -> Result<Evidence, ApiError> {
        let mut endorsements = Vec::with_capacity(self.endorsements.len());
        for (i, der) in self.endorsements.iter().enumerate() {
            endorsements.push(unhex(&format!("evidence.endorsements[{i}]"), der)?);
        }
        let mut events = Vec::with_capacity(self.event_log.len());
        for (i, e) in self.event_log.iter().enumerate() {
            events.push(RtmrEvent {
                rtmr: e.rtmr,
                event_type: e.event_type,
                digest: unhex(&format!("evidence.event_log[{i}].digest"), &e.digest)?,
                data: unhex(&format!("evidence.event_log[{i}].data"), &e.data)?,
            });
        }
        Ok(Evidence {
            platform: parse_platform(&self.platform)?,
            evidence: unhex("evidence.evidence", &self.evidence)?,
            public_key: unhex("evidence.public_key", &self.public_key)?,
            nonce: unhex("evidence.nonce", &self.nonce)?,
            endorsements,
            events,
        })
    }
}

/// Decoded [`EvidenceJson`].
struct Evidence {
    platform: Platform,
    evidence: Vec<u8>,
    public_key: Vec<u8>,
    nonce: Vec<u8>,
    endorsements: Vec<Vec<u8>>,
    events: Vec<RtmrEvent>,
}

impl Evidence {
    fn bundle(&self) -> EvidenceBundle<'_> {
        EvidenceBundle {
            platform: self.platform,
            evidence: &self.evidence,
            public_key: &self.public_key,
            nonce: &self.nonce,
            endorsements: &self.endorsements,
        }
    }
}

/// `POST /v1/verifier/evidence`: the workload's evidence to the Verifier.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifierRequest {
    /// `a`: the Verifier asks the CA and returns the credential; `b`: it returns a signed
    /// attestation result for the workload to take to the CA.
    pub mechanism: Mechanism,
    pub evidence: EvidenceJson,
}

/// Mechanism B, the Verifier's answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct AttestationResultResponse {
    /// EAR JWT signed by the Verifier's key, binding the workload key.
    pub attestation_result: String,
    pub workload_id: String,
}

/// `POST /v1/ca/credential`: a credential request to the Credential Authority.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialAuthorityRequest {
    /// `c`: `evidence` (the CA has the Verifier appraise it); `b`: `attestation_result`,
    /// `public_key` and `proof`.
    pub mechanism: Mechanism,
    #[serde(default)]
    pub evidence: Option<EvidenceJson>,
    /// Mechanism B: the EAR JWT as the Verifier returned it.
    #[serde(default)]
    pub attestation_result: Option<String>,
    /// Mechanism B: SEC1 P-384 point (hex).
    #[serde(default)]
    pub public_key: Option<String>,
    /// Mechanism B: DER ECDSA P-384/SHA-384 signature (hex) by that key over
    /// `"TWI-CREDREQ-v1\0" ‖ eat_nonce ‖ key ‖ SHA-256(attestation_result)`.
    #[serde(default)]
    pub proof: Option<String>,
}

/// An issued credential and what it was issued on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CredentialResponse {
    /// The Stable identifier (URI SAN), e.g. `spiffe://example.org/payroll-app`.
    pub workload_id: String,
    /// The X.509 serial (hex).
    pub serial: String,
    /// The X.509 credential, signed by the CA key.
    pub certificate_pem: String,
    pub platform: String,
    /// The appraised launch measurement (SNP MEASUREMENT, TDX MRTD), hex.
    pub measurement: String,
    /// The appraised chip (SNP CHIP_ID, TDX PPID), hex.
    pub chip_id: String,
    /// Under a policy: the Verifier's attestation result (EAR JWT); under mechanism A it names
    /// the credential.
    #[serde(default)]
    pub attestation_result: Option<String>,
    /// Under a policy: the WIMSE Workload Identity Token.
    #[serde(default)]
    pub wit: Option<String>,
    /// Under a policy: the signed tree head and each record's inclusion proof.
    #[serde(default)]
    pub provenance: Option<serde_json::Value>,
    #[serde(default)]
    pub admission: Option<AdmissionSummary>,
}

/// What the policy admitted the launch as.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdmissionSummary {
    pub workload_id: String,
    pub policy_version: String,
    /// The label of the reference value that matched.
    pub reference: String,
}

impl CredentialResponse {
    pub fn new(issued: &Issued) -> Self {
        let policy = issued.policy.as_ref();
        Self {
            workload_id: issued.workload_id.clone(),
            serial: issued.serial_hex.clone(),
            certificate_pem: issued.certificate_pem.clone(),
            platform: platform_name(issued.appraisal.platform).to_string(),
            measurement: hex::encode(&issued.appraisal.measurement),
            chip_id: hex::encode(&issued.appraisal.chip_id),
            attestation_result: policy.map(|p| p.ear_jwt.clone()),
            wit: policy.map(|p| p.wit.clone()),
            provenance: policy.map(|p| p.provenance.clone()),
            admission: policy.map(|p| AdmissionSummary {
                workload_id: p.admission.workload_id.clone(),
                policy_version: p.admission.policy_version.clone(),
                reference: p.admission.reference.label.clone(),
            }),
        }
    }
}

/// `POST /v1/key-store/provision`: mechanism D, the workload owner's step.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisionRequest {
    /// `sim-snp`, `snp`, `tdx` or `sim-tdx`.
    pub platform: String,
    /// The launch measurement (hex) of the workload's launches: the policy's workload that
    /// admits it is the one provisioned for.
    pub measurement: String,
}

/// The credential the Key Store holds for the workload (its key never leaves but in a release).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProvisionResponse {
    pub workload_id: String,
    /// The X.509 serial (hex).
    pub serial: String,
    pub certificate_pem: String,
    /// The same certificate, DER (hex).
    pub certificate: String,
    /// The certified SEC1 P-384 public key (hex): the key a release hands over.
    pub public_key: String,
    /// Whether it was provisioned by this request (`false`: it was held already).
    pub created: bool,
}

impl ProvisionResponse {
    pub fn new(provisioned: &Provisioned, created: bool) -> Self {
        Self {
            workload_id: provisioned.workload_id.clone(),
            serial: provisioned.serial_hex.clone(),
            certificate_pem: provisioned.certificate_pem.clone(),
            certificate: hex::encode(&provisioned.certificate_der),
            public_key: hex::encode(&provisioned.public_key),
            created,
        }
    }
}

/// `POST /v1/key-store/release`: the launch's evidence, whose key is the ephemeral HPKE key
/// the runtime generated for the release (REPORTDATA under `Purpose::KeyRelease`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyReleaseRequest {
    pub evidence: EvidenceJson,
}

/// Mechanism D, the Key Store's answer: the provisioned credential of record (certificate,
/// workload id, and under the policy its WIT, attestation result and provenance) and the
/// provisioned key HPKE-sealed to the ephemeral key (RFC 9180 base mode, DHKEM(P-384,
/// HKDF-SHA384), HKDF-SHA384, AES-256-GCM; `info` = `key_release_info(nonce, ephemeral
/// key)`, `aad` = `key_release_aad(SHA-256(certificate DER))`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyReleaseResponse {
    #[serde(flatten)]
    pub credential: CredentialResponse,
    /// The provisioned certificate, DER (hex).
    pub certificate: String,
    /// HPKE `enc` (hex, 97 bytes).
    pub enc: String,
    /// HPKE ciphertext of the 48-byte private scalar (hex, 64 bytes).
    pub ciphertext: String,
    /// The Key Store's receipt (compact JWS, ES384, `typ` `twi-key-release+jwt`).
    pub receipt: String,
    /// The Key Store's public key (JWK, `kid` `twi-keystore`) the receipt verifies under.
    pub key_store_key: serde_json::Value,
}

#[derive(Clone)]
struct AppState {
    issuer: Arc<Mutex<Issuer>>,
    roles: Roles,
}

/// The HTTP service for `issuer`'s `roles` (serve it with [`serve`], or drive it with tower).
pub fn router(issuer: Issuer, roles: Roles) -> Router {
    router_with_timeout(issuer, roles, REQUEST_TIMEOUT)
}

/// [`router`] with another per-request time limit.
pub fn router_with_timeout(issuer: Issuer, roles: Roles, timeout: Duration) -> Router {
    let state = AppState { issuer: Arc::new(Mutex::new(issuer)), roles };
    let mut router = Router::new().route("/v1/health", get(health)).route("/v1/keys", get(keys));
    if roles.verifier {
        router = router.route("/v1/challenge", post(challenge)).route("/v1/verifier/evidence", post(verifier_evidence));
    }
    if roles.credential_authority {
        router =
            router.route("/v1/ca/certificate", get(ca_certificate)).route("/v1/ca/credential", post(ca_credential));
    }
    // Always routed: without the role they answer 501 and say so.
    router = router
        .route("/v1/key-store/provision", post(key_store_provision))
        .route("/v1/key-store/release", post(key_store_release));
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(move |request: Request, next: Next| within(timeout, request, next)))
        .with_state(state)
}

/// Serves `router` on `listener` until SIGINT (Ctrl-C) or SIGTERM, then finishes the requests
/// under way.
pub async fn serve(listener: tokio::net::TcpListener, router: Router) -> std::io::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let mut interrupt = std::pin::pin!(tokio::signal::ctrl_c());
            std::future::poll_fn(|cx| {
                if interrupt.as_mut().poll(cx).is_ready() || terminate.poll_recv(cx).is_ready() {
                    std::task::Poll::Ready(())
                } else {
                    std::task::Poll::Pending
                }
            })
            .await;
        })
        .await
}

/// Answers 408 when `request` (reading its body included) takes longer than `timeout`.
async fn within(timeout: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError {
            status: StatusCode::REQUEST_TIMEOUT,
            message: format!(
                "the request was not received and answered within {} ms: send the whole body at once",
                timeout.as_millis()
            ),
        }
        .into_response(),
    }
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!(
            "no endpoint {}: this issuer serves /v1/health, /v1/keys, /v1/challenge, /v1/verifier/evidence, /v1/ca/certificate, /v1/ca/credential, /v1/key-store/provision and /v1/key-store/release (those of its roles)",
            uri.path()
        ),
    }
}

async fn method_not_allowed(uri: Uri) -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: format!(
            "{} does not take this method: GET the /v1/health, /v1/keys and /v1/ca/certificate, POST the others",
            uri.path()
        ),
    }
}

/// Runs `work` on the issuer, off the async workers (appraisal is CPU-bound and the
/// provenance log is SQLite).
async fn with_issuer<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&mut Issuer) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let issuer = state.issuer.clone();
    tokio::task::spawn_blocking(move || {
        // A panic inside the issuer is a bug; the lock still guards consistent data (every
        // mutation is a single insert or remove), so keep serving.
        let mut guard = issuer.lock().unwrap_or_else(PoisonError::into_inner);
        work(&mut guard)
    })
    .await
    .map_err(|e| ApiError::internal(format!("the issuer failed while handling the request: {e}")))?
}

fn body<T>(json: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    json.map(|Json(value)| value).map_err(ApiError::from)
}

async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok", "roles": state.roles.names() }))
}

async fn keys(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let roles = state.roles;
    with_issuer(&state, move |issuer| {
        let mut keys = Vec::new();
        if let Some(mode) = issuer.policy_mode() {
            if roles.verifier {
                keys.push(mode.verifier_jwk());
            }
            if roles.credential_authority {
                keys.push(mode.wit_jwk());
                keys.push(mode.log_jwk());
            }
        }
        if roles.key_store {
            let store = issuer.key_store().map_err(|e| ApiError::internal(format!("the Key Store: {e}")))?;
            keys.push(store.jwk());
        }
        Ok(Json(serde_json::json!({ "keys": keys })))
    })
    .await
}

async fn ca_certificate(State(state): State<AppState>) -> Result<Response, ApiError> {
    let pem = with_issuer(&state, |issuer| Ok(issuer.ca().certificate_pem().to_string())).await?;
    Ok(([(header::CONTENT_TYPE, "application/pem-certificate-chain")], pem).into_response())
}

async fn challenge(
    State(state): State<AppState>,
    json: Result<Json<ChallengeRequest>, JsonRejection>,
) -> Result<Json<ChallengeResponse>, ApiError> {
    let request = body(json)?;
    let platform = parse_platform(&request.platform)?;
    let measurement = match &request.measurement {
        Some(text) => unhex("measurement", text)?,
        None => Vec::new(),
    };
    with_issuer(&state, move |issuer| {
        let nonce = issuer
            .challenge_for(platform, &measurement)
            .map_err(|e| ApiError::internal(format!("the Verifier cannot make a challenge: {e}")))?;
        let mechanism =
            issuer.policy_mode().and_then(|mode| mode.workload_for(platform, &measurement)).map(|w| w.mechanism);
        Ok(Json(ChallengeResponse { nonce: hex::encode(nonce), mechanism }))
    })
    .await
}

async fn verifier_evidence(
    State(state): State<AppState>,
    json: Result<Json<VerifierRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let request = body(json)?;
    let evidence = request.evidence.decode()?;
    match request.mechanism {
        Mechanism::A => {
            if !state.roles.credential_authority {
                return Err(ApiError::role_missing(
                    "Credential Authority",
                    "mechanism A's Verifier obtains the credential from it",
                ));
            }
            let issued = with_issuer(&state, move |issuer| {
                let issued = issuer.issue_with_mechanism(&evidence.bundle(), &evidence.events, Some(Mechanism::A));
                issued.map_err(|r| logged("verifier (mechanism a)", r))
            })
            .await?;
            Ok(Json(CredentialResponse::new(&issued)).into_response())
        }
        Mechanism::B => {
            let result = with_issuer(&state, move |issuer| {
                let result = issuer.verify_for_credential_request(&evidence.bundle(), &evidence.events);
                result.map_err(|r| logged("verifier (mechanism b)", r))
            })
            .await?;
            Ok(Json(AttestationResultResponse { attestation_result: result.ear_jwt, workload_id: result.workload_id })
                .into_response())
        }
        other => Err(ApiError::bad_request(format!(
            "mechanism {other} does not send evidence to the Verifier: mechanism c sends it to the Credential Authority (POST /v1/ca/credential){}",
            if other == Mechanism::D { ", mechanism d to the Key Store (POST /v1/key-store/release)" } else { "" }
        ))),
    }
}

async fn ca_credential(
    State(state): State<AppState>,
    json: Result<Json<CredentialAuthorityRequest>, JsonRejection>,
) -> Result<Json<CredentialResponse>, ApiError> {
    let request = body(json)?;
    let issued = match request.mechanism {
        Mechanism::C => {
            if !state.roles.verifier {
                return Err(ApiError::role_missing("Verifier", "mechanism C's Credential Authority calls it"));
            }
            let Some(evidence) = &request.evidence else {
                return Err(ApiError::bad_request("mechanism c needs `evidence`"));
            };
            let evidence = evidence.decode()?;
            with_issuer(&state, move |issuer| {
                let issued = issuer.issue_with_mechanism(&evidence.bundle(), &evidence.events, Some(Mechanism::C));
                issued.map_err(|r| logged("credential authority (mechanism c)", r))
            })
            .await?
        }
        Mechanism::B => {
            let (Some(ear), Some(key), Some(proof)) =
                (&request.attestation_result, &request.public_key, &request.proof)
            else {
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
            with_issuer(&state, move |issuer| {
                let request = CredentialRequestIn { ear: &ear, public_key: &key, proof: &proof };
                issuer
                    .issue_for_credential_request(&request)
                    .map_err(|r| logged("credential authority (mechanism b)", r))
            })
            .await?
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "the Credential Authority takes mechanism b (attestation result) or c (evidence) requests, not {other}{}",
                if other == Mechanism::A {
                    ": mechanism a sends evidence to the Verifier (POST /v1/verifier/evidence)"
                } else {
                    ""
                }
            )));
        }
    };
    Ok(Json(CredentialResponse::new(&issued)))
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
fn provisioning_target(issuer: &mut Issuer, platform: Platform, measurement: &[u8]) -> Result<(), ApiError> {
    let forbidden = |message: String| ApiError { status: StatusCode::FORBIDDEN, message };
    let Some(mode) = issuer.policy_mode() else {
        return Err(forbidden(
            "mechanism d needs an appraisal policy: the Key Store provisions for a workload of `twi serve --policy`"
                .into(),
        ));
    };
    if mode.workload_for(platform, measurement).is_none() {
        return Err(forbidden(format!(
            "the policy admits no workload with measurement {} on {}: nothing to provision",
            hex::encode(measurement),
            platform_name(platform)
        )));
    }
    Ok(())
}

async fn key_store_provision(
    State(state): State<AppState>,
    json: Result<Json<ProvisionRequest>, JsonRejection>,
) -> Result<Json<ProvisionResponse>, ApiError> {
    key_store_served(&state)?;
    if !state.roles.credential_authority {
        return Err(ApiError::role_missing("Credential Authority", "it certifies the credential the Key Store holds"));
    }
    let request = body(json)?;
    let platform = parse_platform(&request.platform)?;
    let measurement = unhex("measurement", &request.measurement)?;
    with_issuer(&state, move |issuer| {
        provisioning_target(issuer, platform, &measurement)?;
        let (provisioned, created) = issuer
            .provision_workload(platform, &measurement)
            .map_err(|e| ApiError::internal(format!("the Key Store cannot provision a credential: {e}")))?;
        if created {
            eprintln!(
                "twi serve: key store provisioned a credential for {} (serial {})",
                provisioned.workload_id, provisioned.serial_hex
            );
        }
        Ok(Json(ProvisionResponse::new(&provisioned, created)))
    })
    .await
}

async fn key_store_release(
    State(state): State<AppState>,
    json: Result<Json<KeyReleaseRequest>, JsonRejection>,
) -> Result<Json<KeyReleaseResponse>, ApiError> {
    key_store_served(&state)?;
    if !state.roles.verifier {
        return Err(ApiError::role_missing("Verifier", "the Key Store releases a key only on its appraisal"));
    }
    let request = body(json)?;
    let evidence = request.evidence.decode()?;
    with_issuer(&state, move |issuer| {
        if issuer.policy_mode().is_none() {
            return Err(ApiError {
                status: StatusCode::FORBIDDEN,
                message: "mechanism d needs an appraisal policy: the Key Store releases to a workload of `twi serve --policy`".into(),
            });
        }
        let released = issuer
            .release_key(&evidence.bundle(), &evidence.events)
            .map_err(|r| logged("key store (mechanism d)", r))?;
        let key_store_key =
            issuer.key_store().map_err(|e| ApiError::internal(format!("the Key Store: {e}")))?.jwk();
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

/// Keeps a line in the service's log for each refusal.
fn logged(role: &str, rejection: Rejection) -> ApiError {
    eprintln!("twi serve: {role} refused: {rejection}");
    ApiError::from(rejection)
}

fn parse_platform(name: &str) -> Result<Platform, ApiError> {
    [Platform::SimSnp, Platform::Snp, Platform::Tdx, Platform::SimTdx]
        .into_iter()
        .find(|p| platform_name(*p) == name)
        .ok_or_else(|| {
            ApiError::bad_request(format!("unknown platform {name:?}: expected sim-snp, snp, tdx or sim-tdx"))
        })
}

fn unhex(field: &str, text: &str) -> Result<Vec<u8>, ApiError> {
    hex::decode(text).map_err(|e| ApiError::bad_request(format!("`{field}` is not hex: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_refuse_with_a_reason() {
        assert_eq!(Roles::parse("verifier,ca,key-store"), Ok(Roles::ALL));
        assert_eq!(Roles::parse("ca").unwrap().names(), ["ca"]);
        assert_eq!(Roles::parse("keystore, verifier").unwrap().names(), ["verifier", "key-store"]);
        assert!(!Roles::parse("verifier,ca").unwrap().key_store);
        assert!(Roles::parse("").unwrap_err().contains("at least one"));
        assert!(Roles::parse("verifer").unwrap_err().contains("unknown role"));
    }
}
