//! The EAR's CBOR claims set (the CWT form), with draft-ietf-rats-ear-04's labels; the
//! verifier claims are JSON values carried as CBOR (text keys), the freshness value a byte
//! string.

use coset::cbor::value::Value as Cbor;
use serde_json::{Map, Value as Json};

use super::{
    Appraisal, Ear, EarError, FRESHNESS_CLAIM, FreshnessInput, FreshnessKind, Status, TrustVector, VECTOR_NAMES,
    VerifierId, claim_value, malformed, missing,
};

/// The COSE `typ` header parameter (RFC 9596).
pub(super) const COSE_TYP: i64 = 16;

mod label {
    pub const IAT: i64 = 6;
    pub const EXP: i64 = 4;
    pub const NONCE: i64 = 10;
    pub const PROFILE: i64 = 265;
    pub const SUBMODS: i64 = 266;
    pub const STATUS: i64 = 1000;
    pub const TRUST_VECTOR: i64 = 1001;
    pub const POLICY_IDS: i64 = 1003;
    pub const VERIFIER_ID: i64 = 1004;
    pub const VERIFIER_CLAIMS: i64 = 1006;
    pub const KEY_ATTESTATION: i64 = -70002;
}

/// The protected header names the EAR's media type, if it names one at all.
pub(super) fn check_typ(header: &coset::Header) -> Result<(), EarError> {
    let typ = header.rest.iter().find(|(l, _)| *l == coset::Label::Int(COSE_TYP)).map(|(_, v)| v);
    match typ {
        None => Ok(()),
        Some(Cbor::Text(t)) if t.eq_ignore_ascii_case(super::EAR_CWT_TYP) => Ok(()),
        Some(other) => Err(EarError::Cose(format!("typ is {other:?}, expected {:?}", super::EAR_CWT_TYP))),
    }
}

