//! Known answers for the launch-measurement calculators: every vector of virtee's
//! `sev-snp-measure` test suite (`tests/test_guest.py` at 8f2b337e, transcribed with its OVMF
//! fixtures into `tests/data/measurement/snp`, see `tests/data/PROVENANCE.md`), and
//! the OVMF fixtures' own metadata as a check of our GUID encoding and metadata reader.
//!
//! The samples are read at run time; a missing samples folder fails the tests.

use std::path::PathBuf;

use serde_json::Value;
use twi_host_loader::measure::firmware::Firmware;
use twi_host_loader::measure::sev::{sev_launch_digest, seves_launch_digest};
use twi_host_loader::measure::sev_hashes::SevHashes;
use twi_host_loader::measure::snp::{self, SnpLaunchParams};
use twi_host_loader::measure::vmsa::VmmType;
use twi_host_loader::measure::{MeasureError, cpu::CpuType};
use twi_linker::guid::{self, Guid};
use twi_linker::sev::SectionType;

/// The SEV-SNP measurement samples in `tests/data` (a missing folder fails the test).
fn samples() -> PathBuf {
    twi_testkit::samples::path("measurement/snp")
}

fn vectors() -> Value {
    let text = std::fs::read(samples().join("snp_launch_digest_vectors.json")).unwrap();
    serde_json::from_slice(&text).unwrap()
}

fn fixture(name: &str) -> Vec<u8> {
    let path = samples().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()))
}

