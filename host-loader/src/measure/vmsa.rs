//! The initial VMSA (SEV-ES save area) of each vCPU, as the VMM creates it and the PSP measures
//! it at SNP_LAUNCH_FINISH (SEV-ES: LAUNCH_UPDATE_VMSA).
//!
//! Layout: AMD64 Architecture Programmer's Manual Vol. 2, Appendix B, Table B-4 "VMSA Layout,
//! State Save Area for SEV-ES" (Linux `struct sev_es_save_area`). The offsets below are checked
//! against the `igvm` crate's independent `SevVmsa` definition in the tests.
//!
//! Values: KVM's reset state of an SEV-ES vCPU as QEMU sets it up (`sev-snp-measure`
//! `vmsa.py` `build_save_area`, which upstream verified against real launches), with the
//! variants it knows for the EC2 and GCE hypervisors.

use super::gctx::PAGE_SIZE;

/// Field offsets (APM Vol. 2 Table B-4).
pub mod off {
    pub const ES: usize = 0x000;
    pub const CS: usize = 0x010;
    pub const SS: usize = 0x020;
    pub const DS: usize = 0x030;
    pub const FS: usize = 0x040;
    pub const GS: usize = 0x050;
    pub const GDTR: usize = 0x060;
    pub const LDTR: usize = 0x070;
    pub const IDTR: usize = 0x080;
    pub const TR: usize = 0x090;
    pub const EFER: usize = 0x0D0;
    pub const CR4: usize = 0x148;
    pub const CR0: usize = 0x158;
    pub const DR7: usize = 0x160;
    pub const DR6: usize = 0x168;
    pub const RFLAGS: usize = 0x170;
    pub const RIP: usize = 0x178;
    pub const G_PAT: usize = 0x268;
    pub const RDX: usize = 0x310;
    pub const SEV_FEATURES: usize = 0x3B0;
    pub const XCR0: usize = 0x3E8;
    pub const MXCSR: usize = 0x408;
    pub const X87_FCW: usize = 0x410;
}

/// Bytes of a segment register in the VMSA: {u16 selector, u16 attrib, u32 limit, u64 base}.
pub const SEGMENT_LEN: usize = 16;
const _: () = assert!(off::TR + SEGMENT_LEN <= off::EFER && off::X87_FCW + 2 <= PAGE_SIZE);

/// The architectural reset RIP of the BSP (CS.base 0xFFFF_0000 + IP 0xFFF0).
pub const BSP_RESET_EIP: u32 = 0xFFFF_FFF0;

/// SEV_FEATURES bit 0: SNP active (APM Vol. 2 Table 15-34 "SEV_FEATURES"). QEMU ≥ 9.1 creates
/// SNP guests with KVM_SEV_INIT2 and `vmsa_features` 0, and KVM adds only SNP_ACTIVE, so the
/// default guest features of a QEMU SNP launch are 0x1. Older host kernels (KVM_SEV_ES_INIT with
/// debug-swap on) gave 0x21, which is why `sev-snp-measure`'s vectors use both.
pub const SEV_FEATURES_SNP_ACTIVE: u64 = 1;

/// CR0 of a real-mode vCPU whose VMSA an IGVM file supplies, as KVM loads and measures it:
/// ET and NE (COCONUT-SVSM `igvmmeasure --check-kvm`, `tools/igvmmeasure/src/igvm_measure.rs`
/// `check_vmsa`, accepts only 0x30 for real mode and 0x31 for protected mode, because QEMU's
/// IGVM loader hands the VMSA to KVM as register state and KVM sets CR0 itself). A `-bios`
/// launch is different: there KVM's own reset state is measured, CR0 = ET (0x10, which
/// `sev-snp-measure` checks against real launches), so [`build`] keeps 0x10.
pub const IGVM_REAL_MODE_CR0: u64 = 0x30;

