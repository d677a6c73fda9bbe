//! The TDX metadata ("TDVF descriptor") of the ROM: what the VMM adds to the TD before it runs,
//! and what of it the TDX module measures into MRTD.
//!
//! Format (Intel "TDX Virtual Firmware Design Guide" rev. 1.01 §11.2 Table 11-1/11-2; QEMU
//! `hw/i386/tdvf.c` `TdvfMetadata` / `TdvfSectionEntry`; td-shim
//! `td-shim-interface/src/metadata.rs`), little-endian:
//!
//! descriptor: {u32 signature "TDVF", u32 length (header + sections), u32 version 1,
//! u32 number_of_section_entry}, then sections of 32 bytes:
//!
//! | offset | field | size |
//! |--------|-------|------|
//! | 0  | DataOffset (from the start of the ROM file) | 4 |
//! | 4  | RawDataSize | 4 |
//! | 8  | MemoryAddress | 8 |
//! | 16 | MemoryDataSize | 8 |
//! | 24 | Type | 4 |
//! | 28 | Attributes | 4 |
//!
//! QEMU (10.1 `hw/i386/tdvf.c` `tdvf_parse_and_check_section_entry`) accepts only BFV, CFV,
//! TD_HOB and TEMP_MEM; needs at least two sections and exactly one TD_HOB (it writes the HOB
//! list there); page-aligned addresses and sizes; RawDataSize 0 for TD_HOB/TEMP_MEM and > 0
//! for BFV/CFV. It adds every section with `KVM_TDX_INIT_MEM_REGION` in descriptor order
//! (`tdx_finalize_vm`), measuring the contents only where Attributes has MR.EXTEND; see
//! `twi-host-loader`'s `measure::tdx` for what that makes MRTD.

use core::mem::{offset_of, size_of};

use crate::{EARLY_RAM, ROM_BASE, ROM_SIZE, TD_HOB};

/// "TDVF" as a little-endian u32 (QEMU `TDVF_SIGNATURE` 0x46564454).
pub const SIGNATURE: [u8; 4] = *b"TDVF";
pub const VERSION: u32 = 1;

/// Section types (Design Guide Table 11-2; td-shim `TDX_METADATA_SECTION_TYPE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum SectionType {
    /// Boot firmware volume: code, copied from the ROM file.
    Bfv = 0,
    /// Configuration firmware volume (variables), copied from the ROM file.
    Cfv = 1,
    /// The TD HOB list the VMM writes.
    TdHob = 2,
    /// Zeroed memory the VMM adds (accepted) for early use.
    TempMem = 3,
    PermMem = 4,
    Payload = 5,
    PayloadParam = 6,
    TdInfo = 7,
    TdParams = 8,
}

impl SectionType {
    pub const fn from_u32(value: u32) -> Option<Self> {
        match value {
            0 => Some(Self::Bfv),
            1 => Some(Self::Cfv),
            2 => Some(Self::TdHob),
            3 => Some(Self::TempMem),
            4 => Some(Self::PermMem),
            5 => Some(Self::Payload),
            6 => Some(Self::PayloadParam),
            7 => Some(Self::TdInfo),
            8 => Some(Self::TdParams),
            _ => None,
        }
    }
}

/// Attributes bit 0: extend MRTD with the contents (TDH.MR.EXTEND).
pub const ATTR_MR_EXTEND: u32 = 1 << 0;
/// Attributes bit 1: add with TDH.MEM.PAGE.AUG after launch (unmeasured; td-shim only).
pub const ATTR_PAGE_AUG: u32 = 1 << 1;

/// The descriptor header, as stored.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Header {
    pub signature: [u8; 4],
    pub length: u32,
    pub version: u32,
    pub number_of_section_entry: u32,
}
pub const HEADER_LEN: usize = 16;
const _: () = assert!(size_of::<Header>() == HEADER_LEN);
const _: () = assert!(offset_of!(Header, length) == 4 && offset_of!(Header, number_of_section_entry) == 12);

