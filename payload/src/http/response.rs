//! Reading one HTTP/1.1 response (RFC 9112 §4–§7) from untrusted bytes, within [`Limits`].

use alloc::string::String;
use alloc::vec::Vec;

use super::request::is_tchar;
use super::{HttpError, Limits, Stream};

/// Bytes asked of the stream per read.
const READ_CHUNK: usize = 4096;
/// Interim (1xx) responses skipped before the final one; more is a misbehaving server.
const MAX_INTERIM: usize = 8;

/// A response: status, header fields (names as sent, values without surrounding whitespace) and
/// the body with any chunked framing removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code (100–599).
    pub status: u16,
    /// The reason phrase, possibly empty.
    pub reason: String,
    /// The header fields, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of the field `name` (case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// How the body is delimited (RFC 9112 §6.3).
#[derive(Debug, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(usize),
    Chunked,
    UntilClose,
}

type Fields = Vec<(String, String)>;

/// Reads the final response to a request (`head` if it was HEAD: no body follows).
pub(super) fn read<S: Stream>(stream: &mut S, head: bool, limits: &Limits) -> Result<Response, HttpError<S::Error>> {
    let mut reader = Reader { stream, buf: Vec::new(), pos: 0 };
    for _ in 0..=MAX_INTERIM {
        let mut budget = limits.max_head;
        let (status, reason) = status_line(&reader.line(&mut budget)?)?;
        let headers = reader.fields(&mut budget, limits.max_headers)?;
        // RFC 9110 §15.2: 1xx are interim (101 would switch protocols, which we never ask for).
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        let body = match framing(status, head, &headers, limits)? {
            Framing::Empty => Vec::new(),
            Framing::Length(len) => reader.exact(len)?,
            Framing::Chunked => reader.chunked(limits)?,
            Framing::UntilClose => reader.until_close(limits.max_body)?,
        };
        return Ok(Response { status, reason, headers, body });
    }
    Err(HttpError::Malformed("too many interim (1xx) responses"))
}

/// RFC 9112 §4: `HTTP/1.x SP 3DIGIT SP reason`. A missing reason (and its space) is accepted.
fn status_line<E>(line: &[u8]) -> Result<(u16, String), HttpError<E>> {
    let malformed = || HttpError::Malformed("the status line is not `HTTP/1.x NNN reason`");
    let rest = line.strip_prefix(b"HTTP/1.").ok_or_else(malformed)?;
    let (minor, rest) = rest.split_first().ok_or_else(malformed)?;
    let (code, reason) = match rest {
        [b' ', a, b, c] => ([*a, *b, *c], &[][..]),
        [b' ', a, b, c, b' ', reason @ ..] => ([*a, *b, *c], reason),
        _ => return Err(malformed()),
    };
    if !minor.is_ascii_digit() || !code.iter().all(u8::is_ascii_digit) || code[0] < b'1' || code[0] > b'5' {
        return Err(malformed());
    }
    if !reason.iter().all(|&b| b == b'\t' || b >= b' ' && b != 0x7f) {
        return Err(HttpError::Malformed("the reason phrase holds control characters"));
    }
    let status = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    Ok((status, String::from_utf8_lossy(reason).into_owned()))
}

/// RFC 9112 §5: `name ":" OWS value OWS`.
fn field<E>(line: &[u8]) -> Result<(String, String), HttpError<E>> {
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Err(HttpError::Malformed("obsolete line folding in a header field (RFC 9112 §5.2)"));
    }
    let colon = line.iter().position(|&b| b == b':').ok_or(HttpError::Malformed("a header line has no colon"))?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(HttpError::Malformed("a header field name is not a token (RFC 9112 §5.1)"));
    }
    let value = value.trim_ascii();
    if value.iter().any(|&b| b != b'\t' && (b < b' ' || b == 0x7f)) {
        return Err(HttpError::Malformed("a header field value holds control characters (RFC 9110 §5.5)"));
    }
    let name = String::from_utf8_lossy(name).into_owned();
    Ok((name, String::from_utf8_lossy(value).into_owned()))
}

/// RFC 9112 §6.3, in its order.
fn framing<E>(status: u16, head: bool, headers: &Fields, limits: &Limits) -> Result<Framing, HttpError<E>> {
    if head || (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(Framing::Empty);
    }
    if values(headers, "transfer-encoding").next().is_some() {
        // Only `chunked`, once: any other coding (gzip, ...) is not decoded here.
        let mut codings = values(headers, "transfer-encoding");
        let only_chunked =
            codings.next().is_some_and(|c| c.eq_ignore_ascii_case("chunked")) && codings.next().is_none();
        return if only_chunked { Ok(Framing::Chunked) } else { Err(HttpError::UnsupportedTransferCoding) };
    }
    let mut length = None;
    for value in values(headers, "content-length") {
        let parsed = decimal(value).ok_or(HttpError::Malformed("Content-Length is not a decimal number"))?;
        if length.is_some_and(|l| l != parsed) {
            return Err(HttpError::Malformed("conflicting Content-Length values (RFC 9110 §8.6)"));
        }
        length = Some(parsed);
    }
    match length {
        Some(len) if len > limits.max_body => Err(HttpError::BodyTooLarge),
        Some(len) => Ok(Framing::Length(len)),
        None => Ok(Framing::UntilClose),
    }
}

/// The comma-separated values of every `name` field, in order (RFC 9110 §5.3).
fn values<'a>(headers: &'a Fields, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    let fields = headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name));
    fields.flat_map(|(_, v)| v.split(',')).map(str::trim)
}

