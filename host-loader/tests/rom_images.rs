//! The images `twi build` writes, checked from outside: the ROM's firmware metadata read back
//! by a parser written here (not the generator in `twi-linker`), QEMU's own acceptance of it,
//! virtee's `sev-snp-measure` on our ROM, the IGVM file through the `igvm` crate's parser and
//! its independent SNP and TDX calculators, and measurements that follow the runtime's bytes.
//!
//! Needs `qemu-system-x86_64`, `sev-snp-measure` and sev-snp-measure 0.0.9 in
//! /opt/twi/sev-snp-measure-0.0.9 (`qemu/install-deps` installs them); the tests fail, never
//! skip, without them.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use igvm::{IgvmDirectiveHeader, IgvmFile};
use igvm_defs::{IgvmPageDataFlags, IgvmPageDataType};
use twi_host_loader::igvm::{self as twi_igvm, IgvmParams, NATIVE_MASK, SNP_MASK};
use twi_host_loader::image::{self, CallingArea, ImageParams, Images};
use twi_host_loader::measure::snp::{self, SnpLaunchParams};
use twi_host_loader::measure::tdx::{self, MrtdOrder};
use twi_proto::manifest::{LaunchManifest, MANIFEST_FORMAT};

const TOP: u64 = 1 << 32;

fn manifest() -> LaunchManifest {
    LaunchManifest {
        format: MANIFEST_FORMAT,
        issuer_anchor: vec![4; 97],
        issuer_name: "CN=test".into(),
        diagnostic: twi_proto::manifest::Diagnostic::None,
        settings: Vec::new(),
    }
}

/// The runtime ELF, built once per test binary (as `twi build` builds it).
fn elf() -> &'static [u8] {
    static ELF: OnceLock<Vec<u8>> = OnceLock::new();
    ELF.get_or_init(|| {
        let path = image::build_runtime_elf().expect("building the runtime");
        std::fs::read(path).unwrap()
    })
}

fn images() -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES
        .get_or_init(|| image::build_images(elf(), &manifest(), &ImageParams::default(), &Default::default()).unwrap())
}

// ---------------------------------------------------------------------------------------------
// An independent reader of the ROM's metadata (QEMU's and OVMF's rules, written from their
// descriptions in FACTS.md, not from twi-linker).

/// The in-memory bytes of a GUID written as text (EFI_GUID: first three fields little-endian).
fn guid_le(text: &str) -> [u8; 16] {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    let b: Vec<u8> = (0..16).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()).collect();
    let mut out = [0u8; 16];
    out[..4].copy_from_slice(&[b[3], b[2], b[1], b[0]]);
    out[4..6].copy_from_slice(&[b[5], b[4]]);
    out[6..8].copy_from_slice(&[b[7], b[6]]);
    out[8..].copy_from_slice(&b[8..]);
    out
}

fn u16_at(rom: &[u8], at: usize) -> usize {
    u16::from_le_bytes(rom[at..at + 2].try_into().unwrap()) as usize
}
fn u32_at(rom: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(rom[at..at + 4].try_into().unwrap())
}
fn u64_at(rom: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(rom[at..at + 8].try_into().unwrap())
}

/// A GUID table entry: GUID bytes and data.
type Entry = ([u8; 16], Vec<u8>);

/// Every table entry, top first; the offset of the table's start.
fn guid_table(rom: &[u8]) -> (Vec<Entry>, usize) {
    let footer = rom.len() - 0x20 - 18;
    assert_eq!(rom[footer + 2..footer + 18], guid_le("96b582de-1fb2-45f7-baea-a366c55a082d"), "no footer GUID");
    let total = u16_at(rom, footer);
    let start = footer + 18 - total;
    let mut end = footer;
    let mut entries = Vec::new();
    while end > start {
        let size = u16_at(rom, end - 18);
        let guid: [u8; 16] = rom[end - 16..end].try_into().unwrap();
        entries.push((guid, rom[end - size..end - 18].to_vec()));
        end -= size;
    }
    assert_eq!(end, start, "entries do not tile the table");
    (entries, start)
}

fn entry<'a>(entries: &'a [Entry], guid: &str) -> &'a [u8] {
    let g = guid_le(guid);
    &entries.iter().find(|(e, _)| *e == g).unwrap_or_else(|| panic!("no entry {guid}")).1
}

