//! HPKE (RFC 9180), base mode, single shot, for one cipher suite:
//! DHKEM(P-384, HKDF-SHA384) (`kem_id` 0x0011), HKDF-SHA384 (`kdf_id` 0x0002), AES-256-GCM
//! (`aead_id` 0x0002).
//!
//! Mechanism D uses it: the Key Store encrypts the provisioned Credential Key to an ephemeral
//! P-384 public key that the runtime generated in its vault and bound into the Evidence; the
//! runtime opens it inside the vault. Both sides share this module.
//!
//! Built on RustCrypto primitives (p384 with `ecdh`; `hkdf` and `aes-gcm` through
//! `twi_proto::kdf` and `twi_proto::aead`) because the `hpke` crate is tied to an older p384.
//! The construction follows the RFC step by step:
//!
//! * §4: `LabeledExtract(salt, label, ikm) = Extract(salt, "HPKE-v1" ‖ suite_id ‖ label ‖ ikm)`,
//!   `LabeledExpand(prk, label, info, L) = Expand(prk, I2OSP(L, 2) ‖ "HPKE-v1" ‖ suite_id ‖
//!   label ‖ info, L)`.
//! * §4.1 DHKEM: `suite_id = "KEM" ‖ I2OSP(0x0011, 2)`; `dh` = the x-coordinate of the ECDH
//!   point (48 bytes); `kem_context = enc ‖ pkRm`; `shared_secret = LabeledExpand(
//!   LabeledExtract("", "eae_prk", dh), "shared_secret", kem_context, 48)`.
//! * §7.1: `SerializePublicKey` is the SEC1 uncompressed point (97 bytes); `DeserializePublicKey`
//!   refuses anything that is not a valid uncompressed point on the curve.
//! * §5.1 key schedule, `mode_base = 0x00`, empty psk and psk_id: `suite_id = "HPKE" ‖ kem ‖ kdf
//!   ‖ aead`; `key_schedule_context = mode ‖ LabeledExtract("", "psk_id_hash", "") ‖
//!   LabeledExtract("", "info_hash", info)`; `secret = LabeledExtract(shared_secret, "secret",
//!   "")`; `key = LabeledExpand(secret, "key", ctx, 32)`; `base_nonce = LabeledExpand(secret,
//!   "base_nonce", ctx, 12)`.
//! * §5.2: the single-shot message uses sequence number 0: `nonce = base_nonce XOR I2OSP(0, 12)`.
//!
//! `no_std`, no allocation: callers pass the output buffers. Every intermediate secret (DH
//! output, shared secret, PRKs, key, nonce) is zeroized when it goes out of scope; a failed
//! open leaves the output buffer zeroed.

use p384::elliptic_curve::Generate;
use p384::{PublicKey, SecretKey};
use rand_core::TryCryptoRng;
use twi_proto::aead::Aead;
use twi_proto::kdf;
use zeroize::{Zeroize, Zeroizing};

/// DHKEM(P-384, HKDF-SHA384).
pub const KEM_ID: u16 = 0x0011;
/// HKDF-SHA384.
pub const KDF_ID: u16 = 0x0002;
/// AES-256-GCM.
pub const AEAD_ID: u16 = 0x0002;
/// `Nenc` = `Npk`: an uncompressed P-384 point.
pub const ENC_LEN: usize = 97;
/// `Nsk`: a P-384 scalar.
pub const SECRET_KEY_LEN: usize = 48;
/// `Nsecret` = `Nh` of HKDF-SHA384.
const SECRET_LEN: usize = 48;
/// `Nk`.
const KEY_LEN: usize = 32;
/// `Nn`.
const NONCE_LEN: usize = 12;
/// `Nt`: ciphertext = plaintext ‖ 16-byte tag.
pub const TAG_LEN: usize = 16;

const VERSION_LABEL: &[u8] = b"HPKE-v1";
const MODE_BASE: u8 = 0x00;
const KEM_SUITE_ID: [u8; 5] = [b'K', b'E', b'M', (KEM_ID >> 8) as u8, KEM_ID as u8];
const HPKE_SUITE_ID: [u8; 10] = [
    b'H',
    b'P',
    b'K',
    b'E',
    (KEM_ID >> 8) as u8,
    KEM_ID as u8,
    (KDF_ID >> 8) as u8,
    KDF_ID as u8,
    (AEAD_ID >> 8) as u8,
    AEAD_ID as u8,
];

