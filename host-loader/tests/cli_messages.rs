//! What a new user meets at the command line, without booting anything: every mistake the
//! README's commands invite is answered with what to do next.

use std::path::Path;
use std::process::{Command, Output};

use twi_testkit::scenario::Twi;
use twi_testkit::tools::{openssl, utf8 as path};

const TWI: Twi = Twi(env!("CARGO_BIN_EXE_twi"));

fn twi(args: &[&str]) -> Output {
    TWI.run(args)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `./quickstart` names each step before it runs it, and hides no build's progress.
#[test]
fn quickstart_says_what_it_does_and_shows_cargo_progress() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../quickstart");
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(!text.contains("--quiet"), "a quiet cargo leaves the user staring at nothing for minutes");
    let commands: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("set ") && !l.starts_with("cd "))
        .filter(|l| !l.starts_with("step ") && !l.starts_with("step()"))
        .collect();
    assert_eq!(commands.len(), 3, "{commands:?}");
    for command in commands {
        let at = text.find(command).unwrap();
        let before = text[..at].trim_end().lines().last().unwrap_or_default();
        assert!(before.trim_start().starts_with("step \""), "no step line before {command:?}");
    }
    let syntax = Command::new("bash").arg("-n").arg(&script).output().unwrap();
    assert!(syntax.status.success(), "{}", String::from_utf8_lossy(&syntax.stderr));
}

/// The runtime build says it started, that it may take minutes, and when it is done.
#[test]
fn the_runtime_build_shows_progress() {
    let dir = tempfile::tempdir().unwrap();
    let out = twi(&["build", "--out", path(&dir.path().join("image")), "--state", path(&dir.path().join("state"))]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("twi: building the runtime (") && log.contains("the first build takes a few minutes"),
        "{log}"
    );
    assert!(log.contains("twi: built the runtime in "), "{log}");
}

/// An installed `twi` whose checkout moved says where it looked and how to point it.
#[test]
fn a_missing_checkout_names_where_it_looked_and_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("moved-away");
    let out = TWI
        .command()
        .args(["build", "--out", path(&dir.path().join("image")), "--state", path(&dir.path().join("state"))])
        .env("TWI_SOURCE_DIR", &gone)
        .output()
        .unwrap();
    let log = stderr(&out);
    assert!(!out.status.success());
    assert!(
        log.contains(&format!("the TWI sources are not at {} ($TWI_SOURCE_DIR)", gone.display()))
            && log.contains("set TWI_SOURCE_DIR to your checkout")
            && log.contains("--runtime-elf"),
        "{log}"
    );
}

/// A reused --out loses the last run's files before anything can fail, and keeps the rest.
#[test]
fn a_reused_out_directory_is_cleared_of_an_earlier_runs_files() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    for name in ["credential.pem", "evidence.json", "console.log", "key-release.json", "notes.txt"] {
        std::fs::write(out_dir.join(name), "from an earlier run").unwrap();
    }
    // Port 9 (discard) on loopback: nothing listens, so the run fails before booting.
    let out = twi(&[
        "run",
        "--platform",
        "sim",
        "--out",
        path(&out_dir),
        "--state",
        path(&dir.path().join("state")),
        "--issuer-url",
        "http://127.0.0.1:9",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cannot be reached"), "{}", stderr(&out));
    for name in ["credential.pem", "evidence.json", "console.log", "key-release.json"] {
        assert!(!out_dir.join(name).exists(), "{name} from the earlier run survived a failed run");
    }
    assert!(out_dir.join("notes.txt").exists(), "a file the run does not write was removed");
}

/// `twi keystore provision` takes the key `openssl ecparam -genkey` writes (SEC1).
#[test]
fn keystore_provision_takes_an_openssl_ec_private_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("owner.pem");
    let made = openssl(&["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", path(&key)]);
    assert!(made.status.success());
    assert!(std::fs::read_to_string(&key).unwrap().starts_with("-----BEGIN EC PRIVATE KEY-----"));
    let state = dir.path().join("state");
    let out = TWI.provision(&state, "spiffe://example.org/demo", &key, None);
    assert!(out.status.success(), "{}", stderr(&out));
    let serial = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(serial.len() >= 16 && serial.chars().all(|c| c.is_ascii_hexdigit()), "{serial:?}");
    // A P-256 key is refused, naming the curve to use.
    let p256 = dir.path().join("p256.pem");
    let made = openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", path(&p256)]);
    assert!(made.status.success());
    let out = TWI.provision(&state, "spiffe://example.org/other", &p256, None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("openssl ecparam -name secp384r1 -genkey"), "{}", stderr(&out));
}

/// `--out` says what lands there (every option's help text is checked in `cli::tests`).
#[test]
fn run_help_explains_out() {
    let out = twi(&["run", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    let line = help.lines().skip_while(|l| !l.trim_start().starts_with("--out <DIR>")).nth(1).unwrap_or_default();
    assert!(line.contains("The directory for what the run writes"), "{help}");
}
