//! The Verifier role (RFC 9334 §3.2; draft-novak-twi-attestation): a thin front over
//! `twi-verifier`, one verifier per platform the issuer accepts evidence from. Beyond the
//! verifier's appraisal it checks what the issuer asked the evidence to bind — REPORTDATA over
//! the nonce and the key, for a credential or for a key release (`twi_attester::binding`) —
//! replays a TD's event log against its RTMRs, keeps the freshness state (verifier nonces and
//! AF_L1 epochs, TWI reference architecture §5.4.3), and signs attestation results (EAR,
//! draft-ietf-rats-ear) with its own key (`verifier-key.pem`), never the CA's.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use p384::ecdsa::{SigningKey, VerifyingKey};
use serde_json::json;
use twi_attester::binding;
use twi_proto::msg::{Freshness as FreshnessKind, Platform, RtmrEvent};
use twi_verifier::snp::{SnpConfig, SnpError, SnpRejection, SnpVerifier};
use twi_verifier::tdx::{Collateral, MeasuredEvent, TdxConfig, TdxError, TdxVerifier};
use twi_verifier::{Verified, Verifier};
use x509_cert::Certificate;

use crate::ear::{self, Ear, TrustVector, VerifierId, claim};
use crate::error::IssuerError;
use crate::freshness::{
    EpochPublisher, Freshness, FreshnessError, FreshnessLevel, NonceStore, SharedFreshness, SignedEpoch, SystemClock,
};
use crate::held::VerifierKeys;
use crate::policy::{Admission, Appraised};
use crate::state;

/// How long a verifier nonce (AF_L2) may wait for its Evidence.
const NONCE_TTL: Duration = Duration::from_secs(300);
/// Unredeemed nonces kept at most: a bound on memory that a flood of challenges cannot exceed.
const MAX_OUTSTANDING_NONCES: usize = 10_000;
/// AF_L1 epoch length and the grace period after it ends.
const EPOCH_PERIOD: Duration = Duration::from_secs(600);
const EPOCH_GRACE: Duration = Duration::from_secs(60);
/// How long an attestation result is valid.
const RESULT_LIFETIME: u64 = 300;
/// The Verifier's name in attestation results.
pub(crate) const VERIFIER_BUILD: &str = concat!("twi-issuer ", env!("CARGO_PKG_VERSION"));
/// The Verifier key's `kid` in JWKS and EAR headers.
pub const VERIFIER_KID: &str = "twi-verifier";

/// Evidence as the loader relays it.
#[derive(Debug, Clone, Copy)]
pub struct EvidenceBundle<'a> {
    pub platform: Platform,
    pub evidence: &'a [u8],
    pub public_key: &'a [u8],
    /// TACRA's freshness element: the nonce or epoch id the issuer handed out, the epoch
    /// marker, an 8-byte timestamp, or nothing.
    pub nonce: &'a [u8],
    /// The target the workload Initiated for.
    pub target: &'a str,
    /// Enrollment: the workload's PKCS#10 request for `public_key` (TACRA's subject).
    pub csr: Option<&'a [u8]>,
    /// DER certificates the host supplies with the report, leaf first (SNP: VCEK, ASK).
    pub endorsements: &'a [Vec<u8>],
}

impl<'a> EvidenceBundle<'a> {
    /// The channel's Evidence message as the Verifier takes it, with the endorsements the host
    /// found for it (the guest's certificate table, or the host's copies).
    pub fn of_message(evidence: &'a twi_proto::msg::Evidence, endorsements: &'a [Vec<u8>]) -> Self {
        Self {
            platform: evidence.platform,
            evidence: &evidence.evidence,
            public_key: &evidence.public_key,
            nonce: &evidence.nonce,
            target: &evidence.target,
            csr: evidence.csr.as_deref(),
            endorsements,
        }
    }
}

/// Evidence and, for TDX, the TD's RTMR event log: what the Verifier is shown.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    pub bundle: EvidenceBundle<'a>,
    /// The runtime's RTMR event log (TDX); empty for SEV-SNP.
    pub events: &'a [RtmrEvent],
}

/// What the Verifier concluded, kept with the credential: the platform the evidence was
/// presented as, and the verifier's full result (its platform's typed appraisal in
/// `verified.detail`).
#[derive(Debug, Clone)]
pub struct Appraisal {
    pub platform: Platform,
    pub verified: Verified,
    /// The TACRA freshness kind the evidence was appraised under (its target's, once the
    /// policy admitted it): the attestation result's freshness input.
    pub freshness: Option<FreshnessKind>,
}

