//! End-to-end: a workload in the runtime uses its identity. The `https-get` example is linked
//! into the image (`twi build --payload`), boots under QEMU, acquires an X.509 credential and
//! GETs its target from `twi rp` over mutual TLS, through connections the host relays; the
//! relying party authorizes it by its Stable identifier.
//!
//! Needs `qemu-system-x86_64` and `openssl` (`./qemu/install-deps`); fails, never skips,
//! without them.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

const TWI: &str = env!("CARGO_BIN_EXE_twi-e2e");
/// The identity the development policy gives the booted image (`twi run` without `--policy`).
const WORKLOAD: &str = "spiffe://example.org/demo";

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn twi(args: &[&str]) -> Output {
    Command::new(TWI).args(args).output().expect("cannot run twi")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is needed by the end-to-end tests: run ./qemu/install-deps (or apt-get install openssl)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

const P384: [&str; 5] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384", "-nodes"];

/// A CA `ca` (`ca.pem`, `ca.key`) in `dir`.
fn make_ca(dir: &Path, ca: &str) {
    let (pem, key, subject) = (format!("{ca}.pem"), format!("{ca}.key"), format!("/CN={ca}"));
    let rest = ["-keyout", &key, "-out", &pem, "-days", "2", "-subj", &subject];
    let ext = ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"];
    openssl(dir, &[&["req", "-x509"][..], &P384, &rest, &ext].concat());
}

/// The relying party's server certificate for 127.0.0.1 (`rp.pem`, `rp.key`), issued by `rp-ca`.
fn make_server_certificate(dir: &Path) {
    openssl(dir, &[&["req", "-new"][..], &P384, &["-keyout", "rp.key", "-out", "rp.csr", "-subj", "/CN=rp"]].concat());
    std::fs::write(dir.join("rp.ext"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n").unwrap();
    let sign = ["-CA", "rp-ca.pem", "-CAkey", "rp-ca.key", "-CAcreateserial", "-days", "1", "-sha384"];
    openssl(dir, &[&["x509", "-req", "-in", "rp.csr", "-out", "rp.pem", "-extfile", "rp.ext"][..], &sign].concat());
}

/// The relying party's configuration: `/rows` for this workload, `/forbidden` for another.
fn rp_config(dir: &Path, port: u16, issuer_ca: &Path) -> PathBuf {
    let config = format!(
        "listen = \"127.0.0.1:{port}\"\npublic_url = \"https://127.0.0.1:{port}\"\n\
         server_certificate = \"rp.pem\"\nserver_key = \"rp.key\"\nissuer_ca = {issuer_ca:?}\n\
         simulated_tee_oid = {sim_oid:?}\n\n\
         [[route]]\npath = \"/rows\"\nallow = [\"{WORKLOAD}\"]\nbody = \"alice,2026-11,4200\\n\"\n\n\
         [[route]]\npath = \"/forbidden\"\nallow = [\"spiffe://example.org/someone-else\"]\nbody = \"secret\\n\"\n",
        issuer_ca = path(issuer_ca),
        sim_oid = twi_issuer::oids::Oids::default().simulated_tee.to_string(),
    );
    let file = dir.join("rp.toml");
    std::fs::write(&file, config).unwrap();
    file
}

/// A port free now (the relying party binds it later: its URL is measured into the image).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The image with the `https-get` payload, the issuer state and the relying party's files,
/// shared by the tests (building the firmware takes minutes).
struct Fixture {
    dir: tempfile::TempDir,
    state: PathBuf,
    port: u16,
    rp_config: PathBuf,
    /// The ROM whose target is `/rows` and whose server CA is the relying party's.
    rom: PathBuf,
}

impl Fixture {
    fn url(&self, route: &str) -> String {
        format!("https://127.0.0.1:{}{route}", self.port)
    }

    fn pki(&self) -> PathBuf {
        self.dir.path().join("pki")
    }

    /// An image of the same firmware with other settings (only the manifest differs).
    fn image(&self, name: &str, target: &str, server_ca: &str) -> PathBuf {
        let out = self.dir.path().join(name);
        let elf = self.dir.path().join("image").join("twi-runtime.elf");
        let (target, ca) = (format!("target={target}"), format!("server-ca={}", path(&self.pki().join(server_ca))));
        let args = ["build", "--runtime-elf", path(&elf), "--set", &target, "--set", &ca];
        let built = twi(&[&args[..], &["--state", path(&self.state), "--out", path(&out)]].concat());
        assert!(built.status.success(), "twi build failed:\n{}", stderr(&built));
        out.join("twi.rom")
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (state, pki, image) = (dir.path().join("state"), dir.path().join("pki"), dir.path().join("image"));
        std::fs::create_dir_all(&pki).unwrap();
        make_ca(&pki, "rp-ca");
        make_ca(&pki, "other-ca");
        make_server_certificate(&pki);
        let port = free_port();
        let payload = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/https-get");
        let target = format!("target=https://127.0.0.1:{port}/rows");
        let ca = format!("server-ca={}", path(&pki.join("rp-ca.pem")));
        let args = ["build", "--payload", path(&payload), "--set", &target, "--set", &ca];
        let built = twi(&[&args[..], &["--state", path(&state), "--out", path(&image)]].concat());
        assert!(built.status.success(), "twi build --payload failed:\n{}", stderr(&built));
        let rp_config = rp_config(&pki, port, &state.join("issuer").join("issuer-ca.pem"));
        Fixture { rom: image.join("twi.rom"), dir, state, port, rp_config }
    })
}

/// `twi rp` on the fixture's port while the guard lives (one test at a time holds the port).
struct RelyingParty {
    child: Child,
    log: Arc<Mutex<String>>,
    _port: MutexGuard<'static, ()>,
}

impl RelyingParty {
    fn start(f: &Fixture) -> Self {
        static PORT: Mutex<()> = Mutex::new(());
        let port = PORT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut child = Command::new(TWI)
            .args(["rp", "--config", path(&f.rp_config)])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot run twi rp");
        let mut url = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut url).unwrap();
        if url.trim() != f.url("") {
            let mut err = String::new();
            child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            panic!("twi rp did not start on {} (stdout {url:?}):\n{err}", f.url(""));
        }
        let log = Arc::new(Mutex::new(String::new()));
        let (from, into) = (BufReader::new(child.stderr.take().unwrap()), log.clone());
        std::thread::spawn(move || {
            from.lines().map_while(Result::ok).for_each(|l| into.lock().unwrap().push_str(&(l + "\n")))
        });
        RelyingParty { child, log, _port: port }
    }

    /// The log once it holds `needle` (or after ten seconds, as it is).
    fn log_with(&self, needle: &str) -> String {
        let started = Instant::now();
        loop {
            let log = self.log.lock().unwrap().clone();
            if log.contains(needle) || started.elapsed() > Duration::from_secs(10) {
                return log;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for RelyingParty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `twi run --platform sim` of `rom` (plus `extra`), and the guest's console.
fn run(f: &Fixture, rom: &Path, name: &str, extra: &[&str]) -> (Output, String) {
    let out = f.dir.path().join("runs").join(name);
    let args = ["run", "--platform", "sim", "--image", path(rom), "--state", path(&f.state), "--out", path(&out)];
    let output = twi(&[&args[..], extra].concat());
    let console = std::fs::read_to_string(out.join("console.log")).unwrap_or_default();
    (output, console)
}

#[test]
fn the_workload_gets_its_target_over_mutual_tls_authorized_by_its_stable_identifier() {
    let f = fixture();
    let rp = RelyingParty::start(f);
    let (out, console) = run(f, &f.rom, "allowed", &[]);
    assert!(out.status.success(), "twi run failed:\n{}\nconsole:\n{console}", stderr(&out));
    let url = f.url("/rows");
    for line in [
        format!("https-get: acquired {WORKLOAD} (Enrollment) for {url}"),
        format!("https-get: {url} answered 200"),
        "response: alice,2026-11,4200".to_string(),
    ] {
        assert!(console.contains(&line), "{line:?} missing from the guest console:\n{console}");
    }
    // The relying party's own verdict: the client certificate chained to the issuer CA and
    // named the workload the route allows.
    let log = rp.log_with("allowed");
    assert!(log.contains(&format!("GET /rows by {WORKLOAD} (Mtls): allowed")), "relying party log:\n{log}");
}

#[test]
fn a_route_for_another_workload_answers_403_and_the_run_fails() {
    let f = fixture();
    let rom = f.image("forbidden", &f.url("/forbidden"), "rp-ca.pem");
    let rp = RelyingParty::start(f);
    let (out, console) = run(f, &rom, "forbidden", &[]);
    assert!(!out.status.success(), "the workload reported success on a 403:\n{console}");
    assert!(stderr(&out).contains("twi: error: the workload reported failure: "), "{}", stderr(&out));
    assert!(console.contains(&format!("{} answered 403", f.url("/forbidden"))), "{console}");
    let log = rp.log_with("403");
    assert!(log.contains(&format!("GET /forbidden: 403 {WORKLOAD}")), "relying party log:\n{log}");
    assert!(!log.contains("secret"), "{log}");
}

#[test]
fn a_byte_the_host_flips_in_a_relayed_connection_fails_tls_not_the_guest() {
    let f = fixture();
    let rp = RelyingParty::start(f);
    let (out, console) = run(f, &f.rom, "relay-tamper", &["--tamper", "relay-byte:300"]);
    assert!(!out.status.success(), "the run succeeded over altered bytes:\n{console}");
    assert!(stderr(&out).contains("twi: tamper:"), "{}", stderr(&out));
    assert!(console.contains(&format!("https-get: GET {} failed: TLS:", f.url("/rows"))), "{console}");
    assert!(!console.contains("panic"), "{console}");
    let log = rp.log_with("handshake");
    assert!(!log.contains("allowed"), "the relying party served altered traffic:\n{log}");
}

#[test]
fn a_server_outside_the_measured_server_ca_is_refused_by_the_workload() {
    let f = fixture();
    let rom = f.image("other-ca", &f.url("/rows"), "other-ca.pem");
    let rp = RelyingParty::start(f);
    let (out, console) = run(f, &rom, "other-ca", &[]);
    assert!(!out.status.success(), "{console}");
    assert!(
        console.contains("TLS: the server's certificate was rejected: it does not chain to a configured CA"),
        "{console}"
    );
    let log = rp.log_with("handshake");
    assert!(!log.contains("allowed"), "{log}");
}
