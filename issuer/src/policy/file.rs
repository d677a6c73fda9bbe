//! The policy file format (TOML; commented example: `issuer/policy.example.toml`): the serde
//! types read *and* written, so that every tool that makes a policy (the host's development
//! policy, `twi policy add-image`) writes the issuer's own format and nothing can drift. A
//! file is read in two passes over the same text: once into these types (a type error names
//! its line and column), once for the positions of its tables (a rule broken across fields
//! names its line).

use std::ops::Range;
use std::path::Path;

use serde::de::{self, Deserializer, IgnoredAny, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use toml::Spanned;
use twi_proto::msg::Platform;

use crate::jose::Alg;

use super::corim::{LaunchPlatform, LaunchValue};
use super::model::{
    Claims, DEFAULT_LIFETIME, Fidelity, FreshnessLevel, Mechanism, POLICY_FLAGS_MASK, Policy, PolicyError, Reference,
    ReferenceEntry, SNP_POLICY_DEBUG, SnpReference, SnpTcb, Stickiness, TDX_ATTRIBUTES_DEBUG, TdxReference, Workload,
    is_snp, parse_platform, platform_name,
};

/// A policy file: `version`, `trust_domain`, `wit_alg` and its `[[workload]]` tables.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// Recorded with every credential the policy admits.
    pub version: String,
    /// The SPIFFE trust domain of every workload identifier.
    pub trust_domain: String,
    /// The algorithm WITs are signed with: "ES384" (default) or "ES256"; it chooses the
    /// Credential Authority's WIT key (P-384 or P-256).
    #[serde(default, skip_serializing_if = "is_default_alg")]
    pub wit_alg: Alg,
    #[serde(default)]
    pub workload: Vec<WorkloadFile>,
}

/// One `[[workload]]`. Absent levels take the format's defaults (mechanism `a`, AF_L2,
/// CF_L2, CS_L1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadFile {
    /// The Stable identifier: the path under the trust domain.
    pub id: String,
    #[serde(default = "default_mechanism")]
    pub mechanism: Mechanism,
    #[serde(default = "default_freshness")]
    pub freshness: FreshnessLevel,
    #[serde(default = "default_fidelity")]
    pub fidelity: Fidelity,
    #[serde(default = "default_stickiness")]
    pub stickiness: Stickiness,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_secs: Option<u64>,
    /// Business claims.
    #[serde(default, skip_serializing_if = "Claims::is_empty")]
    pub claims: Claims,
    /// CF_L0 platform claims the operator declares.
    #[serde(default, skip_serializing_if = "Claims::is_empty")]
    pub platform_claims: Claims,
    #[serde(default)]
    pub reference: Vec<ReferenceFile>,
    /// A signed CoRIM of reference values (`twi build`'s `reference-values.corim`; a path
    /// relative to the policy file): its launch measurements are admitted as reference entries
    /// beside `reference` (`corim.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_values_corim: Option<String>,
    /// The P-384 public key (PEM) the CoRIM's signature must verify under; required with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corim_key: Option<String>,
    /// The targets it may acquire for (TACRA); none: every target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target: Vec<TargetFile>,
    /// The SEV-SNP VMPLs it may run at; none: VMPL0 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmpls: Option<Vec<u32>>,
    /// Provenance demands (`[workload.provenance]`; see `provenance`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<super::provenance::ProvenanceFile>,
    /// DNS names its X.509 credential carries as dNSName SANs (`dns.rs`); none by default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_names: Vec<String>,
}

/// One `[[workload.target]]` (see `targets`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetFile {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freshness: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mechanism: Option<Mechanism>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
    /// The TACRA hints the issuer honours for this target; any other hint is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
}

