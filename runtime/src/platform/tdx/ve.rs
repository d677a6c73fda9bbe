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

use core::arch::global_asm;

use twi_attester::tdx::abi::{IoQualification, VeInfo, exit_reason, merge_in, out_value};

use super::instr;

/// The interrupted context as the entry stub saves it (lowest address first). #VE pushes no
/// error code.
#[repr(C)]
#[derive(Debug)]
pub struct VeFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

unsafe extern "C" {
    /// The IDT entry for vector 20.
    pub safe static ve_entry: [u8; 0];
}

global_asm!(
    r#"
    .section .text.ve_entry, "ax"
    .global ve_entry
ve_entry:
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, %rdi
    movq %rsp, %rbx
    andq $-16, %rsp
    cld
    call {handler}
    movq %rbx, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    iretq
    "#,
    handler = sym ve_handler,
    options(att_syntax)
);

/// The longest x86 instruction.
const MAX_INSTRUCTION_LENGTH: u32 = 15;

extern "C" fn ve_handler(frame: &mut VeFrame) {
    if !super::DETECTED.load(core::sync::atomic::Ordering::Acquire) {
        // Not a TD as far as the boot stub could tell: a #VE is a lie about the platform.
        crate::platform::console::write_line_unlocked(format_args!(
            "FATAL: #VE at rip={:#x}, yet the CPU did not start as a TD",
            frame.rip
        ));
        crate::platform::exit::exit(crate::platform::exit::ExitCode::Failure)
    }
    // Read (and so release) the #VE info first: until then a second #VE cannot be delivered.
    let ve = instr::ve_info().unwrap_or_else(|_| super::fatal(super::FATAL_VE));
    if super::early() {
        super::fatal(super::FATAL_VE)
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
            crate::platform::exit::exit(crate::platform::exit::ExitCode::Failure)
        }
    }
}

/// IN/OUT of 1, 2 or 4 bytes (string forms are not used by the runtime and not emulated).
fn io(frame: &mut VeFrame, ve: &VeInfo) -> Option<()> {
    let io = IoQualification::decode(ve.exit_qualification).filter(|io| !io.string)?;
    if io.is_in {
        let value = instr::io_read(io.port, io.size).ok()?;
        frame.rax = merge_in(frame.rax, u64::from(value), io.size);
    } else {
        instr::io_write(io.port, io.size, out_value(frame.rax, io.size) as u32).ok()?;
    }
    Some(())
}
