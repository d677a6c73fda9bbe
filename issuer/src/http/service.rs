//! The router: which endpoints a process serves (by its roles), the body limit, the per-request
//! time limit, the answers to unknown paths and methods; and serving it until a signal.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, get, post};

use super::api::{ApiError, AppState, MAX_BODY, Roles};
use super::handlers::{
    ca_certificate, ca_credential, challenge, health, key_store_provision, key_store_release, keys, trust_bundle,
    verifier_evidence,
};
use super::limits::{Limiter, RateLimit, rate_limited};
use super::listener::{Limits, Transport, serve_until};
use super::peer::Peers;
use super::{est, log};
use crate::issuer::Issuer;

/// How long one request may take, from its headers to the answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The HTTP service for `issuer`'s `roles` (serve it with [`serve`], or drive it with tower).
pub fn router(issuer: Issuer, roles: Roles) -> Router {
    router_with(issuer, roles, RouterLimits::default())
}

/// [`router`] with another per-request time limit.
pub fn router_with_timeout(issuer: Issuer, roles: Roles, timeout: Duration) -> Router {
    router_with(issuer, roles, RouterLimits { request_timeout: timeout, ..RouterLimits::default() })
}

/// The limits the router itself applies (the listener applies the per-connection ones).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RouterLimits {
    /// From a request's headers to its answer (408 beyond).
    pub request_timeout: Duration,
    /// Challenges per client address (429 beyond).
    pub challenges: RateLimit,
}

impl Default for RouterLimits {
    fn default() -> Self {
        Self { request_timeout: REQUEST_TIMEOUT, challenges: RateLimit::default() }
    }
}

/// [`router`] under `limits`.
pub fn router_with(issuer: Issuer, roles: Roles, limits: RouterLimits) -> Router {
    router_calling(issuer, roles, limits, Peers::default())
}

/// [`router_with`] for a process that calls the roles it does not serve in other processes
/// (`peers`: the Verifier for its CA and Key Store, the CA for its Verifier).
pub fn router_calling(issuer: Issuer, roles: Roles, limits: RouterLimits, peers: Peers) -> Router {
    let state = AppState { issuer: Arc::new(issuer), roles, peers };
    let mut router = Router::new()
        .route("/v1/health", get(health))
        .route("/metrics", get(super::handlers::metrics))
        .route("/v1/keys", get(keys));
    // Credential requests are idempotent per `Idempotency-Key` (idempotency.rs).
    let replies = super::idempotency::Replies::default();
    let once = || axum::middleware::from_fn_with_state(replies.clone(), super::idempotency::idempotent);
    // A role this process does not serve: its endpoints answer 501 and name it.
    let verifier = for_role(roles.verifier, "Verifier");
    let limiter = Limiter::new(limits.challenges);
    let challenges = post(challenge).layer(axum::middleware::from_fn_with_state(limiter, rate_limited));
    router = verifier(router, "/v1/challenge", challenges);
    router = verifier(router, "/v1/verifier/evidence", post(verifier_evidence).layer(once()));
    router = verifier(router, super::results::EAR_CWT_PATH, post(super::results::ear_cwt));
    let ca = for_role(roles.credential_authority, "Credential Authority");
    router = ca(router, "/v1/ca/certificate", get(ca_certificate));
    router = ca(router, "/v1/ca/credential", post(ca_credential).layer(once()));
    // A Key Store of another process has its keys certified.
    router = ca(router, crate::key_store_ca::PROVISION_PATH, post(super::key_store_ca::provision));
    router = ca(router, crate::key_store_ca::RELEASE_PATH, post(super::key_store_ca::release).layer(once()));
    router = ca(router, crate::bundle::BUNDLE_PATH, get(trust_bundle));
    let log_role = for_role(roles.log, "Log");
    router = log_role(router, log::CHECKPOINT_PATH, get(log::checkpoint));
    router = log_role(router, log::VKEY_PATH, get(log::vkey));
    router = log_role(router, &format!("{}/{{id}}", log::PROOF_PATH), get(log::proof));
    router = log_role(router, &format!("{}/{{first}}/{{second}}", log::CONSISTENCY_PATH), get(log::consistency));
    router = log_role(router, &format!("{}/{{digest}}", log::SBOM_PATH), get(log::sbom));
    router = log_role(router, &format!("{}/{{digest}}", log::ATTACHMENT_PATH), get(log::attachment));
    // A Credential Authority of another process has its records signed and appended.
    router = log_role(router, log::STATEMENTS_PATH, post(log::statements));
    router = log_role(router, log::APPEND_PATH, post(log::append).layer(once()));
    router = log_role(router, log::BINDING_PATH, post(log::binding));
    // EST (RFC 7030): the standard form of the CA's Enrollment (est.rs).
    router = ca(router, est::CACERTS_PATH, get(est::cacerts));
    router = ca(router, est::SIMPLEENROLL_PATH, post(est::simpleenroll).layer(once()));
    router = ca(router, est::SIMPLEREENROLL_PATH, post(est::simplereenroll).layer(once()));
    router = ca(router, est::CSRATTRS_PATH, get(est::csrattrs));
    // Always routed: without the role their handlers answer 501 (they also need the others).
    router = router
        .route("/v1/key-store/provision", post(key_store_provision))
        .route("/v1/key-store/release", post(key_store_release).layer(once()));
    let timeout = limits.request_timeout;
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(move |request: Request, next: Next| within(timeout, request, next)))
        .layer(axum::middleware::from_fn(super::access::logged))
        .with_state(state)
}

