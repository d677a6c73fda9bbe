//! Reading a firmware image's OVMF-style metadata: the GUID table at its end, the SEV
//! metadata ("ASEV") and the TDVF descriptor it points to.
//!
//! The rules are those of the programs that consume them: QEMU (`hw/i386/pc_sysfw_ovmf.c`,
//! `target/i386/sev.c`, `hw/i386/tdvf.c`) and `sev-snp-measure` (`ovmf.py`). The input is
//! untrusted: every read is bounds-checked and malformed metadata is an error, never a panic.
//! Where the two consumers differ, the stricter reading wins (a duplicated GUID, say, which
//! QEMU resolves top-down and `sev-snp-measure` bottom-up, is rejected).

use twi_linker::guid::{
    GUID_LEN, Guid, SEV_ES_RESET_BLOCK, SEV_HASH_TABLE_RV, SEV_METADATA_OFFSET, TDX_METADATA_OFFSET,
};
use twi_linker::{footer, sev, tdvf};

/// Why an image's metadata cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FirmwareError {
    #[error("the image is {0} bytes: a firmware image is a non-empty multiple of 4 KiB of at most 4 GiB")]
    ImageSize(usize),
    #[error("GUID table entry {guid} at {offset:#x} has size {size}, outside 18..={room}")]
    EntrySize { guid: Guid, offset: usize, size: usize, room: usize },
    #[error("GUID table footer says the table is {0} bytes, more than the image holds")]
    TableSize(usize),
    #[error("GUID {0} appears twice in the GUID table")]
    DuplicateGuid(Guid),
    #[error("GUID table entry {0} is too short for its data")]
    EntryData(Guid),
    #[error("the {what} offset {offset:#x} points outside the image")]
    Offset { what: &'static str, offset: u32 },
    #[error("the SEV metadata has signature {0:02x?}, not \"ASEV\"")]
    SevSignature([u8; 4]),
    #[error("the SEV metadata has version {0}, not 1")]
    SevVersion(u32),
    #[error("the SEV metadata says it is {len} bytes for {count} sections: inconsistent or outside the image")]
    SevLength { len: u32, count: u32 },
    #[error("SEV metadata section {index} has unknown type {kind:#x}")]
    SevSectionType { index: usize, kind: u32 },
    #[error("the image has no TDX metadata (GUID {TDX_METADATA_OFFSET})")]
    NoTdvf,
    #[error("the TDX metadata has signature {0:02x?}, not \"TDVF\"")]
    TdvfSignature([u8; 4]),
    #[error("the TDX metadata has version {0}, not 1")]
    TdvfVersion(u32),
    #[error(
        "the TDX metadata says it is {len} bytes for {count} sections: QEMU needs exactly 16 + 32 × count and at least 2 sections"
    )]
    TdvfLength { len: u32, count: u32 },
    #[error("TDX metadata section {index}: {why}")]
    TdvfSection { index: usize, why: &'static str },
}

/// One SEV metadata section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SevSection {
    pub gpa: u32,
    pub size: u32,
    pub kind: sev::SectionType,
}

/// One TDVF section (as stored; checked against QEMU's rules by [`Firmware::tdvf_sections`]).
pub type TdvfSection = tdvf::Section;

/// A firmware image and the GUID table entries found at its end.
#[derive(Debug, Clone)]
pub struct Firmware<'a> {
    data: &'a [u8],
    /// (GUID, data) in the order found, walking down from the footer.
    table: Vec<(Guid, &'a [u8])>,
}