impl WorkloadFile {
    /// A workload with the format's defaults and no reference entries yet.
    pub fn new(id: &str) -> Self {
        Self {
            id: id.into(),
            mechanism: default_mechanism(),
            freshness: default_freshness(),
            fidelity: default_fidelity(),
            stickiness: default_stickiness(),
            lifetime_secs: None,
            claims: Claims::new(),
            platform_claims: Claims::new(),
            reference: Vec::new(),
            reference_values_corim: None,
            corim_key: None,
            target: Vec::new(),
            vmpls: None,
            provenance: None,
            dns_names: Vec::new(),
        }
    }
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

/// One `[[workload.reference]]`: the launch a platform reports for an admitted image. SEV-SNP
/// platforms (`snp`, `sim-snp`) take the first group of fields, TDX ones (`tdx`, `sim-tdx`)
/// the second.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `sim-snp`, `snp`, `tdx` or `sim-tdx`.
    pub platform: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurement: Option<Hex<48>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_mask: Option<U64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_required: Option<U64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_tcb: Option<SnpTcb>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_data: Option<Hex<32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mrtd: Option<Hex<48>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtmr0: Option<Hex<48>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtmr1: Option<Hex<48>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtmr2: Option<Hex<48>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtmr3: Option<Hex<48>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_tee_tcb_svn: Option<Hex<16>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes_mask: Option<U64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes_required: Option<U64>,
    /// The image's SBOM (`sha384:<hex>`, from its reference-values.json).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<super::provenance::SbomDigest>,
    /// SEV-SNP: the host profile (`twi build --host-profile`) the launch digest is for, named
    /// in refusals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_profile: Option<String>,
    /// `false`: the entry admits nothing; it names a launch the policy knows but does not
    /// admit (another host profile's digest of the same image), so that a refusal can say which
    /// launch the evidence is. Default `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admit: Option<bool>,
}

impl ReferenceFile {
    /// An SEV-SNP entry admitting `digest` (`policy`: pin the guest policy's flag bits, 16-25,
    /// to the image's).
    pub fn snp(label: &str, platform: Platform, digest: &[u8; 48], policy: Option<u64>) -> Self {
        Self {
            label: Some(label.into()),
            platform: platform_name(platform).into(),
            measurement: Some(Hex(*digest)),
            policy_mask: policy.map(|_| U64(POLICY_FLAGS_MASK)),
            policy_required: policy.map(|p| U64(p & POLICY_FLAGS_MASK)),
            ..Self::default()
        }
    }

    /// This (SEV-SNP) entry for the host profile `profile` (its launch digest depends on the
    /// host's VMSA defaults), admitted or only listed (`admit = false`).
    pub fn on_host_profile(self, profile: Option<&str>, admitted: bool) -> Self {
        Self { host_profile: profile.map(str::to_string), admit: (!admitted).then_some(false), ..self }
    }

    /// A TDX entry admitting `mrtd`.
    pub fn tdx(label: &str, platform: Platform, mrtd: &[u8; 48]) -> Self {
        Self {
            label: Some(label.into()),
            platform: platform_name(platform).into(),
            mrtd: Some(Hex(*mrtd)),
            ..Self::default()
        }
    }

    /// The launch measurement this entry admits (SEV-SNP MEASUREMENT or TDX MRTD).
    pub fn measured(&self) -> Option<&[u8; 48]> {
        self.measurement.as_ref().or(self.mrtd.as_ref()).map(|h| &h.0)
    }

    /// The entry as TOML key/value lines (the body of a `[[workload.reference]]`).
    pub fn to_toml(&self) -> Result<String, PolicyError> {
        toml::to_string(self).map_err(|e| PolicyError::Encode(e.to_string()))
    }
}

impl PolicyFile {
    /// The file as TOML text.
    pub fn to_toml(&self) -> Result<String, PolicyError> {
        toml::to_string(self).map_err(|e| PolicyError::Encode(e.to_string()))
    }
}

/// Exactly N bytes, written as hex (reads an optional `0x` prefix, writes lowercase without).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hex<const N: usize>(pub [u8; N]);

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

impl<const N: usize> Serialize for Hex<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

/// A u64 read as a TOML integer or a string (`"0x30000"`, `"196608"`), written as hex text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct U64(pub u64);

fn is_default_alg(alg: &Alg) -> bool {
    *alg == Alg::default()
}

pub(super) fn parse_u64_text(s: &str) -> Option<u64> {
    let s = s.trim().replace('_', "");
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

impl<'de> Deserialize<'de> for U64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = U64;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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

impl Serialize for U64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:#x}", self.0))
    }
}

