//! `reference-values.json`: what `twi build` tells a verifier to expect from a launch of the
//! images it wrote, and from what it built them. The issuer's appraisal policy admits an image
//! by these values.
//!
//! Keys are sorted (serde_json's map) and no timestamp is written, so two builds of the same
//! inputs give the same file.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use super::cpu::CpuType;
use super::host_profile::HostProfile;
use super::sha384;
use super::snp::SnpLaunchParams;
use super::tdx::MrtdOrder;
use super::vmsa::VmmType;

/// The file's format identifier.
pub const FORMAT: &str = "twi-reference-values/1";
/// The file's name in the build directory.
pub const FILE_NAME: &str = "reference-values.json";

/// The ROM's SEV-SNP launch digest on a host of one profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileDigest {
    pub profile: HostProfile,
    /// SEV_FEATURES measured (the profile's, or `--guest-features` for asked-for profiles).
    pub guest_features: u64,
    pub digest: [u8; 48],
    /// Asked for (`--host-profile`): its reference value admits launches; the others are
    /// listed so a policy can name them in a refusal.
    pub requested: bool,
}

impl ProfileDigest {
    /// The JSON of `snp.host_profiles[]`.
    pub fn to_json(&self) -> Value {
        json!({
            "profile": self.profile.name,
            "launch_digest": hex48(&self.digest),
            "requested": self.requested,
            "guest_features": format!("{:#x}", self.guest_features),
            "vmsa_fpu": self.profile.vmsa_fpu,
            "hosts": self.profile.hosts,
            "compatible_with": self.profile.sev_snp_measure,
        })
    }
}

/// Everything the file states.
#[derive(Debug, Clone)]
pub struct ReferenceValues<'a> {
    pub rom: &'a [u8],
    pub igvm: &'a [u8],
    pub runtime_elf: &'a [u8],
    pub snp: &'a SnpLaunchParams,
    pub cpu_type: CpuType,
    pub policy: u64,
    pub snp_launch_digest: [u8; 48],
    /// The ROM's launch digest on every host profile, the asked-for ones first.
    pub host_profiles: &'a [ProfileDigest],
    pub igvm_snp_launch_digest: [u8; 48],
    pub mrtd: [u8; 48],
    pub git: Option<GitState>,
}

/// The source tree's state, when it is a git checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitState {
    pub commit: String,
    /// Tracked files differ from the commit.
    pub dirty: bool,
}

impl GitState {
    /// The state of the checkout at `root`, `None` if it is not one (or git is missing).
    pub fn of(root: &Path) -> Option<Self> {
        let git = |args: &[&str]| {
            Command::new("git")
                .arg("-C")
                .arg(root)
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        };
        let commit = git(&["rev-parse", "HEAD"])?;
        let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_none_or(|s| !s.is_empty());
        Some(Self { commit, dirty })
    }
}

fn hex48(d: &[u8; 48]) -> String {
    hex::encode(d)
}

impl ReferenceValues<'_> {
    /// The JSON document.
    pub fn to_json(&self) -> Value {
        let vmm = match self.snp.vmm {
            VmmType::Qemu => "qemu",
            VmmType::Ec2 => "ec2",
            VmmType::Gce => "gce",
        };
        json!({
            "format": FORMAT,
            "images": {
                "rom": { "file": "twi.rom", "size": self.rom.len(), "sha384": hex::encode(sha384(self.rom)) },
                "igvm": { "file": "twi.igvm", "size": self.igvm.len(), "sha384": hex::encode(sha384(self.igvm)) },
            },
            "snp": {
                "launch_digest": hex48(&self.snp_launch_digest),
                "host_profile": self.host_profiles.first().map(|p| p.profile.name),
                "host_profiles": self.host_profiles.iter().map(ProfileDigest::to_json).collect::<Vec<_>>(),
                "host_profiles_note": "launch_digest is the first asked-for host profile's; each profile with requested = true is a reference value, the others are listed so a policy can name them in a refusal (admit = false)",
                "image": "twi.rom",
                "launch": "qemu -bios twi.rom with sev-snp-guest on a host of the profile (see host_profiles): ROM pages, SEV metadata pages, one VMSA per vCPU",
                "vcpus": self.snp.vcpus,
                "vcpu_type": self.cpu_type.name,
                "vcpu_sig": format!("{:#x}", self.snp.vcpu_sig),
                "guest_features": format!("{:#x}", self.snp.guest_features),
                "vmsa_fpu": self.snp.vmsa_fpu,
                "vmm": vmm,
                "policy": format!("{:#x}", self.policy),
                "policy_note": "the policy is reported beside MEASUREMENT, not in it: admit it separately",
                "compatible_with": "sev-snp-measure --mode snp --ovmf twi.rom --vcpus N --vcpu-type T --guest-features F (0.0.9 for host profiles without vmsa_fpu, >= 0.0.10 with it)",
            },
            "igvm": {
                "snp_launch_digest": hex48(&self.igvm_snp_launch_digest),
                "image": "twi.igvm",
                "platforms": ["native", "sev-snp"],
                "launch": "an IGVM loader with QEMU/KVM semantics (directives in file order, VMSAs last at GPA 0xFFFFFFFFF000); host profile linux-6.11's VMSA FPU state (IGVM needs a KVM_SEV_INIT2 host)",
                "vcpus": self.snp.vcpus,
                "vcpu_type": self.cpu_type.name,
                "guest_features": format!("{:#x}", self.snp.guest_features),
                "policy": format!("{:#x}", self.policy),
            },
            "tdx": {
                "mrtd": hex48(&self.mrtd),
                "image": "twi.rom",
                "mrtd_order": MrtdOrder::Kvm.name(),
                "launch": "qemu -bios twi.rom with tdx-guest (QEMU >= 10.1, Linux >= 6.16 KVM): TDVF sections in order, per page TDH.MEM.PAGE.ADD then TDH.MR.EXTEND x16 where MR.EXTEND is set",
                "rtmr": null,
                "rtmr_note": "no RTMR expectation: the runtime extends no RTMR yet (and no VMM does), so RTMR0-3 are not asserted here",
            },
            "build": {
                "twi_host_version": env!("CARGO_PKG_VERSION"),
                "runtime_elf_sha384": hex::encode(sha384(self.runtime_elf)),
                "git_commit": self.git.as_ref().map(|g| g.commit.clone()),
                "git_dirty": self.git.as_ref().map(|g| g.dirty),
                "parameters": {
                    "host_profiles": self.host_profiles.iter().filter(|p| p.requested).map(|p| p.profile.name).collect::<Vec<_>>(),
                    "vcpus": self.snp.vcpus,
                    "vcpu_type": self.cpu_type.name,
                    "guest_features": format!("{:#x}", self.snp.guest_features),
                    "policy": format!("{:#x}", self.policy),
                },
            },
        })
    }
}
