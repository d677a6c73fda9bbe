//! Evidence as vendors and clouds ship it (issue 15 item 5), on the real samples of
//! `tests/data` (provenance there) and, where a signature must be made here, on the synthetic
//! PKIs:
//!
//! * certificate inputs in any arrangement: a PEM bundle shuffled with a duplicate (Azure's
//!   THIM serves VCEK + ASK + ARK in one file), DER alone or back to back; the verifier finds
//!   the certificate that signed the report, builds the path and names what it used;
//! * collateral lifecycle: expired TCB info and QE identity refused with the date they
//!   expired on; an out-of-date TCB reported per component;
//! * report versions: a newer version read by the fields the verifier knows, with a warning;
//!   an older one refused with the reason.
//!
//! Bundles are built here at run time from the pinned sample files (nothing derived is
//! committed).

mod common;
mod synthetic;

use common::{at, read, samples};
use der::EncodePem;
use der::pem::LineEnding;
use sha2::{Digest, Sha256};
use twi_attester::snp::report::offset;
use twi_verifier::bundle::{CertPool, UsedCertificate, read_certificates};
use twi_verifier::chain::{Cert, ChainError, split_certificates};
use twi_verifier::snp::{self, SnpConfig, SnpError, SnpPolicy, SnpTrust, SnpWarning};
use twi_verifier::tdx::tcb::{self, PlatformFacts, QeFacts};
use twi_verifier::tdx::{Collateral, PckExtensions, TcbStatus, TdxError, TdxPolicy, TdxTrust, TdxWarning};

const NOW: &str = "2025-06-01T00:00:00Z";
const S1_REPORT: &str = "snp/s1_virtee_milan_v2/report_milan.bin";
const S1_VCEK: &str = "snp/s1_virtee_milan_v2/vcek_milan.der";
const S1_CHAIN: &str = "snp/s1_virtee_milan_v2/cert_chain_milan";
const S4_REPORT: &str = "snp/s4_trustee_milan_vlek_v3/test-vlek-report.bin";
const S4_VLEK: &str = "snp/s4_trustee_milan_vlek_v3/test-vlek.der";
const S4_CHAIN: &str = "snp/certs/asvk_ark_milan_vlek.pem";
const T1: &str = "tdx/t1_dcapqvl_v4/tdx_quote";
const T1_COLLATERAL: &str = "tdx/t1_dcapqvl_v4/tdx_quote_collateral.json";
const T3_DIR: &str = "tdx/t3_gotdxguest_v4";

fn pem(der: &[u8]) -> String {
    der::pem::encode_string("CERTIFICATE", LineEnding::LF, der).unwrap()
}

/// s1's VCEK, ASK and ARK as DER, in that order.
fn s1_ders() -> [Vec<u8>; 3] {
    let chain = split_certificates(&read(S1_CHAIN)).unwrap();
    [read(S1_VCEK), chain[0].clone(), chain[1].clone()]
}

fn amd() -> SnpConfig {
    SnpConfig { trust: SnpTrust::amd(), policy: SnpPolicy::default() }
}

fn used(der: &[u8]) -> UsedCertificate {
    let cert = Cert::from_der(der, "sample").unwrap();
    UsedCertificate { subject: cert.subject(), sha256: hex::encode(Sha256::digest(der)) }
}

#[test]
fn shuffled_pem_bundle_with_a_duplicate() {
    let [vcek, ask, ark] = s1_ders();
    // As a THIM-style file: ARK, VCEK, ASK, and the VCEK again, with text around them.
    let bundle = format!("# from the host\n{}{}\n{}{}", pem(&ark), pem(&vcek), pem(&ask), pem(&vcek));
    let certs = read_certificates(bundle.as_bytes(), "the bundle").unwrap();
    assert_eq!(certs.len(), 3, "the duplicate VCEK is dropped");
    // In the order given, the chain does not hold (today's ordered reading)...
    let e = snp::appraise(&read(S1_REPORT), &certs, &[], &amd(), at(NOW)).unwrap_err();
    assert!(matches!(e.error, SnpError::Chain(_) | SnpError::VekNotP384(_)), "{e}");
    // ...built from the pool, it does, and the verdict names each certificate it used.
    let a = snp::appraise_bundle(&read(S1_REPORT), &CertPool::new(certs), &[], &amd(), at(NOW)).unwrap();
    assert_eq!(a.certificates, [used(&vcek), used(&ask), used(&ark)]);
    assert_eq!(a.chain, ["SEV-VCEK", "SEV-Milan", "ARK-Milan"]);
    assert!(a.certificates[0].to_string().contains(&hex::encode(Sha256::digest(&vcek))));
}

