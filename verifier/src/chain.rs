//! X.509 certificate paths and CRLs, shared by every endorsement path:
//!
//! * AMD: ARK → ASK (or ASVK) → VCEK (or VLEK), signed RSASSA-PSS with SHA-384 (AMD "Versioned
//!   Chip Endorsement Key (VCEK) Certificate and KDS Interface Specification", pub. 57230,
//!   chapter 2: MGF1-SHA-384, salt length 48, trailer field 1);
//! * Intel: SGX Root CA → PCK Platform/Processor CA → PCK leaf, and Root CA → TCB Signing,
//!   all ECDSA P-256 with SHA-256 (Intel "SGX PCK Certificate and Certificate Revocation List
//!   Profile Specification");
//! * the simulated TEE: ECDSA P-384 with SHA-384 throughout.
//!
//! Every signature is checked over the to-be-signed bytes exactly as received (never over a
//! re-encoding), the outer signature algorithm must equal the one inside the signed part
//! (RFC 5280 4.1.1.2), and a root is trusted only by the SHA-384 of its SubjectPublicKeyInfo.

use std::fmt;
use std::ops::Range;
use std::time::SystemTime;

use der::asn1::{BitString, ObjectIdentifier};
use der::referenced::OwnedToRef;
use der::{Decode, Encode, Reader, SliceReader};
use p384::ecdsa::signature::Verifier;
use sha2::{Digest, Sha384};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::BasicConstraints;

use crate::oids::{COMMON_NAME, ECDSA_WITH_SHA256, ECDSA_WITH_SHA384, ID_MGF1, ID_SHA384, RSASSA_PSS};
use crate::time::format_rfc3339;

/// Why a chain does not hold, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("certificate {0} is not DER X.509")]
    NotDer(&'static str),
    #[error(
        "certificate {child} names issuer {issuer}, but the next certificate is {parent}: supply the chain leaf first, each certificate followed by its issuer's"
    )]
    IssuerMismatch { child: String, issuer: String, parent: String },
    #[error("the signature on {0} does not verify under its issuer's key")]
    BadSignature(String),
    #[error(
        "{0} is signed with an algorithm this verifier does not accept (accepted: ecdsa-with-SHA384, ecdsa-with-SHA256, RSASSA-PSS with SHA-384/MGF1-SHA-384/salt 48)"
    )]
    UnsupportedAlgorithm(String),
    #[error(
        "{0} is not valid at the verification time (valid {1} .. {2}): use a current certificate, or verify as of a time inside that window"
    )]
    Expired(String, String, String),
    #[error(
        "{0} signs other certificates but is not a CA (basicConstraints): the chain is out of order or holds a wrong certificate"
    )]
    NotCa(String),
    #[error(
        "{0} names a different signature algorithm outside its signed part than inside it (RFC 5280 4.1.1.2): it was altered"
    )]
    AlgorithmMismatch(String),
    #[error("the key of {issuer} cannot verify the {algorithm} signature on {child}")]
    WrongKeyType { child: String, issuer: String, algorithm: &'static str },
    #[error("no certificates were supplied for {0}")]
    Empty(&'static str),
    #[error(
        "the chain ends at {subject}, which is not a trusted root (SHA-384 of its public key {fingerprint}); supply the vendor's root certificate, or trust this key explicitly"
    )]
    UntrustedRoot { subject: String, fingerprint: String },
    #[error("{0} is not self-signed, so it cannot be the root of the chain")]
    NotSelfSigned(String),
    #[error("{subject} (serial {serial}) is revoked by the CRL of {crl_issuer}")]
    Revoked { subject: String, serial: String, crl_issuer: String },
    #[error("the CRL of {0} is not a DER X.509 CRL")]
    CrlNotDer(String),
    #[error(
        "the CRL signed by {crl_issuer} does not verify under {issuer}: the CRL was altered or comes from another CA"
    )]
    CrlBadSignature { crl_issuer: String, issuer: String },
    #[error(
        "the CRL of {issuer} is not current at the verification time (this update {this_update}, next update {next_update}); fetch a current CRL"
    )]
    CrlNotCurrent { issuer: String, this_update: String, next_update: String },
    #[error("{0} holds no certificate (expected DER, or PEM with -----BEGIN CERTIFICATE----- blocks)")]
    NoCertificate(String),
    #[error("{what} holds more than {max} certificates: supply the chain of the evidence only")]
    TooManyCertificates { what: String, max: usize },
    #[error("the CRL is issued by {crl_issuer}, but no certificate of the chain is: it cannot revoke anything here")]
    CrlUnrelated { crl_issuer: String },
}

