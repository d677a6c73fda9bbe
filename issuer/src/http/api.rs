//! What the endpoints share: the roles a process serves, the error answer (a status and a
//! reason a person can act on), and running a request's work on the issuer off the async
//! workers.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::wire::{ErrorResponse, WireError};
use crate::error::IssuerError;
use crate::freshness::FreshnessError;
use crate::issuer::Issuer;
use crate::log_peer::PeerError;
use crate::rejection::Rejection;

/// The largest request body accepted (evidence is at most 12 KiB, 24 KiB as hex, plus
/// endorsement certificates and an event log).
pub const MAX_BODY: usize = 128 * 1024;

/// `Retry-After` when the log or CA process this one calls cannot be reached.
const LOG_UNAVAILABLE_RETRY_AFTER: u64 = 5;

/// `Retry-After` when every nonce the Verifier may keep is outstanding.
const NONCES_FULL_RETRY_AFTER: u64 = 10;

/// Which roles a process serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Roles {
    pub verifier: bool,
    pub credential_authority: bool,
    /// Mechanism D's Key Store.
    pub key_store: bool,
    /// The provenance log's read side: checkpoints and proofs (the Credential Authority
    /// appends to it).
    pub log: bool,
}

impl Roles {
    /// Every role: `verifier,ca,key-store,log`, what `twi serve` serves by default.
    pub const ALL: Self = Self { verifier: true, credential_authority: true, key_store: true, log: true };

    /// `verifier`, `ca` (or `credential-authority`), `key-store` (or `keystore`), `log`,
    /// comma-separated.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut roles = Self { verifier: false, credential_authority: false, key_store: false, log: false };
        for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match name {
                "verifier" => roles.verifier = true,
                "ca" | "credential-authority" => roles.credential_authority = true,
                "key-store" | "keystore" => roles.key_store = true,
                "log" => roles.log = true,
                other => {
                    return Err(format!("unknown role {other:?}: expected verifier, ca, key-store and/or log"));
                }
            }
        }
        if roles.names().is_empty() {
            return Err("name at least one role: verifier, ca, key-store, log".into());
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
        if self.log {
            names.push("log");
        }
        names
    }
}

/// An answer other than success: the status and a reason a person can act on.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// TACRA's failure reason, where one applies.
    pub code: Option<&'static str>,
    /// Seconds after which to retry (429, 503): the `Retry-After` header.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub(super) fn bad_request(message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, message: message.into(), code: None, retry_after: None }
    }

    pub(super) fn internal(message: impl Into<String>) -> Self {
        Self { status: StatusCode::INTERNAL_SERVER_ERROR, message: message.into(), code: None, retry_after: None }
    }

    pub(super) fn not_found(message: impl Into<String>) -> Self {
        Self { status: StatusCode::NOT_FOUND, message: message.into(), code: None, retry_after: None }
    }

    pub(super) fn forbidden(message: impl Into<String>) -> Self {
        Self { status: StatusCode::FORBIDDEN, message: message.into(), code: None, retry_after: None }
    }

    /// A limit was hit: `status` 429 or 503, with `Retry-After: seconds`.
    pub(super) fn retry_later(status: StatusCode, message: impl Into<String>, seconds: u64) -> Self {
        Self { status, message: message.into(), code: None, retry_after: Some(seconds) }
    }

    /// An owner or administrator endpoint reached without a client certificate under the
    /// operator CA.
    pub(super) fn owner_only(what: &str) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            message: format!(
                "{what} is the workload owner's step: connect over HTTPS with a client certificate issued under the service's operator CA (`twi serve --operator-ca FILE`; `twi keystore provision --issuer-url URL --client-cert FILE --client-key FILE`)"
            ),
            code: None,
            retry_after: None,
        }
    }

    /// A role this process does not serve.
    pub(super) fn role_missing(role: &str, why: &str) -> Self {
        Self {
            status: StatusCode::NOT_IMPLEMENTED,
            message: format!("this issuer process does not serve the {role} role ({why}); see `twi serve --roles`"),
            code: None,
            retry_after: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(ErrorResponse { error: self.message, code: self.code.map(str::to_string) });
        let mut response = (self.status, body).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<Rejection> for ApiError {
    fn from(rejection: Rejection) -> Self {
        // Every nonce is outstanding (a limit, not a fault): come back when some expire.
        let full =
            matches!(rejection, Rejection::Internal(IssuerError::Challenge(FreshnessError::TooManyOutstanding(_))));
        // The replicas' database did not answer (a fault of ours, passing): try again soon.
        let store_down = matches!(
            rejection,
            Rejection::Internal(IssuerError::Challenge(FreshnessError::Store(_)) | IssuerError::Database(_))
                | Rejection::Freshness { error: FreshnessError::Store(_), .. }
        );
        let (status, retry_after) = match rejection {
            _ if full => (StatusCode::SERVICE_UNAVAILABLE, Some(NONCES_FULL_RETRY_AFTER)),
            _ if store_down => (StatusCode::SERVICE_UNAVAILABLE, Some(1)),
            // The log process this one calls: unreachable or failing (passing), or refusing it.
            Rejection::Internal(IssuerError::LogPeer { error: PeerError::Unavailable(_), .. }) => {
                (StatusCode::SERVICE_UNAVAILABLE, Some(LOG_UNAVAILABLE_RETRY_AFTER))
            }
            Rejection::Internal(IssuerError::LogPeer { .. }) => (StatusCode::BAD_GATEWAY, None),
            // The Credential Authority process a Key Store calls: the same.
            Rejection::Internal(IssuerError::CaPeer { error: PeerError::Unavailable(_), .. }) => {
                (StatusCode::SERVICE_UNAVAILABLE, Some(LOG_UNAVAILABLE_RETRY_AFTER))
            }
            Rejection::Internal(IssuerError::CaPeer { .. }) => (StatusCode::BAD_GATEWAY, None),
            Rejection::Internal(IssuerError::Full(_)) => {
                (StatusCode::SERVICE_UNAVAILABLE, Some(NONCES_FULL_RETRY_AFTER))
            }
            Rejection::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, None),
            _ => (StatusCode::FORBIDDEN, None),
        };
        let code = match &rejection {
            Rejection::Target(crate::policy::TargetRefusal::NotServed { .. }) => Some("invalid-target"),
            Rejection::Target(crate::policy::TargetRefusal::UnsupportedType { .. }) => Some("unsupported-type"),
            Rejection::Target(crate::policy::TargetRefusal::RejectedHint { .. }) => Some("rejected-hint"),
            _ => None,
        };
        // A limit is not the issuer failing: say which limit, without "the issuer failed".
        let message = match &rejection {
            Rejection::Internal(IssuerError::Challenge(limit @ FreshnessError::TooManyOutstanding(_))) => {
                format!("the Verifier is at its limit: {limit}")
            }
            _ => rejection.to_string(),
        };
        Self { status, message, code, retry_after }
    }
}

impl From<WireError> for ApiError {
    fn from(error: WireError) -> Self {
        Self::bad_request(error.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Self {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                message: format!("the request body is larger than the limit of {MAX_BODY} bytes"),
                code: None,
                retry_after: None,
            },
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                message: "send the request body as JSON with `Content-Type: application/json`".into(),
                code: None,
                retry_after: None,
            },
            _ => Self::bad_request(format!("the request body is not a valid request: {}", rejection.body_text())),
        }
    }
}

