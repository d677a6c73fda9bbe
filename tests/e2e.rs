//! End-to-end: the real ROM boots under QEMU and obtains a credential from the issuer, as a
//! user runs it (`twi build`, then `twi run --platform sim`).
//!
//! These tests need `qemu-system-x86_64` (`.ci/run` and `scripts/setup` install it) and
//! `openssl`. They fail, never skip, when either is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use der::DecodePem;
use twi_attester::binding;
use twi_attester::snp::report::AttestationReport;
use x509_cert::Certificate;

const TWI: &str = env!("CARGO_BIN_EXE_twi");

/// One image and one issuer state shared by the tests (building the runtime takes a while).
struct Fixture {
    _dir: tempfile::TempDir,
    state: PathBuf,
    rom: PathBuf,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let image = dir.path().join("image");
        let out = twi(&["build", "--out", path(&image), "--state", path(&state)]);
        assert!(out.status.success(), "twi build failed:\n{}", String::from_utf8_lossy(&out.stderr));
        let rom = image.join("twi.rom");
        assert!(rom.is_file(), "twi build wrote no {}", rom.display());
        Fixture { _dir: dir, state, rom }
    })
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn twi(args: &[&str]) -> Output {
    Command::new(TWI).args(args).output().expect("cannot run twi")
}

fn run_sim(out: &Path, extra: &[&str]) -> Output {
    let f = fixture();
    let mut args =
        vec!["run", "--platform", "sim", "--image", path(&f.rom), "--state", path(&f.state), "--out", path(out)];
    args.extend_from_slice(extra);
    twi(&args)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is needed by the end-to-end tests: apt-get install openssl")
}

fn certificate(out: &Path) -> Certificate {
    let pem = std::fs::read(out.join("credential.pem")).expect("credential.pem");
    Certificate::from_pem(pem).expect("credential.pem is a PEM certificate")
}

fn certified_key(cert: &Certificate) -> Vec<u8> {
    cert.tbs_certificate().subject_public_key_info().subject_public_key.raw_bytes().to_vec()
}

/// The report the guest sent, and what `evidence.json` says it binds.
fn evidence(out: &Path) -> (AttestationReport, Vec<u8>, Vec<u8>) {
    let report = AttestationReport::parse(&std::fs::read(out.join("evidence.bin")).unwrap()).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("evidence.json")).unwrap()).unwrap();
    let nonce = hex::decode(json["nonce"].as_str().unwrap()).unwrap();
    let key = hex::decode(json["public_key"].as_str().unwrap()).unwrap();
    (report, nonce, key)
}

#[test]
fn boots_and_obtains_a_bound_credential_twice_with_fresh_keys() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first");
    let out = run_sim(&first, &["--accel", "auto"]);
    let log = stderr(&out);
    assert!(out.status.success(), "twi run failed:\n{log}");
    for step in ["accelerator ", "booted", "evidence received", "verified", "issued", "wrote "] {
        assert!(log.contains(step), "progress line {step:?} missing from:\n{log}");
    }
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "spiffe://example.org/demo");
    let console = std::fs::read_to_string(first.join("console.log")).unwrap();
    for line in [
        "platform: simulated SEV-SNP",
        "credential accepted for spiffe://example.org/demo",
        "credential sealed to this launch",
    ] {
        assert!(console.contains(line), "{line:?} missing from the guest console:\n{console}");
    }

    // An independent verifier accepts the chain.
    let verify =
        openssl(&["verify", "-CAfile", path(&first.join("issuer-ca.pem")), path(&first.join("credential.pem"))]);
    assert!(verify.status.success(), "openssl verify: {}", String::from_utf8_lossy(&verify.stdout));

    // The certified key is the key the hardware report binds with the issuer's nonce.
    let cert = certificate(&first);
    let (report, nonce, key) = evidence(&first);
    assert_eq!(certified_key(&cert), key, "the credential certifies a key other than the one in the evidence");
    assert_eq!(report.report_data, binding::report_data(&nonce, &key).unwrap(), "REPORTDATA does not bind the key");
    // The (simulated) hardware measured exactly the image the build described.
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture().rom.with_file_name("reference-values.json")).unwrap()).unwrap();
    assert_eq!(
        hex::encode(report.measurement),
        reference["snp"]["launch_digest"].as_str().unwrap(),
        "the report's MEASUREMENT is not the build's SEV-SNP reference value"
    );

    // A second boot generates a new key and gets a new serial.
    let second = dir.path().join("second");
    let out = run_sim(&second, &["--accel", "tcg"]);
    assert!(out.status.success(), "second twi run failed:\n{}", stderr(&out));
    let cert2 = certificate(&second);
    assert_ne!(certified_key(&cert), certified_key(&cert2), "two boots produced the same Credential Key");
    assert_ne!(cert.tbs_certificate().serial_number(), cert2.tbs_certificate().serial_number());
}

