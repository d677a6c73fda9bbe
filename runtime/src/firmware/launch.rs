//! The runtime as a workload sees it: [`Launch`] implements `twi_payload::Runtime` over the TEE,
//! the channel to the host, the vault and the measured manifest.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::time::Duration;

use twi_payload::target::named_origin;
use twi_payload::tls::{ClientKey, KeyError, Random, Transport};
use twi_payload::{AcquireError, ConnectError, Credential, CredentialType, HostTime, KeyHandle, Mode, SealError};
use twi_proto::manifest::LaunchManifest;
use twi_proto::msg::{CredentialKind, ErrorCode, Message, TimeRequest};

use super::keys::{HW_RANDOM, VaultKey, key_error};
use super::relay::{OpenError, RelayStream};
use super::{RUNTIME_NAME, SerialLink, VAULT, log_event, new_key};
use crate::channel::{Channel, ChannelError};
use crate::pairwise::TestedKey;
use crate::platform::{console, cpu, rng::HwRng, time};
use crate::sealing::{SealError as SealingError, SealingKey};
use crate::session::{Acquisition, Outcome, Session, SessionError, Trust};
use crate::tee::{Measurement, Tee, TeeError};
use crate::vault::KeyId;

/// The target the built-in workload acquires for when the manifest names none.
pub const DEFAULT_TARGET: &str = "twi:default";

/// One launch, as the workload's handle.
pub struct Launch<'r> {
    tee: &'r mut dyn Tee,
    channel: &'r Channel<'r, SerialLink>,
    manifest: &'r LaunchManifest,
    /// What the TEE measures before the first evidence (TDX RTMRs); empty once extended.
    measurements: &'r [Measurement<'r>],
    rng: &'r mut HwRng,
    /// The key generated (and tested) at boot, for the first acquisition.
    first_key: Option<TestedKey>,
    tsc_hz: u64,
    started: u64,
    next_connection: u16,
}

impl core::fmt::Debug for Launch<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Launch").field("platform", &self.tee.platform()).finish_non_exhaustive()
    }
}

impl<'r> Launch<'r> {
    pub fn new(
        tee: &'r mut dyn Tee,
        channel: &'r Channel<'r, SerialLink>,
        manifest: &'r LaunchManifest,
        measurements: &'r [Measurement<'r>],
        rng: &'r mut HwRng,
        first_key: Option<TestedKey>,
        tsc_hz: u64,
    ) -> Self {
        let started = cpu::rdtsc();
        let next_connection = 1;
        Self { tee, channel, manifest, measurements, rng, first_key, tsc_hz, started, next_connection }
    }

    /// One session with the issuer for `key` and `request`, through the host.
    fn session(&mut self, tested: &TestedKey, request: &Acquisition<'_>) -> Result<Outcome, SessionError> {
        let mut events = log_event;
        let manifest = self.manifest;
        let mut session = Session {
            channel: self.channel,
            vault: &VAULT,
            trust: Trust {
                issuer_anchor: &manifest.issuer_anchor,
                rp_id: &manifest.issuer_name,
                epoch_marker: manifest.setting("epoch"),
            },
            runtime_name: RUNTIME_NAME,
            events: &mut events,
        };
        let measurements = core::mem::take(&mut self.measurements);
        session.run(&mut *self.tee, &mut *self.rng, measurements, tested, request)
    }

    /// The origin (`HOST:PORT`) of `target` if the manifest names a target with that origin.
    fn manifest_origin(&self, target: &str) -> Result<String, ConnectError> {
        let settings = self.manifest.settings.iter().map(|s| (s.key.as_str(), &s.value[..]));
        named_origin(settings, target)
    }
}

/// The payload API's view of a session failure.
fn acquire_error(e: SessionError) -> AcquireError {
    let text = alloc::format!("{e}");
    match e {
        SessionError::Channel(ChannelError::HostError(code, message)) => match code {
            ErrorCode::VerificationFailed => AcquireError::Attestation(message),
            ErrorCode::PolicyRejected => AcquireError::Refused(message),
            ErrorCode::InvalidTarget => AcquireError::InvalidTarget(message),
            ErrorCode::UnsupportedType => AcquireError::UnsupportedType(message),
            ErrorCode::RejectedHint => AcquireError::RejectedHint(message),
            _ => AcquireError::Host(message),
        },
        SessionError::Channel(_) => AcquireError::Host(text),
        SessionError::Credential(_) | SessionError::KeyRelease(_) => AcquireError::BadCredential(text),
        SessionError::Tee(_)
        | SessionError::Vault(_)
        | SessionError::Binding
        | SessionError::Seal(_)
        | SessionError::Freshness(_) => AcquireError::Platform(text),
    }
}

/// The certificate's validity (`notBefore`, `notAfter`), seconds since the Unix epoch; the
/// session has already parsed and checked it, so an unreadable one is (0, 0).
fn validity(certificate: &[u8]) -> (u64, u64) {
    crate::credential::validity(certificate).unwrap_or((0, 0))
}

