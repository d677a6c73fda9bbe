//! The WIT claims the guest reads (draft-ietf-wimse-workload-creds: `sub`, `cnf.jwk`) from the
//! compact JWS the host relays: the runtime checks that a WIT names its workload and certifies
//! its key, a workload's WPT code that the key's `alg` is the one it signs with. The WIT's
//! signature is not checked here: the launch manifest does not carry the issuer's WIT key;
//! relying parties check it against the issuer's published keys.

use alloc::vec::Vec;

use base64ct::{Base64UrlUnpadded, Encoding};

use crate::json::{JsonError, Object};

/// The claims set of the compact JWS `token` (its second part, base64url-decoded): the text
/// [`WitClaims::read`] reads.
///
/// # Errors
/// [`JsonError`] if `token` is not three dot-separated parts with a base64url middle one.
pub fn claims_text(token: &str) -> Result<Vec<u8>, JsonError> {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(payload), Some(_), None) => Base64UrlUnpadded::decode_vec(payload).map_err(|_| JsonError),
        _ => Err(JsonError),
    }
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