#[test]
fn a_flipped_report_byte_is_rejected_and_no_certificate_is_written() {
    let out_dir = tempfile::tempdir().unwrap();
    // 0x90 is the first byte of MEASUREMENT, inside the signed region.
    let out = run_sim(out_dir.path(), &["--accel", "tcg", "--tamper", "evidence-byte:0x90"]);
    let log = stderr(&out);
    assert!(!out.status.success(), "a tampered report was accepted:\n{log}");
    assert!(
        log.contains("twi: error: the issuer rejected the evidence: SEV-SNP report rejected: the report's signature does not verify"),
        "unclear failure message:\n{log}"
    );
    assert!(!out_dir.path().join("credential.pem").exists(), "a certificate was written for rejected evidence");
}

#[test]
fn a_nonce_the_issuer_did_not_issue_is_rejected() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = run_sim(out_dir.path(), &["--accel", "tcg", "--tamper", "nonce"]);
    let log = stderr(&out);
    assert!(!out.status.success(), "evidence over a foreign nonce was accepted:\n{log}");
    assert!(log.contains("REPORTDATA does not bind this nonce and public key"), "unclear failure message:\n{log}");
    assert!(!out_dir.path().join("credential.pem").exists());
}

#[test]
fn a_firmware_answer_altered_by_the_host_is_refused_by_the_guest() {
    let out_dir = tempfile::tempdir().unwrap();
    // 0x70 lies in the ciphertext of the sealed MSG_REPORT_RSP.
    let out = run_sim(out_dir.path(), &["--accel", "tcg", "--tamper", "firmware-answer-byte:0x70"]);
    let log = stderr(&out);
    assert!(!out.status.success(), "the guest used an altered firmware answer:\n{log}");
    assert!(
        log.contains("twi: error: the guest reported an error (DoorbellFailed): attestation firmware: the firmware's answer was refused: guest message authentication failed"),
        "unclear failure message:\n{log}"
    );
    assert!(!out_dir.path().join("credential.pem").exists());
}

#[test]
fn a_guest_built_for_another_issuer_refuses_the_credential() {
    let dir = tempfile::tempdir().unwrap();
    let other_state = dir.path().join("other-state");
    let out = twi(&[
        "run",
        "--platform",
        "sim",
        "--image",
        path(&fixture().rom),
        "--state",
        path(&other_state),
        "--out",
        path(&dir.path().join("out")),
        "--accel",
        "tcg",
    ]);
    let log = stderr(&out);
    assert!(!out.status.success(), "the guest accepted a credential from an issuer it was not built for:\n{log}");
    assert!(
        log.contains("twi: error: the guest reported an error (CredentialRejected): credential rejected: the credential's signature does not verify under the issuer anchor"),
        "unclear failure message:\n{log}"
    );
    assert!(!dir.path().join("out/credential.pem").exists());
}

#[test]
fn a_missing_qemu_is_reported_with_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(TWI)
        .args(["run", "--platform", "sim", "--image", path(&fixture().rom), "--out", path(dir.path())])
        .args(["--state", path(&fixture().state)])
        .env("PATH", dir.path())
        .env_remove("TWI_QEMU")
        .output()
        .unwrap();
    let log = stderr(&out);
    assert!(!out.status.success());
    assert!(
        log.contains("qemu-system-x86_64 is not installed") && log.contains("apt-get install qemu-system-x86"),
        "{log}"
    );
}

