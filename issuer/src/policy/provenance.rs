//! Workload Provenance demands (RATS-for-TWI §5.3.1: the workload's composition as an SBOM,
//! which issuance policy can demand).
//!
//! How the issuer knows the SBOM of a launch: `twi build` measures the SBOM's SHA-384 into the
//! launch manifest (part of the measured image), and names it in `reference-values.json`
//! beside the launch measurements. `twi policy add-image` copies that digest onto each
//! `[[workload.reference]]` entry (`sbom = "sha384:…"`) and stores the CycloneDX document
//! itself, content-addressed, in `sboms/sha384-<hex>.cdx.json` beside the policy file. The
//! hardware measurement admits a reference entry; the entry names the SBOM; the store holds
//! it, and every read checks its digest again (a document changed in the store is refused,
//! never trusted).
//!
//! In the policy file, under a workload:
//!
//! ```toml
//! [workload.provenance]
//! sbom = "required"                  # the admitted image must have a (stored, intact) SBOM
//! vendor = "Example Corp"            # the SBOM's metadata.supplier (else .manufacture) name
//! deny = ["openssl", "time@<0.2.23"] # a crate, or a crate with a semver requirement after @
//! min_versions = { rustls = "0.23.0" }  # a crate in the image must be at least this version
//! ```
//!
//! Any demand needs the SBOM, so each implies `sbom = "required"`. `vendor` is read from the
//! SBOM's `metadata.supplier.name` (CycloneDX: "the organization that supplied the component
//! that the BOM describes"; `twi build --vendor NAME` writes it), else its
//! `metadata.manufacture.name`: it is measured with the SBOM, so it says who *built* the
//! image as the builder declared it — it is not a vendor's signature. `deny` and
//! `min_versions` apply to the SBOM's library components (the crates compiled into the image);
//! a `min_versions` crate the image does not contain passes. What was checked is recorded
//! with the credential ([`ProvenanceChecked`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha384};

/// The store of SBOM documents, beside the policy file.
pub const SBOM_DIR: &str = "sboms";
/// The one value `sbom` takes.
const REQUIRED: &str = "required";

/// `[workload.provenance]` as written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvenanceFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub min_versions: BTreeMap<String, String>,
}

/// A workload's provenance demands, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Demands {
    pub vendor: Option<String>,
    pub deny: Vec<Denied>,
    pub min_versions: BTreeMap<String, semver::Version>,
}

/// One `deny` entry: a crate, in every version or in those a requirement matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    pub name: String,
    pub versions: Option<semver::VersionReq>,
    /// As written, for messages and the record.
    pub text: String,
}

/// The SHA-384 of an SBOM document, written `sha384:<hex>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SbomDigest(pub [u8; 48]);

impl SbomDigest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha384::digest(bytes).into())
    }

    /// Reads `sha384:<96 hex digits>`.
    pub fn parse(text: &str) -> Option<Self> {
        let digits = text.trim().strip_prefix("sha384:")?;
        let bytes = hex::decode(digits).ok()?;
        <[u8; 48]>::try_from(bytes.as_slice()).ok().map(Self)
    }

    /// Reads the URL-path and file-name form `sha384-<96 hex digits>` (or `sha384:<hex>`).
    pub fn parse_path_form(text: &str) -> Option<Self> {
        match text.strip_prefix("sha384-") {
            Some(digits) => Self::parse(&format!("sha384:{digits}")),
            None => Self::parse(text),
        }
    }

    /// The URL-path form `sha384-<hex>` (the file name without its extension).
    pub fn path_form(&self) -> String {
        format!("sha384-{}", hex::encode(self.0))
    }

    /// The document's file name in the store: `sha384-<hex>.cdx.json`.
    pub fn file_name(&self) -> String {
        format!("{}.cdx.json", self.path_form())
    }
}

impl fmt::Display for SbomDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha384:{}", hex::encode(self.0))
    }
}

impl Serialize for SbomDigest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for SbomDigest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("{text:?} is not an SBOM digest: write sha384: and 96 hex digits"))
        })
    }
}

/// Why a stored SBOM could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SbomError {
    #[error(
        "the SBOM store has no {path}: run `twi policy add-image` with the image directory (it stores sbom.cdx.json)"
    )]
    Missing { path: String },
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: String },
    #[error(
        "{path} is not the SBOM it is named for (its digest is {found}): the store was changed; add the image again with `twi policy add-image`"
    )]
    Tampered { path: String, found: SbomDigest },
    #[error("{what} is not a CycloneDX JSON SBOM: {reason}")]
    NotCycloneDx { what: String, reason: String },
    #[error("cannot write {path}: {error}")]
    Write { path: String, error: String },
}

/// One component an SBOM lists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Component {
    /// CycloneDX `type`: `library` for a crate, `data` for an attached statement.
    pub kind: String,
    pub name: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
}

