//! The EAR's JSON claims set (the JWT form), with draft-ietf-rats-ear-04's claim names.

use serde_json::{Map, Value as Json, json};

use super::{
    Appraisal, Ear, EarError, FRESHNESS_CLAIM, FreshnessInput, FreshnessKind, Status, TrustVector, VECTOR_NAMES,
    VerifierId, claim_value, malformed, missing,
};
use crate::jose;

impl Ear {
    /// The JSON claims set.
    pub fn to_json(&self) -> Map<String, Json> {
        let mut m = Map::new();
        m.insert("eat_profile".into(), super::EAR_PROFILE.into());
        m.insert("iat".into(), self.iat.into());
        if let Some(exp) = self.exp {
            m.insert("exp".into(), exp.into());
        }
        m.insert(
            "ear_verifier_id".into(),
            json!({ "build": self.verifier_id.build, "developer": self.verifier_id.developer }),
        );
        m.insert("ear_status".into(), self.status().name().into());
        let submods: Map<String, Json> = self.submods.iter().map(|(k, a)| (k.clone(), appraisal_json(a))).collect();
        m.insert("submods".into(), submods.into());
        if let Some(nonce) = &self.nonce {
            m.insert("eat_nonce".into(), jose::b64url(nonce).into());
        }
        m
    }

    /// Reads the JSON claims set; unknown claims are ignored, as the draft requires.
    pub fn from_json(m: &Map<String, Json>) -> Result<Self, EarError> {
        let profile = m.get("eat_profile").and_then(Json::as_str).unwrap_or("(absent)");
        if profile != super::EAR_PROFILE {
            return Err(EarError::Profile(profile.into()));
        }
        let vid = m.get("ear_verifier_id").and_then(Json::as_object).ok_or_else(|| missing("ear_verifier_id"))?;
        let submods = m.get("submods").and_then(Json::as_object).ok_or_else(|| missing("submods"))?;
        let submods = submods
            .iter()
            .map(|(k, v)| Ok((k.clone(), appraisal_from_json(k, v)?)))
            .collect::<Result<_, EarError>>()?;
        let text = |what: &str| {
            vid.get(what)
                .and_then(Json::as_str)
                .map(str::to_string)
                .ok_or_else(|| missing(&format!("ear_verifier_id.{what}")))
        };
        let ear = Self {
            iat: m.get("iat").and_then(Json::as_u64).ok_or_else(|| missing("iat (an integer)"))?,
            exp: m.get("exp").map(|v| v.as_u64().ok_or_else(|| malformed(format!("exp is {v}")))).transpose()?,
            verifier_id: VerifierId { build: text("build")?, developer: text("developer")? },
            submods,
            nonce: nonce_json(m.get("eat_nonce"), "eat_nonce")?,
        };
        let overall = m.get("ear_status").map(|s| status_json(s, "the EAR")).transpose()?;
        ear.validate()?.check_overall(overall)
    }
}

fn nonce_json(v: Option<&Json>, what: &'static str) -> Result<Option<Vec<u8>>, EarError> {
    match v {
        None => Ok(None),
        Some(Json::String(s)) => Ok(Some(jose::b64url_decode(s, what)?)),
        Some(other) => Err(malformed(format!("{what} is {other}, expected a base64url string"))),
    }
}

fn status_json(v: &Json, whose: &str) -> Result<Status, EarError> {
    let name = v.as_str().ok_or_else(|| malformed(format!("{whose}: ear_status is {v}, expected a tier name")))?;
    Status::from_name(name).ok_or_else(|| malformed(format!("{whose}: unknown ear_status {name:?}")))
}

