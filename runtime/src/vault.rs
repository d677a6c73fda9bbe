//! The key vault: the only home of the workload's private keys.
//!
//! A key is generated directly into one of the vault's slots, which the bare-metal build places
//! in their own page-aligned `.vault` section of private RAM (not the heap, never a shared page).
//! Callers get a [`KeyId`] and the public key, then signatures or decryptions — never the key.
//! Two kinds of key live here:
//!
//! * **signing keys** (ECDSA P-384): a credential's key (Enrollment, TACRA's CSK), used for the
//!   CSR, TLS CertificateVerify, Workload Proof Tokens, proofs of possession;
//! * **decryption keys** (P-384 DHKEM for HPKE): a Key Store release is encrypted to one
//!   (Retrieval, TACRA's CEK; mechanism D). Opening a release consumes it and installs the
//!   released private key as a signing key ([`Vault::install_released_key`]); the plaintext
//!   lives only in a zeroizing buffer on the way.
//!
//! `SigningKey` and `SecretKey` zeroize their scalars on drop, and the vault drops a key in
//! place (where it lived in the vault section) when it is removed or replaced. A [`KeyId`]
//! carries its slot's generation, so a handle to a removed key never reaches its successor.

use p384::ecdsa::SigningKey;
use p384::ecdsa::signature::Signer;
use p384::ecdsa::signature::hazmat::PrehashSigner;
use p384::elliptic_curve::Generate;
use rand_core::TryCryptoRng;
use spin::Mutex;
use twi_attester::hpke;
use twi_proto::asn1::EcdsaP384Der as DerSignature;
use zeroize::Zeroizing;

/// SEC1 uncompressed encoding of a P-384 public key: 0x04 ‖ X ‖ Y.
pub type PublicKeySec1 = [u8; 97];

/// How many keys the vault holds at once.
pub const SLOTS: usize = 8;

/// A key in the vault: its slot and the slot's generation when the key was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyId {
    slot: u8,
    generation: u32,
}

impl KeyId {
    /// As one number (the payload API's `KeyHandle`): generation ‖ slot.
    pub const fn to_u32(self) -> u32 {
        (self.generation << 8) | self.slot as u32
    }

    /// The id `to_u32` gave; its key is still looked up (and may be gone).
    pub const fn from_u32(value: u32) -> Self {
        Self { slot: (value & 0xFF) as u8, generation: value >> 8 }
    }
}

/// A slot's secret. `#[repr(u8)]` with `Empty` as tag 0: an all-zero vault is an empty one, so
/// the bare-metal build keeps it in `.bss.vault` (zeroed at boot, no ROM), where LLVM refuses
/// any other initial value.
#[repr(u8)]
enum Secret {
    /// An unused slot.
    Empty = 0,
    Signing(SigningKey) = 1,
    Decryption(p384::SecretKey) = 2,
}

/// One key. Deliberately neither `Clone` nor `Debug`-printing its secret.
struct Slot {
    secret: Secret,
    public: PublicKeySec1,
    generation: u32,
}

impl Slot {
    const EMPTY: Self = Self { secret: Secret::Empty, public: [0; 97], generation: 0 };

    fn is_used(&self) -> bool {
        !matches!(self.secret, Secret::Empty)
    }
}

const _: fn() = || {
    fn zeroizes_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    zeroizes_on_drop::<SigningKey>();
    zeroizes_on_drop::<p384::SecretKey>();
};

struct Slots {
    slots: [Slot; SLOTS],
    /// The generation the last key got (each key's is never 0, so a zeroed `KeyId` names nothing).
    last_generation: u32,
}

/// The vault.
pub struct Vault {
    inner: Mutex<Slots>,
}

impl core::fmt::Debug for Vault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let used = self.inner.try_lock().map(|s| s.slots.iter().filter(|k| k.is_used()).count());
        f.debug_struct("Vault").field("keys", &used).finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VaultError {
    /// The RNG failed: no key was generated.
    Rng,
    /// Every slot holds a key: remove one first.
    Full,
    /// No such key (never made, removed, or a handle from another launch).
    NoSuchKey,
    /// The key exists but is of the other kind (signing vs decryption).
    WrongKind,
    /// The release did not open under the decryption key with this `info` and `aad` (HPKE
    /// authentication failed: altered, or meant for another key).
    ReleaseDidNotOpen,
    /// The released bytes are not a valid P-384 private key.
    ReleasedKeyInvalid,
    /// A digest of the wrong length was given to sign.
    BadDigest,
}

