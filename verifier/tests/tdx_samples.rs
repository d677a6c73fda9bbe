//! The TDX verifier against quotes that real Intel TDX hardware produced, with Intel's
//! collateral for them.
//!
//! Samples (read at run time from `tests/data`; `provenance.json`
//! there pins each file's sha256, checked below):
//! * t1 — Phala-Network/dcap-qvl `sample/tdx_quote` with `sample/tdx_quote_collateral.json`
//!   (dcap-qvl's JSON collateral, 2025): verifies, TCB UpToDate;
//! * t3 — google/go-tdx-guest `testing/testdata/tdx_prod_quote_SPR_E4.dat` with the PCS TCB
//!   info, QE identity, CRLs and issuer chains of its test data (2023): signatures verify, no
//!   TCB level matches (a pre-production part);
//! * t8 — google/go-tdx-guest `testing/testdata/ccel/cos-113-tdx-quote.dat` (Google Cloud), no
//!   collateral: signatures and chain verify;
//! * the Intel SGX Root CA — dcap-qvl `src/TrustedRootCA.der`, go-tdx-guest
//!   `verify/trusted_root.pem`.
//!
//! `expected.json` (an independent verifier's results) gives the fields and verdicts compared.
//! All collateral has expired: each test passes a time inside its validity windows.

mod common;

use common::{at, expected, flipped, on_all_cores, provenance, read, samples};
use twi_verifier::chain::{Cert, ChainError};
use twi_verifier::tdx::{Collateral, TcbError, appraise, appraise_with, split_pck_chain};
use twi_verifier::tdx::{
    INTEL_SGX_ROOT_CA_SPKI_SHA384, TcbStatus, TdxAnchor, TdxConfig, TdxError, TdxPolicy, TdxTrust, TdxWarning,
    VerifiedCollateral,
};

const T1: &str = "tdx/t1_dcapqvl_v4/tdx_quote";
const T1_COLLATERAL: &str = "tdx/t1_dcapqvl_v4/tdx_quote_collateral.json";
/// Inside the t1 collateral's windows (TCB info 2025-06-19..07-19, PCK CRL 06-19..07-19).
const T1_NOW: &str = "2025-07-01T00:00:00Z";
const T3: &str = "tdx/t3_gotdxguest_v4/tdx_prod_quote_SPR_E4.dat";
const T3_DIR: &str = "tdx/t3_gotdxguest_v4";
/// Inside the t3 collateral's windows (TCB info 2023-06-18..07-18, QE identity 06-08..07-08).
const T3_NOW: &str = "2023-06-20T00:00:00Z";
const T8: &str = "tdx/t8_gcp_v4_ccel/cos-113-tdx-quote.dat";
/// The t8 PCK certificate is valid from 2024-07-02.
const T8_NOW: &str = "2025-01-01T00:00:00Z";

fn t1_collateral() -> VerifiedCollateral {
    let c = Collateral::load(&samples().join(T1_COLLATERAL), None).unwrap();
    c.verify(&TdxTrust::intel(), at(T1_NOW)).unwrap_or_else(|e| panic!("t1 collateral: {e}"))
}

fn t3_collateral() -> Collateral {
    Collateral::load(&samples().join(T3_DIR), None).unwrap_or_else(|e| panic!("{e}"))
}

fn signatures_only() -> TdxConfig {
    TdxConfig { policy: TdxPolicy { skip_tcb: true, ..TdxPolicy::default() }, ..TdxConfig::default() }
}

#[test]
fn samples_are_the_published_files() {
    for file in [
        T1,
        T1_COLLATERAL,
        T3,
        T8,
        "tdx/certs/Intel_SGX_Root_CA.der",
        "tdx/certs/trusted_root.pem",
        "tdx/t3_gotdxguest_v4/sample_tcbInfo_response",
        "tdx/t3_gotdxguest_v4/sample_qeIdentity_response",
        "tdx/t3_gotdxguest_v4/pckcrl",
        "tdx/t3_gotdxguest_v4/rootcrl.der",
        "tdx/t3_gotdxguest_v4/tcb_info_issuer_chain.pem",
        "tdx/t3_gotdxguest_v4/pck_crl_issuer_chain.pem",
    ] {
        provenance(file);
    }
}

