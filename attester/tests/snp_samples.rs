//! Known-answer tests against attestation reports that real AMD hardware produced.
//!
//! The reports are read at run time from `tests/data` in the repository (`PROVENANCE.md`
//! there names each file's source, commit and licence). A missing folder fails the test.
//!
//! Sources (see `provenance.json` there for the commits):
//! * s1 — `virtee/sev`, `tests/certs_data/report_milan.hex` (Milan, report v2, VCEK); the
//!   `.bin` beside it is the same bytes, hex-decoded.
//! * s2 — `google/go-sev-guest`, `verify/testdata/attestation.bin` (Milan, v2, VCEK).
//! * s4 — `confidential-containers/trustee`, `deps/verifier/test_data/snp/test-vlek-report.bin`
//!   (Milan, v3, VLEK).
//!
//! Expected field values come from `expected.json`, computed there by an independent verifier.

use sha2::{Digest, Sha256};
use twi_attester::snp::report::{
    AttestationReport, REPORT_SIZE, ReportError, SIGNED_LEN, SigningKey, TcbLayout, signed_region,
};

use twi_testkit::samples::read;

/// The `"fields"` object of `snp.<key>` in expected.json, as (name, value) pairs with string
/// quotes removed. expected.json is a flat, fixed file (sha-pinned in provenance), so a
/// minimal scan suffices and keeps serde_json out of this crate.
fn expected_fields(key: &str) -> Vec<(String, String)> {
    let json = String::from_utf8(read("expected.json")).expect("expected.json is UTF-8");
    let snp = json.find("\"snp\"").expect("expected.json has \"snp\"");
    let sample =
        snp + json[snp..].find(&format!("\"{key}\":")).unwrap_or_else(|| panic!("expected.json has no snp.{key}"));
    let fields = sample + json[sample..].find("\"fields\":").expect("sample has \"fields\"");
    let open = fields + json[fields..].find('{').unwrap() + 1;
    let close = open + json[open..].find('}').unwrap();
    let pairs: Vec<_> = json[open..close]
        .split(',')
        .map(|kv| {
            let (k, v) = kv.split_once(':').expect("key: value");
            let unquote = |s: &str| s.trim().trim_matches('"').to_string();
            (unquote(k), unquote(v))
        })
        .collect();
    assert!(pairs.len() > 20, "snp.{key}.fields looks truncated");
    pairs
}

fn hex_of(b: &[u8]) -> String {
    hex::encode(b)
}

/// The sample at `rel`, after checking its sha256 against the one provenance.json pins.
fn pinned(rel: &str, sha256: &str) -> Vec<u8> {
    let bytes = read(rel);
    assert_eq!(hex::encode(Sha256::digest(&bytes)), sha256, "{rel}: not the file provenance.json names");
    bytes
}

/// Checks one sample end to end. Returns the parsed report for sample-specific checks.
fn check(key: &str, rel: &str, bytes: &[u8]) -> AttestationReport {
    assert_eq!(bytes.len(), REPORT_SIZE, "{rel} is a bare report");
    let r = AttestationReport::parse(bytes).unwrap_or_else(|e| panic!("{rel}: {e}"));

    for (name, want) in expected_fields(key) {
        let got = match name.as_str() {
            "version" => r.version.to_string(),
            "guest_svn" => r.guest_svn.to_string(),
            "policy" => format!("{:#x}", r.policy.0),
            "family_id" => hex_of(&r.family_id),
            "image_id" => hex_of(&r.image_id),
            "vmpl" => r.vmpl.to_string(),
            "signature_algo" => r.signature_algo.to_string(),
            "current_tcb" => hex_of(&r.current_tcb.to_le_bytes()),
            "platform_info" => format!("{:#x}", r.platform_info),
            "key_info" => format!("{:#x}", r.key_info.0),
            "signing_key" => match r.signing_key() {
                SigningKey::Vcek => "0".into(),
                SigningKey::Vlek => "1".into(),
                SigningKey::None => "7".into(),
                SigningKey::Reserved(v) => v.to_string(),
            },
            "report_data" => hex_of(&r.report_data),
            "measurement" => hex_of(&r.measurement),
            "host_data" => hex_of(&r.host_data),
            "id_key_digest" => hex_of(&r.id_key_digest),
            "author_key_digest" => hex_of(&r.author_key_digest),
            "report_id" => hex_of(&r.report_id),
            "report_id_ma" => hex_of(&r.report_id_ma),
            "reported_tcb" => hex_of(&r.reported_tcb.to_le_bytes()),
            "cpuid_fam_mod_step" => hex_of(&[r.cpuid_fam_id, r.cpuid_mod_id, r.cpuid_step]),
            "chip_id" => hex_of(&r.chip_id),
            "committed_tcb" => hex_of(&r.committed_tcb.to_le_bytes()),
            "current_build_minor_major" => hex_of(&[r.current_build, r.current_minor, r.current_major]),
            "committed_build_minor_major" => hex_of(&[r.committed_build, r.committed_minor, r.committed_major]),
            "launch_tcb" => hex_of(&r.launch_tcb.to_le_bytes()),
            "sig_reserved_area_all_zero" => bytes[0x330..].iter().all(|&b| b == 0).to_string(),
            other => panic!("expected.json lists snp.{key}.fields.{other}, not compared here"),
        };
        assert_eq!(got, want, "{rel}: field {name}");
    }

    // Exact round trip: these reports have every reserved byte zero.
    assert_eq!(r.to_bytes().as_slice(), bytes, "{rel}: round trip");
    // R and S fit in 48 bytes, and the big-endian form converts back.
    let rs = r.signature.to_big_endian_rs().expect("high bytes zero");
    assert_eq!(twi_attester::snp::report::EcdsaP384Signature::from_big_endian_rs(&rs), r.signature);
    assert_eq!(signed_region(bytes).unwrap(), &bytes[..SIGNED_LEN]);
    // Truncated and oversized copies are refused.
    for input in [&bytes[..REPORT_SIZE - 1], &[bytes, &[0]].concat()[..]] {
        assert_eq!(
            AttestationReport::parse(input),
            Err(ReportError::Length { expected: REPORT_SIZE, actual: input.len() })
        );
    }
    r
}

