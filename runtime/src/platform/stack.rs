//! Stack scrubbing: secrets never left on the stack.
//!
//! A key generated, a signature made, a release opened: the library code doing it (p384's
//! scalar arithmetic, HPKE) keeps intermediate values — the private scalar in its canonical
//! and Montgomery forms, the per-signature nonce — in stack frames that are popped, not
//! cleared, and a value moved into the vault leaves its old copy behind. A guest memory dump
//! found exactly that (tests/memory.rs). The vault therefore runs each secret operation in a
//! frame of its own and, once it returned, [`scrub`] zeroes the boot stack below the caller's
//! frame: everything those frames held.
//!
//! Below the stack pointer nothing is live: the bare-metal target compiles without a red zone
//! (`x86_64-unknown-none` disables it), only this vCPU runs on the boot stack, and an interrupt
//! taken while scrubbing completes (its frame popped) before the loop goes on.

use core::arch::asm;
use core::ops::Range;

use twi_linker::BOOT_STACK_SIZE;

/// Kept untouched below the stack pointer: this function's own frame and anything it calls.
const MARGIN: usize = 512;

unsafe extern "C" {
    /// The lowest address of the boot stack (linker script, `linker/src/script.rs`).
    static __stack_bottom: u8;
}

/// The boot stack's addresses.
fn boot_stack() -> Range<usize> {
    // Only the symbol's address is taken; the byte there is never read.
    let bottom = (&raw const __stack_bottom) as usize;
    bottom..bottom + BOOT_STACK_SIZE
}

fn stack_pointer() -> usize {
    let sp: usize;
    // SAFETY: reads RSP into a register; no memory access, no stack use, flags untouched.
    unsafe { asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    sp
}

/// Zeroes the boot stack below the caller's frame (down to its bottom). Nothing when not
/// running on the boot stack.
#[inline(never)]
pub fn scrub() {
    let stack = boot_stack();
    let sp = stack_pointer();
    if !stack.contains(&sp) {
        return;
    }
    let end = sp.saturating_sub(MARGIN) & !7;
    let mut at = stack.start;
    while at < end {
        // SAFETY: `at` is 8-aligned (the stack bottom is page-aligned) and in
        // `stack.start..sp - MARGIN`: boot-stack memory below every live frame (see the module
        // documentation: no red zone, one vCPU, interrupts finish before the loop resumes).
        // Volatile, so the compiler keeps stores nobody reads afterwards.
        unsafe { core::ptr::write_volatile(at as *mut u64, 0) };
        at += 8;
    }
}
