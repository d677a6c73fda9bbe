//! Options several subcommands share, and the small parsers behind them.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use twi_issuer::policy::Mechanism;
use twi_proto::manifest::Diagnostic;

use crate::{image, measure};

/// Who the credentials name.
#[derive(Args, Debug, Clone)]
pub struct IdentityArgs {
    /// The SPIFFE trust domain of issued credentials.
    #[arg(long, default_value = "example.org")]
    pub trust_domain: String,
    /// The workload name under the trust domain (without --policy: the development policy's
    /// workload).
    #[arg(long, default_value = "demo")]
    pub workload: String,
}

/// The auditor the provenance records are encrypted to (the SCITT draft's MAY).
#[derive(Args, Debug, Clone, Default)]
pub struct AuditorArgs {
    /// Encrypt every new provenance record to this auditor's P-384 public key (SPKI PEM,
    /// `openssl pkey -in auditor.key -pubout`): the record's signed statement carries it as a
    /// COSE_Encrypt (ECDH-ES + HKDF-256, A256GCM) that only the auditor opens (`twi provenance
    /// show --auditor-key-private`), while its signature, the leaf, receipts, checkpoints and
    /// `twi log audit` verify without the key; `sub` (the credential id) and `iat` stay in clear.
    /// The issuer keeps no plaintext copy, so a renewal naming such a credential is refused.
    #[arg(long, value_name = "PEM")]
    pub auditor_key: Option<PathBuf>,
}

impl AuditorArgs {
    /// The key, read and checked (`None` without the option).
    pub fn load(&self) -> anyhow::Result<Option<twi_issuer::provenance::AuditorKey>> {
        use anyhow::Context;
        let Some(path) = &self.auditor_key else { return Ok(None) };
        let key = twi_issuer::provenance::AuditorKey::load(path).context("--auditor-key")?;
        eprintln!(
            "twi: provenance records are encrypted to auditor key {}",
            twi_issuer::provenance::sealed::shown_kid(key.kid())
        );
        Ok(Some(key))
    }
}

/// The SEV-SNP launch that measurements are computed for.
#[derive(Args, Debug, Clone)]
pub struct LaunchArgs {
    /// SEV-SNP vCPUs (one VMSA each in the launch digest).
    #[arg(long, default_value_t = 1)]
    pub vcpus: u32,
    /// SEV-SNP QEMU vCPU model (its CPUID signature is in each VMSA), e.g. EPYC-v4,
    /// EPYC-Milan, EPYC-Genoa.
    #[arg(long, default_value = measure::cpu::DEFAULT_CPU_TYPE)]
    pub vcpu_type: String,
    /// SEV-SNP guest policy (reported beside the measurement, and carried by the IGVM file).
    #[arg(long, default_value = "0x30000", value_parser = parse_u64)]
    pub policy: u64,
    /// SEV-SNP host profiles to make reference values for, comma-separated, the first the
    /// primary: linux-6.11 (upstream Linux >= 6.11 + QEMU >= 9.1), amd-snp-legacy (AMD's
    /// pre-upstream SNP host kernels, DebugSwap on), amd-snp-legacy-no-debug-swap
    /// (qemu/README.md says how to tell which a host is).
    #[arg(long, value_name = "P[,P...]", default_value = measure::host_profile::DEFAULT.name)]
    pub host_profile: String,
    /// SEV_FEATURES of each VMSA, overriding the host profiles' own (linux-6.11: 0x1,
    /// amd-snp-legacy: 0x21), e.g. for a host that enables further features.
    #[arg(long, value_parser = parse_u64)]
    pub guest_features: Option<u64>,
}

