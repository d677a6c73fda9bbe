//! What a client trusts and what it presents, fixed once per target.
//!
//! Trust anchors are the CA certificates the workload's measured manifest names (DER); the
//! server must chain to one of them (see the `x509` module for the checks) and be named by
//! the target's host (a DNS name or IP address in subjectAltName, RFC 6125 §6 / RFC 5280
//! §4.2.1.6), at the time the caller's [`Clock`] gives. The client certificate chain is the
//! workload's credential; its key stays in the vault behind [`ClientKey`].

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use super::clock::Clock;
use super::key::{ClientIdentity, ClientKey};
use super::random::Random;
use super::x509::Anchor;

/// The most bytes of client certificates a TLS 1.3 Certificate message carries (its list has a
/// three-byte length, RFC 8446 §4.4.2), less each entry's five bytes of framing.
const MAX_CLIENT_CHAIN: usize = (1 << 24) - 1;

/// A TLS client configuration: trust anchors, optional client certificate, random source and
/// clock. Cheap to clone; build one per target and reuse it for every connection.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub(crate) anchors: Arc<[Anchor]>,
    pub(crate) identity: Option<ClientIdentity>,
    pub(crate) random: &'static dyn Random,
    pub(crate) clock: Arc<dyn Clock>,
}

/// Builds a [`TlsConfig`]; see [`TlsConfig::builder`].
#[derive(Debug)]
pub struct TlsConfigBuilder {
    anchors: Vec<Anchor>,
    identity: Option<ClientIdentity>,
    random: &'static dyn Random,
    clock: Arc<dyn Clock>,
}

/// Why a configuration could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A CA certificate is not a DER X.509 v3 certificate with a key this client verifies
    /// with (ECDSA P-384; P-256 with the `p256` feature), or it has name constraints.
    BadCaCertificate(String),
    /// No CA certificate was given, so no server could be verified.
    NoTrustAnchor,
    /// The client certificate chain is empty.
    EmptyClientChain,
    /// The client certificate chain is too large for a TLS Certificate message.
    ClientChainTooLarge,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadCaCertificate(reason) => {
                write!(f, "a CA certificate is not usable as a trust anchor ({reason}): give its DER form")
            }
            Self::NoTrustAnchor => f.write_str("no CA certificate to verify servers against: add the server CA"),
            Self::EmptyClientChain => f.write_str("the client certificate chain is empty: give at least the leaf"),
            Self::ClientChainTooLarge => f.write_str("the client certificate chain is larger than TLS can carry"),
        }
    }
}

impl TlsConfig {
    /// Starts a configuration with the random source and the clock certificates are checked
    /// against (see the [module docs](super) on why the clock is the caller's choice).
    #[must_use]
    pub fn builder(random: &'static dyn Random, clock: Arc<dyn Clock>) -> TlsConfigBuilder {
        TlsConfigBuilder { anchors: Vec::new(), identity: None, random, clock }
    }
}

impl TlsConfigBuilder {
    /// Trusts `der` (an X.509 CA certificate, DER) as an anchor for server certificates.
    ///
    /// # Errors
    /// [`ConfigError::BadCaCertificate`] if it is not usable as a trust anchor.
    pub fn trust_ca(mut self, der: &[u8]) -> Result<Self, ConfigError> {
        let anchor = Anchor::new(der).map_err(|problem| ConfigError::BadCaCertificate(problem.to_string()))?;
        self.anchors.push(anchor);
        Ok(self)
    }

    /// Presents `chain` (DER, leaf first, then intermediates) when the server asks for a client
    /// certificate, proving possession with `key`.
    ///
    /// # Errors
    /// [`ConfigError::EmptyClientChain`] if `chain` is empty,
    /// [`ConfigError::ClientChainTooLarge`] if TLS cannot carry it.
    pub fn client_certificate(mut self, chain: Vec<Vec<u8>>, key: Arc<dyn ClientKey>) -> Result<Self, ConfigError> {
        if chain.is_empty() {
            return Err(ConfigError::EmptyClientChain);
        }
        if chain.iter().map(|der| der.len() + 5).sum::<usize>() > MAX_CLIENT_CHAIN {
            return Err(ConfigError::ClientChainTooLarge);
        }
        self.identity = Some(ClientIdentity { chain, key });
        Ok(self)
    }

    /// Finishes the configuration.
    ///
    /// # Errors
    /// [`ConfigError::NoTrustAnchor`] without a CA.
    pub fn build(self) -> Result<TlsConfig, ConfigError> {
        if self.anchors.is_empty() {
            return Err(ConfigError::NoTrustAnchor);
        }
        Ok(TlsConfig { anchors: self.anchors.into(), identity: self.identity, random: self.random, clock: self.clock })
    }
}

impl core::error::Error for ConfigError {}
