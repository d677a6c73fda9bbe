//! Building an HTTP/1.1 request (RFC 9112 §3) that cannot smuggle a second one.
//!
//! Every piece is checked when it is added: the target is origin-form (RFC 9112 §3.2.1), field
//! names are tokens and values hold no CR, LF or NUL (RFC 9110 §5.1, §5.5), so no caller value
//! can end a line early. `Host` and `Content-Length` are written by the builder itself.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The request method (RFC 9110 §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Method {
    /// GET
    Get,
    /// HEAD: the response has no body.
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH (RFC 5789)
    Patch,
    /// DELETE
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }

    /// RFC 9110 §8.6: a request that carries content states its length, even zero, for the
    /// methods that define content.
    fn always_states_length(self) -> bool {
        matches!(self, Self::Post | Self::Put | Self::Patch)
    }
}

/// An HTTP/1.1 request: method, target, `Host`, header fields, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    method: Method,
    host: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Why a request could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// The host is empty or holds characters a `Host` field cannot.
    InvalidHost,
    /// The target is not origin-form (`/path?query`, visible ASCII).
    InvalidTarget,
    /// The field name is not a token.
    InvalidHeaderName,
    /// The field value holds CR, LF, NUL or another control character.
    InvalidHeaderValue,
    /// The field is written by the builder itself.
    ReservedHeader(String),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidHost => f.write_str("the host is not a valid Host value: give HOST or HOST:PORT"),
            Self::InvalidTarget => f.write_str("the request target must start with '/' and be visible ASCII"),
            Self::InvalidHeaderName => f.write_str("a header name must be an RFC 9110 token (letters, digits, -)"),
            Self::InvalidHeaderValue => f.write_str("a header value must not contain control characters"),
            Self::ReservedHeader(name) => write!(f, "the {name} header is set by the client itself: leave it out"),
        }
    }
}

impl Request {
    /// A request for `target` (origin-form: `/path?query`) on `host` (`HOST` or `HOST:PORT`).
    ///
    /// # Errors
    /// [`RequestError::InvalidHost`] or [`RequestError::InvalidTarget`].
    pub fn new(method: Method, host: &str, target: &str) -> Result<Self, RequestError> {
        let host_ok = !host.is_empty() && host.bytes().all(|b| b.is_ascii_graphic() && !b"/?#@\\".contains(&b));
        if !host_ok {
            return Err(RequestError::InvalidHost);
        }
        if !target.starts_with('/') || !target.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(RequestError::InvalidTarget);
        }
        Ok(Self { method, host: host.into(), target: target.into(), headers: Vec::new(), body: Vec::new() })
    }

    /// A GET request; see [`Request::new`].
    ///
    /// # Errors
    /// As [`Request::new`].
    pub fn get(host: &str, target: &str) -> Result<Self, RequestError> {
        Self::new(Method::Get, host, target)
    }

    /// A POST request carrying `body`; see [`Request::new`].
    ///
    /// # Errors
    /// As [`Request::new`].
    pub fn post(host: &str, target: &str, body: Vec<u8>) -> Result<Self, RequestError> {
        Ok(Self::new(Method::Post, host, target)?.body(body))
    }

    /// Adds a header field.
    ///
    /// # Errors
    /// [`RequestError`] for a name that is not a token, a value with control characters, or a
    /// field the builder writes (`Host`, `Content-Length`, `Transfer-Encoding`).
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, RequestError> {
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(RequestError::InvalidHeaderName);
        }
        if ["host", "content-length", "transfer-encoding"].iter().any(|r| name.eq_ignore_ascii_case(r)) {
            return Err(RequestError::ReservedHeader(name.into()));
        }
        if !value.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80) {
            return Err(RequestError::InvalidHeaderValue);
        }
        self.headers.push((name.into(), value.trim_matches([' ', '\t']).into()));
        Ok(self)
    }

    /// Sets the body (sent with a `Content-Length`).
    #[must_use]
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    /// The method.
    #[must_use]
    pub fn method(&self) -> Method {
        self.method
    }

    /// The request as bytes on the wire.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\nHost: {}\r\n", self.method.as_str(), self.target, self.host);
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !self.body.is_empty() || self.method.always_states_length() {
            head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// RFC 9110 §5.6.2 `tchar`.
pub(super) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl core::error::Error for RequestError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_and_post_encode_as_rfc9112_says() {
        let get = Request::get("db.example:8443", "/rows?x=1").unwrap().header("Accept", " text/plain ").unwrap();
        assert_eq!(get.encode(), b"GET /rows?x=1 HTTP/1.1\r\nHost: db.example:8443\r\nAccept: text/plain\r\n\r\n");
        let post = Request::post("h", "/", b"abc".to_vec()).unwrap();
        assert_eq!(post.encode(), b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc");
        let empty_put = Request::new(Method::Put, "h", "/x").unwrap();
        assert_eq!(empty_put.encode(), b"PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
    }

    #[test]
    fn nothing_can_inject_a_line() {
        assert_eq!(Request::get("h", "/a\r\nX: y"), Err(RequestError::InvalidTarget));
        assert_eq!(Request::get("h", "/a b"), Err(RequestError::InvalidTarget));
        assert_eq!(Request::get("h", "a"), Err(RequestError::InvalidTarget));
        assert_eq!(Request::get("h\r\n", "/"), Err(RequestError::InvalidHost));
        assert_eq!(Request::get("", "/"), Err(RequestError::InvalidHost));
        assert_eq!(Request::get("a@b", "/"), Err(RequestError::InvalidHost));
        let r = || Request::get("h", "/").unwrap();
        assert_eq!(r().header("X", "a\r\nEvil: 1"), Err(RequestError::InvalidHeaderValue));
        assert_eq!(r().header("X", "a\0"), Err(RequestError::InvalidHeaderValue));
        assert_eq!(r().header("X Y", "1"), Err(RequestError::InvalidHeaderName));
        assert_eq!(r().header("X:", "1"), Err(RequestError::InvalidHeaderName));
        assert_eq!(r().header("", "1"), Err(RequestError::InvalidHeaderName));
        assert_eq!(r().header("content-LENGTH", "1"), Err(RequestError::ReservedHeader("content-LENGTH".into())));
        assert_eq!(r().header("Host", "x"), Err(RequestError::ReservedHeader("Host".into())));
    }
}
