//! The handle a workload gets: the [`Runtime`] trait, TACRA's Credential Acquisition Interface
//! (draft-novak-rats-tacra, "Credential Acquisition Interface") plus what a workload needs to use
//! what it acquired.
//!
//! A workload is a `#![no_std]` crate with one entry point, `fn(&mut dyn Runtime) -> ExitCode`,
//! linked into the measured image by `twi build --payload DIR`. Everything it does to the world
//! goes through this handle:
//!
//! | call | what |
//! | --- | --- |
//! | [`Runtime::acquire`] | a credential for a target (TACRA Initiate, then Enroll or Retrieve) |
//! | [`Runtime::sign`], [`Runtime::sign_digest`], [`Runtime::client_key`] | ECDSA with the credential's key, inside the vault |
//! | [`Runtime::seal`], [`Runtime::unseal`] | AES-256-GCM under the platform's launch-bound key |
//! | [`Runtime::random`] | the TEE's random source (RDSEED/RDRAND) |
//! | [`Runtime::monotonic`], [`Runtime::host_time`] | trusted elapsed time; the host's wall time, marked untrusted |
//! | [`Runtime::setting`] | the measured launch manifest's values (`twi build --set KEY=VALUE`) |
//! | [`Runtime::connect`] | a byte stream to a target the manifest names, relayed by the host |
//! | [`Runtime::log`] | a line on the console |
//!
//! Keys never leave the vault: a [`Credential`](crate::credential::Credential) carries a
//! [`KeyHandle`](crate::credential::KeyHandle), and signatures come back, never keys. The host
//! relays everything (acquisition messages, connections, the wall time); it can delay, drop or
//! corrupt bytes, never read or forge what TLS and the issuer's signatures protect: every error
//! it can cause is a typed value here, never a panic.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use crate::credential::{Credential, CredentialType, KeyHandle};
use crate::tls::{ClientKey, KeyError, Random, Transport};

/// How the VM ends: the workload's entry point returns it, `twi run` exits with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// The workload did its job (`twi run` exits 0).
    Success,
    /// It did not; the console says why (`twi run` exits non-zero).
    Failure,
}

/// A workload's entry point.
pub type Main = fn(&mut dyn Runtime) -> ExitCode;

/// The runtime, as a workload sees it. See the [module documentation](self).
pub trait Runtime {
    /// Acquires a credential of `credential_type` for `target` (TACRA Acquire-Credential).
    ///
    /// The runtime asks the issuer, through the host, how (Initiate: Enrollment or Retrieval,
    /// and the freshness kind, per the issuer's policy for this target); makes a fresh key in
    /// the vault (Enrollment: a signing key and a CSR; Retrieval: an encryption key the Key
    /// Store's release is sealed to); binds it, the freshness element, the issuer's identifier
    /// and the target into the hardware evidence; and accepts the credential only if it
    /// certifies that key under the issuer anchor of the measured manifest.
    ///
    /// ```no_run
    /// # use twi_payload::prelude::*;
    /// # fn demo(rt: &mut dyn Runtime) -> Result<(), AcquireError> {
    /// let credential = rt.acquire("https://payroll-db.example:8443", CredentialType::X509, None)?;
    /// rt.log(&format!("identity: {}", credential.workload_id));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`AcquireError`]: the issuer's refusal (with its reason), the TEE's, the host's.
    fn acquire(
        &mut self,
        target: &str,
        credential_type: CredentialType,
        hint: Option<&str>,
    ) -> Result<Credential, AcquireError>;

    /// Signs `message` with ECDSA P-384/SHA-384 under the key `key` names; returns the DER
    /// signature. The key never leaves the vault, nor does the per-signature nonce.
    ///
    /// ```no_run
    /// # use twi_payload::prelude::*;
    /// # fn demo(rt: &mut dyn Runtime, credential: &Credential) -> Result<(), KeyError> {
    /// let signature = rt.sign(credential.key, b"payroll run 2026-01")?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`KeyError::Unavailable`] when the handle names no key (dropped, or from another launch).
    fn sign(&mut self, key: KeyHandle, message: &[u8]) -> Result<Vec<u8>, KeyError>;

