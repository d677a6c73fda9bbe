//! `twi verify` as a user runs it: one JSON object on stdout, exit 0 verified, 1 rejected,
//! 2 bad usage or unreadable input.
//!
//! It reads the real vendor samples from `../shared/samples` (never copied into the
//! repository; see `provenance.json` there): SEV-SNP reports from virtee/sev (s1),
//! google/go-sev-guest (s2) and confidential-containers/trustee (s4), with AMD's chains as
//! google/go-sev-guest publishes them.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/samples");
const NOW: &str = "2025-06-01T00:00:00Z";

fn sample(rel: &str) -> PathBuf {
    let dir = Path::new(SAMPLES);
    assert!(
        dir.join("expected.json").is_file(),
        "real vendor samples are missing: looked for {} (expected.json inside it); they live outside the repository",
        dir.display()
    );
    dir.join(rel)
}

/// Runs `twi verify ARGS`; returns the exit code and the parsed stdout.
fn twi(args: &[&str]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_twi")).arg("verify").args(args).output().unwrap();
    let code = out.status.code().expect("exited");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let json: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("stdout is not one JSON object ({e}): {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr))
    });
    assert!(json.is_object(), "{json}");
    (code, json)
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn s1_args() -> Vec<String> {
    vec![
        p(&sample("snp/s1_virtee_milan_v2/report_milan.hex")).into(),
        "--vcek".into(),
        p(&sample("snp/s1_virtee_milan_v2/vcek_milan.der")).into(),
        "--chain".into(),
        p(&sample("snp/s1_virtee_milan_v2/cert_chain_milan")).into(),
        "--now".into(),
        NOW.into(),
    ]
}

