//! Attestation results as EAR (draft-ietf-rats-ear, Veraison's profile
//! `tag:github.com,2023:veraison/ear`): the Verifier's signed statement that Evidence was
//! appraised, with what status, under which policy, and for which key. Two encodings of the
//! same claims:
//!
//! - JWT (JWS compact, ES384, `typ` `JWT`): JSON names (`eat_profile`, `iat`,
//!   `ear.verifier-id`, `submods`, `ear.status` as a name such as `"affirming"`, …);
//! - CWT (COSE_Sign1, tag 18, protected `alg` ES384 = -35): CBOR labels (265 profile, 6 iat,
//!   4 exp, 1004 verifier-id, 266 submods, 10 nonce; in a submod 1000 status as an integer,
//!   1001 trustworthiness vector with keys 0..7, 1003 policy id; Veraison's extensions −70001
//!   policy claims and −70002 key attestation).
//!
//! The key binding (mechanism B): each submod may carry `ear.veraison.key-attestation`
//! `{"akpub": base64url(DER SubjectPublicKeyInfo)}` (CBOR `{0: bstr}`): the Credential
//! Authority issues only for that key. `ear.veraison.policy-claims` carries what the
//! appraisal policy concluded (the Stable workload identifier and business claims).
//!
//! Encodings follow Veraison's `ear` libraries (Go and Rust), so their verifiers read ours.

use std::collections::BTreeMap;
use std::time::SystemTime;

use coset::cbor::value::Value as Cbor;
use coset::{CborSerializable, CoseSign1, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable, iana};
use p384::ecdsa::signature::{Signer, Verifier};
use p384::ecdsa::{Signature, SigningKey, VerifyingKey};
use serde_json::{Map, Value as Json, json};

use crate::jose::{self, JoseError};

/// The EAR profile this module writes and accepts.
pub const EAR_PROFILE: &str = "tag:github.com,2023:veraison/ear";
/// The JWT `typ` of an EAR (Veraison's verifiers write plain `JWT`).
pub const EAR_JWT_TYP: &str = "JWT";
/// A CWT larger than this is refused before it is decoded.
pub const MAX_CWT_LEN: usize = 64 * 1024;

mod label {
    pub const IAT: i64 = 6;
    pub const EXP: i64 = 4;
    pub const NONCE: i64 = 10;
    pub const PROFILE: i64 = 265;
    pub const SUBMODS: i64 = 266;
    pub const STATUS: i64 = 1000;
    pub const TRUST_VECTOR: i64 = 1001;
    pub const POLICY_ID: i64 = 1003;
    pub const VERIFIER_ID: i64 = 1004;
    pub const POLICY_CLAIMS: i64 = -70001;
    pub const KEY_ATTESTATION: i64 = -70002;
}

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

/// AR4SI trustworthiness tier: the overall status of an appraisal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    None,
    Affirming,
    Warning,
    Contraindicated,
}

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
        [Status::None, Status::Affirming, Status::Warning, Status::Contraindicated]
            .into_iter()
            .find(|s| s.code() == code)
    }

    fn from_name(name: &str) -> Option<Self> {
        [Status::None, Status::Affirming, Status::Warning, Status::Contraindicated]
            .into_iter()
            .find(|s| s.name() == name)
    }

    /// The tier a claim value falls in (AR4SI: −1..=1 none, 2..=31 affirming, 32..=95
    /// warning, 96..=127 contraindicated).
    pub fn of_claim(value: i8) -> Self {
        match value {
            2..=31 => Status::Affirming,
            32..=95 => Status::Warning,
            96..=127 => Status::Contraindicated,
            _ => Status::None,
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
    /// hardware: not recognised (e.g. the simulated TEE).
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

/// One appraised component (`submods` entry).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Appraisal {
    pub status: Option<Status>,
    pub trust_vector: TrustVector,
    /// `ear.appraisal-policy-id`: which policy (and version) decided.
    pub policy_id: Option<String>,
    /// `ear.veraison.key-attestation`: the DER SubjectPublicKeyInfo of the attested key.
    pub key_spki_der: Option<Vec<u8>>,
    /// `ear.veraison.policy-claims`: what the appraisal policy concluded (JSON values only).
    pub policy_claims: Map<String, Json>,
}

/// Identifies the Verifier that produced the EAR.
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
    /// `eat_nonce`: the nonce the Evidence was fresh for (8..=64 bytes per RFC 9711).
    pub nonce: Option<Vec<u8>>,
}

