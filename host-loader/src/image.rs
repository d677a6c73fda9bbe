//! Building the bootable ROM: compile the runtime for the bare-metal target, then place its
//! ELF load segments at their ROM load addresses, write the launch manifest into its slot and
//! the firmware metadata (GUID table, SEV metadata, TDVF descriptor: [`twi_linker::footer`])
//! into the GUID table area.
//!
//! The ROM ends at 4 GiB (QEMU maps `-bios` there). Its fixed addresses are defined by
//! the linker script `twi_linker::script` generates and checked here against the ELF's symbols, so the two cannot drift.
//!
//! The build is reproducible: the same sources, toolchain and manifest give the same bytes
//! wherever they are checked out (see [`build_runtime_elf`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use object::{Object, ObjectSegment, ObjectSymbol};
use sha2::{Digest, Sha384};
use twi_proto::manifest::{LaunchManifest, MANIFEST_SLOT_SIZE};

use crate::igvm;
use crate::measure::{
    self,
    cpu::{CPU_TYPES, CpuType, DEFAULT_CPU_TYPE},
    host_profile::{self, HostProfile},
    reference::{GitState, ProfileDigest, ReferenceValues},
    snp::SnpLaunchParams,
};
use twi_linker::{GUID_TABLE, IMAGE_RAM, MANIFEST_ADDR, RESET_VECTOR, ROM_BASE, ROM_SIZE, footer};

/// The environment variable that points an installed `twi` at the TWI sources.
pub const SOURCE_DIR_VAR: &str = "TWI_SOURCE_DIR";

/// The repository root (where the runtime's sources are): `$TWI_SOURCE_DIR`, else the
/// checkout this `twi` was built from. An installed `twi` outlives its checkout when the
/// checkout moves: the error then says where it looked and how to point it elsewhere.
pub fn workspace_root() -> Result<PathBuf> {
    let (root, from) = match std::env::var_os(SOURCE_DIR_VAR) {
        Some(dir) => (PathBuf::from(dir), format!("${SOURCE_DIR_VAR}")),
        None => (built_from(), "the checkout this twi was built from".to_string()),
    };
    if !root.join("runtime").join("Cargo.toml").is_file() {
        bail!(
            "the TWI sources are not at {} ({from}): set {SOURCE_DIR_VAR} to your checkout of TWI, or pass --runtime-elf FILE (a runtime built with `cargo build -p twi-runtime --target x86_64-unknown-none --release`)",
            root.display()
        );
    }
    Ok(root)
}

/// The checkout this binary was compiled in.
fn built_from() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// Compiles the runtime (release, x86_64-unknown-none) and returns the ELF's path.
///
/// It uses its own target directory so it neither waits for nor invalidates the host build.
/// Paths that would otherwise end up in the image (panic locations in dependencies carry their
/// absolute path under `$CARGO_HOME`) are remapped, so the ROM, and so its launch measurement,
/// do not depend on where the sources or the registry live. The flags are appended to the
/// target's `rustflags` in `.cargo/config.toml` (cargo joins `--config` arrays with the file's).
pub fn build_runtime_elf() -> Result<PathBuf> {
    let root = workspace_root()?;
    let target_dir = root.join("target").join("firmware");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(&root)
        // Not --quiet: the first build takes minutes, and cargo's progress shows it is working.
        .args(["build", "--release", "-p", "twi-runtime", "--target", "x86_64-unknown-none"])
        .arg("--config")
        .arg(remap_config(&root))
        .args(firmware_profile_args())
        .env("CARGO_TARGET_DIR", &target_dir)
        // Flags meant for the host build must not leak into the firmware build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .with_context(|| {
            format!(
                "cannot run {} in {} (is Rust installed? https://rustup.rs; or set CARGO to cargo's path)",
                Path::new(&cargo).display(),
                root.display()
            )
        })?;
    if !status.success() {
        bail!(
            "building the runtime failed (cargo build -p twi-runtime --target x86_64-unknown-none): see the compiler output above"
        );
    }
    Ok(target_dir.join("x86_64-unknown-none").join("release").join("twi-runtime"))
}

