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
//! vendor_key = "vendor.pub.pem"      # optional: vendor must be shown by a statement it signed
//! deny = ["openssl", "time@<0.2.23"] # a crate, or a crate with a semver requirement after @
//! min_versions = { rustls = "0.23.0" }  # a crate in the image must be at least this version
//! ```
//!
//! Any demand needs the SBOM, so each implies `sbom = "required"`. `vendor` is read from the
//! SBOM's `metadata.supplier.name` (CycloneDX: "the organization that supplied the component
//! that the BOM describes"; `twi build --vendor NAME` writes it), else its
//! `metadata.manufacture.name`: it is measured with the SBOM, so it says who *built* the
//! image as the builder declared it — it is not a vendor's signature. With `vendor_key` (a
//! P-384 public key: a PEM file, relative to the policy file, or the PEM itself) the declared
//! name no longer counts: the demand is met only by a signed vendor statement ([`super::vendor`])
//! that the SBOM lists as attached (so the measurement covers it), whose bytes the policy's
//! store holds under that digest (`twi policy add-image` stores them), whose signature verifies
//! under that key, whose vendor is `vendor`, and whose subject is the SBOM's workload component
//! (name, version, SHA-384). `deny` and
//! `min_versions` apply to the SBOM's library components (the crates compiled into the image);
//! a `min_versions` crate the image does not contain passes. What was checked is recorded
//! with the credential ([`ProvenanceChecked`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use p384::ecdsa::VerifyingKey;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha384};

use super::vendor;

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
    /// The vendor's P-384 public key: a PEM file (relative to the policy file) or inline PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_key: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub min_versions: BTreeMap<String, String>,
}

/// A workload's provenance demands, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Demands {
    pub vendor: Option<String>,
    /// With `vendor`: the key its signed statement must verify under.
    pub vendor_key: Option<VendorKey>,
    pub deny: Vec<Denied>,
    pub min_versions: BTreeMap<String, semver::Version>,
}

/// A vendor's public key, and its `kid` (the SHA-256 of its SubjectPublicKeyInfo).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VendorKey {
    pub key: VerifyingKey,
    pub kid: [u8; 32],
}

impl VendorKey {
    /// `vendor_key` as written: inline PEM, or a PEM file (relative to `dir`, the policy's).
    pub fn read(text: &str, dir: Option<&Path>) -> Result<Self, String> {
        use p384::pkcs8::DecodePublicKey;
        let (pem, shown) = if text.trim_start().starts_with("-----BEGIN") {
            (text.to_string(), "the inline PEM".to_string())
        } else {
            let path = dir.map_or_else(|| PathBuf::from(text), |d| d.join(text));
            let pem = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            (pem, path.display().to_string())
        };
        let key = VerifyingKey::from_public_key_pem(&pem)
            .map_err(|e| format!("{shown} is not a P-384 public key in PEM (SubjectPublicKeyInfo): {e}"))?;
        Ok(Self { kid: vendor::key_id(&key), key })
    }
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
        Self::from_hex(text.trim().strip_prefix("sha384:")?)
    }

    /// Reads the 96 hex digits alone, as an SBOM lists a component's SHA-384.
    pub fn from_hex(digits: &str) -> Option<Self> {
        let bytes = hex::decode(digits).ok()?;
        <[u8; 48]>::try_from(bytes.as_slice()).ok().map(Self)
    }

    /// Reads the URL-path and file-name form `sha384-<96 hex digits>` (or `sha384:<hex>`).
    pub fn parse_path_form(text: &str) -> Option<Self> {
        match text.strip_prefix("sha384-") {
            Some(digits) => Self::from_hex(digits.trim_end()),
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
    #[error(
        "{path} is not the attached statement the SBOM lists under that SHA-384 (its digest is {found}): it is not the statement the launch measured; add the image again with `twi policy add-image`"
    )]
    AttachmentTampered { path: String, found: SbomDigest },
    #[error("{path} is larger than the {limit} bytes accepted")]
    TooLarge { path: String, limit: usize },
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
    /// Its SHA-384 (lowercase hex), when the SBOM lists one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha384: Option<String>,
}

/// An SBOM document, as far as the demands read it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Sbom {
    pub digest: SbomDigest,
    /// The BOM's subject (`metadata.component`): the image.
    pub subject: Option<String>,
    /// The subject as a component (name, version, SHA-384): what a vendor statement names.
    #[serde(skip)]
    pub workload: Option<Component>,
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
        let workload = metadata.get("component").map(component).transpose().map_err(|reason| bad(&reason))?;
        let listed = match json.get("components") {
            None => Vec::new(),
            Some(Value::Array(list)) => list.clone(),
            Some(_) => return Err(bad("`components` is not an array")),
        };
        let components = listed.iter().map(component).collect::<Result<Vec<_>, _>>().map_err(|r| bad(&r))?;
        Ok(Self { digest: SbomDigest::of(bytes), subject, workload, vendor, components })
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

