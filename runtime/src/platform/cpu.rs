//! CPU identification and timestamps.

use core::arch::x86_64::CpuidResult;

use super::hal::hal;

/// CPUID, as the platform vouches for it (under SEV-SNP from the PSP-checked CPUID page, never
/// from the hypervisor).
pub fn cpuid(leaf: u32, subleaf: u32) -> CpuidResult {
    hal().cpuid(leaf, subleaf)
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

/// Executes UD2 on purpose (diagnostic images): the CPU raises #UD, which the IDT reports and
/// turns into the failure exit.
pub fn raise_invalid_opcode() -> ! {
    // SAFETY: UD2 touches no memory; the #UD it raises goes to the fatal handler, which never
    // returns here (hence `noreturn`).
    unsafe { core::arch::asm!("ud2", options(noreturn, nomem, nostack)) }
}
