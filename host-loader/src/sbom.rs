//! Workload Provenance (RATS-for-TWI 5.3.1): the CycloneDX 1.5 SBOM `twi build` writes beside
//! the image (`sbom.cdx.json`), and whose SHA-384 the measured launch manifest carries, so the
//! hardware measurement covers the statement of what the image is made of.
//!
//! What it lists: the image's code (the runtime ELF with the payload linked in, by SHA-384) as
//! the BOM's subject; every crate compiled into it (the dependency graph `cargo metadata`
//! resolves for `x86_64-unknown-none` from the firmware crate, normal dependencies only: build
//! scripts and their tools are not in the image), each with its version, package URL and the
//! SHA-256 checksum `Cargo.lock` records for registry crates; the Rust toolchain (`rustc -vV`);
//! each `--attach`ed statement (vendor or compliance documents) by SHA-384; and, with
//! `--vendor NAME`, the supplier (`metadata.supplier`) that issuer policies' vendor demand
//! reads. The document is
//! reproducible: no timestamp, and the serial number derives from the ELF's digest.
//!
//! The ROM's and launch digests cannot be inside it (the manifest that holds its digest is part
//! of them); `reference-values.json` names the SBOM's digest beside them instead.
//!
//! The document is made with OWASP's `cyclonedx-bom` crate (the CycloneDX project's own Rust
//! model and serializer) and checked by its validator before it is written; the tests check it
//! again with the Python `cyclonedx-python-lib` against the CycloneDX 1.5 JSON schema.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, anyhow, bail};
use cyclonedx_bom::models::component::{Classification, Scope};
use cyclonedx_bom::models::hash::{Hash, HashAlgorithm, HashValue, Hashes};
use cyclonedx_bom::models::organization::OrganizationalEntity;
use cyclonedx_bom::models::property::{Properties, Property};
use cyclonedx_bom::models::tool::{Tool, Tools};
use cyclonedx_bom::prelude::*;
use sha2::{Digest, Sha384};

/// The SBOM's file name beside the image.
pub const FILE_NAME: &str = "sbom.cdx.json";
/// The launch-manifest key of the SBOM's digest (`sha384:HEX`).
pub const MANIFEST_KEY: &str = "twi.sbom";
/// The launch-manifest key prefix of each attached statement's digest (`twi.attach.NAME`).
pub const ATTACH_PREFIX: &str = "twi.attach.";
/// The directory beside the SBOM where `twi build` keeps a copy of each attached statement.
pub const ATTACHED_DIR: &str = "attached";
/// The largest attached statement `twi policy add-image` stores for the issuer.
pub const ATTACHMENT_LIMIT: usize = twi_issuer::policy::ATTACHMENT_LIMIT;

/// The SBOM digest a launch manifest carries (`MANIFEST_KEY`), if it names one well formed.
pub fn manifest_digest(manifest: &twi_proto::manifest::LaunchManifest) -> Option<twi_issuer::policy::SbomDigest> {
    let text = std::str::from_utf8(manifest.setting(MANIFEST_KEY)?).ok()?;
    twi_issuer::policy::SbomDigest::parse(text)
}

/// One crate compiled into the image.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Crate {
    pub name: String,
    pub version: String,
    /// `registry`, `path` or `git` (from the package's source).
    pub source: String,
    /// The SHA-256 `Cargo.lock` records (registry crates only).
    pub checksum: Option<String>,
}

/// What the SBOM describes.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// The workload's name (the payload crate, or `twi-runtime` for the built-in workload).
    pub workload: &'a str,
    pub elf: &'a [u8],
    /// The crates in the ELF; `None` when it is not known (a prebuilt `--runtime-elf` without
    /// the SBOM of its build beside it).
    pub crates: Option<Vec<Crate>>,
    /// `rustc -vV`, when the ELF was compiled here.
    pub toolchain: Option<String>,
    /// Attached statements: file name and contents.
    pub attachments: &'a [(String, Vec<u8>)],
    /// Who supplies the image (`twi build --vendor`): the BOM's `metadata.supplier`, which an
    /// issuer policy's `[workload.provenance] vendor` demand reads.
    pub vendor: Option<&'a str>,
}

/// `sha384:HEX` of `bytes`, the form the manifest and the reference values carry.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha384:{}", hex::encode(Sha384::digest(bytes)))
}

