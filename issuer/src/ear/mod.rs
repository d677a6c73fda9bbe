//! Attestation results as EAR, draft-ietf-rats-ear-04 (profile `tag:ietf.org,2026:rats/ear#04`,
//! what Veraison's `ear` 0.6 implements): the Verifier's signed statement that Evidence was
//! appraised, with what status, under which policies, and for which key. Two encodings of the
//! same claims (`json.rs`, `cbor.rs`):
//!
//! - JWT (JWS compact, ES384, `typ` `eat+jwt`: RFC 9782's `application/eat+jwt` in the short
//!   form RFC 7515 §4.1.9 recommends): `eat_profile`, `iat`, `exp`, `ear_verifier_id` {build,
//!   developer}, `ear_status` (a tier name), `submods`, `eat_nonce`;
//! - CWT (COSE_Sign1, tag 18, protected `alg` ES384; media type `application/eat+cwt`, not in
//!   a header, which Veraison's reader would refuse): the draft's CBOR labels (265 profile, 6 iat, 4 exp, 1004
//!   verifier id {0 developer, 1 build}, 1000 status, 266 submods, 10 nonce).
//!
//! In a submod: `ear_status` (1000), `ear_trustworthiness_vector` (1001, keys 0..7),
//! `ear_appraisal_policy_ids` (1003, a non-empty array), `eat_nonce` (10, the Evidence's
//! nonce), `ear_verifier_claims` (1006: what the appraisal policy concluded — the Stable
//! workload identifier, business claims, binding — and `tacra_freshness`, the freshness input
//! the Verifier appraised, which draft-novak-rats-tacra requires the results to report), and
//! Veraison's key binding `ear_veraison_key_attestation` (−70002, `{akpub: DER
//! SubjectPublicKeyInfo}`): the Credential Authority issues only for that key (mechanism B).
//!
//! Statuses are never asserted: a submod's `ear_status` is the worst tier of its
//! trustworthiness vector (or worse, when the Verifier says so), and the top-level `ear_status`
//! the worst of the submods, as the draft requires (§3, §3.1). A reader refuses an EAR whose
//! status claims better than its vector.

mod cbor;
mod json;

use std::collections::BTreeMap;
use std::time::SystemTime;

use coset::cbor::value::Value as Cbor;
use coset::{CborSerializable, CoseSign1, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable, iana};
use p384::ecdsa::signature::{Signer, Verifier};
use p384::ecdsa::{Signature, SigningKey, VerifyingKey};
use serde_json::{Map, Value as Json};

use crate::jose::{self, JoseError};

/// The EAR profile this module writes and accepts (draft-ietf-rats-ear-04 §3).
pub const EAR_PROFILE: &str = "tag:ietf.org,2026:rats/ear#04";
/// The JWT `typ` of an EAR: `application/eat+jwt` (RFC 9782) without `application/`.
pub const EAR_JWT_TYP: &str = "eat+jwt";
/// The media type of an EAR CWT (RFC 9782); a COSE `typ` (RFC 9596) on a CWT must name it.
pub const EAR_CWT_TYP: &str = "application/eat+cwt";
/// A CWT larger than this is refused before it is decoded.
pub const MAX_CWT_LEN: usize = 64 * 1024;
/// The name under `ear_verifier_claims` of the TACRA freshness input.
pub const FRESHNESS_CLAIM: &str = "tacra_freshness";

/// Why an EAR could not be made or was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EarError {
    #[error("{0}")]
    Jose(#[from] JoseError),
    #[error("the CWT is {0} bytes, more than the {MAX_CWT_LEN} accepted")]
    TooLarge(usize),
    #[error("the CWT is not a COSE_Sign1: {0}")]
    Cose(String),
    #[error("the CWT's protected header names algorithm {0}; only ES384 (-35) is accepted")]
    Algorithm(String),
    #[error("the CWT has no payload")]
    NoPayload,
    #[error("the signature does not verify under the Verifier's key")]
    BadSignature,
    #[error("the EAR is malformed: {0}")]
    Malformed(String),
    #[error("the EAR's profile is {0:?}, expected {EAR_PROFILE:?}")]
    Profile(String),
    #[error("the EAR expired at {exp} (now {now})")]
    Expired { exp: u64, now: u64 },
    #[error("cannot encode the EAR: {0}")]
    Encode(String),
}