#[test]
fn der_inputs_alone_and_back_to_back() {
    let [vcek, ask, ark] = s1_ders();
    let one = read_certificates(&vcek, "VCEK").unwrap();
    assert_eq!(one.len(), 1);
    let joined = [ark.clone(), vcek.clone(), ask.clone(), ark.clone()].concat();
    let certs = read_certificates(&joined, "DER bundle").unwrap();
    assert_eq!(certs.len(), 3);
    let a = snp::appraise_bundle(&read(S1_REPORT), &CertPool::new(certs), &[], &amd(), at(NOW)).unwrap();
    assert_eq!(a.certificates, [used(&vcek), used(&ask), used(&ark)]);
    // A DER file cut short, or with bytes after the last certificate, is refused.
    assert!(read_certificates(&joined[..joined.len() - 1], "cut").is_err());
    assert!(read_certificates(&[vcek.as_slice(), b"\0"].concat(), "tail").is_err());
    // The VLEK sample the same way: DER leaf, PEM chain (ASVK, ARK) in reverse order.
    let chain = split_certificates(&read(S4_CHAIN)).unwrap();
    let mut pool = CertPool::new(read_certificates(&read(S4_VLEK), "VLEK").unwrap());
    for der in chain.iter().rev() {
        pool.add(Cert::from_der(der, "chain").unwrap());
    }
    let a = snp::appraise_bundle(&read(S4_REPORT), &pool, &[], &amd(), at(NOW)).unwrap();
    assert_eq!(a.chain, ["SEV-VLEK", "SEV-VLEK-Milan", "ARK-Milan"]);
}

#[test]
fn wrong_certificates_are_named() {
    let [_, ask, ark] = s1_ders();
    let cert = |der: &[u8]| Cert::from_der(der, "sample").unwrap();
    let report = read(S1_REPORT);
    // The chain without any leaf.
    let pool = CertPool::new([cert(&ask), cert(&ark)]);
    let e = snp::appraise_bundle(&report, &pool, &[], &amd(), at(NOW)).unwrap_err();
    assert!(matches!(e.error, SnpError::NoSigningCertificate { .. }), "{e}");
    assert!(e.to_string().contains("no certificate supplied verifies the report's signature"), "{e}");
    // Two leaves, neither the signer (another chip's VCEK, a VLEK): both named.
    let s2_vcek = cert(&read("snp/s2_gosevguest_milan_v2/vcek.testcer"));
    let pool = CertPool::new([s2_vcek.clone(), cert(&read(S4_VLEK)), cert(&ask), cert(&ark)]);
    let e = snp::appraise_bundle(&report, &pool, &[], &amd(), at(NOW)).unwrap_err();
    match &e.error {
        SnpError::NoSigningCertificate { checked } => assert_eq!(checked.len(), 4, "{checked:?}"),
        other => panic!("{other}"),
    }
    // One leaf that is not the signer: the appraisal says why (another chip).
    let pool = CertPool::new([s2_vcek, cert(&ask), cert(&ark)]);
    let e = snp::appraise_bundle(&report, &pool, &[], &amd(), at(NOW)).unwrap_err();
    assert!(matches!(e.error, SnpError::ChipMismatch { .. }), "{e}");
    assert!(matches!(read_certificates(b"", "the empty file"), Err(ChainError::NoCertificate(_))));
}

