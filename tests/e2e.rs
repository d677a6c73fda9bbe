//! End-to-end: the real ROM boots under QEMU and obtains a credential from the issuer, as a
//! user runs it (`twi build`, then `twi run --platform sim`).
//!
//! These tests need `qemu-system-x86_64`, `openssl` and python3 with jwcrypto
//! (`./qemu/install-deps` installs them). They fail, never skip, when one is missing, and
//! never install anything themselves.
//!
//! They run `twi-e2e`, this package's copy of the `twi` command line (see Cargo.toml).

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use der::DecodePem;
use twi_attester::snp::report::AttestationReport;
use twi_testkit::scenario::{Built, Scenario, Served, Twi};
use twi_testkit::tools::{self, openssl, utf8 as path};
use x509_cert::Certificate;

const TWI: Twi = Twi(env!("CARGO_BIN_EXE_twi-e2e"));

/// One image and one issuer state shared by the tests (building the runtime takes a while).
fn fixture() -> &'static Built {
    static FIXTURE: OnceLock<Built> = OnceLock::new();
    FIXTURE.get_or_init(|| TWI.build_default())
}

fn twi(args: &[&str]) -> Output {
    TWI.run(args)
}

/// `twi run` of the fixture's image under the fixture's state, on `platform`.
fn on_fixture(scenario: Scenario) -> Scenario {
    let f = fixture();
    scenario.image(&f.rom).state(&f.state)
}

/// `twi run --platform sim` of the fixture's image, writing to `out`, under TCG.
fn sim(out: &Path) -> Scenario {
    on_fixture(Scenario::sim(TWI)).out(out).accel("tcg")
}

/// `twi run --platform sim-tdx` of the fixture's image, writing to `out`, under TCG.
fn sim_tdx(out: &Path) -> Scenario {
    on_fixture(Scenario::sim_tdx(TWI)).out(out).accel("tcg")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn certificate(out: &Path) -> Certificate {
    let pem = std::fs::read(out.join("credential.pem")).expect("credential.pem");
    Certificate::from_pem(pem).expect("credential.pem is a PEM certificate")
}

fn certified_key(cert: &Certificate) -> Vec<u8> {
    cert.tbs_certificate().subject_public_key_info().subject_public_key.raw_bytes().to_vec()
}

/// Mechanism D: `released` certifies the provisioned key for the same workload, but is a
/// certificate of its own (its own serial) carrying the issuer's extensions for this launch.
fn assert_released(released: &Certificate, provisioned: &Certificate) {
    assert_eq!(certified_key(released), certified_key(provisioned), "the released certificate is for another key");
    let (r, p) = (released.tbs_certificate(), provisioned.tbs_certificate());
    assert_eq!(r.subject(), p.subject());
    assert_ne!(r.serial_number(), p.serial_number(), "the release reuses the provisioned certificate");
    let oids = twi_issuer::oids::Oids::default();
    let extensions = r.extensions().unwrap();
    for oid in [oids.evidence_sha384, oids.policy_binding, oids.simulated_tee] {
        assert!(extensions.iter().any(|e| e.extn_id == oid), "the released certificate lacks {oid}");
    }
}

/// TACRA's REPORTDATA for what `evidence.json` in `out` says the guest bound: its freshness
/// element, the issuer's identifier (its CA's name, as the manifest carries it), its target, and
/// `subject` (the CSR, or the encryption key's SubjectPublicKeyInfo), computed independently.
fn tacra_binding(out: &Path, subject: &[u8]) -> [u8; 64] {
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("evidence.json")).unwrap()).unwrap();
    let nonce = hex::decode(json["nonce"].as_str().unwrap()).unwrap();
    let ca = Certificate::from_pem(std::fs::read(out.join("issuer-ca.pem")).unwrap()).unwrap();
    let rp_id = ca.tbs_certificate().subject().to_string();
    twi_testkit::tacra::report_data(&nonce, &rp_id, json["target"].as_str().unwrap(), subject)
}

/// The CSR the guest sent with its enrollment evidence, checked by openssl (an independent
/// PKCS#10 implementation): signed by the key it names.
fn enrollment_csr(out: &Path) -> Vec<u8> {
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("evidence.json")).unwrap()).unwrap();
    let csr = hex::decode(json["csr"].as_str().expect("enrollment evidence has a CSR")).unwrap();
    let file = out.join("csr.der");
    std::fs::write(&file, &csr).unwrap();
    let verify = openssl(&["req", "-inform", "DER", "-in", path(&file), "-verify", "-noout"]);
    assert!(verify.status.success(), "openssl req -verify: {}", String::from_utf8_lossy(&verify.stderr));
    csr
}

/// The report the guest sent, and what `evidence.json` says it binds.
fn evidence(out: &Path) -> (AttestationReport, Vec<u8>, Vec<u8>) {
    let report = AttestationReport::parse(&std::fs::read(out.join("evidence.bin")).unwrap()).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("evidence.json")).unwrap()).unwrap();
    let nonce = hex::decode(json["nonce"].as_str().unwrap()).unwrap();
    let key = hex::decode(json["public_key"].as_str().unwrap()).unwrap();
    (report, nonce, key)
}

/// `timeline.json`: the acquisition's messages in the order they crossed, each answered after
/// it arrived, the credential sent in answer to the evidence, QEMU's exit last, and the
/// phases they make.
fn assert_timeline(out: &Path) {
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("timeline.json")).unwrap()).unwrap();
    let exchanges = json["exchanges"].as_array().expect("timeline.json lists the exchanges");
    let asked: Vec<&str> = exchanges.iter().map(|e| e["guest"].as_str().unwrap()).collect();
    assert_eq!(asked[..4], ["Hello", "Initiate", "DoorbellRequest", "Evidence"], "{json}");
    assert_eq!(asked.last(), Some(&"Done"), "{json}");
    let evidence = &exchanges[3];
    assert_eq!(evidence["host"], serde_json::json!(["Credential"]), "{json}");
    let mut last = 0.0;
    for at in exchanges.iter().flat_map(|e| [e["at_ms"].as_f64().unwrap(), e["answered_ms"].as_f64().unwrap()]) {
        assert!(at >= last, "times go backwards: {json}");
        last = at;
    }
    assert!(json["exited_ms"].as_f64().unwrap() >= last, "{json}");
    for field in twi_host_loader::bridge::timeline::Phases::FIELDS {
        assert!(json["phases_ms"][field].as_f64().is_some_and(|ms| ms >= 0.0), "{field}: {json}");
    }
}

#[test]
fn boots_and_obtains_a_bound_credential_twice_with_fresh_keys() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first");
    let run = on_fixture(Scenario::sim(TWI)).out(&first).accel("auto").run();
    let log = run.assert_success("twi run");
    for step in ["accelerator ", "booted", "evidence received", "verified", "issued", "wrote ", "where the time went"] {
        assert!(log.contains(step), "progress line {step:?} missing from:\n{log}");
    }
    assert_eq!(run.stdout(), "spiffe://example.org/demo");
    let console = std::fs::read_to_string(first.join("console.log")).unwrap();
    for line in [
        "platform: simulated SEV-SNP",
        "credential accepted for spiffe://example.org/demo",
        "credential sealed to this launch",
        "certificate table from the host: 3 certificates",
    ] {
        assert!(console.contains(line), "{line:?} missing from the guest console:\n{console}");
    }
    // The VCEK and ASK the issuer checked are those of the table the host delivered in the
    // extended guest request's answer, which the guest named by digest instead of sending it
    // back (the table crosses the channel once).
    assert!(console.contains("named by its SHA-384 (the host keeps it)"), "{console}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(first.join("evidence.json")).unwrap()).unwrap();
    let named = json["certificate_table_sha384"].as_str().expect("evidence.json names the certificate table");
    assert!(
        log.contains(&format!(
            "endorsements: VCEK and ASK from the certificate table this host delivered (sha384:{named})"
        )),
        "{log}"
    );

    assert_timeline(&first);

    // An independent verifier accepts the chain.
    assert_openssl_verifies(&first);

    // The certified key is the key the hardware report binds with the issuer's nonce.
    let cert = certificate(&first);
    let (report, nonce, key) = evidence(&first);
    assert_eq!(certified_key(&cert), key, "the credential certifies a key other than the one in the evidence");
    let csr = enrollment_csr(&first);
    assert_eq!(twi_proto::csr::verify(&csr).unwrap().to_vec(), key, "the CSR is for the certified key");
    assert!(!nonce.is_empty());
    assert_eq!(report.report_data, tacra_binding(&first, &csr), "REPORTDATA is not the TACRA binding");
    // The (simulated) hardware measured exactly the image the build described.
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture().rom.with_file_name("reference-values.json")).unwrap()).unwrap();
    assert_eq!(
        hex::encode(report.measurement),
        reference["snp"]["launch_digest"].as_str().unwrap(),
        "the report's MEASUREMENT is not the build's SEV-SNP reference value"
    );
    // Without --policy the development policy names the SBOM the image's manifest measures,
    // so even a plain run's credential carries its digest (extension <arc>.5, an OCTET STRING).
    assert_eq!(sbom_extension(&cert), reference["sbom"]["digest"].as_str().unwrap());

    // A second boot generates a new key and gets a new serial.
    let second = dir.path().join("second");
    sim(&second).run().assert_success("the second twi run");
    let cert2 = certificate(&second);
    assert_ne!(certified_key(&cert), certified_key(&cert2), "two boots produced the same Credential Key");
    assert_ne!(cert.tbs_certificate().serial_number(), cert2.tbs_certificate().serial_number());
}

#[test]
fn a_flipped_report_byte_is_rejected_and_no_certificate_is_written() {
    let out_dir = tempfile::tempdir().unwrap();
    // 0x90 is the first byte of MEASUREMENT, inside the signed region.
    sim(out_dir.path()).tamper("evidence-byte:0x90").run().assert_refused(
        "a tampered report was accepted",
        "twi: error: the issuer rejected the evidence: SEV-SNP report rejected: the report's signature does not verify",
    );
}

#[test]
fn a_certificate_table_altered_by_the_host_is_rejected() {
    let out_dir = tempfile::tempdir().unwrap();
    // The table has four 24-byte entries (VCEK, ASK, ARK, terminator); the VCEK's DER starts at
    // 0x60, and 0xA0 lies inside its signed part.
    sim(out_dir.path()).tamper("certificate-table-byte:0xA0").run().assert_refused(
        "a report was accepted under an altered VCEK",
        "twi: error: the issuer rejected the evidence: SEV-SNP report rejected: the endorsement chain does not hold",
    );
}

/// `--platform snp|tdx|igvm` launch the image as a confidential VM; on a machine that is not
/// such a host QEMU refuses, and the user learns what QEMU said and what the host must offer.
#[test]
fn hardware_platforms_say_what_the_host_lacks() {
    let dir = tempfile::tempdir().unwrap();
    for (platform, extra, needs) in [
        ("snp", &[][..], "--platform snp needs an AMD SEV-SNP host"),
        ("igvm", &[][..], "--platform igvm needs an AMD SEV-SNP host and a QEMU built with IGVM support"),
        ("tdx", &["--pccs", "http://127.0.0.1:1"][..], "--platform tdx needs an Intel TDX host"),
    ] {
        let out_dir = dir.path().join(platform);
        let mut scenario = Scenario::new(TWI, platform).state(&dir.path().join("state")).out(&out_dir);
        for arg in extra {
            scenario = scenario.arg(arg);
        }
        let log = scenario.run().assert_refused(platform, needs);
        assert!(log.contains("twi: accelerator kvm (a confidential VM runs only under KVM)"), "{log}");
        assert!(log.contains("twi: error: QEMU exited with exit status: 1 before the guest finished: "), "{log}");
    }
    // TDX needs Intel's collateral to judge the TCB: said before anything is built.
    let log = Scenario::new(TWI, "tdx").out(&dir.path().join("tdx-no-collateral")).run().assert_failure("tdx");
    assert!(log.contains("pass --collateral PATH or --pccs URL"), "{log}");
}

