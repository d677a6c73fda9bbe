//! The TDX verifier. Checks run in this order, so the first failure is the most useful thing
//! to say:
//!
//! 1. the quote parses (v4, or v5 with a TD 1.0/1.5 body), and its QE is Intel's;
//! 2. the PCK chain in it verifies to a trusted root at `now`, none of it revoked by the
//!    collateral's CRLs;
//! 3. the QE report is signed by the PCK key, and binds the attestation key:
//!    REPORTDATA = SHA-256(attestation key ‖ QE auth data) ‖ 32 zero bytes;
//! 4. the quote is signed by the attestation key over its header and body, as received;
//! 5. the collateral (verified once, [`Collateral::verify`]) judges the TCB: platform
//!    (FMSPC, PCE-ID, SGX and TDX components), TDX module and QE, converged to one status that
//!    the [`TdxPolicy`] accepts or not (Revoked never);
//! 6. the TD itself: not debuggable (unless allowed), and MRTD, RTMRs, REPORTDATA, MRCONFIGID
//!    and MROWNER as the policy expects.

use std::fmt;
use std::sync::Mutex;
use std::time::SystemTime;

use p256::ecdsa::signature::Verifier;
use sha2::{Digest, Sha256};
use twi_attester::tdx::enclave_report::EnclaveReport;
use twi_attester::tdx::quote::{INTEL_QE_VENDOR_ID, ParsedQuote, QuoteHeader};
use twi_attester::tdx::td_report::TdQuoteBody;

use crate::bundle::{CertPool, UsedCertificate};
use crate::chain::{self, Cert, ChainError, Crl};
use crate::lag::ComponentLag;
use crate::tdx::cache::{self, PathCache, Window};
use crate::tdx::collateral::{Collateral, SignedJson};
use crate::tdx::pck::{PckExtensionError, PckExtensions, split_pck_chain};
use crate::tdx::roots::{TdxAnchor, TdxTrust};
use crate::tdx::tcb::{self, PlatformFacts, QeFacts, QeIdentity, TcbError, TcbInfo, TcbStatus, TcbVerdict};
use crate::time::{format_rfc3339, parse_rfc3339};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TdxError {
    #[error("the quote is malformed: {0}")]
    Malformed(String),
    #[error(
        "the quote's QE vendor id {0} is not Intel's (939a7233f79c4ca9940a0db3957f0607): it was not made by Intel's Quoting Enclave"
    )]
    NotIntelQe(String),
    #[error("the PCK certificate chain in the quote does not hold: {0}")]
    PckChain(ChainError),
    #[error("{0}")]
    PckExtension(#[from] PckExtensionError),
    #[error(
        "the QE report's signature does not verify under the PCK certificate: the QE report was altered, or the PCK certificate is not this platform's"
    )]
    QeReportSignature,
    #[error(
        "the QE report does not vouch for the attestation key: its REPORTDATA is {actual}, but SHA-256(attestation key ‖ QE auth data) ‖ zeros is {expected}: the attestation key or the QE auth data was altered"
    )]
    QeReportData { expected: String, actual: String },
    #[error("the attestation key in the quote is not a P-256 public key")]
    AttestationKey,
    #[error(
        "the quote's signature does not verify under its attestation key: the TD report or the quote header was altered"
    )]
    QuoteSignature,
    #[error("the {what} issuer chain does not hold: {error}")]
    CollateralChain { what: &'static str, error: ChainError },
    #[error(
        "the {what} signature does not verify under the Intel SGX TCB Signing certificate: the collateral was altered"
    )]
    CollateralSignature { what: &'static str },
    #[error("the {what} is malformed: {why}")]
    CollateralMalformed { what: &'static str, why: String },
    #[error("{}", not_current(what, issued, next_update, now, *expired))]
    CollateralNotCurrent { what: &'static str, issued: String, next_update: String, now: String, expired: bool },
    #[error(
        "no TCB collateral was supplied, so the platform's TCB cannot be judged (the quote's signatures and PCK chain were not the problem): supply the TCB info and QE identity for FMSPC {fmspc} (Intel PCS: {url}), or skip the TCB evaluation explicitly (`twi verify tdx-quote --skip-tcb`)"
    )]
    NoCollateral { fmspc: String, url: String },
    #[error("{0}")]
    Tcb(#[from] TcbError),
    #[error(
        "the platform's TCB status is Revoked (advisories: {advisories}): its keys are compromised and it cannot be trusted"
    )]
    Revoked { advisories: String },
    #[error(
        "the platform's TCB status is {status} (advisories: {advisories}; behind the newest TCB level: {behind}): {advice}; or accept {status} explicitly (`--accept {status}`)"
    )]
    TcbStatus { status: TcbStatus, advisories: String, advice: &'static str, behind: String },
    #[error(
        "the TD is debuggable (TDATTRIBUTES.DEBUG): the host can read its memory; relaunch it without debug, or allow debug explicitly for development (`--allow-debug`)"
    )]
    Debug,
    #[error("{what} is {actual}, not the expected {expected}")]
    Mismatch { what: &'static str, expected: String, actual: String },
}

