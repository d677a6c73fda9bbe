//! Which roots a TDX endorsement chain (the quote's PCK chain, the collateral's TCB Signing
//! chain) may end in: Intel's SGX Root CA, built in by the SHA-384 of its public key, a root
//! the deployment configures in its place, or — only when configured — the simulated TEE's.

use crate::chain::{self, Cert, ChainError, Pins, self_signed_roots, unhex};

/// SHA-384 of the DER SubjectPublicKeyInfo of the Intel SGX Root CA (ECDSA P-256), computed
/// from the root certificate Intel publishes (as shipped by Phala's dcap-qvl
/// `src/TrustedRootCA.der` and google/go-tdx-guest `verify/trusted_root.pem`; the tests
/// recompute it).
pub const INTEL_SGX_ROOT_CA_SPKI_SHA384: [u8; 48] =
    unhex("3cdf1feb4e5eac629170f17625648da4a16effa22ae2bcca030b4358a8961c1bf26cf54a9598cd6a2d4a9cbb62377d22");

/// Why a root is trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TdxAnchor {
    /// The built-in Intel SGX Root CA.
    Intel,
    /// A root the deployment configured in place of Intel's.
    Configured { subject: String },
    /// The simulated TEE's root: not hardware evidence.
    Simulated { subject: String },
}

impl std::fmt::Display for TdxAnchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TdxAnchor::Intel => f.write_str("Intel SGX Root CA (built in)"),
            TdxAnchor::Configured { subject } => write!(f, "{subject} (configured root)"),
            TdxAnchor::Simulated { subject } => write!(f, "{subject} (simulated TEE root)"),
        }
    }
}

/// The roots a TDX verifier accepts, by public key.
#[derive(Clone, Debug)]
pub struct TdxTrust {
    pins: Pins<TdxAnchor>,
}

impl Default for TdxTrust {
    fn default() -> Self {
        Self::intel()
    }
}

impl TdxTrust {
    /// The Intel SGX Root CA.
    pub fn intel() -> Self {
        Self { pins: Pins::new(vec![(INTEL_SGX_ROOT_CA_SPKI_SHA384, TdxAnchor::Intel)]) }
    }

    /// Exactly the self-signed roots in `pem_or_der`, replacing Intel's.
    pub fn from_pem(pem_or_der: &[u8]) -> Result<Self, ChainError> {
        let mut pins = Pins::new(Vec::new());
        for cert in self_signed_roots(pem_or_der)? {
            pins.pin(&cert, TdxAnchor::Configured { subject: cert.common_name() });
        }
        Ok(Self { pins })
    }

    /// Also accepts the simulated TEE's root `root`.
    pub fn with_simulated_root(mut self, root: &Cert) -> Self {
        self.pins.pin(root, TdxAnchor::Simulated { subject: root.common_name() });
        self
    }

    /// Why `root` is trusted, if it is.
    pub fn anchor(&self, root: &Cert) -> Option<&TdxAnchor> {
        self.pins.anchor(root)
    }

    /// Verifies `path` (leaf first, ending in a self-signed root) at `now` and returns the
    /// root's anchor.
    pub fn verify_path(&self, path: &[Cert], now: std::time::SystemTime) -> Result<TdxAnchor, ChainError> {
        let (root, below) = path.split_last().ok_or(ChainError::Empty("the chain"))?;
        chain::verify_path(below, root, now)?;
        self.anchor(root).cloned().ok_or_else(|| ChainError::UntrustedRoot {
            subject: root.subject(),
            fingerprint: hex::encode(root.spki_sha384()),
        })
    }
}
