//! The WIMSE credentials of an HTTP request and the Workload Proof Token check
//! (draft-ietf-wimse-wpt §2, the recipient's list, in its order).
//!
//! The WIT rides in `Workload-Identity-Token` (draft-ietf-wimse-workload-creds §3.1.1), the
//! WPT in `Authorization: WPT <jwt>` (draft-ietf-wimse-wpt §2: exactly one `Authorization`
//! field, scheme name case-insensitive, credentials a `token68`). Earlier drafts of
//! draft-ietf-wimse-s2s-protocol carried it in a `Workload-Proof-Token` field; that is accepted
//! too, alone (never beside an `Authorization: WPT`, which would leave two proofs to choose
//! from). In that older form an `Authorization` field may carry some other scheme, which the
//! relying party never uses to authorize (draft-ietf-wimse-wpt §2.2).
//!
//! The WPT must then: use the WIT's `cnf.jwk.alg`; verify under `cnf.jwk`; be typed `wpt+jwt`;
//! name this request's target URI as `aud` (the configured public URL and the path, no query or
//! fragment); carry an `exp` that has not passed and is not more than the configured maximum
//! ahead; carry `wth` = base64url(SHA-256(WIT)); carry a `jti` of at least 128 bits (checked
//! for single use by the caller, after every other check, so a forged proof cannot burn one);
//! and carry `tth` exactly when a `Txn-Token` rides along, and in `oth` the hash of each other
//! token it names (all of which must be present, once).

use hyper::HeaderMap;
use hyper::header::{AUTHORIZATION, HeaderName};
use serde_json::Value;

use crate::error::AuthError;
use crate::jose::{self, JwsError};
use crate::wit::VerifiedWit;

/// The WPT's media type.
pub const WPT_TYP: &str = "wpt+jwt";
const WIT_HEADER: &str = "workload-identity-token";
const LEGACY_WPT_HEADER: &str = "workload-proof-token";
const TXN_TOKEN_HEADER: &str = "txn-token";
/// base64url of 128 bits, the least randomness the draft asks of a `jti`.
const MIN_JTI_LEN: usize = 22;
const MAX_JTI_LEN: usize = 256;

/// The WIT and the WPT of a request, as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presented<'a> {
    pub wit: &'a str,
    pub wpt: &'a str,
}

/// The request's WIMSE credentials; `Ok(None)` when it carries none of their fields.
pub fn presented(headers: &HeaderMap) -> Result<Option<Presented<'_>>, AuthError> {
    let wits: Vec<_> = headers.get_all(WIT_HEADER).iter().collect();
    let authorizations: Vec<_> = headers.get_all(AUTHORIZATION).iter().collect();
    let legacy: Vec<_> = headers.get_all(LEGACY_WPT_HEADER).iter().collect();
    let wpt_scheme = authorizations.iter().any(|v| scheme_is_wpt(v.as_bytes()));
    if wits.is_empty() && legacy.is_empty() && !wpt_scheme {
        return Ok(None);
    }
    let wit = match wits.as_slice() {
        [one] => one.to_str().map_err(|_| AuthError::WitHeader("is not ASCII".into()))?.trim(),
        [] => return Err(AuthError::WitHeader("is missing: a WPT proves possession of a WIT's key".into())),
        _ => return Err(AuthError::WitHeader(format!("appears {} times; send exactly one", wits.len()))),
    };
    let wpt = if wpt_scheme {
        if authorizations.len() != 1 || !legacy.is_empty() {
            return Err(AuthError::ProofHeader(
                "send exactly one `Authorization: WPT` field and no other Authorization or Workload-Proof-Token field"
                    .into(),
            ));
        }
        let value = authorizations[0].to_str().map_err(|_| AuthError::ProofHeader("is not ASCII".into()))?;
        token68(&value[3..])?
    } else {
        match legacy.as_slice() {
            [one] => one.to_str().map_err(|_| AuthError::ProofHeader("is not ASCII".into()))?.trim(),
            [] => {
                return Err(AuthError::ProofHeader("a WIT came without a WPT: add `Authorization: WPT <jwt>`".into()));
            }
            _ => return Err(AuthError::ProofHeader("more than one Workload-Proof-Token field".into())),
        }
    };
    Ok(Some(Presented { wit, wpt }))
}

/// `WPT` followed by at least one space (RFC 9110 §11.1: the scheme is case-insensitive).
fn scheme_is_wpt(value: &[u8]) -> bool {
    value.len() > 3 && value[..3].eq_ignore_ascii_case(b"WPT") && value[3] == b' '
}

/// `1*SP token68` (RFC 9110 §11.2).
fn token68(after_scheme: &str) -> Result<&str, AuthError> {
    let token = after_scheme.trim_start_matches(' ').trim_end();
    let body = token.trim_end_matches('=');
    let ok = !body.is_empty() && body.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
    if !ok {
        return Err(AuthError::ProofHeader("the WPT credentials are not a single token68 (a compact JWS)".into()));
    }
    Ok(token)
}