/// The built-in pin is the SHA-384 of the Intel SGX Root CA's public key, and that root
/// is the one every sample chain ends in.
#[test]
fn built_in_root_is_intels() {
    let der = Cert::from_der(&read("tdx/certs/Intel_SGX_Root_CA.der"), "root").unwrap();
    let pem = twi_verifier::chain::split_certificates(&read("tdx/certs/trusted_root.pem")).unwrap();
    assert_eq!(pem[0], der.der());
    assert_eq!(der.spki_sha384(), INTEL_SGX_ROOT_CA_SPKI_SHA384);
    assert_eq!(TdxTrust::intel().anchor(&der), Some(&TdxAnchor::Intel));
    twi_verifier::chain::check_root(&der, at(T1_NOW)).unwrap();
    for q in [T1, T3, T8] {
        let bytes = read(q);
        let parsed = twi_attester::tdx::quote::ParsedQuote::parse(&bytes).unwrap();
        let chain = split_pck_chain(parsed.quote.pck_chain).unwrap();
        assert_eq!(chain.len(), 3);
        assert_eq!(chain[2], der, "{q}");
    }
}

#[test]
fn t1_verifies_up_to_date() {
    let want = &expected()["tdx"]["t1"];
    let a = appraise(&read(T1), Some(&t1_collateral()), &TdxConfig::default(), at(T1_NOW))
        .unwrap_or_else(|e| panic!("t1 rejected: {e}"));
    let tcb = a.tcb.as_ref().unwrap();
    let c = &want["tcb"]["c_dcapqvl_t1"];
    assert_eq!(tcb.status.name(), c["final"]);
    assert_eq!(tcb.platform.name(), c["platform"]);
    assert_eq!(tcb.module.map(|m| m.name()), c["module"].as_str());
    assert_eq!(tcb.qe.name(), c["qe"]);
    assert_eq!(tcb.platform_tcb_date, c["platform_tcbDate"]);
    assert!(tcb.advisory_ids.is_empty() && c["advisory_ids"].as_array().unwrap().is_empty());
    assert_eq!(tcb.fmspc, want["pck"]["fmspc"]);
    let collateral = &expected()["tdx"]["_collateral"]["c_dcapqvl_t1"];
    assert_eq!(tcb.tcb_evaluation_data_number, collateral["tcbEvaluationDataNumber"]);
    assert_eq!(a.anchor, TdxAnchor::Intel);
    // CRLs were supplied and checked; the 70 zero bytes after the quote were ignored.
    assert_eq!(a.warnings, [TdxWarning::TrailingBytes(70)]);
    check_pck_and_fields("t1", &a);
}

fn check_pck_and_fields(key: &str, a: &twi_verifier::tdx::TdxAppraisal) {
    let want = &expected()["tdx"][key];
    let p = &want["pck"];
    assert_eq!(hex::encode(a.pck.cpu_svn), p["cpusvn"], "{key}");
    assert_eq!(hex::encode(a.pck.fmspc), p["fmspc"], "{key}");
    assert_eq!(hex::encode(a.pck.pce_id), p["pceid"], "{key}");
    assert_eq!(a.pck.pce_svn, p["pcesvn"], "{key}");
    assert_eq!(a.pck.sgx_type, p["sgx_type"], "{key}");
    let comps: Vec<u8> = serde_json::from_value(p["sgx_tcb_comp_svn"].clone()).unwrap();
    assert_eq!(a.pck.sgx_tcb_components[..], comps[..], "{key}");
    assert_eq!(hex::encode(a.body.mr_td), want["td"]["mrtd"], "{key}");
    assert_eq!(hex::encode(a.body.report_data), want["td"]["report_data"], "{key}");
    assert_eq!(hex::encode(a.body.tee_tcb_svn), want["td"]["tee_tcb_svn"], "{key}");
    for i in 0..4 {
        assert_eq!(hex::encode(a.body.rtmr[i]), want["td"][format!("rtmr{i}")], "{key}");
    }
    assert_eq!(a.qe_report.isv_svn, want["qe_report"]["isvsvn"], "{key}");
    // Each check the independent verifier made holds here too (they all passed above).
    for (check, value) in want["checks"].as_object().unwrap() {
        assert_eq!(value, true, "{key}: {check}");
    }
}

