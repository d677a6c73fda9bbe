//! The SEV-SNP verifier on chains and reports made here (ECDSA P-384 keys under a configured
//! root), for what the real samples do not cover: Turin (8-byte hwID, FMC SVN, its TCB
//! layout), Genoa, version 3/4/5 reports, CRLs, unsigned reports, every policy option.

mod synthetic;

use std::time::Duration;

use p384::ecdsa::SigningKey;
use p384::elliptic_curve::Generate;
use synthetic::amd::{
    Key, Pki, TURIN_TCB, VekSpec, ca, chip_id, config, crl, milan, now, pki, report, sign, turin, vek,
};
use twi_attester::snp::report::{AttestationReport, TcbLayout, TcbVersion};
use twi_verifier::chain::{ChainError, Crl};
use twi_verifier::snp::{self, Anchor, PolicyViolation, Product, SnpConfig, SnpError, SnpPolicy, SnpTrust, SnpWarning};

#[test]
fn turin_vcek_with_eight_byte_hw_id_and_fmc() {
    let (pki, vcek) = turin();
    let tcb = TcbVersion(u64::from_le_bytes(TURIN_TCB));
    let certs = [vcek.cert.clone(), pki.ask.cert.clone(), pki.ark.cert.clone()];
    for version in [3, 4, 5] {
        let bytes = sign(report(version, (0x1A, 0x02), tcb, chip_id(true), 0), &vcek.key);
        let a = snp::appraise(&bytes, &certs, &[], &config(&pki.trust, SnpPolicy::default()), now())
            .unwrap_or_else(|e| panic!("v{version}: {e}"));
        assert_eq!(a.anchor, Anchor::Configured { subject: "ARK-Turin".into(), product: Some(Product::Turin) });
        assert_eq!(a.tcb_layout, TcbLayout::Turin);
        assert_eq!(a.report.reported_tcb.parts(TcbLayout::Turin).fmc, Some(1));
    }
    // A chip id with bytes beyond the first 8: not this VCEK's chip.
    let mut other = chip_id(true);
    other[9] = 1;
    let bytes = sign(report(3, (0x1A, 0x02), tcb, other, 0), &vcek.key);
    let e = snp::appraise(&bytes, &certs, &[], &config(&pki.trust, SnpPolicy::default()), now()).unwrap_err();
    assert!(matches!(e.error, SnpError::ChipMismatch { .. }), "{e}");
    // Read with the Milan layout, the same TCB bytes would not match the VCEK: the verifier
    // must use Turin's. A report claiming another FMC SVN is refused.
    let mut claimed = TURIN_TCB;
    claimed[0] = 2;
    let bytes = sign(report(3, (0x1A, 0x02), TcbVersion(u64::from_le_bytes(claimed)), chip_id(true), 0), &vcek.key);
    let e = snp::appraise(&bytes, &certs, &[], &config(&pki.trust, SnpPolicy::default()), now()).unwrap_err();
    match e.error {
        SnpError::TcbMismatch { vek, report, .. } => {
            assert!(vek.contains("fmc=1") && report.contains("fmc=2"), "{vek} {report}")
        }
        other => panic!("{other}"),
    }
}

#[test]
fn product_and_kind_mismatches() {
    let (pki, vcek) = turin();
    let certs = [vcek.cert.clone(), pki.ask.cert.clone(), pki.ark.cert.clone()];
    let tcb = TcbVersion(u64::from_le_bytes(TURIN_TCB));
    let cfg = config(&pki.trust, SnpPolicy::default());
    // A report whose CPUID says Genoa, signed by a key whose chain is Turin's.
    let bytes = sign(report(3, (0x19, 0x11), tcb, chip_id(true), 0), &vcek.key);
    let e = snp::appraise(&bytes, &certs, &[], &cfg, now()).unwrap_err();
    assert_eq!(
        e.error,
        SnpError::ProductMismatch { report: Product::Genoa, family: 0x19, model: 0x11, chain: Product::Turin }
    );
    // KEY_INFO says VLEK, the certificate is a VCEK.
    let bytes = sign(report(3, (0x1A, 0x02), tcb, chip_id(true), 1 << 2), &vcek.key);
    let e = snp::appraise(&bytes, &certs, &[], &cfg, now()).unwrap_err();
    assert!(matches!(e.error, SnpError::SignerMismatch { report: "VLEK", .. }), "{e}");
    // KEY_INFO says the report is unsigned (7) or names a reserved key (2).
    for (bits, v) in [(7u32, 7u8), (2, 2)] {
        let bytes = sign(report(3, (0x1A, 0x02), tcb, chip_id(true), bits << 2), &vcek.key);
        let e = snp::appraise(&bytes, &certs, &[], &cfg, now()).unwrap_err();
        assert_eq!(e.error, SnpError::Unsigned(v));
        assert!(e.to_string().contains("not signed"), "{e}");
    }
}