/// The firmware's optimisation, on top of the release profile (fat LTO, one codegen unit,
/// panic=abort — the target's only strategy), for the runtime's build and a payload's alike:
/// opt-level "s", with the P-384 and SHA-2 arithmetic, where the guest spends its time, at 3.
/// Chosen by measurement (issue 17; README "Figures"; the runtime's ROM in use): opt-level 3
/// 579,526 bytes, this profile 389,850 (−33 %), "s" everywhere 378,034 and "z" 376,889; with
/// "s", thin LTO 434,851 and no LTO 463,310. On the https-get image of 2026-12-07, "z" (the
/// arithmetic still at 3) is 14.3 KB smaller (265,865 against 280,146 bytes) but the guest's
/// warm signature took 12.4 ms instead of 8.0, its mTLS handshake 82.7 ms instead of 54.8 and
/// the channel ran at half the speed (`bench/run guest`): the generic elliptic-curve code is
/// compiled in the crates that name the curve, at their opt-level. `--config` arguments of
/// cargo, each after `--config`.
pub(crate) const FIRMWARE_PROFILE: [&str; 8] = [
    "profile.release.opt-level=\"s\"",
    "profile.release.package.p384.opt-level=3",
    "profile.release.package.primeorder.opt-level=3",
    "profile.release.package.primefield.opt-level=3",
    "profile.release.package.crypto-bigint.opt-level=3",
    "profile.release.package.elliptic-curve.opt-level=3",
    "profile.release.package.ecdsa.opt-level=3",
    "profile.release.package.sha2.opt-level=3",
];

/// `--config C` for each of [`FIRMWARE_PROFILE`].
pub(crate) fn firmware_profile_args() -> Vec<&'static str> {
    FIRMWARE_PROFILE.iter().flat_map(|c| ["--config", c]).collect()
}

/// `--config` value that appends `--remap-path-prefix` for the workspace and `$CARGO_HOME` to
/// the bare-metal target's rustflags.
pub(crate) fn remap_config(root: &Path) -> String {
    remap_config_with(root, &[])
}

/// As [`remap_config`], with more `(path, as)` prefixes to remap (a payload's directory).
pub(crate) fn remap_config_with(root: &Path, more: &[(&Path, &str)]) -> String {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let flags = remap_flags(root, cargo_home.as_deref(), more);
    let quoted: Vec<String> = flags.iter().map(|f| format!("{f:?}")).collect();
    format!("target.x86_64-unknown-none.rustflags=[{}]", quoted.join(", "))
}

/// The `--remap-path-prefix` flags of [`remap_config_with`], for the Cargo home `cargo_home`.
fn remap_flags(root: &Path, cargo_home: Option<&Path>, more: &[(&Path, &str)]) -> Vec<String> {
    let mut flags = vec![format!("--remap-path-prefix={}=/twi", root.display())];
    if let Some(home) = cargo_home {
        flags.push(format!("--remap-path-prefix={}=/cargo", home.display()));
        // A registry's sources (`registry/src/index.crates.io-<hash of the registry and
        // cargo's version>`) as `/crates`: panic locations in dependencies then name
        // `/crates/CRATE-VERSION/src/…`, shorter in the ROM (issue 17) and the same whichever
        // cargo fetched them. Later flags win, so these come after `/cargo`.
        for registry in registry_source_dirs(home) {
            flags.push(format!("--remap-path-prefix={}=/crates", registry.display()));
        }
    }
    for (path, to) in more {
        flags.push(format!("--remap-path-prefix={}={to}", path.display()));
    }
    flags
}

/// The directories under `$CARGO_HOME/registry/src` (one per registry), sorted.
fn registry_source_dirs(cargo_home: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(cargo_home.join("registry").join("src")) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    dirs
}

/// What an image file is, from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageKind {
    /// A ROM for `qemu -bios` (twi.rom): exactly the ROM size.
    Rom,
    /// An IGVM file (twi.igvm): starts with the IGVM magic.
    Igvm,
    /// Neither.
    Unknown,
}

impl ImageKind {
    pub fn of(bytes: &[u8]) -> Self {
        if bytes.starts_with(b"IGVM") {
            Self::Igvm
        } else if bytes.len() == ROM_SIZE {
            Self::Rom
        } else {
            Self::Unknown
        }
    }
}

/// `path`'s bytes, checked to be a `want` image (the error says which file type it is and
/// which one the option needs).
pub fn read_image(path: &Path, want: ImageKind, option: &str) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let found = ImageKind::of(&bytes);
    if found == want {
        return Ok(bytes);
    }
    let is = match found {
        ImageKind::Igvm => "an IGVM file (twi.igvm)".to_string(),
        ImageKind::Rom => "a ROM (twi.rom)".to_string(),
        ImageKind::Unknown => format!("neither a TWI ROM ({} KiB) nor an IGVM file", ROM_SIZE / 1024),
    };
    let needs = match want {
        ImageKind::Igvm => "the IGVM file `twi build` writes beside the ROM (DIR/twi.igvm)",
        ImageKind::Rom | ImageKind::Unknown => {
            "the ROM `twi build` writes (DIR/twi.rom); only --platform igvm loads DIR/twi.igvm"
        }
    };
    bail!("{} is {is}: {option} needs {needs}", path.display())
}

