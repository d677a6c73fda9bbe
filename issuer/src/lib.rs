//! The TWI issuer: it appraises Evidence from a confidential VM and issues a credential bound
//! to the key that the Evidence attests.
//!
//! Roles (names from draft-novak-twi-attestation): the Verifier (a front over the
//! `twi-verifier` crate, one verifier per platform) checks the hardware report and its
//! endorsements; the Credential Authority ([`ca`], [`x509`])
//! issues an X.509 credential for exactly the attested public key. Policy, other credential
//! formats, the Key Store ([`keystore`], mechanism D) and the provenance log build on these.

pub mod ca;
pub mod ear;
pub mod freshness;
pub mod http;
pub mod issuance;
pub mod jose;
pub mod keystore;
pub mod oids;
pub mod policy;
pub mod provenance;
pub mod wit;
pub mod x509;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use der::asn1::{OctetString, Utf8StringRef};
use der::{Encode, EncodePem};
use sha2::{Digest, Sha256};
use twi_attester::binding;
use twi_proto::msg::Platform;
use twi_verifier::snp::{SnpConfig, SnpVerifier};
use twi_verifier::tdx::{Collateral, MeasuredEvent, TdxConfig, TdxError, TdxVerifier};
use twi_verifier::{Tcb, Verified, Verifier};
use x509_cert::Certificate;
use x509_cert::name::Name;

pub use ca::IssuerCa;

/// Transitional: `runtime/tests/session.rs` names this path until the runtime's tests drive
/// the host's bridge instead of their own loader (issue 12, item 4). Use
/// [`twi_verifier::snp::endorsements_from_table`].
#[doc(hidden)]
pub mod snp {
    pub use twi_verifier::snp::endorsements_from_table;
}

/// Problems of the issuer itself (not of the evidence it was shown).
#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    #[error("the operating system's random number generator failed")]
    Rng,
    #[error("issuer state at {0}: {1}")]
    State(PathBuf, String),
    #[error("certificate encoding: {0}")]
    Certificate(String),
    #[error("the public key is not a valid P-384 point")]
    BadPublicKey,
}

/// Why evidence was not good enough for a credential. Each message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the nonce was not issued by this issuer, or was already used (replay)")]
    UnknownNonce,
    #[error(
        "evidence from the simulated TEE is not accepted by this issuer (it is enabled only for development, e.g. by `twi run --platform sim`)"
    )]
    SimulationNotAccepted,
    #[error("evidence for platform {0:?} cannot be appraised yet")]
    UnsupportedPlatform(Platform),
    #[error("SEV-SNP report rejected: {0}")]
    Snp(#[from] twi_verifier::snp::SnpError),
    #[error("TDX quote rejected: {0}")]
    Tdx(#[from] TdxError),
    #[error(
        "the report's REPORTDATA does not bind this nonce and public key (expected {expected}, report has {actual})"
    )]
    ReportDataMismatch { expected: String, actual: String },
    #[error("the public key is not a valid P-384 point")]
    BadPublicKey,
    #[error("the appraisal policy refused the evidence: {0}")]
    Policy(#[from] policy::PolicyRejection),
    #[error("{workload} requires freshness {level}: {error}")]
    Freshness { workload: String, level: &'static str, error: freshness::FreshnessError },
    #[error("{0}")]
    Renewal(#[from] policy::RenewalRefused),
    #[error(
        "credential {0} has no provenance record at this issuer: a renewal must name a credential this issuer issued (its X.509 serial in hex, or its WIT jti)"
    )]
    UnknownPreviousCredential(String),
    #[error("the Credential Authority refused the credential request: {0}")]
    CredentialRequest(String),
    #[error("the Key Store refused the release: {0}")]
    KeyStore(#[from] keystore::KeyStoreError),
    #[error("the issuer failed: {0}")]
    Internal(String),
}

impl From<twi_verifier::Rejection> for Rejection {
    fn from(rejection: twi_verifier::Rejection) -> Self {
        match rejection {
            twi_verifier::Rejection::Snp(r) => Rejection::Snp(r.error),
            twi_verifier::Rejection::Tdx(e) => Rejection::Tdx(e),
        }
    }
}

/// How old (by its `iat`) an attestation result may be when the Credential Authority redeems
/// it (mechanism B); its `exp` must also not have passed.
pub const MAX_ATTESTATION_RESULT_AGE: Duration = Duration::from_secs(300);

/// Mechanism B, what the Verifier returns: the signed attestation result binding the key.
#[derive(Debug, Clone)]
pub struct VerifierResult {
    /// EAR JWT signed by the Verifier's key (`verifier-key.pem`), binding the workload key.
    pub ear_jwt: String,
    pub workload_id: String,
}

/// Mechanism B, what the workload sends the Credential Authority.
#[derive(Debug, Clone, Copy)]
pub struct CredentialRequestIn<'a> {
    /// The EAR JWT as the Verifier returned it.
    pub ear: &'a str,
    /// SEC1 P-384 point the request is for.
    pub public_key: &'a [u8],
    /// DER ECDSA P-384/SHA-384 signature by that key over
    /// [`twi_proto::msg::credential_request_signed_bytes`].
    pub proof: &'a [u8],
}