/// s4's REPORTED_TCB (microcode 217) is below its CURRENT_TCB (microcode 220): reported per
/// component, on the real report.
#[test]
fn snp_tcb_behind_per_component() {
    let a = snp::appraise_bundle(&read(S4_REPORT), &s4_pool(), &[], &amd(), at(NOW)).unwrap();
    assert_eq!(a.tcb_behind.len(), 1, "{:?}", a.tcb_behind);
    let lag = &a.tcb_behind[0];
    assert_eq!((lag.component.as_str(), lag.have, lag.newest, lag.behind()), ("microcode", 217, 220, 3));
    let warning = a.warnings.iter().find(|w| matches!(w, SnpWarning::TcbBehind(_))).unwrap();
    assert!(warning.to_string().contains("microcode 217 (newest 220, 3 behind)"), "{warning}");
    // s1 runs at the TCB it reports: nothing behind.
    let pool = CertPool::new(s1_ders().iter().map(|d| Cert::from_der(d, "s1").unwrap()));
    assert!(snp::appraise_bundle(&read(S1_REPORT), &pool, &[], &amd(), at(NOW)).unwrap().tcb_behind.is_empty());
}

fn s4_pool() -> CertPool {
    let mut certs = read_certificates(&read(S4_VLEK), "VLEK").unwrap();
    certs.extend(read_certificates(&read(S4_CHAIN), "chain").unwrap());
    CertPool::new(certs)
}

fn with_version(bytes: &[u8], version: u32) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[offset::VERSION..offset::VERSION + 4].copy_from_slice(&version.to_le_bytes());
    out
}

/// A real report with its version bumped: parsed by the known fields; the signature (over
/// the bumped bytes) no longer holds, and that — not the version — is the rejection.
#[test]
fn newer_report_version_of_a_real_report() {
    let original = read(S4_REPORT);
    let known = snp::parse_report(&original).unwrap();
    for version in [snp::NEWEST_REPORT_VERSION + 1, 9, u32::MAX] {
        let bumped = with_version(&original, version);
        let parsed = snp::parse_report(&bumped).unwrap_or_else(|e| panic!("v{version}: {e}"));
        assert_eq!(parsed.version, version);
        assert_eq!(parsed.to_bytes()[4..], known.to_bytes()[4..], "v{version}: every other field as before");
        let pool = s4_pool();
        let e = snp::appraise_bundle(&bumped, &pool, &[], &amd(), at(NOW)).unwrap_err();
        assert!(!e.to_string().contains("version"), "v{version}: refused for the version: {e}");
    }
}

/// A newer report version signed here: accepted, with a warning naming both versions.
#[test]
fn newer_report_version_signed_is_accepted_with_a_warning() {
    let (pki, vcek, tcb) = synthetic::amd::milan();
    let certs = [vcek.cert.clone(), pki.ask.cert.clone(), pki.ark.cert.clone()];
    let cfg = synthetic::amd::config(&pki.trust, SnpPolicy::default());
    let chip = synthetic::amd::chip_id(false);
    let bytes = synthetic::amd::sign(synthetic::amd::report(6, (0x19, 0x01), tcb, chip, 0), &vcek.key);
    let a = snp::appraise(&bytes, &certs, &[], &cfg, synthetic::amd::now()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a.report.version, 6);
    let w = SnpWarning::NewerReportVersion { version: 6, read_as: snp::NEWEST_REPORT_VERSION };
    assert!(a.warnings.contains(&w), "{:?}", a.warnings);
    assert!(w.to_string().contains("report version 6 is newer than this verifier knows"), "{w}");
    // Versions below 2 are refused, with the reason.
    for old in [0, 1] {
        let bytes = synthetic::amd::sign(synthetic::amd::report(old, (0x19, 0x01), tcb, chip, 0), &vcek.key);
        let e = snp::appraise(&bytes, &certs, &[], &cfg, synthetic::amd::now()).unwrap_err();
        assert_eq!(e.error, SnpError::OldReportVersion(old));
        assert!(e.to_string().contains("update the host's SEV firmware"), "{e}");
    }
}

#[test]
fn expired_collateral_is_refused_with_its_date() {
    let t1 = Collateral::load(&samples().join(T1_COLLATERAL), None).unwrap();
    let e = t1.verify(&TdxTrust::intel(), at("2025-08-01T00:00:00Z")).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("the TCB info is not current: it expired on 2025-07-19T10:16:03Z"), "{text}");
    assert!(text.contains("--pccs"), "{text}");
    // t3: its QE identity expires (2023-07-08) ten days before its TCB info (2023-07-18).
    let t3 = Collateral::load(&samples().join(T3_DIR), None).unwrap();
    let e = t3.verify(&TdxTrust::intel(), at("2023-07-10T00:00:00Z")).unwrap_err();
    assert!(matches!(e, TdxError::CollateralNotCurrent { what: "QE identity", expired: true, .. }), "{e}");
    assert!(e.to_string().contains("the QE identity is not current: it expired on 2023-07-08"), "{e}");
}

