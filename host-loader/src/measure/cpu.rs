//! vCPU models and their CPUID signatures, which QEMU puts in each SEV-ES/SNP vCPU's initial RDX
//! (the x86 reset value of EDX is the processor signature), and so into the VMSA and the launch
//! digest.
//!
//! The models are those `sev-snp-measure` (`vcpu_types.py`) lists from QEMU's
//! `target/i386/cpu.c` `builtin_x86_defs` (family, model, stepping of each model and version).

use std::fmt;

/// The CPUID Fn0000_0001_EAX signature of family/model/stepping (AMD CPUID Specification
/// #25481, "CPUID Fn0000_0001_EAX Family, Model, Stepping Identifiers"): base family 0xF plus
/// extended family for families above 0xF, model split into base and extended nibbles.
pub const fn cpu_sig(family: u32, model: u32, stepping: u32) -> u32 {
    let (family_low, family_high) = if family > 0xf { (0xf, (family - 0xf) & 0xff) } else { (family, 0) };
    (family_high << 20) | (((model >> 4) & 0xf) << 16) | (family_low << 8) | ((model & 0xf) << 4) | (stepping & 0xf)
}

/// A named vCPU model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuType {
    pub name: &'static str,
    pub family: u32,
    pub model: u32,
    pub stepping: u32,
}

impl CpuType {
    pub const fn sig(&self) -> u32 {
        cpu_sig(self.family, self.model, self.stepping)
    }

    /// The model called `name` (exact QEMU spelling).
    pub fn by_name(name: &str) -> Option<Self> {
        CPU_TYPES.iter().find(|c| c.name == name).copied()
    }
}

impl fmt::Display for CpuType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

const fn cpu(name: &'static str, family: u32, model: u32, stepping: u32) -> CpuType {
    CpuType { name, family, model, stepping }
}

/// Every model `sev-snp-measure` 0.0.13 knows, with the same signatures.
pub const CPU_TYPES: &[CpuType] = &[
    cpu("EPYC", 23, 1, 2),
    cpu("EPYC-v1", 23, 1, 2),
    cpu("EPYC-v2", 23, 1, 2),
    cpu("EPYC-IBPB", 23, 1, 2),
    cpu("EPYC-v3", 23, 1, 2),
    cpu("EPYC-v4", 23, 1, 2),
    cpu("EPYC-Rome", 23, 49, 0),
    cpu("EPYC-Rome-v1", 23, 49, 0),
    cpu("EPYC-Rome-v2", 23, 49, 0),
    cpu("EPYC-Rome-v3", 23, 49, 0),
    cpu("EPYC-Milan", 25, 1, 1),
    cpu("EPYC-Milan-v1", 25, 1, 1),
    cpu("EPYC-Milan-v2", 25, 1, 1),
    cpu("EPYC-Genoa", 25, 17, 0),
    cpu("EPYC-Genoa-v1", 25, 17, 0),
    cpu("EPYC-Turin", 26, 0, 0),
];

/// The default: QEMU's `-cpu EPYC-v4`, as in the `snp` launch profile.
pub const DEFAULT_CPU_TYPE: &str = "EPYC-v4";

/// The model names, for error messages.
pub fn names() -> Vec<&'static str> {
    CPU_TYPES.iter().map(|c| c.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epyc_v4_signature_is_the_one_sev_snp_measure_vectors_use() {
        // samples/measurement/snp/snp_launch_digest_vectors.json: vcpu_sig 0x800f12.
        assert_eq!(CpuType::by_name("EPYC-v4").unwrap().sig(), 0x0080_0F12);
        assert_eq!(CpuType::by_name("EPYC-Milan").unwrap().sig(), 0x00A0_0F11);
        assert_eq!(CpuType::by_name("EPYC-Genoa").unwrap().sig(), 0x00A1_0F10);
        assert!(CpuType::by_name("epyc-v4").is_none());
    }
}