/// Something a person should know about an accepted quote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TdxWarning {
    /// No collateral: signatures and the PCK chain were verified, the TCB was not judged.
    TcbNotEvaluated,
    /// The TCB status is accepted by the policy but not UpToDate; `behind`: the components
    /// below the newest TCB level.
    TcbStatus { status: TcbStatus, advisories: Vec<String>, behind: Vec<ComponentLag> },
    /// No CRLs were supplied.
    RevocationNotChecked,
    /// Accepted although the TD is debuggable.
    DebugAllowed,
    /// The root is the simulated TEE's.
    Simulated,
    /// The input has bytes after the quote (ignored).
    TrailingBytes(usize),
    /// The quote's PCK chain holds certificates outside the path to the root (ignored).
    UnusedCertificates(Vec<String>),
}

impl fmt::Display for TdxWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TdxWarning::TcbNotEvaluated => f.write_str(
                "the platform's TCB was not evaluated (no collateral): only signatures and the PCK chain were checked",
            ),
            TdxWarning::TcbStatus { status, advisories, behind } => write!(
                f,
                "TCB status {status} (advisories: {}; behind the newest TCB level: {}): {}",
                join(advisories),
                describe_lags(behind),
                status.advice()
            ),
            TdxWarning::RevocationNotChecked => {
                f.write_str("no CRL was supplied: revocation of the PCK chain was not checked")
            }
            TdxWarning::DebugAllowed => f.write_str("the TD is debuggable (accepted because debug is allowed)"),
            TdxWarning::Simulated => f.write_str("the quote comes from the simulated TEE, not from Intel hardware"),
            TdxWarning::TrailingBytes(n) => write!(f, "{n} bytes after the end of the quote were ignored"),
            TdxWarning::UnusedCertificates(subjects) => write!(
                f,
                "the quote's PCK chain holds certificates outside the path to the root (ignored): {}",
                subjects.join("; ")
            ),
        }
    }
}

/// The lagging components, or "nothing" (then a configuration or software-hardening status
/// is what keeps the platform from UpToDate).
fn describe_lags(lags: &[ComponentLag]) -> String {
    if lags.is_empty() {
        "nothing".to_string()
    } else {
        lags.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    }
}

/// The message of [`TdxError::CollateralNotCurrent`]: the date it expired on (its
/// `nextUpdate`), or the date it becomes valid, and where fresh collateral comes from.
fn not_current(what: &str, issued: &str, next_update: &str, now: &str, expired: bool) -> String {
    if expired {
        format!(
            "the {what} is not current: it expired on {next_update} (its nextUpdate; verification time {now}): fetch current collateral with `twi verify tdx-quote --pccs https://api.trustedservices.intel.com --collateral DIR` (or from your PCCS), or verify as of a time before it (`--now`)"
        )
    } else {
        format!(
            "the {what} is not current: it was issued on {issued}, after the verification time {now}: fetch current collateral matching that time, or verify as of a time after it (`--now`)"
        )
    }
}

fn join(ids: &[String]) -> String {
    if ids.is_empty() { "none".to_string() } else { ids.join(", ") }
}

/// What a relying party demands of an authentic quote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdxPolicy {
    /// TCB statuses accepted (Revoked never is). Default: UpToDate, SWHardeningNeeded,
    /// ConfigurationNeeded, ConfigurationAndSWHardeningNeeded (the last three with a warning).
    pub accepted: Vec<TcbStatus>,
    /// Accept a quote without collateral (signatures and PCK chain only).
    pub skip_tcb: bool,
    pub allow_debug: bool,
    pub mr_td: Option<[u8; 48]>,
    pub rtmr: [Option<[u8; 48]>; 4],
    pub report_data: Option<[u8; 64]>,
    pub mr_config_id: Option<[u8; 48]>,
    pub mr_owner: Option<[u8; 48]>,
}

