//! End-to-end below a paravisor: the real ROM boots under QEMU with `twi run --platform
//! sim-svsm`, a simulated SVSM at VMPL0 and the runtime at VMPL2 (as under COCONUT-SVSM). The
//! runtime finds the SVSM in its secrets page, checks the SVSM's protocols and evidence,
//! validates memory through SVSM_CORE_PVALIDATE, and attests with the VMPCK of its own VMPL; the
//! issuer's policy says which VMPLs a workload admits and the credential records the VMPL.
//!
//! Needs what tests/e2e.rs needs (`./qemu/install-deps`); fails, never skips, without it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use der::{Decode, DecodePem};
use twi_attester::snp::report::AttestationReport;
use twi_testkit::scenario::{Built, Scenario, Twi};
use x509_cert::Certificate;

const TWI: Twi = Twi(env!("CARGO_BIN_EXE_twi-e2e"));

/// One image and one issuer state shared by the tests (building the runtime takes a while).
fn fixture() -> &'static Built {
    static FIXTURE: OnceLock<Built> = OnceLock::new();
    FIXTURE.get_or_init(|| TWI.build_default())
}

/// `twi run --platform PLATFORM` of the fixture's image, writing to `out`, under TCG.
fn on(platform: &str, out: &Path) -> Scenario {
    let f = fixture();
    Scenario::new(TWI, platform).image(&f.rom).state(&f.state).out(out).accel("tcg")
}

fn console(out: &Path) -> String {
    std::fs::read_to_string(out.join("console.log")).unwrap()
}

/// The VMPL extension of the credential in `out` (INTEGER), if any.
fn credential_vmpl(out: &Path) -> Option<u32> {
    let cert = Certificate::from_pem(std::fs::read(out.join("credential.pem")).unwrap()).unwrap();
    let oid = twi_issuer::oids::Oids::default().vmpl;
    let extension = cert.tbs_certificate().extensions()?.iter().find(|e| e.extn_id == oid)?.clone();
    assert!(!extension.critical, "the VMPL extension is informational");
    Some(u32::from_der(extension.extn_value.as_bytes()).unwrap())
}

/// The VMPL claim of the WIT in `out`, if any.
fn wit_vmpl(out: &Path) -> Option<u64> {
    use base64ct::Encoding;
    let token = std::fs::read_to_string(out.join("credential.wit")).unwrap();
    let payload = token.trim().split('.').nth(1).unwrap();
    let claims: serde_json::Value =
        serde_json::from_slice(&base64ct::Base64UrlUnpadded::decode_vec(payload).unwrap()).unwrap();
    let oids = twi_issuer::oids::Oids::default();
    claims[oids.claim_name(&oids.vmpl)].as_u64()
}

fn report_vmpl(out: &Path) -> u32 {
    AttestationReport::parse(&std::fs::read(out.join("evidence.bin")).unwrap()).unwrap().vmpl
}

#[test]
fn mechanism_c_below_the_svsm_records_vmpl_2_where_vmpl0_records_0() {
    let dir = tempfile::tempdir().unwrap();
    let below = dir.path().join("below");
    let log = on("sim-svsm", &below).mechanism("c").run().assert_success("twi run --platform sim-svsm");
    assert!(log.contains("issued: spiffe://example.org/demo"), "{log}");
    let text = console(&below);
    for line in [
        "SVSM at VMPL0: core and attestation protocols v1; frame pool validated through SVSM_CORE_PVALIDATE; its report (VMPL0) binds our nonce and its 24-byte services manifest",
        "platform: simulated SEV-SNP below a simulated SVSM at VMPL 2 (VMPCK2 taken from the secrets page, reports for VMPL 2)",
        "credential accepted for spiffe://example.org/demo",
        "credential sealed to this launch",
    ] {
        assert!(text.contains(line), "{line:?} missing from the guest console:\n{text}");
    }
    assert_eq!(report_vmpl(&below), 2, "the report is at the runtime's own VMPL");
    assert_eq!(credential_vmpl(&below), Some(2));
    assert_eq!(wit_vmpl(&below), Some(2));

    // The same image at VMPL0 (`--platform sim`): no SVSM, VMPL 0 in the credential.
    let at0 = dir.path().join("vmpl0");
    on("sim", &at0).mechanism("c").run().assert_success("twi run --platform sim");
    assert!(!console(&at0).contains("SVSM"), "{}", console(&at0));
    assert_eq!((report_vmpl(&at0), credential_vmpl(&at0), wit_vmpl(&at0)), (0, Some(0), Some(0)));
}

