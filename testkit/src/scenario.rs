//! End-to-end scenarios: the `twi` command line as a user runs it, one builder call per
//! option instead of an argument list repeated in every test, and `twi serve` as a child
//! process the scenarios reach with `--issuer-url`.
//!
//! ```no_run
//! # use twi_testkit::scenario::{Scenario, Twi};
//! # let (rom, state, out) = (std::path::Path::new("twi.rom"), std::path::Path::new("state"), std::path::Path::new("out"));
//! const TWI: Twi = Twi("target/debug/twi");
//! let run = Scenario::sim(TWI).image(rom).state(state).out(out).accel("tcg").mechanism("b").run();
//! run.assert_success("twi run --mechanism b");
//! ```

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::tools::utf8;

/// How long `twi serve` may take to print its URL.
const SERVE_READY: Duration = Duration::from_secs(60);

/// The `twi` command line under test, by its path (in `twi-tests`:
/// `env!("CARGO_BIN_EXE_twi-e2e")`).
#[derive(Clone, Copy, Debug)]
pub struct Twi(pub &'static str);

impl Twi {
    /// A command running `twi`, for what the builders do not cover (another environment).
    pub fn command(self) -> Command {
        Command::new(self.0)
    }

    /// Runs `twi ARGS` to its end.
    pub fn run(self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap_or_else(|e| panic!("cannot run {}: {e}", self.0))
    }

    /// `twi keystore provision --state STATE --workload-id ID --key KEY [--certificate CERT]`:
    /// the workload owner's credential and key into the Key Store.
    pub fn provision(self, state: &Path, workload_id: &str, key: &Path, certificate: Option<&Path>) -> Output {
        let mut args = vec!["keystore", "provision", "--state", utf8(state), "--workload-id", workload_id];
        args.extend(["--key", utf8(key)]);
        if let Some(certificate) = certificate {
            args.extend(["--certificate", utf8(certificate)]);
        }
        self.run(&args)
    }

    /// `twi build --out DIR/image --state DIR/state` (the built-in workload) into a fresh
    /// temporary directory: the image most end-to-end tests share, built once per test binary.
    pub fn build_default(self) -> Built {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (state, image) = (dir.path().join("state"), dir.path().join("image"));
        let out = self.run(&["build", "--out", utf8(&image), "--state", utf8(&state)]);
        assert!(out.status.success(), "twi build failed:\n{}", String::from_utf8_lossy(&out.stderr));
        let rom = image.join("twi.rom");
        assert!(rom.is_file(), "twi build wrote no {}", rom.display());
        Built { _dir: dir, state, image, rom }
    }
}

/// What [`Twi::build_default`] made; its directory lives as long as this value.
#[derive(Debug)]
pub struct Built {
    _dir: tempfile::TempDir,
    /// The issuer state the image was built against (`--state`).
    pub state: PathBuf,
    /// The image directory (`--out`).
    pub image: PathBuf,
    /// The image's ROM.
    pub rom: PathBuf,
}

/// `twi run`, option by option.
#[derive(Clone, Debug)]
pub struct Scenario {
    twi: Twi,
    args: Vec<String>,
    /// `--out`, where a successful run writes its credential.
    out: Option<PathBuf>,
}

impl Scenario {
    /// `twi run --platform PLATFORM`.
    pub fn new(twi: Twi, platform: &str) -> Self {
        Self { twi, args: vec!["run".into(), "--platform".into(), platform.into()], out: None }
    }

    /// `twi run --platform sim`: the simulated SEV-SNP chip.
    pub fn sim(twi: Twi) -> Self {
        Self::new(twi, "sim")
    }

    /// `twi run --platform sim-tdx`: the simulated TDX platform.
    pub fn sim_tdx(twi: Twi) -> Self {
        Self::new(twi, "sim-tdx")
    }

    /// Any option, with its value if it takes one.
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.into());
        self
    }

    fn option(self, name: &str, value: &str) -> Self {
        self.arg(name).arg(value)
    }

    fn path_option(self, name: &str, value: &Path) -> Self {
        self.option(name, utf8(value))
    }

    /// `--image ROM` (without it, `twi run` builds the image itself).
    pub fn image(self, rom: &Path) -> Self {
        self.path_option("--image", rom)
    }

    /// `--state DIR`: the embedded issuer's and the simulators' state.
    pub fn state(self, dir: &Path) -> Self {
        self.path_option("--state", dir)
    }

    /// `--out DIR`: where the run writes what it obtained.
    pub fn out(mut self, dir: &Path) -> Self {
        self.out = Some(dir.to_path_buf());
        self.path_option("--out", dir)
    }

    /// `--accel tcg|kvm|auto`.
    pub fn accel(self, accel: &str) -> Self {
        self.option("--accel", accel)
    }

    /// `--mechanism a|b|c|d`.
    pub fn mechanism(self, mechanism: &str) -> Self {
        self.option("--mechanism", mechanism)
    }

    /// `--policy FILE`.
    pub fn policy(self, file: &Path) -> Self {
        self.path_option("--policy", file)
    }

    /// `--policy-key PEM`.
    pub fn policy_key(self, pem: &Path) -> Self {
        self.path_option("--policy-key", pem)
    }

    /// `--tamper WHAT`: the host misbehaves (tests only).
    pub fn tamper(self, what: &str) -> Self {
        self.option("--tamper", what)
    }

    /// `--renew SERIAL`.
    pub fn renew(self, serial: &str) -> Self {
        self.option("--renew", serial)
    }

    /// `--sim-chip DIR`: another simulated chip.
    pub fn sim_chip(self, dir: &Path) -> Self {
        self.path_option("--sim-chip", dir)
    }

    /// `--issuer-url URL`: the roles of a `twi serve`.
    pub fn issuer_url(self, url: &str) -> Self {
        self.option("--issuer-url", url)
    }

    /// `--issuer-ca PEM`: the CA the service's TLS certificate chains to.
    pub fn issuer_ca(self, pem: &Path) -> Self {
        self.path_option("--issuer-ca", pem)
    }

    /// `--client-cert PEM --client-key PEM`: the owner's client certificate.
    pub fn client_certificate(self, cert: &Path, key: &Path) -> Self {
        self.path_option("--client-cert", cert).path_option("--client-key", key)
    }

    /// `--tdx-quote 4|5|5-td15`.
    pub fn tdx_quote(self, format: &str) -> Self {
        self.option("--tdx-quote", format)
    }

    /// `--workload ID`.
    pub fn workload(self, id: &str) -> Self {
        self.option("--workload", id)
    }

    /// The command line, for a test that changes its environment before running it.
    pub fn command(&self) -> Command {
        let mut command = self.twi.command();
        command.args(&self.args);
        command
    }

    /// Runs the scenario to its end.
    pub fn run(&self) -> Run {
        let output = self.command().output().unwrap_or_else(|e| panic!("cannot run {}: {e}", self.twi.0));
        Run { args: self.args.join(" "), out: self.out.clone(), output }
    }
}

