//! The SEV-SNP verifier on chains and reports made here (ECDSA P-384 keys under a configured
//! root), for what the real samples do not cover: Turin (8-byte hwID, FMC SVN, its TCB
//! layout), Genoa, version 3/4/5 reports, CRLs, unsigned reports, every policy option.

use std::time::{Duration, SystemTime};

use der::asn1::{Ia5String, Uint};
use der::{Encode, EncodePem};
use p384::ecdsa::SigningKey;
use p384::ecdsa::signature::Signer;
use p384::elliptic_curve::Generate;
use twi_attester::snp::report::{
    AttestationReport, EcdsaP384Signature, GuestPolicy, KeyInfo, SIGNED_LEN, TcbLayout, TcbVersion,
};
use twi_issuer::amd::{Anchor, PolicyViolation, Product, SnpPolicy, SnpTrust};
use twi_issuer::chain::{Cert, ChainError, Crl};
use twi_issuer::oids;
use twi_issuer::snp::{self, SnpConfig, SnpError, SnpWarning};
use twi_issuer::x509::{ExtraExtension, Kind, Profile, issue, random_serial};
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::name::Name;
use x509_cert::time::Time;

const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

struct Key {
    key: SigningKey,
    cert: Cert,
}

fn spki(key: &SigningKey) -> x509_cert::spki::SubjectPublicKeyInfoOwned {
    x509_cert::spki::SubjectPublicKeyInfoOwned::from_key(key.verifying_key()).unwrap()
}

fn ca(subject: &str, issuer: Option<&Key>) -> Key {
    let key = SigningKey::try_generate().unwrap();
    let profile = Profile {
        subject: subject.parse::<Name>().unwrap(),
        issuer: issuer.map(|i| i.cert.certificate().tbs_certificate().subject().clone()),
        kind: Kind::Ca { path_len: None },
        extra: vec![],
    };
    let signer = issuer.map_or(&key, |i| &i.key);
    let cert = issue(profile, random_serial().unwrap(), 10 * YEAR, spki(&key), signer).unwrap();
    Key { cert: Cert::from_certificate(&cert).unwrap(), key }
}

fn int_ext(oid: der::asn1::ObjectIdentifier, v: u8) -> ExtraExtension {
    ExtraExtension { oid, critical: false, value_der: Uint::new(&[v]).unwrap().to_der().unwrap() }
}

/// What the VEK certificate claims.
struct VekSpec {
    cn: &'static str,
    product_name: &'static str,
    tcb: [u8; 5], // fmc (Turin only), bl, tee, snp, ucode
    turin: bool,
    hw_id: Option<Vec<u8>>,
    csp_id: Option<&'static str>,
}

fn vek(spec: &VekSpec, ask: &Key) -> Key {
    let key = SigningKey::try_generate().unwrap();
    let [fmc, bl, tee, snp, ucode] = spec.tcb;
    let mut extra = vec![
        ExtraExtension {
            oid: oids::AMD_PRODUCT_NAME,
            critical: false,
            value_der: Ia5String::new(spec.product_name).unwrap().to_der().unwrap(),
        },
        int_ext(oids::AMD_BL_SPL, bl),
        int_ext(oids::AMD_TEE_SPL, tee),
        int_ext(oids::AMD_SNP_SPL, snp),
        int_ext(oids::AMD_UCODE_SPL, ucode),
    ];
    if spec.turin {
        extra.push(int_ext(oids::AMD_FMC_SPL, fmc));
    }
    if let Some(hw_id) = &spec.hw_id {
        extra.push(ExtraExtension { oid: oids::AMD_HW_ID, critical: false, value_der: hw_id.clone() });
    }
    if let Some(csp) = spec.csp_id {
        extra.push(ExtraExtension {
            oid: oids::AMD_CSP_ID,
            critical: false,
            value_der: der::asn1::Utf8StringRef::new(csp).unwrap().to_der().unwrap(),
        });
    }
    let profile = Profile {
        subject: format!("CN={},O=Advanced Micro Devices", spec.cn).parse().unwrap(),
        issuer: Some(ask.cert.certificate().tbs_certificate().subject().clone()),
        kind: Kind::Endorsement,
        extra,
    };
    let cert = issue(profile, random_serial().unwrap(), 7 * YEAR, spki(&key), &ask.key).unwrap();
    Key { cert: Cert::from_certificate(&cert).unwrap(), key }
}

/// A product's made-up ARK and ASK, the ARK configured as the only trusted root.
struct Pki {
    ark: Key,
    ask: Key,
    trust: SnpTrust,
}

fn pki(product: &str, intermediate: &str) -> Pki {
    let ark = ca(&format!("CN=ARK-{product},O=Advanced Micro Devices"), None);
    let ask = ca(&format!("CN={intermediate}-{product},O=Advanced Micro Devices"), Some(&ark));
    let pem = ark.cert.certificate().to_pem(der::pem::LineEnding::LF).unwrap();
    let trust = SnpTrust::from_pem(pem.as_bytes()).unwrap();
    Pki { ark, ask, trust }
}

fn chip_id(turin: bool) -> [u8; 64] {
    let mut id = [0u8; 64];
    let n = if turin { 8 } else { 64 };
    for (i, b) in id[..n].iter_mut().enumerate() {
        *b = 0xC0 ^ i as u8;
    }
    id
}

