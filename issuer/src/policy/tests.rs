//! The policy's unit tests: admission, refusals that name the closest entry, the file's
//! errors, the policy key, stickiness, CF_L1 inventories and reference values.

use std::time::SystemTime;

use p384::ecdsa::SigningKey;
use p384::elliptic_curve::Generate;
use twi_proto::msg::Platform;

use super::*;

const M1: &str = "11111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111";
const M2: &str = "22222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222";

fn m(h: &str) -> Vec<u8> {
    hex::decode(&h[..96]).unwrap()
}

fn policy_text() -> String {
    format!(
        r#"
version = "7"
trust_domain = "example.org"

[[workload]]
id = "payroll-app"
freshness = "AF_L2"
fidelity = "CF_L2"
stickiness = "CS_L3"
[workload.claims]
location = "DE"
handles-pii = true
tier = 2

[[workload.reference]]
label = "v1"
platform = "sim-snp"
measurement = "{}"
min_tcb = {{ snp = 8 }}

[[workload.reference]]
label = "v2"
platform = "sim-snp"
measurement = "{}"
"#,
        &M1[..96],
        &M2[..96]
    )
}

fn appraised(measurement: Vec<u8>) -> Appraised {
    Appraised {
        platform: Platform::SimSnp,
        measurement,
        rtmrs: vec![],
        policy: 0x30000,
        tcb: AppraisedTcb::Snp(SnpTcb { bootloader: 3, tee: 0, snp: 8, microcode: 115, fmc: None }),
        chip_id: vec![0xAB; 64],
        host_data: vec![0; 32],
        platform_info: 1,
    }
}

#[test]
fn admits_each_version_as_the_same_identity() {
    let p = Policy::from_toml(&policy_text()).unwrap();
    let a1 = p.admit(&appraised(m(M1))).unwrap();
    let a2 = p.admit(&appraised(m(M2))).unwrap();
    assert_eq!(a1.workload_id, "spiffe://example.org/payroll-app");
    assert_eq!((a1.workload_id.as_str(), &a1.claims), (a2.workload_id.as_str(), &a2.claims));
    assert_eq!((a1.reference.label.as_str(), a2.reference.label.as_str()), ("v1", "v2"));
    assert_eq!(a1.claims["location"], ClaimValue::String("DE".into()));
    assert_eq!(a1.claims["handles-pii"], ClaimValue::Bool(true));
    assert_eq!(a1.claims["tier"], ClaimValue::Int(2));
    assert_eq!(a1.platform_claims["platform"], ClaimValue::String("sim-snp".into()));
    assert_eq!(a1.binding.values["chip_id"], ClaimValue::String("ab".repeat(64)));
    assert_eq!(a1.policy_version, "7");
}

#[test]
fn an_unknown_measurement_names_the_closest_entry() {
    let p = Policy::from_toml(&policy_text()).unwrap();
    let mut a = appraised(m(M1));
    a.measurement[0] ^= 1;
    let err = p.admit(&a).unwrap_err();
    let PolicyRejection::NoMatch { closest: Some(c), .. } = &err else { panic!("{err}") };
    assert_eq!((c.workload.as_str(), c.label.as_str(), c.differences.len()), ("payroll-app", "v1", 1));
    assert_eq!(c.differences[0].field, "measurement");
    let text = err.to_string();
    assert!(text.contains("closest: workload `payroll-app` reference #0 \"v1\" (line 15)"), "{text}");
    assert!(text.contains(&format!("expected {}", &M1[..96])), "{text}");
    // The TCB below the minimum: the entry with the right measurement is closest.
    let mut a = appraised(m(M1));
    a.tcb = AppraisedTcb::Snp(SnpTcb { snp: 7, ..SnpTcb::default() });
    let text = p.admit(&a).unwrap_err().to_string();
    assert!(text.contains("min_tcb.snp (expected >= 8, found 7)"), "{text}");
    // Debug is refused by default.
    let mut a = appraised(m(M2));
    a.policy |= SNP_POLICY_DEBUG;
    assert!(p.admit(&a).unwrap_err().to_string().contains("policy (expected 0x0 under mask 0x80000"));
    // Another platform: no entries at all.
    let mut a = appraised(m(M1));
    a.platform = Platform::Snp;
    assert!(p.admit(&a).unwrap_err().to_string().contains("no reference values for platform snp"));
}