/// One CycloneDX component: its type, name, version, purl and SHA-384.
fn component(c: &Value) -> Result<Component, String> {
    let text = |key: &str| c.get(key).and_then(Value::as_str).map(str::to_string);
    let (Some(kind), Some(name)) = (text("type"), text("name")) else {
        return Err("a component has no `type` or `name`".into());
    };
    let hashes = c.get("hashes").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let sha384 = hashes
        .iter()
        .find(|h| h.get("alg").and_then(Value::as_str) == Some("SHA-384"))
        .and_then(|h| h.get("content").and_then(Value::as_str))
        .map(str::to_ascii_lowercase);
    Ok(Component { kind, name, version: text("version").unwrap_or_default(), purl: text("purl"), sha384 })
}

/// The bytes of the document `digest` names in the store `dir`, its digest checked (as stored:
/// what the log role serves at `GET /v1/log/sbom/sha384-HEX`).
pub fn stored_sbom(dir: &Path, digest: &SbomDigest) -> Result<Vec<u8>, SbomError> {
    stored(&dir.join(digest.file_name()), digest, usize::MAX)
}

/// The largest attached statement a store keeps and the log serves (`twi build --attach`).
pub const ATTACHMENT_LIMIT: usize = 1 << 20;

/// The file name of an attached statement of SHA-384 `digest` in the store.
fn attachment_file(digest: &SbomDigest) -> String {
    format!("{}.attached", digest.path_form())
}

/// The bytes of the attached statement (`twi build --attach`) of SHA-384 `digest` in the store
/// `dir`, its digest checked; at most `limit` bytes are accepted.
pub fn stored_attachment(dir: &Path, digest: &SbomDigest, limit: usize) -> Result<Vec<u8>, SbomError> {
    stored(&dir.join(attachment_file(digest)), digest, limit).map_err(|e| match e {
        SbomError::Tampered { path, found } => SbomError::AttachmentTampered { path, found },
        other => other,
    })
}

/// Stores an attached statement in the store `dir` under its SHA-384, which must be `expected`
/// (the digest the SBOM lists); at most `limit` bytes.
pub fn store_attachment(dir: &Path, bytes: &[u8], expected: &SbomDigest, limit: usize) -> Result<(), SbomError> {
    let path = dir.join(attachment_file(expected));
    let found = SbomDigest::of(bytes);
    if found != *expected {
        return Err(SbomError::AttachmentTampered { path: format!("the attached statement named {expected}"), found });
    }
    if bytes.len() > limit {
        return Err(SbomError::TooLarge { path: path.display().to_string(), limit });
    }
    write_atomically(dir, &path, bytes)
}

/// The bytes at `path`, whose SHA-384 must be `digest`; more than `limit` bytes are refused.
fn stored(path: &Path, digest: &SbomDigest, limit: usize) -> Result<Vec<u8>, SbomError> {
    let shown = path.display().to_string();
    if std::fs::metadata(path).is_ok_and(|m| m.len() > u64::try_from(limit).unwrap_or(u64::MAX)) {
        return Err(SbomError::TooLarge { path: shown, limit });
    }
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
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
    write_atomically(dir, &path, bytes)?;
    Ok(digest)
}

/// Writes `bytes` to `path` in the store `dir` (created if absent) by a rename.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), SbomError> {
    let write = |p: &Path, b: &[u8]| {
        std::fs::write(p, b).map_err(|e| SbomError::Write { path: p.display().to_string(), error: e.to_string() })
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| SbomError::Write { path: dir.display().to_string(), error: e.to_string() })?;
    let temporary = path.with_extension("twi-new");
    write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
        .map_err(|e| SbomError::Write { path: path.display().to_string(), error: e.to_string() })
}

/// The SBOM store beside a policy file at `policy`.
pub fn sbom_store_of(policy: &Path) -> PathBuf {
    policy.parent().unwrap_or(Path::new(".")).join(SBOM_DIR)
}

