//! What a client trusts and what it presents, fixed once per target.
//!
//! Trust anchors are the CA certificates the workload's measured manifest names (DER); the
//! server must chain to one of them (RFC 5280 §6, by webpki) and be named by the target's host
//! (a DNS name or IP address in subjectAltName, RFC 6125 §6 / RFC 5280 §4.2.1.6), at the time
//! the caller's [`Clock`] gives. The client certificate chain is the workload's credential; its
//! key stays in the vault behind [`ClientKey`].

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use rustls::client::Resumption;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use super::clock::{Clock, ClockAdapter};
use super::key::{ClientIdentity, ClientKey, KeyFailure, Resolver};
use super::provider;
use super::random::Random;

/// A TLS client configuration: trust anchors, optional client certificate, random source and
/// clock. Cheap to clone; build one per target and reuse it for every connection.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    base: Arc<ClientConfig>,
    identity: Option<ClientIdentity>,
}

/// Builds a [`TlsConfig`]; see [`TlsConfig::builder`].
#[derive(Debug)]
pub struct TlsConfigBuilder {
    roots: RootCertStore,
    identity: Option<ClientIdentity>,
    random: &'static dyn Random,
    clock: Arc<dyn Clock>,
}

/// Why a configuration could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A CA certificate is not a DER X.509 certificate webpki accepts as a trust anchor.
    BadCaCertificate(String),
    /// No CA certificate was given, so no server could be verified.
    NoTrustAnchor,
    /// The client certificate chain is empty.
    EmptyClientChain,
    /// rustls refused the configuration; the text is its reason.
    Rejected(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadCaCertificate(reason) => {
                write!(f, "a CA certificate is not usable as a trust anchor ({reason}): give its DER form")
            }
            Self::NoTrustAnchor => f.write_str("no CA certificate to verify servers against: add the server CA"),
            Self::EmptyClientChain => f.write_str("the client certificate chain is empty: give at least the leaf"),
            Self::Rejected(reason) => write!(f, "the TLS configuration was refused ({reason})"),
        }
    }
}

impl TlsConfig {
    /// Starts a configuration with the random source and the clock certificates are checked
    /// against (see the [module docs](super) on why the clock is the caller's choice).
    #[must_use]
    pub fn builder(random: &'static dyn Random, clock: Arc<dyn Clock>) -> TlsConfigBuilder {
        TlsConfigBuilder { roots: RootCertStore::empty(), identity: None, random, clock }
    }

    /// The rustls configuration for one connection: the client certificate resolver is
    /// per connection so that a key failure is reported to the connection that met it.
    pub(crate) fn for_connection(&self, failure: &Arc<KeyFailure>) -> Arc<ClientConfig> {
        match &self.identity {
            None => self.base.clone(),
            Some(identity) => {
                let mut config = ClientConfig::clone(&self.base);
                config.client_auth_cert_resolver = Arc::new(Resolver::new(identity, failure.clone()));
                Arc::new(config)
            }
        }
    }
}

impl TlsConfigBuilder {
    /// Trusts `der` (an X.509 CA certificate, DER) as an anchor for server certificates.
    ///
    /// # Errors
    /// [`ConfigError::BadCaCertificate`] if it does not parse as a trust anchor.
    pub fn trust_ca(mut self, der: &[u8]) -> Result<Self, ConfigError> {
        self.roots.add(CertificateDer::from(der.to_vec())).map_err(|e| ConfigError::BadCaCertificate(e.to_string()))?;
        Ok(self)
    }

    /// Presents `chain` (DER, leaf first, then intermediates) when the server asks for a client
    /// certificate, proving possession with `key`.
    ///
    /// # Errors
    /// [`ConfigError::EmptyClientChain`] if `chain` is empty.
    pub fn client_certificate(mut self, chain: Vec<Vec<u8>>, key: Arc<dyn ClientKey>) -> Result<Self, ConfigError> {
        if chain.is_empty() {
            return Err(ConfigError::EmptyClientChain);
        }
        let chain = chain.into_iter().map(CertificateDer::from).collect();
        self.identity = Some(ClientIdentity { chain, key });
        Ok(self)
    }

    /// Finishes the configuration: TLS 1.3 only, the lean provider, webpki server
    /// verification against the given CAs, no session resumption.
    ///
    /// # Errors
    /// [`ConfigError::NoTrustAnchor`] without a CA; [`ConfigError::Rejected`] if rustls
    /// refuses the parts.
    pub fn build(self) -> Result<TlsConfig, ConfigError> {
        if self.roots.is_empty() {
            return Err(ConfigError::NoTrustAnchor);
        }
        let provider = Arc::new(provider::provider(self.random));
        let time = Arc::new(ClockAdapter(self.clock));
        let mut base = ClientConfig::builder_with_details(provider, time)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| ConfigError::Rejected(e.to_string()))?
            .with_root_certificates(self.roots)
            .with_no_client_auth();
        // Stated, not inherited: a std build of rustls would otherwise keep a session cache.
        base.resumption = Resumption::disabled();
        Ok(TlsConfig { base: Arc::new(base), identity: self.identity })
    }
}

impl core::error::Error for ConfigError {}
