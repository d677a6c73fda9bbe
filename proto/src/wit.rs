//! The WIT claims the guest reads (draft-ietf-wimse-workload-creds: `sub`, `cnf.jwk`) from the
//! compact JWS the host relays: the runtime checks that a WIT names its workload and certifies
//! its key, a workload's WPT code that the key's `alg` is the one it signs with. The WIT's
//! signature is not checked here: the launch manifest does not carry the issuer's WIT key;
//! relying parties check it against the issuer's published keys.

use alloc::vec::Vec;

use crate::json::{JsonError, Object};

/// The claims set of the compact JWS `token` (its second part, base64url-decoded): the text
/// [`WitClaims::read`] reads.
///
/// # Errors
/// [`JsonError`] if `token` is not three dot-separated parts with a base64url middle one.
pub fn claims_text(token: &str) -> Result<Vec<u8>, JsonError> {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(payload), Some(_), None) => base64url_decode(payload),
        _ => Err(JsonError),
    }
}

/// Decodes unpadded base64url (RFC 4648 §5, as JWS uses it: RFC 7515 §2) strictly: the
/// URL-safe alphabet only, no padding or white space, no length of the form 4n + 1, and the
/// unused low bits of the last character zero, so each byte string has one encoding
/// (base64ct's rules, which the tests compare against). A WIT is public, so this does not need
/// base64ct's constant-time decoding, whose decoder was 1.9 KB of the firmware (issue 17).
///
/// # Errors
/// [`JsonError`] for anything else.
pub fn base64url_decode(text: &str) -> Result<Vec<u8>, JsonError> {
    let bytes = text.as_bytes();
    if bytes.len() % 4 == 1 {
        return Err(JsonError);
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3 + 2);
    for chunk in bytes.chunks(4) {
        let mut group = 0u32;
        for &c in chunk {
            group = group << 6 | sextet(c).ok_or(JsonError)?;
        }
        // Left-aligned in 24 bits: 2, 3 or 4 characters carry 1, 2 or 3 bytes.
        let group = group << (6 * (4 - chunk.len()));
        let len = chunk.len() * 6 / 8;
        if group & (0x00FF_FFFF >> (8 * len)) != 0 {
            return Err(JsonError);
        }
        out.extend_from_slice(&group.to_be_bytes()[1..=len]);
    }
    Ok(out)
}

/// The value of one base64url character.
fn sextet(c: u8) -> Option<u32> {
    let value = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return None,
    };
    Some(u32::from(value))
}

/// The claims the guest reads; `None` where the claims set lacks one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WitClaims<'a> {
    pub sub: Option<&'a str>,
    /// `cnf.jwk`: the key the WIT certifies.
    pub jwk: Option<Jwk<'a>>,
}

/// The members of `cnf.jwk` the guest reads (RFC 7517, RFC 7518 §6.2.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Jwk<'a> {
    pub crv: Option<&'a str>,
    pub x: Option<&'a str>,
    pub y: Option<&'a str>,
    pub alg: Option<&'a str>,
}

impl<'a> WitClaims<'a> {
    /// Reads a claims set: a JSON object (by [`crate::json`]'s rules) whose `sub`, `cnf.jwk.crv`,
    /// `x`, `y` and `alg`, where present, are strings.
    ///
    /// # Errors
    /// [`JsonError`] for anything else.
    pub fn read(text: &'a [u8]) -> Result<Self, JsonError> {
        let claims = Object::parse(text)?;
        let jwk = match claims.object("cnf")? {
            Some(cnf) => cnf.object("jwk")?,
            None => None,
        };
        let jwk = match jwk {
            Some(jwk) => {
                Some(Jwk { crv: jwk.string("crv")?, x: jwk.string("x")?, y: jwk.string("y")?, alg: jwk.string("alg")? })
            }
            None => None,
        };
        Ok(Self { sub: claims.string("sub")?, jwk })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64ct::{Base64UrlUnpadded, Encoding};

    /// Same bytes or same refusal as base64ct on every encoding of random bytes, each with one
    /// character replaced, and on random strings over the alphabet and its neighbours.
    #[test]
    fn base64url_decode_agrees_with_base64ct() {
        let mut rng = crate::tests::Rng(0x05EE_DB64);
        let alphabet = b"ABCXYZabcxyz0189-_+/=. \n";
        let mut texts =
            alloc::vec![alloc::string::String::new(), "A".into(), "AA".into(), "AB".into(), "AAA".into(), "AAB".into()];
        for _ in 0..3000 {
            let bytes: Vec<u8> = (0..rng.below(40)).map(|_| rng.next() as u8).collect();
            let text = Base64UrlUnpadded::encode_string(&bytes);
            assert_eq!(base64url_decode(&text).unwrap(), bytes);
            if !text.is_empty() {
                let mut changed = text.into_bytes();
                let at = rng.below(changed.len());
                changed[at] = alphabet[rng.below(alphabet.len())];
                texts.push(alloc::string::String::from_utf8(changed).unwrap());
            }
            let random: Vec<u8> = (0..rng.below(12)).map(|_| alphabet[rng.below(alphabet.len())]).collect();
            texts.push(alloc::string::String::from_utf8(random).unwrap());
        }
        for text in &texts {
            assert_eq!(base64url_decode(text).ok(), Base64UrlUnpadded::decode_vec(text).ok(), "{text:?}");
        }
    }
}
