//! TWI's benchmark (`bench/run`): every figure of issue 17, each printed beside its reference
//! measured in the same run, interleaved where both are timings, as median (min–max, n) with the
//! machine's load average at each section. It reports; it asserts nothing (the tests do).
//!
//! ```text
//! bench/run                     # all sections, 10 runs each
//! bench/run --runs 20 rom cold  # only some sections: rom, cold, ram, frames, guest, issue, verify, log, seal, service
//! target/release/twi-bench elf FILE...   # ROM figures of runtime ELFs built otherwise
//! ```
//!
//! Everything runs under QEMU's TCG (the accelerator is printed with each `twi run`): on these
//! development machines KVM is nested and paravirtualised, about 1000x slower for firmware.

/// `println!` that ends the benchmark quietly when its reader has gone (`twi-bench … | head`),
/// where `println!` would panic.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::stats::say(format_args!($($arg)*))
    };
}

mod boot;
mod cpu;
mod frames;
mod guest;
mod issue;
mod log;
mod ram;
mod rom;
mod service;
mod stats;
mod timeline;
mod twi;
mod verify;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

/// The ROM budget of issue 17.
const ROM_BUDGET: u64 = 256 * 1024;
const SECTIONS: [&str; 11] =
    ["rom", "cold", "ram", "frames", "guest", "issue", "verify", "log", "seal", "service", "replicas"];

/// What `--help` prints.
fn usage() -> String {
    format!(
        "bench/run [--twi PATH] [--runs N] [--log-records N,M,…] [{}]...\n\
         \x20 every section by default, each figure over N runs (default 10) beside its reference\n\
         twi-bench elf FILE...   the ROM figures of runtime ELFs built otherwise",
        SECTIONS.join("|")
    )
}

struct Args {
    twi: PathBuf,
    runs: usize,
    sections: Vec<String>,
    /// The `log` section's log sizes (records), the first the reference.
    log_records: Vec<u64>,
}

fn args() -> Result<Args> {
    let mut twi = None;
    let mut runs = 10;
    let mut sections = Vec::new();
    let mut log_records = vec![1_000, 100_000];
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--twi" => twi = Some(PathBuf::from(it.next().context("--twi PATH")?)),
            "--runs" => runs = it.next().context("--runs N")?.parse().context("--runs N")?,
            "--log-records" => {
                let list = it.next().context("--log-records N,M,…")?;
                log_records =
                    list.split(',').map(str::parse).collect::<Result<_, _>>().context("--log-records N,M,…")?;
            }
            "--bench" => {} // cargo bench passes it
            "--help" | "-h" => {
                say!("{}", usage());
                std::process::exit(0)
            }
            s if SECTIONS.contains(&s) => sections.push(s.to_string()),
            other => bail!("unknown argument {other:?}: {}", usage()),
        }
    }
    let twi = match twi {
        Some(path) => path,
        None => std::env::current_exe()?.with_file_name("twi"),
    };
    if sections.is_empty() {
        sections = SECTIONS.iter().map(|s| s.to_string()).collect();
    }
    Ok(Args { twi, runs: runs.max(1), sections, log_records })
}

fn main() -> Result<()> {
    // `twi-bench elf FILE...`: the ROM figures of runtime ELFs already built (opt-level trials).
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.first().map(String::as_str) == Some("elf") {
        for file in &raw[1..] {
            rom::print(file, &rom::measure(std::path::Path::new(file))?, ROM_BUDGET, 40);
        }
        return Ok(());
    }
    let args = args()?;
    let dir = tempfile::Builder::new().prefix("twi-bench-").tempdir()?;
    let twi = twi::Twi { bin: args.twi.clone(), dir: dir.path().to_path_buf(), state: dir.path().join("state") };
    say!("TWI benchmark: {} runs per figure, accelerator tcg, twi = {}", args.runs, args.twi.display());
    say!("{}", stats::load());
    let on = |s: &str| args.sections.iter().any(|x| x == s);
    // The issuer's sections need no image: `bench/run issue verify log service` runs without building one.
    if args.sections.iter().all(|s| ["issue", "verify", "log", "seal", "service", "replicas"].contains(&s.as_str())) {
        return issuer_sections(&args, on);
    }
    let default = twi.build("image", &[])?;
    let rom = default.join("twi.rom");
    if on("rom") {
        sizes(&twi, &default)?;
    }
    if on("cold") {
        boot::cold_start(&twi, &rom, args.runs)?;
    }
    if on("ram") {
        ram::smallest(&twi, "the built-in workload", &rom)?;
    }
    if on("frames") {
        frames::frame_ratio(&twi, &rom)?;
    }
    if on("guest") {
        guest::guest(&twi, args.runs)?;
    }
    issuer_sections(&args, on)
}

/// The issuer's figures: issuance per core, its cost by the log's size, and `twi serve` under
/// 64 HTTPS clients.
fn issuer_sections(args: &Args, on: impl Fn(&str) -> bool) -> Result<()> {
    if on("issue") {
        issue::issuance(args.runs)?;
    }
    if on("verify") {
        verify::tdx_appraisal(args.runs)?;
    }
    if on("log") {
        log::cost_by_size(args.runs, &args.log_records)?;
    }
    if on("seal") {
        log::sealing(args.runs)?;
    }
    if on("service") {
        service::service(&args.twi, args.runs)?;
    }
    if on("replicas") {
        service::replicas(&args.twi, args.runs)?;
    }
    say!("\nend: {}", stats::load());
    Ok(())
}

/// ROM bytes in use, zero bytes in `.data`, per crate: the built-in workload and https-get (the
/// workload with the TLS stack), beside the 256 KiB budget.
fn sizes(twi: &twi::Twi, default: &std::path::Path) -> Result<()> {
    stats::section("ROM in use (.text + .rodata + .data of the runtime ELF) and per crate");
    let built_in = rom::measure(&default.join("twi-runtime.elf"))?;
    rom::print("built-in workload", &built_in, ROM_BUDGET, 12);
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/https-get");
    let settings = ["--payload", example, "--set", "target=https://127.0.0.1:1/"];
    let https = twi.build("https-get", &settings)?;
    let with_tls = rom::measure(&https.join("twi-runtime.elf"))?;
    rom::print("https-get (TLS 1.3 client, mTLS)", &with_tls, ROM_BUDGET, 16);
    Ok(())
}
