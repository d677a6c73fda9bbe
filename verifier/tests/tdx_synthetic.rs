//! The TDX verifier on quotes and collateral made here (a P-256 PKI shaped like Intel's under
//! a configured root), for what the real samples do not cover: quote v5 with TD 1.0 and 1.5
//! bodies, every TCB status and its decision, TDX module identities, the TD 1.5 relaunch rule,
//! QE identity mismatches, revoked PCK certificates, debuggable TDs.

mod synthetic;

use std::time::SystemTime;

use synthetic::intel::{TEE, World, body, level, quote, tdx};
use twi_verifier::chain::ChainError;
use twi_verifier::tdx::{TcbError, TcbStatus, TdxAnchor, TdxError, TdxPolicy, TdxWarning};

#[test]
fn v4_and_v5_with_td10_and_td15_bodies() {
    let w = World::new();
    for (version, td15) in [(4, None), (5, None), (5, Some(TEE))] {
        let q = quote(&w.pki, version, body(TEE, td15), 6);
        let a =
            w.verdict(&q, TdxPolicy::default()).unwrap_or_else(|e| panic!("v{version} td15={}: {e}", td15.is_some()));
        let tcb = a.tcb.unwrap();
        assert_eq!(
            (tcb.status, tcb.platform, tcb.module, tcb.qe),
            (TcbStatus::UpToDate, TcbStatus::UpToDate, Some(TcbStatus::UpToDate), TcbStatus::UpToDate)
        );
        assert_eq!(a.body.is_td15(), td15.is_some());
        assert!(matches!(a.anchor, TdxAnchor::Configured { .. }));
        assert!(a.warnings.is_empty(), "{:?}", a.warnings);
    }
}

