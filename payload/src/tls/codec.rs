//! Reading and writing RFC 8446 §3 structures: big-endian integers and length-prefixed vectors.
//!
//! Every read is checked against what is left; a short or overlong structure is
//! [`TlsError::Protocol`], never a panic.

use alloc::vec::Vec;

use super::error::{MALFORMED, TlsError};

/// Reads TLS structures from a byte slice.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8], TlsError> {
        if len > self.rest.len() {
            return Err(MALFORMED);
        }
        let (head, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, TlsError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, TlsError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u24(&mut self) -> Result<usize, TlsError> {
        let b = self.take(3)?;
        Ok(usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
    }

    /// A vector with a one-byte length.
    pub(crate) fn vec8(&mut self) -> Result<&'a [u8], TlsError> {
        let len = self.u8()?;
        self.take(usize::from(len))
    }

    /// A vector with a two-byte length.
    pub(crate) fn vec16(&mut self) -> Result<&'a [u8], TlsError> {
        let len = self.u16()?;
        self.take(usize::from(len))
    }

    /// A vector with a three-byte length.
    pub(crate) fn vec24(&mut self) -> Result<&'a [u8], TlsError> {
        let len = self.u24()?;
        self.take(len)
    }

    /// Succeeds only if everything was read.
    pub(crate) fn finish(&self) -> Result<(), TlsError> {
        if self.rest.is_empty() { Ok(()) } else { Err(MALFORMED) }
    }
}

/// Appends `body` behind a big-endian length of `width` bytes (1, 2 or 3). Every vector this
/// client writes is far below its limit; one that is not is refused, never cut.
pub(crate) fn put_vec(out: &mut Vec<u8>, width: usize, body: impl FnOnce(&mut Vec<u8>)) -> Result<(), TlsError> {
    let start = out.len();
    out.extend_from_slice(&[0; 3][..width]);
    body(out);
    let len = out.len() - start - width;
    if len >= 1 << (8 * width) {
        out.truncate(start);
        return Err(TlsError::Internal("a message field too long to encode"));
    }
    let be = (len as u32).to_be_bytes();
    out[start..start + width].copy_from_slice(&be[4 - width..]);
    Ok(())
}

pub(crate) fn put_u16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_overlong_input_is_malformed() {
        let mut r = Reader::new(&[0, 3, 1, 2]);
        assert_eq!(r.vec16(), Err(MALFORMED));
        let mut r = Reader::new(&[2, 1, 2, 9]);
        assert_eq!(r.vec8().unwrap(), &[1, 2]);
        assert_eq!(r.finish(), Err(MALFORMED));
        assert_eq!(Reader::new(&[0, 0]).u24(), Err(MALFORMED));
        assert_eq!(Reader::new(&[1, 0, 0]).u24().unwrap(), 65_536);
    }

    #[test]
    fn vectors_carry_their_length() {
        let mut out = Vec::new();
        put_vec(&mut out, 3, |o| o.extend_from_slice(b"abc")).unwrap();
        put_vec(&mut out, 1, |o| o.extend_from_slice(&[0; 300])).unwrap_err();
        assert_eq!(out, [0, 0, 3, b'a', b'b', b'c']);
    }
}
