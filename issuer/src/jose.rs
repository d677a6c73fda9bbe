//! The few pieces of JOSE (RFC 7515 JWS, RFC 7517 JWK, RFC 7518 ES256/ES384) that the issuer's
//! tokens need: compact serialization signed and verified with ECDSA P-256/SHA-256 or
//! P-384/SHA-384.
//!
//! Deliberately narrow: the *key* decides the algorithm (RFC 8725 §3.1): a P-384 key verifies
//! ES384 only, a P-256 key ES256 only, so there is no `alg` negotiation to attack (`none`,
//! HS384-with-the-public-key, ES256 over a P-384 key and friends are refused before any key is
//! touched), `crit` is refused, the signature is the raw `r ‖ s` of RFC 7518 §3.4 (not DER),
//! and every base64url segment must be canonical and unpadded. Tokens are size-checked before
//! decoding. The WIT key's algorithm is the policy's `wit_alg`; everything else the issuer
//! signs (EAR, receipts, the log) stays ES384.

use std::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use ecdsa::signature::{Signer, Verifier};
use p384::ecdsa::VerifyingKey;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// ECDSA P-384 with SHA-384 (RFC 7518 §3.4).
pub const ALG_ES384: &str = "ES384";
/// ECDSA P-256 with SHA-256 (RFC 7518 §3.4).
pub const ALG_ES256: &str = "ES256";

/// A JWS algorithm the issuer signs and verifies with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Alg {
    /// ECDSA P-256/SHA-256: what draft-ietf-wimse-workload-creds §3.1 requires every
    /// general-purpose implementation to support.
    Es256,
    /// ECDSA P-384/SHA-384: the issuer's own keys and the guest's vault keys.
    #[default]
    Es384,
}

impl Alg {
    /// Every algorithm, in the order error messages list them.
    pub const ALL: [Alg; 2] = [Alg::Es256, Alg::Es384];

    /// The JWS `alg` name.
    pub const fn name(self) -> &'static str {
        match self {
            Alg::Es256 => ALG_ES256,
            Alg::Es384 => ALG_ES384,
        }
    }

    /// The curve of its keys, as JWK `crv` names it.
    pub const fn curve(self) -> &'static str {
        match self {
            Alg::Es256 => "P-256",
            Alg::Es384 => "P-384",
        }
    }

    /// The length of a coordinate (and of `r` and `s`) in bytes.
    const fn field_len(self) -> usize {
        match self {
            Alg::Es256 => 32,
            Alg::Es384 => 48,
        }
    }

    /// The algorithm named `name` (exactly, as JWS spells it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    fn of_curve(crv: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.curve() == crv)
    }

    /// `"ES256", "ES384"`: the accepted names, for messages.
    pub fn accepted() -> String {
        Self::ALL.map(|a| format!("{:?}", a.name())).join(", ")
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Alg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Alg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Alg::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{name:?} is not a supported JWS algorithm; the accepted values are {}",
                Alg::accepted()
            ))
        })
    }
}

/// A public key tokens verify under; its curve decides the one `alg` it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EcPublicKey {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
}

impl EcPublicKey {
    /// The one algorithm this key verifies.
    pub fn alg(&self) -> Alg {
        match self {
            EcPublicKey::P256(_) => Alg::Es256,
            EcPublicKey::P384(_) => Alg::Es384,
        }
    }

    /// The uncompressed SEC1 point: 0x04 ‖ x ‖ y.
    pub fn to_sec1(&self) -> Vec<u8> {
        match self {
            EcPublicKey::P256(k) => k.to_sec1_point(false).as_bytes().to_vec(),
            EcPublicKey::P384(k) => k.to_sec1_point(false).as_bytes().to_vec(),
        }
    }

    /// The key of the uncompressed SEC1 point `sec1` on the curve of `alg`.
    fn from_sec1(alg: Alg, sec1: &[u8]) -> Result<Self, JoseError> {
        let bad = |_| JoseError::BadKey(format!("the point is not on {}", alg.curve()));
        Ok(match alg {
            Alg::Es256 => EcPublicKey::P256(p256::ecdsa::VerifyingKey::from_sec1_bytes(sec1).map_err(bad)?),
            Alg::Es384 => EcPublicKey::P384(VerifyingKey::from_sec1_bytes(sec1).map_err(bad)?),
        })
    }

