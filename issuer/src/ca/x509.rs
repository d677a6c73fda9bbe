//! Building certificates with the RustCrypto `x509-cert` builder under our own RFC 5280
//! profiles (a CA; a workload credential shaped as a SPIFFE X.509-SVID: one URI SAN,
//! digitalSignature, EKU serverAuth + clientAuth), so
//! every extension in a certificate is one this module decided on.

use std::time::Duration;

use der::Encode;
use der::asn1::{Ia5String, OctetString};
use p384::ecdsa::{DerSignature, SigningKey};
use x509_cert::Certificate;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName,
    SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};
use x509_cert::time::Validity;

use crate::error::IssuerError;

/// An extension this crate adds verbatim.
#[derive(Clone, Debug)]
pub struct ExtraExtension {
    pub oid: der::asn1::ObjectIdentifier,
    pub critical: bool,
    /// The DER of the extension's value.
    pub value_der: Vec<u8>,
}

/// What kind of certificate a profile makes.
#[derive(Clone, Debug)]
pub enum Kind {
    /// A CA: basicConstraints cA=true (critical), keyUsage keyCertSign|cRLSign (critical).
    Ca { path_len: Option<u8> },
    /// An end-entity workload credential: exactly one URI SAN (and a dNSName SAN for each of
    /// `dns`, which the policy names), keyUsage digitalSignature (critical), basicConstraints
    /// cA=false, EKU serverAuth + clientAuth.
    Workload { uri: String, dns: Vec<String> },
}

/// Our builder profile: subject, issuer, and exactly the extensions of `kind` plus `extra`.
#[derive(Debug)]
pub struct Profile {
    pub subject: Name,
    /// `None` for a self-signed certificate.
    pub issuer: Option<Name>,
    pub kind: Kind,
    pub extra: Vec<ExtraExtension>,
}

fn extension<T: Encode>(
    oid: der::asn1::ObjectIdentifier,
    critical: bool,
    value: &T,
) -> x509_cert::builder::Result<Extension> {
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
        let mut out = Vec::new();
        let ski = SubjectKeyIdentifier::try_from(spk)?;
        out.push(extension(SubjectKeyIdentifier::OID, false, &ski)?);
        if self.issuer.is_some() {
            let aki = AuthorityKeyIdentifier::try_from(issuer_spk)?;
            out.push(extension(AuthorityKeyIdentifier::OID, false, &aki)?);
        }
        match &self.kind {
            Kind::Ca { path_len } => {
                let bc = BasicConstraints { ca: true, path_len_constraint: *path_len };
                out.push(extension(BasicConstraints::OID, true, &bc)?);
                let ku = KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign);
                out.push(extension(KeyUsage::OID, true, &ku)?);
            }
            Kind::Workload { uri, dns } => {
                let bc = BasicConstraints { ca: false, path_len_constraint: None };
                out.push(extension(BasicConstraints::OID, true, &bc)?);
                let ku = KeyUsage(KeyUsages::DigitalSignature.into());
                out.push(extension(KeyUsage::OID, true, &ku)?);
                let eku = ExtendedKeyUsage(vec![
                    der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.1"), // serverAuth
                    der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2"), // clientAuth
                ]);
                out.push(extension(ExtendedKeyUsage::OID, false, &eku)?);
                let mut names = vec![GeneralName::UniformResourceIdentifier(Ia5String::new(uri)?)];
                for name in dns {
                    names.push(GeneralName::DnsName(Ia5String::new(name)?));
                }
                let san = SubjectAltName(names);
                // RFC 5280 4.2.1.6: critical when the subject is empty (SPIFFE X.509-SVIDs are).
                out.push(extension(SubjectAltName::OID, self.subject.is_empty(), &san)?);
            }
        }
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

/// A positive 128-bit random serial (RFC 5280 allows up to 20 octets; the top bit is cleared
/// so the INTEGER stays positive without a leading zero, and it is never zero).
pub fn random_serial() -> Result<SerialNumber, IssuerError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|_| IssuerError::Rng)?;
    bytes[0] = (bytes[0] & 0x7F) | 0x01;
    SerialNumber::new(&bytes).map_err(|e| IssuerError::Certificate(e.to_string()))
}

/// Signs `profile` for `subject_key` with `issuer_key` (ECDSA P-384, SHA-384).
pub fn issue(
    profile: Profile,
    serial: SerialNumber,
    lifetime: Duration,
    subject_key: SubjectPublicKeyInfoOwned,
    issuer_key: &SigningKey,
) -> Result<Certificate, IssuerError> {
    let validity = Validity::from_now(lifetime).map_err(|e| IssuerError::Certificate(e.to_string()))?;
    let builder = CertificateBuilder::new(profile, serial, validity, subject_key)
        .map_err(|e| IssuerError::Certificate(e.to_string()))?;
    let certificate =
        builder.build::<_, DerSignature>(issuer_key).map_err(|e| IssuerError::Certificate(e.to_string()))?;
    crate::metrics::signed();
    crate::metrics::certified();
    Ok(certificate)
}

/// The SubjectPublicKeyInfo of a SEC1-encoded P-384 public key.
pub fn p384_spki(sec1: &[u8]) -> Result<SubjectPublicKeyInfoOwned, IssuerError> {
    let key = p384::PublicKey::from_sec1_bytes(sec1).map_err(|_| IssuerError::BadPublicKey)?;
    SubjectPublicKeyInfoOwned::from_key(&key).map_err(|_| IssuerError::BadPublicKey)
}