/// AR4SI trustworthiness tier (draft-ietf-rats-ar4si §3.2), ordered from the best claim to the
/// worst; `None` is "no claim".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    None,
    Affirming,
    Warning,
    Contraindicated,
}

const STATUSES: [Status; 4] = [Status::None, Status::Affirming, Status::Warning, Status::Contraindicated];

impl Status {
    pub fn code(self) -> i64 {
        match self {
            Status::None => 0,
            Status::Affirming => 2,
            Status::Warning => 32,
            Status::Contraindicated => 96,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Status::None => "none",
            Status::Affirming => "affirming",
            Status::Warning => "warning",
            Status::Contraindicated => "contraindicated",
        }
    }

    fn from_code(code: i64) -> Option<Self> {
        STATUSES.into_iter().find(|s| s.code() == code)
    }

    fn from_name(name: &str) -> Option<Self> {
        STATUSES.into_iter().find(|s| s.name() == name)
    }

    /// The tier a claim value falls in (AR4SI §3.2: −1..=1 none; 2..=31 and −32..=−2
    /// affirming; 32..=95 and −96..=−33 warning; 96..=127 and −128..=−97 contraindicated).
    pub fn of_claim(value: i8) -> Self {
        match value {
            -1..=1 => Status::None,
            2..=31 | -32..=-2 => Status::Affirming,
            32..=95 | -96..=-33 => Status::Warning,
            _ => Status::Contraindicated,
        }
    }
}

/// The AR4SI trustworthiness vector; `None` means no claim is made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrustVector {
    pub instance_identity: Option<i8>,
    pub configuration: Option<i8>,
    pub executables: Option<i8>,
    pub file_system: Option<i8>,
    pub hardware: Option<i8>,
    pub runtime_opaque: Option<i8>,
    pub storage_opaque: Option<i8>,
    pub sourced_data: Option<i8>,
}

/// AR4SI claim values this issuer uses.
pub mod claim {
    /// instance-identity: the Attesting Environment is recognised and not known compromised.
    pub const TRUSTWORTHY_INSTANCE: i8 = 2;
    /// configuration: a known and approved configuration.
    pub const APPROVED_CONFIG: i8 = 2;
    /// executables: only approved executables were loaded (boot and run time).
    pub const APPROVED_RUNTIME: i8 = 2;
    /// executables: not recognised (no reference value matched).
    pub const UNRECOGNIZED_RUNTIME: i8 = 33;
    /// hardware: genuine, passed its hardware/firmware verification.
    pub const GENUINE_HARDWARE: i8 = 2;
    /// hardware: genuine but with known vulnerabilities (e.g. the TCB is below the minimum).
    pub const UNSAFE_HARDWARE: i8 = 32;
    /// hardware: not recognised (e.g. the simulated TEE): contraindicated.
    pub const UNRECOGNIZED_HARDWARE: i8 = 97;
    /// runtime-opaque: memory encrypted and opaque to the host (a confidential VM).
    pub const ENCRYPTED_MEMORY_RUNTIME: i8 = 2;
}

const VECTOR_NAMES: [&str; 8] = [
    "instance-identity",
    "configuration",
    "executables",
    "file-system",
    "hardware",
    "runtime-opaque",
    "storage-opaque",
    "sourced-data",
];

impl TrustVector {
    fn slots(&self) -> [Option<i8>; 8] {
        [
            self.instance_identity,
            self.configuration,
            self.executables,
            self.file_system,
            self.hardware,
            self.runtime_opaque,
            self.storage_opaque,
            self.sourced_data,
        ]
    }

    fn from_slots(s: [Option<i8>; 8]) -> Self {
        Self {
            instance_identity: s[0],
            configuration: s[1],
            executables: s[2],
            file_system: s[3],
            hardware: s[4],
            runtime_opaque: s[5],
            storage_opaque: s[6],
            sourced_data: s[7],
        }
    }

