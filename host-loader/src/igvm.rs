//! The IGVM file of a ROM (`twi build` → `twi.igvm`), for hosts that load IGVM (paravisor-style
//! hosts; QEMU ≥ 10.0 built with `--enable-igvm` via `-object igvm-cfg`), built with the
//! `igvm` crate (the format's reference implementation).
//!
//! Platforms: NATIVE (compatibility mask [`NATIVE_MASK`]) and SEV-SNP ([`SNP_MASK`]). Directives,
//! in file order:
//!
//! 1. every page of the ROM at its address below 4 GiB, both platforms, measured (explicit
//!    data, so a zero page is a NORMAL page of zeros: the serializer stores one copy);
//! 2. SNP only, the ROM's SEV metadata sections in their order: SNP_SEC_MEM ranges as measured
//!    pages of zeros, the secrets page as a SECRETS page, the CPUID page as a CPUID_DATA page
//!    (the loader fills it, the PSP checks it);
//! 3. SNP only, one VMSA per vCPU, the `-bios` launch's VMSAs ([`crate::measure::vmsa`]) except
//!    CR0, which is what KVM loads from an IGVM file ([`vmsa::IGVM_REAL_MODE_CR0`]: with the
//!    `-bios` value, 0x10, COCONUT's `igvmmeasure --check-kvm` refuses the file and the digest
//!    would not be the one a KVM launch reports), at GPA [`VMSA_GPA`], last (KVM measures VMSAs
//!    at LAUNCH_FINISH, after every page). `igvmmeasure --check-kvm` also accepts only one
//!    VMSA: `twi build`'s default of one vCPU.
//!
//! No NATIVE VP context: a native loader starts the vCPU at the architectural reset vector, which
//! the ROM pages provide. TDX is not in the file (QEMU's IGVM loader does not support TDX);
//! `twi.rom` carries the TDVF metadata for TDX.
//!
//! Pre-validated pages are measured zeros rather than empty page data: for empty NORMAL page
//! data QEMU's loader issues a ZERO update (`backends/igvm.c` `qigvm_type_to_cgs_type`) while
//! the `igvm` crate's calculator (and Microsoft's loaders) measure a NORMAL page of zeros. With
//! explicit zeros every loader measures the same thing, so [`snp_launch_digest`] is unambiguous;
//! it differs from the `-bios` digest only in those pages' type (NORMAL here, ZERO there).

use igvm::snp_defs::SevVmsa;
use igvm::{IgvmDirectiveHeader, IgvmFile, IgvmInitializationHeader, IgvmPlatformHeader, IgvmRevision};
use igvm_defs::{
    IGVM_NATIVE_PLATFORM_VERSION, IGVM_SEV_SNP_PLATFORM_VERSION, IGVM_VHS_SUPPORTED_PLATFORM, IgvmPageDataFlags,
    IgvmPageDataType, IgvmPlatformType,
};
use zerocopy::{FromBytes, IntoBytes};

use crate::measure::firmware::Firmware;
use crate::measure::gctx::{DIGEST_LEN, Gctx, PAGE_SIZE, PageType, VMSA_GPA};
use crate::measure::sha384;
use crate::measure::snp::{SnpLaunchParams, reset_eip};
use crate::measure::vmsa::{self, VmsaParams};
use crate::measure::{MeasureError, snp};
use twi_linker::sev::SectionType;

/// The NATIVE platform's compatibility mask.
pub const NATIVE_MASK: u32 = 0x1;
/// The SEV-SNP platform's compatibility mask.
pub const SNP_MASK: u32 = 0x2;

