//! The SVSM core protocol's SVSM_CORE_PVALIDATE (58019 §5 "Core Protocol", call 1; Linux
//! `struct svsm_pvalidate_call` / `svsm_pvalidate_entry`; COCONUT `protocols/core.rs`
//! `core_pvalidate`): a guest below VMPL0 may not execute PVALIDATE, so it asks the SVSM.
//!
//! The request lies in guest memory (the runtime puts it in the calling area's buffer); RCX
//! holds its GPA, 8-byte aligned:
//!
//! | offset | field |
//! |--------|-------|
//! | 0 | `entries` u16 (how many follow) |
//! | 2 | `next` u16 (the first entry still to do; the SVSM advances it) |
//! | 4 | reserved u32 |
//! | 8 | entries, u64 each: bits 1:0 page size (0 = 4 KiB, 1 = 2 MiB), bit 2 action (1 = validate, 0 = rescind), bit 3 ignore CF, bits 11:4 reserved, bits 63:12 the GFN |
//!
//! COCONUT refuses `entries` of 0, `entries <= next`, more entries than fit in the page, a
//! reserved bit, a page size other than 0 or 1, and a GPA not aligned to its page size.

use super::call::caa;

pub const PVALIDATE: u32 = 1;
pub const QUERY_PROTOCOL: u32 = 6;
pub const HEADER_LEN: usize = 8;
pub const ENTRY_LEN: usize = 8;
/// Entries that fit in the calling area's buffer (Linux `SVSM_PVALIDATE_MAX_COUNT`: 510).
pub const MAX_ENTRIES: usize = (caa::BUFFER_LEN - HEADER_LEN) / ENTRY_LEN;
const _: () = assert!(MAX_ENTRIES == 510);
/// The protocol-specific result of a size mismatch (Linux `SVSM_PVALIDATE_FAIL_SIZEMISMATCH`).
pub const FAIL_SIZEMISMATCH: u32 = 6;

/// One page to validate or rescind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PvalidateEntry {
    pub gpa: u64,
    pub huge: bool,
    pub validate: bool,
}

/// Why a request cannot be built or read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoreError {
    /// No entries, or more than [`MAX_ENTRIES`].
    Count(usize),
    /// The GPA is not aligned to the entry's page size.
    Misaligned(u64),
    /// The output buffer is too small.
    Buffer { need: usize, have: usize },
    /// A reserved bit or page size the protocol does not define (the SVSM's check).
    Reserved(u64),
}

impl PvalidateEntry {
    pub const fn encode(&self) -> Result<u64, CoreError> {
        let align = if self.huge { 0x20_0000 } else { 0x1000 };
        if !self.gpa.is_multiple_of(align) {
            return Err(CoreError::Misaligned(self.gpa));
        }
        Ok(self.gpa | ((self.validate as u64) << 2) | self.huge as u64)
    }

    /// The SVSM's reading of an entry.
    pub const fn decode(raw: u64) -> Result<Self, CoreError> {
        if raw & 0xFF0 != 0 || raw & 0b11 > 1 {
            return Err(CoreError::Reserved(raw));
        }
        let huge = raw & 1 == 1;
        let gpa = raw & !0xFFF;
        if huge && !gpa.is_multiple_of(0x20_0000) {
            return Err(CoreError::Misaligned(gpa));
        }
        Ok(Self { gpa, huge, validate: raw & 0b100 != 0 })
    }
}

/// Writes the request for `entries` into `out`; returns its length.
pub fn encode_pvalidate(entries: &[PvalidateEntry], out: &mut [u8]) -> Result<usize, CoreError> {
    if entries.is_empty() || entries.len() > MAX_ENTRIES {
        return Err(CoreError::Count(entries.len()));
    }
    let len = HEADER_LEN + entries.len() * ENTRY_LEN;
    let have = out.len();
    let out = out.get_mut(..len).ok_or(CoreError::Buffer { need: len, have })?;
    out[..HEADER_LEN].fill(0);
    out[..2].copy_from_slice(&(entries.len() as u16).to_le_bytes());
    for (slot, entry) in out[HEADER_LEN..].chunks_exact_mut(ENTRY_LEN).zip(entries) {
        slot.copy_from_slice(&entry.encode()?.to_le_bytes());
    }
    Ok(len)
}

/// The header as the SVSM left it: (`entries`, `next`).
pub fn pvalidate_progress(request: &[u8]) -> Option<(u16, u16)> {
    let h = request.get(..4)?;
    Some((u16::from_le_bytes([h[0], h[1]]), u16::from_le_bytes([h[2], h[3]])))
}

