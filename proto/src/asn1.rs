//! The little DER the guest reads and writes: a reader that walks tag-length-value headers and a
//! writer for one element, so the runtime can check its credential and make its request without
//! the generic `der`/`x509-cert` decoders in the ROM (issue 17: they were its largest crates after
//! the runtime itself). The guest reads only certificates its issuer signed — the signature is
//! checked over the exact bytes walked here — and the host-hostile rules still hold: every
//! length is checked against what is left, nothing is indexed out of bounds, and only DER (the
//! shortest length form, single-byte tags) is accepted.
//!
//! The issuer keeps the full RustCrypto decoders (`csr::verify`): what the guest writes here is
//! read back there, by an independent implementation, in the tests.

use alloc::vec::Vec;

/// Universal tags the guest meets.
pub mod tag {
    pub const BOOLEAN: u8 = 0x01;
    pub const INTEGER: u8 = 0x02;
    pub const BIT_STRING: u8 = 0x03;
    pub const OCTET_STRING: u8 = 0x04;
    pub const OID: u8 = 0x06;
    pub const UTC_TIME: u8 = 0x17;
    pub const GENERALIZED_TIME: u8 = 0x18;
    pub const SEQUENCE: u8 = 0x30;
    pub const SET: u8 = 0x31;
}

/// The bytes are not the DER expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DerError;

impl core::fmt::Display for DerError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("not the DER expected")
    }
}

/// One element: its tag, its contents, and its whole encoding (header and contents).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Element<'a> {
    pub tag: u8,
    pub contents: &'a [u8],
    pub encoded: &'a [u8],
}

/// Walks a run of DER elements, one header at a time.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// The tag of the next element, if there is one.
    pub fn peek(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next element, whatever its tag.
    pub fn element(&mut self) -> Result<Element<'a>, DerError> {
        let (&tag, after_tag) = self.rest.split_first().ok_or(DerError)?;
        if tag & 0x1f == 0x1f {
            return Err(DerError); // multi-byte tags: none in what the guest reads
        }
        let (length, header) = length(after_tag)?;
        let end = (1 + header).checked_add(length).ok_or(DerError)?;
        let encoded = self.rest.get(..end).ok_or(DerError)?;
        self.rest = &self.rest[end..];
        Ok(Element { tag, contents: &encoded[1 + header..], encoded })
    }

    /// The next element, which must have `tag`.
    pub fn expect(&mut self, tag: u8) -> Result<Element<'a>, DerError> {
        let element = self.element()?;
        if element.tag == tag { Ok(element) } else { Err(DerError) }
    }

    /// The next element if it has `tag` (an OPTIONAL or DEFAULT field), else nothing read.
    pub fn optional(&mut self, tag: u8) -> Result<Option<Element<'a>>, DerError> {
        if self.peek() == Some(tag) { self.expect(tag).map(Some) } else { Ok(None) }
    }

    /// A `BOOLEAN DEFAULT FALSE` (an extension's `critical`, basicConstraints' `cA`): false
    /// when absent; when present, one byte 0x00 or 0xFF.
    pub fn optional_boolean(&mut self) -> Result<bool, DerError> {
        match self.optional(tag::BOOLEAN)? {
            None | Some(Element { contents: [0x00], .. }) => Ok(false),
            Some(Element { contents: [0xff], .. }) => Ok(true),
            Some(_) => Err(DerError),
        }
    }

    /// Nothing may follow.
    pub fn finish(self) -> Result<(), DerError> {
        if self.rest.is_empty() { Ok(()) } else { Err(DerError) }
    }
}

/// The contents of the single element `bytes` holds, which must have `tag`.
pub fn only(bytes: &[u8], tag: u8) -> Result<Element<'_>, DerError> {
    let mut reader = Reader::new(bytes);
    let element = reader.expect(tag)?;
    reader.finish()?;
    Ok(element)
}