fn run_snp(extra: &[&str], base: Vec<String>) -> (i32, Value) {
    let mut args = vec!["snp-report".to_string()];
    args.extend(base);
    args.extend(extra.iter().map(|s| s.to_string()));
    twi(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn snp_report_verified() {
    let (code, out) = run_snp(&[], s1_args());
    assert_eq!(code, 0, "{out:#}");
    assert_eq!(out["verified"], true);
    assert_eq!(out["tee"], "sev-snp");
    assert_eq!(
        out["measurement"],
        "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f"
    );
    assert!(out["report_data"].as_str().unwrap().starts_with("d447b55d"));
    assert_eq!(out["tcb"]["reported"]["hex"], "0300000000000873");
    assert_eq!(out["tcb"]["reported"]["microcode"], 115);
    assert_eq!(out["signer"], "VCEK");
    assert_eq!(out["product"], "Milan");
    assert_eq!(out["root"], "AMD ARK-Milan (built in)");
    assert!(out["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().contains("CRL")));
    assert!(out.get("reason").is_none());
}

#[test]
fn snp_report_rejected_with_a_reason() {
    let s2 = |extra: &[&str]| {
        run_snp(
            extra,
            vec![
                p(&sample("snp/s2_gosevguest_milan_v2/attestation.bin")).into(),
                "--vcek".into(),
                p(&sample("snp/s2_gosevguest_milan_v2/vcek.testcer")).into(),
                "--chain".into(),
                p(&sample("snp/certs/ask_ark_milan.pem")).into(),
                "--now".into(),
                NOW.into(),
            ],
        )
    };
    let (code, out) = s2(&[]);
    assert_eq!(code, 1);
    assert_eq!(out["verified"], false);
    assert!(out["reason"].as_str().unwrap().contains("allows debugging"), "{out:#}");
    // The fields are still shown, so the person can see what was rejected.
    assert!(out["measurement"].as_str().unwrap().starts_with("b07af962"));
    assert_eq!(s2(&["--allow-debug"]).0, 0);

    // Expectations.
    let (code, out) = run_snp(&["--measurement", &"00".repeat(48)], s1_args());
    assert_eq!(code, 1);
    assert!(out["reason"].as_str().unwrap().contains("launch measurement"), "{out:#}");
    let (code, out) = run_snp(&["--vmpl", "1"], s1_args());
    assert_eq!(code, 1);
    assert!(out["reason"].as_str().unwrap().contains("VMPL0, not VMPL1"), "{out:#}");

    // The VLEK, today expired.
    let (code, out) = run_snp(
        &[],
        vec![
            p(&sample("snp/s4_trustee_milan_vlek_v3/test-vlek-report.bin")).into(),
            "--vcek".into(),
            p(&sample("snp/s4_trustee_milan_vlek_v3/test-vlek.der")).into(),
            "--chain".into(),
            p(&sample("snp/certs/asvk_ark_milan_vlek.pem")).into(),
            "--now".into(),
            "2026-01-01T00:00:00Z".into(),
        ],
    );
    assert_eq!(code, 1);
    let reason = out["reason"].as_str().unwrap();
    assert!(reason.contains("SEV-VLEK") && reason.contains("not valid at the verification time"), "{reason}");

    // Trusting only the Genoa ARK.
    let genoa = tempfile::NamedTempFile::new().unwrap();
    let chain = std::fs::read_to_string(sample("snp/certs/ask_ark_genoa.pem")).unwrap();
    let ark = &chain[chain.rfind("-----BEGIN").unwrap()..];
    std::fs::write(genoa.path(), ark).unwrap();
    let (code, out) = run_snp(&["--ark", p(genoa.path())], s1_args());
    assert_eq!(code, 1);
    assert!(out["reason"].as_str().unwrap().contains("not a trusted root"), "{out:#}");

    // A truncated report: rejected as malformed.
    let short = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(short.path(), &std::fs::read(sample("snp/s2_gosevguest_milan_v2/attestation.bin")).unwrap()[..1000])
        .unwrap();
    let mut args = s1_args();
    args[0] = p(short.path()).into();
    let (code, out) = run_snp(&[], args);
    assert_eq!(code, 1);
    assert!(out["reason"].as_str().unwrap().contains("1000 bytes, expected 1184"), "{out:#}");
}

#[test]
fn snp_report_from_the_vcek_cache() {
    let cache = tempfile::tempdir().unwrap();
    let (chip, tcb) = (
        "d49554ec717f4e5b0fe6b143bcf0405bd7ae304727edf46603f2a76aef6a3abc15d7af38db757039029f0efacfd08e244324884738c72b082e2f87a44d541eb6",
        "0300000000000873",
    );
    let report = p(&sample("snp/s1_virtee_milan_v2/report_milan.bin")).to_string();
    let cache_args = vec![report.clone(), "--vcek-cache".into(), p(cache.path()).into(), "--now".into(), NOW.into()];

    // Empty cache: says exactly which file to put where, exit 2.
    let (code, out) = run_snp(&[], cache_args.clone());
    assert_eq!(code, 2, "{out:#}");
    let reason = out["reason"].as_str().unwrap();
    assert!(reason.contains(&format!("Milan/{chip}/{tcb}.der")), "{reason}");
    assert!(reason.contains("https://kdsintf.amd.com/vcek/v1/Milan/"), "{reason}");
    let (code, out) = run_snp(&["--fetch"], cache_args.clone());
    assert_eq!(code, 2);
    assert!(out["reason"].as_str().unwrap().contains("not implemented"), "{out:#}");

    // Filled as documented: VCEK by chip and TCB, the product's chain beside it.
    let dir = cache.path().join("Milan").join(chip);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(sample("snp/s1_virtee_milan_v2/vcek_milan.der"), dir.join(format!("{tcb}.der"))).unwrap();
    // Without the chain, and a v2 report that does not name its product: the VCEK's
    // productName (Milan-B0) tells where to look, and the reason names the file.
    let (code, out) = run_snp(&[], cache_args.clone());
    assert_eq!(code, 2, "{out:#}");
    assert!(out["reason"].as_str().unwrap().contains("cert_chain.pem"), "{out:#}");
    std::fs::copy(sample("snp/certs/ask_ark_milan.pem"), cache.path().join("Milan/cert_chain.pem")).unwrap();
    let (code, out) = run_snp(&[], cache_args);
    assert_eq!(code, 0, "{out:#}");
    assert_eq!(out["verified"], true);
}

#[test]
fn bad_usage_and_unreadable_input() {
    let (code, out) = run_snp(&[], vec!["/nonexistent/report.bin".into()]);
    assert_eq!(code, 2);
    assert!(out["reason"].as_str().unwrap().contains("cannot read the report /nonexistent/report.bin"));
    let mut args = s1_args();
    args[6] = "yesterday".into();
    let (code, out) = run_snp(&[], args);
    assert_eq!(code, 2);
    assert!(out["reason"].as_str().unwrap().contains("RFC 3339"));
    let (code, out) = run_snp(&["--measurement", "abc"], s1_args());
    assert_eq!(code, 2);
    assert!(out["reason"].as_str().unwrap().contains("96 hex digits"));
    let mut args = s1_args();
    args[2] = p(&sample("README.md")).into(); // not a certificate
    let (code, out) = run_snp(&[], args);
    assert_eq!(code, 2, "{out:#}");
    // clap: an unknown flag.
    let out = Command::new(env!("CARGO_BIN_EXE_twi")).args(["verify", "snp-report", "--bogus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

// TDX quotes: Phala-Network/dcap-qvl's sample quote and collateral (t1), google/go-tdx-guest's
// SPR quote with its PCS collateral (t3) and its Google Cloud quote (t8).

fn run_tdx(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["tdx-quote"];
    all.extend(args);
    twi(&all)
}

#[test]
fn tdx_quote_verified() {
    let quote = sample("tdx/t1_dcapqvl_v4/tdx_quote");
    let dir = sample("tdx/t1_dcapqvl_v4");
    let (code, out) = run_tdx(&[p(&quote), "--collateral", p(&dir), "--now", "2025-07-01T00:00:00Z"]);
    assert_eq!(code, 0, "{out:#}");
    assert_eq!(out["verified"], true);
    assert_eq!(out["tee"], "tdx");
    assert_eq!(
        out["mrtd"],
        "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
    );
    assert_eq!(out["rtmrs"].as_array().unwrap().len(), 4);
    assert!(out["rtmrs"][0].as_str().unwrap().starts_with("44c0197b"));
    assert!(out["report_data"].as_str().unwrap().starts_with("9a9d48e7"));
    assert_eq!(out["tcb"]["status"], "UpToDate");
    assert_eq!(out["tcb"]["fmspc"], "b0c06f000000");
    assert_eq!(out["root"], "Intel SGX Root CA (built in)");
    // The JSON file itself works as --collateral too.
    let file = sample("tdx/t1_dcapqvl_v4/tdx_quote_collateral.json");
    let (code, _) = run_tdx(&[p(&quote), "--collateral", p(&file), "--now", "2025-07-01T00:00:00Z"]);
    assert_eq!(code, 0);
    // An expectation that does not hold.
    let (code, out) =
        run_tdx(&[p(&quote), "--collateral", p(&file), "--now", "2025-07-01T00:00:00Z", "--rtmr3", &"11".repeat(48)]);
    assert_eq!(code, 1);
    assert!(out["reason"].as_str().unwrap().starts_with("RTMR3 is 0000"), "{out:#}");
}

#[test]
fn tdx_quote_rejected_with_a_reason() {
    let t3 = sample("tdx/t3_gotdxguest_v4/tdx_prod_quote_SPR_E4.dat");
    let t3_dir = sample("tdx/t3_gotdxguest_v4");
    let (code, out) = run_tdx(&[p(&t3), "--collateral", p(&t3_dir), "--now", "2023-06-20T00:00:00Z"]);
    assert_eq!(code, 1, "{out:#}");
    assert!(out["reason"].as_str().unwrap().contains("no TCB level"), "{out:#}");
    assert_eq!(out["tcb"], Value::Null);
    assert_eq!(out["mrtd"].as_str().unwrap().len(), 96);
    // Expired collateral.
    let (code, out) = run_tdx(&[p(&t3), "--collateral", p(&t3_dir), "--now", "2023-08-01T00:00:00Z"]);
    assert_eq!(code, 1);
    assert!(out["reason"].as_str().unwrap().contains("not current"), "{out:#}");

    let t8 = sample("tdx/t8_gcp_v4_ccel/cos-113-tdx-quote.dat");
    let (code, out) = run_tdx(&[p(&t8), "--now", "2025-01-01T00:00:00Z"]);
    assert_eq!(code, 1);
    assert!(out["reason"].as_str().unwrap().contains("--skip-tcb"), "{out:#}");
    let (code, out) = run_tdx(&[p(&t8), "--now", "2025-01-01T00:00:00Z", "--skip-tcb"]);
    assert_eq!(code, 0, "{out:#}");
    assert_eq!(out["tcb"], Value::Null);
    assert!(out["warnings"][0].as_str().unwrap().contains("not evaluated"), "{out:#}");

    // A flipped byte of the TD report.
    let bad = tempfile::NamedTempFile::new().unwrap();
    let mut bytes = std::fs::read(&t8).unwrap();
    bytes[184] ^= 1;
    std::fs::write(bad.path(), &bytes).unwrap();
    let (code, out) = run_tdx(&[p(bad.path()), "--now", "2025-01-01T00:00:00Z", "--skip-tcb"]);
    assert_eq!(code, 1);
    assert!(out["reason"].as_str().unwrap().contains("quote's signature does not verify"), "{out:#}");
}

#[test]
fn tdx_bad_usage_and_unreadable_input() {
    let t8 = sample("tdx/t8_gcp_v4_ccel/cos-113-tdx-quote.dat");
    let (code, out) = run_tdx(&[p(&t8), "--pccs", "https://pccs.example:8081"]);
    assert_eq!(code, 2);
    let reason = out["reason"].as_str().unwrap();
    assert!(reason.contains("not implemented") && reason.contains("tcb?fmspc=00806f050000"), "{reason}");
    let (code, out) = run_tdx(&[p(&t8), "--collateral", "/nonexistent"]);
    assert_eq!(code, 2);
    assert!(out["reason"].as_str().unwrap().contains("/nonexistent"), "{out:#}");
    let (code, out) = run_tdx(&[p(&t8), "--accept", "Fine"]);
    assert_eq!(code, 2);
    assert!(out["reason"].as_str().unwrap().contains("not a TCB status"), "{out:#}");
    let (code, _) = run_tdx(&["/nonexistent/quote"]);
    assert_eq!(code, 2);
    // Not a quote at all: rejected as malformed.
    let (code, out) = run_tdx(&[p(&sample("README.md")), "--skip-tcb"]);
    assert_eq!(code, 1);
    assert!(out["reason"].as_str().unwrap().starts_with("the quote is malformed"), "{out:#}");
}