/// The launch manifest a ROM carries in its slot.
pub fn read_manifest(rom: &[u8]) -> Result<LaunchManifest> {
    let at = (MANIFEST_ADDR - ROM_BASE) as usize;
    let slot = rom.get(at..at + MANIFEST_SLOT_SIZE).context("the image is too short to carry a launch manifest")?;
    LaunchManifest::from_slot(slot).map_err(|e| anyhow::anyhow!("the image carries no readable launch manifest: {e:?}"))
}

/// Whether the ROM's SEV metadata declares the SVSM calling area (section type 4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CallingArea {
    /// Declared (the default): an SVSM (COCONUT's `igvmbuilder --firmware`) can boot the ROM;
    /// upstream QEMU (>= 9.1) and current `sev-snp-measure` prepare the page as a zero page.
    #[default]
    Declared,
    /// Not declared (`twi build --no-svsm-caa`): for hosts whose QEMU stops at section type 4
    /// (some of AMD's SNP QEMU 8.x builds) and for `sev-snp-measure` 0.0.9; no SVSM takes it.
    Omitted,
}

impl CallingArea {
    /// The ROM's metadata area (`twi_linker::footer`) with or without the calling area.
    pub fn area(self) -> &'static [u8; footer::AREA_LEN] {
        match self {
            Self::Declared => &footer::AREA,
            Self::Omitted => &footer::AREA_WITHOUT_SVSM_CAA,
        }
    }
}

/// The bytes of a ROM for `elf` carrying `manifest`, its SEV metadata declaring the SVSM
/// calling area.
pub fn assemble_rom(elf: &[u8], manifest: &LaunchManifest) -> Result<Vec<u8>> {
    assemble_rom_with(elf, manifest, CallingArea::Declared)
}

/// [`assemble_rom`] with the SVSM calling area `caa`.
pub fn assemble_rom_with(elf: &[u8], manifest: &LaunchManifest, caa: CallingArea) -> Result<Vec<u8>> {
    let file = object::File::parse(elf).context("the runtime is not an ELF file")?;
    check_symbol(&file, "__manifest_start", MANIFEST_ADDR)?;
    check_symbol(&file, "__manifest_end", MANIFEST_ADDR + MANIFEST_SLOT_SIZE as u64)?;
    check_symbol(&file, "__guid_table_start", GUID_TABLE.start)?;
    check_symbol(&file, "__guid_table_end", GUID_TABLE.end)?;
    check_symbol(&file, "reset_vector", RESET_VECTOR)?;
    check_symbol(&file, "__image_lma_start", ROM_BASE)?;
    // What the boot stub writes in RAM before the runtime can accept or validate memory (the
    // image copy, .bss, the boot stack) must lie in IMAGE_RAM: the launch pre-accepts exactly
    // that range (TDVF TEMP_MEM, SEV SNP_SEC_MEM). Outside it a TD would take a #VE with no
    // IDT, and an SNP guest a #VC.
    let image_ram = IMAGE_RAM.start as u64..=IMAGE_RAM.end as u64;
    for name in ["__image_vma_start", "__image_vma_end", "__bss_start", "__bss_end", "__stack_top"] {
        check_symbol_within(&file, name, &image_ram)?;
    }
    // Areas the builder writes: no ELF byte may land there.
    let reserved = [
        ("the manifest slot", MANIFEST_ADDR..MANIFEST_ADDR + MANIFEST_SLOT_SIZE as u64),
        ("the GUID table area", GUID_TABLE),
    ];

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
        for (what, area) in &reserved {
            if load < area.end && load + data.len() as u64 > area.start {
                bail!("ELF segment at {load:#x} (+{:#x}) overlaps {what}", data.len());
            }
        }
        rom[range].copy_from_slice(data);
    }
    let slot = manifest.to_slot().map_err(|e| anyhow::anyhow!("launch manifest: {e}"))?;
    let at = (MANIFEST_ADDR - ROM_BASE) as usize;
    rom[at..at + MANIFEST_SLOT_SIZE].copy_from_slice(&slot);
    let at = (footer::AREA_ADDR - ROM_BASE) as usize;
    rom[at..at + footer::AREA_LEN].copy_from_slice(caa.area());
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