// ---------------------------------------------------------------------------------------------
// Reading: the positions of the tables, for messages that name a line

#[derive(Deserialize)]
struct PolicySpans {
    version: Spanned<IgnoredAny>,
    trust_domain: Spanned<IgnoredAny>,
    #[serde(default)]
    workload: Vec<Spanned<WorkloadSpans>>,
}

#[derive(Deserialize)]
struct WorkloadSpans {
    id: Spanned<IgnoredAny>,
    #[serde(default)]
    claims: Option<Spanned<IgnoredAny>>,
    #[serde(default)]
    platform_claims: Option<Spanned<IgnoredAny>>,
    #[serde(default)]
    reference: Vec<Spanned<IgnoredAny>>,
}

/// The text being read, to turn byte offsets into lines, and the directory the paths it names
/// are relative to (none for a policy not read from a file: as given).
struct Source<'a> {
    text: &'a str,
    file: &'a str,
    dir: Option<&'a std::path::Path>,
}

impl Source<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text.get(..offset).map(|t| t.matches('\n').count() + 1).unwrap_or(1)
    }

    fn invalid(&self, span: Range<usize>, message: String) -> PolicyError {
        PolicyError::Invalid { file: self.file.into(), line: self.line(span.start), message }
    }

    fn parse<'de, T: Deserialize<'de>>(&self, text: &'de str) -> Result<T, PolicyError> {
        toml::from_str(text).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            let line_start = self.text.get(..offset).and_then(|t| t.rfind('\n').map(|i| i + 1)).unwrap_or(0);
            PolicyError::Parse {
                file: self.file.into(),
                line: self.line(offset),
                column: offset - line_start + 1,
                message: e.message().trim().to_string(),
            }
        })
    }
}

impl Policy {
    /// Parses a policy from TOML text (no signature: CF_L0 claims will not be admitted).
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        Self::parse(text, "<memory>", None)
    }

    /// [`Self::from_toml`] for the text of a policy file in `dir`: the paths it names (a
    /// CoRIM, its key, a vendor key) are relative to `dir`.
    pub fn from_toml_in(text: &str, dir: &std::path::Path) -> Result<Self, PolicyError> {
        Self::parse(text, "<memory>", Some(dir))
    }

    /// Parses a policy read from `file`; the paths it names are relative to `dir`.
    pub(super) fn parse(text: &str, file: &str, dir: Option<&std::path::Path>) -> Result<Self, PolicyError> {
        let source = Source { text, file, dir };
        let parsed: PolicyFile = source.parse(text)?;
        let spans: PolicySpans = source.parse(text)?;
        let version = parsed.version.trim().to_string();
        if version.is_empty() {
            return Err(source.invalid(spans.version.span(), "`version` is empty: name this policy's version".into()));
        }
        if !crate::spiffe::valid_trust_domain(&parsed.trust_domain) {
            let message = format!(
                "trust_domain {:?} is not a SPIFFE trust domain (lowercase letters, digits, '.', '-', '_')",
                parsed.trust_domain
            );
            return Err(source.invalid(spans.trust_domain.span(), message));
        }
        let mut workloads: Vec<Workload> = Vec::new();
        for (w, span) in parsed.workload.into_iter().zip(&spans.workload) {
            let workload = workload(w, span, &workloads, &source)?;
            workloads.push(workload);
        }
        distinct_identities(&workloads, file)?;
        Ok(Self {
            version,
            trust_domain: parsed.trust_domain,
            wit_alg: parsed.wit_alg,
            workloads,
            source: file.into(),
            bytes: text.as_bytes().to_vec(),
            signature: None,
            signed: false,
            sbom_store: None,
        })
    }
}

