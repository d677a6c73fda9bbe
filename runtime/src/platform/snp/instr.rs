//! The SEV-SNP instructions, each behind one safe, typed function: MSR access to the GHCB
//! MSR, VMGEXIT, and PVALIDATE. Nothing else in the runtime executes them.

use core::arch::asm;

use twi_attester::snp::ghcb::GHCB_MSR;
use twi_attester::snp::rmp::{PROBE_TARGET, RmpSize};

/// Writes the GHCB MSR. Only the GHCB MSR: the value is a GHCB GPA or an MSR-protocol
/// request, neither of which can break memory safety.
pub fn write_ghcb_msr(value: u64) {
    // SAFETY: WRMSR to the GHCB MSR (0xC001_0130), which exists in every SEV-ES/SNP guest (the
    // caller only runs under SNP); it changes no state the compiler relies on.
    unsafe { x86_64::registers::model_specific::Msr::new(GHCB_MSR).write(value) }
}

pub fn read_ghcb_msr() -> u64 {
    // SAFETY: as for `write_ghcb_msr`: RDMSR of the GHCB MSR has no side effects.
    unsafe { x86_64::registers::model_specific::Msr::new(GHCB_MSR).read() }
}

/// VMGEXIT (`rep vmmcall`): hands control to the hypervisor, which reads the GHCB MSR (and
/// the GHCB page it names). The `memory` clobber orders the guest's GHCB writes before it and
/// its reads after it.
pub fn vmgexit() {
    // SAFETY: VMGEXIT only exits to the hypervisor; per the GHCB protocol it returns with no
    // general-purpose register changed (the hypervisor's answers are in the GHCB and its MSR).
    unsafe { asm!("rep vmmcall", options(nostack, preserves_flags)) }
}

/// One MSR-protocol exchange: request in, response out.
pub fn msr_protocol(request: u64) -> u64 {
    write_ghcb_msr(request);
    vmgexit();
    read_ghcb_msr()
}

/// PVALIDATE's outcome (AMD APM Vol. 3, PVALIDATE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PvalidateResult {
    /// The RMP entry now has the requested state.
    Changed,
    /// It already had it (rFLAGS.CF = 1).
    Unchanged,
    /// FAIL_INPUT (1): not an SNP guest page, or a bad address.
    FailInput,
    /// FAIL_SIZEMISMATCH (6): the RMP entry is 4 KiB while a 2 MiB validation was asked.
    SizeMismatch,
    Other(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageSize {
    Size4K = 0,
    Size2M = 1,
}

/// PVALIDATE the page at `address` (identity mapped) to `validated`.
///
/// Rescinding validation of a page that holds live data would make the next access fault, so
/// the callers only pass pages from the layout's regions that hold nothing yet.
pub fn pvalidate(address: u64, size: PageSize, validated: bool) -> PvalidateResult {
    let rax: u64;
    let unchanged: u8;
    // SAFETY: PVALIDATE changes only the RMP validation state of the named page (and sets
    // RAX/CF). The callers pass pages of free regions (heap, frame pool, shared pool) before
    // anything lives in them, so no live memory becomes inaccessible.
    unsafe {
        asm!(
            "pvalidate",
            "setc {cf}",
            inout("rax") address => rax,
            in("rcx") size as u64,
            in("rdx") u64::from(validated),
            cf = out(reg_byte) unchanged,
            options(nostack),
        );
    }
    match (rax as u32, unchanged) {
        (0, 0) => PvalidateResult::Changed,
        (0, _) => PvalidateResult::Unchanged,
        (1, _) => PvalidateResult::FailInput,
        (6, _) => PvalidateResult::SizeMismatch,
        (other, _) => PvalidateResult::Other(other),
    }
}

/// RMPADJUST (AMD APM Vol. 3) of the page at `address`, at `size`, asking to give VMPL1 no
/// permissions (`twi_attester::snp::rmp::PROBE_TARGET`). Used only as the VMPL0 probe
/// (`twi_attester::snp::rmp::vmpl0_probe` reads the result). Returns EAX.
pub fn rmpadjust_probe_vmpl1(address: u64, size: RmpSize) -> u32 {
    let rax: u64;
    // SAFETY: RMPADJUST changes only the RMP permissions that VMPL1 has on one of the caller's
    // validated private pages; the runtime never runs code at VMPL1, so granting it nothing
    // takes nothing away from the runtime itself (and at VMPL > 0 the instruction changes
    // nothing and fails).
    unsafe {
        asm!(
            "rmpadjust",
            inout("rax") address => rax,
            in("rcx") size as u64,
            in("rdx") PROBE_TARGET,
            options(nostack),
        );
    }
    rax as u32
}