    /// What the TWI Verifier affirms of a launch its policy admitted: a recognised instance
    /// running approved executables in memory opaque to the host, on `hardware` (a [`claim`]:
    /// genuine, or unrecognised for the simulated TEE); nothing else is claimed.
    pub fn admitted_launch(hardware: i8) -> Self {
        Self {
            instance_identity: Some(claim::TRUSTWORTHY_INSTANCE),
            executables: Some(claim::APPROVED_RUNTIME),
            hardware: Some(hardware),
            runtime_opaque: Some(claim::ENCRYPTED_MEMORY_RUNTIME),
            ..Self::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.slots().iter().all(Option::is_none)
    }

    /// The worst tier among the claims made (AR4SI: the status is at most this good).
    pub fn worst(&self) -> Status {
        self.slots().iter().flatten().map(|v| Status::of_claim(*v)).max().unwrap_or(Status::None)
    }
}

/// The TACRA freshness kinds (draft-novak-rats-tacra): which freshness element the Evidence
/// was bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreshnessKind {
    PresentNonce,
    PresentEpoch,
    AbsentEpoch,
    AbsentTimestamp,
    AbsentNone,
}

const FRESHNESS_KINDS: [FreshnessKind; 5] = [
    FreshnessKind::PresentNonce,
    FreshnessKind::PresentEpoch,
    FreshnessKind::AbsentEpoch,
    FreshnessKind::AbsentTimestamp,
    FreshnessKind::AbsentNone,
];

impl FreshnessKind {
    pub fn name(self) -> &'static str {
        match self {
            FreshnessKind::PresentNonce => "present-nonce",
            FreshnessKind::PresentEpoch => "present-epoch",
            FreshnessKind::AbsentEpoch => "absent-epoch",
            FreshnessKind::AbsentTimestamp => "absent-timestamp",
            FreshnessKind::AbsentNone => "absent-none",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        FRESHNESS_KINDS.into_iter().find(|k| k.name() == name)
    }
}

/// The freshness input the Verifier appraised: its kind and the element's bytes (the handle,
/// the epoch marker, the 8-byte timestamp, or nothing), as TACRA's binding input takes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FreshnessInput {
    pub kind: FreshnessKind,
    pub value: Vec<u8>,
}

/// One appraised component (`submods` entry).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Appraisal {
    /// A tier the Verifier sets *worse* than its vector implies; `None`: the vector's worst
    /// tier. The status written is always the worse of the two ([`Appraisal::status`]).
    pub status: Option<Status>,
    pub trust_vector: TrustVector,
    /// `ear_appraisal_policy_ids`: the policies (and versions) applied, in order.
    pub policy_ids: Vec<String>,
    /// `eat_nonce`: the nonce of the Evidence this appraisal is about (8..=64 bytes).
    pub nonce: Option<Vec<u8>>,
    /// `ear_veraison_key_attestation`: the DER SubjectPublicKeyInfo of the attested key.
    pub key_spki_der: Option<Vec<u8>>,
    /// `ear_verifier_claims`: what the appraisal policy concluded (JSON values only), less
    /// the freshness input, which is [`Appraisal::freshness`].
    pub verifier_claims: Map<String, Json>,
    /// `ear_verifier_claims.tacra_freshness`: the freshness input appraised.
    pub freshness: Option<FreshnessInput>,
}

/// Identifies the Verifier that produced the EAR (AR4SI §3.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierId {
    pub build: String,
    pub developer: String,
}

/// An EAT Attestation Result.
#[derive(Clone, Debug, PartialEq)]
pub struct Ear {
    pub iat: u64,
    /// Not in every EAR; the Credential Authority refuses an expired one (mechanism B).
    pub exp: Option<u64>,
    pub verifier_id: VerifierId,
    pub submods: BTreeMap<String, Appraisal>,
    /// `eat_nonce`: the nonce the result is fresh for (8..=64 bytes per RFC 9711).
    pub nonce: Option<Vec<u8>>,
}

impl Appraisal {
    /// The status this appraisal carries: the worse of the Verifier's own and its vector's.
    pub fn status(&self) -> Status {
        self.status.unwrap_or(Status::None).max(self.trust_vector.worst())
    }