#[test]
fn genoa_vlek() {
    let pki = pki("Genoa", "SEV-VLEK");
    let vlek = vek(
        &VekSpec {
            cn: "SEV-VLEK",
            product_name: "Genoa",
            tcb: [0, 7, 0, 21, 0xDB],
            turin: false,
            hw_id: None,
            csp_id: Some("CN=cloud.example"),
        },
        &pki.ask,
    );
    let tcb = TcbVersion(u64::from_le_bytes([7, 0, 0, 0, 0, 0, 21, 0xDB]));
    let certs = [vlek.cert.clone(), pki.ask.cert.clone(), pki.ark.cert.clone()];
    let bytes = sign(report(5, (0x19, 0x11), tcb, [0; 64], (1 << 2) | 2), &vlek.key);
    let a = snp::appraise(&bytes, &certs, &[], &config(&pki.trust, SnpPolicy::default()), now()).unwrap();
    assert_eq!(a.signer, twi_verifier::snp::VekKind::Vlek);
    assert_eq!(a.product, Some(Product::Genoa));
    // The same VLEK cannot pass as a VCEK.
    let bytes = sign(report(5, (0x19, 0x11), tcb, [0; 64], 2), &vlek.key);
    let e = snp::appraise(&bytes, &certs, &[], &config(&pki.trust, SnpPolicy::default()), now()).unwrap_err();
    assert!(matches!(e.error, SnpError::SignerMismatch { report: "VCEK", .. }), "{e}");
}

#[test]
fn every_policy_option() {
    let (pki, vcek, tcb) = milan();
    let certs = [vcek.cert.clone(), pki.ask.cert.clone(), pki.ark.cert.clone()];
    let with = |edit: &dyn Fn(&mut AttestationReport), policy: SnpPolicy| {
        let mut r = report(3, (0x19, 0x01), tcb, chip_id(false), 0);
        edit(&mut r);
        snp::appraise(&sign(r, &vcek.key), &certs, &[], &config(&pki.trust, policy), now())
    };
    let default = SnpPolicy::default;
    with(&|_| {}, default()).unwrap();

    let debug = |r: &mut AttestationReport| r.policy.0 |= 1 << 19;
    assert_eq!(with(&debug, default()).unwrap_err().error, SnpError::DebugPolicy);
    let a = with(&debug, SnpPolicy { allow_debug: true, ..default() }).unwrap();
    assert!(a.warnings.contains(&SnpWarning::DebugAllowed));

    let ma = |r: &mut AttestationReport| r.policy.0 |= 1 << 18;
    assert_eq!(with(&ma, default()).unwrap_err().error, SnpError::Policy(PolicyViolation::MigrationAgent));
    with(&ma, SnpPolicy { allow_migration_agent: true, ..default() }).unwrap();

    let no_smt = SnpPolicy { allow_smt: false, ..default() };
    assert_eq!(with(&|_| {}, no_smt.clone()).unwrap_err().error, SnpError::Policy(PolicyViolation::Smt));
    with(&|r| r.policy.0 &= !(1 << 16), no_smt).unwrap();

    let abi = SnpPolicy { min_abi: Some((1, 55)), ..default() };
    let e = with(&|r| r.policy.0 |= 0x0136, abi.clone()).unwrap_err();
    assert_eq!(e.error, SnpError::Policy(PolicyViolation::Abi { required: (1, 55), policy: (1, 54) }));
    with(&|r| r.policy.0 |= 0x0137, abi).unwrap();

    let vmpl = SnpPolicy { vmpl: Some(0), ..default() };
    with(&|_| {}, vmpl.clone()).unwrap();
    let e = with(&|r| r.vmpl = 2, vmpl).unwrap_err();
    assert_eq!(e.error, SnpError::Policy(PolicyViolation::Vmpl { required: 0, actual: 2 }));

    let m = SnpPolicy {
        measurement: Some([0x4D; 48]),
        host_data: Some([0x48; 32]),
        report_data: Some([0x5A; 64]),
        ..default()
    };
    with(&|_| {}, m.clone()).unwrap();
    for (edit, what) in [
        (
            &(|r: &mut AttestationReport| r.measurement[47] ^= 1) as &dyn Fn(&mut AttestationReport),
            "launch measurement",
        ),
        (&|r: &mut AttestationReport| r.host_data[0] ^= 1, "HOST_DATA"),
        (&|r: &mut AttestationReport| r.report_data[63] ^= 1, "REPORTDATA"),
    ] {
        let e = with(edit, m.clone()).unwrap_err();
        assert!(matches!(e.error, SnpError::Policy(_)), "{e}");
        assert!(e.to_string().contains(what), "{e}");
    }

    let min = |bl, snp, ucode| SnpPolicy {
        min_tcb: Some(TcbVersion(u64::from_le_bytes([bl, 0, 0, 0, 0, 0, snp, ucode]))),
        ..default()
    };
    with(&|_| {}, min(3, 8, 115)).unwrap();
    let e = with(&|_| {}, min(3, 9, 0)).unwrap_err();
    assert_eq!(e.error, SnpError::Policy(PolicyViolation::Tcb { component: "SNP firmware", required: 9, actual: 8 }));
    let e = with(&|_| {}, min(0, 0, 200)).unwrap_err();
    assert!(e.to_string().contains("microcode SVN 115 is below the required 200"), "{e}");

    // REPORTED_TCB below COMMITTED_TCB: accepted, with a warning.
    let a = with(&|r| r.committed_tcb = TcbVersion(u64::from_le_bytes([3, 0, 0, 0, 0, 0, 9, 115])), default()).unwrap();
    assert!(a.warnings.iter().any(|w| matches!(w, SnpWarning::ReportedBelowCommitted { .. })), "{:?}", a.warnings);
}

