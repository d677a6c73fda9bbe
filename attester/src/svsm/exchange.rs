//! One SVSM call as the channel carries it to a simulated SVSM (`twi run --platform
//! sim-svsm`). On hardware the guest loads the registers, sets `call_pending` and asks the
//! hypervisor to run VMPL0; the SVSM then reads and writes guest memory directly (the calling
//! area, the requests and buffers the call names by GPA). A simulated SVSM on the host cannot
//! reach guest memory, so the guest sends the registers and the pages the call touches, each
//! with its GPA, and gets back the registers and the same pages as the SVSM left them. What is
//! inside — the registers' encoding, the calling area's layout, the requests, the result codes
//! — are the real protocol's bytes ([`super::call`], [`super::core`], [`super::attest`]).
//!
//! | offset | field |
//! |--------|-------|
//! | 0x00 | RAX, RCX, RDX, R8, R9: u64 each, little-endian |
//! | 0x28 | windows, up to [`MAX_WINDOWS`]: {GPA u64, length u16, bytes}; the first is the calling area |
//!
//! A window holds at most one page and does not cross a page boundary (the SVSM maps guest
//! memory a page at a time, COCONUT `GuestPtr` over `PerCPUPageMappingGuard`).

use super::call::Registers;

/// Pages one call may name: the calling area, the report, the manifest, the certificates.
pub const MAX_WINDOWS: usize = 4;
/// The longest window: one page.
pub const MAX_WINDOW: usize = 4096;
/// The registers' bytes.
pub const REGISTERS_LEN: usize = 40;
const WINDOW_HEADER: usize = 10;
/// The longest exchange.
pub const MAX_EXCHANGE: usize = REGISTERS_LEN + MAX_WINDOWS * (WINDOW_HEADER + MAX_WINDOW);

/// A range of guest memory and its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window<'a> {
    pub gpa: u64,
    pub bytes: &'a [u8],
}

/// Why an exchange cannot be built or read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExchangeError {
    /// Shorter than its registers, a window's header or its bytes.
    Truncated,
    /// More windows than [`MAX_WINDOWS`], or none (the calling area is always sent).
    Windows,
    /// A window longer than a page or crossing a page boundary.
    Window(u64),
    /// The output buffer is too small.
    Buffer,
}

impl core::fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Truncated => f.write_str("the SVSM call is truncated"),
            Self::Windows => write!(f, "an SVSM call names 1 to {MAX_WINDOWS} pages of guest memory"),
            Self::Window(gpa) => write!(f, "the guest memory at {gpa:#x} is longer than a page or crosses one"),
            Self::Buffer => f.write_str("no room for the SVSM call"),
        }
    }
}

/// A decoded exchange: the registers and the windows, borrowed from the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exchange<'a> {
    pub regs: Registers,
    windows: [Window<'a>; MAX_WINDOWS],
    count: usize,
}

fn check_window(gpa: u64, len: usize) -> Result<(), ExchangeError> {
    let offset = (gpa % MAX_WINDOW as u64) as usize;
    if len > MAX_WINDOW || offset + len > MAX_WINDOW {
        return Err(ExchangeError::Window(gpa));
    }
    Ok(())
}

impl<'a> Exchange<'a> {
    /// The windows, the calling area first.
    pub fn windows(&self) -> &[Window<'a>] {
        &self.windows[..self.count]
    }