/// Why an IGVM file cannot be built or measured.
#[derive(Debug, thiserror::Error)]
pub enum IgvmError {
    #[error(transparent)]
    Measure(#[from] MeasureError),
    #[error("igvm: {0}")]
    Format(#[from] igvm::Error),
    #[error("IGVM launch parameters: {0}")]
    Params(&'static str),
    #[error("the IGVM file has no SEV-SNP platform")]
    NoSnpPlatform,
    #[error("directive {index} cannot be measured by this calculator: {what}")]
    Unsupported { index: usize, what: &'static str },
}

/// What the file is built for: the SNP launch (vCPUs, their model, guest features) and the
/// SNP guest policy it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgvmParams {
    pub snp: SnpLaunchParams,
    pub policy: u64,
}

impl Default for IgvmParams {
    fn default() -> Self {
        Self { snp: SnpLaunchParams::default(), policy: snp::DEFAULT_POLICY }
    }
}

fn platform(mask: u32, platform_type: IgvmPlatformType, version: u16) -> IgvmPlatformHeader {
    IgvmPlatformHeader::SupportedPlatform(IGVM_VHS_SUPPORTED_PLATFORM {
        compatibility_mask: mask,
        highest_vtl: 0,
        platform_type,
        platform_version: version,
        shared_gpa_boundary: 0,
    })
}

fn page(gpa: u64, mask: u32, data_type: IgvmPageDataType, data: Vec<u8>) -> IgvmDirectiveHeader {
    IgvmDirectiveHeader::PageData { gpa, compatibility_mask: mask, flags: IgvmPageDataFlags::new(), data_type, data }
}

/// The IGVM file for `rom` (a TWI ROM, or any image with SEV metadata and a SEV-ES reset block).
pub fn build(rom: &[u8], params: &IgvmParams) -> Result<IgvmFile, IgvmError> {
    let p = &params.snp;
    if p.kernel_hashes.is_some() || p.rom_digest.is_some() || p.vmm != vmsa::VmmType::Qemu {
        return Err(IgvmError::Params(
            "an IGVM file carries the ROM itself, for a QEMU-style loader, without a kernel",
        ));
    }
    if p.vcpus == 0 || p.vcpus > u16::MAX as u32 + 1 {
        return Err(IgvmError::Params("the vCPU count must be 1..=65536"));
    }
    let firmware = Firmware::parse(rom).map_err(MeasureError::from)?;
    let ap_eip = reset_eip(&firmware)?;
    let sections = firmware.sev_sections().map_err(MeasureError::from)?;
    if sections.is_empty() {
        return Err(MeasureError::NoSevMetadata.into());
    }

    let mut directives = Vec::new();
    for (i, chunk) in rom.chunks(PAGE_SIZE).enumerate() {
        let gpa = firmware.gpa() + (i * PAGE_SIZE) as u64;
        directives.push(page(gpa, NATIVE_MASK | SNP_MASK, IgvmPageDataType::NORMAL, chunk.to_vec()));
    }
    for s in &sections {
        let data_type = match s.kind {
            SectionType::SnpSecrets => IgvmPageDataType::SECRETS,
            SectionType::Cpuid => IgvmPageDataType::CPUID_DATA,
            SectionType::SnpSecMem | SectionType::SvsmCaa => IgvmPageDataType::NORMAL,
            SectionType::SnpKernelHashes => {
                return Err(IgvmError::Params("kernel-hashes sections have no IGVM form here"));
            }
        };
        for offset in (0..s.size as u64).step_by(PAGE_SIZE) {
            let data = if data_type == IgvmPageDataType::NORMAL { vec![0u8; PAGE_SIZE] } else { Vec::new() };
            directives.push(page(s.gpa as u64 + offset, SNP_MASK, data_type, data));
        }
    }
    // QEMU loads IGVM files only on hosts with KVM_SEV_INIT2 (QEMU >= 10.0 with Linux >= 6.11),
    // which put the FPU reset state into the VMSA: the upstream host profile's VMSA, whatever
    // profile the ROM is measured for.
    let vmsa_params = VmsaParams { sev_features: p.guest_features, vcpu_sig: p.vcpu_sig, vmm: p.vmm, fpu: true };
    for (vp_index, vmsa) in vmsa::pages(p.vcpus, ap_eip, &vmsa_params).into_iter().enumerate() {
        let mut vmsa = SevVmsa::read_from_bytes(vmsa.as_slice()).map_err(|_| IgvmError::Params("VMSA size"))?;
        vmsa.cr0 = vmsa::IGVM_REAL_MODE_CR0;
        directives.push(IgvmDirectiveHeader::SnpVpContext {
            gpa: VMSA_GPA,
            compatibility_mask: SNP_MASK,
            vp_index: vp_index as u16,
            vmsa: Box::new(vmsa),
        });
    }

    let platforms = vec![
        platform(NATIVE_MASK, IgvmPlatformType::NATIVE, IGVM_NATIVE_PLATFORM_VERSION),
        platform(SNP_MASK, IgvmPlatformType::SEV_SNP, IGVM_SEV_SNP_PLATFORM_VERSION),
    ];
    let initializations =
        vec![IgvmInitializationHeader::GuestPolicy { policy: params.policy, compatibility_mask: SNP_MASK }];
    Ok(IgvmFile::new(IgvmRevision::V1, platforms, initializations, directives)?)
}

/// The file's bytes.
pub fn to_bytes(file: &IgvmFile) -> Result<Vec<u8>, IgvmError> {
    let mut out = Vec::new();
    file.serialize(&mut out)?;
    Ok(out)
}

/// Parses an IGVM file (the `igvm` crate's parser: checksums, header validation).
pub fn parse(bytes: &[u8]) -> Result<IgvmFile, IgvmError> {
    Ok(IgvmFile::new_from_binary(bytes, None)?)
}

/// The SEV-SNP launch digest of an IGVM file loaded by QEMU/KVM: its SNP page directives in
/// file order, then its VMSAs (recorded at [`VMSA_GPA`], where KVM puts every VMSA).
pub fn snp_launch_digest(file: &IgvmFile) -> Result<[u8; DIGEST_LEN], IgvmError> {
    let snp_mask = file
        .platforms()
        .iter()
        .find_map(|IgvmPlatformHeader::SupportedPlatform(p)| {
            (p.platform_type == IgvmPlatformType::SEV_SNP).then_some(p.compatibility_mask)
        })
        .ok_or(IgvmError::NoSnpPlatform)?;
    let mut gctx = Gctx::new();
    let mut vmsas = Vec::new();
    for (index, d) in file.directives().iter().enumerate() {
        if d.compatibility_mask().is_some_and(|m| m & snp_mask == 0) {
            continue;
        }
        match d {
            IgvmDirectiveHeader::PageData { gpa, flags, data_type, data, .. } => {
                if flags.shared() || flags.is_2mb_page() || data.len() > PAGE_SIZE {
                    return Err(IgvmError::Unsupported { index, what: "shared, 2 MiB or oversized page data" });
                }
                let page_type = match *data_type {
                    IgvmPageDataType::SECRETS => PageType::Secrets,
                    IgvmPageDataType::CPUID_DATA | IgvmPageDataType::CPUID_XF => PageType::Cpuid,
                    _ if flags.unmeasured() => PageType::Unmeasured,
                    _ if data.is_empty() => PageType::Zero,
                    _ => PageType::Normal,
                };
                if page_type == PageType::Normal {
                    gctx.normal_pages(*gpa, data);
                } else {
                    gctx.unhashed_pages(page_type, *gpa, PAGE_SIZE as u64);
                }
            }
            IgvmDirectiveHeader::SnpVpContext { vmsa, .. } => {
                let mut page = Box::new([0u8; PAGE_SIZE]);
                page.copy_from_slice(vmsa.as_bytes());
                vmsas.push(page);
            }
            IgvmDirectiveHeader::ParameterArea { .. }
            | IgvmDirectiveHeader::ParameterInsert(_)
            | IgvmDirectiveHeader::SnpIdBlock { .. } => {
                return Err(IgvmError::Unsupported { index, what: "parameter areas and ID blocks" });
            }
            _ => {}
        }
    }
    for vmsa in &vmsas {
        gctx.vmsa_page(vmsa);
    }
    Ok(gctx.digest())
}

/// SHA-384 of the file's bytes, hex.
pub fn file_sha384(bytes: &[u8]) -> String {
    hex::encode(sha384(bytes))
}
