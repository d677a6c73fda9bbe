//! AMD SEV-SNP report appraisal (AMD "SEV Secure Nested Paging Firmware ABI Specification",
//! "ATTESTATION_REPORT Structure"; AMD "VCEK Certificate and KDS Interface Specification"):
//! the product lines, the built-in roots, the VCEK/VLEK certificate extensions, the KDS cache
//! layout, the appraisal policy, and the appraisal that puts them together.
//!
//! [`SnpVerifier`] is the platform's [`Verifier`]: AMD's roots for hardware, or the same code
//! under the simulated TEE's root only (`twi run --platform sim`), which [`Verified`] then
//! names as simulated.

pub(crate) mod appraisal;
mod cache;
pub mod kds;
mod policy;
mod product;
mod roots;
mod vek;

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use sha2::{Digest, Sha384};
use x509_cert::Certificate;

use crate::chain::{Cert, ChainError};
use crate::verdict::{Detail, Rejection, Tcb, Tee, Verified, Verifier};

pub use appraisal::{
    NEWEST_REPORT_VERSION, SIG_ALGO_ECDSA_P384_SHA384, SnpAppraisal, SnpConfig, SnpError, SnpHint, SnpRejection,
    SnpWarning, VerifiedVek, appraise, appraise_bundle, endorsements_from_table, parse_report, verify_endorsements,
    verify_report,
};
pub use policy::{PolicyViolation, SnpPolicy};
pub use product::Product;
pub use roots::{AMD_ARK_SPKI_SHA384, Anchor, SnpTrust};
pub use vek::{ComponentLag, VekError, VekExtensions, VekKind, describe_tcb, tcb_lag};

/// The SEV-SNP verifier: roots and policy ([`SnpConfig`]), and the endorsement chains it
/// verified (`cache.rs`; clones share them).
#[derive(Clone, Debug, Default)]
pub struct SnpVerifier {
    config: SnpConfig,
    chains: Arc<Mutex<cache::ChainCache>>,
}

impl SnpVerifier {
    pub fn new(config: SnpConfig) -> Self {
        Self { config, chains: Arc::default() }
    }

    /// Appraisals that reused an endorsement chain verified before (not verified again).
    pub fn cached_chain_hits(&self) -> u64 {
        self.chains.lock().map_or(0, |c| c.hits())
    }

    /// The endorsement chain of `endorsements`, verified now or taken from the cache while
    /// every certificate of it is valid.
    fn verified_chain(&self, endorsements: &[Vec<u8>], now: SystemTime) -> Result<VerifiedVek, SnpRejection> {
        let key = cache::key(endorsements);
        if let Some(vek) = self.chains.lock().ok().and_then(|mut c| c.get(&key, now)) {
            return Ok(vek);
        }
        let certs = endorsements
            .iter()
            .map(|der| Cert::from_der(der, "endorsement"))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SnpRejection::from(SnpError::from(e)))?;
        let certs = leaf_first(certs);
        let vek = verify_endorsements(&certs, &[], &self.config.trust, now)?;
        let root = certs.last().and_then(|top| self.config.trust.root_above(top));
        let window = cache::window(certs.iter().chain(root).map(Cert::certificate));
        if let Ok(mut chains) = self.chains.lock() {
            chains.insert(key, vek.clone(), window);
        }
        Ok(vek)
    }

    /// The simulated SEV-SNP platform's verifier: reports whose chain ends in `root` (the
    /// simulated PSP's self-signed ARK) and in nothing else, under the default policy.
    pub fn simulated(root: &Certificate) -> Result<Self, ChainError> {
        let trust = SnpTrust::none().with_simulated_root(Cert::from_certificate(root)?);
        Ok(Self::new(SnpConfig { trust, policy: SnpPolicy::default() }))
    }

    pub fn config(&self) -> &SnpConfig {
        &self.config
    }
}

/// The endorsements as a path from the VEK up, whatever order the host's certificate table
/// listed them in (the GHCB specification's table is keyed by GUID, not ordered): the one
/// certificate that is not a CA, then each issuer. As given when that is not clear-cut (no
/// single leaf, a duplicate, a certificate off the path), so verification says what is wrong.
fn leaf_first(certs: Vec<Cert>) -> Vec<Cert> {
    let leaves: Vec<&Cert> = certs.iter().filter(|c| !crate::chain::is_ca(c)).collect();
    let [leaf] = leaves[..] else { return certs };
    let path = crate::bundle::CertPool::new(certs.iter().cloned()).path_from(leaf, &[]);
    if path.len() == certs.len() { path } else { certs }
}

impl Verifier for SnpVerifier {
    fn tee(&self) -> Tee {
        Tee::Snp
    }

    /// `evidence` is the 1184-byte report; `endorsements` the VCEK (or VLEK) and ASK (or
    /// ASVK) as DER, leaf first, optionally followed by the ARK (see
    /// [`endorsements_from_table`] for an extended guest request's certificate table).
    fn verify(&self, evidence: &[u8], endorsements: &[Vec<u8>], now: SystemTime) -> Result<Verified, Rejection> {
        // As `appraise`: the report's form first, then the chain (kept once verified), then the
        // report under the chain's key and the policy.
        appraisal::parse_report(evidence).map_err(SnpRejection::from)?;
        let vek = self.verified_chain(endorsements, now)?;
        let appraisal = vek.appraise(evidence, &self.config.policy)?;
        Ok(verified(evidence, appraisal))
    }

    /// The endorsement chain verified and kept, as the appraisal of a report under it would.
    fn prepare(&self, endorsements: &[Vec<u8>], now: SystemTime) {
        let _ = self.verified_chain(endorsements, now);
    }
}

/// What the issuer reads of an accepted report.
fn verified(evidence: &[u8], appraisal: SnpAppraisal) -> Verified {
    let report = &appraisal.report;
    Verified {
        tee: Tee::Snp,
        simulated: appraisal.anchor.is_simulated(),
        anchor: appraisal.anchor.to_string(),
        measurement: report.measurement,
        report_data: report.report_data,
        platform_id: report.chip_id.to_vec(),
        tcb: Tcb::Snp { reported: report.reported_tcb, layout: appraisal.tcb_layout },
        policy: report.policy.0,
        vmpl: Some(report.vmpl),
        debug: report.policy.debug(),
        certificates: appraisal.certificates.clone(),
        evidence_sha384: Sha384::digest(evidence).into(),
        detail: Detail::Snp(Box::new(appraisal)),
    }
}
