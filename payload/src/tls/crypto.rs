//! The cryptography of TLS_AES_256_GCM_SHA384 with secp384r1 (RFC 8446 §7): the ephemeral key
//! exchange, the key schedule over HKDF-SHA384, record protection with AES-256-GCM, and the
//! Finished MAC. Every secret is zeroized when dropped.

use alloc::vec::Vec;
use p384::SecretKey;
use twi_proto::aead::Aead;
use twi_proto::kdf;
use zeroize::Zeroizing;

use super::error::TlsError;
use super::random::Random;

/// SHA-384's output: every secret and transcript hash of this suite.
pub(crate) const HASH_LEN: usize = kdf::HASH_LEN;
const KEY_LEN: usize = twi_proto::aead::KEY_LEN;
const IV_LEN: usize = 12;
pub(crate) const TAG_LEN: usize = 16;
/// A source that yields this many out-of-range scalars in a row (each has odds below 2^-190) is
/// broken, not unlucky.
const SCALAR_ATTEMPTS: usize = 4;
/// AES-GCM: 2^24 full-size records per key keeps the distinguishing advantage below 2^-60
/// (draft-irtf-cfrg-aead-limits §5.1); a key is updated before it protects more.
pub(crate) const RECORDS_PER_KEY: u64 = 1 << 24;

pub(crate) type Secret = Zeroizing<[u8; HASH_LEN]>;
pub(crate) type Digest = [u8; HASH_LEN];

/// Our secp384r1 key share (RFC 8446 §4.2.8.2), used once.
pub(crate) struct Ephemeral {
    secret: SecretKey,
    pub(crate) public: [u8; twi_proto::point::P384_UNCOMPRESSED_LEN],
}

impl Ephemeral {
    pub(crate) fn new(random: &dyn Random) -> Result<Self, TlsError> {
        for _ in 0..SCALAR_ATTEMPTS {
            let mut bytes = Zeroizing::new([0u8; 48]);
            random.fill(&mut bytes[..]).map_err(|_| TlsError::Random)?;
            if let Ok(secret) = SecretKey::from_slice(&bytes[..]) {
                let public = twi_proto::point::p384_uncompressed(&secret.public_key());
                return Ok(Self { secret, public });
            }
        }
        Err(TlsError::Random)
    }

    /// The shared secret with the server's share: exactly an uncompressed point on the curve.
    pub(crate) fn agree(self, peer: &[u8]) -> Result<Secret, TlsError> {
        let peer = twi_proto::point::p384_from_uncompressed(peer)
            .ok_or(TlsError::Protocol("the server's key share is not a P-384 point"))?;
        let shared = p384::ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), peer.as_affine());
        let mut out = Zeroizing::new([0u8; HASH_LEN]);
        out.copy_from_slice(shared.raw_secret_bytes());
        Ok(out)
    }
}

/// HKDF-Extract (RFC 5869 §2.2).
pub(crate) fn extract(salt: &[u8], ikm: &[u8]) -> Secret {
    kdf::extract(salt, &[ikm])
}

/// HKDF-Expand-Label (RFC 8446 §7.1) into `out` (at most one hash's length here).
pub(crate) fn expand_label(secret: &[u8], label: &[u8], context: &[u8], out: &mut [u8]) -> Result<(), TlsError> {
    let length = (out.len() as u16).to_be_bytes();
    let label_len = [(6 + label.len()) as u8];
    let context_len = [context.len() as u8];
    let info: [&[u8]; 6] = [&length, &label_len, b"tls13 ", label, &context_len, context];
    kdf::expand(secret, &info, out).map_err(|_| TlsError::Internal("HKDF-Expand-Label"))
}

/// Derive-Secret with the transcript hash already taken.
pub(crate) fn derive(secret: &[u8], label: &[u8], transcript: &Digest) -> Result<Secret, TlsError> {
    let mut out = Zeroizing::new([0u8; HASH_LEN]);
    expand_label(secret, label, transcript, &mut out[..])?;
    Ok(out)
}

/// The MAC of a Finished message (§4.4.4) with `base`'s finished key over `transcript`:
/// HMAC-SHA384, which is HKDF-Extract keyed with the finished key (RFC 5869 §2.2).
pub(crate) fn finished_mac(base: &[u8], transcript: &Digest) -> Result<Secret, TlsError> {
    let mut key = Zeroizing::new([0u8; HASH_LEN]);
    expand_label(base, b"finished", &[], &mut key[..])?;
    Ok(kdf::extract(&key[..], &[transcript]))
}

/// One direction's record protection (§5.2, §5.3): AES-256-GCM under a traffic secret.
pub(crate) struct RecordCipher {
    secret: Secret,
    aead: Aead,
    iv: Zeroizing<[u8; IV_LEN]>,
    seq: u64,
}

