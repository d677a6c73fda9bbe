//! Intel DCAP quotes for TDX, versions 4 and 5, with ECDSA P-256 attestation keys (Intel
//! "TDX DCAP Quoting Library API", appendix "Quote Format": "Quote Header", "TD Quote Body",
//! "Quote Body Descriptor" (v5), "ECDSA 256-bit Quote Signature Data Structure", "QE
//! Certification Data", "QE Report Certification Data").
//!
//! ```text
//! v4: header[48] | TD quote body 1.0 [584]                          | u32 sig_len | signature data
//! v5: header[48] | u16 body type | u32 body size | body [584 or 648] | u32 sig_len | signature data
//!                  (2 = TD report 1.0, 3 = TD report 1.5)
//! signed by the attestation key: everything before sig_len
//!
//! header: 0 u16 version | 2 u16 attestation key type (2 = ECDSA P-256) | 4 u32 TEE type
//!         (0x81 = TDX) | 8 [4] reserved | 12 [16] QE vendor id | 28 [20] user data
//!
//! signature data: 0 [64] quote signature r‖s | 64 [64] attestation key x‖y
//!                 | 128 u16 certification data type (6) | 130 u32 size | 134 data:
//!   type 6 (QE report certification data):
//!     0 [384] QE report (SGX report body) | 384 [64] QE report signature r‖s (by the PCK key)
//!     | 448 u16 QE auth data size | 450 QE auth data
//!     | u16 certification data type (5 = PCK certificate chain, PEM) | u32 size | data
//! ```
//!
//! All integers are little-endian. Parsing is strict: every length must match what it
//! encloses exactly, so no byte inside the quote goes unread. Bytes after the quote (some
//! tools hand out fixed-size buffers) are not part of it: [`ParsedQuote::len`] says where it
//! ends.

use core::fmt;

use crate::bytes::{Buf, BufMut};
use crate::tdx::enclave_report::{ENCLAVE_REPORT_SIZE, EnclaveReport};
use crate::tdx::td_report::{TD10_BODY_SIZE, TD15_BODY_SIZE, TdQuoteBody};

pub const HEADER_SIZE: usize = 48;
pub const ATT_KEY_TYPE_ECDSA_P256: u16 = 2;
pub const TEE_TYPE_TDX: u32 = 0x81;
pub const TEE_TYPE_SGX: u32 = 0;
/// The Intel Quoting Enclave's vendor id, 939A7233-F79C-4CA9-940A-0DB3957F0607.
pub const INTEL_QE_VENDOR_ID: [u8; 16] =
    [0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07];
/// v5 body types.
pub const BODY_TYPE_SGX: u16 = 1;
pub const BODY_TYPE_TD10: u16 = 2;
pub const BODY_TYPE_TD15: u16 = 3;
/// Certification data types.
pub const CERT_TYPE_PCK_CHAIN: u16 = 5;
pub const CERT_TYPE_QE_REPORT: u16 = 6;
/// Size of the v5 body descriptor (type + size).
pub const BODY_DESCRIPTOR_SIZE: usize = 6;

/// Header offsets.
pub mod header_offset {
    pub const VERSION: usize = 0;
    pub const ATT_KEY_TYPE: usize = 2;
    pub const TEE_TYPE: usize = 4;
    pub const RESERVED: usize = 8;
    pub const QE_VENDOR_ID: usize = 12;
    pub const USER_DATA: usize = 28;
}

/// Offsets in the signature data, and in the QE report certification data.
pub mod sig_offset {
    pub const SIGNATURE: usize = 0;
    pub const ATTESTATION_KEY: usize = 64;
    pub const CERT_TYPE: usize = 128;
    pub const CERT_SIZE: usize = 130;
    pub const CERT_DATA: usize = 134;
    pub const QE_REPORT: usize = 0;
    pub const QE_REPORT_SIGNATURE: usize = 384;
    pub const QE_AUTH_SIZE: usize = 448;
    pub const QE_AUTH: usize = 450;
}