impl Appraisal {
    /// The policy's view of it.
    pub fn appraised(&self) -> Appraised {
        Appraised::from_verified(self.platform, &self.verified)
    }
}

/// Why the Verifier refused evidence. Each message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceRejection {
    #[error(
        "evidence from the simulated TEE is not accepted by this issuer (it is enabled only for development, e.g. by `twi run --platform sim`)"
    )]
    SimulationNotAccepted,
    #[error("evidence for platform {0:?} cannot be appraised yet")]
    UnsupportedPlatform(Platform),
    /// The verifier's rejection, whole (its hints included).
    #[error("{0}")]
    Verifier(#[from] twi_verifier::Rejection),
    #[error(
        "evidence labelled {platform:?} is rooted in {anchor}, not in the simulated TEE: present hardware evidence as its hardware platform"
    )]
    NotSimulated { platform: Platform, anchor: String },
    #[error(
        "the report's REPORTDATA is not the TACRA binding of this freshness element, issuer, target and key (expected {expected}, report has {actual})"
    )]
    ReportDataMismatch { expected: String, actual: String },
    #[error("enrollment evidence must come with the workload's certification request (CSR)")]
    MissingCsr,
    #[error("retrieval evidence binds an encryption key, not a certification request")]
    UnexpectedCsr,
    #[error("the certification request: {0}")]
    BadCsr(twi_proto::csr::CsrError),
    #[error("the certification request is for another key than the evidence's")]
    CsrKeyMismatch,
    #[error("the public key is not a valid P-384 point")]
    BadPublicKey,
}

/// The Verifier role: its verifiers, its freshness state, its signing key.
#[derive(Debug)]
pub(crate) struct VerifierRole {
    /// Real SEV-SNP ([`Platform::Snp`]).
    snp: Option<SnpVerifier>,
    /// The simulated SEV-SNP platform ([`Platform::SimSnp`]), under its root only.
    sim_snp: Option<SnpVerifier>,
    /// Real TDX ([`Platform::Tdx`]).
    tdx: Option<TdxVerifier>,
    /// The simulated TDX platform ([`Platform::SimTdx`]).
    sim_tdx: Option<TdxVerifier>,
    /// Verifier nonces and AF_L1 epochs: the one part of the Verifier that changes as it
    /// serves, behind its own lock (held only to issue, spend or publish, never to appraise).
    freshness: Mutex<Freshness>,
    key: ResultKey,
}

/// The key of the Verifier's attestation results, as a process holds it.
#[derive(Debug)]
enum ResultKey {
    /// This process is the Verifier: it signs them.
    Signing(SigningKey),
    /// The Verifier is another process: results are checked under its public key.
    Public(VerifyingKey),
    /// Neither: results are refused.
    Unknown,
}

/// How long evidence under freshness `kind` could be presented again after its appraisal
/// now: a nonce lives [`NONCE_TTL`] from its issue, an epoch's id at most a period and its grace
/// from now. `None`: for ever (absent freshness).
pub(crate) fn replayable_for(kind: Option<FreshnessKind>) -> Option<Duration> {
    match kind? {
        FreshnessKind::PresentNonce => Some(NONCE_TTL),
        FreshnessKind::PresentEpoch => Some(EPOCH_PERIOD + EPOCH_GRACE),
        _ => None,
    }
}

/// Nonces and epochs, in this process or (replicas) in their shared database.
fn freshness(
    epoch_key: Option<SigningKey>,
    clock: Arc<dyn crate::freshness::Clock>,
    shared: Option<SharedFreshness>,
) -> Freshness {
    let mut epochs = epoch_key.map(|key| EpochPublisher::new(key, EPOCH_PERIOD, EPOCH_GRACE, clock.clone()));
    let mut nonces = NonceStore::new(NONCE_TTL, MAX_OUTSTANDING_NONCES, clock);
    if let Some(shared) = shared {
        epochs = epochs.map(|epochs| epochs.shared(shared.clone()));
        nonces = nonces.shared(shared);
    }
    Freshness { epochs, nonces }
}

