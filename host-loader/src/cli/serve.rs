//! `twi serve`: the issuer's roles over HTTPS (`twi_issuer::http`) until Ctrl-C, for
//! `twi run --issuer-url`. TLS by default (a server certificate from files, or issued by the
//! service's CA into its state); plain HTTP only on loopback and only when asked for.

use std::path::{Path, PathBuf};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use twi_issuer::Issuer;
use twi_issuer::http::{Limits, RateLimit, Roles, RouterLimits, TlsSettings, Transport};
use twi_sim::snp::SimPsp;
use twi_sim::tdx::SimTdx;

use super::args::{AuditorArgs, IdentityArgs};
use super::issuer::{issuer_dir, load_policy, open_issuer_shared};
use crate::remote::RemoteIssuer;

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
    /// The roles whose endpoints this process serves: verifier, ca, key-store, log
    /// (comma-separated). Without the verifier role, the CA (mechanism c) and the Key Store
    /// (mechanism d) have the evidence appraised by the Verifier process --verifier-url names;
    /// the Key Store has the keys it provisions and releases certified by the CA of its own
    /// process, or without the ca role by the --ca-url process. The log role holds the log's keys and serves its checkpoints and proofs from the
    /// state (or --database); a CA without it has the --log-url process log its credentials.
    #[arg(long, default_value = "verifier,ca,key-store,log", value_parser = twi_issuer::http::Roles::parse)]
    roles: twi_issuer::http::Roles,
    /// Development only: accept evidence from the simulated TEE whose keys are in DIR (the
    /// `--state` of the `twi run` that launches the guests: DIR/sim-snp, DIR/sim-tdx).
    #[arg(long, value_name = "DIR")]
    simulated_tee: Option<PathBuf>,
    /// Serve as one of several replicas of one trust domain: the provenance log (records and
    /// signed tree heads), the Verifier's nonces, epochs and mechanism-B results waiting to be
    /// redeemed in this PostgreSQL database
    /// (`postgres://USER@127.0.0.1:PORT/DB`, or `host=/run/postgresql user=… dbname=…`; another
    /// host only over mutual TLS: `?sslrootcert=CA.pem&sslcert=REPLICA.pem&sslkey=REPLICA.key`),
    /// its tables created if absent. Every replica is given the same
    /// --state (the keys) and the same URL. Default: the embedded stores
    /// (STATE/issuer/provenance.sqlite, nonces in memory).
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// The request log on stderr (one event per request: method, path, status, time, client,
    /// operator; never a query, header or body): `text`, `json` (one object per line) or `off`.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(flatten)]
    identity: IdentityArgs,
    #[command(flatten)]
    auditor: AuditorArgs,
    #[command(flatten)]
    tls: ServeTlsArgs,
    #[command(flatten)]
    peer: PeerArgs,
}

