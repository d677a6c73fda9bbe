//! 16550 UART driver (polled). COM1 carries the human-readable console, COM2 the channel.

use super::port::Port;

pub const COM1: u16 = 0x3F8;
pub const COM2: u16 = 0x2F8;

const LSR_DATA_READY: u8 = 1 << 0;
const LSR_THR_EMPTY: u8 = 1 << 5;

/// One 16550 UART at a fixed base port.
#[derive(Debug)]
pub struct Uart {
    data: Port,
    int_enable: Port,
    fifo_ctrl: Port,
    line_ctrl: Port,
    modem_ctrl: Port,
    line_status: Port,
}

impl Uart {
    /// A handle to the UART at `base` without reprogramming it.
    pub const fn at(base: u16) -> Self {
        Self {
            data: Port::new(base),
            int_enable: Port::new(base + 1),
            fifo_ctrl: Port::new(base + 2),
            line_ctrl: Port::new(base + 3),
            modem_ctrl: Port::new(base + 4),
            line_status: Port::new(base + 5),
        }
    }

    /// Programs 115200 8N1, FIFOs on, interrupts off (the runtime polls).
    pub fn init(base: u16) -> Self {
        let uart = Self::at(base);
        uart.int_enable.write_u8(0x00);
        uart.line_ctrl.write_u8(0x80); // DLAB on: next two bytes are the divisor
        uart.data.write_u8(0x01); // divisor 1 = 115200 baud
        uart.int_enable.write_u8(0x00);
        uart.line_ctrl.write_u8(0x03); // 8 bits, no parity, one stop bit
        uart.fifo_ctrl.write_u8(0xC7); // enable and clear FIFOs
        uart.modem_ctrl.write_u8(0x03); // DTR, RTS
        uart
    }

    pub fn write_byte(&self, byte: u8) {
        while self.line_status.read_u8() & LSR_THR_EMPTY == 0 {
            core::hint::spin_loop();
        }
        self.data.write_u8(byte);
    }

    pub fn write_bytes(&self, bytes: &[u8]) {
        for &b in bytes {
            self.write_byte(b);
        }
    }

    /// Blocks until a byte arrives.
    pub fn read_byte(&self) -> u8 {
        while self.line_status.read_u8() & LSR_DATA_READY == 0 {
            core::hint::spin_loop();
        }
        self.data.read_u8()
    }
}

impl core::fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(b);
        }
        Ok(())
    }
}