#[test]
fn t3_signatures_verify_but_no_tcb_level_matches() {
    let want = &expected()["tdx"]["t3"]["tcb"]["c_gotdx_2023"];
    assert_eq!(want["platform"], "NoMatchingTcbLevel");
    let collateral = t3_collateral();
    assert!(collateral.pck_crl.is_some() && collateral.root_ca_crl.is_some());
    let e = appraise_with(&read(T3), Some(&collateral), &TdxConfig::default(), at(T3_NOW)).unwrap_err();
    match &e {
        TdxError::Tcb(TcbError::NoMatchingTcbLevel { evaluation_data_number, sgx, pce_svn, .. }) => {
            assert_eq!(*evaluation_data_number, 15);
            assert_eq!(sgx, "03030202020100020000000000000000");
            assert_eq!(*pce_svn, 11);
        }
        other => panic!("t3: {other}"),
    }
    assert!(e.to_string().contains("no TCB level of the TCB info"), "{e}");
    // The TCB is the only problem: without collateral the signatures and chain verify.
    let a = appraise(&read(T3), None, &signatures_only(), at(T3_NOW)).unwrap();
    assert!(a.warnings.contains(&TdxWarning::TcbNotEvaluated));
    assert_eq!(a.warnings.last(), Some(&TdxWarning::TrailingBytes(39)));
    check_pck_and_fields("t3", &a);
}

#[test]
fn t8_signatures_verify_without_collateral() {
    let e = appraise(&read(T8), None, &TdxConfig::default(), at(T8_NOW)).unwrap_err();
    match &e {
        TdxError::NoCollateral { fmspc, url } => {
            assert_eq!(fmspc, "00806f050000");
            assert!(url.ends_with("/tdx/certification/v4/tcb?fmspc=00806f050000"));
        }
        other => panic!("{other}"),
    }
    let a = appraise(&read(T8), None, &signatures_only(), at(T8_NOW)).unwrap();
    assert!(a.tcb.is_none());
    assert!(a.warnings.contains(&TdxWarning::RevocationNotChecked));
    check_pck_and_fields("t8", &a);
}

/// The t3 directory loads as raw PCS responses; the t1 directory finds its dcap-qvl JSON.
#[test]
fn collateral_directories() {
    let c = Collateral::load(&samples().join("tdx/t1_dcapqvl_v4"), None).unwrap();
    assert!(c.source.ends_with("tdx_quote_collateral.json"), "{}", c.source);
    let c = t3_collateral();
    assert_eq!(c.tcb_info_chain.len(), 2);
    assert_eq!(c.tcb_info_chain[0].common_name(), "Intel SGX TCB Signing");
    // A per-FMSPC subdirectory is preferred.
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("50806f000000");
    std::fs::create_dir(&sub).unwrap();
    for f in ["sample_tcbInfo_response", "sample_qeIdentity_response", "tcb_info_issuer_chain.pem"] {
        std::fs::copy(samples().join(T3_DIR).join(f), sub.join(f)).unwrap();
    }
    let c = Collateral::load(dir.path(), Some(&[0x50, 0x80, 0x6f, 0, 0, 0])).unwrap();
    assert!(c.pck_crl.is_none());
    c.verify(&TdxTrust::intel(), at(T3_NOW)).unwrap();
}

