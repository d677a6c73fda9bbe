//! Per-client rate limits: a token bucket per client address for the endpoints that cost the
//! service state or work before any evidence is shown (`POST /v1/challenge`: each answer is a
//! nonce kept for its lifetime). The attack run of issue 14 made 10,000 challenges from one
//! client in 8.5 s and left every legitimate client without a nonce for 300 s; with a bucket per
//! client, the flooding client is answered 429 with `Retry-After` and the others are served.
//!
//! The buckets themselves are bounded ([`RateLimit::max_clients`]): full buckets (clients that
//! have been quiet) are forgotten first; when every tracked client is active, a new one is
//! answered 503 with `Retry-After`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::api::ApiError;
use super::listener::ClientAddr;

/// A token bucket's shape: `burst` requests at once, refilled at `per_second`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
    /// How many clients are tracked at once.
    pub max_clients: usize,
}

impl Default for RateLimit {
    /// 20 challenges at once, 5 a second after that, per client address.
    fn default() -> Self {
        Self { per_second: 5.0, burst: 20, max_clients: 10_000 }
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// The buckets of every client, shared by the requests.
#[derive(Clone, Debug)]
pub(super) struct Limiter {
    limit: RateLimit,
    buckets: Arc<Mutex<HashMap<IpAddr, Bucket>>>,
}

/// Why a request is not served now, and when to come back.
#[derive(Debug, PartialEq)]
pub(super) enum Limited {
    /// This client is over its rate (429).
    TooMany { retry_after: u64 },
    /// Too many clients at once (503).
    Busy { retry_after: u64 },
}

impl Limiter {
    pub(super) fn new(limit: RateLimit) -> Self {
        Self { limit, buckets: Arc::new(Mutex::new(HashMap::new())) }
    }

    /// Takes one token from `client`'s bucket at `now`.
    pub(super) fn take(&self, client: IpAddr, now: Instant) -> Result<(), Limited> {
        let RateLimit { per_second, burst, max_clients } = self.limit;
        let (per_second, burst) = (per_second.max(0.001), f64::from(burst.max(1)));
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let refill = |bucket: &Bucket| {
            (bucket.tokens + now.duration_since(bucket.updated).as_secs_f64() * per_second).min(burst)
        };
        if !buckets.contains_key(&client) && buckets.len() >= max_clients {
            buckets.retain(|_, bucket| refill(bucket) < burst);
            if buckets.len() >= max_clients {
                return Err(Limited::Busy { retry_after: 1 });
            }
        }
        let bucket = buckets.entry(client).or_insert(Bucket { tokens: burst, updated: now });
        bucket.tokens = refill(bucket);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = Duration::from_secs_f64((1.0 - bucket.tokens) / per_second);
        Err(Limited::TooMany { retry_after: wait.as_secs().max(1) })
    }
}

/// The middleware: the request's client (the listener's [`ClientAddr`]; in-process callers
/// without one share the unspecified address) takes a token, or is answered 429/503.
pub(super) async fn rate_limited(State(limiter): State<Limiter>, request: Request, next: Next) -> Response {
    let client = request.extensions().get::<ClientAddr>().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0);
    match limiter.take(client, Instant::now()) {
        Ok(()) => next.run(request).await,
        Err(Limited::TooMany { retry_after }) => ApiError::retry_later(
            StatusCode::TOO_MANY_REQUESTS,
            format!("this client asked for challenges faster than the service allows: retry after {retry_after} s"),
            retry_after,
        )
        .into_response(),
        Err(Limited::Busy { retry_after }) => ApiError::retry_later(
            StatusCode::SERVICE_UNAVAILABLE,
            "the service is tracking as many clients as it is configured to: retry later",
            retry_after,
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_per_client_refills_and_the_table_is_bounded() {
        let limiter = Limiter::new(RateLimit { per_second: 2.0, burst: 3, max_clients: 2 });
        let (a, b, c) = ([10, 0, 0, 1], [10, 0, 0, 2], [10, 0, 0, 3]);
        let (a, b, c) = (IpAddr::from(a), IpAddr::from(b), IpAddr::from(c));
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take(a, start), Ok(()));
        }
        assert_eq!(limiter.take(a, start), Err(Limited::TooMany { retry_after: 1 }));
        assert_eq!(limiter.take(b, start), Ok(()), "another client is served");
        assert_eq!(limiter.take(c, start), Err(Limited::Busy { retry_after: 1 }), "two clients tracked at most");
        assert_eq!(limiter.take(a, start + Duration::from_millis(500)), Ok(()), "refilled at 2/s");
        // Once b's bucket is full again (quiet), c takes its place.
        assert_eq!(limiter.take(c, start + Duration::from_secs(2)), Ok(()));
    }
}