/// What the Verifier concluded for an attestation result it signed, for the Credential
/// Authority's certificate extension and provenance record (in-process handoff, keyed by the
/// result's SHA-256 and redeemed once).
#[derive(Debug, Clone)]
struct VerifiedLaunch {
    admission: policy::Admission,
    appraisal: Appraisal,
    nonce: Vec<u8>,
}

/// Mechanism D: what the Key Store released after the Verifier appraised the Evidence.
#[derive(Debug, Clone)]
pub struct KeyReleased {
    /// The provisioned credential as issued-of-record (its WIT, attestation result and
    /// provenance under the policy; the attestation result binds the ephemeral key).
    pub issued: Issued,
    /// The HPKE-encrypted key and the Key Store's receipt.
    pub release: keystore::Release,
}

/// Issuer settings.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// SPIFFE-style trust domain, e.g. `example.org`.
    pub trust_domain: String,
    /// The workload path under the trust domain, e.g. `payroll-app`.
    pub workload: String,
    /// Credential lifetime.
    pub lifetime: Duration,
    /// The simulated TEE's root (self-signed ARK), accepted only when set.
    pub sim_snp_root: Option<Certificate>,
}

/// Evidence as the loader relays it.
#[derive(Debug)]
pub struct EvidenceBundle<'a> {
    pub platform: Platform,
    pub evidence: &'a [u8],
    pub public_key: &'a [u8],
    pub nonce: &'a [u8],
    /// DER certificates the host supplies with the report, leaf first (SNP: VCEK, ASK).
    pub endorsements: &'a [Vec<u8>],
}

/// What the Verifier concluded, kept with the credential. For TDX evidence `measurement` is
/// MRTD, `chip_id` the PCK certificate's PPID, `policy` TDATTRIBUTES, `reported_tcb` zero.
#[derive(Debug, Clone)]
pub struct Appraisal {
    pub platform: Platform,
    pub measurement: Vec<u8>,
    pub chip_id: Vec<u8>,
    pub reported_tcb: u64,
    pub policy: u64,
    pub evidence_sha384: [u8; 48],
    /// The verifier's full result (its platform's typed appraisal in `verified.detail`).
    pub verified: Verified,
}

impl Appraisal {
    fn new(platform: Platform, verified: Verified) -> Self {
        let reported_tcb = match verified.tcb {
            Tcb::Snp { reported, .. } => reported.0,
            Tcb::Tdx { .. } => 0,
        };
        Self {
            platform,
            measurement: verified.measurement.to_vec(),
            chip_id: verified.platform_id.clone(),
            reported_tcb,
            policy: verified.policy,
            evidence_sha384: verified.evidence_sha384,
            verified,
        }
    }
}

/// A credential and what it was issued on.
#[derive(Debug, Clone)]
pub struct Issued {
    pub certificate_der: Vec<u8>,
    pub certificate_pem: String,
    pub workload_id: String,
    pub serial_hex: String,
    pub appraisal: Appraisal,
    /// Under an appraisal policy: the WIT, the attestation result, the provenance proofs.
    pub policy: Option<issuance::PolicyCredentials>,
}

/// The issuer: Verifier + Credential Authority in one process.
#[derive(Debug)]
pub struct Issuer {
    ca: IssuerCa,
    config: IssuerConfig,
    outstanding_nonces: HashSet<Vec<u8>>,
    clock: fn() -> SystemTime,
    /// The Verifier role: one verifier per platform it accepts evidence from.
    verifiers: Verifiers,
    /// The issuer state directory (CA, keys, provenance log).
    state_dir: PathBuf,
    /// The appraisal policy ([`Issuer::set_policy`]); `None`: every verified launch gets
    /// `config.workload` (the behaviour before policies).
    policy: Option<issuance::PolicyMode>,
    /// Mechanism B: attestation results the Verifier signed and the Credential Authority has
    /// not yet redeemed.
    verified_launches: HashMap<[u8; 32], VerifiedLaunch>,
    /// Mechanism D: the Key Store, opened on first use.
    key_store: Option<keystore::KeyStore>,
}

pub const NONCE_LEN: usize = 32;

impl Issuer {
    /// Opens (or creates) the issuer's CA under `state_dir`.
    pub fn open(state_dir: &Path, config: IssuerConfig) -> Result<Self, IssuerError> {
        let ca = IssuerCa::load_or_create(state_dir, &config.trust_domain)?;
        let sim_snp = config.sim_snp_root.as_ref().map(SnpVerifier::simulated).transpose().map_err(|e| {
            IssuerError::Certificate(format!(
                "the simulated TEE's root cannot be used: {e}; recreate the simulator state"
            ))
        })?;
        Ok(Self {
            ca,
            config,
            outstanding_nonces: HashSet::new(),
            clock: SystemTime::now,
            verifiers: Verifiers { sim_snp, ..Verifiers::default() },
            state_dir: state_dir.to_path_buf(),
            policy: None,
            verified_launches: HashMap::new(),
            key_store: None,
        })
    }

