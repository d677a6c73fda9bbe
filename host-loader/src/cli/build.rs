//! `twi build`: the ROM with the issuer's trust anchor in its measured manifest, the IGVM
//! file, and the reference values an issuer's policy admits.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use twi_issuer::jose::Alg;
use twi_proto::manifest::Diagnostic;

use super::args::{DiagnosticArg, IdentityArgs, LaunchArgs};
use super::issuer::{Anchor, open_ca};
use twi_proto::manifest::LaunchManifest;

use crate::{corim, image, measure, payload, sbom};

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// The directory to write twi.rom, twi.igvm, reference-values.json, reference-values.corim,
    /// sbom.cdx.json, twi-runtime.elf and the relying parties' trust files (issuer-ca.pem, issuer-jwks.json,
    /// trust-bundle.json) into (made if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Use this runtime ELF instead of compiling one.
    #[arg(long, value_name = "FILE", conflicts_with = "payload")]
    runtime_elf: Option<PathBuf>,
    #[command(flatten)]
    workload: Workload,
    #[command(flatten)]
    identity: IdentityArgs,
    #[command(flatten)]
    launch: LaunchArgs,
    /// Build a diagnostic image instead of the product: `self-test` (boot, key generation,
    /// one signature, exit) or `fault` (boot, then a deliberate #UD that the fault handler
    /// reports).
    #[arg(long, value_enum, default_value = "none")]
    diagnostic: DiagnosticArg,
    /// The WIT algorithm of the issuer policy the image will run under (its `wit_alg`): which
    /// WIT key issuer-jwks.json and trust-bundle.json publish — ES384, the P-384 key `twi-wit`;
    /// ES256, the P-256 key `twi-wit-es256`. Default: --issuer-policy's `wit_alg`, else ES384.
    #[arg(long, value_name = "ALG", value_parser = parse_wit_alg)]
    wit_alg: Option<Alg>,
    /// The issuer's appraisal policy file (TOML) the image will run under: its `wit_alg`
    /// chooses the WIT key the trust files publish (a --wit-alg that contradicts it is
    /// refused). (`--policy` is the SEV-SNP guest policy here.)
    #[arg(long, value_name = "FILE")]
    issuer_policy: Option<PathBuf>,
    #[command(flatten)]
    corim: CorimArgs,
    /// Leave the SVSM calling area (SEV metadata section type 4) out of the ROM, for SEV-SNP
    /// hosts whose QEMU stops with "Invalid memory type '4'" (some of AMD's SNP QEMU 8.x
    /// builds; qemu/README.md, host profiles). No SVSM boots such a ROM (--platform sim-svsm
    /// refuses it, as COCONUT-SVSM does), and its launch digests differ from the default ROM's.
    #[arg(long)]
    no_svsm_caa: bool,
}

/// How `twi build` writes the reference values as a CoRIM.
#[derive(Args, Debug, Default, Clone)]
pub struct CorimArgs {
    /// Sign reference-values.corim (and with --igvm-corim the IGVM file's CoRIM) with this P-384
    /// private key (PEM; ES384). Without it the CoRIM is written unsigned, which an issuer
    /// policy's `reference_values_corim` refuses.
    #[arg(long, value_name = "KEY.pem")]
    pub corim_key: Option<PathBuf>,
    /// Also carry the SEV-SNP launch measurement as a CoRIM inside twi.igvm (its CoRIM document
    /// and, with --corim-key, signature headers). Loaders whose IGVM library lacks CoRIM support
    /// refuse such a file.
    #[arg(long)]
    pub igvm_corim: bool,
    /// The security version number the IGVM file's CoRIM endorses for its launch measurement
    /// (the launch-measurement profile's one SVN); TWI images have none of their own yet.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "igvm_corim")]
    pub svn: u64,
    /// Give reference-values.corim a validity period (its `rim-validity`) of this many days from
    /// now: past it, issuer policies that read the CoRIM refuse to load. Without it the
    /// reference values never expire.
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..))]
    pub corim_valid_days: Option<u32>,
}

