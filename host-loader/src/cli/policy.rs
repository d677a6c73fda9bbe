//! `twi policy`: edit an appraisal policy file, so that admitting a new image is a command,
//! not a copy and paste of measurements.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use crate::measure::reference;
use twi_issuer::policy::image_references;

use crate::policy_file::add_references;

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Admit an image built by `twi build` as a workload: add the reference values of
    /// IMAGE-DIR/reference-values.json (simulated and real SEV-SNP, IGVM, simulated and real
    /// TDX) to the workload's [[workload.reference]] entries in POLICY, keeping its comments.
    /// Entries already there are left alone; a workload not in POLICY is added.
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
    if added.added.is_empty() {
        eprintln!("twi: {}: nothing to add", policy.display());
        return Ok(());
    }
    write_replacing(&policy, &edited)?;
    eprintln!("twi: {}: workload `{workload}` now admits: {}", policy.display(), added.added.join(", "));
    if policy.with_file_name(format!("{}.sig", file_name(&policy))).exists() {
        eprintln!("twi: warning: {}.sig no longer covers the edited file: sign it again", policy.display());
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