/// What a `twi` run printed and how it ended.
#[derive(Debug)]
pub struct Run {
    args: String,
    out: Option<PathBuf>,
    pub output: Output,
}

impl Run {
    pub fn success(&self) -> bool {
        self.output.status.success()
    }

    /// Its stderr: the progress lines and the error.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Its stdout, trimmed.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).trim().to_string()
    }

    /// Fails the test with the log unless the run succeeded; returns the log.
    #[track_caller]
    pub fn assert_success(&self, what: &str) -> String {
        let log = self.log();
        assert!(self.success(), "{what} (twi {}) failed:\n{log}", self.args);
        log
    }

    /// Fails the test with the log unless the run failed; returns the log.
    #[track_caller]
    pub fn assert_failure(&self, what: &str) -> String {
        let log = self.log();
        assert!(!self.success(), "{what} (twi {}):\n{log}", self.args);
        log
    }

    /// Fails the test unless the run failed saying `says` and wrote no credential (`--out`'s
    /// `credential.pem`); `what` names what must not have gone through. Returns the log.
    #[track_caller]
    pub fn assert_refused(&self, what: &str, says: &str) -> String {
        let log = self.assert_failure(what);
        assert!(log.contains(says), "unclear failure message (expected {says:?}):\n{log}");
        if let Some(out) = &self.out {
            assert!(!out.join("credential.pem").exists(), "{what}: a credential was written:\n{log}");
        }
        log
    }
}

/// `twi serve` on an ephemeral loopback port, killed when dropped.
#[derive(Debug)]
pub struct Served {
    child: Child,
    /// `https://127.0.0.1:PORT` (`http://` under `--insecure-plain-http`), as it printed it once
    /// listening.
    pub url: String,
}

impl Served {
    /// `twi serve --listen 127.0.0.1:0 ARGS` (HTTPS unless ARGS say `--insecure-plain-http`),
    /// once it listens.
    pub fn start(twi: Twi, args: &[&str]) -> Self {
        Self::start_logging_to(twi, args, Stdio::inherit())
    }

    /// [`Served::start`] with the service's stderr (its request log) going to `stderr`.
    pub fn start_logging_to(twi: Twi, args: &[&str], stderr: impl Into<Stdio>) -> Self {
        let mut child = twi
            .command()
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("cannot start twi serve");
        // Ready when it prints its URL (it has bound the port by then).
        let stdout = child.stdout.take().expect("a piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut served = Self { child, url: String::new() };
        let line = rx.recv_timeout(SERVE_READY).unwrap_or_default();
        let plain = args.contains(&"--insecure-plain-http");
        let scheme = if plain { "http" } else { "https" };
        assert!(line.starts_with(&format!("{scheme}://127.0.0.1:")), "twi serve did not print its URL (got {line:?})");
        served.url = line.trim().to_string();
        served
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