impl CorimArgs {
    /// The settings, the key loaded; `vendor` (else "TWI image builder") is the signer's name.
    pub fn settings(&self, vendor: Option<&str>) -> Result<corim::CorimSettings> {
        let signer = vendor.unwrap_or("TWI image builder");
        let key = self.corim_key.as_deref().map(|p| corim::CorimKey::load(p, signer)).transpose()?;
        Ok(corim::CorimSettings { key, igvm: self.igvm_corim, svn: self.svn, valid_days: self.corim_valid_days })
    }
}

fn parse_wit_alg(name: &str) -> Result<Alg, String> {
    Alg::from_name(name)
        .ok_or_else(|| format!("{name:?} is not a WIT algorithm; the accepted values are {}", Alg::accepted()))
}

/// The workload an image runs and the settings its launch manifest carries.
#[derive(Args, Debug, Default, Clone)]
pub struct Workload {
    /// Link the payload crate in DIR (a `#![no_std]` library with `pub fn main(rt: &mut dyn
    /// twi_payload::Runtime) -> ExitCode`; `twi new DIR` makes one) into the runtime as its
    /// workload. Without it the workload acquires a credential and exits.
    #[arg(long, value_name = "DIR")]
    pub payload: Option<PathBuf>,
    /// A setting the payload reads with `rt.setting(KEY)`, measured with the image (repeat
    /// for more). A KEY ending in `-ca` names a PEM file of CA certificates (their DER goes in).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
    /// A vendor or compliance statement to attach to the SBOM (repeat for more): its SHA-384 is
    /// listed in `sbom.cdx.json` and measured in the launch manifest as `twi.attach.NAME`.
    #[arg(long = "attach", value_name = "FILE")]
    pub attach: Vec<PathBuf>,
    /// Who supplies the image: written as the SBOM's supplier (`metadata.supplier.name`),
    /// which an issuer policy's `[workload.provenance] vendor` demand checks.
    #[arg(long, value_name = "NAME")]
    pub vendor: Option<String>,
}

/// The WIT algorithm the trust files publish the key of: `policy`'s `wit_alg` (the issuer
/// signs WITs under it), else `flag`, else ES384; `flag` contradicting the policy is an error
/// naming both.
fn wit_alg(flag: Option<Alg>, policy: Option<&Path>) -> Result<Alg> {
    let Some(path) = policy else { return Ok(flag.unwrap_or_default()) };
    let text =
        fs::read_to_string(path).with_context(|| format!("--issuer-policy {}: cannot read it", path.display()))?;
    let file: twi_issuer::policy::PolicyFile = toml::from_str(&text)
        .with_context(|| format!("--issuer-policy {}: not an appraisal policy", path.display()))?;
    match flag {
        Some(alg) if alg != file.wit_alg => anyhow::bail!(
            "--wit-alg {} contradicts {}, whose wit_alg is {:?} (the issuer signs WITs with that): drop --wit-alg, or change one to match the other",
            alg.name(),
            path.display(),
            file.wit_alg.name()
        ),
        _ => Ok(file.wit_alg),
    }
}

pub fn execute(state: &Path, args: &BuildArgs) -> Result<()> {
    let wit_alg = wit_alg(args.wit_alg, args.issuer_policy.as_deref())?;
    let mut params = args.launch.params()?;
    if args.no_svsm_caa {
        params.calling_area = image::CallingArea::Omitted;
    }
    let ca = open_ca(state, &args.identity)?;
    // The key first: a bad one fails before minutes of compiling.
    let corim = args.corim.settings(args.workload.vendor.as_deref())?;
    let how = Build { params: &params, diagnostic: args.diagnostic.into(), corim: &corim };
    build(&args.out, args.runtime_elf.as_deref(), &Anchor::of(&ca), &how, &args.workload)?;
    write_trust(&args.out, state, &ca, wit_alg)
}

