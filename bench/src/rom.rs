//! ROM figures from a runtime ELF: the bytes the image carries (.text, .rodata, .data: everything
//! the boot stub copies to RAM; and a `.vault` section, where an ELF from before 2026-12-07
//! still has one — the vault's pages are in `.bss` now), zero-filled `.data` (what
//! belongs in `.bss`), and each crate's share by its symbols (demangled, the crate being the
//! first path segment, as cargo-bloat counts), the rest reported as unattributed.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use object::{Object, ObjectSection, ObjectSymbol};

/// The sections the ROM carries.
const LOADED: [&str; 4] = [".text", ".rodata", ".data", ".vault"];

#[derive(Debug)]
pub struct Rom {
    /// Bytes of each loaded section.
    pub sections: Vec<(String, u64)>,
    /// Bytes of `.data` that are zero (could live in `.bss`).
    pub zero_data: u64,
    /// Bytes per crate, largest first; "(unattributed)" for bytes no symbol covers.
    pub crates: Vec<(String, u64)>,
}

impl Rom {
    pub fn in_use(&self) -> u64 {
        self.sections.iter().map(|(_, n)| n).sum()
    }
}

pub fn measure(elf: &Path) -> Result<Rom> {
    let bytes = std::fs::read(elf).with_context(|| format!("reading {}", elf.display()))?;
    let file = object::File::parse(&*bytes).context("parsing the runtime ELF")?;
    let mut sections = Vec::new();
    let mut loaded: BTreeMap<usize, u64> = BTreeMap::new();
    let mut zero_data = 0;
    for section in file.sections() {
        let name = section.name().unwrap_or_default().to_string();
        if LOADED.contains(&name.as_str()) {
            sections.push((name.clone(), section.size()));
            loaded.insert(section.index().0, section.size());
            if name == ".data" {
                zero_data = section.data().map_or(0, |d| d.iter().filter(|&&b| b == 0).count() as u64);
            }
        }
    }
    let mut crates: BTreeMap<String, u64> = BTreeMap::new();
    let mut attributed = 0;
    for symbol in file.symbols() {
        let Some(index) = symbol.section_index() else { continue };
        if !loaded.contains_key(&index.0) || symbol.size() == 0 {
            continue;
        }
        let name = format!("{:#}", rustc_demangle::demangle(symbol.name().unwrap_or_default()));
        *crates.entry(crate_of(&name)).or_default() += symbol.size();
        attributed += symbol.size();
    }
    let total: u64 = loaded.values().sum();
    crates.insert("(unattributed: strings, tables, padding)".into(), total.saturating_sub(attributed));
    let mut crates: Vec<(String, u64)> = crates.into_iter().collect();
    crates.sort_by_key(|c| std::cmp::Reverse(c.1));
    Ok(Rom { sections, zero_data, crates })
}

/// The crate a demangled symbol belongs to: its first path segment, looking inside `<...>` of a
/// trait impl (`<p384::FieldElement as core::ops::Mul>::mul` is p384's).
fn crate_of(name: &str) -> String {
    let trimmed = name.trim_start_matches(['<', '&', '*', '(']).trim_start_matches("mut ").trim_start_matches("dyn ");
    match trimmed.split_once("::") {
        Some((first, _)) if !first.is_empty() && first.chars().all(|c| c.is_alphanumeric() || c == '_') => {
            first.to_string()
        }
        _ => "(non-Rust: boot stub, compiler builtins)".into(),
    }
}

/// Prints a ROM's figures beside the budget, the largest `top` crates one per line.
pub fn print(label: &str, rom: &Rom, budget: u64, top: usize) {
    let sections: Vec<String> = rom.sections.iter().map(|(n, b)| format!("{n} {b}")).collect();
    say!(
        "{label:<44} {:>10} bytes in use ({}) | budget {budget} | ratio {:.3}",
        rom.in_use(),
        sections.join(", "),
        rom.in_use() as f64 / budget as f64
    );
    let data = rom.sections.iter().find(|(n, _)| n == ".data").map_or(0, |(_, b)| *b);
    say!("{:<44} {:>10} of {data} bytes of .data are zero", "  zero bytes in .data", rom.zero_data);
    for (name, bytes) in rom.crates.iter().take(top) {
        say!("  {name:<42} {bytes:>10} bytes  {:>5.1} %", *bytes as f64 * 100.0 / rom.in_use().max(1) as f64);
    }
}
