//! The server's certificate chain, checked against the configured CAs: the part of RFC 5280 §6
//! path validation a client that pins its CAs needs.
//!
//! - Every certificate is X.509 v3 DER, signed with ECDSA (SHA-256 or SHA-384) by a P-384 key
//!   (or P-256 with the `p256` feature), its inner and outer signature algorithms equal.
//! - The leaf and each intermediate are valid at the caller's time; trust anchors are trusted
//!   as configured (RFC 5280 §6.1.1 takes only their name and key).
//! - Intermediates are CAs (basicConstraints cA, keyCertSign when keyUsage is present, their
//!   pathLenConstraint respected); the leaf is not a CA, and is for server authentication
//!   (extendedKeyUsage, when present, names id-kp-serverAuth; keyUsage, when present, allows
//!   digitalSignature).
//! - A critical extension this module does not process fails the chain, as do name
//!   constraints anywhere in it (not processed here, so refused rather than ignored).
//! - The server's name must be in the leaf's subjectAltName (RFC 6125 §6; the subject's CN is
//!   not used): a DNS name, compared without case, with a wildcard only as the whole leftmost
//!   label; or an IP address, compared as bytes.

use alloc::vec::Vec;

use twi_proto::asn1::{self, DerError, Element, Reader, tag};
use twi_proto::x509::{self, Extension};

use super::error::CertificateProblem;
use super::name::ServerName;
use super::signature::{Curve, Hash, PublicKey};

const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const SECP384R1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
#[cfg(feature = "p256")]
const PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
const SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
/// id-ce (2.5.29): the arc of the extensions read here.
const ID_CE: [u8; 2] = [0x55, 0x1d];
const KEY_USAGE: u8 = 15;
const SUBJECT_ALT_NAME: u8 = 17;
const BASIC_CONSTRAINTS: u8 = 19;
const NAME_CONSTRAINTS: u8 = 30;
const EXT_KEY_USAGE: u8 = 37;
/// keyUsage bits (RFC 5280 §4.2.1.3) in the first content byte after the unused-bits count.
const DIGITAL_SIGNATURE: u8 = 0x80;
const KEY_CERT_SIGN: u8 = 0x04;
/// The most intermediates a chain may have.
const MAX_INTERMEDIATES: usize = 6;

/// What a certificate says, as far as this client reads it: its fields
/// ([`twi_proto::x509`], the reader the runtime checks its own credential with) and what this
/// client makes of them.
#[derive(Debug)]
pub(crate) struct Certificate<'a> {
    fields: x509::Certificate<'a>,
    hash: Hash,
    key: Option<PublicKey<'a>>,
    ext: Extensions<'a>,
}

/// The extensions this client processes.
#[derive(Debug, Default)]
struct Extensions<'a> {
    /// basicConstraints: (cA, pathLenConstraint).
    basic: Option<(bool, Option<usize>)>,
    key_usage: Option<u8>,
    server_auth: Option<bool>,
    alt_names: Option<&'a [u8]>,
    name_constraints: bool,
}

impl<'a> Certificate<'a> {
    /// Parses `der`; anything but the DER of an X.509 v3 certificate signed with ECDSA fails.
    pub(crate) fn parse(der: &'a [u8]) -> Result<Self, CertificateProblem> {
        let fields = x509::Certificate::parse(der).map_err(|_| CertificateProblem::Malformed)?;
        let hash = signature_hash(fields.signature_algorithm.contents)?;
        let key = public_key(fields.spki.contents)?;
        let ext = Extensions::parse(&fields.extensions).map_err(|_| CertificateProblem::Malformed)?;
        Ok(Self { fields, hash, key, ext })
    }

    /// The certificate's key, if it is on a curve this client verifies with.
    pub(crate) fn key(&self) -> Result<PublicKey<'a>, CertificateProblem> {
        self.key.ok_or(CertificateProblem::UnsupportedAlgorithm)
    }

    /// Whether `issuer` (a CA's key) signed this certificate.
    fn signed_by(&self, issuer: &PublicKey<'_>) -> bool {
        issuer.verifies(self.hash, self.fields.tbs, self.fields.signature)
    }

    fn valid_at(&self, now: u64) -> Result<(), CertificateProblem> {
        match self.fields.validity {
            (not_before, _) if now < not_before => Err(CertificateProblem::NotYetValid),
            (_, not_after) if now > not_after => Err(CertificateProblem::Expired),
            _ => Ok(()),
        }
    }

    /// The leaf's own checks: in time, not a CA, for server authentication, no name constraints.
    fn check_leaf(&self, now: u64) -> Result<(), CertificateProblem> {
        self.valid_at(now)?;
        self.check_constraints()?;
        if matches!(self.ext.basic, Some((true, _))) {
            return Err(CertificateProblem::Other("the server presented a CA certificate as its own"));
        }
        if self.ext.key_usage.is_some_and(|bits| bits & DIGITAL_SIGNATURE == 0) {
            return Err(CertificateProblem::WrongPurpose);
        }
        Ok(())
    }

    /// An intermediate's checks, with `below` intermediates between it and the leaf.
    fn check_ca(&self, now: u64, below: usize) -> Result<(), CertificateProblem> {
        self.valid_at(now)?;
        self.check_constraints()?;
        match self.ext.basic {
            Some((true, limit)) if limit.is_none_or(|limit| below <= limit) => {}
            _ => return Err(CertificateProblem::UnknownIssuer),
        }
        if self.ext.key_usage.is_some_and(|bits| bits & KEY_CERT_SIGN == 0) {
            return Err(CertificateProblem::UnknownIssuer);
        }
        Ok(())
    }

    fn check_constraints(&self) -> Result<(), CertificateProblem> {
        if self.ext.server_auth == Some(false) {
            return Err(CertificateProblem::WrongPurpose);
        }
        self.no_name_constraints()
    }

    fn no_name_constraints(&self) -> Result<(), CertificateProblem> {
        if self.ext.name_constraints {
            return Err(CertificateProblem::Other("name constraints, which this client does not process"));
        }
        Ok(())
    }
}