impl<'a> Firmware<'a> {
    /// Reads the GUID table of `data`, an image that ends at 4 GiB. An image without the
    /// footer GUID has an empty table (as QEMU and `sev-snp-measure` treat it); a table that is
    /// there but malformed is an error.
    pub fn parse(data: &'a [u8]) -> Result<Self, FirmwareError> {
        if data.is_empty() || !data.len().is_multiple_of(4096) || data.len() as u64 > 1 << 32 {
            return Err(FirmwareError::ImageSize(data.len()));
        }
        let trailer = footer::ENTRY_TRAILER_LEN;
        let mut table = Vec::new();
        // The footer: {u16 size, GUID} ending TABLE_END_FROM_TOP bytes before the end.
        let Some(footer_at) = data.len().checked_sub(footer::TABLE_END_FROM_TOP as usize + trailer) else {
            return Ok(Self { data, table });
        };
        let (size, guid) = read_trailer(data, footer_at).ok_or(FirmwareError::ImageSize(data.len()))?;
        if guid != twi_linker::guid::OVMF_TABLE_FOOTER || size < trailer {
            return Ok(Self { data, table });
        }
        let body_len = size - trailer;
        let start = footer_at.checked_sub(body_len).ok_or(FirmwareError::TableSize(size))?;
        // Walk the entries down from the footer.
        let mut end = footer_at;
        while end - start >= trailer {
            let (size, guid) = read_trailer(data, end - trailer).ok_or(FirmwareError::TableSize(size))?;
            let room = end - start;
            if size < trailer || size > room {
                return Err(FirmwareError::EntrySize { guid, offset: end - trailer, size, room });
            }
            if table.iter().any(|(g, _)| *g == guid) {
                return Err(FirmwareError::DuplicateGuid(guid));
            }
            table.push((guid, &data[end - size..end - trailer]));
            end -= size;
        }
        Ok(Self { data, table })
    }

    /// The image's bytes.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The guest-physical address of the image's first byte (it ends at 4 GiB).
    pub fn gpa(&self) -> u64 {
        (1u64 << 32) - self.data.len() as u64
    }

    /// The GUID table, top entry first.
    pub fn table(&self) -> &[(Guid, &'a [u8])] {
        &self.table
    }

    /// The data of the table entry `guid`.
    pub fn entry(&self, guid: Guid) -> Option<&'a [u8]> {
        self.table.iter().find(|(g, _)| *g == guid).map(|(_, d)| *d)
    }

    fn entry_u32(&self, guid: Guid) -> Result<Option<u32>, FirmwareError> {
        match self.entry(guid) {
            None => Ok(None),
            Some(d) => d.get(..4).map(|b| Some(le32(b))).ok_or(FirmwareError::EntryData(guid)),
        }
    }

    /// The SEV-ES AP reset address, if the image has a SEV-ES reset block.
    pub fn sev_es_reset_eip(&self) -> Result<Option<u32>, FirmwareError> {
        self.entry_u32(SEV_ES_RESET_BLOCK)
    }

    /// The GPA of the SEV kernel-hashes table, if the image declares a non-zero one.
    pub fn sev_hashes_table_gpa(&self) -> Result<Option<u32>, FirmwareError> {
        Ok(self.entry_u32(SEV_HASH_TABLE_RV)?.filter(|&gpa| gpa != 0))
    }

    /// The bytes at `offset` from the end of the image, `what` naming them for errors.
    fn offset_from_end(&self, offset: u32, what: &'static str) -> Result<usize, FirmwareError> {
        self.data.len().checked_sub(offset as usize).ok_or(FirmwareError::Offset { what, offset })
    }

    /// The SEV metadata sections, in launch order; empty if the image has none.
    pub fn sev_sections(&self) -> Result<Vec<SevSection>, FirmwareError> {
        let Some(offset) = self.entry_u32(SEV_METADATA_OFFSET)? else { return Ok(Vec::new()) };
        let start = self.offset_from_end(offset, "SEV metadata")?;
        let header = self
            .data
            .get(start..start + sev::HEADER_LEN)
            .ok_or(FirmwareError::Offset { what: "SEV metadata", offset })?;
        let signature: [u8; 4] = [header[0], header[1], header[2], header[3]];
        if signature != sev::SIGNATURE {
            return Err(FirmwareError::SevSignature(signature));
        }
        let (len, version, count) = (le32(&header[4..]), le32(&header[8..]), le32(&header[12..]));
        if version != sev::VERSION {
            return Err(FirmwareError::SevVersion(version));
        }
        let needed = (count as usize).checked_mul(sev::DESC_LEN).and_then(|n| n.checked_add(sev::HEADER_LEN));
        let body = match needed {
            Some(needed) if needed <= len as usize => self.data.get(start + sev::HEADER_LEN..start + needed),
            _ => None,
        };
        let Some(body) = body.filter(|_| start + len as usize <= self.data.len()) else {
            return Err(FirmwareError::SevLength { len, count });
        };
        body.chunks_exact(sev::DESC_LEN)
            .enumerate()
            .map(|(index, d)| {
                let kind = le32(&d[8..]);
                let kind = sev::SectionType::from_u32(kind).ok_or(FirmwareError::SevSectionType { index, kind })?;
                Ok(SevSection { gpa: le32(d), size: le32(&d[4..]), kind })
            })
            .collect()
    }

