//! Wall-clock time for certificate validity, and why it cannot be trusted.
//!
//! A certificate is valid between its `notBefore` and `notAfter` (RFC 5280 §4.1.2.5); checking
//! that needs the current time. Inside a confidential VM the only wall clock is the one the
//! host supplies (CMOS, kvmclock, a value relayed by the loader), and the host is the party the
//! TEE defends against: it can set the clock back to revive an expired or revoked server
//! certificate, or forward to make a valid one look expired. The TEE's own counters (TSC under
//! SNP's Secure TSC, TDX's virtual TSC) are monotonic, not calendar time. So the caller decides
//! what time to verify at, and this crate says so in its type: [`Clock`] is *the time the
//! caller chooses to trust*, e.g. the host time bounded below by a time carried in the measured
//! manifest or in a freshly issued credential.

use core::fmt;

/// The wall time at which certificates are checked, in seconds since the Unix epoch (UTC).
pub trait Clock: Send + Sync + fmt::Debug {
    /// The time to check validity at, or `None` if no time is available (the handshake then
    /// fails with `TlsError::Clock` rather than skipping the check).
    fn unix_seconds(&self) -> Option<u64>;
}

/// A clock that always answers the same instant: the time the caller decided to trust for this
/// configuration (for example, the issue time of the workload's own credential).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedClock(pub u64);

impl Clock for FixedClock {
    fn unix_seconds(&self) -> Option<u64> {
        Some(self.0)
    }
}
