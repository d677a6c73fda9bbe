//! SEV-SNP report appraisal: the report's ECDSA P-384 signature under the VCEK or VLEK, that
//! key's chain to a trusted root (AMD's ARK for Milan, Genoa or Turin, or — when configured —
//! the simulated TEE's root), the key's claims about the chip and TCB, and the policy.
//!
//! The checks run in this order, so that the first failure is the most useful thing to say:
//!
//! 1. the report parses (1184 bytes, a known version) and claims to be signed;
//! 2. the certificates chain, leaf first, to a trusted root, each valid at `now`, none revoked
//!    by a supplied CRL;
//! 3. the key is the kind the report names (VCEK or VLEK) and, for a VCEK, its hwID is the
//!    report's CHIP_ID — a wrong certificate is reported as such, not as a bad signature;
//! 4. SIGNATURE_ALGO is ECDSA P-384/SHA-384 and the signature verifies over bytes
//!    0x000..0x2A0 exactly as received;
//! 5. then the signed claims: product (CPUID) against the chain, the key's TCB extensions
//!    against REPORTED_TCB, and the [`SnpPolicy`].

use std::fmt;
use std::time::SystemTime;

use p384::ecdsa::signature::Verifier;
use twi_attester::snp::report::{
    AttestationReport, ReportError, SUPPORTED_VERSIONS, SigningKey, TcbLayout, offset, signed_region,
};
use x509_cert::Certificate;

use crate::bundle::{CertPool, UsedCertificate};
use crate::chain::{self, Cert, ChainError, Crl};
use crate::snp::kds;
use crate::snp::policy::{PolicyViolation, SnpPolicy};
use crate::snp::product::Product;
use crate::snp::roots::{Anchor, SnpTrust};
use crate::snp::vek::{ComponentLag, VekError, VekExtensions, VekKind, describe_tcb, tcb_lag};

/// SIGNATURE_ALGO 1: ECDSA P-384 with SHA-384 (SEV-SNP Firmware ABI, "Signature Algorithm
/// Encodings" table).
pub const SIG_ALGO_ECDSA_P384_SHA384: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnpError {
    #[error("the report is malformed: {0}")]
    Malformed(String),
    #[error("the endorsement chain does not hold: {0}")]
    Chain(#[from] ChainError),
    #[error("the VCEK and ASK certificates are missing (the host must supply them with the report)")]
    MissingEndorsements,
    #[error("the report uses signature algorithm {0}; only 1 (ECDSA P-384 SHA-384) exists")]
    SignatureAlgorithm(u32),
    #[error(
        "the report's signature does not verify under the VCEK (or VLEK) supplied: the report was altered, or signed by another chip or at another TCB than that certificate's"
    )]
    BadSignature,
    #[error("the VCEK certifies chip {vcek}, but the report comes from chip {report}")]
    ChipMismatch { vcek: String, report: String },
    #[error("{}", PolicyViolation::Debug)]
    DebugPolicy,
    #[error(
        "the report is not signed (KEY_INFO.SIGNING_KEY = {0}): the firmware produced it without a VCEK or VLEK, so nothing vouches for it"
    )]
    Unsigned(u8),
    #[error(
        "the report was signed with a {report}, but the certificate supplied ({certificate}) is a {certificate_kind}: supply the {report} certificate"
    )]
    SignerMismatch { report: &'static str, certificate: String, certificate_kind: &'static str },
    #[error("the VCEK {0} has no hwID extension, so it does not name the chip it belongs to")]
    VcekWithoutHwId(String),
    #[error("{0}")]
    Extension(#[from] VekError),
    #[error("the {kind} has no {extension} extension, so its TCB cannot be compared with the report's")]
    VekTcbMissing { kind: &'static str, extension: &'static str },
    #[error(
        "the {kind} was issued for TCB {vek}, but the report's REPORTED_TCB is {report}: fetch the {kind} for the report's TCB"
    )]
    TcbMismatch { kind: &'static str, vek: String, report: String },
    #[error(
        "the report comes from an AMD {report} CPU (CPUID family {family:#04x} model {model:#04x}), but the certificate chain is for {chain}: use the {report} chain"
    )]
    ProductMismatch { report: Product, family: u8, model: u8, chain: Product },
    #[error("{0}")]
    Policy(PolicyViolation),
    #[error("the key of {0} is not an ECDSA P-384 key, so it cannot have signed an SEV-SNP report")]
    VekNotP384(String),
    #[error("the host's certificate table (extended guest request) is unusable: {0}")]
    CertificateTable(String),
    #[error(
        "report version {0} is older than any this verifier reads (2 to {newest}): version 2 is the first the SEV-SNP firmware ABI publishes (firmware 1.51, the first Linux runs SNP guests on), and older layouts differ; update the host's SEV firmware",
        newest = NEWEST_REPORT_VERSION
    )]
    OldReportVersion(u32),
    #[error(
        "no certificate supplied verifies the report's signature (checked: {}): supply the VCEK (or VLEK) of the chip and TCB that signed it",
        .checked.join(", ")
    )]
    NoSigningCertificate { checked: Vec<String> },
}

