//! `twi run`: boot an image under QEMU and obtain a credential for its Credential Key. This
//! module resolves the options into a launch — the issuer's roles ([`roles`]), the image and
//! its measurements ([`image`]), the guest's firmware and the bridge ([`launch`]) — and hands
//! it to [`crate::run`].

mod image;
mod launch;
mod roles;

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Args;

use super::args::{HardwareArgs, IdentityArgs, MechanismArg, PlatformArg};
use crate::artifacts::OutDir;
use crate::bridge::tamper::Tamper;
use crate::qemu::{self, AccelChoice};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The ROM to boot (for --platform igvm: the IGVM file); built into OUT/twi.rom (and
    /// OUT/twi.igvm) when absent.
    #[arg(long, value_name = "FILE")]
    image: Option<PathBuf>,
    /// Where the guest runs: under QEMU with a simulated TEE (sim, sim-tdx), or as a
    /// confidential VM on a real SEV-SNP or TDX host (snp, igvm, tdx).
    #[arg(long, value_enum)]
    platform: PlatformArg,
    /// The directory for what the run writes: credential.pem, issuer-ca.pem, console.log,
    /// evidence.* and, under a policy, the WIT, the attestation result and the provenance
    /// proofs (an earlier run's files there are removed first).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// QEMU's accelerator for the simulated platforms: auto measures which is faster here.
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
    /// Test hook: behave as a hostile host (`nonce`, `evidence-byte:OFFSET`, ...).
    #[arg(long, hide = true)]
    tamper: Option<Tamper>,
    /// The appraisal policy (TOML; see issuer/policy.example.toml, and `twi policy add-image`
    /// to admit an image): the credential's identity and claims come from the workload it
    /// admits. Without it, a development policy is made on the fly that admits exactly the
    /// image booted, as --workload.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// The policy key's public half (PEM): checks FILE.sig, needed for CF_L0 claims.
    #[arg(long, value_name = "PEM", requires = "policy")]
    policy_key: Option<PathBuf>,
    /// Credential acquisition mechanism (default: the policy's choice for the workload).
    #[arg(long, value_enum)]
    mechanism: Option<MechanismArg>,
    /// Use the Verifier, Credential Authority and Key Store of `twi serve` at this URL
    /// (http://HOST:PORT) instead of the embedded issuer; the image must embed that
    /// issuer's CA (built without --image, it does).
    #[arg(long, value_name = "URL", conflicts_with_all = ["policy", "policy_key"])]
    issuer_url: Option<String>,
    #[command(flatten)]
    hardware: HardwareArgs,
    /// Renew the credential with this X.509 serial (hex) or WIT jti, issued by this issuer:
    /// refused unless the launch keeps what the policy's stickiness binds (CS_L1 the TCB,
    /// CS_L2 the declared claims, CS_L3 the chip). Mechanism c.
    #[arg(long, value_name = "SERIAL", conflicts_with = "issuer_url")]
    renew: Option<String>,
    /// The simulated TEE's machine: its chip identity and keys (default STATE/sim-snp).
    /// Another directory is another simulated chip.
    #[arg(long, value_name = "DIR")]
    sim_chip: Option<PathBuf>,
    /// --platform sim-tdx: the quote format of the simulated quoting enclave: 4, 5 (TD 1.0
    /// body) or 5-td15 (TDX 1.5 module: TDREPORT v1, TD 1.5 body).
    #[arg(long, value_name = "FORMAT", default_value = "4")]
    tdx_quote: twi_sim::tdx::QuoteFormat,
}

pub fn execute(state: &Path, args: RunArgs) -> Result<()> {
    let mechanism = checked_mechanism(&args)?;
    if args.print_qemu && args.platform.is_hardware() {
        return print_profile(args.platform, args.image.as_deref(), &args.out);
    }
    check_platform(&args)?;
    let qemu_path = qemu::find_qemu()?;
    let out = if args.print_qemu {
        std::fs::create_dir_all(&args.out)?;
        None
    } else {
        Some(OutDir::prepare(&args.out)?)
    };
    let mut side = roles::Side::open(state, &args)?;
    let image = image::Image::resolve(&args, &side)?;
    if args.print_qemu {
        println!("{}", qemu::command_line(&qemu_path, &image.sim_qemu_args(args.platform)));
        return Ok(());
    }
    let Some(out) = out else { bail!("no output directory") };
    let measured = image.measure(args.platform)?;
    side.configure(&args, &measured)?;
    launch::launch(state, &args, launch::Prepared { qemu: qemu_path, out, side, image, measured, mechanism })
}

/// The mechanism option after the checks that need no state: a renewal is a Credential
/// Authority request (mechanism c), whatever the workload's usual mechanism.
fn checked_mechanism(args: &RunArgs) -> Result<Option<MechanismArg>> {
    if args.renew.is_some() && args.mechanism.is_some_and(|m| m != MechanismArg::C) {
        bail!("--renew runs under mechanism c (evidence to the Credential Authority)");
    }
    Ok(if args.renew.is_some() { Some(MechanismArg::C) } else { args.mechanism })
}

/// What the platform needs that the options must say before anything is built.
fn check_platform(args: &RunArgs) -> Result<()> {
    if args.platform.is_hardware() && args.issuer_url.is_some() {
        bail!(
            "--issuer-url runs only the simulated platforms yet: the service's hardware roots are its own configuration"
        );
    }
    if args.platform == PlatformArg::Tdx && args.hardware.collateral.is_none() && args.hardware.pccs.is_none() {
        bail!(
            "--platform tdx: the issuer judges the quote's TCB against Intel's collateral: pass --collateral PATH or --pccs URL"
        );
    }
    Ok(())
}

/// `twi run --platform snp|tdx|igvm --print-qemu`: the launch profile's command line, for the
/// image given or the one `twi build --out DIR` wrote (defaults: 1 x EPYC-v4, policy 0x30000).
fn print_profile(platform: PlatformArg, image: Option<&Path>, out: &Path) -> Result<()> {
    let qemu_path = qemu::find_qemu().unwrap_or_else(|_| PathBuf::from(qemu::QEMU_BINARY));
    let channel = Path::new("CHANNEL.sock");
    let profile = image::default_snp_profile();
    let rom = || image.map_or_else(|| out.join("twi.rom"), Path::to_path_buf);
    let args = match platform {
        PlatformArg::Sim | PlatformArg::SimTdx => {
            bail!("the sim profiles are printed by `twi run --platform sim|sim-tdx --print-qemu` themselves")
        }
        PlatformArg::Snp => qemu::snp_args(&rom(), channel, &profile),
        PlatformArg::Tdx => qemu::tdx_args(&rom(), channel),
        PlatformArg::Igvm => {
            qemu::igvm_args(&image.map_or_else(|| out.join("twi.igvm"), Path::to_path_buf), channel, &profile)
        }
    };
    println!("{}", qemu::command_line(&qemu_path, &args));
    Ok(())
}
