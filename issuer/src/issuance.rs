//! Policy-driven issuance: what [`crate::Issuer`] does once it has an appraisal policy
//! ([`crate::Issuer::set_policy`]).
//!
//! After the Verifier has checked the Evidence (signature, endorsements, REPORTDATA binding),
//! the policy maps it to a Stable workload ([`Policy::admit`]), the workload's freshness level
//! is enforced ([`Freshness`]), a renewal is checked against the previous credential's binding
//! ([`RenewalCheck`]), and the Credential Authority issues, for the attested key:
//!
//! - an X.509 credential whose SAN is the workload's Stable identifier, with the policy
//!   version and the binding digest in an extension ([`crate::oids::POLICY_BINDING`]);
//! - a WIMSE Workload Identity Token (`wit+jwt`, ES384) carrying the business claims and the
//!   binding. It is signed by a **dedicated WIT key** (`wit-key.pem` in the issuer state), not
//!   the CA key: one key per signature format, so an X.509 TBS and a JWS signing input can
//!   never be confused, and the WIT key can rotate without re-issuing the CA that images
//!   embed. Its public half is published as a JWK ([`PolicyMode::wit_jwk`]);
//! - an attestation result (EAR JWT) signed by the **Verifier's key** (`verifier-key.pem`),
//!   binding the key (what mechanisms A and B carry).
//!
//! Every credential (the certificate and the WIT) gets its own record in the provenance log
//! (`provenance.sqlite` in the issuer state) *before* it is returned; the log's tree head is
//! signed by the **log key** (`log-key.pem`) and each record comes with its inclusion proof.
//! AF_L1 epochs are signed by the **epoch key** (`epoch-key.pem`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use der::asn1::{OctetString, Utf8StringRef};
use der::{Encode, Sequence};
use p384::ecdsa::SigningKey;
use p384::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use serde_json::json;
use twi_proto::msg::Platform;
use twi_verifier::Detail;

use crate::ear::{self, Ear, Status, TrustVector, VerifierId, claim};
use crate::freshness::{Clock, EpochPublisher, Fresh, Freshness, FreshnessError, NonceStore, SignedEpoch, SystemClock};
use crate::policy::{
    Admission, Appraised, AppraisedTcb, Binding, Mechanism, PlatformClaimSource, Policy, Reference, RenewalCheck,
};
use crate::provenance::{LogError, ProvenanceLog, ProvenanceRecord, VerifierDecision, leaf_hash};
use crate::wit::Wit;
use crate::{Appraisal, IssuerError, Rejection, oids, x509};

/// How long a verifier nonce (AF_L2) may wait for its Evidence.
pub const NONCE_TTL: Duration = Duration::from_secs(300);
/// Unredeemed nonces kept at most.
pub const MAX_OUTSTANDING_NONCES: usize = 10_000;
/// AF_L1 epoch length and the grace period after it ends.
pub const EPOCH_PERIOD: Duration = Duration::from_secs(600);
pub const EPOCH_GRACE: Duration = Duration::from_secs(60);
/// The Verifier's name in attestation results.
pub const VERIFIER_BUILD: &str = concat!("twi-issuer ", env!("CARGO_PKG_VERSION"));

/// The policy and everything issuance under it needs.
pub struct PolicyMode {
    pub policy: Policy,
    pub freshness: Freshness,
    /// The issuer state directory; the log is `provenance.sqlite` in it.
    dir: PathBuf,
    /// CF_L1 platform claims, when configured.
    pub claim_source: Option<Box<dyn PlatformClaimSource + Send + Sync>>,
    verifier_key: SigningKey,
    wit_key: SigningKey,
    log_key: SigningKey,
    /// `iss` of WITs and EARs.
    pub issuer_uri: String,
}

impl std::fmt::Debug for PolicyMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyMode")
            .field("policy", &self.policy.source)
            .field("version", &self.policy.version)
            .finish_non_exhaustive()
    }
}