    /// Checks the raw `r ‖ s` `signature` of `input`.
    fn verify(&self, input: &[u8], signature: &[u8]) -> Result<(), JoseError> {
        let verified = match self {
            EcPublicKey::P256(k) => p256::ecdsa::Signature::from_slice(signature).map(|s| k.verify(input, &s)),
            EcPublicKey::P384(k) => p384::ecdsa::Signature::from_slice(signature).map(|s| k.verify(input, &s)),
        };
        match verified {
            Ok(Ok(())) => Ok(()),
            _ => Err(JoseError::BadSignature),
        }
    }
}

impl From<VerifyingKey> for EcPublicKey {
    fn from(key: VerifyingKey) -> Self {
        EcPublicKey::P384(key)
    }
}

impl From<&VerifyingKey> for EcPublicKey {
    fn from(key: &VerifyingKey) -> Self {
        EcPublicKey::P384(*key)
    }
}

impl From<p256::ecdsa::VerifyingKey> for EcPublicKey {
    fn from(key: p256::ecdsa::VerifyingKey) -> Self {
        EcPublicKey::P256(key)
    }
}

impl From<&p256::ecdsa::VerifyingKey> for EcPublicKey {
    fn from(key: &p256::ecdsa::VerifyingKey) -> Self {
        EcPublicKey::P256(*key)
    }
}

/// What signs a JWS: its algorithm, and the raw `r ‖ s` signature (RFC 7518 §3.4) of a
/// signing input.
pub trait JwsSigner {
    fn alg(&self) -> Alg;
    fn sign_jws(&self, signing_input: &[u8]) -> Result<Vec<u8>, JoseError>;
}

impl JwsSigner for p384::ecdsa::SigningKey {
    fn alg(&self) -> Alg {
        Alg::Es384
    }

    fn sign_jws(&self, signing_input: &[u8]) -> Result<Vec<u8>, JoseError> {
        let signature: p384::ecdsa::Signature =
            self.try_sign(signing_input).map_err(|e| JoseError::Signer(e.to_string()))?;
        crate::metrics::signed();
        Ok(signature.to_bytes().to_vec())
    }
}

impl JwsSigner for p256::ecdsa::SigningKey {
    fn alg(&self) -> Alg {
        Alg::Es256
    }

    fn sign_jws(&self, signing_input: &[u8]) -> Result<Vec<u8>, JoseError> {
        let signature: p256::ecdsa::Signature =
            self.try_sign(signing_input).map_err(|e| JoseError::Signer(e.to_string()))?;
        crate::metrics::signed();
        Ok(signature.to_bytes().to_vec())
    }
}

/// A signing key on either curve (the WIT key, whose curve the policy's `wit_alg` chooses).
#[derive(Clone, Debug)]
pub enum EcSigningKey {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
}

impl EcSigningKey {
    /// Its public key.
    pub fn public(&self) -> EcPublicKey {
        match self {
            EcSigningKey::P256(k) => EcPublicKey::P256(*k.verifying_key()),
            EcSigningKey::P384(k) => EcPublicKey::P384(*k.verifying_key()),
        }
    }
}

impl JwsSigner for EcSigningKey {
    fn alg(&self) -> Alg {
        self.public().alg()
    }

