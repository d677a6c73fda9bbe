//! Known answer for the IGVM file and its SNP launch digest: COCONUT-SVSM's `igvmmeasure`, run
//! with `--check-kvm` (the rules QEMU/KVM impose on an IGVM file's initial state) as recorded in
//! `tests/data/measurement/snp/igvmmeasure_kat.json`, on the IGVM file `twi build` makes from a
//! fixed ROM (the TDX known answer's recipe). That tool refused the file while its VMSA carried
//! the `-bios` launch's CR0 (0x10), which KVM does not load from an IGVM file; its answer now
//! pins both the file's initial state and our calculator.
//!
//! Only the calculator's answer is committed, not its code.

use igvm::IgvmDirectiveHeader;
use serde_json::Value;
use sha2::Digest;
use twi_host_loader::igvm::{self as twi_igvm, IgvmParams};

fn json(name: &str) -> Value {
    twi_testkit::samples::json(name)
}

/// The fixed ROM: byte i = (i >> 12) ^ i, with the recorded metadata area at its offset.
fn rom() -> Vec<u8> {
    let recipe = &json("measurement/tdx/td_shim_mrtd_kat.json")["image"];
    let size = recipe["size"].as_u64().unwrap() as usize;
    let mut rom: Vec<u8> = (0..size).map(|i| ((i >> 12) ^ i) as u8).collect();
    let at = recipe["metadata_area_offset"].as_u64().unwrap() as usize;
    let area = hex::decode(recipe["metadata_area_hex"].as_str().unwrap()).unwrap();
    rom[at..at + area.len()].copy_from_slice(&area);
    rom
}

#[test]
fn igvm_digest_matches_igvmmeasure_with_its_kvm_checks() {
    let kat = json("measurement/snp/igvmmeasure_kat.json");
    let file = twi_igvm::build(&rom(), &IgvmParams::default()).unwrap();
    let bytes = twi_igvm::to_bytes(&file).unwrap();
    assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), kat["image"]["igvm_sha256"].as_str().unwrap(), "file");
    let digest = twi_igvm::snp_launch_digest(&file).unwrap();
    assert_eq!(hex::encode(digest), kat["snp_launch_digest"].as_str().unwrap());
}

/// The rules `igvmmeasure --check-kvm` applies, checked here on the file itself: one VMSA, at
/// KVM's fixed GPA, after every page, with CR0 as KVM loads it for a real-mode start.
#[test]
fn igvm_initial_state_is_what_kvm_loads() {
    let file = twi_igvm::build(&rom(), &IgvmParams::default()).unwrap();
    let directives = file.directives();
    let vmsas: Vec<_> = directives
        .iter()
        .enumerate()
        .filter_map(|(i, d)| match d {
            IgvmDirectiveHeader::SnpVpContext { gpa, vmsa, .. } => Some((i, *gpa, vmsa.cr0)),
            _ => None,
        })
        .collect();
    assert_eq!(vmsas.len(), 1);
    let (index, gpa, cr0) = vmsas[0];
    assert_eq!(gpa, 0xFFFF_FFFF_F000);
    assert_eq!(cr0, 0x30, "real mode with CR0.ET and CR0.NE");
    assert!(directives[index + 1..].iter().all(|d| !matches!(d, IgvmDirectiveHeader::PageData { .. })));
}
