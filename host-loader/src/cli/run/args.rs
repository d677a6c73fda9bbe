//! `twi run`'s options.

use std::path::PathBuf;

use clap::Args;

use crate::bridge::tamper::Tamper;
use crate::cli::args::{HardwareArgs, IdentityArgs, MechanismArg, PlatformArg};
use crate::qemu::{AccelChoice, MemorySize};
use crate::vm::{RingTamper, Transport};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The ROM to boot (for --platform igvm: the IGVM file); built into OUT/twi.rom (and
    /// OUT/twi.igvm) when absent.
    #[arg(long, value_name = "FILE")]
    pub image: Option<PathBuf>,
    /// Where the guest runs: under QEMU with a simulated TEE (sim, sim-tdx, sim-svsm), or as a
    /// confidential VM on a real SEV-SNP or TDX host (snp, igvm, tdx).
    #[arg(long, value_enum)]
    pub platform: PlatformArg,
    /// The directory for what the run writes: credential.pem, issuer-ca.pem, console.log,
    /// evidence.* and, under a policy, the WIT, the attestation result and the provenance
    /// proofs (an earlier run's files there are removed first).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// QEMU's accelerator for the simulated platforms: auto measures which is faster here.
    #[arg(long, value_enum, default_value = "auto")]
    pub accel: AccelChoice,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// The guest's RAM (QEMU's -m: MiB, or with a suffix K/M/G). The runtime needs 14 MiB and
    /// says so at boot when it has less; the whole flow, TLS included, runs in 16M.
    #[arg(long, value_name = "SIZE", default_value = "128M")]
    pub memory: MemorySize,
    /// How the channel crosses: the shared-memory ring (COM2 as its doorbell; the default on the
    /// simulated platforms) or COM2's 16550 alone (the fallback; the default on snp|tdx|igvm,
    /// where the ring — in the guest's shared pool, RAM in a shared file — has not run on
    /// hardware yet).
    #[arg(long, value_enum)]
    pub channel: Option<Transport>,
    /// Benchmark hook: write every channel byte, per direction, into DIR.
    #[arg(long, hide = true, value_name = "DIR")]
    pub channel_dump: Option<PathBuf>,
    /// Test hook: a hostile host's channel ring (`head`: a head beyond the ring; `tail`: a
    /// tail past the guest's head).
    #[arg(long, hide = true, value_enum)]
    pub tamper_ring: Option<RingTamper>,
    /// Print the QEMU command line and exit.
    #[arg(long)]
    pub print_qemu: bool,
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// Test hook: behave as a hostile host (`nonce`, `evidence-byte:OFFSET`, ...).
    #[arg(long, hide = true)]
    pub tamper: Option<Tamper>,
    /// The appraisal policy (TOML; see issuer/policy.example.toml, and `twi policy add-image`
    /// to admit an image): the credential's identity and claims come from the workload it
    /// admits. Without it, a development policy is made on the fly that admits exactly the
    /// image booted, as --workload.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// The policy key's public half (PEM): checks FILE.sig, needed for CF_L0 claims.
    #[arg(long, value_name = "PEM", requires = "policy")]
    pub policy_key: Option<PathBuf>,
    /// Credential acquisition mechanism (default: the policy's choice for the workload).
    #[arg(long, value_enum)]
    pub mechanism: Option<MechanismArg>,
    /// Use the Verifier, Credential Authority and Key Store of `twi serve` at this URL
    /// (https://HOST:PORT; http:// to loopback only) instead of the embedded issuer; the image must embed that
    /// issuer's CA (built without --image, it does).
    #[arg(long, value_name = "URL", conflicts_with_all = ["policy", "policy_key"])]
    pub issuer_url: Option<String>,
    /// The CA (PEM) the --issuer-url service's TLS certificate chains to (its
    /// STATE/issuer/issuer-ca.pem); default: the issuer-ca.pem beside --image, the CA the image
    /// was built against.
    #[arg(long, value_name = "PEM", requires = "issuer_url")]
    pub issuer_ca: Option<PathBuf>,
    /// How the --issuer-url service is asked for an Enrollment's credential: `json` (its JSON
    /// API, the default) or `est` (RFC 7030 simpleenroll: the CSR as base64 PKCS#10, the
    /// evidence in the `TWI-Evidence` header; the policy's mechanism must be c).
    #[arg(long, value_enum, default_value = "json", requires = "issuer_url")]
    pub protocol: ProtocolArg,
    /// The workload owner's client certificate (PEM) under the service's operator CA: `--mechanism
    /// d` provisions the workload's credential through the owner's endpoint.
    #[arg(long, value_name = "PEM", requires_all = ["issuer_url", "client_key"])]
    pub client_cert: Option<PathBuf>,
    /// The key of --client-cert (PKCS#8 or SEC1 PEM).
    #[arg(long, value_name = "PEM", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    #[command(flatten)]
    pub hardware: HardwareArgs,
    /// Renew the credential with this X.509 serial (hex) or WIT jti, issued by this issuer:
    /// refused unless the launch keeps what the policy's stickiness binds (CS_L1 the TCB,
    /// CS_L2 the declared claims, CS_L3 the chip). Mechanism c; with --issuer-url through
    /// the service's JSON API, or EST simplereenroll with --protocol est.
    #[arg(long, value_name = "SERIAL")]
    pub renew: Option<String>,
    /// Encrypt the embedded issuer's provenance records to this auditor's P-384 public key
    /// (SPKI PEM), as `twi serve --auditor-key` does (a remote issuer encrypts by its own
    /// option).
    #[arg(long, value_name = "PEM", conflicts_with = "issuer_url")]
    pub auditor_key: Option<PathBuf>,
    /// The simulated TEE's machine: its chip identity and keys (default STATE/sim-snp).
    /// Another directory is another simulated chip.
    #[arg(long, value_name = "DIR")]
    pub sim_chip: Option<PathBuf>,
    /// --platform sim-tdx: the quote format of the simulated quoting enclave: 4, 5 (TD 1.0
    /// body) or 5-td15 (TDX 1.5 module: TDREPORT v1, TD 1.5 body).
    #[arg(long, value_name = "FORMAT", default_value = "4")]
    pub tdx_quote: twi_sim::tdx::QuoteFormat,
    /// The attestation result's serialization (draft-ietf-rats-ear-04): attestation-result.jwt,
    /// attestation-result.cwt (COSE_Sign1, the same result re-signed by the Verifier), or both.
    #[arg(long, value_enum, default_value = "jwt")]
    pub ear_format: EarFormat,
}

/// Which attestation-result files a run writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EarFormat {
    Jwt,
    Cwt,
    Both,
}

/// `--protocol`: the remote issuer's enrollment protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProtocolArg {
    Json,
    Est,
}

impl From<ProtocolArg> for crate::remote::Protocol {
    fn from(arg: ProtocolArg) -> Self {
        match arg {
            ProtocolArg::Json => Self::Json,
            ProtocolArg::Est => Self::Est,
        }
    }
}

impl RunArgs {
    /// The channel's transport: `--channel`, else the ring on the simulated platforms and the
    /// 16550 on the hardware profiles.
    pub fn transport(&self) -> Transport {
        self.channel.unwrap_or(if self.platform.is_hardware() { Transport::Serial } else { Transport::Ring })
    }
}
