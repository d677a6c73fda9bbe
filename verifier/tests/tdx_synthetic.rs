//! The TDX verifier on quotes and collateral made here (a P-256 PKI shaped like Intel's under
//! a configured root), for what the real samples do not cover: quote v5 with TD 1.0 and 1.5
//! bodies, every TCB status and its decision, TDX module identities, the TD 1.5 relaunch rule,
//! QE identity mismatches, revoked PCK certificates, debuggable TDs.

use std::time::{Duration, SystemTime};

use der::asn1::{Any, ObjectIdentifier, OctetString};
use der::{Encode, EncodePem, Sequence, Tag};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{DerSignature, Signature, SigningKey};
use p256::elliptic_curve::Generate;
use sha2::{Digest, Sha256};
use twi_attester::tdx::enclave_report::EnclaveReport;
use twi_attester::tdx::quote::{ATT_KEY_TYPE_ECDSA_P256, INTEL_QE_VENDOR_ID, Quote, QuoteHeader, TEE_TYPE_TDX};
use twi_attester::tdx::td_report::TdQuoteBody;
use twi_issuer::chain::{Cert, ChainError, Crl};
use twi_issuer::oids;
use twi_issuer::tdx::collateral::{Collateral, SignedJson};
use twi_issuer::tdx::tcb::TcbError;
use twi_issuer::tdx::verify::appraise_with;
use twi_issuer::tdx::{TcbStatus, TdxAnchor, TdxConfig, TdxError, TdxPolicy, TdxTrust, TdxWarning};
use twi_issuer::x509::{ExtraExtension, Kind, Profile, random_serial};
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::time::{Time, Validity};

const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
const FMSPC: [u8; 6] = [0x90, 0xc0, 0x6f, 0, 0, 0];
const SGX_COMPONENTS: [u8; 16] = [3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0];
const QE_MRSIGNER: [u8; 32] = [0xDC; 32];

struct Key {
    key: SigningKey,
    cert: Cert,
}

fn issue(subject: &str, issuer: Option<&Key>, kind: Kind, extra: Vec<ExtraExtension>) -> Key {
    let key = SigningKey::try_generate().unwrap();
    let profile = Profile {
        subject: subject.parse().unwrap(),
        issuer: issuer.map(|i| i.cert.certificate().tbs_certificate().subject().clone()),
        kind,
        extra,
    };
    let spki = x509_cert::spki::SubjectPublicKeyInfoOwned::from_key(key.verifying_key()).unwrap();
    let builder =
        CertificateBuilder::new(profile, random_serial().unwrap(), Validity::from_now(5 * YEAR).unwrap(), spki)
            .unwrap();
    let signer = issuer.map_or(&key, |i| &i.key);
    let cert = builder.build::<_, DerSignature>(signer).unwrap();
    Key { cert: Cert::from_certificate(&cert).unwrap(), key }
}

#[derive(Sequence)]
struct Entry {
    oid: ObjectIdentifier,
    value: Any,
}

fn entry(oid: &str, value: Any) -> Entry {
    Entry { oid: ObjectIdentifier::new_unwrap(oid), value }
}

fn octets(b: &[u8]) -> Any {
    Any::encode_from(&OctetString::new(b).unwrap()).unwrap()
}

/// The PCK leaf's SGX extension (Intel PCK certificate profile).
fn sgx_extension(components: [u8; 16], pce_svn: u16) -> ExtraExtension {
    let arc = "1.2.840.113741.1.13.1";
    let mut tcb: Vec<Entry> =
        (1..=16).map(|i| entry(&format!("{arc}.2.{i}"), Any::encode_from(&components[i - 1]).unwrap())).collect();
    tcb.push(entry(&format!("{arc}.2.17"), Any::encode_from(&pce_svn).unwrap()));
    tcb.push(entry(&format!("{arc}.2.18"), octets(&components)));
    let entries = vec![
        entry(&format!("{arc}.1"), octets(&[0x11; 16])),
        entry(&format!("{arc}.2"), Any::encode_from(&tcb).unwrap()),
        entry(&format!("{arc}.3"), octets(&[0, 0])),
        entry(&format!("{arc}.4"), octets(&FMSPC)),
        entry(&format!("{arc}.5"), Any::new(Tag::Enumerated, [1u8]).unwrap()),
    ];
    ExtraExtension { oid: ObjectIdentifier::new_unwrap(arc), critical: false, value_der: entries.to_der().unwrap() }
}

