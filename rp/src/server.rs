//! The HTTPS service: accept, TLS handshake, one HTTP/1.1 connection per task, and for each
//! request authenticate → route → authorize → serve.
//!
//! Answers (RFC 9110 §15): 401 with `WWW-Authenticate: WPT` when the caller is not
//! authenticated (draft-ietf-wimse-wpt §2.1), 403 when it is but may not use the route, 404/405
//! for an unknown route or method (only after authentication, so routes are not revealed to
//! strangers), 503 when the replay cache is full. Refusals are RFC 9457 problem documents whose
//! `check` member names the check that failed. Connections are bounded (`max_connections`), and
//! a client gets [`HANDSHAKE_TIMEOUT`] for its handshake and [`HEADER_TIMEOUT`] for its headers.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::config::{Body, Config, ConfigError};
use crate::error::AuthError;
use crate::policy::{self, Caller, Refused, Served, Via};
use crate::replay::{ReplayCache, ReplayError};
use crate::tls::{self, TlsError};
use crate::wit::{self, JwksError, WitKeys};
use crate::wpt::{self, Limits};

/// Time a client has to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client has to send a request's header section.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the relying party cannot start or keep serving.
#[derive(Debug, thiserror::Error)]
pub enum RpError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("`issuer_jwks` ({path}) {error}")]
    Jwks { path: String, error: JwksError },
    #[error("`{field}`: cannot read {path}: {error}")]
    Read { field: String, path: String, error: std::io::Error },
    #[error("cannot listen on {addr}: {error}; pick a free address in `listen`")]
    Listen { addr: SocketAddr, error: std::io::Error },
}

/// What the request handlers share.
#[derive(Debug)]
struct State {
    public_url: String,
    routes: Vec<Served>,
    wit_keys: Option<WitKeys>,
    limits: Limits,
    replay: Mutex<ReplayCache>,
}

/// The relying party: configured, with its files loaded, ready to serve.
pub struct RelyingParty {
    state: Arc<State>,
    acceptor: TlsAcceptor,
    listen: SocketAddr,
    max_connections: usize,
}

impl std::fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelyingParty")
            .field("listen", &self.listen)
            .field("public_url", &self.state.public_url)
            .field("routes", &self.state.routes.len())
            .finish_non_exhaustive()
    }
}

impl RelyingParty {
    /// Reads the configuration file `path` and everything it names.
    pub fn from_config_file(path: &Path) -> Result<Self, RpError> {
        Self::from_config(Config::from_file(path)?)
    }

    /// Loads the certificates, keys, JWKS and route data `config` names.
    pub fn from_config(config: Config) -> Result<Self, RpError> {
        // jsonwebtoken picks its crypto backend from crate features and would panic at the
        // first token if a binary enabled two; install ours explicitly (Err: one already is).
        let _ =
            jsonwebtoken::crypto::CryptoProvider::install_default(&jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER);
        let tls = tls::server_config(
            &config.server_certificate,
            &config.server_key,
            config.issuer_ca.as_deref(),
            config.simulated_tee_oid.as_ref(),
        )?;
        let wit_keys = match &config.issuer_jwks {
            Some(path) => {
                let shown = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|error| RpError::Read {
                    field: "issuer_jwks".into(),
                    path: shown.clone(),
                    error,
                })?;
                Some(
                    WitKeys::from_jwks(&text, &config.wit_key_ids)
                        .map_err(|error| RpError::Jwks { path: shown, error })?,
                )
            }
            None => None,
        };
        let routes = config.routes.iter().enumerate().map(|(i, r)| load_route(i, r)).collect::<Result<Vec<_>, _>>()?;
        let state = State {
            public_url: config.public_url.clone(),
            routes,
            wit_keys,
            limits: Limits { max_lifetime: config.wpt_max_lifetime.as_secs(), leeway: config.leeway.as_secs() },
            replay: Mutex::new(ReplayCache::new(config.replay_cache_capacity)),
        };
        Ok(Self {
            state: Arc::new(state),
            acceptor: TlsAcceptor::from(tls),
            listen: config.listen,
            max_connections: config.max_connections,
        })
    }

    /// The configured `listen` address.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    /// Listens on the configured address and serves until the process ends.
    pub async fn run(self) -> Result<(), RpError> {
        let listener =
            TcpListener::bind(self.listen).await.map_err(|error| RpError::Listen { addr: self.listen, error })?;
        self.serve(listener).await
    }

    /// Serves connections from `listener` until the process ends.
    pub async fn serve(self, listener: TcpListener) -> Result<(), RpError> {
        self.serve_with_shutdown(listener, std::future::pending()).await
    }

    /// Serves connections from `listener` until `shutdown` completes; connections already
    /// accepted finish on their own.
    pub async fn serve_with_shutdown(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), RpError> {
        let permits = Arc::new(Semaphore::new(self.max_connections));
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                () = &mut shutdown => return Ok(()),
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return Ok(()),
                },
            };
            let accepted = tokio::select! {
                () = &mut shutdown => return Ok(()),
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors and the like: transient, so wait a little and go on.
                    log::warn!("relying party: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (acceptor, state) = (self.acceptor.clone(), self.state.clone());
            tokio::spawn(async move {
                serve_connection(acceptor, state, tcp, peer).await;
                drop(permit);
            });
        }
    }
}

