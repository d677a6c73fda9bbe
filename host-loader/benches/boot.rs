//! Boot-to-credential figures: `cargo bench -p twi-host-loader --bench boot`.
//!
//! Builds the image once, then boots it `TWI_BENCH_RUNS` times (default 10) under each
//! accelerator in `TWI_BENCH_ACCELS` (default `tcg`; add `kvm` on a host where KVM is fast) and
//! prints the median and range of: QEMU launch → credential written (as `twi run` reports
//! it), and the guest's own figures from its console (reset → Rust entry, P-384 keygen and
//! signature, reset → done). Not a test: it prints figures and exits 0.

use std::process::Command;

const TWI: &str = env!("CARGO_BIN_EXE_twi");

fn number_after(text: &str, marker: &str) -> Option<f64> {
    let rest = &text[text.find(marker)? + marker.len()..];
    let digits: String = rest.trim_start().chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    digits.parse().ok()
}

fn summary(name: &str, unit: &str, mut values: Vec<f64>) {
    if values.is_empty() {
        println!("{name:<40} (no samples)");
        return;
    }
    values.sort_by(f64::total_cmp);
    let median = values[values.len() / 2];
    println!(
        "{name:<40} median {median:>9.1} {unit}  (min {:.1}, max {:.1}, n={})",
        values[0],
        values[values.len() - 1],
        values.len()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let runs: usize = std::env::var("TWI_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let accels = std::env::var("TWI_BENCH_ACCELS").unwrap_or_else(|_| "tcg".into());
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let image = dir.path().join("image");
    let out = Command::new(TWI)
        .args(["build", "--out", image.to_str().unwrap(), "--state", state.to_str().unwrap()])
        .output()
        .expect("twi build");
    assert!(out.status.success(), "twi build failed: {}", String::from_utf8_lossy(&out.stderr));
    let rom = image.join("twi.rom");
    let elf = std::fs::read(image.join("twi-runtime.elf")).expect("runtime ELF");
    println!(
        "ROM file: {} KiB; runtime ELF (with symbols): {} KiB",
        std::fs::metadata(&rom).unwrap().len() / 1024,
        elf.len() / 1024
    );
    println!(
        "ROM bytes in use (non-zero span below the top 8 KiB excluded): {} KiB",
        used_kib(&std::fs::read(&rom).unwrap())
    );

    for accel in accels.split(',') {
        let (mut wall, mut entry, mut keygen, mut sign, mut done) = (vec![], vec![], vec![], vec![], vec![]);
        for i in 0..runs {
            let out_dir = dir.path().join(format!("{accel}-{i}"));
            let out = Command::new(TWI)
                .args([
                    "run",
                    "--platform",
                    "sim",
                    "--image",
                    rom.to_str().unwrap(),
                    "--state",
                    state.to_str().unwrap(),
                ])
                .args(["--out", out_dir.to_str().unwrap(), "--accel", accel, "--timeout", "600"])
                .output()
                .expect("twi run");
            let log = String::from_utf8_lossy(&out.stderr);
            if !out.status.success() {
                println!("{accel}: run {i} failed: {}", log.lines().last().unwrap_or(""));
                continue;
            }
            wall.extend(number_after(&log, "issuer-ca.pem in"));
            let console = std::fs::read_to_string(out_dir.join("console.log")).unwrap_or_default();
            entry.extend(number_after(&console, "rust entry").map(|us| us / 1000.0));
            keygen.extend(number_after(&console, "keygen").map(|us| us / 1000.0));
            sign.extend(number_after(&console, ", sign").map(|us| us / 1000.0));
            done.extend(number_after(&console, "done in").map(|us| us / 1000.0));
        }
        println!("--- accelerator {accel}, {runs} runs");
        summary("QEMU launch -> credential written", "ms", wall);
        summary("guest: reset vector -> Rust entry", "ms", entry);
        summary("guest: P-384 key generation", "ms", keygen);
        summary("guest: P-384 signature", "ms", sign);
        summary("guest: reset -> credential sealed", "ms", done);
    }
}

fn used_kib(rom: &[u8]) -> usize {
    let body = &rom[..rom.len() - 0x2000];
    let first = body.iter().position(|&b| b != 0).unwrap_or(body.len());
    let last = body.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    last.saturating_sub(first) / 1024
}
