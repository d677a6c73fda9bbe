//! The appraisal policy: which launches the issuer admits, and as which Stable workload.
//!
//! A TOML file (commented example: `issuer/policy.example.toml`) maps reference values — the
//! launch measurements `twi build` computes — to a Stable workload identifier
//! (`spiffe://<trust-domain>/<id>`) and business claims. A new version of a workload is
//! admitted by adding a reference entry; its identifier and claims do not change. Each workload
//! also chooses its freshness (AF_L0..2), platform-claim fidelity (CF_L0..2) and stickiness
//! (CS_L1..3), and its credential acquisition mechanism (A..D).
//!
//! - [`Policy::admit`] maps what a Verifier established ([`Appraised`]) to an [`Admission`],
//!   or says why not — naming the closest reference entry and how it differs.
//! - Platform claims: CF_L0 are declared in the policy by the operator and count only when a
//!   detached signature by the *policy key* covers the file ([`Policy::verify_signature`]);
//!   CF_L1 come from a [`PlatformClaimSource`] (implemented by [`SignedInventory`]); CF_L2 are
//!   read from the hardware report.
//! - Stickiness: an [`Admission`] carries the [`Binding`] its credential promises, and
//!   [`RenewalCheck`] refuses a renewal that breaks it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use p384::ecdsa::signature::{Signer, Verifier};
use p384::ecdsa::{DerSignature, Signature, SigningKey, VerifyingKey};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use toml::Spanned;
use twi_attester::snp::report::{AttestationReport, TcbLayout};
use twi_proto::msg::Platform;

pub use crate::freshness::FreshnessLevel;

// ---------------------------------------------------------------------------------------------
// Levels and names

/// Platform-claim fidelity (TWI reference architecture §5.4.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Fidelity {
    /// Declared by the operator (in the policy, covered by the policy key's signature).
    #[serde(rename = "CF_L0")]
    Declared,
    /// From an external attested claim provider ([`PlatformClaimSource`]).
    #[serde(rename = "CF_L1")]
    ExternalAttested,
    /// From the confidential computing platform itself (the hardware report).
    #[serde(rename = "CF_L2")]
    BuiltIn,
}

/// How sticky the identity is to the platform (TWI reference architecture §5.4.4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Stickiness {
    /// The binding holds while the platform TCB (firmware and microcode levels) is unchanged.
    #[serde(rename = "CS_L1")]
    SameTcb,
    /// The binding holds while the platform claims (at the workload's fidelity) are unchanged.
    #[serde(rename = "CS_L2")]
    SameClaims,
    /// The binding holds on one chip only.
    #[serde(rename = "CS_L3")]
    SameChip,
}

/// Credential Acquisition Mechanism (draft-novak-twi-attestation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mechanism {
    /// The Verifier asks the Credential Authority; the credential comes in the attestation result.
    A,
    /// The Verifier returns an EAR binding the key; the workload takes it to the Credential Authority.
    B,
    /// The workload sends a credential request (key proof + Evidence) to the Credential Authority.
    C,
    /// A provisioned credential; the Key Store releases its key after attestation.
    D,
}

macro_rules! names {
    ($ty:ty { $($variant:ident => $name:literal),* $(,)? }) => {
        impl $ty {
            pub fn name(self) -> &'static str {
                match self { $(Self::$variant => $name),* }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}
names!(Fidelity { Declared => "CF_L0", ExternalAttested => "CF_L1", BuiltIn => "CF_L2" });
names!(Stickiness { SameTcb => "CS_L1", SameClaims => "CS_L2", SameChip => "CS_L3" });
names!(Mechanism { A => "a", B => "b", C => "c", D => "d" });

/// The policy's name for a platform.
pub fn platform_name(p: Platform) -> &'static str {
    match p {
        Platform::SimSnp => "sim-snp",
        Platform::Snp => "snp",
        Platform::Tdx => "tdx",
        Platform::SimTdx => "sim-tdx",
    }
}

fn parse_platform(name: &str) -> Option<Platform> {
    [Platform::SimSnp, Platform::Snp, Platform::Tdx, Platform::SimTdx].into_iter().find(|p| platform_name(*p) == name)
}

fn is_snp(p: Platform) -> bool {
    matches!(p, Platform::SimSnp | Platform::Snp)
}

/// A business or platform claim value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(untagged)]
pub enum ClaimValue {
    Bool(bool),
    Int(i64),
    String(String),
}

impl fmt::Display for ClaimValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClaimValue::Bool(b) => write!(f, "{b}"),
            ClaimValue::Int(i) => write!(f, "{i}"),
            ClaimValue::String(s) => write!(f, "{s:?}"),
        }
    }
}

impl From<ClaimValue> for serde_json::Value {
    fn from(v: ClaimValue) -> Self {
        match v {
            ClaimValue::Bool(b) => b.into(),
            ClaimValue::Int(i) => i.into(),
            ClaimValue::String(s) => s.into(),
        }
    }
}

impl<'de> Deserialize<'de> for ClaimValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ClaimValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a claim value: a string, a boolean or an integer")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ClaimValue, E> {
                Ok(ClaimValue::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ClaimValue, E> {
                Ok(ClaimValue::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ClaimValue, E> {
                i64::try_from(v).map(ClaimValue::Int).map_err(|_| E::custom("the integer is too large for a claim"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ClaimValue, E> {
                Ok(ClaimValue::String(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Claims by name.
pub type Claims = BTreeMap<String, ClaimValue>;

// ---------------------------------------------------------------------------------------------
// What the Verifier established

/// SEV-SNP TCB components (from REPORTED_TCB under the chip's layout).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnpTcb {
    #[serde(default)]
    pub bootloader: u8,
    #[serde(default)]
    pub tee: u8,
    #[serde(default)]
    pub snp: u8,
    #[serde(default)]
    pub microcode: u8,
    /// Turin and later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fmc: Option<u8>,
}

impl fmt::Display for SnpTcb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(fmc) = self.fmc {
            write!(f, "fmc={fmc},")?;
        }
        write!(f, "bootloader={},tee={},snp={},microcode={}", self.bootloader, self.tee, self.snp, self.microcode)
    }
}

/// The platform TCB a Verifier read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppraisedTcb {
    Snp(SnpTcb),
    /// TDX TEE_TCB_SVN (16 bytes, one SVN per component).
    Tdx([u8; 16]),
}

impl fmt::Display for AppraisedTcb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppraisedTcb::Snp(t) => t.fmt(f),
            AppraisedTcb::Tdx(svn) => write!(f, "tee_tcb_svn={}", hex::encode(svn)),
        }
    }
}

/// What a Verifier established about verified Evidence: the input to [`Policy::admit`]. Plain
/// data, filled from a verified SNP report ([`Appraised::from_snp_report`]) or TDX quote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appraised {
    pub platform: Platform,
    /// SEV-SNP MEASUREMENT, or TDX MRTD (48 bytes).
    pub measurement: Vec<u8>,
    /// TDX RTMR0..3 (48 bytes each); empty for SEV-SNP.
    pub rtmrs: Vec<Vec<u8>>,
    /// SEV-SNP guest POLICY, or TDX TD ATTRIBUTES.
    pub policy: u64,
    pub tcb: AppraisedTcb,
    /// SEV-SNP CHIP_ID (64 bytes); for TDX whatever platform instance id the Verifier has
    /// (empty if none).
    pub chip_id: Vec<u8>,
    /// SEV-SNP HOST_DATA (32 bytes); empty for TDX.
    pub host_data: Vec<u8>,
    /// SEV-SNP PLATFORM_INFO; 0 for TDX.
    pub platform_info: u64,
}

impl Appraised {
    /// From a verified SEV-SNP report (real or simulated) whose TCB layout is known.
    pub fn from_snp_report(platform: Platform, report: &AttestationReport, layout: TcbLayout) -> Self {
        let parts = report.reported_tcb.parts(layout);
        Self {
            platform,
            measurement: report.measurement.to_vec(),
            rtmrs: Vec::new(),
            policy: report.policy.0,
            tcb: AppraisedTcb::Snp(SnpTcb {
                bootloader: parts.bootloader,
                tee: parts.tee,
                snp: parts.snp,
                microcode: parts.microcode,
                fmc: parts.fmc,
            }),
            chip_id: report.chip_id.to_vec(),
            host_data: report.host_data.to_vec(),
            platform_info: report.platform_info,
        }
    }

    /// The platform claims the hardware report itself provides (CF_L2).
    pub fn builtin_claims(&self) -> Claims {
        let mut c = Claims::new();
        c.insert("platform".into(), ClaimValue::String(platform_name(self.platform).into()));
        c.insert("tcb".into(), ClaimValue::String(self.tcb.to_string()));
        if !self.chip_id.is_empty() {
            c.insert("chip_id".into(), ClaimValue::String(hex::encode(&self.chip_id)));
        }
        if is_snp(self.platform) {
            c.insert("platform_info".into(), ClaimValue::String(format!("{:#x}", self.platform_info)));
        }
        c
    }
}

// ---------------------------------------------------------------------------------------------
// Reference values

/// SEV-SNP reference values (platforms `snp` and `sim-snp`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnpReference {
    pub measurement: [u8; 48],
    /// Admitted iff `policy & policy_mask == policy_required`.
    pub policy_mask: u64,
    pub policy_required: u64,
    pub min_tcb: SnpTcb,
    pub host_data: Option<[u8; 32]>,
}