fn hex_u64(v: &Value) -> u64 {
    let s = v.as_str().unwrap();
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

/// A vector's kernel/initrd/append fields: "<empty file>" is an empty file, null absent.
fn kernel_hashes(v: &Value) -> Option<SevHashes> {
    let file = |f: &Value| match f {
        Value::Null => None,
        Value::String(s) if s == "<empty file>" => Some(Vec::new()),
        other => panic!("unexpected file field {other}"),
    };
    let kernel = file(&v["kernel"])?;
    let initrd = file(&v["initrd"]);
    Some(SevHashes::new(&kernel, initrd.as_deref(), v["append"].as_str()))
}

fn vmm(v: &Value) -> VmmType {
    match v["vmm_type"].as_str().unwrap() {
        "QEMU (default)" | "QEMU" => VmmType::Qemu,
        "ec2" => VmmType::Ec2,
        "gce" => VmmType::Gce,
        other => panic!("unknown vmm_type {other}"),
    }
}

/// The vector's CPU signature; for EPYC-v4 also check ours agrees with the one it states.
fn vcpu_sig(v: &Value) -> u32 {
    match (&v["vcpu_type"], &v["vcpu_sig"]) {
        (Value::String(t), Value::String(sig)) => {
            let stated = hex_u64(&Value::String(sig.clone())) as u32;
            assert_eq!(CpuType::by_name(t).unwrap().sig(), stated, "signature of {t}");
            stated
        }
        // sev-snp-measure needs no signature for GCE (RDX is 0x600 there) or plain SEV.
        _ => 0,
    }
}

enum Outcome {
    Digest(Vec<u8>),
    Error(MeasureError),
}

fn compute(v: &Value) -> Outcome {
    let image = fixture(v["ovmf"].as_str().unwrap());
    let vcpus = v["vcpus"].as_u64().unwrap() as u32;
    let hashes = kernel_hashes(v);
    let result = match v["mode"].as_str().unwrap() {
        "SEV_SNP" => {
            let mut params = SnpLaunchParams {
                vcpus,
                vcpu_sig: vcpu_sig(v),
                guest_features: hex_u64(&v["guest_features"]),
                vmsa_fpu: true,
                vmm: vmm(v),
                kernel_hashes: hashes,
                rom_digest: None,
            };
            if let Some(seed) = v["snp_ovmf_hash"].as_str() {
                let (seed_hex, note) = seed.split_once(' ').unwrap_or((seed, ""));
                let seed: [u8; 48] = hex::decode(seed_hex).unwrap().try_into().unwrap();
                // The precomputed "OVMF hash" is the digest after the firmware pages: ours must
                // agree when computed from the fixture.
                assert_eq!(snp::rom_pages_digest(&image).unwrap(), seed, "snp_ovmf_hash of the fixture");
                if note.is_empty() {
                    params.rom_digest = Some(seed);
                }
            }
            snp::launch_digest(&image, &params).map(|d| d.to_vec())
        }
        "SEV_ES" => seves_launch_digest(&image, vcpus, vcpu_sig(v), hashes.as_ref(), vmm(v)).map(|d| d.to_vec()),
        "SEV" => sev_launch_digest(&image, hashes.as_ref()).map(|d| d.to_vec()),
        other => panic!("unexpected mode {other}"),
    };
    match result {
        Ok(d) => Outcome::Digest(d),
        Err(e) => Outcome::Error(e),
    }
}

#[test]
fn every_sev_snp_measure_vector() {
    let vectors = vectors();
    let all = vectors["vectors"].as_array().unwrap();
    let (mut passed, mut not_reproducible) = (Vec::new(), Vec::new());
    let mut failures = Vec::new();
    for v in all {
        let name = v["name"].as_str().unwrap();
        if v["mode"] == "SEV_SNP_SVSM" {
            // Their 3.6 MiB OVMF and 1.1 MiB SVSM fixtures were not copied into the samples
            // (the vectors say so): these two cannot be recomputed here. TWI has no SVSM mode.
            assert!(v["ovmf"].as_str().unwrap().contains("NOT copied"), "{name}: fixture present, add the mode");
            not_reproducible.push(name);
            continue;
        }
        match (compute(v), v.get("expected_launch_digest"), v.get("expected_error")) {
            (Outcome::Digest(d), Some(expected), _) if hex::encode(&d) == expected.as_str().unwrap() => {
                passed.push(name)
            }
            (Outcome::Error(e), _, Some(expected)) if e.to_string() == expected.as_str().unwrap() => passed.push(name),
            (Outcome::Digest(d), ..) => failures.push(format!("{name}: computed {}", hex::encode(d))),
            (Outcome::Error(e), ..) => failures.push(format!("{name}: error {e}")),
        }
    }
    eprintln!(
        "sev-snp-measure vectors: {} of {} agree; not reproducible without their fixtures: {:?}",
        passed.len(),
        all.len(),
        not_reproducible
    );
    assert!(failures.is_empty(), "vectors that disagree:\n{}", failures.join("\n"));
    assert_eq!(passed.len() + not_reproducible.len(), all.len());
    assert_eq!(not_reproducible.len(), 2, "only the two SVSM vectors lack fixtures");
}

/// The OVMF fixtures carry the GUIDs QEMU and OVMF define: finding them there checks
/// `Guid::parse` and our byte order against real firmware.
#[test]
fn ovmf_fixtures_hold_the_guids_and_metadata_we_generate() {
    for name in ["ovmf_AmdSev_suffix.bin", "ovmf_OvmfX64_suffix.bin"] {
        let image = fixture(name);
        let fw = Firmware::parse(&image).unwrap();
        let found: Vec<Guid> = fw.table().iter().map(|(g, _)| *g).collect();
        for wanted in
            [guid::SEV_ES_RESET_BLOCK, guid::SEV_METADATA_OFFSET, guid::TDX_METADATA_OFFSET, guid::SEV_HASH_TABLE_RV]
        {
            assert!(found.contains(&wanted), "{name} lacks {wanted}: found {found:?}");
        }
        assert_eq!(fw.sev_es_reset_eip().unwrap(), Some(0x0080_B004), "{name}");
        let sections = fw.sev_sections().unwrap();
        let kinds: Vec<SectionType> = sections.iter().map(|s| s.kind).collect();
        assert_eq!(
            &kinds[..5],
            &[
                SectionType::SnpSecMem,
                SectionType::SnpSecMem,
                SectionType::SnpSecrets,
                SectionType::Cpuid,
                SectionType::SvsmCaa
            ]
        );
        assert_eq!((sections[2].gpa, sections[2].size), (0x80_D000, 0x1000));
    }
    // The TDVF descriptor of the AmdSev build (as QEMU reads it): six sections, BFV measured.
    let image = fixture("ovmf_AmdSev_suffix.bin");
    let fw = Firmware::parse(&image).unwrap();
    // Its BFV/CFV data lie in the part of OVMF not in the 4 KiB fixture: QEMU's checks refuse.
    assert!(fw.tdvf_sections().is_err());
}

#[test]
fn malformed_metadata_is_an_error_not_a_panic() {
    let good = fixture("ovmf_AmdSev_suffix.bin");
    // Every single-byte corruption of the last 1 KiB (the table and the metadata): parse and
    // measure must return, whatever they return.
    for at in good.len() - 1024..good.len() {
        for flip in [0x01u8, 0xff] {
            let mut image = good.clone();
            image[at] ^= flip;
            let _ = snp::launch_digest(&image, &SnpLaunchParams::default());
            let _ = twi_host_loader::measure::tdx::mrtd(&image, Default::default());
            let _ = sev_launch_digest(&image, None);
        }
    }
    assert!(Firmware::parse(&[]).is_err());
    assert!(Firmware::parse(&good[..100]).is_err());
}
