//! WIMSE Workload Identity Token (draft-ietf-wimse-workload-creds §3.1) and Workload Proof
//! Token (draft-ietf-wimse-wpt §3), both JWS compact, ES256 or ES384.
//!
//! A WIT: header `{"alg":"ES384"|"ES256","typ":"wit+jwt"[,"kid"]}` (the algorithm of the
//! Credential Authority's WIT key, which the policy's `wit_alg` chooses); claims `iss`, `sub`
//! (the workload's SPIFFE ID), `iat`, `exp`, `jti`, `cnf.jwk` (the attested Credential Key,
//! with the `alg` its proofs use, which the draft requires: ES384 for the guest's P-384 vault
//! keys), plus the workload's business claims. It is signed by the Credential Authority and is
//! never a bearer token: the workload proves possession of the `cnf` key with a WPT for each
//! request — `aud`, `exp`, `jti` and `wth` = base64url(SHA-256(ASCII of the WIT)), signed with
//! the workload key (any [`JwsSigner`]) under `cnf.jwk`'s `alg`.

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value, json};

use crate::jose::{self, EcPublicKey, JoseError, Jwk, JwsSigner};

/// The WIT's media type (`typ`).
pub const WIT_TYP: &str = "wit+jwt";
/// The WPT's media type (`typ`).
pub const WPT_TYP: &str = "wpt+jwt";
/// Clock skew tolerated between issuer, workload and relying party.
pub const LEEWAY: Duration = Duration::from_secs(60);
/// Claim names a WIT or WPT defines itself (or RFC 7519 registers): never business claims.
pub const RESERVED_CLAIMS: &[&str] = &["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "cnf", "wth", "tth", "oth"];

/// A Workload Identity Token's content.
#[derive(Clone, Debug, PartialEq)]
pub struct Wit {
    /// The issuer (the Credential Authority), a URI.
    pub iss: String,
    /// The workload identifier, e.g. `spiffe://example.org/payroll-app`.
    pub sub: String,
    pub iat: u64,
    pub exp: u64,
    /// Unique per token: the provenance log's key for it.
    pub jti: String,
    /// The attested Credential Key.
    pub cnf_jwk: Jwk,
    /// Business claims (and other non-registered claims), at the top level of the claims set.
    pub claims: Map<String, Value>,
}

impl Wit {
    /// A WIT for the SEC1 P-384 key `public_key_sec1`, valid from `now` for `lifetime`, with a
    /// random 128-bit `jti`.
    pub fn new(
        iss: &str,
        sub: &str,
        public_key_sec1: &[u8],
        now: SystemTime,
        lifetime: Duration,
    ) -> Result<Self, JoseError> {
        let iat = jose::unix_seconds(now);
        Ok(Self {
            iss: iss.into(),
            sub: sub.into(),
            iat,
            exp: iat.saturating_add(lifetime.as_secs()),
            jti: jose::random_id()?,
            cnf_jwk: Jwk::from_sec1(public_key_sec1)?,
            claims: Map::new(),
        })
    }

    /// Adds a claim; a registered name (`sub`, `cnf`, …) is refused, so a business claim can
    /// never override what the token is about.
    pub fn with_claim(mut self, name: &str, value: impl Into<Value>) -> Result<Self, JoseError> {
        if RESERVED_CLAIMS.contains(&name) || name.is_empty() {
            return Err(JoseError::BadClaim {
                claim: "business claims",
                reason: format!("`{name}` is a registered claim name and cannot be a business claim"),
            });
        }
        self.claims.insert(name.into(), value.into());
        Ok(self)
    }

    /// The claims set as JSON.
    pub fn to_claims(&self) -> Map<String, Value> {
        let mut m = self.claims.clone();
        m.insert("iss".into(), self.iss.clone().into());
        m.insert("sub".into(), self.sub.clone().into());
        m.insert("iat".into(), self.iat.into());
        m.insert("exp".into(), self.exp.into());
        m.insert("jti".into(), self.jti.clone().into());
        m.insert("cnf".into(), json!({ "jwk": self.cnf_jwk }));
        m
    }

    /// Signs the WIT with the Credential Authority's key (ES256 or ES384, as the key is).
    pub fn sign<S: JwsSigner + ?Sized>(&self, key: &S, kid: Option<&str>) -> Result<String, JoseError> {
        jose::sign_compact(key, WIT_TYP, kid, &self.to_claims())
    }

    /// Verifies `token` as a WIT signed by `issuer_key` (with the one `alg` of its curve) and
    /// valid at `now` (± [`LEEWAY`]).
    pub fn verify(token: &str, issuer_key: impl Into<EcPublicKey>, now: SystemTime) -> Result<Self, JoseError> {
        let verified = jose::verify_compact(token, issuer_key, WIT_TYP)?;
        let mut claims = verified.claims;
        let wit = Self {
            iss: jose::string_claim(&claims, "iss")?,
            sub: jose::string_claim(&claims, "sub")?,
            iat: jose::numeric_date(&claims, "iat")?,
            exp: jose::numeric_date(&claims, "exp")?,
            jti: jose::string_claim(&claims, "jti")?,
            cnf_jwk: cnf_jwk(&claims)?,
            claims: Map::new(),
        };
        check_times(wit.iat, wit.exp, now)?;
        wit.cnf_jwk.to_public()?;
        for name in RESERVED_CLAIMS {
            claims.remove(*name);
        }
        Ok(Self { claims, ..wit })
    }

    /// The workload's public key (`cnf.jwk`), when it is P-384 (a TWI guest's).
    pub fn public_key(&self) -> Result<p384::PublicKey, JoseError> {
        self.cnf_jwk.to_p384()
    }

    /// The workload's public key (`cnf.jwk`), on whichever curve it is.
    pub fn cnf_key(&self) -> Result<EcPublicKey, JoseError> {
        self.cnf_jwk.to_public()
    }
}

fn cnf_jwk(claims: &Map<String, Value>) -> Result<Jwk, JoseError> {
    let jwk = claims.get("cnf").and_then(|c| c.get("jwk")).ok_or(JoseError::MissingClaim("cnf.jwk"))?;
    let jwk: Jwk = serde_json::from_value(jwk.clone())
        .map_err(|e| JoseError::BadClaim { claim: "cnf.jwk", reason: e.to_string() })?;
    // The draft: `alg` MUST be present in the cnf JWK; the proof is made with that algorithm.
    if jwk.alg.is_none() {
        return Err(JoseError::BadClaim { claim: "cnf.jwk", reason: "`alg` is missing".into() });
    }
    Ok(jwk)
}

fn check_times(iat: u64, exp: u64, now: SystemTime) -> Result<(), JoseError> {
    let now = jose::unix_seconds(now);
    if now >= exp.saturating_add(LEEWAY.as_secs()) {
        return Err(JoseError::Expired { exp, now });
    }
    if iat > now.saturating_add(LEEWAY.as_secs()) {
        return Err(JoseError::NotYetValid { iat, now });
    }
    Ok(())
}

/// A Workload Proof Token's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wpt {
    pub aud: String,
    pub exp: u64,
    pub jti: String,
    /// base64url(SHA-256(WIT)).
    pub wth: String,
}