#[test]
fn collateral_validity_windows() {
    let c = Collateral::load(&samples().join(T1_COLLATERAL), None).unwrap();
    for (when, what) in [("2025-06-19T10:20:00Z", "QE identity"), ("2025-07-19T10:20:00Z", "TCB info")] {
        match c.verify(&TdxTrust::intel(), at(when)) {
            Err(TdxError::CollateralNotCurrent { what: w, .. }) => assert_eq!(w, what, "{when}"),
            other => panic!("{when}: {other:?}"),
        }
    }
    let e = c.verify(&TdxTrust::intel(), at("2026-01-01T00:00:00Z")).unwrap_err();
    assert!(e.to_string().contains("fetch current collateral"), "{e}");
    // Inside the TCB info's window but after the PCK CRL's next update.
    let c3 = t3_collateral();
    let verified =
        VerifiedCollateral { tcb_info: t1_collateral().tcb_info, ..c3.verify(&TdxTrust::intel(), at(T3_NOW)).unwrap() };
    let e = appraise(&read(T3), Some(&verified), &TdxConfig::default(), at("2023-07-09T00:00:00Z")).unwrap_err();
    assert!(matches!(e, TdxError::PckChain(ChainError::CrlNotCurrent { .. })), "{e}");
}

#[test]
fn wrong_root_and_wrong_collateral() {
    // A deployment that trusts another root.
    let ark = twi_verifier::chain::split_certificates(&read("snp/certs/ask_ark_milan.pem")).unwrap();
    let trust = TdxTrust::from_pem(&ark[1]).unwrap();
    let e = appraise(&read(T8), None, &TdxConfig { trust, policy: signatures_only().policy }, at(T8_NOW)).unwrap_err();
    assert!(matches!(e, TdxError::PckChain(ChainError::UntrustedRoot { .. })), "{e}");
    // The t1 collateral is for another platform than t8's.
    let e = appraise(&read(T8), Some(&t1_collateral()), &TdxConfig::default(), at(T1_NOW)).unwrap_err();
    assert!(
        matches!(e, TdxError::PckChain(ChainError::CrlUnrelated { .. }) | TdxError::Tcb(TcbError::Fmspc { .. })),
        "{e}"
    );
    let no_crls = VerifiedCollateral { pck_crl: None, root_ca_crl: None, ..t1_collateral() };
    let e = appraise(&read(T8), Some(&no_crls), &TdxConfig::default(), at(T1_NOW)).unwrap_err();
    match e {
        TdxError::Tcb(TcbError::Fmspc { collateral, pck }) => {
            assert_eq!((collateral.as_str(), pck.as_str()), ("b0c06f000000", "00806f050000"))
        }
        other => panic!("{other}"),
    }
}

/// The named negative cases of expected.json.
#[test]
fn expected_negative_cases() {
    let t1c = t1_collateral();
    for (key, file, collateral, config, now) in [
        ("t1", T1, Some(&t1c), TdxConfig::default(), T1_NOW),
        ("t3", T3, None, signatures_only(), T3_NOW),
        ("t8", T8, None, signatures_only(), T8_NOW),
    ] {
        let bytes = read(file);
        let verdict = |b: &[u8]| appraise(b, collateral, &config, at(now));
        verdict(&bytes).unwrap_or_else(|e| panic!("{key}: {e}"));
        let layout = &expected()["tdx"][key]["layout"];
        for (case, value) in expected()["tdx"][key]["negative"].as_object().unwrap() {
            assert_eq!(value, true);
            if case.starts_with("flip a trailing byte") {
                let end = layout["quote_end"].as_u64().unwrap() as usize;
                verdict(&flipped(&bytes, end)).unwrap_or_else(|e| panic!("{key}: {case}: {e}"));
                continue;
            }
            let offset: usize = case
                .split("offset ")
                .nth(1)
                .and_then(|s| s.trim_end_matches(|c: char| !c.is_ascii_digit()).split(')').next())
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("{key}: no offset in {case:?}"));
            assert!(verdict(&flipped(&bytes, offset)).is_err(), "{key}: {case}: accepted");
        }
    }
}

