//! Leaving the VM: QEMU's `isa-debug-exit` device (iobase 0xf4), which makes QEMU exit with
//! status `(value << 1) | 1`. On hardware without the device the CPU halts for good (a TD
//! that fails first reports it with TDG.VP.VMCALL<ReportFatalError>).

use super::port::Port;

const DEBUG_EXIT: Port = Port::new(0xF4);

/// What the runtime tells the host loader through QEMU's exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitCode {
    /// The credential was received and accepted: QEMU exits with 33.
    Success = 0x10,
    /// Anything else: QEMU exits with 35. The console says why.
    Failure = 0x11,
}

pub fn exit(code: ExitCode) -> ! {
    if super::snp::early() {
        super::snp::terminate(super::snp::TerminateReason::Fatal)
    }
    if super::tdx::early() {
        super::tdx::fatal(super::tdx::FATAL_GENERAL)
    }
    DEBUG_EXIT.write_u32(code as u32);
    if super::snp::active() {
        // No debug-exit device (or it was ignored): ask the hypervisor to end the VM.
        let reason = match code {
            ExitCode::Success => super::snp::TerminateReason::Success,
            ExitCode::Failure => super::snp::TerminateReason::Fatal,
        };
        super::snp::terminate(reason)
    }
    if super::tdx::active() && code == ExitCode::Failure {
        // No debug-exit device: tell the VMM why the TD stops.
        super::tdx::fatal(super::tdx::FATAL_GENERAL)
    }
    halt_forever()
}

pub fn halt_forever() -> ! {
    x86_64::instructions::interrupts::disable();
    if super::tdx::detected() {
        // HLT in a TD raises #VE: ask the VMM to halt the vCPU instead.
        loop {
            let _ = super::tdx::instr::hlt();
            core::hint::spin_loop();
        }
    }
    loop {
        x86_64::instructions::hlt();
    }
}