impl core::fmt::Display for VaultError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Rng => "the random number generator failed",
            Self::Full => "the vault is full: drop a key first",
            Self::NoSuchKey => "the vault holds no such key",
            Self::WrongKind => "that vault key cannot do this (signing and decryption keys are apart)",
            Self::ReleaseDidNotOpen => {
                "the key release does not open (HPKE authentication failed: altered in transit, or encrypted for another key, challenge or certificate)"
            }
            Self::ReleasedKeyInvalid => "the released key is not a valid P-384 private key",
            Self::BadDigest => "a SHA-384 digest is 48 bytes",
        })
    }
}

fn sec1(key: &p384::ecdsa::VerifyingKey) -> PublicKeySec1 {
    twi_proto::point::p384_uncompressed(&p384::PublicKey::from(key))
}

impl Slots {
    /// Puts `secret` in the first free slot.
    fn insert(&mut self, secret: Secret, public: PublicKeySec1) -> Result<KeyId, VaultError> {
        let index = self.slots.iter().position(|s| !s.is_used()).ok_or(VaultError::Full)?;
        let generation = self.last_generation.wrapping_add(1).max(1);
        self.last_generation = generation;
        self.slots[index] = Slot { secret, public, generation };
        Ok(KeyId { slot: index as u8, generation })
    }

    fn get(&self, id: KeyId) -> Result<&Slot, VaultError> {
        match self.slots.get(usize::from(id.slot)) {
            Some(slot) if slot.is_used() && slot.generation == id.generation => Ok(slot),
            _ => Err(VaultError::NoSuchKey),
        }
    }

    fn signing(&self, id: KeyId) -> Result<&SigningKey, VaultError> {
        match &self.get(id)?.secret {
            Secret::Signing(key) => Ok(key),
            Secret::Decryption(_) | Secret::Empty => Err(VaultError::WrongKind),
        }
    }

    /// Drops the key in place (zeroized where it lived).
    fn remove(&mut self, id: KeyId) {
        if self.get(id).is_ok() {
            self.slots[usize::from(id.slot)] = Slot::EMPTY;
        }
    }
}

/// Runs the secret computation `f` in a frame of its own, then wipes the stack below this one:
/// every frame `f` used, with the scalars, nonces and moved-from keys it left there (the
/// bare-metal build; host builds have no stack to scrub). See `platform::stack`.
#[inline(never)]
fn scrubbed<T>(f: impl FnOnce() -> T) -> T {
    let out = in_own_frame(f);
    #[cfg(target_os = "none")]
    crate::platform::stack::scrub();
    out
}

#[inline(never)]
fn in_own_frame<T>(f: impl FnOnce() -> T) -> T {
    f()
}

impl Vault {
    pub const fn new() -> Self {
        Self { inner: Mutex::new(Slots { slots: [Slot::EMPTY; SLOTS], last_generation: 0 }) }
    }

    /// Generates a signing key (ECDSA P-384) from `rng`.
    pub fn generate<R: TryCryptoRng + ?Sized>(&self, rng: &mut R) -> Result<(KeyId, PublicKeySec1), VaultError> {
        scrubbed(|| self.generate_here(rng))
    }

    fn generate_here<R: TryCryptoRng + ?Sized>(&self, rng: &mut R) -> Result<(KeyId, PublicKeySec1), VaultError> {
        let mut inner = self.inner.lock();
        if inner.slots.iter().all(Slot::is_used) {
            return Err(VaultError::Full);
        }
        let signing = SigningKey::try_generate_from_rng(rng).map_err(|_| VaultError::Rng)?;
        let public = sec1(signing.verifying_key());
        let id = inner.insert(Secret::Signing(signing), public)?;
        Ok((id, public))
    }