    /// Binds the SEC1 P-384 key `public_key_sec1` (as the Evidence carried it).
    pub fn bind_key(mut self, public_key_sec1: &[u8]) -> Result<Self, EarError> {
        use p384::pkcs8::EncodePublicKey;
        let key = p384::PublicKey::from_sec1_bytes(public_key_sec1)
            .map_err(|_| EarError::Malformed("the key to bind is not a P-384 point".into()))?;
        let der = key.to_public_key_der().map_err(|e| EarError::Encode(e.to_string()))?;
        self.key_spki_der = Some(der.as_bytes().to_vec());
        Ok(self)
    }

    /// The bound key, if any.
    pub fn bound_key(&self) -> Result<Option<p384::PublicKey>, EarError> {
        use p384::pkcs8::DecodePublicKey;
        self.key_spki_der
            .as_deref()
            .map(|der| {
                p384::PublicKey::from_public_key_der(der)
                    .map_err(|_| EarError::Malformed("the attested key is not a P-384 SubjectPublicKeyInfo".into()))
            })
            .transpose()
    }

    /// The status as read, kept only where it is worse than the vector's (the inverse of
    /// [`Appraisal::status`]); refuses a status better than the vector.
    fn read_status(name: &str, read: Status, vector: &TrustVector) -> Result<Option<Status>, EarError> {
        let worst = vector.worst();
        if read < worst {
            return Err(malformed(format!(
                "submod {name:?}: ear_status {} is better than its trustworthiness vector ({})",
                read.name(),
                worst.name()
            )));
        }
        Ok((read != worst).then_some(read))
    }
}

impl Ear {
    /// An EAR issued at `now` with one submod.
    pub fn new(verifier_id: VerifierId, now: SystemTime, submod: &str, appraisal: Appraisal) -> Self {
        Self {
            iat: jose::unix_seconds(now),
            exp: None,
            verifier_id,
            submods: BTreeMap::from([(submod.to_string(), appraisal)]),
            nonce: None,
        }
    }

    /// The overall status: the worst of the submods' (draft-ietf-rats-ear-04 §3).
    pub fn status(&self) -> Status {
        self.submods.values().map(Appraisal::status).max().unwrap_or(Status::None)
    }

    /// Signs the EAR as a JWT with the Verifier's key.
    pub fn sign_jwt(&self, key: &SigningKey, kid: Option<&str>) -> Result<String, EarError> {
        self.clone().validate()?;
        Ok(jose::sign_compact(key, EAR_JWT_TYP, kid, &self.to_json())?)
    }

    /// Verifies an EAR JWT under the Verifier's key, and that it has not expired at `now`.
    pub fn verify_jwt(token: &str, key: &VerifyingKey, now: SystemTime) -> Result<Self, EarError> {
        let verified = jose::verify_compact(token, key, EAR_JWT_TYP)?;
        Self::from_json(&verified.claims)?.check_expiry(now)
    }

    /// Signs the EAR as a CWT: COSE_Sign1 (tag 18), protected header `alg` ES384 and `typ`.
    pub fn sign_cwt(&self, key: &SigningKey, kid: Option<&[u8]>) -> Result<Vec<u8>, EarError> {
        self.clone().validate()?;
        let mut payload = Vec::new();
        coset::cbor::ser::into_writer(&self.to_cbor()?, &mut payload).map_err(|e| EarError::Encode(e.to_string()))?;
        // No COSE `typ` header: Veraison's COSE decoder (cose-rust) refuses header labels it
        // does not know, RFC 9596's typ (16) among them; the CWT's type travels as its media
        // type ([`EAR_CWT_TYP`]). A `typ` a reader finds must name that media type.
        let mut protected = HeaderBuilder::new().algorithm(iana::Algorithm::ES384);
        if let Some(kid) = kid {
            protected = protected.key_id(kid.to_vec());
        }
        let mut failure = None;
        let sign1 = CoseSign1Builder::new()
            .protected(protected.build())
            .payload(payload)
            .create_signature(b"", |tbs| match key.try_sign(tbs) {
                Ok(sig) => {
                    let sig: Signature = sig;
                    crate::metrics::signed();
                    sig.to_bytes().to_vec()
                }
                Err(e) => {
                    failure = Some(e.to_string());
                    Vec::new()
                }
            })
            .build();
        if let Some(e) = failure {
            return Err(EarError::Encode(format!("the Verifier's key failed: {e}")));
        }
        sign1.to_tagged_vec().map_err(|e| EarError::Encode(e.to_string()))
    }