/// The newest report version whose layout this verifier knows; newer ones are read by the
/// fields of this one (every version so far only added fields in reserved bytes).
pub const NEWEST_REPORT_VERSION: u32 = {
    let mut newest = 0;
    let mut i = 0;
    while i < SUPPORTED_VERSIONS.len() {
        if SUPPORTED_VERSIONS[i] > newest {
            newest = SUPPORTED_VERSIONS[i];
        }
        i += 1;
    }
    newest
};

/// The endorsements an extended guest request's certificate table carries, leaf first:
/// `[VCEK or VLEK, ASK (or ASVK), ARK if present]`, ready for the `endorsements` of
/// `Verifier::verify`. The host wrote the table, so nothing in it is trusted for
/// being there: the ARK anchors the chain only if it is one of the verifier's own roots
/// ([`verify_endorsements`] looks it up in its [`SnpTrust`]).
pub fn endorsements_from_table(table: &[u8]) -> Result<Vec<Vec<u8>>, SnpError> {
    use twi_attester::snp::certs::{CertKind, CertTable};
    let table = CertTable::parse(table).map_err(|e| SnpError::CertificateTable(e.to_string()))?;
    let vek = table
        .get(CertKind::Vcek)
        .or_else(|| table.get(CertKind::Vlek))
        .ok_or_else(|| SnpError::CertificateTable("it holds neither a VCEK nor a VLEK".into()))?;
    let ask = table.get(CertKind::Ask).ok_or_else(|| SnpError::CertificateTable("it holds no ASK (or ASVK)".into()))?;
    Ok([Some(vek), Some(ask), table.get(CertKind::Ark)].into_iter().flatten().map(<[u8]>::to_vec).collect())
}

impl From<PolicyViolation> for SnpError {
    fn from(v: PolicyViolation) -> Self {
        match v {
            PolicyViolation::Debug => SnpError::DebugPolicy,
            other => SnpError::Policy(other),
        }
    }
}

/// Something a person should know about an accepted report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnpWarning {
    /// The root is the simulated TEE's: this is not hardware evidence.
    Simulated,
    /// Accepted although the guest policy allows debugging.
    DebugAllowed,
    /// Accepted although the guest policy allows a migration agent.
    MigrationAgentAllowed,
    /// No CRL was supplied, so revocation of the intermediate was not checked.
    RevocationNotChecked,
    /// A version 2 report has no CPUID fields: the product (and TCB layout) came from the
    /// certificate chain.
    ProductFromChain(Product),
    /// Neither the report nor the chain names the product: the Milan/Genoa TCB layout was
    /// assumed.
    TcbLayoutAssumed,
    /// REPORTED_TCB is below COMMITTED_TCB: the host asked the firmware to report an older
    /// TCB (SNP_SET_REPORTED_TCB), so the report is signed with that older TCB's key.
    ReportedBelowCommitted { reported: String, committed: String },
    /// The report's version is newer than any this verifier knows: it was read by the fields
    /// of version `read_as`, and fields added since were not judged.
    NewerReportVersion { version: u32, read_as: u32 },
    /// REPORTED_TCB (the TCB the report is signed at) is behind CURRENT_TCB (what the
    /// firmware runs) in these components.
    TcbBehind(Vec<ComponentLag>),
}

