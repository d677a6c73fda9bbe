//! The key vault: the only home of the workload's Credential Key.
//!
//! The private key is a `p384::ecdsa::SigningKey` that never leaves this module: callers get
//! the public key and signatures, nothing else. The key is generated directly into the vault
//! cell, which the bare-metal build places in its own page-aligned `.vault` section of private
//! RAM (not the heap, never a shared page). `SigningKey` zeroizes its scalar on drop, and the
//! vault drops the key when it is cleared.
//!
//! Mechanism D: the vault also holds, for one key release, an ephemeral P-384 HPKE key pair
//! ([`Vault::generate_release_key`]) whose public key the Evidence binds. The Key Store's
//! release is opened here ([`Vault::install_released_key`]): the decrypted scalar lives only in
//! a zeroizing buffer on the way into the Credential Key slot, and the ephemeral key is dropped
//! (zeroized) whatever the outcome.

use p384::ecdsa::signature::Signer;
use p384::ecdsa::{DerSignature, SigningKey};
use p384::elliptic_curve::Generate;
use rand_core::TryCryptoRng;
use spin::Mutex;
use twi_attester::hpke;
use zeroize::Zeroizing;

/// SEC1 uncompressed encoding of a P-384 public key: 0x04 ‖ X ‖ Y.
pub type PublicKeySec1 = [u8; 97];

/// Holds at most one Credential Key.
#[derive(Debug)]
pub struct Vault {
    slot: Mutex<Option<CredentialKey>>,
    /// Mechanism D: the ephemeral HPKE key the Key Store encrypts the released key to.
    release: Mutex<Option<ReleaseKey>>,
}

/// The ephemeral HPKE recipient key of one key release (`SecretKey` zeroizes on drop).
struct ReleaseKey {
    secret: p384::SecretKey,
    public: PublicKeySec1,
}

impl core::fmt::Debug for ReleaseKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReleaseKey").field("public", &"<97-byte SEC1 point>").finish_non_exhaustive()
    }
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
    zeroizes_on_drop::<p384::SecretKey>();
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VaultError {
    /// The RNG failed: no key was generated.
    Rng,
    /// The vault already holds a key; a second one would silently replace the attested one.
    Occupied,
    /// No key has been generated yet.
    Empty,
    /// Mechanism D: there is no ephemeral release key to open a release with (none was
    /// generated, or it was already used).
    NoReleaseKey,
    /// Mechanism D: the release did not open under the ephemeral key, the challenge and the
    /// certificate it came with (HPKE authentication failed: altered, or meant for another key).
    ReleaseDidNotOpen,
    /// Mechanism D: the released bytes are not a valid P-384 private key.
    ReleasedKeyInvalid,
}

impl core::fmt::Display for VaultError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Rng => "the random number generator failed",
            Self::Occupied => "the vault already holds that key",
            Self::Empty => "the vault holds no Credential Key",
            Self::NoReleaseKey => "no ephemeral release key is waiting for a key release",
            Self::ReleaseDidNotOpen => {
                "the key release does not open (HPKE authentication failed: altered in transit, or encrypted for another key, challenge or certificate)"
            }
            Self::ReleasedKeyInvalid => "the released key is not a valid P-384 private key",
        })
    }
}