#[test]
fn a_nonce_the_issuer_did_not_issue_is_rejected() {
    let out_dir = tempfile::tempdir().unwrap();
    sim(out_dir.path())
        .tamper("nonce")
        .run()
        .assert_refused("evidence over a foreign nonce was accepted", "REPORTDATA is not the TACRA binding");
}

#[test]
fn a_firmware_answer_altered_by_the_host_is_refused_by_the_guest() {
    let out_dir = tempfile::tempdir().unwrap();
    // 0x70 lies in the ciphertext of the sealed MSG_REPORT_RSP.
    sim(out_dir.path()).tamper("firmware-answer-byte:0x70").run().assert_refused(
        "the guest used an altered firmware answer",
        "twi: error: the guest reported an error (DoorbellFailed): attestation firmware: the firmware's answer was refused: guest message authentication failed",
    );
}

/// The guest's own check, with the loader's check before launch skipped (as a careless or
/// hostile host would).
#[test]
fn a_guest_built_for_another_issuer_refuses_the_credential() {
    let dir = tempfile::tempdir().unwrap();
    let other_state = dir.path().join("other-state");
    let scenario = Scenario::sim(TWI).image(&fixture().rom).state(&other_state).out(&dir.path().join("out"));
    scenario.accel("tcg").tamper("skip-anchor-check").run().assert_refused(
        "the guest accepted a credential from an issuer it was not built for",
        "twi: error: the guest reported an error (CredentialRejected): credential rejected: the credential's signature does not verify under the issuer anchor",
    );
}

#[test]
fn a_missing_qemu_is_reported_with_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = on_fixture(Scenario::sim(TWI))
        .out(dir.path())
        .command()
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
    let run = on_fixture(Scenario::sim(TWI)).out(dir.path()).arg("--print-qemu").run();
    run.assert_success("twi run --print-qemu");
    let line = run.stdout();
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
    let scenario = Scenario::sim(TWI).image(&image.join("twi.rom")).state(&f.state).out(&dir.path().join("out"));
    scenario.accel("tcg").arg("--timeout").arg("60").run().assert_refused(
        "a faulting guest passed",
        "twi: error: the guest failed: CPU exception 6 (#UD invalid opcode) error_code=0x0 rip=0x",
    );
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
    let log = sim_tdx(&out_dir).run().assert_success("twi run --platform sim-tdx");
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
    let csr = enrollment_csr(&out_dir);
    assert_eq!(twi_proto::csr::verify(&csr).unwrap().to_vec(), key);
    assert!(!nonce.is_empty());
    assert_eq!(parsed.quote.body.report_data, tacra_binding(&out_dir, &csr));
    // The quote came down in the simulated GetQuote's answer and crossed the channel once: the
    // guest named it by SHA-384, and the loader presented the quote it delivered under that name.
    let named = hex::encode(sha2::Sha384::digest(&quote));
    assert_eq!(json["quote_sha384"].as_str(), Some(named.as_str()), "evidence.json names the quote");
    let received = format!(
        "evidence received: the {}-byte quote this host delivered, named by the guest (sha384:{named})",
        quote.len()
    );
    assert!(log.contains(&received), "{log}");
    let sent = format!("quote from the host: {} bytes, named by its SHA-384 (the host keeps it)", quote.len());
    assert!(console.contains(&sent), "{console}");
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
    // The same log as a CC event log: tpm2-tools' parser replays it to the quote's RTMR1 and
    // RTMR2 (CC register indices 2 and 3), and `twi verify` replays it against the quote.
    let ccel = out_dir.join("event-log.ccel");
    assert_eq!(json["event_log_ccel"], "event-log.ccel");
    let replayed = tools::tpm2_eventlog_sha384(&ccel);
    assert_eq!(replayed.keys().copied().collect::<Vec<_>>(), [2, 3], "{replayed:?}");
    assert_eq!(replayed[&2], hex::encode(parsed.quote.body.rtmr[1]));
    assert_eq!(replayed[&3], hex::encode(parsed.quote.body.rtmr[2]));
    let (root, quote_file) = (f.state.join("sim-tdx/root.pem"), out_dir.join("evidence.bin"));
    let verify = |log: &Path| {
        let args = ["verify", "tdx-quote", path(&quote_file), "--root", path(&root)];
        let out = twi(&[&args[..], &["--skip-tcb", "--event-log", path(log)]].concat());
        (out.status.code(), serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap())
    };
    let (code, verdict) = verify(&ccel);
    assert_eq!(code, Some(0), "{verdict:#}");
    assert_eq!(verdict["event_log"]["rtmr_match"], serde_json::json!([true, true, true, true]));
    assert_eq!(verdict["event_log"]["events"][0]["name"], "TWI launch manifest");
    // The host changes the manifest's event data: its digest no longer explains RTMR1.
    let mut altered = std::fs::read(&ccel).unwrap();
    let at = 65 + 14; // the first event's digest
    altered[at] ^= 1;
    std::fs::write(dir.path().join("altered.ccel"), &altered).unwrap();
    let (code, verdict) = verify(&dir.path().join("altered.ccel"));
    assert_eq!(code, Some(1), "{verdict:#}");
    assert!(verdict["reason"].as_str().unwrap().starts_with("the quote's RTMR1 is "), "{verdict:#}");

    // The credential says it came from the simulated TDX platform.
    let der = der::Encode::to_der(&cert).unwrap();
    assert!(der.windows(7).any(|w| w == b"sim-tdx"), "no sim-tdx marker in the credential");
    assert_openssl_verifies(&out_dir);
}

/// The simulated quoting enclave in the other formats the verifier takes: a DCAP quote v5 with
/// a TD 1.0 body, and v5 with a TD 1.5 body (TDX 1.5 module); the runtime parses each, and
/// the issuer verifies each with the code that verifies Intel's.
#[test]
fn sim_tdx_quotes_v5_with_td10_and_td15_bodies() {
    use twi_attester::tdx::quote::ParsedQuote;
    let dir = tempfile::tempdir().unwrap();
    for (format, td15) in [("5", false), ("5-td15", true)] {
        let out_dir = dir.path().join(format);
        sim_tdx(&out_dir).tdx_quote(format).run().assert_success(&format!("--tdx-quote {format}"));
        let quote = std::fs::read(out_dir.join("evidence.bin")).unwrap();
        let parsed = ParsedQuote::parse(&quote).expect("a DCAP quote");
        assert_eq!(parsed.quote.header.version, 5, "{format}");
        assert_eq!(parsed.quote.body.is_td15(), td15, "{format}");
        let key = certified_key(&certificate(&out_dir));
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out_dir.join("evidence.json")).unwrap()).unwrap();
        assert_eq!(hex::encode(&key), json["public_key"].as_str().unwrap());
    }
}

#[test]
fn sim_tdx_refuses_a_quote_altered_by_the_host() {
    let dir = tempfile::tempdir().unwrap();
    // 48 + 136 = 184: the first byte of MRTD in the quote body (signed by the attestation key).
    sim_tdx(dir.path())
        .tamper("evidence-byte:184")
        .run()
        .assert_refused("a tampered quote was accepted", "TDX quote rejected: the quote's signature does not verify");
}

// ---------------------------------------------------------------------------------------------
// Appraisal policy (`twi run --policy`)

const OLD_MEASUREMENT: &str =
    "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// The fixture's simulated SEV-SNP launch measurement, from its reference-values.json (the
/// simulated PSP reports the `snp` launch digest of the default launch profile).
fn fixture_measurement() -> String {
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture().rom.with_file_name("reference-values.json")).unwrap()).unwrap();
    reference["snp"]["launch_digest"].as_str().unwrap().to_string()
}

/// Writes a policy for workload `payroll-app` admitting `measurements` (label, hex) on the
/// simulated platform; `extra` is appended to the workload table (before its references).
fn write_policy(dir: &Path, measurements: &[(&str, &str)], extra: &str) -> PathBuf {
    let mut text = format!(
        "version = \"e2e-1\"\ntrust_domain = \"example.org\"\n\n[[workload]]\nid = \"payroll-app\"\nmechanism = \"c\"\n\
         freshness = \"AF_L2\"\nstickiness = \"CS_L3\"\n{extra}\n[workload.claims]\nlocation = \"DE\"\nhandles-pii = true\n\n"
    );
    for (label, measurement) in measurements {
        text.push_str(&format!(
            "[[workload.reference]]\nlabel = \"{label}\"\nplatform = \"sim-snp\"\nmeasurement = \"{measurement}\"\n\n"
        ));
    }
    let path = dir.join("policy.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_new_version_keeps_the_stable_identifier_and_gets_a_wit_and_a_logged_record() {
    let dir = tempfile::tempdir().unwrap();
    let measurement = fixture_measurement();
    let policy = write_policy(dir.path(), &[("v0.9 (sim)", OLD_MEASUREMENT), ("v1.0 (sim)", &measurement)], "");
    let out_dir = dir.path().join("out");
    let run = sim(&out_dir).policy(&policy).workload("ignored").arg("--ear-format").arg("both").run();
    let log = run.assert_success("twi run --policy");
    assert_eq!(run.stdout(), "spiffe://example.org/payroll-app");
    assert!(
        log.contains("admitted as spiffe://example.org/payroll-app by policy e2e-1 (reference \"v1.0 (sim)\")"),
        "{log}"
    );

    // The certificate's only SAN is the Stable identifier; the policy extension is there.
    let cert = certificate(&out_dir);
    let der = der::Encode::to_der(&cert).unwrap();
    assert!(der.windows(32).any(|w| w == b"spiffe://example.org/payroll-app"), "SAN missing");
    assert!(!der.windows(6).any(|w| w == b"ignore"), "--workload must not name a policy credential");
    let policy_ext = twi_issuer::oids::Oids::default().policy_binding;
    let exts = cert.tbs_certificate().extensions().unwrap();
    assert!(exts.iter().any(|e| e.extn_id == policy_ext), "no policy-binding extension");
    assert!(der.windows(5).any(|w| w == b"e2e-1"), "the policy version is not in the certificate");
    assert_openssl_verifies(&out_dir);

    // The WIT and the EAR verify with jwcrypto under the published keys, and bind the key.
    let jwks: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("issuer-jwks.json")).unwrap()).unwrap();
    let key = |kid: &str| jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid).unwrap().clone();
    let wit = std::fs::read_to_string(out_dir.join("credential.wit")).unwrap();
    let ear = std::fs::read_to_string(out_dir.join("attestation-result.jwt")).unwrap();
    // --ear-format both: the CWT beside it is the same result.
    let verifier_key = serde_json::from_value::<twi_issuer::jose::Jwk>(key("twi-verifier")).unwrap().to_p384().unwrap();
    let now = std::time::SystemTime::now();
    let cwt = std::fs::read(out_dir.join("attestation-result.cwt")).unwrap();
    let from_cwt = twi_issuer::ear::Ear::verify_cwt(&cwt, &verifier_key.into(), now).unwrap();
    assert_eq!(from_cwt, twi_issuer::ear::Ear::verify_jwt(&ear, &verifier_key.into(), now).unwrap());
    let doc = serde_json::json!({
        "wit": { "token": wit, "issuer_key": key("twi-wit"),
                 "claims": { "sub": "spiffe://example.org/payroll-app", "location": "DE", "handles-pii": true } },
        "ear": { "token": ear, "verifier_key": key("twi-verifier"), "status": "contraindicated" },
        "must_fail": [ { "name": "the WIT under the Verifier's key", "token": wit, "key": key("twi-verifier") } ],
    });
    tools::assert_ok(&tools::jose_check(&doc), "the jwcrypto check");
    // The SPIFFE bundle, read by go-spiffe's rules, verifies both SVIDs and nothing else.
    let bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("trust-bundle.json")).unwrap()).unwrap();
    let doc = serde_json::json!({
        "bundle": bundle, "trust_domain": "example.org", "wit": wit,
        "now": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
        "x509_svid": [std::fs::read_to_string(out_dir.join("credential.pem")).unwrap()],
        "handled_critical": [twi_issuer::oids::Oids::default().simulated_tee.to_string()],
        "must_fail_wits": [ { "name": "the attestation result", "token": ear } ],
    });
    tools::assert_ok(&tools::spiffe_bundle_check(&doc), "the SPIFFE bundle check");

    // Provenance: one record per credential, each provable against the signed tree head.
    let prov: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("provenance.json")).unwrap()).unwrap();
    let records = prov["records"].as_array().unwrap();
    let serial = hex::encode(cert.tbs_certificate().serial_number().as_bytes());
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["credential_id"], serial.as_str());
    assert_eq!(records[0]["record"]["decision"]["criteria"]["reference"], "v1.0 (sim)");
    let root: [u8; 32] = hex::decode(prov["tree_head"]["root"].as_str().unwrap()).unwrap().try_into().unwrap();
    let size = prov["tree_head"]["size"].as_u64().unwrap();
    for r in records {
        let proof: Vec<[u8; 32]> = r["inclusion_proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| hex::decode(h.as_str().unwrap()).unwrap().try_into().unwrap())
            .collect();
        let leaf = hex::decode(r["statement"].as_str().unwrap()).unwrap();
        let statement = twi_issuer::provenance::SignedStatement::decode(&leaf).unwrap();
        assert_eq!(serde_json::to_value(statement.record()).unwrap(), r["record"]);
        assert_eq!(hex::encode(statement.sha256()), r["statement_sha256"].as_str().unwrap());
        let leaf_hash = twi_issuer::provenance::leaf_hash(&leaf);
        assert_eq!(hex::encode(leaf_hash), r["leaf_hash"].as_str().unwrap());
        twi_issuer::provenance::verify_inclusion(&leaf_hash, r["index"].as_u64().unwrap(), size, &proof, &root)
            .unwrap();
    }
    assert!(fixture().state.join("issuer/provenance.sqlite").is_file());
}