/// What a relying party trusts, beside the image: the CA certificates chain to
/// (`issuer-ca.pem`), the key WITs verify under (`issuer-jwks.json`), and both as the trust
/// domain's SPIFFE bundle (`trust-bundle.json`), with the WIT key of `wit_alg`.
fn write_trust(out: &Path, state: &Path, issuer_ca: &twi_issuer::IssuerCa, wit_alg: Alg) -> Result<()> {
    let dir = super::issuer::issuer_dir(state);
    let jwks = twi_issuer::wit_jwks(&dir, wit_alg).context("the issuer's WIT key")?;
    let bundle = twi_issuer::bundle::state_bundle(&dir, issuer_ca, wit_alg).context("the issuer's SPIFFE bundle")?;
    let (ca, keys, spiffe) = (out.join("issuer-ca.pem"), out.join("issuer-jwks.json"), out.join("trust-bundle.json"));
    fs::write(&ca, issuer_ca.certificate_pem()).with_context(|| format!("cannot write {}", ca.display()))?;
    fs::write(&keys, serde_json::to_vec_pretty(&jwks)?).with_context(|| format!("cannot write {}", keys.display()))?;
    fs::write(&spiffe, serde_json::to_vec_pretty(&bundle)?)
        .with_context(|| format!("cannot write {}", spiffe.display()))?;
    eprintln!("twi: wrote {}, {} and {} (for relying parties)", ca.display(), keys.display(), spiffe.display());
    Ok(())
}

/// The runtime ELF to package and what is known of its composition: `runtime_elf` as given
/// (its crates from the SBOM beside it, if any), the runtime with `workload`'s payload, or the
/// runtime with its default workload.
fn choose_elf(runtime_elf: Option<&Path>, workload: &Workload) -> Result<(PathBuf, Composition)> {
    if let Some(path) = runtime_elf {
        return Ok((path.to_path_buf(), Composition::Prebuilt));
    }
    let started = std::time::Instant::now();
    let (elf, composition) = match &workload.payload {
        Some(dir) => {
            let (elf, wrapper) = payload::build_payload_elf(dir)?;
            (elf, Composition::Crate { name: payload::package_name(dir)?, dir: wrapper })
        }
        None => {
            eprintln!(
                "twi: building the runtime (cargo build -p twi-runtime --target x86_64-unknown-none --release; the first build takes a few minutes)"
            );
            let root = image::workspace_root()?;
            (image::build_runtime_elf()?, Composition::Crate { name: "twi-runtime".into(), dir: root.join("runtime") })
        }
    };
    eprintln!("twi: built the runtime in {} s: {}", started.elapsed().as_secs(), elf.display());
    Ok((elf, composition))
}

/// Where the crates in an ELF come from, for its SBOM.
enum Composition {
    /// Compiled here from the crate in `dir` (its Cargo.lock: `dir`'s or the workspace's).
    Crate { name: String, dir: PathBuf },
    /// `--runtime-elf`: the SBOM of its build beside it says, if present.
    Prebuilt,
}

/// The SBOM of `elf` and the attachments, written to OUT/sbom.cdx.json; their digests go into
/// `manifest`. Returns the SBOM's digest.
fn sbom(
    out: &Path,
    manifest: &mut LaunchManifest,
    elf_path: &Path,
    elf: &[u8],
    how: &Composition,
    attachments: &[(String, Vec<u8>)],
    vendor: Option<&str>,
) -> Result<String> {
    let (workload, crates, toolchain) = match how {
        Composition::Crate { name, dir } => {
            let lock =
                [dir.join("Cargo.lock"), image::workspace_root()?.join("Cargo.lock")].into_iter().find(|p| p.exists());
            let lock = lock.ok_or_else(|| anyhow::anyhow!("no Cargo.lock for {}", dir.display()))?;
            (name.clone(), Some(sbom::crates_of(&dir.join("Cargo.toml"), &lock)?), sbom::toolchain(dir))
        }
        Composition::Prebuilt => match sbom::beside(elf_path, elf) {
            Some((workload, crates, toolchain)) => (workload, Some(crates), toolchain),
            None => ("twi-runtime".to_string(), None, None),
        },
    };
    let inputs = sbom::Inputs { workload: &workload, elf, crates, toolchain, attachments, vendor };
    let document = sbom::document(&inputs)?;
    let digest = sbom::digest(&document);
    manifest.set(sbom::MANIFEST_KEY, digest.clone().into_bytes());
    for (name, bytes) in attachments {
        manifest.set(&format!("{}{name}", sbom::ATTACH_PREFIX), sbom::digest(bytes).into_bytes());
    }
    manifest.to_slot().map_err(|_| {
        anyhow::anyhow!(
            "the launch manifest with the SBOM's and attachments' digests exceeds its slot: attach fewer files"
        )
    })?;
    let path = out.join(sbom::FILE_NAME);
    fs::write(&path, &document).with_context(|| format!("cannot write {}", path.display()))?;
    // Kept beside the SBOM: `twi policy add-image` stores them for the issuer's vendor check.
    let attached_dir = out.join(sbom::ATTACHED_DIR);
    if !attachments.is_empty() {
        fs::create_dir_all(&attached_dir).with_context(|| format!("cannot create {}", attached_dir.display()))?;
    }
    for (name, bytes) in attachments {
        let file = attached_dir.join(name);
        fs::write(&file, bytes).with_context(|| format!("cannot write {}", file.display()))?;
    }
    eprintln!("twi: wrote {} ({digest}; {} attached)", path.display(), attachments.len());
    Ok(digest)
}