/// Loads the P-384 key `name` (PKCS#8 PEM) from `dir`, or creates it (mode 0600).
pub fn load_or_create_key(dir: &Path, name: &str) -> Result<SigningKey, IssuerError> {
    std::fs::create_dir_all(dir).map_err(|e| IssuerError::State(dir.to_path_buf(), e.to_string()))?;
    let _lock = crate::ca::lock_state_dir(dir)?;
    let path = dir.join(name);
    if path.exists() {
        let pem = std::fs::read_to_string(&path).map_err(|e| IssuerError::State(path.clone(), e.to_string()))?;
        return SigningKey::from_pkcs8_pem(&pem).map_err(|e| {
            IssuerError::State(path.clone(), format!("not a P-384 PKCS#8 key ({e}); restore it or remove it"))
        });
    }
    use p384::elliptic_curve::Generate;
    let key = SigningKey::try_generate().map_err(|_| IssuerError::Rng)?;
    let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| IssuerError::Certificate(e.to_string()))?;
    crate::ca::write_private(&path, pem.as_bytes())?;
    Ok(key)
}

impl PolicyMode {
    /// Opens the keys and the provenance log in the issuer state `dir`.
    pub fn open(dir: &Path, policy: Policy) -> Result<Self, IssuerError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let epoch_key = load_or_create_key(dir, "epoch-key.pem")?;
        let log_path = dir.join("provenance.sqlite");
        // Opened here once to check it (and create it); each issuance reopens it under the
        // state lock, so several `twi run`s sharing a state directory append in turn.
        ProvenanceLog::open(&log_path).map_err(|e| IssuerError::State(log_path.clone(), e.to_string()))?;
        Ok(Self {
            issuer_uri: format!("spiffe://{}/twi-issuer", policy.trust_domain),
            policy,
            freshness: Freshness {
                epochs: Some(EpochPublisher::new(epoch_key, EPOCH_PERIOD, EPOCH_GRACE, clock.clone())),
                nonces: NonceStore::new(NONCE_TTL, MAX_OUTSTANDING_NONCES, clock),
            },
            dir: dir.to_path_buf(),
            claim_source: None,
            verifier_key: load_or_create_key(dir, "verifier-key.pem")?,
            wit_key: load_or_create_key(dir, "wit-key.pem")?,
            log_key: load_or_create_key(dir, "log-key.pem")?,
        })
    }

    /// A single-use, expiring verifier nonce (AF_L2; it also satisfies AF_L1 and AF_L0).
    pub fn nonce(&mut self) -> Result<Vec<u8>, IssuerError> {
        self.freshness.nonces.issue().map(|n| n.to_vec()).map_err(|_| IssuerError::Rng)
    }

    /// The current signed epoch (AF_L1): a workload binds its id as the nonce.
    pub fn epoch(&mut self) -> Result<SignedEpoch, IssuerError> {
        self.freshness.epochs.as_mut().ok_or(IssuerError::Rng)?.current().map_err(|_| IssuerError::Rng)
    }

    /// The public key WITs verify under, as a JWK (with `kid`, `alg`, `use`).
    pub fn wit_jwk(&self) -> serde_json::Value {
        key_jwk(&self.wit_key, "twi-wit")
    }

    /// The public key attestation results (EAR) verify under, as a JWK.
    pub fn verifier_jwk(&self) -> serde_json::Value {
        key_jwk(&self.verifier_key, "twi-verifier")
    }

    /// The public key signed tree heads verify under, as a JWK.
    pub fn log_jwk(&self) -> serde_json::Value {
        key_jwk(&self.log_key, "twi-log")
    }

    pub fn verifier_key(&self) -> &SigningKey {
        &self.verifier_key
    }

    /// The freshness the policy asks of a launch with `measurement` on `platform`, if exactly
    /// one workload has a reference entry with that measurement (the loader uses this to send
    /// an epoch id instead of a nonce).
    pub fn freshness_for(&self, platform: Platform, measurement: &[u8]) -> Option<crate::freshness::FreshnessLevel> {
        self.workload_for(platform, measurement).map(|w| w.freshness)
    }

    /// The one workload with a reference entry for `measurement` on `platform`, if exactly one.
    pub fn workload_for(&self, platform: Platform, measurement: &[u8]) -> Option<&crate::policy::Workload> {
        let mut found = self.policy.workloads.iter().filter(|w| {
            w.references.iter().any(|r| {
                r.platform == platform
                    && match &r.values {
                        Reference::Snp(s) => s.measurement.as_slice() == measurement,
                        Reference::Tdx(t) => t.mrtd.as_slice() == measurement,
                    }
            })
        });
        let first = found.next()?;
        found.next().is_none().then_some(first)
    }

    /// Admission, freshness and renewal checks on a verified appraisal.
    pub fn admit(
        &self,
        appraisal: &Appraisal,
        established: &Result<Fresh, FreshnessError>,
        previous: Option<&str>,
    ) -> Result<Admission, Rejection> {
        let appraised = appraised(appraisal);
        let admission = match &self.claim_source {
            Some(source) => self.policy.admit_with_source(&appraised, source.as_ref()),
            None => self.policy.admit(&appraised),
        }?;
        Freshness::require(admission.freshness, established).map_err(|error| Rejection::Freshness {
            workload: admission.workload_id.clone(),
            level: admission.freshness.name(),
            error,
        })?;
        if let Some(previous) = previous {
            let binding = self.previous_binding(previous)?;
            RenewalCheck { previous: binding }.check(&admission)?;
        }
        Ok(admission)
    }

    /// The binding of credential `id` (an X.509 serial in hex, or a WIT `jti`), from its
    /// provenance record.
    pub fn previous_binding(&self, id: &str) -> Result<Binding, Rejection> {
        let unknown = || Rejection::UnknownPreviousCredential(id.to_string());
        let found = self.with_log(|log| log.find(id))?;
        let (_, record) = found.ok_or_else(unknown)?;
        let text = record.decision.criteria.get("binding").ok_or_else(unknown)?;
        serde_json::from_str(text).map_err(|_| unknown())
    }

    /// Runs `f` on the provenance log, holding the state directory's lock (the log's
    /// in-memory tree must not go stale under another process's appends).
    fn with_log<T>(&self, f: impl FnOnce(&mut ProvenanceLog) -> Result<T, LogError>) -> Result<T, Rejection> {
        let internal = |e: String| Rejection::Internal(format!("provenance log: {e}"));
        let _lock = crate::ca::lock_state_dir(&self.dir).map_err(|e| internal(e.to_string()))?;
        let mut log = ProvenanceLog::open(&self.dir.join("provenance.sqlite")).map_err(|e| internal(e.to_string()))?;
        f(&mut log).map_err(|e| internal(e.to_string()))
    }

    /// The X.509 extension for the admission.
    pub fn x509_extension(admission: &Admission) -> Result<x509::ExtraExtension, IssuerError> {
        let value = PolicyBindingExt {
            policy_version: Utf8StringRef::new(&admission.policy_version)
                .map_err(|e| IssuerError::Certificate(e.to_string()))?,
            stickiness: Utf8StringRef::new(admission.stickiness.name())
                .map_err(|e| IssuerError::Certificate(e.to_string()))?,
            binding_sha256: OctetString::new(admission.binding.digest().to_vec())
                .map_err(|e| IssuerError::Certificate(e.to_string()))?,
        };
        let value_der = value.to_der().map_err(|e| IssuerError::Certificate(e.to_string()))?;
        Ok(x509::ExtraExtension { oid: oids::POLICY_BINDING, critical: false, value_der })
    }

    /// The attestation result (EAR) for an admission, binding `public_key`.
    pub fn attestation_result(
        &self,
        admission: &Admission,
        public_key: &[u8],
        nonce: &[u8],
        platform: Platform,
        now: SystemTime,
    ) -> Result<Ear, Rejection> {
        let mut policy_claims = serde_json::Map::new();
        policy_claims.insert("workload-id".into(), admission.workload_id.clone().into());
        let claims: serde_json::Map<_, _> =
            admission.claims.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
        policy_claims.insert("claims".into(), claims.into());
        policy_claims.insert("binding".into(), admission.binding.to_json());
        let simulated = matches!(platform, Platform::SimSnp | Platform::SimTdx);
        let appraisal = ear::Appraisal {
            status: Some(Status::Affirming),
            trust_vector: TrustVector {
                instance_identity: Some(claim::TRUSTWORTHY_INSTANCE),
                executables: Some(claim::APPROVED_RUNTIME),
                hardware: Some(if simulated { claim::UNRECOGNIZED_HARDWARE } else { claim::GENUINE_HARDWARE }),
                runtime_opaque: Some(claim::ENCRYPTED_MEMORY_RUNTIME),
                ..TrustVector::default()
            },
            policy_id: Some(format!("twi-policy:{}@{}", self.policy.trust_domain, admission.policy_version)),
            key_spki_der: None,
            policy_claims,
        }
        .bind_key(public_key)
        .map_err(|e| Rejection::Internal(format!("attestation result: {e}")))?;
        let mut result = Ear::new(
            VerifierId { build: VERIFIER_BUILD.into(), developer: "https://github.com/twi".into() },
            now,
            "twi",
            appraisal,
        );
        result.nonce = Some(nonce.to_vec());
        result.exp = Some(crate::jose::unix_seconds(now) + 300);
        Ok(result)
    }

    /// Signs the WIT and the EAR, appends one provenance record per credential (certificate
    /// and WIT), signs the tree head and returns what the caller hands out.
    #[allow(clippy::too_many_arguments)]
    pub fn finish(
        &mut self,
        admission: &Admission,
        appraisal: &Appraisal,
        public_key: &[u8],
        nonce: &[u8],
        serial_hex: &str,
        certificate_der: &[u8],
        mechanism: Mechanism,
        now: SystemTime,
    ) -> Result<PolicyCredentials, Rejection> {
        let internal = |e: String| Rejection::Internal(e);
        let mut wit = Wit::new(&self.issuer_uri, &admission.workload_id, public_key, now, admission.lifetime)
            .map_err(|e| internal(format!("WIT: {e}")))?;
        for (name, value) in &admission.claims {
            wit = wit.with_claim(name, value.clone()).map_err(|e| internal(format!("WIT claim {name}: {e}")))?;
        }
        wit = wit
            .with_claim("twi-binding", admission.binding.to_json())
            .and_then(|w| w.with_claim("twi-policy-version", admission.policy_version.clone()))
            .map_err(|e| internal(format!("WIT: {e}")))?;
        let wit_token = wit.sign(&self.wit_key, Some("twi-wit")).map_err(|e| internal(format!("WIT: {e}")))?;
        let mut ear = self.attestation_result(admission, public_key, nonce, appraisal.platform, now)?;
        if mechanism == Mechanism::A {
            // Mechanism A: the Verifier obtained the credential from the Credential Authority and
            // returns it inside the attestation result, which names it.
            use sha2::{Digest, Sha256};
            for submod in ear.submods.values_mut() {
                submod.policy_claims.insert(
                    "credential".into(),
                    json!({
                        "x509-sha256": hex::encode(Sha256::digest(certificate_der)),
                        "x509-serial": serial_hex,
                    }),
                );
            }
        }
        let ear_jwt =
            ear.sign_jwt(&self.verifier_key, Some("twi-verifier")).map_err(|e| internal(format!("EAR: {e}")))?;

        let measurement = hex::encode(&appraisal.measurement);
        let binding = serde_json::to_string(&admission.binding).map_err(|e| internal(e.to_string()))?;
        let criteria = BTreeMap::from([
            ("platform".to_string(), crate::policy::platform_name(appraisal.platform).to_string()),
            ("measurement".to_string(), measurement),
            ("reference".to_string(), admission.reference.label.clone()),
            ("freshness".to_string(), admission.freshness.name().to_string()),
            ("fidelity".to_string(), admission.fidelity.name().to_string()),
            ("stickiness".to_string(), admission.stickiness.name().to_string()),
            ("mechanism".to_string(), mechanism.name().to_string()),
            ("binding".to_string(), binding),
        ]);
        let issued_at = crate::jose::unix_seconds(now);
        let log_key = self.log_key.clone();
        let (entries, head) = self.with_log(|log| {
            let mut entries = Vec::new();
            for (kind, id) in [("x509", serial_hex.to_string()), ("wit", wit.jti.clone())] {
                let record = ProvenanceRecord {
                    workload_id: admission.workload_id.clone(),
                    credential_kind: kind.into(),
                    credential_id: id,
                    evidence_sha384: hex::encode(appraisal.evidence_sha384),
                    decision: VerifierDecision {
                        status: Status::Affirming.name().into(),
                        verifier: VERIFIER_BUILD.into(),
                        criteria: criteria.clone(),
                    },
                    policy_version: admission.policy_version.clone(),
                    issued_at,
                };
                let appended = log.append(&record)?;
                entries.push((record, appended));
            }
            let head = log.sign_tree_head(&log_key, now)?;
            let mut proved = Vec::new();
            for (record, appended) in entries {
                let proof = log.inclusion_proof(appended.index, head.size)?;
                proved.push((record, appended, proof));
            }
            Ok((proved, head))
        })?;
        let mut records = Vec::new();
        for (record, appended, proof) in entries {
            let leaf = record.to_leaf().map_err(|e| internal(e.to_string()))?;
            records.push(json!({
                "credential_kind": record.credential_kind,
                "credential_id": record.credential_id,
                "index": appended.index,
                "leaf": String::from_utf8_lossy(&leaf),
                "leaf_hash": hex::encode(leaf_hash(&leaf)),
                "inclusion_proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
                "record": record,
            }));
        }
        let provenance = json!({
            "log": "RFC 9162 Merkle tree (SHA-256); each leaf is the record's canonical JSON, exactly as in `leaf`",
            "tree_head": {
                "size": head.size,
                "timestamp_ms": head.timestamp_ms,
                "root": hex::encode(head.root),
                "signature": hex::encode(head.signature),
                "signed_bytes": "\"TWI-STH-v1\" (16 bytes, NUL-padded) || u64be size || u64be timestamp_ms || root; ECDSA P-384/SHA-384 r||s",
                "key": self.log_jwk(),
            },
            "records": records,
        });
        Ok(PolicyCredentials { wit: wit_token, wit_jti: wit.jti, ear_jwt, provenance, admission: admission.clone() })
    }
}

