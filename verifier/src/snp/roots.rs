//! Which roots an SEV-SNP endorsement chain may end in.
//!
//! AMD's roots are built in as the SHA-384 of each product's ARK SubjectPublicKeyInfo (DER):
//! the ARK certificate itself travels with the chain (KDS `cert_chain` = ASK + ARK, or
//! ASVK + ARK for VLEKs: both end in the same ARK), and it is trusted when its key is one of
//! these. The digests were computed from the ARK certificates that AMD's KDS serves
//! (`/vcek/v1/{product}/cert_chain`), as published in go-sev-guest `verify/trust/` (Milan,
//! Genoa) and virtee/sev `src/certs/snp/builtin/turin/ark.pem` (Turin); the tests recompute
//! them from those files.
//!
//! A deployment can replace them ([`SnpTrust::from_pem`]) and the simulated TEE's root is a
//! separate anchor, accepted only when configured ([`SnpTrust::with_simulated_root`]).

use std::fmt;

use crate::chain::{Cert, ChainError, Pins, self_signed_roots, unhex};
use crate::snp::product::Product;

/// SHA-384 of the DER SubjectPublicKeyInfo of each product's ARK (RSA-4096).
pub const AMD_ARK_SPKI_SHA384: [(Product, [u8; 48]); 3] = [
    (
        Product::Milan,
        unhex("1249f67f15cf229a4069195e1a9ce537d1765ef706a1f4a123c36be9518786515d25ecc007f366b564d2b3f31c48082e"),
    ),
    (
        Product::Genoa,
        unhex("32ab53a6ce5ec14926207396e5c475ae768a6a9831b7e860b5acf2e1c1dff222bc5a8bfc43eb5e06393189c1f246d880"),
    ),
    (
        Product::Turin,
        unhex("3475f08a9727f8ac9a1deaea5f2a2097aa59d64d05c2a678c229c873e6359d3a6926287a2a22cd5f88a385e333a2fcc5"),
    ),
];

/// Why a root is trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Anchor {
    /// One of AMD's built-in ARKs.
    Amd(Product),
    /// A root the deployment configured in place of the built-in ones; the product is the
    /// one its name mentions, if any.
    Configured { subject: String, product: Option<Product> },
    /// The simulated TEE's root: evidence under it is not from hardware.
    Simulated { subject: String },
}

impl Anchor {
    pub fn product(&self) -> Option<Product> {
        match self {
            Anchor::Amd(p) => Some(*p),
            Anchor::Configured { product, .. } => *product,
            Anchor::Simulated { .. } => None,
        }
    }

    pub fn is_simulated(&self) -> bool {
        matches!(self, Anchor::Simulated { .. })
    }
}

impl fmt::Display for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Anchor::Amd(p) => write!(f, "AMD ARK-{p} (built in)"),
            Anchor::Configured { subject, .. } => write!(f, "{subject} (configured root)"),
            Anchor::Simulated { subject } => write!(f, "{subject} (simulated TEE root)"),
        }
    }
}

/// The roots an SNP verifier accepts.
#[derive(Clone, Debug)]
pub struct SnpTrust {
    /// Trusted public keys and why.
    pins: Pins<Anchor>,
    /// Root certificates the verifier holds itself, so a chain may stop below them.
    certs: Vec<Cert>,
}

impl Default for SnpTrust {
    fn default() -> Self {
        Self::amd()
    }
}

impl SnpTrust {
    /// AMD's built-in roots for Milan, Genoa and Turin.
    pub fn amd() -> Self {
        let pins = AMD_ARK_SPKI_SHA384.iter().map(|(p, fp)| (*fp, Anchor::Amd(*p))).collect();
        Self { pins: Pins::new(pins), certs: Vec::new() }
    }

    /// No root at all (add some with the `with_*` methods).
    pub fn none() -> Self {
        Self { pins: Pins::new(Vec::new()), certs: Vec::new() }
    }

    /// Exactly the root certificates in `pem_or_der` (self-signed ARKs), replacing the
    /// built-in ones.
    pub fn from_pem(pem_or_der: &[u8]) -> Result<Self, ChainError> {
        let mut trust = Self::none();
        for cert in self_signed_roots(pem_or_der)? {
            let name = cert.common_name();
            trust.pins.pin(&cert, Anchor::Configured { product: Product::from_name(&name), subject: name });
            trust.certs.push(cert);
        }
        Ok(trust)
    }

    /// Also accepts chains that end in the simulated TEE's root `root`.
    pub fn with_simulated_root(mut self, root: Cert) -> Self {
        self.pins.pin(&root, Anchor::Simulated { subject: root.common_name() });
        self.certs.push(root);
        self
    }

    /// The root certificates the verifier holds itself (configured or simulated roots; AMD's
    /// built-in roots are keys only, their ARK travels with the chain).
    pub fn certificates(&self) -> &[Cert] {
        &self.certs
    }

    /// Why `root` is trusted, if it is.
    pub fn anchor(&self, root: &Cert) -> Option<&Anchor> {
        self.pins.anchor(root)
    }

    /// A root certificate the verifier holds whose subject is `last`'s issuer: the root of a
    /// chain that stops below it.
    pub fn root_above(&self, last: &Cert) -> Option<&Cert> {
        let issuer = last.certificate().tbs_certificate().issuer();
        self.certs.iter().find(|c| c.certificate().tbs_certificate().subject() == issuer)
    }
}
