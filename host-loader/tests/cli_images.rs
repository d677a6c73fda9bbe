//! `twi build`, `twi measure` and `twi run --print-qemu` as a user runs them: the build writes
//! the ROM, the IGVM file and the reference values, reproducibly; `measure` agrees with the
//! reference values; every launch profile prints its QEMU line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

const TWI: &str = env!("CARGO_BIN_EXE_twi");

fn twi(args: &[&str]) -> Output {
    Command::new(TWI).args(args).output().expect("cannot run twi")
}

fn ok(out: Output, what: &str) -> String {
    assert!(out.status.success(), "{what} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

struct Build {
    _dir: tempfile::TempDir,
    state: PathBuf,
    a: PathBuf,
    b: PathBuf,
}

/// Two builds with the same issuer state into two directories.
fn builds() -> &'static Build {
    static BUILD: OnceLock<Build> = OnceLock::new();
    BUILD.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        for out in [&a, &b] {
            ok(twi(&["build", "--out", path(out), "--state", path(&state)]), "twi build");
        }
        Build { _dir: dir, state, a, b }
    })
}

fn reference(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("reference-values.json")).unwrap()).unwrap()
}

#[test]
fn two_builds_give_identical_bytes() {
    let b = builds();
    for name in ["twi.rom", "twi.igvm", "twi-runtime.elf"] {
        let (x, y) = (std::fs::read(b.a.join(name)).unwrap(), std::fs::read(b.b.join(name)).unwrap());
        assert!(x == y, "{name} differs between two builds");
    }
    // The reference values too, but for the checkout's git state, which a concurrent edit of
    // the working tree could change between the two builds.
    let strip = |mut v: Value| {
        v["build"].as_object_mut().unwrap().retain(|k, _| !k.starts_with("git_"));
        v
    };
    assert_eq!(strip(reference(&b.a)), strip(reference(&b.b)));
}

#[test]
fn reference_values_describe_the_images() {
    let b = builds();
    let values = reference(&b.a);
    assert_eq!(values["format"], "twi-reference-values/1");
    let rom = std::fs::read(b.a.join("twi.rom")).unwrap();
    let igvm = std::fs::read(b.a.join("twi.igvm")).unwrap();
    let sha384 = |d: &[u8]| {
        use sha2::{Digest, Sha384};
        hex::encode(Sha384::digest(d))
    };
    assert_eq!(values["images"]["rom"]["sha384"], sha384(&rom));
    assert_eq!(values["images"]["igvm"]["sha384"], sha384(&igvm));
    assert_eq!(values["build"]["runtime_elf_sha384"], sha384(&std::fs::read(b.a.join("twi-runtime.elf")).unwrap()));
    assert_eq!(values["snp"]["vcpus"], 1);
    assert_eq!(values["snp"]["vcpu_type"], "EPYC-v4");
    assert_eq!(values["snp"]["policy"], "0x30000");
    assert!(values["tdx"]["rtmr"].is_null(), "no RTMR expectation is stated yet");
    assert!(values["tdx"]["rtmr_note"].as_str().unwrap().contains("extends no RTMR"));
    if Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.git")).exists() {
        assert_eq!(values["build"]["git_commit"].as_str().map(str::len), Some(40));
    }
}

#[test]
fn measure_agrees_with_the_reference_values() {
    let b = builds();
    let values = reference(&b.a);
    let rom = b.a.join("twi.rom");
    let snp = ok(twi(&["measure", path(&rom), "--platform", "snp"]), "twi measure snp");
    assert_eq!(snp.trim(), values["snp"]["launch_digest"]);
    let tdx = ok(twi(&["measure", path(&rom), "--platform", "tdx"]), "twi measure tdx");
    assert_eq!(tdx.trim(), values["tdx"]["mrtd"]);
    let igvm = ok(twi(&["measure", path(&b.a.join("twi.igvm")), "--platform", "snp"]), "twi measure igvm");
    assert_eq!(igvm.trim(), values["igvm"]["snp_launch_digest"]);

    let json: Value = serde_json::from_str(&ok(
        twi(&["measure", path(&rom), "--platform", "snp", "--vcpus", "2", "--vcpu-type", "EPYC-Milan", "--json"]),
        "twi measure --json",
    ))
    .unwrap();
    assert_eq!(json["vcpus"], 2);
    assert_eq!(json["vcpu_sig"], "0xa00f11");
    assert_ne!(json["launch_digest"], values["snp"]["launch_digest"]);

    // A build for those parameters records the same digest.
    let out = b.a.parent().unwrap().join("milan");
    ok(
        twi(&[
            "build",
            "--out",
            path(&out),
            "--state",
            path(&b.state),
            "--vcpus",
            "2",
            "--vcpu-type",
            "EPYC-Milan",
            "--policy",
            "0x30000",
        ]),
        "twi build --vcpus 2",
    );
    assert_eq!(reference(&out)["snp"]["launch_digest"], json["launch_digest"]);
}