impl VerifierRole {
    /// The Verifier of the issuer state `dir`: its keys (EAR, AF_L1 epochs), and, with
    /// `sim_snp_root`, the simulated SEV-SNP platform under that root.
    /// Without [`VerifierKeys::Held`] neither key is read or made: the process appraises
    /// evidence again (replicas, separate roles) but signs no result and publishes no epoch.
    pub(crate) fn open(
        dir: &Path,
        sim_snp_root: Option<&Certificate>,
        shared: Option<SharedFreshness>,
        keys: VerifierKeys,
    ) -> Result<Self, IssuerError> {
        let sim_snp = sim_snp_root
            .map(SnpVerifier::simulated)
            .transpose()
            .map_err(|e| IssuerError::SimulatedRoot(e.to_string()))?;
        let clock: Arc<dyn crate::freshness::Clock> = Arc::new(SystemClock);
        let (key, epoch_key) = match keys {
            VerifierKeys::Held => (
                ResultKey::Signing(state::load_or_create_key(dir, "verifier-key.pem")?),
                Some(state::load_or_create_key(dir, "epoch-key.pem")?),
            ),
            VerifierKeys::Public(key) => (ResultKey::Public(key), None),
            VerifierKeys::Unknown => (ResultKey::Unknown, None),
        };
        Ok(Self {
            snp: None,
            sim_snp,
            tdx: None,
            sim_tdx: None,
            freshness: Mutex::new(freshness(epoch_key, clock, shared)),
            key,
        })
    }

    pub(crate) fn accept_hardware_snp(&mut self, config: SnpConfig) {
        self.snp = Some(SnpVerifier::new(config));
    }

    pub(crate) fn accept_hardware_tdx(&mut self, config: TdxConfig, collateral: Option<Collateral>) {
        self.tdx = Some(TdxVerifier::new(config, collateral));
    }

    pub(crate) fn accept_simulated_tdx(
        &mut self,
        root: &Certificate,
        collateral: Collateral,
    ) -> Result<(), IssuerError> {
        let verifier =
            TdxVerifier::simulated(root, collateral).map_err(|e| IssuerError::SimulatedRoot(e.to_string()))?;
        self.sim_tdx = Some(verifier);
        Ok(())
    }

    /// The key attestation results verify under.
    pub(crate) fn public_key(&self) -> Result<&VerifyingKey, IssuerError> {
        match &self.key {
            ResultKey::Signing(key) => Ok(key.verifying_key()),
            ResultKey::Public(key) => Ok(key),
            ResultKey::Unknown => Err(IssuerError::NotHeld(
                "the Verifier's public key (give it with --verifier-key, or name the Verifier with --verifier-url)",
            )),
        }
    }

    /// The key attestation results are signed with, in the Verifier's process.
    fn signing_key(&self) -> Result<&SigningKey, IssuerError> {
        match &self.key {
            ResultKey::Signing(key) => Ok(key),
            _ => Err(IssuerError::NotHeld("the Verifier's keys")),
        }
    }

    /// This Verifier's unexpired attestation result `jwt` in its other serialization, a CWT
    /// signed by the same key: the same claims, for readers of CBOR.
    pub(crate) fn result_as_cwt(&self, jwt: &str, now: SystemTime) -> Result<Vec<u8>, IssuerError> {
        let key = self.signing_key()?;
        let token = |e| IssuerError::token("attestation result", e);
        Ear::verify_jwt(jwt, key.verifying_key(), now)
            .and_then(|ear| ear.sign_cwt(key, Some(VERIFIER_KID.as_bytes())))
            .map_err(token)
    }

    /// What evidence at `level` must bind: the current epoch's id (AF_L1), else a single-use
    /// verifier nonce (which satisfies every level).
    pub(crate) fn challenge(
        &self,
        level: Option<FreshnessLevel>,
        scope: crate::freshness::NonceScope,
    ) -> Result<Vec<u8>, IssuerError> {
        let mut freshness = self.locked_freshness();
        if level == Some(FreshnessLevel::Epoch)
            && let Some(epochs) = freshness.epochs.as_mut()
        {
            return Ok(epochs.current()?.id().to_vec());
        }
        Ok(freshness.nonces.issue(scope)?.to_vec())
    }

    /// The current AF_L1 epoch.
    pub(crate) fn current_epoch(&self) -> Result<SignedEpoch, FreshnessError> {
        self.locked_freshness().epochs.as_mut().ok_or(FreshnessError::NoEpochs)?.current()
    }

    /// What makes evidence binding `nonce` fresh: a verifier nonce is spent here, under the
    /// freshness lock, so that of two requests presenting it only one establishes it.
    pub(crate) fn establish(&self, nonce: &[u8]) -> Result<crate::freshness::Fresh, FreshnessError> {
        self.locked_freshness().establish(nonce)
    }