/// How a process reaches the roles it does not serve in other processes, over mutual TLS.
#[derive(Args, Debug)]
pub struct PeerArgs {
    /// For a process without the verifier role: the Verifier process (`https://HOST:PORT`)
    /// that appraises mechanism C's evidence for this Credential Authority and mechanism D's for
    /// this Key Store. Needs --database (the Verifier keeps what it appraised there, and this
    /// process redeems it once) and --role-cert.
    #[arg(long, value_name = "URL", requires_all = ["database", "role_cert"])]
    verifier_url: Option<String>,
    /// For a process serving the ca role without the log role: the log process
    /// (`https://HOST:PORT`, `twi serve --roles log`) that signs this Credential Authority's
    /// records before it signs the credentials naming them, then appends them. Needs --role-cert.
    #[arg(long, value_name = "URL", requires = "role_cert")]
    log_url: Option<String>,
    /// For a process without the ca role: the Credential Authority process (`https://HOST:PORT`)
    /// this Verifier obtains mechanism A's credentials from, and this Key Store has the keys it
    /// provisions and releases certified by. Needs --database and --role-cert.
    #[arg(long, value_name = "URL", requires_all = ["database", "role_cert"])]
    ca_url: Option<String>,
    /// The CA the other processes' (--verifier-url, --ca-url, --log-url) server certificates chain to (default:
    /// STATE/issuer/issuer-ca.pem, which issues `twi serve`'s own server certificates).
    #[arg(long, value_name = "PEM")]
    peer_ca: Option<PathBuf>,
    /// This process's client certificate (PEM) for the processes it calls: under their
    /// --operator-ca, which is how they know a role, not a workload, asks.
    #[arg(long, value_name = "PEM", requires = "role_key")]
    role_cert: Option<PathBuf>,
    /// The key of --role-cert (PKCS#8 or SEC1 PEM).
    #[arg(long, value_name = "PEM", requires = "role_cert")]
    role_key: Option<PathBuf>,
    /// For a process without the verifier role: the Verifier's public key (SPKI PEM) its
    /// attestation results are checked under. Default: the key the --verifier-url process
    /// publishes (`GET /v1/keys`, over the mutually authenticated connection), fetched at the
    /// start. Such a process neither reads nor makes the Verifier's keys in its --state.
    #[arg(long, value_name = "PEM")]
    verifier_key: Option<PathBuf>,
    /// For a process serving the verifier role only: the Credential Authority's certificate
    /// (the one images are built against: `twi build` writes it as IMG/issuer-ca.pem), whose
    /// name evidence binds. Default: the one the --ca-url process serves, else
    /// STATE/issuer/issuer-ca.pem if the state has one. Such a process neither reads nor
    /// makes the CA's, WIT, log or Key Store keys in its --state.
    #[arg(long, value_name = "PEM")]
    issuer_ca: Option<PathBuf>,
}

/// The mutual-TLS clients of the roles this process calls in other processes, one per peer
/// URL, made once at the start (the keys it fetches and the calls it makes share them).
#[derive(Default)]
struct PeerClients {
    verifier: Option<Arc<RemoteIssuer>>,
    ca: Option<Arc<RemoteIssuer>>,
    log: Option<Arc<RemoteIssuer>>,
}

/// Refuses, before anything is opened, a set of roles the processes cannot split that way.
fn check_roles(roles: Roles, args: &ServeArgs) -> Result<()> {
    let peer = &args.peer;
    if roles.key_store && !roles.credential_authority && peer.ca_url.is_none() {
        bail!(
            "a process serving the key-store role without the ca role has the keys it provisions and releases certified by the Credential Authority process: give --ca-url https://HOST:PORT (with --role-cert/--role-key and --database), or add ca to --roles"
        );
    }
    if roles.credential_authority && !roles.log && peer.log_url.is_none() {
        bail!(
            "a process serving the ca role without the log role has its records signed and logged by the log process: give --log-url https://HOST:PORT (with --role-cert/--role-key), or add log to --roles"
        );
    }
    if peer.log_url.is_some() && !roles.credential_authority {
        bail!("--log-url is for a process serving the ca role (it logs the credentials it makes): drop it");
    }
    if args.auditor.auditor_key.is_some() && !roles.log {
        bail!(
            "--auditor-key: the log process seals the records it signs; give the auditor key to the process serving the log role"
        );
    }
    Ok(())
}

/// [`PeerClients`] for the URLs given; a URL of a role this process serves itself is refused.
fn peer_clients(state: &Path, roles: Roles, args: &PeerArgs) -> Result<PeerClients> {
    let client = |option: &str, url: &Option<String>, served: bool, role: &str| {
        let Some(url) = url else { return Ok(None) };
        if served {
            bail!("{option} {url}: this process serves the {role} role itself; drop one of them");
        }
        Ok(Some(Arc::new(peer_client(state, args, url).with_context(|| option.to_string())?)))
    };
    Ok(PeerClients {
        verifier: client("--verifier-url", &args.verifier_url, roles.verifier, "verifier")?,
        ca: client("--ca-url", &args.ca_url, roles.credential_authority, "ca")?,
        log: client("--log-url", &args.log_url, roles.log, "log")?,
    })
}

