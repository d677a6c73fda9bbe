//! Evidence as bytes travel between roles and stores: the JSON form with byte strings in hex
//! ([`EvidenceJson`], what the loader relays and the HTTP API takes) and its decoded, owned form
//! ([`OwnedEvidence`]). The HTTP service's wire types (`http::wire`) use it, and so do the
//! replicas' attestation results waiting in the database (`redemption`), which keep the
//! evidence they were appraised on.

use serde::{Deserialize, Serialize};
use twi_proto::msg::{Platform, RtmrEvent};

use crate::policy::{parse_platform, platform_name};
use crate::verifier::{Evidence, EvidenceBundle};

/// A request body whose fields do not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("`{field}` is not hex: {reason}")]
    NotHex { field: String, reason: String },
    #[error("unknown platform {0:?}: expected sim-snp, snp, tdx or sim-tdx")]
    UnknownPlatform(String),
}

/// `field`'s hex `text` as bytes.
pub fn unhex(field: &str, text: &str) -> Result<Vec<u8>, WireError> {
    hex::decode(text).map_err(|e| WireError::NotHex { field: field.into(), reason: e.to_string() })
}

/// The platform its policy name `name` names.
pub fn platform(name: &str) -> Result<Platform, WireError> {
    parse_platform(name).ok_or_else(|| WireError::UnknownPlatform(name.into()))
}

/// Evidence as the loader relays it (byte strings in hex).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceJson {
    pub platform: String,
    pub evidence: String,
    pub public_key: String,
    /// TACRA's freshness element (hex).
    pub nonce: String,
    /// The target of the acquisition (the binding covers it: a missing one fails there).
    #[serde(default)]
    pub target: String,
    /// Enrollment: the workload's CSR (hex DER).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csr: Option<String>,
    /// DER certificates the host supplies with the report, leaf first (SNP: VCEK, ASK).
    #[serde(default)]
    pub endorsements: Vec<String>,
    /// The TD's RTMR event log (TDX).
    #[serde(default)]
    pub event_log: Vec<EventJson>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventJson {
    pub rtmr: u8,
    pub event_type: u32,
    pub digest: String,
    pub data: String,
}

impl EvidenceJson {
    /// The JSON form of `evidence`.
    pub fn new(evidence: &Evidence<'_>) -> Self {
        let bundle = &evidence.bundle;
        Self {
            platform: platform_name(bundle.platform).to_string(),
            evidence: hex::encode(bundle.evidence),
            public_key: hex::encode(bundle.public_key),
            nonce: hex::encode(bundle.nonce),
            target: bundle.target.to_string(),
            csr: bundle.csr.map(hex::encode),
            endorsements: bundle.endorsements.iter().map(hex::encode).collect(),
            event_log: evidence
                .events
                .iter()
                .map(|e| EventJson {
                    rtmr: e.rtmr,
                    event_type: e.event_type,
                    digest: hex::encode(&e.digest),
                    data: hex::encode(&e.data),
                })
                .collect(),
        }
    }

    /// The evidence it carries.
    pub fn decode(&self) -> Result<OwnedEvidence, WireError> {
        let mut endorsements = Vec::with_capacity(self.endorsements.len());
        for (i, der) in self.endorsements.iter().enumerate() {
            endorsements.push(unhex(&format!("evidence.endorsements[{i}]"), der)?);
        }
        let mut events = Vec::with_capacity(self.event_log.len());
        for (i, e) in self.event_log.iter().enumerate() {
            events.push(RtmrEvent {
                rtmr: e.rtmr,
                event_type: e.event_type,
                digest: unhex(&format!("evidence.event_log[{i}].digest"), &e.digest)?,
                data: unhex(&format!("evidence.event_log[{i}].data"), &e.data)?,
            });
        }
        Ok(OwnedEvidence {
            platform: platform(&self.platform)?,
            evidence: unhex("evidence.evidence", &self.evidence)?,
            public_key: unhex("evidence.public_key", &self.public_key)?,
            nonce: unhex("evidence.nonce", &self.nonce)?,
            target: self.target.clone(),
            csr: self.csr.as_deref().map(|csr| unhex("evidence.csr", csr)).transpose()?,
            endorsements,
            events,
        })
    }
}

/// Decoded [`EvidenceJson`].
#[derive(Debug, Clone)]
pub struct OwnedEvidence {
    pub platform: Platform,
    pub evidence: Vec<u8>,
    pub public_key: Vec<u8>,
    pub nonce: Vec<u8>,
    pub target: String,
    pub csr: Option<Vec<u8>>,
    pub endorsements: Vec<Vec<u8>>,
    pub events: Vec<RtmrEvent>,
}

impl OwnedEvidence {
    /// The evidence, as the issuer takes it.
    pub fn evidence(&self) -> Evidence<'_> {
        let bundle = EvidenceBundle {
            platform: self.platform,
            evidence: &self.evidence,
            public_key: &self.public_key,
            nonce: &self.nonce,
            target: &self.target,
            csr: self.csr.as_deref(),
            endorsements: &self.endorsements,
        };
        Evidence { bundle, events: &self.events }
    }
}