/// Signs a WPT for `wit_token` (the WIT as sent) and request target `aud`, valid from `now` for
/// `lifetime` (minutes at most, per the draft), with the workload key.
pub fn sign_wpt<S: JwsSigner + ?Sized>(
    workload_key: &S,
    wit_token: &str,
    aud: &str,
    now: SystemTime,
    lifetime: Duration,
) -> Result<String, JoseError> {
    let mut claims = Map::new();
    claims.insert("aud".into(), aud.into());
    claims.insert("exp".into(), jose::unix_seconds(now).saturating_add(lifetime.as_secs()).into());
    claims.insert("jti".into(), jose::random_id()?.into());
    claims.insert("wth".into(), jose::token_hash(wit_token).into());
    jose::sign_compact(workload_key, WPT_TYP, None, &claims)
}

/// Verifies `wpt` as the proof for the already verified `wit` (whose token text is
/// `wit_token`) on a request to `aud`, at `now`. A WPT valid for longer than `max_lifetime`
/// is refused. The caller keeps the returned `jti` for replay detection within its lifetime.
pub fn verify_wpt(
    wpt: &str,
    wit_token: &str,
    wit: &Wit,
    aud: &str,
    now: SystemTime,
    max_lifetime: Duration,
) -> Result<Wpt, JoseError> {
    // The draft: the WPT's alg must equal the cnf.jwk alg. `to_public` refuses a cnf.jwk whose
    // alg is not its curve's, and verify_compact accepts only the key's curve's alg: so the
    // WPT is ES256 exactly when cnf.jwk is a P-256 key with alg ES256, ES384 for P-384.
    if wit.cnf_jwk.alg.is_none() {
        return Err(JoseError::BadClaim { claim: "cnf.jwk", reason: "`alg` is missing".into() });
    }
    let key = wit.cnf_key()?;
    let claims = jose::verify_compact(wpt, key, WPT_TYP)?.claims;
    let token = Wpt {
        aud: jose::string_claim(&claims, "aud")?,
        exp: jose::numeric_date(&claims, "exp")?,
        jti: jose::string_claim(&claims, "jti")?,
        wth: jose::string_claim(&claims, "wth")?,
    };
    if token.aud != aud {
        return Err(JoseError::BadClaim {
            claim: "aud",
            reason: format!("{:?} is not this target ({aud:?})", token.aud),
        });
    }
    let now_s = jose::unix_seconds(now);
    if now_s >= token.exp.saturating_add(LEEWAY.as_secs()) {
        return Err(JoseError::Expired { exp: token.exp, now: now_s });
    }
    let limit = now_s.saturating_add(max_lifetime.as_secs()).saturating_add(LEEWAY.as_secs());
    if token.exp > limit {
        return Err(JoseError::BadClaim {
            claim: "exp",
            reason: format!(
                "{} is more than {} s ahead: a proof must be short-lived",
                token.exp,
                max_lifetime.as_secs()
            ),
        });
    }
    if token.wth != jose::token_hash(wit_token) {
        return Err(JoseError::BadClaim {
            claim: "wth",
            reason: "it is not the hash of the WIT presented with it".into(),
        });
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p384::ecdsa::SigningKey;
    use p384::elliptic_curve::Generate;

    fn keys() -> (SigningKey, SigningKey) {
        (SigningKey::try_generate().unwrap(), SigningKey::try_generate().unwrap())
    }

    fn sec1(k: &SigningKey) -> Vec<u8> {
        k.verifying_key().to_sec1_point(false).as_bytes().to_vec()
    }

    #[test]
    fn wit_round_trip_carries_key_and_business_claims() {
        let (ca, workload) = keys();
        let now = SystemTime::now();
        let wit = Wit::new(
            "https://issuer.example.org",
            "spiffe://example.org/payroll-app",
            &sec1(&workload),
            now,
            Duration::from_secs(3600),
        )
        .unwrap()
        .with_claim("location", "DE")
        .unwrap()
        .with_claim("handles-pii", true)
        .unwrap();
        let token = wit.sign(&ca, Some("ca-1")).unwrap();
        let back = Wit::verify(&token, ca.verifying_key(), now).unwrap();
        assert_eq!(back, wit);
        assert_eq!(back.public_key().unwrap(), p384::PublicKey::from(workload.verifying_key()));
        assert_eq!(back.cnf_jwk.alg.as_deref(), Some("ES384"));
        assert_eq!(back.exp - back.iat, 3600);
        // Another issuer's key, an expired token, a future token.
        assert_eq!(Wit::verify(&token, workload.verifying_key(), now), Err(JoseError::BadSignature));
        let later = now + Duration::from_secs(3600) + LEEWAY;
        assert!(matches!(Wit::verify(&token, ca.verifying_key(), later), Err(JoseError::Expired { .. })));
        let earlier = now - 2 * LEEWAY;
        assert!(matches!(Wit::verify(&token, ca.verifying_key(), earlier), Err(JoseError::NotYetValid { .. })));
    }

    #[test]
    fn business_claims_cannot_shadow_registered_ones() {
        let (_, workload) = keys();
        let wit = Wit::new("i", "spiffe://e/w", &sec1(&workload), SystemTime::now(), Duration::from_secs(60)).unwrap();
        for name in ["sub", "cnf", "exp", ""] {
            assert!(wit.clone().with_claim(name, "x").is_err(), "{name}");
        }
    }

    #[test]
    fn wpt_proves_possession_for_one_wit_and_target() {
        let (ca, workload) = keys();
        let now = SystemTime::now();
        let wit = Wit::new("i", "spiffe://example.org/w", &sec1(&workload), now, Duration::from_secs(3600)).unwrap();
        let token = wit.sign(&ca, None).unwrap();
        let wit = Wit::verify(&token, ca.verifying_key(), now).unwrap();
        let aud = "https://payroll-db.example.org/read";
        let max = Duration::from_secs(300);
        let wpt = sign_wpt(&workload, &token, aud, now, Duration::from_secs(60)).unwrap();
        let proof = verify_wpt(&wpt, &token, &wit, aud, now, max).unwrap();
        assert_eq!(proof.wth, jose::token_hash(&token));
        // Signed by someone else's key.
        let stolen = sign_wpt(&ca, &token, aud, now, Duration::from_secs(60)).unwrap();
        assert_eq!(verify_wpt(&stolen, &token, &wit, aud, now, max), Err(JoseError::BadSignature));
        // Another target, another WIT, too long-lived, expired.
        assert!(matches!(
            verify_wpt(&wpt, &token, &wit, "https://other", now, max),
            Err(JoseError::BadClaim { claim: "aud", .. })
        ));
        let other = Wit::new("i", "spiffe://example.org/w", &sec1(&workload), now, Duration::from_secs(60)).unwrap();
        let other_token = other.sign(&ca, None).unwrap();
        assert!(matches!(
            verify_wpt(&wpt, &other_token, &wit, aud, now, max),
            Err(JoseError::BadClaim { claim: "wth", .. })
        ));
        let long = sign_wpt(&workload, &token, aud, now, Duration::from_secs(3600)).unwrap();
        assert!(matches!(
            verify_wpt(&long, &token, &wit, aud, now, max),
            Err(JoseError::BadClaim { claim: "exp", .. })
        ));
        let later = now + Duration::from_secs(60) + LEEWAY;
        assert!(matches!(verify_wpt(&wpt, &token, &wit, aud, later, max), Err(JoseError::Expired { .. })));
        // A WIT token cannot stand in for a WPT (typ differs).
        assert!(matches!(verify_wpt(&token, &token, &wit, aud, now, max), Err(JoseError::Type { .. })));
    }

    /// Under `wit_alg = "ES256"` the CA's WIT key is P-256: the WIT says ES256 and verifies
    /// under that key only, never under a P-384 key (or the reverse).
    #[test]
    fn an_es256_wit_round_trips_and_is_pinned_to_its_curve() {
        let (ca384, workload) = keys();
        let ca256 = p256::ecdsa::SigningKey::try_generate().unwrap();
        let now = SystemTime::now();
        let wit = Wit::new("i", "spiffe://example.org/w", &sec1(&workload), now, Duration::from_secs(600)).unwrap();
        let token = wit.sign(&ca256, Some("twi-wit-es256")).unwrap();
        let header = jose::decode_unverified(&token).unwrap().header;
        assert_eq!((header["alg"].as_str(), header["kid"].as_str()), (Some("ES256"), Some("twi-wit-es256")));
        assert_eq!(Wit::verify(&token, ca256.verifying_key(), now).unwrap(), wit);
        assert!(matches!(Wit::verify(&token, ca384.verifying_key(), now), Err(JoseError::KeyAlgorithm { .. })));
        let es384 = wit.sign(&ca384, None).unwrap();
        assert!(matches!(Wit::verify(&es384, ca256.verifying_key(), now), Err(JoseError::KeyAlgorithm { .. })));
        // The guest's key stays P-384 with ES384 proofs under either WIT algorithm.
        let wpt = sign_wpt(&workload, &token, "https://a", now, Duration::from_secs(60)).unwrap();
        let max = Duration::from_secs(300);
        assert!(verify_wpt(&wpt, &token, &wit, "https://a", now, max).is_ok());
    }

    /// A non-TWI workload holding a P-256 key: its WIT's cnf.jwk is P-256 with alg ES256, and its
    /// proofs are ES256; a proof with another alg than cnf.jwk's is refused.
    #[test]
    fn a_p256_cnf_key_proves_with_es256_only() {
        let (ca, thief) = keys();
        let workload = p256::ecdsa::SigningKey::try_generate().unwrap();
        let now = SystemTime::now();
        let mut wit = Wit::new("i", "spiffe://example.org/w", &sec1(&thief), now, Duration::from_secs(600)).unwrap();
        wit.cnf_jwk = Jwk::from_public(workload.verifying_key());
        let token = wit.sign(&ca, None).unwrap();
        let wit = Wit::verify(&token, ca.verifying_key(), now).unwrap();
        assert_eq!(wit.cnf_jwk.alg.as_deref(), Some("ES256"));
        assert!(wit.public_key().is_err(), "not a P-384 key");
        let (aud, max, ttl) = ("https://a", Duration::from_secs(300), Duration::from_secs(60));
        let wpt = sign_wpt(&workload, &token, aud, now, ttl).unwrap();
        assert_eq!(jose::decode_unverified(&wpt).unwrap().header["alg"], "ES256");
        assert!(verify_wpt(&wpt, &token, &wit, aud, now, max).is_ok());
        // An ES384 proof (by any P-384 key) does not match cnf.jwk's alg.
        let es384 = sign_wpt(&thief, &token, aud, now, ttl).unwrap();
        assert!(matches!(verify_wpt(&es384, &token, &wit, aud, now, max), Err(JoseError::KeyAlgorithm { .. })));
        // A cnf.jwk whose alg is not its curve's names no key; one without alg is refused.
        let relabelled = Wit { cnf_jwk: Jwk { alg: Some("ES384".into()), ..wit.cnf_jwk.clone() }, ..wit.clone() };
        assert!(matches!(verify_wpt(&wpt, &token, &relabelled, aud, now, max), Err(JoseError::BadKey(_))));
        let bare = Wit { cnf_jwk: Jwk { alg: None, ..wit.cnf_jwk.clone() }, ..wit.clone() };
        assert!(matches!(verify_wpt(&wpt, &token, &bare, aud, now, max), Err(JoseError::BadClaim { .. })));
    }
}
