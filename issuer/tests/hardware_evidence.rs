//! Issuance on hardware evidence (not simulated) through the issuer's Verifier front: SEV-SNP
//! reports and TDX quotes under made-up vendor PKIs configured as the issuer's roots, refused
//! until the issuer accepts that platform, then issued on the typed appraisal when REPORTDATA
//! binds nonce and key (and, for TDX, the event log explains the RTMRs).
//!
//! The made-up PKIs are the verifier's test helpers (`verifier/tests/synthetic`), read by path
//! until a shared test kit holds them.

#[path = "../../verifier/tests/synthetic/mod.rs"]
mod synthetic;

use p384::ecdsa::SigningKey;
use p384::elliptic_curve::Generate;
use sha2::Digest;
use synthetic::amd::{chip_id, config, milan, report, sign};
use synthetic::intel::{TEE, World, body, quote};
use twi_issuer::policy::Policy;
use twi_issuer::{
    CredentialRequest, Evidence, EvidenceBundle, EvidenceRejection, Issued, Issuer, IssuerConfig, Rejection,
};
use twi_proto::msg::{CredentialKind, Platform, RtmrEvent};
use twi_verifier::chain::ChainError;
use twi_verifier::snp::{Product, SnpConfig, SnpError, SnpPolicy, SnpRejection};
use twi_verifier::tdx::{TcbStatus, TdxError, TdxPolicy};

/// The launch both made-up platforms measure.
const MEASUREMENT: [u8; 48] = [0x4D; 48];

/// An issuer whose policy admits the made-up platforms' launch as `payroll`.
/// The target the tests acquire for.
const TARGET: &str = twi_testkit::tacra::TARGET;

fn issuer(dir: &std::path::Path) -> Issuer {
    let policy = Policy::from_toml(&format!(
        "version = \"hw-1\"\ntrust_domain = \"example.org\"\n\n[[workload]]\nid = \"payroll\"\nmechanism = \"c\"\n\n\
         [[workload.reference]]\nlabel = \"snp\"\nplatform = \"snp\"\nmeasurement = \"{m}\"\n\n\
         [[workload.reference]]\nlabel = \"tdx\"\nplatform = \"tdx\"\nmrtd = \"{m}\"\n",
        m = hex::encode(MEASUREMENT)
    ))
    .unwrap();
    let config = IssuerConfig { trust_domain: "example.org".into(), sim_snp_root: None };
    Issuer::open(dir, config, policy).unwrap()
}

/// A nonce from the issuer's Verifier for a launch of `platform`.
fn challenge(issuer: &mut Issuer, platform: Platform) -> Vec<u8> {
    issuer.initiate(platform, &MEASUREMENT, TARGET, CredentialKind::X509, None).unwrap().nonce
}

/// Mechanism C: the evidence (and the TD's event log) to the Credential Authority.
fn issue(issuer: &mut Issuer, bundle: EvidenceBundle<'_>, events: &[RtmrEvent]) -> Result<Issued, Rejection> {
    issuer.ca_credential(CredentialRequest::Evidence { evidence: Evidence { bundle, events }, renewal_of: None })
}

/// The verifier's own rejection, as the issuer carries it.
fn verifier(rejection: twi_verifier::Rejection) -> Rejection {
    Rejection::Evidence(EvidenceRejection::Verifier(rejection))
}

/// The issuing flow with (non-simulated) SEV-SNP evidence: refused until the issuer accepts
/// hardware SNP, then issued on the typed appraisal when REPORTDATA binds nonce and key.
#[test]
fn issuer_issues_on_hardware_snp_evidence() {
    let (pki, vcek, tcb) = milan();
    let dir = tempfile::tempdir().unwrap();
    let mut issuer = issuer(dir.path());
    let workload = SigningKey::try_generate().unwrap();
    let public_key = workload.verifying_key().to_sec1_point(false).as_bytes().to_vec();
    let endorsements: Vec<Vec<u8>> =
        [&vcek.cert, &pki.ask.cert, &pki.ark.cert].iter().map(|c| c.der().to_vec()).collect();
    let (rp_id, csr) = (issuer.rp_id(), twi_testkit::tacra::csr(&workload));
    let bound = |nonce: &[u8]| {
        let mut r = report(3, (0x19, 0x01), tcb, chip_id(false), 0);
        r.report_data = twi_testkit::tacra::enroll(&workload, nonce, &rp_id, TARGET).0;
        sign(r, &vcek.key)
    };
    fn bundle<'a>(
        nonce: &'a [u8],
        evidence: &'a [u8],
        key: &'a [u8],
        certs: &'a [Vec<u8>],
        csr: &'a [u8],
    ) -> EvidenceBundle<'a> {
        let (target, csr) = (TARGET, Some(csr));
        EvidenceBundle { platform: Platform::Snp, evidence, public_key: key, nonce, endorsements: certs, target, csr }
    }
    let nonce = challenge(&mut issuer, Platform::Snp);
    let evidence = bound(&nonce);
    let e = issue(&mut issuer, bundle(&nonce, &evidence, &public_key, &endorsements, &csr), &[]).unwrap_err();
    assert_eq!(e, Rejection::Evidence(EvidenceRejection::UnsupportedPlatform(Platform::Snp)));

    issuer.accept_hardware_snp(config(&pki.trust, SnpPolicy::default()));
    let nonce = challenge(&mut issuer, Platform::Snp);
    let evidence = bound(&nonce);
    let issued = issue(&mut issuer, bundle(&nonce, &evidence, &public_key, &endorsements, &csr), &[]).unwrap();
    let appraisal = issued.appraisal.verified.snp().unwrap();
    assert_eq!(appraisal.product, Some(Product::Milan));
    assert!(!appraisal.anchor.is_simulated());
    assert_eq!(issued.appraisal.verified.measurement, [0x4D; 48]);
    // The same evidence under AMD's real roots only: the made-up ARK is refused.
    issuer.accept_hardware_snp(SnpConfig::default());
    let nonce = challenge(&mut issuer, Platform::Snp);
    let evidence = bound(&nonce);
    let e = issue(&mut issuer, bundle(&nonce, &evidence, &public_key, &endorsements, &csr), &[]).unwrap_err();
    assert!(
        matches!(
            &e,
            Rejection::Evidence(EvidenceRejection::Verifier(twi_verifier::Rejection::Snp(SnpRejection {
                error: SnpError::Chain(ChainError::UntrustedRoot { .. }),
                ..
            })))
        ),
        "{e}"
    );
}

