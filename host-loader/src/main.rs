//! `twi`: build TWI images, run them under QEMU, and obtain a credential.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use twi_issuer::{Issuer, IssuerConfig};
use twi_proto::manifest::{LaunchManifest, MANIFEST_FORMAT};

use twi_host::qemu::AccelChoice;
use twi_host::sim::snp::SimPsp;
use twi_host::{accel, image, qemu, run, sim};

#[derive(Parser, Debug)]
#[command(name = "twi", version, about = "Trustworthy Workload Identity for confidential VMs")]
struct Cli {
    /// Where the issuer's CA and the simulated TEE's keys live
    /// [default: $TWI_STATE_DIR, else $XDG_STATE_HOME/twi, else ~/.local/state/twi].
    #[arg(long, global = true, value_name = "DIR")]
    state: Option<PathBuf>,
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand, Debug)]
enum Commands {
    /// Build the bootable ROM (DIR/twi.rom) with the issuer's trust anchor in its manifest.
    Build {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Use this runtime ELF instead of compiling one.
        #[arg(long, value_name = "FILE")]
        runtime_elf: Option<PathBuf>,
        #[command(flatten)]
        identity: IdentityArgs,
    },
    /// Boot an image under QEMU and obtain a credential for its Credential Key.
    Run {
        /// The ROM to boot; built into DIR/twi.rom when absent.
        #[arg(long, value_name = "FILE")]
        image: Option<PathBuf>,
        #[arg(long, value_enum)]
        platform: PlatformArg,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        #[arg(long, value_enum, default_value = "auto")]
        accel: AccelChoice,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        /// Print the QEMU command line and exit.
        #[arg(long)]
        print_qemu: bool,
        #[command(flatten)]
        identity: IdentityArgs,
        /// Test hook: behave as a hostile host (`nonce`, `evidence-byte:OFFSET`).
        #[arg(long, hide = true)]
        tamper: Option<run::Tamper>,
    },
}