    /// Generates a decryption key (DHKEM P-384) that a Key Store release is encrypted to.
    pub fn generate_decryption_key<R: TryCryptoRng + ?Sized>(
        &self,
        rng: &mut R,
    ) -> Result<(KeyId, PublicKeySec1), VaultError> {
        scrubbed(|| self.generate_decryption_key_here(rng))
    }

    fn generate_decryption_key_here<R: TryCryptoRng + ?Sized>(
        &self,
        rng: &mut R,
    ) -> Result<(KeyId, PublicKeySec1), VaultError> {
        let mut inner = self.inner.lock();
        if inner.slots.iter().all(Slot::is_used) {
            return Err(VaultError::Full);
        }
        let secret = p384::SecretKey::try_generate_from_rng(rng).map_err(|_| VaultError::Rng)?;
        let public = hpke::serialize_public_key(&secret.public_key());
        let id = inner.insert(Secret::Decryption(secret), public)?;
        Ok((id, public))
    }

    /// The public key of `id`.
    pub fn public_key(&self, id: KeyId) -> Result<PublicKeySec1, VaultError> {
        self.inner.lock().get(id).map(|slot| slot.public)
    }

    /// ECDSA P-384 with SHA-384 (RFC 6979 deterministic nonces), DER-encoded.
    pub fn sign(&self, id: KeyId, message: &[u8]) -> Result<DerSignature, VaultError> {
        scrubbed(|| {
            let inner = self.inner.lock();
            let signature: p384::ecdsa::Signature = inner.signing(id)?.sign(message);
            Ok(DerSignature::new(&signature.to_bytes().into()))
        })
    }

    /// ECDSA P-384 over a SHA-384 digest the caller computed, DER-encoded.
    pub fn sign_digest(&self, id: KeyId, digest: &[u8]) -> Result<DerSignature, VaultError> {
        if digest.len() != 48 {
            return Err(VaultError::BadDigest);
        }
        scrubbed(|| {
            let inner = self.inner.lock();
            let signature: p384::ecdsa::Signature =
                inner.signing(id)?.sign_prehash(digest).map_err(|_| VaultError::BadDigest)?;
            Ok(DerSignature::new(&signature.to_bytes().into()))
        })
    }

    /// How many keys the vault holds.
    pub fn len(&self) -> usize {
        self.inner.lock().slots.iter().filter(|s| s.is_used()).count()
    }

    /// Whether the vault holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the key `id` (zeroized in place); nothing if it is already gone.
    pub fn remove(&self, id: KeyId) {
        self.inner.lock().remove(id);
    }

    /// Drops every key.
    pub fn clear(&self) {
        let mut inner = self.inner.lock();
        for slot in inner.slots.iter_mut() {
            *slot = Slot::EMPTY;
        }
    }

    /// Opens a Key Store release (HPKE single-shot open with `info` and `aad`) with the
    /// decryption key `cek` and installs the released scalar as a new signing key. `cek` is
    /// consumed (dropped, zeroized) whether or not the release opens; the plaintext lives only
    /// in a zeroizing buffer.
    pub fn install_released_key(
        &self,
        cek: KeyId,
        enc: &[u8],
        info: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<(KeyId, PublicKeySec1), VaultError> {
        scrubbed(|| self.install_released_key_here(cek, enc, info, aad, ciphertext))
    }

    fn install_released_key_here(
        &self,
        cek: KeyId,
        enc: &[u8],
        info: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<(KeyId, PublicKeySec1), VaultError> {
        let mut scalar = Zeroizing::new([0u8; hpke::SECRET_KEY_LEN]);
        let mut inner = self.inner.lock();
        let opened = match &inner.get(cek)?.secret {
            Secret::Decryption(secret) => hpke::open(secret, enc, info, aad, ciphertext, &mut scalar[..]),
            Secret::Signing(_) | Secret::Empty => return Err(VaultError::WrongKind),
        };
        inner.remove(cek);
        opened.map_err(|_| VaultError::ReleaseDidNotOpen)?;
        let signing = SigningKey::from_slice(&scalar[..]).map_err(|_| VaultError::ReleasedKeyInvalid)?;
        let public = sec1(signing.verifying_key());
        let id = inner.insert(Secret::Signing(signing), public)?;
        Ok((id, public))
    }
}

impl Default for Vault {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests;