/// Why sealing or opening failed. Deliberately coarse: an open failure does not say which
/// input was wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HpkeError {
    /// The recipient public key or `enc` is not a valid uncompressed P-384 point.
    InvalidPublicKey,
    /// The output buffer does not have the required length.
    BufferLength,
    /// The random number generator failed.
    Rng,
    /// The ciphertext did not authenticate under this key, `enc`, `info` and `aad`.
    Open,
}

impl core::fmt::Display for HpkeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::InvalidPublicKey => "not a valid uncompressed P-384 public key",
            Self::BufferLength => "output buffer of the wrong length",
            Self::Rng => "the random number generator failed",
            Self::Open => "the ciphertext does not authenticate (wrong key, enc, info, aad or altered bytes)",
        })
    }
}

impl core::error::Error for HpkeError {}

/// `SerializePublicKey`: SEC1 uncompressed.
pub fn serialize_public_key(pk: &PublicKey) -> [u8; ENC_LEN] {
    twi_proto::point::p384_uncompressed(pk)
}

/// `DeserializePublicKey`: exactly 97 bytes, tag 0x04, a point on the curve.
pub fn deserialize_public_key(bytes: &[u8]) -> Result<PublicKey, HpkeError> {
    twi_proto::point::p384_from_uncompressed(bytes).ok_or(HpkeError::InvalidPublicKey)
}

/// `LabeledExtract(salt, label, ikm)`. Not inlined (nor is `labeled_expand`): the key
/// schedule calls each several times.
#[inline(never)]
fn labeled_extract(suite_id: &[u8], salt: &[u8], label: &[u8], ikm: &[u8]) -> Zeroizing<[u8; SECRET_LEN]> {
    kdf::extract(salt, &[VERSION_LABEL, suite_id, label, ikm])
}

/// `LabeledExpand(prk, label, info, L)` into `okm` (L = `okm.len()`, at most 255·48).
#[inline(never)]
fn labeled_expand(suite_id: &[u8], prk: &[u8; SECRET_LEN], label: &[u8], info: &[u8], okm: &mut [u8]) {
    // A PRK of exactly Nh bytes is always accepted, and the lengths used here (48, 32, 12)
    // are far below the 255·Nh limit, so this cannot fail.
    let length = (okm.len() as u16).to_be_bytes();
    if kdf::expand(prk, &[&length, VERSION_LABEL, suite_id, label, info], okm).is_err() {
        okm.zeroize();
    }
}

/// DHKEM `ExtractAndExpand(dh, kem_context)` with `kem_context = enc ‖ pkRm`.
fn extract_and_expand(dh: &[u8], enc: &[u8; ENC_LEN], pk_rm: &[u8; ENC_LEN]) -> Zeroizing<[u8; SECRET_LEN]> {
    let eae_prk = labeled_extract(&KEM_SUITE_ID, b"", b"eae_prk", dh);
    let mut kem_context = [0u8; 2 * ENC_LEN];
    kem_context[..ENC_LEN].copy_from_slice(enc);
    kem_context[ENC_LEN..].copy_from_slice(pk_rm);
    let mut shared = Zeroizing::new([0u8; SECRET_LEN]);
    labeled_expand(&KEM_SUITE_ID, &eae_prk, b"shared_secret", &kem_context, &mut shared[..]);
    shared
}

/// The AEAD key and base nonce of the §5.1 key schedule, base mode.
struct Context {
    key: Zeroizing<[u8; KEY_LEN]>,
    base_nonce: Zeroizing<[u8; NONCE_LEN]>,
}

impl Context {
    fn new(shared_secret: &[u8; SECRET_LEN], info: &[u8]) -> Self {
        let psk_id_hash = labeled_extract(&HPKE_SUITE_ID, b"", b"psk_id_hash", b"");
        let info_hash = labeled_extract(&HPKE_SUITE_ID, b"", b"info_hash", info);
        let mut context = [0u8; 1 + 2 * SECRET_LEN];
        context[0] = MODE_BASE;
        context[1..1 + SECRET_LEN].copy_from_slice(&psk_id_hash[..]);
        context[1 + SECRET_LEN..].copy_from_slice(&info_hash[..]);
        let secret = labeled_extract(&HPKE_SUITE_ID, shared_secret, b"secret", b"");
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        labeled_expand(&HPKE_SUITE_ID, &secret, b"key", &context, &mut key[..]);
        let mut base_nonce = Zeroizing::new([0u8; NONCE_LEN]);
        labeled_expand(&HPKE_SUITE_ID, &secret, b"base_nonce", &context, &mut base_nonce[..]);
        Self { key, base_nonce }
    }