    /// Issues under `policy` from now on (see [`issuance`]): the credential's identity and
    /// claims come from the workload the policy admits, freshness is per workload, and every
    /// credential is logged in `provenance.sqlite` in the state directory before it is returned.
    pub fn set_policy(&mut self, policy: policy::Policy) -> Result<(), IssuerError> {
        self.policy = Some(issuance::PolicyMode::open(&self.state_dir, policy)?);
        Ok(())
    }

    /// The policy issuance state, when a policy is set.
    pub fn policy_mode(&mut self) -> Option<&mut issuance::PolicyMode> {
        self.policy.as_mut()
    }

    /// A challenge for a launch expected to have `measurement` on `platform`: the current
    /// epoch's id if the policy gives that launch AF_L1, else a verifier nonce
    /// ([`Issuer::challenge`]).
    pub fn challenge_for(&mut self, platform: Platform, measurement: &[u8]) -> Result<Vec<u8>, IssuerError> {
        if let Some(mode) = self.policy.as_mut()
            && mode.freshness_for(platform, measurement) == Some(freshness::FreshnessLevel::Epoch)
        {
            return Ok(mode.epoch()?.id().to_vec());
        }
        self.challenge()
    }

    /// Accepts evidence from real AMD SEV-SNP hardware ([`Platform::Snp`]) under `config`
    /// (`SnpConfig::default()`: AMD's built-in roots, the default policy).
    pub fn accept_hardware_snp(&mut self, config: SnpConfig) {
        self.verifiers.snp = Some(SnpVerifier::new(config));
    }

    /// Accepts evidence from real Intel TDX hardware ([`Platform::Tdx`]) under `config`,
    /// judging the TCB with `collateral` (verified again at each issuance, so it must be
    /// current); without collateral only if `config.policy.skip_tcb`.
    pub fn accept_hardware_tdx(&mut self, config: TdxConfig, collateral: Option<Collateral>) {
        self.verifiers.tdx = Some(TdxVerifier::new(config, collateral));
    }

    /// Accepts evidence from the simulated TDX platform ([`Platform::SimTdx`], e.g. `twi run
    /// --platform sim-tdx`): quotes whose PCK chain ends in `root`, judged with `collateral`
    /// (signed under the same root) by the same verifier as Intel's. Credentials issued on
    /// them say "sim-tdx".
    pub fn accept_simulated_tdx(&mut self, root: &Certificate, collateral: Collateral) -> Result<(), Rejection> {
        let verifier = TdxVerifier::simulated(root, collateral).map_err(|e| Rejection::Tdx(TdxError::PckChain(e)))?;
        self.verifiers.sim_tdx = Some(verifier);
        Ok(())
    }

    pub fn ca(&self) -> &IssuerCa {
        &self.ca
    }

    /// The SPIFFE ID the configured workload receives.
    pub fn workload_id(&self) -> String {
        format!("spiffe://{}/{}", self.config.trust_domain, self.config.workload)
    }

    /// A fresh single-use verifier nonce.
    pub fn challenge(&mut self) -> Result<Vec<u8>, IssuerError> {
        if let Some(mode) = self.policy.as_mut() {
            return mode.nonce();
        }
        let mut nonce = vec![0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| IssuerError::Rng)?;
        self.outstanding_nonces.insert(nonce.clone());
        Ok(nonce)
    }

    /// Appraises `bundle` and, if it holds, issues the workload's credential for its key.
    pub fn issue(&mut self, bundle: &EvidenceBundle<'_>) -> Result<Issued, Rejection> {
        self.issue_with_events(bundle, &[])
    }

    /// [`Issuer::issue`] for evidence that comes with the TD's RTMR event log: the log must
    /// replay to the quote's RTMRs (today checked for [`Platform::SimTdx`]).
    pub fn issue_with_events(
        &mut self,
        bundle: &EvidenceBundle<'_>,
        events: &[twi_proto::msg::RtmrEvent],
    ) -> Result<Issued, Rejection> {
        if self.policy.is_some() {
            return self.issue_under_policy(bundle, events, None, None);
        }
        // The nonce is consumed whatever the outcome: evidence gets one try per challenge.
        if !self.outstanding_nonces.remove(bundle.nonce) {
            return Err(Rejection::UnknownNonce);
        }
        let appraisal = self.appraise_any(bundle, events, binding::Purpose::Credential)?;
        self.issue_certificate(bundle.public_key, appraisal).map_err(|e| Rejection::Internal(e.to_string()))
    }