/// Serves `router` on `listener` over `transport`, under `limits`, until SIGINT (Ctrl-C) or
/// SIGTERM, then finishes the requests under way.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    transport: Transport,
    limits: Limits,
) -> std::io::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let stop = async move {
        let mut interrupt = std::pin::pin!(tokio::signal::ctrl_c());
        std::future::poll_fn(|cx| {
            if interrupt.as_mut().poll(cx).is_ready() || terminate.poll_recv(cx).is_ready() {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
        .await;
    };
    serve_until(listener, router, transport, limits, stop).await;
    Ok(())
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
            code: None,
            retry_after: None,
        }
        .into_response(),
    }
}

/// Routes a `role`'s endpoint: to its handler when the process serves the role (`served`),
/// otherwise to a 501 that names the role.
fn for_role(
    served: bool,
    role: &'static str,
) -> impl Fn(Router<AppState>, &str, MethodRouter<AppState>) -> Router<AppState> {
    move |router, path, handler| {
        if served {
            router.route(path, handler)
        } else {
            router.route(
                path,
                any(move || async move { ApiError::role_missing(role, "send this to a process that does") }),
            )
        }
    }
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!(
        "no endpoint {}: this issuer serves /v1/health, /v1/keys, /v1/challenge, /v1/verifier/evidence, /v1/ca/certificate, /v1/ca/credential, /v1/ca/key-store/provision, /v1/ca/key-store/release, /.well-known/spiffe-bundle, /v1/log/checkpoint, /v1/log/key, /v1/log/proof/ID, /v1/log/consistency/FIRST/SECOND, /v1/log/sbom/sha384-HEX, /v1/log/attachment/sha384-HEX, /v1/log/statements, /v1/log/append, /v1/log/binding, /.well-known/est/cacerts, /.well-known/est/simpleenroll, /v1/key-store/provision and /v1/key-store/release (those of its roles)",
        uri.path()
    ))
}

async fn method_not_allowed(uri: Uri) -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: format!(
            "{} does not take this method: GET the /v1/health, /v1/keys, /v1/ca/certificate, /v1/log/* (but /v1/log/statements, /v1/log/append and /v1/log/binding), /.well-known/spiffe-bundle and /.well-known/est/cacerts, POST the others",
            uri.path()
        ),
        code: None,
        retry_after: None,
    }
}
