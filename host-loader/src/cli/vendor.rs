//! `twi vendor sign`: a vendor's signed statement that it supplies a workload, which an issuer
//! policy's `[workload.provenance] vendor_key` checks (`twi_issuer::policy::vendor` has the
//! format and why it names the SBOM's workload component rather than the image).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use clap::Subcommand;
use twi_issuer::policy::Sbom;
use twi_issuer::policy::vendor::{self, STATEMENT_TYPE, Subject, VendorStatement};

#[derive(Subcommand, Debug)]
pub enum VendorCommand {
    /// Sign a vendor statement (COSE_Sign1, ES384) naming the vendor and the workload component
    /// (name, version, SHA-384 of the runtime ELF) the SBOM of a build lists; attach it to the
    /// final build of the same ELF with `twi build --runtime-elf DIR/twi-runtime.elf --attach
    /// FILE`, so the SBOM lists it and the launch measures it.
    Sign {
        /// The vendor's P-384 private key (PEM); issuer policies name its public half as
        /// `vendor_key`.
        #[arg(long, value_name = "PEM")]
        key: PathBuf,
        /// The vendor's name, as issuer policies' `[workload.provenance] vendor` names it.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// The SBOM of the build the statement vouches for: a `twi build --out` directory, or
        /// its sbom.cdx.json.
        #[arg(long, value_name = "SBOM")]
        sbom: PathBuf,
        /// Where to write the statement.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

pub fn execute(command: VendorCommand) -> Result<()> {
    let VendorCommand::Sign { key, name, sbom, out } = command;
    let name = name.trim().to_string();
    if name.is_empty() {
        return Err(anyhow!("--name is empty: give the vendor's name, as policies name it"));
    }
    let key = crate::corim::p384_private_key(&key, "--key", "vendor-key.pem")?;
    let subject = subject_of(&sbom)?;
    let statement = VendorStatement { kind: STATEMENT_TYPE.into(), vendor: name, subject };
    let bytes = vendor::sign(&statement, &key).map_err(|e| anyhow!("{e}"))?;
    fs::write(&out, &bytes).with_context(|| format!("cannot write {}", out.display()))?;
    let kid = hex::encode(vendor::key_id(key.verifying_key()));
    eprintln!(
        "twi: wrote {} ({:?} vouches for {} {} sha384:{}; key {kid})",
        out.display(),
        statement.vendor,
        statement.subject.name,
        statement.subject.version,
        statement.subject.sha384
    );
    Ok(())
}

/// The workload component (`metadata.component`) of the SBOM at `path` (or in that directory).
fn subject_of(path: &Path) -> Result<Subject> {
    let file = if path.is_dir() { path.join(crate::sbom::FILE_NAME) } else { path.to_path_buf() };
    let bytes = fs::read(&file).with_context(|| format!("--sbom {}: cannot read it", file.display()))?;
    let sbom = Sbom::parse(&bytes, &file.display().to_string())?;
    let component =
        sbom.workload.ok_or_else(|| anyhow!("{}: names no workload (metadata.component)", file.display()))?;
    let sha384 = component
        .sha384
        .ok_or_else(|| anyhow!("{}: its workload component has no SHA-384 to vouch for", file.display()))?;
    Ok(Subject { name: component.name, version: component.version, sha384 })
}
