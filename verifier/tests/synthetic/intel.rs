//! A made-up Intel PKI (SGX Root CA → PCK Platform CA → PCK leaf, and Root CA → TCB
//! Signing, ECDSA P-256 like Intel's), collateral signed under it, and quotes signed like the
//! real Quoting Enclave signs them: v4 and v5 quotes with TD 1.0 and 1.5 bodies, every TCB
//! status, module identities and QE identities the tests need.

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
use twi_verifier::chain::{Cert, Crl};
use twi_verifier::tdx::{
    Collateral, SignedJson, TdxAppraisal, TdxConfig, TdxError, TdxPolicy, TdxTrust, appraise_with,
};

use super::{Extra, Kind, Profile, YEAR, spki};

pub const FMSPC: [u8; 6] = [0x90, 0xc0, 0x6f, 0, 0, 0];
pub const SGX_COMPONENTS: [u8; 16] = [3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0];
pub const QE_MRSIGNER: [u8; 32] = [0xDC; 32];

pub struct Key {
    pub key: SigningKey,
    pub cert: Cert,
}

pub fn issue(subject: &str, issuer: Option<&Key>, kind: Kind, extra: Vec<Extra>) -> Key {
    let key = SigningKey::try_generate().unwrap();
    let profile = Profile {
        subject: subject.parse().unwrap(),
        issuer: issuer.map(|i| i.cert.certificate().tbs_certificate().subject().clone()),
        kind,
        extra,
    };
    let signer = issuer.map_or(&key, |i| &i.key);
    let cert = super::issue::<_, DerSignature>(profile, 5 * YEAR, spki(&key), signer);
    Key { cert, key }
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
pub fn sgx_extension(components: [u8; 16], pce_svn: u16) -> Extra {
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
    Extra::new(ObjectIdentifier::new_unwrap(arc), entries.to_der().unwrap())
}

/// A made-up Intel-shaped PKI: root, platform CA, PCK leaf, TCB signing.
pub struct Pki {
    pub root: Key,
    pub platform_ca: Key,
    pub pck: Key,
    pub tcb_signing: Key,
    pub trust: TdxTrust,
}

pub fn pki() -> Pki {
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

pub fn svns(v: &[u8]) -> Vec<serde_json::Value> {
    v.iter().map(|s| serde_json::json!({ "svn": s })).collect()
}

pub fn level(sgx: [u8; 16], pce: u16, tdx: [u8; 16], status: &str, advisories: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "tcb": { "sgxtcbcomponents": svns(&sgx), "pcesvn": pce, "tdxtcbcomponents": svns(&tdx) },
        "tcbDate": "2024-03-13T00:00:00Z", "tcbStatus": status, "advisoryIDs": advisories,
    })
}

pub fn dates() -> (String, String) {
    let now = SystemTime::now();
    (
        twi_verifier::time::format_rfc3339(now - Duration::from_secs(86400)),
        twi_verifier::time::format_rfc3339(now + Duration::from_secs(30 * 86400)),
    )
}

pub fn tdx(svn: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..svn.len()].copy_from_slice(svn);
    out
}

/// TCB info with `levels` and module identities (TDX_03 at ISVSVN 4 UpToDate, 2 OutOfDate).
pub fn tcb_info(levels: Vec<serde_json::Value>, module_status_at_2: &str) -> serde_json::Value {
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

pub fn qe_identity(status_at_4: &str) -> serde_json::Value {
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

pub fn signed(json: &serde_json::Value, key: &SigningKey) -> SignedJson {
    let body = json.to_string().into_bytes();
    let sig: Signature = key.sign(&body);
    SignedJson { body, signature: sig.to_bytes().into() }
}

/// A CRL by `issuer` listing `revoked`, current for the hour before and the day after now.
pub fn crl(issuer: &Key, revoked: &[&Cert]) -> Crl {
    let now = SystemTime::now();
    super::crl::<_, DerSignature>(
        &issuer.cert,
        &issuer.key,
        revoked,
        now - Duration::from_secs(3600),
        now + Duration::from_secs(86400),
    )
}

pub struct World {
    pub pki: Pki,
    pub tcb_levels: Vec<serde_json::Value>,
    pub module_status_at_2: &'static str,
    pub qe_status_at_4: &'static str,
    pub revoked_pcks: bool,
}

impl World {
    pub fn new() -> Self {
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

    pub fn collateral(&self) -> Collateral {
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

    pub fn config(&self, policy: TdxPolicy) -> TdxConfig {
        TdxConfig { trust: self.pki.trust.clone(), policy }
    }

    pub fn verdict(&self, quote: &[u8], policy: TdxPolicy) -> Result<TdxAppraisal, TdxError> {
        appraise_with(quote, Some(&self.collateral()), &self.config(policy), SystemTime::now())
    }
}

/// A quote of `version` with `body`, QE ISVSVN `qe_svn`, signed like the real QE signs.
pub fn quote(pki: &Pki, version: u16, body: TdQuoteBody, qe_svn: u16) -> Vec<u8> {
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

pub fn body(tee_tcb_svn: [u8; 16], td15: Option<[u8; 16]>) -> TdQuoteBody {
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
pub const TEE: [u8; 16] = [6, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