impl LaunchArgs {
    pub fn params(&self) -> Result<image::ImageParams> {
        let cpu_type = measure::cpu::CpuType::by_name(&self.vcpu_type)
            .ok_or_else(|| measure::MeasureError::UnknownCpuType(self.vcpu_type.clone()))?;
        if self.vcpus == 0 {
            bail!("--vcpus must be at least 1");
        }
        // SEV-SNP Firmware ABI, guest policy: bit 17 is reserved and must be one.
        if self.policy & (1 << 17) == 0 {
            bail!("--policy {:#x}: SEV-SNP policy bit 17 must be set (QEMU's default is 0x30000)", self.policy);
        }
        let host_profiles = measure::host_profile::parse_list(&self.host_profile)?;
        Ok(image::ImageParams {
            vcpus: self.vcpus,
            cpu_type,
            guest_features: self.guest_features,
            policy: self.policy,
            host_profiles,
            calling_area: image::CallingArea::Declared,
        })
    }
}

/// Collateral for real hardware (`--platform snp|igvm|tdx`).
#[derive(Args, Debug, Clone)]
pub struct HardwareArgs {
    /// SEV-SNP: the VCEK cache (layout: `twi verify snp-report --help`), used when the host's
    /// extended guest request supplies no certificate table.
    #[arg(long, value_name = "DIR")]
    pub vcek_cache: Option<PathBuf>,
    /// SEV-SNP: fetch a missing VCEK and its chain from AMD KDS into --vcek-cache.
    #[arg(long, requires = "vcek_cache")]
    pub fetch: bool,
    /// KDS base URL for --fetch.
    #[arg(long, value_name = "URL", default_value = twi_verifier::snp::kds::KDS_BASE)]
    pub kds_url: String,
    /// TDX: TCB info, QE identity and CRLs (a dcap-qvl JSON file or a PCS directory, as for
    /// `twi verify tdx-quote --collateral`).
    #[arg(long, value_name = "PATH", conflicts_with = "pccs")]
    pub collateral: Option<PathBuf>,
    /// TDX: fetch the collateral for the quote's platform from this PCCS (or Intel PCS) into
    /// OUT/collateral.
    #[arg(long, value_name = "URL")]
    pub pccs: Option<String>,
}

/// A number in decimal or `0x` hex.
pub fn parse_u64(text: &str) -> Result<u64, String> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    }
    .map_err(|e| format!("{text:?}: {e}"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DiagnosticArg {
    /// The product image.
    None,
    /// Boot, key generation, one signature, exit (what --accel auto times).
    SelfTest,
    /// Boot, then a deliberate #UD that the fault handler reports.
    Fault,
}

impl From<DiagnosticArg> for Diagnostic {
    fn from(arg: DiagnosticArg) -> Self {
        match arg {
            DiagnosticArg::None => Self::None,
            DiagnosticArg::SelfTest => Self::SelfTest,
            DiagnosticArg::Fault => Self::Fault,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlatformArg {
    /// Plain QEMU with the simulated SEV-SNP firmware (development and tests).
    Sim,
    /// Plain QEMU with the simulated TDX module and quoting enclave (development and tests).
    SimTdx,
    /// Plain QEMU with the simulated SEV-SNP firmware and a simulated SVSM at VMPL0: the
    /// runtime runs below it at VMPL2, as under COCONUT-SVSM (development and tests).
    SimSvsm,
    /// A real AMD SEV-SNP host.
    Snp,
    /// A real Intel TDX host.
    Tdx,
    /// A real SEV-SNP host, loading DIR/twi.igvm with QEMU's IGVM loader.
    Igvm,
}

impl PlatformArg {
    /// Real TEE hardware (not one of the simulators).
    pub fn is_hardware(self) -> bool {
        !matches!(self, Self::Sim | Self::SimTdx | Self::SimSvsm)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MechanismArg {
    /// The Verifier asks the Credential Authority; the credential comes with the attestation result.
    A,
    /// The Verifier returns a signed EAR; the workload takes it to the Credential Authority.
    B,
    /// The workload sends evidence and key to the Credential Authority, which calls the Verifier.
    C,
    /// The Key Store releases a provisioned key after attestation.
    D,
}

impl From<MechanismArg> for Mechanism {
    fn from(arg: MechanismArg) -> Self {
        match arg {
            MechanismArg::A => Self::A,
            MechanismArg::B => Self::B,
            MechanismArg::C => Self::C,
            MechanismArg::D => Self::D,
        }
    }
}