impl fmt::Display for SnpWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnpWarning::Simulated => f.write_str("the report comes from the simulated TEE, not from AMD hardware"),
            SnpWarning::DebugAllowed => {
                f.write_str("the guest policy allows debugging (accepted because debug is allowed)")
            }
            SnpWarning::MigrationAgentAllowed => {
                f.write_str("the guest policy allows a migration agent (accepted because it is allowed)")
            }
            SnpWarning::RevocationNotChecked => {
                f.write_str("no CRL was supplied: revocation of the ASK/ASVK was not checked (pass --crl)")
            }
            SnpWarning::ProductFromChain(p) => {
                write!(f, "report version 2 does not name its CPU: product {p} taken from the certificate chain")
            }
            SnpWarning::TcbLayoutAssumed => f.write_str(
                "neither the report nor the chain names the product: the Milan/Genoa TCB layout was assumed",
            ),
            SnpWarning::ReportedBelowCommitted { reported, committed } => write!(
                f,
                "REPORTED_TCB {reported} is below COMMITTED_TCB {committed}: the host reports an older TCB than the firmware runs"
            ),
            SnpWarning::NewerReportVersion { version, read_as } => write!(
                f,
                "report version {version} is newer than this verifier knows: read by the fields of version {read_as}; fields added since were not checked (update twi)"
            ),
            SnpWarning::TcbBehind(lags) => {
                let lags: Vec<String> = lags.iter().map(ToString::to_string).collect();
                write!(f, "REPORTED_TCB is behind CURRENT_TCB: {}", lags.join(", "))
            }
        }
    }
}

/// A verified endorsement key: the VCEK or VLEK, its chain to a trusted root, its claims.
/// Verify once, then appraise any number of reports with [`VerifiedVek::appraise`].
#[derive(Clone, Debug)]
pub struct VerifiedVek {
    pub certificate: Cert,
    pub extensions: VekExtensions,
    pub kind: Option<VekKind>,
    pub anchor: Anchor,
    /// Common names from the key up to the root.
    pub chain: Vec<String>,
    /// The certificates of the path, the key's first, the root last.
    pub path: Vec<UsedCertificate>,
    pub crl_checked: bool,
    key: Option<p384::ecdsa::VerifyingKey>,
}

/// A report that passed every check.
#[derive(Clone, Debug)]
pub struct SnpAppraisal {
    pub report: AttestationReport,
    pub signer: VekKind,
    pub anchor: Anchor,
    pub product: Option<Product>,
    pub tcb_layout: TcbLayout,
    /// Common names from the key up to the root.
    pub chain: Vec<String>,
    /// The certificates that vouched for the report: the key's first, the root last.
    pub certificates: Vec<UsedCertificate>,
    /// How far REPORTED_TCB is behind CURRENT_TCB, per component (empty: not behind).
    pub tcb_behind: Vec<ComponentLag>,
    pub warnings: Vec<SnpWarning>,
}

/// Extra context for a rejection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnpHint {
    /// The signature failed and the key's TCB differs from the report's: most likely the
    /// wrong VCEK was supplied.
    VekForAnotherTcb { vek: String, report: String, url: Option<String> },
    /// The chip id is masked (KEY_INFO.MASK_CHIP_KEY), so no VCEK can be matched to it.
    ChipIdMasked,
}

impl fmt::Display for SnpHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnpHint::VekForAnotherTcb { vek, report, url } => {
                write!(f, "the certificate is for TCB {vek} while the report's REPORTED_TCB is {report}")?;
                match url {
                    Some(url) => write!(f, ": if the report is genuine, fetch its VCEK from {url}"),
                    None => f.write_str(": if the report is genuine, supply the key for its TCB"),
                }
            }
            SnpHint::ChipIdMasked => f.write_str(
                "the report's CHIP_ID is masked (KEY_INFO.MASK_CHIP_KEY = 1), so it cannot be matched to a VCEK: launch with MASK_CHIP_KEY = 0, or use a VLEK",
            ),
        }
    }
}