/// `--host-profile`: `twi measure` prints one digest per profile asked for, the ones the
/// build lists in reference-values.json; `twi build --host-profile` makes the first one the
/// launch digest and marks which were asked for; `twi policy add-image` admits those and lists
/// the others with admit = false.
#[test]
fn measure_and_build_take_host_profiles() {
    let b = builds();
    let listed = reference(&b.a)["snp"]["host_profiles"].as_array().unwrap().clone();
    let digest_of = |name: &str| {
        let entry = listed.iter().find(|p| p["profile"] == name).unwrap_or_else(|| panic!("{name} not listed"));
        entry["launch_digest"].as_str().unwrap().to_string()
    };
    let rom = b.a.join("twi.rom");
    let both = "amd-snp-legacy,linux-6.11";
    let out =
        ok(twi(&["measure", path(&rom), "--platform", "snp", "--host-profile", both]), "twi measure --host-profile");
    let want = format!("{} amd-snp-legacy\n{} linux-6.11\n", digest_of("amd-snp-legacy"), digest_of("linux-6.11"));
    assert_eq!(out, want);
    let one =
        ok(twi(&["measure", path(&rom), "--platform", "snp", "--host-profile", "amd-snp-legacy-no-debug-swap"]), "one");
    assert_eq!(one.trim(), digest_of("amd-snp-legacy-no-debug-swap"));
    let json: Value = serde_json::from_str(&ok(
        twi(&["measure", path(&rom), "--platform", "snp", "--host-profile", both, "--json"]),
        "json",
    ))
    .unwrap();
    assert_eq!(json["host_profile"], "amd-snp-legacy");
    assert_eq!(json["launch_digest"], digest_of("amd-snp-legacy").as_str());
    assert_eq!(json["host_profiles"][1]["guest_features"], "0x1");
    assert_eq!(json["host_profiles"][0]["vmsa_fpu"], false);
    // --guest-features overrides the profile's SEV_FEATURES: legacy's 0x21 as 0x1 is the
    // no-debug-swap profile.
    let overridden = twi(&[
        "measure",
        path(&rom),
        "--platform",
        "snp",
        "--host-profile",
        "amd-snp-legacy",
        "--guest-features",
        "0x1",
    ]);
    assert_eq!(ok(overridden, "override").trim(), digest_of("amd-snp-legacy-no-debug-swap"));
    let out = twi(&["measure", path(&rom), "--platform", "snp", "--host-profile", "linux-6.12"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "unknown host profile \"linux-6.12\" (known: linux-6.11, amd-snp-legacy, amd-snp-legacy-no-debug-swap)"
        ),
        "{stderr}"
    );

    let out = b.a.parent().unwrap().join("legacy");
    let args = ["build", "--out", path(&out), "--state", path(&b.state), "--host-profile", both];
    ok(twi(&args), "twi build --host-profile");
    let values = reference(&out);
    assert_eq!(values["snp"]["launch_digest"], digest_of("amd-snp-legacy").as_str());
    assert_eq!(values["snp"]["host_profile"], "amd-snp-legacy");
    let asked: Vec<_> =
        values["snp"]["host_profiles"].as_array().unwrap().iter().map(|p| p["requested"].clone()).collect();
    assert_eq!(asked, [true, true, false]);

    let policy = out.join("policy.toml");
    std::fs::write(&policy, "version = \"1\"\ntrust_domain = \"example.org\"\n").unwrap();
    let added = twi(&["policy", "add-image", path(&policy), path(&out), "--workload", "w"]);
    let stderr = String::from_utf8_lossy(&added.stderr).to_string();
    ok(added, "twi policy add-image");
    assert!(
        stderr.contains("admit = false") && stderr.contains("legacy (SEV-SNP, host amd-snp-legacy-no-debug-swap)"),
        "{stderr}"
    );
    let text = std::fs::read_to_string(&policy).unwrap();
    assert_eq!(text.matches("host_profile = ").count(), 3, "{text}");
    assert_eq!(text.matches("admit = false").count(), 1, "{text}");
}

