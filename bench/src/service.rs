//! The issuer as a service under load (issue 14's figure): `twi serve` on loopback (TLS 1.3, the
//! embedded SQLite log, every role in one process) and 64 clients, each with its own keep-alive
//! HTTPS connection, issuing as `twi run --issuer-url` does (a challenge, then simulated SEV-SNP
//! evidence to the Credential Authority: mechanism C) for a fixed time. Beside it, measured in
//! the same run and interleaved: what the machine's cores could reach at best by
//! `openssl speed -multi CORES ecdsap384`, an issuance costing at least one P-384 verification
//! (the report's) and one signature (the certificate's). The clients share those cores (each
//! report is signed by the simulated PSP in the client), so the bound is not reachable here;
//! the figure is there to show how far the service is from the crypto it cannot avoid. A second
//! bound counts the signatures each credential cost the service in that run, as the service
//! issue defines the bound: read from its `GET /metrics` before and after (signatures over
//! certificates), with the log records per signed tree head its group commit reached.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use twi_host_loader::remote::{ClientTls, RemoteIssuer};
use twi_issuer::policy::Mechanism;
use twi_proto::msg::{CredentialKind, Initiate, Platform};
use twi_sim::snp::SimPsp;

use crate::cpu;
use crate::issue::{LAUNCH_DIGEST, TARGET, Workload, openssl_speed_multi, policy_text};
use crate::stats::{Samples, figure, section};

/// Clients issuing at once.
const CLIENTS: usize = 64;
/// How long each run issues.
const RUN: Duration = Duration::from_secs(5);

/// How long a client refused (after the loader's own retries) waits before it starts again.
const REFUSED_WAIT: Duration = Duration::from_millis(100);

/// `twi serve`, killed when dropped.
struct Serving {
    child: Child,
    url: String,
    /// The CA certificate its clients trust.
    ca: PathBuf,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `twi serve` over the issuer state `dir/STATE`, the simulated chips in `dir/chips`,
/// and the replicas' PostgreSQL `database` if one is given (else the state's SQLite log).
fn serve(twi: &Path, dir: &Path, state: &str, database: Option<&str>) -> Result<Serving> {
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, policy_text())?;
    let mut command = Command::new(twi);
    command.arg("serve");
    if let Some(url) = database {
        command.args(["--database", url]);
    }
    let mut child = command
        .args(["--listen", "127.0.0.1:0", "--log-format", "off"])
        .arg("--state")
        .arg(dir.join(state))
        .arg("--policy")
        .arg(&policy)
        .arg("--simulated-tee")
        .arg(dir.join("chips"))
        // Every client is 127.0.0.1: the per-address challenge limit would measure itself.
        .args(["--challenge-rate", "1000000", "--challenge-burst", "1000000"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {} serve", twi.display()))?;
    let mut line = String::new();
    let stdout = child.stdout.take().context("twi serve's stdout")?;
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    let ca = dir.join(state).join("issuer/issuer-ca.pem");
    let serving = Serving { child, url: line.trim().to_string(), ca };
    if !serving.url.starts_with("https://") {
        bail!("twi serve printed no https URL (got {line:?})");
    }
    Ok(serving)
}

/// Requests refused or failed, by step and reason.
#[derive(Default)]
struct Refusals(Mutex<BTreeMap<String, u64>>);

impl Refusals {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, u64>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn count(&self, step: &str, reason: &str) {
        let reason = reason.lines().next().unwrap_or_default();
        *self.lock().entry(format!("{step}: {reason}")).or_default() += 1;
    }

    /// Says each reason and how often, and returns how many there were.
    fn report(&self) -> u64 {
        let reasons = self.lock();
        for (reason, n) in reasons.iter() {
            say!("  refused {n}x: {reason}");
        }
        reasons.values().sum()
    }
}

/// One client's issuances until `stop`: the milliseconds each credential took (challenge to
/// credential, the client's simulated report signature included); refusals in `refused`.
fn client(url: &str, ca: PathBuf, chip: &Path, stop: &AtomicBool, refused: &Refusals) -> Result<Vec<f64>> {
    let remote = RemoteIssuer::new(url, &ClientTls { ca: Some(ca), client: None })?;
    let rp_id = remote.ca_certificate()?.1.tbs_certificate().subject().to_string();
    let mut psp = SimPsp::load_or_create(chip)?;
    psp.set_launch_digest(LAUNCH_DIGEST);
    let workload = Workload::new(&psp)?;
    let initiate = Initiate { target: TARGET.into(), credential_type: CredentialKind::X509, hint: None };
    let mut latencies = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let asked = Instant::now();
        let challenge = match remote.initiate(Platform::SimSnp, &LAUNCH_DIGEST, &initiate) {
            Ok(challenge) => challenge,
            Err(e) => {
                refused.count("challenge", &format!("{e:#}"));
                std::thread::sleep(REFUSED_WAIT);
                continue;
            }
        };
        match workload.evidence(&psp, &challenge.nonce, &rp_id, |e| remote.issue(&e, Some(Mechanism::C)))? {
            Ok(_) => latencies.push(asked.elapsed().as_secs_f64() * 1e3),
            Err(e) => {
                refused.count("credential", &e);
                std::thread::sleep(REFUSED_WAIT);
            }
        }
    }
    Ok(latencies)
}

/// Who spent processor time in a run, in the order [`Usage::NAMES`] says.
const USAGE_KINDS: usize = 4;

/// Processor time by who spent it: the `twi serve` processes, the database server (its
/// backends included), the clients (this benchmark's threads), and what the machine left idle.
#[derive(Clone, Copy, Default)]
struct Usage([f64; USAGE_KINDS]);

impl Usage {
    const NAMES: [&str; USAGE_KINDS] = ["twi serve", "PostgreSQL", "clients", "idle"];