/// An SBOM document, as far as the demands read it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Sbom {
    pub digest: SbomDigest,
    /// The BOM's subject (`metadata.component`): the image.
    pub subject: Option<String>,
    /// `metadata.supplier.name`, else `metadata.manufacture.name`.
    pub vendor: Option<String>,
    pub components: Vec<Component>,
}

impl Sbom {
    /// Reads a CycloneDX JSON document (`what` names it in messages).
    pub fn parse(bytes: &[u8], what: &str) -> Result<Self, SbomError> {
        let bad = |reason: &str| SbomError::NotCycloneDx { what: what.into(), reason: reason.into() };
        let json: Value = serde_json::from_slice(bytes).map_err(|e| bad(&format!("not JSON ({e})")))?;
        if json.get("bomFormat").and_then(Value::as_str) != Some("CycloneDX") {
            return Err(bad("its bomFormat is not \"CycloneDX\""));
        }
        let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
        let metadata = json.get("metadata").cloned().unwrap_or(Value::Null);
        let name_of = |key: &str| metadata.get(key).and_then(|o| text(o, "name"));
        let vendor = name_of("supplier").or_else(|| name_of("manufacture"));
        let subject = metadata.get("component").and_then(|c| text(c, "name"));
        let listed = match json.get("components") {
            None => Vec::new(),
            Some(Value::Array(list)) => list.clone(),
            Some(_) => return Err(bad("`components` is not an array")),
        };
        let mut components = Vec::with_capacity(listed.len());
        for c in &listed {
            let (Some(kind), Some(name)) = (text(c, "type"), text(c, "name")) else {
                return Err(bad("a component has no `type` or `name`"));
            };
            let version = text(c, "version").unwrap_or_default();
            components.push(Component { kind, name, version, purl: text(c, "purl") });
        }
        Ok(Self { digest: SbomDigest::of(bytes), subject, vendor, components })
    }

    /// The document `digest` names, from the store `dir`, its digest checked.
    pub fn load(dir: &Path, digest: &SbomDigest) -> Result<Self, SbomError> {
        let bytes = stored_sbom(dir, digest)?;
        Self::parse(&bytes, &dir.join(digest.file_name()).display().to_string())
    }

    /// The crates (library components).
    pub fn libraries(&self) -> impl Iterator<Item = &Component> {
        self.components.iter().filter(|c| c.kind == "library")
    }
}

/// The bytes of the document `digest` names in the store `dir`, its digest checked (as stored:
/// what the log role serves at `GET /v1/log/sbom/sha384-HEX`).
pub fn stored_sbom(dir: &Path, digest: &SbomDigest) -> Result<Vec<u8>, SbomError> {
    let path = dir.join(digest.file_name());
    let shown = path.display().to_string();
    let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => SbomError::Missing { path: shown.clone() },
        _ => SbomError::Read { path: shown.clone(), error: e.to_string() },
    })?;
    let found = SbomDigest::of(&bytes);
    if found != *digest {
        return Err(SbomError::Tampered { path: shown, found });
    }
    Ok(bytes)
}

/// Stores `bytes` (a CycloneDX document) in the store `dir` under its digest, and returns it;
/// `expected`: refuse a document whose digest differs (the one the reference values name).
pub fn store_sbom(dir: &Path, bytes: &[u8], expected: Option<&SbomDigest>) -> Result<SbomDigest, SbomError> {
    let digest = SbomDigest::of(bytes);
    let path = dir.join(digest.file_name());
    let shown = path.display().to_string();
    if let Some(expected) = expected.filter(|e| **e != digest) {
        return Err(SbomError::Tampered { path: format!("the SBOM named {expected}"), found: digest });
    }
    Sbom::parse(bytes, &shown)?;
    let write = |p: &Path, b: &[u8]| {
        std::fs::write(p, b).map_err(|e| SbomError::Write { path: p.display().to_string(), error: e.to_string() })
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| SbomError::Write { path: dir.display().to_string(), error: e.to_string() })?;
    let temporary = path.with_extension("twi-new");
    write(&temporary, bytes)?;
    std::fs::rename(&temporary, &path).map_err(|e| SbomError::Write { path: shown, error: e.to_string() })?;
    Ok(digest)
}

/// The SBOM store beside a policy file at `policy`.
pub fn sbom_store_of(policy: &Path) -> PathBuf {
    policy.parent().unwrap_or(Path::new(".")).join(SBOM_DIR)
}

