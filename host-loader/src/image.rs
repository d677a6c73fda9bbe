//! Building the bootable ROM: compile the runtime for the bare-metal target, then place its
//! ELF load segments at their ROM load addresses and write the launch manifest into its slot.
//!
//! The ROM ends at 4 GiB (QEMU maps `-bios` there). Its fixed addresses are defined by
//! `linker/runtime.ld` and checked here against the ELF's symbols, so the two cannot drift.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use object::{Object, ObjectSegment, ObjectSymbol};
use sha2::{Digest, Sha384};
use twi_proto::manifest::{LaunchManifest, MANIFEST_SLOT_SIZE};

use twi_layout::{MANIFEST_ADDR, RESET_VECTOR, ROM_BASE, ROM_SIZE};

/// The repository root (where the runtime's sources are).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host-loader lives in the workspace").to_path_buf()
}

/// Compiles the runtime (release, x86_64-unknown-none) and returns the ELF's path.
///
/// It uses its own target directory so it neither waits for nor invalidates the host build.
pub fn build_runtime_elf() -> Result<PathBuf> {
    let root = workspace_root();
    let target_dir = root.join("target").join("firmware");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(&root)
        .args(["build", "--quiet", "--release", "-p", "twi-runtime", "--target", "x86_64-unknown-none"])
        .env("CARGO_TARGET_DIR", &target_dir)
        // Flags meant for the host build must not leak into the firmware build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .with_context(|| format!("cannot run {}", Path::new(&cargo).display()))?;
    if !status.success() {
        bail!(
            "building the runtime failed (cargo build -p twi-runtime --target x86_64-unknown-none): see the compiler output above"
        );
    }
    Ok(target_dir.join("x86_64-unknown-none").join("release").join("twi-runtime"))
}

/// The bytes of a ROM for `elf` carrying `manifest`.
pub fn assemble_rom(elf: &[u8], manifest: &LaunchManifest) -> Result<Vec<u8>> {
    let file = object::File::parse(elf).context("the runtime is not an ELF file")?;
    check_symbol(&file, "__manifest_start", MANIFEST_ADDR)?;
    check_symbol(&file, "__manifest_end", MANIFEST_ADDR + MANIFEST_SLOT_SIZE as u64)?;
    check_symbol(&file, "reset_vector", RESET_VECTOR)?;
    check_symbol(&file, "__image_lma_start", ROM_BASE)?;

    let mut rom = vec![0u8; ROM_SIZE];
    for segment in file.segments() {
        let data = segment.data().context("unreadable ELF segment")?;
        if data.is_empty() {
            continue; // .bss: lives in RAM only
        }
        // p_paddr is the load (ROM) address; object's `address()` is p_vaddr.
        let load = segment_load_address(&file, &segment)?;
        let offset = load.checked_sub(ROM_BASE).filter(|o| o + data.len() as u64 <= ROM_SIZE as u64);
        let Some(offset) = offset else {
            bail!("ELF segment at load address {load:#x} (+{:#x}) lies outside the ROM", data.len());
        };
        let range = offset as usize..offset as usize + data.len();
        if range.end > (MANIFEST_ADDR - ROM_BASE) as usize
            && range.start < (MANIFEST_ADDR - ROM_BASE) as usize + MANIFEST_SLOT_SIZE
        {
            bail!("ELF segment at {load:#x} overlaps the manifest slot");
        }
        rom[range].copy_from_slice(data);
    }
    let slot = manifest.to_slot().map_err(|e| anyhow::anyhow!("launch manifest: {e}"))?;
    let at = (MANIFEST_ADDR - ROM_BASE) as usize;
    rom[at..at + MANIFEST_SLOT_SIZE].copy_from_slice(&slot);
    Ok(rom)
}

fn segment_load_address(file: &object::File<'_>, segment: &object::Segment<'_, '_>) -> Result<u64> {
    use object::read::elf::ProgramHeader;
    let object::File::Elf64(elf) = file else { bail!("the runtime must be a 64-bit ELF") };
    let endian = elf.endian();
    // Find the program header with this segment's vaddr and file range.
    let (file_off, _) = segment.file_range();
    for header in elf.elf_program_headers() {
        if header.p_offset(endian) == file_off && header.p_vaddr(endian) == segment.address() {
            return Ok(header.p_paddr(endian));
        }
    }
    bail!("no program header for the segment at {:#x}", segment.address())
}

fn check_symbol(file: &object::File<'_>, name: &str, expected: u64) -> Result<()> {
    let symbol = file.symbols().find(|s| s.name() == Ok(name));
    match symbol.map(|s| s.address()) {
        Some(addr) if addr == expected => Ok(()),
        Some(addr) => bail!("linker/runtime.ld puts {name} at {addr:#x}, the image builder expects {expected:#x}"),
        None => bail!("the runtime ELF has no symbol {name}: was it linked with linker/runtime.ld?"),
    }
}

/// SHA-384 of the ROM, hex: the image hash shown to users.
pub fn rom_sha384(rom: &[u8]) -> String {
    hex::encode(Sha384::digest(rom))
}