impl Default for TdxPolicy {
    fn default() -> Self {
        Self {
            accepted: vec![
                TcbStatus::UpToDate,
                TcbStatus::SWHardeningNeeded,
                TcbStatus::ConfigurationNeeded,
                TcbStatus::ConfigurationAndSWHardeningNeeded,
            ],
            skip_tcb: false,
            allow_debug: false,
            mr_td: None,
            rtmr: [None; 4],
            report_data: None,
            mr_config_id: None,
            mr_owner: None,
        }
    }
}

/// Roots and policy.
#[derive(Clone, Debug, Default)]
pub struct TdxConfig {
    pub trust: TdxTrust,
    pub policy: TdxPolicy,
}

/// Collateral whose signatures, chains and validity were checked: reusable for many quotes
/// until its next update.
#[derive(Clone, Debug)]
pub struct VerifiedCollateral {
    pub tcb_info: TcbInfo,
    pub qe_identity: QeIdentity,
    pub pck_crl: Option<Crl>,
    pub root_ca_crl: Option<Crl>,
    pub source: String,
}

/// An accepted quote.
#[derive(Clone, Debug)]
pub struct TdxAppraisal {
    pub header: QuoteHeader,
    pub body: TdQuoteBody,
    pub qe_report: EnclaveReport,
    pub pck: PckExtensions,
    pub anchor: TdxAnchor,
    /// The PCK path that vouched for the quote: the PCK leaf first, the root last.
    pub certificates: Vec<UsedCertificate>,
    /// `None` when the TCB was not evaluated (no collateral, and the policy allowed that).
    pub tcb: Option<TcbVerdict>,
    pub warnings: Vec<TdxWarning>,
    /// The quote's length in the input.
    pub quote_len: usize,
}

fn p256_signature(raw: &[u8; 64]) -> Option<p256::ecdsa::Signature> {
    p256::ecdsa::Signature::from_slice(raw).ok()
}

fn verify_signed_json(
    signed: &SignedJson,
    chain_certs: &[Cert],
    crls: &[Crl],
    trust: &TdxTrust,
    now: SystemTime,
    what: &'static str,
) -> Result<(), TdxError> {
    let chain_err = |error| TdxError::CollateralChain { what, error };
    let sig = p256_signature(&signed.signature).ok_or(TdxError::CollateralSignature { what })?;
    let chain_certs = path_from_signer(chain_certs, &signed.body, &sig);
    trust.verify_path(&chain_certs, now).map_err(chain_err)?;
    let path: Vec<&Cert> = chain_certs.iter().collect();
    let relevant: Vec<Crl> = crls.iter().filter(|c| path.iter().any(|p| p.subject() == c.issuer())).cloned().collect();
    chain::check_revocation(&path, &relevant, now).map_err(chain_err)?;
    let leaf = chain_certs.first().ok_or(chain_err(ChainError::Empty("the signing chain")))?;
    let key = p256_key(leaf).ok_or(TdxError::CollateralSignature { what })?;
    key.verify(&signed.body, &sig).map_err(|_| TdxError::CollateralSignature { what })
}

fn p256_key(cert: &Cert) -> Option<p256::ecdsa::VerifyingKey> {
    p256::ecdsa::VerifyingKey::try_from(der::referenced::OwnedToRef::owned_to_ref(cert.spki())).ok()
}

/// The certificates of `certs` (any order, as a file or a quote holds them) as a path: the
/// one whose P-256 key verifies `signature` over `message` first (else the first given, so
/// the verification says what is wrong), then each issuer up to a self-issued root
/// ([`CertPool::path_from`]).
fn path_from_signer(certs: &[Cert], message: &[u8], signature: &p256::ecdsa::Signature) -> Vec<Cert> {
    let pool = CertPool::new(certs.iter().cloned());
    let signer = pool.certs().iter().find(|c| p256_key(c).is_some_and(|k| k.verify(message, signature).is_ok()));
    match signer.or(pool.certs().first()) {
        Some(leaf) => pool.path_from(leaf, &[]),
        None => Vec::new(),
    }
}