mod layout_checks {
    use super::header_offset::*;
    use super::sig_offset::*;
    use super::*;
    const _: () = assert!(ATT_KEY_TYPE == VERSION + 2 && TEE_TYPE == ATT_KEY_TYPE + 2 && RESERVED == TEE_TYPE + 4);
    const _: () =
        assert!(QE_VENDOR_ID == RESERVED + 4 && USER_DATA == QE_VENDOR_ID + 16 && USER_DATA + 20 == HEADER_SIZE);
    const _: () = assert!(ATTESTATION_KEY == SIGNATURE + 64 && CERT_TYPE == ATTESTATION_KEY + 64);
    const _: () = assert!(CERT_SIZE == CERT_TYPE + 2 && CERT_DATA == CERT_SIZE + 4);
    const _: () =
        assert!(QE_REPORT_SIGNATURE == QE_REPORT + ENCLAVE_REPORT_SIZE && QE_AUTH_SIZE == QE_REPORT_SIGNATURE + 64);
    const _: () = assert!(QE_AUTH == QE_AUTH_SIZE + 2);
    // The v4 sample quotes: body at 48, signature data at 636, QE report at 770, its
    // signature at 1154, QE auth data at 1220, PEM chain at 1258 (32 bytes of auth data).
    const _: () = assert!(HEADER_SIZE + TD10_BODY_SIZE + 4 == 636);
    const _: () = assert!(636 + CERT_DATA == 770 && 770 + QE_REPORT_SIGNATURE == 1154 && 770 + QE_AUTH == 1220);
    const _: () = assert!(636 + CERT_DATA + QE_AUTH + 32 + 6 == 1258);
}

/// Why bytes are not a TDX quote this parser reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuoteError {
    /// The input ends before `what` (which needs `need` bytes from offset `at`).
    Truncated {
        what: &'static str,
        at: usize,
        need: usize,
        have: usize,
    },
    UnsupportedVersion(u16),
    UnsupportedAttestationKey(u16),
    NotTdx(u32),
    UnsupportedBodyType(u16),
    BodySize {
        body_type: u16,
        expected: usize,
        actual: u32,
    },
    /// A certification data type other than the one the format requires at that level.
    CertificationDataType {
        expected: u16,
        actual: u16,
    },
    /// A length field does not match what it encloses.
    Length {
        what: &'static str,
        declared: usize,
        actual: usize,
    },
    /// Encoding: the body is TDX 1.5, which version 4 cannot carry; or the output is short.
    Encoding(&'static str),
}

impl fmt::Display for QuoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuoteError::Truncated { what, at, need, have } => {
                write!(f, "the quote is truncated: {what} needs {need} bytes at offset {at}, but only {have} remain")
            }
            QuoteError::UnsupportedVersion(v) => write!(f, "quote version {v} is not supported (supported: 4, 5)"),
            QuoteError::UnsupportedAttestationKey(t) => {
                write!(f, "attestation key type {t} is not supported (only 2, ECDSA P-256)")
            }
            QuoteError::NotTdx(t) => write!(f, "TEE type {t:#x} is not TDX (0x81): this is not a TD quote"),
            QuoteError::UnsupportedBodyType(t) => {
                write!(f, "quote body type {t} is not supported (2: TD report 1.0, 3: TD report 1.5)")
            }
            QuoteError::BodySize { body_type, expected, actual } => {
                write!(f, "quote body type {body_type} must be {expected} bytes, the quote says {actual}")
            }
            QuoteError::CertificationDataType { expected, actual } => {
                write!(f, "certification data type {actual} where the quote format requires {expected}")
            }
            QuoteError::Length { what, declared, actual } => {
                write!(f, "the {what} length says {declared} bytes but it encloses {actual}")
            }
            QuoteError::Encoding(why) => write!(f, "cannot encode the quote: {why}"),
        }
    }
}