/// The roles of other processes the HTTP service calls: the Verifier when it does not serve
/// that role, the CA when it does not serve that one.
fn peers(clients: &PeerClients) -> twi_issuer::http::Peers {
    use twi_issuer::http::{CaPeer, VerifierPeer};
    twi_issuer::http::Peers {
        verifier: clients.verifier.clone().map(|c| c as Arc<dyn VerifierPeer>),
        ca: clients.ca.clone().map(|c| c as Arc<dyn CaPeer>),
    }
}

/// The keys this process holds in its state: those of the roles it serves. The Verifier's,
/// unless it serves that role, are known by their public half (`--verifier-key`, or fetched
/// from `--verifier-url`); the CA's, unless it serves ca, by its certificate (a Key Store then
/// has its keys certified by the --ca-url process); the
/// log's, unless it serves log, not at all (a CA process calls the --log-url process).
fn held_keys(state: &Path, roles: Roles, args: &PeerArgs, clients: &PeerClients) -> Result<twi_issuer::HeldKeys> {
    use twi_issuer::{CaKeys, KeyStoreKeys, LogKeys, VerifierKeys};
    let verifier = match (&args.verifier_key, &clients.verifier) {
        _ if roles.verifier => VerifierKeys::Held,
        (Some(path), _) => VerifierKeys::Public(read_verifying_key("--verifier-key", path)?),
        (None, Some(client)) => VerifierKeys::Public(published_verifier_key(client)?),
        (None, None) => VerifierKeys::Unknown,
    };
    let own = issuer_dir(state).join("issuer-ca.pem");
    let ca = match (&args.issuer_ca, &clients.ca) {
        _ if roles.credential_authority => CaKeys::Held,
        (Some(path), _) => CaKeys::Public(Box::new(read_certificate("--issuer-ca", path)?)),
        (None, Some(client)) => CaKeys::Public(Box::new(client.ca_certificate()?.1)),
        (None, None) if own.exists() => CaKeys::Public(Box::new(read_certificate("the state's CA certificate", &own)?)),
        (None, None) => bail!(
            "a process without the ca role needs the Credential Authority's certificate (the name evidence binds): give --issuer-ca PEM (IMG/issuer-ca.pem of an image) or --ca-url"
        ),
    };
    let log = match &clients.log {
        _ if roles.log => LogKeys::Held,
        Some(client) => LogKeys::Peer(client.clone()),
        None => LogKeys::None,
    };
    let key_store = if roles.key_store { KeyStoreKeys::Held } else { KeyStoreKeys::NotHeld };
    Ok(twi_issuer::HeldKeys { verifier, ca, key_store, log })
}

/// A certificate (PEM) named by `option`.
fn read_certificate(option: &str, path: &Path) -> Result<x509_cert::Certificate> {
    let pem = std::fs::read(path).with_context(|| format!("{option} {}", path.display()))?;
    <x509_cert::Certificate as der::DecodePem>::from_pem(&pem)
        .with_context(|| format!("{option} {}: not a PEM certificate", path.display()))
}

/// A P-384 public key (SPKI PEM, `-----BEGIN PUBLIC KEY-----`) named by `option`.
fn read_verifying_key(option: &str, path: &Path) -> Result<p384::ecdsa::VerifyingKey> {
    use p384::pkcs8::DecodePublicKey;
    let pem = std::fs::read_to_string(path).with_context(|| format!("{option} {}", path.display()))?;
    p384::ecdsa::VerifyingKey::from_public_key_pem(&pem)
        .with_context(|| format!("{option} {}: not a P-384 public key in PEM (BEGIN PUBLIC KEY)", path.display()))
}

/// A client of the role process at `url`, over mutual TLS.
fn peer_client(state: &Path, args: &PeerArgs, url: &str) -> Result<crate::remote::RemoteIssuer> {
    let tls = crate::remote::ClientTls {
        ca: Some(peer_ca(state, args)),
        client: args.role_cert.clone().zip(args.role_key.clone()),
    };
    crate::remote::RemoteIssuer::new(url, &tls).with_context(|| format!("the role process at {url}"))
}