    /// The freshness state, locked. Every change to it is one insert or remove, so a panic
    /// elsewhere while it was held leaves it consistent: keep serving.
    fn locked_freshness(&self) -> std::sync::MutexGuard<'_, Freshness> {
        self.freshness.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn for_platform(&self, platform: Platform) -> Result<&dyn Verifier, EvidenceRejection> {
        fn found<V: Verifier>(v: &Option<V>, or: EvidenceRejection) -> Result<&dyn Verifier, EvidenceRejection> {
            v.as_ref().map(|v| v as &dyn Verifier).ok_or(or)
        }
        match platform {
            Platform::Snp => found(&self.snp, EvidenceRejection::UnsupportedPlatform(Platform::Snp)),
            Platform::SimSnp => found(&self.sim_snp, EvidenceRejection::SimulationNotAccepted),
            Platform::Tdx => found(&self.tdx, EvidenceRejection::UnsupportedPlatform(Platform::Tdx)),
            Platform::SimTdx => found(&self.sim_tdx, EvidenceRejection::SimulationNotAccepted),
        }
    }

    /// Whether the evidence is well formed, before anything is spent on it: this Verifier takes
    /// its platform, it parses as that platform's report (SEV-SNP ABI, `ATTESTATION_REPORT`) or
    /// quote (Intel TDX DCAP Quote Generation Library, v4/v5), its key is a P-384 point, and a
    /// CSR comes with Enrollment only. Nothing here is verified: [`Self::appraise`] does that.
    pub(crate) fn well_formed(
        &self,
        evidence: &Evidence<'_>,
        expected: &Expected<'_>,
    ) -> Result<(), EvidenceRejection> {
        let bundle = &evidence.bundle;
        self.for_platform(bundle.platform)?;
        // The verifier's own refusals of these bytes, as its appraisal would give them.
        if matches!(bundle.platform, Platform::SimSnp | Platform::Snp) {
            twi_attester::snp::report::AttestationReport::parse(bundle.evidence)
                .map_err(|e| twi_verifier::Rejection::from(SnpRejection::from(SnpError::Malformed(e.to_string()))))?;
        } else {
            twi_attester::tdx::quote::ParsedQuote::parse(bundle.evidence)
                .map_err(|e| twi_verifier::Rejection::from(TdxError::Malformed(e.to_string())))?;
        }
        p384::PublicKey::from_sec1_bytes(bundle.public_key).map_err(|_| EvidenceRejection::BadPublicKey)?;
        match (expected.purpose, bundle.csr) {
            (binding::Purpose::Credential, None) => Err(EvidenceRejection::MissingCsr),
            (binding::Purpose::KeyRelease, Some(_)) => Err(EvidenceRejection::UnexpectedCsr),
            _ => Ok(()),
        }
    }

    /// Has the verifier of `platform` check `endorsements` ahead of the evidence that will
    /// come with them ([`Verifier::prepare`]); nothing if this Verifier does not take the
    /// platform.
    pub(crate) fn prepare(&self, platform: Platform, endorsements: &[Vec<u8>], now: SystemTime) {
        if let Ok(verifier) = self.for_platform(platform) {
            verifier.prepare(endorsements, now);
        }
    }

    /// SEV-SNP appraisals (real and simulated) that reused an endorsement chain verified
    /// before, at an appraisal or ahead of one ([`Self::prepare`]).
    pub(crate) fn cached_chain_hits(&self) -> u64 {
        [&self.snp, &self.sim_snp].into_iter().flatten().map(SnpVerifier::cached_chain_hits).sum()
    }

    /// Appraises the evidence with its platform's verifier, checks that it binds the
    /// bundle's key and nonce for `purpose` (a credential's key, or mechanism D's ephemeral
    /// key), then replays the event log against the evidence's RTMRs (TDX, real or simulated:
    /// the runtime is the TD's firmware, so every RTMR must be exactly the log's replay).
    pub(crate) fn appraise(
        &self,
        evidence: &Evidence<'_>,
        expected: &Expected<'_>,
        now: SystemTime,
    ) -> Result<Appraisal, EvidenceRejection> {
        let bundle = &evidence.bundle;
        let verified = self.for_platform(bundle.platform)?.verify(bundle.evidence, bundle.endorsements, now)?;
        if bundle.platform == Platform::SimTdx && !verified.simulated {
            return Err(EvidenceRejection::NotSimulated { platform: bundle.platform, anchor: verified.anchor });
        }
        check_binding(bundle, &verified.report_data, expected)?;
        verified.check_event_log(&measured_events(evidence.events))?;
        Ok(Appraisal { platform: bundle.platform, verified, freshness: None })
    }

