//! The GHCI `TDG.VP.VMCALL<GetQuote>` shared buffer (Intel "Guest-Hypervisor Communication
//! Interface (GHCI) for Intel TDX", table "TDG.VP.VMCALL<GetQuote> — GetQuote buffer"; QEMU
//! `target/i386/kvm/tdx-quote-generator.h` `struct tdx_get_quote_header`):
//!
//! ```text
//! 0  u64 version   (1)
//! 8  u64 status    (guest writes 0; the VMM writes the outcome, see [`status`])
//! 16 u32 in_len    (guest: length of the data, the 1024-byte TDREPORT)
//! 20 u32 out_len   (VMM: length of the quote that replaces the data)
//! 24 data          (TDREPORT on the way in, the quote on the way out)
//! ```
//!
//! All integers little-endian. The buffer is shared with the host, so the runtime copies it
//! into private memory before [`parse_response`] looks at it; every length is bounded by the
//! buffer's own length and [`MAX_BUFFER`].

use crate::tdx::td_report::TD_REPORT_SIZE;

/// Size of the header before the data.
pub const HEADER_SIZE: usize = 24;
/// The only header version defined.
pub const VERSION: u64 = 1;
/// The largest buffer this code builds or reads (QEMU refuses larger: `TDX_GET_QUOTE_MAX_BUF_LEN`).
pub const MAX_BUFFER: usize = 128 * 1024;

/// GetQuote status codes (GHCI, "GetQuote status codes").
pub mod status {
    pub const SUCCESS: u64 = 0;
    pub const IN_FLIGHT: u64 = 0xFFFF_FFFF_FFFF_FFFF;
    pub const ERROR: u64 = 0x8000_0000_0000_0000;
    pub const QGS_UNAVAILABLE: u64 = 0x8000_0000_0000_0001;
}

mod offset {
    pub const VERSION: usize = 0;
    pub const STATUS: usize = 8;
    pub const IN_LEN: usize = 16;
    pub const OUT_LEN: usize = 20;
}
const _: () = assert!(offset::STATUS == offset::VERSION + 8 && offset::IN_LEN == offset::STATUS + 8);
const _: () = assert!(offset::OUT_LEN == offset::IN_LEN + 4 && offset::OUT_LEN + 4 == HEADER_SIZE);

/// Why a GetQuote buffer could not be built or used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GetQuoteError {
    /// The buffer is shorter than the header plus what it must hold, or over [`MAX_BUFFER`].
    BufferSize { need: usize, have: usize },
    /// The header's version is not 1.
    Version(u64),
    /// The VMM has not finished (status all ones): poll again.
    InFlight,
    /// The VMM reported a failure (0x8000_0000_0000_0000 error, …0001 QGS unavailable, or any
    /// other non-zero value).
    Failed(u64),
    /// OUT_LEN is zero or exceeds what the buffer holds.
    OutLength { out_len: u32, room: usize },
}

impl core::fmt::Display for GetQuoteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BufferSize { need, have } => write!(f, "GetQuote buffer of {have} bytes, {need} needed"),
            Self::Version(v) => write!(f, "GetQuote buffer version {v}, expected 1"),
            Self::InFlight => f.write_str("GetQuote is still in flight"),
            Self::Failed(status::QGS_UNAVAILABLE) => f.write_str("GetQuote failed: the quoting service is unavailable"),
            Self::Failed(status::ERROR) => f.write_str("GetQuote failed (status 0x8000000000000000)"),
            Self::Failed(s) => write!(f, "GetQuote failed with status {s:#x}"),
            Self::OutLength { out_len, room } => write!(f, "GetQuote OUT_LEN {out_len} with {room} bytes of room"),
        }
    }
}

/// The header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u64,
    pub status: u64,
    pub in_len: u32,
    pub out_len: u32,
}

impl Header {
    pub fn parse(bytes: &[u8; HEADER_SIZE]) -> Self {
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(b)
        };
        let u32_at = |at: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&bytes[at..at + 4]);
            u32::from_le_bytes(b)
        };
        Self {
            version: u64_at(offset::VERSION),
            status: u64_at(offset::STATUS),
            in_len: u32_at(offset::IN_LEN),
            out_len: u32_at(offset::OUT_LEN),
        }
    }

    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut out = [0u8; HEADER_SIZE];
        out[offset::VERSION..offset::VERSION + 8].copy_from_slice(&self.version.to_le_bytes());
        out[offset::STATUS..offset::STATUS + 8].copy_from_slice(&self.status.to_le_bytes());
        out[offset::IN_LEN..offset::IN_LEN + 4].copy_from_slice(&self.in_len.to_le_bytes());
        out[offset::OUT_LEN..offset::OUT_LEN + 4].copy_from_slice(&self.out_len.to_le_bytes());
        out
    }
}

fn header_of(buffer: &[u8]) -> Result<Header, GetQuoteError> {
    let head = buffer
        .first_chunk::<HEADER_SIZE>()
        .ok_or(GetQuoteError::BufferSize { need: HEADER_SIZE, have: buffer.len() })?;
    Ok(Header::parse(head))
}

