//! `twi run`: boot an image under QEMU and obtain a credential for its Credential Key. This
//! module resolves the options into a launch — the issuer's roles ([`roles`]), the image and
//! its measurements ([`image`]), the guest's firmware and the bridge ([`launch`]) — and hands
//! it to [`crate::run`].

mod args;
mod image;
mod launch;
mod roles;

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

pub use args::RunArgs;

use crate::artifacts::OutDir;
use crate::cli::args::{MechanismArg, PlatformArg};
use crate::qemu;

pub fn execute(state: &Path, args: RunArgs) -> Result<()> {
    let mechanism = checked_mechanism(&args)?;
    if args.print_qemu && args.platform.is_hardware() {
        return print_profile(&args);
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
    let image = image::Image::resolve(&args, &side.anchor, &side.origin, &side.rebuild_advice())?;
    if args.print_qemu {
        println!(
            "{}",
            qemu::command_line(&qemu_path, &image.sim_qemu_args(args.platform, args.memory, args.transport()))
        );
        return Ok(());
    }
    let Some(out) = out else { bail!("no output directory") };
    let measured = image.measure(args.platform)?;
    side.configure(state, &args, &measured)?;
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
/// image given or the one `twi build --out DIR` wrote (defaults: 1 x EPYC-v4, policy 0x30000);
/// with `--channel ring`, the guest's RAM in GUEST-RAM.bin, the file the loader makes per run.
fn print_profile(args: &RunArgs) -> Result<()> {
    let (platform, image, out) = (args.platform, args.image.as_deref(), args.out.as_path());
    let qemu_path = qemu::find_qemu().unwrap_or_else(|_| PathBuf::from(qemu::QEMU_BINARY));
    let channel = Path::new("CHANNEL.sock");
    let ring_file = (args.transport() == crate::vm::Transport::Ring).then(|| PathBuf::from("GUEST-RAM.bin"));
    let ram = &qemu::GuestRam { size: args.memory, ring_file };
    let profile = image::default_snp_profile();
    let rom = || image.map_or_else(|| out.join("twi.rom"), Path::to_path_buf);
    let args = match platform {
        PlatformArg::Sim | PlatformArg::SimTdx | PlatformArg::SimSvsm => {
            bail!("the sim profiles are printed by `twi run --platform sim|sim-tdx|sim-svsm --print-qemu` themselves")
        }
        PlatformArg::Snp => qemu::snp_args(&rom(), channel, &profile, ram),
        PlatformArg::Tdx => qemu::tdx_args(&rom(), channel, ram),
        PlatformArg::Igvm => {
            qemu::igvm_args(&image.map_or_else(|| out.join("twi.igvm"), Path::to_path_buf), channel, &profile, ram)
        }
    };
    println!("{}", qemu::command_line(&qemu_path, &args));
    Ok(())
}