    /// A renewal under the policy: as [`Issuer::issue_with_events`], and refused unless the
    /// launch keeps what credential `previous` (its X.509 serial in hex or its WIT jti) was
    /// bound to (the workload's stickiness, e.g. CS_L3: the same chip).
    pub fn renew_with_events(
        &mut self,
        bundle: &EvidenceBundle<'_>,
        events: &[twi_proto::msg::RtmrEvent],
        previous: &str,
    ) -> Result<Issued, Rejection> {
        if self.policy.is_none() {
            return Err(Rejection::Internal(
                "renewals are checked against the appraisal policy's stickiness: configure a policy".into(),
            ));
        }
        self.issue_under_policy(bundle, events, Some(previous), None)
    }

    /// Policy-driven issuance with an explicit mechanism (recorded in the provenance log;
    /// `None`: the workload's own choice).
    pub fn issue_with_mechanism(
        &mut self,
        bundle: &EvidenceBundle<'_>,
        events: &[twi_proto::msg::RtmrEvent],
        mechanism: Option<policy::Mechanism>,
    ) -> Result<Issued, Rejection> {
        if self.policy.is_none() {
            return self.issue_with_events(bundle, events);
        }
        self.issue_under_policy(bundle, events, None, mechanism)
    }

    /// The Verifier: appraises the evidence of whichever platform the bundle names with that
    /// platform's verifier, checks that it binds the bundle's key and nonce, then replays the
    /// event log against the evidence's RTMRs (TDX, real or simulated; the runtime is the TD's
    /// firmware, so every RTMR must be exactly the log's replay; SEV-SNP has none).
    ///
    /// `purpose`: what the evidence must bind its key for (`attester::binding::Purpose`): a
    /// credential's key, or (mechanism D) the ephemeral key of a key release.
    fn appraise_any(
        &self,
        bundle: &EvidenceBundle<'_>,
        events: &[twi_proto::msg::RtmrEvent],
        purpose: binding::Purpose,
    ) -> Result<Appraisal, Rejection> {
        let verifier = self.verifiers.for_platform(bundle.platform)?;
        let verified = verifier.verify(bundle.evidence, bundle.endorsements, (self.clock)())?;
        if bundle.platform == Platform::SimTdx && !verified.simulated {
            return Err(Rejection::Internal(format!(
                "evidence labelled {:?} is rooted in {}, not in the simulated TEE",
                Platform::SimTdx,
                verified.anchor
            )));
        }
        check_key_binding(bundle, &verified.report_data, purpose)?;
        let events: Vec<MeasuredEvent<'_>> =
            events.iter().map(|e| MeasuredEvent { rtmr: e.rtmr, digest: &e.digest, data: &e.data }).collect();
        verified.check_event_log(&events)?;
        Ok(Appraisal::new(bundle.platform, verified))
    }

    fn issue_under_policy(
        &mut self,
        bundle: &EvidenceBundle<'_>,
        events: &[twi_proto::msg::RtmrEvent],
        previous: Option<&str>,
        mechanism: Option<policy::Mechanism>,
    ) -> Result<Issued, Rejection> {
        let no_policy = || Rejection::Internal("no appraisal policy".into());
        // A verifier nonce is redeemed whatever the outcome (one try per challenge); an epoch
        // id is recognised; any other nonce establishes nothing (enough for AF_L0 only).
        let established = self.policy.as_mut().ok_or_else(no_policy)?.freshness.establish(bundle.nonce);
        let appraisal = self.appraise_any(bundle, events, binding::Purpose::Credential)?;
        let mode = self.policy.as_ref().ok_or_else(no_policy)?;
        let admission = mode.admit(&appraisal, &established, previous)?;
        let extension =
            issuance::PolicyMode::x509_extension(&admission).map_err(|e| Rejection::Internal(e.to_string()))?;
        let mut issued = self
            .issue_certificate_as(
                bundle.public_key,
                appraisal,
                (
                    &admission.workload_id,
                    &admission.workload,
                    &self.policy.as_ref().ok_or_else(no_policy)?.policy.trust_domain,
                ),
                admission.lifetime,
                vec![extension],
            )
            .map_err(|e| Rejection::Internal(e.to_string()))?;
        let now = (self.clock)();
        let mode = self.policy.as_mut().ok_or_else(no_policy)?;
        let credentials = mode.finish(
            &admission,
            &issued.appraisal,
            bundle.public_key,
            bundle.nonce,
            &issued.serial_hex,
            &issued.certificate_der,
            mechanism.unwrap_or(admission.mechanism),
            now,
        )?;
        issued.policy = Some(credentials);
        Ok(issued)
    }

