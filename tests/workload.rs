//! End-to-end: a workload in the runtime uses its identity. The `https-get` example is linked
//! into the image (`twi build --payload`), boots under QEMU, acquires an X.509 credential and
//! GETs its target from `twi rp` over mutual TLS, through connections the host relays; the
//! relying party authorizes it by its Stable identifier.
//!
//! Needs `qemu-system-x86_64` and `openssl` (`./qemu/install-deps`); fails, never skips,
//! without them.

#[path = "dump/mod.rs"]
mod dump;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

const TWI: &str = env!("CARGO_BIN_EXE_twi-e2e");
/// The identity the development policy gives the booted image (`twi run` without `--policy`).
const WORKLOAD: &str = "spiffe://example.org/demo";
/// The Payroll story's workload, as its policy names it.
const PAYROLL_APP: &str = "spiffe://example.org/payroll-app";

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

/// The relying party's configuration `name` in `dir`: `/rows` for this workload, `/payroll` for
/// payroll-app (the Payroll story), `/forbidden` for another; the issuer's CA for mTLS and its
/// WIT key for WIT + WPT, both as `twi build` wrote them beside the image.
fn rp_config(dir: &Path, name: &str, port: u16, image: &Path) -> PathBuf {
    let (issuer_ca, issuer_jwks) = (image.join("issuer-ca.pem"), image.join("issuer-jwks.json"));
    let config = format!(
        "listen = \"127.0.0.1:{port}\"\npublic_url = \"https://127.0.0.1:{port}\"\n\
         server_certificate = \"rp.pem\"\nserver_key = \"rp.key\"\nissuer_ca = {issuer_ca:?}\n\
         simulated_tee_oid = {sim_oid:?}\nissuer_jwks = {issuer_jwks:?}\n\n\
         [[route]]\npath = \"/rows\"\nallow = [\"{WORKLOAD}\"]\nbody = \"alice,2026-11,4200\\n\"\n\n\
         [[route]]\npath = \"/payroll\"\nallow = [\"{PAYROLL_APP}\"]\nbody = \"alice,4200\\nbob,3900\\n\"\n\n\
         [[route]]\npath = \"/forbidden\"\nallow = [\"spiffe://example.org/someone-else\"]\nbody = \"secret\\n\"\n",
        issuer_ca = path(&issuer_ca),
        issuer_jwks = path(&issuer_jwks),
        sim_oid = twi_issuer::oids::Oids::default().simulated_tee.to_string(),
    );
    let file = dir.join(name);
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
        let elf = self.dir.path().join("image").join("twi-runtime.elf");
        self.build(name, &["--runtime-elf", path(&elf)], &[&format!("target={target}")], server_ca).join("twi.rom")
    }

    /// `twi build` with `how` (`--payload DIR` or `--runtime-elf FILE`), the `settings` and the
    /// server CA `server_ca` of the PKI, into a directory `name`; returns that directory.
    fn build(&self, name: &str, how: &[&str], settings: &[&str], server_ca: &str) -> PathBuf {
        let out = self.dir.path().join(name);
        let ca = format!("server-ca={}", path(&self.pki().join(server_ca)));
        let mut args = vec!["build", "--state", path(&self.state), "--out", path(&out), "--set", &ca];
        args.extend(how);
        settings.iter().for_each(|s| args.extend(["--set", s]));
        let built = twi(&args);
        assert!(built.status.success(), "twi build {args:?} failed:\n{}", stderr(&built));
        out
    }

    /// The image of the example payload `example` (built once per test run) with `settings`.
    fn example(&self, example: &str, name: &str, settings: &[&str]) -> PathBuf {
        static BUILDING: Mutex<()> = Mutex::new(());
        let _one_at_a_time = BUILDING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let elf = self.dir.path().join(format!("{example}-elf")).join("twi-runtime.elf");
        if !elf.exists() {
            let payload = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(example);
            self.build(&format!("{example}-elf"), &["--payload", path(&payload)], settings, "rp-ca.pem");
        }
        self.build(name, &["--runtime-elf", path(&elf)], settings, "rp-ca.pem")
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
        let rp_config = rp_config(&pki, "rp.toml", port, &image);
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
        Self::start_with(f, &f.rp_config)
    }

    /// `twi rp --config config` (on the fixture's port).
    fn start_with(f: &Fixture, config: &Path) -> Self {
        static PORT: Mutex<()> = Mutex::new(());
        let port = PORT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut child = Command::new(TWI)
            .args(["rp", "--config", path(config)])
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
        self.log_with_n(needle, 1)
    }

    /// The log once it holds `needle` `n` times (or after ten seconds, as it is).
    fn log_with_n(&self, needle: &str, n: usize) -> String {
        let started = Instant::now();
        loop {
            let log = self.log.lock().unwrap().clone();
            if log.matches(needle).count() >= n || started.elapsed() > Duration::from_secs(10) {
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
    // In 16 MiB of RAM, the least the layout runs the TLS workload in (issue 17).
    let (out, console) = run(f, &f.rom, "allowed", &["--memory", "16M"]);
    assert!(out.status.success(), "twi run failed:\n{}\nconsole:\n{console}", stderr(&out));
    let url = f.url("/rows");
    for line in [
        "RAM: 16 MiB from address 0 (fw_cfg etc/e820)".to_string(),
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

#[test]
fn wpt_call_gets_its_target_with_a_wit_and_a_proof_of_possession() {
    let f = fixture();
    let url = f.url("/rows");
    let settings = [format!("target={url}")];
    let image = f.example("wpt-call", "wpt-call", &[&settings[0]]);
    assert_wpt_call_allowed(f, &f.rp_config, &image.join("twi.rom"), "wpt-call", &[]);
    assert_wit_alg(&f.dir.path().join("runs/wpt-call"), "ES384", "twi-wit", "P-384");

    // Under a policy with `wit_alg = "ES256"`: the issuer signs the WIT with its P-256 key,
    // the relying party (given the JWKS `twi build --wit-alg ES256` wrote) accepts it and the
    // guest's ES384 proof under it, authorizing the same Stable identifier.
    let elf = f.dir.path().join("wpt-call-elf").join("twi-runtime.elf");
    let how = ["--runtime-elf", path(&elf), "--wit-alg", "ES256"];
    let es256 = f.build("wpt-call-es256", &how, &[&settings[0]], "rp-ca.pem");
    let policy = f.dir.path().join("es256-policy.toml");
    std::fs::write(&policy, "version = \"es256-1\"\ntrust_domain = \"example.org\"\nwit_alg = \"ES256\"\n\n[[workload]]\nid = \"demo\"\nmechanism = \"c\"\n").unwrap();
    let args = ["policy", "add-image", "--state", path(&f.state), "--workload", "demo", "--label", "es256"];
    let added = twi(&[&args[..], &[path(&policy), path(&es256)]].concat());
    assert!(added.status.success(), "twi policy add-image failed:\n{}", stderr(&added));
    let config = rp_config(&f.pki(), "rp-es256.toml", f.port, &es256);
    assert_wpt_call_allowed(f, &config, &es256.join("twi.rom"), "wpt-call-es256", &["--policy", path(&policy)]);
    assert_wit_alg(&f.dir.path().join("runs/wpt-call-es256"), "ES256", "twi-wit-es256", "P-256");
}

/// `rom` (the wpt-call example for `/rows`) runs (with `extra`) against the relying party
/// configured by `config`, which authorizes the workload by its WIT and WPT.
#[track_caller]
fn assert_wpt_call_allowed(f: &Fixture, config: &Path, rom: &Path, name: &str, extra: &[&str]) {
    let rp = RelyingParty::start_with(f, config);
    let (out, console) = run(f, rom, name, extra);
    assert!(out.status.success(), "twi run failed:\n{}\nconsole:\n{console}", stderr(&out));
    let url = f.url("/rows");
    for line in [
        format!("wpt-call: acquired a WIT for {WORKLOAD} (Enrollment) for {url}"),
        format!("wpt-call: {url} answered 200"),
        "response: alice,2026-11,4200".to_string(),
    ] {
        assert!(console.contains(&line), "{line:?} missing from the guest console:\n{console}");
    }
    // No client certificate: the relying party authorized the WIT, proven by the WPT.
    let log = rp.log_with("allowed");
    assert!(log.contains(&format!("GET /rows by {WORKLOAD} (Wit): allowed")), "relying party log:\n{log}");
}

/// The run's WIT is signed with `alg` under the key `kid`, which the run's JWKS and SPIFFE
/// bundle publish on `crv` with that `alg`.
#[track_caller]
fn assert_wit_alg(run_out: &Path, alg: &str, kid: &str, crv: &str) {
    let wit = std::fs::read_to_string(run_out.join("credential.wit")).unwrap();
    let header = twi_issuer::jose::decode_unverified(wit.trim()).unwrap().header;
    assert_eq!((header["alg"].as_str(), header["kid"].as_str()), (Some(alg), Some(kid)), "{header:?}");
    for (file, usage) in [("issuer-jwks.json", "sig"), ("trust-bundle.json", "wit-svid")] {
        let keys: serde_json::Value = serde_json::from_slice(&std::fs::read(run_out.join(file)).unwrap()).unwrap();
        let found = keys["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid && k["use"] == usage);
        let found = found.unwrap_or_else(|| panic!("{file} has no {usage} key {kid}: {keys}"));
        assert_eq!((found["crv"].as_str(), found["alg"].as_str()), (Some(crv), Some(alg)), "{file}: {found}");
    }
}

/// The Payroll story's issuer policy: payroll-app, served for its target with both credential
/// types; no image admitted yet (`twi policy add-image` does that).
fn payroll_policy(f: &Fixture) -> PathBuf {
    let text = format!(
        "version = \"payroll-1\"\ntrust_domain = \"example.org\"\n\n[[workload]]\nid = \"payroll-app\"\n\
         mechanism = \"c\"\nfreshness = \"AF_L2\"\nstickiness = \"CS_L1\"\n\n\
         [[workload.target]]\nname = \"{}\"\nfreshness = \"present-nonce\"\ntypes = [\"x509\", \"wit\"]\n",
        f.url("/payroll")
    );
    let file = f.dir.path().join("payroll-policy.toml");
    std::fs::write(&file, text).unwrap();
    file
}

fn admit(f: &Fixture, policy: &Path, image: &Path, label: &str) {
    let args = ["policy", "add-image", "--state", path(&f.state), "--workload", "payroll-app", "--label", label];
    let added = twi(&[&args[..], &[path(policy), path(image)]].concat());
    assert!(added.status.success(), "twi policy add-image failed:\n{}", stderr(&added));
}

/// `openssl s_client` (an independent TLS client) sends `GET path` with `headers` to the
/// relying party; returns what it answered.
fn raw_get(f: &Fixture, route: &str, headers: &[(&str, &str)]) -> String {
    use std::io::Write;
    let mut request = format!("GET {route} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n", f.port);
    headers.iter().for_each(|(name, value)| request.push_str(&format!("{name}: {value}\r\n")));
    request.push_str("\r\n");
    let connect = format!("127.0.0.1:{}", f.port);
    let ca = f.pki().join("rp-ca.pem");
    let mut client = Command::new("openssl")
        .args(["s_client", "-connect", &connect, "-CAfile", path(&ca), "-verify_return_error", "-quiet", "-ign_eof"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl is needed by the end-to-end tests: run ./qemu/install-deps");
    client.stdin.take().unwrap().write_all(request.as_bytes()).unwrap();
    let out = client.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A WIT copied off a run is useless without the vault's key: payroll-db refuses it alone and
/// with a proof signed by any other key.
fn assert_a_stolen_wit_is_refused(f: &Fixture, run_out: &Path) {
    use p384::elliptic_curve::Generate;
    let wit = std::fs::read_to_string(run_out.join("credential.wit")).unwrap();
    let wit = wit.trim();
    let alone = raw_get(f, "/payroll", &[("Workload-Identity-Token", wit)]);
    assert!(alone.starts_with("HTTP/1.1 401"), "a WIT without a WPT was accepted:\n{alone}");
    let thief = p384::ecdsa::SigningKey::generate();
    let ttl = Duration::from_secs(60);
    let proof = twi_issuer::wit::sign_wpt(&thief, wit, &f.url("/payroll"), std::time::SystemTime::now(), ttl).unwrap();
    let authorization = format!("WPT {proof}");
    let stolen = raw_get(f, "/payroll", &[("Workload-Identity-Token", wit), ("Authorization", &authorization)]);
    assert!(stolen.starts_with("HTTP/1.1 401"), "a WPT by another key was accepted:\n{stolen}");
    assert!(stolen.to_ascii_lowercase().contains("www-authenticate: wpt"), "{stolen}");
    assert!(!stolen.contains("alice"), "{stolen}");
}

#[track_caller]
fn assert_reads_rows(f: &Fixture, out: &Output, console: &str, release: &str) {
    assert!(out.status.success(), "payroll-app {release} failed:\n{}\nconsole:\n{console}", stderr(out));
    for line in [
        format!("payroll-app {release}: reading {}", f.url("/payroll")),
        "payroll: rows over mTLS: alice,4200 | bob,3900".to_string(),
        "payroll: rows over WIT+WPT: alice,4200 | bob,3900".to_string(),
    ] {
        assert!(console.contains(&line), "{line:?} missing from the guest console:\n{console}");
    }
}

#[test]
fn the_payroll_story_new_releases_keep_their_stable_identity_at_the_relying_party() {
    let f = fixture();
    let target = format!("target={}", f.url("/payroll"));
    let v1 = f.example("payroll", "payroll-v1", &[&target, "release=v1"]);
    let v2 = f.example("payroll", "payroll-v2", &[&target, "release=v2"]);
    let policy = payroll_policy(f);
    admit(f, &policy, &v1, "v1");
    let rp_config = std::fs::read(&f.rp_config).unwrap();
    let rp = RelyingParty::start(f);
    let with_policy = ["--policy", path(&policy)];
    // v1: admitted; reads the rows over mTLS and with WIT + WPT, as payroll-app.
    let (out, console) = run(f, &v1.join("twi.rom"), "payroll-v1", &with_policy);
    assert_reads_rows(f, &out, &console, "v1");
    let log = rp.log_with("(Wit): allowed");
    for via in ["Mtls", "Wit"] {
        assert!(log.contains(&format!("GET /payroll by {PAYROLL_APP} ({via}): allowed")), "{log}");
    }
    assert_a_stolen_wit_is_refused(f, &f.dir.path().join("runs").join("payroll-v1"));
    // v2 measures differently: refused until the issuer's policy admits it, naming v1 as closest.
    let (out, console) = run(f, &v2.join("twi.rom"), "payroll-v2-refused", &with_policy);
    assert!(!out.status.success(), "an unadmitted build got a credential:\n{console}");
    let refusal = stderr(&out);
    assert!(refusal.contains("closest: workload `payroll-app` reference #0 \"v1"), "{refusal}");
    assert!(!console.contains("payroll: rows"), "{console}");
    admit(f, &policy, &v2, "v2");
    let (out, console) = run(f, &v2.join("twi.rom"), "payroll-v2", &with_policy);
    assert_reads_rows(f, &out, &console, "v2");
    // The relying party's configuration did not change; it authorized the same identifier.
    assert_eq!(std::fs::read(&f.rp_config).unwrap(), rp_config);
    let allowed = format!("GET /payroll by {PAYROLL_APP} (Wit): allowed");
    let log = rp.log_with_n(&allowed, 2);
    assert_eq!(log.matches(&allowed).count(), 2, "{log}");
}

/// `rom` run under the dumping QEMU wrapper (RAM dumped at the console line holding `at` and at
/// the end); both dumps keep every vault key in the vault only. Returns the console.
fn run_dumped(f: &Fixture, rom: &Path, name: &str, at: &str) -> String {
    let out = f.dir.path().join("runs").join(name);
    let args = ["run", "--platform", "sim", "--image", path(rom), "--state", path(&f.state), "--out", path(&out)];
    let (during, after) = (out.with_extension("during.ram"), out.with_extension("after.ram"));
    let mut command = Command::new(TWI);
    command.args(args);
    dump::dumping(&mut command, at, &during, &after);
    let output = command.output().expect("cannot run twi");
    let console = std::fs::read_to_string(out.join("console.log")).unwrap_or_default();
    assert!(output.status.success(), "twi run failed:\n{}\nconsole:\n{console}", stderr(&output));
    let elf = rom.with_file_name("twi-runtime.elf");
    for (when, file) in [("during the call", &during), ("after the run", &after)] {
        let memory = dump::Dump::read(file, &elf);
        let keys = dump::assert_vault_keys_stay_there(&memory, when);
        assert!(keys >= 1, "{when}: no key in the vault {:x?}", memory.vault);
        std::fs::remove_file(file).unwrap();
    }
    console
}

#[test]
fn the_keys_behind_mtls_and_wpt_stay_in_the_vault() {
    let f = fixture();
    let wpt_call = f.example("wpt-call", "wpt-call-dumped", &[&format!("target={}", f.url("/rows"))]);
    let _rp = RelyingParty::start(f);
    // mTLS: the dump while the response is in (the handshake's CertificateVerify signed).
    let console = run_dumped(f, &f.rom, "https-get-dumped", "https-get: https://");
    assert!(console.contains("response: alice,2026-11,4200"), "{console}");
    // WIT + WPT: the WPT signed in the vault.
    let console = run_dumped(f, &wpt_call.join("twi.rom"), "wpt-call-dumped", "wpt-call: https://");
    assert!(console.contains("response: alice,2026-11,4200"), "{console}");
}