/// Where the SEV metadata ("ASEV") lies and its descriptors {base, len, type}, as QEMU reads
/// them (the header's length covering exactly the descriptors).
fn sev_descriptors(rom: &[u8]) -> (usize, Vec<(u32, u32, u32)>) {
    let (entries, _) = guid_table(rom);
    let off = u32_at(entry(&entries, "dc886566-984a-4798-a75e-5585a7bf67cc"), 0) as usize;
    let asev = rom.len() - off;
    assert_eq!(&rom[asev..asev + 4], b"ASEV");
    let (len, version, count) = (u32_at(rom, asev + 4), u32_at(rom, asev + 8), u32_at(rom, asev + 12) as usize);
    assert_eq!((version, len as usize), (1, 16 + 12 * count));
    let descriptors = (0..count)
        .map(|i| {
            let d = asev + 16 + 12 * i;
            (u32_at(rom, d), u32_at(rom, d + 4), u32_at(rom, d + 8))
        })
        .collect();
    (asev, descriptors)
}

#[test]
fn independent_parser_reads_back_the_rom_metadata() {
    let rom = &images().rom;
    assert_eq!(rom.len(), 2 << 20);
    let (entries, table_start) = guid_table(rom);
    assert_eq!(entries.len(), 3);
    assert!(table_start >= rom.len() - 0x500, "the table stays inside the GUID table area");

    // SEV-ES reset block: APs at the boot stub's parking entry (issue 15), not the reset vector.
    assert_eq!(u32_at(entry(&entries, "00f771de-1a7e-4fcb-890e-68c77e2fb44e"), 0), 0xFFFF_F000);

    // SEV metadata.
    let (asev, sev) = sev_descriptors(rom);
    // What the brief asks for: pre-validated boot scratch, page tables and image RAM; the
    // secrets page at 0x80000 and the CPUID page at 0x81000; and the SVSM calling area that
    // COCONUT-SVSM requires of the firmware it boots (issue 15).
    assert_eq!(
        sev,
        vec![
            (0x1000, 0x1000, 1),
            (0x8_0000, 0x1000, 2),
            (0x8_1000, 0x1000, 3),
            (0x8_3000, 0x1000, 4),
            (0x10_0000, 0x6000, 1),
            // Image RAM: 2 MiB since issue 17's 14 MiB layout (`twi_linker::IMAGE_RAM`).
            (0x20_0000, 0x20_0000, 1),
        ]
    );

    // TDVF descriptor.
    let off = u32_at(entry(&entries, "e47a6535-984a-4798-865e-4685a7bf8ec2"), 0) as usize;
    let tdvf = rom.len() - off;
    assert_eq!(&rom[tdvf..tdvf + 4], b"TDVF");
    let (len, version, count) = (u32_at(rom, tdvf + 4), u32_at(rom, tdvf + 8), u32_at(rom, tdvf + 12) as usize);
    assert_eq!((version, len as usize), (1, 16 + 32 * count));
    let sections: Vec<(u32, u32, u64, u64, u32, u32)> = (0..count)
        .map(|i| {
            let s = tdvf + 16 + 32 * i;
            (
                u32_at(rom, s),
                u32_at(rom, s + 4),
                u64_at(rom, s + 8),
                u64_at(rom, s + 16),
                u32_at(rom, s + 24),
                u32_at(rom, s + 28),
            )
        })
        .collect();
    assert_eq!(
        sections,
        vec![
            (0, 0x20_0000, 0xFFE0_0000, 0x20_0000, 0, 1), // BFV: the ROM, MR.EXTEND
            (0, 0, 0x2000, 0x2000, 2, 0),                 // TD_HOB
            (0, 0, 0x1000, 0x1000, 3, 0),                 // TEMP_MEM: boot scratch
            (0, 0, 0x10_0000, 0x6000, 3, 0),              // TEMP_MEM: page tables
            (0, 0, 0x20_0000, 0x20_0000, 3, 0),           // TEMP_MEM: image RAM (2 MiB, issue 17)
        ]
    );

    // Both descriptors live in the GUID table area below the table, inside the ROM's top.
    let area = rom.len() - (TOP - 0xFFFF_FB00) as usize;
    assert!(asev >= area && tdvf >= asev + 16 + 12 * 6 && tdvf + 16 + 32 * 5 <= table_start);
    // What COCONUT's igvmbuilder takes from an OVMF-style firmware (`igvmbuilder/src/
    // ovmf_firmware.rs`, `kernel/src/platform/snp_fw.rs`): at most 8 pre-validated ranges
    // (types 1 and 0x10), one secrets page, one CPUID page and one calling area (type 4; its
    // absence is `SvsmError::MissingCAA`), all 4 KiB pages apart from each other.
    let of_type = |t: u32| sev.iter().filter(|d| d.2 == t).count();
    assert!(of_type(1) + of_type(0x10) <= 8);
    assert_eq!((of_type(2), of_type(3), of_type(4)), (1, 1, 1));
    let mut ranges: Vec<(u32, u32)> = sev.iter().map(|d| (d.0, d.0 + d.1)).collect();
    ranges.sort_unstable();
    assert!(ranges.windows(2).all(|w| w[0].1 <= w[1].0) && ranges.iter().all(|r| r.0 % 0x1000 == 0));
    // The reset vector is still the runtime's.
    assert_ne!(&rom[rom.len() - 16..], &[0u8; 16]);
}

