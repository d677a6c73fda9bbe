//! `twi policy`: edit an appraisal policy file, so that admitting a new image is a command,
//! not a copy and paste of measurements.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use crate::measure::reference;
use twi_issuer::policy::{SbomDigest, image_references, sbom_store_of, store_sbom};

use crate::policy_file::add_references;

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Admit an image built by `twi build` as a workload: add the reference values of
    /// IMAGE-DIR/reference-values.json (simulated and real SEV-SNP, IGVM, simulated and real
    /// TDX) to the workload's [[workload.reference]] entries in POLICY, keeping its comments.
    /// Entries already there are left alone; a workload not in POLICY is added. Each entry
    /// names the image's SBOM digest, and the SBOM (IMAGE-DIR/sbom.cdx.json, refused if its
    /// digest is not the one the reference values name) is stored by digest in sboms/ beside
    /// POLICY, for the workload's [workload.provenance] demands.
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
    },
}

pub fn execute(command: PolicyCommand) -> Result<()> {
    let PolicyCommand::AddImage { policy, image, workload, label } = command;
    let values_path = if image.is_dir() { image.join(reference::FILE_NAME) } else { image.clone() };
    let values: serde_json::Value = serde_json::from_slice(
        &fs::read(&values_path)
            .with_context(|| format!("cannot read {} (run `twi build --out DIR` first)", values_path.display()))?,
    )
    .with_context(|| format!("{} is not JSON", values_path.display()))?;
    let label = label.unwrap_or_else(|| default_label(&image));
    let entries = image_references(&values, &label).map_err(|e| anyhow::anyhow!("{}: {e}", values_path.display()))?;
    store_image_sbom(&policy, &values_path, &values)?;
    let text = fs::read_to_string(&policy).with_context(|| format!("cannot read {}", policy.display()))?;
    let (edited, added) = add_references(&text, &workload, &entries)
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

/// Stores the SBOM that `values` (read from `values_path`) names in the store beside
/// `policy`, its digest checked against the one the reference values (and so the measured
/// manifest) name. Reference values without an SBOM store nothing.
fn store_image_sbom(policy: &Path, values_path: &Path, values: &serde_json::Value) -> Result<()> {
    let Some(digest) = values.pointer("/sbom/digest").and_then(|d| d.as_str()) else {
        eprintln!("twi: {}: names no SBOM (built before `twi build` wrote one)", values_path.display());
        return Ok(());
    };
    let digest = SbomDigest::parse(digest)
        .with_context(|| format!("{}: sbom.digest {digest:?} is not sha384:<hex>", values_path.display()))?;
    let file = values.pointer("/sbom/file").and_then(|f| f.as_str()).unwrap_or(crate::sbom::FILE_NAME);
    if Path::new(file).file_name() != Some(std::ffi::OsStr::new(file)) {
        bail!("{}: sbom.file {file:?} is not a file name beside it", values_path.display());
    }
    let path = values_path.with_file_name(file);
    let bytes = fs::read(&path).with_context(|| format!("cannot read {} (the image's SBOM)", path.display()))?;
    let store = sbom_store_of(policy);
    store_sbom(&store, &bytes, Some(&digest)).with_context(|| format!("storing {}", path.display()))?;
    eprintln!("twi: stored the image's SBOM ({digest}) in {}", store.display());
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