/// TDX reference values (platforms `tdx` and `sim-tdx`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdxReference {
    pub mrtd: [u8; 48],
    pub rtmrs: [Option<[u8; 48]>; 4],
    /// Component-wise minimum.
    pub min_tee_tcb_svn: [u8; 16],
    /// Admitted iff `attributes & attributes_mask == attributes_required`.
    pub attributes_mask: u64,
    pub attributes_required: u64,
}

/// Reference values of one platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    Snp(SnpReference),
    Tdx(TdxReference),
}

/// One admitted launch of a workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferenceEntry {
    /// Position among the workload's entries (0-based).
    pub index: usize,
    pub label: String,
    pub platform: Platform,
    pub values: Reference,
    /// Line in the policy file.
    pub line: usize,
}

/// A field whose reference value the Evidence did not meet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDiff {
    pub field: String,
    pub expected: String,
    pub actual: String,
}

impl fmt::Display for FieldDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (expected {}, found {})", self.field, self.expected, self.actual)
    }
}

fn diff(field: impl Into<String>, expected: impl Into<String>, actual: impl Into<String>) -> FieldDiff {
    FieldDiff { field: field.into(), expected: expected.into(), actual: actual.into() }
}

impl ReferenceEntry {
    /// The fields of `a` this entry does not admit (empty: admitted). Entries of another
    /// platform differ in `platform` only.
    pub fn differences(&self, a: &Appraised) -> Vec<FieldDiff> {
        if a.platform != self.platform {
            return vec![diff("platform", platform_name(self.platform), platform_name(a.platform))];
        }
        let mut d = Vec::new();
        match &self.values {
            Reference::Snp(r) => {
                if a.measurement != r.measurement {
                    d.push(diff("measurement", hex::encode(r.measurement), hex::encode(&a.measurement)));
                }
                if a.policy & r.policy_mask != r.policy_required {
                    d.push(diff(
                        "policy",
                        format!("{:#x} under mask {:#x}", r.policy_required, r.policy_mask),
                        format!("{:#x}", a.policy),
                    ));
                }
                match &a.tcb {
                    AppraisedTcb::Snp(t) => {
                        let min = &r.min_tcb;
                        for (name, want, got) in [
                            ("bootloader", min.bootloader, t.bootloader),
                            ("tee", min.tee, t.tee),
                            ("snp", min.snp, t.snp),
                            ("microcode", min.microcode, t.microcode),
                            ("fmc", min.fmc.unwrap_or(0), t.fmc.unwrap_or(0)),
                        ] {
                            if got < want {
                                d.push(diff(format!("min_tcb.{name}"), format!(">= {want}"), got.to_string()));
                            }
                        }
                    }
                    other => d.push(diff("tcb", "a SEV-SNP TCB", other.to_string())),
                }
                if let Some(host_data) = r.host_data
                    && a.host_data != host_data
                {
                    d.push(diff("host_data", hex::encode(host_data), hex::encode(&a.host_data)));
                }
            }
            Reference::Tdx(r) => {
                if a.measurement != r.mrtd {
                    d.push(diff("mrtd", hex::encode(r.mrtd), hex::encode(&a.measurement)));
                }
                for (i, want) in r.rtmrs.iter().enumerate() {
                    if let Some(want) = want {
                        let got = a.rtmrs.get(i).map(hex::encode).unwrap_or_else(|| "(none)".into());
                        if a.rtmrs.get(i).map(Vec::as_slice) != Some(want.as_slice()) {
                            d.push(diff(format!("rtmr{i}"), hex::encode(want), got));
                        }
                    }
                }
                match &a.tcb {
                    AppraisedTcb::Tdx(svn) => {
                        if svn.iter().zip(r.min_tee_tcb_svn.iter()).any(|(got, want)| got < want) {
                            d.push(diff(
                                "min_tee_tcb_svn",
                                format!(">= {} (each byte)", hex::encode(r.min_tee_tcb_svn)),
                                hex::encode(svn),
                            ));
                        }
                    }
                    other => d.push(diff("tcb", "a TDX TEE_TCB_SVN", other.to_string())),
                }
                if a.policy & r.attributes_mask != r.attributes_required {
                    d.push(diff(
                        "attributes",
                        format!("{:#x} under mask {:#x}", r.attributes_required, r.attributes_mask),
                        format!("{:#x}", a.policy),
                    ));
                }
            }
        }
        d
    }
}

// ---------------------------------------------------------------------------------------------
// The policy

/// One Stable workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    /// The path under the trust domain, e.g. `payroll-app`.
    pub id: String,
    pub claims: Claims,
    /// CF_L0 platform claims declared by the operator.
    pub declared_platform_claims: Claims,
    pub freshness: FreshnessLevel,
    pub fidelity: Fidelity,
    pub stickiness: Stickiness,
    pub mechanism: Mechanism,
    pub lifetime: Duration,
    pub references: Vec<ReferenceEntry>,
    pub line: usize,
}

/// A parsed appraisal policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The policy's version, recorded with every credential it admits.
    pub version: String,
    pub trust_domain: String,
    pub workloads: Vec<Workload>,
    /// Where it was read from (`<memory>` for [`Policy::from_toml`]).
    pub source: String,
    bytes: Vec<u8>,
    signature: Option<Vec<u8>>,
    signed: bool,
}

/// Why a policy file (or a reference-values file) could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: String },
    #[error("{file}:{line}:{column}: {message}")]
    Parse { file: String, line: usize, column: usize, message: String },
    #[error("{file}:{line}: {message}")]
    Invalid { file: String, line: usize, message: String },
    #[error("{file}: {reason}")]
    Signature { file: String, reason: String },
    #[error("the policy key: {0}")]
    Key(String),
    #[error("reference values: {0}")]
    ReferenceValues(String),
}

