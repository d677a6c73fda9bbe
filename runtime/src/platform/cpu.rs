//! CPU identification and timestamps.

use core::arch::x86_64::{__cpuid, __cpuid_count, CpuidResult};

pub fn cpuid(leaf: u32, subleaf: u32) -> CpuidResult {
    // CPUID is available on every x86-64 CPU and has no side effects.
    if subleaf == 0 { __cpuid(leaf) } else { __cpuid_count(leaf, subleaf) }
}

pub fn has_rdrand() -> bool {
    cpuid(1, 0).ecx & (1 << 30) != 0
}

pub fn has_rdseed() -> bool {
    cpuid(0, 0).eax >= 7 && cpuid(7, 0).ebx & (1 << 18) != 0
}

/// The time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC only reads the counter (CR4.TSD is clear: the runtime never sets it).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// SEV_STATUS (MSR 0xC001_0131), read only when CPUID says the CPU has SEV (the MSR does not
/// exist otherwise and reading it would fault).
pub fn sev_status() -> u64 {
    const CPUID_SEV: u32 = 0x8000_001F;
    if cpuid(0x8000_0000, 0).eax < CPUID_SEV || cpuid(CPUID_SEV, 0).eax & (1 << 1) == 0 {
        return 0;
    }
    // SAFETY: CPUID 0x8000_001F EAX[1] says SEV is supported, so SEV_STATUS exists; RDMSR of
    // it has no side effects.
    unsafe { x86_64::registers::model_specific::Msr::new(0xC001_0131).read() }
}

/// SEV_STATUS bit 2: this is an SEV-SNP guest.
pub fn snp_active() -> bool {
    sev_status() & (1 << 2) != 0
}
