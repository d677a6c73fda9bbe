//! The ROM's metadata area ([`crate::GUID_TABLE`], 0xFFFF_FB00..0xFFFF_FFE0): the SEV metadata,
//! the TDVF descriptor, and the OVMF-style GUID table that points at them, all computed here
//! at compile time. The image builder copies [`AREA`] into the ROM; the runtime and the
//! measurement calculators read the same constants.
//!
//! The GUID table (QEMU `hw/i386/pc_sysfw_ovmf.c` `pc_system_parse_ovmf_flash`; EDK2
//! `OvmfPkg/ResetVector/Ia16/ResetVectorVtf0.asm`) ends 0x20 bytes below 4 GiB and is read
//! backwards. Its last 18 bytes are the footer {u16 total table size including the footer,
//! footer GUID}; below that, entries {data, u16 entry size including these 18 bytes, GUID},
//! each found by walking down from the previous one.
//!
//! Area layout (addresses ascending):
//!
//! | at | what |
//! |----|------|
//! | [`SEV_METADATA_ADDR`] | SEV metadata "ASEV" ([`crate::sev`]) |
//! | [`TDX_METADATA_GUID_ADDR`] | the TDX metadata GUID ([`crate::guid::TDX_METADATA`]) |
//! | [`TDVF_ADDR`] | TDVF descriptor ([`crate::tdvf`]), right after its GUID |
//! | [`TABLE_ADDR`] | GUID table: TDX metadata offset, SEV metadata offset, SEV-ES reset block, footer |
//!
//! The "offset" entries hold the distance from the structure to the end of the ROM (4 GiB), as
//! both QEMU (`flash_ptr + flash_size - offset`) and `sev-snp-measure` (`len(data) - offset`)
//! read it. The TDX one points at the "TDVF" descriptor itself, which QEMU reads there
//! (`hw/i386/tdvf.c` `tdvf_get_metadata`); the 16 bytes before it are the TDX metadata GUID, as
//! OVMF lays it out (`IntelTdxMetadata.asm`: the GUID, then `_Descriptor`) and as td-shim's MRTD
//! calculator reads it (`image_size - offset - 16`).

use crate::guid::{
    GUID_LEN, Guid, OVMF_TABLE_FOOTER, SEV_ES_RESET_BLOCK, SEV_METADATA_OFFSET, TDX_METADATA, TDX_METADATA_OFFSET,
};
use crate::{GUID_TABLE, SEV_ES_AP_RESET};

/// One table entry: its data and GUID. The u16 size between them is derived.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    pub guid: Guid,
    pub data: [u8; 4],
}

/// Bytes of an entry's trailer: u16 size + GUID.
pub const ENTRY_TRAILER_LEN: usize = 2 + GUID_LEN;
/// Bytes of an entry carrying a u32.
pub const ENTRY_LEN: usize = 4 + ENTRY_TRAILER_LEN;
const _: () = assert!(ENTRY_TRAILER_LEN == 18 && ENTRY_LEN == 22);

/// The distance from 4 GiB down to the table's end.
pub const TABLE_END_FROM_TOP: u64 = 0x20;

/// The area's first address and length.
pub const AREA_ADDR: u64 = GUID_TABLE.start;
pub const AREA_LEN: usize = (GUID_TABLE.end - GUID_TABLE.start) as usize;

/// Where the SEV metadata lies (16-byte aligned).
pub const SEV_METADATA_ADDR: u64 = AREA_ADDR;
/// Where the TDX metadata GUID lies (16-byte aligned, after the SEV metadata).
pub const TDX_METADATA_GUID_ADDR: u64 = align16(SEV_METADATA_ADDR + crate::sev::LEN as u64);
/// Where the TDVF descriptor lies: right after its GUID.
pub const TDVF_ADDR: u64 = TDX_METADATA_GUID_ADDR + GUID_LEN as u64;

const fn align16(x: u64) -> u64 {
    (x + 15) & !15
}

/// The u32 each "offset" entry stores: the distance from `addr` to 4 GiB.
const fn offset_from_top(addr: u64) -> [u8; 4] {
    (((1u64 << 32) - addr) as u32).to_le_bytes()
}

/// The table's entries, lowest address first (so the SEV-ES reset block sits next to the
/// footer, as in OVMF).
pub const ENTRIES: [Entry; 3] = [
    Entry { guid: TDX_METADATA_OFFSET, data: offset_from_top(TDVF_ADDR) },
    Entry { guid: SEV_METADATA_OFFSET, data: offset_from_top(SEV_METADATA_ADDR) },
    Entry { guid: SEV_ES_RESET_BLOCK, data: SEV_ES_AP_RESET.to_le_bytes() },
];

/// The table's bytes, footer included.
pub const TABLE_LEN: usize = ENTRIES.len() * ENTRY_LEN + ENTRY_TRAILER_LEN;
/// Where the table starts; it ends at [`GUID_TABLE`]`.end`.
pub const TABLE_ADDR: u64 = GUID_TABLE.end - TABLE_LEN as u64;

const _: () = assert!(GUID_TABLE.end == (1u64 << 32) - TABLE_END_FROM_TOP);
const _: () = assert!(SEV_METADATA_ADDR.is_multiple_of(16) && TDVF_ADDR.is_multiple_of(16));
const _: () = assert!(TDVF_ADDR + crate::tdvf::LEN as u64 <= TABLE_ADDR, "the metadata area overflows");
const _: () = assert!(TABLE_LEN <= u16::MAX as usize);

