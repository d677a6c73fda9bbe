//! The request log (issue 14 item 8): one structured `tracing` event per request, target
//! `twi::request`, with what an operator needs to follow the traffic and nothing a request
//! carries: the method, the path (never the query, never a header or a body: evidence, CSRs,
//! keys and tokens stay out), the status, the time it took, the client's address and, for an
//! owner endpoint, the subject of the operator certificate that authenticated it. `twi serve`
//! writes the events to stderr as text or JSON lines (`--log-format`).

use std::net::IpAddr;
use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

use super::listener::ClientAddr;
use super::tls::Operator;

/// The `tracing` target of the request events.
pub const TARGET: &str = "twi::request";

/// The middleware: answers `request`, then logs it.
pub(super) async fn logged(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let client = request.extensions().get::<ClientAddr>().map(|c| c.0);
    let operator = request.extensions().get::<Operator>().map(|o| o.subject.clone());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    tracing::info!(
        target: TARGET,
        method,
        path,
        status,
        micros,
        client = client.map(|ip: IpAddr| ip.to_string()),
        operator,
        "request"
    );
    response
}
