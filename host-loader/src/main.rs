//! `twi`: build TWI images, run them under QEMU, and obtain a credential.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use twi_issuer::{Issuer, IssuerConfig};
use twi_proto::manifest::{Diagnostic, LaunchManifest, MANIFEST_FORMAT};

use twi_host_loader::qemu::AccelChoice;
use twi_host_loader::remote::{IssuerLink, RemoteIssuer};
use twi_host_loader::sim::snp::SimPsp;
use twi_host_loader::{accel, image, measure, qemu, run};

mod verify;

#[derive(Parser, Debug)]
#[command(name = "twi", version, about = "Trustworthy Workload Identity for confidential VMs")]
struct Cli {
    /// Where the issuer's CA and the simulated TEE's keys live
    /// [default: $TWI_STATE_DIR, else $XDG_STATE_HOME/twi, else ~/.local/state/twi].
    #[arg(long, global = true, value_name = "DIR")]
    state: Option<PathBuf>,
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand, Debug)]
enum Commands {
    /// Build the bootable ROM (DIR/twi.rom) with the issuer's trust anchor in its manifest, the
    /// IGVM file (DIR/twi.igvm) and their reference values (DIR/reference-values.json).
    Build {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Use this runtime ELF instead of compiling one.
        #[arg(long, value_name = "FILE")]
        runtime_elf: Option<PathBuf>,
        #[command(flatten)]
        identity: IdentityArgs,
        #[command(flatten)]
        launch: LaunchArgs,
        /// Build a diagnostic image instead of the product: `self-test` (boot, key generation,
        /// one signature, exit) or `fault` (boot, then a deliberate #UD that the fault handler
        /// reports).
        #[arg(long, value_enum, default_value = "none")]
        diagnostic: DiagnosticArg,
    },
    /// Print the launch measurement of an image: the SEV-SNP launch digest (a ROM or an IGVM
    /// file) or the TDX MRTD (a ROM).
    Measure {
        /// twi.rom (or any OVMF-style firmware image), or twi.igvm for --platform snp.
        image: PathBuf,
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
    },
    /// Boot an image under QEMU and obtain a credential for its Credential Key.
    Run {
        /// The ROM to boot; built into DIR/twi.rom when absent.
        #[arg(long, value_name = "FILE")]
        image: Option<PathBuf>,
        #[arg(long, value_enum)]
        platform: PlatformArg,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
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
        /// Test hook: behave as a hostile host (`nonce`, `evidence-byte:OFFSET`).
        #[arg(long, hide = true)]
        tamper: Option<run::Tamper>,
        /// The appraisal policy (TOML; see issuer/policy.example.toml): the credential's
        /// identity and claims come from the workload it admits. Without it, a development
        /// policy is made on the fly that admits exactly the image booted, as --workload.
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
        tdx_quote: twi_host_loader::sim::tdx::QuoteFormat,
    },
    /// Serve the issuer's roles (Verifier, Credential Authority, Key Store) over HTTP for
    /// `twi run --issuer-url`: JSON endpoints under /v1 (see README), until Ctrl-C.
    Serve {
        /// Address to listen on (port 0: any free port; the URL is printed on stdout).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8740")]
        listen: String,
        /// The appraisal policy (TOML; see issuer/policy.example.toml). Without it every
        /// verified launch gets --workload, with no WIT, attestation result or provenance
        /// record (and mechanisms b and d are refused).
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// The policy key's public half (PEM): checks FILE.sig, needed for CF_L0 claims.
        #[arg(long, value_name = "PEM", requires = "policy")]
        policy_key: Option<PathBuf>,
        /// The roles whose endpoints this process serves: verifier, ca, key-store
        /// (comma-separated). The Key Store (mechanism d) releases on the appraisal of the
        /// Verifier in the same process, and provisions credentials its CA certifies.
        #[arg(long, default_value = "verifier,ca,key-store", value_parser = twi_issuer::http::Roles::parse)]
        roles: twi_issuer::http::Roles,
        /// Development only: accept evidence from the simulated TEE whose keys are in DIR (the
        /// `--state` of the `twi run` that launches the guests: DIR/sim-snp, DIR/sim-tdx).
        #[arg(long, value_name = "DIR")]
        simulated_tee: Option<PathBuf>,
        #[command(flatten)]
        identity: IdentityArgs,
    },
    /// Verify attestation evidence offline; print the verdict as one JSON object (exit 0
    /// verified, 1 rejected, 2 bad usage or unreadable input).
    #[command(subcommand)]
    Verify(verify::VerifyCommand),
    /// Mechanism D's Key Store, on the workload owner's side.
    #[command(subcommand)]
    Keystore(KeystoreCommand),
}

