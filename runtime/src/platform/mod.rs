//! Everything that touches the machine: boot, ports, UARTs, exceptions, RNG, allocators.
//! Only built for the bare-metal target.

pub mod boot;
pub mod cmos;
pub mod console;
pub mod cpu;
pub mod exit;
pub mod idt;
pub mod memory;
pub mod port;
pub mod rng;
pub mod serial;
pub mod shared;
pub mod snp;
pub mod tdx;
pub mod time;

/// p384's precomputed tables initialise lazily behind a critical section. The runtime runs
/// on one CPU with interrupts disabled, so a critical section needs no lock.
struct SingleCpu;
critical_section::set_impl!(SingleCpu);

// SAFETY: one CPU, interrupts never enabled: nothing can preempt the holder of the section.
unsafe impl critical_section::Impl for SingleCpu {
    unsafe fn acquire() -> critical_section::RawRestoreState {}
    unsafe fn release(_: critical_section::RawRestoreState) {}
}