impl RecordCipher {
    pub(crate) fn new(secret: Secret) -> Result<Self, TlsError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        let mut iv = Zeroizing::new([0u8; IV_LEN]);
        expand_label(&secret[..], b"key", &[], &mut key[..])?;
        expand_label(&secret[..], b"iv", &[], &mut iv[..])?;
        Ok(Self { secret, aead: Aead::new(&key), iv, seq: 0 })
    }

    /// The next generation of this direction's keys (§7.2, KeyUpdate).
    pub(crate) fn updated(&self) -> Result<Self, TlsError> {
        let mut next = Zeroizing::new([0u8; HASH_LEN]);
        expand_label(&self.secret[..], b"traffic upd", &[], &mut next[..])?;
        Self::new(next)
    }

    /// Whether this key has protected as many records as it should.
    pub(crate) fn spent(&self) -> bool {
        self.seq >= RECORDS_PER_KEY
    }

    fn nonce(&mut self) -> Result<[u8; IV_LEN], TlsError> {
        let mut nonce = *self.iv;
        for (n, s) in nonce[IV_LEN - 8..].iter_mut().zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        self.seq = self.seq.checked_add(1).ok_or(TlsError::Internal("record sequence exhausted"))?;
        Ok(nonce)
    }

    /// Appends one protected record carrying `data` of inner type `kind` to `out`.
    pub(crate) fn seal(&mut self, kind: u8, data: &[u8], out: &mut Vec<u8>) -> Result<(), TlsError> {
        let len = (data.len() + 1 + TAG_LEN) as u16;
        let header = [23, 3, 3, (len >> 8) as u8, len as u8];
        let start = out.len();
        out.extend_from_slice(&header);
        out.extend_from_slice(data);
        out.push(kind);
        let nonce = self.nonce()?;
        let tag = self.aead.seal(&nonce, &header, &mut out[start + 5..]).map_err(|_| TlsError::Internal("AES-GCM"))?;
        out.extend_from_slice(&tag);
        Ok(())
    }

    /// Opens the record with `header` and `payload` in place; returns its inner type and the
    /// length of its content at the start of `payload`.
    pub(crate) fn open(&mut self, header: &[u8; 5], payload: &mut [u8]) -> Result<(u8, usize), TlsError> {
        let body_len = payload.len().checked_sub(TAG_LEN).ok_or(TlsError::Tampered)?;
        let (body, tag) = payload.split_at_mut(body_len);
        let nonce = self.nonce()?;
        self.aead.open(&nonce, header, body, tag).map_err(|_| TlsError::Tampered)?;
        // §5.4: the inner type is the last non-zero byte; zeros after it are padding.
        let end = body.iter().rposition(|&b| b != 0).ok_or(TlsError::Protocol("a record with no content type"))?;
        Ok((body[end], end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(byte: u8) -> Secret {
        Zeroizing::new([byte; HASH_LEN])
    }

    #[test]
    fn sealed_records_open_once_in_order_and_every_flipped_byte_fails() {
        let (mut tx, mut rx) = (RecordCipher::new(secret(7)).unwrap(), RecordCipher::new(secret(7)).unwrap());
        let mut out = Vec::new();
        tx.seal(23, b"hello", &mut out).unwrap();
        let header: [u8; 5] = out[..5].try_into().unwrap();
        assert_eq!(header, [23, 3, 3, 0, 5 + 1 + 16]);
        let mut payload = out[5..].to_vec();
        assert_eq!(rx.open(&header, &mut payload).unwrap(), (23, 5));
        assert_eq!(&payload[..5], b"hello");
        for i in 0..out.len() {
            let mut rx = RecordCipher::new(secret(7)).unwrap();
            let mut flipped = out.clone();
            flipped[i] ^= 1;
            let header: [u8; 5] = flipped[..5].try_into().unwrap();
            assert_eq!(rx.open(&header, &mut flipped[5..]), Err(TlsError::Tampered), "byte {i}");
        }
        // The same record again is under the next sequence number: refused.
        let mut again = out[5..].to_vec();
        assert_eq!(rx.open(&header, &mut again), Err(TlsError::Tampered));
        assert_eq!(rx.open(&header, &mut [0u8; 15]), Err(TlsError::Tampered));
    }

    #[test]
    fn an_updated_key_differs_and_both_sides_agree() {
        let (tx, rx) = (RecordCipher::new(secret(1)).unwrap(), RecordCipher::new(secret(1)).unwrap());
        let (mut tx, mut rx_old, mut rx) =
            (tx.updated().unwrap(), RecordCipher::new(secret(1)).unwrap(), rx.updated().unwrap());
        let mut out = Vec::new();
        tx.seal(22, b"after KeyUpdate", &mut out).unwrap();
        let header: [u8; 5] = out[..5].try_into().unwrap();
        assert_eq!(rx_old.open(&header, &mut out[5..].to_vec()), Err(TlsError::Tampered));
        assert_eq!(rx.open(&header, &mut out[5..]).unwrap(), (22, 15));
    }

    /// HKDF-Expand-Label's encoding, against the SHA-384 key schedule of RFC 8446 §7.1 as
    /// computed by an independent implementation (Python's hmac/hashlib; see the test's
    /// comment for the script).
    #[test]
    fn the_early_secret_and_its_derived_secret_match_an_independent_computation() {
        // python3 -c 'import hmac,hashlib; z=bytes(48); e=hmac.new(z,z,hashlib.sha384).digest();
        // h=hashlib.sha384(b"").digest(); i=(48).to_bytes(2,"big")+bytes([13])+b"tls13 derived"+bytes([48])+h;
        // print(e.hex()); print(hmac.new(e,i+b"\x01",hashlib.sha384).digest().hex())'
        let early = extract(&[0; 48], &[0; 48]);
        let empty: Digest = <sha2::Sha384 as sha2::Digest>::digest(b"").into();
        let derived = derive(&early[..], b"derived", &empty).unwrap();
        assert_eq!(hex(&early[..]), EARLY);
        assert_eq!(hex(&derived[..]), DERIVED);
    }

    const EARLY: &str =
        "7ee8206f5570023e6dc7519eb1073bc4e791ad37b5c382aa10ba18e2357e716971f9362f2c2fe2a76bfd78dfec4ea9b5";
    const DERIVED: &str =
        "1591dac5cbbf0330a4a84de9c753330e92d01f0a88214b4464972fd668049e93e52f2b16fad922fdc0584478428f282b";

    fn hex(bytes: &[u8]) -> alloc::string::String {
        bytes.iter().map(|b| alloc::format!("{b:02x}")).collect()
    }
}