/// The CycloneDX 1.5 JSON document for `inputs`, validated.
pub fn document(inputs: &Inputs<'_>) -> Result<Vec<u8>> {
    let elf_sha384 = hex::encode(Sha384::digest(inputs.elf));
    let mut subject = Component::new(Classification::Firmware, inputs.workload, "image", Some("image".into()));
    subject.hashes = Some(Hashes(vec![sha(HashAlgorithm::SHA_384, &elf_sha384)]));
    subject.description = Some(NormalizedString::new("the TWI runtime ELF with the workload linked in"));
    let mut components: Vec<Component> = Vec::new();
    let mut properties =
        vec![Property::new("twi:composition", if inputs.crates.is_some() { "cargo" } else { "unknown" })];
    for krate in inputs.crates.iter().flatten() {
        components.push(crate_component(krate)?);
    }
    if let Some(toolchain) = &inputs.toolchain {
        properties.push(Property::new("twi:toolchain", toolchain.trim()));
    }
    for (name, bytes) in inputs.attachments {
        let mut statement = Component::new(Classification::Data, name, "attached", Some(format!("attach:{name}")));
        statement.hashes = Some(Hashes(vec![sha(HashAlgorithm::SHA_384, &hex::encode(Sha384::digest(bytes)))]));
        statement.scope = Some(Scope::Excluded);
        components.push(statement);
    }
    let tool = Tool { name: Some(NormalizedString::new("twi build")), ..Tool::default() };
    let bom = Bom {
        serial_number: Some(serial(&elf_sha384)?),
        metadata: Some(Metadata {
            tools: Some(Tools::List(vec![tool])),
            component: Some(subject),
            properties: Some(Properties(properties)),
            supplier: inputs.vendor.map(OrganizationalEntity::new),
            ..Metadata::default()
        }),
        components: Some(Components(components)),
        ..Bom::default()
    };
    let result = bom.validate_version(SpecVersion::V1_5);
    if !result.passed() {
        bail!("the SBOM does not validate as CycloneDX 1.5: {result:?}");
    }
    let mut out = Vec::new();
    bom.output_as_json_v1_5(&mut out).map_err(|e| anyhow!("writing the SBOM: {e}"))?;
    out.push(b'\n');
    Ok(out)
}

fn sha(alg: HashAlgorithm, hex: &str) -> Hash {
    Hash { alg, content: HashValue(hex.to_string()) }
}

fn crate_component(krate: &Crate) -> Result<Component> {
    let bom_ref = format!("{}@{}", krate.name, krate.version);
    let mut component = Component::new(Classification::Library, &krate.name, &krate.version, Some(bom_ref));
    component.purl = Some(Purl::new("cargo", &krate.name, &krate.version).map_err(|e| anyhow!("{e}"))?);
    component.scope = Some(Scope::Required);
    component.hashes = krate.checksum.as_ref().map(|c| Hashes(vec![sha(HashAlgorithm::SHA_256, c)]));
    component.properties = Some(Properties(vec![Property::new("twi:source", &krate.source)]));
    Ok(component)
}

/// A name-based UUID (RFC 9562 version 8 layout) from the ELF's digest: the same image code,
/// the same serial number.
fn serial(elf_sha384: &str) -> Result<UrnUuid> {
    let mut b: [u8; 16] = hex::decode(&elf_sha384[..32])?.try_into().map_err(|_| anyhow!("digest length"))?;
    b[6] = (b[6] & 0x0F) | 0x80;
    b[8] = (b[8] & 0x3F) | 0x80;
    let h = hex::encode(b);
    let urn = format!("urn:uuid:{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]);
    UrnUuid::new(urn).map_err(|e| anyhow!("{e:?}"))
}

/// The crates compiled for `x86_64-unknown-none` from the crate at `manifest` (its normal
/// dependencies, transitively, the crate itself included), with `lock`'s checksums.
pub fn crates_of(manifest: &Path, lock: &Path) -> Result<Vec<Crate>> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(manifest)
        .other_options(vec!["--filter-platform".into(), "x86_64-unknown-none".into(), "--offline".into()])
        .exec()
        .with_context(|| format!("cargo metadata for {} (the SBOM's crate list)", manifest.display()))?;
    let resolve = metadata.resolve.as_ref().ok_or_else(|| anyhow!("cargo metadata resolved no dependency graph"))?;
    let root = resolve.root.clone().ok_or_else(|| anyhow!("cargo metadata names no root package"))?;
    let nodes: BTreeMap<_, _> = resolve.nodes.iter().map(|n| (n.id.clone(), n)).collect();
    let (mut seen, mut queue) = (BTreeSet::from([root.clone()]), VecDeque::from([root]));
    while let Some(id) = queue.pop_front() {
        let Some(node) = nodes.get(&id) else { continue };
        let normal =
            node.deps.iter().filter(|d| d.dep_kinds.iter().any(|k| k.kind == cargo_metadata::DependencyKind::Normal));
        for dep in normal {
            if seen.insert(dep.pkg.clone()) {
                queue.push_back(dep.pkg.clone());
            }
        }
    }
    let checksums = lock_checksums(lock)?;
    let mut crates: Vec<Crate> = metadata
        .packages
        .iter()
        .filter(|p| seen.contains(&p.id))
        .map(|p| {
            let source = p.source.as_ref().map_or("path", |s| if s.is_crates_io() { "registry" } else { "git" });
            let checksum = checksums.get(&(p.name.to_string(), p.version.to_string())).cloned();
            Crate { name: p.name.to_string(), version: p.version.to_string(), source: source.into(), checksum }
        })
        .collect();
    crates.sort();
    Ok(crates)
}

