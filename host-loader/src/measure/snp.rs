//! The SEV-SNP launch digest of a ROM launched with `qemu -bios` (or OVMF with `-bios`/pflash),
//! computed as `sev-snp-measure` (virtee, `guest.py` `snp_calc_launch_digest`) does, and as
//! QEMU ≥ 9.1 with KVM launches it (`target/i386/sev.c`):
//!
//! 1. every page of the ROM, NORMAL, from 4 GiB − size upwards (`sev_encrypt_flash` queues the
//!    whole firmware as one NORMAL update);
//! 2. the SEV metadata sections in descriptor order (`snp_populate_metadata_pages`), each page
//!    with the type of [`twi_linker::sev`]'s table (EC2 instead measures the CPUID page last);
//! 3. one VMSA per vCPU at SNP_LAUNCH_FINISH, BSP first, APs starting at the SEV-ES reset
//!    block's address ([`super::vmsa`]).
//!
//! The guest policy is not part of the digest (the PSP reports it separately in the report's
//! POLICY field); guest features are, through each VMSA's SEV_FEATURES.

use super::MeasureError;
use super::cpu::{CpuType, DEFAULT_CPU_TYPE};
use super::firmware::{Firmware, SevSection};
use super::gctx::{DIGEST_LEN, Gctx, PAGE_SIZE, PageType};
use super::host_profile::HostProfile;
use super::sev_hashes::SevHashes;
use super::vmsa::{self, SEV_FEATURES_SNP_ACTIVE, VmmType, VmsaParams};
use twi_linker::sev::SectionType;

/// QEMU's default SNP guest policy (`sev-snp-guest` `policy`): SMT allowed (bit 16), reserved
/// bit 17 set; no debugging, no migration agent.
pub const DEFAULT_POLICY: u64 = 0x30000;

/// What besides the ROM determines the launch digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnpLaunchParams {
    /// vCPUs (`-smp`): one VMSA each.
    pub vcpus: u32,
    /// The CPUID signature of the vCPU model (`-cpu`), see [`super::cpu`].
    pub vcpu_sig: u32,
    /// SEV_FEATURES of every VMSA.
    pub guest_features: u64,
    /// KVM put the vCPU's FPU reset state into each VMSA ([`super::host_profile`]).
    pub vmsa_fpu: bool,
    pub vmm: VmmType,
    /// QEMU `kernel-hashes=on` with `-kernel`: the table it writes into the SNP_KERNEL_HASHES
    /// section. `None` for TWI (no kernel).
    pub kernel_hashes: Option<SevHashes>,
    /// The digest after the ROM pages, when precomputed (`sev-snp-measure --snp-ovmf-hash`):
    /// the ROM's contents are then not read, only its metadata.
    pub rom_digest: Option<[u8; DIGEST_LEN]>,
}

impl Default for SnpLaunchParams {
    /// One EPYC-v4 vCPU under QEMU/KVM with SNP_ACTIVE only: TWI's `snp` launch profile.
    fn default() -> Self {
        Self {
            vcpus: 1,
            vcpu_sig: CpuType::by_name(DEFAULT_CPU_TYPE).map_or(0, |c| c.sig()),
            guest_features: SEV_FEATURES_SNP_ACTIVE,
            vmsa_fpu: true,
            vmm: VmmType::Qemu,
            kernel_hashes: None,
            rom_digest: None,
        }
    }
}

impl SnpLaunchParams {
    /// `vcpus` vCPUs of the QEMU model `cpu_type` (e.g. "EPYC-v4"), other fields default.
    pub fn qemu(vcpus: u32, cpu_type: &str) -> Result<Self, MeasureError> {
        let cpu = CpuType::by_name(cpu_type).ok_or_else(|| MeasureError::UnknownCpuType(cpu_type.to_string()))?;
        Ok(Self { vcpus, vcpu_sig: cpu.sig(), ..Self::default() })
    }

    /// These parameters on a host of `profile`: its SEV_FEATURES and VMSA FPU state.
    pub fn on_host(&self, profile: &HostProfile) -> Self {
        Self { guest_features: profile.sev_features, vmsa_fpu: profile.vmsa_fpu, ..self.clone() }
    }
}

/// The launch digest (the report's MEASUREMENT) of `rom` launched with `params`.
pub fn launch_digest(rom: &[u8], params: &SnpLaunchParams) -> Result<[u8; DIGEST_LEN], MeasureError> {
    let firmware = Firmware::parse(rom)?;
    launch_digest_of(&firmware, params)
}