/// `twi run --renew SERIAL` under a CS_L3 policy: on another (simulated) chip the renewal is
/// refused with the reason; on the chip the credential was issued on, it is granted anew.
#[test]
fn a_cs_l3_renewal_is_refused_on_another_chip_and_granted_on_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(dir.path(), &[("v1.0 (sim)", &fixture_measurement())], "");
    let first = dir.path().join("first");
    sim(&first).policy(&policy).run().assert_success("the first issuance");
    let serial = hex::encode(certificate(&first).tbs_certificate().serial_number().as_bytes());

    let other_chip = dir.path().join("another-chip");
    let elsewhere = dir.path().join("elsewhere");
    let log = sim(&elsewhere).policy(&policy).renew(&serial).sim_chip(&other_chip).run().assert_refused(
        "a CS_L3 credential was renewed on another chip",
        "renewal of spiffe://example.org/payroll-app refused: its credential is bound (CS_L3) to the chip it was issued on",
    );
    assert!(log.contains(&format!("twi: renewal of credential {serial}")), "unclear refusal:\n{log}");

    let again = dir.path().join("again");
    sim(&again).policy(&policy).renew(&serial).run().assert_success("the renewal on the same chip");
    let renewed = hex::encode(certificate(&again).tbs_certificate().serial_number().as_bytes());
    assert_ne!(renewed, serial, "a renewal is a new credential");
    // Renewing a credential this issuer never issued is refused, naming what to pass.
    let log = sim(&dir.path().join("unknown")).policy(&policy).renew("00ff").run().log();
    assert!(log.contains("credential 00ff has no provenance record at this issuer"), "{log}");
}

/// Workload Provenance (issue 16 item 1), as an operator does it: `twi policy add-image`
/// names the image's SBOM and stores it beside a policy that demands provenance; the run's
/// credential carries the SBOM digest, and `twi provenance show` prints, from the log and the
/// stored SBOM, what the workload was made of and the decisions; a deny-list hit is refused
/// naming the crate.
#[test]
fn a_policy_demanding_provenance_admits_the_image_and_provenance_show_lists_its_components() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(
        dir.path(),
        &[],
        "[workload.provenance]\nsbom = \"required\"\ndeny = [\"openssl\"]\nmin_versions = { p384 = \"0.14.0\" }\n",
    );
    let image = fixture().rom.parent().unwrap();
    let added = twi(&["policy", "add-image", path(&policy), path(image), "--workload", "payroll-app"]);
    assert!(added.status.success(), "twi policy add-image: {}", stderr(&added));
    let values: serde_json::Value =
        serde_json::from_slice(&std::fs::read(image.join("reference-values.json")).unwrap()).unwrap();
    let digest = values["sbom"]["digest"].as_str().unwrap();
    let stored = dir.path().join("sboms").join(format!("{}.cdx.json", digest.replace(':', "-")));
    assert_eq!(std::fs::read(&stored).unwrap(), std::fs::read(image.join("sbom.cdx.json")).unwrap());
    assert!(std::fs::read_to_string(&policy).unwrap().contains(&format!("sbom = \"{digest}\"")));

    let out_dir = dir.path().join("out");
    sim(&out_dir).policy(&policy).run().assert_success("twi run under provenance demands");
    let show = |credential: &str, json: bool| {
        let credential = out_dir.join(credential);
        let state = &fixture().state;
        let mut args = vec!["provenance", "show", path(&credential), "--state", path(state), "--policy", path(&policy)];
        if json {
            args.push("--json");
        }
        let out = twi(&args);
        assert!(out.status.success(), "twi provenance show: {}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let text = show("credential.pem", false);
    for says in [
        "workload: spiffe://example.org/payroll-app",
        "provenance: deny: openssl absent",
        "provenance: min_versions: p384 >= 0.14.0",
        &format!("sbom: {digest}"),
        "library twi-runtime ",
        "library p384 0.14",
        "verified under the log key",
    ] {
        assert!(text.contains(says), "`twi provenance show` does not say {says:?}:\n{text}");
    }
    the_chain_from_cargo_lock_to_the_credential(image, &out_dir, digest, &text);
    let json: serde_json::Value = serde_json::from_str(&show("credential.wit", true)).unwrap();
    assert_eq!(json["credential"]["kind"], "wit");
    assert_eq!(json["sbom"], digest);
    assert!(json["components"].as_array().unwrap().iter().any(|c| c["name"] == "aes-gcm"), "{json}");
    assert_eq!(json["inclusion"]["verified"], true);

    // A crate on the deny list: refused, naming it.
    let text = std::fs::read_to_string(&policy).unwrap().replace("deny = [\"openssl\"]", "deny = [\"p384\"]");
    std::fs::write(&policy, text).unwrap();
    sim(&dir.path().join("denied")).policy(&policy).run().assert_refused(
        "an image with a denied crate got a credential",
        "provenance demand deny = \"p384\" fails: the image contains p384 0.14",
    );
}

/// Workload Provenance end to end in one place: a crate's version and checksum in the
/// workspace's Cargo.lock are the image SBOM's component; the SBOM's SHA-384 is the digest the
/// build's reference values name (the launch manifest's, which the measurement covers), the
/// one the run's X.509 credential carries in its extension and its WIT in its claim; and `twi
/// provenance show` (`shown`) lists the component at that version.
fn the_chain_from_cargo_lock_to_the_credential(image: &Path, out_dir: &Path, digest: &str, shown: &str) {
    use sha2::{Digest, Sha384};
    let sbom_bytes = std::fs::read(image.join("sbom.cdx.json")).unwrap();
    assert_eq!(format!("sha384:{}", hex::encode(Sha384::digest(&sbom_bytes))), digest);
    let sbom: serde_json::Value = serde_json::from_slice(&sbom_bytes).unwrap();
    let components = sbom["components"].as_array().unwrap();
    let p384 = components.iter().find(|c| c["name"] == "p384").expect("the SBOM lists p384");
    let (version, checksum) = (p384["version"].as_str().unwrap(), p384["hashes"][0]["content"].as_str().unwrap());
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock")).unwrap();
    let locked = format!(
        "name = \"p384\"\nversion = \"{version}\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"{checksum}\""
    );
    assert!(lock.contains(&locked), "Cargo.lock does not lock p384 {version} with checksum {checksum}");
    assert!(shown.contains(&format!("library p384 {version}")), "{shown}");

    assert_eq!(sbom_extension(&certificate(out_dir)), digest);
    let oids = twi_issuer::oids::Oids::default();
    let wit = std::fs::read_to_string(out_dir.join("credential.wit")).unwrap();
    let claims = twi_issuer::jose::decode_unverified(wit.trim()).unwrap().claims;
    assert_eq!(claims[&oids.claim_name(&oids.sbom_sha384)], digest, "{claims:?}");
}

/// The SBOM digest a credential carries (`sha384:HEX`): its extension `<arc>.5` under the
/// default arc, an OCTET STRING.
fn sbom_extension(cert: &Certificate) -> String {
    let oid = twi_issuer::oids::Oids::default().sbom_sha384;
    let extensions = cert.tbs_certificate().extensions().unwrap();
    let extension = extensions.iter().find(|e| e.extn_id == oid).expect("no SBOM extension");
    let value: der::asn1::OctetString = der::Decode::from_der(extension.extn_value.as_bytes()).unwrap();
    format!("sha384:{}", hex::encode(value.as_bytes()))
}

#[test]
fn an_unknown_measurement_is_refused_naming_the_closest_match() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(dir.path(), &[("v0.9 (sim)", OLD_MEASUREMENT)], "");
    let out_dir = dir.path().join("out");
    let log = sim(&out_dir).policy(&policy).run().assert_refused(
        "a measurement no workload admits got a credential",
        "the issuer rejected the evidence: the appraisal policy refused the evidence: no workload admits this sim-snp evidence",
    );
    assert!(
        log.contains("closest: workload `payroll-app` reference #0 \"v0.9 (sim)\"")
            && log.contains(&format!("measurement (expected {OLD_MEASUREMENT}, found ")),
        "unclear refusal:\n{log}"
    );
}

#[test]
fn cf_l0_claims_not_signed_by_the_policy_key_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let measurement = fixture_measurement();
    let policy = write_policy(
        dir.path(),
        &[("v1.0 (sim)", &measurement)],
        "fidelity = \"CF_L0\"\n[workload.platform_claims]\ncountry = \"DE\"\n",
    );
    let (signer, other) = (dir.path().join("signer.pem"), dir.path().join("other.pem"));
    for key in [&signer, &other] {
        let made = openssl(&["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", path(key)]);
        assert!(made.status.success());
    }
    let other_pub = dir.path().join("other.pub.pem");
    assert!(openssl(&["ec", "-in", path(&other), "-pubout", "-out", path(&other_pub)]).status.success());
    let sig = dir.path().join("policy.toml.sig");
    assert!(openssl(&["dgst", "-sha384", "-sign", path(&signer), "-out", path(&sig), path(&policy)]).status.success());
    let out_dir = dir.path().join("out");
    let run = sim(&out_dir).policy(&policy).policy_key(&other_pub).run();
    let log = run.assert_failure("CF_L0 claims signed by another key were used");
    assert!(log.contains("the signature does not verify under the policy key"), "unclear refusal:\n{log}");
    // Unsigned, and no policy key at all: refused too.
    std::fs::remove_file(&sig).unwrap();
    sim(&out_dir).policy(&policy).run().assert_refused(
        "CF_L0 claims with no policy key were used",
        "declares CF_L0 platform claims, which count only under the policy key's signature",
    );
}

