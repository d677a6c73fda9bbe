//! Plaintext payloads of the SEV-SNP guest messages `MSG_REPORT_REQ` and `MSG_REPORT_RSP`
//! (SEV-SNP Firmware ABI spec, Tables "MSG_REPORT_REQ Message Structure" and
//! "MSG_REPORT_RSP Message Structure"). These are what travels inside the AES-256-GCM
//! envelope keyed with a VMPCK; the envelope itself is not handled here.
//!
//! ```text
//! MSG_REPORT_REQ (96 bytes)           MSG_REPORT_RSP (0x20 + REPORT_SIZE bytes)
//! 0x00 [64] REPORT_DATA               0x00 u32 STATUS
//! 0x40 u32  VMPL                      0x04 u32 REPORT_SIZE
//! 0x44..0x60 reserved, zero           0x08..0x20 reserved
//!                                     0x20 [REPORT_SIZE] REPORT
//! ```
//!
//! Newer spec revisions give bits 1:0 of the word at 0x44 of the request a meaning
//! (`KEY_SEL`: 0 = firmware's choice, 1 = VCEK, 2 = VLEK). This module always sends 0 there and
//! treats anything else as a reserved-bytes violation.

use crate::bytes::{Buf, BufMut};
use crate::snp::report::REPORT_SIZE;
use core::fmt;

/// Size of `MSG_REPORT_REQ`.
pub const REPORT_REQ_SIZE: usize = 0x60;
/// Size of the `MSG_REPORT_RSP` header that precedes the report.
pub const REPORT_RSP_HEADER_SIZE: usize = 0x20;

/// `STATUS`: success.
pub const STATUS_SUCCESS: u32 = 0x00;
/// `STATUS`: invalid parameters (e.g. a VMPL below the caller's).
pub const STATUS_INVALID_PARAMETERS: u32 = 0x16;
/// `STATUS`: invalid key selection (e.g. VLEK requested but none loaded).
pub const STATUS_INVALID_KEY_SELECTION: u32 = 0x27;

const REQ_REPORT_DATA: usize = 0x00;
const REQ_VMPL: usize = 0x40;
const REQ_RESERVED: usize = 0x44;
const RSP_STATUS: usize = 0x00;
const RSP_REPORT_SIZE: usize = 0x04;

const _: () = assert!(REQ_VMPL == REQ_REPORT_DATA + 64 && REQ_RESERVED == REQ_VMPL + 4);
const _: () = assert!(REQ_RESERVED + 28 == REPORT_REQ_SIZE);
const _: () = assert!(RSP_REPORT_SIZE + 4 + 24 == REPORT_RSP_HEADER_SIZE);

/// Why a guest-message payload was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgError {
    /// The request is not exactly [`REPORT_REQ_SIZE`] bytes.
    Length { expected: usize, actual: usize },
    /// Reserved bytes of the request are not zero.
    ReservedNonZero,
    /// The buffer cannot hold the header plus `REPORT_SIZE` bytes.
    BufferTooSmall { needed: usize, available: usize },
    /// A successful response must carry exactly one attestation report (1184 bytes).
    BadReportSize(usize),
}

impl fmt::Display for MsgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length { expected, actual } => {
                write!(f, "MSG_REPORT_REQ is {actual} bytes, expected {expected}")
            }
            Self::ReservedNonZero => f.write_str("MSG_REPORT_REQ reserved bytes are not zero"),
            Self::BufferTooSmall { needed, available } => {
                write!(f, "MSG_REPORT_RSP needs {needed} bytes, buffer has {available}")
            }
            Self::BadReportSize(n) => {
                write!(f, "successful MSG_REPORT_RSP carries {n} report bytes, expected {REPORT_SIZE}")
            }
        }
    }
}

impl core::error::Error for MsgError {}

/// `MSG_REPORT_REQ`: ask the firmware for a report carrying `report_data`, at `vmpl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportRequest {
    pub report_data: [u8; 64],
    pub vmpl: u32,
}

impl ReportRequest {
    /// Encodes the request; reserved bytes are zero.
    pub fn to_bytes(&self) -> [u8; REPORT_REQ_SIZE] {
        let mut out = [0u8; REPORT_REQ_SIZE];
        let mut w = BufMut(&mut out);
        w.put::<REQ_REPORT_DATA, 64>(self.report_data);
        w.u32::<REQ_VMPL>(self.vmpl);
        out
    }