/// The whole area's bytes (zero where nothing is).
pub const AREA: [u8; AREA_LEN] = build(&crate::sev::encode());
/// The area with SEV metadata that declares no SVSM calling area
/// ([`crate::sev::SECTIONS_WITHOUT_SVSM_CAA`]; `twi build --no-svsm-caa`); the rest is [`AREA`].
pub const AREA_WITHOUT_SVSM_CAA: [u8; AREA_LEN] = build(&crate::sev::encode_without_svsm_caa());

const fn build(sev: &[u8; crate::sev::LEN]) -> [u8; AREA_LEN] {
    let mut area = [0u8; AREA_LEN];
    crate::bytes::put(&mut area, (SEV_METADATA_ADDR - AREA_ADDR) as usize, sev);
    crate::bytes::put(&mut area, (TDX_METADATA_GUID_ADDR - AREA_ADDR) as usize, &TDX_METADATA.to_bytes());
    crate::bytes::put(&mut area, (TDVF_ADDR - AREA_ADDR) as usize, &crate::tdvf::encode());
    let mut at = (TABLE_ADDR - AREA_ADDR) as usize;
    let mut i = 0;
    while i < ENTRIES.len() {
        let e = &ENTRIES[i];
        crate::bytes::put(&mut area, at, &e.data);
        crate::bytes::put(&mut area, at + 4, &(ENTRY_LEN as u16).to_le_bytes());
        crate::bytes::put(&mut area, at + 6, &e.guid.to_bytes());
        at += ENTRY_LEN;
        i += 1;
    }
    crate::bytes::put(&mut area, at, &(TABLE_LEN as u16).to_le_bytes());
    crate::bytes::put(&mut area, at + 2, &OVMF_TABLE_FOOTER.to_bytes());
    assert!(at + ENTRY_TRAILER_LEN == AREA_LEN);
    area
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 4 KiB-aligned top of the ROM as a byte slice: the last `AREA_LEN + 0x20` bytes, the
    /// area followed by the reset vector's 0x20 bytes (zero here).
    fn rom_tail() -> ([u8; AREA_LEN + 0x20], u64) {
        let mut tail = [0u8; AREA_LEN + 0x20];
        tail[..AREA_LEN].copy_from_slice(&AREA);
        (tail, AREA_ADDR)
    }

    /// The data of the table entry with `guid`, walking the table backwards from its footer as
    /// QEMU's `pc_system_ovmf_table_find` and td-shim's calculator do.
    fn entry(tail: &[u8], guid: Guid) -> Option<[u8; 4]> {
        let footer = tail.len() - 0x20 - GUID_LEN;
        assert_eq!(tail[footer..footer + GUID_LEN], OVMF_TABLE_FOOTER.to_bytes());
        let total = u16::from_le_bytes([tail[footer - 2], tail[footer - 1]]) as usize;
        let mut end = footer - 2;
        let start = footer + GUID_LEN - total;
        while end > start {
            let id = &tail[end - GUID_LEN..end];
            let len = u16::from_le_bytes([tail[end - GUID_LEN - 2], tail[end - GUID_LEN - 1]]) as usize;
            if id == guid.to_bytes() {
                let data = end - len;
                return Some([tail[data], tail[data + 1], tail[data + 2], tail[data + 3]]);
            }
            end -= len;
        }
        None
    }

    #[test]
    fn the_tdvf_descriptor_is_preceded_by_the_tdx_metadata_guid_and_pointed_at_by_the_offset() {
        let (tail, base) = rom_tail();
        let offset = u32::from_le_bytes(entry(&tail, TDX_METADATA_OFFSET).expect("a TDX metadata entry"));
        // QEMU: the descriptor at 4 GiB - offset.
        let descriptor = ((1u64 << 32) - u64::from(offset) - base) as usize;
        assert_eq!(&tail[descriptor..descriptor + 4], b"TDVF");
        assert_eq!(&tail[descriptor..descriptor + crate::tdvf::LEN], &crate::tdvf::encode());
        // OVMF and td-shim: the TDX metadata GUID in the 16 bytes before it.
        assert_eq!(tail[descriptor - GUID_LEN..descriptor], TDX_METADATA.to_bytes());
        assert_eq!(TDX_METADATA, Guid::parse("E9EAF9F3-168E-44D5-A8EB-7F4D8738F6AE"));
        // The SEV metadata is still where its own entry says.
        let sev = u32::from_le_bytes(entry(&tail, SEV_METADATA_OFFSET).expect("an SEV metadata entry"));
        let sev = ((1u64 << 32) - u64::from(sev) - base) as usize;
        assert_eq!(&tail[sev..sev + 4], b"ASEV");
        assert!(sev + crate::sev::LEN <= descriptor - GUID_LEN, "the GUID does not overlap the SEV metadata");
    }

    #[test]
    fn without_the_calling_area_only_the_sev_metadata_differs() {
        let sev = (SEV_METADATA_ADDR - AREA_ADDR) as usize;
        let slot = sev..sev + crate::sev::LEN;
        assert_eq!(AREA[..slot.start], AREA_WITHOUT_SVSM_CAA[..slot.start]);
        assert_eq!(AREA[slot.end..], AREA_WITHOUT_SVSM_CAA[slot.end..]);
        assert_eq!(AREA_WITHOUT_SVSM_CAA[slot], crate::sev::encode_without_svsm_caa());
    }
}
