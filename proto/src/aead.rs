//! AES-256-GCM, the one AEAD of the guest's protocols (TLS records, SEV-SNP guest messages,
//! HPKE, sealing to the launch), behind non-inlined calls: each protocol's own use of the
//! aes-gcm crate had its own inlined copy of encryption, decryption or key expansion (issue 17).
//! The expanded key is zeroized when dropped (aes-gcm's `zeroize` feature).

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Tag};
use zeroize::Zeroize;

/// Key, nonce and tag lengths.
pub const KEY_LEN: usize = 32;
pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;

/// Encryption failed (more than AES-GCM's 2^36 − 32 bytes), or a message did not authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AeadError;

/// An AES-256-GCM key, expanded.
pub struct Aead(Aes256Gcm);

impl core::fmt::Debug for Aead {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Aead(<secret>)")
    }
}

impl Aead {
    /// Expands `key`.
    #[inline(never)]
    pub fn new(key: &[u8; KEY_LEN]) -> Self {
        Self(Aes256Gcm::new(key.into()))
    }

    /// Encrypts `buf` in place under `nonce`, authenticating `aad` too; returns the tag.
    ///
    /// # Errors
    /// [`AeadError`] if `buf` is longer than AES-GCM allows.
    #[inline(never)]
    pub fn seal(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buf: &mut [u8]) -> Result<[u8; TAG_LEN], AeadError> {
        let tag = self.0.encrypt_inout_detached(nonce.into(), aad, buf.into()).map_err(|_| AeadError)?;
        Ok(tag.into())
    }

    /// Authenticates `buf` (ciphertext), `aad` and `tag` under `nonce`, then decrypts `buf` in
    /// place.
    ///
    /// # Errors
    /// [`AeadError`] if they do not authenticate (or `tag` is not 16 bytes); `buf` is then all
    /// zeros, so no unauthenticated byte is ever read as plaintext.
    #[inline(never)]
    pub fn open(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buf: &mut [u8], tag: &[u8]) -> Result<(), AeadError> {
        let opened = Tag::try_from(tag)
            .ok()
            .and_then(|tag| self.0.decrypt_inout_detached(nonce.into(), aad, buf.into(), &tag).ok());
        if opened.is_none() {
            buf.zeroize();
            return Err(AeadError);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::unhex as hex;

    /// The GCM specification's test case 16 (AES-256, 60 bytes, 20 bytes of AAD).
    #[test]
    fn known_answer_and_every_flipped_byte_is_refused() {
        let key: [u8; 32] = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308").try_into().unwrap();
        let nonce: [u8; 12] = hex("cafebabefacedbaddecaf888").try_into().unwrap();
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let plain = hex(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        );
        let want = hex(
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
        );
        let aead = Aead::new(&key);
        let mut buf = plain.clone();
        let tag = aead.seal(&nonce, &aad, &mut buf).unwrap();
        assert_eq!(buf, want);
        assert_eq!(tag.to_vec(), hex("76fc6ece0f4e1768cddf8853bb2d551b"));
        let mut opened = buf.clone();
        aead.open(&nonce, &aad, &mut opened, &tag).unwrap();
        assert_eq!(opened, plain);
        for i in 0..buf.len() + tag.len() {
            let (mut body, mut bad_tag) = (buf.clone(), tag);
            if i < body.len() {
                body[i] ^= 1
            } else {
                bad_tag[i - body.len()] ^= 1
            }
            assert_eq!(aead.open(&nonce, &aad, &mut body, &bad_tag), Err(AeadError));
            assert!(body.iter().all(|&b| b == 0), "unauthenticated bytes left in the buffer");
        }
        assert_eq!(aead.open(&nonce, &aad, &mut buf.clone(), &tag[..15]), Err(AeadError));
    }
}