    /// Parses a request: exactly [`REPORT_REQ_SIZE`] bytes, reserved bytes zero.
    pub fn parse(bytes: &[u8]) -> Result<Self, MsgError> {
        let b: &[u8; REPORT_REQ_SIZE] =
            bytes.try_into().map_err(|_| MsgError::Length { expected: REPORT_REQ_SIZE, actual: bytes.len() })?;
        let b = Buf(b);
        if !b.zero::<REQ_RESERVED, 28>() {
            return Err(MsgError::ReservedNonZero);
        }
        Ok(Self { report_data: b.get::<REQ_REPORT_DATA, 64>(), vmpl: b.u32::<REQ_VMPL>() })
    }
}

/// `MSG_REPORT_RSP`, borrowing the report bytes from the response buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportResponse<'a> {
    /// `STATUS_*`.
    pub status: u32,
    /// `REPORT_SIZE` as the firmware wrote it.
    pub report_size: u32,
    /// The `report_size` bytes at 0x20 (parse them with
    /// [`AttestationReport::parse`](crate::snp::report::AttestationReport::parse)).
    pub report: &'a [u8],
}

impl<'a> ReportResponse<'a> {
    /// Parses a response. The buffer must hold `0x20 + REPORT_SIZE` bytes (it may be longer,
    /// e.g. a whole page; the rest is ignored); when `status` is [`STATUS_SUCCESS`],
    /// `REPORT_SIZE` must be 1184. The reserved header bytes are not checked (the firmware
    /// writes them and the GCM envelope authenticates them).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, MsgError> {
        let too_small = |needed: usize| MsgError::BufferTooSmall { needed, available: bytes.len() };
        let (header, body) =
            bytes.split_first_chunk::<REPORT_RSP_HEADER_SIZE>().ok_or(too_small(REPORT_RSP_HEADER_SIZE))?;
        let h = Buf(header);
        let status = h.u32::<RSP_STATUS>();
        let report_size = h.u32::<RSP_REPORT_SIZE>();
        let size = usize::try_from(report_size).unwrap_or(usize::MAX);
        if status == STATUS_SUCCESS && size != REPORT_SIZE {
            return Err(MsgError::BadReportSize(size));
        }
        let report = body.get(..size).ok_or(too_small(REPORT_RSP_HEADER_SIZE.saturating_add(size)))?;
        Ok(Self { status, report_size, report })
    }

    /// Writes a response with `status` and `report` into `out` (for the simulator) and returns
    /// the number of bytes written, `0x20 + report.len()`. A successful response must carry a
    /// 1184-byte report. Reserved header bytes are written as zero; `out` beyond the returned
    /// length is left untouched.
    pub fn encode(status: u32, report: &[u8], out: &mut [u8]) -> Result<usize, MsgError> {
        if status == STATUS_SUCCESS && report.len() != REPORT_SIZE {
            return Err(MsgError::BadReportSize(report.len()));
        }
        let report_size = u32::try_from(report.len()).map_err(|_| MsgError::BadReportSize(report.len()))?;
        let needed = REPORT_RSP_HEADER_SIZE.saturating_add(report.len());
        let available = out.len();
        let (header, body) = out
            .get_mut(..needed)
            .and_then(|o| o.split_first_chunk_mut::<REPORT_RSP_HEADER_SIZE>())
            .ok_or(MsgError::BufferTooSmall { needed, available })?;
        *header = [0; REPORT_RSP_HEADER_SIZE];
        let mut w = BufMut(header);
        w.u32::<RSP_STATUS>(status);
        w.u32::<RSP_REPORT_SIZE>(report_size);
        body.copy_from_slice(report);
        Ok(needed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout_and_round_trip() {
        let req = ReportRequest { report_data: core::array::from_fn(|i| i as u8 + 1), vmpl: 0x0403_0201 };
        let b = req.to_bytes();
        assert_eq!(b.len(), 96);
        assert_eq!(&b[..64], &req.report_data);
        assert_eq!(&b[0x40..0x44], &[1, 2, 3, 4]);
        assert!(b[0x44..].iter().all(|&x| x == 0));
        assert_eq!(ReportRequest::parse(&b), Ok(req));
    }

    #[test]
    fn request_rejects_bad_input() {
        let b = ReportRequest { report_data: [7; 64], vmpl: 0 }.to_bytes();
        for len in [0usize, 95, 97] {
            let mut v = [0u8; 97];
            v[..96].copy_from_slice(&b);
            assert_eq!(ReportRequest::parse(&v[..len]), Err(MsgError::Length { expected: 96, actual: len }));
        }
        for i in 0x44..0x60 {
            let mut bad = b;
            bad[i] = 1;
            assert_eq!(ReportRequest::parse(&bad), Err(MsgError::ReservedNonZero));
        }
    }

    #[test]
    fn response_round_trip() {
        let report: [u8; REPORT_SIZE] = core::array::from_fn(|i| (i % 251) as u8);
        let mut page = [0xAAu8; 4096];
        let n = ReportResponse::encode(STATUS_SUCCESS, &report, &mut page).unwrap();
        assert_eq!(n, 0x20 + REPORT_SIZE);
        assert_eq!(&page[..8], &[0, 0, 0, 0, 0xA0, 0x04, 0, 0]);
        assert!(page[8..0x20].iter().all(|&x| x == 0));
        assert_eq!(page[n], 0xAA);
        let rsp = ReportResponse::parse(&page).unwrap();
        assert_eq!(rsp.status, STATUS_SUCCESS);
        assert_eq!(rsp.report_size, 1184);
        assert_eq!(rsp.report, &report[..]);
        // Exactly large enough is fine; one byte short is not.
        assert!(ReportResponse::parse(&page[..n]).is_ok());
        assert_eq!(
            ReportResponse::parse(&page[..n - 1]),
            Err(MsgError::BufferTooSmall { needed: n, available: n - 1 })
        );
        assert_eq!(
            ReportResponse::encode(STATUS_SUCCESS, &report, &mut page[..n - 1]),
            Err(MsgError::BufferTooSmall { needed: n, available: n - 1 })
        );
    }

    #[test]
    fn response_errors() {
        let mut buf = [0u8; 64];
        // Error status with no report.
        for status in [STATUS_INVALID_PARAMETERS, STATUS_INVALID_KEY_SELECTION] {
            assert_eq!(ReportResponse::encode(status, &[], &mut buf), Ok(0x20));
            let rsp = ReportResponse::parse(&buf).unwrap();
            assert_eq!((rsp.status, rsp.report_size, rsp.report), (status, 0, &[][..]));
        }
        // Success must carry a whole report.
        assert_eq!(ReportResponse::encode(STATUS_SUCCESS, &[1, 2, 3], &mut buf), Err(MsgError::BadReportSize(3)));
        buf[..8].copy_from_slice(&[0, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(ReportResponse::parse(&buf), Err(MsgError::BadReportSize(3)));
        // A huge size is refused, not trusted.
        buf[..8].copy_from_slice(&[0x16, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert!(matches!(ReportResponse::parse(&buf), Err(MsgError::BufferTooSmall { .. })));
        for len in 0..0x20 {
            assert_eq!(
                ReportResponse::parse(&buf[..len]),
                Err(MsgError::BufferTooSmall { needed: 0x20, available: len })
            );
        }
    }

    #[test]
    fn parsers_never_panic() {
        let mut rng = twi_testkit::TestRng(0x2545_F491_4F6C_DD1D);
        let mut buf = [0u8; 0x20 + REPORT_SIZE + 8];
        for _ in 0..3000 {
            for b in buf.iter_mut() {
                *b = rng.next_u64() as u8;
            }
            let st = rng.0;
            let len = (st >> 8) as usize % (buf.len() + 1);
            if st & 1 == 0 {
                // Make successful responses plausible so the report path is exercised.
                buf[..4].copy_from_slice(&0u32.to_le_bytes());
                buf[4..8].copy_from_slice(&(REPORT_SIZE as u32).to_le_bytes());
            }
            let _ = ReportRequest::parse(&buf[..len]);
            let _ = ReportRequest::parse(&buf[..len.min(96)]);
            let _ = ReportResponse::parse(&buf[..len]);
        }
    }
}