/// The real t1 quote judged against its real TCB info with a PCESVN one below the newest
/// level's: OutOfDate, and the verdict says by how much.
#[test]
fn out_of_date_tcb_reported_per_component() {
    let collateral = Collateral::load(&samples().join(T1_COLLATERAL), None).unwrap();
    let c = collateral.verify(&TdxTrust::intel(), at("2025-07-01T00:00:00Z")).unwrap();
    let bytes = read(T1);
    let parsed = twi_attester::tdx::quote::ParsedQuote::parse(&bytes).unwrap();
    let q = &parsed.quote;
    let pck = PckExtensions::parse(&twi_verifier::tdx::split_pck_chain(q.pck_chain).unwrap()[0]).unwrap();
    let qe_report = q.qe_report_body();
    let qe = QeFacts::of(&qe_report);
    let facts = |pce_svn| PlatformFacts {
        fmspc: pck.fmspc,
        pce_id: pck.pce_id,
        sgx_tcb_components: pck.sgx_tcb_components,
        pce_svn,
        tee_tcb_svn: &q.body.tee_tcb_svn,
        tee_tcb_svn_2: q.body.tee_tcb_svn_2.as_ref(),
        mr_signer_seam: &q.body.mr_signer_seam,
        seam_attributes: &q.body.seam_attributes,
    };
    let current = tcb::evaluate(&c.tcb_info, &c.qe_identity, &facts(pck.pce_svn), &qe).unwrap();
    assert_eq!(current.status, TcbStatus::UpToDate);
    assert!(current.behind.is_empty(), "{:?}", current.behind);
    let old = tcb::evaluate(&c.tcb_info, &c.qe_identity, &facts(pck.pce_svn - 1), &qe).unwrap();
    assert_eq!(old.status, TcbStatus::OutOfDate);
    assert_eq!(old.behind.len(), 1, "{:?}", old.behind);
    assert_eq!((old.behind[0].component.as_str(), old.behind[0].have, old.behind[0].newest), ("PCESVN", 10, 11));
}

/// Through the whole appraisal (synthetic collateral): a TDX module two SVNs behind is
/// named in the rejection and in the warning of a policy that accepts OutOfDate.
#[test]
fn out_of_date_module_named_in_the_verdict() {
    use synthetic::intel::{World, body, quote};
    let w = World::new();
    let q = quote(&w.pki, 5, body([2, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], None), 6);
    let e = w.verdict(&q, TdxPolicy::default()).unwrap_err();
    assert!(e.to_string().contains("TDX module TDX_03 ISVSVN 2 (newest 4, 2 behind)"), "{e}");
    let accept = TdxPolicy { accepted: vec![TcbStatus::OutOfDate], ..TdxPolicy::default() };
    let a = w.verdict(&q, accept).unwrap();
    match &a.warnings[..] {
        [TdxWarning::TcbStatus { behind, .. }] => {
            assert_eq!(behind.len(), 1, "{behind:?}");
            assert_eq!((behind[0].have, behind[0].newest), (2, 4));
        }
        other => panic!("{other:?}"),
    }
}