#[test]
fn s1_virtee_milan_v2() {
    // provenance.json pins the hex text from virtee/sev; the .bin must be exactly its decoding.
    let dir = "snp/s1_virtee_milan_v2";
    let hex_text =
        pinned(&format!("{dir}/report_milan.hex"), "3d956e9104969a038031a6b63dd6c4b60000619d37702065994f7da76f88ae7d");
    let decoded = hex::decode(String::from_utf8(hex_text).unwrap().trim()).unwrap();
    let rel = format!("{dir}/report_milan.bin");
    let bytes = read(&rel);
    assert_eq!(bytes, decoded, "report_milan.bin is report_milan.hex decoded");
    let r = check("s1", &rel, &bytes);
    assert_eq!(r.signing_key(), SigningKey::Vcek);
    assert_eq!(r.tcb_layout(), None); // v2: no CPUID fields
}

#[test]
fn s2_gosevguest_milan_v2() {
    let rel = "snp/s2_gosevguest_milan_v2/attestation.bin";
    let bytes = pinned(rel, "377e6241d3b373ab1df80c0f96978594e7e21f4797dd6ea95e2957e1c1e26060");
    let r = check("s2", rel, &bytes);
    assert_eq!(r.signing_key(), SigningKey::Vcek);
    // go-sev-guest's VCEK URL for this report: blSPL=2&teeSPL=0&snpSPL=5&ucodeSPL=68.
    let t = r.reported_tcb;
    assert_eq!((t.bootloader(), t.tee(), t.snp(), t.microcode()), (2, 0, 5, 68));
    assert_eq!(r.report_data[..5], [1, 2, 3, 4, 5]);
}

#[test]
fn s4_trustee_milan_vlek_v3() {
    let rel = "snp/s4_trustee_milan_vlek_v3/test-vlek-report.bin";
    let bytes = pinned(rel, "decdab949afc590668e45869b20f23e4afc7ac03c61201ab20208c6668a58a2d");
    let r = check("s4", rel, &bytes);
    assert_eq!(r.signing_key(), SigningKey::Vlek);
    assert_eq!(r.chip_id, [0; 64]);
    assert_eq!(r.tcb_layout(), Some(TcbLayout::MilanGenoa));
}

/// Versions 0, 1 and 6 and above are refused; 4 (real firmware emits it, with the version 3
/// layout) is read like 3.
#[test]
fn unknown_versions_rejected_and_4_read_as_3() {
    let mut bytes = read("snp/s4_trustee_milan_vlek_v3/test-vlek-report.bin");
    let v3 = AttestationReport::parse(&bytes).unwrap();
    for v in [0u32, 1, 6, 7, 0x100, u32::MAX] {
        bytes[..4].copy_from_slice(&v.to_le_bytes());
        assert_eq!(AttestationReport::parse(&bytes), Err(ReportError::UnsupportedVersion(v)));
    }
    bytes[..4].copy_from_slice(&4u32.to_le_bytes());
    let v4 = AttestationReport::parse(&bytes).unwrap();
    assert_eq!(AttestationReport { version: 3, ..v4 }, v3);
    assert_eq!(v4.tcb_layout(), Some(TcbLayout::MilanGenoa));
}