impl Vault {
    pub const fn new() -> Self {
        Self { slot: Mutex::new(None), release: Mutex::new(None) }
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

    /// Drops (and so zeroizes) the key and any release key.
    pub fn clear(&self) {
        *self.slot.lock() = None;
        *self.release.lock() = None;
    }

    /// Mechanism D: generates the ephemeral HPKE (DHKEM P-384) key pair that a key release is
    /// encrypted to, and returns its public key for the Evidence to bind.
    pub fn generate_release_key<R: TryCryptoRng + ?Sized>(&self, rng: &mut R) -> Result<PublicKeySec1, VaultError> {
        let mut release = self.release.lock();
        if release.is_some() {
            return Err(VaultError::Occupied);
        }
        let secret = p384::SecretKey::try_generate_from_rng(rng).map_err(|_| VaultError::Rng)?;
        let public = hpke::serialize_public_key(&secret.public_key());
        *release = Some(ReleaseKey { secret, public });
        Ok(public)
    }

    /// The ephemeral release key's public half, while one is waiting.
    pub fn release_public_key(&self) -> Result<PublicKeySec1, VaultError> {
        self.release.lock().as_ref().map(|k| k.public).ok_or(VaultError::NoReleaseKey)
    }

    /// Mechanism D: opens the Key Store's release (HPKE single-shot open with `info` and `aad`)
    /// with the ephemeral key and installs the released scalar as the Credential Key, replacing
    /// the one generated at boot (which was never attested under D). The ephemeral key is
    /// consumed (dropped, zeroized) whether or not the release opens; the plaintext lives only
    /// in a zeroizing buffer. Returns the new Credential Key's public key.
    pub fn install_released_key(
        &self,
        enc: &[u8],
        info: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<PublicKeySec1, VaultError> {
        let mut scalar = Zeroizing::new([0u8; hpke::SECRET_KEY_LEN]);
        let opened = {
            let mut release = self.release.lock();
            let key = release.as_ref().ok_or(VaultError::NoReleaseKey)?;
            let opened = hpke::open(&key.secret, enc, info, aad, ciphertext, &mut scalar[..]);
            // Dropped in place (not moved out with `take`), so the scalar is zeroized where it
            // lived in the vault section.
            *release = None;
            opened
        };
        opened.map_err(|_| VaultError::ReleaseDidNotOpen)?;
        let signing = SigningKey::from_slice(&scalar[..]).map_err(|_| VaultError::ReleasedKeyInvalid)?;
        let point = signing.verifying_key().to_sec1_point(false);
        let mut public = [0u8; 97];
        public.copy_from_slice(point.as_bytes());
        *self.slot.lock() = Some(CredentialKey { signing, public });
        Ok(public)
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
    use p384::ecdsa::signature::Verifier;
    use twi_testkit::TestRng;

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
    fn a_release_opens_once_into_the_credential_key() {
        let vault = Vault::new();
        let boot = vault.generate(&mut TestRng(3)).unwrap();
        let ephemeral = vault.generate_release_key(&mut TestRng(4)).unwrap();
        assert_eq!(vault.generate_release_key(&mut TestRng(5)).unwrap_err(), VaultError::Occupied);
        let provisioned = SigningKey::try_generate_from_rng(&mut TestRng(6)).unwrap();
        let expected = provisioned.verifying_key().to_sec1_point(false);
        let scalar = provisioned.to_bytes();
        let mut ct = [0u8; 48 + hpke::TAG_LEN];
        let enc = hpke::seal(&ephemeral, b"info", b"aad", &scalar, &mut ct, &mut TestRng(7)).unwrap();

        let installed = vault.install_released_key(&enc, b"info", b"aad", &ct).unwrap();
        assert_eq!(&installed[..], expected.as_bytes());
        assert_ne!(installed, boot);
        assert_eq!(vault.public_key().unwrap(), installed);
        // The ephemeral key is gone: the same release cannot be opened twice.
        assert_eq!(vault.release_public_key().unwrap_err(), VaultError::NoReleaseKey);
        assert_eq!(vault.install_released_key(&enc, b"info", b"aad", &ct).unwrap_err(), VaultError::NoReleaseKey);
        // Signing now uses the released key.
        let signature = vault.sign(b"m").unwrap();
        let verifying = p384::ecdsa::VerifyingKey::from_sec1_bytes(&installed).unwrap();
        verifying.verify(b"m", &p384::ecdsa::Signature::from_der(signature.as_bytes()).unwrap()).unwrap();
    }

    #[test]
    fn an_altered_release_is_refused_and_consumes_the_ephemeral_key() {
        let vault = Vault::new();
        let boot = vault.generate(&mut TestRng(3)).unwrap();
        let ephemeral = vault.generate_release_key(&mut TestRng(4)).unwrap();
        let mut ct = [0u8; 48 + hpke::TAG_LEN];
        let enc = hpke::seal(&ephemeral, b"info", b"aad", &[7u8; 48], &mut ct, &mut TestRng(7)).unwrap();
        ct[5] ^= 1;
        assert_eq!(vault.install_released_key(&enc, b"info", b"aad", &ct).unwrap_err(), VaultError::ReleaseDidNotOpen);
        assert_eq!(vault.public_key().unwrap(), boot, "the boot key stays");
        assert_eq!(vault.release_public_key().unwrap_err(), VaultError::NoReleaseKey);
        // A scalar that is not a key (zero) is refused after it opens.
        let ephemeral = vault.generate_release_key(&mut TestRng(8)).unwrap();
        let enc = hpke::seal(&ephemeral, b"", b"", &[0u8; 48], &mut ct, &mut TestRng(9)).unwrap();
        assert_eq!(vault.install_released_key(&enc, b"", b"", &ct).unwrap_err(), VaultError::ReleasedKeyInvalid);
        assert_eq!(vault.public_key().unwrap(), boot);
    }

    #[test]
    fn rng_failure_generates_nothing() {
        let vault = Vault::new();
        assert_eq!(vault.generate(&mut FailingRng).unwrap_err(), VaultError::Rng);
        assert_eq!(vault.public_key().unwrap_err(), VaultError::Empty);
    }
}
