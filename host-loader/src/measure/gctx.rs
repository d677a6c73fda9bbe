//! The SEV-SNP launch digest: the PSP's guest context (GCTX) digest, extended once per page by
//! SNP_LAUNCH_UPDATE.
//!
//! Each update sets `LD = SHA-384(PAGE_INFO)`, where PAGE_INFO (SEV Secure Nested Paging
//! Firmware ABI Specification, AMD #56860, SNP_LAUNCH_UPDATE, "PAGE_INFO Structure"; Table 67
//! in the revision `sev-snp-measure`'s `gctx.py` cites) is:
//!
//! | offset | field | size |
//! |--------|-------|------|
//! | 0x00 | DIGEST_CUR: the digest so far | 48 |
//! | 0x30 | CONTENTS: SHA-384 of the page (NORMAL, VMSA), else zero | 48 |
//! | 0x60 | LENGTH = 0x70 | 2 |
//! | 0x62 | PAGE_TYPE | 1 |
//! | 0x63 | IMI_PAGE (bit 0) | 1 |
//! | 0x64 | VMPL3_PERMS | 1 |
//! | 0x65 | VMPL2_PERMS | 1 |
//! | 0x66 | VMPL1_PERMS | 1 |
//! | 0x67 | reserved | 1 |
//! | 0x68 | GPA | 8 |
//!
//! The digest starts at 48 zero bytes. QEMU/KVM launch pages as non-IMI with no lower-VMPL
//! permissions, so those fields are zero.

use super::sha384;

/// Bytes of PAGE_INFO.
pub const PAGE_INFO_LEN: usize = 0x70;
/// Bytes of a launch digest.
pub const DIGEST_LEN: usize = 48;
/// The page size of every launch update.
pub const PAGE_SIZE: usize = 4096;
/// The GPA the PSP records for every VMSA page: KVM hands it (u64)-1, page-aligned and with
/// the bits above 51 cleared (`sev-snp-measure` `gctx.py` `VMSA_GPA`).
pub const VMSA_GPA: u64 = 0xFFFF_FFFF_F000;

mod off {
    pub const DIGEST_CUR: usize = 0x00;
    pub const CONTENTS: usize = 0x30;
    pub const LENGTH: usize = 0x60;
    pub const PAGE_TYPE: usize = 0x62;
    pub const GPA: usize = 0x68;
}
const _: () = assert!(off::CONTENTS == off::DIGEST_CUR + DIGEST_LEN);
const _: () = assert!(off::LENGTH == off::CONTENTS + DIGEST_LEN && off::GPA + 8 == PAGE_INFO_LEN);

/// SNP page types (Firmware ABI, SNP_LAUNCH_UPDATE "PAGE_TYPE field encodings").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PageType {
    Normal = 1,
    Vmsa = 2,
    Zero = 3,
    Unmeasured = 4,
    Secrets = 5,
    Cpuid = 6,
}

/// A running SNP launch digest.
#[derive(Debug, Clone)]
pub struct Gctx {
    ld: [u8; DIGEST_LEN],
}

impl Default for Gctx {
    fn default() -> Self {
        Self::new()
    }
}

impl Gctx {
    /// The digest before the first page.
    pub fn new() -> Self {
        Self { ld: [0; DIGEST_LEN] }
    }

    /// Continues from a digest computed elsewhere (`sev-snp-measure --snp-ovmf-hash`).
    pub fn with_seed(seed: [u8; DIGEST_LEN]) -> Self {
        Self { ld: seed }
    }

    /// The digest so far.
    pub fn digest(&self) -> [u8; DIGEST_LEN] {
        self.ld
    }

    /// One SNP_LAUNCH_UPDATE of one page.
    pub fn update(&mut self, page_type: PageType, gpa: u64, contents: &[u8; DIGEST_LEN]) {
        let mut info = [0u8; PAGE_INFO_LEN];
        info[off::DIGEST_CUR..off::CONTENTS].copy_from_slice(&self.ld);
        info[off::CONTENTS..off::LENGTH].copy_from_slice(contents);
        info[off::LENGTH..off::LENGTH + 2].copy_from_slice(&(PAGE_INFO_LEN as u16).to_le_bytes());
        info[off::PAGE_TYPE] = page_type as u8;
        info[off::GPA..].copy_from_slice(&gpa.to_le_bytes());
        self.ld = sha384(&info);
    }

    /// NORMAL pages with these contents, from `gpa` on (whole pages; a short tail is zero-padded,
    /// as a loader copies it into a zeroed page).
    pub fn normal_pages(&mut self, gpa: u64, data: &[u8]) {
        for (i, chunk) in data.chunks(PAGE_SIZE).enumerate() {
            let digest = if chunk.len() == PAGE_SIZE {
                sha384(chunk)
            } else {
                let mut page = [0u8; PAGE_SIZE];
                page[..chunk.len()].copy_from_slice(chunk);
                sha384(&page)
            };
            self.update(PageType::Normal, gpa + (i * PAGE_SIZE) as u64, &digest);
        }
    }

    /// Pages of a type whose contents are not measured (ZERO, UNMEASURED, SECRETS, CPUID),
    /// covering `len` bytes from `gpa` (rounded up to whole pages).
    pub fn unhashed_pages(&mut self, page_type: PageType, gpa: u64, len: u64) {
        for page in 0..len.div_ceil(PAGE_SIZE as u64) {
            self.update(page_type, gpa + page * PAGE_SIZE as u64, &[0; DIGEST_LEN]);
        }
    }

    /// One VMSA page (recorded at [`VMSA_GPA`]).
    pub fn vmsa_page(&mut self, vmsa: &[u8; PAGE_SIZE]) {
        self.update(PageType::Vmsa, VMSA_GPA, &sha384(vmsa));
    }
}