/// `twi build --corim-key`, then `twi run --policy` with a policy whose reference values are
/// that build's signed CoRIM: the launch is admitted as the JSON entries admit it; the same
/// policy naming another key does not load.
#[test]
fn a_policy_taking_its_reference_values_from_the_builds_signed_corim_admits_the_image() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = (dir.path().join("corim-key.pem"), dir.path().join("corim-key.pub.pem"));
    assert!(openssl(&["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", path(&key)]).status.success());
    assert!(openssl(&["ec", "-in", path(&key), "-pubout", "-out", path(&public)]).status.success());
    let image = dir.path().join("image");
    let elf = f.image.join("twi-runtime.elf");
    let built = twi(&[
        "build",
        "--out",
        path(&image),
        "--state",
        path(&f.state),
        "--runtime-elf",
        path(&elf),
        "--corim-key",
        path(&key),
    ]);
    assert!(
        built.status.success() && stderr(&built).contains("reference-values.corim (signed, ES384)"),
        "{}",
        stderr(&built)
    );
    let extra = "reference_values_corim = \"image/reference-values.corim\"\ncorim_key = \"corim-key.pub.pem\"\n";
    let policy = write_policy(dir.path(), &[], extra);
    let out_dir = dir.path().join("out");
    let run = Scenario::sim(TWI)
        .image(&image.join("twi.rom"))
        .state(&f.state)
        .out(&out_dir)
        .accel("tcg")
        .policy(&policy)
        .run();
    let log = run.assert_success("twi run --policy (reference values from a CoRIM)");
    assert_eq!(run.stdout(), "spiffe://example.org/payroll-app");
    assert!(
        log.contains("admitted as spiffe://example.org/payroll-app by policy e2e-1 (reference \"reference-values.corim #0 (simulated SEV-SNP)\")"),
        "{log}"
    );
    assert_openssl_verifies(&out_dir);

    let other = dir.path().join("other.pem");
    assert!(openssl(&["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", path(&other)]).status.success());
    assert!(openssl(&["ec", "-in", path(&other), "-pubout", "-out", path(&public)]).status.success());
    let log = Scenario::sim(TWI).image(&image.join("twi.rom")).state(&f.state).out(&out_dir).policy(&policy).run();
    let log = log.assert_failure("a CoRIM signed by another key was used");
    assert!(log.contains("reference-values.corim: the signature does not verify under corim_key"), "{log}");
}

/// The EAR `attestation-result.jwt`, verified under the Verifier's key of the fixture's state.
fn verified_attestation_result(out: &Path) -> twi_issuer::ear::Ear {
    use p384::pkcs8::DecodePrivateKey;
    let pem = std::fs::read_to_string(fixture().state.join("issuer/verifier-key.pem")).unwrap();
    let verifier = p384::ecdsa::SigningKey::from_pkcs8_pem(&pem).unwrap();
    let token = std::fs::read_to_string(out.join("attestation-result.jwt")).unwrap();
    twi_issuer::ear::Ear::verify_jwt(token.trim(), verifier.verifying_key(), std::time::SystemTime::now()).unwrap()
}

/// `openssl verify` accepts the run's (simulated) credential under the CA it wrote beside it once
/// told to ignore the critical simulated-TEE extension, and refuses it otherwise.
fn assert_openssl_verifies(out: &Path) {
    tools::assert_openssl_verifies_simulated(&out.join("issuer-ca.pem"), &out.join("credential.pem"));
}

#[test]
fn mechanism_a_returns_the_credential_inside_the_attestation_result() {
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let log = sim(dir.path()).mechanism("a").run().assert_success("twi run --mechanism a");
    assert!(log.contains("credential acquisition mechanism a"), "{log}");
    assert_openssl_verifies(dir.path());
    let console = std::fs::read_to_string(dir.path().join("console.log")).unwrap();
    for line in ["credential accepted for spiffe://example.org/demo", "mechanism A: an attestation result"] {
        assert!(console.contains(line), "{line:?} missing from the guest console:\n{console}");
    }
    // The attestation result names the credential and binds its key.
    let cert = certificate(dir.path());
    let ear = verified_attestation_result(dir.path());
    let twi = &ear.submods["twi"];
    let named = &twi.verifier_claims["credential"];
    let der = der::Encode::to_der(&cert).unwrap();
    assert_eq!(named["x509-sha256"], hex::encode(sha2::Sha256::digest(&der)).as_str());
    assert_eq!(named["x509-serial"], hex::encode(cert.tbs_certificate().serial_number().as_bytes()).as_str());
    let bound = twi.bound_key().unwrap().unwrap();
    assert_eq!(bound, p384::PublicKey::from_sec1_bytes(&certified_key(&cert)).unwrap());
}

#[test]
fn mechanism_b_forwards_the_attestation_result_to_the_credential_authority() {
    use p384::ecdsa::signature::Verifier;
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let log = sim(dir.path()).mechanism("b").run().assert_success("twi run --mechanism b");
    for step in ["credential acquisition mechanism b", "attestation result for", "accepted the attestation result"] {
        assert!(log.contains(step), "progress line {step:?} missing from:\n{log}");
    }
    assert_openssl_verifies(dir.path());
    let console = std::fs::read_to_string(dir.path().join("console.log")).unwrap();
    for line in ["mechanism B: attestation result received", "credential accepted for spiffe://example.org/demo"] {
        assert!(console.contains(line), "{line:?} missing from the guest console:\n{console}");
    }
    // The guest's CredentialRequest: its proof of possession verifies under the certified key,
    // over the documented input with the challenge nonce and the EAR it forwarded.
    let cert = certificate(dir.path());
    let (_, nonce, key) = evidence(dir.path());
    assert_eq!(certified_key(&cert), key);
    let request: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("credential-request.json")).unwrap()).unwrap();
    let ear = request["ear"].as_str().unwrap();
    assert_eq!(ear, std::fs::read_to_string(dir.path().join("attestation-result.jwt")).unwrap().trim());
    assert_eq!(hex::decode(request["public_key"].as_str().unwrap()).unwrap(), key);
    let proof = p384::ecdsa::Signature::from_der(&hex::decode(request["proof"].as_str().unwrap()).unwrap()).unwrap();
    let digest: [u8; 32] = sha2::Sha256::digest(ear.as_bytes()).into();
    let signed = twi_proto::msg::credential_request_signed_bytes(&nonce, &key, &digest);
    let verifying = p384::ecdsa::VerifyingKey::from_sec1_bytes(&key).unwrap();
    verifying.verify(&signed, &proof).expect("the CredentialRequest's proof of possession does not verify");
    let mut other_nonce = nonce.clone();
    other_nonce[0] ^= 1;
    let other = twi_proto::msg::credential_request_signed_bytes(&other_nonce, &key, &digest);
    assert!(verifying.verify(&other, &proof).is_err());
    // The EAR verifies under the Verifier's key and binds the certified key.
    let result = verified_attestation_result(dir.path());
    let bound = result.submods["twi"].bound_key().unwrap().unwrap();
    assert_eq!(bound, p384::PublicKey::from_sec1_bytes(&key).unwrap());
    assert_eq!(result.nonce.as_deref(), Some(nonce.as_slice()));
}

/// Mechanism D: the credential the Key Store holds for `workload_id` in the fixture's state
/// (`keystore/<first 32 hex digits of SHA-256(workload id)>/`): the certificate and the key.
fn provisioned(workload_id: &str) -> (Certificate, Vec<u8>) {
    provisioned_in(&fixture().state, workload_id)
}

/// [`provisioned`] in the issuer state `state`.
fn provisioned_in(state: &Path, workload_id: &str) -> (Certificate, Vec<u8>) {
    use p384::pkcs8::DecodePrivateKey;
    use sha2::Digest;
    let slot = state.join("issuer/keystore").join(&hex::encode(sha2::Sha256::digest(workload_id.as_bytes()))[..32]);
    let cert = Certificate::from_pem(std::fs::read(slot.join("credential.pem")).unwrap()).unwrap();
    let key = p384::ecdsa::SigningKey::from_pkcs8_pem(&std::fs::read_to_string(slot.join("key.pem")).unwrap()).unwrap();
    (cert, key.verifying_key().to_sec1_point(false).as_bytes().to_vec())
}

/// The workload owner provisions its own key (`twi keystore provision`), and mechanism D
/// releases exactly that key into the vault; a certificate from another CA is refused at
/// provisioning, since no runtime built for this issuer would accept it.
#[test]
fn mechanism_d_releases_the_key_the_owner_provisioned() {
    use p384::pkcs8::{EncodePrivateKey, LineEnding};
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let owner = p384::ecdsa::SigningKey::from_slice(&[0x5A; 48]).unwrap();
    let key_path = dir.path().join("owner-key.pem");
    std::fs::write(&key_path, owner.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes()).unwrap();
    let owner_public = owner.verifying_key().to_sec1_point(false).as_bytes().to_vec();

    // A self-signed certificate for the key: not this issuer's, refused with the reason.
    let foreign = dir.path().join("foreign.pem");
    let made = openssl(&[
        "req",
        "-x509",
        "-new",
        "-key",
        path(&key_path),
        "-subj",
        "/CN=demo",
        "-days",
        "1",
        "-addext",
        "subjectAltName=URI:spiffe://example.org/demo",
        "-out",
        path(&foreign),
    ]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let out = TWI.provision(&state, "spiffe://example.org/demo", &key_path, Some(&foreign));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("the owner's certificate is not one this issuer's CA"), "{}", stderr(&out));

    // The CA certifies SPIFFE IDs of its own trust domain only (issue 14).
    for (id, why) in [
        ("spiffe://other.org/demo", "not this issuer's \"example.org\""),
        ("spiffe://example.org", "names the trust domain itself"),
        ("spiffe://example.org/demo?admin=1", "is not a valid SPIFFE ID"),
        ("https://example.org/demo", "is not a SPIFFE ID"),
    ] {
        let out = TWI.provision(&state, id, &key_path, None);
        assert!(!out.status.success() && stderr(&out).contains(why), "{id}: {}", stderr(&out));
    }
    let out = TWI.provision(&state, "spiffe://example.org/demo", &key_path, None);
    assert!(out.status.success(), "{}", stderr(&out));
    let serial = String::from_utf8_lossy(&out.stdout).trim().to_string();

    let run_dir = dir.path().join("run");
    let run = Scenario::sim(TWI).state(&state).out(&run_dir).accel("tcg").mechanism("d").run();
    run.assert_success("twi run --mechanism d with the owner's key");
    let cert = certificate(&run_dir);
    assert_eq!(certified_key(&cert), owner_public, "the released credential is not the owner's");
    // Released with a certificate of its own for this launch (the provisioned one is `serial`).
    let (provisioned_cert, _) = provisioned_in(&state, "spiffe://example.org/demo");
    assert_eq!(hex::encode(provisioned_cert.tbs_certificate().serial_number().as_bytes()), serial);
    assert_released(&cert, &provisioned_cert);
    let console = std::fs::read_to_string(run_dir.join("console.log")).unwrap();
    assert!(console.contains("credential accepted for spiffe://example.org/demo"), "{console}");
}