/// A definite length in its shortest form (X.690 §10.1), and the bytes it took.
fn length(bytes: &[u8]) -> Result<(usize, usize), DerError> {
    let (&first, rest) = bytes.split_first().ok_or(DerError)?;
    if first < 0x80 {
        return Ok((first as usize, 1));
    }
    let count = (first & 0x7f) as usize;
    // 0x80 is BER's indefinite length; more than 3 bytes is more than any frame.
    if count == 0 || count > 3 {
        return Err(DerError);
    }
    let digits = rest.get(..count).ok_or(DerError)?;
    if digits[0] == 0 {
        return Err(DerError);
    }
    let value = digits.iter().fold(0usize, |value, &digit| (value << 8) | digit as usize);
    if value < 0x80 {
        return Err(DerError);
    }
    Ok((value, 1 + count))
}

/// Appends one element: `tag`, the shortest length of `contents`, `contents`.
pub fn write(out: &mut Vec<u8>, tag: u8, contents: &[u8]) {
    out.push(tag);
    let length = contents.len();
    let digits = length.to_be_bytes();
    let significant = digits.iter().position(|&d| d != 0).unwrap_or(digits.len());
    if length < 0x80 {
        out.push(length as u8);
    } else {
        out.push(0x80 | (digits.len() - significant) as u8);
        out.extend_from_slice(&digits[significant..]);
    }
    out.extend_from_slice(contents);
}

/// One element as a new vector.
pub fn element(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(contents.len() + 4);
    write(&mut out, tag, contents);
    out
}

