//! The TDX MRTD of a ROM: the TDX module's SHA-384 over the build-time operations that add
//! and measure the TD's initial memory, driven by the ROM's TDVF metadata.
//!
//! Each operation hashes a 128-byte record (Intel TDX Module ABI specification, TDH.MEM.PAGE.ADD
//! and TDH.MR.EXTEND; the same records as the `igvm` crate's `measurement::tdx` and td-shim's
//! `td-shim-tools` `tee_info_hash.rs`):
//!
//! | operation | record |
//! |-----------|--------|
//! | TDH.MEM.PAGE.ADD | "MEM.PAGE.ADD" (zero-padded to 16 bytes), u64 GPA at 16, zeros to 128 |
//! | TDH.MR.EXTEND (256 bytes at GPA) | "MR.EXTEND" (zero-padded to 16), u64 GPA at 16, zeros to 128, then the 256 bytes |
//!
//! MRTD starts empty at TDH.MNG.INIT and is SHA-384 over all records, finalised at
//! TDH.MR.FINALIZE. Which records come in which order depends on the VMM ([`MrtdOrder`]):
//!
//! - [`MrtdOrder::Kvm`] (the default): QEMU ≥ 10.1 (`target/i386/kvm/tdx.c`
//!   `tdx_finalize_vm`) calls KVM_TDX_INIT_MEM_REGION for every TDVF section in descriptor
//!   order, with KVM_TDX_MEASURE_MEMORY_REGION where the section has MR.EXTEND; Linux ≥ 6.16 KVM
//!   (`arch/x86/kvm/vmx/tdx.c` `tdx_gmem_post_populate`) then, page by page, issues
//!   TDH.MEM.PAGE.ADD and, if measured, 16 × TDH.MR.EXTEND of that page. TD_HOB and TEMP_MEM
//!   sections are added too (so their GPAs enter MRTD) but not extended.
//! - [`MrtdOrder::PerSection`]: td-shim's `td-shim-tee-info-hash` tool: for each section, all
//!   its pages' PAGE.ADD records (unless PAGE.AUG), then MR.EXTEND over its RawDataSize bytes.
//!   Reference values computed with that tool follow this order; a launch by QEMU/KVM does not,
//!   which is one way precomputed MRTDs come to disagree with the hardware.
//!
//! Both agree when every measured section is one page; they differ as soon as one has two.
//! [`MrtdOrder::Kvm`] is what `twi` reports; the other is kept to explain and test the
//! difference. Neither has been checked against TDX hardware here (there is none): the KVM
//! order is checked against the `igvm` crate's independent MRTD calculator (per-page order).

use super::MeasureError;
use super::firmware::{Firmware, TdvfSection};
use super::gctx::{DIGEST_LEN, PAGE_SIZE};
use sha2::{Digest, Sha384};
use twi_linker::tdvf::{ATTR_MR_EXTEND, ATTR_PAGE_AUG, SectionType};

/// Bytes of an operation record.
pub const RECORD_LEN: usize = 128;
/// Bytes measured by one TDH.MR.EXTEND.
pub const EXTEND_CHUNK: usize = 256;

/// The order of MRTD's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MrtdOrder {
    /// QEMU/KVM: per page, PAGE.ADD then its MR.EXTENDs.
    #[default]
    Kvm,
    /// td-shim tee-info-hash: per section, all PAGE.ADDs then all MR.EXTENDs.
    PerSection,
}

impl MrtdOrder {
    pub fn name(self) -> &'static str {
        match self {
            Self::Kvm => "qemu-kvm",
            Self::PerSection => "td-shim-per-section",
        }
    }
}

fn record(op: &[u8], gpa: u64) -> [u8; RECORD_LEN] {
    let mut r = [0u8; RECORD_LEN];
    r[..op.len()].copy_from_slice(op);
    r[16..24].copy_from_slice(&gpa.to_le_bytes());
    r
}

/// A running MRTD.
#[derive(Debug, Clone, Default)]
pub struct Mrtd(Sha384);

impl Mrtd {
    pub fn new() -> Self {
        Self::default()
    }

    /// TDH.MEM.PAGE.ADD of the page at `gpa`.
    pub fn page_add(&mut self, gpa: u64) {
        self.0.update(record(b"MEM.PAGE.ADD", gpa));
    }