/// The issuer and the roles it serves, shared by the handlers. The issuer is not behind one
/// lock: its roles' keys, verifiers and policy are read-only while it serves, and each piece
/// that changes (the Verifier's nonces and epochs, the Credential Authority's pending results,
/// the Key Store, the log) has its own lock, held only for that change.
#[derive(Clone)]
pub(super) struct AppState {
    pub issuer: Arc<Issuer>,
    pub roles: Roles,
    /// The roles of other processes this one calls (those it does not serve).
    pub peers: super::peer::Peers,
}

/// Runs `work` on the issuer, off the async workers (appraisal is CPU-bound, the provenance
/// log is SQLite or another process), concurrently with other requests' work: no issuer-wide
/// lock is taken (see [`AppState`]).
pub(super) async fn with_issuer<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&Issuer) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let issuer = state.issuer.clone();
    tokio::task::spawn_blocking(move || work(&issuer)).await.map_err(|e| {
        // The panic's text stays in the log: it may name internals a client has no use for.
        eprintln!("twi serve: the issuer failed while handling a request: {e}");
        ApiError::internal("the issuer failed while handling the request (see the service's log)")
    })?
}

/// Only a role of another process, with a client certificate under the operator CA
/// (`operator`), is `asking` this; `how` that process is started. 403 for anyone else.
pub(super) fn from_a_role(
    operator: Option<axum::Extension<super::tls::Operator>>,
    asking: &str,
    how: &str,
) -> Result<(), ApiError> {
    match operator {
        Some(_) => Ok(()),
        None => Err(ApiError::forbidden(format!(
            "only {asking}: connect with a client certificate under this service's operator CA (`{how}`)"
        ))),
    }
}

/// The request body, or the reason it is not one.
pub(super) fn body<T>(json: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    json.map(|Json(value)| value).map_err(ApiError::from)
}

/// Keeps a line in the service's log for each refusal.
pub(super) fn logged(role: &str, rejection: Rejection) -> ApiError {
    eprintln!("twi serve: {role} refused: {rejection}");
    ApiError::from(rejection)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_refuse_with_a_reason() {
        assert_eq!(Roles::parse("verifier,ca,key-store,log"), Ok(Roles::ALL));
        assert_eq!(Roles::parse("log").unwrap().names(), ["log"]);
        assert_eq!(Roles::parse("ca").unwrap().names(), ["ca"]);
        assert_eq!(Roles::parse("keystore, verifier").unwrap().names(), ["verifier", "key-store"]);
        assert!(!Roles::parse("verifier,ca").unwrap().key_store);
        assert!(Roles::parse("").unwrap_err().contains("at least one"));
        assert!(Roles::parse("verifer").unwrap_err().contains("unknown role"));
    }
}
