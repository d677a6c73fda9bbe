//! A deterministic test RNG (xorshift64), shared by the vault's unit tests and the
//! integration tests. Never used outside tests: it exists so that a test can generate the
//! same Credential Key twice, once inside the vault and once outside it.

/// Xorshift64 keyed by its (non-zero) seed. `try_fill_bytes` takes one output per byte.
#[derive(Debug, Clone)]
pub struct TestRng(pub u64);

impl rand_core::TryRng for TestRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        self.try_next_u64().map(|v| v as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Ok(self.0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for b in dst {
            *b = self.try_next_u64()? as u8;
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for TestRng {}
