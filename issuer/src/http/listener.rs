//! Serving the router: the accept loop, TLS handshakes, and the per-connection limits that keep
//! one client from holding the service (the attack run of issue 14: idle and slow sockets were
//! never closed, and 300 of them exhausted the open files).
//!
//! - every handshake must finish within [`Limits::handshake_timeout`], and every request head
//!   arrive within [`Limits::idle_timeout`] (hyper's header read timeout, which also runs while
//!   a kept-alive connection waits for its next request: an idle connection is closed);
//! - at most [`Limits::max_connections`] connections are served at once; up to
//!   [`OVERFLOW`] more are answered 503 with `Retry-After` and closed, any beyond are closed;
//! - each request runs in its own task, so that a panic answers a bare 500 with no panic text.
//!
//! The TLS listener inserts the verified [`Operator`] (a client certificate under the operator
//! CA) and every listener the [`ClientAddr`] into each request.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use super::api::ApiError;
use super::tls::{Operator, operator_of};

/// Connections over the cap that are still answered (503, `Retry-After`) rather than dropped.
pub const OVERFLOW: usize = 64;

/// The address a request came from (its TCP peer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// How the listener speaks.
#[derive(Clone, Debug)]
pub enum Transport {
    /// TLS 1.3 (the default).
    Tls(Arc<rustls::ServerConfig>),
    /// Plain HTTP: only on loopback, only when the operator asked for it (`twi serve
    /// --insecure-plain-http`).
    PlainLoopback,
}

/// The per-connection limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    /// The time a request head may take to arrive, and a kept-alive connection may stay idle.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_connections: 256, handshake_timeout: Duration::from_secs(10), idle_timeout: Duration::from_secs(15) }
    }
}

/// Serves `router` on `listener` until `stop` resolves, then finishes the requests under way
/// (for at most 30 s).
pub async fn serve_until(
    listener: TcpListener,
    router: Router,
    transport: Transport,
    limits: Limits,
    stop: impl std::future::Future<Output = ()>,
) {
    let served = Arc::new(Semaphore::new(limits.max_connections));
    let overflow = Arc::new(Semaphore::new(OVERFLOW));
    let (shutdown, watching) = watch::channel(false);
    let mut stop = std::pin::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE and friends: wait for connections to close rather than spin.
                    eprintln!("twi serve: cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let admitted = match served.clone().try_acquire_owned() {
            Ok(permit) => Admitted::Served(permit),
            Err(_) => match overflow.clone().try_acquire_owned() {
                Ok(permit) => Admitted::Overloaded(permit),
                Err(_) => continue, // dropped: closed at once
            },
        };
        let connection = Connection { router: router.clone(), transport: transport.clone(), limits, peer };
        tokio::spawn(connection.run(stream, admitted, watching.clone()));
    }
    let _ = shutdown.send(true);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(30), served.acquire_many(all)).await;
}

/// Whether a connection is served, or only told the service is busy.
#[derive(Debug)]
enum Admitted {
    Served(#[allow(dead_code)] OwnedSemaphorePermit),
    Overloaded(#[allow(dead_code)] OwnedSemaphorePermit),
}

struct Connection {
    router: Router,
    transport: Transport,
    limits: Limits,
    peer: SocketAddr,
}

impl Connection {
    async fn run(self, stream: TcpStream, admitted: Admitted, shutdown: watch::Receiver<bool>) {
        let _ = stream.set_nodelay(true);
        match &self.transport {
            Transport::Tls(config) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
                let handshake = tokio::time::timeout(self.limits.handshake_timeout, acceptor.accept(stream)).await;
                let Ok(Ok(tls)) = handshake else { return };
                let operator = operator_of(tls.get_ref().1.peer_certificates());
                self.http(TokioIo::new(tls), operator, &admitted, shutdown).await;
            }
            Transport::PlainLoopback => self.http(TokioIo::new(stream), None, &admitted, shutdown).await,
        }
        drop(admitted);
    }

    async fn http<I>(&self, io: I, operator: Option<Operator>, admitted: &Admitted, mut shutdown: watch::Receiver<bool>)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let overloaded = matches!(admitted, Admitted::Overloaded(_));
        let (router, client) = (self.router.clone(), ClientAddr(self.peer.ip()));
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(client);
            if let Some(operator) = &operator {
                request.extensions_mut().insert(operator.clone());
            }
            let router = router.clone();
            async move {
                if overloaded {
                    return Ok::<_, Infallible>(busy(1));
                }
                Ok(answer(router, request).await)
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(self.limits.idle_timeout).keep_alive(!overloaded);
        let connection = builder.serve_connection(io, service);
        let mut connection = std::pin::pin!(connection);
        tokio::select! {
            _ = connection.as_mut() => {}
            () = async { drop(shutdown.wait_for(|stop| *stop).await) } => {
                connection.as_mut().graceful_shutdown();
                let _ = connection.await;
            }
        }
    }
}

/// The router's answer to `request`, from a task of its own: a panic is logged and answered
/// 500 without its text.
async fn answer(router: Router, request: Request<Incoming>) -> Response<Body> {
    use tower::Service as _;
    let mut router = router;
    let task = tokio::spawn(async move { router.call(request.map(Body::new)).await });
    match task.await {
        Ok(Ok(response)) => response,
        Ok(Err(never)) => match never {},
        Err(e) => {
            eprintln!("twi serve: a request handler failed: {e}");
            ApiError::internal("the issuer failed while handling the request (see its log)").into_response()
        }
    }
}

/// 503 with `Retry-After: SECONDS`: the service is at its connection cap.
fn busy(seconds: u64) -> Response<Body> {
    let message =
        "the issuer is serving as many connections as it is configured to: retry after the time in Retry-After";
    let mut response = ApiError::retry_later(StatusCode::SERVICE_UNAVAILABLE, message, seconds).into_response();
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
