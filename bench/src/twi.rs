//! Running `twi`: builds, runs and what they print.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use anyhow::{Result, bail};

/// The `twi` binary, the benchmark's scratch directory and its issuer state.
#[derive(Debug)]
pub struct Twi {
    pub bin: PathBuf,
    pub dir: PathBuf,
    pub state: PathBuf,
}

/// One `twi run`: whole-process wall time, what `twi` reports, the console.
#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    pub wall_ms: f64,
    /// `twi run`'s own "in N ms" (QEMU launch → credential written).
    pub reported_ms: Option<f64>,
    pub stderr: String,
    pub console: String,
    /// The run's `timeline.json` (`Null` if it wrote none).
    pub timeline: serde_json::Value,
}

impl Twi {
    pub fn command(&self) -> Command {
        Command::new(&self.bin)
    }

    /// `twi build --out DIR --state STATE EXTRA...`, returning DIR.
    pub fn build(&self, name: &str, extra: &[&str]) -> Result<PathBuf> {
        let out = self.dir.join(name);
        let output =
            self.command().args(["build", "--out"]).arg(&out).arg("--state").arg(&self.state).args(extra).output()?;
        if !output.status.success() {
            bail!("twi build {name} failed:\n{}", String::from_utf8_lossy(&output.stderr));
        }
        Ok(out)
    }

    /// `twi run --platform sim --accel tcg` of `rom` into a fresh output directory.
    pub fn run(&self, rom: &Path, name: &str, extra: &[&str]) -> Result<Run> {
        self.run_on("sim", rom, name, extra)
    }

    /// `twi run --platform PLATFORM --accel tcg` of `rom` into a fresh output directory.
    pub fn run_on(&self, platform: &str, rom: &Path, name: &str, extra: &[&str]) -> Result<Run> {
        let out = self.dir.join("runs").join(name);
        let start = Instant::now();
        let output = self
            .command()
            .args(["run", "--platform", platform, "--accel", "tcg", "--image"])
            .arg(rom)
            .arg("--state")
            .arg(&self.state)
            .arg("--out")
            .arg(&out)
            .args(extra)
            .output()?;
        Ok(finished(output, start, &out))
    }
}

fn finished(output: Output, start: Instant, out: &Path) -> Run {
    let wall_ms = start.elapsed().as_secs_f64() * 1e3;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let reported_ms = number_after(&stderr, "issuer-ca.pem in ");
    let console = std::fs::read_to_string(out.join("console.log")).unwrap_or_default();
    let timeline = std::fs::read(out.join("timeline.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    Run { ok: output.status.success(), wall_ms, reported_ms, stderr, console, timeline }
}

/// The number right after the first `marker` in `text`.
pub fn number_after(text: &str, marker: &str) -> Option<f64> {
    let rest = &text[text.find(marker)? + marker.len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    digits.parse().ok()
}

/// Every number right after `marker` in `text`, in order.
pub fn numbers_after(text: &str, marker: &str) -> Vec<f64> {
    text.match_indices(marker)
        .filter_map(|(i, _)| {
            let digits: String =
                text[i + marker.len()..].chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
            digits.parse().ok()
        })
        .collect()
}

/// The last line of `text` (for a failure).
pub fn last_line(text: &str) -> &str {
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("")
}