#[test]
fn errors_name_the_line_and_field() {
    let text = policy_text().replace(&M2[..96], &M2[..94]);
    let e = Policy::from_toml(&text).unwrap_err().to_string();
    assert!(e.starts_with("<memory>:24:15: "), "{e}");
    assert!(e.contains("expected 48 bytes (96 hex digits), found 47 bytes"), "{e}");
    let e = Policy::from_toml(&policy_text().replace("measurement =", "measurment =")).unwrap_err().to_string();
    assert!(e.contains("unknown field `measurment`"), "{e}");
    let e = Policy::from_toml(&policy_text().replace("tier = 2", "sub = \"x\"")).unwrap_err().to_string();
    assert!(e.contains("claim name \"sub\" is reserved"), "{e}");
    let e = Policy::from_toml(&policy_text().replace("tier = 2", "ratio = 0.5")).unwrap_err().to_string();
    assert!(e.contains("a claim value: a string, a boolean or an integer"), "{e}");
    let e = Policy::from_toml(&policy_text().replace("\"payroll-app\"", "\"../x\"")).unwrap_err().to_string();
    assert!(e.contains(":6: workload id \"../x\" is not a SPIFFE path"), "{e}");
    let e = Policy::from_toml(&policy_text().replace("AF_L2", "AF_L9")).unwrap_err().to_string();
    assert!(e.contains("AF_L9"), "{e}");
    let e = Policy::from_toml(
        &policy_text().replace("platform = \"sim-snp\"\nmeasurement", "platform = \"tdx\"\nmeasurement"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("is for tdx but has SEV-SNP fields"), "{e}");
    // A second workload with the same launch.
    let dup = format!(
        "{}\n[[workload]]\nid = \"other\"\n[[workload.reference]]\nplatform = \"sim-snp\"\nmeasurement = \"{}\"\nmin_tcb = {{ snp = 8 }}\nlabel = \"v1\"\n",
        policy_text(),
        &M1[..96]
    );
    let e = Policy::from_toml(&dup).unwrap_err().to_string();
    assert!(e.contains("one launch cannot have two identities"), "{e}");
}

fn declared_text() -> String {
    policy_text().replace("fidelity = \"CF_L2\"", "fidelity = \"CF_L0\"").replace(
        "[[workload.reference]]\nlabel = \"v1\"",
        "[workload.platform_claims]\ncountry = \"DE\"\ndatacenter = \"fra-1\"\n\n[[workload.reference]]\nlabel = \"v1\"",
    )
}

#[test]
fn declared_claims_count_only_under_the_policy_key() {
    let key = SigningKey::try_generate().unwrap();
    let policy_key = PolicyKey(*key.verifying_key());
    let text = declared_text();
    let p = Policy::from_toml(&text).unwrap();
    assert_eq!(p.admit(&appraised(m(M1))), Err(PolicyRejection::DeclaredClaimsUnsigned("payroll-app".into())));
    let mut signed = Policy::from_toml(&text).unwrap().with_signature(sign_policy(text.as_bytes(), &key));
    signed.verify_signature(&policy_key).unwrap();
    let a = signed.admit(&appraised(m(M1))).unwrap();
    assert_eq!(a.platform_claims["datacenter"], ClaimValue::String("fra-1".into()));
    assert_eq!(a.fidelity, Fidelity::Declared);
    // Signed by another key, or the file changed after signing.
    let other = SigningKey::try_generate().unwrap();
    let mut forged = Policy::from_toml(&text).unwrap().with_signature(sign_policy(text.as_bytes(), &other));
    let e = forged.verify_signature(&policy_key).unwrap_err().to_string();
    assert!(e.contains("does not verify under the policy key"), "{e}");
    let changed = text.replace("fra-1", "fra-2");
    let mut changed = Policy::from_toml(&changed).unwrap().with_signature(sign_policy(text.as_bytes(), &key));
    assert!(changed.verify_signature(&policy_key).is_err());
    assert!(changed.admit(&appraised(m(M1))).is_err());
}

#[test]
fn stickiness_refuses_renewals_that_break_the_binding() {
    let p = Policy::from_toml(&policy_text()).unwrap();
    let first = p.admit(&appraised(m(M1))).unwrap();
    let check = RenewalCheck { previous: first.binding.clone() };
    // A version upgrade on the same chip keeps a CS_L3 binding.
    check.check(&p.admit(&appraised(m(M2))).unwrap()).unwrap();
    let mut moved = appraised(m(M1));
    moved.chip_id = vec![0xCD; 64];
    let refused = check.check(&p.admit(&moved).unwrap()).unwrap_err();
    assert_eq!(refused.differences[0].field, "chip_id");
    assert!(refused.to_string().contains("bound (CS_L3) to the chip it was issued on"), "{refused}");
    // CS_L1: a TCB change breaks it, a chip change does not.
    let tcb = RenewalCheck { previous: first.binding_at(Stickiness::SameTcb) };
    tcb.check(&p.admit(&moved).unwrap()).unwrap();
    let mut patched = appraised(m(M1));
    patched.tcb = AppraisedTcb::Snp(SnpTcb { bootloader: 3, tee: 0, snp: 9, microcode: 115, fmc: None });
    let refused = tcb.check(&p.admit(&patched).unwrap()).unwrap_err();
    assert_eq!(refused.differences[0].field, "tcb");
}

#[test]
fn signed_inventory_supplies_cf_l1_claims() {
    let provider = SigningKey::try_generate().unwrap();
    let now = SystemTime::now();
    let inventory = format!(
        r#"{{"provider":"dc-inventory.example.org","expires":"2999-01-01T00:00:00Z","platforms":{{"{}":{{"location":"DE","rack":"r12"}}}}}}"#,
        "ab".repeat(64)
    );
    let sig = sign_policy(inventory.as_bytes(), &provider);
    let source = SignedInventory::from_signed(inventory.as_bytes(), &sig, provider.verifying_key(), now).unwrap();
    let text = policy_text().replace("CF_L2", "CF_L1").replace("CS_L3", "CS_L2");
    let p = Policy::from_toml(&text).unwrap();
    assert_eq!(p.admit(&appraised(m(M1))), Err(PolicyRejection::NoClaimSource("payroll-app".into())));
    let a = p.admit_with_source(&appraised(m(M1)), &source).unwrap();
    assert_eq!(a.platform_claims["rack"], ClaimValue::String("r12".into()));
    assert_eq!(a.binding.values, a.platform_claims, "CS_L2 binds the claims");
    let mut other = appraised(m(M1));
    other.chip_id = vec![1; 64];
    assert!(matches!(p.admit_with_source(&other, &source), Err(PolicyRejection::ClaimSource { .. })));
    let forged = inventory.replace("r12", "r13");
    assert!(SignedInventory::from_signed(forged.as_bytes(), &sig, provider.verifying_key(), now).is_err());
}

#[test]
fn reference_values_json_becomes_a_policy_entry() {
    let json = format!(
        r#"{{"format":"twi-reference-values/1","snp":{{"launch_digest":"{}","policy":"0x30000"}},
           "igvm":{{"snp_launch_digest":"{}"}},"tdx":{{"mrtd":"{}","rtmr":null}},"build":{{"git_commit":"abc","git_dirty":false}}}}"#,
        &M1[..96],
        &M2[..96],
        &M1[..96]
    );
    let snippet = Policy::reference_values_entry(&json, "v3 \"blue\"").unwrap();
    assert!(snippet.starts_with("# From reference-values.json (twi-reference-values/1, git abc)."), "{snippet}");
    let text = format!("version = \"1\"\ntrust_domain = \"example.org\"\n[[workload]]\nid = \"w\"\n{snippet}");
    let p = Policy::from_toml(&text).unwrap();
    let refs = &p.workloads[0].references;
    assert_eq!(refs.len(), 3);
    assert_eq!(refs[0].label, "v3 \"blue\"");
    assert_eq!(refs[1].label, "v3 \"blue\" (IGVM)");
    assert_eq!(refs[2].platform, Platform::Tdx);
    let Reference::Snp(snp) = &refs[0].values else { panic!() };
    assert_eq!((snp.policy_mask, snp.policy_required), (POLICY_FLAGS_MASK, 0x30000));
    let mut a = appraised(m(M1));
    a.platform = Platform::Snp;
    assert_eq!(p.admit(&a).unwrap().reference.index, 0);
    assert!(Policy::reference_values_entry("{}", "x").is_err());
    assert!(
        Policy::reference_values_entry(r#"{"tdx":{"mrtd":"abcd"}}"#, "x").unwrap_err().to_string().contains("tdx.mrtd")
    );
}

