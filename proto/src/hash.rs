//! SHA-256, SHA-384 and SHA-512 over the concatenation of parts: one non-inlined copy of each hash's
//! padding and finalization for the guest's many digests (REPORTDATA bindings, RTMR events and
//! extensions, certificate-table and quote names). Inlined at each call site, each copy was
//! 700 to 1,000 bytes of the firmware (issue 17).

use sha2::{Digest, Sha256, Sha384, Sha512};

/// SHA-256 of `parts`, concatenated.
#[inline(never)]
pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in parts {
        h.update(part);
    }
    h.finalize().into()
}

/// SHA-384 of `parts`, concatenated.
#[inline(never)]
pub fn sha384(parts: &[&[u8]]) -> [u8; 48] {
    let mut h = Sha384::new();
    for part in parts {
        h.update(part);
    }
    h.finalize().into()
}

/// SHA-512 of `parts`, concatenated.
#[inline(never)]
pub fn sha512(parts: &[&[u8]]) -> [u8; 64] {
    let mut h = Sha512::new();
    for part in parts {
        h.update(part);
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FIPS 180-4's "abc" examples, split in parts; and an empty list is the empty string.
    #[test]
    fn known_answers_over_parts() {
        let hex = |b: &[u8]| b.iter().map(|x| alloc::format!("{x:02x}")).collect::<alloc::string::String>();
        assert_eq!(
            hex(&sha384(&[b"a", b"", b"bc"])),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"
        );
        assert_eq!(
            hex(&sha512(&[b"ab", b"c"])),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
        assert_eq!(hex(&sha256(&[b"abc"])), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(sha384(&[]), <[u8; 48]>::from(Sha384::digest(b"")));
    }
}
