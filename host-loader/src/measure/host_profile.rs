//! SEV-SNP host profiles: which host stack (KVM + QEMU) launches the guest decides two things
//! in every vCPU's initial VMSA, and so the launch digest: SEV_FEATURES, and whether KVM copies
//! the vCPU's FPU reset state (MXCSR, x87 FCW) into the VMSA before the PSP measures it. The
//! rest of the VMSA (the `vmsa` module) and every page before it are the same on all of them.
//!
//! A reference value is therefore made per profile: `twi measure --host-profile P[,P...]` and
//! `twi build --host-profile P[,P...]` compute one digest for each, labelled with its name.
//!
//! Secure TSC (SEV_FEATURES bit 9) is not a profile: no released QEMU can ask for it (only
//! AMD's `snp-securetsc-latest` QEMU branch; KVM support needs Linux >= 6.18, per virtee
//! snphost PR #193), and no independent calculator (sev-snp-measure up to 0.0.13, COCONUT's
//! igvmmeasure) models the launch, so there is no known answer to hold its digest to. With
//! such a host, `--guest-features 0x201` gives the digest of a VMSA that differs only in
//! SEV_FEATURES, unchecked.

/// One host stack and what it puts into the initial VMSA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostProfile {
    /// The profile's name on the command line and in reference values.
    pub name: &'static str,
    /// SEV_FEATURES of every VMSA.
    pub sev_features: u64,
    /// KVM writes the vCPU's FPU reset state into the VMSA (MXCSR 0x1F80, x87 FCW 0x37F).
    pub vmsa_fpu: bool,
    /// The host floors, in words (`qemu/README.md` has the long form).
    pub hosts: &'static str,
    /// How to tell a host of this profile.
    pub detect: &'static str,
    /// The `sev-snp-measure` (virtee) release and flags that compute the same digest.
    pub sev_snp_measure: &'static str,
}

/// Upstream Linux >= 6.11 (the first with SEV-SNP guests in KVM) with QEMU >= 9.1 (the first
/// with `sev-snp-guest`): the default.
///
/// - QEMU creates SNP guests with KVM_SEV_INIT2 and a zeroed `struct kvm_sev_init`, so
///   `vmsa_features` is 0 (QEMU `target/i386/sev.c` `sev_common_kvm_init`, since the
///   KVM_SEV_INIT2 series of QEMU 9.0; the IGVM series of QEMU 10.0 passes an IGVM file's
///   VMSA SEV_FEATURES instead, which a `-bios` launch does not have), and KVM adds
///   SNP_ACTIVE for KVM_X86_SNP_VM (torvalds/linux `arch/x86/kvm/svm/sev.c`
///   `__sev_guest_init`; read at commit 0097f9df): SEV_FEATURES 0x1. `kvm_amd.debug_swap`
///   only widens what INIT2 may ask for (`sev_supported_vmsa_features`); it adds nothing by
///   itself there.
/// - `sev_es_sync_vmsa` (same file) copies the guest FPU state into the VMSA for every VM type
///   other than KVM_X86_DEFAULT_VM ("Skip FPU and AVX setup with KVM_SEV_ES_INIT to avoid
///   breaking older measurements"): MXCSR 0x1F80 and FCW 0x37F, the reset values.
/// - sev-snp-measure >= 0.0.10 (virtee commit ae95e59, "Update the VMSA to match latest
///   upstream kernel", citing the KVM_SEV_INIT2 series) computes this VMSA for `--vmm-type
///   QEMU`, with `--guest-features 0x1`.
pub const LINUX_6_11: HostProfile = HostProfile {
    name: "linux-6.11",
    sev_features: 0x1,
    vmsa_fpu: true,
    hosts: "upstream Linux >= 6.11 (KVM_SEV_INIT2) with QEMU >= 9.1",
    detect: "the kernel is >= 6.11 from kernel.org or a distribution (no -snp-host suffix) and QEMU >= 9.1",
    sev_snp_measure: "sev-snp-measure >= 0.0.10 --guest-features 0x1",
};