/// Every byte of every quote, flipped one at a time (header, body, signatures, attestation
/// key, QE report, QE auth data, every length and type, every byte of the PEM chain): each
/// flip is rejected. Every byte after the quote (t8's 3065-byte tail: all at once) is still
/// accepted. The collateral is verified once and reused.
#[test]
fn every_quote_byte_flip() {
    let t1c = t1_collateral();
    for (key, file, collateral, config, now) in [
        ("t1", T1, Some(&t1c), TdxConfig::default(), T1_NOW),
        ("t3", T3, None, signatures_only(), T3_NOW),
        ("t8", T8, None, signatures_only(), T8_NOW),
    ] {
        let bytes = read(file);
        let end = appraise(&bytes, collateral, &config, at(now)).unwrap().quote_len;
        let tail = if bytes.len() - end > 100 { end..end + 1 } else { end..bytes.len() };
        let offsets: Vec<usize> = (0..end).chain(tail).collect();
        let mut other_tail = bytes.clone();
        other_tail[end..].fill(0xA5);
        appraise(&other_tail, collateral, &config, at(now)).unwrap_or_else(|e| panic!("{key}: another tail: {e}"));
        on_all_cores(&offsets, |&i| {
            let verdict = appraise(&flipped(&bytes, i), collateral, &config, at(now));
            if i < end {
                assert!(verdict.is_err(), "{key}: flipping byte {i} of the quote went unnoticed");
            } else {
                verdict.unwrap_or_else(|e| panic!("{key}: flipping trailing byte {i} changed the verdict: {e}"));
            }
        });
    }
}

/// Every byte of the signed collateral (TCB info and QE identity bodies and signatures, the
/// TCB Signing chain, both CRLs) flipped: the collateral, or the quote with it, is rejected.
#[test]
fn every_collateral_byte_flip() {
    let base = Collateral::load(&samples().join(T1_COLLATERAL), None).unwrap();
    let quote = read(T1);
    let now = at(T1_NOW);
    let trust = TdxTrust::intel();
    let mut jobs: Vec<Collateral> = Vec::new();
    for i in 0..base.tcb_info.body.len() {
        let mut c = base.clone();
        c.tcb_info.body = flipped(&c.tcb_info.body, i);
        jobs.push(c);
    }
    for i in 0..base.qe_identity.body.len() {
        let mut c = base.clone();
        c.qe_identity.body = flipped(&c.qe_identity.body, i);
        jobs.push(c);
    }
    for i in 0..64 {
        let mut c = base.clone();
        c.tcb_info.signature[i] ^= 1 << (i % 8);
        jobs.push(c.clone());
        let mut c = base.clone();
        c.qe_identity.signature[i] ^= 1 << (i % 8);
        jobs.push(c);
    }
    let leaf = base.tcb_info_chain[0].der().to_vec();
    for i in 0..leaf.len() {
        if let Ok(cert) = Cert::from_der(&flipped(&leaf, i), "flipped") {
            let mut c = base.clone();
            c.tcb_info_chain[0] = cert.clone();
            c.qe_identity_chain[0] = cert;
            jobs.push(c);
        }
    }
    for (which, crl) in [(0, base.pck_crl.clone().unwrap()), (1, base.root_ca_crl.clone().unwrap())] {
        for i in 0..crl.der().len() {
            if let Ok(bad) = twi_verifier::chain::Crl::from_der(&flipped(crl.der(), i), "flipped") {
                let mut c = base.clone();
                if which == 0 {
                    c.pck_crl = Some(bad);
                } else {
                    c.root_ca_crl = Some(bad);
                }
                jobs.push(c);
            }
        }
    }
    assert!(jobs.len() > 5000, "{}", jobs.len());
    on_all_cores(&jobs, |c| {
        let ok = c.verify(&trust, now).and_then(|v| appraise(&quote, Some(&v), &TdxConfig::default(), now));
        assert!(ok.is_err(), "a flipped collateral byte went unnoticed");
    });
}

#[test]
fn truncated_and_oversized_quotes() {
    let bytes = read(T8);
    let config = signatures_only();
    let end = appraise(&bytes, None, &config, at(T8_NOW)).unwrap().quote_len;
    for cut in (0..end).step_by(7).chain([end - 1]) {
        let e = appraise(&bytes[..cut], None, &config, at(T8_NOW)).unwrap_err();
        assert!(matches!(e, TdxError::Malformed(_)), "{cut}: {e}");
    }
    let e = appraise(&[], None, &config, at(T8_NOW)).unwrap_err();
    assert!(e.to_string().starts_with("the quote is malformed: the quote is truncated"), "{e}");
    let mut huge = bytes[..end].to_vec();
    huge.resize(8 << 20, 0);
    let a = appraise(&huge, None, &config, at(T8_NOW)).unwrap();
    assert_eq!(a.warnings.last(), Some(&TdxWarning::TrailingBytes((8 << 20) - end)));
}