impl core::error::Error for QuoteError {}

/// The quote header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuoteHeader {
    pub version: u16,
    pub att_key_type: u16,
    pub tee_type: u32,
    pub reserved: [u8; 4],
    pub qe_vendor_id: [u8; 16],
    pub user_data: [u8; 20],
}

impl QuoteHeader {
    pub fn parse(bytes: &[u8; HEADER_SIZE]) -> Self {
        use header_offset::*;
        let b = Buf(bytes);
        Self {
            version: u16::from_le_bytes(b.get::<VERSION, 2>()),
            att_key_type: u16::from_le_bytes(b.get::<ATT_KEY_TYPE, 2>()),
            tee_type: b.u32::<TEE_TYPE>(),
            reserved: b.get::<RESERVED, 4>(),
            qe_vendor_id: b.get::<QE_VENDOR_ID, 16>(),
            user_data: b.get::<USER_DATA, 20>(),
        }
    }

    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        use header_offset::*;
        let mut out = [0u8; HEADER_SIZE];
        let mut w = BufMut(&mut out);
        w.put::<VERSION, 2>(self.version.to_le_bytes());
        w.put::<ATT_KEY_TYPE, 2>(self.att_key_type.to_le_bytes());
        w.u32::<TEE_TYPE>(self.tee_type);
        w.put::<RESERVED, 4>(self.reserved);
        w.put::<QE_VENDOR_ID, 16>(self.qe_vendor_id);
        w.put::<USER_DATA, 20>(self.user_data);
        out
    }
}

/// A TDX quote: everything it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quote<'a> {
    pub header: QuoteHeader,
    /// The TD report; a v5 quote carries its type (1.0 or 1.5), a v4 quote only 1.0.
    pub body: TdQuoteBody,
    /// ECDSA P-256 signature r‖s (big-endian) by the attestation key over the signed part.
    pub signature: [u8; 64],
    /// The attestation key, x‖y (big-endian).
    pub attestation_key: [u8; 64],
    /// The Quoting Enclave's report, signed by the PCK key.
    pub qe_report: [u8; ENCLAVE_REPORT_SIZE],
    pub qe_report_signature: [u8; 64],
    /// QE authentication data; SHA-256(attestation key ‖ this) is in the QE report's data.
    pub qe_auth_data: &'a [u8],
    /// The PCK certificate chain, PEM (leaf, intermediate, root), as the QE embeds it.
    pub pck_chain: &'a [u8],
}

/// A quote as parsed from bytes, with the exact ranges a verifier needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedQuote<'a> {
    pub quote: Quote<'a>,
    /// The bytes the quote signature covers, as received.
    pub signed: &'a [u8],
    /// The quote's length; input after it is not part of the quote.
    pub len: usize,
}

