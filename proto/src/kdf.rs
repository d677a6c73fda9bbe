//! HKDF with SHA-384 (RFC 5869), the one copy the guest's protocols share: the TLS 1.3 key
//! schedule and Finished MAC of the payload's client, and HPKE's labeled derivations in the
//! attester. Both protocols build their inputs from parts (lengths, labels, contexts), so the
//! functions take them in parts; neither is inlined, so the firmware carries one HMAC-SHA384
//! extraction and one expansion instead of one per caller (issue 17: each caller had its own,
//! about 1 to 2.5 KB at opt-level "s").

use hkdf::HkdfExtract;
use sha2::Sha384;
use zeroize::{Zeroize, Zeroizing};

/// SHA-384's output: the length of every pseudorandom key here.
pub const HASH_LEN: usize = 48;

/// A pseudorandom key (or an HMAC value), zeroized when dropped.
pub type Prk = Zeroizing<[u8; HASH_LEN]>;

/// A key shorter than a hash for [`expand`], or more output than 255 hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LengthError;

/// HKDF-Extract (§2.2) over the concatenation of `ikm`'s parts, keyed with `salt`. By §2.2's
/// definition this is HMAC-SHA384(`salt`, `ikm`), which is also what a TLS Finished MAC is.
#[inline(never)]
pub fn extract(salt: &[u8], ikm: &[&[u8]]) -> Prk {
    let mut extract = HkdfExtract::<Sha384>::new(Some(salt));
    for part in ikm {
        extract.input_ikm(part);
    }
    let (mut prk, _) = extract.finalize();
    let mut out = Zeroizing::new([0u8; HASH_LEN]);
    out.copy_from_slice(&prk);
    prk.as_mut_slice().zeroize();
    out
}

/// The most parts an [`expand`] info may have (TLS's HkdfLabel has 6, HPKE's 5).
pub const MAX_INFO_PARTS: usize = 8;

/// HKDF-Expand (§2.3): fills `okm` from `prk` and the concatenation of `info`'s parts.
/// `T(i) = HMAC(PRK, T(i-1) ‖ info ‖ i)` through [`extract`], the same HMAC-SHA384: the
/// hkdf crate's own expansion was a second inlined HMAC, with an integer conversion whose
/// panic path linked `core`'s Debug formatting (2 KB more in the firmware).
#[inline(never)]
pub fn expand(prk: &[u8], info: &[&[u8]], okm: &mut [u8]) -> Result<(), LengthError> {
    if prk.len() < HASH_LEN || okm.len() > 255 * HASH_LEN || info.len() > MAX_INFO_PARTS {
        return Err(LengthError);
    }
    let mut block = Zeroizing::new([0u8; HASH_LEN]);
    for (chunk, i) in okm.chunks_mut(HASH_LEN).zip(1u8..=255) {
        let counter = [i];
        let mut parts: [&[u8]; MAX_INFO_PARTS + 2] = [&[]; MAX_INFO_PARTS + 2];
        if i > 1 {
            parts[0] = &block[..];
        }
        parts[1..=info.len()].copy_from_slice(info);
        parts[info.len() + 1] = &counter;
        let next = extract(prk, &parts[..info.len() + 2]);
        chunk.copy_from_slice(&next[..chunk.len()]);
        block = next;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::unhex as hex;

    /// RFC 4231 test case 2 ("Jefe"): HMAC-SHA384, here as the extraction, in two parts.
    #[test]
    fn extract_is_hmac_sha384_over_the_parts() {
        let mac = extract(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        let want =
            hex("af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649");
        assert_eq!(&mac[..], &want[..]);
        assert_ne!(extract(b"Jefe", &[b"what do ya want ", b"for nothing!"]), mac);
    }

    /// Parts are concatenated: any split of the same info gives the same output; another info not.
    #[test]
    fn expand_reads_info_as_one_string_and_checks_lengths() {
        let prk = extract(b"salt", &[b"input key material"]);
        let (mut a, mut b, mut c) = ([0u8; 80], [0u8; 80], [0u8; 80]);
        expand(&prk[..], &[b"tls13 ", b"key"], &mut a).unwrap();
        expand(&prk[..], &[b"tls1", b"3 k", b"", b"ey"], &mut b).unwrap();
        expand(&prk[..], &[b"tls13 ", b"iv"], &mut c).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(expand(&prk[..47], &[], &mut a), Err(LengthError));
        assert_eq!(expand(&prk[..], &[], &mut [0u8; 255 * HASH_LEN + 1]), Err(LengthError));
        assert_eq!(expand(&prk[..], &[], &mut [0u8; 255 * HASH_LEN]), Ok(()));
        assert_eq!(expand(&prk[..], &[&[] as &[u8]; MAX_INFO_PARTS + 1], &mut a), Err(LengthError));
    }

    /// Against the hkdf crate's own expansion, for every output length up to three blocks and
    /// the PRK lengths HKDF admits (a hash and more).
    #[test]
    fn expand_matches_the_hkdf_crate() {
        let info: [&[u8]; 3] = [b"\x00\x30", b"tls13 c hs traffic", &[7; 48]];
        for prk_len in [HASH_LEN, HASH_LEN + 1, 100] {
            let prk: alloc::vec::Vec<u8> = (0..prk_len as u8).collect();
            let reference = hkdf::Hkdf::<Sha384>::from_prk(&prk).unwrap();
            for len in 0..=3 * HASH_LEN + 1 {
                let (mut ours, mut theirs) = (alloc::vec![0u8; len], alloc::vec![0u8; len]);
                expand(&prk, &info, &mut ours).unwrap();
                reference.expand_multi_info(&info, &mut theirs).unwrap();
                assert_eq!(ours, theirs, "PRK of {prk_len} bytes, {len} bytes out");
            }
        }
    }
}