/// What policy-driven issuance adds to a certificate.
#[derive(Debug, Clone)]
pub struct PolicyCredentials {
    /// The WIT (compact JWS, `typ` `wit+jwt`).
    pub wit: String,
    pub wit_jti: String,
    /// The Verifier's attestation result (EAR JWT) binding the key.
    pub ear_jwt: String,
    /// The signed tree head and each record's inclusion proof.
    pub provenance: serde_json::Value,
    pub admission: Admission,
}

#[derive(Sequence)]
struct PolicyBindingExt<'a> {
    policy_version: Utf8StringRef<'a>,
    stickiness: Utf8StringRef<'a>,
    binding_sha256: OctetString,
}

fn key_jwk(key: &SigningKey, kid: &str) -> serde_json::Value {
    let jwk = crate::jose::Jwk::from_p384(&p384::PublicKey::from(key.verifying_key()));
    let mut value = serde_json::to_value(&jwk).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.insert("kid".into(), kid.into());
        map.insert("alg".into(), "ES384".into());
        map.insert("use".into(), "sig".into());
    }
    value
}

/// The policy's view of a verified appraisal.
pub fn appraised(a: &Appraisal) -> Appraised {
    match &a.verified.detail {
        Detail::Snp(snp) => Appraised::from_snp_report(a.platform, &snp.report, snp.tcb_layout),
        Detail::Tdx(tdx) => {
            let body = &tdx.body;
            Appraised {
                platform: a.platform,
                measurement: body.mr_td.to_vec(),
                rtmrs: body.rtmr.iter().map(|r| r.to_vec()).collect(),
                policy: body.td_attributes_u64(),
                tcb: AppraisedTcb::Tdx(body.tee_tcb_svn),
                chip_id: a.chip_id.clone(),
                host_data: Vec::new(),
                platform_info: 0,
            }
        }
    }
}