/// Bounds-checked sequential reads.
struct Reader<'a> {
    bytes: &'a [u8],
    base: usize,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], base: usize) -> Self {
        Self { bytes, base, pos: 0 }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], QuoteError> {
        let have = self.bytes.len() - self.pos;
        if n > have {
            return Err(QuoteError::Truncated { what, at: self.base + self.pos, need: n, have });
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], QuoteError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, QuoteError> {
        self.array::<2>(what).map(u16::from_le_bytes)
    }

    fn u32(&mut self, what: &'static str) -> Result<usize, QuoteError> {
        self.array::<4>(what).map(|b| u32::from_le_bytes(b) as usize)
    }

    fn rest(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// A length-prefixed region that must fill exactly what remains.
    fn exactly_rest(&mut self, declared: usize, what: &'static str) -> Result<&'a [u8], QuoteError> {
        let actual = self.rest();
        if declared != actual {
            return Err(QuoteError::Length { what, declared, actual });
        }
        self.take(declared, what)
    }
}

impl<'a> ParsedQuote<'a> {
    /// Parses a TDX quote (v4, or v5 with a TD 1.0 or 1.5 body) from the start of `bytes`.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, QuoteError> {
        let mut r = Reader::new(bytes, 0);
        let header = QuoteHeader::parse(&r.array::<HEADER_SIZE>("the header")?);
        if header.version != 4 && header.version != 5 {
            return Err(QuoteError::UnsupportedVersion(header.version));
        }
        if header.att_key_type != ATT_KEY_TYPE_ECDSA_P256 {
            return Err(QuoteError::UnsupportedAttestationKey(header.att_key_type));
        }
        if header.tee_type != TEE_TYPE_TDX {
            return Err(QuoteError::NotTdx(header.tee_type));
        }
        let body_type = if header.version == 5 {
            let body_type = r.u16("the body type")?;
            let size = r.array::<4>("the body size").map(u32::from_le_bytes)?;
            let expected = match body_type {
                BODY_TYPE_TD10 => TD10_BODY_SIZE,
                BODY_TYPE_TD15 => TD15_BODY_SIZE,
                BODY_TYPE_SGX => return Err(QuoteError::NotTdx(TEE_TYPE_SGX)),
                other => return Err(QuoteError::UnsupportedBodyType(other)),
            };
            if size as usize != expected {
                return Err(QuoteError::BodySize { body_type, expected, actual: size });
            }
            body_type
        } else {
            BODY_TYPE_TD10
        };
        let body = if body_type == BODY_TYPE_TD15 {
            TdQuoteBody::parse_td15(&r.array::<TD15_BODY_SIZE>("the TD report 1.5")?)
        } else {
            TdQuoteBody::parse_td10(&r.array::<TD10_BODY_SIZE>("the TD report")?)
        };
        let signed_len = r.pos;
        let sig_len = r.u32("the signature data length")?;
        let sig_start = r.pos;
        let sig_data = r.take(sig_len, "the signature data")?;
        let len = sig_start + sig_len;

        let mut s = Reader::new(sig_data, sig_start);
        let signature = s.array::<64>("the quote signature")?;
        let attestation_key = s.array::<64>("the attestation key")?;
        let cert_type = s.u16("the certification data type")?;
        if cert_type != CERT_TYPE_QE_REPORT {
            return Err(QuoteError::CertificationDataType { expected: CERT_TYPE_QE_REPORT, actual: cert_type });
        }
        let cert_size = s.u32("the certification data size")?;
        let cert_start = sig_start + s.pos;
        let cert_data = s.exactly_rest(cert_size, "QE certification data")?;

        let mut c = Reader::new(cert_data, cert_start);
        let qe_report = c.array::<ENCLAVE_REPORT_SIZE>("the QE report")?;
        let qe_report_signature = c.array::<64>("the QE report signature")?;
        let auth_size = usize::from(c.u16("the QE auth data size")?);
        let qe_auth_data = c.take(auth_size, "the QE auth data")?;
        let inner_type = c.u16("the PCK certification data type")?;
        if inner_type != CERT_TYPE_PCK_CHAIN {
            return Err(QuoteError::CertificationDataType { expected: CERT_TYPE_PCK_CHAIN, actual: inner_type });
        }
        let inner_size = c.u32("the PCK certification data size")?;
        let pck_chain = c.exactly_rest(inner_size, "PCK certificate chain")?;

        Ok(Self {
            quote: Quote {
                header,
                body,
                signature,
                attestation_key,
                qe_report,
                qe_report_signature,
                qe_auth_data,
                pck_chain,
            },
            signed: &bytes[..signed_len],
            len,
        })
    }
}

/// Appends to `out` at `*pos`, checking room.
fn put(out: &mut [u8], pos: &mut usize, bytes: &[u8]) -> Result<(), QuoteError> {
    let end =
        pos.checked_add(bytes.len()).filter(|&e| e <= out.len()).ok_or(QuoteError::Encoding("output too short"))?;
    out[*pos..end].copy_from_slice(bytes);
    *pos = end;
    Ok(())
}

fn len_u16(n: usize) -> Result<[u8; 2], QuoteError> {
    u16::try_from(n).map(u16::to_le_bytes).map_err(|_| QuoteError::Encoding("QE auth data over 65535 bytes"))
}

fn len_u32(n: usize) -> Result<[u8; 4], QuoteError> {
    u32::try_from(n).map(u32::to_le_bytes).map_err(|_| QuoteError::Encoding("a length over 4 GiB"))
}

impl Quote<'_> {
    /// The length of the signed part (header, v5 body descriptor, body).
    pub const fn signed_len(&self) -> usize {
        let descriptor = if self.header.version == 5 { BODY_DESCRIPTOR_SIZE } else { 0 };
        HEADER_SIZE + descriptor + self.body.encoded_len()
    }

    /// The length of the whole encoding.
    pub const fn encoded_len(&self) -> usize {
        self.signed_len()
            + 4
            + sig_offset::CERT_DATA
            + sig_offset::QE_AUTH
            + self.qe_auth_data.len()
            + 6
            + self.pck_chain.len()
    }

    /// The QE report, parsed.
    pub fn qe_report_body(&self) -> EnclaveReport {
        EnclaveReport::parse(&self.qe_report)
    }

    /// Encodes the quote into `out`; returns its length. Inverse of [`ParsedQuote::parse`].
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, QuoteError> {
        let mut pos = 0;
        put(out, &mut pos, &self.header.to_bytes())?;
        match (self.header.version, self.body.is_td15()) {
            (4, false) => put(out, &mut pos, &self.body.to_td10_bytes())?,
            (4, true) => return Err(QuoteError::Encoding("a version 4 quote cannot carry a TD 1.5 body")),
            (5, false) => {
                put(out, &mut pos, &BODY_TYPE_TD10.to_le_bytes())?;
                put(out, &mut pos, &len_u32(TD10_BODY_SIZE)?)?;
                put(out, &mut pos, &self.body.to_td10_bytes())?;
            }
            (5, true) => {
                put(out, &mut pos, &BODY_TYPE_TD15.to_le_bytes())?;
                put(out, &mut pos, &len_u32(TD15_BODY_SIZE)?)?;
                put(out, &mut pos, &self.body.to_td15_bytes())?;
            }
            _ => return Err(QuoteError::UnsupportedVersion(self.header.version)),
        }
        let cert_len = sig_offset::QE_AUTH + self.qe_auth_data.len() + 6 + self.pck_chain.len();
        put(out, &mut pos, &len_u32(sig_offset::CERT_DATA + cert_len)?)?;
        put(out, &mut pos, &self.signature)?;
        put(out, &mut pos, &self.attestation_key)?;
        put(out, &mut pos, &CERT_TYPE_QE_REPORT.to_le_bytes())?;
        put(out, &mut pos, &len_u32(cert_len)?)?;
        put(out, &mut pos, &self.qe_report)?;
        put(out, &mut pos, &self.qe_report_signature)?;
        put(out, &mut pos, &len_u16(self.qe_auth_data.len())?)?;
        put(out, &mut pos, self.qe_auth_data)?;
        put(out, &mut pos, &CERT_TYPE_PCK_CHAIN.to_le_bytes())?;
        put(out, &mut pos, &len_u32(self.pck_chain.len())?)?;
        put(out, &mut pos, self.pck_chain)?;
        Ok(pos)
    }
}

