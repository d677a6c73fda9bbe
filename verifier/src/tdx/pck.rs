//! The PCK certificate chain a quote carries, and the SGX extension of its leaf (Intel "SGX
//! PCK Certificate and Certificate Revocation List Profile Specification", section "Intel SGX
//! Extensions", OID arc 1.2.840.113741.1.13.1):
//!
//! | OID (…13.1.) | name       | type                                                        |
//! | ------------ | ---------- | ----------------------------------------------------------- |
//! | 1            | PPID       | OCTET STRING (16)                                           |
//! | 2            | TCB        | SEQUENCE of {OID, value}: 2.1–2.16 SGX TCB component SVNs (INTEGER), 2.17 PCESVN (INTEGER), 2.18 CPUSVN (OCTET STRING 16) |
//! | 3            | PCE-ID     | OCTET STRING (2)                                            |
//! | 4            | FMSPC      | OCTET STRING (6)                                            |
//! | 5            | SGX Type   | ENUMERATED (0 standard, 1 scalable, 2 scalable with integrity) |
//!
//! Every entry is a SEQUENCE { OID, value }. Later entries (platform instance id,
//! configuration) are read past.

use der::asn1::{Any, ObjectIdentifier, OctetString};
use der::{Decode, Sequence, Tag, Tagged};

use crate::chain::{Cert, ChainError};

const SGX_EXTENSIONS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113741.1.13.1");
const PPID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113741.1.13.1.1");
const TCB: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113741.1.13.1.2");
const PCE_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113741.1.13.1.3");
const FMSPC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113741.1.13.1.4");
const SGX_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113741.1.13.1.5");
/// 1.2.840.113741.1.13.1.2.{1..=16}: SGX TCB components; .17 PCESVN; .18 CPUSVN.
const TCB_ARC: &str = "1.2.840.113741.1.13.1.2.";

#[derive(Sequence)]
struct Entry {
    oid: ObjectIdentifier,
    value: Any,
}

/// What the PCK leaf certifies about the platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PckExtensions {
    pub ppid: [u8; 16],
    pub sgx_tcb_components: [u8; 16],
    pub pce_svn: u16,
    pub cpu_svn: [u8; 16],
    pub pce_id: [u8; 2],
    pub fmspc: [u8; 6],
    pub sgx_type: u8,
}

/// The SGX extension is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the PCK certificate {subject} has no valid SGX extension ({why})")]
pub struct PckExtensionError {
    pub subject: String,
    pub why: &'static str,
}

fn octets<const N: usize>(value: &Any) -> Option<[u8; N]> {
    value.decode_as::<OctetString>().ok()?.as_bytes().try_into().ok()
}

impl PckExtensions {
    /// Reads the SGX extension of the PCK leaf `cert`.
    pub fn parse(cert: &Cert) -> Result<Self, PckExtensionError> {
        let err = |why| PckExtensionError { subject: cert.common_name(), why };
        let value = cert.extension(&SGX_EXTENSIONS).ok_or(err("absent"))?;
        let entries = Vec::<Entry>::from_der(value).map_err(|_| err("not a SEQUENCE of {OID, value}"))?;
        let find = |oid: ObjectIdentifier| entries.iter().find(|e| e.oid == oid).map(|e| &e.value);
        let ppid = find(PPID).and_then(octets::<16>).ok_or(err("PPID"))?;
        let pce_id = find(PCE_ID).and_then(octets::<2>).ok_or(err("PCE-ID"))?;
        let fmspc = find(FMSPC).and_then(octets::<6>).ok_or(err("FMSPC"))?;
        let sgx_type = find(SGX_TYPE)
            .filter(|v| v.tag() == Tag::Enumerated)
            .and_then(|v| match v.value() {
                [t] => Some(*t),
                _ => None,
            })
            .ok_or(err("SGX Type"))?;
        let tcb = find(TCB)
            .and_then(|v| v.decode_as::<Vec<Entry>>().ok())
            .ok_or(err("TCB is not a SEQUENCE of {OID, value}"))?;
        let mut components = [None::<u8>; 16];
        let (mut pce_svn, mut cpu_svn) = (None, None);
        for e in &tcb {
            let oid = e.oid.to_string();
            let Some(n) = oid.strip_prefix(TCB_ARC).and_then(|n| n.parse::<usize>().ok()) else { continue };
            match n {
                1..=16 => components[n - 1] = Some(e.value.decode_as::<u8>().map_err(|_| err("TCB component SVN"))?),
                17 => pce_svn = Some(e.value.decode_as::<u16>().map_err(|_| err("PCESVN"))?),
                18 => cpu_svn = Some(octets::<16>(&e.value).ok_or(err("CPUSVN"))?),
                _ => {}
            }
        }
        let mut sgx_tcb_components = [0u8; 16];
        for (slot, c) in sgx_tcb_components.iter_mut().zip(components) {
            *slot = c.ok_or(err("a TCB component SVN is missing"))?;
        }
        Ok(Self {
            ppid,
            sgx_tcb_components,
            pce_svn: pce_svn.ok_or(err("PCESVN"))?,
            cpu_svn: cpu_svn.ok_or(err("CPUSVN"))?,
            pce_id,
            fmspc,
            sgx_type,
        })
    }
}

/// The PCK chain of a quote: PEM `CERTIFICATE` blocks, each `-----BEGIN CERTIFICATE-----\n`,
/// base64 lines, `-----END CERTIFICATE-----\n`, back to back, optionally followed by one NUL
/// (as the Quoting Enclave writes it). Nothing else is allowed, so that no byte of the chain
/// goes unchecked. Returns the certificates in order (leaf first).
pub fn split_pck_chain(pem: &[u8]) -> Result<Vec<Cert>, ChainError> {
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----\n";
    const END: &[u8] = b"-----END CERTIFICATE-----\n";
    let mut rest = pem.strip_suffix(&[0]).unwrap_or(pem);
    let mut certs = Vec::new();
    while !rest.is_empty() {
        if !rest.starts_with(BEGIN) {
            return Err(ChainError::NotDer("in the quote's PCK chain (expected a PEM CERTIFICATE block)"));
        }
        let end = rest
            .windows(END.len())
            .position(|w| w == END)
            .ok_or(ChainError::NotDer("in the quote's PCK chain (a PEM block has no END line)"))?
            + END.len();
        let (_, der) = der::pem::decode_vec(&rest[..end])
            .map_err(|_| ChainError::NotDer("in the quote's PCK chain (bad PEM base64)"))?;
        certs.push(Cert::from_der(&der, "in the quote's PCK chain")?);
        rest = &rest[end..];
    }
    if certs.is_empty() {
        return Err(ChainError::Empty("the PCK chain in the quote"));
    }
    Ok(certs)
}
