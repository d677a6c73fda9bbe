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

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};

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
    Base64UrlUnpadded::encode_string(&twi_proto::hash::sha256(&[token.as_bytes()]))
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
    let claims = claims_json(request, now, &Base64UrlUnpadded::encode_string(&jti), &wit.token)?;
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
    let text =
        twi_proto::wit::claims_text(&wit.token).map_err(|_| WptError::NotAnEs384Wit("not a compact JWS".into()))?;
    let claims =
        twi_proto::wit::WitClaims::read(&text).map_err(|_| WptError::NotAnEs384Wit("claims are not JSON".into()))?;
    match claims.jwk.and_then(|jwk| jwk.alg) {
        Some(ES384) => Ok(()),
        Some(other) => Err(WptError::NotAnEs384Wit(alloc::format!("cnf.jwk.alg is {other}"))),
        None => Err(WptError::NotAnEs384Wit("no cnf.jwk.alg".into())),
    }
}

/// The WPT claims set, its members in the order serde_json's sorted map wrote them.
#[derive(serde::Serialize)]
struct Claims<'a> {
    aud: &'a str,
    exp: u64,
    jti: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    oth: BTreeMap<&'a str, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tth: Option<String>,
    wth: String,
}

/// The claims set as JSON (serde-json-core: strings escaped as JSON requires), in a buffer
/// doubled until it fits.
fn claims_json(request: &WptRequest<'_>, now: u64, jti: &str, wit: &str) -> Result<String, WptError> {
    let claims = Claims {
        aud: request.aud,
        exp: now.saturating_add(request.lifetime_secs),
        jti,
        // One entry per type, the last token of a type winning, as a JSON object keeps one.
        oth: request.other_tokens.iter().map(|(kind, token)| (*kind, token_hash(token))).collect(),
        tth: request.transaction_token.map(token_hash),
        wth: token_hash(wit),
    };
    let mut size = 512 + request.aud.len();
    loop {
        let mut buffer = alloc::vec![0u8; size];
        match serde_json_core::to_slice(&claims, &mut buffer) {
            Ok(length) => {
                buffer.truncate(length);
                return String::from_utf8(buffer).map_err(|_| WptError::Runtime("the claims are not UTF-8".into()));
            }
            Err(serde_json_core::ser::Error::BufferFull) if size < 1 << 20 => size *= 2,
            Err(_) => return Err(WptError::Runtime("the claims set does not serialize".into())),
        }
    }
}

/// A DER ECDSA-Sig-Value as JWS wants it: r ‖ s, 48 bytes each (RFC 7518 §3.4).
fn raw_signature(der: &[u8]) -> Option<Vec<u8>> {
    Some(twi_proto::asn1::ecdsa_p384_signature(der).ok()?.to_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::{KeyHandle, Mode};
    use alloc::string::ToString;

    fn wit_with(claims: &serde_json::Value) -> Credential {
        let part = |bytes: &[u8]| Base64UrlUnpadded::encode_string(bytes);
        Credential {
            target: "t".into(),
            credential_type: CredentialType::Wit,
            mode: Mode::Enrollment,
            workload_id: "spiffe://example.org/w".into(),
            certificates: Vec::new(),
            token: alloc::format!("{}.{}.{}", part(b"{}"), part(claims.to_string().as_bytes()), part(b"s")),
            key: KeyHandle(0),
            not_before: 0,
            not_after: 0,
        }
    }

    /// The claims set is JSON whatever the strings hold, with the members and values the
    /// draft asks for, whatever its size.
    #[test]
    fn the_claims_set_is_json_with_every_member() {
        let aud = "https://rp.example/p\"q\\r\u{1}s\u{e9}";
        let long = alloc::format!("https://rp.example/{}", "x".repeat(10_000));
        let others = [("txn+jwt", "a"), ("we\"ird\\key\n", "b"), ("txn+jwt", "c")];
        for (aud, transaction, others) in [(aud, Some("tt"), &others[..]), (&long[..], None, &[][..])] {
            let request = WptRequest { aud, lifetime_secs: 60, transaction_token: transaction, other_tokens: others };
            let json = claims_json(&request, 1_000, "jti-1", "the.wit.token").unwrap();
            let claims: serde_json::Value = serde_json::from_str(&json).unwrap();
            let mut expected = serde_json::json!({
                "aud": aud, "exp": 1_060, "jti": "jti-1", "wth": token_hash("the.wit.token"),
            });
            if let Some(token) = transaction {
                expected["tth"] = token_hash(token).into();
            }
            if !others.is_empty() {
                // One member per type, the last token of a type winning.
                expected["oth"] = serde_json::json!({"txn+jwt": token_hash("c"), "we\"ird\\key\n": token_hash("b")});
            }
            assert_eq!(claims, expected, "{json}");
        }
    }

    #[test]
    fn only_an_es384_wit_makes_proofs() {
        let alg = |alg: &str| serde_json::json!({"sub": "s", "cnf": {"jwk": {"kty": "EC", "alg": alg}}, "exp": 1.5e9});
        assert_eq!(check_wit(&wit_with(&alg("ES384"))), Ok(()));
        let refused = [
            (wit_with(&alg("ES256")), "cnf.jwk.alg is ES256"),
            (wit_with(&serde_json::json!({"cnf": {"jwk": {"kty": "EC"}}})), "no cnf.jwk.alg"),
            (wit_with(&serde_json::json!({"sub": "s"})), "no cnf.jwk.alg"),
            (wit_with(&serde_json::json!(["not", "claims"])), "claims are not JSON"),
        ];
        for (wit, why) in refused {
            assert_eq!(check_wit(&wit), Err(WptError::NotAnEs384Wit(why.into())), "{why}");
        }
        let mut x509 = wit_with(&alg("ES384"));
        x509.credential_type = CredentialType::X509;
        assert!(check_wit(&x509).is_err());
    }
}