    /// Writes `regs` and `windows` into `out`; returns the length.
    pub fn encode(regs: &Registers, windows: &[Window<'_>], out: &mut [u8]) -> Result<usize, ExchangeError> {
        if windows.is_empty() || windows.len() > MAX_WINDOWS {
            return Err(ExchangeError::Windows);
        }
        let need = REGISTERS_LEN + windows.iter().map(|w| WINDOW_HEADER + w.bytes.len()).sum::<usize>();
        let out = out.get_mut(..need).ok_or(ExchangeError::Buffer)?;
        for (slot, value) in
            out[..REGISTERS_LEN].chunks_exact_mut(8).zip([regs.rax, regs.rcx, regs.rdx, regs.r8, regs.r9])
        {
            slot.copy_from_slice(&value.to_le_bytes());
        }
        let mut at = REGISTERS_LEN;
        for w in windows {
            check_window(w.gpa, w.bytes.len())?;
            out[at..at + 8].copy_from_slice(&w.gpa.to_le_bytes());
            out[at + 8..at + 10].copy_from_slice(&(w.bytes.len() as u16).to_le_bytes());
            out[at + WINDOW_HEADER..at + WINDOW_HEADER + w.bytes.len()].copy_from_slice(w.bytes);
            at += WINDOW_HEADER + w.bytes.len();
        }
        Ok(need)
    }

    /// Reads an exchange, every length checked.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, ExchangeError> {
        let u64_at = |at: usize| -> Result<u64, ExchangeError> {
            let b = bytes.get(at..at + 8).ok_or(ExchangeError::Truncated)?;
            let mut raw = [0u8; 8];
            raw.copy_from_slice(b);
            Ok(u64::from_le_bytes(raw))
        };
        let regs = Registers { rax: u64_at(0)?, rcx: u64_at(8)?, rdx: u64_at(16)?, r8: u64_at(24)?, r9: u64_at(32)? };
        let mut windows = [Window { gpa: 0, bytes: &[] }; MAX_WINDOWS];
        let (mut at, mut count) = (REGISTERS_LEN, 0);
        while at < bytes.len() {
            if count == MAX_WINDOWS {
                return Err(ExchangeError::Windows);
            }
            let gpa = u64_at(at)?;
            let len = bytes.get(at + 8..at + 10).ok_or(ExchangeError::Truncated)?;
            let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
            check_window(gpa, len)?;
            let body = bytes.get(at + WINDOW_HEADER..at + WINDOW_HEADER + len).ok_or(ExchangeError::Truncated)?;
            windows[count] = Window { gpa, bytes: body };
            count += 1;
            at += WINDOW_HEADER + len;
        }
        if count == 0 {
            return Err(ExchangeError::Windows);
        }
        Ok(Self { regs, windows, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchanges_round_trip_and_refuse_what_does_not_fit() {
        let regs = Registers { rax: 1, rcx: 0x8_3008, rdx: 3, r8: 4, r9: 5 };
        let caa = [0x11u8; 4096];
        let report = [0u8; 16];
        let windows = [Window { gpa: 0x8_3000, bytes: &caa }, Window { gpa: 0xA0_0000, bytes: &report }];
        let mut out = [0u8; MAX_EXCHANGE];
        let len = Exchange::encode(&regs, &windows, &mut out).unwrap();
        assert_eq!(len, 40 + 10 + 4096 + 10 + 16);
        assert_eq!(&out[8..16], &0x8_3008u64.to_le_bytes(), "RCX second");
        let decoded = Exchange::decode(&out[..len]).unwrap();
        assert_eq!(decoded.regs, regs);
        assert_eq!(decoded.windows(), &windows);
        // Every truncation is refused, never a panic, but for the one that ends after the
        // calling area: a call that names only it.
        let first = REGISTERS_LEN + WINDOW_HEADER + 4096;
        for cut in (0..len).filter(|&cut| cut != first) {
            assert!(Exchange::decode(&out[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(Exchange::decode(&out[..first]).unwrap().windows(), &windows[..1]);
        let crossing = [Window { gpa: 0x8_3008, bytes: &caa }];
        assert_eq!(Exchange::encode(&regs, &crossing, &mut out), Err(ExchangeError::Window(0x8_3008)));
        assert_eq!(Exchange::encode(&regs, &[], &mut out), Err(ExchangeError::Windows));
        let five = [Window { gpa: 0, bytes: &[] }; 5];
        assert_eq!(Exchange::encode(&regs, &five, &mut out), Err(ExchangeError::Windows));
        assert_eq!(Exchange::encode(&regs, &windows, &mut out[..100]), Err(ExchangeError::Buffer));
    }
}