    /// TDH.MR.EXTEND of the 256 bytes `chunk` at `gpa`.
    pub fn mr_extend(&mut self, gpa: u64, chunk: &[u8; EXTEND_CHUNK]) {
        self.0.update(record(b"MR.EXTEND", gpa));
        self.0.update(chunk);
    }

    /// MR.EXTEND of a whole page.
    pub fn extend_page(&mut self, gpa: u64, page: &[u8; PAGE_SIZE]) {
        for (i, chunk) in page.chunks_exact(EXTEND_CHUNK).enumerate() {
            let chunk: &[u8; EXTEND_CHUNK] = chunk.try_into().unwrap_or(&[0; EXTEND_CHUNK]);
            self.mr_extend(gpa + (i * EXTEND_CHUNK) as u64, chunk);
        }
    }

    pub fn finish(self) -> [u8; DIGEST_LEN] {
        self.0.finalize().into()
    }
}

/// The TD configuration that, with the MRTD, makes up `TDINFO_STRUCT` (TDX Module ABI,
/// TDREPORT_STRUCT): what the VMM and the TD's owner choose at launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TdInfoInputs {
    pub attributes: u64,
    pub xfam: u64,
    pub mrconfigid: [u8; DIGEST_LEN],
    pub mrowner: [u8; DIGEST_LEN],
    pub mrownerconfig: [u8; DIGEST_LEN],
    /// RTMR0..3 at report time (all zero before the TD extends any).
    pub rtmrs: [[u8; DIGEST_LEN]; 4],
}

impl Default for TdInfoInputs {
    /// Attributes and XFAM zero, no owner-defined IDs, RTMRs zero: td-shim's sample manifest
    /// values apart from attributes and XFAM, which the launch chooses.
    fn default() -> Self {
        Self {
            attributes: 0,
            xfam: 0,
            mrconfigid: [0; DIGEST_LEN],
            mrowner: [0; DIGEST_LEN],
            mrownerconfig: [0; DIGEST_LEN],
            rtmrs: [[0; DIGEST_LEN]; 4],
        }
    }
}

/// `TDINFO_STRUCT` size: attributes, xfam, MRTD, MRCONFIGID, MROWNER, MROWNERCONFIG,
/// RTMR0..3, then SERVTD_HASH (TDX 1.5) and reserved bytes, zero here.
pub const TDINFO_SIZE: usize = 512;

/// The TEE info hash a TDREPORT carries (REPORTMACSTRUCT.TEE_INFO_HASH): SHA-384 over the
/// 512-byte `TDINFO_STRUCT`. With zero RTMRs and no service TD this is td-shim's
/// `td-shim-tee-info-hash` value for the same MRTD and manifest.
pub fn tee_info_hash(mrtd: &[u8; DIGEST_LEN], inputs: &TdInfoInputs) -> [u8; DIGEST_LEN] {
    let mut info = [0u8; TDINFO_SIZE];
    info[0..8].copy_from_slice(&inputs.attributes.to_le_bytes());
    info[8..16].copy_from_slice(&inputs.xfam.to_le_bytes());
    info[16..64].copy_from_slice(mrtd);
    info[64..112].copy_from_slice(&inputs.mrconfigid);
    info[112..160].copy_from_slice(&inputs.mrowner);
    info[160..208].copy_from_slice(&inputs.mrownerconfig);
    for (i, rtmr) in inputs.rtmrs.iter().enumerate() {
        info[208 + 48 * i..256 + 48 * i].copy_from_slice(rtmr);
    }
    Sha384::digest(info).into()
}

/// The MRTD of `rom` launched as a TD.
pub fn mrtd(rom: &[u8], order: MrtdOrder) -> Result<[u8; DIGEST_LEN], MeasureError> {
    let firmware = Firmware::parse(rom)?;
    mrtd_of(&firmware, order)
}

/// The MRTD of an already parsed image.
pub fn mrtd_of(firmware: &Firmware<'_>, order: MrtdOrder) -> Result<[u8; DIGEST_LEN], MeasureError> {
    let sections = firmware.tdvf_sections()?;
    let mut mrtd = Mrtd::new();
    for s in &sections {
        match order {
            MrtdOrder::Kvm => kvm_section(&mut mrtd, firmware, s)?,
            MrtdOrder::PerSection => per_section(&mut mrtd, firmware, s),
        }
    }
    Ok(mrtd.finish())
}