#[test]
fn crls() {
    let (pki, vcek, tcb) = milan();
    let certs = [vcek.cert.clone(), pki.ask.cert.clone(), pki.ark.cert.clone()];
    let bytes = sign(report(3, (0x19, 0x01), tcb, chip_id(false), 0), &vcek.key);
    let cfg = config(&pki.trust, SnpPolicy::default());
    let t = now();
    let (before, after) = (t - Duration::from_secs(3600), t + 30 * Duration::from_secs(86400));

    // The ARK's CRL, listing nothing of ours: accepted, and no "not checked" warning.
    let clean = crl(&pki.ark, &[], before, after);
    let a = snp::appraise(&bytes, &certs, std::slice::from_ref(&clean), &cfg, t).unwrap();
    assert!(!a.warnings.contains(&SnpWarning::RevocationNotChecked));
    let a = snp::appraise(&bytes, &certs, &[], &cfg, t).unwrap();
    assert!(a.warnings.contains(&SnpWarning::RevocationNotChecked));

    // The ASK revoked by the ARK.
    let revoked = crl(&pki.ark, &[&pki.ask.cert], before, after);
    let e = snp::appraise(&bytes, &certs, &[revoked], &cfg, t).unwrap_err();
    match &e.error {
        SnpError::Chain(ChainError::Revoked { subject, .. }) => assert!(subject.contains("SEV-Milan"), "{subject}"),
        other => panic!("{other}"),
    }
    // The VCEK revoked by the ASK.
    let revoked = crl(&pki.ask, &[&vcek.cert], before, after);
    let e = snp::appraise(&bytes, &certs, &[revoked], &cfg, t).unwrap_err();
    assert!(matches!(e.error, SnpError::Chain(ChainError::Revoked { .. })), "{e}");
    // A stale CRL, a CRL from the future, a CRL signed by the wrong key, an unrelated CRL.
    let e =
        snp::appraise(&bytes, &certs, &[crl(&pki.ark, &[], before - Duration::from_secs(86400 * 60), before)], &cfg, t);
    assert!(matches!(e.unwrap_err().error, SnpError::Chain(ChainError::CrlNotCurrent { .. })));
    let e = snp::appraise(&bytes, &certs, &[crl(&pki.ark, &[], after, after + Duration::from_secs(60))], &cfg, t);
    assert!(matches!(e.unwrap_err().error, SnpError::Chain(ChainError::CrlNotCurrent { .. })));
    let impostor = Key { key: SigningKey::try_generate().unwrap(), cert: pki.ark.cert.clone() };
    let e = snp::appraise(&bytes, &certs, &[crl(&impostor, &[], before, after)], &cfg, t);
    assert!(matches!(e.unwrap_err().error, SnpError::Chain(ChainError::CrlBadSignature { .. })));
    let stranger = ca("CN=Somebody Else", None);
    let e = snp::appraise(&bytes, &certs, &[crl(&stranger, &[], before, after)], &cfg, t);
    assert!(matches!(e.unwrap_err().error, SnpError::Chain(ChainError::CrlUnrelated { .. })));
    // Every byte of the CRL flipped: rejected (or no longer a CRL).
    let der = clean.der().to_vec();
    for at in 0..der.len() {
        let mut bad = der.clone();
        bad[at] ^= 1 << (at % 8);
        if let Ok(c) = Crl::from_der(&bad, "flipped") {
            assert!(snp::appraise(&bytes, &certs, &[c], &cfg, t).is_err(), "CRL byte {at} flipped went unnoticed");
        }
    }
}

