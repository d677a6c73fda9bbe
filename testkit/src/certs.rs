//! Certificates for tests, built with the RustCrypto `x509-cert` builder under RFC 5280
//! ("Internet X.509 Public Key Infrastructure Certificate and CRL Profile") profiles: a CA
//! (basicConstraints cA, keyCertSign), a key endorsement (a VCEK, a PCK leaf: digitalSignature
//! only), and a workload credential shaped like a SPIFFE X.509-SVID (exactly one URI SAN,
//! digitalSignature, EKU serverAuth + clientAuth) — plus CRLs.
//!
//! Independent of the issuer's own certificate builder on purpose: the runtime's and the
//! verifier's tests check what *they* accept, and must not pass because the issuer and the
//! test share a mistake. [`TestCa`] is a seeded CA for the common case.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use der::Encode;
use der::asn1::{Ia5String, ObjectIdentifier, OctetString};
use p384::ecdsa::SigningKey;
use p384::ecdsa::signature::{Keypair, Signer};
use x509_cert::Certificate;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::TbsCertificate;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName,
    SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{
    DynSignatureAlgorithmIdentifier, EncodePublicKey, SignatureBitStringEncoding, SubjectPublicKeyInfoOwned,
    SubjectPublicKeyInfoRef,
};
use x509_cert::time::{Time, Validity};

use crate::rng::{key_from_seed, public_sec1};

/// A year, for lifetimes.
pub const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
/// The lifetime of a [`TestCa`]'s credentials.
pub const LIFETIME: Duration = Duration::from_secs(3600);

const SERVER_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.1");
const CLIENT_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");

/// An extension added verbatim (its value's DER).
#[derive(Clone, Debug)]
pub struct Extra {
    pub oid: ObjectIdentifier,
    pub critical: bool,
    pub value_der: Vec<u8>,
}

impl Extra {
    /// A non-critical extension.
    pub fn new(oid: ObjectIdentifier, value_der: Vec<u8>) -> Self {
        Self { oid, critical: false, value_der }
    }
}

/// What a certificate is for.
#[derive(Clone, Debug)]
pub enum Kind {
    /// basicConstraints cA=true (critical), keyUsage keyCertSign|cRLSign (critical).
    Ca { path_len: Option<u8> },
    /// An end-entity signing key (a VCEK, a PCK leaf, TCB Signing): keyUsage
    /// digitalSignature (critical), nothing else.
    Endorsement,
    /// A workload credential: basicConstraints cA=false (critical), keyUsage digitalSignature
    /// (critical), EKU serverAuth + clientAuth, exactly one URI SAN (critical when the subject
    /// is empty, RFC 5280 §4.2.1.6).
    Workload { uri: String },
}

/// Subject, issuer (`None`: self-signed), kind, and extra extensions.
#[derive(Debug)]
pub struct Profile {
    pub subject: Name,
    pub issuer: Option<Name>,
    pub kind: Kind,
    pub extra: Vec<Extra>,
}

/// A distinguished name from its string form (`CN=...,O=...`).
pub fn name(dn: &str) -> Name {
    dn.parse().unwrap_or_else(|e| panic!("{dn:?} is not a distinguished name: {e}"))
}

fn extension<T: Encode>(oid: ObjectIdentifier, critical: bool, value: &T) -> x509_cert::builder::Result<Extension> {
    Ok(Extension { extn_id: oid, critical, extn_value: OctetString::new(value.to_der()?)? })
}

impl Profile {
    fn kind_extensions(&self) -> x509_cert::builder::Result<Vec<Extension>> {
        use der::oid::AssociatedOid;
        let digital_signature = || extension(KeyUsage::OID, true, &KeyUsage(KeyUsages::DigitalSignature.into()));
        Ok(match &self.kind {
            Kind::Ca { path_len } => vec![
                extension(BasicConstraints::OID, true, &BasicConstraints { ca: true, path_len_constraint: *path_len })?,
                extension(KeyUsage::OID, true, &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign))?,
            ],
            Kind::Endorsement => vec![digital_signature()?],
            Kind::Workload { uri } => {
                let san = SubjectAltName(vec![GeneralName::UniformResourceIdentifier(Ia5String::new(uri)?)]);
                vec![
                    extension(BasicConstraints::OID, true, &BasicConstraints { ca: false, path_len_constraint: None })?,
                    digital_signature()?,
                    extension(ExtendedKeyUsage::OID, false, &ExtendedKeyUsage(vec![SERVER_AUTH, CLIENT_AUTH]))?,
                    extension(SubjectAltName::OID, self.subject.is_empty(), &san)?,
                ]
            }
        })
    }
}

