//! The host's side of a run: the issuer's roles (embedded under `--state`, or `twi serve` at
//! `--issuer-url`), the anchor images must trust, and the simulated TEE (the simulated chip's
//! PSP, the simulated TDX platform) the embedded issuer is told to trust on simulated runs.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use twi_issuer::Issuer;
use twi_sim::snp::SimPsp;
use twi_sim::tdx::SimTdx;

use super::args::RunArgs;
use super::image::Measured;
use crate::cli::args::PlatformArg;
use crate::cli::issuer::{Anchor, load_policy, open_issuer};
use crate::policy_file;
use crate::remote::RemoteIssuer;

/// Where the issuer's roles are.
#[derive(Debug)]
pub enum IssuerSide {
    /// In this process, with its state under `--state`.
    Embedded(Box<Issuer>),
    /// `twi serve` at a URL, and its CA certificate (PEM) as it published it.
    Remote { client: RemoteIssuer, ca_pem: String },
}

/// The issuer, its anchor, and the simulated TEE of one run.
#[derive(Debug)]
pub struct Side {
    pub issuer: IssuerSide,
    pub anchor: Anchor,
    /// Where the issuer comes from, for messages.
    pub origin: String,
    pub psp: SimPsp,
    /// `--platform sim-tdx`: the simulated TDX platform.
    pub tdx: Option<SimTdx>,
}

impl Side {
    pub fn open(state: &Path, args: &RunArgs) -> Result<Self> {
        let chip_dir = args.sim_chip.clone().unwrap_or_else(|| state.join("sim-snp"));
        let psp = SimPsp::load_or_create(&chip_dir).context("opening the simulated SEV-SNP firmware")?;
        let (issuer, anchor, origin) = match &args.issuer_url {
            None => {
                // Simulated evidence is accepted only on a simulated run.
                let sim_root = (!args.platform.is_hardware()).then(|| psp.root().clone());
                let issuer = open_issuer(state, &args.identity, sim_root)?;
                let anchor = Anchor::of(&issuer);
                (IssuerSide::Embedded(Box::new(issuer)), anchor, format!("--state {}", state.display()))
            }
            Some(url) => {
                let client = RemoteIssuer::new(url)?;
                let (ca_pem, certificate) = client.ca_certificate()?;
                eprintln!("twi: using the Verifier, Credential Authority and Key Store at {}", client.url());
                let origin = format!("the issuer at {}", client.url());
                (IssuerSide::Remote { client, ca_pem }, Anchor::of_certificate(&certificate), origin)
            }
        };
        let mut side = Self { issuer, anchor, origin, psp, tdx: None };
        if args.platform == PlatformArg::SimTdx {
            side.open_sim_tdx(state, args)?;
        }
        Ok(side)
    }

    fn open_sim_tdx(&mut self, state: &Path, args: &RunArgs) -> Result<()> {
        let mut tdx = SimTdx::load_or_create(&state.join("sim-tdx")).context("opening the simulated TDX platform")?;
        tdx.set_quote_format(args.tdx_quote);
        // A remote issuer accepts the simulated root by its own configuration
        // (`twi serve --simulated-tee`).
        if let IssuerSide::Embedded(issuer) = &mut self.issuer {
            issuer
                .accept_simulated_tdx(tdx.root(), tdx.collateral()?)
                .map_err(|e| anyhow!("the issuer cannot trust the simulated TDX root: {e}"))?;
        }
        self.tdx = Some(tdx);
        Ok(())
    }

    /// What to do about an image built for another issuer.
    pub fn rebuild_advice(&self) -> String {
        match &self.issuer {
            IssuerSide::Embedded(_) => format!(
                "run it with the --state it was built with, or rebuild it for this one (`twi build {} --out DIR`, or `twi run` without --image)",
                self.origin
            ),
            IssuerSide::Remote { client, .. } => format!(
                "rebuild it against that issuer (`twi run --issuer-url {}` without --image builds one)",
                client.url()
            ),
        }
    }

    /// Tells the simulators what the image measures, and gives the embedded issuer its
    /// policy (the file, else a development policy admitting exactly this image) and, on
    /// real hardware, the vendors' roots.
    pub fn configure(&mut self, args: &RunArgs, measured: &Measured) -> Result<()> {
        // The simulated PSP reports the launch digest a real SNP launch of these exact bytes
        // would (the default `snp` profile: 1 x EPYC-v4), so the report's MEASUREMENT equals
        // the build's reference value when the image is the one built; the simulated TDX module
        // reports the MRTD (QEMU/KVM page order): the build's `tdx.mrtd`.
        self.psp.set_launch_digest(measured.snp);
        if let (Some(tdx), Some(mrtd)) = (self.tdx.as_mut(), measured.mrtd) {
            tdx.launch(mrtd);
        }
        let IssuerSide::Embedded(issuer) = &mut self.issuer else { return Ok(()) };
        let policy = match &args.policy {
            Some(path) => load_policy(path, args.policy_key.as_deref())?,
            None => development_policy(args, measured)?,
        };
        issuer.set_policy(policy).context("opening the issuer's policy state")?;
        match args.platform {
            PlatformArg::Snp | PlatformArg::Igvm => issuer.accept_hardware_snp(twi_verifier::snp::SnpConfig {
                trust: twi_verifier::snp::SnpTrust::amd(),
                policy: Default::default(),
            }),
            PlatformArg::Tdx => {
                if let Some(path) = &args.hardware.collateral {
                    let collateral =
                        twi_verifier::tdx::Collateral::load(path, None).map_err(|e| anyhow!("--collateral: {e}"))?;
                    issuer.accept_hardware_tdx(twi_verifier::tdx::TdxConfig::default(), Some(collateral));
                }
            }
            PlatformArg::Sim | PlatformArg::SimTdx => {}
        }
        Ok(())
    }
}

fn development_policy(args: &RunArgs, measured: &Measured) -> Result<twi_issuer::policy::Policy> {
    let identity = &args.identity;
    let image = policy_file::Measured { snp: &measured.snp, mrtd: measured.mrtd.as_ref() };
    let (_, policy) =
        policy_file::development_policy(&identity.trust_domain, &identity.workload, image, args.platform.is_hardware())
            .map_err(|e| anyhow!("the development policy (check --trust-domain and --workload): {e}"))?;
    eprintln!(
        "twi: no --policy: using a development policy that admits exactly this image as spiffe://{}/{} (AF_L2, CF_L2, CS_L1, mechanism c)",
        identity.trust_domain, identity.workload
    );
    Ok(policy)
}
