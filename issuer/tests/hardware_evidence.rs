//! Issuance on hardware evidence (not simulated) through the issuer's Verifier front: SEV-SNP
//! reports and TDX quotes under made-up vendor PKIs configured as the issuer's roots, refused
//! until the issuer accepts that platform, then issued on the typed appraisal when REPORTDATA
//! binds nonce and key (and, for TDX, the event log explains the RTMRs).
//!
//! The made-up PKIs are the verifier's test helpers (`verifier/tests/synthetic`), read by path
//! until a shared test kit holds them.

#[path = "../../verifier/tests/synthetic/mod.rs"]
mod synthetic;

use std::time::Duration;

use p384::ecdsa::SigningKey;
use p384::elliptic_curve::Generate;
use sha2::Digest;
use synthetic::amd::{chip_id, config, milan, report, sign};
use synthetic::intel::{TEE, World, body, quote};
use twi_issuer::{EvidenceBundle, Issuer, IssuerConfig, Rejection};
use twi_proto::msg::Platform;
use twi_verifier::chain::ChainError;
use twi_verifier::snp::{Product, SnpConfig, SnpError, SnpPolicy};
use twi_verifier::tdx::{TcbStatus, TdxError, TdxPolicy};

/// The issuing flow with (non-simulated) SEV-SNP evidence: refused until the issuer accepts
/// hardware SNP, then issued on the typed appraisal when REPORTDATA binds nonce and key.
#[test]
fn issuer_issues_on_hardware_snp_evidence() {
    let (pki, vcek, tcb) = milan();
    let dir = tempfile::tempdir().unwrap();
    let issuer_config = IssuerConfig {
        trust_domain: "example.org".into(),
        workload: "payroll".into(),
        lifetime: Duration::from_secs(3600),
        sim_snp_root: None,
    };
    let mut issuer = Issuer::open(dir.path(), issuer_config).unwrap();
    let workload = SigningKey::try_generate().unwrap();
    let public_key = workload.verifying_key().to_sec1_point(false).as_bytes().to_vec();
    let endorsements: Vec<Vec<u8>> =
        [&vcek.cert, &pki.ask.cert, &pki.ark.cert].iter().map(|c| c.der().to_vec()).collect();
    let bound = |nonce: &[u8]| {
        let mut r = report(3, (0x19, 0x01), tcb, chip_id(false), 0);
        r.report_data = twi_attester::binding::report_data(nonce, &public_key).unwrap();
        sign(r, &vcek.key)
    };
    fn bundle<'a>(nonce: &'a [u8], evidence: &'a [u8], key: &'a [u8], certs: &'a [Vec<u8>]) -> EvidenceBundle<'a> {
        EvidenceBundle { platform: Platform::Snp, evidence, public_key: key, nonce, endorsements: certs }
    }
    let nonce = issuer.challenge().unwrap();
    let evidence = bound(&nonce);
    let e = issuer.issue(&bundle(&nonce, &evidence, &public_key, &endorsements)).unwrap_err();
    assert_eq!(e, Rejection::UnsupportedPlatform(Platform::Snp));

    issuer.accept_hardware_snp(config(&pki.trust, SnpPolicy::default()));
    let nonce = issuer.challenge().unwrap();
    let evidence = bound(&nonce);
    let issued = issuer.issue(&bundle(&nonce, &evidence, &public_key, &endorsements)).unwrap();
    let appraisal = issued.appraisal.verified.snp().unwrap();
    assert_eq!(appraisal.product, Some(Product::Milan));
    assert!(!appraisal.anchor.is_simulated());
    assert_eq!(issued.appraisal.measurement, [0x4D; 48]);
    // The same evidence under AMD's real roots only: the made-up ARK is refused.
    issuer.accept_hardware_snp(SnpConfig::default());
    let nonce = issuer.challenge().unwrap();
    let evidence = bound(&nonce);
    let e = issuer.issue(&bundle(&nonce, &evidence, &public_key, &endorsements)).unwrap_err();
    assert!(matches!(e, Rejection::Snp(SnpError::Chain(ChainError::UntrustedRoot { .. }))), "{e}");
}