impl Ear {
    /// The CBOR claims set.
    pub fn to_cbor(&self) -> Result<Cbor, EarError> {
        let mut m = vec![
            (int(label::PROFILE), Cbor::Text(super::EAR_PROFILE.into())),
            (int(label::IAT), Cbor::Integer(self.iat.into())),
        ];
        if let Some(exp) = self.exp {
            m.push((int(label::EXP), Cbor::Integer(exp.into())));
        }
        m.push((
            int(label::VERIFIER_ID),
            Cbor::Map(vec![
                (int(0), Cbor::Text(self.verifier_id.developer.clone())),
                (int(1), Cbor::Text(self.verifier_id.build.clone())),
            ]),
        ));
        m.push((int(label::STATUS), int(self.status().code())));
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

    /// Reads the CBOR claims set; unknown claims are ignored, as the draft requires.
    pub fn from_cbor(value: &Cbor) -> Result<Self, EarError> {
        let m = as_map(value, "the claims set")?;
        let profile = get(m, label::PROFILE).and_then(Cbor::as_text).unwrap_or("(absent)");
        if profile != super::EAR_PROFILE {
            return Err(EarError::Profile(profile.into()));
        }
        let vid = as_map(get(m, label::VERIFIER_ID).ok_or_else(|| missing("ear_verifier_id (1004)"))?, "verifier id")?;
        let text =
            |k: i64, what: &str| get(vid, k).and_then(Cbor::as_text).map(str::to_string).ok_or_else(|| missing(what));
        let submods = as_map(get(m, label::SUBMODS).ok_or_else(|| missing("submods (266)"))?, "submods")?
            .iter()
            .map(|(k, v)| {
                let name = k.as_text().ok_or_else(|| malformed("a submod name is not text".into()))?;
                Ok((name.to_string(), appraisal_from_cbor(name, v)?))
            })
            .collect::<Result<_, EarError>>()?;
        let ear = Self {
            iat: get(m, label::IAT).and_then(as_u64).ok_or_else(|| missing("iat (6)"))?,
            exp: get(m, label::EXP)
                .map(|v| as_u64(v).ok_or_else(|| malformed("exp (4) is not a time".into())))
                .transpose()?,
            verifier_id: VerifierId {
                developer: text(0, "ear_verifier_id developer (0)")?,
                build: text(1, "ear_verifier_id build (1)")?,
            },
            submods,
            nonce: nonce_cbor(get(m, label::NONCE))?,
        };
        let overall = get(m, label::STATUS).map(|s| status_cbor(s, "the EAR")).transpose()?;
        ear.validate()?.check_overall(overall)
    }
}

fn nonce_cbor(v: Option<&Cbor>) -> Result<Option<Vec<u8>>, EarError> {
    v.map(|v| v.as_bytes().cloned().ok_or_else(|| malformed("eat_nonce (10) is not a byte string".into()))).transpose()
}

fn status_cbor(v: &Cbor, whose: &str) -> Result<Status, EarError> {
    let code = as_i64(v).ok_or_else(|| malformed(format!("{whose}: ear_status is not an integer")))?;
    Status::from_code(code).ok_or_else(|| malformed(format!("{whose}: unknown ear_status {code}")))
}

fn appraisal_cbor(a: &Appraisal) -> Result<Cbor, EarError> {
    let mut m = vec![(int(label::STATUS), int(a.status().code()))];
    if !a.trust_vector.is_empty() {
        let v =
            (0i64..).zip(a.trust_vector.slots()).filter_map(|(k, v)| v.map(|v| (int(k), int(i64::from(v))))).collect();
        m.push((int(label::TRUST_VECTOR), Cbor::Map(v)));
    }
    if !a.policy_ids.is_empty() {
        m.push((int(label::POLICY_IDS), Cbor::Array(a.policy_ids.iter().cloned().map(Cbor::Text).collect())));
    }
    if let Some(nonce) = &a.nonce {
        m.push((int(label::NONCE), Cbor::Bytes(nonce.clone())));
    }
    let mut claims = match json_to_cbor(&Json::Object(a.verifier_claims.clone()))? {
        Cbor::Map(claims) => claims,
        _ => Vec::new(),
    };
    if let Some(f) = &a.freshness {
        let input = vec![
            (Cbor::Text("kind".into()), Cbor::Text(f.kind.name().into())),
            (Cbor::Text("value".into()), Cbor::Bytes(f.value.clone())),
        ];
        claims.push((Cbor::Text(FRESHNESS_CLAIM.into()), Cbor::Map(input)));
    }
    if !claims.is_empty() {
        m.push((int(label::VERIFIER_CLAIMS), Cbor::Map(claims)));
    }
    if let Some(der) = &a.key_spki_der {
        m.push((int(label::KEY_ATTESTATION), Cbor::Map(vec![(int(0), Cbor::Bytes(der.clone()))])));
    }
    Ok(Cbor::Map(m))
}

fn appraisal_from_cbor(name: &str, v: &Cbor) -> Result<Appraisal, EarError> {
    let m = as_map(v, "a submod")?;
    let whose = format!("submod {name:?}");
    let read =
        status_cbor(get(m, label::STATUS).ok_or_else(|| missing(&format!("{whose}: ear_status (1000)")))?, &whose)?;
    let mut slots = [None; 8];
    if let Some(tv) = get(m, label::TRUST_VECTOR) {
        for (k, v) in as_map(tv, "the trustworthiness vector")? {
            let i = as_i64(k)
                .and_then(|k| usize::try_from(k).ok())
                .filter(|k| *k < 8)
                .ok_or_else(|| malformed(format!("{whose}: unknown trustworthiness claim key {k:?}")))?;
            slots[i] = Some(claim_value(as_i64(v), name, VECTOR_NAMES[i])?);
        }
    }
    let trust_vector = TrustVector::from_slots(slots);
    let key_spki_der = match get(m, label::KEY_ATTESTATION) {
        None => None,
        Some(ka) => Some(
            get(as_map(ka, "key attestation")?, 0)
                .and_then(Cbor::as_bytes)
                .cloned()
                .ok_or_else(|| missing("key attestation akpub (0)"))?,
        ),
    };
    let (verifier_claims, freshness) = match get(m, label::VERIFIER_CLAIMS) {
        None => (Map::new(), None),
        Some(claims) => verifier_claims_from_cbor(&whose, claims)?,
    };
    Ok(Appraisal {
        status: Appraisal::read_status(name, read, &trust_vector)?,
        trust_vector,
        policy_ids: policy_ids_cbor(get(m, label::POLICY_IDS), &whose)?,
        nonce: nonce_cbor(get(m, label::NONCE))?,
        key_spki_der,
        verifier_claims,
        freshness,
    })
}

fn policy_ids_cbor(v: Option<&Cbor>, whose: &str) -> Result<Vec<String>, EarError> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let ids: Option<Vec<String>> =
        v.as_array().and_then(|a| a.iter().map(|id| id.as_text().map(str::to_string)).collect());
    match ids {
        Some(ids) if !ids.is_empty() => Ok(ids),
        _ => Err(malformed(format!("{whose}: ear_appraisal_policy_ids (1003) is not a non-empty array of text"))),
    }
}

