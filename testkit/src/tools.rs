//! The independent implementations the tests check our formats against: `openssl` (X.509,
//! ECDSA), Python's jwcrypto (JOSE: WIT, WPT, EAR), pyhpke (RFC 9180 HPKE), pycose (COSE
//! receipts, CoRIMs, vendor statements), go-spiffe's rules re-implemented over `cryptography` (SPIFFE bundles and
//! SVIDs: go-spiffe is not packaged for Debian), each driven by a script that reads one JSON
//! document on stdin; Go's golang.org/x/mod/sumdb/note and sumdb/tlog themselves (C2SP
//! checkpoints, RFC 9162 proofs), from Debian's packages, driven by a small Go command; and
//! tpm2-tools' `tpm2_eventlog` (TCG crypto-agile event logs).
//!
//! `./qemu/install-deps` installs every one of them. A test whose tool is missing fails with a
//! sentence naming that command: it never skips (interoperability is the point of the test)
//! and never installs anything while it runs.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The command that installs every tool the tests need.
pub const INSTALL: &str = "./qemu/install-deps";

/// The JOSE check (jwcrypto): WIT, WPT and EAR tokens against their keys, and tokens that
/// must fail (see the script's docstring for its input).
pub const JOSE_CHECK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python/jose_check.py");
/// The HPKE check (pyhpke): RFC 9180 messages opened and sealed both ways.
pub const HPKE_CHECK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python/hpke_check.py");

/// Runs `openssl ARGS`; a missing `openssl` fails the test, naming the install command.
pub fn openssl(args: &[&str]) -> Output {
    Command::new("openssl").args(args).output().unwrap_or_else(|e| {
        panic!("cannot run `openssl` ({e}): these tests need it; run {INSTALL} (or `apt-get install openssl`)")
    })
}

/// `tpm2_eventlog LOG` (tpm2-tools: TCG crypto-agile event logs): parses the log and returns
/// the SHA-384 register values it replays to, by register index. Fails the test if the tool is
/// missing (naming the install command) or refuses the log.
pub fn tpm2_eventlog_sha384(log: &Path) -> std::collections::BTreeMap<u32, String> {
    let out = Command::new("tpm2_eventlog").arg(log).output().unwrap_or_else(|e| {
        panic!("cannot run `tpm2_eventlog` ({e}): these tests need it; run {INSTALL} (or `apt-get install tpm2-tools`)")
    });
    assert_ok(&out, &format!("tpm2_eventlog {}", utf8(log)));
    let text = String::from_utf8_lossy(&out.stdout);
    let bank = text.split_once("pcrs:\n").and_then(|(_, pcrs)| pcrs.split_once("sha384:\n")).map(|(_, b)| b);
    let bank = bank.unwrap_or_else(|| panic!("tpm2_eventlog printed no SHA-384 registers:\n{text}"));
    bank.lines()
        .map_while(|line| {
            let (index, value) = line.trim().split_once(':')?;
            Some((index.trim().parse().ok()?, value.trim().trim_start_matches("0x").to_lowercase()))
        })
        .collect()
}

/// Fails the test, with what `out` printed, unless the command it comes from succeeded.
#[track_caller]
pub fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `openssl verify -CAfile CA CERT` accepts the PEM certificate `cert` under the PEM CA `ca`.
#[track_caller]
pub fn assert_openssl_verifies(ca: &Path, cert: &Path) {
    let (ca, cert) = (utf8(ca), utf8(cert));
    let out = openssl(&["verify", "-CAfile", ca, cert]);
    assert_ok(&out, &format!("openssl verify -CAfile {ca} {cert}"));
}