impl BuilderProfile for Profile {
    fn get_issuer(&self, subject: &Name) -> Name {
        self.issuer.clone().unwrap_or_else(|| subject.clone())
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        use der::oid::AssociatedOid;
        let mut out = vec![extension(SubjectKeyIdentifier::OID, false, &SubjectKeyIdentifier::try_from(spk)?)?];
        if self.issuer.is_some() {
            out.push(extension(AuthorityKeyIdentifier::OID, false, &AuthorityKeyIdentifier::try_from(issuer_spk)?)?);
        }
        out.extend(self.kind_extensions()?);
        for extra in &self.extra {
            out.push(Extension {
                extn_id: extra.oid,
                critical: extra.critical,
                extn_value: OctetString::new(extra.value_der.clone())?,
            });
        }
        Ok(out)
    }
}

/// A fresh positive serial number, unique in this test process.
pub fn serial() -> SerialNumber {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    SerialNumber::new(&n.to_be_bytes()).expect("a u64 is a valid serial")
}

/// The SubjectPublicKeyInfo of `key`'s public half.
pub fn spki<K: Keypair>(key: &K) -> SubjectPublicKeyInfoOwned
where
    K::VerifyingKey: EncodePublicKey,
{
    SubjectPublicKeyInfoOwned::from_key(&key.verifying_key()).expect("an encodable public key")
}

/// The SubjectPublicKeyInfo of a SEC1-encoded P-384 public key.
pub fn p384_spki(sec1: &[u8]) -> SubjectPublicKeyInfoOwned {
    let key = p384::PublicKey::from_sec1_bytes(sec1).expect("a SEC1 P-384 public key");
    SubjectPublicKeyInfoOwned::from_key(&key).expect("an encodable public key")
}

/// Issues `profile` for `subject`, valid from now for `lifetime`, signed by `signer` (ECDSA
/// with the signer's curve's hash: P-384 → ecdsa-with-SHA384, P-256 → ecdsa-with-SHA256).
pub fn issue<S, Sig>(
    profile: Profile,
    lifetime: Duration,
    subject: SubjectPublicKeyInfoOwned,
    signer: &S,
) -> Certificate
where
    S: Signer<Sig> + Keypair + DynSignatureAlgorithmIdentifier,
    S::VerifyingKey: EncodePublicKey,
    Sig: SignatureBitStringEncoding,
{
    let validity = Validity::from_now(lifetime).expect("a lifetime that fits a validity");
    let builder = CertificateBuilder::new(profile, serial(), validity, subject).expect("a buildable profile");
    builder.build::<S, Sig>(signer).expect("the test signer signs")
}

/// A CRL (DER) by the CA `issuer` (whose key `signer` is) listing `revoked`, current from
/// `this_update` to `next_update`.
pub fn crl<S, Sig>(
    issuer: &Certificate,
    signer: &S,
    revoked: &[&Certificate],
    this_update: SystemTime,
    next_update: SystemTime,
) -> Vec<u8>
where
    S: Signer<Sig> + DynSignatureAlgorithmIdentifier,
    Sig: SignatureBitStringEncoding,
{
    let alg = signer.signature_algorithm_identifier().expect("an ECDSA signer");
    let time = |t: SystemTime| Time::try_from(t).expect("a time a CRL can hold");
    let tbs = TbsCertList {
        version: x509_cert::Version::V2,
        signature: alg.clone(),
        issuer: issuer.tbs_certificate().subject().clone(),
        this_update: time(this_update),
        next_update: Some(time(next_update)),
        revoked_certificates: (!revoked.is_empty()).then(|| {
            revoked
                .iter()
                .map(|c| RevokedCert {
                    serial_number: c.tbs_certificate().serial_number().clone(),
                    revocation_date: time(this_update),
                    crl_entry_extensions: None,
                })
                .collect()
        }),
        crl_extensions: None,
    };
    let tbs_der = tbs.to_der().expect("an encodable CRL");
    let signature = signer.try_sign(&tbs_der).expect("the test signer signs").to_bitstring().expect("a bit string");
    CertificateList { tbs_cert_list: tbs, signature_algorithm: alg, signature }.to_der().expect("an encodable CRL")
}

