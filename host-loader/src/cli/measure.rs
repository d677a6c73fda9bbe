//! `twi measure`: the launch measurement of an image, as the hardware will report it — the
//! SEV-SNP launch digest (SEV-SNP Firmware ABI, SNP_LAUNCH_UPDATE page info chain) of a ROM or
//! an IGVM file, or the TDX MRTD (TDX Module ABI, TDH.MEM.PAGE.ADD / TDH.MR.EXTEND) of a ROM.
//! A ROM's SEV-SNP digest depends on the host stack: `--host-profile P[,P...]` gives one per
//! profile ([`measure::host_profile`]).

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};

use super::args::{LaunchArgs, parse_u64};
use crate::image::ImageKind;
use crate::{igvm, measure};

#[derive(Args, Debug)]
pub struct MeasureArgs {
    /// twi.rom (or any OVMF-style firmware image), or twi.igvm for --platform snp.
    image: PathBuf,
    /// Which measurement: the SEV-SNP launch digest or the TDX MRTD.
    #[arg(long, value_enum)]
    platform: MeasurePlatform,
    #[command(flatten)]
    launch: LaunchArgs,
    /// Print JSON (digest and the parameters it was computed for) instead of hex.
    #[arg(long)]
    json: bool,
    /// TDX: the TD's XFAM; with it, --json adds the TEE info hash (SHA-384 of TDINFO_STRUCT,
    /// td-shim's tee-info-hash) for these launch choices.
    #[arg(long, value_parser = parse_u64)]
    xfam: Option<u64>,
    /// TDX: the TD's ATTRIBUTES (0x10000000 = SEPT_VE_DISABLE).
    #[arg(long, value_parser = parse_u64, default_value = "0x10000000")]
    td_attributes: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum MeasurePlatform {
    /// The SEV-SNP launch digest (MEASUREMENT).
    Snp,
    /// The TDX MRTD (QEMU/KVM page order).
    Tdx,
}

/// One digest, hex or JSON, on stdout; SEV-SNP of a ROM: one per host profile asked for.
pub fn execute(args: &MeasureArgs) -> Result<()> {
    let bytes = std::fs::read(&args.image).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.image.display()))?;
    let params = args.launch.params()?;
    let is_igvm = ImageKind::of(&bytes) == ImageKind::Igvm;
    if args.platform == MeasurePlatform::Snp && !is_igvm {
        return snp_rom(args, &params, &bytes);
    }
    let digest = match (args.platform, is_igvm) {
        (MeasurePlatform::Snp, _) => {
            if args.launch.vcpus != 1 || args.launch.vcpu_type != measure::cpu::DEFAULT_CPU_TYPE {
                eprintln!("twi: note: an IGVM file carries its own VMSAs; --vcpus and --vcpu-type do not apply");
            }
            if params.host_profiles != [measure::host_profile::DEFAULT] || params.guest_features.is_some() {
                eprintln!(
                    "twi: note: an IGVM file carries its own VMSAs (launched on KVM_SEV_INIT2 hosts only); --host-profile and --guest-features do not apply"
                );
            }
            igvm::snp_launch_digest(&igvm::parse(&bytes)?)?
        }
        (MeasurePlatform::Tdx, false) => measure::tdx::mrtd(&bytes, measure::tdx::MrtdOrder::Kvm)?,
        (MeasurePlatform::Tdx, true) => bail!("an IGVM file has no TDX platform here: measure twi.rom for TDX"),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json(args, &digest, is_igvm))?);
    } else {
        println!("{}", hex::encode(digest));
    }
    Ok(())
}

/// The SEV-SNP launch digest of a ROM on each host profile asked for: hex (one profile), or
/// `<hex> <profile>` lines, or JSON.
fn snp_rom(args: &MeasureArgs, params: &crate::image::ImageParams, rom: &[u8]) -> Result<()> {
    let digests = params.profile_digests(rom)?;
    let asked: Vec<_> = digests.iter().filter(|d| d.requested).collect();
    if args.json {
        let first = asked.first().ok_or_else(|| anyhow::anyhow!("no host profile to measure for"))?;
        let value = serde_json::json!({
            "platform": "snp",
            "image": args.image.display().to_string(),
            "image_kind": "rom",
            "launch_digest": hex::encode(first.digest),
            "host_profile": first.profile.name,
            "host_profiles": asked.iter().map(|d| d.to_json()).collect::<Vec<_>>(),
            "vcpus": params.vcpus,
            "vcpu_type": params.cpu_type.name,
            "vcpu_sig": format!("{:#x}", params.cpu_type.sig()),
            "guest_features": format!("{:#x}", first.guest_features),
            "policy": format!("{:#x}", params.policy),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else if let [one] = asked.as_slice() {
        println!("{}", hex::encode(one.digest));
    } else {
        for d in asked {
            println!("{} {}", hex::encode(d.digest), d.profile.name);
        }
    }
    Ok(())
}

fn json(args: &MeasureArgs, digest: &[u8; 48], is_igvm: bool) -> serde_json::Value {
    let image = args.image.display().to_string();
    let kind = if is_igvm { "igvm" } else { "rom" };
    match args.platform {
        MeasurePlatform::Snp => serde_json::json!({
            "platform": "snp",
            "image": image,
            "image_kind": kind,
            "launch_digest": hex::encode(digest),
            "note": "the IGVM file's own VMSAs and policy apply",
        }),
        MeasurePlatform::Tdx => tdx_json(args, &image, kind, digest),
    }
}

fn tdx_json(args: &MeasureArgs, image: &str, kind: &str, digest: &[u8; 48]) -> serde_json::Value {
    let mut value = serde_json::json!({
        "platform": "tdx",
        "image": image,
        "image_kind": kind,
        "mrtd": hex::encode(digest),
        "mrtd_order": measure::tdx::MrtdOrder::Kvm.name(),
    });
    if let Some(xfam) = args.xfam {
        let inputs = measure::tdx::TdInfoInputs { attributes: args.td_attributes, xfam, ..Default::default() };
        value["tee_info_hash"] = hex::encode(measure::tdx::tee_info_hash(digest, &inputs)).into();
        value["td_attributes"] = format!("{:#x}", inputs.attributes).into();
        value["xfam"] = format!("{:#x}", inputs.xfam).into();
        value["tee_info_hash_note"] =
            "SHA-384 of TDINFO_STRUCT with zero MRCONFIGID/MROWNER/MROWNERCONFIG and RTMRs".into();
    }
    value
}
