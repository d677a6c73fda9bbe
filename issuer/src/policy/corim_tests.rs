//! A policy whose reference values come from a signed CoRIM (`reference_values_corim`): it
//! admits what the same values admit as JSON-made entries, and refuses to load a CoRIM that is
//! altered, signed by another key, unsigned, or states no launch measurement.

use std::path::{Path, PathBuf};

use p384::ecdsa::SigningKey;
use p384::elliptic_curve::Generate;
use p384::pkcs8::{EncodePublicKey, LineEnding};
use twi_proto::msg::Platform;

use super::corim::{self, LaunchPlatform, LaunchValue, PolicyBits};
use super::*;

const SNP: [u8; 48] = [0x5a; 48];
const IGVM: [u8; 48] = [0x16; 48];
const MRTD: [u8; 48] = [0x7d; 48];
const SBOM: [u8; 48] = [0x5b; 48];
const QEMU_POLICY: u64 = 0x30000;

fn values() -> Vec<LaunchValue> {
    let bits = Some(PolicyBits { mask: POLICY_FLAGS_MASK, required: QEMU_POLICY });
    vec![
        LaunchValue {
            platform: LaunchPlatform::SevSnp,
            digest: SNP,
            policy: bits,
            host_profile: Some("linux-6.11".into()),
        },
        LaunchValue { platform: LaunchPlatform::SevSnp, digest: IGVM, policy: bits, host_profile: None },
        LaunchValue { platform: LaunchPlatform::Tdx, digest: MRTD, policy: None, host_profile: None },
    ]
}

fn signed_corim(key: &SigningKey) -> Vec<u8> {
    let document =
        corim::document("twi-reference-values:test", "twi-launch:test", &values(), Some(&SBOM), None).unwrap();
    corim::sign(&document, key, "Example Corp", false).unwrap()
}

const WORKLOAD: &str = "version = \"c1\"\ntrust_domain = \"example.org\"\n\n[[workload]]\nid = \"payroll-app\"\n\
                        stickiness = \"CS_L3\"\n";

