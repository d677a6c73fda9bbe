//! Sealing data to the launch: AES-256-GCM under a key the firmware derives from the chip
//! secret and the launch measurement, policy and TCB (see
//! [`KeyRequest::launch_bound`](twi_attester::snp::key::KeyRequest::launch_bound)). Only the
//! same image, launched with the same policy on a platform at that TCB, can unseal.
//!
//! Sealed format: `0x01 ‖ nonce[12] ‖ ciphertext ‖ tag[16]`; the caller's `context` is
//! authenticated as associated data (it names what was sealed, so blobs cannot be swapped).

use alloc::vec::Vec;
use rand_core::TryCryptoRng;
use twi_proto::aead::Aead;
use zeroize::Zeroizing;

const FORMAT: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealError {
    Rng,
    /// Not a sealed blob of this format, or altered, or sealed under another key or context.
    Unseal,
}

impl core::fmt::Display for SealError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Rng => "the random number generator failed",
            Self::Unseal => "not a sealed credential of this launch (altered, or sealed under another key)",
        })
    }
}

/// A launch-bound sealing key (zeroized on drop).
pub struct SealingKey(Zeroizing<[u8; 32]>);

impl core::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SealingKey(<secret>)")
    }
}

impl SealingKey {
    pub fn new(key: Zeroizing<[u8; 32]>) -> Self {
        Self(key)
    }

    fn cipher(&self) -> Aead {
        Aead::new(&self.0)
    }

    pub fn seal<R: TryCryptoRng + ?Sized>(
        &self,
        context: &[u8],
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.try_fill_bytes(&mut nonce).map_err(|_| SealError::Rng)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.push(FORMAT);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = self.cipher().seal(&nonce, context, &mut out[1 + NONCE_LEN..]).map_err(|_| SealError::Unseal)?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    pub fn unseal(&self, context: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let (&format, rest) = sealed.split_first().ok_or(SealError::Unseal)?;
        if format != FORMAT || rest.len() < NONCE_LEN + TAG_LEN {
            return Err(SealError::Unseal);
        }
        let (nonce, rest) = rest.split_at(NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        let mut plain = Zeroizing::new(ciphertext.to_vec());
        let mut iv = [0u8; NONCE_LEN];
        iv.copy_from_slice(nonce);
        self.cipher().open(&iv, context, plain.as_mut_slice(), tag).map_err(|_| SealError::Unseal)?;
        Ok(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use twi_testkit::TestRng;

    #[test]
    fn round_trip_and_every_alteration_is_refused() {
        let key = SealingKey::new(Zeroizing::new([9; 32]));
        let sealed = key.seal(b"credential", b"the secret credential", &mut TestRng(5)).unwrap();
        assert_eq!(sealed.len(), 1 + 12 + 21 + 16);
        assert_eq!(key.unseal(b"credential", &sealed).unwrap().as_slice(), b"the secret credential");
        for i in 0..sealed.len() {
            let mut altered = sealed.clone();
            altered[i] ^= 1;
            assert_eq!(key.unseal(b"credential", &altered), Err(SealError::Unseal), "byte {i}");
        }
        assert_eq!(key.unseal(b"other", &sealed), Err(SealError::Unseal));
        let other = SealingKey::new(Zeroizing::new([8; 32]));
        assert_eq!(other.unseal(b"credential", &sealed), Err(SealError::Unseal));
        assert_eq!(key.unseal(b"credential", &sealed[..20]), Err(SealError::Unseal));
        assert_eq!(key.unseal(b"credential", &[]), Err(SealError::Unseal));
    }

    #[test]
    fn two_seals_of_the_same_data_differ() {
        let key = SealingKey::new(Zeroizing::new([9; 32]));
        let mut rng = TestRng(77);
        assert_ne!(key.seal(b"c", b"same", &mut rng).unwrap(), key.seal(b"c", b"same", &mut rng).unwrap());
    }
}