/// The SVSM's side: the entries of a request, checked as COCONUT checks them.
pub fn decode_pvalidate(
    request: &[u8],
) -> Result<impl Iterator<Item = Result<PvalidateEntry, CoreError>> + '_, CoreError> {
    let (entries, next) = pvalidate_progress(request).ok_or(CoreError::Count(0))?;
    let (entries, next) = (usize::from(entries), usize::from(next));
    if entries == 0 || entries > MAX_ENTRIES || entries <= next {
        return Err(CoreError::Count(entries));
    }
    let need = HEADER_LEN + entries * ENTRY_LEN;
    let body = request.get(HEADER_LEN..need).ok_or(CoreError::Buffer { need, have: request.len() })?;
    Ok(body.chunks_exact(ENTRY_LEN).skip(next).map(|e| {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(e);
        PvalidateEntry::decode(u64::from_le_bytes(raw))
    }))
}

/// RCX of SVSM_CORE_QUERY_PROTOCOL: the protocol and version asked for.
pub const fn query_protocol(protocol: u32, version: u32) -> u64 {
    ((protocol as u64) << 32) | version as u64
}

/// The answer (RCX out): `Some((min, max))` when supported, `None` (0) otherwise.
pub const fn query_protocol_answer(rcx: u64) -> Option<(u32, u32)> {
    if rcx == 0 { None } else { Some((rcx as u32, (rcx >> 32) as u32)) }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    #[test]
    fn pvalidate_requests_have_linuxs_layout() {
        let entries = [
            PvalidateEntry { gpa: 0x80_0000, huge: true, validate: true },
            PvalidateEntry { gpa: 0x1000, huge: false, validate: false },
        ];
        let mut out = [0xEEu8; 64];
        assert_eq!(encode_pvalidate(&entries, &mut out), Ok(24));
        assert_eq!(&out[..8], &[2, 0, 0, 0, 0, 0, 0, 0], "entries 2, next 0, reserved 0");
        // 2 MiB (bits 1:0 = 1), validate (bit 2), GFN 0x800 in bits 63:12.
        assert_eq!(u64::from_le_bytes(out[8..16].try_into().unwrap()), 0x80_0005);
        assert_eq!(u64::from_le_bytes(out[16..24].try_into().unwrap()), 0x1000);
        assert_eq!(out[24], 0xEE, "nothing written past the request");
        assert_eq!(pvalidate_progress(&out), Some((2, 0)));
        let decoded: Result<Vec<_>, _> = decode_pvalidate(&out[..24]).unwrap().collect();
        assert_eq!(decoded.unwrap(), entries);
    }

    #[test]
    fn pvalidate_refuses_what_the_svsm_refuses() {
        let one = PvalidateEntry { gpa: 0x1000, huge: true, validate: true };
        assert_eq!(encode_pvalidate(&[one], &mut [0u8; 16]), Err(CoreError::Misaligned(0x1000)));
        assert_eq!(encode_pvalidate(&[], &mut [0u8; 16]), Err(CoreError::Count(0)));
        let many = [PvalidateEntry { gpa: 0, huge: false, validate: true }; MAX_ENTRIES + 1];
        assert_eq!(encode_pvalidate(&many, &mut [0u8; 8192]), Err(CoreError::Count(511)));
        assert!(encode_pvalidate(&many[..MAX_ENTRIES], &mut [0u8; caa::BUFFER_LEN]).is_ok(), "510 fit in the CAA");
        assert!(matches!(encode_pvalidate(&[one; 1][..0], &mut [0u8; 4]), Err(CoreError::Count(0))));
        assert_eq!(PvalidateEntry::decode(0x1010), Err(CoreError::Reserved(0x1010)));
        assert_eq!(PvalidateEntry::decode(0x1002), Err(CoreError::Reserved(0x1002)), "page size 2");
        // entries <= next: nothing left to do is a malformed request.
        let mut request = [0u8; 16];
        request[..2].copy_from_slice(&1u16.to_le_bytes());
        request[2..4].copy_from_slice(&1u16.to_le_bytes());
        assert!(decode_pvalidate(&request).is_err());
    }

    #[test]
    fn query_protocol_round_trip() {
        assert_eq!(query_protocol(1, 1), 0x1_0000_0001);
        assert_eq!(query_protocol_answer((1 << 32) | 1), Some((1, 1)));
        assert_eq!(query_protocol_answer(0), None);
    }
}