#[test]
fn policy_on_the_td() {
    let t1c = t1_collateral();
    let bytes = read(T1);
    let with =
        |policy: TdxPolicy| appraise(&bytes, Some(&t1c), &TdxConfig { policy, ..TdxConfig::default() }, at(T1_NOW));
    let want = &expected()["tdx"]["t1"]["td"];
    let mrtd: [u8; 48] = hex::decode(want["mrtd"].as_str().unwrap()).unwrap().try_into().unwrap();
    let rtmr0: [u8; 48] = hex::decode(want["rtmr0"].as_str().unwrap()).unwrap().try_into().unwrap();
    with(TdxPolicy { mr_td: Some(mrtd), rtmr: [Some(rtmr0), None, None, None], ..TdxPolicy::default() }).unwrap();
    let e = with(TdxPolicy { mr_td: Some([0; 48]), ..TdxPolicy::default() }).unwrap_err();
    assert!(e.to_string().starts_with(&format!("MRTD is {}, not the expected 0000", hex::encode(mrtd))), "{e}");
    let e = with(TdxPolicy { rtmr: [None, None, None, Some([1; 48])], ..TdxPolicy::default() }).unwrap_err();
    assert!(matches!(e, TdxError::Mismatch { what: "RTMR3", .. }), "{e}");
    let e = with(TdxPolicy { report_data: Some([0; 64]), ..TdxPolicy::default() }).unwrap_err();
    assert!(matches!(e, TdxError::Mismatch { what: "REPORTDATA", .. }), "{e}");
    // Accepting only UpToDate still accepts t1; accepting nothing refuses it with advice.
    with(TdxPolicy { accepted: vec![TcbStatus::UpToDate], ..TdxPolicy::default() }).unwrap();
    let e = with(TdxPolicy { accepted: vec![], ..TdxPolicy::default() }).unwrap_err();
    assert!(e.to_string().contains("TCB status is UpToDate"), "{e}");
}

