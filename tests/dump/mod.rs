//! Guest memory dumps, searched for secrets outside the vault.
//!
//! `twi run` runs with `TWI_QEMU` = the testkit's `qemu_dump.py`, which writes the guest's RAM
//! (from physical address 0) once the runtime has finished. The runtime links its key vault
//! into its own section (`__vault_start..__vault_end` in `twi-runtime.elf`, identity-mapped);
//! the private scalars of the keys it holds may live there and nowhere else, and the ECDSA
//! per-signature nonces nowhere at all.
//!
//! The keys are found without help from the runtime: each vault slot stores its public key
//! (SEC1, 0x04 ‖ X ‖ Y) beside its secret, so every valid P-384 point in the vault names a key,
//! and its scalar is the 48-byte window of the vault that multiplies the base point to it.
//! A scalar is searched for in three encodings: big-endian, little-endian, and the
//! little-endian Montgomery form (x·2³⁸⁴ mod n) that p384's field arithmetic keeps in memory.
//! A nonce k is recovered from a signature (r, s) over a digest z with the key d:
//! k = s⁻¹ (z + r·d) mod n.

// Shared by two test crates (memory, workload), each using part of it.
#![allow(dead_code)]

use std::ops::Range;
use std::path::Path;

use p384::elliptic_curve::PrimeField;
use p384::elliptic_curve::ops::Reduce;
use p384::elliptic_curve::point::AffineCoordinates;
use p384::{FieldBytes, ProjectivePoint, PublicKey, Scalar};

/// The `TWI_QEMU` wrapper.
pub const QEMU_DUMP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testkit/python/qemu_dump.py");

/// A dump of guest RAM and where the vault sat in it.
pub struct Dump {
    pub bytes: Vec<u8>,
    pub vault: Range<usize>,
}

/// A private key found in the vault.
pub struct VaultKey {
    pub public: Vec<u8>,
    pub secret: Scalar,
}

/// `__vault_start..__vault_end` of the runtime ELF.
pub fn vault_range(elf: &Path) -> Range<usize> {
    use object::{Object, ObjectSymbol};
    let bytes = std::fs::read(elf).unwrap_or_else(|e| panic!("cannot read {}: {e}", elf.display()));
    let file = object::File::parse(&*bytes).expect("the runtime ELF parses");
    let symbol = |name: &str| {
        let found = file.symbols().find(|s| s.name() == Ok(name));
        found.unwrap_or_else(|| panic!("{name} missing from {}", elf.display())).address() as usize
    };
    symbol("__vault_start")..symbol("__vault_end")
}

impl Dump {
    pub fn read(file: &Path, elf: &Path) -> Self {
        let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("no memory dump {}: {e}", file.display()));
        let vault = vault_range(elf);
        assert!(vault.end <= bytes.len() && !vault.is_empty(), "vault {vault:x?} outside a {}-byte dump", bytes.len());
        Self { bytes, vault }
    }

    fn vault_bytes(&self) -> &[u8] {
        &self.bytes[self.vault.clone()]
    }

    /// The public keys the vault's slots hold (valid P-384 points, SEC1 uncompressed).
    pub fn vault_public_keys(&self) -> Vec<Vec<u8>> {
        let vault = self.vault_bytes();
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for window in vault.windows(97).filter(|w| w[0] == 4) {
            if PublicKey::from_sec1_bytes(window).is_ok() && !keys.iter().any(|k| k == window) {
                keys.push(window.to_vec());
            }
        }
        keys
    }

    /// The private key of `public`, searched for in the vault in every encoding.
    pub fn vault_secret(&self, public: &[u8]) -> Option<Scalar> {
        let target = PublicKey::from_sec1_bytes(public).ok()?.to_projective();
        let vault = self.vault_bytes();
        (0..vault.len().saturating_sub(47)).step_by(8).find_map(|at| {
            let window: [u8; 48] = vault[at..at + 48].try_into().ok()?;
            if window.iter().filter(|&&b| b == 0).count() > 24 {
                return None;
            }
            decodings(&window).into_iter().find(|d| ProjectivePoint::GENERATOR * d == target)
        })
    }

    /// Every key the vault holds, with its scalar (a point whose scalar is not in the vault
    /// is a public key only: another party's, or a key whose secret was removed).
    pub fn vault_keys(&self) -> Vec<VaultKey> {
        let publics = self.vault_public_keys();
        publics
            .into_iter()
            .filter_map(|public| self.vault_secret(&public).map(|secret| VaultKey { public, secret }))
            .collect()
    }

    /// Where `value` (any encoding) occurs outside the vault, as addresses.
    pub fn outside_vault(&self, value: &Scalar) -> Vec<(usize, &'static str)> {
        let mut found = Vec::new();
        for (encoding, bytes) in encodings(value) {
            for at in memchr::memmem::find_iter(&self.bytes, &bytes) {
                if !self.vault.contains(&at) {
                    found.push((at, encoding));
                }
            }
        }
        found
    }

    /// Where `value` (any encoding) occurs anywhere in the dump.
    pub fn anywhere(&self, value: &Scalar) -> Vec<(usize, &'static str)> {
        let mut found = Vec::new();
        for (encoding, bytes) in encodings(value) {
            found.extend(memchr::memmem::find_iter(&self.bytes, &bytes).map(|at| (at, encoding)));
        }
        found
    }
}

