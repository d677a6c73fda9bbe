//! Issuance idempotent per request id (issue 14 item 8; the `Idempotency-Key` request header of
//! draft-ietf-httpapi-idempotency-key-header). A client that sends the header with a credential
//! request gets, for a retry with the same key and the same body, the answer of the first
//! attempt (its headers too: EST's issuance record rides in one) — the same credential, never a
//! second appraisal (whose nonce the first one spent). For EST the evidence header counts as part
//! of the request beside the body.
//! The request is answered by a task of its own, so a 408 (the client's time ran out) or a
//! client that went away does not cancel it: its credential is kept for the retry instead of
//! being logged and never delivered. A 5xx is not kept (the retry runs again).
//!
//! What is kept is bounded without ever refusing a new request for it: answers live [`KEEP`]
//! (far longer than a client's retries, which end within its request timeout), and beyond
//! [`MAX_ANSWERS`] answers or [`MAX_ANSWER_BYTES`] of them the oldest are forgotten first (a
//! retry that late runs again, and is refused as the replay of its spent nonce). Only requests
//! still under way are never forgotten; more than [`MAX_RUNNING`] of them at once answer 503 with
//! `Retry-After`. (On main before this, 4,096 answers kept five minutes refused every new request
//! with 503 once a service had issued 4,096 credentials within five minutes: 14 issuances/s.)

use std::collections::{HashMap, VecDeque};
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
/// Answers kept at once (the oldest forgotten beyond).
pub const MAX_ANSWERS: usize = 65_536;
/// The bytes of the answers kept at once (the oldest forgotten beyond).
pub const MAX_ANSWER_BYTES: usize = 64 << 20;
/// Requests under way at once (503 with `Retry-After` beyond).
pub const MAX_RUNNING: usize = 4096;

/// What a [`Replies`] keeps at most (answers also live at most [`KEEP`]).
#[derive(Clone, Copy, Debug)]
pub(super) struct Bounds {
    pub answers: usize,
    pub bytes: usize,
    pub running: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Self { answers: MAX_ANSWERS, bytes: MAX_ANSWER_BYTES, running: MAX_RUNNING }
    }
}

/// A request under way, or its answer.
enum Entry {
    Running { body: [u8; 32] },
    Done { body: [u8; 32], status: StatusCode, headers: header::HeaderMap, bytes: Bytes },
}

impl Entry {
    fn body(&self) -> &[u8; 32] {
        match self {
            Entry::Running { body } | Entry::Done { body, .. } => body,
        }
    }
}

/// The answers by request id, with the order they were kept in (oldest first: one item per
/// `Done` entry, since an answer is kept once per key until it is forgotten) and their size.
#[derive(Default)]
struct Kept {
    entries: HashMap<String, Entry>,
    answers: VecDeque<(String, Instant)>,
    bytes: usize,
    running: usize,
}

impl Kept {
    /// Forgets the oldest answer.
    fn forget_oldest(&mut self) {
        let Some((key, _)) = self.answers.pop_front() else { return };
        if let Some(Entry::Done { bytes, .. }) = self.entries.get(&key) {
            self.bytes -= bytes.len();
            self.entries.remove(&key);
        }
    }

    /// Forgets answers older than [`KEEP`], then the oldest while over the bounds.
    fn trim(&mut self, now: Instant, bounds: &Bounds) {
        while let Some((_, at)) = self.answers.front() {
            let expired = now.duration_since(*at) >= KEEP;
            if !expired && self.answers.len() <= bounds.answers && self.bytes <= bounds.bytes {
                break;
            }
            self.forget_oldest();
        }
    }
}

