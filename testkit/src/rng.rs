//! A deterministic test RNG (Marsaglia's xorshift64, "Xorshift RNGs", J. Stat. Softw. 2003):
//! never for anything but tests. It exists so that a test can generate the same key twice,
//! once inside the runtime's vault and once outside it, and so that seeded inputs (a sealing
//! nonce, an HPKE ephemeral key) are the same on every run.

use p384::ecdsa::SigningKey;

/// Xorshift64 keyed by its (non-zero) seed. `try_fill_bytes` takes one output per byte.
#[derive(Debug, Clone)]
pub struct TestRng(pub u64);

impl TestRng {
    /// The next 64-bit output.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

impl rand_core::TryRng for TestRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.next_u64() as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self.next_u64())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for b in dst {
            *b = self.next_u64() as u8;
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for TestRng {}

/// The P-384 key `TestRng(seed)` generates: the same key the vault generates from that seed.
pub fn key_from_seed(seed: u64) -> SigningKey {
    use p384::elliptic_curve::Generate;
    match SigningKey::try_generate_from_rng(&mut TestRng(seed)) {
        Ok(key) => key,
        Err(never) => match never {},
    }
}

/// SEC1 uncompressed encoding of `key`'s public key (what the vault hands out, and what an
/// image embeds as its issuer anchor).
pub fn public_sec1(key: &SigningKey) -> Vec<u8> {
    key.verifying_key().to_sec1_point(false).as_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed's stream is fixed: tests that generate a key in the vault and here must agree.
    /// The expected outputs were computed independently (xorshift64 in Python).
    #[test]
    fn the_stream_is_xorshift64() {
        let mut rng = TestRng(1);
        assert_eq!(
            [rng.next_u64(), rng.next_u64(), rng.next_u64()],
            [0x4082_2041, 0x1000_4106_0C01_1441, 0x9B1E_842F_6E86_2629]
        );
        let mut bytes = [0u8; 3];
        rand_core::TryRng::try_fill_bytes(&mut TestRng(1), &mut bytes).unwrap();
        assert_eq!(bytes, [0x41, 0x41, 0x29]);
        assert_eq!(key_from_seed(7), key_from_seed(7));
        assert_ne!(public_sec1(&key_from_seed(7)), public_sec1(&key_from_seed(8)));
    }
}