/// AMD's pre-upstream SEV-SNP host stack (AMDESE/AMDSEV `snp-latest` until the 2024 rebase on
/// KVM_SEV_INIT2: host kernels `*-snp-host-*` 6.5 to 6.8 with KVM_SEV_SNP_INIT, AMD's SNP QEMU
/// 8.x), with `kvm_amd.debug_swap` at its default, on:
///
/// - with the legacy init (VM type KVM_X86_DEFAULT_VM) `sev_es_sync_vmsa` sets
///   SVM_SEV_FEAT_DEBUG_SWAP (bit 5) when `debug_swap` is on (Linux commit d1f85fbe836e, v6.5,
///   "KVM: SEV: Enable data breakpoints in SEV-ES"), SNP_ACTIVE being bit 0: SEV_FEATURES 0x21;
///   AMD's `Bad measurement` answer in AMDESE/AMDSEV issue #195 (host 6.6.0-rc1-snp-host) is
///   this bit;
/// - it copies no FPU state (that came with KVM_SEV_INIT2 VM types only), so MXCSR and FCW are
///   0 in the measured VMSA;
/// - sev-snp-measure 0.0.9 (virtee tag v0.0.9, commit e93396a6, the last release before the
///   FPU values) computes exactly this with its default `--guest-features 0x21`.
pub const AMD_SNP_LEGACY: HostProfile = HostProfile {
    name: "amd-snp-legacy",
    sev_features: 0x21,
    vmsa_fpu: false,
    hosts: "AMD's pre-upstream SNP host kernels (6.5-6.8 *-snp-host-*, KVM_SEV_SNP_INIT) with AMD's SNP QEMU 8.x, kvm_amd.debug_swap=1 (their default)",
    detect: "uname -r ends in -snp-host-<hash> and /sys/module/kvm_amd/parameters/debug_swap reads Y",
    sev_snp_measure: "sev-snp-measure 0.0.9 --guest-features 0x21",
};

/// The same pre-upstream stack with `kvm_amd.debug_swap=0` (AMD's advice in AMDESE/AMDSEV issue
/// #195 to get measurements that older tools computed), and AMD's SNP host kernels before
/// v6.5, which had no DebugSwap: SEV_FEATURES 0x1, no FPU state in the VMSA
/// (sev-snp-measure 0.0.9 with `--guest-features 0x1`; releases up to 0.0.8 by default).
pub const AMD_SNP_LEGACY_NO_DEBUG_SWAP: HostProfile = HostProfile {
    name: "amd-snp-legacy-no-debug-swap",
    sev_features: 0x1,
    vmsa_fpu: false,
    hosts: "AMD's pre-upstream SNP host kernels (KVM_SEV_SNP_INIT) with kvm_amd.debug_swap=0, or before v6.5",
    detect: "uname -r ends in -snp-host-<hash> and /sys/module/kvm_amd/parameters/debug_swap reads N or is absent",
    sev_snp_measure: "sev-snp-measure 0.0.9 --guest-features 0x1",
};

/// Every profile, the default first.
pub const PROFILES: &[HostProfile] = &[LINUX_6_11, AMD_SNP_LEGACY, AMD_SNP_LEGACY_NO_DEBUG_SWAP];

/// The profile `twi build` and `twi measure` use unless told otherwise.
pub const DEFAULT: HostProfile = LINUX_6_11;

/// The profile named `name`.
pub fn by_name(name: &str) -> Option<HostProfile> {
    PROFILES.iter().copied().find(|p| p.name == name)
}

/// The names of every profile, for messages.
pub fn names() -> Vec<&'static str> {
    PROFILES.iter().map(|p| p.name).collect()
}

/// Parses `P[,P...]` (order kept, duplicates dropped).
pub fn parse_list(text: &str) -> Result<Vec<HostProfile>, super::MeasureError> {
    let mut out: Vec<HostProfile> = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let profile = by_name(name).ok_or_else(|| super::MeasureError::UnknownHostProfile(name.to_string()))?;
        if !out.contains(&profile) {
            out.push(profile);
        }
    }
    if out.is_empty() {
        return Err(super::MeasureError::UnknownHostProfile(text.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_parse_back() {
        let names = names();
        for (i, n) in names.iter().enumerate() {
            assert!(!names[..i].contains(n), "{n} twice");
            assert_eq!(by_name(n).map(|p| p.name), Some(*n));
        }
        assert_eq!(PROFILES[0], DEFAULT);
        let list = parse_list("amd-snp-legacy, linux-6.11,amd-snp-legacy").unwrap();
        assert_eq!(list, vec![AMD_SNP_LEGACY, LINUX_6_11]);
        let e = parse_list("linux-6.12").unwrap_err().to_string();
        assert!(e.contains("linux-6.12") && e.contains("amd-snp-legacy-no-debug-swap"), "{e}");
        assert!(parse_list(" , ").is_err());
    }

    #[test]
    fn the_profiles_differ_in_the_vmsa() {
        for (i, a) in PROFILES.iter().enumerate() {
            for b in &PROFILES[..i] {
                assert!((a.sev_features, a.vmsa_fpu) != (b.sev_features, b.vmsa_fpu), "{} = {}", a.name, b.name);
            }
        }
    }
}