    /// The TDVF sections, checked as QEMU checks them before it adds them to a TD
    /// (`tdvf_get_metadata`, `tdvf_parse_metadata`, `tdvf_parse_and_check_section_entry`), plus
    /// that file data lies inside the image.
    pub fn tdvf_sections(&self) -> Result<Vec<TdvfSection>, FirmwareError> {
        let offset = self.entry_u32(TDX_METADATA_OFFSET)?.ok_or(FirmwareError::NoTdvf)?;
        let start = self.offset_from_end(offset, "TDX metadata")?;
        let header = self
            .data
            .get(start..start + tdvf::HEADER_LEN)
            .ok_or(FirmwareError::Offset { what: "TDX metadata", offset })?;
        let signature: [u8; 4] = [header[0], header[1], header[2], header[3]];
        if signature != tdvf::SIGNATURE {
            return Err(FirmwareError::TdvfSignature(signature));
        }
        let (len, version, count) = (le32(&header[4..]), le32(&header[8..]), le32(&header[12..]));
        if version != tdvf::VERSION {
            return Err(FirmwareError::TdvfVersion(version));
        }
        let expected = (count as usize).checked_mul(tdvf::SECTION_LEN).and_then(|n| n.checked_add(tdvf::HEADER_LEN));
        let body = match expected {
            Some(expected) if count >= 2 && expected == len as usize => {
                self.data.get(start + tdvf::HEADER_LEN..start + expected)
            }
            _ => None,
        };
        let body = body.ok_or(FirmwareError::TdvfLength { len, count })?;
        body.chunks_exact(tdvf::SECTION_LEN).enumerate().map(|(index, s)| self.tdvf_section(index, s)).collect()
    }

    fn tdvf_section(&self, index: usize, s: &[u8]) -> Result<TdvfSection, FirmwareError> {
        let bad = |why| FirmwareError::TdvfSection { index, why };
        let section = TdvfSection {
            data_offset: le32(s),
            raw_data_size: le32(&s[4..]),
            memory_address: le64(&s[8..]),
            memory_data_size: le64(&s[16..]),
            kind: le32(&s[24..]),
            attributes: le32(&s[28..]),
        };
        if section.memory_data_size < section.raw_data_size as u64 {
            return Err(bad("RawDataSize exceeds MemoryDataSize"));
        }
        if !section.memory_address.is_multiple_of(4096) || !section.memory_data_size.is_multiple_of(4096) {
            return Err(bad("MemoryAddress or MemoryDataSize is not page-aligned"));
        }
        if section.memory_address.checked_add(section.memory_data_size).is_none() {
            return Err(bad("the section wraps around the address space"));
        }
        match tdvf::SectionType::from_u32(section.kind) {
            Some(tdvf::SectionType::Bfv | tdvf::SectionType::Cfv) => {
                if section.raw_data_size == 0 {
                    return Err(bad("a BFV/CFV section has RawDataSize 0"));
                }
                // QEMU hands KVM MemoryDataSize bytes from DataOffset in the file.
                let end = (section.data_offset as u64).checked_add(section.memory_data_size);
                if end.is_none_or(|end| end > self.data.len() as u64) {
                    return Err(bad("the section's data lies outside the image"));
                }
            }
            Some(tdvf::SectionType::TdHob | tdvf::SectionType::TempMem) => {
                if section.raw_data_size != 0 {
                    return Err(bad("a TD_HOB/TEMP_MEM section has file data"));
                }
            }
            _ => return Err(bad("QEMU supports only BFV, CFV, TD_HOB and TEMP_MEM sections")),
        }
        Ok(section)
    }
}

fn read_trailer(data: &[u8], at: usize) -> Option<(usize, Guid)> {
    let bytes = data.get(at..at + 2 + GUID_LEN)?;
    let size = u16::from_le_bytes([bytes[0], bytes[1]]) as usize;
    let mut guid = [0u8; GUID_LEN];
    guid.copy_from_slice(&bytes[2..]);
    Some((size, Guid(guid)))
}

/// Little-endian u32 from the first 4 bytes (callers slice at least 4).
fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn le64(b: &[u8]) -> u64 {
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}
