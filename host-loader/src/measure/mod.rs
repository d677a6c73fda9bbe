//! Launch-measurement calculators: what the hardware will report for an image, computed
//! offline from the image's exact bytes.
//!
//! - [`snp`]: the SEV-SNP launch digest (MEASUREMENT) of a ROM booted with `qemu -bios`,
//!   compatible with virtee's `sev-snp-measure` (driven by the ROM's own OVMF-style metadata,
//!   so it measures OVMF images as well as TWI's), and the SEV / SEV-ES digests of [`sev`].
//! - [`tdx`]: the TDX MRTD of the same ROM (from its TDVF metadata).
//! - [`host_profile`]: the host stacks (KVM + QEMU) whose initial VMSAs differ, one SEV-SNP
//!   reference value each.
//! - [`reference`](mod@reference): the `reference-values.json` that `twi build` writes.
//!
//! The ROM's metadata is parsed by [`firmware`], which never panics on hostile input. The
//! IGVM launch digest lives with the IGVM builder (`igvm.rs`), which uses these calculators.

pub mod cpu;
pub mod firmware;
pub mod gctx;
pub mod host_profile;
pub mod reference;
pub mod sev;
pub mod sev_hashes;
pub mod snp;
pub mod tdx;
pub mod vmsa;

/// SHA-384 of `data`.
pub(crate) fn sha384(data: &[u8]) -> [u8; 48] {
    use sha2::{Digest, Sha384};
    Sha384::digest(data).into()
}

/// Why an image cannot be measured for a platform.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeasureError {
    #[error(transparent)]
    Firmware(#[from] firmware::FirmwareError),
    #[error(
        "the image has no SEV-ES reset block (GUID {}): QEMU refuses SEV-ES and SEV-SNP launches without one",
        twi_linker::guid::SEV_ES_RESET_BLOCK
    )]
    NoResetBlock,
    #[error("the SEV-ES reset block holds address 0, which QEMU refuses")]
    ZeroResetAddress,
    #[error("the image has no SEV metadata: QEMU refuses an SEV-SNP launch without it")]
    NoSevMetadata,
    #[error(
        "SEV metadata section {index} ({kind:?} at {gpa:#x}, {size:#x} bytes) is not a whole number of pages, or not one page where one is required"
    )]
    SevSectionSize { index: usize, kind: twi_linker::sev::SectionType, gpa: u32, size: u32 },
    #[error("Kernel specified but OVMF metadata doesn't include SNP_KERNEL_HASHES section")]
    NoKernelHashesSection,
    #[error("Kernel specified but OVMF doesn't support kernel/initrd/cmdline measurement")]
    NoKernelHashesTable,
    #[error("the vCPU count must be at least 1")]
    NoVcpus,
    #[error("unknown vCPU type {0:?} (known: {known})", known = cpu::names().join(", "))]
    UnknownCpuType(String),
    #[error(
        "unknown host profile {0:?} (known: {known})",
        known = host_profile::names().join(", ")
    )]
    UnknownHostProfile(String),
    #[error("TDX: {0}")]
    Tdx(&'static str),
}