/// Writes the request into `buffer` (the whole shared buffer, whose length the guest passes in
/// R13): header {version 1, status 0, in_len 1024, out_len 0}, then the TDREPORT, then zeros.
/// Returns the length of the request part (header + TDREPORT).
pub fn encode_request(td_report: &[u8; TD_REPORT_SIZE], buffer: &mut [u8]) -> Result<usize, GetQuoteError> {
    let need = HEADER_SIZE + TD_REPORT_SIZE;
    if buffer.len() < need || buffer.len() > MAX_BUFFER {
        return Err(GetQuoteError::BufferSize { need, have: buffer.len() });
    }
    let header = Header { version: VERSION, status: status::SUCCESS, in_len: TD_REPORT_SIZE as u32, out_len: 0 };
    buffer.fill(0);
    buffer[..HEADER_SIZE].copy_from_slice(&header.to_bytes());
    buffer[HEADER_SIZE..need].copy_from_slice(td_report);
    Ok(need)
}

/// Reads the VMM's answer from a private copy of the buffer: the quote bytes
/// (`buffer[24..24 + out_len]`) on success, else why not.
pub fn parse_response(buffer: &[u8]) -> Result<&[u8], GetQuoteError> {
    if buffer.len() > MAX_BUFFER {
        return Err(GetQuoteError::BufferSize { need: MAX_BUFFER, have: buffer.len() });
    }
    let header = header_of(buffer)?;
    if header.version != VERSION {
        return Err(GetQuoteError::Version(header.version));
    }
    match header.status {
        status::SUCCESS => {}
        status::IN_FLIGHT => return Err(GetQuoteError::InFlight),
        other => return Err(GetQuoteError::Failed(other)),
    }
    let room = buffer.len() - HEADER_SIZE;
    let out_len = header.out_len as usize;
    if out_len == 0 || out_len > room {
        return Err(GetQuoteError::OutLength { out_len: header.out_len, room });
    }
    Ok(&buffer[HEADER_SIZE..HEADER_SIZE + out_len])
}

/// The VMM's (or the simulator's) side: the TDREPORT a request carries.
pub fn parse_request(buffer: &[u8]) -> Result<[u8; TD_REPORT_SIZE], GetQuoteError> {
    if buffer.len() > MAX_BUFFER {
        return Err(GetQuoteError::BufferSize { need: MAX_BUFFER, have: buffer.len() });
    }
    let header = header_of(buffer)?;
    if header.version != VERSION {
        return Err(GetQuoteError::Version(header.version));
    }
    let need = HEADER_SIZE + TD_REPORT_SIZE;
    if header.in_len as usize != TD_REPORT_SIZE {
        return Err(GetQuoteError::BufferSize { need: TD_REPORT_SIZE, have: header.in_len as usize });
    }
    let report = buffer.get(HEADER_SIZE..need).ok_or(GetQuoteError::BufferSize { need, have: buffer.len() })?;
    let mut out = [0u8; TD_REPORT_SIZE];
    out.copy_from_slice(report);
    Ok(out)
}

/// The VMM's side: writes `quote` (or, with `Err(status)`, a failure) into `buffer` as QEMU
/// does. Returns the length of the answered part (header + quote).
pub fn encode_response(result: Result<&[u8], u64>, buffer: &mut [u8]) -> Result<usize, GetQuoteError> {
    let mut header = header_of(buffer)?;
    match result {
        Ok(quote) => {
            let need = HEADER_SIZE + quote.len();
            if buffer.len() < need || buffer.len() > MAX_BUFFER {
                return Err(GetQuoteError::BufferSize { need, have: buffer.len() });
            }
            header.status = status::SUCCESS;
            header.out_len = quote.len() as u32;
            buffer[HEADER_SIZE..need].copy_from_slice(quote);
            buffer[..HEADER_SIZE].copy_from_slice(&header.to_bytes());
            Ok(need)
        }
        Err(code) => {
            header.status = code;
            header.out_len = 0;
            buffer[..HEADER_SIZE].copy_from_slice(&header.to_bytes());
            Ok(HEADER_SIZE)
        }
    }
}

/// How long and how often the guest polls an in-flight GetQuote: exponential backoff from
/// [`poll::FIRST_DELAY_MS`] to [`poll::MAX_DELAY_MS`], until at least [`poll::TIMEOUT_MS`] of
/// waiting. The bound is time, not a count of polls: Linux's `tdx-guest` driver waits 30 s for
/// the quoting enclave (`drivers/virt/coco/tdx-guest/tdx-guest.c`, `getquote_timeout`, polled
/// once a second) and QEMU's quote generator gives the quote generation service as long, so a
/// guest that gave up earlier would fail quotes the host is still producing.
pub mod poll {
    /// The least total wait before the guest gives up: QEMU's and Linux's 30 s, and a margin.
    pub const TIMEOUT_MS: u64 = 35_000;
    /// The first pause (a local quoting service answers in well under a second).
    pub const FIRST_DELAY_MS: u64 = 10;
    /// The longest pause between two polls (Linux polls once a second).
    pub const MAX_DELAY_MS: u64 = 1_000;

