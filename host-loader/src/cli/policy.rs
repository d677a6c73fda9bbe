//! `twi policy`: edit an appraisal policy file, so that admitting a new image is a command,
//! not a copy and paste of measurements.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use crate::measure::reference;
use twi_issuer::policy::{
    PolicyKey, ReferenceFile, Sbom, SbomDigest, corim_image_references, image_references, sbom_store_of,
    store_attachment, store_sbom,
};

use crate::policy_file::add_references;

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Admit an image built by `twi build` as a workload: add the reference values of
    /// IMAGE-DIR/reference-values.json (simulated and real SEV-SNP, IGVM, simulated and real
    /// TDX) to the workload's [[workload.reference]] entries in POLICY, keeping its comments.
    /// Entries already there are left alone; a workload not in POLICY is added. Each entry
    /// names the image's SBOM digest, and the SBOM (IMAGE-DIR/sbom.cdx.json, refused if its
    /// digest is not the one the reference values name) is stored by digest in sboms/ beside
    /// POLICY, for the workload's [workload.provenance] demands. With --corim-key the values
    /// are taken from the build's signed CoRIM instead (IMAGE-DIR/reference-values.corim, or
    /// --corim FILE), once its signature verifies: the same entries.
    AddImage {
        /// The policy file to edit (TOML; see issuer/policy.example.toml).
        policy: PathBuf,
        /// The `twi build --out` directory (or its reference-values.json).
        image: PathBuf,
        /// The workload that the image runs, as the policy names it (e.g. payroll-app).
        #[arg(long, value_name = "ID")]
        workload: String,
        /// The label of the new entries (default: the image directory's name).
        #[arg(long)]
        label: Option<String>,
        /// Take the reference values from this signed CoRIM (`twi build --corim-key`'s
        /// reference-values.corim) instead of the JSON; needs --corim-key.
        #[arg(long, value_name = "FILE", requires = "corim_key")]
        corim: Option<PathBuf>,
        /// The public key (P-384, PEM) the CoRIM's signature must verify under (the public half
        /// of `twi build --corim-key`). Given alone, IMAGE-DIR/reference-values.corim is read.
        #[arg(long, value_name = "PEM")]
        corim_key: Option<PathBuf>,
    },
}

pub fn execute(command: PolicyCommand) -> Result<()> {
    let PolicyCommand::AddImage { policy, image, workload, label, corim, corim_key } = command;
    let label = label.unwrap_or_else(|| default_label(&image));
    let (entries, sbom) = match corim_key {
        Some(key) => corim_entries(&image, corim.as_deref(), &key, &label)?,
        None => json_entries(&image, &label)?,
    };
    if let Some((digest, file, named_in)) = sbom {
        store_image_sbom(&policy, &digest, &file, &named_in)?;
    }
    let text = fs::read_to_string(&policy).with_context(|| format!("cannot read {}", policy.display()))?;
    let dir = policy.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let (edited, added) = add_references(&text, Some(dir), &workload, &entries)
        .map_err(|e| anyhow::anyhow!("{} with the image's entries: {e}", policy.display()))?;
    if added.new_workload {
        eprintln!(
            "twi: {}: added workload `{workload}` (with the format's defaults: edit its mechanism, freshness, fidelity and stickiness as needed)",
            policy.display()
        );
    }
    if !added.present.is_empty() {
        eprintln!("twi: {}: workload `{workload}` already admits: {}", policy.display(), added.present.join(", "));
    }
    if added.added.is_empty() && added.known.is_empty() {
        eprintln!("twi: {}: nothing to add", policy.display());
        return Ok(());
    }
    write_replacing(&policy, &edited)?;
    if !added.added.is_empty() {
        eprintln!("twi: {}: workload `{workload}` now admits: {}", policy.display(), added.added.join(", "));
    }
    if !added.known.is_empty() {
        eprintln!(
            "twi: {}: workload `{workload}` also lists, with admit = false (host profiles not asked for at `twi build --host-profile`; a refusal names them): {}",
            policy.display(),
            added.known.join(", ")
        );
    }
    if policy.with_file_name(format!("{}.sig", file_name(&policy))).exists() {
        eprintln!("twi: warning: {}.sig no longer covers the edited file: sign it again", policy.display());
    }
    Ok(())
}

/// The image's SBOM to store: its digest as the reference values name it, the document's
/// file, and the file that names it (for messages).
type NamedSbom = (SbomDigest, PathBuf, PathBuf);

/// The entries of IMAGE's reference-values.json (or IMAGE itself, a file), and the SBOM it names.
fn json_entries(image: &Path, label: &str) -> Result<(Vec<ReferenceFile>, Option<NamedSbom>)> {
    let values_path = if image.is_dir() { image.join(reference::FILE_NAME) } else { image.to_path_buf() };
    let values: serde_json::Value = serde_json::from_slice(
        &fs::read(&values_path)
            .with_context(|| format!("cannot read {} (run `twi build --out DIR` first)", values_path.display()))?,
    )
    .with_context(|| format!("{} is not JSON", values_path.display()))?;
    let entries = image_references(&values, label).map_err(|e| anyhow::anyhow!("{}: {e}", values_path.display()))?;
    let Some(digest) = values.pointer("/sbom/digest").and_then(|d| d.as_str()) else {
        eprintln!("twi: {}: names no SBOM (built before `twi build` wrote one)", values_path.display());
        return Ok((entries, None));
    };
    let digest = SbomDigest::parse(digest)
        .with_context(|| format!("{}: sbom.digest {digest:?} is not sha384:<hex>", values_path.display()))?;
    let file = values.pointer("/sbom/file").and_then(|f| f.as_str()).unwrap_or(crate::sbom::FILE_NAME);
    if Path::new(file).file_name() != Some(std::ffi::OsStr::new(file)) {
        bail!("{}: sbom.file {file:?} is not a file name beside it", values_path.display());
    }
    Ok((entries, Some((digest, values_path.with_file_name(file), values_path))))
}

