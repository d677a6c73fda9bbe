//! The image a run boots: the one given (checked to be the file type the platform loads, and
//! to trust this run's issuer, before anything starts) or one built now for this issuer, and
//! the launch measurements the (simulated) hardware will report for it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use twi_proto::manifest::Diagnostic;

use super::args::RunArgs;
use crate::bridge::tamper::Tamper;
use crate::cli::args::PlatformArg;
use crate::cli::build::{Build, build};
use crate::cli::issuer::Anchor;
use crate::corim::CorimSettings;
use crate::image::{ImageKind, ImageParams, read_image, read_manifest};
use crate::vm::Transport;
use crate::{igvm, measure, qemu};

/// The SEV-SNP launch the run's profiles use: the build's defaults (1 x EPYC-v4, 0x30000).
pub fn default_snp_profile() -> qemu::SnpProfile {
    let defaults = ImageParams::default();
    qemu::SnpProfile { vcpus: defaults.vcpus, cpu_type: defaults.cpu_type.name.to_string(), policy: defaults.policy }
}

/// The files of the image a run boots.
#[derive(Debug)]
pub struct Image {
    /// The ROM (`twi.rom`), or for `--platform igvm --image FILE` the IGVM file given.
    pub rom: PathBuf,
    /// What QEMU loads: the ROM, or for `--platform igvm` the IGVM file.
    pub launch: PathBuf,
    /// The bytes QEMU loads.
    bytes: Vec<u8>,
}

/// What the (simulated) hardware will measure.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The SEV-SNP launch digest (of the ROM, or of the IGVM file).
    pub snp: [u8; 48],
    /// The TDX MRTD, for a TD.
    pub mrtd: Option<[u8; 48]>,
    /// The measurement the evidence will carry (the policy decides the challenge from it).
    pub measurement: Vec<u8>,
    /// `--platform snp`: the ROM's digest on the other host profiles (not admitted; the
    /// development policy lists them so a refusal names the host's profile).
    pub other_host_profiles: Vec<(&'static str, [u8; 48])>,
    /// The SBOM digest the image's launch manifest carries (`twi build` measures it in), if any.
    pub sbom: Option<twi_issuer::policy::SbomDigest>,
}

impl Image {
    /// The image of `--image`, or one built into `--out` for this run's issuer (`anchor`,
    /// from `origin`; `advice` says what to do with an image built for another).
    pub fn resolve(args: &RunArgs, anchor: &Anchor, origin: &str, advice: &str) -> Result<Self> {
        let (rom, built) = match &args.image {
            Some(path) => (path.clone(), false),
            None => {
                let (params, corim) = (ImageParams::default(), CorimSettings::default());
                let how = Build { params: &params, diagnostic: Diagnostic::None, corim: &corim };
                (build(&args.out, None, anchor, &how, &Default::default())?, true)
            }
        };
        let launch = match (args.platform, built) {
            (PlatformArg::Igvm, true) => rom.with_file_name("twi.igvm"),
            _ => rom.clone(),
        };
        let (kind, option) = match args.platform {
            PlatformArg::Igvm => (ImageKind::Igvm, "--platform igvm"),
            _ => (ImageKind::Rom, "--platform sim|sim-tdx|sim-svsm|snp|tdx"),
        };
        let bytes = read_image(&launch, kind, option)?;
        if args.platform == PlatformArg::SimSvsm {
            check_calling_area(&bytes).with_context(|| format!("{} under --platform sim-svsm", launch.display()))?;
        }
        let image = Self { rom, launch, bytes };
        // An IGVM file's manifest is inside its page data; hardware launches of it are checked
        // by the guest alone.
        if kind == ImageKind::Rom && args.tamper != Some(Tamper::SkipAnchorCheck) {
            let manifest = read_manifest(&image.bytes).with_context(|| format!("reading {}", image.rom.display()))?;
            anchor.check_image(&image.rom, &manifest, origin, advice)?;
        }
        Ok(image)
    }

