//! The SEV metadata ("ASEV") of the ROM: which guest pages the SEV-SNP launch prepares before
//! the first instruction, and how.
//!
//! Format (EDK2 `OvmfPkg/ResetVector/X64/OvmfSevMetadata.asm`; QEMU `target/i386/sev.h`
//! `OvmfSevMetadata` / `OvmfSevMetadataDesc`, both packed, little-endian):
//!
//! | offset | field      | size |
//! |--------|------------|------|
//! | 0      | signature "ASEV" | 4 |
//! | 4      | len: header + descriptors, bytes | 4 |
//! | 8      | version (1) | 4 |
//! | 12     | num_desc    | 4 |
//! | 16     | descriptors: {u32 base, u32 len, u32 type} × num_desc | 12 each |
//!
//! What QEMU does with each type at SNP launch (QEMU ≥ 9.1 `target/i386/sev.c`
//! `snp_metadata_desc_to_page_type` / `snp_populate_metadata_pages`), and so what the launch
//! digest records for each page (`sev-snp-measure` `guest.py` `snp_update_section`, QEMU mode):
//!
//! | type | name | QEMU's SNP_LAUNCH_UPDATE page type | PAGE_INFO |
//! |------|------|------------------------------------|-----------|
//! | 1 | SNP_SEC_MEM | ZERO (3): pre-validated, zero-filled | type 3, contents 0 |
//! | 2 | SNP_SECRETS | SECRETS (5): the PSP writes the VMPCKs | type 5, contents 0 |
//! | 3 | CPUID | CPUID (6): QEMU fills it, the PSP checks it | type 6, contents 0 |
//! | 4 | SVSM_CAA | ZERO (3) | type 3, contents 0 |
//! | 0x10 | SNP_KERNEL_HASHES | NORMAL with the hashes table (kernel-hashes=on), else ZERO | |
//!
//! "Unmeasured" in OVMF's comments means the *contents* are not measured: the page's GPA and
//! type still enter the digest. QEMU queues these after the ROM pages and before the VMSAs, in
//! descriptor order.

use core::mem::{offset_of, size_of};

use crate::{
    BOOT_SCRATCH, BOOT_SCRATCH_SIZE, IMAGE_RAM, PAGE_TABLES, PAGE_TABLES_SIZE, SNP_CPUID_PAGE, SNP_SECRETS_PAGE,
    SVSM_CAA_PAGE,
};

/// "ASEV".
pub const SIGNATURE: [u8; 4] = *b"ASEV";
/// The only version QEMU and `sev-snp-measure` accept.
pub const VERSION: u32 = 1;

/// A section type (EDK2 `OvmfSevMetadata.asm`; QEMU `SevMetadataDescType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum SectionType {
    /// Pre-validated memory the guest uses before it can PVALIDATE ("SNP_SEC_MEM").
    SnpSecMem = 1,
    /// The secrets page.
    SnpSecrets = 2,
    /// The CPUID page.
    Cpuid = 3,
    /// The SVSM calling area.
    SvsmCaa = 4,
    /// The kernel/initrd/cmdline hashes table page.
    SnpKernelHashes = 0x10,
}

impl SectionType {
    /// The type for a raw descriptor value, if it is one.
    pub const fn from_u32(value: u32) -> Option<Self> {
        match value {
            1 => Some(Self::SnpSecMem),
            2 => Some(Self::SnpSecrets),
            3 => Some(Self::Cpuid),
            4 => Some(Self::SvsmCaa),
            0x10 => Some(Self::SnpKernelHashes),
            _ => None,
        }
    }
}

/// The header, as stored.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Header {
    pub signature: [u8; 4],
    pub len: u32,
    pub version: u32,
    pub num_desc: u32,
}
pub const HEADER_LEN: usize = 16;
const _: () = assert!(size_of::<Header>() == HEADER_LEN);
const _: () = assert!(offset_of!(Header, len) == 4 && offset_of!(Header, version) == 8);
const _: () = assert!(offset_of!(Header, num_desc) == 12);

/// One descriptor, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Desc {
    pub base: u32,
    pub len: u32,
    pub kind: u32,
}
pub const DESC_LEN: usize = 12;
const _: () = assert!(size_of::<Desc>() == DESC_LEN);
const _: () = assert!(offset_of!(Desc, len) == 4 && offset_of!(Desc, kind) == 8);

impl Desc {
    pub const fn new(base: u64, len: u64, kind: SectionType) -> Self {
        assert!(base + len <= 1 << 32, "SEV metadata addresses are 32-bit");
        Self { base: base as u32, len: len as u32, kind: kind as u32 }
    }

    pub const fn to_bytes(&self) -> [u8; DESC_LEN] {
        let mut out = [0u8; DESC_LEN];
        crate::bytes::put(&mut out, offset_of!(Desc, base), &self.base.to_le_bytes());
        crate::bytes::put(&mut out, offset_of!(Desc, len), &self.len.to_le_bytes());
        crate::bytes::put(&mut out, offset_of!(Desc, kind), &self.kind.to_le_bytes());
        out
    }
}