/// A certificate authority for tests: a P-384 key from a seed ([`key_from_seed`]) and a name.
#[derive(Debug)]
pub struct TestCa {
    pub key: SigningKey,
    pub subject: Name,
}

impl TestCa {
    pub fn new(seed: u64, subject: &str) -> Self {
        Self { key: key_from_seed(seed), subject: name(subject) }
    }

    /// A CA whose P-384 key is the PKCS#8 PEM `key_pem` (e.g. an issuer state's CA key) and
    /// whose name is `subject`.
    pub fn from_pem(key_pem: &str, subject: Name) -> Self {
        use p384::pkcs8::DecodePrivateKey;
        Self { key: SigningKey::from_pkcs8_pem(key_pem).expect("a PKCS#8 P-384 key"), subject }
    }

    /// The CA's public key as a launch manifest carries it (the runtime's issuer anchor).
    pub fn anchor(&self) -> Vec<u8> {
        public_sec1(&self.key)
    }

    /// The CA's own self-signed certificate.
    pub fn certificate(&self) -> Certificate {
        let profile = Profile {
            subject: self.subject.clone(),
            issuer: None,
            kind: Kind::Ca { path_len: Some(0) },
            extra: Vec::new(),
        };
        issue::<_, p384::ecdsa::DerSignature>(profile, YEAR, spki(&self.key), &self.key)
    }

    /// A DER certificate of `kind` (plus `extra` extensions) for `subject_key`, with the
    /// subject `CN=payroll,O=example.org`, signed by this CA with ecdsa-with-SHA384.
    pub fn issue_der(&self, kind: Kind, extra: Vec<Extra>, subject_key: SubjectPublicKeyInfoOwned) -> Vec<u8> {
        let profile =
            Profile { subject: name("CN=payroll,O=example.org"), issuer: Some(self.subject.clone()), kind, extra };
        issue::<_, p384::ecdsa::DerSignature>(profile, LIFETIME, subject_key, &self.key).to_der().expect("DER")
    }

    /// A workload credential for the SEC1 key `key` naming the URI `uri`: what an issuer
    /// hands out.
    pub fn issue_workload(&self, key: &[u8], uri: &str) -> Vec<u8> {
        self.issue_der(Kind::Workload { uri: uri.to_owned() }, Vec::new(), p384_spki(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Decode;
    use p384::ecdsa::signature::Verifier;

    /// What the builder makes is what the profile says: the extensions of the kind, signed
    /// by the CA, chaining by key identifier.
    #[test]
    fn a_workload_credential_has_the_svid_profile_and_chains_to_the_ca() {
        let ca = TestCa::new(0xCA, "CN=Test CA,O=TWI");
        let holder = key_from_seed(5);
        let der = ca.issue_workload(&public_sec1(&holder), "spiffe://example.org/payroll");
        let cert = Certificate::from_der(&der).unwrap();
        let tbs = cert.tbs_certificate();
        let (_, san) = tbs.get_extension::<SubjectAltName>().unwrap().expect("a SAN");
        assert!(
            matches!(san.0.as_slice(), [GeneralName::UniformResourceIdentifier(u)] if u.as_str() == "spiffe://example.org/payroll")
        );
        let (critical, bc) = tbs.get_extension::<BasicConstraints>().unwrap().expect("basicConstraints");
        assert!(critical && !bc.ca);
        let (_, eku) = tbs.get_extension::<ExtendedKeyUsage>().unwrap().expect("an EKU");
        assert_eq!(eku.0, [SERVER_AUTH, CLIENT_AUTH]);
        let (_, aki) = tbs.get_extension::<AuthorityKeyIdentifier>().unwrap().expect("an AKI");
        let root = ca.certificate();
        let (_, ski) = root.tbs_certificate().get_extension::<SubjectKeyIdentifier>().unwrap().expect("an SKI");
        assert_eq!(aki.key_identifier, Some(ski.0));
        let signature = p384::ecdsa::Signature::from_der(cert.signature().raw_bytes()).unwrap();
        ca.key.verifying_key().verify(&tbs.to_der().unwrap(), &signature).expect("signed by the CA");
        assert_ne!(tbs.serial_number(), root.tbs_certificate().serial_number());
    }
}
