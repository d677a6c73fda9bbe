//! Randomness: the caller's source, behind a trait of our own.
//!
//! TLS 1.3 needs fresh random bytes for the ClientHello random (RFC 8446 §4.1.2) and the
//! ephemeral ECDH scalar (§4.2.8); their secrecy is the connection's forward secrecy. The
//! runtime supplies its hardware-backed source (RDSEED/RDRAND inside the TEE); the host never
//! does. The trait takes `&self` (not `rand_core`'s `&mut self`) because one source serves
//! every connection of a shared, immutable configuration.

use core::fmt;

/// A cryptographically secure random source.
///
/// Implementations must fill `buf` entirely with unpredictable bytes, or return an error; they
/// must never return predictable bytes (a counter, a clock) outside tests.
pub trait Random: Send + Sync + fmt::Debug {
    /// Fills `buf` with random bytes.
    ///
    /// # Errors
    /// [`RandomError`] when the source cannot produce bytes now (e.g. a hardware source that
    /// keeps failing its retries); the handshake then fails with `TlsError::Random`.
    fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError>;
}

/// The random source failed; no bytes were produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandomError;

impl fmt::Display for RandomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the random source failed: check the platform's entropy source (RDSEED/RDRAND) and retry")
    }
}

impl core::error::Error for RandomError {}