type VerifierClaims = (Map<String, Json>, Option<FreshnessInput>);

fn verifier_claims_from_cbor(whose: &str, claims: &Cbor) -> Result<VerifierClaims, EarError> {
    let mut rest = Vec::new();
    let mut freshness = None;
    for (k, v) in as_map(claims, "ear_verifier_claims")? {
        if k.as_text() == Some(FRESHNESS_CLAIM) {
            let f = as_map(v, FRESHNESS_CLAIM)?;
            let field = |k: &str| f.iter().find(|(key, _)| key.as_text() == Some(k)).map(|(_, v)| v);
            let kind = field("kind").and_then(Cbor::as_text).ok_or_else(|| missing("tacra_freshness kind"))?;
            let kind =
                FreshnessKind::from_name(kind).ok_or_else(|| malformed(format!("unknown freshness kind {kind:?}")))?;
            // A byte string as we write it, or base64url text as a JSON-first writer converts it.
            let value = match field("value") {
                Some(Cbor::Bytes(b)) => b.clone(),
                Some(Cbor::Text(t)) => crate::jose::b64url_decode(t, "tacra_freshness value")?,
                _ => return Err(missing("tacra_freshness value (bytes)")),
            };
            freshness = Some(FreshnessInput { kind, value });
        } else {
            rest.push((k.clone(), v.clone()));
        }
    }
    match cbor_to_json(&Cbor::Map(rest))? {
        Json::Object(o) => Ok((o, freshness)),
        _ => Err(malformed(format!("{whose}: ear_verifier_claims is not a map"))),
    }
}

fn int(v: i64) -> Cbor {
    Cbor::Integer(v.into())
}

pub(super) fn as_i64(v: &Cbor) -> Option<i64> {
    v.as_integer().and_then(|i| i64::try_from(i).ok())
}

fn as_u64(v: &Cbor) -> Option<u64> {
    v.as_integer().and_then(|i| u64::try_from(i).ok())
}

pub(super) fn as_map<'a>(v: &'a Cbor, what: &str) -> Result<&'a [(Cbor, Cbor)], EarError> {
    v.as_map().map(Vec::as_slice).ok_or_else(|| malformed(format!("{what} is not a CBOR map")))
}

pub(super) fn get(m: &[(Cbor, Cbor)], key: i64) -> Option<&Cbor> {
    m.iter().find(|(k, _)| as_i64(k) == Some(key)).map(|(_, v)| v)
}

/// JSON → CBOR for verifier claims (strings, booleans, integers, arrays, maps with text keys).
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

/// CBOR → JSON for verifier claims; anything without a JSON form (bytes, tags, non-text keys)
/// is refused.
fn cbor_to_json(v: &Cbor) -> Result<Json, EarError> {
    Ok(match v {
        Cbor::Null => Json::Null,
        Cbor::Bool(b) => Json::Bool(*b),
        Cbor::Integer(i) => match (i64::try_from(*i), u64::try_from(*i)) {
            (Ok(v), _) => v.into(),
            (_, Ok(v)) => v.into(),
            _ => return Err(malformed("a verifier claim integer is out of range".into())),
        },
        Cbor::Float(f) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .ok_or_else(|| malformed("a verifier claim is not a finite number".into()))?,
        Cbor::Text(s) => Json::String(s.clone()),
        Cbor::Array(a) => Json::Array(a.iter().map(cbor_to_json).collect::<Result<_, _>>()?),
        Cbor::Map(m) => Json::Object(
            m.iter()
                .map(|(k, v)| {
                    let k = k.as_text().ok_or_else(|| malformed("a verifier claim key is not text".into()))?;
                    Ok((k.to_string(), cbor_to_json(v)?))
                })
                .collect::<Result<_, EarError>>()?,
        ),
        _ => return Err(malformed("a verifier claim has no JSON form (bytes or a tag)".into())),
    })
}