#[test]
fn only_configured_roots() {
    let (pki, vcek, tcb) = milan();
    let certs = [vcek.cert.clone(), pki.ask.cert.clone(), pki.ark.cert.clone()];
    let bytes = sign(report(3, (0x19, 0x01), tcb, chip_id(false), 0), &vcek.key);
    // AMD's roots do not admit a made-up ARK-Milan.
    let e = snp::appraise(&bytes, &certs, &[], &SnpConfig::default(), now()).unwrap_err();
    match &e.error {
        SnpError::Chain(ChainError::UntrustedRoot { subject, fingerprint }) => {
            assert!(subject.contains("ARK-Milan"));
            assert_eq!(fingerprint, &hex::encode(pki.ark.cert.spki_sha384()));
        }
        other => panic!("{other}"),
    }
    // The simulated-root anchor is marked as such.
    let sim = SnpTrust::none().with_simulated_root(pki.ark.cert.clone());
    let a = snp::appraise(&bytes, &certs, &[], &config(&sim, SnpPolicy::default()), now()).unwrap();
    assert!(a.anchor.is_simulated());
    assert!(a.warnings.contains(&SnpWarning::Simulated));
}

/// A Milan PKI, a verifier trusting it, the VCEK-and-ASK chain and a report the VCEK signed.
fn a_report_and_its_chain() -> (Pki, snp::SnpVerifier, Vec<Vec<u8>>, Vec<u8>) {
    let (pki, vcek, tcb) = milan();
    let verifier = snp::SnpVerifier::new(config(&pki.trust, SnpPolicy::default()));
    let chain = vec![vcek.cert.der().to_vec(), pki.ask.cert.der().to_vec()];
    let bytes = sign(report(3, (0x19, 0x01), tcb, chip_id(false), 0), &vcek.key);
    (pki, verifier, chain, bytes)
}

/// A chain checked ahead of its evidence ([`Verifier::prepare`], while the guest boots) is the
/// kept chain of the appraisal that follows; a chain that does not verify is not kept, and the
/// appraisal refuses it as it would have.
#[test]
fn a_chain_checked_ahead_is_kept_and_a_bad_one_is_not() {
    use twi_verifier::Verifier;
    let (pki, verifier, chain, bytes) = a_report_and_its_chain();
    verifier.prepare(&chain, now());
    verifier.verify(&bytes, &chain, now()).unwrap();
    assert_eq!(verifier.cached_chain_hits(), 1, "the appraisal took the chain checked ahead");

    let mut bad_ask = pki.ask.cert.der().to_vec();
    let at = bad_ask.len() - 10; // inside the ASK's signature
    bad_ask[at] ^= 1;
    let bad = vec![chain[0].clone(), bad_ask];
    let fresh = snp::SnpVerifier::new(config(&pki.trust, SnpPolicy::default()));
    fresh.prepare(&bad, now());
    assert!(fresh.verify(&bytes, &bad, now()).is_err(), "a bad chain checked ahead is still refused");
    assert_eq!(fresh.cached_chain_hits(), 0);
}

/// Issue 14 item 9: a verified endorsement chain is kept by its DER bytes' hash: the second
/// report under the same chain reuses it (the report itself is still verified: a forged one is
/// refused), another chain is verified anew, and past a certificate's notAfter the chain is
/// verified again, so expiry is still refused.
#[test]
fn a_verified_chain_is_reused_while_its_certificates_are_valid() {
    use twi_verifier::Verifier;
    let (pki, verifier, chain, bytes) = a_report_and_its_chain();
    verifier.verify(&bytes, &chain, now()).unwrap();
    assert_eq!(verifier.cached_chain_hits(), 0);
    verifier.verify(&bytes, &chain, now()).unwrap();
    assert_eq!(verifier.cached_chain_hits(), 1, "the second appraisal reused the verified chain");
    let mut forged = bytes.clone();
    forged[0x50] ^= 1;
    assert!(verifier.verify(&forged, &chain, now()).is_err(), "a cached chain never skips the report's signature");
    assert_eq!(verifier.cached_chain_hits(), 2);
    // Another chain (with the ARK appended): verified, not taken from the cache.
    let with_root = vec![chain[0].clone(), chain[1].clone(), pki.ark.cert.der().to_vec()];
    verifier.verify(&bytes, &with_root, now()).unwrap();
    assert_eq!(verifier.cached_chain_hits(), 2);
    // Long after every certificate expired: verified again, and refused.
    let later = now() + Duration::from_secs(200 * 365 * 24 * 3600);
    let e = verifier.verify(&bytes, &chain, later).unwrap_err();
    assert!(e.to_string().contains("is not valid at the verification time"), "{e}");
    assert_eq!(verifier.cached_chain_hits(), 2);
}