    /// The signed attestation result (EAR JWT) for an admission, binding `public_key` and
    /// `nonce`; `credential` (mechanism A): the certificate it names, as (SHA-256, serial).
    pub(crate) fn attestation_result(&self, result: ResultFor<'_>, now: SystemTime) -> Result<String, IssuerError> {
        let mut ear = attestation_result(&result, now)?;
        if let Some((sha256, serial)) = result.credential {
            name_credential(&mut ear, sha256, serial);
        }
        ear.sign_jwt(self.signing_key()?, Some(VERIFIER_KID)).map_err(|e| IssuerError::token("attestation result", e))
    }

    /// Mechanism A with the Credential Authority in another process: this Verifier's own
    /// result `ear_jwt` (checked under its key), signed again naming the credential the
    /// Credential Authority issued on it, as (hex SHA-256 of its DER, hex serial).
    pub(crate) fn naming_credential(
        &self,
        ear_jwt: &str,
        credential: (&str, &str),
        now: SystemTime,
    ) -> Result<String, IssuerError> {
        let token = |e| IssuerError::token("attestation result", e);
        let key = self.signing_key()?;
        let mut ear = Ear::verify_jwt(ear_jwt, key.verifying_key(), now).map_err(token)?;
        name_credential(&mut ear, credential.0, credential.1);
        ear.sign_jwt(key, Some(VERIFIER_KID)).map_err(token)
    }
}

/// Every submodule of `ear` names the credential, as (hex SHA-256 of its DER, hex serial).
fn name_credential(ear: &mut Ear, sha256: &str, serial: &str) {
    for submod in ear.submods.values_mut() {
        submod.verifier_claims.insert("credential".into(), json!({ "x509-sha256": sha256, "x509-serial": serial }));
    }
}

/// The runtime's RTMR events as the TDX verifier replays them (and renders them as a CC event
/// log).
pub fn measured_events(events: &[RtmrEvent]) -> Vec<MeasuredEvent<'_>> {
    events
        .iter()
        .map(|e| MeasuredEvent { rtmr: e.rtmr, event_type: e.event_type, digest: &e.digest, data: &e.data })
        .collect()
}

/// What an attestation result is about.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResultFor<'a> {
    pub admission: &'a Admission,
    pub platform: Platform,
    pub trust_domain: &'a str,
    /// The key it binds (SEC1).
    pub public_key: &'a [u8],
    /// TACRA's freshness element the evidence bound, and its kind.
    pub nonce: &'a [u8],
    /// The TACRA freshness kind `nonce` is the element of (None: the workload's level says).
    pub freshness: Option<FreshnessKind>,
    /// Mechanism A: the credential it names, as (hex SHA-256 of its DER, hex serial).
    pub credential: Option<(&'a str, &'a str)>,
}

fn attestation_result(result: &ResultFor<'_>, now: SystemTime) -> Result<Ear, IssuerError> {
    let admission = result.admission;
    let mut verifier_claims = serde_json::Map::new();
    verifier_claims.insert("workload-id".into(), admission.workload_id.clone().into());
    let claims: serde_json::Map<_, _> = admission.claims.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
    verifier_claims.insert("claims".into(), claims.into());
    verifier_claims.insert("binding".into(), admission.binding.to_json());
    // Workload Provenance: the SBOM the admitted image names and the demands it met.
    if let Some(provenance) = &admission.provenance {
        verifier_claims.insert("provenance".into(), serde_json::to_value(provenance).unwrap_or_default());
    }
    // eat_nonce (RFC 9711: 8..=64 bytes) only for a handle the issuer handed out; every kind's
    // element is in the freshness input (`tacra_freshness`).
    let handle = result.freshness.is_none_or(|kind| kind.has_handle());
    let nonce = (handle && (8..=64).contains(&result.nonce.len())).then(|| result.nonce.to_vec());
    let appraisal = ear::Appraisal {
        // The status is the vector's worst tier: contraindicated on the simulated TEE's
        // unrecognised hardware, affirming on genuine hardware.
        status: None,
        trust_vector: admitted_vector(result.platform),
        policy_ids: vec![format!("twi-policy:{}@{}", result.trust_domain, admission.policy_version)],
        nonce: nonce.clone(),
        key_spki_der: None,
        verifier_claims,
        freshness: Some(freshness_input(result.freshness, admission.freshness, result.nonce)),
    }
    .bind_key(result.public_key)
    .map_err(|e| IssuerError::token("attestation result", e))?;
    let developer = "https://github.com/twi".into();
    let mut ear = Ear::new(VerifierId { build: VERIFIER_BUILD.into(), developer }, now, "twi", appraisal);
    ear.nonce = nonce;
    ear.exp = Some(crate::jose::unix_seconds(now) + RESULT_LIFETIME);
    Ok(ear)
}

