//! Made-up PKIs shaped like the vendors' ([`amd`]: ARK → ASK/ASVK → VCEK/VLEK with AMD's
//! extensions, ECDSA P-384; [`intel`]: SGX Root CA → PCK Platform CA → PCK leaf and TCB
//! Signing, ECDSA P-256, with signed collateral and quotes), for what the real samples do not
//! cover. Also read by the issuer's tests of issuance on hardware evidence
//! (`issuer/tests/hardware_evidence.rs`), until a shared test kit holds them.
//!
//! Certificates are built here with the x509-cert builder, independently of the issuer's
//! certificate profiles: the verifier's tests do not depend on the issuer.

#![allow(dead_code)]

pub mod amd;
pub mod intel;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use der::Encode;
use der::asn1::{ObjectIdentifier, OctetString};
use p384::ecdsa::signature::{Keypair, Signer};
use twi_verifier::chain::{Cert, Crl};
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::TbsCertificate;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{
    DynSignatureAlgorithmIdentifier, EncodePublicKey, SignatureBitStringEncoding, SubjectPublicKeyInfoOwned,
    SubjectPublicKeyInfoRef,
};
use x509_cert::time::{Time, Validity};

pub const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// A non-critical extension added verbatim (its value's DER).
#[derive(Clone, Debug)]
pub struct Extra {
    pub oid: ObjectIdentifier,
    pub value_der: Vec<u8>,
}

/// What a certificate is for.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// basicConstraints cA=true (critical), keyUsage keyCertSign|cRLSign (critical).
    Ca { path_len: Option<u8> },
    /// An end-entity signing key (a VCEK, a PCK leaf, TCB Signing): keyUsage
    /// digitalSignature (critical).
    Endorsement,
}

/// Subject, issuer (`None`: self-signed), kind, and extra extensions.
#[derive(Debug)]
pub struct Profile {
    pub subject: Name,
    pub issuer: Option<Name>,
    pub kind: Kind,
    pub extra: Vec<Extra>,
}

fn extension<T: Encode>(oid: ObjectIdentifier, critical: bool, value: &T) -> x509_cert::builder::Result<Extension> {
    Ok(Extension { extn_id: oid, critical, extn_value: OctetString::new(value.to_der()?)? })
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
        match self.kind {
            Kind::Ca { path_len } => {
                let bc = BasicConstraints { ca: true, path_len_constraint: path_len };
                out.push(extension(BasicConstraints::OID, true, &bc)?);
                out.push(extension(KeyUsage::OID, true, &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign))?);
            }
            Kind::Endorsement => {
                out.push(extension(KeyUsage::OID, true, &KeyUsage(KeyUsages::DigitalSignature.into()))?);
            }
        }
        for extra in &self.extra {
            out.push(Extension {
                extn_id: extra.oid,
                critical: false,
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
    SerialNumber::new(&n.to_be_bytes()).unwrap()
}

/// The SubjectPublicKeyInfo of `key`'s public half.
pub fn spki<K: Keypair>(key: &K) -> SubjectPublicKeyInfoOwned
where
    K::VerifyingKey: EncodePublicKey,
{
    SubjectPublicKeyInfoOwned::from_key(&key.verifying_key()).unwrap()
}

/// Issues `profile` for `subject`, valid from now for `lifetime`, signed by `signer` (ECDSA
/// with the signer's curve's hash: P-384 → ecdsa-with-SHA384, P-256 → ecdsa-with-SHA256).
pub fn issue<S, Sig>(profile: Profile, lifetime: Duration, subject: SubjectPublicKeyInfoOwned, signer: &S) -> Cert
where
    S: Signer<Sig> + Keypair + DynSignatureAlgorithmIdentifier,
    S::VerifyingKey: EncodePublicKey,
    Sig: SignatureBitStringEncoding,
{
    let validity = Validity::from_now(lifetime).unwrap();
    let builder = CertificateBuilder::new(profile, serial(), validity, subject).unwrap();
    let certificate = builder.build::<S, Sig>(signer).unwrap();
    Cert::from_certificate(&certificate).unwrap()
}

/// A CRL by `issuer` (whose key `signer` is) listing `revoked`, current from `this_update`
/// to `next_update`.
pub fn crl<S, Sig>(
    issuer: &Cert,
    signer: &S,
    revoked: &[&Cert],
    this_update: SystemTime,
    next_update: SystemTime,
) -> Crl
where
    S: Signer<Sig> + DynSignatureAlgorithmIdentifier,
    Sig: SignatureBitStringEncoding,
{
    let alg = signer.signature_algorithm_identifier().unwrap();
    let tbs = TbsCertList {
        version: x509_cert::Version::V2,
        signature: alg.clone(),
        issuer: issuer.certificate().tbs_certificate().subject().clone(),
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
    let signature = signer.try_sign(&tbs.to_der().unwrap()).unwrap().to_bitstring().unwrap();
    let list = CertificateList { tbs_cert_list: tbs, signature_algorithm: alg, signature };
    Crl::from_der(&list.to_der().unwrap(), "test CRL").unwrap()
}
