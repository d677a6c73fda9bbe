//! `twi verify` as a user runs it: one JSON object on stdout, exit 0 verified, 1 rejected,
//! 2 bad usage or unreadable input.
//!
//! It reads the real vendor samples from `tests/data` (`PROVENANCE.md` there names each
//! file's source, commit and licence): SEV-SNP reports from virtee/sev (s1),
//! google/go-sev-guest (s2) and confidential-containers/trustee (s4), with AMD's chains as
//! google/go-sev-guest publishes them.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use twi_testkit::samples::path as sample;

const NOW: &str = "2025-06-01T00:00:00Z";

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

/// Azure's THIM endpoint serves VCEK + ASK + ARK in one PEM file: that file alone is
/// `--vcek`, whatever its order, a certificate twice. The verdict names what it used.
#[test]
fn snp_report_with_a_thim_bundle_as_vcek() {
    use sha2::Digest;
    let pem = |der: &[u8]| der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der).unwrap();
    let vcek = std::fs::read(sample("snp/s1_virtee_milan_v2/vcek_milan.der")).unwrap();
    let chain = std::fs::read_to_string(sample("snp/s1_virtee_milan_v2/cert_chain_milan")).unwrap();
    let bundle = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bundle.path(), format!("{chain}{}{}", pem(&vcek), pem(&vcek))).unwrap();
    let report = p(&sample("snp/s1_virtee_milan_v2/report_milan.bin")).to_string();
    let args = vec![report.clone(), "--vcek".into(), p(bundle.path()).into(), "--now".into(), NOW.into()];
    let (code, out) = run_snp(&[], args);
    assert_eq!(code, 0, "{out:#}");
    let used = out["certificates"].as_array().unwrap();
    assert_eq!(used.len(), 3, "{out:#}");
    assert!(used[0]["subject"].as_str().unwrap().contains("SEV-VCEK"), "{out:#}");
    assert_eq!(used[0]["sha256"], hex::encode(sha2::Sha256::digest(&vcek)));
    assert!(used[2]["subject"].as_str().unwrap().contains("ARK-Milan"), "{out:#}");
    assert_eq!(out["unused_certificates"], serde_json::json!([]));
    // The chain alone is no VCEK: the reason says so and names the file.
    let only_chain = p(&sample("snp/s1_virtee_milan_v2/cert_chain_milan")).to_string();
    let (code, out) = run_snp(&[], vec![report, "--vcek".into(), only_chain.clone(), "--now".into(), NOW.into()]);
    assert_eq!(code, 1, "{out:#}");
    let reason = out["reason"].as_str().unwrap();
    assert!(reason.contains("no certificate supplied verifies the report's signature"), "{reason}");
    assert!(reason.contains(&only_chain), "{reason}");
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
    // The PCK path it used, leaf to root, and nothing behind the newest TCB level.
    let used = out["certificates"].as_array().unwrap();
    assert_eq!(used.len(), 3, "{out:#}");
    assert!(used[0]["subject"].as_str().unwrap().contains("Intel SGX PCK Certificate"), "{out:#}");
    assert_eq!(used[0]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(out["tcb"]["behind"], serde_json::json!([]));
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
    // ...with the date it expired on (the TCB info's nextUpdate) and where fresh comes from.
    assert!(out["reason"].as_str().unwrap().contains("TCB info is not current: it expired on 2023-07-18"), "{out:#}");
    assert!(out["reason"].as_str().unwrap().contains("--pccs"), "{out:#}");

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

/// A Google Cloud TD's quote with its firmware's CC event log (the ACPI CCEL table's log area):
/// the log's 43 records replay to the quote's four RTMRs; a log altered in one digest, or cut
/// short, is refused naming the register; a log that cannot be read is bad input.
#[test]
fn tdx_quote_with_its_cc_event_log() {
    let t8 = sample("tdx/t8_gcp_v4_ccel/cos-113-tdx-quote.dat");
    let log = sample("tdx/t8_gcp_v4_ccel/ccel_data.dat");
    let base = [p(&t8), "--now", "2025-01-01T00:00:00Z", "--skip-tcb", "--event-log"];
    let (code, out) = run_tdx(&[&base[..], &[p(&log)]].concat());
    assert_eq!(code, 0, "{out:#}");
    let events = out["event_log"]["events"].as_array().unwrap();
    assert_eq!(events.len(), 43);
    assert_eq!(out["event_log"]["rtmr_match"], serde_json::json!([true, true, true, true]));
    assert_eq!(out["event_log"]["replayed"], out["rtmrs"]);
    assert!(events.iter().any(|e| e["name"] == "EV_EFI_PLATFORM_FIRMWARE_BLOB2" && e["register"] == "RTMR0"));

    let bytes = std::fs::read(&log).unwrap();
    let altered = tempfile::NamedTempFile::new().unwrap();
    let mut flipped = bytes.clone();
    flipped[0x4a + 20] ^= 1; // a byte of the first extended event's SHA-384 digest (RTMR0)
    std::fs::write(altered.path(), &flipped).unwrap();
    let (code, out) = run_tdx(&[&base[..], &[p(altered.path())]].concat());
    assert_eq!(code, 1, "{out:#}");
    assert_eq!(out["verified"], false);
    assert!(out["reason"].as_str().unwrap().starts_with("the quote's RTMR0 is "), "{out:#}");

    std::fs::write(altered.path(), &bytes[..0x4a + 30]).unwrap();
    let (code, out) = run_tdx(&[&base[..], &[p(altered.path())]].concat());
    assert_eq!(code, 1, "{out:#}");
    assert!(out["reason"].as_str().unwrap().starts_with("the CC event log does not replay"), "{out:#}");

    let (code, out) = run_tdx(&[&base[..], &["/nonexistent/ccel"]].concat());
    assert_eq!(code, 2, "{out:#}");
    assert!(out["reason"].as_str().unwrap().contains("/nonexistent/ccel"), "{out:#}");
}

#[test]
fn tdx_bad_usage_and_unreadable_input() {
    let t8 = sample("tdx/t8_gcp_v4_ccel/cos-113-tdx-quote.dat");
    // A PCCS that cannot be reached: exit 2, naming the request that failed.
    let (code, out) = run_tdx(&[p(&t8), "--pccs", "http://127.0.0.1:1"]);
    assert_eq!(code, 2);
    let reason = out["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("--pccs: GET http://127.0.0.1:1/tdx/certification/v4/tcb?fmspc=00806f050000 failed"),
        "{reason}"
    );
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

// ---------------------------------------------------------------------------------------
// Explicit network fetches (--fetch, --pccs), against a local stand-in for AMD KDS and Intel
// PCS that serves the real samples at the services' paths. The network beyond package
// registries is closed here; the services' URL layouts are what the test pins.

/// What a stand-in service answers: status, headers, body.
type Reply = (u16, Vec<(String, String)>, Vec<u8>);

/// A one-thread HTTP/1.1 server on 127.0.0.1 answering each request line's target through
/// `route`, and recording the targets it was asked for.
struct Service {
    base: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Service {
    fn start(route: impl Fn(&str) -> Reply + Send + 'static) -> Self {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                // Skip the request headers.
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                    header.clear();
                }
                let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                seen.lock().unwrap().push(target.clone());
                let (status, headers, body) = route(&target);
                let mut head =
                    format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
                for (name, value) in headers {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                head.push_str("\r\n");
                let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&body));
            }
        });
        Self { base, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn not_found() -> Reply {
    (404, vec![], b"not found".to_vec())
}

fn url_encoded(pem: &str) -> String {
    pem.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn snp_report_fetches_from_kds_into_the_cache_then_runs_offline() {
    let chip = "d49554ec717f4e5b0fe6b143bcf0405bd7ae304727edf46603f2a76aef6a3abc15d7af38db757039029f0efacfd08e244324884738c72b082e2f87a44d541eb6";
    let vcek = std::fs::read(sample("snp/s1_virtee_milan_v2/vcek_milan.der")).unwrap();
    let chain = std::fs::read(sample("snp/s1_virtee_milan_v2/cert_chain_milan")).unwrap();
    let vcek_target = format!("/vcek/v1/Milan/{chip}?blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=115");
    let kds = {
        let vcek_target = vcek_target.clone();
        Service::start(move |target| match target {
            t if t == vcek_target => (200, vec![], vcek.clone()),
            "/vcek/v1/Milan/cert_chain" => (200, vec![], chain.clone()),
            _ => not_found(),
        })
    };
    let cache = tempfile::tempdir().unwrap();
    let report = p(&sample("snp/s1_virtee_milan_v2/report_milan.bin")).to_string();
    let args = vec![report, "--vcek-cache".into(), p(cache.path()).into(), "--now".into(), NOW.into()];

    let (code, out) = run_snp(&["--fetch", "--kds-url", &kds.base], args.clone());
    assert_eq!(code, 0, "{out:#}");
    assert_eq!(out["verified"], true);
    // The v2 report does not name its product: Milan was asked first and answered.
    assert_eq!(kds.requests(), [vcek_target.as_str(), "/vcek/v1/Milan/cert_chain"]);
    assert!(cache.path().join(format!("Milan/{chip}/0300000000000873.der")).is_file());
    assert!(cache.path().join("Milan/cert_chain.pem").is_file());

    // The cache now holds what was fetched: the same verdict without the network.
    let (code, offline) = run_snp(&[], args.clone());
    assert_eq!(code, 0, "{offline:#}");
    assert_eq!(offline["measurement"], out["measurement"]);

    // A service that knows nothing: exit 2, naming what was asked and the answer.
    let empty = Service::start(|_| not_found());
    let fresh = tempfile::tempdir().unwrap();
    let mut args = args;
    args[2] = p(fresh.path()).into();
    let (code, out) = run_snp(&["--fetch", "--kds-url", &empty.base], args.clone());
    assert_eq!(code, 2, "{out:#}");
    let reason = out["reason"].as_str().unwrap();
    assert!(reason.starts_with("--fetch: no VCEK from KDS: GET http://127.0.0.1:"), "{reason}");
    assert!(reason.contains(&format!("/vcek/v1/Milan/{chip}?blSPL=03")) && reason.contains("HTTP 404"), "{reason}");
    assert!(reason.contains("/vcek/v1/Turin/"), "every product was tried: {reason}");
    // A service that answers garbage: nothing is cached.
    let garbage = Service::start(|_| (200, vec![], b"<html>maintenance</html>".to_vec()));
    let (code, out) = run_snp(&["--fetch", "--kds-url", &garbage.base], args);
    assert_eq!(code, 2, "{out:#}");
    assert!(out["reason"].as_str().unwrap().contains("not a DER certificate"), "{out:#}");
    assert_eq!(std::fs::read_dir(fresh.path()).unwrap().flatten().filter(|e| e.path().is_file()).count(), 0);
}

#[test]
fn tdx_quote_fetches_collateral_from_a_pccs() {
    let collateral: Value =
        serde_json::from_slice(&std::fs::read(sample("tdx/t1_dcapqvl_v4/tdx_quote_collateral.json")).unwrap()).unwrap();
    let field = |name: &str| collateral[name].as_str().unwrap().to_string();
    // The PCS responses the collateral file was assembled from: signed JSON bodies, issuer
    // chains in URL-encoded headers, CRLs.
    let tcb_body = format!(r#"{{"tcbInfo":{},"signature":"{}"}}"#, field("tcb_info"), field("tcb_info_signature"));
    let qe_body =
        format!(r#"{{"enclaveIdentity":{},"signature":"{}"}}"#, field("qe_identity"), field("qe_identity_signature"));
    let pcs = {
        let (tcb_chain, qe_chain, crl_chain) = (
            url_encoded(&field("tcb_info_issuer_chain")),
            url_encoded(&field("qe_identity_issuer_chain")),
            url_encoded(&field("pck_crl_issuer_chain")),
        );
        let (pck_crl, root_crl) = (field("pck_crl"), field("root_ca_crl"));
        Service::start(move |target| match target {
            "/tdx/certification/v4/tcb?fmspc=b0c06f000000" => {
                (200, vec![("TCB-Info-Issuer-Chain".into(), tcb_chain.clone())], tcb_body.clone().into_bytes())
            }
            "/tdx/certification/v4/qe/identity" => (
                200,
                vec![("SGX-Enclave-Identity-Issuer-Chain".into(), qe_chain.clone())],
                qe_body.clone().into_bytes(),
            ),
            "/sgx/certification/v4/pckcrl?ca=platform&encoding=der" => {
                (200, vec![("SGX-PCK-CRL-Issuer-Chain".into(), crl_chain.clone())], pck_crl.clone().into_bytes())
            }
            "/sgx/certification/v4/rootcacrl" => (200, vec![], root_crl.clone().into_bytes()),
            _ => not_found(),
        })
    };
    let quote = sample("tdx/t1_dcapqvl_v4/tdx_quote");
    let keep = tempfile::tempdir().unwrap();
    let kept = keep.path().join("collateral");
    let now = "2025-07-01T00:00:00Z";
    let (code, out) = run_tdx(&[p(&quote), "--pccs", &pcs.base, "--collateral", p(&kept), "--now", now]);
    assert_eq!(code, 0, "{out:#}");
    assert_eq!(out["verified"], true);
    assert_eq!(out["tcb"]["status"], "UpToDate");
    assert_eq!(pcs.requests().len(), 4, "{:?}", pcs.requests());
    // The same verdict as from the collateral file, and again offline from what was kept.
    let (_, from_file) = run_tdx(&[p(&quote), "--collateral", p(&sample("tdx/t1_dcapqvl_v4")), "--now", now]);
    assert_eq!(out["tcb"], from_file["tcb"]);
    let (code, offline) = run_tdx(&[p(&quote), "--collateral", p(&kept), "--now", now]);
    assert_eq!(code, 0, "{offline:#}");
    assert_eq!(offline["tcb"], out["tcb"]);

    // A PCS without the root CA CRL endpoint (Intel's own): verified, with a warning saying
    // where to get it.
    let without_root_crl = {
        let inner = pcs.base.clone();
        Service::start(move |target| {
            if target == "/sgx/certification/v4/rootcacrl" {
                return not_found();
            }
            // Relay everything else to the full stand-in.
            let mut response = ureq_free_get(&format!("{inner}{target}"));
            response.1.retain(|(name, _)| name.ends_with("Chain"));
            response
        })
    };
    let (code, out) = run_tdx(&[p(&quote), "--pccs", &without_root_crl.base, "--now", now]);
    assert_eq!(code, 0, "{out:#}");
    let warnings = out["warnings"].to_string();
    assert!(warnings.contains("IntelSGXRootCA.der"), "{warnings}");

    // A PCCS that does not know the platform: exit 2 with the URL and status.
    let empty = Service::start(|_| not_found());
    let (code, out) = run_tdx(&[p(&quote), "--pccs", &empty.base, "--now", now]);
    assert_eq!(code, 2, "{out:#}");
    let reason = out["reason"].as_str().unwrap();
    assert!(reason.contains("/tdx/certification/v4/tcb?fmspc=b0c06f000000 answered HTTP 404"), "{reason}");
}

/// A minimal HTTP GET over std (the relay in the test above), returning status, headers, body.
fn ureq_free_get(url: &str) -> Reply {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, target) = rest.split_at(rest.find('/').unwrap());
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(stream, "GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let headers =
        lines.filter_map(|l| l.split_once(": ")).map(|(name, value)| (name.to_string(), value.to_string())).collect();
    (status, headers, raw[split + 4..].to_vec())
}
