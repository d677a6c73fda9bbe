//! `twi rp --config FILE`: a relying party (`twi_rp`) until Ctrl-C: an HTTPS service that
//! authenticates workloads by mutual TLS or WIT + WPT and authorizes them by their Stable
//! identifier (see rp/rp.example.toml).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

#[derive(Args, Debug)]
pub struct RpArgs {
    /// The relying party's configuration (TOML; see rp/rp.example.toml): where to listen, its
    /// certificate, the issuer CA and JWKS it trusts, and the routes with who may call them.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Listen here instead of the configuration's `listen` (port 0: any free port; the URL is
    /// printed on stdout).
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
}

pub fn execute(args: &RpArgs) -> Result<()> {
    let _ = log::set_logger(&ACCESS_LOG).map(|()| log::set_max_level(log::LevelFilter::Info));
    let mut config = twi_rp::config::Config::from_file(&args.config)
        .with_context(|| format!("reading the relying party's configuration {}", args.config.display()))?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let rp = twi_rp::server::RelyingParty::from_config(config)
        .with_context(|| format!("loading what {} names", args.config.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the HTTP runtime")?;
    runtime.block_on(async {
        let listen = rp.listen_addr();
        let listener =
            tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
        let address = listener.local_addr()?;
        eprintln!("twi: relying party on https://{address} ({}); Ctrl-C stops", args.config.display());
        super::serve::print_url(&format!("https://{address}"))?;
        rp.serve(listener).await.context("serving HTTPS")
    })
}

/// The relying party's log (each request's verdict, refused handshakes) on stderr.
struct AccessLog;

static ACCESS_LOG: AccessLog = AccessLog;

impl log::Log for AccessLog {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info && metadata.target().starts_with("twi_rp")
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("twi rp: {}", record.args());
        }
    }

    fn flush(&self) {}
}