/// The issuing flow with TDX evidence: the quote binds the issuer's nonce and the workload's
/// key in REPORTDATA, and the credential is issued on the typed appraisal.
#[test]
fn issuer_issues_on_a_bound_tdx_quote() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let mut issuer = issuer(dir.path());
    let key = p384::ecdsa::SigningKey::try_generate().unwrap();
    let public_key = key.verifying_key().to_sec1_point(false).as_bytes().to_vec();
    let (rp_id, csr) = (issuer.rp_id(), twi_testkit::tacra::csr(&key));
    let bind = |nonce: &[u8]| twi_testkit::tacra::enroll(&key, nonce, &rp_id, TARGET).0;

    // Not accepted until configured.
    let nonce = challenge(&mut issuer, Platform::Tdx);
    let mut b = body(TEE, Some(TEE));
    b.report_data = bind(&nonce);
    let q = quote(&w.pki, 5, b, 6);
    fn bundle<'a>(nonce: &'a [u8], evidence: &'a [u8], public_key: &'a [u8], csr: &'a [u8]) -> EvidenceBundle<'a> {
        let (target, csr) = (TARGET, Some(csr));
        EvidenceBundle { platform: Platform::Tdx, evidence, public_key, nonce, endorsements: &[], target, csr }
    }
    assert_eq!(
        issue(&mut issuer, bundle(&nonce, &q, &public_key, &csr), &[]).unwrap_err(),
        Rejection::Evidence(EvidenceRejection::UnsupportedPlatform(Platform::Tdx))
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
    let nonce = challenge(&mut issuer, Platform::Tdx);
    let mut b = body(TEE, Some(TEE));
    b.report_data = bind(&nonce);
    b.rtmr = rtmrs;
    let q = quote(&w.pki, 5, b, 6);
    // Without the log, the RTMRs are unexplained: refused, naming the first that differs.
    let e = issue(&mut issuer, bundle(&nonce, &q, &public_key, &csr), &[]).unwrap_err();
    assert!(e.to_string().contains("the quote's RTMR1 (expected: the event log's replay)"), "{e}");
    // An event whose data does not match its digest.
    let mut forged = events.clone();
    forged[1].data = b"another anchor".to_vec();
    let nonce = challenge(&mut issuer, Platform::Tdx);
    let mut b = body(TEE, Some(TEE));
    b.report_data = bind(&nonce);
    b.rtmr = rtmrs;
    let q = quote(&w.pki, 5, b, 6);
    let e = issue(&mut issuer, bundle(&nonce, &q, &public_key, &csr), &forged).unwrap_err();
    assert!(e.to_string().contains("an event log digest"), "{e}");
    let nonce = challenge(&mut issuer, Platform::Tdx);
    let mut b = body(TEE, Some(TEE));
    b.report_data = bind(&nonce);
    b.rtmr = rtmrs;
    let q = quote(&w.pki, 5, b, 6);
    let issued = issue(&mut issuer, bundle(&nonce, &q, &public_key, &csr), &events).unwrap();
    assert_eq!(issued.appraisal.verified.measurement, [0x4D; 48]);
    assert_eq!(issued.appraisal.verified.tdx().unwrap().tcb.as_ref().unwrap().status, TcbStatus::UpToDate);

    // A quote bound to another nonce.
    let nonce2 = challenge(&mut issuer, Platform::Tdx);
    assert!(matches!(
        issue(&mut issuer, bundle(&nonce2, &q, &public_key, &csr), &[]),
        Err(Rejection::Evidence(EvidenceRejection::ReportDataMismatch { .. }))
    ));
    // A tampered quote.
    let nonce3 = challenge(&mut issuer, Platform::Tdx);
    let mut b = body(TEE, Some(TEE));
    b.report_data = bind(&nonce3);
    let mut q = quote(&w.pki, 5, b, 6);
    q[200] ^= 1;
    assert_eq!(
        issue(&mut issuer, bundle(&nonce3, &q, &public_key, &csr), &[]).unwrap_err(),
        verifier(twi_verifier::Rejection::Tdx(TdxError::QuoteSignature))
    );
}