#[test]
fn rom_is_the_elf_plus_manifest_and_metadata_only() {
    let plain = image::assemble_rom(elf(), &manifest()).unwrap();
    let rom = &images().rom;
    assert_eq!(&plain, rom);
    // Outside the GUID table area, the ROM does not depend on the metadata: clearing the area
    // leaves what the ELF and the manifest put there, and the ELF put nothing in the area.
    let area = rom.len() - (TOP - 0xFFFF_FB00) as usize..rom.len() - 0x20;
    let object = object::File::parse(elf()).unwrap();
    use object::{Object, ObjectSection};
    for section in object.sections() {
        let (addr, size) = (section.address(), section.size());
        if addr >= 0xFFE0_0000 && size > 0 {
            let start = (addr - 0xFFE0_0000) as usize;
            assert!(start + size as usize <= area.start || start >= area.end, "{:?} overlaps the area", section.name());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// QEMU's own acceptance. Without SEV hardware QEMU stops before an SNP launch reads the
// firmware ("vm-type SEV-SNP not supported by KVM" / "KVM required"). One check does run
// without hardware: with an SEV-ES policy under TCG, QEMU parses the GUID table and the SEV-ES
// reset block at machine creation (`x86_firmware_configure` → `sev_es_save_reset_vector`) and
// only then finds that TCG cannot run the guest.

fn qemu_sev_es(rom: &[u8], dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, rom).unwrap();
    let out = Command::new("qemu-system-x86_64")
        .args(["-accel", "tcg", "-machine", "q35,confidential-guest-support=sev0", "-nodefaults", "-display", "none"])
        .args(["-object", "sev-guest,id=sev0,cbitpos=51,reduced-phys-bits=1,policy=0x5", "-bios"])
        .arg(&path)
        .output()
        .expect("qemu-system-x86_64 is needed: run qemu/install-deps");
    assert!(!out.status.success(), "QEMU cannot run an SEV guest under TCG");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn qemu_accepts_the_guid_table_and_rejects_broken_ones() {
    let dir = tempfile::tempdir().unwrap();
    let rom = &images().rom;
    let good = qemu_sev_es(rom, dir.path(), "good.rom");
    assert!(
        good.contains("accelerator does not support confidential guest"),
        "QEMU should get past the firmware metadata, got: {good}"
    );
    assert!(!good.contains("reset vector") && !good.contains("GUID Table"), "{good}");

    let mut broken = rom.clone();
    let footer_guid = rom.len() - 0x20 - 16;
    broken[footer_guid] ^= 0xff;
    let err = qemu_sev_es(&broken, dir.path(), "broken.rom");
    assert!(err.contains("SEV information block/Firmware GUID Table block not found"), "{err}");

    let mut zero_reset = rom.clone();
    let reset_data = rom.len() - 0x20 - 18 - 22;
    zero_reset[reset_data..reset_data + 4].fill(0);
    let err = qemu_sev_es(&zero_reset, dir.path(), "zero-reset.rom");
    assert!(err.contains("SEV-ES reset address is zero"), "{err}");
    // Our calculator refuses what QEMU refuses.
    assert!(snp::launch_digest(&zero_reset, &SnpLaunchParams::default()).is_err());
}

// ---------------------------------------------------------------------------------------------
// virtee's sev-snp-measure on our ROM.

fn sev_snp_measure(args: &[&str]) -> String {
    let out = Command::new("sev-snp-measure")
        .args(args)
        .output()
        .expect("sev-snp-measure is needed (pip install sev-snp-measure; qemu/install-deps does it)");
    assert!(out.status.success(), "sev-snp-measure {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn sev_snp_measure_agrees_on_our_rom() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twi.rom");
    let rom = &images().rom;
    std::fs::write(&path, rom).unwrap();
    let rom_arg = path.to_str().unwrap();

    let ovmf_hash = sev_snp_measure(&["--mode", "snp:ovmf-hash", "--ovmf", rom_arg]);
    assert_eq!(ovmf_hash, hex::encode(snp::rom_pages_digest(rom).unwrap()));

    for (vcpus, cpu, features) in [
        (1, "EPYC-v4", 0x1u64),
        (1, "EPYC-v4", 0x21),
        (2, "EPYC-Milan", 0x1),
        (4, "EPYC-Genoa", 0x1),
        (3, "EPYC-Rome", 0x21),
    ] {
        let theirs = sev_snp_measure(&[
            "--mode",
            "snp",
            "--ovmf",
            rom_arg,
            "--vcpus",
            &vcpus.to_string(),
            "--vcpu-type",
            cpu,
            "--guest-features",
            &format!("{features:#x}"),
        ]);
        let mut params = SnpLaunchParams::qemu(vcpus, cpu).unwrap();
        params.guest_features = features;
        let ours = hex::encode(snp::launch_digest(rom, &params).unwrap());
        assert_eq!(ours, theirs, "{vcpus} x {cpu}, guest features {features:#x}");
    }
    // The default reference value is the default of both.
    let theirs = sev_snp_measure(&["--mode", "snp", "--ovmf", rom_arg, "--vcpus", "1", "--vcpu-type", "EPYC-v4"]);
    assert_eq!(images().reference_values["snp"]["launch_digest"], theirs);
    // SEV-ES, for completeness.
    let theirs = sev_snp_measure(&["--mode", "seves", "--ovmf", rom_arg, "--vcpus", "2", "--vcpu-type", "EPYC-v4"]);
    let ours = twi_host_loader::measure::sev::seves_launch_digest(rom, 2, 0x80_0F12, None, Default::default()).unwrap();
    assert_eq!(hex::encode(ours), theirs);
}

/// sev-snp-measure 0.0.9 (the last release without FPU state in the VMSA), in the venv
/// `qemu/install-deps` makes for it.
const SEV_SNP_MEASURE_0_0_9: &str = "/opt/twi/sev-snp-measure-0.0.9/bin/sev-snp-measure";

/// Runs `tool` (whose `--version` must be `version`, or at least it with `at_least`) with `args`.
fn sev_snp_measure_release(tool: &str, version: &str, at_least: bool, args: &[&str]) -> String {
    let install =
        "run ./qemu/install-deps (it installs sev-snp-measure, and 0.0.9 into /opt/twi/sev-snp-measure-0.0.9)";
    let run = |args: &[&str]| {
        let out = Command::new(tool).args(args).output().unwrap_or_else(|e| panic!("{tool}: {e}: {install}"));
        assert!(out.status.success(), "{tool} {args:?}: {}: {install}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let found = run(&["--version"]);
    let found = found.split_whitespace().nth(1).unwrap_or_default().to_string();
    let parts = |v: &str| v.split('.').map(|n| n.parse::<u32>().unwrap_or(0)).collect::<Vec<_>>();
    let fits = if at_least { parts(&found) >= parts(version) } else { found == version };
    assert!(fits, "{tool} is version {found}, not {}{version}: {install}", if at_least { ">= " } else { "" });
    run(args)
}

/// `rom` with its SEV metadata's SVSM calling-area descriptor (type 4) declared as type 1
/// (SNP_SEC_MEM): QEMU and sev-snp-measure measure both as zero pages, and sev-snp-measure 0.0.9
/// predates type 4 (it refuses the ROM: "4 is not a valid SectionType").
fn calling_area_as_sec_mem(rom: &[u8]) -> Vec<u8> {
    let (entries, _) = guid_table(rom);
    let asev = rom.len() - u32_at(entry(&entries, "dc886566-984a-4798-a75e-5585a7bf67cc"), 0) as usize;
    let mut out = rom.to_vec();
    let mut changed = 0;
    for i in 0..u32_at(rom, asev + 12) as usize {
        let kind = asev + 16 + 12 * i + 8;
        if u32_at(rom, kind) == 4 {
            out[kind..kind + 4].copy_from_slice(&1u32.to_le_bytes());
            changed += 1;
        }
    }
    assert_eq!(changed, 1, "the ROM declares one SVSM calling area");
    out
}

/// `sev-snp-measure --mode snp` of the ROM at `path` for `vcpus` x `cpu` with `features`.
fn snp_args<'a>(path: &'a Path, vcpus: &'a str, cpu: &'a str, features: &'a str) -> [&'a str; 10] {
    [
        "--mode",
        "snp",
        "--ovmf",
        path.to_str().unwrap(),
        "--vcpus",
        vcpus,
        "--vcpu-type",
        cpu,
        "--guest-features",
        features,
    ]
}

/// Each host profile's digest of our ROM is the one the sev-snp-measure release that models
/// that host computes with the profile's guest features (`HostProfile::sev_snp_measure`), and
/// `twi build --host-profile` (all of them) writes exactly those into reference-values.json.
/// The FPU-less profiles are checked against 0.0.9 on the ROM with its calling area declared
/// as SNP_SEC_MEM (same pages, same page type: [`calling_area_as_sec_mem`]), and on the ROM
/// itself against the current release with FPU state, where their VMSAs differ from ours in
/// MXCSR and FCW alone.
#[test]
fn every_host_profile_agrees_with_its_sev_snp_measure_release() {
    use twi_host_loader::measure::host_profile::{HostProfile, PROFILES};
    let dir = tempfile::tempdir().unwrap();
    let rom = &images().rom;
    let (path, legacy_path) = (dir.path().join("twi.rom"), dir.path().join("twi-caa-as-sec-mem.rom"));
    let legacy_rom = calling_area_as_sec_mem(rom);
    std::fs::write(&path, rom).unwrap();
    std::fs::write(&legacy_path, &legacy_rom).unwrap();
    let all = ImageParams { host_profiles: PROFILES.to_vec(), ..ImageParams::default() };
    let built = image::build_images(elf(), &manifest(), &all, &Default::default()).unwrap();
    let listed = built.reference_values["snp"]["host_profiles"].as_array().unwrap().clone();
    assert_eq!(listed.len(), PROFILES.len());
    let digest_on = |profile: HostProfile, vcpus: u32, cpu: &str, image: &[u8]| {
        let cpu_type = twi_host_loader::measure::cpu::CpuType::by_name(cpu).unwrap();
        let params = ImageParams { vcpus, cpu_type, host_profiles: vec![profile], ..ImageParams::default() };
        let ours = params.profile_digests(image).unwrap();
        assert_eq!((ours[0].profile.name, ours[0].requested), (profile.name, true));
        hex::encode(ours[0].digest)
    };
    let mut digests = Vec::new();
    for (i, profile) in PROFILES.iter().enumerate() {
        let (tool, version, at_least, image, image_path) = if profile.vmsa_fpu {
            ("sev-snp-measure", "0.0.10", true, rom.as_slice(), &path)
        } else {
            (SEV_SNP_MEASURE_0_0_9, "0.0.9", false, legacy_rom.as_slice(), &legacy_path)
        };
        let stated = format!("sev-snp-measure {}{version}", if at_least { ">= " } else { "" });
        assert!(profile.sev_snp_measure.starts_with(&stated), "{}", profile.sev_snp_measure);
        let features = format!("{:#x}", profile.sev_features);
        for (vcpus, cpu) in [(1, "EPYC-v4"), (3, "EPYC-Milan")] {
            let n = vcpus.to_string();
            let theirs = sev_snp_measure_release(tool, version, at_least, &snp_args(image_path, &n, cpu, &features));
            assert_eq!(digest_on(*profile, vcpus, cpu, image), theirs, "{} with {vcpus} x {cpu}", profile.name);
        }
        if !profile.vmsa_fpu {
            let with_fpu = HostProfile { vmsa_fpu: true, ..*profile };
            let args = snp_args(&path, "1", "EPYC-v4", &features);
            let theirs = sev_snp_measure_release("sev-snp-measure", "0.0.10", true, &args);
            assert_eq!(digest_on(with_fpu, 1, "EPYC-v4", rom), theirs, "{} with FPU state", profile.name);
        }
        // The ROM's own digest, as the build lists it.
        let ours = digest_on(*profile, 1, "EPYC-v4", rom);
        assert_eq!((&listed[i]["profile"], &listed[i]["requested"]), (&profile.name.into(), &true.into()));
        assert_eq!(listed[i]["launch_digest"], ours.as_str(), "reference-values.json, {}", profile.name);
        digests.push(ours);
    }
    // Different host stacks, different digests: a report names its host profile.
    for (i, d) in digests.iter().enumerate() {
        assert!(!digests[..i].contains(d), "{} repeats an earlier profile's digest", PROFILES[i].name);
    }
    // The default build asks for the default profile alone and lists the others as not asked.
    let default = images().reference_values["snp"]["host_profiles"].as_array().unwrap();
    let flags: Vec<_> =
        default.iter().map(|p| (p["profile"].as_str().unwrap(), p["requested"].as_bool().unwrap())).collect();
    assert_eq!(flags, [("linux-6.11", true), ("amd-snp-legacy", false), ("amd-snp-legacy-no-debug-swap", false)]);
    assert_eq!(default[1]["launch_digest"], digests[1].as_str());
}

/// `twi build --no-svsm-caa`, for hosts whose QEMU predates SEV metadata section type 4: the
/// ROM differs from the default one in its SEV metadata alone, which lacks exactly the calling
/// area; sev-snp-measure 0.0.9, which refuses the default ROM for that type, measures it as it
/// is to the FPU-less profiles' digests `twi build` writes for it, and the current release
/// agrees on the default profile's. The digests differ from the default ROM's (the page is no
/// longer in the launch).
#[test]
fn a_rom_without_the_calling_area_is_what_pre_svsm_tools_measure() {
    use twi_host_loader::measure::host_profile::PROFILES;
    let params =
        ImageParams { host_profiles: PROFILES.to_vec(), calling_area: CallingArea::Omitted, ..ImageParams::default() };
    let built = image::build_images(elf(), &manifest(), &params, &Default::default()).unwrap();
    let (rom, default) = (&built.rom, &images().rom);
    let (asev, without) = sev_descriptors(rom);
    let (_, with) = sev_descriptors(default);
    let expected: Vec<_> = with.iter().copied().filter(|d| d.2 != 4).collect();
    assert_eq!((with.len(), without), (expected.len() + 1, expected));
    assert!(
        rom[..asev] == default[..asev] && rom[asev + 16 + 12 * with.len()..] == default[asev + 16 + 12 * with.len()..]
    );

    let dir = tempfile::tempdir().unwrap();
    let (path, default_path) = (dir.path().join("twi-no-caa.rom"), dir.path().join("twi.rom"));
    std::fs::write(&path, rom).unwrap();
    std::fs::write(&default_path, default).unwrap();
    let refused = Command::new(SEV_SNP_MEASURE_0_0_9)
        .args(snp_args(&default_path, "1", "EPYC-v4", "0x1"))
        .output()
        .expect("sev-snp-measure 0.0.9: run ./qemu/install-deps");
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && why.contains("4 is not a valid SectionType"),
        "0.0.9 on the default ROM: {why}"
    );
    let listed = built.reference_values["snp"]["host_profiles"].as_array().unwrap();
    for (i, profile) in PROFILES.iter().enumerate() {
        let (tool, version, at_least) = if profile.vmsa_fpu {
            ("sev-snp-measure", "0.0.10", true)
        } else {
            (SEV_SNP_MEASURE_0_0_9, "0.0.9", false)
        };
        let features = format!("{:#x}", profile.sev_features);
        let theirs = sev_snp_measure_release(tool, version, at_least, &snp_args(&path, "1", "EPYC-v4", &features));
        assert_eq!(listed[i]["launch_digest"], theirs.as_str(), "{}", profile.name);
        let default_digest = &images().reference_values["snp"]["host_profiles"][i]["launch_digest"];
        assert_ne!(&listed[i]["launch_digest"], default_digest, "{}", profile.name);
    }
}

// ---------------------------------------------------------------------------------------------
// TDX.

/// The launch as IGVM directives (pages in TDVF order; BFV pages carry data, the others are
/// added unmeasured), for the igvm crate's independent MRTD calculator.
fn tdvf_as_directives(rom: &[u8]) -> Vec<IgvmDirectiveHeader> {
    let fw = twi_host_loader::measure::firmware::Firmware::parse(rom).unwrap();
    let mut directives = Vec::new();
    for s in fw.tdvf_sections().unwrap() {
        let measured = s.attributes & twi_linker::tdvf::ATTR_MR_EXTEND != 0;
        for page in 0..s.memory_data_size / 4096 {
            let at = (s.data_offset as u64 + page * 4096) as usize;
            directives.push(IgvmDirectiveHeader::PageData {
                gpa: s.memory_address + page * 4096,
                compatibility_mask: 1,
                flags: IgvmPageDataFlags::new().with_unmeasured(!measured),
                data_type: IgvmPageDataType::NORMAL,
                data: if measured { rom[at..at + 4096].to_vec() } else { Vec::new() },
            });
        }
    }
    directives
}

#[test]
fn mrtd_agrees_with_the_igvm_crates_calculator() {
    let rom = &images().rom;
    let ours = tdx::mrtd(rom, MrtdOrder::Kvm).unwrap();
    let theirs = igvm::measurement::generate_tdx_measurement(&tdvf_as_directives(rom), 1).unwrap();
    assert_eq!(hex::encode(ours), hex::encode(theirs));
    assert_eq!(images().reference_values["tdx"]["mrtd"], hex::encode(ours));
    // td-shim's per-section order gives a different value for the same ROM: the choice matters.
    assert_ne!(tdx::mrtd(rom, MrtdOrder::PerSection).unwrap(), ours);
}

/// Both orders agree when each measured section is a single page; computed here by hand from
/// the record formats (MEM.PAGE.ADD / MR.EXTEND, 128-byte records).
#[test]
fn mrtd_of_a_one_page_section_from_first_principles() {
    use sha2::{Digest, Sha384};
    let rom = &images().rom;
    let fw = twi_host_loader::measure::firmware::Firmware::parse(rom).unwrap();
    let bfv = fw.tdvf_sections().unwrap()[0];
    let mut h = Sha384::new();
    let record = |op: &[u8], gpa: u64| {
        let mut r = [0u8; 128];
        r[..op.len()].copy_from_slice(op);
        r[16..24].copy_from_slice(&gpa.to_le_bytes());
        r
    };
    // The top page of the BFV alone.
    let gpa = bfv.memory_address + bfv.memory_data_size - 4096;
    h.update(record(b"MEM.PAGE.ADD", gpa));
    for chunk in 0..16u64 {
        h.update(record(b"MR.EXTEND", gpa + chunk * 256));
        let at = rom.len() - 4096 + chunk as usize * 256;
        h.update(&rom[at..at + 256]);
    }
    let expected: [u8; 48] = h.finalize().into();
    let mut m = tdx::Mrtd::new();
    m.page_add(gpa);
    m.extend_page(gpa, rom[rom.len() - 4096..].try_into().unwrap());
    assert_eq!(m.finish(), expected);
}

// ---------------------------------------------------------------------------------------------
// IGVM.

#[test]
fn igvm_round_trips_through_the_igvm_crates_parser() {
    let images = images();
    let built = twi_igvm::build(&images.rom, &IgvmParams::default()).unwrap();
    let parsed = IgvmFile::new_from_binary(&images.igvm, None).expect("the igvm crate parses twi.igvm");
    assert_eq!(parsed.platforms(), built.platforms());
    assert_eq!(parsed.initializations(), built.initializations());
    assert_eq!(parsed.directives(), built.directives());
    // Serialising the parsed file gives the same bytes.
    assert_eq!(twi_igvm::to_bytes(&parsed).unwrap(), images.igvm);

    // The ROM pages are the ROM, for both platforms, in address order.
    let rom_pages: Vec<_> = parsed
        .directives()
        .iter()
        .filter_map(|d| match d {
            IgvmDirectiveHeader::PageData { gpa, compatibility_mask, data, .. } if *gpa >= 0xFFE0_0000 => {
                Some((*gpa, *compatibility_mask, data.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(rom_pages.len(), images.rom.len() / 4096);
    for (i, (gpa, mask, data)) in rom_pages.iter().enumerate() {
        assert_eq!(*gpa, 0xFFE0_0000 + i as u64 * 4096);
        assert_eq!(*mask, NATIVE_MASK | SNP_MASK);
        assert_eq!(&data[..], &images.rom[i * 4096..(i + 1) * 4096]);
    }
    // Secrets and CPUID pages are IGVM directives of their own types, SNP only.
    let typed = |t: IgvmPageDataType| {
        parsed.directives().iter().find_map(|d| match d {
            IgvmDirectiveHeader::PageData { gpa, compatibility_mask, data_type, .. } if *data_type == t => {
                Some((*gpa, *compatibility_mask))
            }
            _ => None,
        })
    };
    assert_eq!(typed(IgvmPageDataType::SECRETS), Some((0x8_0000, SNP_MASK)));
    assert_eq!(typed(IgvmPageDataType::CPUID_DATA), Some((0x8_1000, SNP_MASK)));
    // One VMSA, equal to the -bios launch's BSP VMSA, last.
    match parsed.directives().last() {
        Some(IgvmDirectiveHeader::SnpVpContext { vp_index: 0, compatibility_mask, .. }) => {
            assert_eq!(*compatibility_mask, SNP_MASK)
        }
        other => panic!("last directive {other:?}"),
    }
    // The SNP-filtered view parses as well.
    IgvmFile::new_from_binary(&images.igvm, Some(igvm::IsolationType::Snp)).unwrap();
}

#[test]
fn igvm_launch_digest_agrees_with_the_igvm_crates_calculator() {
    let images = images();
    let parsed = IgvmFile::new_from_binary(&images.igvm, None).unwrap();
    let ours = twi_igvm::snp_launch_digest(&parsed).unwrap();
    let theirs =
        igvm::measurement::generate_snp_measurement(parsed.initializations(), parsed.directives(), SNP_MASK).unwrap();
    assert_eq!(hex::encode(ours), hex::encode(theirs));
    assert_eq!(images.reference_values["igvm"]["snp_launch_digest"], hex::encode(ours));
    // Multi-vCPU files too.
    let params = IgvmParams { snp: SnpLaunchParams::qemu(4, "EPYC-Milan").unwrap(), policy: 0x30000 };
    let file = twi_igvm::build(&images.rom, &params).unwrap();
    let theirs =
        igvm::measurement::generate_snp_measurement(file.initializations(), file.directives(), SNP_MASK).unwrap();
    assert_eq!(twi_igvm::snp_launch_digest(&file).unwrap(), theirs);
}

// ---------------------------------------------------------------------------------------------
// Measurements follow the runtime's bytes.

#[test]
fn one_byte_of_the_runtime_changes_every_measurement() {
    let base = images();
    let again = image::build_images(elf(), &manifest(), &ImageParams::default(), &Default::default()).unwrap();
    assert_eq!(again.rom, base.rom);
    assert_eq!(again.igvm, base.igvm);
    assert_eq!(again.reference_values, base.reference_values);

    // Flip one byte of the runtime's code (the first load segment, .text).
    let mut elf = elf().to_vec();
    let object = object::File::parse(&elf[..]).unwrap();
    use object::{Object, ObjectSegment};
    let (offset, _) = object.segments().next().unwrap().file_range();
    elf[offset as usize + 0x100] ^= 1;
    let changed = image::build_images(&elf, &manifest(), &ImageParams::default(), &Default::default()).unwrap();
    for key in [("snp", "launch_digest"), ("tdx", "mrtd"), ("igvm", "snp_launch_digest")] {
        assert_ne!(changed.reference_values[key.0][key.1], base.reference_values[key.0][key.1], "{key:?}");
    }
    assert_eq!(changed.rom.iter().zip(&base.rom).filter(|(a, b)| a != b).count(), 1);

    // And the launch parameters move the SNP digest but not the MRTD.
    let two = ImageParams { vcpus: 2, ..ImageParams::default() };
    let two = image::build_images(self::elf(), &manifest(), &two, &Default::default()).unwrap();
    assert_ne!(two.reference_values["snp"]["launch_digest"], base.reference_values["snp"]["launch_digest"]);
    assert_eq!(two.reference_values["tdx"]["mrtd"], base.reference_values["tdx"]["mrtd"]);
}

// ---------------------------------------------------------------------------------------------
// The CoRIMs: the IGVM file's headers, and the reference values read back as the issuer does.

/// `--igvm-corim`: the IGVM file carries its SEV-SNP CoRIM document (the launch digest the igvm
/// crate computes, equal to ours) and, with a key, its signature, both for the SNP platform
/// only; the launch digest is the same as without them. A digest of ours the igvm crate does
/// not share refuses to embed. The reference-values CoRIM reads back under the key's public half
/// as the issuer's policy reads it: the ROM's and the IGVM file's digests with the policy bits,
/// the MRTD.
#[test]
fn the_igvm_file_carries_its_corim_and_the_reference_corim_reads_back() {
    use igvm::IgvmInitializationHeader::{CorimDocument, CorimSignature};
    use twi_host_loader::corim::{CorimKey, CorimSettings, igvm_with_corim};
    use twi_issuer::policy::corim::{LaunchPlatform, read_signed};
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("corim-key.pem");
    let secret = p384::SecretKey::from_slice(&[9u8; 48]).unwrap();
    let pem = p384::pkcs8::EncodePrivateKey::to_pkcs8_pem(&secret, Default::default()).unwrap();
    std::fs::write(&key_path, pem.as_bytes()).unwrap();
    let settings = CorimSettings {
        key: Some(CorimKey::load(&key_path, "Example Corp").unwrap()),
        igvm: true,
        svn: 2,
        valid_days: None,
    };
    let with = image::build_images(elf(), &manifest(), &ImageParams::default(), &settings).unwrap();
    let base = images();
    assert_eq!(
        (&with.rom, &with.reference_values["igvm"]["snp_launch_digest"]),
        (&base.rom, &base.reference_values["igvm"]["snp_launch_digest"])
    );

    let file = IgvmFile::new_from_binary(&with.igvm, None).unwrap();
    assert_eq!(file.directives(), IgvmFile::new_from_binary(&base.igvm, None).unwrap().directives());
    let masks: Vec<(bool, u32)> = file
        .initializations()
        .iter()
        .filter_map(|h| match h {
            CorimDocument { compatibility_mask, .. } => Some((true, *compatibility_mask)),
            CorimSignature { compatibility_mask, .. } => Some((false, *compatibility_mask)),
            _ => None,
        })
        .collect();
    assert_eq!(masks, [(true, SNP_MASK), (false, SNP_MASK)]);
    let digest = twi_igvm::snp_launch_digest(&file).unwrap();
    assert_eq!(hex::encode(digest), base.reference_values["igvm"]["snp_launch_digest"]);
    let plain = twi_igvm::build(&base.rom, &IgvmParams::default()).unwrap();
    let error = igvm_with_corim(&plain, &[0; 48], &settings).unwrap_err().to_string();
    assert!(error.contains("the igvm crate measures the IGVM file as"), "{error}");

    let values = read_signed(&with.corim, &p384::ecdsa::VerifyingKey::from(secret.public_key())).unwrap();
    let digests: Vec<(LaunchPlatform, String)> =
        values.launch.iter().map(|v| (v.platform, hex::encode(v.digest))).collect();
    // The SBOM the launch manifest measures, when the build made one (these images carry none).
    let sbom = base.reference_values["sbom"]["digest"].as_str().map(|d| d.trim_start_matches("sha384:").to_string());
    assert_eq!(values.sbom.map(hex::encode), sbom);
    let json = |a: &str, b: &str| base.reference_values[a][b].as_str().unwrap().to_string();
    assert_eq!(
        digests,
        [
            (LaunchPlatform::SevSnp, json("snp", "launch_digest")),
            (LaunchPlatform::SevSnp, json("igvm", "snp_launch_digest")),
            (LaunchPlatform::Tdx, json("tdx", "mrtd")),
        ]
    );
    assert!(
        values.launch[..2].iter().all(|v| v.policy.is_some_and(|p| p.required == 0x30000 && p.mask == 0x03ff_0000))
    );
}