fn check_current(what: &'static str, issued: &str, next: &str, now: SystemTime) -> Result<(), TdxError> {
    let malformed = || TdxError::CollateralMalformed { what, why: format!("bad dates {issued:?} / {next:?}") };
    let (i, n) = (parse_rfc3339(issued).ok_or_else(malformed)?, parse_rfc3339(next).ok_or_else(malformed)?);
    if now < i || now > n {
        return Err(TdxError::CollateralNotCurrent {
            what,
            issued: issued.to_string(),
            next_update: next.to_string(),
            now: format_rfc3339(now),
            expired: now > n,
        });
    }
    Ok(())
}

impl Collateral {
    /// Verifies the TCB info and QE identity (signatures by the TCB Signing certificate,
    /// its chain to a trusted root and the root CRL, validity at `now`) and parses them.
    pub fn verify(&self, trust: &TdxTrust, now: SystemTime) -> Result<VerifiedCollateral, TdxError> {
        let root_crls: Vec<Crl> = self.root_ca_crl.iter().cloned().collect();
        verify_signed_json(&self.tcb_info, &self.tcb_info_chain, &root_crls, trust, now, "TCB info")?;
        verify_signed_json(&self.qe_identity, &self.qe_identity_chain, &root_crls, trust, now, "QE identity")?;
        let malformed = |what, e: serde_json::Error| TdxError::CollateralMalformed { what, why: e.to_string() };
        let tcb_info: TcbInfo = serde_json::from_slice(&self.tcb_info.body).map_err(|e| malformed("TCB info", e))?;
        let qe_identity: QeIdentity =
            serde_json::from_slice(&self.qe_identity.body).map_err(|e| malformed("QE identity", e))?;
        check_current("TCB info", &tcb_info.issue_date, &tcb_info.next_update, now)?;
        check_current("QE identity", &qe_identity.issue_date, &qe_identity.next_update, now)?;
        Ok(VerifiedCollateral {
            tcb_info,
            qe_identity,
            pck_crl: self.pck_crl.clone(),
            root_ca_crl: self.root_ca_crl.clone(),
            source: self.source.clone(),
        })
    }
}

impl VerifiedCollateral {
    /// When it is current, as verified from `collateral`: its documents' issue and
    /// next-update dates, its signing chains' validity and its root CRL's (what a verifier may
    /// keep it for). `None` if a date does not parse.
    pub(crate) fn window(&self, collateral: &Collateral) -> Option<Window> {
        let certs: Vec<Cert> = collateral.tcb_info_chain.iter().chain(&collateral.qe_identity_chain).cloned().collect();
        let crls: Vec<Crl> = collateral.root_ca_crl.iter().cloned().collect();
        let mut window = cache::path_window(&certs, &crls);
        for (issued, next) in [
            (&self.tcb_info.issue_date, &self.tcb_info.next_update),
            (&self.qe_identity.issue_date, &self.qe_identity.next_update),
        ] {
            window.0 = window.0.max(parse_rfc3339(issued)?);
            window.1 = window.1.min(parse_rfc3339(next)?);
        }
        Some(window)
    }
}

/// The Intel PCS URL of the TCB info for `fmspc`.
pub fn pcs_tcb_info_url(fmspc: &[u8; 6]) -> String {
    format!("https://api.trustedservices.intel.com/tdx/certification/v4/tcb?fmspc={}", hex::encode(fmspc))
}

fn expect<const N: usize>(what: &'static str, expected: &Option<[u8; N]>, actual: &[u8; N]) -> Result<(), TdxError> {
    match expected {
        Some(e) if e != actual => {
            Err(TdxError::Mismatch { what, expected: hex::encode(e), actual: hex::encode(actual) })
        }
        _ => Ok(()),
    }
}

/// Appraises the quote at the start of `input` (bytes after it are ignored, with a warning)
/// with `collateral` (verified) under `config`, at `now`.
pub fn appraise(
    input: &[u8],
    collateral: Option<&VerifiedCollateral>,
    config: &TdxConfig,
    now: SystemTime,
) -> Result<TdxAppraisal, TdxError> {
    appraise_kept(input, collateral, config, now, None)
}

