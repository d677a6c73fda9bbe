//! Workload Proof Tokens (draft-ietf-wimse-wpt): the per-request proof that the workload holds
//! the key its WIT (`wit+jwt`) names in `cnf.jwk`.
//!
//! A WPT is a JWS (compact serialization, RFC 7515 §7.1) with header `typ` `wpt+jwt` and `alg`
//! equal to the WIT's `cnf.jwk.alg`, and the claims `aud` (the request's target URI, without
//! query and fragment), a short `exp`, a `jti` of 128 random bits, `wth` = base64url(SHA-256 of
//! the WIT's ASCII), and `tth` / `oth` when other tokens ride along. It travels in
//! `Authorization: WPT <token>`, beside the WIT in `Workload-Identity-Token`, over
//! server-authenticated TLS. The signature is made in the vault
//! ([`Runtime::sign`](crate::runtime::Runtime::sign)); only ES384 keys exist in this runtime.
//!
//! `exp` is computed from the host's wall time, which is untrusted: a host that lies can only
//! make the token expire early or late, and a relying party bounds how far ahead `exp` may be.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use sha2::{Digest, Sha256};

use crate::credential::{Credential, CredentialType};
use crate::runtime::Runtime;

/// The WPT's media type (`typ`).
pub const WPT_TYP: &str = "wpt+jwt";
/// The only signature algorithm of the runtime's keys (ECDSA P-384, SHA-384).
pub const ES384: &str = "ES384";
/// The default lifetime: short, as the draft asks.
pub const DEFAULT_LIFETIME_SECS: u64 = 60;

/// One request's proof.
#[derive(Debug, Clone, Copy)]
pub struct WptRequest<'a> {
    /// The request's target URI (scheme, authority, path; no query or fragment).
    pub aud: &'a str,
    /// Seconds the token is valid for, from the host's time.
    pub lifetime_secs: u64,
    /// A transaction token riding along (`tth` = its hash), if any.
    pub transaction_token: Option<&'a str>,
    /// Other tokens riding along, by type (`oth` = their hashes), if any.
    pub other_tokens: &'a [(&'a str, &'a str)],
}

impl<'a> WptRequest<'a> {
    /// A proof for a request to `aud`, valid [`DEFAULT_LIFETIME_SECS`].
    pub fn new(aud: &'a str) -> Self {
        Self { aud, lifetime_secs: DEFAULT_LIFETIME_SECS, transaction_token: None, other_tokens: &[] }
    }
}

/// Why a WPT could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WptError {
    /// The credential is not a WIT, or its `cnf.jwk.alg` is not ES384 (the draft requires the
    /// WPT's `alg` to equal it).
    NotAnEs384Wit(String),
    /// `aud` carries a query or fragment, or is empty.
    BadAudience,
    /// The vault, the random source or the host's time failed.
    Runtime(String),
}

impl fmt::Display for WptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAnEs384Wit(why) => write!(f, "not a WIT with an ES384 cnf key: {why}"),
            Self::BadAudience => f.write_str("aud must be the request's target URI without query or fragment"),
            Self::Runtime(why) => write!(f, "the runtime could not make the proof: {why}"),
        }
    }
}

impl core::error::Error for WptError {}

/// base64url (no padding) of SHA-256(`token`): `wth`, `tth`, and the values of `oth`.
pub fn token_hash(token: &str) -> String {
    Base64UrlUnpadded::encode_string(&Sha256::digest(token.as_bytes()))
}

