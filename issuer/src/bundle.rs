//! The trust domain's SPIFFE bundle (SPIFFE Trust Domain and Bundle §4, "SPIFFE Bundle
//! Format"): what a relying party, or another trust domain federating with this one, loads to
//! verify this issuer's credentials.
//!
//! A JWK Set (RFC 7517 §5) whose keys each say by `use` which SVID kind they authenticate:
//! the CA that signs X.509 credentials as one `x509-svid` entry whose `x5c` holds exactly that
//! certificate (X509-SVID.md; go-spiffe's parser refuses any other count), and the key that
//! signs WITs as a `wit-svid` entry with its `kid` (WIT-SVID.md). Nothing else: the Verifier's
//! attestation-result key, the log's checkpoint key and the Key Store's receipt key are not
//! SVID authorities, and a bundle reader must never accept a token they signed as a WIT. They
//! stay in `GET /v1/keys`, each under its role's `kid`.
//!
//! `spiffe_refresh_hint` tells readers how often to fetch the bundle again. The bundle carries
//! no `spiffe_sequence`: nothing here rotates keys yet, so there is no sequence to count.

use std::time::Duration;

use base64ct::{Base64, Encoding};
use der::Encode;
use serde_json::{Value, json};

use crate::error::IssuerError;
use crate::issuer::Issuer;
use crate::jose::{Alg, EcPublicKey, Jwk};

/// The path the issuer serves its bundle at (any path is allowed; this one is well known to
/// `twi` and documented in the README).
pub const BUNDLE_PATH: &str = "/.well-known/spiffe-bundle";
/// `use` of an X.509-SVID authority (SPIFFE Trust Domain and Bundle §4.2.1).
pub const X509_SVID_USE: &str = "x509-svid";
/// `use` of a WIT-SVID authority (WIT-SVID.md).
pub const WIT_SVID_USE: &str = "wit-svid";
/// How often a reader should fetch the bundle again.
pub const REFRESH_HINT: Duration = Duration::from_secs(300);

/// The bundle of an X.509 authority (`ca_der`, a P-384 CA certificate) and WIT authorities
/// (`(kid, key)` pairs; each JWK's `crv` and `alg` are its key's: P-256 ES256 or P-384 ES384).
pub fn spiffe_bundle(ca_der: &[u8], wit_keys: &[(&str, EcPublicKey)]) -> Result<Value, IssuerError> {
    let ca = <x509_cert::Certificate as der::Decode>::from_der(ca_der).map_err(IssuerError::certificate)?;
    let spki = ca.tbs_certificate().subject_public_key_info();
    let ca_key = p384::PublicKey::from_sec1_bytes(spki.subject_public_key.raw_bytes())
        .map_err(|e| IssuerError::Certificate(format!("the CA key is not a P-384 key: {e}")))?;
    let mut x509 = serde_json::to_value(Jwk { alg: None, ..Jwk::from_p384(&ca_key) }).map_err(encode)?;
    x509["use"] = X509_SVID_USE.into();
    x509["x5c"] = json!([Base64::encode_string(ca_der)]);
    let mut keys = vec![x509];
    for (kid, key) in wit_keys {
        let mut wit =
            serde_json::to_value(Jwk { kid: Some((*kid).into()), ..Jwk::from_public(*key) }).map_err(encode)?;
        wit["use"] = WIT_SVID_USE.into();
        keys.push(wit);
    }
    Ok(json!({ "keys": keys, "spiffe_refresh_hint": REFRESH_HINT.as_secs() }))
}

fn encode(e: serde_json::Error) -> IssuerError {
    IssuerError::Certificate(format!("cannot encode the trust bundle: {e}"))
}

/// The SPIFFE bundle of the issuer state `dir` whose CA is `ca`, with the WIT key of
/// `wit_alg` (for `twi build`, which writes the relying parties' trust files without opening
/// an issuer under a policy).
pub fn state_bundle(dir: &std::path::Path, ca: &crate::IssuerCa, wit_alg: Alg) -> Result<Value, IssuerError> {
    let wit_keys = crate::ca::published_wit_keys(dir, wit_alg)?;
    let ca_der = ca.certificate().to_der().map_err(IssuerError::certificate)?;
    spiffe_bundle(&ca_der, &wit_keys)
}

impl Issuer {
    /// This issuer's SPIFFE bundle: its CA as the X.509-SVID authority, its WIT keys (the
    /// policy's `wit_alg`, and the previous one's while the state holds it) as WIT-SVID
    /// authorities.
    pub fn trust_bundle(&self) -> Result<Value, IssuerError> {
        let ca = self.authority()?;
        let ca_der = ca.ca().certificate().to_der().map_err(IssuerError::certificate)?;
        spiffe_bundle(&ca_der, &ca.wit_keys())
    }
}