/// `[workload.provenance]`, checked; an error names the field.
pub(super) fn demands(file: ProvenanceFile) -> Result<Demands, String> {
    if let Some(sbom) = file.sbom.as_deref().filter(|s| *s != REQUIRED) {
        return Err(format!("provenance.sbom = {sbom:?}: the only value is \"required\" (or leave it out)"));
    }
    let vendor = file.vendor.map(|v| v.trim().to_string());
    if vendor.as_deref() == Some("") {
        return Err("provenance.vendor is empty: name the supplier the SBOM must name".into());
    }
    let mut deny = Vec::new();
    for text in file.deny {
        let (name, versions) = match text.split_once('@') {
            None => (text.trim().to_string(), None),
            Some((name, req)) => {
                let req = semver::VersionReq::parse(req.trim()).map_err(|e| {
                    format!("provenance.deny {text:?}: after '@' write a semver requirement such as <1.2.3 ({e})")
                })?;
                (name.trim().to_string(), Some(req))
            }
        };
        if name.is_empty() {
            return Err(format!("provenance.deny {text:?}: name a crate (\"name\" or \"name@<1.2.3\")"));
        }
        deny.push(Denied { name, versions, text });
    }
    let mut min_versions = BTreeMap::new();
    for (name, version) in file.min_versions {
        let parsed = semver::Version::parse(version.trim()).map_err(|e| {
            format!("provenance.min_versions.{name} = {version:?} is not a semver version such as \"1.2.3\" ({e})")
        })?;
        min_versions.insert(name, parsed);
    }
    Ok(Demands { vendor, deny, min_versions })
}

/// What the appraisal checked of a launch's provenance: recorded with the credential.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProvenanceChecked {
    /// The SBOM the admitted reference entry names (the credential carries it).
    pub sbom: SbomDigest,
    /// Each demand met, in words (empty: the policy demands nothing).
    pub checks: Vec<String>,
}

/// Why a launch's provenance does not meet its workload's demands. Each names the demand.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProvenanceRefusal {
    #[error(
        "workload `{workload}` demands provenance (sbom = \"required\"), and its reference entry \"{reference}\" names no SBOM: add the image with `twi policy add-image` from a `twi build` that wrote sbom.cdx.json"
    )]
    NoSbom { workload: String, reference: String },
    #[error(
        "workload `{workload}` demands provenance, and this policy has no SBOM store (it was not read from a file): load the policy from its file, beside its sboms/ directory"
    )]
    NoStore { workload: String },
    #[error("workload `{workload}` demands provenance (sbom = \"required\"): {error}")]
    Store { workload: String, error: SbomError },
    #[error("workload `{workload}`: provenance demand vendor = {wanted:?} fails: the SBOM names {}", found.as_deref().map_or("no supplier or manufacturer".to_string(), |f| format!("{f:?}")))]
    Vendor { workload: String, wanted: String, found: Option<String> },
    #[error(
        "workload `{workload}`: provenance demand deny = {demand:?} fails: the image contains {name} {version}; rebuild without it, or change the policy's deny list"
    )]
    Denied { workload: String, demand: String, name: String, version: String },
    #[error(
        "workload `{workload}`: provenance demand min_versions.{name} = \"{minimum}\" fails: the image contains {name} {found}; update the crate (cargo update -p {name}) and rebuild"
    )]
    BelowMinimum { workload: String, name: String, minimum: String, found: String },
}

impl Demands {
    /// Checks `sbom` against the demands of `workload`; returns what was checked.
    pub fn check(&self, workload: &str, sbom: &Sbom) -> Result<Vec<String>, ProvenanceRefusal> {
        let mut checks = vec![format!("sbom: {} present and intact", sbom.digest)];
        if let Some(wanted) = &self.vendor {
            if sbom.vendor.as_deref() != Some(wanted.as_str()) {
                let (workload, wanted, found) = (workload.into(), wanted.clone(), sbom.vendor.clone());
                return Err(ProvenanceRefusal::Vendor { workload, wanted, found });
            }
            checks.push(format!("vendor: {wanted:?}"));
        }
        for denied in &self.deny {
            for c in sbom.libraries().filter(|c| c.name == denied.name) {
                // A version the requirement cannot read is denied: the SBOM cannot show it is outside.
                let hit = denied
                    .versions
                    .as_ref()
                    .is_none_or(|req| semver::Version::parse(&c.version).map_or(true, |v| req.matches(&v)));
                if hit {
                    return Err(ProvenanceRefusal::Denied {
                        workload: workload.into(),
                        demand: denied.text.clone(),
                        name: c.name.clone(),
                        version: c.version.clone(),
                    });
                }
            }
            checks.push(format!("deny: {} absent", denied.text));
        }
        for (name, minimum) in &self.min_versions {
            for c in sbom.libraries().filter(|c| c.name == *name) {
                if semver::Version::parse(&c.version).map_or(true, |v| v < *minimum) {
                    return Err(ProvenanceRefusal::BelowMinimum {
                        workload: workload.into(),
                        name: name.clone(),
                        minimum: minimum.to_string(),
                        found: c.version.clone(),
                    });
                }
            }
            checks.push(format!("min_versions: {name} >= {minimum}"));
        }
        Ok(checks)
    }
}