/// A parsed certificate with the exact bytes it was parsed from.
#[derive(Clone)]
pub struct Cert {
    der: Vec<u8>,
    tbs: Range<usize>,
    cert: Certificate,
}

impl fmt::Debug for Cert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cert").field("subject", &self.subject()).finish_non_exhaustive()
    }
}

impl PartialEq for Cert {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

/// The range of the first element of the outermost SEQUENCE of `der` (the to-be-signed part
/// of a certificate or CRL), if `der` is one DER SEQUENCE with nothing after it.
fn signed_part(der: &[u8]) -> Option<Range<usize>> {
    let mut outer = SliceReader::new(der).ok()?;
    let header = der::Header::decode(&mut outer).ok()?;
    let body_start = usize::try_from(outer.position()).ok()?;
    let body_len = usize::try_from(header.length()).ok()?;
    if header.tag() != der::Tag::Sequence || body_start.checked_add(body_len)? != der.len() {
        return None;
    }
    let first = outer.tlv_bytes().ok()?;
    Some(body_start..body_start + first.len())
}

impl Cert {
    /// Parses one DER certificate; `what` names it in the error.
    pub fn from_der(der: &[u8], what: &'static str) -> Result<Self, ChainError> {
        let cert = Certificate::from_der(der).map_err(|_| ChainError::NotDer(what))?;
        let tbs = signed_part(der).ok_or(ChainError::NotDer(what))?;
        Ok(Self { der: der.to_vec(), tbs, cert })
    }

    /// Wraps an already parsed certificate (its DER encoding is canonical, so the bytes are
    /// the ones it was parsed from).
    pub fn from_certificate(cert: &Certificate) -> Result<Self, ChainError> {
        let der = cert.to_der().map_err(|_| ChainError::NotDer("certificate"))?;
        Self::from_der(&der, "certificate")
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }

    /// The signed `tbsCertificate`, as received.
    pub fn tbs_der(&self) -> &[u8] {
        &self.der[self.tbs.clone()]
    }

    /// The subject as an RFC 4514 string.
    pub fn subject(&self) -> String {
        subject(&self.cert)
    }

    /// The subject's common name, or the whole subject when it has none.
    pub fn common_name(&self) -> String {
        common_name(&self.cert)
    }

    pub fn spki(&self) -> &SubjectPublicKeyInfoOwned {
        self.cert.tbs_certificate().subject_public_key_info()
    }

    /// SHA-384 of the DER SubjectPublicKeyInfo: how roots are pinned.
    pub fn spki_sha384(&self) -> [u8; 48] {
        spki_sha384(self.spki())
    }

    /// The raw extnValue of the extension `oid`, if present.
    pub fn extension(&self, oid: &ObjectIdentifier) -> Option<&[u8]> {
        extension_value(&self.cert, oid)
    }

    /// The serial number as lowercase hex.
    pub fn serial_hex(&self) -> String {
        hex::encode(self.cert.tbs_certificate().serial_number().as_bytes())
    }

    pub fn is_self_issued(&self) -> bool {
        self.cert.tbs_certificate().issuer() == self.cert.tbs_certificate().subject()
    }
}

/// Decodes a lowercase hex literal at compile time (a bad literal fails the build): how
/// pinned key fingerprints are written.
pub(crate) const fn unhex<const N: usize>(s: &str) -> [u8; N] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not a lowercase hex digit"),
        }
    }
    let b = s.as_bytes();
    assert!(b.len() == 2 * N, "wrong hex length");
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

/// SHA-384 of a DER SubjectPublicKeyInfo.
pub fn spki_sha384(spki: &SubjectPublicKeyInfoOwned) -> [u8; 48] {
    Sha384::digest(spki.to_der().unwrap_or_default()).into()
}