/// Why the policy does not admit Evidence. Each message says what differs and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyRejection {
    #[error("{}", no_match_text(.platform, .measurement, .closest))]
    NoMatch { platform: String, measurement: String, closest: Option<Box<ClosestMatch>> },
    #[error(
        "the evidence matches reference values of several workloads ({0}): the identity would be ambiguous; make the entries distinct (e.g. pin host_data)"
    )]
    Ambiguous(String),
    #[error(
        "workload `{0}` takes declared platform claims (CF_L0), but no valid signature by the policy key covers the policy: sign the policy file and configure the policy key"
    )]
    DeclaredClaimsUnsigned(String),
    #[error(
        "workload `{0}` takes its platform claims from an external attested source (CF_L1), and none is configured"
    )]
    NoClaimSource(String),
    #[error("workload `{workload}`: the platform claim source {source_name} has nothing for this platform: {reason}")]
    ClaimSource { workload: String, source_name: String, reason: String },
}

/// The reference entry that came closest to admitting Evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosestMatch {
    pub workload: String,
    pub index: usize,
    pub label: String,
    pub line: usize,
    pub differences: Vec<FieldDiff>,
}

fn no_match_text(platform: &str, measurement: &str, closest: &Option<Box<ClosestMatch>>) -> String {
    let mut s = format!("no workload admits this {platform} evidence (measurement {measurement})");
    match closest {
        Some(c) => {
            let fields: Vec<String> = c.differences.iter().map(ToString::to_string).collect();
            s.push_str(&format!(
                "; closest: workload `{}` reference #{} \"{}\" (line {}), which differs in {}: {}",
                c.workload,
                c.index,
                c.label,
                c.line,
                if c.differences.len() == 1 {
                    "1 field".to_string()
                } else {
                    format!("{} fields", c.differences.len())
                },
                fields.join("; ")
            ));
        }
        None => s.push_str(&format!("; the policy has no reference values for platform {platform}")),
    }
    s.push_str(" — if this is a new version, add its reference values (`twi build` writes them) to the workload");
    s
}

/// The reference entry that admitted Evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MatchedReference {
    pub index: usize,
    pub label: String,
}

/// What the policy concluded: identity, claims, levels, and what the credential binds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admission {
    /// The path under the trust domain, e.g. `payroll-app`.
    pub workload: String,
    /// `spiffe://<trust-domain>/<workload>`.
    pub workload_id: String,
    pub claims: Claims,
    /// Platform claims at the workload's fidelity.
    pub platform_claims: Claims,
    pub reference: MatchedReference,
    pub freshness: FreshnessLevel,
    pub fidelity: Fidelity,
    pub stickiness: Stickiness,
    pub mechanism: Mechanism,
    pub lifetime: Duration,
    pub policy_version: String,
    /// What the credential binds, per the stickiness level.
    pub binding: Binding,
    platform: Platform,
    tcb: String,
    chip_id: String,
}

impl Admission {
    /// The binding this admission would have under `level` (renewals compare under the level
    /// the previous credential promised).
    pub fn binding_at(&self, level: Stickiness) -> Binding {
        let mut values = Claims::new();
        match level {
            Stickiness::SameTcb => {
                values.insert("platform".into(), ClaimValue::String(platform_name(self.platform).into()));
                values.insert("tcb".into(), ClaimValue::String(self.tcb.clone()));
            }
            Stickiness::SameClaims => values.clone_from(&self.platform_claims),
            Stickiness::SameChip => {
                values.insert("chip_id".into(), ClaimValue::String(self.chip_id.clone()));
            }
        }
        Binding { stickiness: level, workload_id: self.workload_id.clone(), values }
    }
}

/// What a credential is bound to (its stickiness level and the values it pins). Stored with
/// the credential (provenance record, a WIT claim) so a renewal can be checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    pub stickiness: Stickiness,
    pub workload_id: String,
    pub values: Claims,
}

impl Binding {
    /// SHA-256 over the binding's canonical JSON (sorted keys): a compact pin for an X.509
    /// extension.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(serde_json::to_vec(self).unwrap_or_default()).into()
    }

    /// The binding as JSON (for a WIT or EAR claim).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// A renewal that would break the previous credential's binding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", renewal_text(.workload_id, .stickiness, .differences))]
pub struct RenewalRefused {
    pub workload_id: String,
    pub stickiness: Stickiness,
    pub differences: Vec<FieldDiff>,
}

fn renewal_text(workload_id: &str, level: &Stickiness, differences: &[FieldDiff]) -> String {
    let what = match level {
        Stickiness::SameTcb => "the platform TCB it was issued on",
        Stickiness::SameClaims => "the platform claims it was issued with",
        Stickiness::SameChip => "the chip it was issued on",
    };
    let fields: Vec<String> = differences.iter().map(ToString::to_string).collect();
    format!(
        "renewal of {workload_id} refused: its credential is bound ({level}) to {what}, and {}; the workload needs a fresh credential under a policy that allows this change",
        fields.join("; ")
    )
}

/// Checks a renewal against the previous credential's [`Binding`].
#[derive(Clone, Debug)]
pub struct RenewalCheck {
    pub previous: Binding,
}

impl RenewalCheck {
    /// Ok when `admission` keeps every value the previous credential pinned (under the
    /// previous credential's stickiness level) and names the same workload.
    pub fn check(&self, admission: &Admission) -> Result<(), RenewalRefused> {
        let prev = &self.previous;
        let now = admission.binding_at(prev.stickiness);
        let mut differences = Vec::new();
        if now.workload_id != prev.workload_id {
            differences.push(diff("workload", &prev.workload_id, &now.workload_id));
        }
        let keys: std::collections::BTreeSet<&String> = prev.values.keys().chain(now.values.keys()).collect();
        for key in keys {
            let (p, n) = (prev.values.get(key), now.values.get(key));
            if p != n {
                let show = |v: Option<&ClaimValue>| v.map(ToString::to_string).unwrap_or_else(|| "(absent)".into());
                differences.push(diff(key.clone(), show(p), show(n)));
            }
        }
        if differences.is_empty() {
            Ok(())
        } else {
            Err(RenewalRefused { workload_id: prev.workload_id.clone(), stickiness: prev.stickiness, differences })
        }
    }
}

/// An external source of attested platform claims (CF_L1).
pub trait PlatformClaimSource: fmt::Debug {
    /// A name for messages and provenance (e.g. the claim provider's identity).
    fn name(&self) -> String;
    /// The claims for the platform `appraised` ran on, or why there are none.
    fn claims_for(&self, appraised: &Appraised) -> Result<Claims, String>;
}