#[test]
fn mechanism_d_releases_the_provisioned_key_into_the_vault() {
    let dir = tempfile::tempdir().unwrap();
    let log = sim(dir.path()).mechanism("d").run().assert_success("twi run --mechanism d");
    for step in ["credential acquisition mechanism d", "Key Store: ", "the Key Store released the key of"] {
        assert!(log.contains(step), "progress line {step:?} missing from:\n{log}");
    }
    let console = std::fs::read_to_string(dir.path().join("console.log")).unwrap();
    for line in [
        "mechanism D: the evidence binds an ephemeral HPKE key",
        "mechanism D: the Key Store's release opened in the vault",
        "credential accepted for spiffe://example.org/demo",
    ] {
        assert!(console.contains(line), "{line:?} missing from the guest console:\n{console}");
    }
    assert_openssl_verifies(dir.path());
    // The credential is the provisioned one, and its key is the provisioned key, not the key
    // the evidence bound (that was the ephemeral HPKE key).
    let cert = certificate(dir.path());
    let (provisioned_cert, provisioned_key) = provisioned("spiffe://example.org/demo");
    assert_released(&cert, &provisioned_cert);
    assert_eq!(certified_key(&cert), provisioned_key);
    let (report, nonce, ephemeral) = evidence(dir.path());
    assert_ne!(ephemeral, provisioned_key);
    assert!(!nonce.is_empty());
    assert_eq!(
        report.report_data,
        tacra_binding(dir.path(), &twi_testkit::tacra::spki(&ephemeral)),
        "REPORTDATA binds the ephemeral key's SubjectPublicKeyInfo for a retrieval"
    );
    // The release as recorded: to the ephemeral key the evidence binds, with a receipt signed
    // by the Key Store's own key.
    let release: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("key-release.json")).unwrap()).unwrap();
    assert_eq!(hex::decode(release["ephemeral_public_key"].as_str().unwrap()).unwrap(), ephemeral);
    assert_eq!(hex::decode(release["provisioned_public_key"].as_str().unwrap()).unwrap(), provisioned_key);
    let jwk: twi_issuer::jose::Jwk = serde_json::from_value(release["key_store_key"].clone()).unwrap();
    let receipt = twi_issuer::jose::verify_compact(
        release["receipt"].as_str().unwrap(),
        p384::ecdsa::VerifyingKey::from(&jwk.to_p384().unwrap()),
        "twi-key-release+jwt",
    )
    .expect("the release receipt verifies under the Key Store key");
    assert_eq!(receipt.claims["ephemeral-key"], hex::encode(&ephemeral).as_str());
    // The attestation result binds the ephemeral key the evidence attested.
    let result = verified_attestation_result(dir.path());
    assert_eq!(
        result.submods["twi"].bound_key().unwrap().unwrap(),
        p384::PublicKey::from_sec1_bytes(&ephemeral).unwrap()
    );
}

#[test]
fn mechanism_d_a_release_altered_by_the_host_is_refused_by_the_guest() {
    let dir = tempfile::tempdir().unwrap();
    let run = sim(dir.path()).mechanism("d").tamper("release-byte:5").run();
    let log = run.assert_refused("a tampered key release was accepted", "key release refused");
    assert!(log.contains("tamper: flipped byte 0x5 of the released ciphertext"), "{log}");
    assert!(log.contains("does not open"), "{log}");
    let console = std::fs::read_to_string(dir.path().join("console.log")).unwrap();
    assert!(!console.contains("credential accepted"), "{console}");
}

#[test]
fn mechanism_d_under_simulated_tdx_releases_the_provisioned_key() {
    let dir = tempfile::tempdir().unwrap();
    let log = sim_tdx(dir.path()).mechanism("d").run().assert_success("twi run --platform sim-tdx --mechanism d");
    assert!(log.contains("on platform SimTdx") && log.contains("the Key Store released the key of"), "{log}");
    let console = std::fs::read_to_string(dir.path().join("console.log")).unwrap();
    assert!(console.contains("mechanism D: the Key Store's release opened in the vault"), "{console}");
    let (_, provisioned_key) = provisioned("spiffe://example.org/demo");
    assert_eq!(certified_key(&certificate(dir.path())), provisioned_key);
    assert_openssl_verifies(dir.path());
}

/// The roles as a service: the issuer operator builds the image (it embeds the service's CA
/// as its anchor), admits it (simulated SEV-SNP and TDX) in a policy, and runs `twi serve`
/// trusting the simulated TEE of the loader's state.
struct Service {
    served: Served,
    /// The service's CA certificate (its TLS server certificate chains to it too).
    ca: PathBuf,
    /// The operator CA `twi serve --operator-ca` trusts, and the owner's client certificate.
    operator: tools::OperatorPki,
    server_state: PathBuf,
    loader_state: PathBuf,
    image: PathBuf,
}

impl Service {
    /// The service with its policy's workload under mechanism c.
    fn start(dir: &Path) -> Self {
        Self::start_with(dir, "c")
    }

    /// The service with its policy's workload under `mechanism` (TACRA: the policy, not the
    /// host, decides the mode; d makes the workload's acquisitions Retrievals).
    fn start_with(dir: &Path, mechanism: &str) -> Self {
        let (server_state, loader_state, image) =
            (dir.join("issuer-state"), dir.join("loader-state"), dir.join("image"));
        let elf = fixture().rom.with_file_name("twi-runtime.elf");
        let built = twi(&["build", "--out", path(&image), "--state", path(&server_state), "--runtime-elf", path(&elf)]);
        assert!(built.status.success(), "twi build failed:\n{}", stderr(&built));
        let reference: serde_json::Value =
            serde_json::from_slice(&std::fs::read(image.join("reference-values.json")).unwrap()).unwrap();
        let measurement = reference["snp"]["launch_digest"].as_str().unwrap();
        let policy = write_policy(dir, &[("served image", measurement)], "");
        let mrtd = reference["tdx"]["mrtd"].as_str().unwrap();
        let mut text = std::fs::read_to_string(&policy)
            .unwrap()
            .replace("mechanism = \"c\"", &format!("mechanism = \"{mechanism}\""));
        text.push_str(&format!(
            "[[workload.reference]]\nlabel = \"served image (sim-tdx)\"\nplatform = \"sim-tdx\"\nmrtd = \"{mrtd}\"\n"
        ));
        std::fs::write(&policy, text).unwrap();
        let operator = tools::OperatorPki::new(dir, "service");
        let args = [
            ["--state", path(&server_state)],
            ["--policy", path(&policy)],
            ["--simulated-tee", path(&loader_state)],
            ["--operator-ca", path(&operator.ca)],
        ];
        let served = Served::start(TWI, args.as_flattened());
        let ca = server_state.join("issuer/issuer-ca.pem");
        Self { served, ca, operator, server_state, loader_state, image }
    }

    /// `twi run --platform PLATFORM` of the operator's image, writing to `out`, reaching the
    /// service's roles over HTTPS (verified under the issuer CA beside the image).
    fn scenario(&self, platform: &str, out: &Path) -> Scenario {
        let scenario = Scenario::new(TWI, platform).image(&self.image.join("twi.rom")).state(&self.loader_state);
        scenario.out(out).accel("tcg").issuer_url(&self.served.url)
    }
}

#[test]
fn http_roles_issue_over_mechanisms_a_b_and_c_and_sim_tdx() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(dir.path());
    let (served, served_ca, loader_state, image) =
        (&service.served, &service.ca, &service.loader_state, &service.image);
    assert!(served.url.starts_with("https://127.0.0.1:"), "twi serve speaks TLS by default: {}", served.url);
    // Mechanisms a, b and c on the simulated SEV-SNP chip, each under a policy that gives it
    // (issue 14: the issuer enforces the policy's mechanism); the simulated TDX platform (its
    // quote and RTMR event log relayed as JSON) under the policy's mechanism, c.
    for (platform, mechanism) in [("sim", "a"), ("sim", "b"), ("sim", "c"), ("sim-tdx", "c")] {
        let out = dir.path().join(format!("run-{platform}-{mechanism}"));
        let own;
        let service = if mechanism == "c" {
            &service
        } else {
            own = Service::start_with(&dir.path().join(format!("service-{mechanism}")), mechanism);
            &own
        };
        let (served, served_ca) = (&service.served, &service.ca);
        let run = service.scenario(platform, &out).mechanism(mechanism).run();
        let log = run.assert_success(&format!("twi run --platform {platform} --mechanism {mechanism} --issuer-url"));
        for line in [
            format!("using the Verifier, Credential Authority and Key Store at {}", served.url),
            format!("credential acquisition mechanism {mechanism}"),
            "admitted as spiffe://example.org/payroll-app".to_string(),
        ] {
            assert!(log.contains(&line), "{line:?} missing from:\n{log}");
        }
        tools::assert_openssl_verifies_simulated(served_ca, &out.join("credential.pem"));
        let text = openssl(&["x509", "-in", path(&out.join("credential.pem")), "-noout", "-ext", "subjectAltName"]);
        let san = String::from_utf8_lossy(&text.stdout);
        assert!(san.contains("URI:spiffe://example.org/payroll-app"), "{san}");
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("evidence.json")).unwrap()).unwrap();
        let key = hex::decode(json["public_key"].as_str().unwrap()).unwrap();
        assert_eq!(json["platform"], if platform == "sim" { "SimSnp" } else { "SimTdx" });
        assert_eq!(certified_key(&certificate(&out)), key, "the credential certifies the attested key");
        assert_eq!(std::fs::read(out.join("issuer-ca.pem")).unwrap(), std::fs::read(served_ca).unwrap());
        let console = std::fs::read_to_string(out.join("console.log")).unwrap();
        assert!(console.contains("credential accepted for spiffe://example.org/payroll-app"), "{console}");
    }
    // Without --image, `twi run --issuer-url` builds the image itself, anchored to the served
    // CA: the same bytes as the operator's build (reproducible), so the policy admits it.
    let out = dir.path().join("run-built");
    let scenario = Scenario::sim(TWI).state(loader_state).out(&out).accel("tcg").issuer_url(&served.url);
    let run = scenario.issuer_ca(served_ca).arg("--ear-format").arg("cwt").run();
    run.assert_success("twi run --issuer-url without --image");
    // --ear-format cwt: the served Verifier's result as a CWT only, verifying under its key.
    assert!(!out.join("attestation-result.jwt").exists());
    let jwks: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("issuer-jwks.json")).unwrap()).unwrap();
    let jwk = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == "twi-verifier").unwrap().clone();
    let key = serde_json::from_value::<twi_issuer::jose::Jwk>(jwk).unwrap().to_p384().unwrap();
    let cwt = std::fs::read(out.join("attestation-result.cwt")).unwrap();
    let ear = twi_issuer::ear::Ear::verify_cwt(&cwt, &key.into(), std::time::SystemTime::now()).unwrap();
    assert_eq!(ear.submods["twi"].verifier_claims["workload-id"], "spiffe://example.org/payroll-app");
    assert!(
        std::fs::read(out.join("twi.rom")).unwrap() == std::fs::read(image.join("twi.rom")).unwrap(),
        "the image built against the served CA differs from the operator's"
    );
    assert!(!loader_state.join("issuer").exists(), "the loader opened an embedded issuer");
    // `twi log prove`: the credential's record, proved against a checkpoint signed by the key
    // the run wrote down; a credential the log never saw is refused.
    let serial = hex::encode(certificate(&out).tbs_certificate().serial_number().as_bytes());
    let prov: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("provenance.json")).unwrap()).unwrap();
    let vkey = prov["checkpoint_vkey"].as_str().unwrap();
    let proved =
        twi(&["log", "prove", &serial, "--issuer-url", &served.url, "--issuer-ca", path(served_ca), "--vkey", vkey]);
    assert!(proved.status.success(), "twi log prove: {}", String::from_utf8_lossy(&proved.stderr));
    let shown: serde_json::Value = serde_json::from_slice(&proved.stdout).unwrap();
    assert_eq!(shown["record"]["credential_id"], serial.as_str());
    let said = String::from_utf8_lossy(&proved.stderr);
    assert!(said.contains("records verified under example.org/twi-log+"), "{said}");
    assert!(said.contains("ok RFC 9942 COSE receipt") && said.contains("ok SCITT signed statement"), "{said}");
    let unknown =
        twi(&["log", "prove", "00", "--issuer-url", &served.url, "--issuer-ca", path(served_ca), "--vkey", vkey]);
    assert!(!unknown.status.success() && String::from_utf8_lossy(&unknown.stderr).contains("no record of credential"));
    // `twi log consistency`: the log only grew from the checkpoint of the first mechanism-c run
    // to the one the service publishes now.
    let first: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("run-sim-c/provenance.json")).unwrap()).unwrap();
    let old = dir.path().join("old-checkpoint.note");
    std::fs::write(&old, first["checkpoint"].as_str().unwrap()).unwrap();
    let grew = twi(&[
        "log",
        "consistency",
        path(&old),
        "--issuer-url",
        &served.url,
        "--issuer-ca",
        path(served_ca),
        "--vkey",
        vkey,
    ]);
    let said = String::from_utf8_lossy(&grew.stderr);
    assert!(grew.status.success() && said.contains("grew consistently from"), "twi log consistency: {said}");
    // `twi log audit` of the service's own log, while it serves.
    let audit = twi(&["--state", path(&service.server_state), "log", "audit"]);
    let said = String::from_utf8_lossy(&audit.stderr);
    assert!(audit.status.success() && said.contains("passed:") && said.contains("signed tree heads"), "{said}");
    // Issue 14: the policy gives this workload mechanism c; the host's `--mechanism a` is refused.
    let run = service.scenario("sim", &dir.path().join("run-refused-a")).mechanism("a").run();
    run.assert_refused("twi run --mechanism a against a policy of mechanism c", "under mechanism c only");
}