#[derive(Subcommand, Debug)]
enum KeystoreCommand {
    /// Provision the owner's credential and key for a workload: the Key Store releases the key
    /// (HPKE-encrypted to a key the evidence binds) only to launches the policy admits as that
    /// workload (`twi run --mechanism d`).
    Provision {
        /// The workload's identifier, e.g. spiffe://example.org/payroll-app (what the policy
        /// names the workload).
        #[arg(long, value_name = "URI")]
        workload_id: String,
        /// The owner's P-384 private key (PKCS#8 PEM).
        #[arg(long, value_name = "PEM")]
        key: PathBuf,
        /// The owner's certificate for the key (PEM or DER), issued by this issuer's CA (the
        /// anchor runtimes check); without it the CA certifies the key now.
        #[arg(long, value_name = "FILE")]
        certificate: Option<PathBuf>,
        /// Lifetime of a certificate the CA issues here, in hours.
        #[arg(long, default_value_t = 24)]
        lifetime_hours: u64,
        #[command(flatten)]
        identity: IdentityArgs,
    },
}

#[derive(clap::Args, Debug)]
struct IdentityArgs {
    /// The SPIFFE trust domain of issued credentials.
    #[arg(long, default_value = "example.org")]
    trust_domain: String,
    /// The workload name under the trust domain.
    #[arg(long, default_value = "demo")]
    workload: String,
}

/// The SEV-SNP launch that measurements are computed for.
#[derive(clap::Args, Debug)]
struct LaunchArgs {
    /// SEV-SNP vCPUs (one VMSA each in the launch digest).
    #[arg(long, default_value_t = 1)]
    vcpus: u32,
    /// SEV-SNP QEMU vCPU model (its CPUID signature is in each VMSA), e.g. EPYC-v4,
    /// EPYC-Milan, EPYC-Genoa.
    #[arg(long, default_value = measure::cpu::DEFAULT_CPU_TYPE)]
    vcpu_type: String,
    /// SEV-SNP guest policy (reported beside the measurement, and carried by the IGVM file).
    #[arg(long, default_value = "0x30000", value_parser = parse_u64)]
    policy: u64,
    /// SEV_FEATURES of each VMSA: 0x1 (SNP active) is what QEMU >= 9.1 launches with.
    #[arg(long, default_value = "0x1", value_parser = parse_u64)]
    guest_features: u64,
}

impl LaunchArgs {
    fn params(&self) -> Result<image::ImageParams> {
        let cpu_type = measure::cpu::CpuType::by_name(&self.vcpu_type)
            .ok_or_else(|| measure::MeasureError::UnknownCpuType(self.vcpu_type.clone()))?;
        if self.vcpus == 0 {
            bail!("--vcpus must be at least 1");
        }
        // SEV-SNP Firmware ABI, guest policy: bit 17 is reserved and must be one.
        if self.policy & (1 << 17) == 0 {
            bail!("--policy {:#x}: SEV-SNP policy bit 17 must be set (QEMU's default is 0x30000)", self.policy);
        }
        Ok(image::ImageParams { vcpus: self.vcpus, cpu_type, guest_features: self.guest_features, policy: self.policy })
    }
}