impl Policy {
    /// Parses a policy from TOML text (no signature: CF_L0 claims will not be admitted).
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        Self::parse(text, "<memory>")
    }

    /// Reads a policy file and, when present, its detached signature `<path>.sig`. The
    /// signature is checked by [`Policy::verify_signature`] (or use [`Policy::load_verified`]).
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| PolicyError::Read { path: path.display().to_string(), error: e.to_string() })?;
        let mut policy = Self::parse(&text, &path.display().to_string())?;
        let sig_path = signature_path(path);
        if sig_path.exists() {
            let sig = std::fs::read(&sig_path)
                .map_err(|e| PolicyError::Read { path: sig_path.display().to_string(), error: e.to_string() })?;
            policy.signature = Some(sig);
        }
        Ok(policy)
    }

    /// Reads a policy and checks its signature with `key` when one is configured. A policy
    /// that declares CF_L0 platform claims must be signed by `key`, or it is refused.
    pub fn load_verified(path: &Path, key: Option<&PolicyKey>) -> Result<Self, PolicyError> {
        let mut policy = Self::load(path)?;
        if let Some(key) = key {
            if policy.signature.is_some() || policy.declares_platform_claims().is_some() {
                policy.verify_signature(key)?;
            }
        } else if let Some(workload) = policy.declares_platform_claims() {
            return Err(PolicyError::Signature {
                file: policy.source.clone(),
                reason: format!(
                    "workload `{workload}` declares CF_L0 platform claims, which count only under the policy key's signature, and no policy key is configured"
                ),
            });
        }
        Ok(policy)
    }

    /// Attaches a detached signature (for policies not read from a file).
    pub fn with_signature(mut self, signature: Vec<u8>) -> Self {
        self.signature = Some(signature);
        self.signed = false;
        self
    }

    /// Checks the detached signature over the policy's exact bytes under the policy key.
    /// After this, declared (CF_L0) platform claims are admitted.
    pub fn verify_signature(&mut self, key: &PolicyKey) -> Result<(), PolicyError> {
        let fail = |reason: String| PolicyError::Signature { file: self.source.clone(), reason };
        let Some(sig) = &self.signature else {
            return Err(fail(format!(
                "no signature: the policy key must sign this file (e.g. `openssl dgst -sha384 -sign policy-key.pem -out {0}.sig {0}`)",
                self.source
            )));
        };
        let sig = parse_signature(sig).ok_or_else(|| {
            fail("the signature file holds no ECDSA P-384 signature (DER, base64 of DER, or 96 raw bytes)".into())
        })?;
        key.0.verify(&self.bytes, &sig).map_err(|_| {
            fail("the signature does not verify under the policy key: the file was changed after signing, or signed by another key".into())
        })?;
        self.signed = true;
        Ok(())
    }

    /// Whether a valid policy-key signature covers the policy.
    pub fn is_signed(&self) -> bool {
        self.signed
    }

    /// The first workload that declares CF_L0 platform claims.
    fn declares_platform_claims(&self) -> Option<&str> {
        self.workloads.iter().find(|w| w.fidelity == Fidelity::Declared).map(|w| w.id.as_str())
    }

    /// The workload named `id`.
    pub fn workload(&self, id: &str) -> Option<&Workload> {
        self.workloads.iter().find(|w| w.id == id)
    }

    /// Maps `appraised` to the workload whose reference values admit it (CF_L1 workloads need
    /// [`Policy::admit_with_source`]).
    pub fn admit(&self, appraised: &Appraised) -> Result<Admission, PolicyRejection> {
        self.admit_inner(appraised, None)
    }

    /// As [`Policy::admit`], with a source for CF_L1 platform claims.
    pub fn admit_with_source(
        &self,
        appraised: &Appraised,
        source: &dyn PlatformClaimSource,
    ) -> Result<Admission, PolicyRejection> {
        self.admit_inner(appraised, Some(source))
    }

    fn admit_inner(
        &self,
        a: &Appraised,
        source: Option<&dyn PlatformClaimSource>,
    ) -> Result<Admission, PolicyRejection> {
        let mut matches: Vec<(&Workload, &ReferenceEntry)> = Vec::new();
        let mut closest: Option<Box<ClosestMatch>> = None;
        for w in &self.workloads {
            let mut matched = false;
            for entry in w.references.iter().filter(|e| e.platform == a.platform) {
                let d = entry.differences(a);
                if d.is_empty() {
                    if !matched {
                        matches.push((w, entry));
                        matched = true;
                    }
                } else if closest.as_ref().is_none_or(|c| d.len() < c.differences.len()) {
                    closest = Some(Box::new(ClosestMatch {
                        workload: w.id.clone(),
                        index: entry.index,
                        label: entry.label.clone(),
                        line: entry.line,
                        differences: d,
                    }));
                }
            }
        }
        let (w, entry) = match matches.as_slice() {
            [] => {
                return Err(PolicyRejection::NoMatch {
                    platform: platform_name(a.platform).into(),
                    measurement: hex::encode(&a.measurement),
                    closest,
                });
            }
            [one] => *one,
            many => {
                let names: Vec<&str> = many.iter().map(|(w, _)| w.id.as_str()).collect();
                return Err(PolicyRejection::Ambiguous(names.join(", ")));
            }
        };
        let platform_claims = match w.fidelity {
            Fidelity::Declared if !self.signed => return Err(PolicyRejection::DeclaredClaimsUnsigned(w.id.clone())),
            Fidelity::Declared => w.declared_platform_claims.clone(),
            Fidelity::ExternalAttested => {
                let source = source.ok_or_else(|| PolicyRejection::NoClaimSource(w.id.clone()))?;
                source.claims_for(a).map_err(|reason| PolicyRejection::ClaimSource {
                    workload: w.id.clone(),
                    source_name: source.name(),
                    reason,
                })?
            }
            Fidelity::BuiltIn => a.builtin_claims(),
        };
        let mut admission = Admission {
            workload: w.id.clone(),
            workload_id: format!("spiffe://{}/{}", self.trust_domain, w.id),
            claims: w.claims.clone(),
            platform_claims,
            reference: MatchedReference { index: entry.index, label: entry.label.clone() },
            freshness: w.freshness,
            fidelity: w.fidelity,
            stickiness: w.stickiness,
            mechanism: w.mechanism,
            lifetime: w.lifetime,
            policy_version: self.version.clone(),
            binding: Binding { stickiness: w.stickiness, workload_id: String::new(), values: Claims::new() },
            platform: a.platform,
            tcb: a.tcb.to_string(),
            chip_id: hex::encode(&a.chip_id),
        };
        admission.binding = admission.binding_at(w.stickiness);
        Ok(admission)
    }

    /// A TOML snippet of `[[workload.reference]]` entries for the values in a
    /// `reference-values.json` that `twi build` wrote, labelled `label`: paste it under the
    /// workload's `[[workload]]` table. Takes what the file has: `snp.launch_digest` (with
    /// `snp.policy`), `igvm.snp_launch_digest`, `sim_snp.launch_digest`, `tdx.mrtd` (and
    /// `tdx.rtmr` when it is an array of four).
    pub fn reference_values_entry(json: &str, label: &str) -> Result<String, PolicyError> {
        let err = |m: String| PolicyError::ReferenceValues(m);
        let v: serde_json::Value = serde_json::from_str(json).map_err(|e| err(format!("not JSON: {e}")))?;
        let str_at = |path: &[&str]| {
            path.iter().try_fold(&v, |v, k| v.get(k)).and_then(serde_json::Value::as_str).map(str::to_string)
        };
        let hex48 = |path: &[&str]| -> Result<Option<String>, PolicyError> {
            match str_at(path) {
                None => Ok(None),
                Some(h) => {
                    let h = h.trim_start_matches("0x").to_ascii_lowercase();
                    match hex::decode(&h) {
                        Ok(b) if b.len() == 48 => Ok(Some(h)),
                        _ => Err(err(format!("{} is not 48 bytes of hex: {h:?}", path.join(".")))),
                    }
                }
            }
        };
        let toml_str = |s: &str| toml::Value::String(s.to_string()).to_string();
        let mut out = String::new();
        let format = str_at(&["format"]).unwrap_or_else(|| "unknown format".into());
        let git = match (str_at(&["build", "git_commit"]), v.pointer("/build/git_dirty").and_then(|d| d.as_bool())) {
            (Some(c), Some(true)) => format!(", git {c} (dirty)"),
            (Some(c), _) => format!(", git {c}"),
            _ => String::new(),
        };
        out.push_str(&format!("# From reference-values.json ({format}{git}).\n"));
        let snp_policy = match str_at(&["snp", "policy"]) {
            Some(p) => Some(parse_u64_text(&p).ok_or_else(|| err(format!("snp.policy is not a number: {p:?}")))?),
            None => None,
        };
        let snp_entry = |platform: &str, label: &str, digest: &str, out: &mut String| {
            out.push_str(&format!(
                "[[workload.reference]]\nlabel = {}\nplatform = \"{platform}\"\nmeasurement = \"{digest}\"\n",
                toml_str(label)
            ));
            if let Some(policy) = snp_policy {
                out.push_str(&format!(
                    "# The guest policy the image was built for: exactly these flags (bits 16-25), any ABI version.\npolicy_mask = \"{POLICY_FLAGS_MASK:#x}\"\npolicy_required = \"{:#x}\"\n",
                    policy & POLICY_FLAGS_MASK
                ));
            }
            out.push('\n');
        };
        let mut found = 0;
        if let Some(d) = hex48(&["snp", "launch_digest"])? {
            snp_entry("snp", label, &d, &mut out);
            found += 1;
        }
        if let Some(d) = hex48(&["igvm", "snp_launch_digest"])? {
            snp_entry("snp", &format!("{label} (IGVM)"), &d, &mut out);
            found += 1;
        }
        if let Some(d) = hex48(&["sim_snp", "launch_digest"])? {
            snp_entry("sim-snp", &format!("{label} (simulated)"), &d, &mut out);
            found += 1;
        }
        if let Some(mrtd) = hex48(&["tdx", "mrtd"])? {
            out.push_str(&format!(
                "[[workload.reference]]\nlabel = {}\nplatform = \"tdx\"\nmrtd = \"{mrtd}\"\n",
                toml_str(label)
            ));
            if let Some(rtmrs) = v.pointer("/tdx/rtmr").and_then(|r| r.as_array()) {
                for (i, r) in rtmrs.iter().enumerate().take(4) {
                    if let Some(h) = r.as_str() {
                        out.push_str(&format!("rtmr{i} = {}\n", toml_str(h)));
                    }
                }
            }
            out.push('\n');
            found += 1;
        }
        if found == 0 {
            return Err(err(
                "no reference values found (expected snp.launch_digest, igvm.snp_launch_digest, sim_snp.launch_digest or tdx.mrtd)".into(),
            ));
        }
        Ok(out)
    }
}

