//! Certificate inputs as vendors and clouds ship them, and the certification path the
//! verifier builds from them itself.
//!
//! Why: every source hands out certificates in its own arrangement. AMD's KDS serves the VCEK
//! as DER and `cert_chain` as PEM (ASK then ARK); Azure's THIM endpoint returns VCEK, ASK
//! and ARK in one PEM file; a PCCS or a hand-made bundle may hold the chain in any order, with
//! a certificate twice, or certificates that belong to another product. Requiring "leaf
//! first, each followed by its issuer" makes users reorder files by hand. So every
//! certificate input is read by [`read_certificates`] (one DER certificate, DER certificates
//! back to back, or any number of PEM `CERTIFICATE` blocks; duplicates dropped by DER
//! equality) into a [`CertPool`], and the path is built the way RFC 4158 ("Internet X.509
//! Public Key Infrastructure: Certification Path Building") describes it: from the leaf — the
//! certificate whose key verifies the evidence, which only the platform's verifier can tell —
//! each issuer is the pooled (or trusted) certificate whose subject is the child's issuer
//! name and whose key verifies the child's signature, up to a self-issued root. The path is
//! then verified exactly as an ordered one would be (`chain.rs`): building only orders.
//!
//! The verdict names each certificate it used by subject and SHA-256 fingerprint
//! ([`UsedCertificate`]), the form `openssl x509 -fingerprint -sha256` prints, so a person
//! can tell which of the certificates in a bundle vouched for the evidence.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::chain::{self, Cert, ChainError};

/// More certificates than this in one input is not a vendor's bundle (THIM's holds three):
/// a bound on what one file may make the verifier parse.
const MAX_CERTIFICATES: usize = 64;

/// Paths longer than this are refused (AMD's and Intel's are three certificates deep).
const MAX_PATH_LEN: usize = 8;

/// A certificate the verdict names: its subject and the SHA-256 of its DER encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsedCertificate {
    pub subject: String,
    /// SHA-256 of the DER certificate, lowercase hex.
    pub sha256: String,
}

impl UsedCertificate {
    pub fn of(cert: &Cert) -> Self {
        Self { subject: cert.subject(), sha256: sha256_fingerprint(cert) }
    }
}

impl fmt::Display for UsedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (SHA-256 {})", self.subject, self.sha256)
    }
}

/// SHA-256 of a certificate's DER encoding, lowercase hex.
pub fn sha256_fingerprint(cert: &Cert) -> String {
    hex::encode(Sha256::digest(cert.der()))
}

/// Reads every certificate in `bytes` — PEM `CERTIFICATE` blocks (any number, any order,
/// text around them ignored) or DER (one certificate, or several back to back) — dropping
/// duplicates (equal DER). `what` names the input in errors ("the --vcek file x.pem").
pub fn read_certificates(bytes: &[u8], what: &str) -> Result<Vec<Cert>, ChainError> {
    let ders = chain::split_certificates(bytes)?;
    if ders.is_empty() {
        return Err(ChainError::NoCertificate(what.to_string()));
    }
    if ders.len() > MAX_CERTIFICATES {
        return Err(ChainError::TooManyCertificates { what: what.to_string(), max: MAX_CERTIFICATES });
    }
    let mut pool = CertPool::default();
    for der in ders {
        pool.add(Cert::from_der(&der, "in a certificate input")?);
    }
    Ok(pool.certs)
}

/// Certificates from any number of inputs, each once.
#[derive(Clone, Debug, Default)]
pub struct CertPool {
    certs: Vec<Cert>,
}

impl CertPool {
    pub fn new(certs: impl IntoIterator<Item = Cert>) -> Self {
        let mut pool = Self::default();
        for cert in certs {
            pool.add(cert);
        }
        pool
    }

    /// Adds `cert` unless an equal one (same DER) is already pooled; returns whether it was new.
    pub fn add(&mut self, cert: Cert) -> bool {
        if self.certs.contains(&cert) {
            return false;
        }
        self.certs.push(cert);
        true
    }

    pub fn certs(&self) -> &[Cert] {
        &self.certs
    }

    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// The certificate that issued `child`: among the pool and `roots`, the only one whose
    /// subject is `child`'s issuer (not verified here: the ordered verification that follows
    /// checks its signature and names a bad one), or, of several with that name, the one whose
    /// key verifies `child`'s signature; else none. Verifying a sole candidate here would
    /// verify each link of the common path twice (the chain is a quarter of a cold appraisal).
    fn issuer_of<'a>(&'a self, child: &Cert, roots: &'a [Cert]) -> Option<&'a Cert> {
        let issuer = child.certificate().tbs_certificate().issuer();
        let named: Vec<&Cert> = self
            .certs
            .iter()
            .chain(roots)
            .filter(|c| *c != child && c.certificate().tbs_certificate().subject() == issuer)
            .collect();
        match named[..] {
            [only] => Some(only),
            _ => named.into_iter().find(|c| chain::verify_link(child, c).is_ok()),
        }
    }

    /// The path from `leaf` upwards: each next certificate is its predecessor's issuer
    /// (from the pool, or from `roots`, the certificates the verifier itself trusts), ending
    /// at a self-issued certificate or where no issuer is found. Not verified yet: pass it
    /// to the ordered verification.
    pub fn path_from(&self, leaf: &Cert, roots: &[Cert]) -> Vec<Cert> {
        let mut path = vec![leaf.clone()];
        while path.len() < MAX_PATH_LEN {
            let Some(last) = path.last().filter(|c| !c.is_self_issued()) else { break };
            match self.issuer_of(last, roots) {
                Some(next) if !path.contains(next) => path.push(next.clone()),
                _ => break,
            }
        }
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junk_and_empty_inputs() {
        assert!(matches!(read_certificates(b"nothing here", "x"), Err(ChainError::NoCertificate(w)) if w == "x"));
        assert!(read_certificates(&[0x30, 0x03, 0x02, 0x01, 0x05], "x").is_err());
        assert!(read_certificates(&[0x30, 0x82, 0x01], "x").is_err());
        assert!(read_certificates(b"\xff\xfe", "x").is_err());
    }
}
