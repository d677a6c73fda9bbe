//! Entry stubs for the exceptions the runtime handles and returns from: #VC (vector 29, SEV-SNP)
//! and #VE (vector 20, TDX). One macro makes both, so they save and restore the same registers
//! in the same [`TrapFrame`].
//!
//! The stub pushes every general-purpose register (RSP aside), calls the handler with the frame
//! on a 16-byte aligned stack, restores the registers (the handler may have changed them: the
//! emulated instruction's results, RIP past it), drops the error code and returns with IRETQ.
//! #VC pushes an error code (the intercepted event's exit code); #VE does not, so its stub pushes
//! a zero in its place.

/// The interrupted context as the entry stubs save it (lowest address first).
#[repr(C)]
#[derive(Debug)]
pub struct TrapFrame {
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
    /// #VC: the SW_EXITCODE of the intercepted event; #VE: 0 (pushed by the stub).
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// Defines the IDT entry `$entry` that saves a [`TrapFrame`], calls
/// `$handler: extern "C" fn(&mut TrapFrame)` and returns to the interrupted code.
/// `$push_zero` is 1 for an exception that pushes no error code.
macro_rules! trap_entry {
    ($entry:ident, $handler:path, push_zero_error_code = $push_zero:literal) => {
        unsafe extern "C" {
            /// The IDT entry point (see `platform::trap`).
            pub safe static $entry: [u8; 0];
        }

        core::arch::global_asm!(
            concat!(".section .text.", stringify!($entry), ", \"ax\""),
            concat!(".global ", stringify!($entry)),
            concat!(stringify!($entry), ":"),
            concat!(".if ", stringify!($push_zero)),
            "pushq $0",
            ".endif",
            "pushq %rax",
            "pushq %rbx",
            "pushq %rcx",
            "pushq %rdx",
            "pushq %rsi",
            "pushq %rdi",
            "pushq %rbp",
            "pushq %r8",
            "pushq %r9",
            "pushq %r10",
            "pushq %r11",
            "pushq %r12",
            "pushq %r13",
            "pushq %r14",
            "pushq %r15",
            "movq %rsp, %rdi",
            "movq %rsp, %rbx",
            "andq $-16, %rsp",
            "cld",
            "call {handler}",
            "movq %rbx, %rsp",
            "popq %r15",
            "popq %r14",
            "popq %r13",
            "popq %r12",
            "popq %r11",
            "popq %r10",
            "popq %r9",
            "popq %r8",
            "popq %rbp",
            "popq %rdi",
            "popq %rsi",
            "popq %rdx",
            "popq %rcx",
            "popq %rbx",
            "popq %rax",
            "addq $8, %rsp",
            "iretq",
            handler = sym $handler,
            options(att_syntax)
        );
    };
}
pub(crate) use trap_entry;
