//! The RMP instructions' outcomes (AMD64 Architecture Programmer's Manual Vol. 3, PVALIDATE and
//! RMPADJUST: the return codes in EAX) and the decision the runtime takes from them when it
//! checks its own VMPL. Pure: the runtime executes the instructions
//! (`twi_runtime::platform::snp::instr`) and hands the codes here.
//!
//! The VMPL0 probe (as Linux's `enforce_vmpl0`, `arch/x86/boot/startup/sev-shared.c`): RMPADJUST
//! asking to give VMPL1 no permission on one of the guest's own validated pages succeeds only at
//! VMPL0, and fails with FAIL_PERMISSION at any other VMPL (a VMPL may only adjust VMPLs less
//! privileged than itself). The page must be addressed at the size the RMP holds it: a 4 KiB
//! request on a page validated as 2 MiB (or the reverse) fails with FAIL_SIZEMISMATCH, which
//! says nothing about the VMPL. So the runtime probes a page the launch validated as 4 KiB (the
//! boot scratch page: SNP_LAUNCH_UPDATE adds pages at 4 KiB) and retries at 2 MiB on a mismatch.

/// PVALIDATE / RMPADJUST return codes (EAX).
pub mod code {
    pub const SUCCESS: u32 = 0;
    pub const FAIL_INPUT: u32 = 1;
    pub const FAIL_PERMISSION: u32 = 2;
    pub const FAIL_SIZEMISMATCH: u32 = 6;
}

/// RMPADJUST's RCX (bit 0: page size) and RDX (bits 7:0 target VMPL, 15:8 permissions, bit 16
/// VMSA) for the probe: give VMPL1 no permissions, not a VMSA.
pub const PROBE_TARGET: u64 = 1;

/// The page size of an RMP instruction (RCX bit 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RmpSize {
    Size4K = 0,
    Size2M = 1,
}

/// What one RMPADJUST probe says about the caller's VMPL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vmpl0Probe {
    /// The caller runs at VMPL0.
    Vmpl0,
    /// The caller runs at a VMPL above 0 (a paravisor, e.g. an SVSM, is below it).
    NotVmpl0,
    /// The RMP holds the page at the other size: probe again at `RmpSize`.
    Retry(RmpSize),
    /// Anything else (FAIL_INPUT: not a guest-owned validated page): no answer.
    Failed(u32),
}

/// Reads RMPADJUST's return code for a probe made at `size`. A size mismatch is retried once
/// at the other size; a second mismatch is a failure, never "not VMPL0".
pub const fn vmpl0_probe(rax: u32, size: RmpSize, retried: bool) -> Vmpl0Probe {
    match rax {
        code::SUCCESS => Vmpl0Probe::Vmpl0,
        code::FAIL_PERMISSION => Vmpl0Probe::NotVmpl0,
        code::FAIL_SIZEMISMATCH if !retried => Vmpl0Probe::Retry(match size {
            RmpSize::Size4K => RmpSize::Size2M,
            RmpSize::Size2M => RmpSize::Size4K,
        }),
        other => Vmpl0Probe::Failed(other),
    }
}

/// The address to probe at `size`: the page itself, or the 2 MiB page that contains it.
pub const fn probe_address(page: u64, size: RmpSize) -> u64 {
    match size {
        RmpSize::Size4K => page & !0xFFF,
        RmpSize::Size2M => page & !0x1F_FFFF,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plays the probe against an RMP that holds the page at `held` and a caller at `vmpl`, as
    /// the runtime runs it: first at 4 KiB, then as the outcome says.
    fn probe(held: RmpSize, vmpl: u8) -> (Vmpl0Probe, u32) {
        let rmpadjust = |size: RmpSize| -> u32 {
            if size != held {
                code::FAIL_SIZEMISMATCH
            } else if vmpl == 0 {
                code::SUCCESS
            } else {
                code::FAIL_PERMISSION
            }
        };
        let (mut size, mut retried, mut calls) = (RmpSize::Size4K, false, 0);
        loop {
            calls += 1;
            match vmpl0_probe(rmpadjust(size), size, retried) {
                Vmpl0Probe::Retry(other) => (size, retried) = (other, true),
                outcome => return (outcome, calls),
            }
        }
    }

    #[test]
    fn a_size_mismatch_is_retried_never_read_as_not_vmpl0() {
        assert_eq!(probe(RmpSize::Size4K, 0), (Vmpl0Probe::Vmpl0, 1));
        // The old probe read the 4 KiB request on a 2 MiB page as "not VMPL0".
        assert_eq!(probe(RmpSize::Size2M, 0), (Vmpl0Probe::Vmpl0, 2));
        assert_eq!(probe(RmpSize::Size4K, 2), (Vmpl0Probe::NotVmpl0, 1));
        assert_eq!(probe(RmpSize::Size2M, 1), (Vmpl0Probe::NotVmpl0, 2));
        // Two mismatches in a row: the RMP is not what either size says; no verdict.
        assert_eq!(
            vmpl0_probe(code::FAIL_SIZEMISMATCH, RmpSize::Size2M, true),
            Vmpl0Probe::Failed(code::FAIL_SIZEMISMATCH)
        );
        assert_eq!(vmpl0_probe(code::FAIL_INPUT, RmpSize::Size4K, false), Vmpl0Probe::Failed(1));
    }

    #[test]
    fn probe_addresses_are_aligned_to_the_size() {
        assert_eq!(probe_address(0x1234, RmpSize::Size4K), 0x1000);
        assert_eq!(probe_address(0x1234, RmpSize::Size2M), 0);
        assert_eq!(probe_address(0x40_1000, RmpSize::Size2M), 0x40_0000);
    }
}
