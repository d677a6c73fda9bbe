//! The smallest guest RAM (whole MiB) with which `twi run` completes, found by bisection, beside
//! the layout's own floor (`twi_linker::MIN_RAM_BYTES`, what the runtime checks at boot).

use std::path::Path;

use anyhow::{Result, bail};

use crate::stats::section;
use crate::twi::Twi;

/// The layout's floor in MiB (the runtime refuses less, with a sentence).
const LAYOUT_MIB: u64 = 14;

pub fn smallest(twi: &Twi, label: &str, rom: &Path) -> Result<()> {
    section(&format!("smallest RAM that completes: {label}"));
    let completes = |mib: u64| -> Result<bool> {
        let run = twi.run(rom, &format!("ram-{label}-{mib}"), &["--memory", &format!("{mib}M"), "--timeout", "60"])?;
        Ok(run.ok)
    };
    let (mut low, mut high) = (1u64, 64u64);
    if !completes(high)? {
        bail!("{label}: twi run fails even with {high} MiB");
    }
    while high - low > 1 {
        let mid = (low + high) / 2;
        if completes(mid)? { high = mid } else { low = mid }
    }
    say!("{:<44} {high:>10} MiB | layout floor {LAYOUT_MIB} MiB | ratio {:.3}", label, high as f64 / LAYOUT_MIB as f64);
    Ok(())
}
