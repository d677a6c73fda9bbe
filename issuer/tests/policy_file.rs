//! The appraisal policy as an operator uses it: the commented example file, a version upgrade
//! under the same identity, an unknown measurement, a policy signed with `openssl`, and the
//! reference values `twi build` writes.

use std::path::{Path, PathBuf};
use std::process::Command;

use twi_issuer::freshness::FreshnessLevel;
use twi_issuer::policy::{
    Appraised, AppraisedTcb, ClaimValue, Fidelity, Mechanism, Policy, PolicyError, PolicyKey, PolicyRejection, SnpTcb,
    Stickiness,
};
use twi_proto::msg::Platform;

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policy.example.toml")
}

fn measurement_of(policy: &Policy, workload: &str, label: &str) -> Vec<u8> {
    measurement_on(policy, workload, label, None)
}

fn measurement_on(policy: &Policy, workload: &str, label: &str, platform: Option<Platform>) -> Vec<u8> {
    let entry = policy
        .workload(workload)
        .unwrap()
        .references
        .iter()
        .find(|r| r.label == label && platform.is_none_or(|p| p == r.platform))
        .unwrap();
    match &entry.values {
        twi_issuer::policy::Reference::Snp(r) => r.measurement.to_vec(),
        twi_issuer::policy::Reference::Tdx(r) => r.mrtd.to_vec(),
    }
}

fn sim(measurement: Vec<u8>) -> Appraised {
    Appraised {
        platform: Platform::SimSnp,
        measurement,
        rtmrs: vec![],
        policy: 0x30000,
        tcb: AppraisedTcb::Snp(SnpTcb { bootloader: 3, tee: 0, snp: 8, microcode: 115, fmc: None }),
        chip_id: vec![0x5A; 64],
        host_data: vec![0; 32],
        platform_info: 0,
    }
}

#[test]
fn the_example_admits_each_version_as_one_stable_identity() {
    let policy = Policy::load(&example()).unwrap();
    assert_eq!(policy.trust_domain, "example.org");
    assert_eq!(policy.version, "2026-11-23.1");
    let payroll = policy.workload("payroll-app").unwrap();
    assert_eq!(
        (payroll.mechanism, payroll.freshness, payroll.fidelity, payroll.stickiness),
        (Mechanism::A, FreshnessLevel::Nonce, Fidelity::BuiltIn, Stickiness::SameChip)
    );
    let v1 = policy.admit(&sim(measurement_of(&policy, "payroll-app", "v1.0 (sim)"))).unwrap();
    let v11 = policy.admit(&sim(measurement_of(&policy, "payroll-app", "v1.1 (sim)"))).unwrap();
    assert_eq!(v1.workload_id, "spiffe://example.org/payroll-app");
    assert_eq!(v11.workload_id, v1.workload_id);
    assert_eq!(v11.claims, v1.claims);
    assert_eq!(v1.claims["location"], ClaimValue::String("DE".into()));
    assert_eq!(v1.claims["handles-pii"], ClaimValue::Bool(true));
    assert_eq!((v1.reference.index, v11.reference.index), (0, 1));

    // The hardware entry pins the TCB and the policy flags.
    let mut snp = sim(measurement_of(&policy, "payroll-app", "v1.1"));
    snp.platform = Platform::Snp;
    assert_eq!(policy.admit(&snp).unwrap().reference.label, "v1.1");
    snp.policy |= 1 << 19; // DEBUG
    snp.tcb = AppraisedTcb::Snp(SnpTcb { bootloader: 3, tee: 0, snp: 7, microcode: 115, fmc: None });
    let text = policy.admit(&snp).unwrap_err().to_string();
    assert!(text.contains("differs in 2 fields"), "{text}");
    assert!(text.contains("policy (expected 0x30000 under mask 0x3ff0000, found 0xb0000)"), "{text}");
    assert!(text.contains("min_tcb.snp (expected >= 8, found 7)"), "{text}");

    // TDX.
    let tdx = Appraised {
        platform: Platform::Tdx,
        measurement: measurement_on(&policy, "payroll-app", "v1.1", Some(Platform::Tdx)),
        rtmrs: vec![vec![0; 48]; 4],
        policy: 0,
        tcb: AppraisedTcb::Tdx([3; 16]),
        chip_id: vec![],
        host_data: vec![],
        platform_info: 0,
    };
    assert_eq!(policy.admit(&tdx).unwrap().workload_id, "spiffe://example.org/payroll-app");
}

#[test]
fn an_unknown_measurement_is_refused_naming_the_closest_entry() {
    let policy = Policy::load(&example()).unwrap();
    let mut m = measurement_of(&policy, "payroll-app", "v1.1 (sim)");
    m[47] ^= 0xFF;
    let rejection = policy.admit(&sim(m.clone())).unwrap_err();
    let PolicyRejection::NoMatch { closest: Some(closest), .. } = &rejection else { panic!("{rejection}") };
    assert_eq!(closest.workload, "payroll-app");
    assert_eq!(closest.label, "v1.0 (sim)", "the first of equally close entries");
    let text = rejection.to_string();
    assert!(
        text.starts_with(&format!("no workload admits this sim-snp evidence (measurement {})", hex::encode(&m))),
        "{text}"
    );
    assert!(text.contains("differs in 1 field: measurement (expected 6a1b0c5e"), "{text}");
    assert!(text.contains("add its reference values"), "{text}");
}