    /// Mechanism B, the **Verifier** role: appraises `bundle` under the policy (freshness,
    /// reference values, claims) and returns an attestation result (EAR JWT) signed by the
    /// Verifier's key that binds the workload's key. No credential is issued here: the workload
    /// takes the result to the Credential Authority ([`Issuer::issue_for_credential_request`]).
    pub fn verify_for_credential_request(
        &mut self,
        bundle: &EvidenceBundle<'_>,
        events: &[twi_proto::msg::RtmrEvent],
    ) -> Result<VerifierResult, Rejection> {
        let no_policy = || Rejection::Internal("mechanism B needs an appraisal policy".into());
        let established = self.policy.as_mut().ok_or_else(no_policy)?.freshness.establish(bundle.nonce);
        let appraisal = self.appraise_any(bundle, events, binding::Purpose::Credential)?;
        let now = (self.clock)();
        let mode = self.policy.as_ref().ok_or_else(no_policy)?;
        let admission = mode.admit(&appraisal, &established, None)?;
        let ear = mode.attestation_result(&admission, bundle.public_key, bundle.nonce, appraisal.platform, now)?;
        let ear_jwt = ear
            .sign_jwt(mode.verifier_key(), Some("twi-verifier"))
            .map_err(|e| Rejection::Internal(format!("attestation result: {e}")))?;
        let workload_id = admission.workload_id.clone();
        let digest: [u8; 32] = Sha256::digest(ear_jwt.as_bytes()).into();
        self.verified_launches.insert(digest, VerifiedLaunch { admission, appraisal, nonce: bundle.nonce.to_vec() });
        Ok(VerifierResult { ear_jwt, workload_id })
    }

    /// Mechanism B, the **Credential Authority** role: issues for `request` only if its
    /// attestation result verifies under the Verifier's *public* key (the CA holds no Verifier
    /// secret), has not expired and is at most [`MAX_ATTESTATION_RESULT_AGE`] old, affirms the
    /// launch, binds exactly the requested key, and the proof of possession (the key's signature
    /// over `"TWI-CREDREQ-v1\0" ‖ eat_nonce ‖ key ‖ SHA-256(ear)`) verifies. Each attestation
    /// result is redeemed once. The certificate is signed by the CA key, not the Verifier's.
    pub fn issue_for_credential_request(&mut self, request: &CredentialRequestIn<'_>) -> Result<Issued, Rejection> {
        use p384::ecdsa::signature::Verifier as _;
        let refuse = |why: String| Rejection::CredentialRequest(why);
        let now = (self.clock)();
        let mode = self.policy.as_ref().ok_or_else(|| Rejection::Internal("mechanism B needs a policy".into()))?;
        let verifier_public = *mode.verifier_key().verifying_key();
        let ear = ear::Ear::verify_jwt(request.ear, &verifier_public, now)
            .map_err(|e| refuse(format!("the attestation result is not the Verifier's: {e}")))?;
        let now_s = jose::unix_seconds(now);
        if ear.exp.is_none() {
            return Err(refuse("the attestation result has no expiry".into()));
        }
        if ear.iat > now_s + 60 || now_s.saturating_sub(ear.iat) > MAX_ATTESTATION_RESULT_AGE.as_secs() {
            return Err(refuse(format!(
                "the attestation result was issued at {} (now {now_s}): older than {} s or in the future",
                ear.iat,
                MAX_ATTESTATION_RESULT_AGE.as_secs()
            )));
        }
        let submod =
            ear.submods.get("twi").ok_or_else(|| refuse("the attestation result has no `twi` submod".into()))?;
        if submod.status != Some(ear::Status::Affirming) {
            return Err(refuse(format!(
                "the attestation result's status is {}, not affirming",
                submod.status.unwrap_or(ear::Status::None).name()
            )));
        }
        let requested = p384::PublicKey::from_sec1_bytes(request.public_key).map_err(|_| Rejection::BadPublicKey)?;
        let bound = submod
            .bound_key()
            .map_err(|e| refuse(e.to_string()))?
            .ok_or_else(|| refuse("the attestation result binds no key".into()))?;
        if bound != requested {
            return Err(refuse("the attestation result binds another key than the one requested".into()));
        }
        let nonce = ear.nonce.as_deref().ok_or_else(|| refuse("the attestation result carries no nonce".into()))?;
        let digest: [u8; 32] = Sha256::digest(request.ear.as_bytes()).into();
        let signed = twi_proto::msg::credential_request_signed_bytes(nonce, request.public_key, &digest);
        let proof = p384::ecdsa::Signature::from_der(request.proof)
            .map_err(|_| refuse("the proof of possession is not a DER ECDSA signature".into()))?;
        p384::ecdsa::VerifyingKey::from(&requested)
            .verify(&signed, &proof)
            .map_err(|_| refuse("the proof of possession does not verify under the requested key".into()))?;
        let launch = self.verified_launches.remove(&digest).ok_or_else(|| {
            refuse("the attestation result was already redeemed (replay) or this Verifier did not issue it".into())
        })?;
        if launch.nonce != nonce {
            return Err(refuse("the attestation result's nonce is not the one its Evidence was fresh for".into()));
        }
        let admission = launch.admission;
        let extension =
            issuance::PolicyMode::x509_extension(&admission).map_err(|e| Rejection::Internal(e.to_string()))?;
        let trust_domain = mode.policy.trust_domain.clone();
        let mut issued = self
            .issue_certificate_as(
                request.public_key,
                launch.appraisal,
                (&admission.workload_id, &admission.workload, &trust_domain),
                admission.lifetime,
                vec![extension],
            )
            .map_err(|e| Rejection::Internal(e.to_string()))?;
        let mode = self.policy.as_mut().ok_or_else(|| Rejection::Internal("no appraisal policy".into()))?;
        let mut credentials = mode.finish(
            &admission,
            &issued.appraisal,
            request.public_key,
            nonce,
            &issued.serial_hex,
            &issued.certificate_der,
            policy::Mechanism::B,
            now,
        )?;
        // The attestation result of record is the one the workload presented.
        credentials.ear_jwt = request.ear.to_string();
        issued.policy = Some(credentials);
        Ok(issued)
    }