/// [`appraise`], taking a PCK path and CRLs verified before from `kept` (and keeping them).
pub(crate) fn appraise_kept(
    input: &[u8],
    collateral: Option<&VerifiedCollateral>,
    config: &TdxConfig,
    now: SystemTime,
    kept: Option<&Mutex<PathCache>>,
) -> Result<TdxAppraisal, TdxError> {
    // 1. Layout and vendor.
    let parsed = ParsedQuote::parse(input).map_err(|e| TdxError::Malformed(e.to_string()))?;
    let q = &parsed.quote;
    if q.header.qe_vendor_id != INTEL_QE_VENDOR_ID {
        return Err(TdxError::NotIntelQe(hex::encode(q.header.qe_vendor_id)));
    }

    // 2. The PCK chain, and the CRLs.
    let given = split_pck_chain(q.pck_chain).map_err(TdxError::PckChain)?;
    // The PCK leaf is the certificate whose key signed the QE report; the path is built from it.
    let certs = match p256_signature(&q.qe_report_signature) {
        Some(sig) => path_from_signer(&given, &q.qe_report, &sig),
        None => given.clone(),
    };
    let unused: Vec<String> = given.iter().filter(|c| !certs.contains(c)).map(Cert::subject).collect();
    let crls: Vec<Crl> =
        collateral.iter().flat_map(|c| c.pck_crl.iter().chain(c.root_ca_crl.iter())).cloned().collect();
    let anchor = verified_pck_path(&certs, &crls, &config.trust, now, kept)?;
    let pck_leaf = certs.first().ok_or(TdxError::PckChain(ChainError::Empty("the PCK chain")))?;
    let pck = PckExtensions::parse(pck_leaf)?;

    // 3. and 4. The QE report and the quote's signature.
    let qe_report = check_signatures(&parsed, pck_leaf)?;

    // 5. The TCB.
    let mut warnings = Vec::new();
    let tcb = judge_tcb(collateral, &config.policy, &pck, &q.body, &qe_report, &mut warnings)?;
    if crls.is_empty() {
        warnings.push(TdxWarning::RevocationNotChecked);
    }

    // 6. The TD.
    check_td(&q.body, &config.policy, &mut warnings)?;
    if matches!(anchor, TdxAnchor::Simulated { .. }) {
        warnings.push(TdxWarning::Simulated);
    }
    if !unused.is_empty() {
        warnings.push(TdxWarning::UnusedCertificates(unused));
    }
    if input.len() > parsed.len {
        warnings.push(TdxWarning::TrailingBytes(input.len() - parsed.len));
    }
    let certificates = certs.iter().map(UsedCertificate::of).collect();
    Ok(TdxAppraisal {
        header: q.header,
        body: q.body,
        qe_report,
        pck,
        anchor,
        certificates,
        tcb,
        warnings,
        quote_len: parsed.len,
    })
}

/// Step 2: the PCK `path` verified to a trusted root and checked against `crls` at `now` —
/// or taken from `kept`, where the same bytes verified before and are still current.
fn verified_pck_path(
    path: &[Cert],
    crls: &[Crl],
    trust: &TdxTrust,
    now: SystemTime,
    kept: Option<&Mutex<PathCache>>,
) -> Result<TdxAnchor, TdxError> {
    let key = cache::path_key(path, crls);
    if let Some(anchor) = kept.and_then(|k| k.lock().ok()?.path(&key, now)) {
        return Ok(anchor);
    }
    let anchor = trust.verify_path(path, now).map_err(TdxError::PckChain)?;
    chain::check_revocation(&path.iter().collect::<Vec<_>>(), crls, now).map_err(TdxError::PckChain)?;
    if let Some(mut kept) = kept.and_then(|k| k.lock().ok()) {
        kept.keep_path(key, anchor.clone(), cache::path_window(path, crls));
    }
    Ok(anchor)
}

/// Steps 3 and 4: the QE report is signed by the PCK key and binds the attestation key
/// (REPORTDATA = SHA-256(attestation key ‖ QE auth data) ‖ 32 zero bytes); the quote is
/// signed by the attestation key over its header and body as received.
fn check_signatures(parsed: &ParsedQuote<'_>, pck_leaf: &Cert) -> Result<EnclaveReport, TdxError> {
    let q = &parsed.quote;
    let pck_key = p256_key(pck_leaf).ok_or(TdxError::QeReportSignature)?;
    let qe_sig = p256_signature(&q.qe_report_signature).ok_or(TdxError::QeReportSignature)?;
    pck_key.verify(&q.qe_report, &qe_sig).map_err(|_| TdxError::QeReportSignature)?;
    let qe_report = q.qe_report_body();
    let mut expected = [0u8; 64];
    let digest: [u8; 32] = Sha256::new().chain_update(q.attestation_key).chain_update(q.qe_auth_data).finalize().into();
    expected[..32].copy_from_slice(&digest);
    if qe_report.report_data != expected {
        return Err(TdxError::QeReportData {
            expected: hex::encode(expected),
            actual: hex::encode(qe_report.report_data),
        });
    }
    let mut sec1 = [0x04u8; 65];
    sec1[1..].copy_from_slice(&q.attestation_key);
    let att_key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).map_err(|_| TdxError::AttestationKey)?;
    let quote_sig = p256_signature(&q.signature).ok_or(TdxError::QuoteSignature)?;
    att_key.verify(parsed.signed, &quote_sig).map_err(|_| TdxError::QuoteSignature)?;
    Ok(qe_report)
}