/// The raw extnValue of the extension `oid`, if the certificate has it.
pub fn extension_value<'a>(cert: &'a Certificate, oid: &ObjectIdentifier) -> Option<&'a [u8]> {
    cert.tbs_certificate().extensions()?.iter().find(|e| &e.extn_id == oid).map(|e| e.extn_value.as_bytes())
}

pub fn parse(der: &[u8], what: &'static str) -> Result<Certificate, ChainError> {
    Certificate::from_der(der).map_err(|_| ChainError::NotDer(what))
}

fn subject(cert: &Certificate) -> String {
    cert.tbs_certificate().subject().to_string()
}

fn common_name(cert: &Certificate) -> String {
    let name = cert.tbs_certificate().subject();
    name.iter()
        .find(|atv| atv.oid == COMMON_NAME)
        .and_then(|atv| {
            let value = &atv.value;
            (value.decode_as::<der::asn1::Utf8StringRef<'_>>().map(|s| s.to_string()))
                .or_else(|_| value.decode_as::<der::asn1::PrintableStringRef<'_>>().map(|s| s.to_string()))
                .ok()
        })
        .unwrap_or_else(|| name.to_string())
}

/// Verifies `signature` by the holder of `signer` over `message` with algorithm `alg`
/// (`who` names the signed object in errors).
pub fn verify_signature(
    signer: &SubjectPublicKeyInfoOwned,
    alg: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &BitString,
    who: &str,
    signer_name: &str,
) -> Result<(), ChainError> {
    let bad = || ChainError::BadSignature(who.to_string());
    let wrong_key =
        |algorithm| ChainError::WrongKeyType { child: who.to_string(), issuer: signer_name.to_string(), algorithm };
    let sig = signature.as_bytes().ok_or_else(bad)?;
    let spki = signer.owned_to_ref();
    if alg.oid == ECDSA_WITH_SHA384 {
        if alg.parameters.is_some() {
            return Err(ChainError::UnsupportedAlgorithm(who.to_string()));
        }
        let key = p384::ecdsa::VerifyingKey::try_from(spki).map_err(|_| wrong_key("ecdsa-with-SHA384"))?;
        let sig = p384::ecdsa::Signature::from_der(sig).map_err(|_| bad())?;
        key.verify(message, &sig).map_err(|_| bad())
    } else if alg.oid == ECDSA_WITH_SHA256 {
        if alg.parameters.is_some() {
            return Err(ChainError::UnsupportedAlgorithm(who.to_string()));
        }
        let key = p256::ecdsa::VerifyingKey::try_from(spki).map_err(|_| wrong_key("ecdsa-with-SHA256"))?;
        let sig = p256::ecdsa::Signature::from_der(sig).map_err(|_| bad())?;
        key.verify(message, &sig).map_err(|_| bad())
    } else if alg.oid == RSASSA_PSS {
        check_pss_sha384(alg).ok_or_else(|| ChainError::UnsupportedAlgorithm(who.to_string()))?;
        let key = rsa::PublicKey::try_from(spki).map_err(|_| wrong_key("RSASSA-PSS"))?;
        let key = rsa::pss::VerifyingKey::<Sha384>::new_with_salt_len(key, PSS_SALT_LEN);
        let sig = rsa::pss::Signature::try_from(sig).map_err(|_| bad())?;
        key.verify(message, &sig).map_err(|_| bad())
    } else {
        Err(ChainError::UnsupportedAlgorithm(who.to_string()))
    }
}

/// The salt length AMD uses (and this verifier requires): the SHA-384 output size.
const PSS_SALT_LEN: usize = 48;

/// `Some` when `alg` is RSASSA-PSS with SHA-384, MGF1 over SHA-384, salt 48, trailer 1.
fn check_pss_sha384(alg: &AlgorithmIdentifierOwned) -> Option<()> {
    let params: rsa::pkcs1::RsaPssParams<der::Any> = alg.parameters.as_ref()?.decode_as().ok()?;
    let hash_ok = params.hash.oid == ID_SHA384 && params.hash.parameters.as_ref().is_none_or(|p| p.is_null());
    let mgf = params.mask_gen.parameters.as_ref()?;
    let mgf_ok =
        params.mask_gen.oid == ID_MGF1 && mgf.oid == ID_SHA384 && mgf.parameters.as_ref().is_none_or(|p| p.is_null());
    (hash_ok && mgf_ok && usize::from(params.salt_len) == PSS_SALT_LEN).then_some(())
}

/// Verifies `child`'s signature with `parent`'s key and that the names chain.
pub fn verify_link(child: &Cert, parent: &Cert) -> Result<(), ChainError> {
    let tbs = child.cert.tbs_certificate();
    if tbs.issuer() != parent.cert.tbs_certificate().subject() {
        return Err(ChainError::IssuerMismatch {
            child: child.subject(),
            issuer: tbs.issuer().to_string(),
            parent: parent.subject(),
        });
    }
    if child.cert.signature_algorithm() != tbs.signature() {
        return Err(ChainError::AlgorithmMismatch(child.subject()));
    }
    verify_signature(
        parent.spki(),
        child.cert.signature_algorithm(),
        child.tbs_der(),
        child.cert.signature(),
        &child.subject(),
        &parent.subject(),
    )
}

/// Verifies `child`'s signature with `parent`'s key and that the names chain.
pub fn verify_issued_by(child: &Certificate, parent: &Certificate) -> Result<(), ChainError> {
    verify_link(&Cert::from_certificate(child)?, &Cert::from_certificate(parent)?)
}

pub fn check_validity(cert: &Certificate, now: SystemTime) -> Result<(), ChainError> {
    let validity = cert.tbs_certificate().validity();
    let not_before = validity.not_before.to_system_time();
    let not_after = validity.not_after.to_system_time();
    if now < not_before || now > not_after {
        return Err(ChainError::Expired(
            subject(cert),
            validity.not_before.to_string(),
            validity.not_after.to_string(),
        ));
    }
    Ok(())
}

/// `cert` says it is a CA (basicConstraints cA = TRUE).
pub fn is_ca(cert: &Cert) -> bool {
    check_is_ca(&cert.cert).is_ok()
}

fn check_is_ca(cert: &Certificate) -> Result<(), ChainError> {
    match cert.tbs_certificate().get_extension::<BasicConstraints>() {
        Ok(Some((_, bc))) if bc.ca => Ok(()),
        _ => Err(ChainError::NotCa(subject(cert))),
    }
}

/// Checks `root` as the anchor of a path: self-signed, a CA, valid at `now`.
pub fn check_root(root: &Cert, now: SystemTime) -> Result<(), ChainError> {
    if !root.is_self_issued() {
        return Err(ChainError::NotSelfSigned(root.subject()));
    }
    verify_link(root, root)?;
    check_validity(&root.cert, now)?;
    check_is_ca(&root.cert)
}

/// The links inside `path` (leaf first): every certificate valid at `now`, each issued by the
/// next, which must be a CA. The link from the last one to a root is [`verify_to_root`]'s.
pub fn verify_links(path: &[Cert], now: SystemTime) -> Result<(), ChainError> {
    for (i, cert) in path.iter().enumerate() {
        check_validity(&cert.cert, now)?;
        if let Some(parent) = path.get(i + 1) {
            check_is_ca(&parent.cert)?;
            verify_link(cert, parent)?;
        }
    }
    Ok(())
}

/// `last` (if any) is issued by `root`, and `root` passes [`check_root`].
pub fn verify_to_root(last: Option<&Cert>, root: &Cert, now: SystemTime) -> Result<(), ChainError> {
    check_root(root, now)?;
    match last {
        Some(last) => verify_link(last, root),
        None => Ok(()),
    }
}

/// `path[0]` is the leaf, each certificate is issued by the next, and the last is issued by
/// `root`. Every certificate must be valid at `now`, every issuer a CA, `root` self-signed.
/// The caller decides whether `root` is trusted.
pub fn verify_path(path: &[Cert], root: &Cert, now: SystemTime) -> Result<(), ChainError> {
    verify_links(path, now)?;
    verify_to_root(path.last(), root, now)
}

/// `chain[0]` is the leaf; each certificate is issued by the next; the last is issued by
/// `anchor` (which must be self-signed). Every certificate must be valid at `now`.
pub fn verify_chain(chain: &[Certificate], anchor: &Certificate, now: SystemTime) -> Result<(), ChainError> {
    let path = chain.iter().map(Cert::from_certificate).collect::<Result<Vec<_>, _>>()?;
    verify_path(&path, &Cert::from_certificate(anchor)?, now)
}

/// A parsed CRL with the exact bytes it was parsed from.
#[derive(Clone)]
pub struct Crl {
    der: Vec<u8>,
    tbs: Range<usize>,
    list: CertificateList,
}

impl fmt::Debug for Crl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Crl").field("issuer", &self.issuer()).finish_non_exhaustive()
    }
}

