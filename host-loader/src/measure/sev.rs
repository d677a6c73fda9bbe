//! The SEV and SEV-ES launch digests (SHA-256, reported by LAUNCH_MEASURE), as
//! `sev-snp-measure` computes them (`guest.py` `sev_calc_launch_digest`,
//! `seves_calc_launch_digest`): SHA-256 over the firmware image, then the kernel-hashes table
//! when a kernel is measured, then (SEV-ES) each vCPU's VMSA with SEV_FEATURES 0.
//!
//! TWI targets SEV-SNP; these exist so the calculator covers every published vector.

use sha2::{Digest, Sha256};

use super::MeasureError;
use super::firmware::Firmware;
use super::sev_hashes::SevHashes;
use super::snp::reset_eip;
use super::vmsa::{self, VmmType, VmsaParams};

fn image_and_hashes(firmware: &Firmware<'_>, kernel: Option<&SevHashes>) -> Result<Sha256, MeasureError> {
    let mut hash = Sha256::new();
    hash.update(firmware.data());
    if let Some(hashes) = kernel {
        if firmware.sev_hashes_table_gpa()?.is_none() {
            return Err(MeasureError::NoKernelHashesTable);
        }
        hash.update(hashes.table());
    }
    Ok(hash)
}

/// The SEV launch digest of `image`.
pub fn sev_launch_digest(image: &[u8], kernel: Option<&SevHashes>) -> Result<[u8; 32], MeasureError> {
    let firmware = Firmware::parse(image)?;
    Ok(image_and_hashes(&firmware, kernel)?.finalize().into())
}

/// The SEV-ES launch digest of `image` with `vcpus` vCPUs of signature `vcpu_sig`.
pub fn seves_launch_digest(
    image: &[u8],
    vcpus: u32,
    vcpu_sig: u32,
    kernel: Option<&SevHashes>,
    vmm: VmmType,
) -> Result<[u8; 32], MeasureError> {
    if vcpus == 0 {
        return Err(MeasureError::NoVcpus);
    }
    let firmware = Firmware::parse(image)?;
    let mut hash = image_and_hashes(&firmware, kernel)?;
    let ap_eip = reset_eip(&firmware)?;
    for page in vmsa::pages(vcpus, ap_eip, &VmsaParams { sev_features: 0, vcpu_sig, vmm, fpu: true }) {
        hash.update(page.as_slice());
    }
    Ok(hash.finalize().into())
}