fn load_route(index: usize, route: &crate::config::Route) -> Result<Served, RpError> {
    let body = match &route.body {
        Body::Inline(text) => Bytes::from(text.clone()),
        Body::File(path) => Bytes::from(std::fs::read(path).map_err(|error| RpError::Read {
            field: format!("route[{index}].body_file"),
            path: path.display().to_string(),
            error,
        })?),
    };
    Ok(Served { route: route.clone(), body })
}

/// One connection: the handshake, then HTTP/1.1 requests, each answered by [`respond`].
async fn serve_connection(acceptor: TlsAcceptor, state: Arc<State>, tcp: TcpStream, peer: SocketAddr) {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            log::info!("relying party: TLS handshake with {peer} refused: {e}");
            return;
        }
        Err(_) => {
            log::info!("relying party: TLS handshake with {peer} timed out");
            return;
        }
    };
    let certificate = Arc::new(tls::peer_identity(tls.get_ref().1.peer_certificates()));
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let response = respond(&state, certificate.as_ref().as_ref(), &request);
        async move { Ok::<_, Infallible>(response) }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(tls), service)
        .await;
    if let Err(e) = served {
        log::debug!("relying party: connection from {peer} ended: {e}");
    }
}

/// Why a request is refused, by status.
#[derive(Debug)]
enum Refusal {
    Unauthenticated(AuthError),
    Refused(Option<String>, Refused),
    Busy(ReplayError),
}

fn respond(
    state: &State,
    certificate: Option<&Result<String, String>>,
    request: &Request<Incoming>,
) -> Response<Full<Bytes>> {
    let (method, path) = (request.method(), request.uri().path());
    let outcome = authenticate(state, certificate, path, request.headers()).and_then(|caller| {
        let served = policy::select(&state.routes, path, method).map_err(|r| Refusal::Refused(None, r))?;
        policy::authorize(served, &caller, method).map_err(|r| Refusal::Refused(Some(caller.identity.clone()), r))?;
        Ok((served, caller))
    });
    // The access log: who asked for what, and the verdict (never a token or a key).
    match outcome {
        Ok((served, caller)) => {
            log::info!("{method} {path} by {} ({:?}): allowed", caller.identity, caller.via);
            ok(served, method)
        }
        Err(refusal) => {
            let response = refused(&refusal);
            log::info!("{method} {path}: {} {}", response.status().as_u16(), refusal_reason(&refusal));
            response
        }
    }
}

fn refusal_reason(refusal: &Refusal) -> String {
    match refusal {
        Refusal::Unauthenticated(e) => e.to_string(),
        Refusal::Refused(Some(id), r) => format!("{id}: {r}"),
        Refusal::Refused(None, r) => r.to_string(),
        Refusal::Busy(e) => e.to_string(),
    }
}

