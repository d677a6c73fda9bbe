//! Real credentials for the relying party's tests, issued by the TWI issuer (`twi_issuer`)
//! through its whole pipeline: SEV-SNP evidence signed under the made-up AMD PKI of the
//! verifier's tests, appraised under an appraisal policy that admits two builds (two
//! measurements) of `payroll-app` and one of `ledger`, then an X.509 credential and a WIT for
//! each launch's key.
// Shared by several test crates, each of which uses part of it.
#![allow(dead_code)]

pub mod net;

use std::sync::OnceLock;

use p384::ecdsa::SigningKey;
use p384::elliptic_curve::Generate;
use twi_issuer::policy::Policy;
use twi_issuer::{CredentialRequest, Evidence, EvidenceBundle, Issuer, IssuerConfig};
use twi_proto::msg::{CredentialKind, Platform};
use twi_verifier::snp::SnpPolicy;

use crate::synthetic::amd;

pub const APP: &str = "spiffe://example.org/payroll-app";
pub const LEDGER: &str = "spiffe://example.org/ledger";
pub const V1: [u8; 48] = [0x11; 48];
pub const V2: [u8; 48] = [0x22; 48];
pub const LEDGER_BUILD: [u8; 48] = [0x33; 48];

/// One launch's credentials.
pub struct Launch {
    pub identity: String,
    pub measurement: Vec<u8>,
    /// The credential's key: the key the runtime keeps in its vault.
    pub key: SigningKey,
    pub certificate_pem: String,
    pub certificate_der: Vec<u8>,
    pub wit: String,
}

/// The issuer's published material and the launches it issued for.
pub struct World {
    pub issuer_ca_pem: String,
    /// `{"keys": [WIT key, Verifier key, log key]}`, as `twi run` writes `issuer-jwks.json`.
    pub issuer_jwks: String,
    /// The issuer's WIT key (from its state directory), for tokens the pipeline would not make.
    pub wit_key: SigningKey,
    /// The issuer CA's key (PKCS#8 PEM, from its state directory), for certificates the
    /// pipeline would make only on other evidence (the simulated TEE's).
    pub ca_key_pem: String,
    pub v1: Launch,
    pub v2: Launch,
    pub ledger: Launch,
}

const POLICY: &str = r#"
version = "rp-test-1"
trust_domain = "example.org"

[[workload]]
id = "payroll-app"
# The credentials here come from the Credential Authority on evidence (mechanism c).
mechanism = "c"
[workload.claims]
location = "DE"
handles-pii = true

[[workload.reference]]
label = "v1"
platform = "snp"
measurement = "111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111"

[[workload.reference]]
label = "v2 (changed code)"
platform = "snp"
measurement = "222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222"

[[workload]]
id = "ledger"
mechanism = "c"
[workload.claims]
location = "US"
handles-pii = true

[[workload.reference]]
label = "v1"
platform = "snp"
measurement = "333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333"
"#;

/// The shared credentials (issued once per test process).
pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(issue_all)
}

