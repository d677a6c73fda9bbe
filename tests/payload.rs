//! End-to-end: a user's own payload crate, from `twi new` to a run. The scaffold's host test
//! passes with `cargo test` in the new crate (offline, against the checkout's `Cargo.lock`);
//! a payload edited to connect somewhere its measured manifest does not name is refused inside
//! the guest, while a connection to its named target reaches the host.
//!
//! Needs `qemu-system-x86_64` (`./qemu/install-deps`); fails, never skips, without it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const TWI: &str = env!("CARGO_BIN_EXE_twi-e2e");

fn path(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

fn twi(args: &[&str]) -> Output {
    Command::new(TWI).args(args).output().expect("cannot run twi")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `twi new DIR` in a fresh directory; returns the crate's directory.
fn scaffold(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    let made = twi(&["new", path(&dir)]);
    assert!(made.status.success(), "twi new failed:\n{}", stderr(&made));
    for file in ["Cargo.toml", "Cargo.lock", "src/lib.rs", "tests/workload.rs", "README.md"] {
        assert!(dir.join(file).is_file(), "twi new made no {file}");
    }
    dir
}

#[test]
fn the_scaffolds_own_test_passes_with_cargo_test() {
    let dir = tempfile::tempdir().unwrap();
    let payload = scaffold(dir.path(), "my-workload");
    // The checkout's target directory (kept between runs) holds the host build.
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/scaffold-test");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(&payload)
        .args(["test", "--offline"])
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("cannot run cargo");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(out.status.success(), "cargo test in the scaffold failed:\n{text}");
    assert!(text.contains("test result: ok. 3 passed"), "{text}");
    assert!(text.contains("without_a_target_it_says_how_to_build_one ... ok"), "{text}");
}

/// A payload that tries an origin its manifest does not name, then the one it does.
const STRAY: &str = r#"#![no_std]
extern crate alloc;
use twi_payload::prelude::*;

pub fn main(rt: &mut dyn Runtime) -> ExitCode {
    let named = match rt.setting("target").map(core::str::from_utf8) {
        Some(Ok(target)) => alloc::string::String::from(target),
        _ => return ExitCode::Failure,
    };
    for target in ["https://127.0.0.1:9/exfiltrate", named.as_str()] {
        let line = match rt.connect(target) {
            Ok(_) => format!("stray: {target}: connected"),
            Err(e) => format!("stray: {target}: {e}"),
        };
        rt.log(&line);
    }
    ExitCode::Success
}
"#;

/// The `STRAY` payload built once into an image (state, image directory), for the tests here.
struct Stray {
    dir: tempfile::TempDir,
    state: PathBuf,
    image: PathBuf,
}

fn stray() -> &'static Stray {
    static STRAY_IMAGE: std::sync::OnceLock<Stray> = std::sync::OnceLock::new();
    STRAY_IMAGE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let payload = scaffold(dir.path(), "stray");
        std::fs::write(payload.join("src/lib.rs"), STRAY).unwrap();
        let (state, image) = (dir.path().join("state"), dir.path().join("image"));
        // Port 1 on loopback: nothing listens, so the host's connect fails there.
        let args = [&["build", "--payload", path(&payload), "--set", TARGET][..], &["--state", path(&state)]].concat();
        let built = twi(&[&args[..], &["--out", path(&image)]].concat());
        assert!(built.status.success(), "twi build --payload failed:\n{}", stderr(&built));
        Stray { dir, state, image }
    })
}

const TARGET: &str = "target=https://127.0.0.1:1/rows";

#[test]
fn a_connection_to_an_origin_outside_the_manifest_is_refused_in_the_guest() {
    let Stray { dir, state, image } = stray();
    let run = dir.path().join("run");
    assert_the_sbom_lists_the_image(image, &[]);
    let rom = image.join("twi.rom");
    let out = twi(&["run", "--platform", "sim", "--image", path(&rom), "--state", path(state), "--out", path(&run)]);
    let console = std::fs::read_to_string(run.join("console.log")).unwrap_or_default();
    assert!(out.status.success(), "twi run failed:\n{}\nconsole:\n{console}", stderr(&out));
    let refused = "stray: https://127.0.0.1:9/exfiltrate: `https://127.0.0.1:9/exfiltrate` is not a target of the measured manifest";
    assert!(console.contains(refused), "{console}");
    // The named origin went to the host, which could not connect (nothing listens there).
    assert!(console.contains("stray: https://127.0.0.1:1/rows: the host could not connect"), "{console}");
    assert!(
        stderr(&out).contains("twi: the workload exited successfully without acquiring a credential"),
        "{}",
        stderr(&out)
    );
    // The host's own lines (not the guest console it echoes) never mention the stray origin.
    let host = stderr(&out).lines().filter(|l| l.starts_with("twi:")).collect::<Vec<_>>().join("\n");
    assert!(host.contains("cannot connect to 127.0.0.1:1 for the guest"), "{host}");
    assert!(!host.contains("127.0.0.1:9"), "the host was asked for the stray origin:\n{host}");
}