/// The CA other processes' server certificates chain to.
fn peer_ca(state: &Path, args: &PeerArgs) -> PathBuf {
    args.peer_ca.clone().or_else(|| args.issuer_ca.clone()).unwrap_or_else(|| issuer_dir(state).join("issuer-ca.pem"))
}

/// The key the Verifier process publishes for its attestation results (`kid` twi-verifier).
fn published_verifier_key(verifier: &crate::remote::RemoteIssuer) -> Result<p384::ecdsa::VerifyingKey> {
    let keys = verifier.keys().context("fetching the Verifier's key (--verifier-url)")?;
    let jwk = keys["keys"].as_array().into_iter().flatten().find(|k| k["kid"] == twi_issuer::VERIFIER_KID).context(
        "the --verifier-url process publishes no Verifier key (kid twi-verifier): does it serve the verifier role?",
    )?;
    let jwk: twi_issuer::jose::Jwk = serde_json::from_value(jwk.clone()).context("the Verifier's published key")?;
    match jwk.to_public().context("the Verifier's published key")? {
        twi_issuer::jose::EcPublicKey::P384(key) => Ok(key),
        other => bail!("the Verifier's published key is {:?}, not P-384", other.alg()),
    }
}

/// How `twi serve` writes its request log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
    Off,
}

/// Sends the request events (`twi_issuer::http::access`) to stderr in `format`.
fn request_log(format: LogFormat) -> Result<()> {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let only_requests = Targets::new().with_target(twi_issuer::http::access::TARGET, LevelFilter::INFO);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(false);
    let registry = tracing_subscriber::registry();
    let installed = match format {
        LogFormat::Off => return Ok(()),
        LogFormat::Text => registry.with(fmt.with_filter(only_requests)).try_init(),
        LogFormat::Json => registry.with(fmt.json().flatten_event(true).with_filter(only_requests)).try_init(),
    };
    installed.context("installing the request log")
}