/// `(name, version) -> checksum` of the registry packages in a `Cargo.lock`.
fn lock_checksums(lock: &Path) -> Result<BTreeMap<(String, String), String>> {
    let text = std::fs::read_to_string(lock).with_context(|| format!("cannot read {}", lock.display()))?;
    let table: toml::Table = toml::from_str(&text).with_context(|| format!("{} is not TOML", lock.display()))?;
    let packages = table.get("package").and_then(|p| p.as_array()).cloned().unwrap_or_default();
    Ok(packages
        .iter()
        .filter_map(|p| {
            let field = |k: &str| p.get(k).and_then(|v| v.as_str()).map(str::to_string);
            Some(((field("name")?, field("version")?), field("checksum")?))
        })
        .collect())
}

/// `rustc -vV` of the toolchain that builds in `dir` (its `rust-toolchain.toml` applies).
pub fn toolchain(dir: &Path) -> Option<String> {
    let out = Command::new("rustc").arg("-vV").current_dir(dir).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).lines().take(4).collect::<Vec<_>>().join("; "))
}

/// What the SBOM of a prebuilt ELF's own build (beside it: `twi build` keeps `twi-runtime.elf`
/// and `sbom.cdx.json` side by side) says of it, if that SBOM's subject is this ELF: the
/// workload's name, its crates and toolchain. Building again from the kept ELF with the same
/// settings then writes the same SBOM, so the same image.
pub fn beside(elf_path: &Path, elf: &[u8]) -> Option<(String, Vec<Crate>, Option<String>)> {
    let sbom: PathBuf = elf_path.with_file_name(FILE_NAME);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(sbom).ok()?).ok()?;
    let subject = &json["metadata"]["component"];
    if subject["hashes"][0]["content"].as_str()? != hex::encode(Sha384::digest(elf)) {
        return None;
    }
    let property = |name: &str| {
        let properties = json["metadata"]["properties"].as_array()?;
        properties.iter().find(|p| p["name"] == name).and_then(|p| p["value"].as_str()).map(str::to_string)
    };
    if property("twi:composition").as_deref() != Some("cargo") {
        return None;
    }
    let libraries = json["components"].as_array()?.iter().filter(|c| c["type"] == "library");
    let crates = libraries
        .map(|c| {
            let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
            Some(Crate {
                name: text(&c["name"])?,
                version: text(&c["version"])?,
                source: text(&c["properties"][0]["value"])?,
                checksum: text(&c["hashes"][0]["content"]),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some((subject["name"].as_str()?.to_string(), crates, property("twi:toolchain")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs<'a>(crates: Option<Vec<Crate>>, attachments: &'a [(String, Vec<u8>)]) -> Inputs<'a> {
        Inputs {
            workload: "payroll",
            elf: b"\x7fELF code",
            crates,
            toolchain: Some("rustc 1.91.0".into()),
            attachments,
            vendor: Some("Example Corp"),
        }
    }

    #[test]
    fn the_document_is_reproducible_and_names_what_it_was_given() {
        let krate = Crate {
            name: "p384".into(),
            version: "0.14.0".into(),
            source: "registry".into(),
            checksum: Some("ab".repeat(32)),
        };
        let attached = [("vendor.json".to_string(), b"{}".to_vec())];
        let a = document(&inputs(Some(vec![krate.clone()]), &attached)).unwrap();
        assert_eq!(a, document(&inputs(Some(vec![krate]), &attached)).unwrap(), "not reproducible");
        let json: serde_json::Value = serde_json::from_slice(&a).unwrap();
        assert_eq!(json["specVersion"], "1.5");
        assert_eq!(json["metadata"]["component"]["hashes"][0]["content"], hex::encode(Sha384::digest(b"\x7fELF code")));
        assert_eq!(json["components"][0]["purl"], "pkg:cargo/p384@0.14.0");
        assert_eq!(json["components"][1]["hashes"][0]["content"], hex::encode(Sha384::digest(b"{}")));
        assert!(json.to_string().find("timestamp").is_none());
        assert_eq!(json["metadata"]["supplier"]["name"], "Example Corp");
    }

    #[test]
    fn an_unknown_composition_says_so() {
        let json: serde_json::Value = serde_json::from_slice(&document(&inputs(None, &[])).unwrap()).unwrap();
        assert_eq!(json["metadata"]["properties"][0]["value"], "unknown");
        assert_eq!(json["components"].as_array().map(Vec::len).unwrap_or(0), 0);
    }
}