/// A policy file in `dir` naming `corim` (written beside it) and the public half of `key`.
fn corim_policy(dir: &Path, corim: &[u8], key: &SigningKey) -> PathBuf {
    std::fs::write(dir.join("reference-values.corim"), corim).unwrap();
    let pem = key.verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
    std::fs::write(dir.join("corim-key.pub.pem"), pem).unwrap();
    let text = format!(
        "{WORKLOAD}reference_values_corim = \"reference-values.corim\"\ncorim_key = \"corim-key.pub.pem\"\n\
         [workload.claims]\nlocation = \"DE\"\n"
    );
    let path = dir.join("policy.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The same values as `twi build`'s reference-values.json states them, made into entries as
/// `twi policy add-image` does.
fn json_policy() -> Policy {
    let json = serde_json::json!({
        "snp": { "launch_digest": hex::encode(SNP), "policy": "0x30000" },
        "igvm": { "snp_launch_digest": hex::encode(IGVM) },
        "tdx": { "mrtd": hex::encode(MRTD) },
        "sbom": { "file": "sbom.cdx.json", "digest": format!("sha384:{}", hex::encode(SBOM)) },
    });
    let mut text = format!("{WORKLOAD}[workload.claims]\nlocation = \"DE\"\n");
    for entry in image_references(&json, "v1").unwrap() {
        text.push_str(&format!("[[workload.reference]]\n{}\n", entry.to_toml().unwrap()));
    }
    Policy::from_toml(&text).unwrap()
}

fn evidence(platform: Platform, measurement: &[u8; 48], policy: u64) -> Appraised {
    let tcb = match platform {
        Platform::Tdx | Platform::SimTdx => AppraisedTcb::Tdx([0; 16]),
        _ => AppraisedTcb::Snp(SnpTcb::default()),
    };
    Appraised {
        platform,
        measurement: measurement.to_vec(),
        rtmrs: vec![],
        policy,
        tcb,
        chip_id: vec![0xAB; 64],
        host_data: vec![0; 32],
        platform_info: 1,
    }
}

#[test]
fn a_corim_policy_admits_what_the_json_values_admit_and_refuses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::try_generate().unwrap();
    let from_corim = Policy::load(&corim_policy(dir.path(), &signed_corim(&key), &key)).unwrap();
    let from_json = json_policy();
    let cases = [
        (Platform::SimSnp, SNP, QEMU_POLICY, true),
        (Platform::Snp, SNP, QEMU_POLICY, true),
        (Platform::Snp, IGVM, QEMU_POLICY, true),
        // SINGLE_SOCKET set: the image was built for a policy without it, and the CoRIM pins it.
        (Platform::Snp, SNP, QEMU_POLICY | 1 << 20, false),
        (Platform::SimTdx, MRTD, 0, true),
        (Platform::Tdx, MRTD, 0, true),
        (Platform::SimSnp, [0x99; 48], QEMU_POLICY, false),
        (Platform::Tdx, SNP, 0, false),
    ];
    for (platform, measurement, policy, admitted) in cases {
        let a = evidence(platform, &measurement, policy);
        let (corim, json) = (from_corim.admit(&a), from_json.admit(&a));
        assert_eq!(corim.is_ok(), admitted, "{platform:?} {}: {corim:?}", hex::encode(measurement));
        assert_eq!(json.is_ok(), admitted, "{platform:?}: {json:?}");
        if let (Ok(corim), Ok(mut json)) = (corim, json) {
            assert!(corim.reference.label.starts_with("reference-values.corim #"), "{}", corim.reference.label);
            // The same admission (the same SBOM named), but for which entry's label matched.
            json.reference = corim.reference.clone();
            assert_eq!(corim.provenance.as_ref().map(|p| p.sbom.0), Some(SBOM));
            assert_eq!(corim, json);
        }
    }
    // The host profile rides in the MEASUREMENT's name and labels the SEV-SNP entry.
    let a = from_corim.admit(&evidence(Platform::Snp, &SNP, QEMU_POLICY)).unwrap();
    assert!(a.reference.label.ends_with("(SEV-SNP, host linux-6.11)"), "{}", a.reference.label);
    let entries = &from_corim.workloads[0].references;
    let profiles: Vec<_> =
        entries.iter().filter(|e| e.platform == Platform::Snp).map(|e| e.host_profile.as_deref()).collect();
    assert_eq!(profiles, [Some("linux-6.11"), None]);
}

#[test]
fn a_tampered_or_foreign_corim_refuses_to_load_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::try_generate().unwrap();
    let good = signed_corim(&key);
    let path = corim_policy(dir.path(), &good, &key);
    Policy::load(&path).unwrap();
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x01;
        std::fs::write(dir.path().join("reference-values.corim"), &bad).unwrap();
        let e = Policy::load(&path).expect_err(&format!("byte {i} flipped was accepted")).to_string();
        assert!(e.contains("reference-values.corim"), "byte {i}: {e}");
    }
    let other = SigningKey::try_generate().unwrap();
    std::fs::write(dir.path().join("reference-values.corim"), signed_corim(&other)).unwrap();
    let e = Policy::load(&path).unwrap_err().to_string();
    assert!(e.contains("reference-values.corim: the signature does not verify under corim_key"), "{e}");
    // The #6.502 wrapper of drafts before the tag was removed (corim-10 has bare #6.18) is
    // outside the signature: read as the crate reads it, then verified the same.
    let legacy = [&[0xd9, 0x01, 0xf6][..], &good].concat();
    std::fs::write(dir.path().join("reference-values.corim"), legacy).unwrap();
    assert_eq!(Policy::load(&path).unwrap().workloads[0].references.len(), 6);
    // Unsigned: `twi build` without --corim-key.
    let unsigned = corim::document("id", "tag", &values(), None, None).unwrap();
    std::fs::write(dir.path().join("reference-values.corim"), unsigned).unwrap();
    let e = Policy::load(&path).unwrap_err().to_string();
    assert!(e.contains("reference-values.corim: not a signed CoRIM"), "{e}");
}

