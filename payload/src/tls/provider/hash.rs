//! SHA-384 and HMAC-SHA-384 for the one TLS 1.3 suite we offer.
//!
//! TLS_AES_256_GCM_SHA384 (RFC 8446 §B.4) runs its transcript hash and its key schedule
//! (HKDF, RFC 5869, over HMAC, RFC 2104) on SHA-384. rustls builds HKDF from an HMAC
//! (`HkdfUsingHmac`), so the provider supplies only these two: no second HKDF
//! implementation in the ROM. Both come from the `sha2`/`hmac` generation the runtime links.

use alloc::boxed::Box;

use hmac::{KeyInit, Mac};
use rustls::crypto::hash::{self, HashAlgorithm};
use rustls::crypto::hmac as rustls_hmac;
use sha2::Sha384;
use sha2::digest::Digest;
use sha2::digest::block_api::BlockSizeUser;
use zeroize::Zeroizing;

/// SHA-384 as rustls's transcript hash.
pub(super) struct Sha384Hash;

impl hash::Hash for Sha384Hash {
    fn start(&self) -> Box<dyn hash::Context> {
        Box::new(Sha384Context(Sha384::new()))
    }

    fn hash(&self, data: &[u8]) -> hash::Output {
        hash::Output::new(&Sha384::digest(data))
    }

    fn output_len(&self) -> usize {
        <Sha384 as Digest>::output_size()
    }

    fn algorithm(&self) -> HashAlgorithm {
        HashAlgorithm::SHA384
    }
}

struct Sha384Context(Sha384);

impl hash::Context for Sha384Context {
    fn fork_finish(&self) -> hash::Output {
        hash::Output::new(&self.0.clone().finalize())
    }

    fn fork(&self) -> Box<dyn hash::Context> {
        Box::new(Sha384Context(self.0.clone()))
    }

    fn finish(self: Box<Self>) -> hash::Output {
        hash::Output::new(&self.0.finalize())
    }

    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
}

/// HMAC-SHA-384 (RFC 2104), the PRF under TLS 1.3's HKDF.
pub(super) struct HmacSha384;

type HmacState = hmac::Hmac<Sha384>;

impl rustls_hmac::Hmac for HmacSha384 {
    fn with_key(&self, key: &[u8]) -> Box<dyn rustls_hmac::Key> {
        Box::new(HmacKey(keyed(key)))
    }

    fn hash_output_len(&self) -> usize {
        <Sha384 as Digest>::output_size()
    }
}

/// RFC 2104 §2: a key longer than the hash's block is first hashed; a shorter one is padded
/// with zeros to the block. Doing that here makes keying infallible (the fixed-size `new`),
/// with no error path for a length rustls never produces.
fn keyed(key: &[u8]) -> HmacState {
    let mut block = Zeroizing::new(hmac::digest::Key::<HmacState>::default());
    if key.len() > <Sha384 as BlockSizeUser>::block_size() {
        let digest = Sha384::digest(key);
        block[..digest.len()].copy_from_slice(&digest);
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    HmacState::new(&block)
}

struct HmacKey(HmacState);

impl rustls_hmac::Key for HmacKey {
    fn sign_concat(&self, first: &[u8], middle: &[&[u8]], last: &[u8]) -> rustls_hmac::Tag {
        let mut mac = self.0.clone();
        mac.update(first);
        for part in middle {
            mac.update(part);
        }
        mac.update(last);
        rustls_hmac::Tag::new(&mac.finalize().into_bytes())
    }

    fn tag_len(&self) -> usize {
        <Sha384 as Digest>::output_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::crypto::hash::Hash as _;
    use rustls::crypto::hmac::Hmac as _;

    fn hex(bytes: &[u8]) -> alloc::string::String {
        bytes.iter().map(|b| alloc::format!("{b:02x}")).collect()
    }

    /// RFC 4231 §4.2 (test case 1) and §4.7 (test case 6: a 131-byte key, longer than the block).
    #[test]
    fn hmac_sha384_matches_rfc4231() {
        let tag = HmacSha384.with_key(&[0x0b; 20]).sign(&[b"Hi There"]);
        assert_eq!(
            hex(tag.as_ref()),
            "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6"
        );
        let tag = HmacSha384.with_key(&[0xaa; 131]).sign(&[b"Test Using Larger Than Block-Size Key - Hash Key First"]);
        assert_eq!(
            hex(tag.as_ref()),
            "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952"
        );
    }

    /// FIPS 180-4 example "abc", through one-shot, incremental and forked contexts.
    #[test]
    fn sha384_forks_agree() {
        let expected =
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7";
        assert_eq!(hex(Sha384Hash.hash(b"abc").as_ref()), expected);
        let mut ctx = Sha384Hash.start();
        ctx.update(b"ab");
        let fork = ctx.fork();
        ctx.update(b"c");
        assert_eq!(hex(ctx.fork_finish().as_ref()), expected);
        assert_eq!(hex(ctx.finish().as_ref()), expected);
        assert_ne!(hex(fork.finish().as_ref()), expected);
    }
}