/// 2³⁸⁴ mod n, p384's Montgomery radix.
fn montgomery_r() -> Scalar {
    (0..384).fold(Scalar::ONE, |r, _| r.double())
}

fn from_be(bytes: &[u8; 48]) -> Option<Scalar> {
    Option::from(Scalar::from_repr(FieldBytes::from(*bytes)))
}

/// The scalars a 48-byte window may encode.
fn decodings(window: &[u8; 48]) -> Vec<Scalar> {
    let mut reversed = *window;
    reversed.reverse();
    let mut out: Vec<Scalar> = [from_be(window), from_be(&reversed)].into_iter().flatten().collect();
    if let (Some(mont), Some(r_inv)) = (from_be(&reversed), Option::<Scalar>::from(montgomery_r().invert())) {
        out.push(mont * r_inv);
    }
    out.retain(|s| !bool::from(s.is_zero()));
    out
}

/// `value` as big-endian, little-endian and little-endian Montgomery bytes.
fn encodings(value: &Scalar) -> [(&'static str, Vec<u8>); 3] {
    let be = value.to_repr().to_vec();
    let le: Vec<u8> = be.iter().rev().copied().collect();
    let mont: Vec<u8> = (*value * montgomery_r()).to_repr().iter().rev().copied().collect();
    [("big-endian", be), ("little-endian", le), ("Montgomery", mont)]
}

/// The ECDSA nonce of `signature` (DER) over the SHA-384 `digest`, made by `key`.
pub fn ecdsa_nonce(signature_der: &[u8], digest: &[u8; 48], key: &Scalar) -> Scalar {
    let signature = p384::ecdsa::Signature::from_der(signature_der).expect("a DER ECDSA signature");
    let (r, s): (Scalar, Scalar) = (*signature.r().as_ref(), *signature.s().as_ref());
    let z = <Scalar as Reduce<FieldBytes>>::reduce(&FieldBytes::from(*digest));
    let s_inv = Option::<Scalar>::from(s.invert()).expect("s is non-zero");
    let k = s_inv * (z + r * key);
    // The nonce is right if it reproduces r.
    let x = <Scalar as Reduce<FieldBytes>>::reduce(&(ProjectivePoint::GENERATOR * k).to_affine().x());
    assert_eq!(x, r, "the recovered nonce does not reproduce r: wrong key or digest");
    k
}

/// Makes `command` (a `twi run`) boot under the dumping QEMU wrapper: RAM dumped to `during`
/// at the first console line holding `at`, and to `after` when the runtime finished.
pub fn dumping(command: &mut std::process::Command, at: &str, during: &Path, after: &Path) {
    let real_qemu = std::env::var_os("TWI_QEMU").unwrap_or_else(|| "qemu-system-x86_64".into());
    command.env("TWI_QEMU", QEMU_DUMP).env("TWI_DUMP_QEMU", real_qemu);
    command.env("TWI_DUMP_FILE", after).env("TWI_DUMP_AT", at).env("TWI_DUMP_AT_FILE", during);
}

/// Every key the vault of `dump` holds is nowhere else in it; returns how many there are.
#[track_caller]
pub fn assert_vault_keys_stay_there(dump: &Dump, when: &str) -> usize {
    let keys = dump.vault_keys();
    for key in &keys {
        let what = format!("{when}, the private key of {}", hex::encode(&key.public[..9]));
        assert!(!dump.anywhere(&key.secret).is_empty(), "the search does not find what the vault holds");
        assert_only_in_vault(dump, &what, &key.secret);
    }
    keys.len()
}

/// Fails the test naming where a secret sits outside the vault.
#[track_caller]
pub fn assert_only_in_vault(dump: &Dump, what: &str, value: &Scalar) {
    let found = dump.outside_vault(value);
    assert!(found.is_empty(), "{what} found outside the vault {:x?} at {found:x?}", dump.vault);
}

/// Fails the test naming where a secret sits anywhere in memory.
#[track_caller]
pub fn assert_nowhere(dump: &Dump, what: &str, value: &Scalar) {
    let found = dump.anywhere(value);
    assert!(found.is_empty(), "{what} found in guest memory at {found:x?}");
}
