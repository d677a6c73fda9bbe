//! The #VE handler (vector 20): in a TD the CPU raises #VE for what the TDX module leaves to
//! the VMM. The runtime avoids it (port I/O goes through TDVMCALL directly), so a #VE means an
//! instruction it could not avoid or code it does not control: CPUID of a leaf the module does
//! not virtualise, IN/OUT, RDMSR/WRMSR. Those are emulated with the matching
//! TDG.VP.VMCALL<Instruction.*> and RIP advances by the instruction length the #VE info
//! reports. Anything else (an EPT violation: private memory that was never accepted, a shared
//! page touched through a private mapping) ends the TD with a clear message.
//!
//! The VMM's answers (CPUID values, MSR values, port reads) are untrusted data, as on any
//! platform: nothing security-relevant is decided from them.

use twi_attester::tdx::abi::{IoQualification, VeInfo, exit_reason, merge_in, out_value};

use super::instr;
use crate::platform::trap::TrapFrame;

crate::platform::trap::trap_entry!(ve_entry, ve_handler, push_zero_error_code = 1);

/// The longest x86 instruction.
const MAX_INSTRUCTION_LENGTH: u32 = 15;

extern "C" fn ve_handler(frame: &mut TrapFrame) {
    if !super::DETECTED.load(core::sync::atomic::Ordering::Acquire) {
        // Not a TD as far as the boot stub could tell: a #VE is a lie about the platform.
        crate::platform::console::write_line_unlocked(format_args!(
            "FATAL: #VE at rip={:#x}, yet the CPU did not start as a TD",
            frame.rip
        ));
        crate::platform::hal::exit(crate::platform::hal::ExitCode::Failure)
    }
    // Read (and so release) the #VE info first: until then a second #VE cannot be delivered.
    let ve = instr::ve_info().unwrap_or_else(|_| super::fatal(super::FatalReason::Ve));
    if super::early() {
        super::fatal(super::FatalReason::Ve)
    }
    let handled = match ve.exit_reason {
        exit_reason::CPUID => instr::cpuid(frame.rax as u32, frame.rcx as u32).ok().map(|[a, b, c, d]| {
            frame.rax = u64::from(a);
            frame.rbx = u64::from(b);
            frame.rcx = u64::from(c);
            frame.rdx = u64::from(d);
        }),
        exit_reason::IO => io(frame, &ve),
        exit_reason::RDMSR => instr::rdmsr(frame.rcx as u32).ok().map(|value| {
            frame.rax = value & 0xFFFF_FFFF;
            frame.rdx = value >> 32;
        }),
        exit_reason::WRMSR => {
            let value = (frame.rax & 0xFFFF_FFFF) | (frame.rdx << 32);
            instr::wrmsr(frame.rcx as u32, value).ok()
        }
        _ => None,
    };
    match handled {
        Some(()) if (1..=MAX_INSTRUCTION_LENGTH).contains(&ve.instruction_length) => {
            frame.rip += u64::from(ve.instruction_length);
        }
        _ => {
            crate::platform::console::write_line_unlocked(format_args!(
                "FATAL: unhandled #VE: exit reason {} qualification {:#x} gpa {:#x} at rip={:#x}",
                ve.exit_reason, ve.exit_qualification, ve.gpa, frame.rip
            ));
            crate::platform::hal::exit(crate::platform::hal::ExitCode::Failure)
        }
    }
}

/// IN/OUT of 1, 2 or 4 bytes (string forms are not used by the runtime and not emulated).
fn io(frame: &mut TrapFrame, ve: &VeInfo) -> Option<()> {
    let io = IoQualification::decode(ve.exit_qualification).filter(|io| !io.string)?;
    if io.is_in {
        let value = instr::io_read(io.port, io.size).ok()?;
        frame.rax = merge_in(frame.rax, u64::from(value), io.size);
    } else {
        instr::io_write(io.port, io.size, out_value(frame.rax, io.size) as u32).ok()?;
    }
    Some(())
}