#[test]
fn a_corim_without_a_launch_measurement_or_a_key_is_refused() {
    use ::corim::builder::{ComidBuilder, CorimBuilder};
    use ::corim::types::common::{MeasuredElement, TagIdChoice};
    use ::corim::types::corim::CorimId;
    use ::corim::types::environment::{ClassMap, EnvironmentMap};
    use ::corim::types::measurement::{Digest, MeasurementMap, MeasurementValuesMap};
    use ::corim::types::triples::ReferenceTriple;
    let class = ClassMap {
        class_id: None,
        vendor: Some("ACME".into()),
        model: Some("Widget".into()),
        layer: None,
        index: None,
    };
    let measurement = MeasurementMap {
        mkey: Some(MeasuredElement::Text("firmware".into())),
        mval: MeasurementValuesMap { digests: Some(vec![Digest::new(7, SNP.to_vec())]), ..Default::default() },
        authorized_by: None,
    };
    let environment = EnvironmentMap { class: Some(class), instance: None, group: None };
    let comid = ComidBuilder::new(TagIdChoice::Text("widget".into()))
        .add_reference_triple(ReferenceTriple::new(environment, vec![measurement]))
        .build()
        .unwrap();
    let document =
        CorimBuilder::new(CorimId::Text("widget".into())).add_comid_tag(comid).unwrap().build_bytes().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::try_generate().unwrap();
    let path = corim_policy(dir.path(), &corim::sign(&document, &key, "ACME", false).unwrap(), &key);
    let e = Policy::load(&path).unwrap_err().to_string();
    assert!(e.contains("reference-values.corim: no launch measurement in it"), "{e}");

    let text = std::fs::read_to_string(&path).unwrap().replace("corim_key = \"corim-key.pub.pem\"\n", "");
    std::fs::write(&path, text).unwrap();
    let e = Policy::load(&path).unwrap_err().to_string();
    assert!(e.contains("reference_values_corim needs corim_key"), "{e}");
}

/// A CoRIM with a `rim-validity` loads within it and is refused past it, saying it expired.
#[test]
fn a_corim_past_its_validity_refuses_to_load() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::try_generate().unwrap();
    let now = i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs());
    let now = now.unwrap();
    let within = corim::document("id", "tag", &values(), None, Some((now - 60, now + 3600))).unwrap();
    let path = corim_policy(dir.path(), &corim::sign(&within, &key, "Example Corp", false).unwrap(), &key);
    assert_eq!(Policy::load(&path).unwrap().workloads[0].references.len(), 6);
    let past = corim::document("id", "tag", &values(), None, Some((now - 7200, now - 3600))).unwrap();
    let path = corim_policy(dir.path(), &corim::sign(&past, &key, "Example Corp", false).unwrap(), &key);
    let e = Policy::load(&path).unwrap_err().to_string();
    assert!(e.contains("reference-values.corim") && e.to_lowercase().contains("expired"), "{e}");
}

/// The SBOM triple: read back as written; a CoRIM without one states none; one stated twice
/// is refused.
#[test]
fn the_sbom_triple_is_read_back_and_a_malformed_one_refused() {
    use ::corim::types::comid::ComidTag;
    let key = SigningKey::try_generate().unwrap();
    let read = corim::read_signed(&signed_corim(&key), key.verifying_key()).unwrap();
    assert_eq!((read.sbom, read.launch), (Some(SBOM), values()));
    let without = corim::sign(&corim::document("id", "tag", &values(), None, None).unwrap(), &key, "E", false).unwrap();
    assert_eq!(corim::read_signed(&without, key.verifying_key()).unwrap().sbom, None);
    let comids = |document: &[u8]| -> Vec<ComidTag> {
        let signed = corim::sign(document, &key, "E", false).unwrap();
        let signed = ::corim::types::signed::decode_signed_corim(&signed).unwrap();
        ::corim::types::signed::validate_signed_corim_payload(&signed, 0).unwrap().comids
    };
    let mut twice = comids(&corim::document("id", "tag", &values(), Some(&SBOM), None).unwrap());
    let triple = twice[0].triples.reference_triples.as_ref().unwrap().last().unwrap().clone();
    twice[0].triples.reference_triples.as_mut().unwrap().push(triple);
    assert!(corim::sbom_value(&twice).unwrap_err().to_string().contains("stated twice"));
}