    fn sign_jws(&self, signing_input: &[u8]) -> Result<Vec<u8>, JoseError> {
        match self {
            EcSigningKey::P256(k) => k.sign_jws(signing_input),
            EcSigningKey::P384(k) => k.sign_jws(signing_input),
        }
    }
}

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
    #[error("the token is signed with alg {0:?}; the issuer implements ES256 and ES384 only")]
    Algorithm(String),
    #[error(
        "the token is signed with alg {alg}, but its key is on {curve}, which verifies {expected} only (RFC 8725 §3.1)"
    )]
    KeyAlgorithm { alg: Alg, curve: &'static str, expected: Alg },
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
    #[error("the key is not a valid public key: {0}")]
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

/// An EC public key (P-256 or P-384) as a JWK (RFC 7517, RFC 7518 §6.2), with `alg` naming
/// the one algorithm it is used with.
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
    /// The JWK of `key`, with the `alg` of its curve (ES256 for P-256, ES384 for P-384).
    pub fn from_public(key: impl Into<EcPublicKey>) -> Self {
        let key = key.into();
        let (alg, point) = (key.alg(), key.to_sec1());
        // Uncompressed SEC1: 0x04 ‖ x ‖ y, each coordinate the field's length.
        let n = alg.field_len();
        Self {
            kty: "EC".into(),
            crv: alg.curve().into(),
            x: b64url(&point[1..1 + n]),
            y: b64url(&point[1 + n..1 + 2 * n]),
            alg: Some(alg.name().into()),
            kid: None,
        }
    }

    /// The JWK of a P-384 `key`, with `alg` ES384.
    pub fn from_p384(key: &p384::PublicKey) -> Self {
        Self::from_public(VerifyingKey::from(*key))
    }

    /// The JWK of a SEC1-encoded P-384 public key (what the Evidence carries).
    pub fn from_sec1(sec1: &[u8]) -> Result<Self, JoseError> {
        let key = p384::PublicKey::from_sec1_bytes(sec1).map_err(|e| JoseError::BadKey(e.to_string()))?;
        Ok(Self::from_p384(&key))
    }

    /// The key this JWK names: an EC P-256 or P-384 point; an `alg`, when present, must be
    /// its curve's (ES256 with P-256, ES384 with P-384), so that the key names one algorithm.
    pub fn to_public(&self) -> Result<EcPublicKey, JoseError> {
        let alg = Alg::of_curve(&self.crv).filter(|_| self.kty == "EC").ok_or_else(|| {
            JoseError::BadKey(format!("kty {:?} crv {:?}, expected EC P-256 or P-384", self.kty, self.crv))
        })?;
        if let Some(named) = &self.alg
            && named != alg.name()
        {
            return Err(JoseError::BadKey(format!("alg {named:?} with crv {}, expected {alg}", self.crv)));
        }
        let x = b64url_decode(&self.x, "jwk x")?;
        let y = b64url_decode(&self.y, "jwk y")?;
        let n = alg.field_len();
        if x.len() != n || y.len() != n {
            return Err(JoseError::BadKey(format!("coordinates of {} and {} bytes, expected {n}", x.len(), y.len())));
        }
        let sec1 = [&[0x04][..], &x, &y].concat();
        EcPublicKey::from_sec1(alg, &sec1)
    }

    /// The P-384 key this JWK names; refuses anything but an EC P-384 point (with `alg`
    /// ES384, if any).
    pub fn to_p384(&self) -> Result<p384::PublicKey, JoseError> {
        match self.to_public() {
            Ok(EcPublicKey::P384(key)) => Ok(key.into()),
            Ok(EcPublicKey::P256(_)) => Err(JoseError::BadKey("crv \"P-256\", expected P-384".into())),
            Err(e) => Err(e),
        }
    }

    /// The RFC 7638 SHA-256 thumbprint (members crv, kty, x, y in that order), base64url.
    pub fn thumbprint(&self) -> String {
        let canonical = format!(r#"{{"crv":"{}","kty":"{}","x":"{}","y":"{}"}}"#, self.crv, self.kty, self.x, self.y);
        b64url(&Sha256::digest(canonical.as_bytes()))
    }

    /// `key` as a service publishes it in its JWKS: with `kid`, its `alg` and `use` sig.
    pub fn published(key: impl Into<EcPublicKey>, kid: &str) -> Value {
        let jwk = Self { kid: Some(kid.into()), ..Self::from_public(key) };
        let mut value = serde_json::to_value(&jwk).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            map.insert("use".into(), "sig".into());
        }
        value
    }
}