fn parse_u64(text: &str) -> Result<u64, String> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    }
    .map_err(|e| format!("{text:?}: {e}"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DiagnosticArg {
    None,
    SelfTest,
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
enum MeasurePlatform {
    /// The SEV-SNP launch digest (MEASUREMENT).
    Snp,
    /// The TDX MRTD (QEMU/KVM page order).
    Tdx,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum MechanismArg {
    /// The Verifier asks the Credential Authority; the credential comes with the attestation result.
    A,
    /// The Verifier returns a signed EAR; the workload takes it to the Credential Authority.
    B,
    /// The workload sends evidence and key to the Credential Authority, which calls the Verifier.
    C,
    /// The Key Store releases a provisioned key after attestation.
    D,
}

impl MechanismArg {
    fn mechanism(self) -> twi_issuer::policy::Mechanism {
        use twi_issuer::policy::Mechanism;
        match self {
            Self::A => Mechanism::A,
            Self::B => Mechanism::B,
            Self::C => Mechanism::C,
            Self::D => Mechanism::D,
        }
    }
}

/// The development policy `twi run` uses without --policy: one workload, `identity`, admitting
/// exactly the launch measurements of the image it boots (simulated SEV-SNP and TDX).
/// `hardware`: also admit the image on real SEV-SNP / TDX (the same measurement).
fn development_policy(
    identity: &IdentityArgs,
    snp_digest: &[u8; 48],
    mrtd: Option<&[u8; 48]>,
    hardware: bool,
) -> String {
    let quote = |s: &str| toml_quote(s);
    let mut text = format!(
        "# Development policy made by `twi run` (no --policy): admits exactly the image it boots.\n\
         version = {}\ntrust_domain = {}\n\n[[workload]]\nid = {}\nmechanism = \"c\"\nfreshness = \"AF_L2\"\n\
         fidelity = \"CF_L2\"\nstickiness = \"CS_L1\"\n\n[[workload.reference]]\nlabel = \"this image (simulated SEV-SNP)\"\n\
         platform = \"sim-snp\"\nmeasurement = \"{}\"\n",
        quote(&format!("dev-{}", &hex::encode(snp_digest)[..16])),
        quote(&identity.trust_domain),
        quote(&identity.workload),
        hex::encode(snp_digest)
    );
    if let Some(mrtd) = mrtd {
        text.push_str(&format!(
            "\n[[workload.reference]]\nlabel = \"this image (simulated TDX)\"\nplatform = \"sim-tdx\"\nmrtd = \"{}\"\n",
            hex::encode(mrtd)
        ));
    }
    if hardware {
        text.push_str(&format!(
            "\n[[workload.reference]]\nlabel = \"this image (SEV-SNP)\"\nplatform = \"snp\"\nmeasurement = \"{}\"\n",
            hex::encode(snp_digest)
        ));
        if let Some(mrtd) = mrtd {
            text.push_str(&format!(
                "\n[[workload.reference]]\nlabel = \"this image (TDX)\"\nplatform = \"tdx\"\nmrtd = \"{}\"\n",
                hex::encode(mrtd)
            ));
        }
    }
    text
}

fn toml_quote(s: &str) -> String {
    let escaped: String = s
        .chars()
        .flat_map(|c| match c {
            '"' => vec!['\\', '"'],
            '\\' => vec!['\\', '\\'],
            c if c.is_control() => format!("\\u{:04X}", c as u32).chars().collect(),
            c => vec![c],
        })
        .collect();
    format!("\"{escaped}\"")
}

/// Collateral for real hardware (`--platform snp|igvm|tdx`).
#[derive(Args, Debug, Clone)]
struct HardwareArgs {
    /// SEV-SNP: the VCEK cache (layout: `twi verify snp-report --help`), used when the host's
    /// extended guest request supplies no certificate table.
    #[arg(long, value_name = "DIR")]
    vcek_cache: Option<PathBuf>,
    /// SEV-SNP: fetch a missing VCEK and its chain from AMD KDS into --vcek-cache.
    #[arg(long, requires = "vcek_cache")]
    fetch: bool,
    /// KDS base URL for --fetch.
    #[arg(long, value_name = "URL", default_value = twi_verifier::snp::kds::KDS_BASE)]
    kds_url: String,
    /// TDX: TCB info, QE identity and CRLs (a dcap-qvl JSON file or a PCS directory, as for
    /// `twi verify tdx-quote --collateral`).
    #[arg(long, value_name = "PATH", conflicts_with = "pccs")]
    collateral: Option<PathBuf>,
    /// TDX: fetch the collateral for the quote's platform from this PCCS (or Intel PCS) into
    /// OUT/collateral.
    #[arg(long, value_name = "URL")]
    pccs: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PlatformArg {
    /// Plain QEMU with the simulated SEV-SNP firmware (development and tests).
    Sim,
    /// Plain QEMU with the simulated TDX module and quoting enclave (development and tests).
    SimTdx,
    /// A real AMD SEV-SNP host.
    Snp,
    /// A real Intel TDX host.
    Tdx,
    /// A real SEV-SNP host, loading DIR/twi.igvm with QEMU's IGVM loader.
    Igvm,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Commands::Verify(command) = &cli.command {
        return verify::run(command);
    }
    match execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut message = e.to_string();
            for cause in e.chain().skip(1) {
                message.push_str(&format!(": {cause}"));
            }
            eprintln!("twi: error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn state_dir(explicit: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(dir) = explicit.or_else(|| std::env::var_os("TWI_STATE_DIR").map(PathBuf::from)) {
        return Ok(dir);
    }
    if let Some(xdg) = std::env::var_os("XDG_STATE_HOME") {
        return Ok(PathBuf::from(xdg).join("twi"));
    }
    let home = std::env::var_os("HOME").context("set --state, TWI_STATE_DIR or HOME")?;
    Ok(PathBuf::from(home).join(".local/state/twi"))
}

fn open_issuer(state: &Path, identity: &IdentityArgs, sim_root: Option<x509_cert::Certificate>) -> Result<Issuer> {
    let config = IssuerConfig {
        trust_domain: identity.trust_domain.clone(),
        workload: identity.workload.clone(),
        lifetime: Duration::from_secs(3600),
        sim_snp_root: sim_root,
    };
    Issuer::open(&state.join("issuer"), config).context("opening the issuer")
}

/// The issuer an image trusts: its CA's public key (SEC1) and name.
struct Anchor {
    public_key: Vec<u8>,
    name: String,
}

impl Anchor {
    fn of(issuer: &Issuer) -> Self {
        Self { public_key: issuer.ca().public_key_sec1(), name: issuer.ca().subject().to_string() }
    }

    /// A remote issuer's, from its CA certificate.
    fn of_certificate(certificate: &x509_cert::Certificate) -> Self {
        let tbs = certificate.tbs_certificate();
        Self {
            public_key: tbs.subject_public_key_info().subject_public_key.raw_bytes().to_vec(),
            name: tbs.subject().to_string(),
        }
    }
}

fn manifest_for(anchor: &Anchor, diagnostic: Diagnostic) -> LaunchManifest {
    LaunchManifest {
        format: MANIFEST_FORMAT,
        issuer_anchor: anchor.public_key.clone(),
        issuer_name: anchor.name.clone(),
        diagnostic,
    }
}

/// Builds DIR/twi.rom, DIR/twi.igvm and DIR/reference-values.json, and returns the ROM's path.
fn build(
    out: &Path,
    runtime_elf: Option<&Path>,
    anchor: &Anchor,
    params: &image::ImageParams,
    diagnostic: Diagnostic,
) -> Result<PathBuf> {
    fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let elf_path = match runtime_elf {
        Some(path) => path.to_path_buf(),
        None => {
            eprintln!("twi: building the runtime (cargo build -p twi-runtime --target x86_64-unknown-none --release)");
            image::build_runtime_elf()?
        }
    };
    let elf = fs::read(&elf_path).with_context(|| format!("cannot read {}", elf_path.display()))?;
    let images = image::build_images(&elf, &manifest_for(anchor, diagnostic), params)?;
    let rom_path = out.join("twi.rom");
    let write = |name: &str, bytes: &[u8]| {
        let path = out.join(name);
        fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
    };
    write("twi.rom", &images.rom)?;
    write("twi.igvm", &images.igvm)?;
    let mut reference = serde_json::to_vec_pretty(&images.reference_values)?;
    reference.push(b'\n');
    write(measure::reference::FILE_NAME, &reference)?;
    // Kept beside the ROM: `twi run` times accelerators with a self-test image of the same code.
    fs::copy(&elf_path, out.join("twi-runtime.elf"))?;
    let values = &images.reference_values;
    eprintln!(
        "twi: wrote {} ({} KiB, sha384 {})",
        rom_path.display(),
        images.rom.len() / 1024,
        image::rom_sha384(&images.rom)
    );
    eprintln!("twi: wrote {} ({} KiB)", out.join("twi.igvm").display(), images.igvm.len() / 1024);
    eprintln!(
        "twi: SEV-SNP launch digest {} ({} x {}), TDX MRTD {}",
        values["snp"]["launch_digest"].as_str().unwrap_or("?"),
        params.vcpus,
        params.cpu_type,
        values["tdx"]["mrtd"].as_str().unwrap_or("?")
    );
    Ok(rom_path)
}

fn execute(cli: Cli) -> Result<()> {
    let state = state_dir(cli.state)?;
    match cli.command {
        // Handled in main(): it has its own exit statuses.
        Commands::Verify(_) => Ok(()),
        Commands::Build { out, runtime_elf, identity, launch, diagnostic } => {
            let params = launch.params()?;
            let issuer = open_issuer(&state, &identity, None)?;
            build(&out, runtime_elf.as_deref(), &Anchor::of(&issuer), &params, diagnostic.into())?;
            Ok(())
        }
        Commands::Measure { image, platform, launch, json, xfam, td_attributes } => {
            let td_info =
                xfam.map(|xfam| measure::tdx::TdInfoInputs { attributes: td_attributes, xfam, ..Default::default() });
            measure_image(&image, platform, &launch, json, td_info)
        }
        Commands::Run {
            image,
            platform,
            out,
            accel,
            timeout,
            print_qemu,
            identity,
            tamper,
            policy,
            policy_key,
            mechanism,
            issuer_url,
            hardware,
            renew,
            sim_chip,
            tdx_quote,
        } => {
            if renew.is_some() && mechanism.is_some_and(|m| m != MechanismArg::C) {
                bail!("--renew runs under mechanism c (evidence to the Credential Authority)");
            }
            // A renewal is a Credential Authority request, whatever the workload's usual mechanism.
            let mechanism = if renew.is_some() { Some(MechanismArg::C) } else { mechanism };
            if print_qemu && !matches!(platform, PlatformArg::Sim | PlatformArg::SimTdx) {
                return print_profile(platform, image.as_deref(), &out);
            }
            let hardware_platform = !matches!(platform, PlatformArg::Sim | PlatformArg::SimTdx);
            if hardware_platform && issuer_url.is_some() {
                bail!(
                    "--issuer-url runs only the simulated platforms yet: the service's hardware roots are its own configuration"
                );
            }
            if platform == PlatformArg::Tdx && hardware.collateral.is_none() && hardware.pccs.is_none() {
                bail!(
                    "--platform tdx: the issuer judges the quote's TCB against Intel's collateral: pass --collateral PATH or --pccs URL"
                );
            }
            let launch_profile = {
                let defaults = image::ImageParams::default();
                qemu::SnpProfile {
                    vcpus: defaults.vcpus,
                    cpu_type: defaults.cpu_type.name.to_string(),
                    policy: defaults.policy,
                }
            };
            let hardware_profile = match platform {
                PlatformArg::Sim | PlatformArg::SimTdx => None,
                PlatformArg::Snp => Some(run::HardwareProfile::Snp(launch_profile)),
                PlatformArg::Igvm => Some(run::HardwareProfile::Igvm(launch_profile)),
                PlatformArg::Tdx => Some(run::HardwareProfile::Tdx),
            };
            let qemu_path = qemu::find_qemu()?;
            fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
            // A credential from an earlier run must never pass for this run's.
            let credential_path = out.join("credential.pem");
            let _ = fs::remove_file(&credential_path);

            let chip_dir = sim_chip.unwrap_or_else(|| state.join("sim-snp"));
            let mut psp = SimPsp::load_or_create(&chip_dir).context("opening the simulated SEV-SNP firmware")?;
            // The roles: embedded (this process, state under --state) or `twi serve` at a URL,
            // whose CA the image must embed.
            let remote = issuer_url.as_deref().map(RemoteIssuer::new).transpose()?;
            let (mut embedded, anchor, remote_ca) = match &remote {
                None => {
                    // Simulated evidence is accepted only on a simulated run.
                    let sim_root = (!hardware_platform).then(|| psp.root().clone());
                    let issuer = open_issuer(&state, &identity, sim_root)?;
                    let anchor = Anchor::of(&issuer);
                    (Some(issuer), anchor, None)
                }
                Some(remote) => {
                    let (pem, certificate) = remote.ca_certificate()?;
                    eprintln!("twi: using the Verifier, Credential Authority and Key Store at {}", remote.url());
                    (None, Anchor::of_certificate(&certificate), Some(pem))
                }
            };
            let mut sim_tdx = match platform {
                PlatformArg::SimTdx => {
                    let mut tdx = twi_host_loader::sim::tdx::SimTdx::load_or_create(&state.join("sim-tdx"))
                        .context("opening the simulated TDX platform")?;
                    tdx.set_quote_format(tdx_quote);
                    // A remote issuer accepts the simulated root by its own configuration
                    // (`twi serve --simulated-tee`).
                    if let Some(issuer) = embedded.as_mut() {
                        issuer
                            .accept_simulated_tdx(tdx.root(), tdx.collateral()?)
                            .map_err(|e| anyhow::anyhow!("the issuer cannot trust the simulated TDX root: {e}"))?;
                    }
                    Some(tdx)
                }
                _ => None,
            };
            let rom_path = match image.clone() {
                Some(path) => path,
                None => build(&out, None, &anchor, &image::ImageParams::default(), Diagnostic::None)?,
            };
            // The image QEMU loads: the ROM, or for --platform igvm the IGVM file beside it.
            let launch_path = match (platform, &image) {
                (PlatformArg::Igvm, None) => rom_path.with_file_name("twi.igvm"),
                _ => rom_path.clone(),
            };
            if print_qemu {
                let channel = Path::new("CHANNEL.sock");
                let args = if sim_tdx.is_some() {
                    qemu::sim_tdx_args(qemu::Accel::Tcg, &rom_path, channel, Path::new("SIM-TD-PAGE.bin"))
                } else {
                    qemu::sim_args(qemu::Accel::Tcg, &rom_path, channel, Some(Path::new("SECRETS-PAGE.bin")))
                };
                println!("{}", qemu::command_line(&qemu_path, &args));
                return Ok(());
            }
            let rom = match platform {
                PlatformArg::Igvm => Vec::new(),
                _ => fs::read(&rom_path).with_context(|| format!("cannot read {}", rom_path.display()))?,
            };
            // The simulated PSP reports the launch digest a real SNP launch of these exact
            // bytes would (the default `snp` profile: 1 x EPYC-v4), so the report's
            // MEASUREMENT equals the build's reference value when the image is the one built.
            let digest = if platform == PlatformArg::Igvm {
                let bytes = fs::read(&launch_path).with_context(|| format!("cannot read {}", launch_path.display()))?;
                let file = twi_host_loader::igvm::parse(&bytes).context("reading the IGVM file")?;
                twi_host_loader::igvm::snp_launch_digest(&file).context("computing the IGVM launch digest")?
            } else {
                measure::snp::launch_digest(&rom, &measure::snp::SnpLaunchParams::default())
                    .context("computing the simulated launch digest of the image")?
            };
            psp.set_launch_digest(digest);
            let mut measurement = digest.to_vec();
            let mut mrtd = None;
            if platform == PlatformArg::Tdx {
                let value = measure::tdx::mrtd(&rom, measure::tdx::MrtdOrder::Kvm)
                    .context("computing the MRTD of the image")?;
                measurement = value.to_vec();
                mrtd = Some(value);
            }
            if let Some(tdx) = sim_tdx.as_mut() {
                // The simulated TDX module reports the MRTD a TDX launch of these exact bytes
                // would (QEMU/KVM page order): the build's `tdx.mrtd` reference value.
                let value = measure::tdx::mrtd(&rom, measure::tdx::MrtdOrder::Kvm)
                    .context("computing the simulated MRTD of the image")?;
                tdx.launch(value);
                measurement = value.to_vec();
                mrtd = Some(value);
            }
            if let Some(issuer) = embedded.as_mut() {
                let loaded = match &policy {
                    Some(path) => {
                        let key = match &policy_key {
                            Some(k) => Some(twi_issuer::policy::PolicyKey::load(k).context("--policy-key")?),
                            None => None,
                        };
                        twi_issuer::policy::Policy::load_verified(path, key.as_ref())
                            .map_err(|e| anyhow::anyhow!("the appraisal policy: {e}"))?
                    }
                    None => {
                        let text = development_policy(&identity, &digest, mrtd.as_ref(), hardware_platform);
                        eprintln!(
                            "twi: no --policy: using a development policy that admits exactly this image as spiffe://{}/{} (AF_L2, CF_L2, CS_L1, mechanism c)",
                            identity.trust_domain, identity.workload
                        );
                        twi_issuer::policy::Policy::from_toml(&text).map_err(|e| {
                            anyhow::anyhow!("the development policy (check --trust-domain and --workload): {e}")
                        })?
                    }
                };
                issuer.set_policy(loaded).context("opening the issuer's policy state")?;
                match platform {
                    PlatformArg::Snp | PlatformArg::Igvm => issuer.accept_hardware_snp(twi_verifier::snp::SnpConfig {
                        trust: twi_verifier::snp::SnpTrust::amd(),
                        policy: Default::default(),
                    }),
                    PlatformArg::Tdx => {
                        if let Some(path) = &hardware.collateral {
                            let collateral = twi_verifier::tdx::Collateral::load(path, None)
                                .map_err(|e| anyhow::anyhow!("--collateral: {e}"))?;
                            issuer.accept_hardware_tdx(twi_verifier::tdx::TdxConfig::default(), Some(collateral));
                        }
                    }
                    PlatformArg::Sim | PlatformArg::SimTdx => {}
                }
            }

            let elf_for_probe = rom_path.with_file_name("twi-runtime.elf");
            let probe_anchor = &anchor;
            let self_test_rom = || -> Result<PathBuf> {
                let elf = fs::read(&elf_for_probe).with_context(|| {
                    format!(
                        "--accel auto needs {} (written by `twi build`); or pass --accel tcg|kvm",
                        elf_for_probe.display()
                    )
                })?;
                let rom = image::assemble_rom(&elf, &manifest_for(probe_anchor, Diagnostic::SelfTest))?;
                let path = out.join("self-test.rom");
                fs::write(&path, rom)?;
                Ok(path)
            };
            let decision = if hardware_profile.is_some() {
                // A confidential VM runs only under KVM on its TEE host: nothing to measure.
                accel::Decision { accel: qemu::Accel::Kvm, reason: "a confidential VM runs only under KVM".into() }
            } else {
                accel::decide(accel, &qemu_path, &self_test_rom, &state)?
            };
            eprintln!("twi: accelerator {} ({})", decision.accel.name(), decision.reason);

            let success = run::run(run::Launch {
                qemu: qemu_path,
                accel: decision.accel,
                rom: launch_path,
                out: out.clone(),
                timeout: Duration::from_secs(timeout),
                issuer: match (embedded.as_mut(), remote.as_ref()) {
                    (Some(issuer), _) => IssuerLink::Embedded(issuer),
                    (None, Some(remote)) => IssuerLink::Remote(remote),
                    (None, None) => bail!("no issuer"),
                },
                psp: &psp,
                sim: psp.launch()?,
                tdx: sim_tdx.as_mut(),
                tamper,
                measurement,
                mechanism: mechanism.map(MechanismArg::mechanism),
                hardware: hardware_profile.map(|profile| run::Hardware {
                    profile,
                    vcek_cache: hardware.vcek_cache.clone(),
                    kds: hardware.fetch.then(|| hardware.kds_url.clone()),
                    pccs: hardware.pccs.clone(),
                }),
                renew,
            })?;
            let credential = &success.issued.credential;
            fs::write(&credential_path, &credential.certificate_pem)?;
            if let (Some(wit), Some(ear), Some(provenance), Some(admission)) =
                (&credential.wit, &credential.attestation_result, &credential.provenance, &credential.admission)
            {
                fs::write(out.join("credential.wit"), wit)?;
                fs::write(out.join("attestation-result.jwt"), ear)?;
                fs::write(out.join("provenance.json"), serde_json::to_string_pretty(provenance)? + "\n")?;
                let keys = match (embedded.as_mut().and_then(|issuer| issuer.policy_mode()), &remote) {
                    (Some(mode), _) => {
                        serde_json::json!({ "keys": [mode.wit_jwk(), mode.verifier_jwk(), mode.log_jwk()] })
                    }
                    (None, Some(remote)) => remote.keys()?,
                    (None, None) => serde_json::json!({ "keys": [] }),
                };
                fs::write(out.join("issuer-jwks.json"), serde_json::to_string_pretty(&keys)? + "\n")?;
                eprintln!(
                    "twi: admitted as {} by policy {} (reference \"{}\"); wrote credential.wit, attestation-result.jwt, provenance.json, issuer-jwks.json",
                    admission.workload_id, admission.policy_version, admission.reference
                );
            }
            let ca_path = out.join("issuer-ca.pem");
            match (&embedded, &remote_ca) {
                (Some(issuer), _) => fs::write(&ca_path, issuer.ca().certificate_pem())?,
                (None, Some(pem)) => fs::write(&ca_path, pem)?,
                (None, None) => {}
            }
            eprintln!(
                "twi: wrote {} and {} in {} ms under {}",
                credential_path.display(),
                ca_path.display(),
                success.elapsed.as_millis(),
                decision.accel.name()
            );
            println!("{}", credential.workload_id);
            Ok(())
        }
        Commands::Keystore(KeystoreCommand::Provision { workload_id, key, certificate, lifetime_hours, identity }) => {
            use p384::pkcs8::DecodePrivateKey;
            let pem = zeroize::Zeroizing::new(
                fs::read_to_string(&key).with_context(|| format!("cannot read {}", key.display()))?,
            );
            let key = p384::ecdsa::SigningKey::from_pkcs8_pem(&pem)
                .map_err(|e| anyhow::anyhow!("{} is not a P-384 PKCS#8 PEM private key: {e}", key.display()))?;
            let certificate = match &certificate {
                Some(path) => {
                    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
                    let ders = twi_verifier::chain::split_certificates(&bytes)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                    let [der] = <[Vec<u8>; 1]>::try_from(ders)
                        .map_err(|_| anyhow::anyhow!("{} must hold exactly one certificate", path.display()))?;
                    Some(der)
                }
                None => None,
            };
            let mut issuer = open_issuer(&state, &identity, None)?;
            let provisioned = issuer
                .provision_owner(
                    &workload_id,
                    &key,
                    certificate.as_deref(),
                    Duration::from_secs(lifetime_hours.saturating_mul(3600)),
                )
                .context("provisioning the Key Store")?;
            eprintln!(
                "twi: Key Store: provisioned credential {} for {} (released only under mechanism d to launches the policy admits as it)",
                provisioned.serial_hex, provisioned.workload_id
            );
            println!("{}", provisioned.serial_hex);
            Ok(())
        }
        Commands::Serve { listen, policy, policy_key, roles, simulated_tee, identity } => {
            serve(&state, &listen, policy.as_deref(), policy_key.as_deref(), roles, simulated_tee.as_deref(), &identity)
        }
    }
}

/// `twi serve`: the issuer's roles over HTTP (`twi_issuer::http`) until Ctrl-C.
fn serve(
    state: &Path,
    listen: &str,
    policy: Option<&Path>,
    policy_key: Option<&Path>,
    roles: twi_issuer::http::Roles,
    simulated_tee: Option<&Path>,
    identity: &IdentityArgs,
) -> Result<()> {
    let sim_root = match simulated_tee {
        Some(dir) => Some(
            SimPsp::load_or_create(&dir.join("sim-snp"))
                .context("--simulated-tee: opening the simulated SEV-SNP firmware")?
                .root()
                .clone(),
        ),
        None => None,
    };
    let mut issuer = open_issuer(state, identity, sim_root)?;
    if let Some(dir) = simulated_tee {
        let tdx = twi_host_loader::sim::tdx::SimTdx::load_or_create(&dir.join("sim-tdx"))
            .context("--simulated-tee: opening the simulated TDX platform")?;
        issuer
            .accept_simulated_tdx(tdx.root(), tdx.collateral()?)
            .map_err(|e| anyhow::anyhow!("the issuer cannot trust the simulated TDX root: {e}"))?;
    }
    match policy {
        Some(path) => {
            let key = match policy_key {
                Some(k) => Some(twi_issuer::policy::PolicyKey::load(k).context("--policy-key")?),
                None => None,
            };
            let loaded = twi_issuer::policy::Policy::load_verified(path, key.as_ref())
                .map_err(|e| anyhow::anyhow!("the appraisal policy: {e}"))?;
            issuer.set_policy(loaded).context("opening the issuer's policy state")?;
        }
        None => eprintln!(
            "twi: no --policy: every verified launch is issued spiffe://{}/{} without a WIT, attestation result or provenance record; mechanisms b and d are refused",
            identity.trust_domain, identity.workload
        ),
    }
    let router = twi_issuer::http::router(issuer, roles);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the HTTP runtime")?;
    runtime.block_on(async {
        let listener =
            tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
        let address = listener.local_addr()?;
        eprintln!(
            "twi: serving the {} role(s) on http://{address} (state {}); Ctrl-C stops",
            roles.names().join(", "),
            state.display()
        );
        // The URL on stdout, alone on its line: scripts (and the tests) wait for it.
        {
            use std::io::Write as _;
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "http://{address}")?;
            stdout.flush()?;
        }
        twi_issuer::http::serve(listener, router).await.context("serving HTTP")
    })
}

/// `twi measure`: one digest, hex or JSON, on stdout.
fn measure_image(
    path: &Path,
    platform: MeasurePlatform,
    launch: &LaunchArgs,
    json: bool,
    td_info: Option<measure::tdx::TdInfoInputs>,
) -> Result<()> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let params = launch.params()?;
    let is_igvm = bytes.starts_with(b"IGVM");
    let (digest, kind) = match (platform, is_igvm) {
        (MeasurePlatform::Snp, false) => (measure::snp::launch_digest(&bytes, &params.snp())?, "rom"),
        (MeasurePlatform::Snp, true) => {
            if launch.vcpus != 1 || launch.vcpu_type != measure::cpu::DEFAULT_CPU_TYPE {
                eprintln!("twi: note: an IGVM file carries its own VMSAs; --vcpus and --vcpu-type do not apply");
            }
            (twi_host_loader::igvm::snp_launch_digest(&twi_host_loader::igvm::parse(&bytes)?)?, "igvm")
        }
        (MeasurePlatform::Tdx, false) => (measure::tdx::mrtd(&bytes, measure::tdx::MrtdOrder::Kvm)?, "rom"),
        (MeasurePlatform::Tdx, true) => bail!("an IGVM file has no TDX platform here: measure twi.rom for TDX"),
    };
    if !json {
        println!("{}", hex::encode(digest));
        return Ok(());
    }
    let value = match platform {
        MeasurePlatform::Snp if is_igvm => serde_json::json!({
            "platform": "snp",
            "image": path.display().to_string(),
            "image_kind": kind,
            "launch_digest": hex::encode(digest),
            "note": "the IGVM file's own VMSAs and policy apply",
        }),
        MeasurePlatform::Snp => serde_json::json!({
            "platform": "snp",
            "image": path.display().to_string(),
            "image_kind": kind,
            "launch_digest": hex::encode(digest),
            "vcpus": params.vcpus,
            "vcpu_type": params.cpu_type.name,
            "vcpu_sig": format!("{:#x}", params.cpu_type.sig()),
            "guest_features": format!("{:#x}", params.guest_features),
            "policy": format!("{:#x}", params.policy),
        }),
        MeasurePlatform::Tdx => {
            let mut value = serde_json::json!({
                "platform": "tdx",
                "image": path.display().to_string(),
                "image_kind": kind,
                "mrtd": hex::encode(digest),
                "mrtd_order": measure::tdx::MrtdOrder::Kvm.name(),
            });
            if let Some(inputs) = td_info {
                value["tee_info_hash"] = hex::encode(measure::tdx::tee_info_hash(&digest, &inputs)).into();
                value["td_attributes"] = format!("{:#x}", inputs.attributes).into();
                value["xfam"] = format!("{:#x}", inputs.xfam).into();
                value["tee_info_hash_note"] =
                    "SHA-384 of TDINFO_STRUCT with zero MRCONFIGID/MROWNER/MROWNERCONFIG and RTMRs".into();
            }
            value
        }
    };
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(())
}

/// `twi run --platform snp|tdx|igvm --print-qemu`: the launch profile's command line, for the
/// image given or the one `twi build --out DIR` wrote (defaults: 1 x EPYC-v4, policy 0x30000).
fn print_profile(platform: PlatformArg, image: Option<&Path>, out: &Path) -> Result<()> {
    let qemu_path = qemu::find_qemu().unwrap_or_else(|_| PathBuf::from(qemu::QEMU_BINARY));
    let channel = Path::new("CHANNEL.sock");
    let defaults = image::ImageParams::default();
    let profile = qemu::SnpProfile {
        vcpus: defaults.vcpus,
        cpu_type: defaults.cpu_type.name.to_string(),
        policy: defaults.policy,
    };
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