fn check_symbol_within(file: &object::File<'_>, name: &str, range: &std::ops::RangeInclusive<u64>) -> Result<()> {
    let symbol = file.symbols().find(|s| s.name() == Ok(name));
    match symbol.map(|s| s.address()) {
        Some(addr) if range.contains(&addr) => Ok(()),
        Some(addr) => bail!(
            "the linker script puts {name} at {addr:#x}, outside the RAM the launch pre-accepts ({:#x}..={:#x})",
            range.start(),
            range.end()
        ),
        None => bail!(
            "the runtime ELF has no symbol {name}: was it linked with the script twi-linker generates (runtime/build.rs)?"
        ),
    }
}

fn check_symbol(file: &object::File<'_>, name: &str, expected: u64) -> Result<()> {
    let symbol = file.symbols().find(|s| s.name() == Ok(name));
    match symbol.map(|s| s.address()) {
        Some(addr) if addr == expected => Ok(()),
        Some(addr) => bail!("the linker script puts {name} at {addr:#x}, the image builder expects {expected:#x}"),
        None => bail!(
            "the runtime ELF has no symbol {name}: was it linked with the script twi-linker generates (runtime/build.rs)?"
        ),
    }
}

/// SHA-384 of the ROM, hex: the image hash shown to users.
pub fn rom_sha384(rom: &[u8]) -> String {
    hex::encode(Sha384::digest(rom))
}

/// The launch parameters the reference values are computed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageParams {
    pub vcpus: u32,
    pub cpu_type: CpuType,
    /// `--guest-features`: SEV_FEATURES for every asked-for host profile instead of its own.
    pub guest_features: Option<u64>,
    pub policy: u64,
    /// The host profiles to give SEV-SNP reference values for (never empty); the first is the
    /// primary one: `snp.launch_digest`, and the IGVM file's SEV_FEATURES.
    pub host_profiles: Vec<HostProfile>,
    /// Whether the ROM declares the SVSM calling area (`twi build --no-svsm-caa` omits it).
    pub calling_area: CallingArea,
}

impl Default for ImageParams {
    /// One EPYC-v4 vCPU on the default host profile (SNP_ACTIVE only), QEMU's default policy
    /// 0x30000.
    fn default() -> Self {
        let snp = SnpLaunchParams::default();
        Self {
            vcpus: snp.vcpus,
            cpu_type: CpuType::by_name(DEFAULT_CPU_TYPE).unwrap_or(CPU_TYPES[0]),
            guest_features: None,
            policy: measure::snp::DEFAULT_POLICY,
            host_profiles: vec![host_profile::DEFAULT],
            calling_area: CallingArea::Declared,
        }
    }
}

impl ImageParams {
    /// The SNP launch these parameters describe (QEMU/KVM, no kernel) on the primary host
    /// profile.
    pub fn snp(&self) -> SnpLaunchParams {
        self.snp_on(self.host_profiles.first().unwrap_or(&host_profile::DEFAULT))
    }

    /// The SNP launch on a host of `profile` (with `--guest-features` if given).
    pub fn snp_on(&self, profile: &HostProfile) -> SnpLaunchParams {
        let mut snp = self.snp_on_own(profile);
        if let Some(features) = self.guest_features {
            snp.guest_features = features;
        }
        snp
    }

    /// The ROM's SEV-SNP launch digest on every known host profile, those asked for first
    /// (in the order asked), then the others (not asked for, with their own SEV_FEATURES).
    pub fn profile_digests(&self, rom: &[u8]) -> Result<Vec<ProfileDigest>> {
        let asked = self.host_profiles.iter().map(|p| (p, true));
        let others = host_profile::PROFILES.iter().filter(|p| !self.host_profiles.contains(p)).map(|p| (p, false));
        asked.chain(others).map(|(profile, requested)| self.profile_digest(rom, profile, requested)).collect()
    }

    /// The ROM's SEV-SNP launch digest on `profile`: asked for (`--guest-features` applies), or
    /// only listed (the profile's own SEV_FEATURES).
    pub fn profile_digest(&self, rom: &[u8], profile: &HostProfile, requested: bool) -> Result<ProfileDigest> {
        let snp = if requested { self.snp_on(profile) } else { self.snp_on_own(profile) };
        let digest = measure::snp::launch_digest(rom, &snp)
            .with_context(|| format!("measuring the ROM for SEV-SNP on host profile {}", profile.name))?;
        Ok(ProfileDigest { profile: *profile, guest_features: snp.guest_features, digest, requested })
    }

    fn snp_on_own(&self, profile: &HostProfile) -> SnpLaunchParams {
        SnpLaunchParams { vcpus: self.vcpus, vcpu_sig: self.cpu_type.sig(), ..SnpLaunchParams::default() }
            .on_host(profile)
    }
}