    /// As [`Runtime::sign`], over a SHA-384 digest the workload computed itself.
    ///
    /// ```no_run
    /// # use twi_payload::prelude::*;
    /// # fn demo(rt: &mut dyn Runtime, credential: &Credential, digest: [u8; 48]) -> Result<(), KeyError> {
    /// let signature = rt.sign_digest(credential.key, &digest)?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Runtime::sign`].
    fn sign_digest(&mut self, key: KeyHandle, sha384: &[u8; 48]) -> Result<Vec<u8>, KeyError>;

    /// The key as a TLS client key (a handle that signs in the vault), for
    /// [`crate::tls::TlsConfigBuilder::client_certificate`].
    ///
    /// ```no_run
    /// # use twi_payload::prelude::*;
    /// # fn demo(rt: &mut dyn Runtime, credential: &Credential) -> Result<(), KeyError> {
    /// let key = rt.client_key(credential.key)?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Runtime::sign`].
    fn client_key(&mut self, key: KeyHandle) -> Result<Arc<dyn ClientKey>, KeyError>;

    /// Seals `plaintext` to this launch (same image, policy and platform TCB), authenticating
    /// `context` (it names what is sealed, so blobs cannot be swapped).
    ///
    /// ```no_run
    /// # use twi_payload::prelude::*;
    /// # fn demo(rt: &mut dyn Runtime) -> Result<(), SealError> {
    /// let blob = rt.seal(b"payroll cache v1", b"rows...")?;
    /// assert_eq!(rt.unseal(b"payroll cache v1", &blob)?, b"rows...");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`SealError::Unsupported`] where the platform derives no sealing key (TDX).
    fn seal(&mut self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError>;

    /// Opens what [`Runtime::seal`] sealed under the same `context`.
    ///
    /// ```no_run
    /// # use twi_payload::prelude::*;
    /// # fn demo(rt: &mut dyn Runtime, blob: &[u8]) -> Result<(), SealError> {
    /// let plaintext = rt.unseal(b"payroll cache v1", blob)?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`SealError::Refused`] for a blob altered, sealed elsewhere or under another context.
    fn unseal(&mut self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError>;

    /// The TEE's random source (hardware, inside the TEE; never the host's).
    ///
    /// ```no_run
    /// # use twi_payload::prelude::*;
    /// # fn demo(rt: &mut dyn Runtime) -> Result<(), twi_payload::tls::RandomError> {
    /// let mut id = [0u8; 16];
    /// rt.random().fill(&mut id)?;
    /// # Ok(()) }
    /// ```
    fn random(&self) -> &'static dyn Random;

    /// Time since the runtime started, from the CPU's time-stamp counter: monotonic, not
    /// calendar time.
    ///
    /// ```no_run
    /// # use twi_payload::prelude::*;
    /// # fn demo(rt: &mut dyn Runtime) {
    /// let started = rt.monotonic();
    /// // ... work ...
    /// let took = rt.monotonic() - started;
    /// # }
    /// ```
    fn monotonic(&self) -> Duration;

    /// The host's wall-clock time. The host chooses it: use it for what a wrong time cannot
    /// make unsafe (logs, a token's short `exp`), never to decide whether something is valid.
    ///
    /// ```no_run
    /// # use twi_payload::prelude::*;
    /// # fn demo(rt: &mut dyn Runtime) -> Result<(), ConnectError> {
    /// let HostTime(seconds) = rt.host_time()?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`ConnectError`] when the host does not answer.
    fn host_time(&mut self) -> Result<HostTime, ConnectError>;

    /// A value of the measured launch manifest (`twi build --set KEY=VALUE`), or `None`.
    /// Keys ending in `-ca` hold DER certificates (`twi build` reads the PEM file named).
    ///
    /// ```no_run
    /// # use twi_payload::prelude::*;
    /// # fn demo(rt: &mut dyn Runtime) {
    /// let target = rt.setting("target").and_then(|v| core::str::from_utf8(v).ok());
    /// # }
    /// ```
    fn setting(&self, key: &str) -> Option<&[u8]>;

    /// A byte stream to `target`, which must be a target the measured manifest names (a
    /// `target` setting, `https://HOST:PORT/…`); the host opens the TCP connection to
    /// HOST:PORT and relays bytes. The host can drop or corrupt them: run TLS over it.
    ///
    /// ```no_run
    /// # use twi_payload::prelude::*;
    /// # fn demo(rt: &mut dyn Runtime) -> Result<(), ConnectError> {
    /// let stream = rt.connect("https://payroll-db.example:8443/rows")?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`ConnectError::NotInManifest`] for a target the manifest does not name (refused inside
    /// the guest); [`ConnectError::Refused`] when the host could not connect.
    fn connect(&mut self, target: &str) -> Result<Box<dyn Transport + '_>, ConnectError>;

    /// Writes `line` to the console.
    ///
    /// ```no_run
    /// # use twi_payload::prelude::*;
    /// # fn demo(rt: &mut dyn Runtime) {
    /// rt.log("response: 200");
    /// # }
    /// ```
    fn log(&mut self, line: &str);
}

/// The host's wall-clock time, seconds since the Unix epoch: untrusted (see
/// [`Runtime::host_time`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostTime(pub u64);

/// Why [`Runtime::acquire`] failed (TACRA's failure reasons, and the runtime's own).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcquireError {
    /// The issuer does not know this target, or refuses it for this workload.
    InvalidTarget(String),
    /// The issuer cannot issue this credential type for the target.
    UnsupportedType(String),
    /// The issuer refused the hint.
    RejectedHint(String),
    /// The evidence did not satisfy the issuer's policy (its reason).
    Attestation(String),
    /// The issuer refused for another reason (permission, its own failure).
    Refused(String),
    /// The issuer is busy: try again later.
    Busy(String),
    /// The credential that came back is not one the manifest's issuer made for the vault's key
    /// (the host altered it, or another issuer answered).
    BadCredential(String),
    /// The TEE could not produce evidence or keys.
    Platform(String),
    /// The host (the channel) failed.
    Host(String),
}

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidTarget(why) => write!(f, "the issuer does not serve this target: {why}"),
            Self::UnsupportedType(why) => write!(f, "the issuer cannot issue this credential type: {why}"),
            Self::RejectedHint(why) => write!(f, "the issuer rejected the hint: {why}"),
            Self::Attestation(why) => write!(f, "the issuer rejected the evidence: {why}"),
            Self::Refused(why) => write!(f, "the issuer refused: {why}"),
            Self::Busy(why) => write!(f, "the issuer is busy, retry later: {why}"),
            Self::BadCredential(why) => write!(f, "credential rejected: {why}"),
            Self::Platform(why) => write!(f, "the TEE failed: {why}"),
            Self::Host(why) => write!(f, "the host failed: {why}"),
        }
    }
}