/// One workload, checked: its id, its claims, its fidelity's claims, its reference entries.
fn workload(
    w: WorkloadFile,
    span: &Spanned<WorkloadSpans>,
    earlier: &[Workload],
    source: &Source<'_>,
) -> Result<Workload, PolicyError> {
    let (wspan, spans) = (span.span(), span.get_ref());
    let id = w.id;
    if !crate::spiffe::valid_workload_path(&id) {
        let message = format!(
            "workload id {id:?} is not a SPIFFE path (segments of letters, digits, '.', '-', '_' separated by '/')"
        );
        return Err(source.invalid(spans.id.span(), message));
    }
    if earlier.iter().any(|o| o.id == id) {
        return Err(source.invalid(spans.id.span(), format!("workload `{id}` is defined twice")));
    }
    let claims_span = spans.claims.as_ref().map_or(wspan.clone(), Spanned::span);
    if let Some(name) = w.claims.keys().find(|n| n.is_empty() || crate::wit::RESERVED_CLAIMS.contains(&n.as_str())) {
        let message = format!("workload `{id}`: claim name {name:?} is reserved for the token itself; rename it");
        return Err(source.invalid(claims_span, message));
    }
    let declared = w.platform_claims;
    if w.fidelity == Fidelity::Declared && declared.is_empty() {
        return Err(
            source.invalid(wspan, format!("workload `{id}` has fidelity CF_L0 but declares no platform_claims"))
        );
    }
    if w.fidelity != Fidelity::Declared && !declared.is_empty() {
        let declared_span = spans.platform_claims.as_ref().map_or(wspan.clone(), Spanned::span);
        let message = format!(
            "workload `{id}` declares platform_claims, which only count at fidelity CF_L0 (it has {}): set fidelity = \"CF_L0\" or remove them",
            w.fidelity
        );
        return Err(source.invalid(declared_span, message));
    }
    let references = references(&id, w.reference, spans, (w.reference_values_corim, w.corim_key), &wspan, source)?;
    let targets = target_rules(&id, w.target, &wspan, source)?;
    let lifetime =
        lifetime(w.lifetime_secs).map_err(|m| source.invalid(wspan.clone(), format!("workload `{id}`: {m}")))?;
    let vmpls = super::vmpl::admitted_vmpls(w.vmpls)
        .map_err(|m| source.invalid(wspan.clone(), format!("workload `{id}`: {m}")))?;
    let dns_names = super::dns::dns_names(w.dns_names)
        .map_err(|m| source.invalid(wspan.clone(), format!("workload `{id}`: {m}")))?;
    let provenance = w
        .provenance
        .map(|file| super::provenance::demands(file, source.dir))
        .transpose()
        .map_err(|m| source.invalid(wspan.clone(), format!("workload `{id}`: {m}")))?;
    Ok(Workload {
        id,
        claims: w.claims,
        declared_platform_claims: declared,
        freshness: w.freshness,
        fidelity: w.fidelity,
        stickiness: w.stickiness,
        mechanism: w.mechanism,
        lifetime,
        references,
        targets,
        vmpls,
        provenance,
        dns_names,
        line: source.line(wspan.start),
    })
}

/// A workload's reference entries: its `[[workload.reference]]` tables, then those of its
/// `reference_values_corim` (at the workload's line). At least one.
fn references(
    id: &str,
    files: Vec<ReferenceFile>,
    spans: &WorkloadSpans,
    (corim, key): (Option<String>, Option<String>),
    wspan: &Range<usize>,
    source: &Source<'_>,
) -> Result<Vec<ReferenceEntry>, PolicyError> {
    let from_corim = match (corim, key) {
        (None, None) => Vec::new(),
        (Some(corim), Some(key)) => {
            let path = |p: &str| source.dir.map_or_else(|| std::path::PathBuf::from(p), |d| d.join(p));
            corim_references(&path(&corim), &path(&key))?
        }
        (Some(_), None) => {
            let message = format!(
                "workload `{id}`: reference_values_corim needs corim_key, the public key its signature must verify under"
            );
            return Err(source.invalid(wspan.clone(), message));
        }
        (None, Some(_)) => {
            let message = format!("workload `{id}`: corim_key is set but reference_values_corim is not");
            return Err(source.invalid(wspan.clone(), message));
        }
    };
    if files.is_empty() && from_corim.is_empty() {
        let message = format!(
            "workload `{id}` has no [[workload.reference]] entries and no reference_values_corim, so nothing can be admitted as it"
        );
        return Err(source.invalid(wspan.clone(), message));
    }
    let wline = source.line(wspan.start);
    let lines = spans.reference.iter().map(|s| source.line(s.span().start)).chain(std::iter::repeat(wline));
    let mut references = Vec::new();
    for (index, (r, line)) in files.into_iter().chain(from_corim).zip(lines).enumerate() {
        let entry = reference_entry(index, r, line).map_err(|message| PolicyError::Invalid {
            file: source.file.into(),
            line,
            message: format!("workload `{id}`: {message}"),
        })?;
        references.push(entry);
    }
    Ok(references)
}

