//! How much RAM the guest has, from QEMU's fw_cfg interface (QEMU `docs/specs/fw_cfg.rst`;
//! `hw/nvram/fw_cfg.c`, `hw/i386/e820_memory_layout.c`): the `etc/e820` file, a table of
//! `{u64 address, u64 length, u32 type}` entries (little-endian, 20 bytes each, type 1 = RAM),
//! found through the file directory (selector 0x19: a big-endian u32 count, then 64-byte
//! entries `{u32 size, u16 select, u16 reserved, char name[56]}`, big-endian). Pure: the
//! platform (`platform::fw_cfg`) reads the bytes through the HAL's port I/O and hands them here.
//!
//! Why not the CMOS: QEMU's q35 CMOS bytes 0x34/0x35 count RAM above 16 MiB only, so below 16
//! MiB they say nothing and the runtime's check was silently skipped. The e820 table names every
//! byte of RAM QEMU gives the guest. Like everything from the host it is untrusted; it is used
//! only to refuse to start, with a sentence, when the layout cannot fit — a host that lies about
//! RAM makes the runtime fail later, never read something it should not.

use core::ops::Range;

/// The fw_cfg I/O ports on x86 (selector: 16-bit write; data: 8-bit read).
pub const SELECTOR_PORT: u16 = 0x510;
pub const DATA_PORT: u16 = 0x511;
/// Selector 0: the signature "QEMU".
pub const SELECT_SIGNATURE: u16 = 0x0000;
pub const SIGNATURE: [u8; 4] = *b"QEMU";
/// Selector 0x19: the file directory.
pub const SELECT_FILE_DIR: u16 = 0x0019;
/// The e820 table's file name.
pub const E820_FILE: &str = "etc/e820";
/// Bytes of one directory entry and of its name field.
pub const DIR_ENTRY_LEN: usize = 64;
const NAME_LEN: usize = 56;
/// Bytes of one e820 entry.
pub const E820_ENTRY_LEN: usize = 20;
/// e820 type 1: usable RAM.
pub const E820_RAM: u32 = 1;
/// More directory entries than this is not QEMU (it has a few dozen).
pub const MAX_FILES: u32 = 4096;

/// A file of the fw_cfg directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FwCfgFile {
    pub size: u32,
    pub select: u16,
}

/// Why the memory map could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryMapError {
    /// Selector 0 does not read "QEMU": no fw_cfg device.
    NoFwCfg,
    /// The directory claims more files than any QEMU has.
    Directory(u32),
    /// The directory has no `etc/e820`.
    NoE820,
}

impl core::fmt::Display for MemoryMapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoFwCfg => f.write_str("no fw_cfg device"),
            Self::Directory(count) => write!(f, "its directory claims {count} files"),
            Self::NoE820 => f.write_str("no etc/e820 file"),
        }
    }
}

/// Finds `name` in the file directory, reading it byte by byte from `next` (which yields the
/// data port's bytes after selector 0x19 was written). Reads no further than the entry found.
pub fn find_file(mut next: impl FnMut() -> u8, name: &str) -> Result<FwCfgFile, MemoryMapError> {
    let mut word = [0u8; 4];
    word.iter_mut().for_each(|b| *b = next());
    let count = u32::from_be_bytes(word);
    if count > MAX_FILES {
        return Err(MemoryMapError::Directory(count));
    }
    for _ in 0..count {
        let mut entry = [0u8; DIR_ENTRY_LEN];
        entry.iter_mut().for_each(|b| *b = next());
        let stored = &entry[8..8 + NAME_LEN];
        let len = stored.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
        if &stored[..len] == name.as_bytes() {
            return Ok(FwCfgFile {
                size: u32::from_be_bytes([entry[0], entry[1], entry[2], entry[3]]),
                select: u16::from_be_bytes([entry[4], entry[5]]),
            });
        }
    }
    Err(MemoryMapError::NoE820)
}

/// One e820 entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct E820Entry {
    pub address: u64,
    pub length: u64,
    pub kind: u32,
}

/// The entries of an `etc/e820` file (a trailing partial entry is ignored).
pub fn e820_entries(bytes: &[u8]) -> impl Iterator<Item = E820Entry> + Clone + '_ {
    bytes.chunks_exact(E820_ENTRY_LEN).map(|e| E820Entry {
        address: u64::from_le_bytes([e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]]),
        length: u64::from_le_bytes([e[8], e[9], e[10], e[11], e[12], e[13], e[14], e[15]]),
        kind: u32::from_le_bytes([e[16], e[17], e[18], e[19]]),
    })
}

/// The end of the RAM that runs without a gap from address 0 (RAM entries merged where they
/// touch or overlap, whatever their order); 0 when no RAM entry starts at 0.
pub fn ram_from_zero<I: Iterator<Item = E820Entry> + Clone>(entries: I) -> u64 {
    let mut end = 0u64;
    // Each pass extends the run by any RAM entry that starts inside it; at most one pass per
    // entry, so a hostile order costs time quadratic in a table of a few entries.
    loop {
        let before = end;
        for e in entries.clone().filter(|e| e.kind == E820_RAM && e.length > 0) {
            let e_end = e.address.saturating_add(e.length);
            if e.address <= end && e_end > end {
                end = e_end;
            }
        }
        if end == before {
            return end;
        }
    }
}

/// Whether RAM from 0 covers `needed`; `Err` carries how much there is.
pub fn check(ram_end: u64, needed: Range<u64>) -> Result<(), u64> {
    if ram_end >= needed.end { Ok(()) } else { Err(ram_end) }
}
