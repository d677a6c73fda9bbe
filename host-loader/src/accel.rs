//! Choosing QEMU's accelerator by measurement, not by the presence of /dev/kvm.
//!
//! Some machines expose a nested, paravirtualised /dev/kvm under which firmware code runs
//! ~1000× slower than under TCG. `auto` boots the real ROM in self-test mode (key generation
//! and one signature: the work that suffers) under TCG, then under KVM with TCG's time as its
//! budget, and keeps the faster. The verdict is cached per QEMU binary and kernel.

use std::fs;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use crate::qemu::{Accel, AccelChoice, time_self_test};

/// The accelerator and a sentence saying why.
#[derive(Debug, Clone)]
pub struct Decision {
    pub accel: Accel,
    pub reason: String,
}

/// Decides for `choice`; `self_test_rom` is only booted when a measurement is needed.
pub fn decide(
    choice: AccelChoice,
    qemu: &Path,
    self_test_rom: &dyn Fn() -> Result<std::path::PathBuf>,
    cache_dir: &Path,
) -> Result<Decision> {
    match choice {
        AccelChoice::Tcg => return Ok(Decision { accel: Accel::Tcg, reason: "requested with --accel tcg".into() }),
        AccelChoice::Kvm => return Ok(Decision { accel: Accel::Kvm, reason: "requested with --accel kvm".into() }),
        AccelChoice::Auto => {}
    }
    if fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_err() {
        return Ok(Decision { accel: Accel::Tcg, reason: "auto: /dev/kvm is absent or not accessible".into() });
    }
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
    let key = format!("{}|{kernel}", qemu.display());
    let cache_path = cache_dir.join("accel.json");
    if let Some(cached) = read_cache(&cache_path, &key) {
        return Ok(cached);
    }
    let rom = self_test_rom()?;
    let tcg = time_self_test(qemu, Accel::Tcg, &rom, Duration::from_secs(60));
    let budget = tcg.unwrap_or(Duration::from_secs(10)).max(Duration::from_millis(500));
    let kvm = time_self_test(qemu, Accel::Kvm, &rom, budget);
    let ms = |d: Option<Duration>| d.map_or("did not finish".to_string(), |d| format!("{} ms", d.as_millis()));
    let accel = match (kvm, tcg) {
        (Some(k), Some(t)) if k < t => Accel::Kvm,
        (Some(_), None) => Accel::Kvm,
        _ => Accel::Tcg,
    };
    let decision = Decision {
        accel,
        reason: format!(
            "auto: measured a self-test boot: tcg {}, kvm {} (budget {} ms)",
            ms(tcg),
            ms(kvm),
            budget.as_millis()
        ),
    };
    let _ = fs::create_dir_all(cache_dir);
    let _ = fs::write(&cache_path, json!({ "key": key, "accel": accel.name(), "reason": decision.reason }).to_string());
    Ok(Decision { reason: format!("{}; remembered in {}", decision.reason, cache_path.display()), ..decision })
}

fn read_cache(path: &Path, key: &str) -> Option<Decision> {
    let value: serde_json::Value = serde_json::from_str(&fs::read_to_string(path).ok()?).ok()?;
    if value["key"] != key {
        return None;
    }
    let accel = match value["accel"].as_str()? {
        "kvm" => Accel::Kvm,
        "tcg" => Accel::Tcg,
        _ => return None,
    };
    Some(Decision { accel, reason: format!("{}, remembered in {}", value["reason"].as_str()?, path.display()) })
}
