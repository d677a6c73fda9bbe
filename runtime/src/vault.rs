//! The key vault: the only home of the workload's Credential Key.
//!
//! The private key is a `p384::ecdsa::SigningKey` that never leaves this module: callers get
//! the public key and signatures, nothing else. The key is generated directly into the vault
//! cell, which the bare-metal build places in its own page-aligned `.vault` section of private
//! RAM (not the heap, never a shared page). `SigningKey` zeroizes its scalar on drop, and the
//! vault drops the key when it is cleared.

use p384::ecdsa::signature::Signer;
use p384::ecdsa::{DerSignature, SigningKey};
use p384::elliptic_curve::Generate;
use rand_core::TryCryptoRng;
use spin::Mutex;

/// SEC1 uncompressed encoding of a P-384 public key: 0x04 ‖ X ‖ Y.
pub type PublicKeySec1 = [u8; 97];

/// Holds at most one Credential Key.
#[derive(Debug)]
pub struct Vault {
    slot: Mutex<Option<CredentialKey>>,
}

/// The Credential Key. Deliberately neither `Clone` nor `Debug`-printing its secret.
struct CredentialKey {
    signing: SigningKey,
    public: PublicKeySec1,
}

impl core::fmt::Debug for CredentialKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CredentialKey").field("public", &"<97-byte SEC1 point>").finish_non_exhaustive()
    }
}

const _: fn() = || {
    fn zeroizes_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    zeroizes_on_drop::<SigningKey>();
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VaultError {
    /// The RNG failed: no key was generated.
    Rng,
    /// The vault already holds a key; a second one would silently replace the attested one.
    Occupied,
    /// No key has been generated yet.
    Empty,
}

impl Vault {
    pub const fn new() -> Self {
        Self { slot: Mutex::new(None) }
    }

    /// Generates the Credential Key from `rng` and returns its public key.
    pub fn generate<R: TryCryptoRng + ?Sized>(&self, rng: &mut R) -> Result<PublicKeySec1, VaultError> {
        let mut slot = self.slot.lock();
        if slot.is_some() {
            return Err(VaultError::Occupied);
        }
        let signing = SigningKey::try_generate_from_rng(rng).map_err(|_| VaultError::Rng)?;
        let point = signing.verifying_key().to_sec1_point(false);
        let mut public = [0u8; 97];
        public.copy_from_slice(point.as_bytes());
        *slot = Some(CredentialKey { signing, public });
        Ok(public)
    }

    pub fn public_key(&self) -> Result<PublicKeySec1, VaultError> {
        self.slot.lock().as_ref().map(|k| k.public).ok_or(VaultError::Empty)
    }

    /// ECDSA P-384 with SHA-384 (RFC 6979 deterministic nonces), DER-encoded.
    pub fn sign(&self, message: &[u8]) -> Result<DerSignature, VaultError> {
        let slot = self.slot.lock();
        let key = slot.as_ref().ok_or(VaultError::Empty)?;
        let signature: p384::ecdsa::Signature = key.signing.sign(message);
        Ok(signature.to_der())
    }

    /// Drops (and so zeroizes) the key.
    pub fn clear(&self) {
        *self.slot.lock() = None;
    }
}

impl Default for Vault {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::TestRng;
    use p384::ecdsa::signature::Verifier;

    struct FailingRng;
    #[derive(Debug)]
    struct Dry;
    impl core::fmt::Display for Dry {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str("dry")
        }
    }
    impl core::error::Error for Dry {}
    impl rand_core::TryRng for FailingRng {
        type Error = Dry;
        fn try_next_u32(&mut self) -> Result<u32, Dry> {
            Err(Dry)
        }
        fn try_next_u64(&mut self) -> Result<u64, Dry> {
            Err(Dry)
        }
        fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), Dry> {
            Err(Dry)
        }
    }
    impl rand_core::TryCryptoRng for FailingRng {}

    #[test]
    fn signs_with_the_generated_key() {
        let vault = Vault::new();
        let public = vault.generate(&mut TestRng(0x9E37_79B9_7F4A_7C15)).unwrap();
        assert_eq!(public[0], 0x04);
        let signature = vault.sign(b"hello").unwrap();
        let verifying = p384::ecdsa::VerifyingKey::from_sec1_bytes(&public).unwrap();
        let signature = p384::ecdsa::Signature::from_der(signature.as_bytes()).unwrap();
        verifying.verify(b"hello", &signature).unwrap();
        assert!(verifying.verify(b"hellO", &signature).is_err());
    }

    #[test]
    fn refuses_a_second_key_and_signing_without_one() {
        let vault = Vault::new();
        assert_eq!(vault.sign(b"x").unwrap_err(), VaultError::Empty);
        vault.generate(&mut TestRng(1)).unwrap();
        assert_eq!(vault.generate(&mut TestRng(2)).unwrap_err(), VaultError::Occupied);
        vault.clear();
        assert_eq!(vault.public_key().unwrap_err(), VaultError::Empty);
    }

    #[test]
    fn rng_failure_generates_nothing() {
        let vault = Vault::new();
        assert_eq!(vault.generate(&mut FailingRng).unwrap_err(), VaultError::Rng);
        assert_eq!(vault.public_key().unwrap_err(), VaultError::Empty);
    }
}