/// What the guest itself reads from the quote the VMM returns, before it sends it on: the TD
/// report body's REPORTDATA and RTMRs, at the offsets every TD quote body shares (TD report 1.0
/// and 1.5 differ only after REPORTDATA), found from the header's version alone (4: the body
/// follows the header; 5 and later: a body descriptor {u16 type, u32 size} comes first). Nothing
/// else is judged — attestation key type, certification data, signature lengths, TEE type are
/// the verifier's ([`ParsedQuote::parse`]), so a quoting-enclave or format update does not stop
/// the guest from sending its evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestView {
    pub version: u16,
    pub report_data: [u8; 64],
    pub rtmr: [[u8; 48]; 4],
}

impl GuestView {
    pub fn parse(bytes: &[u8]) -> Result<Self, QuoteError> {
        let mut r = Reader::new(bytes, 0);
        let header = QuoteHeader::parse(&r.array::<HEADER_SIZE>("the header")?);
        match header.version {
            0..=3 => return Err(QuoteError::UnsupportedVersion(header.version)),
            4 => {}
            _ => {
                let body_type = r.u16("the body type")?;
                let size = r.array::<4>("the body size").map(u32::from_le_bytes)?;
                if (size as usize) < TD10_BODY_SIZE {
                    return Err(QuoteError::BodySize { body_type, expected: TD10_BODY_SIZE, actual: size });
                }
            }
        }
        let body = TdQuoteBody::parse_td10(&r.array::<TD10_BODY_SIZE>("the TD report body")?);
        Ok(Self { version: header.version, report_data: body.report_data, rtmr: body.rtmr })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(version: u16, td15: bool) -> Quote<'static> {
        let mut body = TdQuoteBody::parse_td10(&[7; TD10_BODY_SIZE]);
        if td15 {
            body.tee_tcb_svn_2 = Some([8; 16]);
            body.mr_service_td = Some([9; 48]);
        }
        Quote {
            header: QuoteHeader {
                version,
                att_key_type: ATT_KEY_TYPE_ECDSA_P256,
                tee_type: TEE_TYPE_TDX,
                reserved: [0; 4],
                qe_vendor_id: INTEL_QE_VENDOR_ID,
                user_data: [1; 20],
            },
            body,
            signature: [2; 64],
            attestation_key: [3; 64],
            qe_report: [4; ENCLAVE_REPORT_SIZE],
            qe_report_signature: [5; 64],
            qe_auth_data: &[6; 32],
            pck_chain: b"-----BEGIN CERTIFICATE-----\n",
        }
    }