/// `time` (UTCTime `YYMMDDHHMMSSZ` or GeneralizedTime `YYYYMMDDHHMMSSZ`, RFC 5280 §4.1.2.5)
/// as seconds since the Unix epoch.
pub fn unix_seconds(time: Element<'_>) -> Result<u64, DerError> {
    let digits = |range: core::ops::Range<usize>| -> Result<u64, DerError> {
        let text = time.contents.get(range).ok_or(DerError)?;
        text.iter().try_fold(0u64, |value, &c| {
            if c.is_ascii_digit() { Ok(value * 10 + u64::from(c - b'0')) } else { Err(DerError) }
        })
    };
    let (year, at) = match (time.tag, time.contents.len()) {
        // RFC 5280: UTCTime's YY ≥ 50 is 19YY, < 50 is 20YY.
        (tag::UTC_TIME, 13) => (digits(0..2).map(|y| if y >= 50 { 1900 + y } else { 2000 + y })?, 2),
        (tag::GENERALIZED_TIME, 15) => (digits(0..4)?, 4),
        _ => return Err(DerError),
    };
    if time.contents.last() != Some(&b'Z') {
        return Err(DerError);
    }
    let (month, day) = (digits(at..at + 2)?, digits(at + 2..at + 4)?);
    let (hour, minute, second) = (digits(at + 4..at + 6)?, digits(at + 6..at + 8)?, digits(at + 8..at + 10)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 59 || year < 1970
    {
        return Err(DerError);
    }
    Ok(days_since_epoch(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Days from 1970-01-01 to the (proleptic Gregorian) date, for years from 1970.
fn days_since_epoch(year: u64, month: u64, day: u64) -> u64 {
    // Counting years from March, so February's leap day ends the year.
    let (y, m) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let era_days = y * 365 + y / 4 - y / 100 + y / 400;
    let day_of_year = (153 * m + 2) / 5 + day - 1;
    // 719_468: the same count for 1970-01-01.
    era_days + day_of_year - 719_468
}

/// Longest DER `Ecdsa-Sig-Value` of a P-384 signature: two 49-byte INTEGERs and headers.
const MAX_P384_SIGNATURE_DER: usize = 2 + 2 * (2 + 49);

/// A P-384 ECDSA signature as DER `Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }`
/// (RFC 5480 §2.2, SEC 1): what X.509, PKCS#10 and TLS carry. In a fixed buffer, no heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EcdsaP384Der {
    bytes: [u8; MAX_P384_SIGNATURE_DER],
    len: usize,
}

impl EcdsaP384Der {
    /// The DER of the signature `r ‖ s` (48 bytes each, big-endian).
    pub fn new(r_s: &[u8; 96]) -> Self {
        let mut out = Self { bytes: [0; MAX_P384_SIGNATURE_DER], len: 2 };
        out.bytes[0] = tag::SEQUENCE;
        for half in [&r_s[..48], &r_s[48..]] {
            // The shortest two's-complement form of an unsigned number: no leading zero bytes,
            // then one zero byte back if the top bit is set (and a zero for zero itself).
            let start = half.iter().position(|&b| b != 0).unwrap_or(47);
            let pad = usize::from(half[start] & 0x80 != 0);
            let length = 48 - start + pad;
            out.bytes[out.len] = tag::INTEGER;
            out.bytes[out.len + 1] = length as u8;
            out.bytes[out.len + 2 + pad..out.len + 2 + length].copy_from_slice(&half[start..]);
            out.len += 2 + length;
        }
        out.bytes[1] = (out.len - 2) as u8;
        out
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The `r ‖ s` (48 bytes each) of a DER P-384 `Ecdsa-Sig-Value` ([`ecdsa_from_der`]).
pub fn ecdsa_p384_from_der(der: &[u8]) -> Result<[u8; 96], DerError> {
    let mut r_s = [0u8; 96];
    ecdsa_from_der(der, &mut r_s)?;
    Ok(r_s)
}

/// The P-384 signature a DER `Ecdsa-Sig-Value` holds ([`ecdsa_p384_from_der`]), its `r` and
/// `s` checked against the group order by `p384` (`Signature::from_slice`): what the runtime
/// and the workload's TLS and WPT code verify and convert.
pub fn ecdsa_p384_signature(der: &[u8]) -> Result<p384::ecdsa::Signature, DerError> {
    p384::ecdsa::Signature::from_slice(&ecdsa_p384_from_der(der)?).map_err(|_| DerError)
}

/// Writes into `r_s` (two big-endian halves, each the curve's scalar length: 64 bytes for
/// P-256, 96 for P-384) the `r` and `s` of a DER `Ecdsa-Sig-Value`: exactly two non-negative
/// INTEGERs in their shortest form, each fitting its half. Range checks against the group order
/// are the signature type's (`Signature::from_slice` of the curve's crate).
pub fn ecdsa_from_der(der: &[u8], r_s: &mut [u8]) -> Result<(), DerError> {
    if r_s.is_empty() || !r_s.len().is_multiple_of(2) {
        return Err(DerError);
    }
    r_s.fill(0);
    let half_len = r_s.len() / 2;
    let mut halves = Reader::new(only(der, tag::SEQUENCE)?.contents);
    for half in r_s.chunks_exact_mut(half_len) {
        let integer = halves.expect(tag::INTEGER)?.contents;
        let digits = match integer {
            [] => return Err(DerError),
            [first, ..] if first & 0x80 != 0 => return Err(DerError), // negative
            [0, next, ..] if next & 0x80 == 0 => return Err(DerError), // a needless zero
            [0, rest @ ..] if !rest.is_empty() => rest,
            all => all,
        };
        let at = half.len().checked_sub(digits.len()).ok_or(DerError)?;
        half[at..].copy_from_slice(digits);
    }
    halves.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_read_only_in_their_shortest_form() {
        assert_eq!(Reader::new(&[0x04, 0x01, 0xaa]).element().unwrap().contents, [0xaa]);
        let mut long = alloc::vec![0x04, 0x81, 0x80];
        long.extend([0u8; 0x80]);
        assert_eq!(Reader::new(&long).element().unwrap().contents.len(), 0x80);
        for bad in [
            &[0x04, 0x81, 0x7f][..],       // long form for a short length
            &[0x04, 0x82, 0x00, 0x80][..], // leading zero
            &[0x04, 0x80][..],             // indefinite
            &[0x04, 0x02, 0xaa][..],       // longer than what is left
            &[0x1f, 0x01, 0x00][..],       // multi-byte tag
            &[0x04][..],
            &[][..],
        ] {
            assert_eq!(Reader::new(bad).element(), Err(DerError), "{bad:02x?}");
        }
    }

    #[test]
    fn what_is_written_reads_back() {
        for size in [0usize, 1, 0x7f, 0x80, 0xff, 0x100, 0x1_0000] {
            let contents = alloc::vec![0x5a; size];
            let encoded = element(tag::OCTET_STRING, &contents);
            let read = only(&encoded, tag::OCTET_STRING).unwrap();
            assert_eq!((read.contents, read.encoded), (&contents[..], &encoded[..]), "{size}");
        }
        assert_eq!(only(&[0x04, 0x00, 0x00], tag::OCTET_STRING), Err(DerError), "trailing bytes");
        assert_eq!(only(&[0x04, 0x00], tag::INTEGER), Err(DerError), "wrong tag");
    }

    /// The signature forms agree with the `ecdsa` crate's DER, both ways, and the reader
    /// refuses every non-DER variant of one.
    #[test]
    fn ecdsa_signatures_are_ecdsa_crates_der() {
        use p384::ecdsa::signature::Signer;
        for seed in 1..=64u8 {
            let key = p384::ecdsa::SigningKey::from_slice(&[seed; 48]).unwrap();
            let signature: p384::ecdsa::Signature = key.sign(&[seed; 7]);
            let r_s: [u8; 96] = signature.to_bytes().into();
            let ours = EcdsaP384Der::new(&r_s);
            assert_eq!(ours.as_bytes(), signature.to_der().as_bytes(), "seed {seed}");
            assert_eq!(ecdsa_p384_from_der(ours.as_bytes()), Ok(r_s), "seed {seed}");
        }
        let mut small = [0u8; 96];
        small[47] = 0x80; // r = 0x80 needs its zero byte; s = 0 is one zero byte
        let der = EcdsaP384Der::new(&small);
        assert_eq!(der.as_bytes(), [0x30, 0x07, 0x02, 0x02, 0x00, 0x80, 0x02, 0x01, 0x00]);
        assert_eq!(ecdsa_p384_from_der(der.as_bytes()), Ok(small));
        for bad in [
            &[0x30, 0x06, 0x02, 0x01, 0x80, 0x02, 0x01, 0x01][..], // negative r
            &[0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01][..], // needless zero
            &[0x30, 0x05, 0x02, 0x00, 0x02, 0x01, 0x01][..],       // empty INTEGER
            &[0x30, 0x03, 0x02, 0x01, 0x01][..],                   // one INTEGER
            &[0x30, 0x09, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01][..],
            &[0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01][..],
        ] {
            assert_eq!(ecdsa_p384_from_der(bad), Err(DerError), "{bad:02x?}");
        }
        let mut r_s = [0u8; 64]; // P-256's halves: a 48-byte r does not fit
        let der = EcdsaP384Der::new(&[0x11; 96]);
        assert_eq!(ecdsa_from_der(der.as_bytes(), &mut r_s), Err(DerError));
        assert_eq!(ecdsa_from_der(&[0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x07], &mut r_s), Ok(()));
        assert_eq!((r_s[31], r_s[63], r_s[..31].iter().all(|&b| b == 0)), (5, 7, true));
        let mut long = alloc::vec![0x30, 0x36, 0x02, 0x31, 0x01];
        long.extend([0u8; 48]);
        long.extend([0x02, 0x01, 0x01]);
        assert_eq!(ecdsa_p384_from_der(&long), Err(DerError), "r above 2^384");
    }

    #[test]
    fn times_are_unix_seconds() {
        let at = |tag, text: &str| unix_seconds(Element { tag, contents: text.as_bytes(), encoded: &[] });
        assert_eq!(at(tag::UTC_TIME, "700101000000Z"), Ok(0));
        assert_eq!(at(tag::UTC_TIME, "491231235959Z"), Ok(2_524_607_999));
        assert_eq!(at(tag::GENERALIZED_TIME, "20000229120000Z"), Ok(951_825_600));
        assert_eq!(at(tag::GENERALIZED_TIME, "20261207000000Z"), Ok(1_796_601_600));
        for bad in ["261307000000Z", "261207000000", "2612070000Z", "26120700000aZ"] {
            assert_eq!(at(tag::UTC_TIME, bad), Err(DerError), "{bad}");
        }
        assert_eq!(at(tag::OCTET_STRING, "700101000000Z"), Err(DerError));
    }
}