    /// Mechanism D: the Key Store (opened, and its signing key created, on first use).
    pub fn key_store(&mut self) -> Result<&keystore::KeyStore, IssuerError> {
        if self.key_store.is_none() {
            self.key_store = Some(keystore::KeyStore::open(&self.state_dir)?);
        }
        self.key_store.as_ref().ok_or_else(|| IssuerError::State(self.state_dir.clone(), "no Key Store".into()))
    }

    /// Mechanism D, the **workload owner**'s step, as `twi run --mechanism d` does it for the
    /// demo: makes sure the Key Store holds a credential for the workload that the policy
    /// admits with `measurement` on `platform`. When none is provisioned yet, generates a P-384
    /// key and has the Credential Authority certify it for the workload's Stable identifier (no
    /// evidence: the owner asks for it, not the launch), and stores both. Returns the
    /// provisioned credential and whether it was created now.
    pub fn provision_workload(
        &mut self,
        platform: Platform,
        measurement: &[u8],
    ) -> Result<(keystore::Provisioned, bool), IssuerError> {
        let unknown = || {
            IssuerError::State(
                self.state_dir.clone(),
                "the policy admits no single workload for this launch, so there is nothing to provision".into(),
            )
        };
        let mode = self.policy.as_ref().ok_or_else(unknown)?;
        let workload = mode.workload_for(platform, measurement).ok_or_else(unknown)?;
        let trust_domain = mode.policy.trust_domain.clone();
        let (id, lifetime) = (workload.id.clone(), workload.lifetime);
        let workload_id = format!("spiffe://{trust_domain}/{id}");
        let ca_subject = self.ca.subject().clone();
        let ca_key = self.ca.key().clone();
        let uri = workload_id.clone();
        let make = move || {
            use p384::elliptic_curve::Generate;
            let key = p384::ecdsa::SigningKey::try_generate().map_err(|_| IssuerError::Rng)?;
            let subject: Name = format!("CN={id},O={trust_domain}")
                .parse()
                .map_err(|e: der::Error| IssuerError::Certificate(e.to_string()))?;
            let profile = x509::Profile {
                subject,
                issuer: Some(ca_subject),
                kind: x509::Kind::Workload { uri },
                extra: Vec::new(),
            };
            let spki = x509_cert::spki::SubjectPublicKeyInfoOwned::from_key(key.verifying_key())
                .map_err(|e| IssuerError::Certificate(e.to_string()))?;
            let certificate = x509::issue(profile, x509::random_serial()?, lifetime, spki, &ca_key)?;
            let der = certificate.to_der().map_err(|e| IssuerError::Certificate(e.to_string()))?;
            Ok((der, key))
        };
        self.key_store()?.provision_if_absent(&workload_id, make)
    }

    /// Mechanism D, the workload owner's step (`twi keystore provision`): puts the owner's
    /// P-384 `key` and a credential for `workload_id` into the Key Store, replacing what was
    /// there. With `certificate` (DER), it must certify `key` and be issued by this issuer's
    /// CA, the anchor a runtime checks a released credential against; without, the CA
    /// certifies `key` now, valid for `lifetime`.
    pub fn provision_owner(
        &mut self,
        workload_id: &str,
        key: &p384::ecdsa::SigningKey,
        certificate: Option<&[u8]>,
        lifetime: Duration,
    ) -> Result<keystore::Provisioned, IssuerError> {
        let der = match certificate {
            Some(der) => {
                let cert = <Certificate as der::Decode>::from_der(der)
                    .map_err(|e| IssuerError::Certificate(format!("the owner's certificate is not DER: {e}")))?;
                twi_verifier::chain::verify_chain(std::slice::from_ref(&cert), self.ca.certificate(), (self.clock)()).map_err(|e| {
                    IssuerError::Certificate(format!(
                        "the owner's certificate is not one this issuer's CA ({}) issued and a runtime would accept: {e}",
                        self.ca.subject()
                    ))
                })?;
                if !certificate_names(&cert, workload_id) {
                    return Err(IssuerError::Certificate(format!(
                        "the owner's certificate does not name {workload_id} as its URI subject alternative name"
                    )));
                }
                der.to_vec()
            }
            None => {
                let (common_name, organisation) = match workload_id.strip_prefix("spiffe://") {
                    Some(rest) => {
                        let (domain, path) = rest.split_once('/').unwrap_or((rest, ""));
                        (path.rsplit('/').next().filter(|p| !p.is_empty()).unwrap_or(domain).to_string(), domain)
                    }
                    None => (workload_id.to_string(), "TWI workload"),
                };
                let subject: Name = format!("CN={common_name},O={organisation}")
                    .parse()
                    .map_err(|e: der::Error| IssuerError::Certificate(format!("workload id {workload_id:?}: {e}")))?;
                let profile = x509::Profile {
                    subject,
                    issuer: Some(self.ca.subject().clone()),
                    kind: x509::Kind::Workload { uri: workload_id.to_string() },
                    extra: Vec::new(),
                };
                let spki = x509_cert::spki::SubjectPublicKeyInfoOwned::from_key(key.verifying_key())
                    .map_err(|e| IssuerError::Certificate(e.to_string()))?;
                let certificate = x509::issue(profile, x509::random_serial()?, lifetime, spki, self.ca.key())?;
                certificate.to_der().map_err(|e| IssuerError::Certificate(e.to_string()))?
            }
        };
        self.key_store()?.provision(workload_id, &der, key)
    }