    #[test]
    fn round_trips_v4_and_v5() {
        for (version, td15) in [(4, false), (5, false), (5, true)] {
            let q = sample(version, td15);
            let mut buf = [0u8; 2048];
            let n = q.encode(&mut buf).unwrap();
            assert_eq!(n, q.encoded_len());
            let p = ParsedQuote::parse(&buf[..n]).unwrap();
            assert_eq!(p.quote, q);
            assert_eq!(p.len, n);
            assert_eq!(p.signed.len(), q.signed_len());
            // Trailing bytes are not part of the quote.
            let p = ParsedQuote::parse(&buf[..n + 10]).unwrap();
            assert_eq!((p.quote, p.len), (q, n));
            // Every truncation is an error, never a panic.
            for cut in 0..n {
                assert!(ParsedQuote::parse(&buf[..cut]).is_err(), "v{version} cut at {cut}");
            }
        }
        let mut buf = [0u8; 2048];
        assert_eq!(
            sample(4, true).encode(&mut buf),
            Err(QuoteError::Encoding("a version 4 quote cannot carry a TD 1.5 body"))
        );
        assert_eq!(sample(5, true).encode(&mut buf[..100]), Err(QuoteError::Encoding("output too short")));
    }

    #[test]
    fn the_guest_view_reads_report_data_and_rtmrs_whatever_the_rest_says() {
        for (version, td15) in [(4, false), (5, false), (5, true)] {
            let mut q = sample(version, td15);
            q.body.report_data = [0xAB; 64];
            q.body.rtmr[2] = [0xCD; 48];
            let mut buf = [0u8; 2048];
            let n = q.encode(&mut buf).unwrap();
            // A newer attestation key type, another certification data type, a QE that is
            // not Intel's, a quote version after 5: the verifier's parser refuses these, the
            // guest still finds its REPORTDATA.
            buf[header_offset::ATT_KEY_TYPE] = 3;
            buf[header_offset::TEE_TYPE] = 0x82;
            if version == 5 {
                buf[header_offset::VERSION] = 6;
            }
            assert!(ParsedQuote::parse(&buf[..n]).is_err());
            let view = GuestView::parse(&buf[..n]).unwrap();
            assert_eq!((view.report_data, view.rtmr[2]), ([0xAB; 64], [0xCD; 48]));
            assert_eq!(view.version, if version == 5 { 6 } else { 4 });
            let body_end = HEADER_SIZE + if version == 4 { 0 } else { BODY_DESCRIPTOR_SIZE } + TD10_BODY_SIZE;
            assert!(GuestView::parse(&buf[..body_end]).is_ok(), "only the header and body prefix are needed");
            for cut in 0..body_end {
                assert!(GuestView::parse(&buf[..cut]).is_err());
            }
        }
        let mut buf = [0u8; 2048];
        let n = sample(4, false).encode(&mut buf).unwrap();
        buf[header_offset::VERSION] = 3;
        assert_eq!(GuestView::parse(&buf[..n]), Err(QuoteError::UnsupportedVersion(3)));
        // A v5 body descriptor announcing less than a TD report body.
        let n = sample(5, false).encode(&mut buf).unwrap();
        buf[HEADER_SIZE + 2..HEADER_SIZE + 6].copy_from_slice(&100u32.to_le_bytes());
        assert!(matches!(GuestView::parse(&buf[..n]), Err(QuoteError::BodySize { .. })));
    }