fn issue_all() -> World {
    let (pki, vcek, tcb) = amd::milan();
    let state = tempfile::tempdir().unwrap();
    let config = IssuerConfig { trust_domain: "example.org".into(), sim_snp_root: None };
    let mut issuer = Issuer::open(state.path(), config, Policy::from_toml(POLICY).unwrap()).unwrap();
    issuer.accept_hardware_snp(amd::config(&pki.trust, SnpPolicy::default()));
    let endorsements: Vec<Vec<u8>> =
        [&vcek.cert, &pki.ask.cert, &pki.ark.cert].iter().map(|c| c.der().to_vec()).collect();
    let launch = |measurement: [u8; 48]| {
        let key = SigningKey::try_generate().unwrap();
        let public_key = key.verifying_key().to_sec1_point(false).as_bytes().to_vec();
        let target = twi_testkit::tacra::TARGET;
        let nonce = issuer.initiate(Platform::Snp, &measurement, target, CredentialKind::X509, None).unwrap().nonce;
        let mut report = amd::report(3, (0x19, 0x01), tcb, amd::chip_id(false), 0);
        let (report_data, csr) = twi_testkit::tacra::enroll(&key, &nonce, &issuer.rp_id(), target);
        report.report_data = report_data;
        report.measurement = measurement;
        let evidence = amd::sign(report, &vcek.key);
        let bundle = EvidenceBundle {
            platform: Platform::Snp,
            evidence: &evidence,
            public_key: &public_key,
            nonce: &nonce,
            target,
            csr: Some(&csr),
            endorsements: &endorsements,
        };
        let request = CredentialRequest::Evidence { evidence: Evidence { bundle, events: &[] }, renewal_of: None };
        let issued =
            issuer.ca_credential(request).unwrap_or_else(|e| panic!("the issuer refused the test launch: {e}"));
        assert_eq!(issued.appraisal.verified.measurement, measurement, "the credential is for this launch");
        Launch {
            identity: issued.workload_id.clone(),
            measurement: issued.appraisal.verified.measurement.to_vec(),
            key,
            certificate_pem: issued.certificate_pem.clone(),
            certificate_der: issued.certificate_der.clone(),
            wit: issued.wit,
        }
    };
    let (v1, v2, ledger) = (launch(V1), launch(V2), launch(LEDGER_BUILD));
    let issuer_jwks = issuer.published_keys().jwks().to_string();
    let wit_key = {
        use p384::pkcs8::DecodePrivateKey;
        SigningKey::from_pkcs8_pem(&std::fs::read_to_string(state.path().join("wit-key.pem")).unwrap()).unwrap()
    };
    let ca_key_pem = std::fs::read_to_string(state.path().join("issuer-ca.key.pem")).unwrap();
    let issuer_ca_pem = issuer.ca().unwrap().certificate_pem().to_string();
    World { issuer_ca_pem, issuer_jwks, wit_key, ca_key_pem, v1, v2, ledger }
}

/// A credential for `identity` from a CA that is not the relying party's issuer CA, though it
/// bears its name (another state's issuer CA, as the test kit's CA plays it).
pub fn foreign_certificate(identity: &str) -> (String, SigningKey) {
    let ca = twi_testkit::certs::TestCa::new(0xF0_4E16, "CN=TWI issuer CA for example.org,O=TWI");
    let key = SigningKey::try_generate().unwrap();
    let der = ca.issue_workload(key.verifying_key().to_sec1_point(false).as_bytes(), identity);
    (der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &der).unwrap(), key)
}

/// A credential for `identity` and `key` as the issuer CA signs it on the simulated TEE: with
/// the critical simulated-TEE extension `marker` (`ca_key_pem`: the issuer CA's key, or another).
pub fn simulated_certificate(identity: &str, key: &SigningKey, marker: &str, ca_key_pem: &str) -> String {
    use der::Encode;
    let subject = twi_testkit::certs::name("CN=TWI issuer CA for example.org,O=TWI");
    let ca = twi_testkit::certs::TestCa::from_pem(ca_key_pem, subject);
    let value_der = der::asn1::Utf8StringRef::new("sim-snp").unwrap().to_der().unwrap();
    let extra = twi_testkit::certs::Extra { oid: marker.parse().unwrap(), critical: true, value_der };
    let spki = twi_testkit::certs::p384_spki(key.verifying_key().to_sec1_point(false).as_bytes());
    let der = ca.issue_der(twi_testkit::certs::Kind::Workload { uri: identity.into() }, vec![extra], spki);
    der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &der).unwrap()
}

/// A client certificate for `identity` (one URI SAN, EKU clientAuth) from a freshly made CA
/// with a name of its own (rcgen), for `key`.
pub fn stranger_certificate(identity: &str, key: &SigningKey) -> String {
    use p384::pkcs8::EncodePrivateKey;
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Some other CA");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let der = key.to_pkcs8_der().unwrap();
    let leaf_key = rcgen::KeyPair::try_from(der.as_bytes()).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = vec![rcgen::SanType::URI(identity.try_into().unwrap())];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    params.signed_by(&leaf_key, &issuer).unwrap().pem()
}