/// A made-up Intel-shaped PKI: root, platform CA, PCK leaf, TCB signing.
struct Pki {
    root: Key,
    platform_ca: Key,
    pck: Key,
    tcb_signing: Key,
    trust: TdxTrust,
}

fn pki() -> Pki {
    let root = issue("CN=Test SGX Root CA,O=Test", None, Kind::Ca { path_len: Some(1) }, vec![]);
    let platform_ca = issue("CN=Test SGX PCK Platform CA,O=Test", Some(&root), Kind::Ca { path_len: Some(0) }, vec![]);
    let pck = issue(
        "CN=Test SGX PCK Certificate,O=Test",
        Some(&platform_ca),
        Kind::Endorsement,
        vec![sgx_extension(SGX_COMPONENTS, 11)],
    );
    let tcb_signing = issue("CN=Test SGX TCB Signing,O=Test", Some(&root), Kind::Endorsement, vec![]);
    let pem = root.cert.certificate().to_pem(der::pem::LineEnding::LF).unwrap();
    let trust = TdxTrust::from_pem(pem.as_bytes()).unwrap();
    Pki { root, platform_ca, pck, tcb_signing, trust }
}

fn svns(v: &[u8]) -> Vec<serde_json::Value> {
    v.iter().map(|s| serde_json::json!({ "svn": s })).collect()
}

fn level(sgx: [u8; 16], pce: u16, tdx: [u8; 16], status: &str, advisories: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "tcb": { "sgxtcbcomponents": svns(&sgx), "pcesvn": pce, "tdxtcbcomponents": svns(&tdx) },
        "tcbDate": "2024-03-13T00:00:00Z", "tcbStatus": status, "advisoryIDs": advisories,
    })
}

fn dates() -> (String, String) {
    let now = SystemTime::now();
    (
        twi_issuer::time::format_rfc3339(now - Duration::from_secs(86400)),
        twi_issuer::time::format_rfc3339(now + Duration::from_secs(30 * 86400)),
    )
}

fn tdx(svn: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..svn.len()].copy_from_slice(svn);
    out
}

/// TCB info with `levels` and module identities (TDX_03 at ISVSVN 4 UpToDate, 2 OutOfDate).
fn tcb_info(levels: Vec<serde_json::Value>, module_status_at_2: &str) -> serde_json::Value {
    let (issue, next) = dates();
    serde_json::json!({
        "id": "TDX", "version": 3, "issueDate": issue, "nextUpdate": next,
        "fmspc": hex::encode_upper(FMSPC), "pceId": "0000", "tcbType": 0, "tcbEvaluationDataNumber": 18,
        "tdxModule": { "mrsigner": "00".repeat(48), "attributes": "0000000000000000", "attributesMask": "FFFFFFFFFFFFFFFF" },
        "tdxModuleIdentities": [{
            "id": "TDX_03", "mrsigner": "00".repeat(48), "attributes": "0000000000000000",
            "attributesMask": "FFFFFFFFFFFFFFFF",
            "tcbLevels": [
                { "tcb": { "isvsvn": 4 }, "tcbDate": "2024-03-13T00:00:00Z", "tcbStatus": "UpToDate" },
                { "tcb": { "isvsvn": 2 }, "tcbDate": "2023-08-09T00:00:00Z", "tcbStatus": module_status_at_2,
                  "advisoryIDs": ["INTEL-SA-MODULE"] },
            ],
        }],
        "tcbLevels": levels,
    })
}

fn qe_identity(status_at_4: &str) -> serde_json::Value {
    let (issue, next) = dates();
    serde_json::json!({
        "id": "TD_QE", "version": 2, "issueDate": issue, "nextUpdate": next, "tcbEvaluationDataNumber": 18,
        "miscselect": "00000000", "miscselectMask": "FFFFFFFF",
        "attributes": "11000000000000000000000000000000", "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000",
        "mrsigner": hex::encode_upper(QE_MRSIGNER), "isvprodid": 2,
        "tcbLevels": [
            { "tcb": { "isvsvn": 6 }, "tcbDate": "2024-03-13T00:00:00Z", "tcbStatus": "UpToDate" },
            { "tcb": { "isvsvn": 4 }, "tcbDate": "2023-02-15T00:00:00Z", "tcbStatus": status_at_4,
              "advisoryIDs": ["INTEL-SA-QE"] },
        ],
    })
}