/// A credential issued on the simulated TEE: `openssl verify` refuses it for its critical
/// simulated-TEE extension, and accepts it once told to (`-ignore_critical`).
pub fn assert_openssl_verifies_simulated(ca: &Path, cert: &Path) {
    let (ca, cert) = (utf8(ca), utf8(cert));
    let refused = openssl(&["verify", "-CAfile", ca, cert]);
    let said = format!("{}{}", String::from_utf8_lossy(&refused.stdout), String::from_utf8_lossy(&refused.stderr));
    assert!(
        !refused.status.success() && said.contains("unhandled critical extension"),
        "openssl verify accepted a simulated credential without being told:\n{said}"
    );
    let out = openssl(&["verify", "-ignore_critical", "-CAfile", ca, cert]);
    assert_ok(&out, &format!("openssl verify -ignore_critical -CAfile {ca} {cert}"));
}

/// An operator CA and one client certificate under it (EKU clientAuth), made by `openssl` in
/// `dir`: what `twi serve --operator-ca` trusts and the owner presents.
#[derive(Debug, Clone)]
pub struct OperatorPki {
    pub ca: std::path::PathBuf,
    pub client_cert: std::path::PathBuf,
    pub client_key: std::path::PathBuf,
    /// The CA's key, for [`OperatorPki::server`].
    ca_key: std::path::PathBuf,
}

impl OperatorPki {
    /// A new CA `CN=<name> operator CA` and its client `CN=<name> owner`, in `dir/<name>-*`.
    pub fn new(dir: &Path, name: &str) -> Self {
        let file = |what: &str| dir.join(format!("{name}-{what}"));
        let (ca, ca_key, csr) = (file("operator-ca.pem"), file("operator-ca.key"), file("owner.csr"));
        let (client_cert, client_key, ext) = (file("owner.pem"), file("owner.key"), file("owner.ext"));
        let curve = "ec_paramgen_curve:P-384";
        let ca_subject = format!("/CN={name} operator CA");
        let out = openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            curve,
            "-nodes",
            "-keyout",
            utf8(&ca_key),
            "-out",
            utf8(&ca),
            "-subj",
            &ca_subject,
            "-days",
            "2",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ]);
        assert_ok(&out, "openssl req -x509 (the operator CA)");
        let owner_subject = format!("/CN={name} owner");
        let out = openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            curve,
            "-nodes",
            "-keyout",
            utf8(&client_key),
            "-out",
            utf8(&csr),
            "-subj",
            &owner_subject,
        ]);
        assert_ok(&out, "openssl req (the owner's key and request)");
        std::fs::write(
            &ext,
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
        )
        .expect("cannot write the extensions file");
        let pki = Self { ca, client_cert, client_key, ca_key };
        pki.sign(&csr, &ext, "1", &pki.client_cert, "the owner's client certificate");
        pki
    }

    /// `openssl x509 -req`: the request `csr` signed under the CA with the extensions file
    /// `ext` and `serial`, for two days, into `out`.
    fn sign(&self, csr: &Path, ext: &Path, serial: &str, out: &Path, what: &str) {
        let (ca, ca_key) = (utf8(&self.ca), utf8(&self.ca_key));
        let args = ["x509", "-req", "-in", utf8(csr), "-CA", ca, "-CAkey", ca_key, "-set_serial", serial];
        let output = openssl(&[&args[..], &["-days", "2", "-extfile", utf8(ext), "-out", utf8(out)]].concat());
        assert_ok(&output, &format!("openssl x509 -req ({what})"));
    }

    /// A server certificate under the CA for localhost and 127.0.0.1 (`CN=<name>`), and its key:
    /// `dir/<name>-server.pem`, `dir/<name>-server.key`.
    pub fn server(&self, dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let file = |what: &str| dir.join(format!("{name}-{what}"));
        let (cert, key, csr, ext) = (file("server.pem"), file("server.key"), file("server.csr"), file("server.ext"));
        let subject = format!("/CN={name}");
        let key_args = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384", "-nodes", "-keyout", utf8(&key)];
        let out = openssl(&[&["req", "-new"], &key_args[..], &["-out", utf8(&csr), "-subj", &subject]].concat());
        assert_ok(&out, "openssl req (a server's key and request)");
        let extensions = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n";
        std::fs::write(&ext, extensions).expect("cannot write the extensions file");
        // One serial per name (the owner's is 1).
        let serial = format!("0x02{}", name.bytes().map(|b| format!("{b:02x}")).collect::<String>());
        self.sign(&csr, &ext, &serial, &cert, "a server certificate");
        (cert, key)
    }
}