/// SEV-SNP guest policy flag bits 16..=25 (SMT, the must-be-one bit 17, MIGRATE_MA, DEBUG,
/// SINGLE_SOCKET, CXL_ALLOW, MEM_AES_256_XTS, RAPL_DIS, CIPHERTEXT_HIDING, PAGE_SWAP_DISABLE).
pub const POLICY_FLAGS_MASK: u64 = 0x03FF_0000;
/// SEV-SNP guest policy DEBUG (bit 19): refused unless an entry says otherwise.
pub const SNP_POLICY_DEBUG: u64 = 1 << 19;
/// TDX TD ATTRIBUTES DEBUG (bit 0): refused unless an entry says otherwise.
pub const TDX_ATTRIBUTES_DEBUG: u64 = 1;

fn signature_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(".sig");
    PathBuf::from(s)
}

/// An ECDSA P-384 signature in DER (as `openssl dgst -sign` writes it), base64 of DER, or raw
/// 96-byte `r ‖ s`.
fn parse_signature(bytes: &[u8]) -> Option<Signature> {
    use base64ct::{Base64, Encoding};
    if let Ok(sig) = Signature::from_der(bytes) {
        return Some(sig);
    }
    if bytes.len() == 96 {
        return Signature::from_slice(bytes).ok();
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let compact: String = text.split_whitespace().collect();
    let der = Base64::decode_vec(&compact).ok()?;
    Signature::from_der(&der).ok()
}

/// Signs policy bytes with the policy key: DER, what `openssl dgst -sha384 -sign` writes.
pub fn sign_policy(bytes: &[u8], key: &SigningKey) -> Vec<u8> {
    let sig: Signature = key.sign(bytes);
    let der: DerSignature = sig.to_der();
    der.as_bytes().to_vec()
}

/// The policy key's public half (a P-384 public key in PEM), configured in the issuer.
#[derive(Clone, Debug)]
pub struct PolicyKey(pub VerifyingKey);

impl PolicyKey {
    pub fn from_pem(pem: &str) -> Result<Self, PolicyError> {
        use p384::pkcs8::DecodePublicKey;
        VerifyingKey::from_public_key_pem(pem)
            .map(Self)
            .map_err(|e| PolicyError::Key(format!("not a P-384 public key in PEM (SubjectPublicKeyInfo): {e}")))
    }

    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| PolicyError::Read { path: path.display().to_string(), error: e.to_string() })?;
        Self::from_pem(&pem).map_err(|e| PolicyError::Key(format!("{}: {e}", path.display())))
    }
}

// ---------------------------------------------------------------------------------------------
// CF_L1: a signed inventory

/// A CF_L1 claim source: an inventory of platforms, keyed by chip id, published by an
/// external claim provider (e.g. the data-centre asset system that records where each server
/// is racked) and signed by that provider's P-384 key. The issuer trusts the provider's key,
/// not the host: the file travels through untrusted hands, and its signature covers its exact
/// bytes; it also carries an expiry so stale inventories stop counting.
///
/// ```json
/// { "provider": "dc-inventory.example.org", "expires": "2027-01-01T00:00:00Z",
///   "platforms": { "<chip id hex>": { "location": "DE", "datacenter": "fra-1" } } }
/// ```
#[derive(Clone, Debug)]
pub struct SignedInventory {
    provider: String,
    expires: SystemTime,
    now: SystemTime,
    platforms: BTreeMap<String, Claims>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    provider: String,
    expires: String,
    platforms: BTreeMap<String, Claims>,
}

impl SignedInventory {
    /// Parses `bytes` after checking `signature` (DER, base64 of DER or raw `r ‖ s`) under the
    /// provider's key; `now` decides expiry.
    pub fn from_signed(
        bytes: &[u8],
        signature: &[u8],
        provider_key: &VerifyingKey,
        now: SystemTime,
    ) -> Result<Self, String> {
        let sig = parse_signature(signature).ok_or("the inventory signature is not an ECDSA P-384 signature")?;
        provider_key
            .verify(bytes, &sig)
            .map_err(|_| "the inventory's signature does not verify under the claim provider's key".to_string())?;
        let raw: RawInventory =
            serde_json::from_slice(bytes).map_err(|e| format!("the inventory is malformed: {e}"))?;
        let expires = twi_verifier::time::parse_rfc3339(&raw.expires)
            .ok_or_else(|| format!("the inventory's expiry {:?} is not an RFC 3339 UTC time", raw.expires))?;
        let platforms = raw.platforms.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
        Ok(Self { provider: raw.provider, expires, now, platforms })
    }

    /// Reads `path` and its detached signature `<path>.sig`.
    pub fn load(path: &Path, provider_key: &VerifyingKey, now: SystemTime) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let sig_path = signature_path(path);
        let sig = std::fs::read(&sig_path).map_err(|e| format!("cannot read {}: {e}", sig_path.display()))?;
        Self::from_signed(&bytes, &sig, provider_key, now)
    }
}

impl PlatformClaimSource for SignedInventory {
    fn name(&self) -> String {
        format!("signed inventory of {}", self.provider)
    }