/// The PCK chain inside the real t1 quote, its blocks reordered (root, leaf, intermediate:
/// the same bytes, so the same length, and nothing the quote signs changes): the verifier
/// finds the leaf by the QE report's signature and builds the path.
#[test]
fn pck_chain_in_any_order() {
    let bytes = read(T1);
    let parsed = twi_attester::tdx::quote::ParsedQuote::parse(&bytes).unwrap();
    let chain = parsed.quote.pck_chain;
    let start = chain.as_ptr() as usize - bytes.as_ptr() as usize;
    let text = std::str::from_utf8(chain.strip_suffix(&[0]).unwrap_or(chain)).unwrap();
    let blocks: Vec<String> = text.split_inclusive("-----END CERTIFICATE-----\n").map(String::from).collect();
    assert_eq!(blocks.len(), 3);
    let reordered = [blocks[2].clone(), blocks[0].clone(), blocks[1].clone()].concat();
    let mut shuffled = bytes.clone();
    shuffled[start..start + reordered.len()].copy_from_slice(reordered.as_bytes());
    assert_ne!(shuffled, bytes);
    let collateral = Collateral::load(&samples().join(T1_COLLATERAL), None).unwrap();
    let config = twi_verifier::tdx::TdxConfig::default();
    let now = at("2025-07-01T00:00:00Z");
    let a =
        twi_verifier::tdx::appraise_with(&shuffled, Some(&collateral), &config, now).unwrap_or_else(|e| panic!("{e}"));
    let original = twi_verifier::tdx::appraise_with(&bytes, Some(&collateral), &config, now).unwrap();
    assert_eq!(a.certificates, original.certificates);
    assert_eq!(a.certificates.len(), 3);
    assert!(a.certificates[0].subject.contains("Intel SGX PCK Certificate"), "{:?}", a.certificates);
    assert!(a.certificates[2].subject.contains("Intel SGX Root CA"), "{:?}", a.certificates);
}

/// The TCB info issuer chain root first, the TCB Signing certificate twice, as DER back to
/// back: the collateral still verifies.
#[test]
fn collateral_issuer_chain_in_any_order() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["sample_tcbInfo_response", "sample_qeIdentity_response"] {
        std::fs::copy(samples().join(T3_DIR).join(f), dir.path().join(f)).unwrap();
    }
    let chain = split_certificates(&read("tdx/t3_gotdxguest_v4/tcb_info_issuer_chain.pem")).unwrap();
    assert_eq!(chain.len(), 2);
    let der = [chain[1].clone(), chain[0].clone(), chain[0].clone()].concat();
    std::fs::write(dir.path().join("tcb_info_issuer_chain.pem"), der).unwrap();
    let c = Collateral::load(dir.path(), None).unwrap();
    assert_eq!(c.tcb_info_chain.len(), 2);
    c.verify(&TdxTrust::intel(), at("2023-06-20T00:00:00Z")).unwrap_or_else(|e| panic!("{e}"));
}

/// The common interface carries the certificates used too (what the issuer records).
#[test]
fn verified_names_the_certificates() {
    use twi_verifier::Verifier;
    let ders = s1_ders();
    let verifier = snp::SnpVerifier::new(amd());
    let v = verifier.verify(&read(S1_REPORT), &ders, at(NOW)).unwrap();
    assert_eq!(v.certificates, [used(&ders[0]), used(&ders[1]), used(&ders[2])]);
}

/// A quote whose PCK chain carries a certificate beyond the path (here the TCB Signing
/// certificate, root first, the PCK leaf last): still verified, the extra one named in a
/// warning. The quote's signature covers header and body only, so the chain may be rewritten.
#[test]
fn pck_chain_with_an_extra_certificate() {
    use synthetic::intel::{TEE, World, body, quote};
    let w = World::new();
    let bytes = quote(&w.pki, 4, body(TEE, None), 6);
    let mut q = twi_attester::tdx::quote::ParsedQuote::parse(&bytes).unwrap().quote;
    let mut pem = String::new();
    for c in [&w.pki.root, &w.pki.tcb_signing, &w.pki.platform_ca, &w.pki.pck, &w.pki.root] {
        pem.push_str(&c.cert.certificate().to_pem(LineEnding::LF).unwrap());
    }
    let pem = pem.into_bytes();
    q.pck_chain = &pem;
    let mut out = vec![0u8; q.encoded_len()];
    q.encode(&mut out).unwrap();
    let a = w.verdict(&out, TdxPolicy::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a.certificates.len(), 3);
    match &a.warnings[..] {
        [TdxWarning::UnusedCertificates(subjects)] => {
            assert_eq!(subjects.len(), 1, "{subjects:?}");
            assert_eq!(subjects[0], w.pki.tcb_signing.cert.subject());
        }
        other => panic!("{other:?}"),
    }
}