/// The trustworthiness vector of an admitted launch on `platform`: the simulated TEE is not
/// recognised hardware.
pub(crate) fn admitted_vector(platform: Platform) -> TrustVector {
    let simulated = matches!(platform, Platform::SimSnp | Platform::SimTdx);
    TrustVector::admitted_launch(if simulated { claim::UNRECOGNIZED_HARDWARE } else { claim::GENUINE_HARDWARE })
}

/// The TACRA freshness input: the kind the evidence's target was served under and its
/// element (the handle, the epoch marker, the timestamp, or nothing); without a kind, the
/// workload's level names it (a nonce, or the epoch id under AF_L1).
fn freshness_input(kind: Option<FreshnessKind>, level: FreshnessLevel, nonce: &[u8]) -> ear::FreshnessInput {
    let kind = match kind {
        Some(FreshnessKind::PresentNonce) => ear::FreshnessKind::PresentNonce,
        Some(FreshnessKind::PresentEpoch) => ear::FreshnessKind::PresentEpoch,
        Some(FreshnessKind::AbsentEpoch) => ear::FreshnessKind::AbsentEpoch,
        Some(FreshnessKind::AbsentTimestamp) => ear::FreshnessKind::AbsentTimestamp,
        Some(FreshnessKind::AbsentNone) => ear::FreshnessKind::AbsentNone,
        None if level == FreshnessLevel::Epoch => ear::FreshnessKind::PresentEpoch,
        None => ear::FreshnessKind::PresentNonce,
    };
    ear::FreshnessInput { kind, value: nonce.to_vec() }
}

/// What the evidence must bind beyond what it carries: the relying party's identifier (this
/// issuer's, as the runtime's measured manifest names it) and the mode.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expected<'a> {
    pub rp_id: &'a str,
    /// Enrollment ([`binding::Purpose::Credential`]: a CSR is the subject) or Retrieval
    /// ([`binding::Purpose::KeyRelease`]: the CEK's SubjectPublicKeyInfo is).
    pub purpose: binding::Purpose,
}

/// The evidence binds this key for this acquisition: the key is a P-384 point, Enrollment
/// comes with a CSR for exactly that key (signed by it) and Retrieval with none, and REPORTDATA
/// is TACRA's binding of the freshness element, our identifier, the target and the subject
/// (`twi_attester::tacra`). Evidence made for Retrieval never passes for Enrollment, nor the
/// reverse: the subjects differ in form.
fn check_binding(
    bundle: &EvidenceBundle<'_>,
    report_data: &[u8; 64],
    expected: &Expected<'_>,
) -> Result<(), EvidenceRejection> {
    p384::PublicKey::from_sec1_bytes(bundle.public_key).map_err(|_| EvidenceRejection::BadPublicKey)?;
    let subject = match (expected.purpose, bundle.csr) {
        (binding::Purpose::Credential, Some(csr)) => {
            let key = twi_proto::csr::verify(csr).map_err(EvidenceRejection::BadCsr)?;
            if key[..] != *bundle.public_key {
                return Err(EvidenceRejection::CsrKeyMismatch);
            }
            csr.to_vec()
        }
        (binding::Purpose::Credential, None) => return Err(EvidenceRejection::MissingCsr),
        (binding::Purpose::KeyRelease, None) => {
            twi_proto::csr::spki_der(bundle.public_key).map_err(|_| EvidenceRejection::BadPublicKey)?
        }
        (binding::Purpose::KeyRelease, Some(_)) => return Err(EvidenceRejection::UnexpectedCsr),
    };
    let expected = twi_attester::tacra::report_data(bundle.nonce, expected.rp_id, bundle.target, &subject)
        .map_err(|_| EvidenceRejection::BadPublicKey)?;
    if *report_data != expected {
        return Err(EvidenceRejection::ReportDataMismatch {
            expected: hex::encode(expected),
            actual: hex::encode(report_data),
        });
    }
    Ok(())
}