/// A path as the `&str` a command line takes (the tests' temporary paths are UTF-8).
pub fn utf8(path: &Path) -> &str {
    path.to_str().unwrap_or_else(|| panic!("{} is not UTF-8", path.display()))
}

/// `python3` with the `modules` a check script imports.
#[derive(Debug)]
pub struct Python {
    modules: String,
}

impl Python {
    /// `python3`, after checking that it imports every one of `modules` (fails the test,
    /// naming the install command, when it does not).
    pub fn with(modules: &[&str]) -> Self {
        let modules = modules.join(", ");
        let imported = Command::new("python3").args(["-c", &format!("import {modules}")]).status();
        assert!(
            imported.is_ok_and(|s| s.success()),
            "python3 with the packages {modules} is needed: run {INSTALL} (or `python3 -m pip install {}`)",
            modules.replace(", ", " ")
        );
        Self { modules }
    }

    /// Runs `script` with `input` (JSON) on its stdin; its stdout and stderr are captured.
    pub fn run(&self, script: &Path, input: &serde_json::Value) -> Output {
        let mut command = Command::new("python3");
        command.arg(script);
        run_with_input(command, input, &format!("{} with python3 ({})", script.display(), self.modules))
    }
}

/// Runs the JOSE check ([`JOSE_CHECK`], with jwcrypto) on `input`.
pub fn jose_check(input: &serde_json::Value) -> Output {
    Python::with(&["jwcrypto", "cryptography"]).run(Path::new(JOSE_CHECK), input)
}

/// Runs the HPKE check ([`HPKE_CHECK`], with pyhpke) on `input`.
pub fn hpke_check(input: &serde_json::Value) -> Output {
    Python::with(&["pyhpke", "cryptography"]).run(Path::new(HPKE_CHECK), input)
}

/// The SPIFFE bundle check: go-spiffe's bundle, X.509-SVID and JWT-SVID rules re-implemented
/// in Python (Go is not installed here; the script says which rules it follows).
pub const SPIFFE_BUNDLE_CHECK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python/spiffe_bundle_check.py");

/// Runs the SPIFFE bundle check ([`SPIFFE_BUNDLE_CHECK`], with `cryptography`) on `input`.
pub fn spiffe_bundle_check(input: &serde_json::Value) -> Output {
    Python::with(&["cryptography"]).run(Path::new(SPIFFE_BUNDLE_CHECK), input)
}

/// The C2SP check, a Go command over golang.org/x/mod/sumdb/note (the signed note, its
/// verifier key) and sumdb/tlog (the inclusion and consistency proofs); see its doc comment.
pub const C2SP_CHECK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/go/c2sp_check");

/// Runs the C2SP check ([`C2SP_CHECK`], built by [`go_command`]) on `input`.
pub fn c2sp_check(input: &serde_json::Value) -> Output {
    run_with_input(Command::new(go_command(Path::new(C2SP_CHECK))), input, C2SP_CHECK)
}

/// The Go packages the Go checks import, as Debian installs them (GOPATH layout).
const GO_PATH: &str = "/usr/share/gocode";