/// The reference entries of a signed CoRIM (`twi build`'s `reference-values.corim`), once its
/// signature verifies under the P-384 public key in `key_path` (PEM): as
/// `values::image_references` makes from the JSON, each SEV-SNP launch digest admitted on `sim-snp`
/// and on `snp` (there with the guest policy bits the CoRIM pins), each TDX MRTD on `sim-tdx`
/// and `tdx`, each naming the SBOM digest the CoRIM states, if any. Errors name the file.
fn corim_references(path: &Path, key_path: &Path) -> Result<Vec<ReferenceFile>, PolicyError> {
    let key = super::signature::PolicyKey::load(key_path)
        .map_err(|e| PolicyError::ReferenceValues(format!("corim_key {}: {e}", key_path.display())))?;
    let bytes = std::fs::read(path)
        .map_err(|e| PolicyError::Read { path: path.display().to_string(), error: e.to_string() })?;
    let values = super::corim::read_signed(&bytes, &key.0)
        .map_err(|e| PolicyError::ReferenceValues(format!("{}: {e}", path.display())))?;
    let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let sbom = values.sbom.map(super::provenance::SbomDigest);
    let entries = values.launch.iter().enumerate().flat_map(|(i, v)| corim_entries(&format!("{name} #{i}"), v));
    Ok(entries.map(|entry| ReferenceFile { sbom, ..entry }).collect())
}

fn corim_entries(label: &str, value: &LaunchValue) -> [ReferenceFile; 2] {
    match value.platform {
        LaunchPlatform::SevSnp => {
            let simulated =
                ReferenceFile::snp(&format!("{label} (simulated SEV-SNP)"), Platform::SimSnp, &value.digest, None);
            let real_label = match &value.host_profile {
                Some(p) => format!("{label} (SEV-SNP, host {p})"),
                None => format!("{label} (SEV-SNP)"),
            };
            let real = ReferenceFile {
                policy_mask: value.policy.map(|p| U64(p.mask)),
                policy_required: value.policy.map(|p| U64(p.required)),
                ..ReferenceFile::snp(&real_label, Platform::Snp, &value.digest, None)
            }
            .on_host_profile(value.host_profile.as_deref(), true);
            [simulated, real]
        }
        LaunchPlatform::Tdx => [
            ReferenceFile::tdx(&format!("{label} (simulated TDX)"), Platform::SimTdx, &value.digest),
            ReferenceFile::tdx(&format!("{label} (TDX)"), Platform::Tdx, &value.digest),
        ],
    }
}

/// A workload's `[[workload.target]]` entries, checked, each named once.
fn target_rules(
    id: &str,
    files: Vec<TargetFile>,
    wspan: &std::ops::Range<usize>,
    source: &Source<'_>,
) -> Result<Vec<super::model::TargetRule>, PolicyError> {
    let mut targets = Vec::with_capacity(files.len());
    for t in files {
        let invalid = |message| source.invalid(wspan.clone(), format!("workload `{id}`: {message}"));
        let hints = super::targets::hints(&t.name, t.hints).map_err(invalid)?;
        let mut rule = super::targets::rule(t.name, t.freshness.as_deref(), t.mechanism, &t.types, t.epoch.as_deref())
            .map_err(invalid)?;
        rule.hints = hints;
        if targets.iter().any(|r: &super::model::TargetRule| r.name == rule.name) {
            return Err(
                source.invalid(wspan.clone(), format!("workload `{id}`: target `{}` is listed twice", rule.name))
            );
        }
        targets.push(rule);
    }
    Ok(targets)
}

