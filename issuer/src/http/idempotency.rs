//! Issuance idempotent per request id (issue 14 item 8; the `Idempotency-Key` request header of
//! draft-ietf-httpapi-idempotency-key-header). A client that sends the header with a credential
//! request gets, for a retry with the same key and the same body, the answer of the first
//! attempt (its headers too: EST's issuance record rides in one) — the same credential, never a
//! second appraisal (whose nonce the first one spent). For EST the evidence header counts as part
//! of the request beside the body.
//! The request is answered by a task of its own, so a 408 (the client's time ran out) or a
//! client that went away does not cancel it: its credential is kept for the retry instead of
//! being logged and never delivered. Answers are kept [`KEEP`], at most [`MAX_KEYS`] of them; a
//! 5xx is not kept (the retry runs again).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::api::{ApiError, MAX_BODY};

/// The request header that names a request id.
pub const HEADER: &str = "idempotency-key";
/// How long an answer is kept for retries.
pub const KEEP: Duration = Duration::from_secs(300);
/// Request ids remembered at once (503 with `Retry-After` beyond).
pub const MAX_KEYS: usize = 4096;

/// A request under way, or its answer.
enum Entry {
    Running { body: [u8; 32], since: Instant },
    Done { body: [u8; 32], at: Instant, status: StatusCode, headers: header::HeaderMap, bytes: Bytes },
}

impl Entry {
    fn body(&self) -> &[u8; 32] {
        match self {
            Entry::Running { body, .. } | Entry::Done { body, .. } => body,
        }
    }

    fn fresh(&self, now: Instant) -> bool {
        match self {
            Entry::Running { since, .. } => now.duration_since(*since) < KEEP,
            Entry::Done { at, .. } => now.duration_since(*at) < KEEP,
        }
    }
}

/// The answers by request id, shared by the credential endpoints.
#[derive(Clone, Default)]
pub(super) struct Replies(Arc<Mutex<HashMap<String, Entry>>>);

fn refused(status: StatusCode, message: String, retry_after: Option<u64>) -> Response {
    ApiError { status, message, code: None, retry_after }.into_response()
}

/// The middleware: requests without the header pass through unchanged.
pub(super) async fn idempotent(State(replies): State<Replies>, request: Request, next: Next) -> Response {
    let Some(key) = request.headers().get(HEADER).map(|v| v.to_str().map(str::to_owned)) else {
        return next.run(request).await;
    };
    let key = match key {
        Ok(key) if !key.is_empty() && key.len() <= 128 => key,
        _ => {
            return refused(
                StatusCode::BAD_REQUEST,
                "Idempotency-Key must be 1 to 128 visible ASCII characters".into(),
                None,
            );
        }
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        let message = format!("the request body is larger than the limit of {MAX_BODY} bytes");
        return refused(StatusCode::PAYLOAD_TOO_LARGE, message, None);
    };
    let digest = request_digest(&parts.headers, &bytes);
    if let Some(answer) = replies.begin(&key, digest) {
        return answer;
    }
    let request = Request::from_parts(parts, Body::from(bytes));
    let task = replies.clone();
    // A task of its own: the request's timeout (or a client gone) does not cancel it.
    let answered = tokio::spawn(async move {
        let (parts, body) = next.run(request).await.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
        task.finish(&key, digest, parts.status, kept_headers(&parts.headers), bytes.clone());
        Response::from_parts(parts, Body::from(bytes))
    });
    answered.await.unwrap_or_else(|_| ApiError::internal("the request's task failed").into_response())
}

/// What makes two requests the same: the body, and what an EST enrollment carries beside it
/// in its headers, the evidence and the credential it renews (the same CSR with other
/// evidence is another request).
fn request_digest(headers: &header::HeaderMap, body: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update((body.len() as u64).to_be_bytes());
    hash.update(body);
    for name in [super::est::EVIDENCE_HEADER, super::est::RENEWAL_HEADER] {
        let value = headers.get(name).map_or(&[][..], |v| v.as_bytes());
        hash.update((value.len() as u64).to_be_bytes());
        hash.update(value);
    }
    hash.finalize().into()
}

/// The answer's headers a retry gets again (EST's content transfer encoding and issuance record
/// included); the framing ones are the new response's own.
fn kept_headers(headers: &header::HeaderMap) -> header::HeaderMap {
    let mut kept = headers.clone();
    for framing in [header::CONTENT_LENGTH, header::TRANSFER_ENCODING, header::CONNECTION, header::DATE] {
        kept.remove(framing);
    }
    kept
}

impl Replies {
    /// The answer for a request already seen (or a refusal), else `None` with the request
    /// marked as under way.
    fn begin(&self, key: &str, body: [u8; 32]) -> Option<Response> {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        map.retain(|_, e| e.fresh(now));
        match map.get(key) {
            Some(e) if e.body() != &body => Some(refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "this Idempotency-Key was sent with another request body: use a new key for a new request".into(),
                None,
            )),
            Some(Entry::Running { .. }) => Some(refused(
                StatusCode::CONFLICT,
                "the request with this Idempotency-Key is still being answered: retry it shortly".into(),
                Some(1),
            )),
            Some(Entry::Done { status, headers, bytes, .. }) => {
                let mut response = (*status, bytes.clone()).into_response();
                response.headers_mut().extend(headers.clone());
                Some(response)
            }
            None if map.len() >= MAX_KEYS => Some(refused(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{MAX_KEYS} request ids are remembered already: retry later"),
                Some(KEEP.as_secs()),
            )),
            None => {
                map.insert(key.to_string(), Entry::Running { body, since: now });
                None
            }
        }
    }

    /// Keeps the answer (a 5xx is forgotten: the retry runs again).
    fn finish(&self, key: &str, body: [u8; 32], status: StatusCode, headers: header::HeaderMap, bytes: Bytes) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if status.is_server_error() {
            map.remove(key);
        } else {
            map.insert(key.to_string(), Entry::Done { body, at: Instant::now(), status, headers, bytes });
        }
    }
}