/// Phala's dcap-qvl (pure Rust, RustCrypto backend) gives the same verdicts on the same
/// samples and collateral.
#[test]
fn same_verdicts_as_dcap_qvl() {
    let now_secs = |t: &str| at(t).duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let qvl_collateral: dcap_qvl::QuoteCollateralV3 = serde_json::from_slice(&read(T1_COLLATERAL)).unwrap();
    let quote = read(T1);
    let theirs = dcap_qvl::verify::rustcrypto::verify(&quote, &qvl_collateral, now_secs(T1_NOW))
        .unwrap_or_else(|e| panic!("dcap-qvl rejects t1: {e:#}"));
    let ours = appraise(&quote, Some(&t1_collateral()), &TdxConfig::default(), at(T1_NOW)).unwrap();
    assert_eq!(theirs.status, ours.tcb.as_ref().unwrap().status.name());
    assert_eq!(theirs.advisory_ids, ours.tcb.unwrap().advisory_ids);
    // A flipped signed byte, a flipped QE report byte, a flipped PEM byte: both reject.
    for offset in [28, 184, 631, 700, 770, 1090, 1154, 1220, 1458] {
        let bad = flipped(&quote, offset);
        assert!(dcap_qvl::verify::rustcrypto::verify(&bad, &qvl_collateral, now_secs(T1_NOW)).is_err(), "{offset}");
        assert!(appraise(&bad, Some(&t1_collateral()), &TdxConfig::default(), at(T1_NOW)).is_err(), "{offset}");
    }
    // Expired collateral: both reject.
    assert!(dcap_qvl::verify::rustcrypto::verify(&quote, &qvl_collateral, now_secs("2026-01-01T00:00:00Z")).is_err());
    // t3 with its 2023 collateral, converted to dcap-qvl's form: both find no TCB level.
    let dir = samples().join(T3_DIR);
    let tcb: serde_json::Value = serde_json::from_slice(&read(&format!("{T3_DIR}/sample_tcbInfo_response"))).unwrap();
    let qe: serde_json::Value = serde_json::from_slice(&read(&format!("{T3_DIR}/sample_qeIdentity_response"))).unwrap();
    let raw = |file: &str, key: &str| -> String {
        let text = String::from_utf8(read(&format!("{T3_DIR}/{file}"))).unwrap();
        let start = text.find(&format!("\"{key}\":")).unwrap() + key.len() + 3;
        let end = text.rfind(",\"signature\"").unwrap();
        text[start..end].to_string()
    };
    let t3_qvl = dcap_qvl::QuoteCollateralV3 {
        pck_crl_issuer_chain: String::from_utf8(std::fs::read(dir.join("pck_crl_issuer_chain.pem")).unwrap()).unwrap(),
        root_ca_crl: std::fs::read(dir.join("rootcrl.der")).unwrap(),
        pck_crl: std::fs::read(dir.join("pckcrl")).unwrap(),
        tcb_info_issuer_chain: String::from_utf8(std::fs::read(dir.join("tcb_info_issuer_chain.pem")).unwrap())
            .unwrap(),
        tcb_info: raw("sample_tcbInfo_response", "tcbInfo"),
        tcb_info_signature: hex::decode(tcb["signature"].as_str().unwrap()).unwrap(),
        qe_identity_issuer_chain: String::from_utf8(std::fs::read(dir.join("tcb_info_issuer_chain.pem")).unwrap())
            .unwrap(),
        qe_identity: raw("sample_qeIdentity_response", "enclaveIdentity"),
        qe_identity_signature: hex::decode(qe["signature"].as_str().unwrap()).unwrap(),
        pck_certificate_chain: None,
    };
    let theirs = dcap_qvl::verify::rustcrypto::verify(&read(T3), &t3_qvl, now_secs(T3_NOW));
    let e = theirs.expect_err("dcap-qvl accepts t3");
    assert!(format!("{e:#}").contains("No matching TCB level"), "{e:#}");
    assert!(matches!(
        appraise_with(&read(T3), Some(&t3_collateral()), &TdxConfig::default(), at(T3_NOW)),
        Err(TdxError::Tcb(TcbError::NoMatchingTcbLevel { .. }))
    ));
}

