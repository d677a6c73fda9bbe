//! The #VC handler (vector 29): under SEV-SNP the CPU raises #VC for instructions the
//! hypervisor must emulate. The runtime avoids them (port I/O and CPUID have enlightened paths),
//! so a #VC means code the runtime does not control or an instruction it could not avoid:
//! CPUID (answered from the CPUID page), IN/OUT (through the GHCB), RDMSR/WRMSR (through the
//! GHCB). Anything else terminates the VM.

use twi_attester::snp::ghcb::exit_code;

use super::{TerminateReason, terminate, with_ghcb};
use crate::platform::trap::TrapFrame;

/// Set by the first #VC: the simulated-TEE path refuses to run on a machine that raised one.
pub static VC_SEEN: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

crate::platform::trap::trap_entry!(vc_entry, vc_handler, push_zero_error_code = 0);

/// The first bytes of the instruction at `rip` (the runtime's own code: identity mapped).
fn instruction_bytes(rip: u64) -> [u8; 3] {
    let mut bytes = [0u8; 3];
    for (i, b) in bytes.iter_mut().enumerate() {
        // SAFETY: `rip` is the address of the instruction that raised #VC, in the runtime's
        // mapped, executable image; reading its first bytes cannot fault.
        *b = unsafe { core::ptr::read_volatile((rip + i as u64) as *const u8) };
    }
    bytes
}

extern "C" fn vc_handler(frame: &mut TrapFrame) {
    // A #VC proves SEV-ES or later is active. Before the GHCB is up nothing can be served (and
    // printing would trap again); without SNP detected at boot it is a lie about the platform.
    VC_SEEN.store(true, core::sync::atomic::Ordering::Release);
    if !super::active() {
        terminate(TerminateReason::EarlyVc)
    }
    let bytes = instruction_bytes(frame.rip);
    let handled = match frame.error_code {
        exit_code::CPUID if bytes[..2] == [0x0F, 0xA2] => {
            let r = super::cpuid(frame.rax as u32, frame.rcx as u32);
            frame.rax = u64::from(r.eax);
            frame.rbx = u64::from(r.ebx);
            frame.rcx = u64::from(r.ecx);
            frame.rdx = u64::from(r.edx);
            Some(2)
        }
        exit_code::IOIO => ioio(frame, bytes),
        exit_code::MSR if bytes[..2] == [0x0F, 0x32] => with_ghcb(|g| g.rdmsr(frame.rcx as u32)).ok().map(|value| {
            frame.rax = value & 0xFFFF_FFFF;
            frame.rdx = value >> 32;
            2
        }),
        exit_code::MSR if bytes[..2] == [0x0F, 0x30] => {
            let value = (frame.rax & 0xFFFF_FFFF) | (frame.rdx << 32);
            with_ghcb(|g| g.wrmsr(frame.rcx as u32, value)).ok().map(|()| 2)
        }
        _ => None,
    };
    match handled {
        Some(length) => frame.rip += length,
        None => {
            crate::platform::console::write_line_unlocked(format_args!(
                "FATAL: unhandled #VC exit code {:#x} at rip={:#x}",
                frame.error_code, frame.rip
            ));
            terminate(TerminateReason::Fatal)
        }
    }
}

/// IN/OUT with an immediate or DX port, 8/16/32-bit (string forms are not used and not
/// handled). Returns the instruction length.
fn ioio(frame: &mut TrapFrame, bytes: [u8; 3]) -> Option<u64> {
    let (prefix, opcode, imm) = if bytes[0] == 0x66 { (1, bytes[1], bytes[2]) } else { (0, bytes[0], bytes[1]) };
    let wide = |byte_op: bool| -> u8 {
        if byte_op {
            1
        } else if prefix == 1 {
            2
        } else {
            4
        }
    };
    let (port, size, is_in, length) = match opcode {
        0xE4 | 0xE5 => (u16::from(imm), wide(opcode == 0xE4), true, 2),
        0xE6 | 0xE7 => (u16::from(imm), wide(opcode == 0xE6), false, 2),
        0xEC | 0xED => (frame.rdx as u16, wide(opcode == 0xEC), true, 1),
        0xEE | 0xEF => (frame.rdx as u16, wide(opcode == 0xEE), false, 1),
        _ => return None,
    };
    if is_in {
        let value = with_ghcb(|g| g.io_read(port, size)).ok()?;
        frame.rax = match size {
            1 => (frame.rax & !0xFF) | u64::from(value),
            2 => (frame.rax & !0xFFFF) | u64::from(value),
            _ => u64::from(value),
        };
    } else {
        with_ghcb(|g| g.io_write(port, size, frame.rax as u32)).ok()?;
    }
    Some(prefix + length)
}
