//! The platform HAL: what differs between a plain VM, an SEV-SNP guest and a TD when the runtime
//! touches the machine — port I/O, CPUID, MSRs, the host's view of shared pages, memory
//! acceptance, and how the VM ends. The platform is chosen once at boot ([`super::start`]) and
//! installed here; everything else calls [`hal`] and never asks which platform it runs on (as
//! COCONUT-SVSM's `SvsmPlatform` and Oak's `Platform` do).
//!
//! Until a guest's platform is up (SEV-SNP: the GHCB; TDX: TDVMCALL I/O), [`Hal::can_print`] is
//! false and ending the VM goes through the platform's earliest path (the GHCB MSR protocol,
//! ReportFatalError).
//!
//! [`Native`] is the plain machine (the simulated TEE runs on it): IN/OUT, CPUID and RDMSR as
//! instructions, all memory private and accepted, nothing shared.

use core::arch::x86_64::CpuidResult;
use core::ops::Range;

use spin::Once;

/// What the runtime tells the host loader through QEMU's exit status (the `isa-debug-exit`
/// device makes QEMU exit with `(value << 1) | 1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitCode {
    /// The workload finished successfully: QEMU exits with 33.
    Success = 0x10,
    /// Anything else: QEMU exits with 35. The console says why.
    Failure = 0x11,
}

/// QEMU's `isa-debug-exit` device (iobase 0xf4, iosize 4).
pub const DEBUG_EXIT_PORT: u16 = 0xF4;

/// Why memory could not be accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcceptError {
    /// The page that failed.
    pub address: u64,
    /// What failed (the platform's operation).
    pub reason: &'static str,
}

/// The machine, as one platform presents it.
pub trait Hal: Sync {
    /// A short name for the console ("SEV-SNP", "Intel TDX", "plain VM").
    fn name(&self) -> &'static str;
    /// Reads `size` (1, 2 or 4) bytes from `port`.
    fn io_read(&self, port: u16, size: u8) -> u32;
    /// Writes the low `size` (1, 2 or 4) bytes of `value` to `port`.
    fn io_write(&self, port: u16, size: u8, value: u32);
    /// CPUID as this platform vouches for it (SEV-SNP: the PSP-checked CPUID page).
    fn cpuid(&self, leaf: u32, subleaf: u32) -> CpuidResult;
    /// RDMSR (the hypervisor's answer where it emulates the MSR: untrusted data).
    fn rdmsr(&self, msr: u32) -> u64;
    /// WRMSR.
    fn wrmsr(&self, msr: u32, value: u64);
    /// The bit the host's guest-physical address of a shared page carries (TDX: the shared bit,
    /// 1 << (GPAW − 1)); 0 where a shared page is addressed as is.
    fn shared_bit(&self) -> u64;
    /// Makes the 2 MiB-aligned private range usable (SEV-SNP: page-state change and
    /// PVALIDATE; TDX: TDG.MEM.PAGE.ACCEPT). Only for ranges nothing lives in yet.
    fn accept(&self, range: Range<u64>) -> Result<(), AcceptError>;
    /// Whether the console can be written (false while the platform is coming up).
    fn can_print(&self) -> bool;
    /// Ends the VM for good after the debug-exit device (if any) was told `code`.
    fn terminate(&self, code: ExitCode) -> !;
    /// Stops this vCPU for good.
    fn halt(&self) -> !;

    /// Ends the VM with `code`: QEMU's debug-exit device first, then the platform's own way.
    fn exit(&self, code: ExitCode) -> ! {
        self.io_write(DEBUG_EXIT_PORT, 4, code as u32);
        self.terminate(code)
    }
}

static HAL: Once<&'static dyn Hal> = Once::new();

/// Installs the platform. Called once by [`super::start`], first thing at boot; later calls
/// change nothing.
pub fn install(platform: &'static dyn Hal) {
    HAL.call_once(|| platform);
}

/// The platform chosen at boot ([`Native`] until one is installed).
pub fn hal() -> &'static dyn Hal {
    HAL.get().copied().unwrap_or(&Native)
}

/// Ends the VM with `code` (see [`Hal::exit`]).
pub fn exit(code: ExitCode) -> ! {
    hal().exit(code)
}

/// The plain machine: no TEE, or the simulated one.
#[derive(Debug)]
pub struct Native;

impl Hal for Native {
    fn name(&self) -> &'static str {
        "plain VM"
    }

    fn io_read(&self, port: u16, size: u8) -> u32 {
        super::pio::read(port, size)
    }

    fn io_write(&self, port: u16, size: u8, value: u32) {
        super::pio::write(port, size, value)
    }

    fn cpuid(&self, leaf: u32, subleaf: u32) -> CpuidResult {
        // CPUID exists on every x86-64 CPU and has no side effects.
        core::arch::x86_64::__cpuid_count(leaf, subleaf)
    }

    fn rdmsr(&self, msr: u32) -> u64 {
        super::pio::rdmsr(msr)
    }

    fn wrmsr(&self, msr: u32, value: u64) {
        super::pio::wrmsr(msr, value)
    }

    fn shared_bit(&self) -> u64 {
        0
    }

    fn accept(&self, _: Range<u64>) -> Result<(), AcceptError> {
        Ok(()) // a plain VM's RAM is usable as it is
    }

    fn can_print(&self) -> bool {
        true
    }

    fn terminate(&self, _: ExitCode) -> ! {
        self.halt()
    }

    fn halt(&self) -> ! {
        x86_64::instructions::interrupts::disable();
        loop {
            x86_64::instructions::hlt();
        }
    }
}
