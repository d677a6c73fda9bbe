//! `twi serve`: the issuer's roles over HTTP (`twi_issuer::http`) until Ctrl-C, for
//! `twi run --issuer-url`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use twi_sim::snp::SimPsp;
use twi_sim::tdx::SimTdx;

use super::args::IdentityArgs;
use super::issuer::{load_policy, open_issuer};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port; the URL is printed on stdout).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8740")]
    listen: String,
    /// The appraisal policy (TOML; see issuer/policy.example.toml): which launches the
    /// roles admit, and as which workload (`twi policy add-image` admits an image).
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// The policy key's public half (PEM): checks FILE.sig, needed for CF_L0 claims.
    #[arg(long, value_name = "PEM")]
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
}

pub fn execute(state: &Path, args: &ServeArgs) -> Result<()> {
    let sim_root = match &args.simulated_tee {
        Some(dir) => Some(
            SimPsp::load_or_create(&dir.join("sim-snp"))
                .context("--simulated-tee: opening the simulated SEV-SNP firmware")?
                .root()
                .clone(),
        ),
        None => None,
    };
    let policy = load_policy(&args.policy, args.policy_key.as_deref())?;
    let mut issuer = open_issuer(state, &args.identity, sim_root, policy)?;
    if let Some(dir) = &args.simulated_tee {
        let tdx = SimTdx::load_or_create(&dir.join("sim-tdx"))
            .context("--simulated-tee: opening the simulated TDX platform")?;
        issuer
            .accept_simulated_tdx(tdx.root(), tdx.collateral()?)
            .map_err(|e| anyhow::anyhow!("the issuer cannot trust the simulated TDX root: {e}"))?;
    }
    let router = twi_issuer::http::router(issuer, args.roles);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the HTTP runtime")?;
    runtime.block_on(async {
        let listen = &args.listen;
        let listener =
            tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
        let address = listener.local_addr()?;
        eprintln!(
            "twi: serving the {} role(s) on http://{address} (state {}); Ctrl-C stops",
            args.roles.names().join(", "),
            state.display()
        );
        print_url(&format!("http://{address}"))?;
        twi_issuer::http::serve(listener, router).await.context("serving HTTP")
    })
}

/// The URL on stdout, alone on its line: scripts (and the tests) wait for it.
pub(super) fn print_url(url: &str) -> Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{url}")?;
    stdout.flush()?;
    Ok(())
}
