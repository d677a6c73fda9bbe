//! The response parser against hand-made responses, delivered whole and byte by byte.

use alloc::string::String;
use alloc::vec::Vec;

use super::{HttpError, Limits, Request, Response, Stream, send};

/// An in-memory server: answers with `response`, `step` bytes per read; records the request.
struct Canned {
    response: Vec<u8>,
    pos: usize,
    step: usize,
    written: Vec<u8>,
}

impl Stream for Canned {
    type Error = String;

    fn write_all(&mut self, buf: &[u8]) -> Result<(), String> {
        self.written.extend_from_slice(buf);
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<usize, String> {
        let n = self.step.min(buf.len()).min(self.response.len() - self.pos);
        buf[..n].copy_from_slice(&self.response[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn exchange(response: &[u8], limits: &Limits) -> Result<Response, HttpError<String>> {
    let request = Request::get("h", "/").unwrap();
    let whole = send(
        &mut Canned { response: response.to_vec(), pos: 0, step: usize::MAX, written: Vec::new() },
        &request,
        limits,
    );
    let bytewise =
        send(&mut Canned { response: response.to_vec(), pos: 0, step: 1, written: Vec::new() }, &request, limits);
    assert_eq!(whole, bytewise, "the result must not depend on how bytes arrive");
    whole
}

fn ok(response: &[u8]) -> Response {
    exchange(response, &Limits::default()).unwrap()
}

fn err(response: &[u8]) -> HttpError<String> {
    exchange(response, &Limits::default()).unwrap_err()
}

#[test]
fn content_length_body() {
    let r = ok(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  b \r\n\r\nhelloEXTRA");
    assert_eq!((r.status, r.reason.as_str(), r.body.as_slice()), (200, "OK", &b"hello"[..]));
    assert_eq!(r.header("x-a"), Some("b"));
    assert_eq!(r.header("content-length"), Some("5"));
}

#[test]
fn chunked_body_with_extensions_and_trailers() {
    let r = ok(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n");
    assert_eq!(r.body, b"hello world");
    let r = ok(b"HTTP/1.1 200 OK\nTransfer-Encoding: Chunked\n\nA\n0123456789\n0\n\n");
    assert_eq!(r.body, b"0123456789");
}

#[test]
fn close_delimited_and_empty_bodies() {
    assert_eq!(ok(b"HTTP/1.0 200 ok\r\nContent-type: text/plain\r\n\r\nall of it").body, b"all of it");
    assert_eq!(ok(b"HTTP/1.1 204 No Content\r\n\r\n").body, b"");
    assert_eq!(ok(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n").body, b"");
    assert_eq!(ok(b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n").reason, "");
}

#[test]
fn interim_responses_are_skipped() {
    let r = ok(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok");
    assert_eq!((r.status, r.body.as_slice()), (201, &b"ok"[..]));
}

#[test]
fn head_responses_have_no_body() {
    let request = Request::new(super::Method::Head, "h", "/").unwrap();
    let mut server = Canned {
        response: b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n".to_vec(),
        pos: 0,
        step: 3,
        written: Vec::new(),
    };
    let r = send(&mut server, &request, &Limits::default()).unwrap();
    assert_eq!((r.status, r.body.len()), (200, 0));
    assert_eq!(server.written, b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n");
}

#[test]
fn malformed_responses_are_refused() {
    let cases: [&[u8]; 14] = [
        b"HTTP/2 200 OK\r\n\r\n",
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 600 Nope\r\n\r\n",
        b"HTTP/1.1 2x0 OK\r\n\r\n",
        b"HTTP/1.1  200 OK\r\n\r\n",
        b"HTTP/1.1 200 O\x01K\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX : y\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: y\r\n folded\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
    ];
    for case in cases {
        assert!(matches!(err(case), HttpError::Malformed(_)), "{:?}", String::from_utf8_lossy(case));
    }
}

#[test]
fn short_responses_are_incomplete_never_shorter() {
    assert_eq!(err(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"), HttpError::Incomplete);
    assert_eq!(err(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"), HttpError::Incomplete);
    assert_eq!(err(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"), HttpError::Incomplete);
    assert_eq!(err(b"HTTP/1.1 200 OK\r\nContent-"), HttpError::Incomplete);
    assert_eq!(err(b""), HttpError::Incomplete);
}

#[test]
fn limits_hold_before_allocation() {
    let tight = Limits { max_head: 64, max_headers: 2, max_body: 8 };
    let mut long_head = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
    long_head.extend(core::iter::repeat_n(b'a', 100));
    assert_eq!(exchange(&long_head, &tight), Err(HttpError::HeadTooLarge));
    let many = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert_eq!(exchange(many, &tight), Err(HttpError::HeadTooLarge));
    let big = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n123456789";
    assert_eq!(exchange(big, &tight), Err(HttpError::BodyTooLarge));
    let huge = b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n";
    assert!(matches!(exchange(huge, &tight), Err(HttpError::Malformed(_))));
    let chunks = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n12345\r\n5\r\n67890\r\n0\r\n\r\n";
    assert_eq!(exchange(chunks, &tight), Err(HttpError::BodyTooLarge));
    let endless_chunk = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n";
    assert!(matches!(exchange(endless_chunk, &tight), Err(HttpError::Malformed(_))));
    assert_eq!(exchange(b"HTTP/1.1 200 OK\r\n\r\n123456789", &tight), Err(HttpError::BodyTooLarge));
}

#[test]
fn other_transfer_codings_are_refused() {
    assert_eq!(
        err(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
        HttpError::UnsupportedTransferCoding
    );
    assert_eq!(err(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"), HttpError::UnsupportedTransferCoding);
}

#[test]
fn stream_errors_pass_through() {
    struct Broken;
    impl Stream for Broken {
        type Error = String;
        fn write_all(&mut self, _: &[u8]) -> Result<(), String> {
            Ok(())
        }
        fn read(&mut self, _: &mut [u8]) -> Result<usize, String> {
            Err("reset".into())
        }
    }
    let request = Request::get("h", "/").unwrap();
    assert_eq!(send(&mut Broken, &request, &Limits::default()), Err(HttpError::Stream("reset".into())));
}
