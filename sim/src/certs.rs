//! The simulated vendors' certificates: each simulated machine keeps its own roots,
//! intermediates and endorsement keys (the ARK → ASK → VCEK chain of an AMD chip, the
//! Intel SGX root → PCK platform CA → PCK leaf and TCB signing chain of a TDX platform) in its
//! state directory, made once with the x509-cert builder under this small profile, so a
//! verifier checks them with the same code as the vendors' (RFC 5280 profile: SKI/AKI, CA
//! basic constraints, key usage, and the vendor extensions the caller adds).

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use der::asn1::{ObjectIdentifier, OctetString};
use der::{DecodePem, Encode, EncodePem};
use x509_cert::Certificate;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};
use x509_cert::time::{Time, Validity};

use crate::error::{SimError, random};
use crate::state;

/// How long a simulated vendor certificate is valid: long enough never to expire under a test.
const LIFETIME: Duration = Duration::from_secs(25 * 365 * 24 * 3600);
/// Certificates start an hour in the past: a verifier's clock may lag this host's a little.
const BACKDATE: Duration = Duration::from_secs(3600);

/// An extension added verbatim (a vendor's: AMD's TCB and hwID, Intel's SGX extension).
#[derive(Clone, Debug)]
pub struct VendorExtension {
    pub oid: ObjectIdentifier,
    /// The DER of the extension's value.
    pub value_der: Vec<u8>,
}

/// What a simulated vendor certificate is.
#[derive(Clone, Copy, Debug)]
pub enum Role {
    /// A CA (root or intermediate) with this path length.
    Ca { path_len: u8 },
    /// A signing key's endorsement (VCEK, PCK, TCB signing): digitalSignature only.
    Endorsement,
}

#[derive(Debug)]
struct Profile {
    subject: Name,
    issuer: Option<Name>,
    role: Role,
    extra: Vec<VendorExtension>,
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
            let aki = AuthorityKeyIdentifier::try_from(issuer_spk)?;
            out.push(extension(AuthorityKeyIdentifier::OID, false, &aki)?);
        }
        let usage = match self.role {
            Role::Ca { path_len } => {
                let bc = BasicConstraints { ca: true, path_len_constraint: Some(path_len) };
                out.push(extension(BasicConstraints::OID, true, &bc)?);
                KeyUsages::KeyCertSign | KeyUsages::CRLSign
            }
            Role::Endorsement => KeyUsages::DigitalSignature.into(),
        };
        out.push(extension(KeyUsage::OID, true, &KeyUsage(usage))?);
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

/// The ECDSA key types the simulated vendors sign with (P-384 for AMD, P-256 for Intel).
pub trait VendorKey: Sized {
    fn generate() -> Result<Self, SimError>;
    fn from_pem(pem: &str) -> Result<Self, String>;
    fn to_pem(&self) -> Result<zeroize::Zeroizing<String>, SimError>;
    fn spki(&self) -> Result<SubjectPublicKeyInfoOwned, SimError>;
    /// Signs `builder` (ECDSA with the curve's hash).
    fn certify(&self, builder: CertificateBuilder<impl BuilderProfile>) -> Result<Certificate, SimError>;
}

macro_rules! vendor_key {
    ($curve:ident) => {
        impl VendorKey for $curve::ecdsa::SigningKey {
            fn generate() -> Result<Self, SimError> {
                use $curve::elliptic_curve::Generate;
                Self::try_generate().map_err(|e| SimError::Rng(e.to_string()))
            }
            fn from_pem(pem: &str) -> Result<Self, String> {
                use $curve::pkcs8::DecodePrivateKey;
                Self::from_pkcs8_pem(pem).map_err(|e| e.to_string())
            }
            fn to_pem(&self) -> Result<zeroize::Zeroizing<String>, SimError> {
                use $curve::pkcs8::{EncodePrivateKey, LineEnding};
                self.to_pkcs8_pem(LineEnding::LF).map_err(|e| SimError::encoding("a private key", e))
            }
            fn spki(&self) -> Result<SubjectPublicKeyInfoOwned, SimError> {
                SubjectPublicKeyInfoOwned::from_key(self.verifying_key())
                    .map_err(|e| SimError::encoding("a public key", e))
            }
            fn certify(&self, builder: CertificateBuilder<impl BuilderProfile>) -> Result<Certificate, SimError> {
                builder
                    .build::<_, $curve::ecdsa::DerSignature>(self)
                    .map_err(|e| SimError::encoding("a certificate", e))
            }
        }
    };
}
vendor_key!(p384);
vendor_key!(p256);