/// The image's `sbom.cdx.json`: CycloneDX 1.5 by OWASP's validator, listing the payload, the
/// runtime and the registry crates with their `Cargo.lock` checksums, and each attachment;
/// `reference-values.json` names its digest.
fn assert_the_sbom_lists_the_image(image: &Path, attached: &[(&str, &[u8])]) {
    use sha2::{Digest, Sha384};
    let sbom = std::fs::read(image.join("sbom.cdx.json")).expect("twi build wrote no sbom.cdx.json");
    let data: serde_json::Map<String, serde_json::Value> =
        attached.iter().map(|(name, bytes)| (name.to_string(), hex::encode(Sha384::digest(bytes)).into())).collect();
    let input = serde_json::json!({
        "sbom": String::from_utf8(sbom.clone()).unwrap(),
        "libraries": ["stray", "twi-runtime", "twi-payload", "twi-proto", "p384", "aes-gcm"],
        "with_sha256": ["p384", "aes-gcm"],
        "data": data,
    });
    twi_testkit::tools::assert_ok(&twi_testkit::tools::cyclonedx_check(&input), "the CycloneDX check");
    let values: serde_json::Value =
        serde_json::from_slice(&std::fs::read(image.join("reference-values.json")).unwrap()).unwrap();
    assert_eq!(values["sbom"]["digest"], format!("sha384:{}", hex::encode(Sha384::digest(&sbom))));
}

#[test]
fn the_sbom_is_measured_and_attachments_change_the_measurement() {
    let Stray { image: first_image, state, .. } = stray();
    let dir = tempfile::tempdir().unwrap();
    let build = |name: &str, extra: &[&str]| -> serde_json::Value {
        let out = dir.path().join(name);
        let args = ["build", "--set", TARGET, "--state", path(state), "--out", path(&out)];
        let built = twi(&[&args[..], extra].concat());
        assert!(built.status.success(), "twi build {extra:?} failed:\n{}", stderr(&built));
        serde_json::from_slice(&std::fs::read(out.join("reference-values.json")).unwrap()).unwrap()
    };
    let first: serde_json::Value =
        serde_json::from_slice(&std::fs::read(first_image.join("reference-values.json")).unwrap()).unwrap();
    let elf = first_image.join("twi-runtime.elf");
    // The same code and settings again, from the kept ELF: the same SBOM, the same launch.
    let again = build("again", &["--runtime-elf", path(&elf)]);
    assert_eq!(again["sbom"], first["sbom"]);
    assert_eq!(again["snp"]["launch_digest"], first["snp"]["launch_digest"]);
    // A vendor statement attached: in the SBOM, and in the measurement.
    let statement = dir.path().join("vendor-statement.json");
    std::fs::write(&statement, br#"{"vendor":"Example Corp"}"#).unwrap();
    let attached = build("attached", &["--runtime-elf", path(&elf), "--attach", path(&statement)]);
    assert_ne!(attached["snp"]["launch_digest"], first["snp"]["launch_digest"]);
    assert_ne!(attached["tdx"]["mrtd"], first["tdx"]["mrtd"]);
    assert_the_sbom_lists_the_image(
        &dir.path().join("attached"),
        &[("vendor-statement.json", br#"{"vendor":"Example Corp"}"#)],
    );
    let refused =
        twi(&["build", "--set", "twi.sbom=forged", "--runtime-elf", path(&elf), "--out", path(&dir.path().join("x"))]);
    assert!(stderr(&refused).contains("keys starting with `twi.` are the build's own"), "{}", stderr(&refused));
}

/// Issue 16: one dependency's version, changed alone, changes the SBOM (which lists the new
/// version), its digest, and so the measured launch manifest and every launch measurement. The
/// credential of a run carries the digest its manifest names (`tests/e2e.rs`,
/// `boots_and_obtains_a_bound_credential_twice_with_fresh_keys`).
#[test]
fn one_dependency_version_changes_the_sbom_and_the_measurement() {
    let dir = tempfile::tempdir().unwrap();
    let payload = scaffold(dir.path(), "versioned");
    std::fs::write(payload.join("src/lib.rs"), STRAY).unwrap();
    let helper = dir.path().join("helper");
    std::fs::create_dir_all(helper.join("src")).unwrap();
    std::fs::write(helper.join("src/lib.rs"), "#![no_std]\npub const ANSWER: u32 = 42;\n").unwrap();
    let manifest = std::fs::read_to_string(payload.join("Cargo.toml")).unwrap();
    let manifest =
        manifest.replacen("[dependencies]\n", "[dependencies]\ntwi-test-helper = { path = \"../helper\" }\n", 1);
    std::fs::write(payload.join("Cargo.toml"), manifest).unwrap();
    let state = dir.path().join("state");
    let build = |version: &str| -> (serde_json::Value, serde_json::Value) {
        let toml = format!("[package]\nname = \"twi-test-helper\"\nversion = \"{version}\"\nedition = \"2024\"\n");
        std::fs::write(helper.join("Cargo.toml"), toml).unwrap();
        let out = dir.path().join(version);
        let args =
            ["build", "--payload", path(&payload), "--set", TARGET, "--state", path(&state), "--out", path(&out)];
        let built = twi(&args);
        assert!(built.status.success(), "twi build with twi-test-helper {version} failed:\n{}", stderr(&built));
        let read = |file: &str| serde_json::from_slice(&std::fs::read(out.join(file)).unwrap()).unwrap();
        (read("reference-values.json"), read("sbom.cdx.json"))
    };
    let (first, first_sbom) = build("0.1.0");
    let (second, second_sbom) = build("0.2.0");
    let helper_version = |sbom: &serde_json::Value| {
        let components = sbom["components"].as_array().unwrap();
        let helper = components.iter().find(|c| c["name"] == "twi-test-helper").expect("the SBOM lists the dependency");
        helper["version"].as_str().unwrap().to_string()
    };
    assert_eq!((helper_version(&first_sbom), helper_version(&second_sbom)), ("0.1.0".into(), "0.2.0".into()));
    assert_ne!(first["sbom"]["digest"], second["sbom"]["digest"]);
    for (platform, field) in [("snp", "launch_digest"), ("igvm", "snp_launch_digest"), ("tdx", "mrtd")] {
        assert_ne!(first[platform][field], second[platform][field], "{platform}.{field} did not change");
    }
}