/// What `twi policy add-image` adds for an image: every platform, the hardware SEV-SNP
/// entries pinning the guest policy's flags.
#[test]
fn image_references_cover_every_platform() {
    let values = serde_json::json!({
        "snp": { "launch_digest": hex::encode([0x11; 48]), "policy": "0x30000" },
        "igvm": { "snp_launch_digest": hex::encode([0x33; 48]) },
        "tdx": { "mrtd": hex::encode([0x22; 48]) },
    });
    let entries = image_references(&values, "v2").unwrap();
    let summary: Vec<_> = entries.iter().map(|e| (e.platform.as_str(), e.label.as_deref().unwrap())).collect();
    assert_eq!(
        summary,
        [
            ("sim-snp", "v2 (simulated SEV-SNP)"),
            ("snp", "v2 (SEV-SNP)"),
            ("snp", "v2 (SEV-SNP, IGVM)"),
            ("sim-tdx", "v2 (simulated TDX)"),
            ("tdx", "v2 (TDX)"),
        ]
    );
    assert_eq!(entries[1].policy_required, Some(U64(0x30000)));
    assert_eq!(entries[0].policy_mask, None, "the simulated PSP reports its own guest policy");
    assert!(image_references(&serde_json::json!({}), "x").unwrap_err().to_string().contains("no reference values"));
    let short = serde_json::json!({ "tdx": { "mrtd": "abcd" } });
    assert!(image_references(&short, "x").unwrap_err().to_string().contains("48 bytes"));
}