    /// Verifies an EAR CWT (COSE_Sign1, tagged or not) under the Verifier's key, and that it
    /// has not expired at `now`.
    pub fn verify_cwt(bytes: &[u8], key: &VerifyingKey, now: SystemTime) -> Result<Self, EarError> {
        if bytes.len() > MAX_CWT_LEN {
            return Err(EarError::TooLarge(bytes.len()));
        }
        let sign1 = CoseSign1::from_tagged_slice(bytes)
            .or_else(|_| CoseSign1::from_slice(bytes))
            .map_err(|e| EarError::Cose(e.to_string()))?;
        match &sign1.protected.header.alg {
            Some(coset::RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES384)) => {}
            other => return Err(EarError::Algorithm(format!("{other:?}"))),
        }
        if !sign1.protected.header.crit.is_empty() {
            return Err(EarError::Cose("critical header parameters are not understood".into()));
        }
        cbor::check_typ(&sign1.protected.header)?;
        sign1.verify_signature(b"", |sig, tbs| {
            let sig = Signature::from_slice(sig).map_err(|_| EarError::BadSignature)?;
            key.verify(tbs, &sig).map_err(|_| EarError::BadSignature)
        })?;
        let payload = sign1.payload.as_deref().ok_or(EarError::NoPayload)?;
        let value: Cbor =
            coset::cbor::de::from_reader(payload).map_err(|e| malformed(format!("the payload is not CBOR: {e}")))?;
        Self::from_cbor(&value)?.check_expiry(now)
    }

    fn validate(self) -> Result<Self, EarError> {
        if self.submods.is_empty() {
            return Err(malformed("submods is empty: an EAR appraises at least one component".into()));
        }
        if self.verifier_id.build.is_empty() || self.verifier_id.developer.is_empty() {
            return Err(malformed("ear_verifier_id needs a build and a developer".into()));
        }
        let nonces = self.submods.values().map(|a| a.nonce.as_ref());
        for nonce in std::iter::once(self.nonce.as_ref()).chain(nonces).flatten() {
            if !(8..=64).contains(&nonce.len()) {
                return Err(malformed(format!("eat_nonce is {} bytes; RFC 9711 allows 8..=64", nonce.len())));
            }
        }
        if let Some((name, _)) = self.submods.iter().find(|(_, a)| a.verifier_claims.contains_key(FRESHNESS_CLAIM)) {
            return Err(malformed(format!(
                "submod {name:?}: {FRESHNESS_CLAIM} is set through the freshness field, not as a verifier claim"
            )));
        }
        Ok(self)
    }

    fn check_expiry(self, now: SystemTime) -> Result<Self, EarError> {
        let now = jose::unix_seconds(now);
        match self.exp {
            Some(exp) if now >= exp => Err(EarError::Expired { exp, now }),
            _ => Ok(self),
        }
    }

    /// The overall status as read must be no better than the submods' worst (§3); `none`
    /// (no overall claim) is allowed.
    fn check_overall(self, read: Option<Status>) -> Result<Self, EarError> {
        match read {
            Some(status) if status != Status::None && status < self.status() => Err(malformed(format!(
                "ear_status {} is better than the worst submod status ({})",
                status.name(),
                self.status().name()
            ))),
            _ => Ok(self),
        }
    }
}

fn missing(what: &str) -> EarError {
    EarError::Malformed(format!("{what} is missing"))
}

fn malformed(what: String) -> EarError {
    EarError::Malformed(what)
}

fn claim_value(v: Option<i64>, submod: &str, key: &str) -> Result<i8, EarError> {
    v.and_then(|v| i8::try_from(v).ok())
        .ok_or_else(|| malformed(format!("submod {submod:?}: trustworthiness claim {key:?} is not an int8")))
}

#[cfg(test)]
mod tests;
