//! JWS verification for WITs and WPTs with the `jsonwebtoken` crate (RustCrypto backend):
//! deliberately not the issuer's own `jose` module, so the issuer's tokens are checked by an
//! independent implementation.
//!
//! Only ES256 and ES384 (RFC 7518 §3.4) are accepted: draft-ietf-wimse-workload-creds §3.1
//! requires ES256 of general-purpose implementations, and the TWI issuer signs ES384. The
//! crate parses the JWS compact serialization (RFC 7515 §7.1), refuses `crit` parameters it
//! does not understand (§4.1.11) and verifies the signature; this module adds the explicit
//! typing of RFC 8725 §3.11 (`typ`), the pinning of `alg` to the key, and the claims helpers.

use base64ct::{Base64UrlUnpadded, Encoding};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The longest token accepted, before any decoding (a WIT with business claims is ~1 KiB).
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The signature algorithms accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Es256,
    Es384,
}

impl Alg {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(Self::Es256),
            "ES384" => Some(Self::Es384),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
        }
    }

    /// The JWK `crv` of this algorithm's curve (RFC 7518 §6.2.1.1).
    fn curve(self) -> &'static str {
        match self {
            Self::Es256 => "P-256",
            Self::Es384 => "P-384",
        }
    }

    fn coordinate_len(self) -> usize {
        match self {
            Self::Es256 => 32,
            Self::Es384 => 48,
        }
    }

    fn jwt(self) -> Algorithm {
        match self {
            Self::Es256 => Algorithm::ES256,
            Self::Es384 => Algorithm::ES384,
        }
    }
}

/// An EC public key and the one algorithm it verifies.
#[derive(Clone)]
pub struct EcKey {
    pub alg: Alg,
    key: DecodingKey,
}

impl std::fmt::Debug for EcKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcKey").field("alg", &self.alg).finish_non_exhaustive()
    }
}

impl EcKey {
    /// A key from a JWK (RFC 7517 §4, RFC 7518 §6.2): `kty` EC, `crv` P-256 or P-384, `x`
    /// and `y` of the curve's size, and `alg`, when present (or when `require_alg`), the
    /// curve's ECDSA algorithm.
    pub fn from_jwk(jwk: &Value, require_alg: bool) -> Result<Self, String> {
        let text = |name: &str| jwk.get(name).and_then(Value::as_str);
        if !jwk.is_object() {
            return Err("is not a JSON object".into());
        }
        if text("kty") != Some("EC") {
            return Err(format!("has `kty` {:?}: only EC keys (ES256, ES384) are accepted", text("kty")));
        }
        let alg = match (jwk.get("alg"), require_alg) {
            (None, true) => return Err("has no `alg` (draft-ietf-wimse-workload-creds §3.1 requires it)".into()),
            (None, false) => None,
            (Some(v), _) => Some(
                v.as_str()
                    .and_then(Alg::from_name)
                    .ok_or_else(|| format!("has `alg` {v}: only ES256 and ES384 are accepted"))?,
            ),
        };
        let by_curve = [Alg::Es256, Alg::Es384].into_iter().find(|a| text("crv") == Some(a.curve()));
        let curve_alg = by_curve.ok_or_else(|| format!("has `crv` {:?}: only P-256 and P-384", text("crv")))?;
        if alg.is_some_and(|a| a != curve_alg) {
            return Err(format!("has `alg` {} for a {} key", alg.map_or("", Alg::name), curve_alg.curve()));
        }
        for coordinate in ["x", "y"] {
            let bytes = text(coordinate)
                .and_then(|c| Base64UrlUnpadded::decode_vec(c).ok())
                .ok_or_else(|| format!("has no base64url `{coordinate}`"))?;
            if bytes.len() != curve_alg.coordinate_len() {
                return Err(format!("has a `{coordinate}` of {} bytes for {}", bytes.len(), curve_alg.curve()));
            }
        }
        let parsed: jsonwebtoken::jwk::Jwk =
            serde_json::from_value(jwk.clone()).map_err(|e| format!("is not a JWK: {e}"))?;
        let key = DecodingKey::from_jwk(&parsed).map_err(|e| format!("is not a usable key: {e}"))?;
        Ok(Self { alg: curve_alg, key })
    }
}

/// A verified JWS: its protected header and claims.
#[derive(Debug)]
pub struct Verified {
    pub header: jsonwebtoken::Header,
    pub claims: Map<String, Value>,
}

/// Why a JWS did not verify (the caller says whether it was the WIT or the WPT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwsError {
    Malformed(String),
    Algorithm { found: String, expected: &'static str },
    Signature,
    Type(String),
}

/// The header, before verification (to pick the key by `kid`).
pub fn header(token: &str) -> Result<jsonwebtoken::Header, JwsError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwsError::Malformed(format!("{} bytes, more than the {MAX_TOKEN_LEN} accepted", token.len())));
    }
    jsonwebtoken::decode_header(token).map_err(|e| JwsError::Malformed(format!("its JOSE header: {e}")))
}

