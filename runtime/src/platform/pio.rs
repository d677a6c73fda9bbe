//! The machine's own I/O instructions: IN/OUT and RDMSR/WRMSR, executed as they are. Only the
//! plain platform (the HAL's native backend) uses them; under SEV-SNP and TDX the same requests go
//! through the GHCB or TDVMCALL (an IN/OUT there would trap to #VC/#VE).

use core::arch::asm;

/// IN of `size` (1, 2 or 4) bytes from `port`.
pub fn read(port: u16, size: u8) -> u32 {
    let value: u32;
    // SAFETY: IN from a port has no memory effects; the runtime only addresses the fixed ISA
    // devices of the q35 machine (UARTs, CMOS, PIT, debug-exit) through typed `Port`s.
    unsafe {
        match size {
            1 => {
                let v: u8;
                asm!("in al, dx", out("al") v, in("dx") port, options(nomem, nostack, preserves_flags));
                value = u32::from(v);
            }
            2 => {
                let v: u16;
                asm!("in ax, dx", out("ax") v, in("dx") port, options(nomem, nostack, preserves_flags));
                value = u32::from(v);
            }
            _ => asm!("in eax, dx", out("eax") value, in("dx") port, options(nomem, nostack, preserves_flags)),
        }
    }
    value
}

/// OUT of the low `size` (1, 2 or 4) bytes of `value` to `port`.
pub fn write(port: u16, size: u8, value: u32) {
    // SAFETY: as for `read`: OUT to a fixed ISA device port, no memory effects.
    unsafe {
        match size {
            1 => asm!("out dx, al", in("dx") port, in("al") value as u8, options(nomem, nostack, preserves_flags)),
            2 => asm!("out dx, ax", in("dx") port, in("ax") value as u16, options(nomem, nostack, preserves_flags)),
            _ => asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags)),
        }
    }
}

/// RDMSR. An MSR the CPU lacks raises #GP, which the fault handler reports: callers read only
/// architectural MSRs.
pub fn rdmsr(msr: u32) -> u64 {
    // SAFETY: RDMSR reads a register into EDX:EAX and has no memory effects; a missing MSR
    // faults into the fatal handler rather than corrupting state.
    unsafe { x86_64::registers::model_specific::Msr::new(msr).read() }
}

/// WRMSR. Callers write only MSRs whose effects the runtime owns (none change memory mappings
/// the compiler relies on).
pub fn wrmsr(msr: u32, value: u64) {
    // SAFETY: see above; the runtime never writes EFER, PAT or other MSRs that change how
    // memory it uses is mapped.
    unsafe { x86_64::registers::model_specific::Msr::new(msr).write(value) }
}
