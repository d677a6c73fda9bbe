//! The human-readable console on COM1. Never carries secrets or channel traffic.

use core::fmt::Write;

use spin::Mutex;

use super::serial::{COM1, Uart};

static CONSOLE: Mutex<Option<Uart>> = Mutex::new(None);

pub fn init() {
    *CONSOLE.lock() = Some(Uart::init(COM1));
}

/// Writes one formatted line. Used through [`crate::log!`].
pub fn write_line(args: core::fmt::Arguments<'_>) {
    let mut guard = CONSOLE.lock();
    if let Some(uart) = guard.as_mut() {
        let _ = uart.write_fmt(args);
        let _ = uart.write_str("\n");
    }
}

/// For the fault and panic paths: writes even if the console lock is held (the holder was
/// interrupted by the fault and will never run again).
pub fn write_line_unlocked(args: core::fmt::Arguments<'_>) {
    if !super::hal::hal().can_print() {
        return; // before the GHCB / TDVMCALL I/O is up, a port access would trap again
    }
    // SAFETY-free alternative to force_unlock: a fresh handle to the same UART. The UART was
    // programmed by `init` (or is at its reset defaults, which QEMU accepts); writing bytes
    // through a second handle can interleave output but not corrupt memory.
    let mut uart = Uart::at(COM1);
    let _ = uart.write_fmt(args);
    let _ = uart.write_str("\n");
}

#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::platform::console::write_line(format_args!($($arg)*))
    };
}