/// The section's initial contents as the VMM copies them: from the file for BFV/CFV, zero for
/// TEMP_MEM; a TD_HOB's contents are QEMU's HOB list, which this calculator does not model.
fn page_source<'a>(firmware: &Firmware<'a>, s: &TdvfSection, page: u64) -> Result<Option<&'a [u8]>, MeasureError> {
    match SectionType::from_u32(s.kind) {
        Some(SectionType::Bfv | SectionType::Cfv) => {
            let at = s.data_offset as u64 + page * PAGE_SIZE as u64;
            // tdvf_sections checked DataOffset + MemoryDataSize against the image.
            Ok(firmware.data().get(at as usize..at as usize + PAGE_SIZE))
        }
        Some(SectionType::TempMem) => Ok(None),
        _ => Err(MeasureError::Tdx("a measured TD_HOB section depends on QEMU's HOB contents")),
    }
}

fn kvm_section(mrtd: &mut Mrtd, firmware: &Firmware<'_>, s: &TdvfSection) -> Result<(), MeasureError> {
    let measured = s.attributes & ATTR_MR_EXTEND != 0;
    for page in 0..s.memory_data_size / PAGE_SIZE as u64 {
        let gpa = s.memory_address + page * PAGE_SIZE as u64;
        mrtd.page_add(gpa);
        if measured {
            let mut contents = [0u8; PAGE_SIZE];
            if let Some(src) = page_source(firmware, s, page)? {
                contents.copy_from_slice(src);
            }
            mrtd.extend_page(gpa, &contents);
        }
    }
    Ok(())
}

fn per_section(mrtd: &mut Mrtd, firmware: &Firmware<'_>, s: &TdvfSection) {
    if s.attributes & ATTR_PAGE_AUG == 0 {
        for page in 0..s.memory_data_size / PAGE_SIZE as u64 {
            mrtd.page_add(s.memory_address + page * PAGE_SIZE as u64);
        }
    }
    if s.attributes & ATTR_MR_EXTEND != 0 {
        let start = s.data_offset as usize;
        let data = firmware.data().get(start..start + s.raw_data_size as usize).unwrap_or(&[]);
        for (i, chunk) in data.chunks(EXTEND_CHUNK).enumerate() {
            let mut block = [0u8; EXTEND_CHUNK];
            block[..chunk.len()].copy_from_slice(chunk);
            mrtd.mr_extend(s.memory_address + (i * EXTEND_CHUNK) as u64, &block);
        }
    }
}

#[cfg(test)]
mod tee_info_hash_tests {
    use super::*;
    use twi_attester::tdx::td_report::{TdReport, report_offset::TDINFO};

    /// The attester's TDREPORT layout (an independent encoding of TDINFO_STRUCT) hashed over its
    /// TDINFO bytes must equal `tee_info_hash` for the same fields.
    #[test]
    fn agrees_with_the_tdreport_layout() {
        let inputs = TdInfoInputs {
            attributes: 0x0000_0000_1000_0000, // SEPT_VE_DISABLE
            xfam: 0x0006_1AE7,
            mrconfigid: [1; 48],
            mrowner: [2; 48],
            mrownerconfig: [3; 48],
            rtmrs: [[4; 48], [5; 48], [6; 48], [7; 48]],
        };
        let mrtd = [9u8; 48];
        let report = TdReport {
            report_type: [0x81, 0, 0, 0],
            cpu_svn: [0; 16],
            tee_tcb_info_hash: [0; 48],
            tee_info_hash: [0; 48],
            report_data: [0; 64],
            mac: [0; 32],
            tee_tcb_info_valid: [0; 8],
            tee_tcb_svn: [0; 16],
            mr_seam: [0; 48],
            mr_signer_seam: [0; 48],
            seam_attributes: [0; 8],
            tee_tcb_svn_2: [0; 16],
            td_attributes: inputs.attributes.to_le_bytes(),
            xfam: inputs.xfam.to_le_bytes(),
            mr_td: mrtd,
            mr_config_id: inputs.mrconfigid,
            mr_owner: inputs.mrowner,
            mr_owner_config: inputs.mrownerconfig,
            rtmr: inputs.rtmrs,
            servtd_hash: [0; 48],
        };
        let bytes = report.to_bytes();
        let expected: [u8; 48] = Sha384::digest(&bytes[TDINFO..]).into();
        assert_eq!(tee_info_hash(&mrtd, &inputs), expected);
        // Any field matters.
        let other = TdInfoInputs { xfam: 0xE7, ..inputs };
        assert_ne!(tee_info_hash(&mrtd, &other), expected);
    }
}
