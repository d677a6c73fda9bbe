//! Typed port I/O: a [`Port`] names a device register the runtime owns by construction (the
//! serial UARTs, the CMOS, the PIT); callers never hand out raw port numbers. Every access goes
//! through the platform HAL, which knows whether it is an instruction, a GHCB exit or a
//! TDVMCALL.

use super::hal::hal;

/// An 8-bit I/O port of a device the runtime drives.
#[derive(Clone, Copy, Debug)]
pub struct Port(u16);

impl Port {
    pub const fn new(port: u16) -> Self {
        Self(port)
    }

    pub fn read_u8(self) -> u8 {
        hal().io_read(self.0, 1) as u8
    }

    pub fn write_u8(self, value: u8) {
        hal().io_write(self.0, 1, u32::from(value));
    }
}