/// Issue 14 item 4: `twi run --protocol est` takes the Enrollment through EST (RFC 7030
/// simpleenroll; the CSR as the body, the evidence beside it): the credential certifies the
/// CSR's key, and a policy of another mechanism than c is refused with the reason.
#[test]
fn http_est_enrolls_the_csrs_key_over_rfc_7030() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(dir.path());
    let out = dir.path().join("run-est");
    let run = service.scenario("sim", &out).arg("--protocol").arg("est").run();
    let log = run.assert_success("twi run --protocol est --issuer-url");
    let est = format!("Enrollment by EST (RFC 7030) at {}/.well-known/est/simpleenroll", service.served.url);
    assert!(log.contains(&est) && log.contains("admitted as spiffe://example.org/payroll-app"), "{log}");
    tools::assert_openssl_verifies_simulated(&service.ca, &out.join("credential.pem"));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("evidence.json")).unwrap()).unwrap();
    let csr = hex::decode(json["csr"].as_str().unwrap()).unwrap();
    let csr_key = twi_proto::csr::verify(&csr).unwrap();
    assert_eq!(certified_key(&certificate(&out)), csr_key, "the credential certifies the CSR's key");
    let console = std::fs::read_to_string(out.join("console.log")).unwrap();
    assert!(console.contains("credential accepted for spiffe://example.org/payroll-app"), "{console}");
    // A policy of mechanism b: EST carries no attestation-result redemption.
    let other = Service::start_with(&dir.path().join("service-b"), "b");
    let run = other.scenario("sim", &dir.path().join("run-est-b")).arg("--protocol").arg("est").run();
    run.assert_refused("twi run --protocol est under mechanism b", "--protocol est enrolls through");
}

/// Issue 14 item 4: renewals over HTTP. `twi run --issuer-url URL --renew SERIAL` renews
/// through the JSON API, and with `--protocol est` through EST simplereenroll (RFC 7030
/// §4.2.2): fresh evidence each time, the credential renewed named beside it, a new credential
/// that OpenSSL verifies; a credential the service never issued is refused with the reason.
#[test]
fn http_renewals_over_the_json_api_and_est_simplereenroll() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(dir.path());
    let serial_of = |out: &Path| hex::encode(certificate(out).tbs_certificate().serial_number().as_bytes());
    let first = dir.path().join("run-first");
    service.scenario("sim", &first).run().assert_success("the first issuance over HTTPS");
    let serial = serial_of(&first);

    let json = dir.path().join("run-renew-json");
    let log = service.scenario("sim", &json).renew(&serial).run().assert_success("twi run --renew over HTTPS");
    assert!(log.contains(&format!("twi: renewal of credential {serial}")), "{log}");
    let renewed = serial_of(&json);
    assert_ne!(renewed, serial, "a renewal is a new credential");
    tools::assert_openssl_verifies_simulated(&service.ca, &json.join("credential.pem"));

    let est = dir.path().join("run-renew-est");
    let run = service.scenario("sim", &est).renew(&renewed).arg("--protocol").arg("est").run();
    let log = run.assert_success("twi run --protocol est --renew");
    let path = format!("Re-enrollment by EST (RFC 7030) at {}/.well-known/est/simplereenroll", service.served.url);
    assert!(log.contains(&path), "{log}");
    assert_ne!(serial_of(&est), renewed);
    tools::assert_openssl_verifies_simulated(&service.ca, &est.join("credential.pem"));

    let log = service.scenario("sim", &dir.path().join("run-unknown")).renew("00ff").run().log();
    assert!(log.contains("credential 00ff has no provenance record at this issuer"), "{log}");
}

/// `twi provenance show --issuer-url` (issue 16: "on a credential from an earlier run works
/// after the issuer restarted"): an image admitted with its SBOM by `twi policy add-image`
/// gets a credential from `twi serve` over HTTPS; the service restarts; from another machine's
/// view (an empty state of its own, no policy, no SBOM store) the record, its inclusion proof,
/// the signed checkpoint, the receipt and the SBOM are fetched from the service and verified,
/// and the components listed. An SBOM the service no longer stores is an error naming it.
#[test]
fn http_provenance_show_reads_an_earlier_runs_credential_after_the_issuer_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let (server_state, loader_state, image) =
        (dir.path().join("issuer-state"), dir.path().join("loader-state"), dir.path().join("image"));
    let elf = fixture().rom.with_file_name("twi-runtime.elf");
    let statement = dir.path().join("compliance.txt");
    std::fs::write(&statement, b"audited by Example Auditors, 2026-12\n").unwrap();
    let built = twi(&[
        "build",
        "--out",
        path(&image),
        "--state",
        path(&server_state),
        "--runtime-elf",
        path(&elf),
        "--attach",
        path(&statement),
    ]);
    assert!(built.status.success(), "twi build failed:\n{}", stderr(&built));
    let policy = write_policy(dir.path(), &[], "[workload.provenance]\nsbom = \"required\"\n");
    let added = twi(&["policy", "add-image", path(&policy), path(&image), "--workload", "payroll-app"]);
    assert!(added.status.success(), "twi policy add-image: {}", stderr(&added));
    let args =
        [["--state", path(&server_state)], ["--policy", path(&policy)], ["--simulated-tee", path(&loader_state)]];
    let served = Served::start(TWI, args.as_flattened());
    let out = dir.path().join("run");
    let scenario = Scenario::sim(TWI).image(&image.join("twi.rom")).state(&loader_state).out(&out).accel("tcg");
    scenario.issuer_url(&served.url).run().assert_success("twi run --issuer-url under provenance demands");
    drop(served);

    let served = Served::start(TWI, args.as_flattened());
    let elsewhere = dir.path().join("elsewhere");
    let ca = dir.path().join("issuer-ca.pem");
    std::fs::copy(out.join("issuer-ca.pem"), &ca).unwrap();
    let show = |credential: &str, extra: &[&str]| {
        let credential = out.join(credential);
        let args = ["--state", path(&elsewhere), "provenance", "show", path(&credential), "--issuer-url", &served.url];
        twi(&[&args[..], &["--issuer-ca", path(&ca)], extra].concat())
    };
    let provenance: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("provenance.json")).unwrap()).unwrap();
    let vkey = provenance["checkpoint_vkey"].as_str().expect("provenance.json names the checkpoint key");
    let jwks = out.join("issuer-jwks.json");
    let shown = show("credential.pem", &["--vkey", vkey, "--jwks", path(&jwks)]);
    assert!(shown.status.success(), "twi provenance show --issuer-url: {}", stderr(&shown));
    let text = String::from_utf8(shown.stdout).unwrap();
    let values: serde_json::Value =
        serde_json::from_slice(&std::fs::read(image.join("reference-values.json")).unwrap()).unwrap();
    let digest = values["sbom"]["digest"].as_str().unwrap().to_string();
    for says in [
        "workload: spiffe://example.org/payroll-app",
        &format!("sbom: {digest}"),
        "library twi-runtime ",
        "library p384 0.14",
        "ok checkpoint of ",
        "ok RFC 9162 inclusion of leaf",
        "ok RFC 9942 COSE receipt",
        "ok the credential names this statement (SHA-256 ",
        // The attached statement, fetched from the log role (GET /v1/log/attachment/…).
        &format!(
            "attached: compliance.txt ({}): {} bytes, digest checked",
            twi_issuer::policy::SbomDigest::of(&std::fs::read(&statement).unwrap()),
            std::fs::metadata(&statement).unwrap().len()
        ),
    ] {
        assert!(text.contains(says), "`twi provenance show --issuer-url` does not say {says:?}:\n{text}");
    }
    assert!(!elsewhere.join("issuer/provenance.sqlite").exists(), "the show read a log of its own");
    // The WIT, with the keys the service serves.
    let shown = show("credential.wit", &["--json"]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    let json: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!((json["credential"]["kind"].as_str(), json["sbom"].as_str()), (Some("wit"), Some(digest.as_str())));
    assert!(json["components"].as_array().unwrap().iter().any(|c| c["name"] == "aes-gcm"), "{json}");
    assert_eq!(json["inclusion"]["verified"], true);
    // Without --issuer-url, the empty state has no log: the message says what to give.
    let offline = twi(&["--state", path(&elsewhere), "provenance", "show", path(&out.join("credential.pem"))]);
    assert!(!offline.status.success() && stderr(&offline).contains("give --issuer-url"), "{}", stderr(&offline));
    // The service no longer stores the SBOM: an error naming it, no list of components.
    let file = format!("{}.cdx.json", digest.replace(':', "-"));
    std::fs::remove_file(dir.path().join("sboms").join(file)).unwrap();
    let shown = show("credential.pem", &[]);
    assert!(!shown.status.success(), "an SBOM the service does not store was listed");
    assert!(stderr(&shown).contains(&format!("stores no SBOM {digest}")), "{}", stderr(&shown));
}

#[test]
fn http_an_unreachable_issuer_is_reported_before_booting() {
    let dir = tempfile::tempdir().unwrap();
    // Port 9 (discard) on loopback: nothing listens there.
    let log = sim(dir.path()).issuer_url("http://127.0.0.1:9").run().assert_failure("an unreachable issuer");
    assert!(log.contains("the issuer at http://127.0.0.1:9 cannot be reached"), "{log}");
    assert!(!dir.path().join("console.log").exists(), "QEMU was started: {log}");
}