/// Makes the WPT for `request`, proving possession of `wit`'s key.
///
/// ```no_run
/// # use twi_payload::prelude::*;
/// # use twi_payload::wpt::{self, WptRequest};
/// # fn demo(rt: &mut dyn Runtime, wit: &Credential) -> Result<(), wpt::WptError> {
/// let proof = wpt::make(rt, wit, &WptRequest::new("https://payroll-db.example:8443/rows"))?;
/// let authorization = format!("WPT {proof}");
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`WptError`].
pub fn make(rt: &mut dyn Runtime, wit: &Credential, request: &WptRequest<'_>) -> Result<String, WptError> {
    check_wit(wit)?;
    if request.aud.is_empty() || request.aud.contains(['?', '#']) {
        return Err(WptError::BadAudience);
    }
    let now = rt.host_time().map_err(|e| WptError::Runtime(alloc::format!("{e}")))?.0;
    let mut jti = [0u8; 16];
    rt.random().fill(&mut jti).map_err(|e| WptError::Runtime(alloc::format!("{e}")))?;
    let claims = claims_json(request, now, &Base64UrlUnpadded::encode_string(&jti), &wit.token);
    let header = alloc::format!("{{\"alg\":\"{ES384}\",\"typ\":\"{WPT_TYP}\"}}");
    let signing_input = alloc::format!(
        "{}.{}",
        Base64UrlUnpadded::encode_string(header.as_bytes()),
        Base64UrlUnpadded::encode_string(claims.as_bytes())
    );
    let der = rt.sign(wit.key, signing_input.as_bytes()).map_err(|e| WptError::Runtime(alloc::format!("{e}")))?;
    let raw = raw_signature(&der).ok_or_else(|| WptError::Runtime("the vault's signature is not DER".into()))?;
    Ok(alloc::format!("{signing_input}.{}", Base64UrlUnpadded::encode_string(&raw)))
}

/// The WIT's `cnf.jwk.alg` must be ES384 (the draft: the WPT's `alg` equals it).
fn check_wit(wit: &Credential) -> Result<(), WptError> {
    if wit.credential_type != CredentialType::Wit {
        return Err(WptError::NotAnEs384Wit("the credential is X.509".into()));
    }
    let payload = wit.token.split('.').nth(1).ok_or_else(|| WptError::NotAnEs384Wit("not a compact JWS".into()))?;
    let bytes = Base64UrlUnpadded::decode_vec(payload).map_err(|_| WptError::NotAnEs384Wit("payload".into()))?;
    let claims: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| WptError::NotAnEs384Wit("claims are not JSON".into()))?;
    match claims.pointer("/cnf/jwk/alg").and_then(|v| v.as_str()) {
        Some(ES384) => Ok(()),
        Some(other) => Err(WptError::NotAnEs384Wit(alloc::format!("cnf.jwk.alg is {other}"))),
        None => Err(WptError::NotAnEs384Wit("no cnf.jwk.alg".into())),
    }
}

/// The claims set, serialized by serde_json (strings escaped as JSON requires; serializing a map
/// of strings and numbers cannot fail).
fn claims_json(request: &WptRequest<'_>, now: u64, jti: &str, wit: &str) -> String {
    let mut claims = serde_json::Map::new();
    claims.insert("aud".into(), request.aud.into());
    claims.insert("exp".into(), now.saturating_add(request.lifetime_secs).into());
    claims.insert("jti".into(), jti.into());
    claims.insert("wth".into(), token_hash(wit).into());
    if let Some(token) = request.transaction_token {
        claims.insert("tth".into(), token_hash(token).into());
    }
    if !request.other_tokens.is_empty() {
        let oth: serde_json::Map<String, serde_json::Value> =
            request.other_tokens.iter().map(|(kind, token)| (String::from(*kind), token_hash(token).into())).collect();
        claims.insert("oth".into(), oth.into());
    }
    serde_json::to_string(&serde_json::Value::Object(claims)).unwrap_or_default()
}

/// A DER ECDSA-Sig-Value as JWS wants it: r ‖ s, 48 bytes each (RFC 7518 §3.4).
fn raw_signature(der: &[u8]) -> Option<Vec<u8>> {
    let signature = p384::ecdsa::Signature::from_der(der).ok()?;
    Some(signature.to_bytes().to_vec())
}