/// The issuing flow with TDX evidence: the quote binds the issuer's nonce and the workload's
/// key in REPORTDATA, and the credential is issued on the typed appraisal.
#[test]
fn issuer_issues_on_a_bound_tdx_quote() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let config = IssuerConfig {
        trust_domain: "example.org".into(),
        workload: "payroll".into(),
        lifetime: Duration::from_secs(3600),
        sim_snp_root: None,
    };
    let mut issuer = Issuer::open(dir.path(), config).unwrap();
    let key = p384::ecdsa::SigningKey::try_generate().unwrap();
    let public_key = key.verifying_key().to_sec1_point(false).as_bytes().to_vec();

    // Not accepted until configured.
    let nonce = issuer.challenge().unwrap();
    let mut b = body(TEE, Some(TEE));
    b.report_data = twi_attester::binding::report_data(&nonce, &public_key).unwrap();
    let q = quote(&w.pki, 5, b, 6);
    fn bundle<'a>(nonce: &'a [u8], evidence: &'a [u8], public_key: &'a [u8]) -> EvidenceBundle<'a> {
        EvidenceBundle { platform: Platform::Tdx, evidence, public_key, nonce, endorsements: &[] }
    }
    assert_eq!(
        issuer.issue(&bundle(&nonce, &q, &public_key)).unwrap_err(),
        Rejection::UnsupportedPlatform(Platform::Tdx)
    );

    issuer.accept_hardware_tdx(w.config(TdxPolicy::default()), Some(w.collateral()));
    // The runtime's event log (it is the TD's firmware: the RTMRs are exactly its replay).
    let events: Vec<twi_proto::msg::RtmrEvent> = [(1u8, b"launch manifest".as_slice()), (2, b"issuer anchor")]
        .iter()
        .map(|&(rtmr, data)| twi_proto::msg::RtmrEvent {
            rtmr,
            event_type: rtmr.into(),
            digest: sha2::Sha384::digest(data).to_vec(),
            data: data.to_vec(),
        })
        .collect();
    let digests: Vec<(u32, [u8; 48])> =
        events.iter().map(|e| (u32::from(e.rtmr), e.digest.as_slice().try_into().unwrap())).collect();
    let rtmrs = twi_attester::tdx::rtmr::replay(digests.iter().map(|(i, d)| (*i, d))).unwrap();
    let nonce = issuer.challenge().unwrap();
    let mut b = body(TEE, Some(TEE));
    b.report_data = twi_attester::binding::report_data(&nonce, &public_key).unwrap();
    b.rtmr = rtmrs;
    let q = quote(&w.pki, 5, b, 6);
    // Without the log, the RTMRs are unexplained: refused, naming the first that differs.
    let e = issuer.issue(&bundle(&nonce, &q, &public_key)).unwrap_err();
    assert!(e.to_string().contains("the quote's RTMR1 (expected: the event log's replay)"), "{e}");
    // An event whose data does not match its digest.
    let mut forged = events.clone();
    forged[1].data = b"another anchor".to_vec();
    let nonce = issuer.challenge().unwrap();
    let mut b = body(TEE, Some(TEE));
    b.report_data = twi_attester::binding::report_data(&nonce, &public_key).unwrap();
    b.rtmr = rtmrs;
    let q = quote(&w.pki, 5, b, 6);
    let e = issuer.issue_with_events(&bundle(&nonce, &q, &public_key), &forged).unwrap_err();
    assert!(e.to_string().contains("an event log digest"), "{e}");
    let nonce = issuer.challenge().unwrap();
    let mut b = body(TEE, Some(TEE));
    b.report_data = twi_attester::binding::report_data(&nonce, &public_key).unwrap();
    b.rtmr = rtmrs;
    let q = quote(&w.pki, 5, b, 6);
    let issued = issuer.issue_with_events(&bundle(&nonce, &q, &public_key), &events).unwrap();
    assert_eq!(issued.appraisal.measurement, [0x4D; 48]);
    assert_eq!(issued.appraisal.verified.tdx().unwrap().tcb.as_ref().unwrap().status, TcbStatus::UpToDate);

    // A quote bound to another nonce.
    let nonce2 = issuer.challenge().unwrap();
    assert!(matches!(issuer.issue(&bundle(&nonce2, &q, &public_key)), Err(Rejection::ReportDataMismatch { .. })));
    // A tampered quote.
    let nonce3 = issuer.challenge().unwrap();
    let mut b = body(TEE, Some(TEE));
    b.report_data = twi_attester::binding::report_data(&nonce3, &public_key).unwrap();
    let mut q = quote(&w.pki, 5, b, 6);
    q[200] ^= 1;
    assert!(matches!(issuer.issue(&bundle(&nonce3, &q, &public_key)), Err(Rejection::Tdx(TdxError::QuoteSignature))));
}