/// A simulated vendor key and its certificate.
pub struct Identity<K> {
    pub key: K,
    pub cert: Certificate,
}

impl<K> std::fmt::Debug for Identity<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is secret: only the certificate's subject is shown.
        f.debug_struct("Identity").field("subject", &self.cert.tbs_certificate().subject().to_string()).finish()
    }
}

/// What to make when the state directory has no such identity yet.
#[derive(Debug)]
pub struct Template<'a> {
    /// The file stem in the state directory: `<name>.key.pem` and `<name>.pem`.
    pub name: &'a str,
    /// The subject, as an RFC 4514 string ("CN=…,O=…").
    pub subject: &'a str,
    pub role: Role,
    pub extensions: Vec<VendorExtension>,
}

impl<'a> Template<'a> {
    pub fn new(name: &'a str, subject: &'a str, role: Role, extensions: Vec<VendorExtension>) -> Self {
        Self { name, subject, role, extensions }
    }
}

/// Loads `<name>.key.pem` and `<name>.pem` from `dir`, or makes them as `template` says,
/// issued by `issuer` (self-signed when `None`).
pub fn load_or_create<K: VendorKey>(
    dir: &Path,
    template: Template<'_>,
    issuer: Option<&Identity<K>>,
) -> Result<Identity<K>, SimError> {
    let key_path = dir.join(format!("{}.key.pem", template.name));
    let cert_path = dir.join(format!("{}.pem", template.name));
    if key_path.exists() && cert_path.exists() {
        let pem = zeroize::Zeroizing::new(state::read_text(&key_path)?);
        let key = K::from_pem(&pem).map_err(|what| SimError::Corrupt { path: key_path.clone(), what })?;
        let bytes = fs::read(&cert_path).map_err(|e| SimError::state(&cert_path, e))?;
        let cert = Certificate::from_pem(bytes)
            .map_err(|e| SimError::Corrupt { path: cert_path.clone(), what: e.to_string() })?;
        return Ok(Identity { key, cert });
    }
    let key = K::generate()?;
    let subject: Name = template.subject.parse().map_err(|e| SimError::encoding("a subject name", e))?;
    let profile = Profile {
        subject,
        issuer: issuer.map(|i| i.cert.tbs_certificate().subject().clone()),
        role: template.role,
        extra: template.extensions,
    };
    let now = SystemTime::now();
    let time = |t: SystemTime| Time::try_from(t).map_err(|e| SimError::encoding("a validity period", e));
    let validity = Validity::new(time(now - BACKDATE)?, time(now + LIFETIME)?);
    let builder = CertificateBuilder::new(profile, random_serial()?, validity, key.spki()?)
        .map_err(|e| SimError::encoding("a certificate", e))?;
    let cert = issuer.map_or(&key, |i| &i.key).certify(builder)?;
    state::write_private(&key_path, key.to_pem()?.as_bytes())?;
    let pem = cert.to_pem(der::pem::LineEnding::LF).map_err(|e| SimError::encoding("a certificate", e))?;
    fs::write(&cert_path, pem).map_err(|e| SimError::state(&cert_path, e))?;
    Ok(Identity { key, cert })
}

/// A positive 128-bit random serial (RFC 5280 4.1.2.2: at most 20 octets, positive, non-zero).
fn random_serial() -> Result<SerialNumber, SimError> {
    let mut bytes = [0u8; 16];
    random(&mut bytes)?;
    bytes[0] = (bytes[0] & 0x7F) | 0x01;
    SerialNumber::new(&bytes).map_err(|e| SimError::encoding("a serial number", e))
}