impl Crl {
    /// Parses a DER CRL; `what` names it in the error.
    pub fn from_der(der: &[u8], what: &str) -> Result<Self, ChainError> {
        let bad = || ChainError::CrlNotDer(what.to_string());
        let list = CertificateList::from_der(der).map_err(|_| bad())?;
        let tbs = signed_part(der).ok_or_else(bad)?;
        Ok(Self { der: der.to_vec(), tbs, list })
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub fn issuer(&self) -> String {
        self.list.tbs_cert_list.issuer.to_string()
    }

    /// The signed `tbsCertList`, as received.
    pub fn tbs_der(&self) -> &[u8] {
        &self.der[self.tbs.clone()]
    }

    pub fn this_update(&self) -> SystemTime {
        self.list.tbs_cert_list.this_update.to_system_time()
    }

    pub fn next_update(&self) -> Option<SystemTime> {
        self.list.tbs_cert_list.next_update.map(|t| t.to_system_time())
    }

    /// Verifies the CRL's signature by `issuer` and that it is current at `now`.
    pub fn verify(&self, issuer: &Cert, now: SystemTime) -> Result<(), ChainError> {
        let tbs = &self.list.tbs_cert_list;
        let bad = || ChainError::CrlBadSignature { crl_issuer: self.issuer(), issuer: issuer.subject() };
        if &tbs.issuer != issuer.cert.tbs_certificate().subject() || self.list.signature_algorithm != tbs.signature {
            return Err(bad());
        }
        verify_signature(
            issuer.spki(),
            &self.list.signature_algorithm,
            self.tbs_der(),
            &self.list.signature,
            &format!("the CRL of {}", self.issuer()),
            &issuer.subject(),
        )
        .map_err(|_| bad())?;
        let next = self.next_update();
        if now < self.this_update() || next.is_some_and(|n| now > n) {
            return Err(ChainError::CrlNotCurrent {
                issuer: self.issuer(),
                this_update: format_rfc3339(self.this_update()),
                next_update: next.map_or_else(|| "none".to_string(), format_rfc3339),
            });
        }
        Ok(())
    }

    /// True when the CRL is `cert`'s issuer's and lists `cert`'s serial number.
    pub fn revokes(&self, cert: &Cert) -> bool {
        let tbs = cert.cert.tbs_certificate();
        &self.list.tbs_cert_list.issuer == tbs.issuer()
            && self
                .list
                .tbs_cert_list
                .revoked_certificates
                .as_ref()
                .is_some_and(|revoked| revoked.iter().any(|r| &r.serial_number == tbs.serial_number()))
    }
}

/// Checks every CRL in `crls` against the path `path` (leaf first, ending with the root):
/// each must be signed by a certificate of the path (and current at `now`), and no
/// certificate of the path may be listed by its issuer's CRL.
pub fn check_revocation(path: &[&Cert], crls: &[Crl], now: SystemTime) -> Result<(), ChainError> {
    for crl in crls {
        let issuer = path
            .iter()
            .find(|c| c.cert.tbs_certificate().subject() == &crl.list.tbs_cert_list.issuer)
            .ok_or_else(|| ChainError::CrlUnrelated { crl_issuer: crl.issuer() })?;
        crl.verify(issuer, now)?;
        if let Some(revoked) = path.iter().find(|c| crl.revokes(c)) {
            return Err(ChainError::Revoked {
                subject: revoked.subject(),
                serial: revoked.serial_hex(),
                crl_issuer: crl.issuer(),
            });
        }
    }
    Ok(())
}

/// Roots trusted by the SHA-384 of their SubjectPublicKeyInfo, each with why (`A`).
#[derive(Clone, Debug)]
pub struct Pins<A>(Vec<([u8; 48], A)>);

impl<A> Pins<A> {
    pub fn new(pins: Vec<([u8; 48], A)>) -> Self {
        Self(pins)
    }