#[test]
fn measure_refuses_bad_input_in_one_sentence() {
    let b = builds();
    let rom = b.a.join("twi.rom");
    let out = twi(&["measure", path(&rom), "--platform", "snp", "--vcpu-type", "Pentium"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown vCPU type \"Pentium\" (known: EPYC"));
    let out = twi(&["measure", path(&rom), "--platform", "snp", "--policy", "0x10000"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("bit 17 must be set"));
    let elf = b.a.join("twi-runtime.elf");
    let out = twi(&["measure", path(&elf), "--platform", "tdx"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("twi: error: "));
}

#[test]
fn every_launch_profile_prints_its_qemu_line() {
    let b = builds();
    let print_with = |platform: &str, extra: &[&str]| {
        let mut args =
            vec!["run", "--platform", platform, "--out", path(&b.a), "--state", path(&b.state), "--print-qemu"];
        args.extend(extra);
        let rom = b.a.join("twi.rom");
        if platform == "sim" {
            // With --image, `run` does not rebuild into DIR (other tests read it meanwhile).
            args.extend(["--image", path(&rom)]);
        }
        ok(twi(&args), "twi run --print-qemu")
    };
    let print = |platform: &str| print_with(platform, &[]);
    let snp = print("snp");
    let rom = format!("-bios {}", b.a.join("twi.rom").display());
    for part in
        ["-accel kvm", "-cpu EPYC-v4", "-smp 1", "sev-snp-guest,id=sev0", "policy=0x30000", "memory-backend=ram1", &rom]
    {
        assert!(snp.contains(part), "snp profile lacks {part}: {snp}");
    }
    let tdx = print("tdx");
    for part in ["kernel-irqchip=split,confidential-guest-support=tdx0", "tdx-guest", "quote-generation-socket", &rom] {
        assert!(tdx.contains(part), "tdx profile lacks {part}: {tdx}");
    }
    let igvm = print("igvm");
    let file = format!("igvm-cfg,id=igvm0,file={}", b.a.join("twi.igvm").display());
    for part in [file.as_str(), "igvm-cfg=igvm0", "sev-snp-guest"] {
        assert!(igvm.contains(part), "igvm profile lacks {part}: {igvm}");
    }
    assert!(!igvm.contains("-bios"));
    let sim = print("sim");
    assert!(sim.contains("-accel tcg") && sim.contains("-bios"), "{sim}");
    // The hardware profiles keep the 16550 unless asked for the ring, which puts the guest's
    // RAM in the file the loader reads (GUEST-RAM.bin stands for the per-run file) and offers
    // the ring by fw_cfg; the simulated ones take the ring by default.
    let offer = "-fw_cfg name=opt/twi/ring,string=1";
    assert!(sim.contains(offer) && !snp.contains(offer) && !tdx.contains(offer), "{snp}\n{tdx}");
    assert!(snp.contains("memory-backend-memfd,id=ram1"), "{snp}");
    for platform in ["snp", "tdx", "igvm"] {
        let ring = print_with(platform, &["--channel", "ring"]);
        assert!(ring.contains("memory-backend-file,id=") && ring.contains("mem-path=GUEST-RAM.bin,share=on"), "{ring}");
        assert!(ring.contains(offer) && !ring.contains("memfd"), "{ring}");
    }
    // Without --print-qemu the hardware platforms run QEMU with that line (on this machine,
    // not a TEE host, QEMU refuses and the user learns what the host lacks; tests/e2e.rs).
    let run_dir = tempfile::tempdir().unwrap();
    let out = twi(&[
        "run",
        "--platform",
        "igvm",
        "--image",
        path(&b.a.join("twi.igvm")),
        "--out",
        path(run_dir.path()),
        "--state",
        path(&b.state),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("--platform igvm needs an AMD SEV-SNP host"), "{stderr}");
}

/// Reproducible across checkouts: no absolute path of this machine in the runtime.
#[test]
fn the_runtime_carries_no_host_paths() {
    let elf = std::fs::read(builds().a.join("twi-runtime.elf")).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_str().unwrap().to_string();
    let mut needles = vec![root];
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        needles.push(home.to_string_lossy().into_owned());
    } else if let Some(home) = std::env::var_os("HOME") {
        needles.push(format!("{}/.cargo", home.to_string_lossy()));
    }
    for needle in needles {
        let found = elf.windows(needle.len()).any(|w| w == needle.as_bytes());
        assert!(!found, "the runtime ELF contains the host path {needle}");
    }
}

#[test]
fn measure_reports_the_tee_info_hash_for_the_launch_choices_given() {
    let b = builds();
    let rom = b.a.join("twi.rom");
    let run = |xfam: &str| -> Value {
        let out = twi(&["measure", path(&rom), "--platform", "tdx", "--json", "--xfam", xfam]);
        serde_json::from_str(&ok(out, "twi measure --xfam")).expect("JSON")
    };
    let a = run("0xe7");
    let hash = a["tee_info_hash"].as_str().expect("tee_info_hash with --xfam");
    assert_eq!(hash.len(), 96);
    assert_eq!(a["mrtd"], reference(&b.a)["tdx"]["mrtd"], "the TEE info hash covers the build's MRTD");
    assert_ne!(run("0x61ae7")["tee_info_hash"], a["tee_info_hash"], "XFAM is part of TDINFO_STRUCT");
    let plain = twi(&["measure", path(&rom), "--platform", "tdx", "--json"]);
    let plain: Value = serde_json::from_str(&ok(plain, "twi measure")).unwrap();
    assert!(plain.get("tee_info_hash").is_none(), "no TEE info hash without the launch's XFAM");
}

#[test]
fn the_build_writes_the_trust_domains_spiffe_bundle_for_relying_parties() {
    let b = builds();
    let bundle: Value = serde_json::from_slice(&std::fs::read(b.a.join("trust-bundle.json")).unwrap()).unwrap();
    let keys = bundle["keys"].as_array().unwrap();
    let uses: Vec<_> = keys.iter().map(|k| k["use"].as_str().unwrap()).collect();
    assert_eq!(uses, ["x509-svid", "wit-svid"], "{bundle}");
    // The x509-svid authority is exactly the CA written beside it; the WIT authority is the key
    // issuer-jwks.json names.
    let ca = std::fs::read_to_string(b.a.join("issuer-ca.pem")).unwrap();
    let pem_body: String = ca.lines().filter(|l| !l.starts_with("-----")).collect();
    assert_eq!(keys[0]["x5c"], serde_json::json!([pem_body]), "x5c is the standard base64 DER of the CA");
    let jwks: Value = serde_json::from_slice(&std::fs::read(b.a.join("issuer-jwks.json")).unwrap()).unwrap();
    assert_eq!((&keys[1]["x"], &keys[1]["kid"]), (&jwks["keys"][0]["x"], &jwks["keys"][0]["kid"]));
}

/// `twi build --corim-key --igvm-corim`, as read by cbor2 and pycose: reference-values.corim is
/// a signed CoRIM whose reference triples state exactly the launch measurements `twi measure`
/// reports (the ROM's and the IGVM file's SEV-SNP digests with the guest policy's flag bits, the
/// ROM's MRTD), its signature verifies under the key's public half and every flipped byte
/// breaks it; the IGVM file, read back with the igvm crate, carries its SEV-SNP CoRIM document
/// and detached signature. Without a key the CoRIM is written unsigned and the build says so.
#[test]
fn the_build_signs_its_reference_values_as_a_corim_that_pycose_verifies() {
    use p384::elliptic_curve::sec1::ToSec1Point;
    let b = builds();
    let dir = tempfile::tempdir().unwrap();
    let (key_path, out) = (dir.path().join("corim-key.pem"), dir.path().join("signed"));
    let secret = p384::SecretKey::from_slice(&[7u8; 48]).unwrap();
    std::fs::write(
        &key_path,
        p384::pkcs8::EncodePrivateKey::to_pkcs8_pem(&secret, Default::default()).unwrap().as_bytes(),
    )
    .unwrap();
    let elf = b.a.join("twi-runtime.elf");
    let args = ["build", "--out", path(&out), "--state", path(&b.state), "--runtime-elf", path(&elf)];
    let corim_args =
        ["--corim-key", path(&key_path), "--igvm-corim", "--vendor", "Example Corp", "--corim-valid-days", "30"];
    let signed = [&args[..], &corim_args].concat();
    let log = twi(&signed);
    assert!(log.status.success(), "{}", String::from_utf8_lossy(&log.stderr));
    assert!(String::from_utf8_lossy(&log.stderr).contains("reference-values.corim (signed, ES384)"));

    let measure = |file: &str, platform: &str| {
        ok(twi(&["measure", path(&out.join(file)), "--platform", platform]), "twi measure").trim().to_string()
    };
    let (snp, igvm_snp, mrtd) = (measure("twi.rom", "snp"), measure("twi.igvm", "snp"), measure("twi.rom", "tdx"));
    let corim = std::fs::read(out.join("reference-values.corim")).unwrap();
    // The SBOM the launch manifest measures: its digest as the build's reference values name it.
    let values: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("reference-values.json")).unwrap()).unwrap();
    let sbom = values["sbom"]["digest"].as_str().unwrap().strip_prefix("sha384:").unwrap().to_string();
    let (document, signature) = igvm_corim(&std::fs::read(out.join("twi.igvm")).unwrap());
    let point = secret.public_key().to_sec1_point(false);
    let must_fail: Vec<_> = (0..corim.len())
        .map(|i| {
            let mut bad = corim.clone();
            bad[i] ^= 0x01;
            serde_json::json!({ "name": format!("byte {i} flipped"), "corim": hex::encode(bad) })
        })
        .collect();
    let input = serde_json::json!({
        "public_key": { "x": hex::encode(&point.as_bytes()[1..49]), "y": hex::encode(&point.as_bytes()[49..]) },
        "corim": hex::encode(&corim),
        "signer": "Example Corp",
        "expected": {
            "snp": [snp, igvm_snp], "tdx": [mrtd], "policy_value": "0000030000000000", "policy_mask": "0000ff0300000000",
            "valid_days": 30, "sbom": sbom,
        },
        "igvm": { "document": hex::encode(document), "signature": hex::encode(signature), "digest": igvm_snp },
        "must_fail": must_fail,
    });
    let checked = twi_testkit::tools::corim_check(&input);
    let report = String::from_utf8_lossy(&checked.stdout);
    assert!(checked.status.success(), "{report}{}", String::from_utf8_lossy(&checked.stderr));
    assert!(report.contains(&format!("refused all {} altered CoRIMs", corim.len())), "{report}");

    // Unsigned without a key, and said so; the IGVM file then carries no CoRIM.
    let unsigned = dir.path().join("unsigned");
    let args = ["build", "--out", path(&unsigned), "--state", path(&b.state), "--runtime-elf", path(&elf)];
    let log = twi(&args);
    assert!(String::from_utf8_lossy(&log.stderr).contains("reference-values.corim UNSIGNED"), "{log:?}");
    let bare = std::fs::read(unsigned.join("reference-values.corim")).unwrap();
    assert_eq!(&bare[..3], [0xd9, 0x01, 0xf5], "tag 501: a tagged-unsigned-corim-map");
    let file = igvm::IgvmFile::new_from_binary(&std::fs::read(unsigned.join("twi.igvm")).unwrap(), None).unwrap();
    assert!(!file.initializations().iter().any(|h| matches!(h, igvm::IgvmInitializationHeader::CorimDocument { .. })));
}

