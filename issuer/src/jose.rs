//! The few pieces of JOSE (RFC 7515 JWS, RFC 7517 JWK, RFC 7518 ES384) that the issuer's tokens
//! need: compact serialization signed and verified with ECDSA P-384/SHA-384 only.
//!
//! Deliberately narrow: one algorithm, so there is no `alg` negotiation to attack (`none`,
//! HS384-with-the-public-key and friends are refused before any key is touched), `crit` is
//! refused, the signature is the raw 96-byte `r ‖ s` of RFC 7518 §3.4 (not DER), and every
//! base64url segment must be canonical and unpadded. Tokens are size-checked before decoding.

use base64ct::{Base64UrlUnpadded, Encoding};
use p384::ecdsa::signature::{Signer, Verifier};
use p384::ecdsa::{Signature, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The one signature algorithm: ECDSA P-384 with SHA-384 (RFC 7518 §3.4).
pub const ALG_ES384: &str = "ES384";

/// A compact JWS larger than this is refused before it is decoded.
pub const MAX_TOKEN_LEN: usize = 64 * 1024;

/// Why a token could not be made or was not accepted. Each message says what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
    #[error("the token is {0} bytes, more than the {MAX_TOKEN_LEN} accepted")]
    TooLarge(usize),
    #[error("the token is not a compact JWS (expected three base64url parts separated by '.', found {0})")]
    NotCompact(usize),
    #[error("the token's {0} is not canonical unpadded base64url")]
    Base64(&'static str),
    #[error("the token's {0} is not a JSON object: {1}")]
    Json(&'static str, String),
    #[error("the token is signed with alg {0:?}; only ES384 is accepted")]
    Algorithm(String),
    #[error("the token's typ is {actual:?}, expected {expected:?}")]
    Type { expected: String, actual: String },
    #[error("the token marks header parameters {0:?} as critical; none are understood")]
    Critical(String),
    #[error("the signature does not verify under the expected key")]
    BadSignature,
    #[error("claim `{0}` is missing")]
    MissingClaim(&'static str),
    #[error("claim `{claim}` is malformed: {reason}")]
    BadClaim { claim: &'static str, reason: String },
    #[error("the token expired at {exp} (now {now})")]
    Expired { exp: u64, now: u64 },
    #[error("the token was issued at {iat}, after now ({now}): the issuer's clock or the token is wrong")]
    NotYetValid { iat: u64, now: u64 },
    #[error("the key is not a valid P-384 public key: {0}")]
    BadKey(String),
    #[error("cannot encode the token: {0}")]
    Encode(String),
    #[error("the signing key failed: {0}")]
    Signer(String),
}

/// base64url without padding (RFC 7515 §2).
pub fn b64url(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

/// Decodes canonical unpadded base64url; `what` names the part in the error.
pub fn b64url_decode(text: &str, what: &'static str) -> Result<Vec<u8>, JoseError> {
    Base64UrlUnpadded::decode_vec(text).map_err(|_| JoseError::Base64(what))
}

/// base64url(SHA-256(ASCII(token))): the `wth`/`ath` form of a token hash.
pub fn token_hash(token: &str) -> String {
    b64url(&Sha256::digest(token.as_bytes()))
}

/// A P-384 public key as a JWK (RFC 7517, RFC 7518 §6.2) with `alg` ES384.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub y: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
}

impl Jwk {
    /// The JWK of `key`, with `alg` ES384.
    pub fn from_p384(key: &p384::PublicKey) -> Self {
        let point = VerifyingKey::from(*key).to_sec1_point(false);
        let bytes = point.as_bytes();
        // Uncompressed SEC1: 0x04 ‖ x (48) ‖ y (48).
        Self {
            kty: "EC".into(),
            crv: "P-384".into(),
            x: b64url(&bytes[1..49]),
            y: b64url(&bytes[49..97]),
            alg: Some(ALG_ES384.into()),
            kid: None,
        }
    }

    /// The JWK of a SEC1-encoded P-384 public key (what the Evidence carries).
    pub fn from_sec1(sec1: &[u8]) -> Result<Self, JoseError> {
        let key = p384::PublicKey::from_sec1_bytes(sec1).map_err(|e| JoseError::BadKey(e.to_string()))?;
        Ok(Self::from_p384(&key))
    }

    /// The key this JWK names; refuses anything but an EC P-384 point.
    pub fn to_p384(&self) -> Result<p384::PublicKey, JoseError> {
        if self.kty != "EC" || self.crv != "P-384" {
            return Err(JoseError::BadKey(format!("kty {:?} crv {:?}, expected EC P-384", self.kty, self.crv)));
        }
        if let Some(alg) = &self.alg
            && alg != ALG_ES384
        {
            return Err(JoseError::BadKey(format!("alg {alg:?}, expected ES384")));
        }
        let x = b64url_decode(&self.x, "jwk x")?;
        let y = b64url_decode(&self.y, "jwk y")?;
        if x.len() != 48 || y.len() != 48 {
            return Err(JoseError::BadKey(format!("coordinates of {} and {} bytes, expected 48", x.len(), y.len())));
        }
        let mut sec1 = Vec::with_capacity(97);
        sec1.push(0x04);
        sec1.extend_from_slice(&x);
        sec1.extend_from_slice(&y);
        p384::PublicKey::from_sec1_bytes(&sec1).map_err(|_| JoseError::BadKey("the point is not on P-384".into()))
    }

    /// The RFC 7638 SHA-256 thumbprint (members crv, kty, x, y in that order), base64url.
    pub fn thumbprint(&self) -> String {
        let canonical = format!(r#"{{"crv":"{}","kty":"{}","x":"{}","y":"{}"}}"#, self.crv, self.kty, self.x, self.y);
        b64url(&Sha256::digest(canonical.as_bytes()))
    }

    /// `key` as a service publishes it in its JWKS: with `kid`, `alg` ES384 and `use` sig.
    pub fn published(key: &VerifyingKey, kid: &str) -> Value {
        let jwk = Self { kid: Some(kid.into()), ..Self::from_p384(&p384::PublicKey::from(key)) };
        let mut value = serde_json::to_value(&jwk).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            map.insert("use".into(), "sig".into());
        }
        value
    }
}

/// Signs `claims` as a compact JWS with header `{"alg":"ES384","typ":typ[,"kid":kid]}`.
pub fn sign_compact(
    key: &SigningKey,
    typ: &str,
    kid: Option<&str>,
    claims: &Map<String, Value>,
) -> Result<String, JoseError> {
    sign_compact_with(key, typ, kid, claims)
}

/// As [`sign_compact`], with any signer of P-384 ECDSA signatures (a vault, an HSM).
pub fn sign_compact_with<S: Signer<Signature>>(
    signer: &S,
    typ: &str,
    kid: Option<&str>,
    claims: &Map<String, Value>,
) -> Result<String, JoseError> {
    let mut header = Map::new();
    header.insert("alg".into(), ALG_ES384.into());
    header.insert("typ".into(), typ.into());
    if let Some(kid) = kid {
        header.insert("kid".into(), kid.into());
    }
    let header = serde_json::to_vec(&header).map_err(|e| JoseError::Encode(e.to_string()))?;
    let payload = serde_json::to_vec(claims).map_err(|e| JoseError::Encode(e.to_string()))?;
    let signing_input = format!("{}.{}", b64url(&header), b64url(&payload));
    let signature: Signature =
        signer.try_sign(signing_input.as_bytes()).map_err(|e| JoseError::Signer(e.to_string()))?;
    Ok(format!("{signing_input}.{}", b64url(&signature.to_bytes())))
}

/// A verified compact JWS: its header and claims.
#[derive(Clone, Debug, PartialEq)]
pub struct Verified {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
}

/// The header and claims of a compact JWS, decoded but NOT verified: for routing only (which
/// key to use), never for a decision.
pub fn decode_unverified(token: &str) -> Result<Verified, JoseError> {
    let (header, payload, _, _) = split(token)?;
    Ok(Verified { header: json_object(&header, "header")?, claims: json_object(&payload, "payload")? })
}

/// Verifies a compact JWS: alg ES384, `typ` equal to `expected_typ` (compared
/// case-insensitively, with an optional `application/` prefix, as RFC 7515 §4.1.9 allows), no
/// `crit`, and the signature under `key`.
pub fn verify_compact(token: &str, key: &VerifyingKey, expected_typ: &str) -> Result<Verified, JoseError> {
    let (header_bytes, payload, signature, signing_input) = split(token)?;
    let header = json_object(&header_bytes, "header")?;
    match header.get("alg") {
        Some(Value::String(alg)) if alg == ALG_ES384 => {}
        Some(Value::String(alg)) => return Err(JoseError::Algorithm(alg.clone())),
        other => return Err(JoseError::Algorithm(other.map(Value::to_string).unwrap_or_else(|| "(absent)".into()))),
    }
    let typ = header.get("typ").and_then(Value::as_str).unwrap_or("");
    let bare = typ.strip_prefix("application/").unwrap_or(typ);
    if !bare.eq_ignore_ascii_case(expected_typ) {
        return Err(JoseError::Type { expected: expected_typ.into(), actual: typ.into() });
    }
    if let Some(crit) = header.get("crit") {
        return Err(JoseError::Critical(crit.to_string()));
    }
    let signature = Signature::from_slice(&signature).map_err(|_| JoseError::BadSignature)?;
    key.verify(signing_input.as_bytes(), &signature).map_err(|_| JoseError::BadSignature)?;
    Ok(Verified { header, claims: json_object(&payload, "payload")? })
}

type Parts<'a> = (Vec<u8>, Vec<u8>, Vec<u8>, &'a str);

fn split(token: &str) -> Result<Parts<'_>, JoseError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JoseError::TooLarge(token.len()));
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts[..] else {
        return Err(JoseError::NotCompact(parts.len()));
    };
    let signing_input = &token[..header.len() + 1 + payload.len()];
    Ok((
        b64url_decode(header, "header")?,
        b64url_decode(payload, "payload")?,
        b64url_decode(signature, "signature")?,
        signing_input,
    ))
}

fn json_object(bytes: &[u8], what: &'static str) -> Result<Map<String, Value>, JoseError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(JoseError::Json(what, format!("found {}", kind(&other)))),
        Err(e) => Err(JoseError::Json(what, e.to_string())),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A required NumericDate claim (seconds since the epoch, non-negative integer).
pub fn numeric_date(claims: &Map<String, Value>, name: &'static str) -> Result<u64, JoseError> {
    match claims.get(name) {
        None => Err(JoseError::MissingClaim(name)),
        Some(v) => v.as_u64().ok_or_else(|| JoseError::BadClaim {
            claim: name,
            reason: format!("expected a non-negative integer NumericDate, found {v}"),
        }),
    }
}

/// A required string claim.
pub fn string_claim(claims: &Map<String, Value>, name: &'static str) -> Result<String, JoseError> {
    match claims.get(name) {
        None => Err(JoseError::MissingClaim(name)),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v) => Err(JoseError::BadClaim { claim: name, reason: format!("expected a string, found {v}") }),
    }
}

/// Seconds since the Unix epoch (0 for instants before it).
pub fn unix_seconds(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A random 128-bit identifier, base64url (for `jti`).
pub fn random_id() -> Result<String, JoseError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| JoseError::Signer(format!("the OS random number generator failed: {e}")))?;
    Ok(b64url(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use p384::elliptic_curve::Generate;

    fn key() -> SigningKey {
        SigningKey::try_generate().unwrap()
    }

    fn claims() -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("sub".into(), "spiffe://example.org/a".into());
        m
    }

    #[test]
    fn round_trip_and_header() {
        let k = key();
        let token = sign_compact(&k, "wit+jwt", Some("k1"), &claims()).unwrap();
        let v = verify_compact(&token, k.verifying_key(), "wit+jwt").unwrap();
        assert_eq!(v.header["alg"], "ES384");
        assert_eq!(v.header["kid"], "k1");
        assert_eq!(v.claims, claims());
        // The signature part is the raw 96-byte r ‖ s.
        let sig = b64url_decode(token.rsplit('.').next().unwrap(), "signature").unwrap();
        assert_eq!(sig.len(), 96);
        assert!(matches!(verify_compact(&token, k.verifying_key(), "wpt+jwt"), Err(JoseError::Type { .. })));
    }

    #[test]
    fn refuses_other_keys_algorithms_and_damage() {
        let k = key();
        let token = sign_compact(&k, "JWT", None, &claims()).unwrap();
        assert_eq!(verify_compact(&token, key().verifying_key(), "JWT"), Err(JoseError::BadSignature));
        // alg none / HS384: refused by name before any verification.
        let (_, rest) = token.split_once('.').unwrap();
        for alg in ["none", "HS384", "ES256"] {
            let forged = format!("{}.{rest}", b64url(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#).as_bytes()));
            assert_eq!(verify_compact(&forged, k.verifying_key(), "JWT"), Err(JoseError::Algorithm(alg.into())));
        }
        let crit = format!("{}.{rest}", b64url(br#"{"alg":"ES384","typ":"JWT","crit":["exp"]}"#));
        assert!(matches!(verify_compact(&crit, k.verifying_key(), "JWT"), Err(JoseError::Critical(_))));
        // Every single-character change is refused, never a panic.
        let bytes = token.as_bytes();
        for i in 0..bytes.len() {
            let mut t = bytes.to_vec();
            t[i] = if t[i] == b'A' { b'B' } else { b'A' };
            let t = String::from_utf8(t).unwrap();
            if t != token {
                assert!(verify_compact(&t, k.verifying_key(), "JWT").is_err(), "change at {i} accepted");
            }
        }
        assert_eq!(verify_compact("a.b", k.verifying_key(), "JWT"), Err(JoseError::NotCompact(2)));
        assert_eq!(verify_compact("a=.b.c", k.verifying_key(), "JWT"), Err(JoseError::Base64("header")));
        let huge = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(verify_compact(&huge, k.verifying_key(), "JWT"), Err(JoseError::TooLarge(MAX_TOKEN_LEN + 1)));
    }

    #[test]
    fn jwk_round_trips_and_thumbprint_is_rfc7638_shaped() {
        let k = key();
        let public = p384::PublicKey::from(k.verifying_key());
        let jwk = Jwk::from_p384(&public);
        assert_eq!(jwk.to_p384().unwrap(), public);
        assert_eq!(jwk.thumbprint().len(), 43);
        let mut bad = jwk.clone();
        bad.crv = "P-256".into();
        assert!(bad.to_p384().is_err());
        let mut bad = jwk.clone();
        bad.y = jwk.x.clone();
        assert!(bad.to_p384().is_err());
        assert!(Jwk::from_sec1(&[4; 97]).is_err());
    }
}