impl core::error::Error for AcquireError {}

/// Why sealing or unsealing failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealError {
    /// The platform derives no sealing key for the guest (TDX).
    Unsupported,
    /// The blob is altered, from another launch, or under another context.
    Refused,
    /// The platform failed to derive the key (its reason).
    Platform(String),
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unsupported => f.write_str("this platform derives no sealing key for the guest"),
            Self::Refused => {
                f.write_str("the sealed data does not open here (altered, another launch, or another context)")
            }
            Self::Platform(why) => write!(f, "the platform could not derive the sealing key: {why}"),
        }
    }
}

impl core::error::Error for SealError {}

/// Why [`Runtime::connect`] (or [`Runtime::host_time`]) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectError {
    /// The measured manifest names no such target: refused inside the guest.
    NotInManifest(String),
    /// The target is not a URL the runtime can connect to (`https://HOST:PORT/…`).
    BadTarget(String),
    /// The host could not connect (its reason: it is untrusted, so this is a hint).
    Refused(String),
    /// The channel to the host failed.
    Host(String),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotInManifest(t) => {
                write!(f, "`{t}` is not a target of the measured manifest (twi build --set target=…)")
            }
            Self::BadTarget(why) => write!(f, "not a target URL: {why}"),
            Self::Refused(why) => write!(f, "the host could not connect: {why}"),
            Self::Host(why) => write!(f, "the channel to the host failed: {why}"),
        }
    }
}

impl core::error::Error for ConnectError {}

/// Writes `args` to the console: `log!(rt, "x = {}", x)`.
#[macro_export]
macro_rules! log {
    ($rt:expr, $($arg:tt)*) => {
        $rt.log(&$crate::prelude::format!($($arg)*))
    };
}