/// `twi policy add-image --corim-key PUB` reads the build's signed CoRIM instead of the JSON:
/// the entries it adds are the JSON's (same labels, measurements, policy bits, host profiles,
/// SBOM) but for the JSON's `admit = false` listings of host profiles not asked for, which a
/// CoRIM (reference values only) does not state; the SBOM is stored the same. `--corim FILE`
/// names the file; a CoRIM under another key, or one altered, is refused and the policy is left
/// as it was; `--corim` alone is refused by the parser.
#[test]
fn add_image_from_the_signed_corim_adds_the_same_entries_as_from_the_json() {
    use p384::pkcs8::{EncodePrivateKey, EncodePublicKey};
    let b = builds();
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("image");
    let key = |seed: u8, name: &str| {
        let secret = p384::SecretKey::from_slice(&[seed; 48]).unwrap();
        let (private, public) = (dir.path().join(format!("{name}.pem")), dir.path().join(format!("{name}.pub.pem")));
        std::fs::write(&private, secret.to_pkcs8_pem(Default::default()).unwrap().as_bytes()).unwrap();
        std::fs::write(&public, secret.public_key().to_public_key_pem(Default::default()).unwrap()).unwrap();
        (private, public)
    };
    let ((signing, public), (_, other)) = (key(9, "corim-key"), key(10, "other"));
    let elf = b.a.join("twi-runtime.elf");
    let args = ["build", "--out", path(&image), "--state", path(&b.state), "--runtime-elf", path(&elf)];
    let profiles = ["--host-profile", "amd-snp-legacy,linux-6.11", "--corim-key", path(&signing)];
    ok(twi(&[&args[..], &profiles].concat()), "twi build --corim-key --host-profile");

    let add = |name: &str, extra: &[&str]| {
        let sub = dir.path().join(name);
        std::fs::create_dir_all(&sub).unwrap();
        let policy = sub.join("policy.toml");
        std::fs::write(&policy, "version = \"1\"\ntrust_domain = \"example.org\"\n").unwrap();
        let out = twi(&[&["policy", "add-image", path(&policy), path(&image), "--workload", "w"][..], extra].concat());
        (policy, out)
    };
    let entries = |policy: &Path| {
        let text: toml::Table = toml::from_str(&std::fs::read_to_string(policy).unwrap()).unwrap();
        text["workload"][0]["reference"].as_array().unwrap().clone()
    };
    let (from_json, out) = add("json", &[]);
    ok(out, "twi policy add-image (JSON)");
    let (from_corim, out) = add("corim", &["--corim-key", path(&public)]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(out, "twi policy add-image --corim-key");
    assert!(said.contains("reference-values.corim: signature verified"), "{said}");
    let (json, corim) = (entries(&from_json), entries(&from_corim));
    let admitted: Vec<_> =
        json.iter().filter(|e| e.get("admit").and_then(|a| a.as_bool()) != Some(false)).cloned().collect();
    assert_eq!(json.len(), admitted.len() + 1, "one host profile listed with admit = false: {json:?}");
    assert_eq!(corim, admitted, "the CoRIM's entries differ from the JSON's");
    let platforms: Vec<_> = corim.iter().map(|e| e["platform"].as_str().unwrap()).collect();
    assert_eq!(platforms, ["sim-snp", "snp", "snp", "snp", "sim-tdx", "tdx"]);
    assert!(corim.iter().all(|e| e["sbom"].as_str().is_some_and(|d| d.starts_with("sha384:"))), "{corim:?}");
    let stored = |policy: &Path| std::fs::read_dir(policy.with_file_name("sboms")).unwrap().count();
    assert_eq!((stored(&from_json), stored(&from_corim)), (1, 1));

    // --corim FILE, elsewhere.
    let moved = dir.path().join("elsewhere.corim");
    std::fs::copy(image.join("reference-values.corim"), &moved).unwrap();
    let (named, out) = add("named", &["--corim", path(&moved), "--corim-key", path(&public)]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{said}");
    assert_eq!(entries(&named), corim);
    // Another key; an altered CoRIM; --corim without a key.
    let (refused, out) = add("other-key", &["--corim-key", path(&other)]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success() && said.contains("the signature does not verify"), "{said}");
    assert!(!std::fs::read_to_string(&refused).unwrap().contains("[[workload"), "a refused CoRIM edited the policy");
    let mut altered = std::fs::read(&moved).unwrap();
    let at = altered.len() - 200;
    altered[at] ^= 0x01;
    std::fs::write(&moved, altered).unwrap();
    let (_, out) = add("altered", &["--corim", path(&moved), "--corim-key", path(&public)]);
    assert!(!out.status.success(), "an altered CoRIM was read");
    let (_, out) = add("no-key", &["--corim", path(&moved)]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success() && said.contains("--corim-key"), "{said}");
}

/// `twi build --issuer-policy FILE`: the trust files publish the WIT key of the policy's
/// `wit_alg` (ES256: the P-256 key) with no --wit-alg; a --wit-alg that contradicts the policy
/// is refused before anything is built, naming both.
#[test]
fn build_takes_the_wit_algorithm_from_the_issuer_policy() {
    let b = builds();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "version = \"1\"\ntrust_domain = \"example.org\"\nwit_alg = \"ES256\"\n").unwrap();
    let (out, refused) = (dir.path().join("es256"), dir.path().join("refused"));
    let elf = b.a.join("twi-runtime.elf");
    let build = |out: &Path, extra: &[&str]| {
        let args = ["build", "--out", path(out), "--state", path(&b.state), "--runtime-elf", path(&elf)];
        twi(&[&args[..], &["--issuer-policy", path(&policy)], extra].concat())
    };
    ok(build(&out, &[]), "twi build --issuer-policy");
    let jwks: Value = serde_json::from_slice(&std::fs::read(out.join("issuer-jwks.json")).unwrap()).unwrap();
    let wit = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == "twi-wit-es256");
    assert_eq!(wit.map(|k| (&k["alg"], &k["crv"])), Some((&"ES256".into(), &"P-256".into())), "{jwks}");
    let bundle: Value = serde_json::from_slice(&std::fs::read(out.join("trust-bundle.json")).unwrap()).unwrap();
    assert!(bundle.to_string().contains("twi-wit-es256"), "{bundle}");
    ok(build(&dir.path().join("agreeing"), &["--wit-alg", "ES256"]), "twi build --wit-alg ES256 --issuer-policy");
    let out = build(&refused, &["--wit-alg", "ES384"]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "a contradicting --wit-alg was taken");
    assert!(said.contains("--wit-alg ES384 contradicts") && said.contains("whose wit_alg is \"ES256\""), "{said}");
    assert!(!refused.exists(), "the refused build wrote {}", refused.display());
}