/// The example's `admit = false` entry: the v1.1 image launched on an `amd-snp-legacy` host is
/// refused, and the refusal says so.
#[test]
fn a_launch_under_a_host_profile_not_admitted_is_refused_naming_it() {
    let policy = Policy::load(&example()).unwrap();
    let mut snp = sim(measurement_on(&policy, "payroll-app", "v1.1 (host amd-snp-legacy)", Some(Platform::Snp)));
    snp.platform = Platform::Snp;
    let text = policy.admit(&snp).unwrap_err().to_string();
    assert!(text.contains("it is workload `payroll-app`'s image launched under host profile amd-snp-legacy"), "{text}");
    assert!(text.contains("admit = false), which the workload does not admit — run it on an admitted host"), "{text}");
}

#[test]
fn declared_claims_need_the_policy_key_signature_made_with_openssl() {
    // Unsigned: the file loads, but the CF_L0 workload is not admitted, and an issuer that
    // insists on verification refuses the file outright.
    let policy = Policy::load(&example()).unwrap();
    let ledger = sim(measurement_of(&policy, "ledger", "v3 (sim)"));
    assert_eq!(policy.admit(&ledger), Err(PolicyRejection::DeclaredClaimsUnsigned("ledger".into())));
    let e = Policy::load_verified(&example(), None).unwrap_err().to_string();
    assert!(e.contains("workload `ledger` declares CF_L0 platform claims"), "{e}");

    // The operator signs the file with openssl; the issuer holds the public key.
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap_or_else(|e| {
            panic!("openssl is needed for this test (apt-get install openssl, or ./qemu/install-deps): {e}")
        });
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    std::fs::copy(example(), file("policy.toml")).unwrap();
    openssl(&["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", &file("policy-key.pem")]);
    openssl(&["ec", "-in", &file("policy-key.pem"), "-pubout", "-out", &file("policy-key.pub.pem")]);
    openssl(&[
        "dgst",
        "-sha384",
        "-sign",
        &file("policy-key.pem"),
        "-out",
        &file("policy.toml.sig"),
        &file("policy.toml"),
    ]);
    let key = PolicyKey::load(Path::new(&file("policy-key.pub.pem"))).unwrap();
    let signed = Policy::load_verified(Path::new(&file("policy.toml")), Some(&key)).unwrap();
    assert!(signed.is_signed());
    let admission = signed.admit(&ledger).unwrap();
    assert_eq!(admission.workload_id, "spiffe://example.org/ledger");
    assert_eq!(admission.platform_claims["datacenter"], ClaimValue::String("fra-1".into()));
    assert_eq!(admission.binding.values, admission.platform_claims, "CS_L2 pins the declared claims");

    // One byte changed after signing: refused, saying why.
    let text = std::fs::read_to_string(file("policy.toml")).unwrap().replace("fra-1", "fra-2");
    std::fs::write(file("policy.toml"), text).unwrap();
    let e = Policy::load_verified(Path::new(&file("policy.toml")), Some(&key)).unwrap_err();
    assert!(matches!(&e, PolicyError::Signature { reason, .. } if reason.contains("changed after signing")), "{e}");
}

#[test]
fn reference_values_from_twi_build_paste_into_the_policy() {
    // The shape `twi build` writes (host-loader/src/measure/reference.rs), trimmed.
    let digest = "ab".repeat(48);
    let mrtd = "cd".repeat(48);
    let json = format!(
        r#"{{"format":"twi-reference-values/1",
            "snp":{{"launch_digest":"{digest}","vcpus":1,"policy":"0x30000"}},
            "tdx":{{"mrtd":"{mrtd}","rtmr":null}},
            "build":{{"git_commit":"0123abcd","git_dirty":true}}}}"#
    );
    let snippet = Policy::reference_values_entry(&json, "v2.0").unwrap();
    assert!(snippet.contains("git 0123abcd (dirty)"), "{snippet}");
    let text = std::fs::read_to_string(example()).unwrap();
    // Paste it right after the payroll-app workload's last reference entry.
    let at = text.find("[[workload]]\nid = \"ledger\"").unwrap();
    let pasted = format!("{}{snippet}{}", &text[..at], &text[at..]);
    let policy = Policy::from_toml(&pasted).unwrap();
    let mut launch = sim(hex::decode(&digest).unwrap());
    launch.platform = Platform::Snp;
    let admission = policy.admit(&launch).unwrap();
    assert_eq!((admission.workload.as_str(), admission.reference.label.as_str()), ("payroll-app", "v2.0"));
}

#[test]
fn a_broken_file_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    let text = std::fs::read_to_string(example()).unwrap().replace("platform = \"tdx\"", "platform = \"tdx2\"");
    std::fs::write(&path, text).unwrap();
    let e = Policy::load(&path).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}:", path.display())), "{e}");
    assert!(
        e.contains("workload `payroll-app`: reference platform \"tdx2\" is not one of sim-snp, snp, tdx, sim-tdx"),
        "{e}"
    );
    let e = Policy::load(&dir.path().join("absent.toml")).unwrap_err().to_string();
    assert!(e.starts_with("cannot read ") && e.contains("absent.toml"), "{e}");
}