/// `twi keystore provision --issuer-url URL --issuer-ca CA --platform sim-snp --measurement M`
/// against `service`, with `client` (certificate, key) if given.
fn provision_at(service: &Service, measurement: &str, client: Option<(&Path, &Path)>) -> Output {
    let mut args = vec!["keystore", "provision", "--issuer-url", &service.served.url, "--issuer-ca", path(&service.ca)];
    args.extend(["--platform", "sim-snp", "--measurement", measurement]);
    if let Some((cert, key)) = client {
        args.extend(["--client-cert", path(cert), "--client-key", path(key)]);
    }
    twi(&args)
}

/// The launch measurement the service's policy admits (the operator's image under `sim`).
fn served_measurement(service: &Service) -> String {
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(service.image.join("reference-values.json")).unwrap()).unwrap();
    reference["snp"]["launch_digest"].as_str().unwrap().to_string()
}

#[test]
fn http_tls_a_service_under_another_ca_is_refused_before_booting() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(dir.path());
    // The operator CA is a CA, but not the one the service's certificate chains to.
    let out = dir.path().join("run-wrong-ca");
    let run = service.scenario("sim", &out).issuer_ca(&service.operator.ca).run();
    let log = run.assert_refused("a service whose certificate does not chain to --issuer-ca", "cannot be reached");
    assert!(log.to_lowercase().contains("certificate"), "the reason names the certificate:\n{log}");
    assert!(!out.join("console.log").exists(), "QEMU was started: {log}");
    // https:// with no CA to verify it under (no --image beside an issuer-ca.pem): refused,
    // saying what to pass.
    let run = Scenario::sim(TWI).state(&service.loader_state).out(&out).issuer_url(&service.served.url).run();
    run.assert_refused("https:// without a CA", "--issuer-ca FILE");
    // Plain http:// to a host that is not loopback is refused by the client.
    let run = sim(&out).issuer_url("http://192.0.2.1:8740").run();
    run.assert_refused("plain HTTP off loopback", "plain HTTP is allowed to a loopback address only");
}

#[test]
fn http_tls_plain_http_is_refused_off_loopback_and_warned_about_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(dir.path(), &[("any", &"00".repeat(48))], "");
    let state = dir.path().join("state");
    let base = ["serve", "--state", path(&state), "--policy", path(&policy), "--insecure-plain-http"];
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let out = twi(&[&base[..], &["--listen", listen]].concat());
        assert!(!out.status.success(), "plain HTTP on {listen} was served");
        let log = stderr(&out);
        assert!(log.contains("--insecure-plain-http is allowed on a loopback address only"), "{log}");
    }
    // On loopback it serves, says so, and keeps the owner's endpoints closed.
    let args = ["--state", path(&state), "--policy", path(&policy), "--insecure-plain-http"];
    let served = Served::start(TWI, &args);
    assert!(served.url.starts_with("http://127.0.0.1:"), "{}", served.url);
    let out = twi(&[
        "keystore",
        "provision",
        "--issuer-url",
        &served.url,
        "--platform",
        "sim-snp",
        "--measurement",
        &"00".repeat(48),
    ]);
    assert!(!out.status.success(), "provisioned over plain HTTP");
    assert!(stderr(&out).contains("client certificate issued under the service's operator CA"), "{}", stderr(&out));
}

/// Issue 14 item 8: `twi serve --log-format json` logs one event per request with its method,
/// path, status and time, and nothing the request carried (no query, no header, no body).
#[test]
fn http_request_log_names_each_request_and_nothing_it_carried() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(dir.path(), &[("any", &"00".repeat(48))], "");
    let state = dir.path().join("state");
    let log_path = dir.path().join("serve.log");
    let log_file = std::fs::File::create(&log_path).unwrap();
    let args = ["--state", path(&state), "--policy", path(&policy), "--insecure-plain-http", "--log-format", "json"];
    let served = Served::start_logging_to(TWI, &args, log_file);
    let address = served.url.trim_start_matches("http://").to_string();
    let exchange = |request: String| {
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    let health = exchange("GET /v1/health?token=QUERY-MARKER HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".into());
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let body = r#"{"platform":"sim-snp","secret":"BODY-MARKER"}"#;
    let challenge = exchange(format!(
        "POST /v1/challenge HTTP/1.1\r\nhost: x\r\nauthorization: Bearer HEADER-MARKER\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ));
    assert!(challenge.starts_with("HTTP/1.1 4"), "{challenge}");
    drop(served);
    let log = std::fs::read_to_string(&log_path).unwrap();
    let events: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|e| e["target"] == "twi::request")
        .collect();
    let find = |path: &str| events.iter().find(|e| e["path"] == path).unwrap_or_else(|| panic!("no {path} in\n{log}"));
    let (health, challenge) = (find("/v1/health"), find("/v1/challenge"));
    assert_eq!((health["method"].as_str(), health["status"].as_u64()), (Some("GET"), Some(200)), "{health}");
    assert_eq!(challenge["method"], "POST");
    assert!((400..500).contains(&challenge["status"].as_u64().unwrap()), "{challenge}");
    assert_eq!(health["client"], "127.0.0.1");
    assert!(health["micros"].as_u64().is_some(), "{health}");
    for marker in ["QUERY-MARKER", "BODY-MARKER", "HEADER-MARKER"] {
        assert!(!log.contains(marker), "the request log holds what a request carried ({marker}):\n{log}");
    }
}

#[test]
fn http_tls_provisioning_needs_the_owners_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start_with(dir.path(), "d");
    let measurement = served_measurement(&service);
    // No client certificate: 401, saying what to present.
    let out = provision_at(&service, &measurement, None);
    assert!(!out.status.success(), "provisioned without a client certificate");
    assert!(stderr(&out).contains("client certificate issued under the service's operator CA"), "{}", stderr(&out));
    // A client certificate under another CA: the handshake fails.
    let stranger = tools::OperatorPki::new(dir.path(), "stranger");
    let out = provision_at(&service, &measurement, Some((&stranger.client_cert, &stranger.client_key)));
    assert!(!out.status.success(), "provisioned with a stranger's client certificate");
    // The owner's: provisioned now (so neither refused request provisioned it), then held.
    let owner = Some((service.operator.client_cert.as_path(), service.operator.client_key.as_path()));
    let out = provision_at(&service, &measurement, owner);
    assert!(out.status.success(), "the owner's provisioning failed:\n{}", stderr(&out));
    assert!(stderr(&out).contains(": provisioned credential"), "{}", stderr(&out));
    let out = provision_at(&service, &measurement, owner);
    assert!(stderr(&out).contains("holds the provisioned credential"), "{}", stderr(&out));
}

/// The mode bits of `path`.
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn secrets_at_rest_are_private_whatever_the_umask_and_a_loose_ca_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let owner_key = dir.path().join("owner.pem");
    let out = openssl(&["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", path(&owner_key)]);
    tools::assert_ok(&out, "openssl ecparam -genkey");
    // `twi keystore provision` under umask 000: it opens (creates) the issuer's CA and the Key
    // Store's keys.
    let provision = || {
        let script = "umask 000 && exec \"$0\" \"$@\"";
        let mut command = std::process::Command::new("sh");
        command.args(["-c", script, TWI.0, "keystore", "provision", "--state", path(&state)]);
        command.args(["--workload-id", "spiffe://example.org/payroll-app", "--key", path(&owner_key)]);
        command.output().unwrap()
    };
    let out = provision();
    assert!(out.status.success(), "twi keystore provision failed:\n{}", stderr(&out));
    let issuer = state.join("issuer");
    assert_eq!(mode(&issuer), 0o700, "the issuer's state directory");
    let keys: Vec<PathBuf> = std::fs::read_dir(&issuer)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("key.pem"))
        .collect();
    assert!(keys.iter().any(|k| k.ends_with("issuer-ca.key.pem")) && keys.len() >= 2, "{keys:?}");
    for key in &keys {
        assert_eq!(mode(key), 0o600, "{}", key.display());
    }
    // A CA key others may read is refused, with the command that fixes it.
    let ca_key = issuer.join("issuer-ca.key.pem");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&ca_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = provision();
    assert!(!out.status.success(), "a loose CA key was used");
    assert!(stderr(&out).contains(&format!("chmod 600 {}", ca_key.display())), "{}", stderr(&out));
    std::fs::set_permissions(&ca_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = provision();
    assert!(out.status.success(), "after the chmod:\n{}", stderr(&out));
}

#[test]
fn http_mechanism_d_releases_the_provisioned_key_from_the_served_key_store() {
    let dir = tempfile::tempdir().unwrap();
    // The default roles: verifier, ca and key-store; the policy serves the workload by Retrieval.
    let service = Service::start_with(dir.path(), "d");
    let (served, served_ca, server_state, loader_state) =
        (&service.served, &service.ca, &service.server_state, &service.loader_state);
    let out = dir.path().join("run-d");
    let owner = (&service.operator.client_cert, &service.operator.client_key);
    let scenario = service.scenario("sim", &out).mechanism("d").client_certificate(owner.0, owner.1);
    let log = scenario.run().assert_success("twi run --mechanism d --issuer-url");
    for step in [
        format!("using the Verifier, Credential Authority and Key Store at {}", served.url),
        "credential acquisition mechanism d".to_string(),
        "Key Store: provisioned a credential for spiffe://example.org/payroll-app".to_string(),
        "the Key Store released the key of spiffe://example.org/payroll-app".to_string(),
    ] {
        assert!(log.contains(&step), "progress line {step:?} missing from:\n{log}");
    }
    assert!(!loader_state.join("issuer").exists(), "the loader opened an embedded issuer");
    let console = std::fs::read_to_string(out.join("console.log")).unwrap();
    for line in [
        "mechanism D: the evidence binds an ephemeral HPKE key",
        "mechanism D: the Key Store's release opened in the vault",
        "credential accepted for spiffe://example.org/payroll-app",
    ] {
        assert!(console.contains(line), "{line:?} missing from the guest console:\n{console}");
    }
    // The credential is the one provisioned in the served Key Store, its key the provisioned
    // key (not the ephemeral key the evidence bound), and it chains to the served CA.
    tools::assert_openssl_verifies_simulated(served_ca, &out.join("credential.pem"));
    let cert = certificate(&out);
    let (provisioned_cert, provisioned_key) = provisioned_in(server_state, "spiffe://example.org/payroll-app");
    assert_released(&cert, &provisioned_cert);
    assert_eq!(certified_key(&cert), provisioned_key);
    let (report, nonce, ephemeral) = evidence(&out);
    assert_ne!(ephemeral, provisioned_key);
    assert!(!nonce.is_empty());
    assert_eq!(report.report_data, tacra_binding(&out, &twi_testkit::tacra::spki(&ephemeral)));
    // key-release.json as on the embedded path; the receipt verifies under the served Key
    // Store's own key.
    let release: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("key-release.json")).unwrap()).unwrap();
    assert_eq!(hex::decode(release["ephemeral_public_key"].as_str().unwrap()).unwrap(), ephemeral);
    assert_eq!(hex::decode(release["provisioned_public_key"].as_str().unwrap()).unwrap(), provisioned_key);
    let key_store_key = {
        use p384::pkcs8::DecodePrivateKey;
        let pem = std::fs::read_to_string(server_state.join("issuer/keystore-key.pem")).unwrap();
        *p384::ecdsa::SigningKey::from_pkcs8_pem(&pem).unwrap().verifying_key()
    };
    let jwk: twi_issuer::jose::Jwk = serde_json::from_value(release["key_store_key"].clone()).unwrap();
    assert_eq!(p384::ecdsa::VerifyingKey::from(&jwk.to_p384().unwrap()), key_store_key);
    let receipt =
        twi_issuer::jose::verify_compact(release["receipt"].as_str().unwrap(), key_store_key, "twi-key-release+jwt")
            .expect("the release receipt verifies under the served Key Store's key");
    assert_eq!(receipt.claims["ephemeral-key"], hex::encode(&ephemeral).as_str());

    // The simulated TDX platform, same workload: the Key Store holds its credential already and
    // releases the same key to this launch's ephemeral key.
    let out = dir.path().join("run-d-tdx");
    let run = service.scenario("sim-tdx", &out).mechanism("d").client_certificate(owner.0, owner.1).run();
    let log = run.assert_success("twi run --platform sim-tdx --mechanism d --issuer-url");
    assert!(log.contains("Key Store: holds the provisioned credential for spiffe://example.org/payroll-app"), "{log}");
    assert_released(&certificate(&out), &provisioned_cert);
    let console = std::fs::read_to_string(out.join("console.log")).unwrap();
    assert!(console.contains("mechanism D: the Key Store's release opened in the vault"), "{console}");
    tools::assert_openssl_verifies_simulated(served_ca, &out.join("credential.pem"));
}

