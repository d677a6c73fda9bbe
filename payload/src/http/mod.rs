//! A small HTTP/1.1 client for workloads, over any byte stream (a [`TlsStream`] in practice).
//!
//! A workload calls HTTPS APIs (a relying party, a database front end) over the TLS client in
//! [`crate::tls`]. This module writes one request (RFC 9112 §3: request line, `Host`, header
//! fields, a body framed by `Content-Length`) and reads one response (RFC 9112 §4 status line,
//! §5 fields, §6 body: `Transfer-Encoding: chunked` (§7.1), `Content-Length`, or until the
//! connection closes). The response comes from the network, so the parser is strict and
//! bounded: every size has a [`Limits`] cap checked before allocating, obsolete line folding
//! and whitespace before a field's colon are refused (RFC 9112 §5.1, §5.2), conflicting
//! `Content-Length` values are refused (RFC 9110 §8.6), and a body that ends early is an error,
//! never a shorter body. Over TLS, "until the connection closes" means until the server's
//! `close_notify`; a cut connection is [`crate::tls::TlsError::Truncated`].
//!
//! Not here: connection reuse across requests with pipelining, redirects, cookies, content
//! codings (gzip), `Expect: 100-continue`, HTTP/2.
//!
//! ```no_run
//! # use twi_payload::http::{self, Limits, Request};
//! # fn demo<S: http::Stream<Error: 'static>>(tls: &mut S) -> Result<(), Box<dyn std::error::Error>> {
//! let request = Request::get("payroll-db.example", "/rows?month=2026-01")?.header("Accept", "application/json")?;
//! let response = http::send(tls, &request, &Limits::default())?;
//! assert_eq!(response.status, 200);
//! # Ok(()) }
//! ```

mod request;
mod response;

use core::fmt;

pub use request::{Method, Request, RequestError};
pub use response::Response;

use crate::tls::{TlsError, TlsStream, Transport};

/// A blocking byte stream an HTTP exchange runs over.
pub trait Stream {
    /// The stream's own failure.
    type Error: fmt::Debug + fmt::Display;

    /// Writes every byte of `buf`.
    ///
    /// # Errors
    /// The stream's error.
    fn write_all(&mut self, buf: &[u8]) -> Result<(), Self::Error>;

    /// Reads some bytes into `buf`; `Ok(0)` only at a clean end of stream.
    ///
    /// # Errors
    /// The stream's error.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error>;
}

impl<T: Transport> Stream for TlsStream<T> {
    type Error = TlsError;

    fn write_all(&mut self, buf: &[u8]) -> Result<(), TlsError> {
        TlsStream::write_all(self, buf)
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<usize, TlsError> {
        TlsStream::read(self, buf)
    }
}

/// Caps on what a response may make the client hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of the status line plus all header fields (and of chunked trailers).
    pub max_head: usize,
    /// Number of header fields.
    pub max_headers: usize,
    /// Bytes of the (de-chunked) body.
    pub max_body: usize,
}

impl Default for Limits {
    /// 16 KiB of head, 64 fields, 1 MiB of body: ample for API calls, small for a 16 MiB guest.
    fn default() -> Self {
        Self { max_head: 16 * 1024, max_headers: 64, max_body: 1024 * 1024 }
    }
}

/// Why an HTTP exchange failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpError<E> {
    /// The stream under HTTP failed (for TLS: a [`TlsError`]).
    Stream(E),
    /// The response does not follow RFC 9112; the text says which rule.
    Malformed(&'static str),
    /// The response's status line and fields exceed [`Limits::max_head`] or
    /// [`Limits::max_headers`].
    HeadTooLarge,
    /// The body exceeds [`Limits::max_body`].
    BodyTooLarge,
    /// The response uses a transfer coding other than `chunked`.
    UnsupportedTransferCoding,
    /// The stream ended before the response was complete.
    Incomplete,
}

impl<E: fmt::Display> fmt::Display for HttpError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stream(error) => write!(f, "{error}"),
            Self::Malformed(rule) => write!(f, "the server's HTTP response is malformed: {rule}"),
            Self::HeadTooLarge => {
                f.write_str("the response's header section exceeds the limit: raise Limits::max_head")
            }
            Self::BodyTooLarge => f.write_str("the response body exceeds the limit: raise Limits::max_body"),
            Self::UnsupportedTransferCoding => {
                f.write_str("the response uses a transfer coding other than chunked: ask the server for identity")
            }
            Self::Incomplete => f.write_str("the connection ended before the response was complete: retry"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for HttpError<E> {}

/// Sends `request` over `stream` and reads its response.
///
/// # Errors
/// [`HttpError`]: the stream's failure, or a response that breaks RFC 9112 or `limits`.
pub fn send<S: Stream>(stream: &mut S, request: &Request, limits: &Limits) -> Result<Response, HttpError<S::Error>> {
    stream.write_all(&request.encode()).map_err(HttpError::Stream)?;
    response::read(stream, request.method() == Method::Head, limits)
}

#[cfg(test)]
mod tests;