#[derive(clap::Args, Debug)]
struct IdentityArgs {
    /// The SPIFFE trust domain of issued credentials.
    #[arg(long, default_value = "example.org")]
    trust_domain: String,
    /// The workload name under the trust domain.
    #[arg(long, default_value = "demo")]
    workload: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PlatformArg {
    /// Plain QEMU with the simulated SEV-SNP firmware (development and tests).
    Sim,
    /// A real AMD SEV-SNP host.
    Snp,
    /// A real Intel TDX host.
    Tdx,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut message = e.to_string();
            for cause in e.chain().skip(1) {
                message.push_str(&format!(": {cause}"));
            }
            eprintln!("twi: error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn state_dir(explicit: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(dir) = explicit.or_else(|| std::env::var_os("TWI_STATE_DIR").map(PathBuf::from)) {
        return Ok(dir);
    }
    if let Some(xdg) = std::env::var_os("XDG_STATE_HOME") {
        return Ok(PathBuf::from(xdg).join("twi"));
    }
    let home = std::env::var_os("HOME").context("set --state, TWI_STATE_DIR or HOME")?;
    Ok(PathBuf::from(home).join(".local/state/twi"))
}

fn open_issuer(state: &Path, identity: &IdentityArgs, sim_root: Option<x509_cert::Certificate>) -> Result<Issuer> {
    let config = IssuerConfig {
        trust_domain: identity.trust_domain.clone(),
        workload: identity.workload.clone(),
        lifetime: Duration::from_secs(3600),
        sim_snp_root: sim_root,
    };
    Issuer::open(&state.join("issuer"), config).context("opening the issuer")
}

fn manifest_for(issuer: &Issuer, self_test_only: bool) -> LaunchManifest {
    LaunchManifest {
        format: MANIFEST_FORMAT,
        issuer_anchor: issuer.ca().public_key_sec1(),
        issuer_name: issuer.ca().subject().to_string(),
        self_test_only,
    }
}

/// Builds DIR/twi.rom and returns its path.
fn build(out: &Path, runtime_elf: Option<&Path>, issuer: &Issuer) -> Result<PathBuf> {
    fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let elf_path = match runtime_elf {
        Some(path) => path.to_path_buf(),
        None => {
            eprintln!("twi: building the runtime (cargo build -p twi-runtime --target x86_64-unknown-none --release)");
            image::build_runtime_elf()?
        }
    };
    let elf = fs::read(&elf_path).with_context(|| format!("cannot read {}", elf_path.display()))?;
    let rom = image::assemble_rom(&elf, &manifest_for(issuer, false))?;
    let rom_path = out.join("twi.rom");
    fs::write(&rom_path, &rom).with_context(|| format!("cannot write {}", rom_path.display()))?;
    // Kept beside the ROM: `twi run` times accelerators with a self-test image of the same code.
    fs::copy(&elf_path, out.join("twi-runtime.elf"))?;
    eprintln!("twi: wrote {} ({} KiB, sha384 {})", rom_path.display(), rom.len() / 1024, image::rom_sha384(&rom));
    Ok(rom_path)
}

fn execute(cli: Cli) -> Result<()> {
    let state = state_dir(cli.state)?;
    match cli.command {
        Commands::Build { out, runtime_elf, identity } => {
            let issuer = open_issuer(&state, &identity, None)?;
            build(&out, runtime_elf.as_deref(), &issuer)?;
            Ok(())
        }
        Commands::Run { image, platform, out, accel, timeout, print_qemu, identity, tamper } => {
            match platform {
                PlatformArg::Sim => {}
                PlatformArg::Snp => bail!(
                    "--platform snp is not implemented yet: it needs an SEV-SNP host and the runtime's SNP guest-request path (in progress); use --platform sim"
                ),
                PlatformArg::Tdx => bail!(
                    "--platform tdx is not implemented yet: it needs a TDX host and the runtime's TDX quote path (in progress); use --platform sim"
                ),
            }
            let qemu_path = qemu::find_qemu()?;
            fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
            // A credential from an earlier run must never pass for this run's.
            let credential_path = out.join("credential.pem");
            let _ = fs::remove_file(&credential_path);

            let mut psp =
                SimPsp::load_or_create(&state.join("sim-snp")).context("opening the simulated SEV-SNP firmware")?;
            let mut issuer = open_issuer(&state, &identity, Some(psp.root().clone()))?;
            let rom_path = match image {
                Some(path) => path,
                None => build(&out, None, &issuer)?,
            };
            if print_qemu {
                let args = qemu::sim_args(
                    qemu::Accel::Tcg,
                    &rom_path,
                    Path::new("CHANNEL.sock"),
                    Some(Path::new("SECRETS-PAGE.bin")),
                );
                println!("{}", qemu::command_line(&qemu_path, &args));
                return Ok(());
            }
            let rom = fs::read(&rom_path).with_context(|| format!("cannot read {}", rom_path.display()))?;
            psp.set_launch_digest(sim::snp::rom_launch_digest(&rom));

            let elf_for_probe = rom_path.with_file_name("twi-runtime.elf");
            let probe_issuer = &issuer;
            let self_test_rom = || -> Result<PathBuf> {
                let elf = fs::read(&elf_for_probe).with_context(|| {
                    format!(
                        "--accel auto needs {} (written by `twi build`); or pass --accel tcg|kvm",
                        elf_for_probe.display()
                    )
                })?;
                let rom = image::assemble_rom(&elf, &manifest_for(probe_issuer, true))?;
                let path = out.join("self-test.rom");
                fs::write(&path, rom)?;
                Ok(path)
            };
            let decision = accel::decide(accel, &qemu_path, &self_test_rom, &state)?;
            eprintln!("twi: accelerator {} ({})", decision.accel.name(), decision.reason);

            let success = run::run(run::Launch {
                qemu: qemu_path,
                accel: decision.accel,
                rom: rom_path,
                out: out.clone(),
                timeout: Duration::from_secs(timeout),
                issuer: &mut issuer,
                psp: &psp,
                sim: psp.launch()?,
                tamper,
            })?;
            fs::write(&credential_path, &success.issued.certificate_pem)?;
            let ca_path = out.join("issuer-ca.pem");
            fs::write(&ca_path, issuer.ca().certificate_pem())?;
            eprintln!(
                "twi: wrote {} and {} in {} ms under {}",
                credential_path.display(),
                ca_path.display(),
                success.elapsed.as_millis(),
                decision.accel.name()
            );
            println!("{}", success.issued.workload_id);
            Ok(())
        }
    }
}
