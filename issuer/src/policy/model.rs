//! The policy model: levels and their names, claims, reference values, workloads, and the
//! parsed [`Policy`] itself. Plain data, checked when it is made from a file (`file.rs`).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use twi_proto::msg::{CredentialKind, Freshness, Platform};

pub use crate::freshness::FreshnessLevel;

/// Platform-claim fidelity (TWI reference architecture §5.4.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Fidelity {
    /// Declared by the operator (in the policy, covered by the policy key's signature).
    #[serde(rename = "CF_L0")]
    Declared,
    /// From an external attested claim provider (`PlatformClaimSource`).
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

/// Every platform, in the order the policy's messages list them.
const PLATFORMS: [Platform; 4] = [Platform::SimSnp, Platform::Snp, Platform::Tdx, Platform::SimTdx];

/// The policy's name for a platform.
pub fn platform_name(p: Platform) -> &'static str {
    match p {
        Platform::SimSnp => "sim-snp",
        Platform::Snp => "snp",
        Platform::Tdx => "tdx",
        Platform::SimTdx => "sim-tdx",
    }
}

/// The platform the policy calls `name` (see [`platform_name`]).
pub fn parse_platform(name: &str) -> Option<Platform> {
    PLATFORMS.into_iter().find(|p| platform_name(*p) == name)
}

pub(crate) fn is_snp(p: Platform) -> bool {
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

impl Reference {
    /// The launch measurement this entry admits: SEV-SNP MEASUREMENT, or TDX MRTD.
    pub fn measurement(&self) -> &[u8; 48] {
        match self {
            Reference::Snp(s) => &s.measurement,
            Reference::Tdx(t) => &t.mrtd,
        }
    }
}

/// One admitted launch of a workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferenceEntry {
    /// Position among the workload's entries (0-based).
    pub index: usize,
    pub label: String,
    pub platform: Platform,
    pub values: Reference,
    /// The SBOM of the image (its digest is in the measured launch manifest), if known.
    pub sbom: Option<super::provenance::SbomDigest>,
    /// Line in the policy file.
    pub line: usize,
    /// SEV-SNP: the host profile the launch digest is for (`host_profile`), if stated.
    pub host_profile: Option<String>,
    /// `false` (`admit = false`): the entry admits nothing, it only names a known launch.
    pub admitted: bool,
}

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
    /// The targets it may acquire for (TACRA), with how; empty: every target.
    pub targets: Vec<TargetRule>,
    /// The SEV-SNP VMPLs its reports may be made at (`vmpl.rs`; default VMPL0 only).
    pub vmpls: Vec<u32>,
    /// Its provenance demands (`[workload.provenance]`), if any.
    pub provenance: Option<super::provenance::Demands>,
    /// The DNS names its X.509 credential carries (`dns_names`; `dns.rs`).
    pub dns_names: Vec<String>,
    pub line: usize,
}

/// A parsed appraisal policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The policy's version, recorded with every credential it admits.
    pub version: String,
    pub trust_domain: String,
    /// The algorithm the Credential Authority signs WITs with (`wit_alg`, default ES384).
    pub wit_alg: crate::jose::Alg,
    pub workloads: Vec<Workload>,
    /// Where it was read from (`<memory>` for [`Policy::from_toml`]).
    pub source: String,
    /// The exact bytes a policy-key signature covers.
    pub(super) bytes: Vec<u8>,
    pub(super) signature: Option<Vec<u8>>,
    pub(super) signed: bool,
    /// Where the SBOM documents of its reference entries are (`sboms/` beside the file).
    pub(super) sbom_store: Option<std::path::PathBuf>,
}

impl Policy {
    /// The workload named `id`.
    pub fn workload(&self, id: &str) -> Option<&Workload> {
        self.workloads.iter().find(|w| w.id == id)
    }

    /// The one workload with a reference entry for `measurement` on `platform`, if exactly one
    /// (the loader asks, before the launch, which freshness and mechanism it will need).
    pub fn workload_for(&self, platform: Platform, measurement: &[u8]) -> Option<&Workload> {
        let mut found = self.workloads.iter().filter(|w| {
            w.references
                .iter()
                .any(|r| r.admitted && r.platform == platform && r.values.measurement().as_slice() == measurement)
        });
        let first = found.next()?;
        found.next().is_none().then_some(first)
    }

    /// The policy with its SBOM documents in `dir` (a file's policy: `sboms/` beside it).
    pub fn with_sbom_store(mut self, dir: &std::path::Path) -> Self {
        self.sbom_store = Some(dir.to_path_buf());
        self
    }

    /// Where the SBOM documents of its reference entries are read from, if anywhere.
    pub fn sbom_store(&self) -> Option<&std::path::Path> {
        self.sbom_store.as_deref()
    }

    /// Whether a valid policy-key signature covers the policy.
    pub fn is_signed(&self) -> bool {
        self.signed
    }

    /// The first workload that declares CF_L0 platform claims.
    pub(super) fn declares_platform_claims(&self) -> Option<&str> {
        self.workloads.iter().find(|w| w.fidelity == Fidelity::Declared).map(|w| w.id.as_str())
    }
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
    #[error("cannot write the policy as TOML: {0}")]
    Encode(String),
}

/// SEV-SNP guest policy flag bits 16..=25 (SMT, the must-be-one bit 17, MIGRATE_MA, DEBUG,
/// SINGLE_SOCKET, CXL_ALLOW, MEM_AES_256_XTS, RAPL_DIS, CIPHERTEXT_HIDING, PAGE_SWAP_DISABLE).
pub const POLICY_FLAGS_MASK: u64 = 0x03FF_0000;
/// SEV-SNP guest policy DEBUG (bit 19): refused unless an entry says otherwise.
pub const SNP_POLICY_DEBUG: u64 = 1 << 19;
/// TDX TD ATTRIBUTES DEBUG (bit 0): refused unless an entry says otherwise.
pub const TDX_ATTRIBUTES_DEBUG: u64 = 1;
/// Default credential lifetime.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// One `[[workload.target]]`, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetRule {
    pub name: String,
    pub freshness: Option<Freshness>,
    pub mechanism: Option<Mechanism>,
    /// Empty: every type.
    pub types: Vec<CredentialKind>,
    /// `absent-epoch`: the marker the launch must bind.
    pub epoch_marker: Option<Vec<u8>>,
    /// The hints the issuer honours at Initiate (TACRA); empty: it honours none.
    pub hints: Vec<String>,
}