impl Appraisal {
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

    // ---- JSON / JWT ----

    /// The JSON claims set.
    pub fn to_json(&self) -> Map<String, Json> {
        let mut m = Map::new();
        m.insert("eat_profile".into(), EAR_PROFILE.into());
        m.insert("iat".into(), self.iat.into());
        if let Some(exp) = self.exp {
            m.insert("exp".into(), exp.into());
        }
        m.insert(
            "ear.verifier-id".into(),
            json!({ "build": self.verifier_id.build, "developer": self.verifier_id.developer }),
        );
        let submods: Map<String, Json> = self.submods.iter().map(|(k, a)| (k.clone(), appraisal_json(a))).collect();
        m.insert("submods".into(), submods.into());
        if let Some(nonce) = &self.nonce {
            m.insert("eat_nonce".into(), jose::b64url(nonce).into());
        }
        m
    }

    /// Reads the JSON claims set.
    pub fn from_json(m: &Map<String, Json>) -> Result<Self, EarError> {
        let profile = m.get("eat_profile").and_then(Json::as_str).unwrap_or("(absent)");
        if profile != EAR_PROFILE {
            return Err(EarError::Profile(profile.into()));
        }
        let vid = m.get("ear.verifier-id").and_then(Json::as_object).ok_or_else(|| missing("ear.verifier-id"))?;
        let submods = m.get("submods").and_then(Json::as_object).ok_or_else(|| missing("submods"))?;
        let submods = submods
            .iter()
            .map(|(k, v)| Ok((k.clone(), appraisal_from_json(k, v)?)))
            .collect::<Result<BTreeMap<_, _>, EarError>>()?;
        let nonce = match m.get("eat_nonce") {
            None => None,
            Some(Json::String(s)) => Some(jose::b64url_decode(s, "eat_nonce")?),
            Some(other) => return Err(malformed(format!("eat_nonce is {other}, expected a base64url string"))),
        };
        let ear = Self {
            iat: m.get("iat").and_then(Json::as_u64).ok_or_else(|| missing("iat"))?,
            exp: m.get("exp").map(|v| v.as_u64().ok_or_else(|| malformed(format!("exp is {v}")))).transpose()?,
            verifier_id: VerifierId {
                build: vid.get("build").and_then(Json::as_str).ok_or_else(|| missing("ear.verifier-id.build"))?.into(),
                developer: vid
                    .get("developer")
                    .and_then(Json::as_str)
                    .ok_or_else(|| missing("ear.verifier-id.developer"))?
                    .into(),
            },
            submods,
            nonce,
        };
        ear.validate()
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

    // ---- CBOR / CWT ----

    /// The CBOR claims set.
    pub fn to_cbor(&self) -> Result<Cbor, EarError> {
        let mut m =
            vec![(int(label::PROFILE), Cbor::Text(EAR_PROFILE.into())), (int(label::IAT), int(self.iat as i64))];
        if let Some(exp) = self.exp {
            m.push((int(label::EXP), int(exp as i64)));
        }
        m.push((
            int(label::VERIFIER_ID),
            Cbor::Map(vec![
                (int(0), Cbor::Text(self.verifier_id.developer.clone())),
                (int(1), Cbor::Text(self.verifier_id.build.clone())),
            ]),
        ));
        let submods = self
            .submods
            .iter()
            .map(|(k, a)| Ok((Cbor::Text(k.clone()), appraisal_cbor(a)?)))
            .collect::<Result<Vec<_>, EarError>>()?;
        m.push((int(label::SUBMODS), Cbor::Map(submods)));
        if let Some(nonce) = &self.nonce {
            m.push((int(label::NONCE), Cbor::Bytes(nonce.clone())));
        }
        Ok(Cbor::Map(m))
    }

    /// Reads the CBOR claims set.
    pub fn from_cbor(value: &Cbor) -> Result<Self, EarError> {
        let m = as_map(value, "the claims set")?;
        let profile = get(m, label::PROFILE).and_then(Cbor::as_text).unwrap_or("(absent)");
        if profile != EAR_PROFILE {
            return Err(EarError::Profile(profile.into()));
        }
        let vid = as_map(get(m, label::VERIFIER_ID).ok_or_else(|| missing("ear.verifier-id (1004)"))?, "verifier-id")?;
        let text = |m: &[(Cbor, Cbor)], k: i64, what: &str| {
            get(m, k).and_then(Cbor::as_text).map(str::to_string).ok_or_else(|| missing(what))
        };
        let submods = as_map(get(m, label::SUBMODS).ok_or_else(|| missing("submods (266)"))?, "submods")?
            .iter()
            .map(|(k, v)| {
                let name = k.as_text().ok_or_else(|| malformed("a submod name is not text".into()))?;
                Ok((name.to_string(), appraisal_from_cbor(name, v)?))
            })
            .collect::<Result<BTreeMap<_, _>, EarError>>()?;
        let ear = Self {
            iat: get(m, label::IAT).and_then(as_u64).ok_or_else(|| missing("iat (6)"))?,
            exp: get(m, label::EXP)
                .map(|v| as_u64(v).ok_or_else(|| malformed("exp (4) is not a time".into())))
                .transpose()?,
            verifier_id: VerifierId {
                developer: text(vid, 0, "verifier-id developer (0)")?,
                build: text(vid, 1, "verifier-id build (1)")?,
            },
            submods,
            nonce: get(m, label::NONCE)
                .map(|v| v.as_bytes().cloned().ok_or_else(|| malformed("eat_nonce (10) is not a byte string".into())))
                .transpose()?,
        };
        ear.validate()
    }

    /// Signs the EAR as a CWT: COSE_Sign1 (tag 18), protected header `alg` ES384.
    pub fn sign_cwt(&self, key: &SigningKey, kid: Option<&[u8]>) -> Result<Vec<u8>, EarError> {
        self.clone().validate()?;
        let mut payload = Vec::new();
        coset::cbor::ser::into_writer(&self.to_cbor()?, &mut payload).map_err(|e| EarError::Encode(e.to_string()))?;
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
            return Err(malformed("ear.verifier-id needs a build and a developer".into()));
        }
        if let Some(nonce) = &self.nonce
            && !(8..=64).contains(&nonce.len())
        {
            return Err(malformed(format!("eat_nonce is {} bytes; RFC 9711 allows 8..=64", nonce.len())));
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
}

fn missing(what: &str) -> EarError {
    EarError::Malformed(format!("{what} is missing"))
}

fn malformed(what: String) -> EarError {
    EarError::Malformed(what)
}

fn appraisal_json(a: &Appraisal) -> Json {
    let mut m = Map::new();
    m.insert("ear.status".into(), a.status.unwrap_or(Status::None).name().into());
    if !a.trust_vector.is_empty() {
        let v: Map<String, Json> = VECTOR_NAMES
            .iter()
            .zip(a.trust_vector.slots())
            .filter_map(|(name, v)| v.map(|v| (name.to_string(), Json::from(v))))
            .collect();
        m.insert("ear.trustworthiness-vector".into(), v.into());
    }
    if let Some(id) = &a.policy_id {
        m.insert("ear.appraisal-policy-id".into(), id.clone().into());
    }
    if let Some(der) = &a.key_spki_der {
        m.insert("ear.veraison.key-attestation".into(), json!({ "akpub": jose::b64url(der) }));
    }
    if !a.policy_claims.is_empty() {
        m.insert("ear.veraison.policy-claims".into(), a.policy_claims.clone().into());
    }
    m.into()
}

fn appraisal_from_json(name: &str, v: &Json) -> Result<Appraisal, EarError> {
    let m = v.as_object().ok_or_else(|| malformed(format!("submod {name:?} is not an object")))?;
    let status = match m.get("ear.status") {
        Some(Json::String(s)) => {
            Some(Status::from_name(s).ok_or_else(|| malformed(format!("submod {name:?}: unknown ear.status {s:?}")))?)
        }
        Some(other) => return Err(malformed(format!("submod {name:?}: ear.status is {other}"))),
        None => return Err(missing(&format!("submod {name:?}: ear.status"))),
    };
    let mut slots = [None; 8];
    if let Some(tv) = m.get("ear.trustworthiness-vector") {
        let tv = tv.as_object().ok_or_else(|| malformed(format!("submod {name:?}: the vector is not an object")))?;
        for (key, value) in tv {
            let i = VECTOR_NAMES
                .iter()
                .position(|n| n == key)
                .ok_or_else(|| malformed(format!("submod {name:?}: unknown trustworthiness claim {key:?}")))?;
            slots[i] = Some(claim_value(value.as_i64(), name, key)?);
        }
    }
    let key_spki_der = match m.get("ear.veraison.key-attestation") {
        None => None,
        Some(ka) => {
            let akpub = ka.get("akpub").and_then(Json::as_str).ok_or_else(|| missing("key-attestation akpub"))?;
            Some(jose::b64url_decode(akpub, "akpub")?)
        }
    };
    Ok(Appraisal {
        status,
        trust_vector: TrustVector::from_slots(slots),
        policy_id: m.get("ear.appraisal-policy-id").and_then(Json::as_str).map(str::to_string),
        key_spki_der,
        policy_claims: m.get("ear.veraison.policy-claims").and_then(Json::as_object).cloned().unwrap_or_default(),
    })
}

fn claim_value(v: Option<i64>, submod: &str, key: &str) -> Result<i8, EarError> {
    v.and_then(|v| i8::try_from(v).ok())
        .ok_or_else(|| malformed(format!("submod {submod:?}: trustworthiness claim {key:?} is not an int8")))
}

fn appraisal_cbor(a: &Appraisal) -> Result<Cbor, EarError> {
    let mut m = vec![(int(label::STATUS), int(a.status.unwrap_or(Status::None).code()))];
    if !a.trust_vector.is_empty() {
        let v =
            (0i64..).zip(a.trust_vector.slots()).filter_map(|(k, v)| v.map(|v| (int(k), int(i64::from(v))))).collect();
        m.push((int(label::TRUST_VECTOR), Cbor::Map(v)));
    }
    if let Some(id) = &a.policy_id {
        m.push((int(label::POLICY_ID), Cbor::Text(id.clone())));
    }
    if !a.policy_claims.is_empty() {
        m.push((int(label::POLICY_CLAIMS), json_to_cbor(&Json::Object(a.policy_claims.clone()))?));
    }
    if let Some(der) = &a.key_spki_der {
        m.push((int(label::KEY_ATTESTATION), Cbor::Map(vec![(int(0), Cbor::Bytes(der.clone()))])));
    }
    Ok(Cbor::Map(m))
}

fn appraisal_from_cbor(name: &str, v: &Cbor) -> Result<Appraisal, EarError> {
    let m = as_map(v, "a submod")?;
    let code = get(m, label::STATUS)
        .and_then(as_i64)
        .ok_or_else(|| missing(&format!("submod {name:?}: ear.status (1000)")))?;
    let status =
        Status::from_code(code).ok_or_else(|| malformed(format!("submod {name:?}: unknown ear.status {code}")))?;
    let mut slots = [None; 8];
    if let Some(tv) = get(m, label::TRUST_VECTOR) {
        for (k, v) in as_map(tv, "the trustworthiness vector")? {
            let i = as_i64(k)
                .and_then(|k| usize::try_from(k).ok())
                .filter(|k| *k < 8)
                .ok_or_else(|| malformed(format!("submod {name:?}: unknown trustworthiness claim key {k:?}")))?;
            slots[i] = Some(claim_value(as_i64(v), name, VECTOR_NAMES[i])?);
        }
    }
    let key_spki_der = match get(m, label::KEY_ATTESTATION) {
        None => None,
        Some(ka) => Some(
            get(as_map(ka, "key-attestation")?, 0)
                .and_then(Cbor::as_bytes)
                .cloned()
                .ok_or_else(|| missing("key-attestation akpub (0)"))?,
        ),
    };
    let policy_claims = match get(m, label::POLICY_CLAIMS) {
        None => Map::new(),
        Some(v) => match cbor_to_json(v)? {
            Json::Object(o) => o,
            _ => return Err(malformed(format!("submod {name:?}: policy claims are not a map"))),
        },
    };
    Ok(Appraisal {
        status: Some(status),
        trust_vector: TrustVector::from_slots(slots),
        policy_id: get(m, label::POLICY_ID).and_then(Cbor::as_text).map(str::to_string),
        key_spki_der,
        policy_claims,
    })
}

fn int(v: i64) -> Cbor {
    Cbor::Integer(v.into())
}

fn as_i64(v: &Cbor) -> Option<i64> {
    v.as_integer().and_then(|i| i64::try_from(i).ok())
}

fn as_u64(v: &Cbor) -> Option<u64> {
    v.as_integer().and_then(|i| u64::try_from(i).ok())
}

fn as_map<'a>(v: &'a Cbor, what: &str) -> Result<&'a [(Cbor, Cbor)], EarError> {
    v.as_map().map(Vec::as_slice).ok_or_else(|| malformed(format!("{what} is not a CBOR map")))
}

