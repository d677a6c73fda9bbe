//! The SEV kernel-hashes table QEMU writes for `-kernel` boots with `kernel-hashes=on`
//! (`target/i386/sev.c` `SevHashTable`, `sev_add_kernel_loader_hashes`; `sev-snp-measure`
//! `sev_hashes.py`). TWI boots no kernel; this exists so that the calculator measures OVMF
//! direct-boot launches as `sev-snp-measure` does (its known-answer vectors use it).
//!
//! Table (packed): {GUID header, u16 length = 168, then three entries {GUID, u16 length = 50,
//! SHA-256}: cmdline, initrd, kernel}, zero-padded to a multiple of 16 (176 bytes).

use sha2::{Digest, Sha256};
use twi_linker::guid::Guid;

const TABLE_HEADER: Guid = Guid::parse("9438d606-4f22-4cc9-b479-a793d411fd21");
const KERNEL_ENTRY: Guid = Guid::parse("4de79437-abd2-427f-b835-d5b172d2045b");
const INITRD_ENTRY: Guid = Guid::parse("44baf731-3a2f-4bd7-9af1-41e29169781d");
const CMDLINE_ENTRY: Guid = Guid::parse("97d02dd8-bd20-4c94-aa78-e7714d36ab2a");

/// Bytes of one entry: GUID, u16 length, SHA-256.
pub const ENTRY_LEN: usize = 16 + 2 + 32;
/// Bytes of the table without padding.
pub const TABLE_LEN: usize = 16 + 2 + 3 * ENTRY_LEN;
/// Bytes of the table as QEMU writes it (padded to 16).
pub const PADDED_TABLE_LEN: usize = TABLE_LEN.next_multiple_of(16);
const _: () = assert!(ENTRY_LEN == 50 && TABLE_LEN == 168 && PADDED_TABLE_LEN == 176);

/// The SHA-256 hashes of a direct-boot kernel, initrd and command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SevHashes {
    kernel: [u8; 32],
    initrd: [u8; 32],
    cmdline: [u8; 32],
}

impl SevHashes {
    /// `initrd` absent hashes as empty; `append` absent or empty hashes as the single NUL QEMU
    /// passes, and a command line is hashed with its terminating NUL.
    pub fn new(kernel: &[u8], initrd: Option<&[u8]>, append: Option<&str>) -> Self {
        let mut cmdline = append.unwrap_or("").as_bytes().to_vec();
        cmdline.push(0);
        Self {
            kernel: Sha256::digest(kernel).into(),
            initrd: Sha256::digest(initrd.unwrap_or(&[])).into(),
            cmdline: Sha256::digest(&cmdline).into(),
        }
    }

    /// The padded table.
    pub fn table(&self) -> [u8; PADDED_TABLE_LEN] {
        let mut out = [0u8; PADDED_TABLE_LEN];
        out[..16].copy_from_slice(&TABLE_HEADER.to_bytes());
        out[16..18].copy_from_slice(&(TABLE_LEN as u16).to_le_bytes());
        let entries = [(CMDLINE_ENTRY, &self.cmdline), (INITRD_ENTRY, &self.initrd), (KERNEL_ENTRY, &self.kernel)];
        for (i, (guid, hash)) in entries.into_iter().enumerate() {
            let at = 18 + i * ENTRY_LEN;
            out[at..at + 16].copy_from_slice(&guid.to_bytes());
            out[at + 16..at + 18].copy_from_slice(&(ENTRY_LEN as u16).to_le_bytes());
            out[at + 18..at + ENTRY_LEN].copy_from_slice(hash);
        }
        out
    }

    /// A page holding the table at `offset_in_page`, `None` if it does not fit.
    pub fn page(&self, offset_in_page: usize) -> Option<Box<[u8; 4096]>> {
        let end = offset_in_page.checked_add(PADDED_TABLE_LEN).filter(|&end| end <= 4096)?;
        let mut page = Box::new([0u8; 4096]);
        page[offset_in_page..end].copy_from_slice(&self.table());
        Some(page)
    }
}
