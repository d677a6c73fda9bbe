//! The launch itself: the accelerator, the guest's firmware and the issuer's roles behind the
//! bridge (each wrapped by the hostile-host decorator when a test asks for one), the run, and
//! what a successful run writes and prints.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use twi_proto::manifest::Diagnostic;
use twi_sim::svsm::SimSvsm;
use zeroize::Zeroizing;

use super::args::{EarFormat, RunArgs};
use super::image::{Image, Measured, default_snp_profile};
use super::roles::Side;
use crate::answers::Obtained;
use crate::artifacts::{ISSUER_CA, OutDir, SELF_TEST_ROM};
use crate::bridge::firmware::{SimSnp, SimSvsmFirmware, SimTd};
use crate::bridge::tamper::{Tamper, TamperedFirmware, TamperedRoles};
use crate::bridge::{self, Bridge, Conduit, Firmware, Roles, TamperedConduit};
use crate::cli::args::{MechanismArg, PlatformArg};
use crate::conduit::TcpConduit;
use crate::hardware::{Hardware, HardwareProfile};
use crate::run::{Launch, Machine};
use crate::{accel, image, qemu};

/// What [`super::execute`] resolved.
#[derive(Debug)]
pub struct Prepared {
    pub qemu: PathBuf,
    pub out: OutDir,
    pub side: Side,
    pub image: Image,
    pub measured: Measured,
    pub mechanism: Option<MechanismArg>,
}

pub fn launch(state: &Path, args: &RunArgs, prepared: Prepared) -> Result<()> {
    let Prepared { qemu, out, mut side, image, measured, mechanism } = prepared;
    let profile = hardware_profile(args.platform);
    let accel = match &profile {
        // A confidential VM runs only under KVM on its TEE host: nothing to measure.
        Some(_) => accel::Decision { accel: qemu::Accel::Kvm, reason: "a confidential VM runs only under KVM".into() },
        None => {
            let self_test = || self_test_rom(&image.rom, &side, &out);
            accel::decide(args.accel, &qemu, &self_test, state)?
        }
    };
    eprintln!("twi: accelerator {} ({})", accel.accel.name(), accel.reason);
    // Under --platform sim-svsm the guest runs at the SVSM's guest VMPL, with that level's VMPCK
    // and the SVSM's fields in its copy of the secrets page.
    let svsm = (args.platform == PlatformArg::SimSvsm).then(|| SimSvsm::new(args.memory.0));
    let sim_launch = side.psp.launch_at(svsm.as_ref().map_or(0, |s| s.info().guest_vmpl))?;
    let machine = match (&profile, args.platform) {
        (Some(profile), _) => Machine::Hardware(profile.clone()),
        (None, PlatformArg::SimTdx) => Machine::SimTdx { accel: accel.accel },
        (None, _) => {
            let mut page = sim_launch.secrets_page();
            if let Some(svsm) = &svsm {
                svsm.plant(&mut page);
            }
            Machine::SimSnp { accel: accel.accel, secrets_page: Zeroizing::new(page.to_vec()) }
        }
    };
    let run = Launch {
        qemu,
        machine,
        image: image.launch.clone(),
        out: out.clone(),
        timeout: Duration::from_secs(args.timeout),
        memory: args.memory,
        transport: args.transport(),
        tamper_ring: args.tamper_ring,
        channel_dump: args.channel_dump.clone(),
    };
    let config = bridge::Config {
        measurement: measured.measurement.clone(),
        mechanism: mechanism.map(Into::into),
        renew: args.renew.clone(),
    };
    let firmware: Box<dyn Firmware + '_> = match (profile, side.tdx.as_mut(), svsm) {
        (Some(profile), _, _) => Box::new(hardware(profile, args, &out)),
        (None, Some(tdx), _) => Box::new(SimTd { tdx }),
        (None, None, Some(svsm)) => {
            Box::new(SimSvsmFirmware { snp: SimSnp { psp: &side.psp, launch: sim_launch }, svsm })
        }
        (None, None, None) => Box::new(SimSnp { psp: &side.psp, launch: sim_launch }),
    };
    let roles: Box<dyn Roles + '_> = side.issuer.roles()?;
    let conduit: Box<dyn Conduit + '_> = match args.tamper {
        Some(Tamper::RelayByte(at)) => Box::new(TamperedConduit::new(TcpConduit::default(), at)),
        _ => Box::new(TcpConduit::default()),
    };
    let success = match args.tamper {
        Some(tamper) => crate::run::run(
            &run,
            Bridge::new(config, TamperedRoles::new(roles, tamper), TamperedFirmware::new(firmware, tamper))
                .with_conduit(conduit),
        ),
        None => crate::run::run(&run, Bridge::new(config, roles, firmware).with_conduit(conduit)),
    }?;
    out.write(crate::artifacts::TIMELINE, serde_json::to_vec_pretty(&success.timeline)?)?;
    let Some(issued) = &success.issued else {
        eprintln!(
            "twi: the workload exited successfully without acquiring a credential, in {} ms under {}",
            success.elapsed.as_millis(),
            accel.accel.name()
        );
        return Ok(());
    };
    report(issued, success.elapsed, &mut side, &out, accel.accel)?;
    if let Some(line) = &success.time_went {
        eprintln!("twi: where the time went ({}): {line}", crate::artifacts::TIMELINE);
    }
    attestation_result_forms(issued, &mut side, &out, args.ear_format)
}