/// The SEV-SNP CoRIM document and signature headers of an IGVM file, read with the igvm crate.
fn igvm_corim(bytes: &[u8]) -> (Vec<u8>, Vec<u8>) {
    use igvm::IgvmInitializationHeader::{CorimDocument, CorimSignature};
    let file = igvm::IgvmFile::new_from_binary(bytes, None).expect("the igvm crate reads the file");
    let snp = twi_host_loader::igvm::SNP_MASK;
    let document = file.initializations().iter().find_map(|h| match h {
        CorimDocument { compatibility_mask, document } if *compatibility_mask == snp => Some(document.clone()),
        _ => None,
    });
    let signature = file.initializations().iter().find_map(|h| match h {
        CorimSignature { compatibility_mask, signature } if *compatibility_mask == snp => Some(signature.clone()),
        _ => None,
    });
    (document.expect("a CoRIM document header"), signature.expect("a CoRIM signature header"))
}

/// A P-384 key pair as `openssl` makes it in `dir`: (`NAME-key.pem`, `NAME.pub.pem`).
fn openssl_p384(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (private, public) = (dir.join(format!("{name}-key.pem")), dir.join(format!("{name}.pub.pem")));
    let args = ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", path(&private)];
    twi_testkit::tools::assert_ok(&twi_testkit::tools::openssl(&args), "openssl genpkey");
    let args = ["pkey", "-in", path(&private), "-pubout", "-out", path(&public)];
    twi_testkit::tools::assert_ok(&twi_testkit::tools::openssl(&args), "openssl pkey -pubout");
    (private, public)
}

