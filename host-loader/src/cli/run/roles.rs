//! The host's side of a run: the issuer's roles (embedded under `--state`, or `twi serve` at
//! `--issuer-url`), the anchor images must trust, and the simulated TEE (the simulated chip's
//! PSP, the simulated TDX platform) the embedded issuer is told to trust on simulated runs.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use twi_issuer::{Issuer, IssuerCa};
use twi_sim::snp::SimPsp;
use twi_sim::tdx::SimTdx;
use x509_cert::Certificate;

use super::args::RunArgs;
use super::image::Measured;
use crate::bridge::Roles;
use crate::cli::args::PlatformArg;
use crate::cli::issuer::{Anchor, load_policy, open_ca, open_issuer};
use crate::policy_file;
use crate::remote::{ClientTls, RemoteIssuer};

/// Where the issuer's roles are.
#[derive(Debug)]
pub enum IssuerSide {
    /// In this process, with its state under `--state`, once [`Side::configure`] opened it
    /// under its policy.
    Embedded(Box<Issuer>),
    /// The embedded issuer before [`Side::configure`]: its CA (the anchor images embed) is
    /// open; the policy that decides what it admits is not known until the image is measured.
    Unopened { ca: Box<IssuerCa>, sim_root: Option<Box<Certificate>> },
    /// `twi serve` at a URL, and its CA certificate (PEM) as it published it.
    Remote { client: RemoteIssuer, ca_pem: String },
}