/// The entries of the image's signed CoRIM (`corim`, else IMAGE-DIR/reference-values.corim),
/// its signature checked under the public key in `key`, and the SBOM it states (the document:
/// IMAGE-DIR/sbom.cdx.json, or beside the CoRIM when IMAGE is not a directory).
fn corim_entries(
    image: &Path,
    corim: Option<&Path>,
    key: &Path,
    label: &str,
) -> Result<(Vec<ReferenceFile>, Option<NamedSbom>)> {
    let path = match corim {
        Some(file) => file.to_path_buf(),
        None if image.is_dir() => image.join(twi_issuer::policy::corim::FILE_NAME),
        None => bail!(
            "--corim-key without --corim: {} is not an image directory to find reference-values.corim in",
            image.display()
        ),
    };
    let key = PolicyKey::load(key).map_err(|e| anyhow::anyhow!("--corim-key {}: {e}", key.display()))?;
    let bytes = fs::read(&path).with_context(|| {
        format!("cannot read {} (build with `twi build --corim-key KEY` to sign one)", path.display())
    })?;
    let entries =
        corim_image_references(&bytes, &key.0, label).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    eprintln!("twi: {}: signature verified; its reference values are added", path.display());
    let Some(digest) = entries.first().and_then(|e| e.sbom) else {
        eprintln!("twi: {}: states no SBOM (built before `twi build` wrote one)", path.display());
        return Ok((entries, None));
    };
    let file =
        if image.is_dir() { image.join(crate::sbom::FILE_NAME) } else { path.with_file_name(crate::sbom::FILE_NAME) };
    Ok((entries, Some((digest, file, path))))
}

/// Stores the SBOM document `file` in the store beside `policy`, its digest checked against
/// `digest`, the one the reference values in `named_in` (and so the measured manifest) name.
fn store_image_sbom(policy: &Path, digest: &SbomDigest, file: &Path, named_in: &Path) -> Result<()> {
    let bytes = fs::read(file).with_context(|| {
        format!("cannot read {} (the image's SBOM, which {} names)", file.display(), named_in.display())
    })?;
    let store = sbom_store_of(policy);
    store_sbom(&store, &bytes, Some(digest)).with_context(|| format!("storing {}", file.display()))?;
    eprintln!("twi: stored the image's SBOM ({digest}) in {}", store.display());
    store_attached(&store, &bytes, file)
}

/// Stores each statement the SBOM `sbom` (the document `file`) lists as attached, from the
/// `attached/` directory `twi build` keeps beside it, its SHA-384 checked against the SBOM's.
fn store_attached(store: &Path, sbom: &[u8], file: &Path) -> Result<()> {
    let document = Sbom::parse(sbom, &file.display().to_string())?;
    let dir = file.with_file_name(crate::sbom::ATTACHED_DIR);
    for attached in document.components.iter().filter(|c| c.kind == "data") {
        let listed = attached.sha384.as_deref().unwrap_or_default();
        let digest = SbomDigest::parse(&format!("sha384:{listed}"))
            .with_context(|| format!("{}: attached {} has no SHA-384", file.display(), attached.name))?;
        if Path::new(&attached.name).file_name() != Some(std::ffi::OsStr::new(&attached.name)) {
            bail!("{}: attached {:?} is not a file name", file.display(), attached.name);
        }
        let path = dir.join(&attached.name);
        let bytes = fs::read(&path).with_context(|| {
            format!(
                "cannot read {} (the statement the SBOM lists as attached; `twi build --attach` keeps it there)",
                path.display()
            )
        })?;
        store_attachment(store, &bytes, &digest, crate::sbom::ATTACHMENT_LIMIT)
            .with_context(|| format!("storing {}", path.display()))?;
        eprintln!("twi: stored attached statement {} ({digest}) in {}", attached.name, store.display());
    }
    Ok(())
}

/// The image directory's name, else its path.
fn default_label(image: &Path) -> String {
    let dir = if image.is_dir() { image } else { image.parent().unwrap_or(image) };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let resolved = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    resolved.file_name().map_or_else(|| resolved.display().to_string(), |n| n.to_string_lossy().into_owned())
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Writes `text` to a temporary file beside `path`, then renames it over `path`: a failure
/// leaves the old file whole.
fn write_replacing(path: &Path, text: &str) -> Result<()> {
    let Some(name) = path.file_name() else { bail!("{} is not a file name", path.display()) };
    let mut temporary = name.to_os_string();
    temporary.push(".twi-new");
    let temporary = path.with_file_name(temporary);
    fs::write(&temporary, text).with_context(|| format!("cannot write {}", temporary.display()))?;
    fs::rename(&temporary, path).with_context(|| format!("cannot replace {}", path.display()))
}