    /// Trusts `root`'s key, for `why`.
    pub fn pin(&mut self, root: &Cert, why: A) {
        self.0.push((root.spki_sha384(), why));
    }

    /// Why `root` is trusted, if it is.
    pub fn anchor(&self, root: &Cert) -> Option<&A> {
        let fp = root.spki_sha384();
        self.0.iter().find(|(pin, _)| *pin == fp).map(|(_, why)| why)
    }
}

/// The roots a deployment configures in a file (PEM or DER): at least one, each self-issued.
pub fn self_signed_roots(pem_or_der: &[u8]) -> Result<Vec<Cert>, ChainError> {
    let mut roots = Vec::new();
    for der in split_certificates(pem_or_der)? {
        let cert = Cert::from_der(&der, "trusted root")?;
        if !cert.is_self_issued() {
            return Err(ChainError::NotSelfSigned(cert.subject()));
        }
        roots.push(cert);
    }
    if roots.is_empty() {
        return Err(ChainError::Empty("the trusted root file"));
    }
    Ok(roots)
}

/// The certificates in `bytes`: DER (one certificate, or several back to back, nothing after
/// the last), or any number of PEM `CERTIFICATE` blocks (text around them, and a trailing NUL
/// as in TDX quotes, is ignored). Returns the DER of each, in order.
pub fn split_certificates(bytes: &[u8]) -> Result<Vec<Vec<u8>>, ChainError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    if bytes.first() == Some(&0x30) {
        return split_der(bytes);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| ChainError::NotDer("file (neither DER nor PEM)"))?;
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start..];
        let end = after.find(END).ok_or(ChainError::NotDer("PEM block (no END line)"))? + END.len();
        let (_, der) = der::pem::decode_vec(&after.as_bytes()[..end]).map_err(|_| ChainError::NotDer("PEM block"))?;
        out.push(der);
        rest = &after[end..];
    }
    Ok(out)
}