/// Builds the Go command in `dir` (once per test process) with Debian's Go and its
/// golang-golang-x-mod-dev sources in GOPATH mode: no module proxy, nothing fetched. A missing
/// `go` or package fails the test, naming the install command.
pub fn go_command(dir: &Path) -> std::path::PathBuf {
    let name = dir.file_name().expect("a command's directory");
    let out = std::env::temp_dir().join(format!("twi-go-{}", std::process::id())).join(name);
    if out.exists() {
        return out;
    }
    let built = Command::new("go")
        .arg("build")
        .arg("-o")
        .arg(&out)
        .arg(".")
        .current_dir(dir)
        .env("GO111MODULE", "off")
        .env("GOPATH", GO_PATH)
        .env("GOFLAGS", "")
        .env("GOCACHE", std::env::temp_dir().join("twi-go-cache"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run `go` ({e}): these tests need it; run {INSTALL} (or `apt-get install golang-go golang-golang-x-mod-dev`)"));
    assert!(
        built.status.success(),
        "building {} with go failed (run {INSTALL}, or `apt-get install golang-go golang-golang-x-mod-dev`):\n{}",
        dir.display(),
        String::from_utf8_lossy(&built.stderr)
    );
    out
}

/// Runs `command` (`what` names it) with `input` (JSON) on its stdin; its stdout and stderr
/// are captured.
fn run_with_input(mut command: Command, input: &serde_json::Value, what: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let mut stdin = child.stdin.take().expect("a piped stdin");
    stdin.write_all(input.to_string().as_bytes()).expect("the checker reads its input");
    drop(stdin);
    child.wait_with_output().expect("the checker ends")
}

/// The COSE receipt check (pycose): the log's RFC 9942 receipts against their records.
pub const COSE_RECEIPT_CHECK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python/cose_receipt_check.py");

/// Runs the COSE receipt check ([`COSE_RECEIPT_CHECK`], with pycose) on `input`.
pub fn cose_receipt_check(input: &serde_json::Value) -> Output {
    Python::with(&["pycose", "cbor2"]).run(Path::new(COSE_RECEIPT_CHECK), input)
}

/// The sealed-record check (pycose): provenance records encrypted to an auditor key
/// (COSE_Encrypt, ECDH-ES + HKDF-256, A256GCM) decrypted independently of the issuer.
pub const COSE_ENCRYPT_CHECK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python/cose_encrypt_check.py");

/// Runs the sealed-record check ([`COSE_ENCRYPT_CHECK`]) on `input`.
pub fn cose_encrypt_check(input: &serde_json::Value) -> Output {
    Python::with(&["pycose", "cbor2", "cryptography"]).run(Path::new(COSE_ENCRYPT_CHECK), input)
}

/// The vendor statement check (pycose): `twi vendor sign`'s COSE_Sign1 under the vendor key.
pub const VENDOR_STATEMENT_CHECK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python/vendor_statement_check.py");

/// Runs the vendor statement check ([`VENDOR_STATEMENT_CHECK`]) on `input`.
pub fn vendor_statement_check(input: &serde_json::Value) -> Output {
    Python::with(&["pycose", "cbor2", "cryptography"]).run(Path::new(VENDOR_STATEMENT_CHECK), input)
}

/// The CoRIM check (cbor2 and pycose): `twi build`'s signed reference-values CoRIM and the
/// IGVM file's CoRIM headers (see the script's docstring for its input).
pub const CORIM_CHECK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python/corim_check.py");

/// Runs the CoRIM check ([`CORIM_CHECK`]) on `input`.
pub fn corim_check(input: &serde_json::Value) -> Output {
    Python::with(&["pycose", "cbor2"]).run(Path::new(CORIM_CHECK), input)
}

/// The CycloneDX check (OWASP `cyclonedx-python-lib`): an SBOM against the CycloneDX 1.5 JSON
/// schema, and the components it must list.
pub const CYCLONEDX_CHECK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python/cyclonedx_check.py");

/// Runs the CycloneDX check ([`CYCLONEDX_CHECK`]) on `input`.
pub fn cyclonedx_check(input: &serde_json::Value) -> Output {
    Python::with(&["cyclonedx.validation.json", "jsonschema"]).run(Path::new(CYCLONEDX_CHECK), input)
}