/// TWI's sections, in launch order (ascending address). The pre-validated ranges are
/// [`crate::EARLY_RAM`]: what the boot stub writes before any code could PVALIDATE. The SVSM
/// calling area is what COCONUT-SVSM requires of the firmware it boots (`SvsmError::MissingCAA`
/// in its `kernel/src/platform/snp_fw.rs` without one): with it, `igvmbuilder --firmware
/// twi.rom` packages this ROM as an SVSM's guest.
pub const SECTIONS: [Desc; 6] = [
    Desc::new(BOOT_SCRATCH as u64, BOOT_SCRATCH_SIZE as u64, SectionType::SnpSecMem),
    Desc::new(SNP_SECRETS_PAGE, 0x1000, SectionType::SnpSecrets),
    Desc::new(SNP_CPUID_PAGE, 0x1000, SectionType::Cpuid),
    Desc::new(SVSM_CAA_PAGE, 0x1000, SectionType::SvsmCaa),
    Desc::new(PAGE_TABLES as u64, PAGE_TABLES_SIZE as u64, SectionType::SnpSecMem),
    Desc::new(IMAGE_RAM.start as u64, (IMAGE_RAM.end - IMAGE_RAM.start) as u64, SectionType::SnpSecMem),
];

/// Bytes of the metadata.
pub const LEN: usize = HEADER_LEN + SECTIONS.len() * DESC_LEN;

const _: () = {
    // Every section page-aligned, non-empty, and none overlapping the next.
    let mut i = 0;
    while i < SECTIONS.len() {
        let s = &SECTIONS[i];
        assert!(s.base.is_multiple_of(0x1000) && s.len.is_multiple_of(0x1000) && s.len > 0);
        if i + 1 < SECTIONS.len() {
            assert!(s.base + s.len <= SECTIONS[i + 1].base);
        }
        // The secrets and CPUID sections are one page each (the launch updates one page).
        if s.kind == SectionType::SnpSecrets as u32
            || s.kind == SectionType::Cpuid as u32
            || s.kind == SectionType::SvsmCaa as u32
        {
            assert!(s.len == 0x1000);
        }
        i += 1;
    }
};

/// [`SECTIONS`] without the SVSM calling area, for `twi build --no-svsm-caa`: hosts whose QEMU
/// stops at a section type it does not know (some of AMD's SNP QEMU 8.x builds: "Invalid memory
/// type '4'") launch this ROM, and the release of `sev-snp-measure` of that era (0.0.9) measures
/// it. Nothing else changes: without an SVSM the runtime never touches that page. An SVSM
/// refuses such firmware (COCONUT-SVSM `SvsmError::MissingCAA`).
pub const SECTIONS_WITHOUT_SVSM_CAA: [Desc; SECTIONS.len() - 1] = without_svsm_caa();

const fn without_svsm_caa() -> [Desc; SECTIONS.len() - 1] {
    let mut out = [Desc { base: 0, len: 0, kind: 0 }; SECTIONS.len() - 1];
    let (mut i, mut n) = (0, 0);
    while i < SECTIONS.len() {
        if SECTIONS[i].kind != SectionType::SvsmCaa as u32 {
            out[n] = SECTIONS[i];
            n += 1;
        }
        i += 1;
    }
    assert!(n == out.len(), "SECTIONS declares exactly one SVSM calling area");
    out
}

/// The metadata's bytes.
pub const fn encode() -> [u8; LEN] {
    encode_sections(&SECTIONS)
}

/// The metadata's bytes without the SVSM calling area ([`SECTIONS_WITHOUT_SVSM_CAA`]), zero
/// after its last descriptor: the same slot, 12 bytes shorter.
pub const fn encode_without_svsm_caa() -> [u8; LEN] {
    encode_sections(&SECTIONS_WITHOUT_SVSM_CAA)
}

const fn encode_sections(sections: &[Desc]) -> [u8; LEN] {
    let mut out = [0u8; LEN];
    let len = HEADER_LEN + sections.len() * DESC_LEN;
    assert!(len <= LEN);
    let header = Header { signature: SIGNATURE, len: len as u32, version: VERSION, num_desc: sections.len() as u32 };
    crate::bytes::put(&mut out, offset_of!(Header, signature), &header.signature);
    crate::bytes::put(&mut out, offset_of!(Header, len), &header.len.to_le_bytes());
    crate::bytes::put(&mut out, offset_of!(Header, version), &header.version.to_le_bytes());
    crate::bytes::put(&mut out, offset_of!(Header, num_desc), &header.num_desc.to_le_bytes());
    let mut i = 0;
    while i < sections.len() {
        crate::bytes::put(&mut out, HEADER_LEN + i * DESC_LEN, &sections[i].to_bytes());
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn u32_at(bytes: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
    }

    /// The descriptors `bytes` declares, read by its header as QEMU reads them.
    fn read(bytes: &[u8]) -> Vec<(u32, u32, u32)> {
        assert_eq!(bytes[..4], SIGNATURE);
        let count = u32_at(bytes, 12) as usize;
        assert_eq!(u32_at(bytes, 4) as usize, HEADER_LEN + count * DESC_LEN, "len covers exactly the descriptors");
        (0..count)
            .map(|i| HEADER_LEN + i * DESC_LEN)
            .map(|at| (u32_at(bytes, at), u32_at(bytes, at + 4), u32_at(bytes, at + 8)))
            .collect()
    }

    #[test]
    fn the_metadata_without_the_calling_area_drops_that_one_section() {
        let full = read(&encode());
        let without = read(&encode_without_svsm_caa());
        let caa = (SVSM_CAA_PAGE as u32, 0x1000, SectionType::SvsmCaa as u32);
        assert_eq!(full.iter().filter(|s| s.2 == SectionType::SvsmCaa as u32).collect::<Vec<_>>(), [&caa]);
        let expected: Vec<_> = full.iter().copied().filter(|s| *s != caa).collect();
        assert_eq!((without.len(), without), (SECTIONS.len() - 1, expected));
        // Zero after the last descriptor: nothing a reader could take for a seventh.
        assert!(encode_without_svsm_caa()[HEADER_LEN + (SECTIONS.len() - 1) * DESC_LEN..].iter().all(|b| *b == 0));
    }
}