fn decimal(s: &str) -> Option<usize> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.bytes().try_fold(0usize, |n, d| n.checked_mul(10)?.checked_add(usize::from(d - b'0')))
}

/// RFC 9112 §7.1: `chunk-size [ chunk-ext ] CRLF`; the size is hex.
fn chunk_size<E>(line: &[u8]) -> Result<usize, HttpError<E>> {
    let malformed = || HttpError::Malformed("a chunk size is not a hexadecimal number");
    let end = line.iter().position(|&b| b == b';').unwrap_or(line.len());
    let digits = line[..end].trim_ascii();
    if digits.is_empty() || digits.len() > 16 {
        return Err(malformed());
    }
    digits.iter().try_fold(0usize, |n, &d| {
        let digit = char::from(d).to_digit(16).ok_or_else(malformed)?;
        n.checked_mul(16).and_then(|n| n.checked_add(digit as usize)).ok_or(HttpError::BodyTooLarge)
    })
}

/// Buffered reading over the stream, every size bounded by its caller.
struct Reader<'s, S> {
    stream: &'s mut S,
    buf: Vec<u8>,
    pos: usize,
}

impl<S: Stream> Reader<'_, S> {
    /// Reads more bytes; `false` at the end of the stream.
    fn fill(&mut self) -> Result<bool, HttpError<S::Error>> {
        self.buf.drain(..self.pos);
        self.pos = 0;
        let filled = self.buf.len();
        self.buf.resize(filled + READ_CHUNK, 0);
        let read = self.stream.read(&mut self.buf[filled..]);
        self.buf.truncate(filled + *read.as_ref().unwrap_or(&0));
        Ok(read.map_err(HttpError::Stream)? > 0)
    }

    /// One line without its CRLF (a bare LF also ends it, RFC 9112 §2.2), charged to `budget`.
    fn line(&mut self, budget: &mut usize) -> Result<Vec<u8>, HttpError<S::Error>> {
        loop {
            let pending = &self.buf[self.pos..];
            if let Some(lf) = pending.iter().position(|&b| b == b'\n') {
                *budget = budget.checked_sub(lf + 1).ok_or(HttpError::HeadTooLarge)?;
                let line = pending[..lf].strip_suffix(b"\r").unwrap_or(&pending[..lf]).to_vec();
                self.pos += lf + 1;
                return Ok(line);
            }
            if pending.len() > *budget {
                return Err(HttpError::HeadTooLarge);
            }
            if !self.fill()? {
                return Err(HttpError::Incomplete);
            }
        }
    }

    /// Header fields up to the empty line.
    fn fields(&mut self, budget: &mut usize, max: usize) -> Result<Fields, HttpError<S::Error>> {
        let mut fields = Vec::new();
        loop {
            let line = self.line(budget)?;
            if line.is_empty() {
                return Ok(fields);
            }
            if fields.len() == max {
                return Err(HttpError::HeadTooLarge);
            }
            fields.push(field(&line)?);
        }
    }

    /// Exactly `len` bytes (already checked against the body limit).
    fn exact(&mut self, len: usize) -> Result<Vec<u8>, HttpError<S::Error>> {
        let mut out = Vec::new();
        self.append(len, &mut out)?;
        Ok(out)
    }

    fn append(&mut self, mut len: usize, out: &mut Vec<u8>) -> Result<(), HttpError<S::Error>> {
        while len > 0 {
            if self.pos == self.buf.len() && !self.fill()? {
                return Err(HttpError::Incomplete);
            }
            let take = len.min(self.buf.len() - self.pos);
            out.extend_from_slice(&self.buf[self.pos..self.pos + take]);
            self.pos += take;
            len -= take;
        }
        Ok(())
    }

    /// A chunked body (RFC 9112 §7.1): chunks, the last chunk, trailer fields (read, bounded,
    /// and dropped: nothing here uses them).
    fn chunked(&mut self, limits: &Limits) -> Result<Vec<u8>, HttpError<S::Error>> {
        let mut body = Vec::new();
        loop {
            let size = chunk_size(&self.line(&mut limits.max_head.clone())?)?;
            if size == 0 {
                break;
            }
            if size > limits.max_body - body.len() {
                return Err(HttpError::BodyTooLarge);
            }
            self.append(size, &mut body)?;
            self.end_of_chunk()?;
        }
        self.fields(&mut limits.max_head.clone(), limits.max_headers)?;
        Ok(body)
    }

    /// The CRLF (or bare LF) that must follow a chunk's data.
    fn end_of_chunk(&mut self) -> Result<(), HttpError<S::Error>> {
        let mut byte = self.byte()?;
        if byte == b'\r' {
            byte = self.byte()?;
        }
        if byte == b'\n' { Ok(()) } else { Err(HttpError::Malformed("a chunk is longer than its size")) }
    }

    fn byte(&mut self) -> Result<u8, HttpError<S::Error>> {
        if self.pos == self.buf.len() && !self.fill()? {
            return Err(HttpError::Incomplete);
        }
        self.pos += 1;
        Ok(self.buf[self.pos - 1])
    }

    /// Everything until the stream's clean end.
    fn until_close(&mut self, max: usize) -> Result<Vec<u8>, HttpError<S::Error>> {
        loop {
            if self.buf.len() - self.pos > max {
                return Err(HttpError::BodyTooLarge);
            }
            if !self.fill()? {
                return Ok(self.buf.split_off(self.pos));
            }
        }
    }
}