fn appraisal_json(a: &Appraisal) -> Json {
    let mut m = Map::new();
    m.insert("ear_status".into(), a.status().name().into());
    if !a.trust_vector.is_empty() {
        let v: Map<String, Json> = VECTOR_NAMES
            .iter()
            .zip(a.trust_vector.slots())
            .filter_map(|(name, v)| v.map(|v| (name.to_string(), Json::from(v))))
            .collect();
        m.insert("ear_trustworthiness_vector".into(), v.into());
    }
    if !a.policy_ids.is_empty() {
        m.insert("ear_appraisal_policy_ids".into(), a.policy_ids.clone().into());
    }
    if let Some(nonce) = &a.nonce {
        m.insert("eat_nonce".into(), jose::b64url(nonce).into());
    }
    let mut claims = a.verifier_claims.clone();
    if let Some(f) = &a.freshness {
        claims.insert(FRESHNESS_CLAIM.into(), json!({ "kind": f.kind.name(), "value": jose::b64url(&f.value) }));
    }
    if !claims.is_empty() {
        m.insert("ear_verifier_claims".into(), claims.into());
    }
    if let Some(der) = &a.key_spki_der {
        m.insert("ear_veraison_key_attestation".into(), json!({ "akpub": jose::b64url(der) }));
    }
    m.into()
}

fn appraisal_from_json(name: &str, v: &Json) -> Result<Appraisal, EarError> {
    let m = v.as_object().ok_or_else(|| malformed(format!("submod {name:?} is not an object")))?;
    let whose = format!("submod {name:?}");
    let read = status_json(m.get("ear_status").ok_or_else(|| missing(&format!("{whose}: ear_status")))?, &whose)?;
    let mut slots = [None; 8];
    if let Some(tv) = m.get("ear_trustworthiness_vector") {
        let tv = tv.as_object().ok_or_else(|| malformed(format!("{whose}: the vector is not an object")))?;
        for (key, value) in tv {
            let i = VECTOR_NAMES
                .iter()
                .position(|n| n == key)
                .ok_or_else(|| malformed(format!("{whose}: unknown trustworthiness claim {key:?}")))?;
            slots[i] = Some(claim_value(value.as_i64(), name, key)?);
        }
    }
    let trust_vector = TrustVector::from_slots(slots);
    let key_spki_der = match m.get("ear_veraison_key_attestation") {
        None => None,
        Some(ka) => {
            let akpub = ka.get("akpub").and_then(Json::as_str).ok_or_else(|| missing("key attestation akpub"))?;
            Some(jose::b64url_decode(akpub, "akpub")?)
        }
    };
    let mut verifier_claims = match m.get("ear_verifier_claims") {
        None => Map::new(),
        Some(Json::Object(o)) => o.clone(),
        Some(other) => return Err(malformed(format!("{whose}: ear_verifier_claims is {other}, not a map"))),
    };
    let freshness = verifier_claims.remove(super::FRESHNESS_CLAIM).map(|f| freshness_json(&f)).transpose()?;
    Ok(Appraisal {
        status: Appraisal::read_status(name, read, &trust_vector)?,
        trust_vector,
        policy_ids: policy_ids_json(m.get("ear_appraisal_policy_ids"), &whose)?,
        nonce: nonce_json(m.get("eat_nonce"), "a submod's eat_nonce")?,
        key_spki_der,
        verifier_claims,
        freshness,
    })
}

fn policy_ids_json(v: Option<&Json>, whose: &str) -> Result<Vec<String>, EarError> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let ids: Option<Vec<String>> =
        v.as_array().and_then(|a| a.iter().map(|id| id.as_str().map(str::to_string)).collect());
    match ids {
        Some(ids) if !ids.is_empty() => Ok(ids),
        _ => Err(malformed(format!("{whose}: ear_appraisal_policy_ids is {v}, expected a non-empty array of text"))),
    }
}

fn freshness_json(v: &Json) -> Result<FreshnessInput, EarError> {
    let kind = v.get("kind").and_then(Json::as_str).ok_or_else(|| missing("tacra_freshness.kind"))?;
    let kind = FreshnessKind::from_name(kind).ok_or_else(|| malformed(format!("unknown freshness kind {kind:?}")))?;
    let value = v.get("value").and_then(Json::as_str).ok_or_else(|| missing("tacra_freshness.value"))?;
    Ok(FreshnessInput { kind, value: jose::b64url_decode(value, "tacra_freshness.value")? })
}