impl IssuerSide {
    /// The roles the bridge reaches.
    pub fn roles(&mut self) -> Result<Box<dyn Roles + '_>> {
        Ok(match self {
            Self::Embedded(issuer) => Box::new(issuer),
            Self::Remote { client, .. } => Box::new(client),
            Self::Unopened { .. } => bail!("the embedded issuer was not opened under a policy"),
        })
    }

    /// The public keys of the roles' JSON signatures (WIT, attestation result, log), as JWKS.
    pub fn jwks(&mut self) -> Result<serde_json::Value> {
        match self {
            Self::Embedded(issuer) => Ok(issuer.published_keys().jwks()),
            Self::Remote { client, .. } => client.keys(),
            Self::Unopened { .. } => bail!("the embedded issuer was not opened under a policy"),
        }
    }

    /// The Verifier's attestation result `jwt` re-signed as a CWT.
    pub fn ear_cwt(&mut self, jwt: &str) -> Result<Vec<u8>> {
        match self {
            Self::Embedded(issuer) => Ok(issuer.attestation_result_cwt(jwt)?),
            Self::Remote { client, .. } => client.ear_cwt(jwt),
            Self::Unopened { .. } => bail!("the embedded issuer was not opened under a policy"),
        }
    }

    /// The trust domain's SPIFFE bundle (the CA and the WIT key).
    pub fn trust_bundle(&mut self) -> Result<serde_json::Value> {
        match self {
            Self::Embedded(issuer) => Ok(issuer.trust_bundle()?),
            Self::Remote { client, .. } => client.trust_bundle(),
            Self::Unopened { .. } => bail!("the embedded issuer was not opened under a policy"),
        }
    }

    /// The CA certificate (PEM) credentials chain to.
    pub fn ca_pem(&self) -> Result<String> {
        Ok(match self {
            Self::Embedded(issuer) => issuer.ca()?.certificate_pem().to_string(),
            Self::Unopened { ca, .. } => ca.certificate_pem().to_string(),
            Self::Remote { ca_pem, .. } => ca_pem.clone(),
        })
    }
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
                let sim_root = (!args.platform.is_hardware()).then(|| Box::new(psp.root().clone()));
                let ca = open_ca(state, &args.identity)?;
                let anchor = Anchor::of(&ca);
                let unopened = IssuerSide::Unopened { ca: Box::new(ca), sim_root };
                (unopened, anchor, format!("--state {}", state.display()))
            }
            Some(url) => {
                let client = RemoteIssuer::new(url, &client_tls(args))?.with_protocol(args.protocol.into());
                let (ca_pem, certificate) = client.ca_certificate()?;
                eprintln!("twi: using the Verifier, Credential Authority and Key Store at {}", client.url());
                if args.protocol == super::args::ProtocolArg::Est {
                    use twi_issuer::http::est::{SIMPLEENROLL_PATH, SIMPLEREENROLL_PATH};
                    let (what, path) = match &args.renew {
                        Some(_) => ("Re-enrollment", SIMPLEREENROLL_PATH),
                        None => ("Enrollment", SIMPLEENROLL_PATH),
                    };
                    eprintln!("twi: {what} by EST (RFC 7030) at {}{path}", client.url());
                }
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
        self.tdx = Some(tdx);
        Ok(())
    }

    /// What to do about an image built for another issuer.
    pub fn rebuild_advice(&self) -> String {
        match &self.issuer {
            IssuerSide::Embedded(_) | IssuerSide::Unopened { .. } => format!(
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
    pub fn configure(&mut self, state: &Path, args: &RunArgs, measured: &Measured) -> Result<()> {
        // The simulated PSP reports the launch digest a real SNP launch of these exact bytes
        // would (the default `snp` profile: 1 x EPYC-v4), so the report's MEASUREMENT equals
        // the build's reference value when the image is the one built; the simulated TDX module
        // reports the MRTD (QEMU/KVM page order): the build's `tdx.mrtd`.
        self.psp.set_launch_digest(measured.snp);
        if let (Some(tdx), Some(mrtd)) = (self.tdx.as_mut(), measured.mrtd) {
            tdx.launch(mrtd);
        }
        let IssuerSide::Unopened { sim_root, .. } = &mut self.issuer else { return Ok(()) };
        let sim_root = sim_root.take().map(|root| *root);
        let policy = match &args.policy {
            Some(path) => load_policy(path, args.policy_key.as_deref())?,
            None => development_policy(args, measured)?,
        };
        let mut issuer = open_issuer(state, &args.identity, sim_root, policy)?;
        let auditor = crate::cli::args::AuditorArgs { auditor_key: args.auditor_key.clone() };
        issuer.seal_records_to(auditor.load()?);
        // A remote issuer accepts the simulated root by its own configuration
        // (`twi serve --simulated-tee`).
        if let Some(tdx) = &self.tdx {
            issuer
                .accept_simulated_tdx(tdx.root(), tdx.collateral()?)
                .map_err(|e| anyhow!("the issuer cannot trust the simulated TDX root: {e}"))?;
        }
        accept_hardware(&mut issuer, args)?;
        self.issuer = IssuerSide::Embedded(Box::new(issuer));
        Ok(())
    }
}

/// The CA the service's certificate chains to (`--issuer-ca`, else the one beside `--image`),
/// and the owner's client certificate.
fn client_tls(args: &RunArgs) -> ClientTls {
    let beside_image = args.image.as_ref().map(|rom| rom.with_file_name("issuer-ca.pem")).filter(|ca| ca.exists());
    ClientTls {
        ca: args.issuer_ca.clone().or(beside_image),
        client: args.client_cert.clone().zip(args.client_key.clone()),
    }
}

/// On real hardware, the vendors' roots (and for TDX, Intel's collateral when given).
fn accept_hardware(issuer: &mut Issuer, args: &RunArgs) -> Result<()> {
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
        PlatformArg::Sim | PlatformArg::SimTdx | PlatformArg::SimSvsm => {}
    }
    Ok(())
}

fn development_policy(args: &RunArgs, measured: &Measured) -> Result<twi_issuer::policy::Policy> {
    let identity = &args.identity;
    let image = policy_file::Measured {
        snp: &measured.snp,
        mrtd: measured.mrtd.as_ref(),
        sbom: measured.sbom,
        other_host_profiles: &measured.other_host_profiles,
    };
    let mechanism = args.mechanism.map_or(twi_issuer::policy::Mechanism::C, Into::into);
    let hardware = args.platform.is_hardware();
    // Below the simulated SVSM the guest's reports are at its VMPL, which the policy admits.
    let vmpl = if args.platform == PlatformArg::SimSvsm { u32::from(twi_sim::svsm::GUEST_VMPL) } else { 0 };
    let (_, policy) = policy_file::development_policy_at_vmpl(
        &identity.trust_domain,
        &identity.workload,
        image,
        hardware,
        mechanism,
        vmpl,
    )
    .map_err(|e| anyhow!("the development policy (check --trust-domain and --workload): {e}"))?;
    eprintln!(
        "twi: no --policy: using a development policy that admits exactly this image as spiffe://{}/{} (AF_L2, CF_L2, CS_L1, mechanism {})",
        identity.trust_domain,
        identity.workload,
        mechanism.name()
    );
    Ok(policy)
}
