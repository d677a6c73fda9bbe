//! Intel TDX quote appraisal: the quote's signature by the attestation key, the Quoting
//! Enclave's report and its signature by the PCK key, the PCK chain to the Intel SGX Root CA
//! (with CRLs), the platform's TCB judged against Intel's signed collateral ("Intel TDX DCAP
//! Quoting Library API", quote v4/v5; Intel "PCS API v4" for the collateral), and the TD's
//! event log replayed against its RTMRs.
//!
//! The quote layout is [`twi_attester::tdx::quote`]'s; this module only verifies.
//! [`TdxVerifier`] is the platform's [`Verifier`]: Intel's roots for hardware, or the same
//! code under the simulated TEE's root (`twi run --platform sim-tdx`), which [`Verified`]
//! then names as simulated.

mod cache;
mod collateral;
pub(crate) mod event_log;
mod pck;
mod roots;
pub mod tcb;
pub(crate) mod verify;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use sha2::{Digest, Sha384};
use x509_cert::Certificate;

use crate::chain::{Cert, ChainError};
use crate::verdict::{Detail, Rejection, Tcb, Tee, Verified, Verifier};

pub use collateral::{Collateral, CollateralError, SignedJson, crl_from_any};
pub use event_log::{MeasuredEvent, cc_event_log};
pub use pck::{PckExtensionError, PckExtensions, split_pck_chain};
pub use roots::{INTEL_SGX_ROOT_CA_SPKI_SHA384, TdxAnchor, TdxTrust};
pub use tcb::{TcbError, TcbStatus, TcbVerdict};
pub use verify::{
    TdxAppraisal, TdxConfig, TdxError, TdxPolicy, TdxWarning, VerifiedCollateral, appraise, appraise_with,
    pcs_tcb_info_url,
};

/// The TDX verifier: roots and policy ([`TdxConfig`]) and the collateral the TCB is judged
/// with (it must be current at each appraisal); without collateral only if
/// `config.policy.skip_tcb`. It keeps what it verified (`cache.rs`; clones share it): the
/// collateral while it is current, and each PCK path with its CRLs while they are.
#[derive(Clone, Debug)]
pub struct TdxVerifier {
    config: TdxConfig,
    collateral: Option<Collateral>,
    verified: Arc<Mutex<Option<(VerifiedCollateral, cache::Window)>>>,
    paths: Arc<Mutex<cache::PathCache>>,
    collateral_hits: Arc<AtomicU64>,
}

impl TdxVerifier {
    pub fn new(config: TdxConfig, collateral: Option<Collateral>) -> Self {
        Self { config, collateral, verified: Arc::default(), paths: Arc::default(), collateral_hits: Arc::default() }
    }

    /// Appraisals that reused a PCK path (with its CRLs) verified before.
    pub fn cached_chain_hits(&self) -> u64 {
        self.paths.lock().map_or(0, |p| p.hits())
    }

    /// Appraisals that reused the collateral verified before.
    pub fn cached_collateral_hits(&self) -> u64 {
        self.collateral_hits.load(Ordering::Relaxed)
    }

    /// The collateral, verified now or kept from an earlier appraisal while it is current.
    fn verified_collateral(&self, now: SystemTime) -> Result<Option<VerifiedCollateral>, TdxError> {
        let Some(collateral) = &self.collateral else { return Ok(None) };
        let mut kept = self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((verified, _)) = kept.as_ref().filter(|(_, window)| cache::within(*window, now)) {
            self.collateral_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(verified.clone()));
        }
        let verified = collateral.verify(&self.config.trust, now)?;
        *kept = verified.window(collateral).map(|window| (verified.clone(), window));
        Ok(Some(verified))
    }

    /// The simulated TDX platform's verifier: quotes whose PCK chain ends in `root` (Intel's
    /// root stays trusted too, and is reported as such), judged with `collateral` signed under
    /// the same root, by the same code as Intel's.
    pub fn simulated(root: &Certificate, collateral: Collateral) -> Result<Self, ChainError> {
        let root = Cert::from_certificate(root)?;
        let trust = TdxTrust::intel().with_simulated_root(&root);
        Ok(Self::new(TdxConfig { trust, policy: TdxPolicy::default() }, Some(collateral)))
    }

    pub fn config(&self) -> &TdxConfig {
        &self.config
    }
}

impl Verifier for TdxVerifier {
    fn tee(&self) -> Tee {
        Tee::Tdx
    }

    /// `evidence` is the quote (bytes after it are ignored); the endorsements travel inside it
    /// (the PCK chain), so `endorsements` is not read.
    fn verify(&self, evidence: &[u8], _endorsements: &[Vec<u8>], now: SystemTime) -> Result<Verified, Rejection> {
        let collateral = self.verified_collateral(now)?;
        let appraisal = verify::appraise_kept(evidence, collateral.as_ref(), &self.config, now, Some(&self.paths))?;
        Ok(verified(evidence, appraisal))
    }
}

/// What the issuer reads of an accepted quote.
fn verified(evidence: &[u8], appraisal: TdxAppraisal) -> Verified {
    let body = &appraisal.body;
    let quoted = evidence.get(..appraisal.quote_len).unwrap_or(evidence);
    Verified {
        tee: Tee::Tdx,
        simulated: matches!(appraisal.anchor, TdxAnchor::Simulated { .. }),
        anchor: appraisal.anchor.to_string(),
        measurement: body.mr_td,
        report_data: body.report_data,
        platform_id: appraisal.pck.ppid.to_vec(),
        tcb: Tcb::Tdx { tee_tcb_svn: body.tee_tcb_svn, verdict: appraisal.tcb.clone() },
        policy: body.td_attributes_u64(),
        vmpl: None,
        debug: body.debug(),
        certificates: appraisal.certificates.clone(),
        evidence_sha384: Sha384::digest(quoted).into(),
        detail: Detail::Tdx(Box::new(appraisal)),
    }
}
