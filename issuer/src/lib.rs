//! The TWI issuer: it appraises Evidence from a confidential VM and issues a credential bound
//! to the key that the Evidence attests.
//!
//! Roles (names from draft-novak-twi-attestation): the Verifier ([`snp`], [`chain`]) checks
//! the hardware report and its endorsements; the Credential Authority ([`ca`], [`x509`])
//! issues an X.509 credential for exactly the attested public key. Policy, other credential
//! formats, the Key Store and the provenance log build on these.

pub mod ca;
pub mod chain;
pub mod oids;
pub mod snp;
pub mod x509;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use der::asn1::{OctetString, Utf8StringRef};
use der::{Encode, EncodePem};
use sha2::{Digest, Sha384};
use twi_attester::binding;
use twi_proto::msg::Platform;
use x509_cert::Certificate;
use x509_cert::name::Name;

pub use ca::IssuerCa;

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
    Snp(#[from] snp::SnpError),
    #[error(
        "the report's REPORTDATA does not bind this nonce and public key (expected {expected}, report has {actual})"
    )]
    ReportDataMismatch { expected: String, actual: String },
    #[error("the public key is not a valid P-384 point")]
    BadPublicKey,
    #[error("the issuer failed: {0}")]
    Internal(String),
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

/// What the Verifier concluded, kept with the credential.
#[derive(Debug, Clone)]
pub struct Appraisal {
    pub platform: Platform,
    pub measurement: Vec<u8>,
    pub chip_id: Vec<u8>,
    pub reported_tcb: u64,
    pub policy: u64,
    pub evidence_sha384: [u8; 48],
}

/// A credential and what it was issued on.
#[derive(Debug, Clone)]
pub struct Issued {
    pub certificate_der: Vec<u8>,
    pub certificate_pem: String,
    pub workload_id: String,
    pub serial_hex: String,
    pub appraisal: Appraisal,
}

/// The issuer: Verifier + Credential Authority in one process.
#[derive(Debug)]
pub struct Issuer {
    ca: IssuerCa,
    config: IssuerConfig,
    outstanding_nonces: HashSet<Vec<u8>>,
    clock: fn() -> SystemTime,
}

pub const NONCE_LEN: usize = 32;

impl Issuer {
    /// Opens (or creates) the issuer's CA under `state_dir`.
    pub fn open(state_dir: &Path, config: IssuerConfig) -> Result<Self, IssuerError> {
        let ca = IssuerCa::load_or_create(state_dir, &config.trust_domain)?;
        Ok(Self { ca, config, outstanding_nonces: HashSet::new(), clock: SystemTime::now })
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
        let mut nonce = vec![0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| IssuerError::Rng)?;
        self.outstanding_nonces.insert(nonce.clone());
        Ok(nonce)
    }

    /// Appraises `bundle` and, if it holds, issues the workload's credential for its key.
    pub fn issue(&mut self, bundle: &EvidenceBundle<'_>) -> Result<Issued, Rejection> {
        // The nonce is consumed whatever the outcome: evidence gets one try per challenge.
        if !self.outstanding_nonces.remove(bundle.nonce) {
            return Err(Rejection::UnknownNonce);
        }
        let appraisal = self.appraise(bundle)?;
        self.issue_certificate(bundle.public_key, appraisal).map_err(|e| Rejection::Internal(e.to_string()))
    }

    fn appraise(&self, bundle: &EvidenceBundle<'_>) -> Result<Appraisal, Rejection> {
        let root = match bundle.platform {
            Platform::SimSnp => self.config.sim_snp_root.as_ref().ok_or(Rejection::SimulationNotAccepted)?,
            other => return Err(Rejection::UnsupportedPlatform(other)),
        };
        let endorsements = bundle
            .endorsements
            .iter()
            .map(|der| chain::parse(der, "endorsement"))
            .collect::<Result<Vec<_>, _>>()
            .map_err(snp::SnpError::from)?;
        let report = snp::verify_report(bundle.evidence, &endorsements, root, (self.clock)())?;
        p384::PublicKey::from_sec1_bytes(bundle.public_key).map_err(|_| Rejection::BadPublicKey)?;
        let expected = binding::report_data(bundle.nonce, bundle.public_key).map_err(|_| Rejection::BadPublicKey)?;
        if report.report_data != expected {
            return Err(Rejection::ReportDataMismatch {
                expected: snp::hex(&expected),
                actual: snp::hex(&report.report_data),
            });
        }
        Ok(Appraisal {
            platform: bundle.platform,
            measurement: report.measurement.to_vec(),
            chip_id: report.chip_id.to_vec(),
            reported_tcb: report.reported_tcb.0,
            policy: report.policy.0,
            evidence_sha384: Sha384::digest(bundle.evidence).into(),
        })
    }

    fn issue_certificate(&self, public_key: &[u8], appraisal: Appraisal) -> Result<Issued, IssuerError> {
        let workload_id = self.workload_id();
        let subject: Name = format!("CN={},O={}", self.config.workload, self.config.trust_domain)
            .parse()
            .map_err(|e: der::Error| IssuerError::Certificate(e.to_string()))?;
        let mut extra = vec![x509::ExtraExtension {
            oid: oids::EVIDENCE_SHA384,
            critical: false,
            value_der: der_of(&OctetString::new(appraisal.evidence_sha384.to_vec()))?,
        }];
        if appraisal.platform == Platform::SimSnp {
            extra.push(x509::ExtraExtension {
                oid: oids::SIMULATED_TEE,
                critical: false,
                value_der: der_of(&Utf8StringRef::new("sim-snp"))?,
            });
        }
        let profile = x509::Profile {
            subject,
            issuer: Some(self.ca.subject().clone()),
            kind: x509::Kind::Workload { uri: workload_id.clone() },
            extra,
        };
        let serial = x509::random_serial()?;
        let serial_hex = snp::hex(serial.as_bytes());
        let spki = x509::p384_spki(public_key)?;
        let certificate = x509::issue(profile, serial, self.config.lifetime, spki, self.ca.key())?;
        let certificate_der = certificate.to_der().map_err(|e| IssuerError::Certificate(e.to_string()))?;
        let certificate_pem =
            certificate.to_pem(der::pem::LineEnding::LF).map_err(|e| IssuerError::Certificate(e.to_string()))?;
        Ok(Issued { certificate_der, certificate_pem, workload_id, serial_hex, appraisal })
    }
}

fn der_of<T: Encode, E: std::fmt::Display>(value: &Result<T, E>) -> Result<Vec<u8>, IssuerError> {
    match value {
        Ok(v) => v.to_der().map_err(|e| IssuerError::Certificate(e.to_string())),
        Err(e) => Err(IssuerError::Certificate(e.to_string())),
    }
}