    /// Mechanism D: the **Verifier** appraises `bundle` (whose key is the ephemeral HPKE key the
    /// runtime generated for the release) under the policy and nonce as for the other
    /// mechanisms; only then the **Key Store** releases the key provisioned for the admitted
    /// workload, HPKE-encrypted to that ephemeral key, once per nonce. The release is logged in
    /// the provenance log (records: the X.509 credential under id `<serial>.release.<first 16
    /// hex digits of SHA-256(nonce)>`, since one provisioned certificate is released to many
    /// launches, and a WIT bound to the released key), and the attestation result binds the
    /// ephemeral key the Evidence attested.
    pub fn release_key(
        &mut self,
        bundle: &EvidenceBundle<'_>,
        events: &[twi_proto::msg::RtmrEvent],
    ) -> Result<KeyReleased, Rejection> {
        let no_policy = || Rejection::Internal("mechanism D needs an appraisal policy".into());
        let established = self.policy.as_mut().ok_or_else(no_policy)?.freshness.establish(bundle.nonce);
        let appraisal = self.appraise_any(bundle, events, binding::Purpose::KeyRelease)?;
        let now = (self.clock)();
        let mode = self.policy.as_ref().ok_or_else(no_policy)?;
        let admission = mode.admit(&appraisal, &established, None)?;
        let grant = keystore::ReleaseGrant {
            workload_id: admission.workload_id.clone(),
            nonce: bundle.nonce.to_vec(),
            ephemeral_public_key: bundle.public_key.to_vec(),
            evidence_sha384: appraisal.evidence_sha384,
        };
        let release = self.key_store().map_err(|e| Rejection::Internal(e.to_string()))?.release(&grant, now)?;
        let provisioned = release.provisioned.clone();
        let mode = self.policy.as_ref().ok_or_else(no_policy)?;
        let ear = mode.attestation_result(&admission, bundle.public_key, bundle.nonce, appraisal.platform, now)?;
        let ear_jwt = ear
            .sign_jwt(mode.verifier_key(), Some("twi-verifier"))
            .map_err(|e| Rejection::Internal(format!("attestation result: {e}")))?;
        let record_id =
            format!("{}.release.{}", provisioned.serial_hex, &hex::encode(Sha256::digest(bundle.nonce))[..16]);
        let mode = self.policy.as_mut().ok_or_else(no_policy)?;
        let mut credentials = mode.finish(
            &admission,
            &appraisal,
            &provisioned.public_key,
            bundle.nonce,
            &record_id,
            &provisioned.certificate_der,
            policy::Mechanism::D,
            now,
        )?;
        credentials.ear_jwt = ear_jwt;
        let issued = Issued {
            certificate_der: provisioned.certificate_der.clone(),
            certificate_pem: provisioned.certificate_pem.clone(),
            workload_id: provisioned.workload_id.clone(),
            serial_hex: provisioned.serial_hex.clone(),
            appraisal,
            policy: Some(credentials),
        };
        Ok(KeyReleased { issued, release })
    }

    fn issue_certificate(&self, public_key: &[u8], appraisal: Appraisal) -> Result<Issued, IssuerError> {
        let workload_id = self.workload_id();
        let names = (workload_id.as_str(), self.config.workload.as_str(), self.config.trust_domain.as_str());
        self.issue_certificate_as(public_key, appraisal, names, self.config.lifetime, Vec::new())
    }