/// DER elements back to back, each returned whole (parsed as certificates by the caller); an
/// element cut short is an error.
fn split_der(bytes: &[u8]) -> Result<Vec<Vec<u8>>, ChainError> {
    let mut out = Vec::new();
    let mut reader = SliceReader::new(bytes).map_err(|_| ChainError::NotDer("input (too long)"))?;
    while !reader.is_finished() {
        let tlv = reader.tlv_bytes().map_err(|_| ChainError::NotDer("input (a DER element is cut short)"))?;
        out.push(tlv.to_vec());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_part_of_malformed_input() {
        for bad in [&[][..], &[0x30], &[0x30, 0x03, 0x02, 0x01], &[0x31, 0x00], &[0x30, 0x00, 0x00]] {
            assert_eq!(signed_part(bad), None, "{bad:02x?}");
        }
        assert_eq!(signed_part(&[0x30, 0x03, 0x02, 0x01, 0x05]), Some(2..5));
    }

    #[test]
    fn split_rejects_junk() {
        assert!(split_certificates(b"\xff\xfe").is_err());
        assert_eq!(split_certificates(b"no certificates here").unwrap(), Vec::<Vec<u8>>::new());
        assert!(split_certificates(b"-----BEGIN CERTIFICATE-----\nAAAA").is_err());
        assert!(split_certificates(b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n").is_err());
        assert!(split_certificates(&[0x30, 0x82, 0x01]).is_err());
        assert_eq!(split_certificates(&[0x30, 0x00, 0x30, 0x00]).unwrap(), [vec![0x30, 0x00], vec![0x30, 0x00]]);
    }
}