/// How `twi serve` speaks TLS.
#[derive(Args, Debug)]
pub struct ServeTlsArgs {
    /// The server's certificate chain (PEM, leaf first); without it the service's CA issues
    /// one into STATE/issuer/tls-server.pem for localhost, 127.0.0.1, ::1, the listen address
    /// and every --tls-name.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The key of --tls-cert (PKCS#8 or SEC1 PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Another DNS name or IP address the issued server certificate names (repeatable): the
    /// name clients reach the service by.
    #[arg(long = "tls-name", value_name = "NAME")]
    tls_names: Vec<String>,
    /// The operator CA (PEM): client certificates under it may use the owner's endpoints
    /// (POST /v1/key-store/provision). Without it those endpoints refuse every request.
    #[arg(long, value_name = "PEM")]
    operator_ca: Option<PathBuf>,
    /// Development only: speak plain HTTP, without TLS. Refused unless --listen is a loopback
    /// address; owner endpoints then refuse every request.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key", "tls_names", "operator_ca"])]
    insecure_plain_http: bool,
    /// At most this many connections at once; more are answered 503 with Retry-After.
    #[arg(long, value_name = "N", default_value_t = 256)]
    max_connections: usize,
    /// Seconds a connection may stay idle, or take to send a request's headers.
    #[arg(long, value_name = "SECS", default_value_t = 15)]
    idle_timeout: u64,
    /// Challenges (POST /v1/challenge) per second per client address, after a burst of
    /// --challenge-burst; beyond, 429 with Retry-After.
    #[arg(long, value_name = "N", default_value_t = 5.0)]
    challenge_rate: f64,
    /// Challenges a client may make at once before --challenge-rate applies.
    #[arg(long, value_name = "N", default_value_t = 20)]
    challenge_burst: u32,
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
    check_roles(args.roles, args)?;
    let policy = load_policy(&args.policy, args.policy_key.as_deref())?;
    let clients = peer_clients(state, args.roles, &args.peer)?;
    let held = held_keys(state, args.roles, &args.peer, &clients)?;
    let database = args.database.as_deref();
    let mut issuer = open_issuer_shared(state, &args.identity, sim_root, policy, database, held)?;
    issuer.seal_records_to(args.auditor.load()?);
    if let Some(client) = clients.ca.clone().filter(|_| args.roles.key_store) {
        issuer.certify_key_store_by(twi_issuer::KeyStoreCa::Peer(client));
    }
    if let Some(dir) = &args.simulated_tee {
        let tdx = SimTdx::load_or_create(&dir.join("sim-tdx"))
            .context("--simulated-tee: opening the simulated TDX platform")?;
        issuer
            .accept_simulated_tdx(tdx.root(), tdx.collateral()?)
            .map_err(|e| anyhow::anyhow!("the issuer cannot trust the simulated TDX root: {e}"))?;
    }
    let peers = peers(&clients);
    request_log(args.log_format)?;
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
        let transport = transport(state, &issuer, &args.tls, address)?;
        let scheme = match transport {
            Transport::Tls(_) => "https",
            Transport::PlainLoopback => "http",
        };
        eprintln!(
            "twi: serving the {} role(s) on {scheme}://{address} (state {}{}{}); Ctrl-C stops",
            args.roles.names().join(", "),
            state.display(),
            args.database.as_deref().map_or(String::new(), |url| format!(
                ", log, nonces, epochs and attestation results in {}",
                twi_issuer::database::display_url(url)
            )),
            [
                ("Verifier", &args.peer.verifier_url),
                ("Credential Authority", &args.peer.ca_url),
                ("log", &args.peer.log_url)
            ]
            .iter()
            .filter_map(|(role, url)| url.as_deref().map(|url| format!(", the {role} at {url}")))
            .collect::<String>()
        );
        let challenges =
            RateLimit { per_second: args.tls.challenge_rate, burst: args.tls.challenge_burst, ..RateLimit::default() };
        let router_limits = RouterLimits { challenges, ..RouterLimits::default() };
        let router = twi_issuer::http::router_calling(issuer, args.roles, router_limits, peers);
        let limits = Limits {
            max_connections: args.tls.max_connections.max(1),
            idle_timeout: Duration::from_secs(args.tls.idle_timeout.max(1)),
            ..Limits::default()
        };
        print_url(&format!("{scheme}://{address}"))?;
        twi_issuer::http::serve(listener, router, transport, limits).await.context("serving HTTP")
    })
}

/// TLS with the configured or issued server certificate; plain HTTP only on loopback, when
/// asked for, with a warning.
fn transport(state: &Path, issuer: &Issuer, tls: &ServeTlsArgs, address: SocketAddr) -> Result<Transport> {
    if tls.insecure_plain_http {
        if !address.ip().is_loopback() {
            bail!(
                "--insecure-plain-http is allowed on a loopback address only, not {address}: listen on 127.0.0.1 or ::1, or drop the flag to serve over TLS"
            );
        }
        eprintln!(
            "twi: warning: serving plain HTTP on {address} (--insecure-plain-http): no confidentiality, no server authentication, owner endpoints closed; for development on this host only"
        );
        return Ok(Transport::PlainLoopback);
    }
    let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    if !address.ip().is_unspecified() {
        names.push(address.ip().to_string());
    }
    names.extend(tls.tls_names.iter().cloned());
    let settings = TlsSettings {
        files: tls.tls_cert.clone().zip(tls.tls_key.clone()),
        names,
        operator_ca: tls.operator_ca.clone(),
    };
    let config = twi_issuer::http::tls::server_config(issuer.ca().ok(), &issuer_dir(state), &settings)
        .context("setting up TLS")?;
    if tls.operator_ca.is_none() {
        eprintln!("twi: no --operator-ca: the owner's endpoints (provisioning) refuse every request");
    }
    Ok(Transport::Tls(config))
}

/// The URL on stdout, alone on its line: scripts (and the tests) wait for it.
pub(super) fn print_url(url: &str) -> Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{url}")?;
    stdout.flush()?;
    Ok(())
}