/// One section, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Section {
    pub data_offset: u32,
    pub raw_data_size: u32,
    pub memory_address: u64,
    pub memory_data_size: u64,
    pub kind: u32,
    pub attributes: u32,
}
pub const SECTION_LEN: usize = 32;
const _: () = assert!(size_of::<Section>() == SECTION_LEN);
const _: () = assert!(offset_of!(Section, memory_address) == 8 && offset_of!(Section, memory_data_size) == 16);
const _: () = assert!(offset_of!(Section, kind) == 24 && offset_of!(Section, attributes) == 28);

impl Section {
    /// Memory the VMM adds empty (TD_HOB, TEMP_MEM): no file data.
    const fn memory(range: &core::ops::Range<u64>, kind: SectionType) -> Self {
        Self {
            data_offset: 0,
            raw_data_size: 0,
            memory_address: range.start,
            memory_data_size: range.end - range.start,
            kind: kind as u32,
            attributes: 0,
        }
    }

    pub const fn to_bytes(&self) -> [u8; SECTION_LEN] {
        let mut out = [0u8; SECTION_LEN];
        crate::bytes::put(&mut out, offset_of!(Section, data_offset), &self.data_offset.to_le_bytes());
        crate::bytes::put(&mut out, offset_of!(Section, raw_data_size), &self.raw_data_size.to_le_bytes());
        crate::bytes::put(&mut out, offset_of!(Section, memory_address), &self.memory_address.to_le_bytes());
        crate::bytes::put(&mut out, offset_of!(Section, memory_data_size), &self.memory_data_size.to_le_bytes());
        crate::bytes::put(&mut out, offset_of!(Section, kind), &self.kind.to_le_bytes());
        crate::bytes::put(&mut out, offset_of!(Section, attributes), &self.attributes.to_le_bytes());
        out
    }
}

/// TWI's sections, in the order the VMM adds them:
/// 1. BFV: the whole ROM, measured (MR.EXTEND), at its run address;
/// 2. TD_HOB: where QEMU writes the HOB list ([`crate::TD_HOB`]);
/// 3. TEMP_MEM for each [`crate::EARLY_RAM`] range (boot scratch, page tables, the Rust image):
///    what the boot stub writes before it could TDCALL[TDG.MEM.PAGE.ACCEPT] itself. The
///    runtime's TDX start-up may rely on exactly these being accepted; everything else (heap,
///    frames) it must accept before use.
pub const SECTIONS: [Section; 5] = [
    Section {
        data_offset: 0,
        raw_data_size: ROM_SIZE as u32,
        memory_address: ROM_BASE,
        memory_data_size: ROM_SIZE as u64,
        kind: SectionType::Bfv as u32,
        attributes: ATTR_MR_EXTEND,
    },
    Section::memory(&TD_HOB, SectionType::TdHob),
    Section::memory(&EARLY_RAM[0], SectionType::TempMem),
    Section::memory(&EARLY_RAM[1], SectionType::TempMem),
    Section::memory(&EARLY_RAM[2], SectionType::TempMem),
];

/// Bytes of the descriptor.
pub const LEN: usize = HEADER_LEN + SECTIONS.len() * SECTION_LEN;

const _: () = {
    let mut i = 0;
    let mut hobs = 0;
    while i < SECTIONS.len() {
        let s = &SECTIONS[i];
        // QEMU's checks (tdvf_parse_and_check_section_entry).
        assert!(s.memory_address.is_multiple_of(0x1000) && s.memory_data_size.is_multiple_of(0x1000));
        assert!(s.raw_data_size as u64 <= s.memory_data_size);
        let data_from_file = s.kind == SectionType::Bfv as u32 || s.kind == SectionType::Cfv as u32;
        assert!(data_from_file == (s.raw_data_size > 0));
        assert!(s.data_offset as u64 + s.raw_data_size as u64 <= ROM_SIZE as u64);
        if s.kind == SectionType::TdHob as u32 {
            hobs += 1;
        }
        // No two sections overlap.
        let mut j = i + 1;
        while j < SECTIONS.len() {
            let t = &SECTIONS[j];
            assert!(
                s.memory_address + s.memory_data_size <= t.memory_address
                    || t.memory_address + t.memory_data_size <= s.memory_address
            );
            j += 1;
        }
        i += 1;
    }
    assert!(hobs == 1 && SECTIONS.len() >= 2);
};

