//! Admission: from what a Verifier established ([`Appraised`]) to the one workload whose
//! reference values admit it ([`Admission`]), or a refusal that names the closest reference
//! entry and how it differs ([`PolicyRejection`]). Platform claims come at the workload's
//! fidelity (TWI reference architecture §5.4.4.1): declared (CF_L0, only under the policy
//! key's signature), from a [`PlatformClaimSource`] (CF_L1), or from the report (CF_L2).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use twi_attester::snp::report::{AttestationReport, TcbLayout};
use twi_proto::msg::Platform;
use twi_verifier::{Detail, Verified};

use super::model::{
    ClaimValue, Claims, Fidelity, FreshnessLevel, Mechanism, Policy, Reference, ReferenceEntry, SnpReference, SnpTcb,
    Stickiness, TdxReference, Workload, is_snp, platform_name,
};
use super::provenance::{ProvenanceChecked, ProvenanceRefusal, Sbom};

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

    /// From what a verifier of `twi-verifier` accepted, as evidence of `platform`.
    pub fn from_verified(platform: Platform, verified: &Verified) -> Self {
        match &verified.detail {
            Detail::Snp(snp) => Self::from_snp_report(platform, &snp.report, snp.tcb_layout),
            Detail::Tdx(tdx) => {
                let body = &tdx.body;
                Self {
                    platform,
                    measurement: body.mr_td.to_vec(),
                    rtmrs: body.rtmr.iter().map(|r| r.to_vec()).collect(),
                    policy: body.td_attributes_u64(),
                    tcb: AppraisedTcb::Tdx(body.tee_tcb_svn),
                    chip_id: verified.platform_id.clone(),
                    host_data: Vec::new(),
                    platform_info: 0,
                }
            }
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

pub(super) fn diff(field: impl Into<String>, expected: impl Into<String>, actual: impl Into<String>) -> FieldDiff {
    FieldDiff { field: field.into(), expected: expected.into(), actual: actual.into() }
}

impl ReferenceEntry {
    /// The fields of `a` this entry does not admit (empty: admitted). Entries of another
    /// platform differ in `platform` only.
    pub fn differences(&self, a: &Appraised) -> Vec<FieldDiff> {
        if a.platform != self.platform {
            return vec![diff("platform", platform_name(self.platform), platform_name(a.platform))];
        }
        match &self.values {
            Reference::Snp(r) => snp_differences(r, a),
            Reference::Tdx(r) => tdx_differences(r, a),
        }
    }
}

fn masked(field: &str, value: u64, mask: u64, required: u64) -> Option<FieldDiff> {
    (value & mask != required)
        .then(|| diff(field, format!("{required:#x} under mask {mask:#x}"), format!("{value:#x}")))
}

fn snp_differences(r: &SnpReference, a: &Appraised) -> Vec<FieldDiff> {
    let mut d = Vec::new();
    if a.measurement != r.measurement {
        d.push(diff("measurement", hex::encode(r.measurement), hex::encode(&a.measurement)));
    }
    d.extend(masked("policy", a.policy, r.policy_mask, r.policy_required));
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
    d
}

fn tdx_differences(r: &TdxReference, a: &Appraised) -> Vec<FieldDiff> {
    let mut d = Vec::new();
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
    d.extend(masked("attributes", a.policy, r.attributes_mask, r.attributes_required));
    d
}

/// Why the policy does not admit Evidence. Each message says what differs and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyRejection {
    #[error("{}", no_match_text(.platform, .measurement, .closest, .known))]
    NoMatch {
        platform: String,
        measurement: String,
        closest: Option<Box<ClosestMatch>>,
        /// The entry the policy lists with `admit = false` whose digest the evidence has: the
        /// host profile it was launched under.
        known: Option<Box<KnownLaunch>>,
    },
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
    /// The launch's SBOM does not meet the workload's provenance demands (`provenance.rs`).
    #[error("{0}")]
    Provenance(#[from] ProvenanceRefusal),
    /// The SEV-SNP report's VMPL is not one the workload admits (`vmpl.rs`).
    #[error("{}", vmpl_refusal_text(.workload, *.vmpl, .admitted))]
    Vmpl { workload: String, vmpl: u32, admitted: Vec<u32> },
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

/// A launch the policy knows but does not admit (`admit = false`), which the evidence is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownLaunch {
    pub workload: String,
    pub label: String,
    pub line: usize,
    pub host_profile: String,
    /// The host profiles the workload admits on this platform.
    pub admitted_profiles: Vec<String>,
}

fn no_match_text(
    platform: &str,
    measurement: &str,
    closest: &Option<Box<ClosestMatch>>,
    known: &Option<Box<KnownLaunch>>,
) -> String {
    let mut s = format!("no workload admits this {platform} evidence (measurement {measurement})");
    if let Some(k) = known {
        let admitted = match k.admitted_profiles.as_slice() {
            [] => "which the workload does not admit".to_string(),
            list => format!("and the workload admits host profile {} only", list.join(", ")),
        };
        s.push_str(&format!(
            "; it is workload `{}`'s image launched under host profile {} (reference \"{}\", line {}, admit = false), {admitted} — run it on an admitted host, or admit {} (twi build --host-profile {}) if that host stack is trusted",
            k.workload, k.host_profile, k.label, k.line, k.host_profile, k.host_profile
        ));
        return s;
    }
    match closest {
        Some(c) => {
            let fields: Vec<String> = c.differences.iter().map(ToString::to_string).collect();
            let count = match c.differences.len() {
                1 => "1 field".to_string(),
                n => format!("{n} fields"),
            };
            s.push_str(&format!(
                "; closest: workload `{}` reference #{} \"{}\" (line {}), which differs in {count}: {}",
                c.workload,
                c.index,
                c.label,
                c.line,
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
    /// The SEV-SNP VMPL the evidence was made at, once [`Policy::admit_vmpl`] admitted it.
    pub vmpl: Option<u32>,
    /// The SBOM the admitted reference entry names, and which provenance demands it met.
    pub provenance: Option<ProvenanceChecked>,
    /// The DNS names the workload's policy gives its X.509 credential.
    pub dns_names: Vec<String>,
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

/// An external source of attested platform claims (CF_L1).
pub trait PlatformClaimSource: fmt::Debug {
    /// A name for messages and provenance (e.g. the claim provider's identity).
    fn name(&self) -> String;
    /// The claims for the platform `appraised` ran on, or why there are none.
    fn claims_for(&self, appraised: &Appraised) -> Result<Claims, String>;
}

impl Policy {
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

    pub(crate) fn admit_inner(
        &self,
        a: &Appraised,
        source: Option<&dyn PlatformClaimSource>,
    ) -> Result<Admission, PolicyRejection> {
        let (w, entry) = self.matching_entry(a)?;
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
        let provenance = self.provenance_of(w, entry)?;
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
            vmpl: None,
            provenance,
            dns_names: w.dns_names.clone(),
            platform: a.platform,
            tcb: a.tcb.to_string(),
            chip_id: hex::encode(&a.chip_id),
        };
        admission.binding = admission.binding_at(w.stickiness);
        Ok(admission)
    }

    /// The SBOM `entry` names, checked against `w`'s provenance demands (read from the store,
    /// its digest checked, only when there are demands).
    fn provenance_of(
        &self,
        w: &Workload,
        entry: &ReferenceEntry,
    ) -> Result<Option<ProvenanceChecked>, ProvenanceRefusal> {
        let Some(demands) = &w.provenance else {
            return Ok(entry.sbom.map(|sbom| ProvenanceChecked { sbom, checks: Vec::new() }));
        };
        let workload = w.id.clone();
        let sbom = entry
            .sbom
            .ok_or_else(|| ProvenanceRefusal::NoSbom { workload: workload.clone(), reference: entry.label.clone() })?;
        let store =
            self.sbom_store.as_deref().ok_or_else(|| ProvenanceRefusal::NoStore { workload: workload.clone() })?;
        let document = Sbom::load(store, &sbom).map_err(|error| ProvenanceRefusal::Store { workload, error })?;
        let checks = demands.check(&w.id, &document, store)?;
        Ok(Some(ProvenanceChecked { sbom, checks }))
    }

    /// The one workload (and its first entry) whose reference values admit `a`; otherwise the
    /// refusal, naming the closest entry or the workloads that would make it ambiguous.
    fn matching_entry(&self, a: &Appraised) -> Result<(&Workload, &ReferenceEntry), PolicyRejection> {
        let mut matches: Vec<(&Workload, &ReferenceEntry)> = Vec::new();
        let mut closest: Option<Box<ClosestMatch>> = None;
        let mut known: Option<Box<KnownLaunch>> = None;
        for w in &self.workloads {
            let mut matched = false;
            for entry in w.references.iter().filter(|e| e.platform == a.platform) {
                if !entry.admitted {
                    if known.is_none() && entry.values.measurement().as_slice() == a.measurement.as_slice() {
                        known = Some(Box::new(known_launch(w, entry, a.platform)));
                    }
                    continue;
                }
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
        match matches.as_slice() {
            [] => Err(PolicyRejection::NoMatch {
                platform: platform_name(a.platform).into(),
                measurement: hex::encode(&a.measurement),
                closest,
                known,
            }),
            [one] => Ok(*one),
            many => {
                let names: Vec<&str> = many.iter().map(|(w, _)| w.id.as_str()).collect();
                Err(PolicyRejection::Ambiguous(names.join(", ")))
            }
        }
    }
}

/// What a refusal says of `entry` (listed with `admit = false`), whose digest the evidence has.
fn known_launch(w: &Workload, entry: &ReferenceEntry, platform: Platform) -> KnownLaunch {
    let mut admitted_profiles: Vec<String> = Vec::new();
    for e in w.references.iter().filter(|e| e.admitted && e.platform == platform) {
        if let Some(p) = &e.host_profile
            && !admitted_profiles.contains(p)
        {
            admitted_profiles.push(p.clone());
        }
    }
    KnownLaunch {
        workload: w.id.clone(),
        label: entry.label.clone(),
        line: entry.line,
        host_profile: entry.host_profile.clone().unwrap_or_default(),
        admitted_profiles,
    }
}

/// The refusal's sentence: the VMPL, what the workload admits, and what to change.
fn vmpl_refusal_text(workload: &str, vmpl: u32, admitted: &[u32]) -> String {
    let list: Vec<String> = admitted.iter().map(|v| v.to_string()).collect();
    let below = if vmpl > 0 { " (below a paravisor such as COCONUT-SVSM)" } else { "" };
    format!(
        "workload `{workload}` admits VMPL {} only, and this SEV-SNP report was made at VMPL {vmpl}{below}: add {vmpl} to the workload's vmpls if it may run there",
        list.join(", ")
    )
}
