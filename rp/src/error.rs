//! Why a request was not authenticated: one variant per check, each naming the check (for the
//! problem document's `check` member) and saying what the caller can do.
//!
//! The texts carry what the caller sent or may know (claim values, the expected audience),
//! never a token, a key or anything of the relying party's own secrets.

/// An authentication failure: the relying party answers 401 with `WWW-Authenticate: WPT`
/// (draft-ietf-wimse-wpt §2.1, "Error Conditions").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(
        "no credentials: present a client certificate issued by the issuer CA (mTLS), or a `Workload-Identity-Token` header with `Authorization: WPT <proof>`"
    )]
    NoCredentials,
    #[error("the client certificate names no workload: {0}")]
    CertificateIdentity(String),
    #[error("this relying party accepts no WITs (it has no `issuer_jwks`): use mTLS")]
    WitNotAccepted,
    #[error("Workload-Identity-Token header: {0}")]
    WitHeader(String),
    #[error("the WIT is not a well-formed JWS it can verify: {0}")]
    WitMalformed(String),
    #[error(
        "the WIT's key id {0:?} is not one of the issuer's WIT keys in this relying party's JWKS: acquire a new WIT, or update the relying party's issuer JWKS if the issuer rotated its key"
    )]
    WitUnknownKey(String),
    #[error("the WIT's `alg` {found} does not match the issuer's key {kid:?}, which is {expected}")]
    WitAlgorithm { kid: String, found: String, expected: &'static str },
    #[error(
        "the WIT's signature does not verify under the issuer's key {0:?}: it was altered, or signed by another issuer"
    )]
    WitSignature(String),
    #[error("the WIT's `typ` is {0:?}, not \"wit+jwt\"")]
    WitType(String),
    #[error("the WIT expired at {exp} (now {now}): acquire a new one from the issuer")]
    WitExpired { exp: u64, now: u64 },
    #[error("the WIT's `{claim}` is {at}, later than now ({now}): check the clocks of issuer and relying party")]
    WitNotYetValid { claim: &'static str, at: u64, now: u64 },
    #[error("the WIT's `{claim}` {reason}")]
    WitClaim { claim: &'static str, reason: String },
    #[error("proof of possession: {0}")]
    ProofHeader(String),
    #[error("the WPT is not a well-formed JWS it can verify: {0}")]
    WptMalformed(String),
    #[error("the WPT's `alg` {found} is not the WIT's `cnf.jwk.alg` {expected}")]
    WptAlgorithm { found: String, expected: &'static str },
    #[error(
        "the WPT's signature does not verify under the WIT's `cnf` key: it must be signed with the key the WIT was issued for"
    )]
    WptSignature,
    #[error("the WPT's `typ` is {0:?}, not \"wpt+jwt\"")]
    WptType(String),
    #[error("the WPT's `aud` {found} is not this request's target URI {expected:?}")]
    WptAudience { found: String, expected: String },
    #[error("the WPT expired at {exp} (now {now}): make a new WPT for each request")]
    WptExpired { exp: u64, now: u64 },
    #[error("the WPT's `exp` {exp} is more than {max} s after now ({now}): a proof must be short-lived")]
    WptTooLong { exp: u64, max: u64, now: u64 },
    #[error("the WPT's `wth` is not the hash of the Workload-Identity-Token sent with it: it was made for another WIT")]
    WptWitHash,
    #[error("the WPT's `{claim}` {reason}")]
    WptClaim { claim: &'static str, reason: String },
    #[error("this WPT (its `jti`) was already used: make a new WPT with a fresh random `jti` for each request")]
    WptReplayed,
    #[error("the client certificate names {certificate} but the WIT names {wit}: present one workload's credentials")]
    IdentityMismatch { certificate: String, wit: String },
}

impl AuthError {
    /// The check that failed, for machines (`check` in the problem document).
    pub fn check(&self) -> &'static str {
        match self {
            Self::NoCredentials => "credentials",
            Self::CertificateIdentity(_) => "x509.uri-san",
            Self::WitNotAccepted | Self::WitHeader(_) => "wit.header",
            Self::WitMalformed(_) => "wit.jws",
            Self::WitUnknownKey(_) => "wit.kid",
            Self::WitAlgorithm { .. } => "wit.alg",
            Self::WitSignature(_) => "wit.signature",
            Self::WitType(_) => "wit.typ",
            Self::WitExpired { .. } => "wit.exp",
            Self::WitNotYetValid { claim, .. } | Self::WitClaim { claim, .. } => wit_check(claim),
            Self::ProofHeader(_) => "wpt.header",
            Self::WptMalformed(_) => "wpt.jws",
            Self::WptAlgorithm { .. } => "wpt.alg",
            Self::WptSignature => "wpt.signature",
            Self::WptType(_) => "wpt.typ",
            Self::WptAudience { .. } => "wpt.aud",
            Self::WptExpired { .. } | Self::WptTooLong { .. } => "wpt.exp",
            Self::WptWitHash => "wpt.wth",
            Self::WptClaim { claim, .. } => wpt_check(claim),
            Self::WptReplayed => "wpt.jti",
            Self::IdentityMismatch { .. } => "identity",
        }
    }
}

fn wit_check(claim: &str) -> &'static str {
    match claim {
        "sub" => "wit.sub",
        "exp" => "wit.exp",
        "nbf" => "wit.nbf",
        "iat" => "wit.iat",
        _ => "wit.cnf",
    }
}

fn wpt_check(claim: &str) -> &'static str {
    match claim {
        "aud" => "wpt.aud",
        "exp" => "wpt.exp",
        "wth" => "wpt.wth",
        "tth" => "wpt.tth",
        "oth" => "wpt.oth",
        _ => "wpt.jti",
    }
}