    fn claims_for(&self, appraised: &Appraised) -> Result<Claims, String> {
        if self.now >= self.expires {
            return Err(format!("the inventory expired at {}", twi_verifier::time::format_rfc3339(self.expires)));
        }
        let chip = hex::encode(&appraised.chip_id);
        self.platforms.get(&chip).cloned().ok_or_else(|| format!("chip {chip} is not in the inventory"))
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing

fn parse_u64_text(s: &str) -> Option<u64> {
    let s = s.trim().replace('_', "");
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// A u64 written as a TOML integer or a string (`"0x30000"`, `"196608"`).
#[derive(Clone, Copy, Debug)]
struct U64(u64);

impl<'de> Deserialize<'de> for U64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = U64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative integer, or a string such as \"0x30000\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<U64, E> {
                u64::try_from(v).map(U64).map_err(|_| E::custom("must not be negative"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<U64, E> {
                Ok(U64(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<U64, E> {
                parse_u64_text(v).map(U64).ok_or_else(|| E::custom(format!("{v:?} is not a number (hex needs 0x)")))
            }
        }
        d.deserialize_any(V)
    }
}

/// Exactly N bytes of hex (an optional `0x` prefix is allowed).
#[derive(Clone, Copy, Debug)]
struct Hex<const N: usize>([u8; N]);

impl<'de, const N: usize> Deserialize<'de> for Hex<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let digits = s.trim().trim_start_matches("0x");
        let bytes = hex::decode(digits)
            .map_err(|e| de::Error::custom(format!("not hex ({e}): expected {} hex digits", 2 * N)))?;
        <[u8; N]>::try_from(bytes.as_slice()).map(Hex).map_err(|_| {
            de::Error::custom(format!("expected {N} bytes ({} hex digits), found {} bytes", 2 * N, bytes.len()))
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    version: Spanned<String>,
    trust_domain: Spanned<String>,
    #[serde(default)]
    workload: Vec<Spanned<RawWorkload>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    id: Spanned<String>,
    #[serde(default = "default_mechanism")]
    mechanism: Mechanism,
    #[serde(default = "default_freshness")]
    freshness: FreshnessLevel,
    #[serde(default = "default_fidelity")]
    fidelity: Fidelity,
    #[serde(default = "default_stickiness")]
    stickiness: Stickiness,
    #[serde(default)]
    lifetime_secs: Option<u64>,
    #[serde(default)]
    claims: Option<Spanned<Claims>>,
    #[serde(default)]
    platform_claims: Option<Spanned<Claims>>,
    #[serde(default)]
    reference: Vec<Spanned<RawReference>>,
}

fn default_mechanism() -> Mechanism {
    Mechanism::A
}
fn default_freshness() -> FreshnessLevel {
    FreshnessLevel::Nonce
}
fn default_fidelity() -> Fidelity {
    Fidelity::BuiltIn
}
fn default_stickiness() -> Stickiness {
    Stickiness::SameTcb
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReference {
    #[serde(default)]
    label: Option<String>,
    platform: Spanned<String>,
    // SEV-SNP
    measurement: Option<Hex<48>>,
    policy_mask: Option<U64>,
    policy_required: Option<U64>,
    min_tcb: Option<SnpTcb>,
    host_data: Option<Hex<32>>,
    // TDX
    mrtd: Option<Hex<48>>,
    rtmr0: Option<Hex<48>>,
    rtmr1: Option<Hex<48>>,
    rtmr2: Option<Hex<48>>,
    rtmr3: Option<Hex<48>>,
    min_tee_tcb_svn: Option<Hex<16>>,
    attributes_mask: Option<U64>,
    attributes_required: Option<U64>,
}

/// Default credential lifetime.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

impl Policy {
    fn parse(text: &str, file: &str) -> Result<Self, PolicyError> {
        let line_of = |offset: usize| text.get(..offset).map(|t| t.matches('\n').count() + 1).unwrap_or(1);
        let raw: RawPolicy = toml::from_str(text).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            let line = line_of(offset);
            let column = offset - text.get(..offset).and_then(|t| t.rfind('\n').map(|i| i + 1)).unwrap_or(0) + 1;
            PolicyError::Parse { file: file.into(), line, column, message: e.message().trim().to_string() }
        })?;
        let invalid = |span: std::ops::Range<usize>, message: String| PolicyError::Invalid {
            file: file.into(),
            line: line_of(span.start),
            message,
        };
        let version = raw.version.get_ref().trim().to_string();
        if version.is_empty() {
            return Err(invalid(raw.version.span(), "`version` is empty: name this policy's version".into()));
        }
        let trust_domain = raw.trust_domain.get_ref().clone();
        if !valid_trust_domain(&trust_domain) {
            return Err(invalid(
                raw.trust_domain.span(),
                format!(
                    "trust_domain {trust_domain:?} is not a SPIFFE trust domain (lowercase letters, digits, '.', '-', '_')"
                ),
            ));
        }
        let mut workloads: Vec<Workload> = Vec::new();
        for w in raw.workload {
            let wspan = w.span();
            let w = w.into_inner();
            let id = w.id.get_ref().clone();
            if !valid_workload_path(&id) {
                return Err(invalid(
                    w.id.span(),
                    format!(
                        "workload id {id:?} is not a SPIFFE path (segments of letters, digits, '.', '-', '_' separated by '/')"
                    ),
                ));
            }
            if workloads.iter().any(|o| o.id == id) {
                return Err(invalid(w.id.span(), format!("workload `{id}` is defined twice")));
            }
            let claims_span = w.claims.as_ref().map(Spanned::span).unwrap_or(wspan.clone());
            let claims: Claims = w.claims.map(Spanned::into_inner).unwrap_or_default();
            for name in claims.keys() {
                if name.is_empty() || crate::wit::RESERVED_CLAIMS.contains(&name.as_str()) {
                    return Err(invalid(
                        claims_span.clone(),
                        format!("workload `{id}`: claim name {name:?} is reserved for the token itself; rename it"),
                    ));
                }
            }
            let declared_span = w.platform_claims.as_ref().map(Spanned::span).unwrap_or(wspan.clone());
            let declared: Claims = w.platform_claims.map(Spanned::into_inner).unwrap_or_default();
            if w.fidelity == Fidelity::Declared && declared.is_empty() {
                return Err(invalid(
                    wspan.clone(),
                    format!("workload `{id}` has fidelity CF_L0 but declares no platform_claims"),
                ));
            }
            if w.fidelity != Fidelity::Declared && !declared.is_empty() {
                return Err(invalid(
                    declared_span,
                    format!(
                        "workload `{id}` declares platform_claims, which only count at fidelity CF_L0 (it has {}): set fidelity = \"CF_L0\" or remove them",
                        w.fidelity
                    ),
                ));
            }
            if w.reference.is_empty() {
                return Err(invalid(
                    wspan.clone(),
                    format!("workload `{id}` has no [[workload.reference]] entries, so nothing can be admitted as it"),
                ));
            }
            let mut references = Vec::new();
            for (index, r) in w.reference.into_iter().enumerate() {
                let line = line_of(r.span().start);
                let entry = reference_entry(index, r.into_inner(), line).map_err(|message| PolicyError::Invalid {
                    file: file.into(),
                    line,
                    message: format!("workload `{id}`: {message}"),
                })?;
                references.push(entry);
            }
            workloads.push(Workload {
                id,
                claims,
                declared_platform_claims: declared,
                freshness: w.freshness,
                fidelity: w.fidelity,
                stickiness: w.stickiness,
                mechanism: w.mechanism,
                lifetime: w.lifetime_secs.map(Duration::from_secs).unwrap_or(DEFAULT_LIFETIME),
                references,
                line: line_of(wspan.start),
            });
        }
        // The same launch admitted as two identities would make the identity ambiguous.
        for (i, w) in workloads.iter().enumerate() {
            for other in &workloads[i + 1..] {
                for e in &w.references {
                    if let Some(o) = other.references.iter().find(|o| o.platform == e.platform && o.values == e.values)
                    {
                        return Err(PolicyError::Invalid {
                            file: file.into(),
                            line: o.line,
                            message: format!(
                                "workload `{}` admits the same reference values as workload `{}` (line {}): one launch cannot have two identities",
                                other.id, w.id, e.line
                            ),
                        });
                    }
                }
            }
        }
        Ok(Self {
            version,
            trust_domain,
            workloads,
            source: file.into(),
            bytes: text.as_bytes().to_vec(),
            signature: None,
            signed: false,
        })
    }
}

fn reference_entry(index: usize, r: RawReference, line: usize) -> Result<ReferenceEntry, String> {
    let name = r.platform.get_ref();
    let platform = parse_platform(name)
        .ok_or_else(|| format!("reference platform {name:?} is not one of sim-snp, snp, tdx, sim-tdx"))?;
    let label = r.label.unwrap_or_else(|| format!("#{index}"));
    let values = if is_snp(platform) {
        let tdx_fields = [r.mrtd.is_some(), r.rtmr0.is_some(), r.rtmr1.is_some(), r.rtmr2.is_some(), r.rtmr3.is_some()];
        if tdx_fields.iter().any(|x| *x)
            || r.min_tee_tcb_svn.is_some()
            || r.attributes_mask.is_some()
            || r.attributes_required.is_some()
        {
            return Err(format!(
                "reference {label:?} is for {name} but has TDX fields (mrtd, rtmrN, min_tee_tcb_svn, attributes_*)"
            ));
        }
        let measurement = r.measurement.ok_or_else(|| format!("reference {label:?} ({name}) needs `measurement`"))?.0;
        let policy_mask = r.policy_mask.map(|m| m.0).unwrap_or(SNP_POLICY_DEBUG);
        let policy_required = r.policy_required.map(|m| m.0).unwrap_or(0);
        if policy_required & !policy_mask != 0 {
            return Err(format!(
                "reference {label:?}: policy_required {policy_required:#x} has bits outside policy_mask {policy_mask:#x}, so nothing could match"
            ));
        }
        Reference::Snp(SnpReference {
            measurement,
            policy_mask,
            policy_required,
            min_tcb: r.min_tcb.unwrap_or_default(),
            host_data: r.host_data.map(|h| h.0),
        })
    } else {
        if r.measurement.is_some()
            || r.policy_mask.is_some()
            || r.policy_required.is_some()
            || r.min_tcb.is_some()
            || r.host_data.is_some()
        {
            return Err(format!(
                "reference {label:?} is for {name} but has SEV-SNP fields (measurement, policy_*, min_tcb, host_data)"
            ));
        }
        let mrtd = r.mrtd.ok_or_else(|| format!("reference {label:?} ({name}) needs `mrtd`"))?.0;
        let attributes_mask = r.attributes_mask.map(|m| m.0).unwrap_or(TDX_ATTRIBUTES_DEBUG);
        let attributes_required = r.attributes_required.map(|m| m.0).unwrap_or(0);
        if attributes_required & !attributes_mask != 0 {
            return Err(format!("reference {label:?}: attributes_required has bits outside attributes_mask"));
        }
        Reference::Tdx(TdxReference {
            mrtd,
            rtmrs: [r.rtmr0.map(|h| h.0), r.rtmr1.map(|h| h.0), r.rtmr2.map(|h| h.0), r.rtmr3.map(|h| h.0)],
            min_tee_tcb_svn: r.min_tee_tcb_svn.map(|h| h.0).unwrap_or([0; 16]),
            attributes_mask,
            attributes_required,
        })
    };
    Ok(ReferenceEntry { index, label, platform, values, line })
}

fn valid_trust_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_'))
}

fn valid_workload_path(s: &str) -> bool {
    !s.is_empty()
        && s.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use p384::elliptic_curve::Generate;

    const M1: &str =
        "11111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111";
    const M2: &str =
        "22222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222";

    fn m(h: &str) -> Vec<u8> {
        hex::decode(&h[..96]).unwrap()
    }

    fn policy_text() -> String {
        format!(
            r#"
version = "7"
trust_domain = "example.org"

[[workload]]
id = "payroll-app"
freshness = "AF_L2"
fidelity = "CF_L2"
stickiness = "CS_L3"
[workload.claims]
location = "DE"
handles-pii = true
tier = 2

[[workload.reference]]
label = "v1"
platform = "sim-snp"
measurement = "{}"
min_tcb = {{ snp = 8 }}

[[workload.reference]]
label = "v2"
platform = "sim-snp"
measurement = "{}"
"#,
            &M1[..96],
            &M2[..96]
        )
    }

    fn appraised(measurement: Vec<u8>) -> Appraised {
        Appraised {
            platform: Platform::SimSnp,
            measurement,
            rtmrs: vec![],
            policy: 0x30000,
            tcb: AppraisedTcb::Snp(SnpTcb { bootloader: 3, tee: 0, snp: 8, microcode: 115, fmc: None }),
            chip_id: vec![0xAB; 64],
            host_data: vec![0; 32],
            platform_info: 1,
        }
    }

    #[test]
    fn admits_each_version_as_the_same_identity() {
        let p = Policy::from_toml(&policy_text()).unwrap();
        let a1 = p.admit(&appraised(m(M1))).unwrap();
        let a2 = p.admit(&appraised(m(M2))).unwrap();
        assert_eq!(a1.workload_id, "spiffe://example.org/payroll-app");
        assert_eq!((a1.workload_id.as_str(), &a1.claims), (a2.workload_id.as_str(), &a2.claims));
        assert_eq!((a1.reference.label.as_str(), a2.reference.label.as_str()), ("v1", "v2"));
        assert_eq!(a1.claims["location"], ClaimValue::String("DE".into()));
        assert_eq!(a1.claims["handles-pii"], ClaimValue::Bool(true));
        assert_eq!(a1.claims["tier"], ClaimValue::Int(2));
        assert_eq!(a1.platform_claims["platform"], ClaimValue::String("sim-snp".into()));
        assert_eq!(a1.binding.values["chip_id"], ClaimValue::String("ab".repeat(64)));
        assert_eq!(a1.policy_version, "7");
    }

    #[test]
    fn an_unknown_measurement_names_the_closest_entry() {
        let p = Policy::from_toml(&policy_text()).unwrap();
        let mut a = appraised(m(M1));
        a.measurement[0] ^= 1;
        let err = p.admit(&a).unwrap_err();
        let PolicyRejection::NoMatch { closest: Some(c), .. } = &err else { panic!("{err}") };
        assert_eq!((c.workload.as_str(), c.label.as_str(), c.differences.len()), ("payroll-app", "v1", 1));
        assert_eq!(c.differences[0].field, "measurement");
        let text = err.to_string();
        assert!(text.contains("closest: workload `payroll-app` reference #0 \"v1\" (line 15)"), "{text}");
        assert!(text.contains(&format!("expected {}", &M1[..96])), "{text}");
        // The TCB below the minimum: the entry with the right measurement is closest.
        let mut a = appraised(m(M1));
        a.tcb = AppraisedTcb::Snp(SnpTcb { snp: 7, ..SnpTcb::default() });
        let text = p.admit(&a).unwrap_err().to_string();
        assert!(text.contains("min_tcb.snp (expected >= 8, found 7)"), "{text}");
        // Debug is refused by default.
        let mut a = appraised(m(M2));
        a.policy |= SNP_POLICY_DEBUG;
        assert!(p.admit(&a).unwrap_err().to_string().contains("policy (expected 0x0 under mask 0x80000"));
        // Another platform: no entries at all.
        let mut a = appraised(m(M1));
        a.platform = Platform::Snp;
        assert!(p.admit(&a).unwrap_err().to_string().contains("no reference values for platform snp"));
    }

    #[test]
    fn errors_name_the_line_and_field() {
        let text = policy_text().replace(&M2[..96], &M2[..94]);
        let e = Policy::from_toml(&text).unwrap_err().to_string();
        assert!(e.starts_with("<memory>:24:15: "), "{e}");
        assert!(e.contains("expected 48 bytes (96 hex digits), found 47 bytes"), "{e}");
        let e = Policy::from_toml(&policy_text().replace("measurement =", "measurment =")).unwrap_err().to_string();
        assert!(e.contains("unknown field `measurment`"), "{e}");
        let e = Policy::from_toml(&policy_text().replace("tier = 2", "sub = \"x\"")).unwrap_err().to_string();
        assert!(e.contains("claim name \"sub\" is reserved"), "{e}");
        let e = Policy::from_toml(&policy_text().replace("tier = 2", "ratio = 0.5")).unwrap_err().to_string();
        assert!(e.contains("a claim value: a string, a boolean or an integer"), "{e}");
        let e = Policy::from_toml(&policy_text().replace("\"payroll-app\"", "\"../x\"")).unwrap_err().to_string();
        assert!(e.contains(":6: workload id \"../x\" is not a SPIFFE path"), "{e}");
        let e = Policy::from_toml(&policy_text().replace("AF_L2", "AF_L9")).unwrap_err().to_string();
        assert!(e.contains("AF_L9"), "{e}");
        let e = Policy::from_toml(
            &policy_text().replace("platform = \"sim-snp\"\nmeasurement", "platform = \"tdx\"\nmeasurement"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("is for tdx but has SEV-SNP fields"), "{e}");
        // A second workload with the same launch.
        let dup = format!(
            "{}\n[[workload]]\nid = \"other\"\n[[workload.reference]]\nplatform = \"sim-snp\"\nmeasurement = \"{}\"\nmin_tcb = {{ snp = 8 }}\nlabel = \"v1\"\n",
            policy_text(),
            &M1[..96]
        );
        let e = Policy::from_toml(&dup).unwrap_err().to_string();
        assert!(e.contains("one launch cannot have two identities"), "{e}");
    }

    fn declared_text() -> String {
        policy_text().replace("fidelity = \"CF_L2\"", "fidelity = \"CF_L0\"").replace(
            "[[workload.reference]]\nlabel = \"v1\"",
            "[workload.platform_claims]\ncountry = \"DE\"\ndatacenter = \"fra-1\"\n\n[[workload.reference]]\nlabel = \"v1\"",
        )
    }

    #[test]
    fn declared_claims_count_only_under_the_policy_key() {
        let key = SigningKey::try_generate().unwrap();
        let policy_key = PolicyKey(*key.verifying_key());
        let text = declared_text();
        let p = Policy::from_toml(&text).unwrap();
        assert_eq!(p.admit(&appraised(m(M1))), Err(PolicyRejection::DeclaredClaimsUnsigned("payroll-app".into())));
        let mut signed = Policy::from_toml(&text).unwrap().with_signature(sign_policy(text.as_bytes(), &key));
        signed.verify_signature(&policy_key).unwrap();
        let a = signed.admit(&appraised(m(M1))).unwrap();
        assert_eq!(a.platform_claims["datacenter"], ClaimValue::String("fra-1".into()));
        assert_eq!(a.fidelity, Fidelity::Declared);
        // Signed by another key, or the file changed after signing.
        let other = SigningKey::try_generate().unwrap();
        let mut forged = Policy::from_toml(&text).unwrap().with_signature(sign_policy(text.as_bytes(), &other));
        let e = forged.verify_signature(&policy_key).unwrap_err().to_string();
        assert!(e.contains("does not verify under the policy key"), "{e}");
        let changed = text.replace("fra-1", "fra-2");
        let mut changed = Policy::from_toml(&changed).unwrap().with_signature(sign_policy(text.as_bytes(), &key));
        assert!(changed.verify_signature(&policy_key).is_err());
        assert!(changed.admit(&appraised(m(M1))).is_err());
    }

    #[test]
    fn stickiness_refuses_renewals_that_break_the_binding() {
        let p = Policy::from_toml(&policy_text()).unwrap();
        let first = p.admit(&appraised(m(M1))).unwrap();
        let check = RenewalCheck { previous: first.binding.clone() };
        // A version upgrade on the same chip keeps a CS_L3 binding.
        check.check(&p.admit(&appraised(m(M2))).unwrap()).unwrap();
        let mut moved = appraised(m(M1));
        moved.chip_id = vec![0xCD; 64];
        let refused = check.check(&p.admit(&moved).unwrap()).unwrap_err();
        assert_eq!(refused.differences[0].field, "chip_id");
        assert!(refused.to_string().contains("bound (CS_L3) to the chip it was issued on"), "{refused}");
        // CS_L1: a TCB change breaks it, a chip change does not.
        let tcb = RenewalCheck { previous: first.binding_at(Stickiness::SameTcb) };
        tcb.check(&p.admit(&moved).unwrap()).unwrap();
        let mut patched = appraised(m(M1));
        patched.tcb = AppraisedTcb::Snp(SnpTcb { bootloader: 3, tee: 0, snp: 9, microcode: 115, fmc: None });
        let refused = tcb.check(&p.admit(&patched).unwrap()).unwrap_err();
        assert_eq!(refused.differences[0].field, "tcb");
    }

    #[test]
    fn signed_inventory_supplies_cf_l1_claims() {
        let provider = SigningKey::try_generate().unwrap();
        let now = SystemTime::now();
        let inventory = format!(
            r#"{{"provider":"dc-inventory.example.org","expires":"2999-01-01T00:00:00Z","platforms":{{"{}":{{"location":"DE","rack":"r12"}}}}}}"#,
            "ab".repeat(64)
        );
        let sig = sign_policy(inventory.as_bytes(), &provider);
        let source = SignedInventory::from_signed(inventory.as_bytes(), &sig, provider.verifying_key(), now).unwrap();
        let text = policy_text().replace("CF_L2", "CF_L1").replace("CS_L3", "CS_L2");
        let p = Policy::from_toml(&text).unwrap();
        assert_eq!(p.admit(&appraised(m(M1))), Err(PolicyRejection::NoClaimSource("payroll-app".into())));
        let a = p.admit_with_source(&appraised(m(M1)), &source).unwrap();
        assert_eq!(a.platform_claims["rack"], ClaimValue::String("r12".into()));
        assert_eq!(a.binding.values, a.platform_claims, "CS_L2 binds the claims");
        let mut other = appraised(m(M1));
        other.chip_id = vec![1; 64];
        assert!(matches!(p.admit_with_source(&other, &source), Err(PolicyRejection::ClaimSource { .. })));
        let forged = inventory.replace("r12", "r13");
        assert!(SignedInventory::from_signed(forged.as_bytes(), &sig, provider.verifying_key(), now).is_err());
    }

    #[test]
    fn reference_values_json_becomes_a_policy_entry() {
        let json = format!(
            r#"{{"format":"twi-reference-values/1","snp":{{"launch_digest":"{}","policy":"0x30000"}},
               "igvm":{{"snp_launch_digest":"{}"}},"tdx":{{"mrtd":"{}","rtmr":null}},"build":{{"git_commit":"abc","git_dirty":false}}}}"#,
            &M1[..96],
            &M2[..96],
            &M1[..96]
        );
        let snippet = Policy::reference_values_entry(&json, "v3 \"blue\"").unwrap();
        assert!(snippet.starts_with("# From reference-values.json (twi-reference-values/1, git abc)."), "{snippet}");
        let text = format!("version = \"1\"\ntrust_domain = \"example.org\"\n[[workload]]\nid = \"w\"\n{snippet}");
        let p = Policy::from_toml(&text).unwrap();
        let refs = &p.workloads[0].references;
        assert_eq!(refs.len(), 3);
        assert_eq!(refs[0].label, "v3 \"blue\"");
        assert_eq!(refs[1].label, "v3 \"blue\" (IGVM)");
        assert_eq!(refs[2].platform, Platform::Tdx);
        let Reference::Snp(snp) = &refs[0].values else { panic!() };
        assert_eq!((snp.policy_mask, snp.policy_required), (POLICY_FLAGS_MASK, 0x30000));
        let mut a = appraised(m(M1));
        a.platform = Platform::Snp;
        assert_eq!(p.admit(&a).unwrap().reference.index, 0);
        assert!(Policy::reference_values_entry("{}", "x").is_err());
        assert!(
            Policy::reference_values_entry(r#"{"tdx":{"mrtd":"abcd"}}"#, "x")
                .unwrap_err()
                .to_string()
                .contains("tdx.mrtd")
        );
    }
}