    #[test]
    fn header_fields_and_lengths_are_checked() {
        let q = sample(4, false);
        let mut buf = [0u8; 2048];
        let n = q.encode(&mut buf).unwrap();
        let with = |at: usize, v: &[u8]| {
            let mut b = buf;
            b[at..at + v.len()].copy_from_slice(v);
            ParsedQuote::parse(&b[..n]).map(|_| ())
        };
        assert_eq!(with(0, &3u16.to_le_bytes()), Err(QuoteError::UnsupportedVersion(3)));
        assert_eq!(with(2, &3u16.to_le_bytes()), Err(QuoteError::UnsupportedAttestationKey(3)));
        assert_eq!(with(4, &0u32.to_le_bytes()), Err(QuoteError::NotTdx(0)));
        // Signature data length one too long / too short.
        let sig_len = u32::from_le_bytes(buf[632..636].try_into().unwrap());
        assert!(matches!(with(632, &(sig_len + 1).to_le_bytes()), Err(QuoteError::Truncated { .. })));
        assert!(matches!(with(632, &(sig_len - 1).to_le_bytes()), Err(QuoteError::Length { .. })));
        assert_eq!(
            with(636 + 128, &7u16.to_le_bytes()),
            Err(QuoteError::CertificationDataType { expected: 6, actual: 7 })
        );
        // QE auth data size one larger: the inner lengths no longer add up.
        assert!(with(636 + 134 + 448, &33u16.to_le_bytes()).is_err());

        let q = sample(5, true);
        let n = q.encode(&mut buf).unwrap();
        let with5 = |at: usize, v: &[u8]| {
            let mut b = buf;
            b[at..at + v.len()].copy_from_slice(v);
            ParsedQuote::parse(&b[..n]).map(|_| ())
        };
        assert_eq!(with5(48, &4u16.to_le_bytes()), Err(QuoteError::UnsupportedBodyType(4)));
        assert_eq!(with5(48, &1u16.to_le_bytes()), Err(QuoteError::NotTdx(0)));
        assert_eq!(
            with5(50, &584u32.to_le_bytes()),
            Err(QuoteError::BodySize { body_type: 3, expected: 648, actual: 584 })
        );
    }
}