/// The limits a WPT is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Seconds a WPT's `exp` may be ahead of now.
    pub max_lifetime: u64,
    /// Seconds of clock skew tolerated.
    pub leeway: u64,
}

/// What the caller needs for replay detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedWpt {
    pub jti: String,
    pub exp: u64,
}

/// Verifies the WPT of `presented` for the already verified `wit`, on a request whose target
/// URI is `target` and whose fields are `headers`, at `now`.
pub fn verify_wpt(
    presented: &Presented<'_>,
    wit: &VerifiedWit,
    target: &str,
    headers: &HeaderMap,
    now: u64,
    limits: Limits,
) -> Result<VerifiedWpt, AuthError> {
    let verified = jose::verify(presented.wpt, &wit.cnf, WPT_TYP).map_err(|e| match e {
        JwsError::Malformed(m) => AuthError::WptMalformed(m),
        JwsError::Algorithm { found, expected } => AuthError::WptAlgorithm { found, expected },
        JwsError::Signature => AuthError::WptSignature,
        JwsError::Type(t) => AuthError::WptType(t),
    })?;
    let claims = verified.claims;
    let claim_error = |claim: &'static str, reason: String| AuthError::WptClaim { claim, reason };
    check_audience(claims.get("aud"), target)?;
    let exp = jose::numeric_date(&claims, "exp")
        .map_err(|r| claim_error("exp", r))?
        .ok_or_else(|| claim_error("exp", "is missing: a WPT must expire".into()))?;
    if now >= exp.saturating_add(limits.leeway) {
        return Err(AuthError::WptExpired { exp, now });
    }
    if exp > now.saturating_add(limits.max_lifetime).saturating_add(limits.leeway) {
        return Err(AuthError::WptTooLong { exp, max: limits.max_lifetime, now });
    }
    match claims.get("wth") {
        Some(Value::String(wth)) if *wth == jose::token_hash(presented.wit) => {}
        Some(_) => return Err(AuthError::WptWitHash),
        None => return Err(claim_error("wth", "is missing".into())),
    }
    let jti = match claims.get("jti") {
        Some(Value::String(j)) if (MIN_JTI_LEN..=MAX_JTI_LEN).contains(&j.len()) => j.clone(),
        Some(v) => {
            return Err(claim_error(
                "jti",
                format!("{v} is not {MIN_JTI_LEN}..{MAX_JTI_LEN} characters (128 random bits)"),
            ));
        }
        None => return Err(claim_error("jti", "is missing".into())),
    };
    check_txn_token(claims.get("tth"), headers)?;
    check_other_tokens(claims.get("oth"), headers)?;
    Ok(VerifiedWpt { jti, exp })
}

/// `aud` is the target URI: a string, or an array holding it (RFC 7519 §4.1.3).
fn check_audience(aud: Option<&Value>, target: &str) -> Result<(), AuthError> {
    let found = match aud {
        None => return Err(AuthError::WptClaim { claim: "aud", reason: "is missing".into() }),
        Some(Value::String(s)) if s == target => return Ok(()),
        Some(Value::Array(a)) if a.iter().any(|v| v.as_str() == Some(target)) => return Ok(()),
        Some(v) => v.to_string(),
    };
    Err(AuthError::WptAudience { found, expected: target.to_string() })
}

/// `tth` must be present exactly when a `Txn-Token` field is, and be its hash.
fn check_txn_token(tth: Option<&Value>, headers: &HeaderMap) -> Result<(), AuthError> {
    let refuse = |reason: &str| Err(AuthError::WptClaim { claim: "tth", reason: reason.into() });
    let tokens: Vec<_> = headers.get_all(TXN_TOKEN_HEADER).iter().collect();
    match (tth, tokens.as_slice()) {
        (None, []) => Ok(()),
        (None, _) => refuse("is missing while the request carries a Txn-Token: the WPT must bind it"),
        (Some(_), []) => refuse("binds a Txn-Token the request does not carry"),
        (Some(_), [_, _, ..]) => refuse("cannot bind more than one Txn-Token field"),
        (Some(Value::String(h)), [one]) if one.to_str().is_ok_and(|t| jose::token_hash(t.trim()) == *h) => Ok(()),
        (Some(_), [_]) => refuse("is not the hash of the Txn-Token sent with it"),
    }
}