    /// `ComputeNonce(seq)`: base_nonce XOR I2OSP(seq, Nn).
    fn nonce(&self, seq: u64) -> Zeroizing<[u8; NONCE_LEN]> {
        let mut nonce = self.base_nonce.clone();
        for (n, s) in nonce[NONCE_LEN - 8..].iter_mut().zip(seq.to_be_bytes()) {
            *n ^= s;
        }
        nonce
    }

    fn cipher(&self) -> Aead {
        Aead::new(&self.key)
    }
}

/// Single-shot `Seal(pkR, info, aad, pt)` with a fresh ephemeral key from `rng`: writes
/// `ct = AES-256-GCM(pt) ‖ tag` into `out` (which must be exactly `pt.len() + TAG_LEN`
/// bytes) and returns `enc`.
pub fn seal<R: TryCryptoRng + ?Sized>(
    pk_r: &[u8],
    info: &[u8],
    aad: &[u8],
    pt: &[u8],
    out: &mut [u8],
    rng: &mut R,
) -> Result<[u8; ENC_LEN], HpkeError> {
    let sk_e = SecretKey::try_generate_from_rng(rng).map_err(|_| HpkeError::Rng)?;
    seal_with_ephemeral(pk_r, &sk_e, info, aad, pt, out)
}

/// [`seal`] with a given ephemeral key (`skE`), for known-answer tests and interop checks.
pub fn seal_with_ephemeral(
    pk_r: &[u8],
    sk_e: &SecretKey,
    info: &[u8],
    aad: &[u8],
    pt: &[u8],
    out: &mut [u8],
) -> Result<[u8; ENC_LEN], HpkeError> {
    if out.len() != pt.len().checked_add(TAG_LEN).ok_or(HpkeError::BufferLength)? {
        return Err(HpkeError::BufferLength);
    }
    let recipient = deserialize_public_key(pk_r)?;
    let mut pk_rm = [0u8; ENC_LEN];
    pk_rm.copy_from_slice(pk_r);
    let enc = serialize_public_key(&sk_e.public_key());
    let dh = sk_e.diffie_hellman(&recipient);
    let shared = extract_and_expand(dh.raw_secret_bytes(), &enc, &pk_rm);
    let context = Context::new(&shared, info);
    let (body, tag_out) = out.split_at_mut(pt.len());
    body.copy_from_slice(pt);
    let nonce = context.nonce(0);
    let tag = match context.cipher().seal(&nonce, aad, body) {
        Ok(tag) => tag,
        Err(_) => {
            out.zeroize();
            return Err(HpkeError::BufferLength);
        }
    };
    tag_out.copy_from_slice(&tag);
    Ok(enc)
}

/// Single-shot `Open(enc, skR, info, aad, ct)`: authenticates and decrypts `ct` (ciphertext ‖
/// tag) into `out`, which must be exactly `ct.len() - TAG_LEN` bytes. On failure `out` is
/// left zeroed.
pub fn open(sk_r: &SecretKey, enc: &[u8], info: &[u8], aad: &[u8], ct: &[u8], out: &mut [u8]) -> Result<(), HpkeError> {
    let body_len = ct.len().checked_sub(TAG_LEN).ok_or(HpkeError::Open)?;
    if out.len() != body_len {
        return Err(HpkeError::BufferLength);
    }
    let ephemeral = deserialize_public_key(enc).map_err(|_| HpkeError::Open)?;
    let mut enc_bytes = [0u8; ENC_LEN];
    enc_bytes.copy_from_slice(enc);
    let pk_rm = serialize_public_key(&sk_r.public_key());
    let dh = sk_r.diffie_hellman(&ephemeral);
    let shared = extract_and_expand(dh.raw_secret_bytes(), &enc_bytes, &pk_rm);
    let context = Context::new(&shared, info);
    let (body, tag) = ct.split_at(body_len);
    out.copy_from_slice(body);
    let nonce = context.nonce(0);
    if context.cipher().open(&nonce, aad, out, tag).is_err() {
        return Err(HpkeError::Open);
    }
    Ok(())
}