/// `wit_alg` chooses the WIT algorithm: ES384 when absent, ES256 when named, and any other
/// value is refused naming the line and the accepted values.
#[test]
fn wit_alg_defaults_to_es384_and_accepts_only_es256_and_es384() {
    use crate::jose::Alg;
    assert_eq!(Policy::from_toml(&policy_text()).unwrap().wit_alg, Alg::Es384);
    let with = |value: &str| policy_text().replace("trust_domain = ", &format!("wit_alg = {value}\ntrust_domain = "));
    assert_eq!(Policy::from_toml(&with("\"ES256\"")).unwrap().wit_alg, Alg::Es256);
    assert_eq!(Policy::from_toml(&with("\"ES384\"")).unwrap().wit_alg, Alg::Es384);
    for bad in ["\"ES512\"", "\"es256\"", "\"RS256\"", "256"] {
        let e = Policy::from_toml(&with(bad)).unwrap_err().to_string();
        assert!(e.starts_with("<memory>:3:"), "{bad}: {e}");
        if bad.starts_with('"') {
            assert!(e.contains(&format!("{bad} is not a supported JWS algorithm")), "{e}");
            assert!(e.contains("the accepted values are \"ES256\", \"ES384\""), "{e}");
        }
    }
    // Written only when it is not the default, and read back as written.
    let file =
        PolicyFile { version: "1".into(), trust_domain: "example.org".into(), wit_alg: Alg::Es256, workload: vec![] };
    let text = file.to_toml().unwrap();
    assert!(text.contains("wit_alg = \"ES256\""), "{text}");
    assert_eq!(Policy::from_toml(&text).unwrap().wit_alg, Alg::Es256);
    let text = PolicyFile { wit_alg: Alg::Es384, ..file }.to_toml().unwrap();
    assert!(!text.contains("wit_alg"), "{text}");
}

/// The file types write what they read: a policy written through serde parses back to the
/// same file, and to a policy that admits what the entries say.
#[test]
fn the_file_format_round_trips() {
    let mut workload = WorkloadFile::new("payroll-app");
    workload.mechanism = Mechanism::C;
    workload.claims.insert("location".into(), ClaimValue::String("DE".into()));
    workload.reference.push(ReferenceFile::snp("v1 (sim)", Platform::SimSnp, &[0x11; 48], Some(0x30000)));
    workload.reference.push(ReferenceFile::tdx("v1 (tdx)", Platform::Tdx, &[0x22; 48]));
    let file = PolicyFile {
        version: "9".into(),
        trust_domain: "example.org".into(),
        wit_alg: Default::default(),
        workload: vec![workload],
    };
    let text = file.to_toml().unwrap();
    assert_eq!(toml::from_str::<PolicyFile>(&text).unwrap(), file, "{text}");
    let policy = Policy::from_toml(&text).unwrap();
    let w = policy.workload("payroll-app").unwrap();
    assert_eq!((w.mechanism, w.freshness, w.stickiness), (Mechanism::C, FreshnessLevel::Nonce, Stickiness::SameTcb));
    let Reference::Snp(snp) = &w.references[0].values else { panic!("{text}") };
    assert_eq!((snp.policy_mask, snp.policy_required), (POLICY_FLAGS_MASK, 0x30000));
    assert_eq!(policy.workload_for(Platform::Tdx, &[0x22; 48]).map(|w| w.id.as_str()), Some("payroll-app"));
    assert!(policy.workload_for(Platform::SimTdx, &[0x22; 48]).is_none());
}

