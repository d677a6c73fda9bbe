//! The hardware RNG: RDSEED (conditioned entropy) first, RDRAND as its fallback, both with
//! bounded retries. It fails closed: when the hardware keeps saying "no data", callers get an
//! error, never a weak or zero value.

use core::arch::asm;

use rand_core::{TryCryptoRng, TryRng};

/// Intel's DRNG guide: RDRAND failing 10 times in a row indicates a CPU problem.
const RDRAND_RETRIES: u32 = 10;
/// RDSEED may legitimately run dry under load; give it more tries before falling back.
const RDSEED_RETRIES: u32 = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RngError {
    /// RDRAND and RDSEED both returned no data for every retry.
    Exhausted,
}

impl core::fmt::Display for RngError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("the CPU's RDSEED/RDRAND returned no random data after every retry")
    }
}

impl core::error::Error for RngError {}

/// The CPU's RNG. Constructing one proves RDRAND exists.
#[derive(Debug)]
pub struct HwRng {
    has_rdseed: bool,
}

impl HwRng {
    /// `None` when the CPU (as CPUID reports it: under SEV-SNP, the CPUID page) has no RDRAND:
    /// the runtime refuses to run.
    pub fn new() -> Option<Self> {
        super::cpu::has_rdrand().then(|| Self { has_rdseed: super::cpu::has_rdseed() })
    }

    fn rdseed_u64(&self) -> Option<u64> {
        if !self.has_rdseed {
            return None;
        }
        for _ in 0..RDSEED_RETRIES {
            let value: u64;
            let ok: u8;
            // SAFETY: CPUID said RDSEED exists; it writes only the named registers.
            unsafe {
                asm!("rdseed {v}", "setc {ok}", v = out(reg) value, ok = out(reg_byte) ok, options(nomem, nostack))
            };
            if ok == 1 {
                return Some(value);
            }
            core::hint::spin_loop();
        }
        None
    }

    fn rdrand_u64(&self) -> Option<u64> {
        (0..RDRAND_RETRIES).find_map(|_| {
            let value: u64;
            let ok: u8;
            // SAFETY: `new` checked CPUID for RDRAND; it writes only the named registers.
            unsafe {
                asm!("rdrand {v}", "setc {ok}", v = out(reg) value, ok = out(reg_byte) ok, options(nomem, nostack))
            };
            (ok == 1).then_some(value)
        })
    }
}

impl TryRng for HwRng {
    type Error = RngError;

    fn try_next_u32(&mut self) -> Result<u32, RngError> {
        self.try_next_u64().map(|v| v as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, RngError> {
        self.rdseed_u64().or_else(|| self.rdrand_u64()).ok_or(RngError::Exhausted)
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), RngError> {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        Ok(())
    }
}

impl TryCryptoRng for HwRng {}