/// Which hypervisor creates the vCPUs: they differ in a few initial register values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VmmType {
    /// QEMU/KVM (TWI's launch profiles).
    #[default]
    Qemu,
    /// Amazon EC2.
    Ec2,
    /// Google Compute Engine.
    Gce,
}

/// What determines a vCPU's VMSA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmsaParams {
    /// SEV_FEATURES (SNP: `--guest-features`; SEV-ES: 0).
    pub sev_features: u64,
    /// The CPUID signature QEMU puts in RDX ([`super::cpu`]).
    pub vcpu_sig: u32,
    pub vmm: VmmType,
    /// QEMU/KVM: KVM copied the vCPU's FPU reset state into the VMSA (MXCSR 0x1F80, x87 FCW
    /// 0x37F), as it does for KVM_SEV_INIT2 VM types; `false` for the legacy KVM_SEV_ES_INIT /
    /// KVM_SEV_SNP_INIT hosts, which leave both 0 ([`super::host_profile`]).
    pub fpu: bool,
}

/// A segment register value.
#[derive(Debug, Clone, Copy)]
struct Segment {
    selector: u16,
    attrib: u16,
    limit: u32,
    base: u64,
}

/// The VMSA of a vCPU that starts at `eip` (the BSP at [`BSP_RESET_EIP`], APs at the SEV-ES
/// reset block's address): CS.base = eip & 0xFFFF_0000, RIP = eip & 0xFFFF.
pub fn build(eip: u32, params: &VmsaParams) -> Box<[u8; PAGE_SIZE]> {
    let mut g_pat = 0x0007_0406_0007_0406u64; // PAT reset value (APM Vol. 2 §A.3)
    let (cs_flags, ss_flags, tr_flags, rdx, mxcsr, fcw) = match params.vmm {
        VmmType::Qemu if params.fpu => (0x9b, 0x93, 0x8b, params.vcpu_sig as u64, 0x1f80u32, 0x37fu16),
        VmmType::Qemu => (0x9b, 0x93, 0x8b, params.vcpu_sig as u64, 0, 0),
        VmmType::Ec2 => (if eip == BSP_RESET_EIP { 0x9a } else { 0x9b }, 0x92, 0x83, 0x600, 0, 0),
        VmmType::Gce => {
            g_pat = 0x0007_0106;
            (0x9b, 0x93, 0x8b, 0x600, 0, 0)
        }
    };
    let data = |attrib| Segment { selector: 0, attrib, limit: 0xffff, base: 0 };
    let mut page = Box::new([0u8; PAGE_SIZE]);
    let p = page.as_mut_slice();
    put_segment(p, off::ES, data(0x93));
    put_segment(
        p,
        off::CS,
        Segment { selector: 0xf000, attrib: cs_flags, limit: 0xffff, base: (eip & 0xffff_0000) as u64 },
    );
    put_segment(p, off::SS, data(ss_flags));
    put_segment(p, off::DS, data(0x93));
    put_segment(p, off::FS, data(0x93));
    put_segment(p, off::GS, data(0x93));
    put_segment(p, off::GDTR, data(0));
    put_segment(p, off::LDTR, data(0x82));
    put_segment(p, off::IDTR, data(0));
    put_segment(p, off::TR, data(tr_flags));
    put(p, off::EFER, &0x1000u64.to_le_bytes()); // EFER.SVME: KVM sets it for SEV-ES guests
    put(p, off::CR4, &0x40u64.to_le_bytes()); // CR4.MCE: KVM sets it
    put(p, off::CR0, &0x10u64.to_le_bytes()); // CR0.ET: reset value
    put(p, off::DR7, &0x400u64.to_le_bytes());
    put(p, off::DR6, &0xffff_0ff0u64.to_le_bytes());
    put(p, off::RFLAGS, &0x2u64.to_le_bytes());
    put(p, off::RIP, &((eip & 0xffff) as u64).to_le_bytes());
    put(p, off::G_PAT, &g_pat.to_le_bytes());
    put(p, off::RDX, &rdx.to_le_bytes());
    put(p, off::SEV_FEATURES, &params.sev_features.to_le_bytes());
    put(p, off::XCR0, &0x1u64.to_le_bytes());
    put(p, off::MXCSR, &mxcsr.to_le_bytes());
    put(p, off::X87_FCW, &fcw.to_le_bytes());
    page
}

