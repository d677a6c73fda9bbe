//! Typed port I/O. The only place in the runtime that executes IN/OUT.
//!
//! A [`Port`] names a port the runtime owns by construction (the serial UARTs, the exit
//! device, the CMOS, the PIT); callers never hand out raw port numbers. Under SEV-SNP the
//! access goes through the GHCB directly (an IOIO exit) instead of trapping to #VC; in a TD
//! through TDG.VP.VMCALL<Instruction.IO> instead of trapping to #VE.

use core::arch::asm;

/// An 8-bit I/O port of a device the runtime drives.
#[derive(Clone, Copy, Debug)]
pub struct Port(u16);

impl Port {
    pub const fn new(port: u16) -> Self {
        Self(port)
    }

    pub fn read_u8(self) -> u8 {
        if super::snp::active() {
            return super::snp::io_read(self.0, 1) as u8;
        }
        if super::tdx::active() {
            return super::tdx::io_read(self.0, 1) as u8;
        }
        let value: u8;
        // SAFETY: IN from a legacy device port has no memory effects; the ports wrapped
        // here are the fixed ISA devices of the q35 machine (UART, CMOS, PIT, debug-exit).
        unsafe { asm!("in al, dx", out("al") value, in("dx") self.0, options(nomem, nostack, preserves_flags)) };
        value
    }

    pub fn write_u8(self, value: u8) {
        if super::snp::active() {
            return super::snp::io_write(self.0, 1, u32::from(value));
        }
        if super::tdx::active() {
            return super::tdx::io_write(self.0, 1, u32::from(value));
        }
        // SAFETY: as for `read_u8`: OUT to a fixed ISA device port, no memory effects.
        unsafe { asm!("out dx, al", in("dx") self.0, in("al") value, options(nomem, nostack, preserves_flags)) };
    }

    pub fn write_u32(self, value: u32) {
        if super::snp::active() {
            return super::snp::io_write(self.0, 4, value);
        }
        if super::tdx::active() {
            return super::tdx::io_write(self.0, 4, value);
        }
        // SAFETY: as for `read_u8`; used for QEMU's isa-debug-exit, which takes a dword.
        unsafe { asm!("out dx, eax", in("dx") self.0, in("eax") value, options(nomem, nostack, preserves_flags)) };
    }
}