#[test]
fn print_qemu_shows_the_exact_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_sim(dir.path(), &["--print-qemu"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line = String::from_utf8_lossy(&out.stdout);
    for part in
        ["-machine q35", "-bios ", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-cpu max", "loader,file=", "addr=0x80000"]
    {
        assert!(line.contains(part), "{part:?} missing from {line}");
    }
}

#[test]
fn the_rom_carries_the_manifest_and_reset_vector_where_the_layout_says() {
    let rom = std::fs::read(&fixture().rom).unwrap();
    assert_eq!(rom.len(), 2 * 1024 * 1024, "QEMU needs a multiple of 64 KiB; the layout says 2 MiB");
    // The reset vector (top - 16) tells real mode from protected mode (TDX) with bytes that
    // decode alike in both: mov eax, cr0; test al, 1; jnz.
    assert_eq!(&rom[rom.len() - 16..rom.len() - 9], &[0x0F, 0x20, 0xC0, 0xA8, 0x01, 0x75, 0x03]);
    let slot = &rom[rom.len() - 0x2000..rom.len() - 0x1000];
    let manifest = twi_proto::manifest::LaunchManifest::from_slot(slot).expect("manifest in its slot");
    assert_eq!(manifest.diagnostic, twi_proto::manifest::Diagnostic::None);
    let ca = std::fs::read(fixture().state.join("issuer/issuer-ca.pem")).unwrap();
    let ca = Certificate::from_pem(ca).unwrap();
    assert_eq!(manifest.issuer_anchor, certified_key(&ca), "the image must trust exactly the issuer CA's key");
}

#[test]
fn a_cpu_exception_is_reported_and_ends_the_vm() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("fault-image");
    let out = twi(&["build", "--out", path(&image), "--state", path(&f.state), "--diagnostic", "fault"]);
    assert!(out.status.success(), "twi build --diagnostic fault: {}", stderr(&out));
    let run = twi(&[
        "run",
        "--platform",
        "sim",
        "--image",
        path(&image.join("twi.rom")),
        "--state",
        path(&f.state),
        "--out",
        path(&dir.path().join("out")),
        "--accel",
        "tcg",
        "--timeout",
        "60",
    ]);
    let log = stderr(&run);
    assert!(!run.status.success(), "a faulting guest passed:\n{log}");
    assert!(
        log.contains("twi: error: the guest failed: CPU exception 6 (#UD invalid opcode) error_code=0x0 rip=0x"),
        "the fault was not reported with its vector and RIP:\n{log}"
    );
    assert!(!dir.path().join("out/credential.pem").exists());
}

/// `--platform sim-tdx`: the runtime takes its TDX path (TDG.MR.RTMR.EXTEND, TDG.MR.REPORT and
/// the GHCI GetQuote buffer, all to the simulated TDX module over the channel); the issuer
/// verifies the simulated DCAP quote v4 with the verifier of real Intel quotes, replays the
/// runtime's event log to the quote's RTMRs, and the credential says "sim-tdx".
#[test]
fn sim_tdx_obtains_a_credential_through_a_simulated_quote() {
    use sha2::Digest;
    use twi_attester::tdx::quote::ParsedQuote;
    use twi_attester::tdx::rtmr;

    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let out = twi(&[
        "run",
        "--platform",
        "sim-tdx",
        "--image",
        path(&f.rom),
        "--state",
        path(&f.state),
        "--out",
        path(&out_dir),
        "--accel",
        "tcg",
    ]);
    let log = stderr(&out);
    assert!(out.status.success(), "twi run --platform sim-tdx failed:\n{log}");
    assert!(log.contains("on platform SimTdx") && log.contains("verified"), "{log}");
    let console = std::fs::read_to_string(out_dir.join("console.log")).unwrap();
    assert!(console.contains("platform: simulated TDX"), "{console}");

    // The quote binds the certified key and the nonce, and carries the build's MRTD.
    let quote = std::fs::read(out_dir.join("evidence.bin")).unwrap();
    let parsed = ParsedQuote::parse(&quote).expect("the evidence is a DCAP quote");
    assert_eq!(parsed.quote.header.version, 4);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("evidence.json")).unwrap()).unwrap();
    let nonce = hex::decode(json["nonce"].as_str().unwrap()).unwrap();
    let key = hex::decode(json["public_key"].as_str().unwrap()).unwrap();
    let cert = certificate(&out_dir);
    assert_eq!(certified_key(&cert), key);
    assert_eq!(parsed.quote.body.report_data, binding::report_data(&nonce, &key).unwrap());
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.rom.with_file_name("reference-values.json")).unwrap()).unwrap();
    assert_eq!(hex::encode(parsed.quote.body.mr_td), reference["tdx"]["mrtd"].as_str().unwrap());

    // RTMR2 = extend(0, SHA-384(issuer anchor)); RTMR1 holds the manifest; RTMR0 and 3 untouched.
    let events = json["event_log"].as_array().expect("an event log");
    assert_eq!(events.len(), 2);
    let ca = Certificate::from_pem(std::fs::read(f.state.join("issuer/issuer-ca.pem")).unwrap()).unwrap();
    let anchor_digest: [u8; 48] = sha2::Sha384::digest(certified_key(&ca)).into();
    assert_eq!(parsed.quote.body.rtmr[2], rtmr::extend(&[0; 48], &anchor_digest));
    assert_ne!(parsed.quote.body.rtmr[1], [0; 48]);
    assert_eq!((parsed.quote.body.rtmr[0], parsed.quote.body.rtmr[3]), ([0; 48], [0; 48]));

    // The credential says it came from the simulated TDX platform.
    let der = der::Encode::to_der(&cert).unwrap();
    assert!(der.windows(7).any(|w| w == b"sim-tdx"), "no sim-tdx marker in the credential");
    let verify =
        openssl(&["verify", "-CAfile", path(&out_dir.join("issuer-ca.pem")), path(&out_dir.join("credential.pem"))]);
    assert!(verify.status.success());
}

#[test]
fn sim_tdx_refuses_a_quote_altered_by_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture();
    // 48 + 136 = 184: the first byte of MRTD in the quote body (signed by the attestation key).
    let out = twi(&[
        "run",
        "--platform",
        "sim-tdx",
        "--image",
        path(&f.rom),
        "--state",
        path(&f.state),
        "--out",
        path(dir.path()),
        "--accel",
        "tcg",
        "--tamper",
        "evidence-byte:184",
    ]);
    let log = stderr(&out);
    assert!(!out.status.success(), "a tampered quote was accepted:\n{log}");
    assert!(log.contains("TDX quote rejected: the quote's signature does not verify"), "{log}");
    assert!(!dir.path().join("credential.pem").exists());
}