    /// The sim profiles' command line, with placeholders for the per-run files.
    pub fn sim_qemu_args(&self, platform: PlatformArg, memory: qemu::MemorySize, transport: Transport) -> Vec<String> {
        let channel = Path::new("CHANNEL.sock");
        let ram =
            qemu::GuestRam { size: memory, ring_file: (transport == Transport::Ring).then(|| "GUEST-RAM.bin".into()) };
        if platform == PlatformArg::SimTdx {
            qemu::sim_tdx_args(qemu::Accel::Tcg, &self.rom, channel, &ram, Path::new("SIM-TD-PAGE.bin"))
        } else {
            qemu::sim_args(qemu::Accel::Tcg, &self.rom, channel, &ram, Some(Path::new("SECRETS-PAGE.bin")))
        }
    }

    /// The launch measurements of the bytes QEMU will load.
    pub fn measure(&self, platform: PlatformArg) -> Result<Measured> {
        let snp = if platform == PlatformArg::Igvm {
            let file = igvm::parse(&self.bytes).context("reading the IGVM file")?;
            igvm::snp_launch_digest(&file).context("computing the IGVM launch digest")?
        } else {
            measure::snp::launch_digest(&self.bytes, &measure::snp::SnpLaunchParams::default())
                .context("computing the simulated launch digest of the image")?
        };
        let mrtd = match platform {
            PlatformArg::Tdx | PlatformArg::SimTdx => Some(
                measure::tdx::mrtd(&self.bytes, measure::tdx::MrtdOrder::Kvm)
                    .context("computing the MRTD of the image")?,
            ),
            PlatformArg::Sim | PlatformArg::SimSvsm | PlatformArg::Snp | PlatformArg::Igvm => None,
        };
        let measurement = mrtd.map_or(snp.to_vec(), |m| m.to_vec());
        let mut other_host_profiles = Vec::new();
        if platform == PlatformArg::Snp {
            let launch = ImageParams::default();
            for profile in measure::host_profile::PROFILES.iter().filter(|p| **p != measure::host_profile::DEFAULT) {
                other_host_profiles.push((profile.name, launch.profile_digest(&self.bytes, profile, false)?.digest));
            }
        }
        let sbom = read_manifest(&self.bytes).ok().and_then(|manifest| crate::sbom::manifest_digest(&manifest));
        Ok(Measured { snp, mrtd, measurement, sbom, other_host_profiles })
    }
}

/// An SVSM boots only firmware that declares its calling area (SEV metadata section type 4:
/// COCONUT-SVSM `SvsmError::MissingCAA`, `kernel/src/platform/snp_fw.rs`), and the simulated
/// SVSM serves it at [`twi_linker::SVSM_CAA_PAGE`]: refuse a ROM without it before QEMU starts.
fn check_calling_area(rom: &[u8]) -> Result<()> {
    use twi_linker::sev::SectionType;
    let firmware = measure::firmware::Firmware::parse(rom).context("reading the ROM's metadata")?;
    let sections = firmware.sev_sections().context("reading the ROM's SEV metadata")?;
    let caa: Vec<_> = sections.iter().filter(|s| s.kind == SectionType::SvsmCaa).collect();
    match caa.as_slice() {
        [] => anyhow::bail!(
            "the ROM declares no SVSM calling area (SEV metadata section type 4), so no SVSM boots it: it was built with `twi build --no-svsm-caa`; build it without that option"
        ),
        [one] if u64::from(one.gpa) == twi_linker::SVSM_CAA_PAGE && one.size == 0x1000 => Ok(()),
        _ => anyhow::bail!(
            "the ROM's SVSM calling area is not the one page at {:#x} the simulated SVSM serves",
            twi_linker::SVSM_CAA_PAGE
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::CallingArea;

    /// A ROM of the runtime's shape: only its metadata area matters to the check.
    fn rom(caa: CallingArea) -> Vec<u8> {
        let mut rom = vec![0u8; twi_linker::ROM_SIZE];
        let at = (twi_linker::footer::AREA_ADDR - twi_linker::ROM_BASE) as usize;
        rom[at..at + twi_linker::footer::AREA_LEN].copy_from_slice(caa.area());
        rom
    }

    #[test]
    fn sim_svsm_refuses_a_rom_without_the_calling_area() {
        check_calling_area(&rom(CallingArea::Declared)).unwrap();
        let refusal = check_calling_area(&rom(CallingArea::Omitted)).unwrap_err().to_string();
        assert!(refusal.contains("--no-svsm-caa") && refusal.contains("type 4"), "{refusal}");
        // Garbage is a clear error, never a panic.
        assert!(check_calling_area(&[0u8; 4096]).is_err());
    }
}