/// The descriptor's bytes.
pub const fn encode() -> [u8; LEN] {
    let mut out = [0u8; LEN];
    let header = Header {
        signature: SIGNATURE,
        length: LEN as u32,
        version: VERSION,
        number_of_section_entry: SECTIONS.len() as u32,
    };
    crate::bytes::put(&mut out, offset_of!(Header, signature), &header.signature);
    crate::bytes::put(&mut out, offset_of!(Header, length), &header.length.to_le_bytes());
    crate::bytes::put(&mut out, offset_of!(Header, version), &header.version.to_le_bytes());
    crate::bytes::put(
        &mut out,
        offset_of!(Header, number_of_section_entry),
        &header.number_of_section_entry.to_le_bytes(),
    );
    let mut i = 0;
    while i < SECTIONS.len() {
        crate::bytes::put(&mut out, HEADER_LEN + i * SECTION_LEN, &SECTIONS[i].to_bytes());
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BOOT_SCRATCH, BOOT_SCRATCH_SIZE, FRAMES, HEAP, IMAGE_RAM, PAGE_TABLES, PAGE_TABLES_SIZE, SHARED_POOL};

    fn temp_mem_covers(start: u64, end: u64) -> bool {
        SECTIONS.iter().any(|s| {
            s.kind == SectionType::TempMem as u32
                && s.memory_address <= start
                && end <= s.memory_address + s.memory_data_size
        })
    }

    /// Everything the boot stub writes before the runtime can TDG.MEM.PAGE.ACCEPT: the boot
    /// scratch page (with the early stack), the page tables, the Rust image with .bss and the
    /// boot stack. A TD touching unaccepted memory there takes a #VE with no IDT: a dead TD.
    #[test]
    fn temp_mem_covers_what_the_boot_stub_writes() {
        assert!(temp_mem_covers(u64::from(BOOT_SCRATCH), u64::from(BOOT_SCRATCH + BOOT_SCRATCH_SIZE)));
        assert!(temp_mem_covers(u64::from(PAGE_TABLES), u64::from(PAGE_TABLES + PAGE_TABLES_SIZE)));
        assert!(temp_mem_covers(IMAGE_RAM.start as u64, IMAGE_RAM.end as u64));
        // The boot stub's six page-table pages (PML4, PDPT, four PDs).
        assert_eq!(PAGE_TABLES_SIZE, 6 * 0x1000);
    }

    /// The runtime accepts the heap and the frame pool itself and maps the shared pool shared
    /// with MapGPA: none of them may be added by the VMM (that would measure or pre-accept
    /// memory the runtime expects pending).
    #[test]
    fn runtime_owned_ranges_are_not_in_the_metadata() {
        for range in [&HEAP, &FRAMES, &SHARED_POOL] {
            let (start, end) = (range.start as u64, range.end as u64);
            assert!(
                SECTIONS.iter().all(|s| end <= s.memory_address || s.memory_address + s.memory_data_size <= start),
                "{start:#x}..{end:#x} overlaps a TDVF section"
            );
        }
    }

    #[test]
    fn exactly_one_td_hob_at_the_layout_address() {
        let mut hobs = SECTIONS.iter().filter(|s| s.kind == SectionType::TdHob as u32);
        assert_eq!(hobs.next().map(|s| s.memory_address), Some(TD_HOB.start));
        assert!(hobs.next().is_none());
    }
}