/// Verifies `token` under `key` with exactly the key's algorithm, and checks `typ` names the
/// media type `typ` (RFC 7515 §4.1.9: the `application/` prefix may be left out; media types
/// compare case-insensitively). No claim is checked here.
pub fn verify(token: &str, key: &EcKey, typ: &str) -> Result<Verified, JwsError> {
    let found = header(token)?;
    if found.alg != key.alg.jwt() {
        return Err(JwsError::Algorithm { found: format!("{:?}", found.alg), expected: key.alg.name() });
    }
    let mut validation = Validation::new(key.alg.jwt());
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let data =
        jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation).map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature | ErrorKind::InvalidEcdsaKey => JwsError::Signature,
            ErrorKind::InvalidAlgorithm => {
                JwsError::Algorithm { found: format!("{:?}", found.alg), expected: key.alg.name() }
            }
            _ => JwsError::Malformed(e.to_string()),
        })?;
    let declared = data.header.typ.clone().unwrap_or_default();
    let bare = declared
        .get(..12)
        .filter(|p| p.eq_ignore_ascii_case("application/"))
        .map_or(&declared[..], |_| &declared[12..]);
    if !bare.eq_ignore_ascii_case(typ) {
        return Err(JwsError::Type(declared));
    }
    Ok(Verified { header: data.header, claims: data.claims })
}

/// A NumericDate claim (RFC 7519 §2): a non-negative number of seconds, fractions dropped.
/// `Ok(None)` when absent.
pub fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, String> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => match (v.as_u64(), v.as_f64()) {
            (Some(n), _) => Ok(Some(n)),
            (None, Some(f)) if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 => Ok(Some(f as u64)),
            _ => Err(format!("is {v}, not a NumericDate (seconds since the epoch)")),
        },
    }
}

/// base64url(SHA-256(ASCII of `token`)): `wth` and `tth` (draft-ietf-wimse-wpt §2).
pub fn token_hash(token: &str) -> String {
    Base64UrlUnpadded::encode_string(&Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(n: usize) -> String {
        Base64UrlUnpadded::encode_string(&vec![7u8; n])
    }

    #[test]
    fn jwks_that_do_not_fit_the_two_algorithms_are_refused() {
        let good = json!({"kty": "EC", "crv": "P-384", "x": b64(48), "y": b64(48), "alg": "ES384"});
        assert_eq!(EcKey::from_jwk(&good, true).unwrap().alg, Alg::Es384);
        let mut no_alg = good.clone();
        no_alg.as_object_mut().unwrap().remove("alg");
        assert_eq!(EcKey::from_jwk(&no_alg, false).unwrap().alg, Alg::Es384);
        assert!(EcKey::from_jwk(&no_alg, true).unwrap_err().contains("no `alg`"));
        let cases = [
            (json!({"kty": "EC", "crv": "P-384", "x": b64(48), "y": b64(48), "alg": "ES256"}), "for a P-384 key"),
            (json!({"kty": "EC", "crv": "P-384", "x": b64(48), "y": b64(48), "alg": "none"}), "only ES256"),
            (json!({"kty": "EC", "crv": "P-384", "x": b64(48), "y": b64(48), "alg": "HS256"}), "only ES256"),
            (json!({"kty": "EC", "crv": "P-521", "x": b64(66), "y": b64(66)}), "only P-256"),
            (json!({"kty": "EC", "crv": "P-256", "x": b64(48), "y": b64(32)}), "48 bytes"),
            (json!({"kty": "EC", "crv": "P-256", "x": b64(32)}), "no base64url `y`"),
            (json!({"kty": "oct", "k": b64(32)}), "only EC keys"),
            (json!("a string"), "not a JSON object"),
        ];
        for (jwk, expected) in cases {
            let e = EcKey::from_jwk(&jwk, false).unwrap_err();
            assert!(e.contains(expected), "{jwk}: {e}");
        }
    }

    #[test]
    fn numeric_dates_and_hashes() {
        let claims = json!({"a": 5, "b": 5.9, "c": -1, "d": "5"});
        let claims = claims.as_object().unwrap();
        assert_eq!(numeric_date(claims, "a"), Ok(Some(5)));
        assert_eq!(numeric_date(claims, "b"), Ok(Some(5)));
        assert_eq!(numeric_date(claims, "z"), Ok(None));
        assert!(numeric_date(claims, "c").is_err());
        assert!(numeric_date(claims, "d").is_err());
        // SHA-256("abc"), base64url without padding.
        assert_eq!(token_hash("abc"), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
    }

    #[test]
    fn oversized_and_garbage_tokens_are_malformed_not_panics() {
        assert!(matches!(header(&"a".repeat(MAX_TOKEN_LEN + 1)), Err(JwsError::Malformed(_))));
        for garbage in ["", ".", "..", "a.b.c", "a.b", "eyJhbGciOiJub25lIn0.e30.", "\u{0}.\u{1}.\u{2}"] {
            assert!(matches!(header(garbage), Err(JwsError::Malformed(_))), "{garbage:?}");
        }
    }
}