/// Why a report was rejected, with whatever context helps fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnpRejection {
    pub error: SnpError,
    pub hints: Vec<SnpHint>,
}

impl From<SnpError> for SnpRejection {
    fn from(error: SnpError) -> Self {
        Self { error, hints: Vec::new() }
    }
}

impl fmt::Display for SnpRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)?;
        for hint in &self.hints {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SnpRejection {}

/// Roots and policy.
#[derive(Clone, Debug, Default)]
pub struct SnpConfig {
    pub trust: SnpTrust,
    pub policy: SnpPolicy,
}

/// Parses a report by the fields this verifier knows: versions 2 to
/// [`NEWEST_REPORT_VERSION`] by their layout, a newer version by the newest layout (its
/// `version` kept as received; the appraisal warns), an older one refused with the reason.
/// The signature is always checked over the bytes as received, never over this reading.
pub fn parse_report(bytes: &[u8]) -> Result<AttestationReport, SnpError> {
    match AttestationReport::parse(bytes) {
        Err(ReportError::UnsupportedVersion(version)) if version > NEWEST_REPORT_VERSION => {
            let mut known = bytes.to_vec();
            let field = known.get_mut(offset::VERSION..offset::VERSION + 4).ok_or(SnpError::OldReportVersion(0))?;
            field.copy_from_slice(&NEWEST_REPORT_VERSION.to_le_bytes());
            let mut report = AttestationReport::parse(&known).map_err(|e| SnpError::Malformed(e.to_string()))?;
            report.version = version;
            Ok(report)
        }
        Err(ReportError::UnsupportedVersion(version)) => Err(SnpError::OldReportVersion(version)),
        other => other.map_err(|e| SnpError::Malformed(e.to_string())),
    }
}

/// Verifies the endorsement chain `certs` (the VCEK or VLEK first, each certificate issued by
/// the next; the last is the root, or is issued by a root `trust` holds) at `now`, and checks
/// it against `crls`.
pub fn verify_endorsements(
    certs: &[Cert],
    crls: &[Crl],
    trust: &SnpTrust,
    now: SystemTime,
) -> Result<VerifiedVek, SnpError> {
    let vek = certs.first().ok_or(SnpError::MissingEndorsements)?;
    let (below_root, given_root) = match certs.split_last() {
        Some((last, rest)) if !rest.is_empty() && last.is_self_issued() => (rest, Some(last)),
        _ => (certs, None),
    };
    // The links below the root first: a misordered chain is named as such.
    chain::verify_links(below_root, now)?;
    let top = below_root.last().ok_or(SnpError::MissingEndorsements)?;
    let root = match given_root {
        Some(root) => root,
        None => trust.root_above(top).ok_or_else(|| missing_root(top))?,
    };
    chain::verify_to_root(Some(top), root, now)?;
    let anchor = trust.anchor(root).cloned().ok_or_else(|| ChainError::UntrustedRoot {
        subject: root.subject(),
        fingerprint: hex::encode(root.spki_sha384()),
    })?;
    let path: Vec<&Cert> = below_root.iter().chain([root]).collect();
    chain::check_revocation(&path, crls, now)?;
    let used = path.iter().map(|c| UsedCertificate::of(c)).collect();
    let extensions = VekExtensions::parse(vek)?;
    let kind = extensions.kind(vek);
    let key = p384::ecdsa::VerifyingKey::try_from(der::referenced::OwnedToRef::owned_to_ref(vek.spki())).ok();
    Ok(VerifiedVek {
        certificate: vek.clone(),
        kind,
        anchor,
        chain: path.iter().map(|c| c.common_name()).collect(),
        path: used,
        crl_checked: !crls.is_empty(),
        extensions,
        key,
    })
}

/// The chain stops at `last` and no configured root is above it.
fn missing_root(last: &Cert) -> ChainError {
    let issuer = last.certificate().tbs_certificate().issuer().to_string();
    ChainError::IssuerMismatch {
        child: last.subject(),
        parent: format!("missing (supply the root {issuer}, e.g. the ARK in the KDS cert_chain)"),
        issuer,
    }
}

impl VerifiedVek {
    /// The product line the chain is for: the root's, else the key's productName.
    pub fn product(&self) -> Option<Product> {
        self.anchor.product().or_else(|| self.extensions.product_name.as_deref().and_then(Product::from_name))
    }

    /// Appraises `report_bytes` (as received) under this key and `policy`.
    pub fn appraise(&self, report_bytes: &[u8], policy: &SnpPolicy) -> Result<SnpAppraisal, SnpRejection> {
        let report = parse_report(report_bytes)?;
        let signer = signer_of(&report)?;
        let chain_product = self.product();
        let cpu_product =
            if report.version >= 3 { Product::from_cpuid(report.cpuid_fam_id, report.cpuid_mod_id) } else { None };
        self.check_key_matches(&report, signer, chain_product.or(cpu_product))?;
        if report.signature_algo != SIG_ALGO_ECDSA_P384_SHA384 {
            return Err(SnpError::SignatureAlgorithm(report.signature_algo).into());
        }
        let layout = chain_product.or(cpu_product).map(Product::tcb_layout).or_else(|| report.tcb_layout());
        let tcb_layout = layout.unwrap_or(TcbLayout::MilanGenoa);
        if let Err(e) = self.verify_signature(report_bytes, &report) {
            return Err(SnpRejection { error: e, hints: self.signature_hints(&report, tcb_layout, chain_product) });
        }
        // Everything below is signed content, judged against the key and the policy.
        self.check_signed_claims(&report, signer, tcb_layout, chain_product, cpu_product)?;
        policy.check(&report, tcb_layout).map_err(SnpError::from)?;
        let mut warnings = self.warnings(&report, tcb_layout, chain_product);
        if layout.is_none() {
            warnings.push(SnpWarning::TcbLayoutAssumed);
        }
        let tcb_behind = tcb_lag(report.reported_tcb, report.current_tcb, tcb_layout);
        if !tcb_behind.is_empty() {
            warnings.push(SnpWarning::TcbBehind(tcb_behind.clone()));
        }
        if report.version > NEWEST_REPORT_VERSION {
            warnings.push(SnpWarning::NewerReportVersion { version: report.version, read_as: NEWEST_REPORT_VERSION });
        }
        Ok(SnpAppraisal {
            report,
            signer,
            anchor: self.anchor.clone(),
            product: chain_product.or(cpu_product),
            tcb_layout,
            chain: self.chain.clone(),
            certificates: self.path.clone(),
            tcb_behind,
            warnings,
        })
    }

    /// Step 5: the product the CPU names is the chain's, and the key was derived for the
    /// report's TCB.
    fn check_signed_claims(
        &self,
        report: &AttestationReport,
        signer: VekKind,
        layout: TcbLayout,
        chain_product: Option<Product>,
        cpu_product: Option<Product>,
    ) -> Result<(), SnpError> {
        if let (Some(chain), Some(cpu)) = (chain_product, cpu_product)
            && chain != cpu
        {
            return Err(SnpError::ProductMismatch {
                report: cpu,
                family: report.cpuid_fam_id,
                model: report.cpuid_mod_id,
                chain,
            });
        }
        if signer == VekKind::Vcek && self.extensions.hw_id.is_none() {
            return Err(SnpError::VcekWithoutHwId(self.certificate.common_name()));
        }
        let vek_tcb = self
            .extensions
            .tcb(layout)
            .map_err(|extension| SnpError::VekTcbMissing { kind: signer.name(), extension })?;
        if vek_tcb != report.reported_tcb {
            return Err(SnpError::TcbMismatch {
                kind: signer.name(),
                vek: describe_tcb(vek_tcb, layout),
                report: describe_tcb(report.reported_tcb, layout),
            });
        }
        Ok(())
    }

    /// What to tell about an accepted report.
    fn warnings(
        &self,
        report: &AttestationReport,
        layout: TcbLayout,
        chain_product: Option<Product>,
    ) -> Vec<SnpWarning> {
        let mut warnings = Vec::new();
        if self.anchor.is_simulated() {
            warnings.push(SnpWarning::Simulated);
        } else if !self.crl_checked {
            warnings.push(SnpWarning::RevocationNotChecked);
        }
        if report.policy.debug() {
            warnings.push(SnpWarning::DebugAllowed);
        }
        if report.policy.migrate_ma() {
            warnings.push(SnpWarning::MigrationAgentAllowed);
        }
        if let Some(p) = chain_product.filter(|_| report.version < 3) {
            warnings.push(SnpWarning::ProductFromChain(p));
        }
        let (reported, committed) = (report.reported_tcb.parts(layout), report.committed_tcb.parts(layout));
        let older = reported.fmc.unwrap_or(0) < committed.fmc.unwrap_or(0)
            || reported.bootloader < committed.bootloader
            || reported.tee < committed.tee
            || reported.snp < committed.snp
            || reported.microcode < committed.microcode;
        if older {
            warnings.push(SnpWarning::ReportedBelowCommitted {
                reported: describe_tcb(report.reported_tcb, layout),
                committed: describe_tcb(report.committed_tcb, layout),
            });
        }
        warnings
    }

    /// Step 3: the certificate is the kind of key the report names and, for a VCEK, belongs
    /// to the report's chip.
    fn check_key_matches(
        &self,
        report: &AttestationReport,
        signer: VekKind,
        product: Option<Product>,
    ) -> Result<(), SnpRejection> {
        if let Some(kind) = self.kind
            && kind != signer
        {
            return Err(SnpError::SignerMismatch {
                report: signer.name(),
                certificate: self.certificate.common_name(),
                certificate_kind: kind.name(),
            }
            .into());
        }
        let Some(hw_id) = &self.extensions.hw_id else { return Ok(()) };
        let matches = match hw_id.len() {
            64 => hw_id[..] == report.chip_id[..],
            // Turin: an 8-byte chip id; the rest of CHIP_ID is zero.
            _ => {
                product.is_none_or(|p| p == Product::Turin)
                    && report.chip_id.starts_with(hw_id)
                    && report.chip_id.get(hw_id.len()..).is_some_and(|rest| rest.iter().all(|&b| b == 0))
            }
        };
        if matches {
            return Ok(());
        }
        let error = SnpError::ChipMismatch { vcek: hex::encode(hw_id), report: hex::encode(report.chip_id) };
        let hints = if report.mask_chip_key() { vec![SnpHint::ChipIdMasked] } else { Vec::new() };
        Err(SnpRejection { error, hints })
    }

    /// Step 4: the signature over bytes 0x000..0x2A0 as received (never a re-encoding).
    fn verify_signature(&self, report_bytes: &[u8], report: &AttestationReport) -> Result<(), SnpError> {
        let key = self.key.as_ref().ok_or_else(|| SnpError::VekNotP384(self.certificate.common_name()))?;
        let signed = signed_region(report_bytes).map_err(|e| SnpError::Malformed(e.to_string()))?;
        let rs = report.signature.to_big_endian_rs().map_err(|_| SnpError::BadSignature)?;
        let signature = p384::ecdsa::Signature::from_slice(&rs).map_err(|_| SnpError::BadSignature)?;
        key.verify(signed, &signature).map_err(|_| SnpError::BadSignature)
    }

    fn signature_hints(&self, report: &AttestationReport, layout: TcbLayout, product: Option<Product>) -> Vec<SnpHint> {
        match self.extensions.tcb(layout) {
            Ok(vek) if vek != report.reported_tcb => vec![SnpHint::VekForAnotherTcb {
                vek: describe_tcb(vek, layout),
                report: describe_tcb(report.reported_tcb, layout),
                url: product
                    .filter(|_| report.signing_key() == SigningKey::Vcek)
                    .map(|p| kds::vcek_url(p, &report.chip_id, report.reported_tcb)),
            }],
            _ => Vec::new(),
        }
    }
}

/// The key the report says signed it.
fn signer_of(report: &AttestationReport) -> Result<VekKind, SnpError> {
    match report.signing_key() {
        SigningKey::Vcek => Ok(VekKind::Vcek),
        SigningKey::Vlek => Ok(VekKind::Vlek),
        SigningKey::None => Err(SnpError::Unsigned(7)),
        SigningKey::Reserved(v) => Err(SnpError::Unsigned(v)),
    }
}

/// Appraises the report `report_bytes` (as received) with the endorsement chain `certs` (the
/// VCEK or VLEK first; ending in the ARK, or below a root `config.trust` holds), the CRLs
/// `crls`, at time `now`.
pub fn appraise(
    report_bytes: &[u8],
    certs: &[Cert],
    crls: &[Crl],
    config: &SnpConfig,
    now: SystemTime,
) -> Result<SnpAppraisal, SnpRejection> {
    parse_report(report_bytes)?;
    let vek = verify_endorsements(certs, crls, &config.trust, now)?;
    vek.appraise(report_bytes, &config.policy)
}

/// Appraises `report_bytes` with certificates in any order and arrangement (`pool`: VCEK
/// or VLEK, ASK or ASVK, ARK, as one THIM bundle or several files, duplicates already
/// dropped): the leaf is the certificate whose key verifies the report's signature, the
/// path is built from it up to the ARK (or a root `config.trust` holds), then verified and
/// appraised exactly as [`appraise`] does with an ordered chain.
pub fn appraise_bundle(
    report_bytes: &[u8],
    pool: &CertPool,
    crls: &[Crl],
    config: &SnpConfig,
    now: SystemTime,
) -> Result<SnpAppraisal, SnpRejection> {
    let report = parse_report(report_bytes)?;
    let leaf = signing_certificate(report_bytes, &report, pool)?;
    let path = pool.path_from(leaf, config.trust.certificates());
    appraise(report_bytes, &path, crls, config, now)
}

/// The pooled certificate that signed the report: the only one that is not a CA (not verified
/// here: the appraisal verifies the report under it and says why it does not: another chip,
/// another TCB, another kind of key), or, when there are several or none, the one whose P-384
/// key verifies the report's signature; otherwise the error lists what was tried.
fn signing_certificate<'a>(
    report_bytes: &[u8],
    report: &AttestationReport,
    pool: &'a CertPool,
) -> Result<&'a Cert, SnpRejection> {
    if pool.is_empty() {
        return Err(SnpError::MissingEndorsements.into());
    }
    let leaves: Vec<&Cert> = pool.certs().iter().filter(|c| !chain::is_ca(c)).collect();
    if let [only] = leaves[..] {
        return Ok(only);
    }
    let signed = signed_region(report_bytes).map_err(|e| SnpError::Malformed(e.to_string()))?;
    let signature =
        report.signature.to_big_endian_rs().ok().and_then(|rs| p384::ecdsa::Signature::from_slice(&rs).ok());
    let verifies = |cert: &Cert| {
        let key = p384::ecdsa::VerifyingKey::try_from(der::referenced::OwnedToRef::owned_to_ref(cert.spki()));
        matches!((key, &signature), (Ok(key), Some(sig)) if key.verify(signed, sig).is_ok())
    };
    pool.certs().iter().find(|c| verifies(c)).ok_or_else(|| {
        SnpError::NoSigningCertificate { checked: pool.certs().iter().map(Cert::subject).collect() }.into()
    })
}

/// Verifies `report_bytes` under the chain `[vcek, ask]` to the self-signed `ark` (trusted as
/// given: the simulated TEE's root), at `now`, with the default policy. Returns the parsed
/// report; the caller appraises its contents (REPORTDATA, measurement, ...).
pub fn verify_report(
    report_bytes: &[u8],
    endorsements: &[Certificate],
    ark: &Certificate,
    now: SystemTime,
) -> Result<AttestationReport, SnpError> {
    parse_report(report_bytes)?;
    if endorsements.is_empty() {
        return Err(SnpError::MissingEndorsements);
    }
    let certs = endorsements.iter().map(Cert::from_certificate).collect::<Result<Vec<_>, _>>()?;
    let trust = SnpTrust::none().with_simulated_root(Cert::from_certificate(ark)?);
    let config = SnpConfig { trust, policy: SnpPolicy::default() };
    appraise(report_bytes, &certs, &[], &config, now).map(|a| a.report).map_err(|r| r.error)
}