/// The hash of an ECDSA signature algorithm (RFC 5758 §3.2: no parameters).
fn signature_hash(algorithm: &[u8]) -> Result<Hash, CertificateProblem> {
    let mut r = Reader::new(algorithm);
    let oid = r.expect(tag::OID).map_err(|_| CertificateProblem::Malformed)?;
    if !r.is_empty() {
        return Err(CertificateProblem::UnsupportedAlgorithm);
    }
    match oid.contents {
        ECDSA_SHA256 => Ok(Hash::Sha256),
        ECDSA_SHA384 => Ok(Hash::Sha384),
        _ => Err(CertificateProblem::UnsupportedAlgorithm),
    }
}

/// An EC public key on a supported curve (RFC 5480 §2), or `None` for any other key.
fn public_key(spki: &[u8]) -> Result<Option<PublicKey<'_>>, CertificateProblem> {
    let malformed = |_: DerError| CertificateProblem::Malformed;
    let mut spki = Reader::new(spki);
    let mut algorithm = Reader::new(spki.expect(tag::SEQUENCE).map_err(malformed)?.contents);
    let bits = spki.expect(tag::BIT_STRING).map_err(malformed)?.contents;
    spki.finish().map_err(malformed)?;
    let kind = algorithm.expect(tag::OID).map_err(malformed)?.contents;
    let curve = match algorithm.optional(tag::OID).map_err(malformed)? {
        Some(curve) if kind == EC_PUBLIC_KEY => curve.contents,
        _ => return Ok(None),
    };
    let curve = match curve {
        SECP384R1 => Curve::P384,
        #[cfg(feature = "p256")]
        PRIME256V1 => Curve::P256,
        _ => return Ok(None),
    };
    match bits.split_first() {
        Some((0, point)) => Ok(Some(PublicKey { curve, point })),
        _ => Err(CertificateProblem::Malformed),
    }
}

impl<'a> Extensions<'a> {
    /// Reads the id-ce extensions this client processes; an extension given twice (RFC 5280
    /// §4.2) or an unknown critical one fails the certificate.
    fn parse(list: &x509::Extensions<'a>) -> Result<Self, DerError> {
        let mut ext = Self::default();
        let mut seen = Vec::new();
        list.each(|Extension { id, critical, value }| {
            if seen.contains(&id) {
                return Err(DerError);
            }
            seen.push(id);
            match id {
                [a, b, kind] if [*a, *b] == ID_CE => ext.read(*kind, value, critical),
                _ if critical => Err(DerError),
                _ => Ok(()),
            }
        })?;
        Ok(ext)
    }

    /// One id-ce extension; an unknown critical one fails the certificate.
    fn read(&mut self, kind: u8, value: &'a [u8], critical: bool) -> Result<(), DerError> {
        match kind {
            BASIC_CONSTRAINTS => self.basic = Some(basic_constraints(value)?),
            KEY_USAGE => self.key_usage = Some(key_usage(value)?),
            EXT_KEY_USAGE => self.server_auth = Some(names_server_auth(value)?),
            SUBJECT_ALT_NAME => self.alt_names = Some(asn1::only(value, tag::SEQUENCE)?.contents),
            NAME_CONSTRAINTS => self.name_constraints = true,
            _ if critical => return Err(DerError),
            _ => {}
        }
        Ok(())
    }
}

fn basic_constraints(value: &[u8]) -> Result<(bool, Option<usize>), DerError> {
    let mut fields = Reader::new(asn1::only(value, tag::SEQUENCE)?.contents);
    let ca = fields.optional_boolean()?;
    let limit = match fields.optional(tag::INTEGER)? {
        Some(Element { contents: [n], .. }) if *n < 0x80 => Some(usize::from(*n)),
        Some(_) => return Err(DerError),
        None => None,
    };
    fields.finish()?;
    Ok((ca, limit))
}