    /// The pause before the next poll, given the polls that found the quote in flight so far
    /// (`attempt`, from 0) and the time already waited; `None` once `waited_ms` reaches
    /// [`TIMEOUT_MS`].
    pub const fn next_delay(attempt: u32, waited_ms: u64) -> Option<u64> {
        if waited_ms >= TIMEOUT_MS {
            return None;
        }
        let doubled = if attempt >= 16 { MAX_DELAY_MS } else { FIRST_DELAY_MS << attempt };
        Some(if doubled > MAX_DELAY_MS { MAX_DELAY_MS } else { doubled })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout_matches_ghci() {
        let report = [0xA5u8; TD_REPORT_SIZE];
        let mut buf = [0xFFu8; 4096];
        let n = encode_request(&report, &mut buf).unwrap();
        assert_eq!(n, 24 + 1024);
        assert_eq!(&buf[0..8], &1u64.to_le_bytes()); // version 1
        assert_eq!(&buf[8..16], &[0; 8]); // status 0
        assert_eq!(&buf[16..20], &1024u32.to_le_bytes()); // in_len
        assert_eq!(&buf[20..24], &[0; 4]); // out_len
        assert_eq!(&buf[24..1048], &report[..]);
        assert!(buf[1048..].iter().all(|&b| b == 0));
        assert_eq!(parse_request(&buf).unwrap(), report);
        assert_eq!(
            encode_request(&report, &mut [0u8; 1047]),
            Err(GetQuoteError::BufferSize { need: 1048, have: 1047 })
        );
        assert!(encode_request(&report, &mut [0u8; MAX_BUFFER + 1]).is_err());
    }

    #[test]
    fn responses_and_statuses() {
        let mut buf = [0u8; 4096];
        encode_request(&[1; TD_REPORT_SIZE], &mut buf).unwrap();
        // Not answered yet: status 0 and out_len 0 is not a quote.
        assert_eq!(parse_response(&buf), Err(GetQuoteError::OutLength { out_len: 0, room: 4096 - 24 }));
        let quote = [7u8; 3000];
        assert_eq!(encode_response(Ok(&quote), &mut buf).unwrap(), 3024);
        assert_eq!(parse_response(&buf).unwrap(), &quote[..]);
        // A quote larger than the buffer cannot be written.
        assert!(encode_response(Ok(&[0u8; 5000]), &mut buf).is_err());
        for (code, want) in [
            (status::IN_FLIGHT, GetQuoteError::InFlight),
            (status::ERROR, GetQuoteError::Failed(status::ERROR)),
            (status::QGS_UNAVAILABLE, GetQuoteError::Failed(status::QGS_UNAVAILABLE)),
            (5, GetQuoteError::Failed(5)),
        ] {
            encode_response(Err(code), &mut buf).unwrap();
            assert_eq!(parse_response(&buf), Err(want));
        }
        // A hostile OUT_LEN beyond the buffer, a wrong version, a short buffer.
        encode_response(Ok(&quote), &mut buf).unwrap();
        buf[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(parse_response(&buf), Err(GetQuoteError::OutLength { .. })));
        buf[0] = 2;
        assert_eq!(parse_response(&buf), Err(GetQuoteError::Version(2)));
        for cut in 0..HEADER_SIZE {
            assert!(parse_response(&buf[..cut]).is_err());
            assert!(parse_request(&buf[..cut]).is_err());
        }
        assert!(parse_response(&[0u8; MAX_BUFFER + 1]).is_err());
    }

    #[test]
    fn polling_backs_off_and_waits_past_qemus_30_seconds() {
        extern crate std;
        let mut waited = 0u64;
        let mut delays = std::vec::Vec::new();
        while let Some(delay) = poll::next_delay(delays.len() as u32, waited) {
            assert!(delay <= poll::MAX_DELAY_MS);
            delays.push(delay);
            waited += delay;
        }
        // Doubling from 10 ms, then once a second.
        assert_eq!(&delays[..8], &[10, 20, 40, 80, 160, 320, 640, 1000]);
        assert!(delays[7..].iter().all(|&d| d == 1000));
        assert!(waited >= poll::TIMEOUT_MS && poll::TIMEOUT_MS > 30_000, "waited {waited} ms");
        assert!(waited < poll::TIMEOUT_MS + poll::MAX_DELAY_MS, "no more than one pause past the bound");
        // The bound is time: a clock that says more time passed (a slow pause) ends it sooner.
        assert_eq!(poll::next_delay(3, 35_000), None);
        assert_eq!(poll::next_delay(3, 34_999), Some(80));
        assert_eq!(poll::next_delay(u32::MAX, 0), Some(poll::MAX_DELAY_MS));
    }
}