/// What `twi build` writes: the ROM, the IGVM file, and the reference values of both, as JSON
/// and as a CoRIM.
#[derive(Debug, Clone)]
pub struct Images {
    pub rom: Vec<u8>,
    pub igvm: Vec<u8>,
    pub reference_values: serde_json::Value,
    /// `reference-values.corim`: signed if `corim` had a key, else the bare document.
    pub corim: Vec<u8>,
}

/// Builds the ROM and IGVM file of `elf` carrying `manifest`, and measures them for `params`;
/// `corim` says how to sign the CoRIM and whether the IGVM file carries its own.
pub fn build_images(
    elf: &[u8],
    manifest: &LaunchManifest,
    params: &ImageParams,
    corim: &crate::corim::CorimSettings,
) -> Result<Images> {
    let rom = assemble_rom_with(elf, manifest, params.calling_area)?;
    let snp = params.snp();
    let host_profiles = params.profile_digests(&rom)?;
    let snp_launch_digest = host_profiles.first().map(|p| p.digest).context("no host profile to measure for")?;
    let mrtd = measure::tdx::mrtd(&rom, measure::tdx::MrtdOrder::Kvm).context("measuring the ROM for TDX")?;
    let igvm_file = igvm::build(&rom, &igvm::IgvmParams { snp: snp.clone(), policy: params.policy })
        .context("building the IGVM file")?;
    let igvm_snp_launch_digest = igvm::snp_launch_digest(&igvm_file).context("measuring the IGVM file")?;
    let igvm = if corim.igvm {
        crate::corim::igvm_with_corim(&igvm_file, &igvm_snp_launch_digest, corim)?
    } else {
        igvm::to_bytes(&igvm_file).context("serializing the IGVM file")?
    };
    let mut snp_values: Vec<([u8; 48], Option<&str>)> =
        host_profiles.iter().filter(|p| p.requested).map(|p| (p.digest, Some(p.profile.name))).collect();
    snp_values.push((igvm_snp_launch_digest, None));
    let values = crate::corim::launch_values(&snp_values, params.policy, &mrtd);
    let sbom = crate::sbom::manifest_digest(manifest);
    let corim = crate::corim::reference_corim(&rom_sha384(&rom), &values, sbom.as_ref().map(|d| &d.0), corim)?;
    let reference_values = ReferenceValues {
        rom: &rom,
        igvm: &igvm,
        runtime_elf: elf,
        snp: &snp,
        cpu_type: params.cpu_type,
        policy: params.policy,
        snp_launch_digest,
        host_profiles: &host_profiles,
        igvm_snp_launch_digest,
        mrtd,
        // The build's sources, when they are where `twi` expects them (`--runtime-elf` builds
        // need no checkout, and then record no commit).
        git: workspace_root().ok().and_then(|root| GitState::of(&root)),
    }
    .to_json();
    Ok(Images { rom, igvm, reference_values, corim })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each registry's sources become `/crates`, after (so winning over) the Cargo home's
    /// `/cargo`; a Cargo home without registries, or none, gives no such flag.
    #[test]
    fn registry_sources_are_remapped_to_crates() {
        let home = tempfile::tempdir().unwrap();
        let root = Path::new("/src/twi");
        assert_eq!(
            remap_flags(root, Some(home.path()), &[]),
            [
                "--remap-path-prefix=/src/twi=/twi".to_string(),
                format!("--remap-path-prefix={}=/cargo", home.path().display())
            ]
        );
        let sources = home.path().join("registry").join("src");
        for registry in ["index.crates.io-1949cf8c6b5b557f", "example.org-0123"] {
            std::fs::create_dir_all(sources.join(registry)).unwrap();
        }
        std::fs::write(sources.join("stray-file"), b"").unwrap();
        let payload = Path::new("/tmp/p");
        assert_eq!(
            remap_flags(root, Some(home.path()), &[(payload, "/payload")]),
            [
                "--remap-path-prefix=/src/twi=/twi".to_string(),
                format!("--remap-path-prefix={}=/cargo", home.path().display()),
                format!("--remap-path-prefix={}=/crates", sources.join("example.org-0123").display()),
                format!("--remap-path-prefix={}=/crates", sources.join("index.crates.io-1949cf8c6b5b557f").display()),
                "--remap-path-prefix=/tmp/p=/payload".to_string(),
            ]
        );
        assert_eq!(remap_flags(root, None, &[]), ["--remap-path-prefix=/src/twi=/twi"]);
    }
}