/// Each `oth` member names a header field (lower case) whose trimmed value it hashes. An entry
/// the relying party cannot check refuses the WPT (draft-ietf-wimse-wpt §2).
fn check_other_tokens(oth: Option<&Value>, headers: &HeaderMap) -> Result<(), AuthError> {
    let refuse = |reason: String| Err(AuthError::WptClaim { claim: "oth", reason });
    let entries = match oth {
        None => return Ok(()),
        Some(Value::Object(entries)) => entries,
        Some(_) => return refuse("is not a JSON object of header field names to hashes".into()),
    };
    for (name, hash) in entries {
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            return refuse(format!("names {name:?}, not lower case"));
        }
        let Ok(field) = HeaderName::from_bytes(name.as_bytes()) else {
            return refuse(format!("names {name:?}, which is not a header field name"));
        };
        let values: Vec<_> = headers.get_all(&field).iter().collect();
        let [value] = values.as_slice() else {
            return refuse(format!("binds the {name} field, which the request carries {} times", values.len()));
        };
        let matches = value.to_str().is_ok_and(|v| Some(jose::token_hash(v.trim()).as_str()) == hash.as_str());
        if !matches {
            return refuse(format!("{name}: not the hash of the field sent with it"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(fields: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in fields {
            map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn credentials_come_from_exactly_one_wit_and_one_proof_field() {
        assert_eq!(presented(&headers(&[("authorization", "Bearer x")])), Ok(None));
        let ok = headers(&[("workload-identity-token", "a.b.c"), ("authorization", "wpt  d.e.f")]);
        assert_eq!(presented(&ok), Ok(Some(Presented { wit: "a.b.c", wpt: "d.e.f" })));
        let legacy = headers(&[
            ("workload-identity-token", "a.b.c"),
            ("workload-proof-token", "d.e.f"),
            ("authorization", "Bearer t"),
        ]);
        assert_eq!(presented(&legacy), Ok(Some(Presented { wit: "a.b.c", wpt: "d.e.f" })));
        let cases: [&[(&str, &str)]; 6] = [
            &[("authorization", "WPT d.e.f")],
            &[("workload-identity-token", "a.b.c")],
            &[
                ("workload-identity-token", "a.b.c"),
                ("workload-identity-token", "a.b.c"),
                ("authorization", "WPT d.e.f"),
            ],
            &[("workload-identity-token", "a.b.c"), ("authorization", "WPT d.e.f"), ("authorization", "WPT d.e.f")],
            &[("workload-identity-token", "a.b.c"), ("authorization", "WPT d.e.f"), ("workload-proof-token", "d.e.f")],
            &[("workload-identity-token", "a.b.c"), ("authorization", "WPT d.e.f g")],
        ];
        for fields in cases {
            let e = presented(&headers(fields)).unwrap_err();
            assert!(matches!(e, AuthError::WitHeader(_) | AuthError::ProofHeader(_)), "{fields:?}: {e}");
        }
    }

    #[test]
    fn audience_is_the_exact_target() {
        let target = "https://rp.example.org/rows";
        assert!(check_audience(Some(&Value::from(target)), target).is_ok());
        assert!(check_audience(Some(&serde_json::json!(["x", target])), target).is_ok());
        for other in ["https://rp.example.org/rows?x=1", "https://rp.example.org/rows/", "https://rp.example.org"] {
            assert!(matches!(check_audience(Some(&Value::from(other)), target), Err(AuthError::WptAudience { .. })));
        }
        assert!(check_audience(None, target).is_err());
    }

    #[test]
    fn tth_binds_the_txn_token_and_oth_the_other_tokens() {
        let txn = "txn.token.value";
        let tth = Value::from(jose::token_hash(txn));
        assert!(check_txn_token(None, &headers(&[])).is_ok());
        assert!(check_txn_token(Some(&tth), &headers(&[("txn-token", txn)])).is_ok());
        assert!(check_txn_token(None, &headers(&[("txn-token", txn)])).is_err());
        assert!(check_txn_token(Some(&tth), &headers(&[])).is_err());
        assert!(check_txn_token(Some(&tth), &headers(&[("txn-token", "other")])).is_err());

        let oth = serde_json::json!({ "x-user-token": jose::token_hash("u.v.w") });
        assert!(check_other_tokens(Some(&oth), &headers(&[("x-user-token", " u.v.w ")])).is_ok());
        assert!(check_other_tokens(Some(&oth), &headers(&[("x-user-token", "other")])).is_err());
        assert!(check_other_tokens(Some(&oth), &headers(&[])).is_err());
        let two = headers(&[("x-user-token", "u.v.w"), ("x-user-token", "u.v.w")]);
        assert!(check_other_tokens(Some(&oth), &two).is_err());
        let upper = serde_json::json!({ "X-User-Token": jose::token_hash("u.v.w") });
        assert!(check_other_tokens(Some(&upper), &headers(&[("x-user-token", "u.v.w")])).is_err());
        assert!(check_other_tokens(Some(&Value::from("x")), &headers(&[])).is_err());
    }
}