/// Signs `claims` as a compact JWS with header `{"alg":<the signer's>,"typ":typ[,"kid":kid]}`.
pub fn sign_compact<S: JwsSigner + ?Sized>(
    signer: &S,
    typ: &str,
    kid: Option<&str>,
    claims: &Map<String, Value>,
) -> Result<String, JoseError> {
    let mut header = Map::new();
    header.insert("alg".into(), signer.alg().name().into());
    header.insert("typ".into(), typ.into());
    if let Some(kid) = kid {
        header.insert("kid".into(), kid.into());
    }
    let header = serde_json::to_vec(&header).map_err(|e| JoseError::Encode(e.to_string()))?;
    let payload = serde_json::to_vec(claims).map_err(|e| JoseError::Encode(e.to_string()))?;
    let signing_input = format!("{}.{}", b64url(&header), b64url(&payload));
    let signature = signer.sign_jws(signing_input.as_bytes())?;
    Ok(format!("{signing_input}.{}", b64url(&signature)))
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

/// Verifies a compact JWS: `alg` the one `key`'s curve verifies (ES256 for P-256, ES384 for
/// P-384), `typ` equal to `expected_typ` (compared case-insensitively, with an optional
/// `application/` prefix, as RFC 7515 §4.1.9 allows), no `crit`, and the signature under `key`.
pub fn verify_compact(token: &str, key: impl Into<EcPublicKey>, expected_typ: &str) -> Result<Verified, JoseError> {
    let key = key.into();
    let (header_bytes, payload, signature, signing_input) = split(token)?;
    let header = json_object(&header_bytes, "header")?;
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => Alg::from_name(alg).ok_or_else(|| JoseError::Algorithm(alg.clone()))?,
        other => return Err(JoseError::Algorithm(other.map(Value::to_string).unwrap_or_else(|| "(absent)".into()))),
    };
    if alg != key.alg() {
        return Err(JoseError::KeyAlgorithm { alg, curve: key.alg().curve(), expected: key.alg() });
    }
    let typ = header.get("typ").and_then(Value::as_str).unwrap_or("");
    let bare = typ.strip_prefix("application/").unwrap_or(typ);
    if !bare.eq_ignore_ascii_case(expected_typ) {
        return Err(JoseError::Type { expected: expected_typ.into(), actual: typ.into() });
    }
    if let Some(crit) = header.get("crit") {
        return Err(JoseError::Critical(crit.to_string()));
    }
    key.verify(signing_input.as_bytes(), &signature)?;
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
    use p384::ecdsa::SigningKey;
    use p384::elliptic_curve::Generate;

    fn key() -> SigningKey {
        SigningKey::try_generate().unwrap()
    }

    fn p256_key() -> p256::ecdsa::SigningKey {
        p256::ecdsa::SigningKey::try_generate().unwrap()
    }

    /// `token` with its header replaced by `header` (signature and payload kept).
    fn reheaded(token: &str, header: &str) -> String {
        let (_, rest) = token.split_once('.').unwrap();
        format!("{}.{rest}", b64url(header.as_bytes()))
    }

    fn claims() -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("sub".into(), "spiffe://example.org/a".into());
        m
    }

    /// Signs with `k` and verifies under its `public` key: header `alg` and `kid`, the claims,
    /// and the signature as the raw `r ‖ s` of RFC 7518 §3.4 (`sig_len` bytes, not DER).
    fn round_trip<S: JwsSigner>(k: &S, public: impl Into<EcPublicKey>, alg: &str, sig_len: usize) -> String {
        let token = sign_compact(k, "wit+jwt", Some("k1"), &claims()).unwrap();
        let v = verify_compact(&token, public, "wit+jwt").unwrap();
        assert_eq!((v.header["alg"].as_str(), v.header["kid"].as_str()), (Some(alg), Some("k1")));
        assert_eq!(v.claims, claims());
        let sig = b64url_decode(token.rsplit('.').next().unwrap(), "signature").unwrap();
        assert_eq!(sig.len(), sig_len);
        token
    }

    #[test]
    fn round_trip_and_header() {
        let k = key();
        let token = round_trip(&k, k.verifying_key(), "ES384", 96);
        assert!(matches!(verify_compact(&token, k.verifying_key(), "wpt+jwt"), Err(JoseError::Type { .. })));
    }

    #[test]
    fn refuses_other_keys_algorithms_and_damage() {
        let k = key();
        let token = sign_compact(&k, "JWT", None, &claims()).unwrap();
        assert_eq!(verify_compact(&token, key().verifying_key(), "JWT"), Err(JoseError::BadSignature));
        // alg none / HS384 / ES512: refused by name before any verification.
        let (_, rest) = token.split_once('.').unwrap();
        for alg in ["none", "HS384", "ES512"] {
            let forged = reheaded(&token, &format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
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

    #[test]
    fn es256_round_trip_with_a_p256_key() {
        let k = p256_key();
        let token = round_trip(&k, k.verifying_key(), "ES256", 64);
        assert_eq!(verify_compact(&token, p256_key().verifying_key(), "wit+jwt"), Err(JoseError::BadSignature));
        // Through the either-curve key the issuer's WIT key is.
        let either = EcSigningKey::P256(k.clone());
        round_trip(&either, either.public(), "ES256", 64);
        let either = EcSigningKey::P384(key());
        round_trip(&either, either.public(), "ES384", 96);
    }

    /// RFC 8725 §3.1: the key's curve decides the algorithm; a header naming the other one is
    /// refused before the signature is looked at, whichever way round.
    #[test]
    fn alg_is_pinned_to_the_key_curve() {
        let (k256, k384) = (p256_key(), key());
        let es256 = sign_compact(&k256, "JWT", None, &claims()).unwrap();
        let es384 = sign_compact(&k384, "JWT", None, &claims()).unwrap();
        let mismatch = |alg, expected: Alg| JoseError::KeyAlgorithm { alg, curve: expected.curve(), expected };
        assert_eq!(verify_compact(&es256, k384.verifying_key(), "JWT"), Err(mismatch(Alg::Es256, Alg::Es384)));
        assert_eq!(verify_compact(&es384, k256.verifying_key(), "JWT"), Err(mismatch(Alg::Es384, Alg::Es256)));
        // A header relabelled to the key's algorithm over the other curve's signature.
        let relabelled = reheaded(&es256, r#"{"alg":"ES384","typ":"JWT"}"#);
        assert_eq!(verify_compact(&relabelled, k384.verifying_key(), "JWT"), Err(JoseError::BadSignature));
        let relabelled = reheaded(&es384, r#"{"alg":"ES256","typ":"JWT"}"#);
        assert_eq!(verify_compact(&relabelled, k256.verifying_key(), "JWT"), Err(JoseError::BadSignature));
        let message = mismatch(Alg::Es256, Alg::Es384).to_string();
        assert!(message.contains("ES256") && message.contains("P-384") && message.contains("ES384 only"), "{message}");
    }

    #[test]
    fn p256_jwk_round_trips_and_names_its_algorithm() {
        let k = p256_key();
        let jwk = Jwk::from_public(k.verifying_key());
        assert_eq!((jwk.crv.as_str(), jwk.alg.as_deref()), ("P-256", Some("ES256")));
        assert_eq!(b64url_decode(&jwk.x, "x").unwrap().len(), 32);
        assert_eq!(jwk.to_public().unwrap(), EcPublicKey::P256(*k.verifying_key()));
        assert!(matches!(jwk.to_p384(), Err(JoseError::BadKey(_))), "a P-256 key is not a P-384 one");
        // alg must be the curve's: a P-256 key labelled ES384 (or the reverse) names no key.
        let bad = Jwk { alg: Some("ES384".into()), ..jwk.clone() };
        assert!(matches!(bad.to_public(), Err(JoseError::BadKey(m)) if m.contains("expected ES256")));
        let p384 = Jwk::from_public(key().verifying_key());
        let bad = Jwk { alg: Some("ES256".into()), ..p384 };
        assert!(matches!(bad.to_public(), Err(JoseError::BadKey(m)) if m.contains("expected ES384")));
        // Without alg, the curve decides; a P-384-length coordinate on P-256 is refused.
        assert!(Jwk { alg: None, ..jwk.clone() }.to_public().is_ok());
        let long = Jwk { x: b64url(&[1; 48]), ..jwk.clone() };
        assert!(matches!(long.to_public(), Err(JoseError::BadKey(m)) if m.contains("expected 32")));
        let published = Jwk::published(k.verifying_key(), "twi-wit-es256");
        assert_eq!((published["crv"].as_str(), published["alg"].as_str()), (Some("P-256"), Some("ES256")));
    }

    #[test]
    fn alg_names_parse_strictly() {
        assert_eq!(Alg::from_name("ES256"), Some(Alg::Es256));
        assert_eq!(Alg::from_name("ES384"), Some(Alg::Es384));
        assert_eq!(Alg::from_name("es256"), None);
        assert_eq!(Alg::default(), Alg::Es384);
        assert_eq!(serde_json::from_value::<Alg>("ES256".into()).unwrap(), Alg::Es256);
        let error = serde_json::from_value::<Alg>("ES512".into()).unwrap_err().to_string();
        assert!(error.contains("\"ES512\"") && error.contains("\"ES256\", \"ES384\""), "{error}");
    }
}