#[test]
fn mechanism_d_below_the_svsm_releases_the_provisioned_key_into_the_vault() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let log = on("sim-svsm", &out).mechanism("d").run().assert_success("twi run --platform sim-svsm --mechanism d");
    assert!(log.contains("the Key Store released the key of"), "{log}");
    let text = console(&out);
    for line in [
        "below a simulated SVSM at VMPL 2",
        "mechanism D: the Key Store's release opened in the vault",
        "credential accepted for spiffe://example.org/demo",
    ] {
        assert!(text.contains(line), "{line:?} missing from the guest console:\n{text}");
    }
    assert_eq!(credential_vmpl(&out), Some(2));
}

/// A policy for `payroll-app` admitting the fixture's image, with `vmpls` if given.
fn write_policy(dir: &Path, vmpls: Option<&str>) -> PathBuf {
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture().rom.with_file_name("reference-values.json")).unwrap()).unwrap();
    let measurement = reference["snp"]["launch_digest"].as_str().unwrap();
    let vmpls = vmpls.map(|v| format!("vmpls = {v}\n")).unwrap_or_default();
    let text = format!(
        "version = \"svsm-1\"\ntrust_domain = \"example.org\"\n\n[[workload]]\nid = \"payroll-app\"\nmechanism = \"c\"\n{vmpls}\n\
         [[workload.reference]]\nlabel = \"this image\"\nplatform = \"sim-snp\"\nmeasurement = \"{measurement}\"\n"
    );
    let file = dir.join("policy.toml");
    std::fs::write(&file, text).unwrap();
    file
}

#[test]
fn a_policy_admitting_vmpl_0_only_refuses_the_guest_below_the_svsm() {
    let dir = tempfile::tempdir().unwrap();
    let refused = dir.path().join("refused");
    let policy = write_policy(dir.path(), None);
    let run = on("sim-svsm", &refused).policy(&policy).run();
    run.assert_refused(
        "a VMPL2 report under a VMPL0-only policy",
        "workload `payroll-app` admits VMPL 0 only, and this SEV-SNP report was made at VMPL 2",
    );
    // The same policy admits the image at VMPL0 ...
    let at0 = dir.path().join("vmpl0");
    on("sim", &at0).policy(&policy).run().assert_success("the VMPL0 launch under the default vmpls");
    // ... and, listing VMPL 2, the guest below the SVSM.
    let admitted = dir.path().join("admitted");
    let policy = write_policy(dir.path(), Some("[0, 2]"));
    let log = on("sim-svsm", &admitted).policy(&policy).run().assert_success("vmpls = [0, 2]");
    assert!(log.contains("spiffe://example.org/payroll-app"), "{log}");
    assert_eq!(credential_vmpl(&admitted), Some(2));
    // A policy that admits VMPL 2 only refuses the VMPL0 launch, naming it.
    let policy = write_policy(dir.path(), Some("[2]"));
    let run = on("sim", &dir.path().join("only2")).policy(&policy).run();
    run.assert_refused(
        "a VMPL0 report under a VMPL2-only policy",
        "admits VMPL 2 only, and this SEV-SNP report was made at VMPL 0",
    );
}

/// `twi build --no-svsm-caa` (for hosts whose QEMU stops at SEV metadata section type 4): the
/// same runtime boots and gets its credential at VMPL0, the build says the ROM has no calling
/// area, and `--platform sim-svsm` refuses it before QEMU starts, as COCONUT-SVSM refuses
/// firmware without one.
#[test]
fn a_rom_without_the_calling_area_runs_at_vmpl0_and_no_svsm_takes_it() {
    let (f, dir) = (fixture(), tempfile::tempdir().unwrap());
    let image = dir.path().join("no-caa");
    let elf = f.image.join("twi-runtime.elf");
    let utf8 = |p: &Path| p.to_str().unwrap().to_string();
    let built = TWI.run(&[
        "build",
        "--out",
        &utf8(&image),
        "--state",
        &utf8(&f.state),
        "--runtime-elf",
        &utf8(&elf),
        "--no-svsm-caa",
    ]);
    let log = String::from_utf8_lossy(&built.stderr);
    assert!(built.status.success(), "twi build --no-svsm-caa:\n{log}");
    assert!(log.contains("declares no SVSM calling area"), "{log}");
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(image.join("reference-values.json")).unwrap()).unwrap();
    assert_eq!(reference["snp"]["svsm_calling_area"], false);
    let rom = image.join("twi.rom");
    let at0 = dir.path().join("vmpl0");
    let run = Scenario::new(TWI, "sim").image(&rom).state(&f.state).out(&at0).accel("tcg").run();
    run.assert_success("the ROM without a calling area at VMPL0");
    assert_eq!(credential_vmpl(&at0), Some(0));
    let below = dir.path().join("below");
    let run = Scenario::new(TWI, "sim-svsm").image(&rom).state(&f.state).out(&below).accel("tcg").run();
    let log = run.assert_refused("a ROM without a calling area below an SVSM", "declares no SVSM calling area");
    assert!(log.contains("--no-svsm-caa") && !below.join("console.log").exists(), "{log}");
}