/// The `--attach` files: each file's name (letters, digits, '-', '_', '.') and contents.
fn attachments(paths: &[PathBuf]) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for path in paths {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
            anyhow::bail!("--attach {}: name the file with letters, digits, '-', '_' and '.'", path.display());
        }
        if out.iter().any(|(n, _)| *n == name) {
            anyhow::bail!("--attach {}: another attached file is also named {name}", path.display());
        }
        let bytes = fs::read(path).with_context(|| format!("--attach {}: cannot read it", path.display()))?;
        out.push((name, bytes));
    }
    Ok(out)
}

/// How to build an image: its launch parameters, the diagnostic it runs (or none), and what to
/// do with its CoRIM.
#[derive(Debug)]
pub struct Build<'a> {
    pub params: &'a image::ImageParams,
    pub diagnostic: Diagnostic,
    pub corim: &'a corim::CorimSettings,
}

/// Builds DIR/twi.rom, DIR/twi.igvm, DIR/reference-values.json and
/// DIR/reference-values.corim, and returns the ROM's path.
pub fn build(
    out: &Path,
    runtime_elf: Option<&Path>,
    anchor: &Anchor,
    how: &Build<'_>,
    workload: &Workload,
) -> Result<PathBuf> {
    let params = how.params;
    // Settings first: a bad one fails before minutes of compiling.
    let mut manifest = anchor.manifest(how.diagnostic);
    payload::apply_settings(&mut manifest, &workload.settings)?;
    fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    // Read once, before minutes of compiling: a missing or misnamed file fails here.
    let attached = attachments(&workload.attach)?;
    let (elf_path, composition) = choose_elf(runtime_elf, workload)?;
    let elf = fs::read(&elf_path).with_context(|| format!("cannot read {}", elf_path.display()))?;
    let sbom_digest = sbom(out, &mut manifest, &elf_path, &elf, &composition, &attached, workload.vendor.as_deref())?;
    let mut images = image::build_images(&elf, &manifest, params, how.corim)?;
    images.reference_values["sbom"] = serde_json::json!({ "file": sbom::FILE_NAME, "digest": sbom_digest });
    images.reference_values["snp"]["svsm_calling_area"] = (params.calling_area == image::CallingArea::Declared).into();
    let rom_path = out.join("twi.rom");
    let write = |name: &str, bytes: &[u8]| {
        let path = out.join(name);
        fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
    };
    write("twi.rom", &images.rom)?;
    write("twi.igvm", &images.igvm)?;
    let mut reference = serde_json::to_vec_pretty(&images.reference_values)?;
    reference.push(b'\n');
    write(measure::reference::FILE_NAME, &reference)?;
    write(corim::FILE_NAME, &images.corim)?;
    // Kept beside the ROM: `twi run` times accelerators with a self-test image of the same code.
    let kept = out.join("twi-runtime.elf");
    if elf_path != kept {
        fs::copy(&elf_path, &kept).with_context(|| format!("cannot write {}", kept.display()))?;
    }
    let values = &images.reference_values;
    eprintln!(
        "twi: wrote {} ({} KiB, sha384 {})",
        rom_path.display(),
        images.rom.len() / 1024,
        image::rom_sha384(&images.rom)
    );
    if params.calling_area == image::CallingArea::Omitted {
        eprintln!("twi: the ROM declares no SVSM calling area (--no-svsm-caa): no SVSM can boot it");
    }
    let with = if how.corim.igvm { ", with its SEV-SNP CoRIM" } else { "" };
    eprintln!("twi: wrote {} ({} KiB{with})", out.join("twi.igvm").display(), images.igvm.len() / 1024);
    let corim_path = out.join(corim::FILE_NAME);
    match &how.corim.key {
        Some(_) => eprintln!("twi: wrote {} (signed, ES384)", corim_path.display()),
        None => eprintln!(
            "twi: wrote {} UNSIGNED: an issuer policy refuses it as reference values; pass --corim-key KEY.pem to sign it",
            corim_path.display()
        ),
    }
    eprintln!(
        "twi: SEV-SNP launch digest {} ({} x {}, host profile {}), TDX MRTD {}",
        values["snp"]["launch_digest"].as_str().unwrap_or("?"),
        params.vcpus,
        params.cpu_type,
        values["snp"]["host_profile"].as_str().unwrap_or("?"),
        values["tdx"]["mrtd"].as_str().unwrap_or("?")
    );
    for p in values["snp"]["host_profiles"].as_array().into_iter().flatten().skip(1) {
        if p["requested"].as_bool() == Some(true) {
            let (digest, name) = (p["launch_digest"].as_str().unwrap_or("?"), p["profile"].as_str().unwrap_or("?"));
            eprintln!("twi: SEV-SNP launch digest {digest} (host profile {name})");
        }
    }
    Ok(rom_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--wit-alg` takes the algorithms an issuer policy's `wit_alg` does, spelt as JWS does,
    /// and names them when given another.
    #[test]
    fn wit_alg_follows_the_issuer_policy_and_refuses_a_contradiction() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let head = "version = \"1\"\ntrust_domain = \"example.org\"\n";
        let es256 = write("es256.toml", &format!("{head}wit_alg = \"ES256\"\n"));
        let default = write("default.toml", head);
        assert_eq!(wit_alg(None, None).unwrap(), Alg::Es384);
        assert_eq!(wit_alg(Some(Alg::Es256), None).unwrap(), Alg::Es256);
        assert_eq!(wit_alg(None, Some(&es256)).unwrap(), Alg::Es256);
        assert_eq!(wit_alg(Some(Alg::Es256), Some(&es256)).unwrap(), Alg::Es256);
        assert_eq!(wit_alg(None, Some(&default)).unwrap(), Alg::Es384);
        let error = wit_alg(Some(Alg::Es384), Some(&es256)).unwrap_err().to_string();
        assert!(
            error.contains("--wit-alg ES384 contradicts") && error.contains("whose wit_alg is \"ES256\""),
            "{error}"
        );
        let error = wit_alg(Some(Alg::Es256), Some(&default)).unwrap_err().to_string();
        assert!(error.contains("--wit-alg ES256 contradicts") && error.contains("\"ES384\""), "{error}");
        let bad = write("bad.toml", &format!("{head}wit_alg = \"RS256\"\n"));
        let error = format!("{:#}", wit_alg(None, Some(&bad)).unwrap_err());
        assert!(error.contains("not an appraisal policy") && error.contains("RS256"), "{error}");
        let missing = dir.path().join("missing.toml");
        assert!(wit_alg(None, Some(&missing)).unwrap_err().to_string().contains("cannot read it"));
    }

    #[test]
    fn wit_alg_takes_es256_and_es384_only() {
        assert_eq!(parse_wit_alg("ES256"), Ok(Alg::Es256));
        assert_eq!(parse_wit_alg("ES384"), Ok(Alg::Es384));
        for bad in ["ES512", "es256", ""] {
            let error = parse_wit_alg(bad).unwrap_err();
            assert!(error.contains("the accepted values are \"ES256\", \"ES384\""), "{error}");
        }
    }
}