fn signed(json: &serde_json::Value, key: &SigningKey) -> SignedJson {
    let body = json.to_string().into_bytes();
    let sig: Signature = key.sign(&body);
    SignedJson { body, signature: sig.to_bytes().into() }
}

fn crl(issuer: &Key, revoked: &[&Cert]) -> Crl {
    let alg = x509_cert::spki::AlgorithmIdentifierOwned { oid: oids::ECDSA_WITH_SHA256, parameters: None };
    let now = SystemTime::now();
    let tbs = TbsCertList {
        version: x509_cert::Version::V2,
        signature: alg.clone(),
        issuer: issuer.cert.certificate().tbs_certificate().subject().clone(),
        this_update: Time::try_from(now - Duration::from_secs(3600)).unwrap(),
        next_update: Some(Time::try_from(now + Duration::from_secs(86400)).unwrap()),
        revoked_certificates: (!revoked.is_empty()).then(|| {
            revoked
                .iter()
                .map(|c| RevokedCert {
                    serial_number: c.certificate().tbs_certificate().serial_number().clone(),
                    revocation_date: Time::try_from(now - Duration::from_secs(60)).unwrap(),
                    crl_entry_extensions: None,
                })
                .collect()
        }),
        crl_extensions: None,
    };
    let sig: DerSignature = issuer.key.sign(&tbs.to_der().unwrap());
    let list = CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: alg,
        signature: der::asn1::BitString::from_bytes(sig.as_bytes()).unwrap(),
    };
    Crl::from_der(&list.to_der().unwrap(), "test CRL").unwrap()
}

struct World {
    pki: Pki,
    tcb_levels: Vec<serde_json::Value>,
    module_status_at_2: &'static str,
    qe_status_at_4: &'static str,
    revoked_pcks: bool,
}

impl World {
    fn new() -> Self {
        let up = level([2, 2, 2, 2, 3, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0], 11, tdx(&[5, 0, 2]), "UpToDate", &[]);
        let old = level(
            [2, 2, 2, 2, 3, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0],
            5,
            tdx(&[5, 0, 2]),
            "OutOfDate",
            &["INTEL-SA-00837"],
        );
        Self {
            pki: pki(),
            tcb_levels: vec![up, old],
            module_status_at_2: "OutOfDate",
            qe_status_at_4: "OutOfDate",
            revoked_pcks: false,
        }
    }

    fn collateral(&self) -> Collateral {
        let p = &self.pki;
        let chain = vec![p.tcb_signing.cert.clone(), p.root.cert.clone()];
        let revoked: Vec<&Cert> = if self.revoked_pcks { vec![&p.pck.cert] } else { vec![] };
        Collateral {
            tcb_info: signed(&tcb_info(self.tcb_levels.clone(), self.module_status_at_2), &p.tcb_signing.key),
            tcb_info_chain: chain.clone(),
            qe_identity: signed(&qe_identity(self.qe_status_at_4), &p.tcb_signing.key),
            qe_identity_chain: chain,
            pck_crl: Some(crl(&p.platform_ca, &revoked)),
            root_ca_crl: Some(crl(&p.root, &[])),
            source: "synthetic".into(),
        }
    }

    fn config(&self, policy: TdxPolicy) -> TdxConfig {
        TdxConfig { trust: self.pki.trust.clone(), policy }
    }

    fn verdict(&self, quote: &[u8], policy: TdxPolicy) -> Result<twi_issuer::tdx::TdxAppraisal, TdxError> {
        appraise_with(quote, Some(&self.collateral()), &self.config(policy), SystemTime::now())
    }
}

