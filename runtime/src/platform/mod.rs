//! Everything that touches the machine: boot, the platform HAL, ports, UARTs, exceptions, RNG,
//! allocators, and the pages the launch fills. Only built for the bare-metal target, and a leaf:
//! nothing here imports the rest of the runtime (the TEE backends reach the platform's doorbells
//! through the TEE layer's hardware backend).
//!
//! The platform is chosen once, by [`start`], from what the boot stub found; from then on the
//! rest of the runtime goes through [`hal::hal`].

pub mod boot;
pub mod cmos;
pub mod console;
pub mod cpu;
pub mod fw_cfg;
pub mod hal;
pub mod idt;
pub mod launch;
pub mod memory;
mod pio;
pub mod port;
pub mod rng;
pub mod serial;
pub mod shared;
pub mod snp;
pub mod stack;
pub mod tdx;
pub mod time;
mod trap;

use twi_attester::snp::ghcb::SEV_STATUS_SNP;

use self::boot::BootInfo;
use self::hal::Native;

/// Which platform [`start`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A plain VM: no TEE, or the simulated one.
    Native,
    /// An SEV-SNP guest at VMPL0.
    Snp,
    /// An Intel TDX trust domain.
    Tdx,
}

/// Chooses the platform from what the boot stub found, installs its HAL, and brings it up
/// (SEV-SNP: the GHCB and validated memory; TDX: accepted memory and the shared pool). A failure
/// here ends the VM through the platform's earliest path (the GHCB MSR protocol,
/// ReportFatalError): nothing can be printed yet.
pub fn start(boot: &BootInfo) -> Kind {
    if boot.tdx {
        hal::install(&tdx::HAL);
        if let Err(e) = tdx::init() {
            tdx::fatal(e.reason())
        }
        Kind::Tdx
    } else if boot.sev_status & SEV_STATUS_SNP != 0 {
        hal::install(&snp::HAL);
        if let Err(e) = snp::init(boot) {
            snp::terminate(snp::TerminateReason::from(e))
        }
        Kind::Snp
    } else {
        hal::install(&Native);
        Kind::Native
    }
}

/// The installed platform's name, for the console.
pub fn name() -> &'static str {
    hal::hal().name()
}

/// Whether a #VC was ever raised: on a plain VM that proves SEV-ES or later is active although
/// SEV_STATUS said otherwise (a host lying about the platform).
pub fn vc_seen() -> bool {
    snp::vc::VC_SEEN.load(core::sync::atomic::Ordering::Acquire)
}