/// The launch digest of an already parsed image.
pub fn launch_digest_of(firmware: &Firmware<'_>, params: &SnpLaunchParams) -> Result<[u8; DIGEST_LEN], MeasureError> {
    if params.vcpus == 0 {
        return Err(MeasureError::NoVcpus);
    }
    let ap_eip = reset_eip(firmware)?;
    let sections = firmware.sev_sections()?;
    if sections.is_empty() {
        return Err(MeasureError::NoSevMetadata);
    }
    let mut gctx = match params.rom_digest {
        Some(seed) => Gctx::with_seed(seed),
        None => {
            let mut gctx = Gctx::new();
            gctx.normal_pages(firmware.gpa(), firmware.data());
            gctx
        }
    };
    metadata_pages(&mut gctx, firmware, &sections, params)?;
    let vmsa_params = VmsaParams {
        sev_features: params.guest_features,
        vcpu_sig: params.vcpu_sig,
        vmm: params.vmm,
        fpu: params.vmsa_fpu,
    };
    for page in vmsa::pages(params.vcpus, ap_eip, &vmsa_params) {
        gctx.vmsa_page(&page);
    }
    Ok(gctx.digest())
}

/// The digest after the ROM pages alone (`sev-snp-measure --mode snp:ovmf-hash`).
pub fn rom_pages_digest(rom: &[u8]) -> Result<[u8; DIGEST_LEN], MeasureError> {
    let firmware = Firmware::parse(rom)?;
    let mut gctx = Gctx::new();
    gctx.normal_pages(firmware.gpa(), firmware.data());
    Ok(gctx.digest())
}

/// The SEV-ES AP reset address: required, and non-zero (QEMU `sev_es_save_reset_vector`).
pub(crate) fn reset_eip(firmware: &Firmware<'_>) -> Result<u32, MeasureError> {
    match firmware.sev_es_reset_eip()? {
        None => Err(MeasureError::NoResetBlock),
        Some(0) => Err(MeasureError::ZeroResetAddress),
        Some(eip) => Ok(eip),
    }
}

fn metadata_pages(
    gctx: &mut Gctx,
    firmware: &Firmware<'_>,
    sections: &[SevSection],
    params: &SnpLaunchParams,
) -> Result<(), MeasureError> {
    let page = PAGE_SIZE as u32;
    for (index, s) in sections.iter().enumerate() {
        let bad_size = || MeasureError::SevSectionSize { index, kind: s.kind, gpa: s.gpa, size: s.size };
        let one_page = matches!(s.kind, SectionType::SnpSecrets | SectionType::Cpuid | SectionType::SnpKernelHashes);
        if s.size == 0 || s.size % page != 0 || s.gpa % page != 0 || (one_page && s.size != page) {
            return Err(bad_size());
        }
        let (gpa, size) = (s.gpa as u64, s.size as u64);
        match s.kind {
            SectionType::SnpSecMem if params.vmm == VmmType::Gce => {
                gctx.unhashed_pages(PageType::Unmeasured, gpa, size)
            }
            SectionType::SnpSecMem | SectionType::SvsmCaa => gctx.unhashed_pages(PageType::Zero, gpa, size),
            SectionType::SnpSecrets => gctx.unhashed_pages(PageType::Secrets, gpa, size),
            SectionType::Cpuid if params.vmm == VmmType::Ec2 => {} // measured after the others
            SectionType::Cpuid => gctx.unhashed_pages(PageType::Cpuid, gpa, size),
            SectionType::SnpKernelHashes => match &params.kernel_hashes {
                Some(hashes) => {
                    let table_gpa = firmware.sev_hashes_table_gpa()?.ok_or(MeasureError::NoKernelHashesTable)?;
                    let hashes_page = hashes.page(table_gpa as usize % PAGE_SIZE).ok_or_else(bad_size)?;
                    gctx.normal_pages(gpa, hashes_page.as_slice());
                }
                None => gctx.unhashed_pages(PageType::Zero, gpa, size),
            },
        }
    }
    if params.vmm == VmmType::Ec2 {
        for s in sections.iter().filter(|s| s.kind == SectionType::Cpuid) {
            gctx.unhashed_pages(PageType::Cpuid, s.gpa as u64, s.size as u64);
        }
    }
    if params.kernel_hashes.is_some() && !sections.iter().any(|s| s.kind == SectionType::SnpKernelHashes) {
        return Err(MeasureError::NoKernelHashesSection);
    }
    Ok(())
}