    /// `names`: the SAN URI, the workload and the trust domain (for the subject).
    fn issue_certificate_as(
        &self,
        public_key: &[u8],
        appraisal: Appraisal,
        (workload_id, workload, trust_domain): (&str, &str, &str),
        lifetime: Duration,
        more: Vec<x509::ExtraExtension>,
    ) -> Result<Issued, IssuerError> {
        let workload_id = workload_id.to_string();
        let subject: Name = format!("CN={workload},O={trust_domain}")
            .parse()
            .map_err(|e: der::Error| IssuerError::Certificate(e.to_string()))?;
        let mut extra = vec![x509::ExtraExtension {
            oid: oids::EVIDENCE_SHA384,
            critical: false,
            value_der: der_of(&OctetString::new(appraisal.evidence_sha384.to_vec()))?,
        }];
        let simulated = match appraisal.platform {
            Platform::SimSnp => Some("sim-snp"),
            Platform::SimTdx => Some("sim-tdx"),
            _ => None,
        };
        extra.extend(more);
        if let Some(name) = simulated {
            extra.push(x509::ExtraExtension {
                oid: oids::SIMULATED_TEE,
                critical: false,
                value_der: der_of(&Utf8StringRef::new(name))?,
            });
        }
        let profile = x509::Profile {
            subject,
            issuer: Some(self.ca.subject().clone()),
            kind: x509::Kind::Workload { uri: workload_id.clone() },
            extra,
        };
        let serial = x509::random_serial()?;
        let serial_hex = hex::encode(serial.as_bytes());
        let spki = x509::p384_spki(public_key)?;
        let certificate = x509::issue(profile, serial, lifetime, spki, self.ca.key())?;
        let certificate_der = certificate.to_der().map_err(|e| IssuerError::Certificate(e.to_string()))?;
        let certificate_pem =
            certificate.to_pem(der::pem::LineEnding::LF).map_err(|e| IssuerError::Certificate(e.to_string()))?;
        Ok(Issued { certificate_der, certificate_pem, workload_id, serial_hex, appraisal, policy: None })
    }
}

/// Whether `cert` carries `uri` as a URI subject alternative name.
fn certificate_names(cert: &Certificate, uri: &str) -> bool {
    use x509_cert::ext::pkix::SubjectAltName;
    use x509_cert::ext::pkix::name::GeneralName;
    let Ok(Some(san)) = cert.tbs_certificate().get_extension::<SubjectAltName>() else { return false };
    san.1.0.iter().any(|name| matches!(name, GeneralName::UniformResourceIdentifier(u) if u.as_str() == uri))
}

/// The evidence binds this key and nonce: the key is a P-384 point (otherwise no credential,
/// whatever the report binds) and REPORTDATA is exactly their binding (attester::binding).
/// `purpose` picks the label: evidence bound for a key release never passes for a credential,
/// nor the reverse.
fn check_key_binding(
    bundle: &EvidenceBundle<'_>,
    report_data: &[u8; 64],
    purpose: binding::Purpose,
) -> Result<(), Rejection> {
    p384::PublicKey::from_sec1_bytes(bundle.public_key).map_err(|_| Rejection::BadPublicKey)?;
    let expected =
        binding::report_data_for(purpose, bundle.nonce, bundle.public_key).map_err(|_| Rejection::BadPublicKey)?;
    if *report_data != expected {
        return Err(Rejection::ReportDataMismatch {
            expected: hex::encode(expected),
            actual: hex::encode(report_data),
        });
    }
    Ok(())
}

/// The Verifier role's verifiers, one per platform the issuer accepts evidence from (`None`:
/// refused).
#[derive(Debug, Default)]
struct Verifiers {
    /// Real SEV-SNP ([`Platform::Snp`]).
    snp: Option<SnpVerifier>,
    /// The simulated SEV-SNP platform ([`Platform::SimSnp`]), under its root only.
    sim_snp: Option<SnpVerifier>,
    /// Real TDX ([`Platform::Tdx`]).
    tdx: Option<TdxVerifier>,
    /// The simulated TDX platform ([`Platform::SimTdx`]).
    sim_tdx: Option<TdxVerifier>,
}

impl Verifiers {
    fn for_platform(&self, platform: Platform) -> Result<&dyn Verifier, Rejection> {
        fn found<V: Verifier>(v: &Option<V>, or: Rejection) -> Result<&dyn Verifier, Rejection> {
            v.as_ref().map(|v| v as &dyn Verifier).ok_or(or)
        }
        match platform {
            Platform::Snp => found(&self.snp, Rejection::UnsupportedPlatform(Platform::Snp)),
            Platform::SimSnp => found(&self.sim_snp, Rejection::SimulationNotAccepted),
            Platform::Tdx => found(&self.tdx, Rejection::UnsupportedPlatform(Platform::Tdx)),
            Platform::SimTdx => found(&self.sim_tdx, Rejection::SimulationNotAccepted),
        }
    }
}

fn der_of<T: Encode, E: std::fmt::Display>(value: &Result<T, E>) -> Result<Vec<u8>, IssuerError> {
    match value {
        Ok(v) => v.to_der().map_err(|e| IssuerError::Certificate(e.to_string())),
        Err(e) => Err(IssuerError::Certificate(e.to_string())),
    }
}