/// Issues, in process, under the policy at `policy` to a simulated SEV-SNP chip (under `dir`)
/// launched with the image whose reference values are in `image`.
fn issue_for_image(dir: &Path, policy: &Path, image: &Path) -> Result<twi_issuer::Issued, twi_issuer::Rejection> {
    use p384::elliptic_curve::Generate;
    use twi_issuer::{CredentialRequest, Evidence, EvidenceBundle, Issuer, IssuerConfig};
    use twi_proto::msg::{CredentialKind, Platform};
    let launch = hex::decode(reference(image)["snp"]["launch_digest"].as_str().unwrap()).unwrap();
    let measurement: [u8; 48] = launch.try_into().unwrap();
    std::fs::create_dir_all(dir.join("chip")).unwrap();
    let mut psp = twi_sim::snp::SimPsp::load_or_create(&dir.join("chip")).unwrap();
    psp.set_launch_digest(measurement);
    let config = IssuerConfig { trust_domain: "example.org".into(), sim_snp_root: Some(psp.root().clone()) };
    let policy = twi_issuer::policy::Policy::load(policy).unwrap();
    let issuer = Issuer::open(&dir.join("issuer"), config, policy).unwrap();
    let target = twi_testkit::tacra::TARGET;
    let nonce = issuer.initiate(Platform::SimSnp, &measurement, target, CredentialKind::X509, None).unwrap().nonce;
    let key = p384::ecdsa::SigningKey::try_generate().unwrap();
    let public = key.verifying_key().to_sec1_point(false).as_bytes().to_vec();
    let (report_data, csr) = twi_testkit::tacra::enroll(&key, &nonce, &issuer.rp_id(), target);
    let (report, endorsements) = (psp.report(report_data, 0), psp.endorsements().unwrap());
    let bundle = EvidenceBundle {
        platform: Platform::SimSnp,
        evidence: &report,
        public_key: &public,
        nonce: &nonce,
        endorsements: &endorsements,
        target,
        csr: Some(&csr),
    };
    issuer.ca_credential(CredentialRequest::Evidence { evidence: Evidence { bundle, events: &[] }, renewal_of: None })
}