#[test]
fn credential_lifetimes_are_checked_when_the_policy_loads() {
    let with = |secs: &str| {
        policy_text().replace("stickiness = \"CS_L3\"", &format!("stickiness = \"CS_L3\"\nlifetime_secs = {secs}"))
    };
    for bad in ["0", "59", "18446744073709551615", "2592001"] {
        let err = Policy::from_toml(&with(bad)).unwrap_err().to_string();
        assert!(err.contains(&format!("workload `payroll-app`: lifetime_secs = {bad} is out of range")), "{err}");
    }
    for good in ["60", "3600", "2592000"] {
        let policy = Policy::from_toml(&with(good)).unwrap();
        let secs: u64 = good.parse().unwrap();
        assert_eq!(policy.workload("payroll-app").unwrap().lifetime, std::time::Duration::from_secs(secs));
    }
}

/// `reference-values.json`'s `sbom.digest` goes onto every entry `twi policy add-image` adds,
/// and the store keeps a document only under the digest the reference values name.
#[test]
fn reference_entries_name_the_images_sbom_and_the_store_checks_it() {
    let document = br#"{"bomFormat":"CycloneDX","specVersion":"1.5","components":[]}"#;
    let digest = SbomDigest::of(document);
    let values = serde_json::json!({
        "snp": { "launch_digest": &M1[..96] },
        "tdx": { "mrtd": &M2[..96] },
        "sbom": { "file": "sbom.cdx.json", "digest": digest.to_string() },
    });
    let entries = image_references(&values, "v2").unwrap();
    assert!(entries.len() == 4 && entries.iter().all(|e| e.sbom == Some(digest)), "{entries:?}");
    let snippet = Policy::reference_values_entry(&values.to_string(), "v2").unwrap();
    assert!(snippet.contains(&format!("sbom = \"{digest}\"")), "{snippet}");
    let bad = serde_json::json!({ "snp": { "launch_digest": &M1[..96] }, "sbom": { "digest": "sha256:00" } });
    assert!(image_references(&bad, "v2").unwrap_err().to_string().contains("sbom.digest is not sha384:<hex>"));

    let dir = tempfile::tempdir().unwrap();
    let other = SbomDigest::of(b"another document");
    let refused = store_sbom(dir.path(), document, Some(&other)).unwrap_err();
    assert!(matches!(refused, SbomError::Tampered { .. }), "{refused}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "a refused document was stored");
    assert_eq!(store_sbom(dir.path(), document, Some(&digest)).unwrap(), digest);
    let stored = Sbom::load(dir.path(), &digest).unwrap();
    assert_eq!((stored.digest, stored.components.len()), (digest, 0));
    assert!(store_sbom(dir.path(), b"{}", None).unwrap_err().to_string().contains("bomFormat"));
}

#[test]
fn a_targets_hints_are_checked_when_the_policy_loads_and_only_those_are_honoured() {
    let with = |hints: &str| format!("{}\n[[workload.target]]\nname = \"t\"\nhints = {hints}\n", policy_text());
    let too_long = format!("[\"{}\"]", "h".repeat(twi_proto::msg::MAX_HINT + 1));
    for (bad, why) in [
        ("[\"a\", \"a\"]", "hint \"a\" is listed twice"),
        ("[\"\"]", "must be 1 to 256 bytes"),
        (&too_long, "must be 1 to 256 bytes"),
    ] {
        let err = Policy::from_toml(&with(bad)).unwrap_err().to_string();
        assert!(err.contains("workload `payroll-app`: target `t`: ") && err.contains(why), "{bad}: {err}");
    }
    let policy = Policy::from_toml(&with("[\"rotate\", \"eu\"]")).unwrap();
    let workload = policy.workload("payroll-app").unwrap();
    assert_eq!(workload.hint("t", None), Ok(()));
    assert_eq!(workload.hint("t", Some("eu")), Ok(()));
    for (target, hint) in [("t", "us"), ("other", "eu")] {
        let refused = workload.hint(target, Some(hint)).unwrap_err();
        assert!(matches!(refused, TargetRefusal::RejectedHint { .. }), "{refused}");
        assert!(refused.to_string().contains("list it in the target's `hints`"), "{refused}");
    }
}

/// `twi build --host-profile linux-6.11` lists every host profile's digest; the policy admits
/// the asked-for one and names the others (`admit = false`), so evidence launched on a host of
/// another profile is refused with a sentence that names that profile.
#[test]
fn a_launch_on_a_host_profile_the_workload_does_not_admit_is_refused_naming_the_profile() {
    let profile = |name: &str, digest: &str, requested: bool| serde_json::json!({ "profile": name, "launch_digest": &digest[..96], "requested": requested });
    let values = serde_json::json!({
        "snp": {
            "launch_digest": &M1[..96],
            "policy": "0x30000",
            "host_profiles": [profile("linux-6.11", M1, true), profile("amd-snp-legacy", M2, false)],
        },
    });
    let entries = image_references(&values, "v4").unwrap();
    let summary: Vec<_> =
        entries.iter().map(|e| (e.label.as_deref().unwrap(), e.host_profile.as_deref(), e.admit)).collect();
    assert_eq!(
        summary,
        [
            ("v4 (simulated SEV-SNP)", None, None),
            ("v4 (SEV-SNP, host linux-6.11)", Some("linux-6.11"), None),
            ("v4 (SEV-SNP, host amd-snp-legacy)", Some("amd-snp-legacy"), Some(false)),
        ]
    );
    let mut file = super::file::WorkloadFile::new("payroll-app");
    file.reference = entries;
    let text = super::file::PolicyFile {
        version: "1".into(),
        trust_domain: "example.org".into(),
        wit_alg: Default::default(),
        workload: vec![file],
    }
    .to_toml()
    .unwrap();
    assert!(text.contains("host_profile = \"amd-snp-legacy\"\nadmit = false"), "{text}");
    let p = Policy::from_toml(&text).unwrap();
    let on_snp = |digest: &str| Appraised { platform: Platform::Snp, ..appraised(m(digest)) };
    assert_eq!(p.admit(&on_snp(M1)).unwrap().reference.label, "v4 (SEV-SNP, host linux-6.11)");
    let err = p.admit(&on_snp(M2)).unwrap_err();
    let PolicyRejection::NoMatch { known: Some(k), .. } = &err else { panic!("{err}") };
    assert_eq!(
        (k.host_profile.as_str(), k.admitted_profiles.as_slice()),
        ("amd-snp-legacy", &["linux-6.11".to_string()][..])
    );
    let text = err.to_string();
    assert!(text.contains("launched under host profile amd-snp-legacy"), "{text}");
    assert!(text.contains("admits host profile linux-6.11 only"), "{text}");
    assert!(text.contains("twi build --host-profile amd-snp-legacy"), "{text}");
    // The known digest only names; it is never the workload the loader prepares for.
    assert!(p.workload_for(Platform::Snp, &m(M2)).is_none());
    // A digest the policy does not know at all: no profile named, the closest entry instead.
    let text = p.admit(&on_snp(&"3".repeat(96))).unwrap_err().to_string();
    assert!(!text.contains("host profile") && text.contains("closest: workload `payroll-app`"), "{text}");
    // admit = false needs a host profile to name, and host_profile belongs to SEV-SNP entries.
    let entry = |fields: &str| {
        let text = format!(
            "version = \"1\"\ntrust_domain = \"example.org\"\n[[workload]]\nid = \"w\"\n[[workload.reference]]\n{fields}\n"
        );
        Policy::from_toml(&text).unwrap_err().to_string()
    };
    let e = entry(&format!("platform = \"snp\"\nmeasurement = \"{}\"\nadmit = false", &M1[..96]));
    assert!(e.contains("admit = false but no host_profile"), "{e}");
    let e = entry(&format!("platform = \"tdx\"\nmrtd = \"{}\"\nhost_profile = \"linux-6.11\"", &M1[..96]));
    assert!(e.contains("only SEV-SNP launches have"), "{e}");
}
