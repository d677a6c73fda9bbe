//! A TLS 1.3 client for workloads: mutual TLS from inside the TEE, key in the vault.
//!
//! A TWI workload reaches its targets (a database, an API) through connections the host
//! relays; TLS 1.3 (RFC 8446) is what lets the host carry those bytes without reading or
//! forging them. This module is that client, `no_std` with `alloc`: a purpose-built TLS 1.3
//! client for one configuration, on the RustCrypto crates the runtime already links (P-384,
//! SHA-2, HKDF, HMAC, AES-GCM) and the runtime's DER reader (`twi_proto::asn1`). It replaced
//! rustls (issue 17): rustls and webpki were 208 KB of a 256 KiB ROM budget, for a client
//! that offers one suite, one group and one signature scheme. It depends on nothing of the
//! runtime: everything it needs comes through small traits of its own.
//!
//! The parts, each small enough to read against its RFC section: `record` (§5),
//! `handshake` (§4), `crypto` (§7, the key schedule and record protection), `x509`
//! (RFC 5280 §6 for a client that pins its CAs), `name`, `codec` (§3).
//!
//! # What it verifies
//!
//! - The server's certificate chain (`x509`, RFC 5280 §6 path validation): it must lead to
//!   one of the CA certificates given to [`TlsConfigBuilder::trust_ca`] — in a workload, the
//!   CAs its measured manifest names, never anything the host supplies — with every signature
//!   ECDSA on P-384 (and on P-256 with the `p256` feature, about 20 KiB more ROM), and the
//!   leaf valid for TLS server authentication.
//! - The server's name: the name passed to [`TlsStream::connect`] (DNS name or IP address)
//!   must be in the leaf's subjectAltName (RFC 6125 §6, RFC 5280 §4.2.1.6). SNI is sent for
//!   DNS names.
//! - Validity dates against the [`Clock`] in the configuration.
//! - The server's possession of its key (CertificateVerify, RFC 8446 §4.4.3) and the whole
//!   handshake transcript (Finished, §4.4.4); every record's AEAD tag (§5.2).
//!
//! # What it trusts
//!
//! The configured CA certificates, the [`Random`] source and the [`Clock`]. Not the
//! [`Transport`]: its bytes are authenticated before use, and its failures are errors.
//!
//! # The clock is the caller's, because the host's is not trustworthy
//!
//! A guest's wall clock is supplied by the host, which may set it back (reviving an expired
//! certificate) or forward (refusing a valid one). Certificates are checked at the time the
//! caller's [`Clock`] returns; the caller decides what it trusts (see [`clock`]'s docs).
//!
//! # Where the client key lives
//!
//! In the runtime's vault. The client certificate chain is given as DER with a
//! [`ClientKey`] handle; the handshake's CertificateVerify is the one signature this crate
//! asks of it (ecdsa_secp384r1_sha384, DER out). No private key is ever loaded here.
//!
//! # What it offers
//!
//! TLS 1.3 only; TLS_AES_256_GCM_SHA384; secp384r1; ECDSA verification (P-384; P-256 with the
//! `p256` feature). No TLS 1.2, RSA, X25519, ChaCha20, resumption, 0-RTT, HelloRetryRequest
//! or post-handshake client authentication. A server that needs any of them fails the
//! handshake with [`TlsError::Incompatible`] or an alert.
//!
//! # Example
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use twi_payload::tls::*;
//! # fn demo(random: &'static dyn Random, ca_der: &[u8], chain: Vec<Vec<u8>>, key: Arc<dyn ClientKey>,
//! #         transport: impl Transport) -> Result<(), Box<dyn std::error::Error>> {
//! let config = TlsConfig::builder(random, Arc::new(FixedClock(1_767_225_600)))
//!     .trust_ca(ca_der)?
//!     .client_certificate(chain, key)?
//!     .build()?;
//! let mut tls = TlsStream::connect(&config, "db.example", transport)?;
//! tls.write_all(b"ping")?;
//! let mut buf = [0u8; 64];
//! let n = tls.read(&mut buf)?;
//! tls.close()?;
//! # Ok(()) }
//! ```

mod alert;
pub mod clock;
mod codec;
mod config;
mod crypto;
mod error;
mod handshake;
mod key;
mod name;
mod random;
mod record;
mod signature;
mod stream;
mod transport;
mod x509;

pub use alert::AlertDescription;
pub use clock::{Clock, FixedClock};
pub use config::{ConfigError, TlsConfig, TlsConfigBuilder};
pub use error::{CertificateProblem, TlsError};
pub use key::{ClientKey, KeyError};
pub use random::{Random, RandomError};
pub use stream::TlsStream;
pub use transport::{Transport, TransportError};