/// Issue 16: a vendor's signed statement as users make and check it. `twi vendor sign` signs
/// over a build's SBOM (its workload component: the runtime ELF); `twi build --runtime-elf` of
/// the same ELF with `--attach` lists and measures it, and keeps it in attached/; `twi policy
/// add-image` stores it beside the policy; an issuer whose policy names the vendor key admits the
/// launch, recording the statement, and refuses the build without it.
#[test]
fn a_vendor_statement_signed_over_a_build_is_attached_stored_and_checked_at_issuance() {
    let b = builds();
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = openssl_p384(dir.path(), "vendor");
    let statement = dir.path().join("vendor.cose");
    let sign = ["vendor", "sign", "--key", path(&key), "--name", "Example Corp", "--sbom", path(&b.a)];
    ok(twi(&[&sign[..], &["--out", path(&statement)]].concat()), "twi vendor sign");
    let image = dir.path().join("vendored");
    let elf = b.a.join("twi-runtime.elf");
    let build = ["build", "--out", path(&image), "--state", path(&b.state), "--runtime-elf", path(&elf)];
    ok(twi(&[&build[..], &["--attach", path(&statement)]].concat()), "twi build --attach");
    assert_eq!(std::fs::read(image.join("attached/vendor.cose")).unwrap(), std::fs::read(&statement).unwrap());

    let policy = dir.path().join("policy.toml");
    let demands =
        format!("vendor = \"Example Corp\"\nvendor_key = \"{}\"", public.file_name().unwrap().to_str().unwrap());
    let text = format!(
        "version = \"1\"\ntrust_domain = \"example.org\"\n\n[[workload]]\nid = \"w\"\nmechanism = \"c\"\n\n[workload.provenance]\n{demands}\n"
    );
    std::fs::write(&policy, text).unwrap();
    for image in [&image, &b.a] {
        ok(twi(&["policy", "add-image", path(&policy), path(image), "--workload", "w"]), "twi policy add-image");
    }
    let issued = issue_for_image(&dir.path().join("with"), &policy, &image).unwrap();
    let credential = dir.path().join("credential.pem");
    std::fs::write(&credential, &issued.certificate_pem).unwrap();
    let checks = issued.admission.provenance.unwrap().checks;
    assert!(
        checks.iter().any(|c| c.starts_with("vendor statement: vendor.cose (\"Example Corp\"), key ")),
        "{checks:?}"
    );
    // `twi provenance show` lists the statement from the policy's store, digest checked, with
    // what it claims and its key.
    let state = dir.path().join("with");
    let out = twi(&["provenance", "show", path(&credential), "--state", path(&state), "--policy", path(&policy)]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "twi provenance show: {}", String::from_utf8_lossy(&out.stderr));
    let digest = twi_issuer::policy::SbomDigest::of(&std::fs::read(&statement).unwrap());
    let line = format!("attached: vendor.cose ({digest}): ");
    let line = shown.lines().find(|l| l.starts_with(&line)).unwrap_or_else(|| panic!("{line:?} missing:\n{shown}"));
    assert!(line.contains("digest checked: a vendor statement by \"Example Corp\" for "), "{line}");
    let refused = issue_for_image(&dir.path().join("without"), &policy, &b.a).unwrap_err().to_string();
    assert!(refused.contains("the SBOM lists no attached statement"), "{refused}");

    // The signer refuses what it cannot vouch for, in one sentence.
    let out = twi(&[&sign[..4], &["--name", " ", "--sbom", path(&b.a), "--out", path(&statement)]].concat());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--name is empty"), "{out:?}");
    let out = twi(&[
        "vendor",
        "sign",
        "--key",
        path(&public),
        "--name",
        "V",
        "--sbom",
        path(&b.a),
        "--out",
        path(&statement),
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a P-384 private key in PEM"), "{out:?}");
}
