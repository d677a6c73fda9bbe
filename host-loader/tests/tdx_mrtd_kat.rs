//! Known answer for the TDX MRTD calculator: td-shim's own MRTD calculator
//! (`td-shim-tools/src/bin/td-shim-tee-info-hash/td_shim_tee_info_hash.py`, run as recorded in
//! `tests/data/measurement/tdx/td_shim_mrtd_kat.json`) on a fixed 2 MiB image made of a byte
//! pattern and TWI's ROM metadata area as it was frozen there (TDX metadata GUID, "TDVF"
//! descriptor, GUID table). That calculator refuses an image whose descriptor is not preceded by
//! the TDX metadata GUID, so its answer also pins the layout td-shim and OVMF expect.
//!
//! The image is rebuilt here from its recipe; only td-shim's answer is committed, not its code.

use serde_json::Value;
use twi_host_loader::measure::tdx::{MrtdOrder, mrtd};

fn kat() -> Value {
    twi_testkit::samples::json("measurement/tdx/td_shim_mrtd_kat.json")
}

/// The fixed image: byte i = (i >> 12) ^ i, with the recorded metadata area at its offset.
fn image(kat: &Value) -> Vec<u8> {
    let size = kat["image"]["size"].as_u64().unwrap() as usize;
    let mut rom: Vec<u8> = (0..size).map(|i| ((i >> 12) ^ i) as u8).collect();
    let at = kat["image"]["metadata_area_offset"].as_u64().unwrap() as usize;
    let area = hex::decode(kat["image"]["metadata_area_hex"].as_str().unwrap()).unwrap();
    rom[at..at + area.len()].copy_from_slice(&area);
    rom
}

#[test]
fn mrtd_matches_td_shims_calculator_on_a_fixed_image() {
    let kat = kat();
    let rom = image(&kat);
    use sha2::Digest;
    assert_eq!(hex::encode(sha2::Sha256::digest(&rom)), kat["image"]["sha256"].as_str().unwrap(), "image recipe");
    let ours = mrtd(&rom, MrtdOrder::Kvm).expect("the image has TDX metadata");
    assert_eq!(hex::encode(ours), kat["mrtd"].as_str().unwrap());
    // The per-section order (td-shim's Rust tee-info-hash) is a different value: the known
    // answer pins the order QEMU/KVM and this calculator use.
    assert_ne!(mrtd(&rom, MrtdOrder::PerSection).unwrap(), ours);
}