/// A version-`version` report from `cpuid` (family, model), signed by `signer`.
fn report(version: u32, cpuid: (u8, u8), tcb: TcbVersion, chip: [u8; 64], key_info: u32) -> AttestationReport {
    AttestationReport {
        version,
        guest_svn: 1,
        policy: GuestPolicy(0x30000),
        family_id: [1; 16],
        image_id: [2; 16],
        vmpl: 0,
        signature_algo: 1,
        current_tcb: tcb,
        platform_info: 0,
        key_info: KeyInfo(key_info),
        report_data: [0x5A; 64],
        measurement: [0x4D; 48],
        host_data: [0x48; 32],
        id_key_digest: [0; 48],
        author_key_digest: [0; 48],
        report_id: [3; 32],
        report_id_ma: [0xFF; 32],
        reported_tcb: tcb,
        cpuid_fam_id: cpuid.0,
        cpuid_mod_id: cpuid.1,
        cpuid_step: 1,
        chip_id: chip,
        committed_tcb: tcb,
        current_build: 3,
        current_minor: 58,
        current_major: 1,
        committed_build: 3,
        committed_minor: 58,
        committed_major: 1,
        launch_tcb: tcb,
        launched_mit_vector: 0,
        current_mit_vector: 0,
        signature: EcdsaP384Signature { r: [0; 72], s: [0; 72] },
    }
}

fn sign(mut r: AttestationReport, key: &SigningKey) -> Vec<u8> {
    let unsigned = r.to_bytes();
    let sig: p384::ecdsa::Signature = key.sign(&unsigned[..SIGNED_LEN]);
    r.signature = EcdsaP384Signature::from_big_endian_rs(&sig.to_bytes().into());
    r.to_bytes().to_vec()
}

fn config(trust: &SnpTrust, policy: SnpPolicy) -> SnpConfig {
    SnpConfig { trust: trust.clone(), policy }
}

fn now() -> SystemTime {
    SystemTime::now()
}

const TURIN_TCB: [u8; 8] = [1, 2, 3, 4, 0, 0, 0, 9]; // fmc 1, bl 2, tee 3, snp 4, ucode 9

fn turin() -> (Pki, Key) {
    let pki = pki("Turin", "SEV");
    let vcek = vek(
        &VekSpec {
            cn: "SEV-VCEK",
            product_name: "Turin-B0",
            tcb: [1, 2, 3, 4, 9],
            turin: true,
            hw_id: Some(chip_id(true)[..8].to_vec()),
            csp_id: None,
        },
        &pki.ask,
    );
    (pki, vcek)
}

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
    assert_eq!(a.signer, twi_issuer::amd::VekKind::Vlek);
    assert_eq!(a.product, Some(Product::Genoa));
    // The same VLEK cannot pass as a VCEK.
    let bytes = sign(report(5, (0x19, 0x11), tcb, [0; 64], 2), &vlek.key);
    let e = snp::appraise(&bytes, &certs, &[], &config(&pki.trust, SnpPolicy::default()), now()).unwrap_err();
    assert!(matches!(e.error, SnpError::SignerMismatch { report: "VCEK", .. }), "{e}");
}

fn milan() -> (Pki, Key, TcbVersion) {
    let pki = pki("Milan", "SEV");
    let tcb = TcbVersion(u64::from_le_bytes([3, 0, 0, 0, 0, 0, 8, 115]));
    let vcek = vek(
        &VekSpec {
            cn: "SEV-VCEK",
            product_name: "Milan-B0",
            tcb: [0, 3, 0, 8, 115],
            turin: false,
            hw_id: Some(chip_id(false).to_vec()),
            csp_id: None,
        },
        &pki.ask,
    );
    (pki, vcek, tcb)
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

fn crl(issuer: &Key, revoked: &[&Cert], this_update: SystemTime, next_update: SystemTime) -> Crl {
    let alg = x509_cert::spki::AlgorithmIdentifierOwned { oid: oids::ECDSA_WITH_SHA384, parameters: None };
    let tbs = TbsCertList {
        version: x509_cert::Version::V2,
        signature: alg.clone(),
        issuer: issuer.cert.certificate().tbs_certificate().subject().clone(),
        this_update: Time::try_from(this_update).unwrap(),
        next_update: Some(Time::try_from(next_update).unwrap()),
        revoked_certificates: (!revoked.is_empty()).then(|| {
            revoked
                .iter()
                .map(|c| RevokedCert {
                    serial_number: c.certificate().tbs_certificate().serial_number().clone(),
                    revocation_date: Time::try_from(this_update).unwrap(),
                    crl_entry_extensions: None,
                })
                .collect()
        }),
        crl_extensions: None,
    };
    let sig: p384::ecdsa::DerSignature = issuer.key.sign(&tbs.to_der().unwrap());
    let list = CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: alg,
        signature: der::asn1::BitString::from_bytes(sig.as_bytes()).unwrap(),
    };
    Crl::from_der(&list.to_der().unwrap(), "test CRL").unwrap()
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

/// The issuing flow with (non-simulated) SEV-SNP evidence: refused until the issuer accepts
/// hardware SNP, then issued on the typed appraisal when REPORTDATA binds nonce and key.
#[test]
fn issuer_issues_on_hardware_snp_evidence() {
    use twi_issuer::{EvidenceBundle, Issuer, IssuerConfig, Rejection};
    use twi_proto::msg::Platform;
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
    let appraisal = issued.appraisal.snp.as_ref().unwrap();
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