/// The caller, from its client certificate or its WIT + WPT (both, if both were presented:
/// then they must name the same workload).
fn authenticate(
    state: &State,
    certificate: Option<&Result<String, String>>,
    path: &str,
    headers: &HeaderMap,
) -> Result<Caller, Refusal> {
    let presented = wpt::presented(headers).map_err(Refusal::Unauthenticated)?;
    let certificate = certificate.map(|c| c.clone().map_err(AuthError::CertificateIdentity));
    let Some(presented) = presented else {
        let identity = certificate.ok_or(AuthError::NoCredentials).and_then(|c| c).map_err(Refusal::Unauthenticated)?;
        return Ok(Caller { identity, via: Via::Mtls, claims: None });
    };
    let caller = authenticate_wit(state, &presented, path, headers)?;
    match certificate {
        None => Ok(caller),
        Some(Ok(id)) if id == caller.identity => Ok(caller),
        Some(Ok(id)) => {
            Err(Refusal::Unauthenticated(AuthError::IdentityMismatch { certificate: id, wit: caller.identity }))
        }
        Some(Err(e)) => Err(Refusal::Unauthenticated(e)),
    }
}

fn authenticate_wit(
    state: &State,
    presented: &wpt::Presented<'_>,
    path: &str,
    headers: &HeaderMap,
) -> Result<Caller, Refusal> {
    let unauthenticated = Refusal::Unauthenticated;
    let keys = state.wit_keys.as_ref().ok_or(unauthenticated(AuthError::WitNotAccepted))?;
    let now = unix_now();
    let wit = wit::verify_wit(presented.wit, keys, now, state.limits.leeway).map_err(unauthenticated)?;
    let target = format!("{}{path}", state.public_url);
    let proof = wpt::verify_wpt(presented, &wit, &target, headers, now, state.limits).map_err(unauthenticated)?;
    // Only now, with every other check passed, is the jti spent: a forged proof burns none.
    let mut replay = state.replay.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    match replay.use_once(&proof.jti, proof.exp.saturating_add(state.limits.leeway), now) {
        Ok(()) => Ok(Caller { identity: wit.sub, via: Via::Wit, claims: Some(wit.claims) }),
        Err(ReplayError::Replayed) => Err(unauthenticated(AuthError::WptReplayed)),
        Err(full) => Err(Refusal::Busy(full)),
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn ok(served: &Served, method: &Method) -> Response<Full<Bytes>> {
    let body = if method == Method::HEAD { Bytes::new() } else { served.body.clone() };
    let mut response = Response::new(Full::new(body));
    if let Ok(value) = HeaderValue::from_str(&served.route.content_type) {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
}

fn refused(refusal: &Refusal) -> Response<Full<Bytes>> {
    let (status, check, detail, workload) = match refusal {
        Refusal::Unauthenticated(e) => (StatusCode::UNAUTHORIZED, e.check(), e.to_string(), None),
        Refusal::Refused(id, r) => (refused_status(r), refused_check(r), r.to_string(), id.clone()),
        Refusal::Busy(e) => (StatusCode::SERVICE_UNAVAILABLE, "wpt.jti", e.to_string(), None),
    };
    let mut problem = json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("refused"),
        "status": status.as_u16(),
        "detail": detail,
        "check": check,
    });
    if let Some(workload) = workload {
        problem["workload"] = workload.into();
    }
    let mut response = Response::new(Full::new(Bytes::from(problem.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    match refusal {
        Refusal::Unauthenticated(_) => {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("WPT"));
        }
        Refusal::Refused(_, Refused::MethodNotAllowed { allowed, .. }) => {
            if let Ok(value) = HeaderValue::from_str(&allowed.join(", ")) {
                headers.insert(ALLOW, value);
            }
        }
        Refusal::Busy(_) => {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        Refusal::Refused(..) => {}
    }
    response
}

fn refused_status(refused: &Refused) -> StatusCode {
    match refused {
        Refused::NotFound(_) => StatusCode::NOT_FOUND,
        Refused::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
        Refused::NotAllowed { .. } | Refused::ClaimsNeedWit { .. } | Refused::Claim { .. } => StatusCode::FORBIDDEN,
    }
}

fn refused_check(refused: &Refused) -> &'static str {
    match refused {
        Refused::NotFound(_) | Refused::MethodNotAllowed { .. } => "route",
        Refused::NotAllowed { .. } => "allow",
        Refused::ClaimsNeedWit { .. } | Refused::Claim { .. } => "claims",
    }
}