/// `[workload.provenance]`, checked; an error names the field.
/// `dir`: the policy file's directory, which a `vendor_key` path is relative to.
pub(super) fn demands(file: ProvenanceFile, dir: Option<&Path>) -> Result<Demands, String> {
    if let Some(sbom) = file.sbom.as_deref().filter(|s| *s != REQUIRED) {
        return Err(format!("provenance.sbom = {sbom:?}: the only value is \"required\" (or leave it out)"));
    }
    let vendor = file.vendor.map(|v| v.trim().to_string());
    if vendor.as_deref() == Some("") {
        return Err("provenance.vendor is empty: name the supplier the SBOM must name".into());
    }
    let vendor_key = match (&vendor, file.vendor_key) {
        (_, None) => None,
        (None, Some(_)) => {
            return Err("provenance.vendor_key needs provenance.vendor, the name its statement must give".into());
        }
        (Some(_), Some(text)) => Some(VendorKey::read(&text, dir).map_err(|e| format!("provenance.vendor_key: {e}"))?),
    };
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
    Ok(Demands { vendor, vendor_key, deny, min_versions })
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
        "workload `{workload}`: provenance demand vendor = {wanted:?} with vendor_key {kid} fails: no attached statement is that vendor's, signed by that key, for the SBOM's workload component ({why}); sign one with `twi vendor sign` and attach it with `twi build --attach`"
    )]
    VendorStatement { workload: String, wanted: String, kid: String, why: String },
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
    /// Checks `sbom` (from the store `store`, which holds its attached statements too) against
    /// the demands of `workload`; returns what was checked.
    pub fn check(&self, workload: &str, sbom: &Sbom, store: &Path) -> Result<Vec<String>, ProvenanceRefusal> {
        let mut checks = vec![format!("sbom: {} present and intact", sbom.digest)];
        if let (Some(wanted), Some(key)) = (&self.vendor, &self.vendor_key) {
            checks.push(vendor_statement(workload, wanted, key, sbom, store)?);
        } else if let Some(wanted) = &self.vendor {
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

/// The vendor demand with a key: met by the first statement the SBOM lists as attached that is
/// `wanted`'s, signed by `key`, for the SBOM's workload component; what it checked, or every
/// attached statement's reason for not meeting it.
fn vendor_statement(
    workload: &str,
    wanted: &str,
    key: &VendorKey,
    sbom: &Sbom,
    store: &Path,
) -> Result<String, ProvenanceRefusal> {
    let mut reasons = Vec::new();
    for attached in sbom.components.iter().filter(|c| c.kind == "data") {
        match vendor_statement_in(attached, wanted, key, sbom, store) {
            Ok(()) => {
                return Ok(format!("vendor statement: {} ({wanted:?}), key {}", attached.name, hex::encode(key.kid)));
            }
            Err(why) => reasons.push(format!("{}: {why}", attached.name)),
        }
    }
    if reasons.is_empty() {
        reasons.push("the SBOM lists no attached statement".into());
    }
    let (workload, wanted, kid) = (workload.to_string(), wanted.to_string(), hex::encode(key.kid));
    Err(ProvenanceRefusal::VendorStatement { workload, wanted, kid, why: reasons.join("; ") })
}

/// Whether the attached statement `attached` meets the vendor demand; `Err` says why not.
fn vendor_statement_in(
    attached: &Component,
    wanted: &str,
    key: &VendorKey,
    sbom: &Sbom,
    store: &Path,
) -> Result<(), String> {
    let listed = attached.sha384.as_deref().ok_or("the SBOM lists no SHA-384 for it")?;
    let digest = SbomDigest::from_hex(listed).ok_or("the SBOM's SHA-384 for it is malformed")?;
    let bytes = stored_attachment(store, &digest, vendor::MAX_LEN).map_err(|e| match e {
        SbomError::Missing { .. } => format!(
            "the policy's store does not hold it ({}): add the image with `twi policy add-image`, which stores its attached statements",
            attachment_file(&digest)
        ),
        other => other.to_string(),
    })?;
    let statement = vendor::verify(&bytes, &key.key)?;
    if statement.vendor != wanted {
        return Err(format!("it is a statement of {:?}, not of {wanted:?}", statement.vendor));
    }
    let Some(component) = &sbom.workload else { return Err("the SBOM names no workload component".into()) };
    let subject = &statement.subject;
    let named = (subject.name.as_str(), subject.version.as_str(), Some(subject.sha384.to_ascii_lowercase()));
    if named != (component.name.as_str(), component.version.as_str(), component.sha384.clone()) {
        return Err(format!(
            "it vouches for {} {} (sha384 {}), and the SBOM's workload component is {} {} (sha384 {})",
            subject.name,
            subject.version,
            subject.sha384,
            component.name,
            component.version,
            component.sha384.as_deref().unwrap_or("none")
        ));
    }
    Ok(())
}