/// A quote of `version` with `body`, QE ISVSVN `qe_svn`, signed like the real QE signs.
fn quote(pki: &Pki, version: u16, body: TdQuoteBody, qe_svn: u16) -> Vec<u8> {
    let att = SigningKey::try_generate().unwrap();
    let att_point = att.verifying_key().to_sec1_point(false);
    let att_key: [u8; 64] = att_point.as_bytes()[1..].try_into().unwrap();
    let auth = [0x42u8; 32];
    let mut report_data = [0u8; 64];
    report_data[..32].copy_from_slice(&Sha256::new().chain_update(att_key).chain_update(auth).finalize());
    let mut attributes = [0u8; 16];
    attributes[0] = 0x15;
    attributes[8] = 0xE7;
    let qe = EnclaveReport {
        cpu_svn: [3; 16],
        misc_select: 0,
        reserved_1: [0; 28],
        attributes,
        mr_enclave: [0xE5; 32],
        reserved_2: [0; 32],
        mr_signer: QE_MRSIGNER,
        reserved_3: [0; 96],
        isv_prod_id: 2,
        isv_svn: qe_svn,
        reserved_4: [0; 60],
        report_data,
    }
    .to_bytes();
    let qe_sig: Signature = pki.pck.key.sign(&qe);
    let mut pem = String::new();
    for c in [&pki.pck, &pki.platform_ca, &pki.root] {
        pem.push_str(&c.cert.certificate().to_pem(der::pem::LineEnding::LF).unwrap());
    }
    let mut pem = pem.into_bytes();
    pem.push(0);
    let mut q = Quote {
        header: QuoteHeader {
            version,
            att_key_type: ATT_KEY_TYPE_ECDSA_P256,
            tee_type: TEE_TYPE_TDX,
            reserved: [0; 4],
            qe_vendor_id: INTEL_QE_VENDOR_ID,
            user_data: [7; 20],
        },
        body,
        signature: [0; 64],
        attestation_key: att_key,
        qe_report: qe,
        qe_report_signature: qe_sig.to_bytes().into(),
        qe_auth_data: &auth,
        pck_chain: &pem,
    };
    let mut out = vec![0u8; q.encoded_len()];
    q.encode(&mut out).unwrap();
    let sig: Signature = att.sign(&out[..q.signed_len()]);
    q.signature = sig.to_bytes().into();
    q.encode(&mut out).unwrap();
    out
}

fn body(tee_tcb_svn: [u8; 16], td15: Option<[u8; 16]>) -> TdQuoteBody {
    TdQuoteBody {
        tee_tcb_svn,
        mr_seam: [0x5E; 48],
        mr_signer_seam: [0; 48],
        seam_attributes: [0; 8],
        td_attributes: [0, 0, 0, 0x10, 0, 0, 0, 0],
        xfam: [0xE7, 0x02, 0x06, 0, 0, 0, 0, 0],
        mr_td: [0x4D; 48],
        mr_config_id: [0; 48],
        mr_owner: [0; 48],
        mr_owner_config: [0; 48],
        rtmr: [[1; 48], [2; 48], [3; 48], [0; 48]],
        report_data: [0x5A; 64],
        tee_tcb_svn_2: td15,
        mr_service_td: td15.map(|_| [0; 48]),
    }
}

/// Module major version 3 at minor 6: TDX_03, UpToDate.
const TEE: [u8; 16] = [6, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

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
    twi_issuer::tdx::verify::appraise(&q, Some(&collateral), &config, now).unwrap();
    let offsets: Vec<usize> = (0..q.len()).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| {
        for part in offsets.chunks(offsets.len().div_ceil(threads)) {
            let (q, collateral, config) = (&q, &collateral, &config);
            s.spawn(move || {
                for &i in part {
                    let mut bad = q.clone();
                    bad[i] ^= 1 << (i % 8);
                    let v = twi_issuer::tdx::verify::appraise(&bad, Some(collateral), config, now);
                    assert!(v.is_err(), "flipping byte {i} of the v5 quote went unnoticed");
                }
            });
        }
    });
}

/// The issuing flow with TDX evidence: the quote binds the issuer's nonce and the workload's
/// key in REPORTDATA, and the credential is issued on the typed appraisal.
#[test]
fn issuer_issues_on_a_bound_tdx_quote() {
    use twi_issuer::{EvidenceBundle, Issuer, IssuerConfig, Rejection};
    use twi_proto::msg::Platform;
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
    assert_eq!(issued.appraisal.tdx.as_ref().unwrap().tcb.as_ref().unwrap().status, TcbStatus::UpToDate);

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
