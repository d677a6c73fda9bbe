//! End-to-end: the channel's transports and the guest's RAM (issue 17). The shared-memory ring is
//! the default and runs the whole flow in 16 MiB; the 16550 fallback still does; a host that lies
//! about the ring's indices ends the run with the guest's reason, never a credential or a panic.
//!
//! Needs `qemu-system-x86_64` (`./qemu/install-deps`); fails, never skips, without it.

use std::path::Path;
use std::process::Output;
use std::sync::OnceLock;

use twi_testkit::scenario::{Built, Twi};
use twi_testkit::tools::utf8 as path;

const TWI: Twi = Twi(env!("CARGO_BIN_EXE_twi-e2e"));

/// One image and one issuer state shared by the tests (building the runtime takes a while).
fn fixture() -> &'static Built {
    static FIXTURE: OnceLock<Built> = OnceLock::new();
    FIXTURE.get_or_init(|| TWI.build_default())
}

fn run_sim(out: &Path, extra: &[&str]) -> (Output, String, String) {
    let f = fixture();
    let output = TWI
        .command()
        .args(["run", "--platform", "sim", "--accel", "tcg", "--image", path(&f.rom), "--state", path(&f.state)])
        .args(["--out", path(out)])
        .args(extra)
        .output()
        .expect("cannot run twi");
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    let console = std::fs::read_to_string(out.join("console.log")).unwrap_or_default();
    (output, log, console)
}

#[test]
fn the_ring_carries_the_whole_flow_in_16_mib() {
    let dir = tempfile::tempdir().unwrap();
    let (out, log, console) = run_sim(dir.path(), &["--memory", "16M"]);
    assert!(out.status.success(), "twi run --memory 16M failed:\n{log}");
    assert!(console.contains("RAM: 16 MiB from address 0 (fw_cfg etc/e820)"), "{console}");
    assert!(console.contains("channel: shared-memory ring (64 KiB each way, COM2 as doorbell)"), "{console}");
    assert!(console.contains("credential accepted for spiffe://example.org/demo"), "{console}");
    assert!(dir.path().join("credential.pem").is_file());
}

#[test]
fn the_16550_fallback_still_carries_the_whole_flow() {
    let dir = tempfile::tempdir().unwrap();
    let (out, log, console) = run_sim(dir.path(), &["--channel", "serial", "--memory", "16M"]);
    assert!(out.status.success(), "twi run --channel serial failed:\n{log}");
    assert!(console.contains("channel: COM2 (16550)"), "{console}");
    assert!(!console.contains("shared-memory ring"), "{console}");
    assert!(console.contains("credential accepted for spiffe://example.org/demo"), "{console}");
}

#[test]
fn print_qemu_shows_the_ring_backing_file_and_offer() {
    let dir = tempfile::tempdir().unwrap();
    let (out, log, _) = run_sim(dir.path(), &["--memory", "16M", "--print-qemu"]);
    assert!(out.status.success(), "{log}");
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    for part in [
        "-machine q35,memory-backend=twi-ram",
        "-object memory-backend-file,id=twi-ram,size=16M,mem-path=GUEST-RAM.bin,share=on",
        "-fw_cfg name=opt/twi/ring,string=1",
        "-m 16M",
    ] {
        assert!(line.contains(part), "{part:?} missing from {line}");
    }
    let (out, _, _) = run_sim(dir.path(), &["--channel", "serial", "--print-qemu"]);
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!line.contains("opt/twi/ring") && !line.contains("memory-backend") && line.contains("-m 128M"), "{line}");
}

/// A host→guest head three rings ahead of the guest's tail: the guest copies nothing, ends the
/// channel and says why.
#[test]
fn a_ring_head_beyond_the_ring_is_refused_by_the_guest() {
    let dir = tempfile::tempdir().unwrap();
    let (out, log, console) = run_sim(dir.path(), &["--tamper-ring", "head"]);
    assert!(!out.status.success(), "the guest used a lying ring:\n{log}");
    assert!(log.contains("twi: tamper: the host→guest ring head claims three rings' worth of bytes"), "{log}");
    let why = "the host broke the channel's transport: the peer's ring head claims more bytes than the ring holds";
    assert!(console.contains(why), "the guest did not say why:\n{console}");
    assert!(log.contains("twi: error: the guest failed:") && log.contains(why), "{log}");
    assert!(!console.contains("panic"), "{console}");
    assert!(!dir.path().join("credential.pem").exists());
}

/// A guest→host tail moved past what the guest produced: the guest's next write refuses it.
#[test]
fn a_ring_tail_past_the_head_is_refused_by_the_guest() {
    let dir = tempfile::tempdir().unwrap();
    let (out, log, console) = run_sim(dir.path(), &["--tamper-ring", "tail"]);
    assert!(!out.status.success(), "the guest used a lying ring:\n{log}");
    assert!(log.contains("twi: tamper: the guest→host ring tail moved past the guest's head"), "{log}");
    let why = "the host broke the channel's transport: the peer's ring tail moved backwards or past the bytes produced";
    assert!(console.contains(why), "the guest did not say why:\n{console}");
    assert!(!console.contains("panic"), "{console}");
    assert!(!dir.path().join("credential.pem").exists());
}

#[test]
fn a_memory_size_that_is_not_one_is_refused_with_the_forms_it_takes() {
    let out = TWI.command().args(["run", "--platform", "sim", "--out", "x", "--memory", "16Q"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("`16Q` is not a memory size: give MiB as a number or with a suffix (16M, 1G)"), "{log}");
}
