//! A made-up AMD PKI (ARK → ASK or ASVK → VCEK or VLEK, ECDSA P-384 where AMD uses RSA-PSS
//! above the VEK) and reports signed by its keys: Milan, Genoa and Turin shapes, report
//! versions 2..5, every KEY_INFO and policy bit the tests need.

use std::time::SystemTime;

use der::asn1::{Ia5String, Uint};
use der::{Encode, EncodePem};
use p384::ecdsa::SigningKey;
use p384::ecdsa::signature::Signer;
use p384::elliptic_curve::Generate;
use twi_attester::snp::report::{AttestationReport, EcdsaP384Signature, GuestPolicy, KeyInfo, SIGNED_LEN, TcbVersion};
use twi_verifier::chain::{Cert, Crl};
use twi_verifier::oids;
use twi_verifier::snp::{SnpConfig, SnpPolicy, SnpTrust};
use x509_cert::name::Name;

use super::{Extra, Kind, Profile, YEAR, issue, spki};

pub struct Key {
    pub key: SigningKey,
    pub cert: Cert,
}

/// A CA named `subject`, self-signed or issued by `issuer`.
pub fn ca(subject: &str, issuer: Option<&Key>) -> Key {
    let key = SigningKey::try_generate().unwrap();
    let profile = Profile {
        subject: subject.parse::<Name>().unwrap(),
        issuer: issuer.map(|i| i.cert.certificate().tbs_certificate().subject().clone()),
        kind: Kind::Ca { path_len: None },
        extra: vec![],
    };
    let signer = issuer.map_or(&key, |i| &i.key);
    let cert = issue::<_, p384::ecdsa::DerSignature>(profile, 10 * YEAR, spki(&key), signer);
    Key { cert, key }
}

fn int_ext(oid: der::asn1::ObjectIdentifier, v: u8) -> Extra {
    Extra::new(oid, Uint::new(&[v]).unwrap().to_der().unwrap())
}

/// What the VEK certificate claims.
pub struct VekSpec {
    pub cn: &'static str,
    pub product_name: &'static str,
    /// fmc (Turin only), bl, tee, snp, ucode.
    pub tcb: [u8; 5],
    pub turin: bool,
    pub hw_id: Option<Vec<u8>>,
    pub csp_id: Option<&'static str>,
}

/// A VCEK or VLEK issued by `ask`, with AMD's extensions as `spec` says.
pub fn vek(spec: &VekSpec, ask: &Key) -> Key {
    let key = SigningKey::try_generate().unwrap();
    let [fmc, bl, tee, snp, ucode] = spec.tcb;
    let mut extra = vec![
        Extra::new(oids::AMD_PRODUCT_NAME, Ia5String::new(spec.product_name).unwrap().to_der().unwrap()),
        int_ext(oids::AMD_BL_SPL, bl),
        int_ext(oids::AMD_TEE_SPL, tee),
        int_ext(oids::AMD_SNP_SPL, snp),
        int_ext(oids::AMD_UCODE_SPL, ucode),
    ];
    if spec.turin {
        extra.push(int_ext(oids::AMD_FMC_SPL, fmc));
    }
    if let Some(hw_id) = &spec.hw_id {
        extra.push(Extra::new(oids::AMD_HW_ID, hw_id.clone()));
    }
    if let Some(csp) = spec.csp_id {
        extra.push(Extra::new(oids::AMD_CSP_ID, der::asn1::Utf8StringRef::new(csp).unwrap().to_der().unwrap()));
    }
    let profile = Profile {
        subject: format!("CN={},O=Advanced Micro Devices", spec.cn).parse().unwrap(),
        issuer: Some(ask.cert.certificate().tbs_certificate().subject().clone()),
        kind: Kind::Endorsement,
        extra,
    };
    let cert = issue::<_, p384::ecdsa::DerSignature>(profile, 7 * YEAR, spki(&key), &ask.key);
    Key { cert, key }
}

/// A product's made-up ARK and ASK, the ARK configured as the only trusted root.
pub struct Pki {
    pub ark: Key,
    pub ask: Key,
    pub trust: SnpTrust,
}

pub fn pki(product: &str, intermediate: &str) -> Pki {
    let ark = ca(&format!("CN=ARK-{product},O=Advanced Micro Devices"), None);
    let ask = ca(&format!("CN={intermediate}-{product},O=Advanced Micro Devices"), Some(&ark));
    let pem = ark.cert.certificate().to_pem(der::pem::LineEnding::LF).unwrap();
    let trust = SnpTrust::from_pem(pem.as_bytes()).unwrap();
    Pki { ark, ask, trust }
}

pub fn chip_id(turin: bool) -> [u8; 64] {
    let mut id = [0u8; 64];
    let n = if turin { 8 } else { 64 };
    for (i, b) in id[..n].iter_mut().enumerate() {
        *b = 0xC0 ^ i as u8;
    }
    id
}

/// A version-`version` report from `cpuid` (family, model), to be signed with [`sign`].
pub fn report(version: u32, cpuid: (u8, u8), tcb: TcbVersion, chip: [u8; 64], key_info: u32) -> AttestationReport {
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

/// `r` signed by `key`, as bytes.
pub fn sign(mut r: AttestationReport, key: &SigningKey) -> Vec<u8> {
    let unsigned = r.to_bytes();
    let sig: p384::ecdsa::Signature = key.sign(&unsigned[..SIGNED_LEN]);
    r.signature = EcdsaP384Signature::from_big_endian_rs(&sig.to_bytes().into());
    r.to_bytes().to_vec()
}

pub fn config(trust: &SnpTrust, policy: SnpPolicy) -> SnpConfig {
    SnpConfig { trust: trust.clone(), policy }
}

pub fn now() -> SystemTime {
    SystemTime::now()
}

/// fmc 1, bl 2, tee 3, snp 4, ucode 9.
pub const TURIN_TCB: [u8; 8] = [1, 2, 3, 4, 0, 0, 0, 9];

/// A Turin PKI and a VCEK with an 8-byte hwID at [`TURIN_TCB`].
pub fn turin() -> (Pki, Key) {
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

/// A Milan PKI and a VCEK for [`chip_id`]`(false)` at bl=3 tee=0 snp=8 ucode=115.
pub fn milan() -> (Pki, Key, TcbVersion) {
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

/// A CRL by `issuer` listing `revoked`, current from `this_update` to `next_update`.
pub fn crl(issuer: &Key, revoked: &[&Cert], this_update: SystemTime, next_update: SystemTime) -> Crl {
    super::crl::<_, p384::ecdsa::DerSignature>(&issuer.cert, &issuer.key, revoked, this_update, next_update)
}