fn hardware_profile(platform: PlatformArg) -> Option<HardwareProfile> {
    match platform {
        PlatformArg::Sim | PlatformArg::SimTdx | PlatformArg::SimSvsm => None,
        PlatformArg::Snp => Some(HardwareProfile::Snp(default_snp_profile())),
        PlatformArg::Igvm => Some(HardwareProfile::Igvm(default_snp_profile())),
        PlatformArg::Tdx => Some(HardwareProfile::Tdx),
    }
}

fn hardware(profile: HardwareProfile, args: &RunArgs, out: &OutDir) -> Hardware {
    Hardware {
        profile,
        vcek_cache: args.hardware.vcek_cache.clone(),
        kds: args.hardware.fetch.then(|| args.hardware.kds_url.clone()),
        pccs: args.hardware.pccs.clone(),
        collateral_dir: out.join("collateral"),
    }
}

/// `--accel auto` times a self-test image of the same runtime (`twi build` keeps its ELF
/// beside the ROM), anchored like the image.
fn self_test_rom(rom: &Path, side: &Side, out: &OutDir) -> Result<PathBuf> {
    let elf_path = rom.with_file_name("twi-runtime.elf");
    let elf = fs::read(&elf_path).with_context(|| {
        format!("--accel auto needs {} (written by `twi build`); or pass --accel tcg|kvm", elf_path.display())
    })?;
    let rom = image::assemble_rom(&elf, &side.anchor.manifest(Diagnostic::SelfTest))?;
    Ok(out.write(SELF_TEST_ROM, rom)?)
}

/// The attestation result in the serializations `format` asks for: the CWT is the Verifier's
/// re-signing of the JWT the run received.
fn attestation_result_forms(issued: &Obtained, side: &mut Side, out: &OutDir, format: EarFormat) -> Result<()> {
    let Some(jwt) = &issued.credential.attestation_result else { return Ok(()) };
    if format != EarFormat::Jwt {
        let cwt = side.issuer.ear_cwt(jwt)?;
        let path = out.write(crate::artifacts::ATTESTATION_RESULT_CWT, cwt)?;
        eprintln!("twi: wrote {} (the attestation result as a CWT)", path.display());
    }
    if format == EarFormat::Cwt {
        let jwt_path = out.join(crate::artifacts::ATTESTATION_RESULT);
        fs::remove_file(&jwt_path).with_context(|| format!("removing {}", jwt_path.display()))?;
    }
    Ok(())
}

/// Writes the credential and what comes with it, and says so; the workload id on stdout.
fn report(issued: &Obtained, elapsed: Duration, side: &mut Side, out: &OutDir, accel: qemu::Accel) -> Result<()> {
    let credential = &issued.credential;
    let written = out.credential(issued, side.issuer.jwks()?, side.issuer.trust_bundle()?)?;
    let admission = &credential.admission;
    eprintln!(
        "twi: admitted as {} by policy {} (reference \"{}\"); wrote {}",
        admission.workload_id,
        admission.policy_version,
        admission.reference,
        written.join(", ")
    );
    let ca_path = out.write(ISSUER_CA, side.issuer.ca_pem()?)?;
    eprintln!(
        "twi: wrote {} and {} in {} ms under {}",
        out.join(crate::artifacts::CREDENTIAL).display(),
        ca_path.display(),
        elapsed.as_millis(),
        accel.name()
    );
    println!("{}", credential.workload_id);
    Ok(())
}