// ---------------------------------------------------------------------------------------------
// What a new user meets (issue 12, item 8)

/// An image built against another state is refused before QEMU starts, naming `--state`.
#[test]
fn an_image_for_another_issuer_is_refused_before_booting() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let other_state = dir.path().join("other-state");
    let run = Scenario::sim(TWI).image(&fixture().rom).state(&other_state).out(&out_dir).accel("tcg").run();
    let log = run.assert_failure("an image for another issuer");
    assert!(
        log.contains(&format!("twi: error: {} was built for another issuer", fixture().rom.display()))
            && log.contains(&format!("this run's issuer (--state {})", other_state.display()))
            && log.contains("run it with the --state it was built with"),
        "{log}"
    );
    assert!(!out_dir.join("console.log").exists(), "QEMU was started: {log}");
}

/// `--platform igvm` with the ROM (and the other way round) says which file it needs.
#[test]
fn the_wrong_image_type_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let log = on_fixture(Scenario::new(TWI, "igvm")).out(&dir.path().join("a")).run().assert_failure("the ROM as IGVM");
    assert!(
        log.contains(&format!(
            "{} is a ROM (twi.rom): --platform igvm needs the IGVM file `twi build` writes beside the ROM (DIR/twi.igvm)",
            fixture().rom.display()
        )),
        "{log}"
    );
    assert!(!log.contains("invalid fixed header"), "{log}");
    let igvm = fixture().rom.with_file_name("twi.igvm");
    let scenario = Scenario::sim(TWI).image(&igvm).state(&fixture().state).out(&dir.path().join("b"));
    let log = scenario.run().assert_failure("the IGVM file as a ROM");
    assert!(log.contains(&format!("{} is an IGVM file (twi.igvm): --platform sim", igvm.display())), "{log}");
}

/// The README's policy walk-through, as written: a copy of the example policy, the image
/// admitted with `twi policy add-image`, and `twi run --policy` without a policy key (the
/// example's CF_L0 workload is then not admitted, and a warning says so).
#[test]
fn the_example_policy_runs_as_the_readme_shows() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../issuer/policy.example.toml");
    std::fs::copy(example, &policy).unwrap();
    let image_dir = f.rom.parent().unwrap();
    let added = twi(&["policy", "add-image", path(&policy), path(image_dir), "--workload", "payroll-app"]);
    let log = stderr(&added);
    assert!(added.status.success(), "twi policy add-image failed:\n{log}");
    assert!(log.contains("workload `payroll-app` now admits:") && log.contains("(simulated SEV-SNP)"), "{log}");
    let text = std::fs::read_to_string(&policy).unwrap();
    assert!(text.contains("# Credential acquisition mechanism"), "the example's comments were lost");
    assert!(text.contains(&fixture_measurement()), "the image's measurement is not in the policy");

    let out_dir = dir.path().join("out");
    let run = sim(&out_dir).policy(&policy).run();
    let log = run.assert_success("twi run --policy (the example)");
    assert!(log.contains("workload `ledger` declares CF_L0 platform claims") && log.contains("--policy-key"), "{log}");
    assert_eq!(run.stdout(), "spiffe://example.org/payroll-app");
    assert!(log.contains("admitted as spiffe://example.org/payroll-app by policy 2026-11-23.1"), "{log}");
    assert_openssl_verifies(&out_dir);
}

/// The image booted straight under QEMU with `-m MEMORY` (no channel, no issuer): QEMU's exit
/// status and the console.
fn boot_with_memory(memory: &str) -> (Option<i32>, String) {
    let f = fixture();
    let out = std::process::Command::new("qemu-system-x86_64")
        .args(["-machine", "q35", "-accel", "tcg", "-cpu", "max", "-m", memory])
        .args(["-display", "none", "-monitor", "none", "-nodefaults", "-no-reboot"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-serial", "stdio", "-bios", path(&f.rom)])
        .output()
        .expect("qemu-system-x86_64 is not installed: run ./qemu/install-deps (apt-get install qemu-system-x86)");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn too_little_ram_is_refused_with_a_sentence() {
    // The layout needs 14 MiB (the shared pool ends there). At 12 MiB the image and the heap
    // fit, the frame pool and the shared pool do not. The CMOS counts RAM above 16 MiB only, so
    // the runtime reads QEMU's e820 table; below 16 MiB the old check said nothing.
    for memory in ["13M", "12M", "8M"] {
        let (status, console) = boot_with_memory(memory);
        assert_eq!(status, Some(35), "the failure exit (0x11 << 1 | 1) at -m {memory}:\n{console}");
        let mib: u64 = memory.trim_end_matches('M').parse().unwrap();
        let sentence = format!("FATAL: too little RAM: {} KiB from address 0 (fw_cfg etc/e820)", mib << 10);
        assert!(console.contains(&sentence), "-m {memory}:\n{console}");
        assert!(console.contains("run QEMU with -m 14M or more"), "{console}");
    }
}

/// The fixture's firmware in an image whose manifest holds the epoch marker `epoch` (for
/// TACRA's `absent-epoch`); its directory.
fn image_with_epoch(dir: &Path, epoch: &str) -> PathBuf {
    image_with_setting(dir, &format!("epoch={epoch}"))
}

/// The fixture's runtime rebuilt with one `--set KEY=VALUE` in its manifest (in `dir`).
fn image_with_setting(dir: &Path, set: &str) -> PathBuf {
    let image = dir.join(set.split('=').next().unwrap_or("setting"));
    let elf = fixture().rom.with_file_name("twi-runtime.elf");
    let args = ["build", "--out", path(&image), "--state", path(&fixture().state), "--runtime-elf", path(&elf)];
    let built = twi(&[&args[..], &["--set", set]].concat());
    assert!(built.status.success(), "twi build --set {set} failed:\n{}", stderr(&built));
    image
}

/// What `absent-*`/`present-*` put in the freshness element, checked against the kind.
fn assert_freshness_element(kind: &str, element: &[u8], epoch: &str) {
    match kind {
        "present-nonce" => assert_eq!(element.len(), 32, "a 32-byte nonce"),
        "present-epoch" => assert!(!element.is_empty(), "the issuer's epoch marker"),
        "absent-epoch" => assert_eq!(element, epoch.as_bytes(), "the manifest's epoch marker"),
        "absent-timestamp" => {
            let at = u64::from_be_bytes(element.try_into().expect("8 bytes of seconds"));
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
            assert!(at.abs_diff(now) < 300, "timestamp {at} is not now ({now})");
        }
        "absent-none" => assert!(element.is_empty(), "no freshness element"),
        other => panic!("no such kind {other}"),
    }
}

#[test]
fn every_tacra_freshness_kind_the_policy_names_for_a_target_is_bound_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let epoch = "2026-12";
    let image = image_with_epoch(dir.path(), epoch);
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(image.join("reference-values.json")).unwrap()).unwrap();
    let measurement = reference["snp"]["launch_digest"].as_str().unwrap();
    for kind in ["present-nonce", "present-epoch", "absent-epoch", "absent-timestamp", "absent-none"] {
        let target = format!(
            "\n[[workload.target]]\nname = \"twi:default\"\nfreshness = \"{kind}\"\nepoch = \"{}\"\n",
            hex::encode(epoch)
        );
        let case = dir.path().join(kind);
        std::fs::create_dir_all(&case).unwrap();
        let policy = write_policy(&case, &[("epoch image", measurement)], &target);
        let out = case.join("out");
        let scenario = Scenario::sim(TWI).image(&image.join("twi.rom")).state(&fixture().state);
        let run = scenario.out(&out).accel("tcg").policy(&policy).run();
        let log = run.assert_success(&format!("twi run with freshness {kind}"));
        assert!(log.contains(&format!("for target twi:default (x509), freshness {kind}")), "{log}");
        let (report, element, _) = evidence(&out);
        assert_freshness_element(kind, &element, epoch);
        let csr = enrollment_csr(&out);
        assert_eq!(report.report_data, tacra_binding(&out, &csr), "{kind}: REPORTDATA is not the TACRA binding");
        // The Verifier reports the freshness input it appraised.
        let ear = verified_attestation_result(&out);
        let input = ear.submods["twi"].freshness.as_ref().expect("the EAR's TACRA freshness input");
        assert_eq!((input.kind.name(), &input.value), (kind, &element));
        let handle = kind.starts_with("present-");
        assert_eq!(ear.nonce.is_some(), handle, "{kind}: eat_nonce only for a handle the issuer handed out");
    }
}

#[test]
fn the_manifests_hint_is_honoured_when_the_target_lists_it_and_refused_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let image = image_with_setting(dir.path(), "hint=rotate");
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(image.join("reference-values.json")).unwrap()).unwrap();
    let measurement = reference["snp"]["launch_digest"].as_str().unwrap();
    for (hints, honoured) in [("[\"rotate\"]", true), ("[\"eu-only\"]", false)] {
        let case = dir.path().join(if honoured { "honoured" } else { "refused" });
        std::fs::create_dir_all(&case).unwrap();
        let target = format!("\n[[workload.target]]\nname = \"twi:default\"\nhints = {hints}\n");
        let policy = write_policy(&case, &[("hint image", measurement)], &target);
        let scenario = Scenario::sim(TWI).image(&image.join("twi.rom")).state(&fixture().state);
        let run = scenario.out(&case.join("out")).accel("tcg").policy(&policy).run();
        if honoured {
            run.assert_success("twi run with a hint the target lists");
        } else {
            let log = run.assert_failure("twi run with a hint the target does not list");
            // The guest learns TACRA's reason (its AcquireError::RejectedHint), the host the words.
            let guest = "FATAL: the issuer rejected the hint: workload `payroll-app` asked for target `twi:default` with the hint \"rotate\"";
            assert!(log.contains(guest), "{log}");
            assert!(!log.contains("evidence received"), "evidence was sent after a refused hint:\n{log}");
        }
    }
}

#[test]
fn a_target_the_policy_does_not_serve_is_refused_before_any_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let target = "\n[[workload.target]]\nname = \"https://payroll-db.example/rows\"\n";
    let policy = write_policy(dir.path(), &[("fixture", &fixture_measurement())], target);
    let out = dir.path().join("out");
    let log = sim(&out).policy(&policy).run().assert_failure("a target the policy does not serve");
    assert!(
        log.contains(
            "the issuer declined the target twi:default: workload `payroll-app` is not served for target `twi:default`"
        ),
        "{log}"
    );
    assert!(!log.contains("evidence received"), "evidence was sent for an unserved target:\n{log}");
}