/// The VMSA pages of `vcpus` vCPUs, BSP first; APs start at `ap_eip`.
pub fn pages(vcpus: u32, ap_eip: u32, params: &VmsaParams) -> Vec<Box<[u8; PAGE_SIZE]>> {
    (0..vcpus).map(|i| build(if i == 0 { BSP_RESET_EIP } else { ap_eip }, params)).collect()
}

fn put_segment(page: &mut [u8], at: usize, s: Segment) {
    put(page, at, &s.selector.to_le_bytes());
    put(page, at + 2, &s.attrib.to_le_bytes());
    put(page, at + 4, &s.limit.to_le_bytes());
    put(page, at + 8, &s.base.to_le_bytes());
}

fn put(page: &mut [u8], at: usize, bytes: &[u8]) {
    page[at..at + bytes.len()].copy_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;
    use igvm::snp_defs::SevVmsa;

    #[test]
    fn offsets_agree_with_the_igvm_crates_vmsa() {
        assert_eq!(size_of::<SevVmsa>(), PAGE_SIZE);
        assert_eq!(offset_of!(SevVmsa, es), off::ES);
        assert_eq!(offset_of!(SevVmsa, cs), off::CS);
        assert_eq!(offset_of!(SevVmsa, ss), off::SS);
        assert_eq!(offset_of!(SevVmsa, ds), off::DS);
        assert_eq!(offset_of!(SevVmsa, fs), off::FS);
        assert_eq!(offset_of!(SevVmsa, gs), off::GS);
        assert_eq!(offset_of!(SevVmsa, gdtr), off::GDTR);
        assert_eq!(offset_of!(SevVmsa, ldtr), off::LDTR);
        assert_eq!(offset_of!(SevVmsa, idtr), off::IDTR);
        assert_eq!(offset_of!(SevVmsa, tr), off::TR);
        assert_eq!(offset_of!(SevVmsa, efer), off::EFER);
        assert_eq!(offset_of!(SevVmsa, cr4), off::CR4);
        assert_eq!(offset_of!(SevVmsa, cr0), off::CR0);
        assert_eq!(offset_of!(SevVmsa, dr7), off::DR7);
        assert_eq!(offset_of!(SevVmsa, dr6), off::DR6);
        assert_eq!(offset_of!(SevVmsa, rflags), off::RFLAGS);
        assert_eq!(offset_of!(SevVmsa, rip), off::RIP);
        assert_eq!(offset_of!(SevVmsa, pat), off::G_PAT);
        assert_eq!(offset_of!(SevVmsa, rdx), off::RDX);
        assert_eq!(offset_of!(SevVmsa, sev_features), off::SEV_FEATURES);
        assert_eq!(offset_of!(SevVmsa, xcr0), off::XCR0);
        assert_eq!(offset_of!(SevVmsa, mxcsr), off::MXCSR);
        assert_eq!(offset_of!(SevVmsa, x87_fcw), off::X87_FCW);
    }

    #[test]
    fn ap_vmsa_starts_at_the_reset_block_address() {
        let params = VmsaParams { sev_features: 1, vcpu_sig: 0x800f12, vmm: VmmType::Qemu, fpu: true };
        let ap = build(0x0080_b004, &params);
        assert_eq!(&ap[off::CS + 8..off::CS + 16], &0x0080_0000u64.to_le_bytes());
        assert_eq!(&ap[off::RIP..off::RIP + 8], &0xb004u64.to_le_bytes());
    }
}
