//! The vault and the hardware RNG as the payload API's traits: a TLS client key that signs in
//! the vault, and the TEE's random source.

use alloc::vec::Vec;

use rand_core::TryRng;
use twi_payload::tls::{ClientKey, KeyError, Random, RandomError};

use super::VAULT;
use crate::platform::rng::HwRng;
use crate::vault::{KeyId, VaultError};

/// A vault signing key as a TLS client key (ECDSA P-384/SHA-384, DER signatures).
#[derive(Debug, Clone, Copy)]
pub struct VaultKey(pub KeyId);

/// The payload API's view of a vault error.
pub fn key_error(e: VaultError) -> KeyError {
    match e {
        VaultError::NoSuchKey => KeyError::Unavailable,
        VaultError::WrongKind => KeyError::Refused,
        _ => KeyError::Failed,
    }
}

impl ClientKey for VaultKey {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        VAULT.sign(self.0, message).map(|s| s.as_bytes().to_vec()).map_err(key_error)
    }
}

/// The CPU's RNG (RDSEED, then RDRAND, inside the TEE).
#[derive(Debug)]
pub struct HwRandom;

/// The one instance workloads share.
pub static HW_RANDOM: HwRandom = HwRandom;

impl Random for HwRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError> {
        let mut rng = HwRng::new().ok_or(RandomError)?;
        rng.try_fill_bytes(buf).map_err(|_| RandomError)
    }
}