/// `DeriveKeyPair(ikm)` for DHKEM(P-384) (§7.1.3): rejection sampling over
/// `LabeledExpand(dkp_prk, "candidate", I2OSP(counter, 1), 48)` with the top byte masked by
/// 0xff. Used by known-answer tests; the runtime generates its keys from its RNG.
pub fn derive_key_pair(ikm: &[u8]) -> Option<SecretKey> {
    let dkp_prk = labeled_extract(&KEM_SUITE_ID, b"", b"dkp_prk", ikm);
    for counter in 0..=255u8 {
        let mut candidate = Zeroizing::new([0u8; SECRET_KEY_LEN]);
        labeled_expand(&KEM_SUITE_ID, &dkp_prk, b"candidate", &[counter], &mut candidate[..]);
        // bitmask 0xff for P-384: nothing to mask. `from_slice` refuses zero and values ≥ n.
        if let Ok(sk) = SecretKey::from_slice(&candidate[..]) {
            return Some(sk);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter(u64);
    impl rand_core::TryRng for Counter {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(self.try_next_u64()? as u32)
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            Ok(self.0)
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            for chunk in dst.chunks_mut(8) {
                let v = self.try_next_u64()?.to_le_bytes();
                chunk.copy_from_slice(&v[..chunk.len()]);
            }
            Ok(())
        }
    }
    impl rand_core::TryCryptoRng for Counter {}

    fn recipient() -> (SecretKey, [u8; ENC_LEN]) {
        let sk = derive_key_pair(b"twi hpke test recipient").unwrap();
        let pk = serialize_public_key(&sk.public_key());
        (sk, pk)
    }

    #[test]
    fn seal_then_open_round_trips() {
        let (sk, pk) = recipient();
        let pt = b"forty-eight bytes of a P-384 secret key.........";
        let mut ct = [0u8; 48 + TAG_LEN];
        let enc = seal(&pk, b"info", b"aad", pt, &mut ct, &mut Counter(7)).unwrap();
        assert_ne!(&ct[..48], &pt[..]);
        let mut out = [0u8; 48];
        open(&sk, &enc, b"info", b"aad", &ct, &mut out).unwrap();
        assert_eq!(&out, pt);
    }

    #[test]
    fn any_change_makes_open_fail_and_leaves_no_plaintext() {
        let (sk, pk) = recipient();
        let pt = [0x5au8; 48];
        let mut ct = [0u8; 48 + TAG_LEN];
        let enc = seal(&pk, b"info", b"aad", &pt, &mut ct, &mut Counter(9)).unwrap();
        let mut out = [0u8; 48];
        assert_eq!(open(&sk, &enc, b"inf0", b"aad", &ct, &mut out), Err(HpkeError::Open));
        assert_eq!(out, [0u8; 48]);
        assert_eq!(open(&sk, &enc, b"info", b"aaD", &ct, &mut out), Err(HpkeError::Open));
        for i in 0..ct.len() {
            let mut bad = ct;
            bad[i] ^= 0x01;
            assert_eq!(open(&sk, &enc, b"info", b"aad", &bad, &mut out), Err(HpkeError::Open), "ct byte {i}");
            assert_eq!(out, [0u8; 48]);
        }
        for i in 1..ENC_LEN {
            let mut bad = enc;
            bad[i] ^= 0x01;
            assert_eq!(open(&sk, &bad, b"info", b"aad", &ct, &mut out), Err(HpkeError::Open), "enc byte {i}");
        }
        let other = derive_key_pair(b"someone else").unwrap();
        assert_eq!(open(&other, &enc, b"info", b"aad", &ct, &mut out), Err(HpkeError::Open));
        assert_eq!(open(&sk, &enc, b"info", b"aad", &ct[..TAG_LEN - 1], &mut []), Err(HpkeError::Open));
    }

    #[test]
    fn malformed_keys_and_buffers_are_refused() {
        let (_, pk) = recipient();
        let mut ct = [0u8; 4 + TAG_LEN];
        let mut compressed = pk;
        compressed[0] = 0x02;
        assert_eq!(seal(&compressed, b"", b"", b"abcd", &mut ct, &mut Counter(1)), Err(HpkeError::InvalidPublicKey));
        let mut off_curve = pk;
        off_curve[96] ^= 1;
        assert_eq!(seal(&off_curve, b"", b"", b"abcd", &mut ct, &mut Counter(1)), Err(HpkeError::InvalidPublicKey));
        assert_eq!(seal(&pk[..96], b"", b"", b"abcd", &mut ct, &mut Counter(1)), Err(HpkeError::InvalidPublicKey));
        assert_eq!(seal(&pk, b"", b"", b"abc", &mut ct, &mut Counter(1)), Err(HpkeError::BufferLength));
    }

    #[test]
    fn suite_ids_are_the_rfc_ones() {
        assert_eq!(&KEM_SUITE_ID, b"KEM\x00\x11");
        assert_eq!(&HPKE_SUITE_ID, b"HPKE\x00\x11\x00\x02\x00\x02");
    }
}
