//! Verifying a Workload Identity Token (draft-ietf-wimse-workload-creds §3.1; SPIFFE's
//! `WIT-SVID.md` profile of it) under the issuer's published keys.
//!
//! The issuer publishes its keys as a JWKS (RFC 7517 §5: `issuer-jwks.json`, or `GET
//! /v1/keys`). It holds several keys, one per signature format (the WIT key, the Verifier's
//! attestation-result key, the log key); only those whose `kid` the configuration names as WIT
//! keys verify a WIT, so a token signed by any other issuer key never passes for a WIT. The WIT
//! names its key by `kid` (WIT-SVID: `kid` MUST be present).
//!
//! Checks, in order: `kid` → key; `alg` = the key's; signature; `typ` `wit+jwt`; `exp`
//! required and not passed, `nbf`/`iat` not in the future (each with the configured leeway);
//! `sub` an absolute URI with an authority (the workload identifier); `cnf.jwk` an EC key with
//! `alg` (the key the WPT must be signed with).

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::error::AuthError;
use crate::jose::{self, EcKey, JwsError};

/// The WIT's media type (draft-ietf-wimse-workload-creds §3.1).
pub const WIT_TYP: &str = "wit+jwt";

/// A problem with the configured JWKS.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("is not a JWKS (a JSON object with a `keys` array): {0}")]
    NotJwks(String),
    #[error("key {kid:?} {reason}")]
    BadKey { kid: String, reason: String },
    #[error(
        "has no key with `kid` {0:?}: publish the issuer's WIT key (the issuer's `issuer-jwks.json` or `GET /v1/keys`), or set `wit_key_ids`"
    )]
    NoWitKey(Vec<String>),
}

/// The issuer's WIT keys by `kid`.
#[derive(Debug, Clone)]
pub struct WitKeys {
    keys: HashMap<String, EcKey>,
}

impl WitKeys {
    /// The keys of `jwks` (JSON text) whose `kid` is one of `kids`; the others are ignored.
    pub fn from_jwks(jwks: &str, kids: &[String]) -> Result<Self, JwksError> {
        let value: Value = serde_json::from_str(jwks).map_err(|e| JwksError::NotJwks(e.to_string()))?;
        let listed =
            value.get("keys").and_then(Value::as_array).ok_or_else(|| JwksError::NotJwks("no `keys`".into()))?;
        let mut keys = HashMap::new();
        for jwk in listed {
            let Some(kid) = jwk.get("kid").and_then(Value::as_str).filter(|k| kids.iter().any(|w| w == k)) else {
                continue;
            };
            let key = EcKey::from_jwk(jwk, false).map_err(|reason| JwksError::BadKey { kid: kid.into(), reason })?;
            keys.insert(kid.to_string(), key);
        }
        if keys.is_empty() {
            return Err(JwksError::NoWitKey(kids.to_vec()));
        }
        Ok(Self { keys })
    }
}

/// A WIT that verified.
#[derive(Debug, Clone)]
pub struct VerifiedWit {
    /// The workload identifier.
    pub sub: String,
    /// Every claim of the WIT (business claims included).
    pub claims: Map<String, Value>,
    /// The confirmation key (`cnf.jwk`), and so the WPT's algorithm.
    pub cnf: EcKey,
}

/// Verifies `token` as a WIT under `keys` at `now` (seconds since the epoch), tolerating
/// `leeway` seconds of clock skew.
pub fn verify_wit(token: &str, keys: &WitKeys, now: u64, leeway: u64) -> Result<VerifiedWit, AuthError> {
    let header = jose::header(token).map_err(wit_error(""))?;
    let kid = header.kid.unwrap_or_default();
    let key = keys.keys.get(&kid).ok_or_else(|| AuthError::WitUnknownKey(kid.clone()))?;
    let verified = jose::verify(token, key, WIT_TYP).map_err(wit_error(&kid))?;
    let claims = verified.claims;
    let date = |name: &'static str| {
        jose::numeric_date(&claims, name).map_err(|reason| AuthError::WitClaim { claim: name, reason })
    };
    let exp = date("exp")?.ok_or(AuthError::WitClaim { claim: "exp", reason: "is missing".into() })?;
    if now >= exp.saturating_add(leeway) {
        return Err(AuthError::WitExpired { exp, now });
    }
    for claim in ["nbf", "iat"] {
        if let Some(at) = date(claim)?
            && at > now.saturating_add(leeway)
        {
            return Err(AuthError::WitNotYetValid { claim, at, now });
        }
    }
    let sub = match claims.get("sub") {
        Some(Value::String(s)) if crate::config::is_workload_identifier(s) => s.clone(),
        Some(v) => {
            let reason = format!("{v} is not an absolute URI with a trust domain (a workload identifier)");
            return Err(AuthError::WitClaim { claim: "sub", reason });
        }
        None => return Err(AuthError::WitClaim { claim: "sub", reason: "is missing".into() }),
    };
    let jwk = claims.get("cnf").and_then(|c| c.get("jwk")).ok_or(AuthError::WitClaim {
        claim: "cnf.jwk",
        reason: "is missing: a WIT without a key proves nothing".into(),
    })?;
    let cnf = EcKey::from_jwk(jwk, true).map_err(|reason| AuthError::WitClaim { claim: "cnf.jwk", reason })?;
    Ok(VerifiedWit { sub, claims, cnf })
}

fn wit_error(kid: &str) -> impl Fn(JwsError) -> AuthError + '_ {
    move |e| match e {
        JwsError::Malformed(m) => AuthError::WitMalformed(m),
        JwsError::Algorithm { found, expected } => AuthError::WitAlgorithm { kid: kid.into(), found, expected },
        JwsError::Signature => AuthError::WitSignature(kid.into()),
        JwsError::Type(t) => AuthError::WitType(t),
    }
}
