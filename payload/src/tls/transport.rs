//! The byte stream under TLS: whatever carries the records (a connection the host relays, a
//! socket in tests).
//!
//! The transport is untrusted by design: TLS is what makes its bytes trustworthy. It may drop,
//! delay, cut or corrupt bytes (the stream then fails with a typed error); it cannot read or
//! forge them.

use alloc::string::String;
use core::fmt;

/// A blocking, reliable, ordered byte stream.
pub trait Transport {
    /// Writes every byte of `buf`, or fails.
    ///
    /// # Errors
    /// [`TransportError`] when the stream broke before all bytes were accepted.
    fn write_all(&mut self, buf: &[u8]) -> Result<(), TransportError>;

    /// Reads at least one byte into `buf` and returns how many, blocking until some arrive;
    /// returns `Ok(0)` only at end of stream (the peer or the relay closed it).
    ///
    /// # Errors
    /// [`TransportError`] when the stream broke.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, TransportError>;
}

/// Why the transport failed, as far as TLS needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportError {
    /// The peer or the relay reset the connection.
    Reset,
    /// No bytes arrived in the time the transport allows.
    TimedOut,
    /// Any other failure, described for a human.
    Other(String),
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Reset => f.write_str("the connection was reset by the peer or the relay: reconnect"),
            Self::TimedOut => f.write_str("the connection timed out: check that the target is reachable and retry"),
            Self::Other(reason) => write!(f, "the connection failed ({reason}): reconnect"),
        }
    }
}

impl core::error::Error for TransportError {}