/// Step 5: the platform, TDX module and QE judged against the collateral, and the converged
/// status against the policy (Revoked never passes); without collateral only if the policy
/// skips the TCB.
fn judge_tcb(
    collateral: Option<&VerifiedCollateral>,
    policy: &TdxPolicy,
    pck: &PckExtensions,
    body: &TdQuoteBody,
    qe_report: &EnclaveReport,
    warnings: &mut Vec<TdxWarning>,
) -> Result<Option<TcbVerdict>, TdxError> {
    let Some(c) = collateral else {
        if policy.skip_tcb {
            warnings.push(TdxWarning::TcbNotEvaluated);
            return Ok(None);
        }
        return Err(TdxError::NoCollateral { fmspc: hex::encode(pck.fmspc), url: pcs_tcb_info_url(&pck.fmspc) });
    };
    let facts = PlatformFacts {
        fmspc: pck.fmspc,
        pce_id: pck.pce_id,
        sgx_tcb_components: pck.sgx_tcb_components,
        pce_svn: pck.pce_svn,
        tee_tcb_svn: &body.tee_tcb_svn,
        tee_tcb_svn_2: body.tee_tcb_svn_2.as_ref(),
        mr_signer_seam: &body.mr_signer_seam,
        seam_attributes: &body.seam_attributes,
    };
    let qe = QeFacts::of(qe_report);
    let verdict = tcb::evaluate(&c.tcb_info, &c.qe_identity, &facts, &qe)?;
    let advisories = join(&verdict.advisory_ids);
    if verdict.status == TcbStatus::Revoked {
        return Err(TdxError::Revoked { advisories });
    }
    if !policy.accepted.contains(&verdict.status) {
        return Err(TdxError::TcbStatus {
            status: verdict.status,
            advisories,
            advice: verdict.status.advice(),
            behind: describe_lags(&verdict.behind),
        });
    }
    if verdict.status != TcbStatus::UpToDate {
        warnings.push(TdxWarning::TcbStatus {
            status: verdict.status,
            advisories: verdict.advisory_ids.clone(),
            behind: verdict.behind.clone(),
        });
    }
    Ok(Some(verdict))
}

/// Step 6: the TD is not debuggable (unless allowed), and MRTD, RTMRs, REPORTDATA,
/// MRCONFIGID and MROWNER are what the policy expects.
fn check_td(body: &TdQuoteBody, policy: &TdxPolicy, warnings: &mut Vec<TdxWarning>) -> Result<(), TdxError> {
    if body.debug() {
        if !policy.allow_debug {
            return Err(TdxError::Debug);
        }
        warnings.push(TdxWarning::DebugAllowed);
    }
    expect("MRTD", &policy.mr_td, &body.mr_td)?;
    for (i, (want, have)) in policy.rtmr.iter().zip(&body.rtmr).enumerate() {
        const NAMES: [&str; 4] = ["RTMR0", "RTMR1", "RTMR2", "RTMR3"];
        expect(NAMES.get(i).copied().unwrap_or("RTMR"), want, have)?;
    }
    expect("REPORTDATA", &policy.report_data, &body.report_data)?;
    expect("MRCONFIGID", &policy.mr_config_id, &body.mr_config_id)?;
    expect("MROWNER", &policy.mr_owner, &body.mr_owner)
}

/// [`appraise`] with collateral that is verified first (for one quote; verify collateral
/// once with [`Collateral::verify`] to appraise many).
pub fn appraise_with(
    input: &[u8],
    collateral: Option<&Collateral>,
    config: &TdxConfig,
    now: SystemTime,
) -> Result<TdxAppraisal, TdxError> {
    let verified = collateral.map(|c| c.verify(&config.trust, now)).transpose()?;
    appraise(input, verified.as_ref(), config, now)
}