/// The shortest and longest credential lifetimes a policy may set: a credential must outlive
/// its delivery, and an attested key is only as good as its last appraisal.
pub const LIFETIME_RANGE: std::ops::RangeInclusive<u64> = 60..=30 * 24 * 3600;

/// `lifetime_secs`, checked (else the default).
fn lifetime(secs: Option<u64>) -> Result<std::time::Duration, String> {
    match secs {
        None => Ok(DEFAULT_LIFETIME),
        Some(s) if LIFETIME_RANGE.contains(&s) => Ok(std::time::Duration::from_secs(s)),
        Some(s) => Err(format!(
            "lifetime_secs = {s} is out of range: write a value from {} (one minute) to {} (30 days)",
            LIFETIME_RANGE.start(),
            LIFETIME_RANGE.end()
        )),
    }
}

/// The same launch admitted as two identities would make the identity ambiguous.
fn distinct_identities(workloads: &[Workload], file: &str) -> Result<(), PolicyError> {
    for (i, w) in workloads.iter().enumerate() {
        for other in &workloads[i + 1..] {
            for e in w.references.iter().filter(|e| e.admitted) {
                let same = |o: &&ReferenceEntry| o.admitted && o.platform == e.platform && o.values == e.values;
                if let Some(o) = other.references.iter().find(same) {
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
    Ok(())
}

fn reference_entry(index: usize, r: ReferenceFile, line: usize) -> Result<ReferenceEntry, String> {
    let name = r.platform.as_str();
    let platform = parse_platform(name)
        .ok_or_else(|| format!("reference platform {name:?} is not one of sim-snp, snp, tdx, sim-tdx"))?;
    let label = r.label.clone().unwrap_or_else(|| format!("#{index}"));
    let values = if is_snp(platform) { snp_reference(&r, &label)? } else { tdx_reference(&r, &label)? };
    if !is_snp(platform) && r.host_profile.is_some() {
        return Err(format!(
            "reference {label:?} is for {name} but has host_profile, which only SEV-SNP launches have"
        ));
    }
    if r.admit == Some(false) && r.host_profile.is_none() {
        return Err(format!(
            "reference {label:?} has admit = false but no host_profile: an entry that admits nothing only serves to name the host profile of a launch"
        ));
    }
    Ok(ReferenceEntry {
        index,
        label,
        platform,
        values,
        sbom: r.sbom,
        line,
        host_profile: r.host_profile,
        admitted: r.admit != Some(false),
    })
}

fn snp_reference(r: &ReferenceFile, label: &str) -> Result<Reference, String> {
    let name = &r.platform;
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
    let policy_mask = r.policy_mask.map_or(SNP_POLICY_DEBUG, |m| m.0);
    let policy_required = r.policy_required.map_or(0, |m| m.0);
    if policy_required & !policy_mask != 0 {
        return Err(format!(
            "reference {label:?}: policy_required {policy_required:#x} has bits outside policy_mask {policy_mask:#x}, so nothing could match"
        ));
    }
    Ok(Reference::Snp(SnpReference {
        measurement,
        policy_mask,
        policy_required,
        min_tcb: r.min_tcb.unwrap_or_default(),
        host_data: r.host_data.map(|h| h.0),
    }))
}

fn tdx_reference(r: &ReferenceFile, label: &str) -> Result<Reference, String> {
    let name = &r.platform;
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
    let attributes_mask = r.attributes_mask.map_or(TDX_ATTRIBUTES_DEBUG, |m| m.0);
    let attributes_required = r.attributes_required.map_or(0, |m| m.0);
    if attributes_required & !attributes_mask != 0 {
        return Err(format!("reference {label:?}: attributes_required has bits outside attributes_mask"));
    }
    Ok(Reference::Tdx(TdxReference {
        mrtd,
        rtmrs: [r.rtmr0.map(|h| h.0), r.rtmr1.map(|h| h.0), r.rtmr2.map(|h| h.0), r.rtmr3.map(|h| h.0)],
        min_tee_tcb_svn: r.min_tee_tcb_svn.map_or([0; 16], |h| h.0),
        attributes_mask,
        attributes_required,
    }))
}
