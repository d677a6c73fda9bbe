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
//! | [`TDVF_ADDR`] | TDVF descriptor ([`crate::tdvf`]) |
//! | [`TABLE_ADDR`] | GUID table: TDX metadata offset, SEV metadata offset, SEV-ES reset block, footer |
//!
//! The "offset" entries hold the distance from the structure to the end of the ROM (4 GiB), as
//! both QEMU (`flash_ptr + flash_size - offset`) and `sev-snp-measure` (`len(data) - offset`)
//! read it.

use crate::guid::{GUID_LEN, Guid, OVMF_TABLE_FOOTER, SEV_ES_RESET_BLOCK, SEV_METADATA_OFFSET, TDX_METADATA_OFFSET};
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
/// Where the TDVF descriptor lies (16-byte aligned, after the SEV metadata).
pub const TDVF_ADDR: u64 = align16(SEV_METADATA_ADDR + crate::sev::LEN as u64);

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
pub const AREA: [u8; AREA_LEN] = build();

const fn build() -> [u8; AREA_LEN] {
    let mut area = [0u8; AREA_LEN];
    crate::bytes::put(&mut area, (SEV_METADATA_ADDR - AREA_ADDR) as usize, &crate::sev::encode());
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