/// The answers by request id, shared by the credential endpoints.
#[derive(Clone, Default)]
pub(super) struct Replies {
    kept: Arc<Mutex<Kept>>,
    bounds: Bounds,
}

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
    #[cfg(test)]
    fn bounded(bounds: Bounds) -> Self {
        Self { kept: Arc::default(), bounds }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The answer for a request already seen (or a refusal), else `None` with the request
    /// marked as under way.
    fn begin(&self, key: &str, body: [u8; 32]) -> Option<Response> {
        let mut kept = self.lock();
        kept.trim(Instant::now(), &self.bounds);
        match kept.entries.get(key) {
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
            None if kept.running >= self.bounds.running => Some(refused(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{} requests with an Idempotency-Key are being answered already: retry shortly", kept.running),
                Some(1),
            )),
            None => {
                kept.entries.insert(key.to_string(), Entry::Running { body });
                kept.running += 1;
                None
            }
        }
    }

    /// Keeps the answer (a 5xx is forgotten: the retry runs again).
    fn finish(&self, key: &str, body: [u8; 32], status: StatusCode, headers: header::HeaderMap, bytes: Bytes) {
        let mut kept = self.lock();
        if let Some(Entry::Running { .. }) = kept.entries.remove(key) {
            kept.running -= 1;
        }
        if status.is_server_error() {
            return;
        }
        let at = Instant::now();
        kept.bytes += bytes.len();
        kept.answers.push_back((key.to_string(), at));
        kept.entries.insert(key.to_string(), Entry::Done { body, status, headers, bytes });
        kept.trim(at, &self.bounds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(answers: usize, bytes: usize, running: usize) -> Bounds {
        Bounds { answers, bytes, running }
    }

    fn answered(replies: &Replies, key: &str, bytes: &'static [u8]) {
        assert!(replies.begin(key, [1; 32]).is_none(), "{key} is new");
        replies.finish(key, [1; 32], StatusCode::OK, header::HeaderMap::new(), Bytes::from_static(bytes));
    }

    /// On main before this, a full table refused every new request (503 for five minutes).
    #[test]
    fn a_full_table_forgets_its_oldest_answer_instead_of_refusing() {
        let replies = Replies::bounded(bounds(3, usize::MAX, 8));
        for key in ["a", "b", "c", "d", "e"] {
            answered(&replies, key, b"answer");
        }
        let kept = replies.lock();
        assert_eq!(kept.entries.len(), 3);
        assert!(!kept.entries.contains_key("a") && !kept.entries.contains_key("b"), "the oldest went first");
        drop(kept);
        let again = replies.begin("e", [1; 32]).expect("the newest answer is kept for its retry");
        assert_eq!(again.status(), StatusCode::OK);
        assert!(replies.begin("a", [1; 32]).is_none(), "a forgotten key runs again");
    }

    #[test]
    fn answers_are_bounded_by_their_bytes() {
        let replies = Replies::bounded(bounds(100, 10, 8));
        for key in ["a", "b", "c"] {
            answered(&replies, key, b"four");
        }
        let kept = replies.lock();
        assert_eq!((kept.entries.len(), kept.bytes), (2, 8), "the third answer's bytes pushed out the first");
    }

    #[test]
    fn requests_under_way_are_never_forgotten_and_are_bounded() {
        let replies = Replies::bounded(bounds(1, 1, 2));
        assert!(replies.begin("a", [1; 32]).is_none());
        assert!(replies.begin("b", [1; 32]).is_none());
        let busy = replies.begin("c", [1; 32]).expect("a third request under way is refused");
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(busy.headers().contains_key(header::RETRY_AFTER));
        replies.finish("b", [1; 32], StatusCode::SERVICE_UNAVAILABLE, header::HeaderMap::new(), Bytes::new());
        assert!(replies.begin("b", [1; 32]).is_none(), "a 5xx is not kept: the retry runs again");
        let large = Bytes::from_static(b"larger than the bound");
        replies.finish("b", [1; 32], StatusCode::OK, header::HeaderMap::new(), large);
        assert_eq!(replies.lock().entries.len(), 1, "the answer over the bound is forgotten");
        assert_eq!(replies.begin("a", [1; 32]).map(|r| r.status()), Some(StatusCode::CONFLICT), "still under way");
    }
}