impl twi_payload::Runtime for Launch<'_> {
    fn acquire(
        &mut self,
        target: &str,
        credential_type: CredentialType,
        hint: Option<&str>,
    ) -> Result<Credential, AcquireError> {
        let tested = match self.first_key.take() {
            Some(tested) => tested,
            None => new_key(&mut *self.rng).map_err(|e| AcquireError::Platform(e.into()))?,
        };
        let key = tested.key();
        let kind = match credential_type {
            CredentialType::X509 => CredentialKind::X509,
            CredentialType::Wit => CredentialKind::Wit,
        };
        let request = Acquisition { target, credential_type: kind, hint };
        let outcome = self.session(&tested, &request).map_err(acquire_error)?;
        let mode = if outcome.key == key { Mode::Enrollment } else { Mode::Retrieval };
        if outcome.key != key {
            VAULT.remove(key);
        }
        let (not_before, not_after) = validity(&outcome.certificate);
        let (certificates, token) = match credential_type {
            CredentialType::X509 => (alloc::vec![outcome.certificate], String::new()),
            CredentialType::Wit => {
                let wit = outcome
                    .wit
                    .ok_or_else(|| AcquireError::UnsupportedType("the issuer sent no WIT for this target".into()))?;
                (Vec::new(), wit)
            }
        };
        Ok(Credential {
            target: target.to_string(),
            credential_type,
            mode,
            workload_id: outcome.workload_id,
            not_before,
            not_after,
            certificates,
            token,
            key: KeyHandle(outcome.key.to_u32()),
        })
    }

    fn sign(&mut self, key: KeyHandle, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        VAULT.sign(KeyId::from_u32(key.0), message).map(|s| s.as_bytes().to_vec()).map_err(key_error)
    }

    fn sign_digest(&mut self, key: KeyHandle, sha384: &[u8; 48]) -> Result<Vec<u8>, KeyError> {
        VAULT.sign_digest(KeyId::from_u32(key.0), sha384).map(|s| s.as_bytes().to_vec()).map_err(key_error)
    }

    fn client_key(&mut self, key: KeyHandle) -> Result<Arc<dyn ClientKey>, KeyError> {
        let id = KeyId::from_u32(key.0);
        VAULT.public_key(id).map_err(key_error)?;
        Ok(Arc::new(VaultKey(id)))
    }

    fn seal(&mut self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let key = sealing_key(&mut *self.tee)?;
        key.seal(context, plaintext, &mut *self.rng).map_err(|_| SealError::Platform("the RNG failed".into()))
    }

    fn unseal(&mut self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let key = sealing_key(&mut *self.tee)?;
        key.unseal(context, sealed).map(|p| p.to_vec()).map_err(|e| match e {
            SealingError::Unseal => SealError::Refused,
            SealingError::Rng => SealError::Platform("the RNG failed".into()),
        })
    }

    fn random(&self) -> &'static dyn Random {
        &HW_RANDOM
    }

    fn monotonic(&self) -> Duration {
        Duration::from_micros(time::micros(self.tsc_hz, self.started, cpu::rdtsc()))
    }

    fn host_time(&mut self) -> Result<HostTime, ConnectError> {
        let host = |e: ChannelError| ConnectError::Host(alloc::format!("{e}"));
        self.channel.send(&Message::TimeRequest(TimeRequest {})).map_err(host)?;
        match self.channel.recv_reply().map_err(host)? {
            Message::Time(t) => Ok(HostTime(t.unix_seconds)),
            other => Err(host(ChannelError::Unexpected(other.name()))),
        }
    }

    fn setting(&self, key: &str) -> Option<&[u8]> {
        self.manifest.setting(key)
    }

    fn connect(&mut self, target: &str) -> Result<Box<dyn Transport + '_>, ConnectError> {
        let host_port = self.manifest_origin(target)?;
        let id = self.next_connection;
        self.next_connection = self.next_connection.wrapping_add(1).max(1);
        match RelayStream::open(self.channel, id, &host_port) {
            Ok(stream) => Ok(Box::new(stream)),
            Err(OpenError::Refused(why)) => Err(ConnectError::Refused(why)),
            Err(OpenError::Channel(e)) => Err(ConnectError::Host(alloc::format!("{e}"))),
        }
    }

    fn log(&mut self, line: &str) {
        console::write_line(format_args!("{line}"));
    }
}

/// The TEE's launch-bound sealing key.
fn sealing_key(tee: &mut dyn Tee) -> Result<SealingKey, SealError> {
    match tee.sealing_key() {
        Ok(key) => Ok(SealingKey::new(key)),
        Err(TeeError::Unsupported(_)) => Err(SealError::Unsupported),
        Err(e) => Err(SealError::Platform(alloc::format!("{e}"))),
    }
}