/// Through the common interface ([`Verifier`]): t1 gives the [`Verified`] fields an issuer
/// reads, equal to expected.json's; the 70 bytes after the quote are not part of the digest;
/// t1's RTMRs are not explained by an empty event log; a refusal keeps its reason.
#[test]
fn the_tdx_verifier_behind_the_common_interface() {
    use sha2::Digest;
    use twi_verifier::tdx::TdxVerifier;
    use twi_verifier::{Rejection, Tcb, Tee, Verifier};
    let want = &expected()["tdx"]["t1"];
    let quote = read(T1);
    let collateral = Collateral::load(&samples().join(T1_COLLATERAL), None).unwrap();
    let verifier: Box<dyn Verifier> = Box::new(TdxVerifier::new(TdxConfig::default(), Some(collateral.clone())));
    assert_eq!(verifier.tee(), Tee::Tdx);
    let v = verifier.verify(&quote, &[], at(T1_NOW)).unwrap_or_else(|e| panic!("t1: {e}"));
    assert_eq!((v.tee, v.simulated, v.vmpl, v.debug), (Tee::Tdx, false, None, false));
    assert_eq!(v.anchor, "Intel SGX Root CA (built in)");
    assert_eq!(hex::encode(v.measurement), want["td"]["mrtd"]);
    assert_eq!(hex::encode(v.report_data), want["td"]["report_data"]);
    let a = v.tdx().unwrap();
    assert_eq!(v.platform_id, a.pck.ppid);
    assert_eq!(hex::encode(v.policy.to_le_bytes()), want["td"]["td_attributes"]);
    match &v.tcb {
        Tcb::Tdx { tee_tcb_svn, verdict: Some(verdict) } => {
            assert_eq!(hex::encode(tee_tcb_svn), want["td"]["tee_tcb_svn"]);
            assert_eq!(verdict.status, TcbStatus::UpToDate);
        }
        other => panic!("{other:?}"),
    }
    let quote_end = want["layout"]["quote_end"].as_u64().unwrap() as usize;
    assert_eq!(quote.len() - quote_end, 70);
    assert_eq!(v.evidence_sha384, <[u8; 48]>::from(sha2::Sha384::digest(&quote[..quote_end])));
    assert!(v.snp().is_none());
    assert_eq!(v.warnings(), ["70 bytes after the end of the quote were ignored"]);
    // t1's firmware extended its RTMRs: without its log they are unexplained.
    let first = (0..4).find(|i| want["td"][format!("rtmr{i}")].as_str().unwrap().bytes().any(|b| b != b'0')).unwrap();
    let e = v.check_event_log(&[]).unwrap_err();
    let named = format!("the quote's RTMR{first} (expected: the event log's replay)");
    assert!(e.to_string().contains(&named), "{e}");

    // A TD whose MRTD is not the one the policy pins.
    let pinned =
        TdxConfig { policy: TdxPolicy { mr_td: Some([0; 48]), ..TdxPolicy::default() }, ..TdxConfig::default() };
    let e = TdxVerifier::new(pinned, Some(collateral)).verify(&quote, &[], at(T1_NOW)).unwrap_err();
    assert!(matches!(e, Rejection::Tdx(TdxError::Mismatch { what: "MRTD", .. })), "{e}");
    assert!(e.to_string().starts_with("TDX quote rejected: MRTD is "), "{e}");
    // No collateral, and the policy does not allow that.
    let e = TdxVerifier::new(TdxConfig::default(), None).verify(&quote, &[], at(T1_NOW)).unwrap_err();
    assert!(matches!(e, Rejection::Tdx(TdxError::NoCollateral { .. })), "{e}");
}

/// Issue 14 item 9: the verifier keeps what it verified — the collateral while it is current,
/// and the PCK path with its CRLs under the hash of their bytes — so the second appraisal of a
/// quote from the same platform reuses them; the quote's own signatures are still checked (a
/// forged quote is refused), and past the collateral's next update everything is verified
/// again and refused.
#[test]
fn a_verified_pck_path_and_collateral_are_reused_while_current() {
    use twi_verifier::Verifier;
    use twi_verifier::tdx::TdxVerifier;
    let quote = read(T1);
    let collateral = Collateral::load(&samples().join(T1_COLLATERAL), None).unwrap();
    let verifier = TdxVerifier::new(TdxConfig::default(), Some(collateral));
    let first = verifier.verify(&quote, &[], at(T1_NOW)).unwrap();
    assert_eq!(verifier.cached_chain_hits(), 0);
    let second = verifier.verify(&quote, &[], at(T1_NOW)).unwrap();
    assert_eq!(verifier.cached_chain_hits(), 1, "the second appraisal reused the verified PCK path");
    assert_eq!(verifier.cached_collateral_hits(), 1, "and the verified collateral");
    assert_eq!((first.anchor, first.measurement), (second.anchor, second.measurement));
    // A clone shares what was kept.
    verifier.clone().verify(&quote, &[], at(T1_NOW)).unwrap();
    assert_eq!(verifier.cached_chain_hits(), 2);
    let mut forged = quote.clone();
    forged[48 + 200] ^= 1; // a byte of the TD body: the quote's signature no longer verifies
    let e = verifier.verify(&forged, &[], at(T1_NOW)).unwrap_err();
    assert!(e.to_string().contains("signature"), "a kept path never skips the quote's own signature: {e}");
    // Long after the collateral's next update: verified again, and refused as not current.
    let later = at(T1_NOW) + std::time::Duration::from_secs(5 * 365 * 24 * 3600);
    let e = verifier.verify(&quote, &[], later).unwrap_err();
    assert!(e.to_string().contains("not current") || e.to_string().contains("not valid"), "{e}");
}