fn get(m: &[(Cbor, Cbor)], key: i64) -> Option<&Cbor> {
    m.iter().find(|(k, _)| as_i64(k) == Some(key)).map(|(_, v)| v)
}

/// JSON → CBOR for policy claims (strings, booleans, integers, arrays, maps with text keys).
fn json_to_cbor(v: &Json) -> Result<Cbor, EarError> {
    Ok(match v {
        Json::Null => Cbor::Null,
        Json::Bool(b) => Cbor::Bool(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => int(i),
            (None, Some(u), _) => Cbor::Integer(u.into()),
            (None, None, Some(f)) => Cbor::Float(f),
            _ => return Err(EarError::Encode(format!("number {n} has no CBOR form"))),
        },
        Json::String(s) => Cbor::Text(s.clone()),
        Json::Array(a) => Cbor::Array(a.iter().map(json_to_cbor).collect::<Result<_, _>>()?),
        Json::Object(o) => Cbor::Map(
            o.iter().map(|(k, v)| Ok((Cbor::Text(k.clone()), json_to_cbor(v)?))).collect::<Result<_, EarError>>()?,
        ),
    })
}

/// CBOR → JSON for policy claims; anything without a JSON form (bytes, tags, non-text keys) is
/// refused.
fn cbor_to_json(v: &Cbor) -> Result<Json, EarError> {
    Ok(match v {
        Cbor::Null => Json::Null,
        Cbor::Bool(b) => Json::Bool(*b),
        Cbor::Integer(i) => match (i64::try_from(*i), u64::try_from(*i)) {
            (Ok(v), _) => v.into(),
            (_, Ok(v)) => v.into(),
            _ => return Err(malformed("a policy claim integer is out of range".into())),
        },
        Cbor::Float(f) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .ok_or_else(|| malformed("a policy claim is not a finite number".into()))?,
        Cbor::Text(s) => Json::String(s.clone()),
        Cbor::Array(a) => Json::Array(a.iter().map(cbor_to_json).collect::<Result<_, _>>()?),
        Cbor::Map(m) => Json::Object(
            m.iter()
                .map(|(k, v)| {
                    let k = k.as_text().ok_or_else(|| malformed("a policy claim key is not text".into()))?;
                    Ok((k.to_string(), cbor_to_json(v)?))
                })
                .collect::<Result<_, EarError>>()?,
        ),
        _ => return Err(malformed("a policy claim has no JSON form (bytes or a tag)".into())),
    })
}

#[cfg(test)]
mod tests;