    /// The seconds each has spent so far; `database` is the server's main process.
    fn now(servers: &[&Serving], database: Option<u32>) -> Self {
        Self([
            servers.iter().map(|s| cpu::tree_seconds(s.child.id())).sum(),
            database.map_or(0.0, cpu::tree_seconds),
            cpu::own_seconds(),
            cpu::idle_seconds(),
        ])
    }

    /// Milliseconds per credential between `before` and now.
    fn per_credential(&self, before: &Self, credentials: usize) -> Self {
        Self(std::array::from_fn(|i| (self.0[i] - before.0[i]) * 1e3 / credentials.max(1) as f64))
    }
}

/// [`Usage`] per credential over several runs.
#[derive(Default)]
struct UsageSamples([Samples; USAGE_KINDS]);

impl UsageSamples {
    fn push(&mut self, usage: Usage) {
        for (samples, value) in self.0.iter_mut().zip(usage.0) {
            samples.push(value);
        }
    }

    /// One figure per kind that was measured, beside `reference`'s if there is one.
    fn print(&self, label: &str, reference: Option<(&str, &Self)>) {
        for (i, samples) in self.0.iter().enumerate() {
            let theirs = reference.map(|(what, r)| (what, &r.0[i]));
            let measured = |s: &Samples| s.median().is_some_and(|m| m > 0.0);
            if measured(samples) || theirs.is_some_and(|(_, r)| measured(r)) {
                let name = format!("  CPU per credential, {}, {label}", Usage::NAMES[i]);
                figure(&name, "ms", samples, theirs);
            }
        }
    }
}

/// What one run measured.
struct Run {
    /// Credentials per second delivered.
    rate: f64,
    /// Each credential's milliseconds, sorted.
    latencies: Vec<f64>,
    refused: u64,
    /// Processor milliseconds per credential.
    usage: Usage,
}

impl Run {
    /// The latency below which `fraction` of the credentials were delivered.
    fn percentile(&self, fraction: f64) -> f64 {
        let last = self.latencies.len().saturating_sub(1);
        self.latencies.get((last as f64 * fraction).round() as usize).copied().unwrap_or(f64::NAN)
    }
}

/// The credentials `servers` delivered to [`CLIENTS`] clients (spread over them in turn) over
/// [`RUN`], the requests refused or failed, and where the processor time went (`database` is
/// the database server's main process, if the servers share one).
fn service_run(servers: &[&Serving], dir: &Path, database: Option<u32>) -> Result<Run> {
    let (stop, refused) = (AtomicBool::new(false), Refusals::default());
    let chip = dir.join("chips/sim-snp");
    let before = Usage::now(servers, database);
    let start = Instant::now();
    let outcomes: Vec<Result<Vec<f64>>> = std::thread::scope(|s| {
        let clients: Vec<_> = servers
            .iter()
            .cycle()
            .take(CLIENTS)
            .map(|at| s.spawn(|| client(&at.url, at.ca.clone(), &chip, &stop, &refused)))
            .collect();
        std::thread::sleep(RUN);
        stop.store(true, Ordering::Relaxed);
        clients.into_iter().map(|c| c.join().unwrap_or_else(|_| Err(anyhow!("a client panicked")))).collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let after = Usage::now(servers, database);
    let mut latencies: Vec<f64> = outcomes.into_iter().collect::<Result<Vec<_>>>()?.concat();
    latencies.sort_by(f64::total_cmp);
    let usage = after.per_credential(&before, latencies.len());
    Ok(Run { rate: latencies.len() as f64 / elapsed, latencies, refused: refused.report(), usage })
}

/// The service's counters (`GET /metrics`) this benchmark reads.
struct Counters {
    signatures: u64,
    certificates: u64,
    records: u64,
    heads: u64,
}

impl Counters {
    fn read(remote: &RemoteIssuer) -> Result<Self> {
        let text = remote.metrics()?;
        let read = |name: &str| twi_issuer::metrics::read(&text, name).ok_or_else(|| anyhow!("no {name} in /metrics"));
        Ok(Self {
            signatures: read("twi_ecdsa_signatures_total")?,
            certificates: read("twi_x509_certificates_total")?,
            records: read("twi_log_records_total")?,
            heads: read("twi_log_tree_heads_total")?,
        })
    }

    fn since(&self, before: &Self) -> Self {
        Self {
            signatures: self.signatures - before.signatures,
            certificates: self.certificates - before.certificates,
            records: self.records - before.records,
            heads: self.heads - before.heads,
        }
    }
}

pub fn service(twi: &Path, runs: usize) -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    section(&format!(
        "twi serve (TLS 1.3, SQLite log) with {CLIENTS} HTTPS clients vs openssl speed -multi {cores} ecdsap384"
    ));
    let dir = chips()?;
    let serving = serve(twi, dir.path(), "state", None)?;
    let operator = RemoteIssuer::new(&serving.url, &ClientTls { ca: Some(serving.ca.clone()), client: None })?;
    let (mut rate, mut bound, mut failed) = (Samples::default(), Samples::default(), Samples::default());
    let (mut counted, mut p50, mut p99) = (Samples::default(), Samples::default(), Samples::default());
    let (mut per_credential, mut per_head) = (Samples::default(), Samples::default());
    let mut usage = UsageSamples::default();
    for _ in 0..runs {
        let before = Counters::read(&operator)?;
        let run = service_run(&[&serving], dir.path(), None)?;
        usage.push(run.usage);
        let made = Counters::read(&operator)?.since(&before);
        let n = made.signatures as f64 / made.certificates.max(1) as f64;
        per_credential.push(n);
        per_head.push(made.records as f64 / made.heads.max(1) as f64);
        rate.push(run.rate);
        failed.push(run.refused as f64);
        p50.push(run.percentile(0.50));
        p99.push(run.percentile(0.99));
        let (sign, verify) = openssl_speed_multi(cores)?;
        bound.push(1.0 / (1.0 / sign + 1.0 / verify));
        counted.push(1.0 / (n / sign + 1.0 / verify));
    }
    let name = format!("credentials per second, {CLIENTS} clients");
    figure(&name, "/s", &rate, Some((&format!("bound on {cores} cores 1/(1/sign + 1/verify)"), &bound)));
    let what = format!("bound on {cores} cores 1/(n/sign + 1/verify), n counted by the service");
    figure(&name, "/s", &rate, Some((&what, &counted)));
    figure("  n: ECDSA signatures per credential (/metrics)", "", &per_credential, None);
    figure("  log records per signed tree head (/metrics)", "", &per_head, None);
    figure("latency p50, challenge to credential", "ms", &p50, None);
    figure("latency p99, challenge to credential", "ms", &p99, Some(("p50", &p50)));
    figure("requests refused or failed per run", "", &failed, None);
    usage.print("SQLite", None);
    Ok(())
}

/// A directory with the simulated SEV-SNP chip the clients and `twi serve --simulated-tee`
/// share, launched with the benchmark's workload.
fn chips() -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let mut psp = SimPsp::load_or_create(&dir.path().join("chips/sim-snp"))?;
    psp.set_launch_digest(LAUNCH_DIGEST);
    Ok(dir)
}

/// Replicas (issue 14 item 6): two `twi serve` processes on one PostgreSQL database (a
/// throwaway cluster of Debian's server on loopback, as the tests start it), the clients spread
/// over them, against one process on the embedded SQLite log, interleaved run by run. On one
/// machine the replicas share its cores: the figure is what the shared database costs, not
/// what more machines would give.
pub fn replicas(twi: &Path, runs: usize) -> Result<()> {
    section(&format!("twi serve: two replicas on one PostgreSQL database vs one on SQLite, {CLIENTS} HTTPS clients"));
    let dir = chips()?;
    let cluster = twi_testkit::postgres::Cluster::start();
    let sqlite = serve(twi, dir.path(), "state-sqlite", None)?;
    let first = serve(twi, dir.path(), "state-pg", Some(&cluster.url()))?;
    let second = serve(twi, dir.path(), "state-pg", Some(&cluster.url()))?;
    let (mut lite, mut pg, mut lite_p99, mut pg_p99) =
        (Samples::default(), Samples::default(), Samples::default(), Samples::default());
    let (mut refused, mut lite_usage, mut pg_usage) =
        (Samples::default(), UsageSamples::default(), UsageSamples::default());
    for _ in 0..runs {
        let one = service_run(&[&sqlite], dir.path(), None)?;
        let two = service_run(&[&first, &second], dir.path(), cluster.server_pid())?;
        lite_usage.push(one.usage);
        pg_usage.push(two.usage);
        lite.push(one.rate);
        lite_p99.push(one.percentile(0.99));
        pg.push(two.rate);
        pg_p99.push(two.percentile(0.99));
        refused.push((one.refused + two.refused) as f64);
    }
    figure("credentials per second, 2 replicas on PostgreSQL", "/s", &pg, Some(("one process on SQLite", &lite)));
    figure("latency p99, 2 replicas on PostgreSQL", "ms", &pg_p99, Some(("one process on SQLite", &lite_p99)));
    figure("requests refused or failed per run (both)", "", &refused, None);
    pg_usage.print("2 replicas", Some(("one on SQLite", &lite_usage)));
    Ok(())
}