/// The first byte of keyUsage's bits (the ones read here), zero when absent.
fn key_usage(value: &[u8]) -> Result<u8, DerError> {
    match asn1::only(value, tag::BIT_STRING)?.contents {
        [unused, first, ..] if *unused < 8 => Ok(*first),
        _ => Err(DerError),
    }
}

fn names_server_auth(value: &[u8]) -> Result<bool, DerError> {
    let mut purposes = Reader::new(asn1::only(value, tag::SEQUENCE)?.contents);
    let mut found = false;
    while !purposes.is_empty() {
        found |= purposes.expect(tag::OID)?.contents == SERVER_AUTH;
    }
    Ok(found)
}

/// Whether the subjectAltName list `names` names `server`.
fn names_server(names: &[u8], server: &ServerName) -> Result<bool, DerError> {
    let mut names = Reader::new(names);
    let mut found = false;
    while !names.is_empty() {
        let name = names.element()?;
        found |= match (name.tag, server) {
            (0x82, ServerName::Dns(host)) => dns_matches(name.contents, host.as_bytes()),
            (0x87, ServerName::Ip(ip)) => name.contents == ip.as_slice(),
            _ => false,
        };
    }
    Ok(found)
}

/// RFC 6125 §6.4: labels equal without case; `*` only as the whole leftmost label of a name
/// with at least two more labels, matching exactly one label.
fn dns_matches(pattern: &[u8], host: &[u8]) -> bool {
    match pattern.strip_prefix(b"*.") {
        Some(rest) if rest.iter().filter(|&&c| c == b'.').count() >= 1 => match host.iter().position(|&c| c == b'.') {
            Some(dot) if dot > 0 => host[dot + 1..].eq_ignore_ascii_case(rest),
            _ => false,
        },
        Some(_) => false,
        None => pattern.eq_ignore_ascii_case(host),
    }
}

/// A trust anchor: the name and key of a configured CA certificate, read once when the
/// configuration is built.
#[derive(Debug, Clone)]
pub(crate) struct Anchor {
    subject: Vec<u8>,
    curve: Curve,
    point: Vec<u8>,
}

impl Anchor {
    /// Keeps `der`'s name and key if it is a certificate whose key this client can verify
    /// with, and which has no name constraints (which this client would not enforce).
    pub(crate) fn new(der: &[u8]) -> Result<Self, CertificateProblem> {
        let cert = Certificate::parse(der)?;
        let key = cert.key()?;
        cert.no_name_constraints()?;
        Ok(Self { subject: cert.fields.subject.to_vec(), curve: key.curve, point: key.point.to_vec() })
    }

    fn key(&self) -> PublicKey<'_> {
        PublicKey { curve: self.curve, point: &self.point }
    }
}

/// Checks the server's `chain` (leaf first) at `now` against `anchors` and `server`'s name;
/// returns the leaf, whose key then signs the handshake.
pub(crate) fn verify_server<'c>(
    chain: &[&'c [u8]],
    anchors: &[Anchor],
    now: u64,
    server: &ServerName,
) -> Result<Certificate<'c>, CertificateProblem> {
    let (leaf, intermediates) = chain.split_first().ok_or(CertificateProblem::Missing)?;
    let leaf = Certificate::parse(leaf)?;
    leaf.check_leaf(now)?;
    leaf.key()?;
    let intermediates = intermediates.iter().map(|der| Certificate::parse(der)).collect::<Result<Vec<_>, _>>()?;
    chain_to_anchor(&leaf, &intermediates, anchors, now)?;
    match leaf.ext.alt_names.map(|names| names_server(names, server)) {
        Some(Ok(true)) => Ok(leaf),
        Some(Err(_)) => Err(CertificateProblem::Malformed),
        _ => Err(CertificateProblem::WrongName),
    }
}

/// Walks from `leaf` up through `intermediates` (each used once) to an anchor.
fn chain_to_anchor(
    leaf: &Certificate<'_>,
    intermediates: &[Certificate<'_>],
    anchors: &[Anchor],
    now: u64,
) -> Result<(), CertificateProblem> {
    let mut current = leaf;
    let mut used = [false; MAX_INTERMEDIATES];
    let mut problem = CertificateProblem::UnknownIssuer;
    for below in 0..=MAX_INTERMEDIATES {
        for anchor in anchors {
            if anchor.subject == current.fields.issuer {
                if current.signed_by(&anchor.key()) {
                    return Ok(());
                }
                problem = CertificateProblem::BadSignature;
            }
        }
        let next = intermediates.iter().enumerate().take(MAX_INTERMEDIATES).find(|(i, ca)| {
            !used[*i] && ca.fields.subject == current.fields.issuer && ca.key.is_some_and(|key| current.signed_by(&key))
        });
        let Some((i, ca)) = next else { break };
        ca.check_ca(now, below)?;
        used[i] = true;
        current = ca;
    }
    Err(problem)
}

#[cfg(test)]
mod tests;