#[test]
fn statuses_and_decisions() {
    // PCESVN 11 matches the UpToDate level; a module at minor 2 is OutOfDate (TDX_03).
    let w = World::new();
    let q = quote(&w.pki, 5, body([2, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], None), 6);
    let e = w.verdict(&q, TdxPolicy::default()).unwrap_err();
    match &e {
        TdxError::TcbStatus { status: TcbStatus::OutOfDate, advisories, .. } => {
            assert_eq!(advisories, "INTEL-SA-MODULE")
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("update the platform's microcode/BIOS and TDX module"), "{e}");
    let accept_old = TdxPolicy { accepted: vec![TcbStatus::UpToDate, TcbStatus::OutOfDate], ..TdxPolicy::default() };
    let a = w.verdict(&q, accept_old.clone()).unwrap();
    assert!(
        matches!(&a.warnings[..], [TdxWarning::TcbStatus { status: TcbStatus::OutOfDate, .. }]),
        "{:?}",
        a.warnings
    );

    // The QE at ISVSVN 4 is OutOfDate: the whole converges to OutOfDate, with its advisory.
    let q = quote(&w.pki, 5, body(TEE, None), 4);
    let a = w.verdict(&q, accept_old).unwrap();
    let tcb = a.tcb.unwrap();
    assert_eq!((tcb.status, tcb.platform, tcb.qe), (TcbStatus::OutOfDate, TcbStatus::UpToDate, TcbStatus::OutOfDate));
    assert_eq!(tcb.advisory_ids, ["INTEL-SA-QE"]);

    // Each platform status and what the default policy decides.
    for (status, accepted) in [
        ("UpToDate", true),
        ("SWHardeningNeeded", true),
        ("ConfigurationNeeded", true),
        ("ConfigurationAndSWHardeningNeeded", true),
        ("OutOfDate", false),
        ("OutOfDateConfigurationNeeded", false),
        ("Revoked", false),
    ] {
        let mut w = World::new();
        w.tcb_levels = vec![level([0; 16], 0, tdx(&[0, 0, 0]), status, &["INTEL-SA-1"])];
        let q = quote(&w.pki, 5, body(TEE, None), 6);
        let verdict = w.verdict(&q, TdxPolicy::default());
        assert_eq!(verdict.is_ok(), accepted, "{status}: {verdict:?}");
        if status == "Revoked" {
            // Never accepted, whatever the policy says.
            let all = TdxPolicy { accepted: vec![TcbStatus::Revoked], ..TdxPolicy::default() };
            assert!(matches!(w.verdict(&q, all), Err(TdxError::Revoked { .. })));
        }
        if accepted && status != "UpToDate" {
            let a = verdict.unwrap();
            assert!(matches!(&a.warnings[..], [TdxWarning::TcbStatus { .. }]), "{status}: {:?}", a.warnings);
        }
    }
}

/// A TD 1.5 that launched on an out-of-date module, now updated in place: relaunch advised.
#[test]
fn td15_relaunch_advised() {
    let w = World::new();
    let launch = [2, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]; // module minor 2: OutOfDate
    let q = quote(&w.pki, 5, body(launch, Some(TEE)), 6);
    let e = w.verdict(&q, TdxPolicy::default()).unwrap_err();
    assert!(matches!(e, TdxError::TcbStatus { status: TcbStatus::TDRelaunchAdvised, .. }), "{e}");
    assert!(e.to_string().contains("relaunch the TD"), "{e}");
}

#[test]
fn identities_must_match() {
    let w = World::new();
    // No TDX_07 identity.
    let q = quote(&w.pki, 5, body([6, 7, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], None), 6);
    assert_eq!(
        w.verdict(&q, TdxPolicy::default()).unwrap_err(),
        TdxError::Tcb(TcbError::NoModuleIdentity { major: 7 })
    );
    // Module minor SVN below every level of TDX_03.
    let q = quote(&w.pki, 5, body([1, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], None), 6);
    assert_eq!(
        w.verdict(&q, TdxPolicy::default()).unwrap_err(),
        TdxError::Tcb(TcbError::NoModuleTcbLevel { major: 3, svn: 1 })
    );
    // Another module signer.
    let mut b = body(TEE, None);
    b.mr_signer_seam = [9; 48];
    let e = w.verdict(&quote(&w.pki, 5, b, 6), TdxPolicy::default()).unwrap_err();
    assert!(matches!(e, TdxError::Tcb(TcbError::ModuleIdentity { what: "MRSIGNERSEAM", .. })), "{e}");
    // SEAM attributes outside what the identity allows.
    let mut b = body(TEE, None);
    b.seam_attributes = [1, 0, 0, 0, 0, 0, 0, 0];
    let e = w.verdict(&quote(&w.pki, 5, b, 6), TdxPolicy::default()).unwrap_err();
    assert!(matches!(e, TdxError::Tcb(TcbError::ModuleIdentity { what: "SEAMATTRIBUTES", .. })), "{e}");
    // TDX component SVN (byte 2) below every level: no platform level.
    let q = quote(&w.pki, 5, body([6, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], None), 6);
    assert!(matches!(w.verdict(&q, TdxPolicy::default()), Err(TdxError::Tcb(TcbError::NoMatchingTcbLevel { .. }))));
    // Module major 0: bytes 0 and 1 are compared as components and the base tdxModule applies.
    let q = quote(&w.pki, 5, body([5, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], None), 6);
    let a = w.verdict(&q, TdxPolicy::default()).unwrap();
    assert_eq!(a.tcb.unwrap().module, None);
    let q = quote(&w.pki, 5, body([4, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], None), 6);
    assert!(matches!(w.verdict(&q, TdxPolicy::default()), Err(TdxError::Tcb(TcbError::NoMatchingTcbLevel { .. }))));
    // The QE below every QE identity level.
    let q = quote(&w.pki, 5, body(TEE, None), 3);
    assert_eq!(w.verdict(&q, TdxPolicy::default()).unwrap_err(), TdxError::Tcb(TcbError::NoQeTcbLevel { svn: 3 }));
}

#[test]
fn revoked_pck_and_debug_td() {
    let mut w = World::new();
    w.revoked_pcks = true;
    let q = quote(&w.pki, 5, body(TEE, None), 6);
    let e = w.verdict(&q, TdxPolicy::default()).unwrap_err();
    match &e {
        TdxError::PckChain(ChainError::Revoked { subject, .. }) => assert!(subject.contains("PCK Certificate")),
        other => panic!("{other}"),
    }
    let w = World::new();
    let mut b = body(TEE, None);
    b.td_attributes[0] |= 1;
    let q = quote(&w.pki, 5, b, 6);
    assert_eq!(w.verdict(&q, TdxPolicy::default()).unwrap_err(), TdxError::Debug);
    let a = w.verdict(&q, TdxPolicy { allow_debug: true, ..TdxPolicy::default() }).unwrap();
    assert!(a.warnings.contains(&TdxWarning::DebugAllowed));
}

/// Every byte of a v5 quote with a TD 1.5 body (descriptor, TEE_TCB_SVN_2, MRSERVICETD and
/// all the rest) flipped: each is rejected.
#[test]
fn every_byte_of_a_v5_td15_quote() {
    let w = World::new();
    let q = quote(&w.pki, 5, body(TEE, Some(TEE)), 6);
    let collateral = w.collateral().verify(&w.pki.trust, SystemTime::now()).unwrap();
    let config = w.config(TdxPolicy::default());
    let now = SystemTime::now();
    twi_verifier::tdx::appraise(&q, Some(&collateral), &config, now).unwrap();
    let offsets: Vec<usize> = (0..q.len()).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| {
        for part in offsets.chunks(offsets.len().div_ceil(threads)) {
            let (q, collateral, config) = (&q, &collateral, &config);
            s.spawn(move || {
                for &i in part {
                    let mut bad = q.clone();
                    bad[i] ^= 1 << (i % 8);
                    let v = twi_verifier::tdx::appraise(&bad, Some(collateral), config, now);
                    assert!(v.is_err(), "flipping byte {i} of the v5 quote went unnoticed");
                }
            });
        }
    });
}
