//! A stand-in [`Runtime`] for a workload's own host tests (`cargo test` in the payload crate),
//! behind the `testing` feature: `twi new` puts
//! `twi-payload = { …, features = ["testing"] }` under `[dev-dependencies]`.
//!
//! It runs the workload's logic on the host without a TEE, a host loader or an issuer: the
//! settings are what the test gives (as `twi build --set` would measure them), `acquire`
//! answers what the test scripted for the target (and refuses any other target, as an issuer
//! that does not serve it would), `connect` applies the runtime's own rule — only origins a
//! `target…` setting names — and then refuses to open a socket unless the test supplies a
//! transport. It records what the workload asked for and logged, so a test can check both.
//!
//! It holds no vault: `sign`, `client_key` and sealing answer errors, because a software key
//! here would prove nothing about the real one. What it can show is the workload's control
//! flow, its error handling and the requests it makes.
//!
//! ```
//! use twi_payload::prelude::*;
//! use twi_payload::testing::TestRuntime;
//!
//! fn workload(rt: &mut dyn Runtime) -> ExitCode {
//!     match rt.acquire("https://db.example/rows", CredentialType::X509, None) {
//!         Ok(_) => ExitCode::Success,
//!         Err(e) => {
//!             rt.log(&format!("no credential: {e}"));
//!             ExitCode::Failure
//!         }
//!     }
//! }
//!
//! let mut rt = TestRuntime::new().with_setting("target", "https://db.example/rows");
//! assert_eq!(workload(&mut rt), ExitCode::Failure);
//! assert!(rt.logs()[0].starts_with("no credential: the issuer does not serve this target"));
//! assert_eq!(rt.acquisitions()[0].target, "https://db.example/rows");
//! ```

extern crate std;

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::time::Duration;
use std::io::Read;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::credential::{Credential, CredentialType, KeyHandle};
use crate::runtime::{AcquireError, ConnectError, HostTime, Runtime, SealError};
use crate::target::named_origin;
use crate::tls::{ClientKey, KeyError, Random, RandomError, Transport};

/// Opens a transport to an origin (`HOST:PORT`) the manifest names, for tests that talk to a
/// local server.
pub type Connector = Box<dyn FnMut(&str) -> Result<Box<dyn Transport>, ConnectError>>;

/// One [`Runtime::acquire`] call the workload made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acquisition {
    /// The target it asked for.
    pub target: String,
    /// The credential type it asked for.
    pub credential_type: CredentialType,
    /// Its hint, if any.
    pub hint: Option<String>,
}

/// The stand-in runtime; see the [module documentation](self).
pub struct TestRuntime {
    settings: BTreeMap<String, Vec<u8>>,
    answers: BTreeMap<(String, CredentialType), Result<Credential, AcquireError>>,
    connector: Option<Connector>,
    acquisitions: Vec<Acquisition>,
    connects: Vec<String>,
    logs: Vec<String>,
    started: Instant,
}

impl core::fmt::Debug for TestRuntime {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TestRuntime")
            .field("settings", &self.settings.keys().collect::<Vec<_>>())
            .field("acquisitions", &self.acquisitions)
            .field("connects", &self.connects)
            .field("logs", &self.logs)
            .finish_non_exhaustive()
    }
}

impl Default for TestRuntime {
    fn default() -> Self {
        Self::new()
    }
}

impl TestRuntime {
    /// A runtime with no settings, no scripted credentials and no transport.
    pub fn new() -> Self {
        Self {
            settings: BTreeMap::new(),
            answers: BTreeMap::new(),
            connector: None,
            acquisitions: Vec::new(),
            connects: Vec::new(),
            logs: Vec::new(),
            started: Instant::now(),
        }
    }

    /// Adds a measured setting, as `twi build --set KEY=VALUE` would.
    pub fn with_setting(mut self, key: &str, value: impl AsRef<[u8]>) -> Self {
        self.settings.insert(key.to_string(), value.as_ref().to_vec());
        self
    }

    /// Scripts the answer to `acquire(target, credential_type, _)`.
    pub fn with_answer(
        mut self,
        target: &str,
        credential_type: CredentialType,
        answer: Result<Credential, AcquireError>,
    ) -> Self {
        self.answers.insert((target.to_string(), credential_type), answer);
        self
    }

    /// Lets `connect` open transports through `connector` (for origins the settings name).
    pub fn with_connector(mut self, connector: Connector) -> Self {
        self.connector = Some(connector);
        self
    }

    /// What the workload logged, one entry per [`Runtime::log`] call.
    pub fn logs(&self) -> &[String] {
        &self.logs
    }

    /// The acquisitions the workload asked for, in order.
    pub fn acquisitions(&self) -> &[Acquisition] {
        &self.acquisitions
    }

    /// The targets the workload asked to connect to, in order (refused ones included).
    pub fn connects(&self) -> &[String] {
        &self.connects
    }
}

impl Runtime for TestRuntime {
    fn acquire(
        &mut self,
        target: &str,
        credential_type: CredentialType,
        hint: Option<&str>,
    ) -> Result<Credential, AcquireError> {
        let hint = hint.map(str::to_string);
        self.acquisitions.push(Acquisition { target: target.to_string(), credential_type, hint });
        self.answers.get(&(target.to_string(), credential_type)).cloned().unwrap_or_else(|| {
            Err(AcquireError::InvalidTarget(alloc::format!(
                "the test runtime has no {credential_type:?} credential scripted for {target} (TestRuntime::with_answer)"
            )))
        })
    }

    fn sign(&mut self, _: KeyHandle, _: &[u8]) -> Result<Vec<u8>, KeyError> {
        Err(KeyError::Unavailable)
    }

    fn sign_digest(&mut self, _: KeyHandle, _: &[u8; 48]) -> Result<Vec<u8>, KeyError> {
        Err(KeyError::Unavailable)
    }

    fn client_key(&mut self, _: KeyHandle) -> Result<Arc<dyn ClientKey>, KeyError> {
        Err(KeyError::Unavailable)
    }

    fn seal(&mut self, _: &[u8], _: &[u8]) -> Result<Vec<u8>, SealError> {
        Err(SealError::Unsupported)
    }

    fn unseal(&mut self, _: &[u8], _: &[u8]) -> Result<Vec<u8>, SealError> {
        Err(SealError::Unsupported)
    }

    fn random(&self) -> &'static dyn Random {
        &OS_RANDOM
    }

    fn monotonic(&self) -> Duration {
        self.started.elapsed()
    }

    fn host_time(&mut self) -> Result<HostTime, ConnectError> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|e| ConnectError::Host(e.to_string()))?;
        Ok(HostTime(now.as_secs()))
    }

    fn setting(&self, key: &str) -> Option<&[u8]> {
        self.settings.get(key).map(Vec::as_slice)
    }

    fn connect(&mut self, target: &str) -> Result<Box<dyn Transport + '_>, ConnectError> {
        self.connects.push(target.to_string());
        let settings = self.settings.iter().map(|(k, v)| (k.as_str(), v.as_slice()));
        let origin = named_origin(settings, target)?;
        match self.connector.as_mut() {
            Some(connect) => connect(&origin),
            None => Err(ConnectError::Refused(alloc::format!(
                "the test runtime opens no connection to {origin} (TestRuntime::with_connector)"
            ))),
        }
    }

    fn log(&mut self, line: &str) {
        std::eprintln!("{line}");
        self.logs.push(line.to_string());
    }
}

/// The operating system's random source (`/dev/urandom`).
#[derive(Debug)]
struct OsRandom;

static OS_RANDOM: OsRandom = OsRandom;

impl Random for OsRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError> {
        let mut source = std::fs::File::open("/dev/urandom").map_err(|_| RandomError)?;
        source.read_exact(buf).map_err(|_| RandomError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_follows_the_manifest_rule_and_opens_nothing_by_default() {
        let mut rt = TestRuntime::new().with_setting("target", "https://db.example:8443/rows");
        let refused = rt.connect("https://elsewhere.example/").err();
        assert_eq!(refused, Some(ConnectError::NotInManifest("https://elsewhere.example/".into())));
        let named = rt.connect("https://db.example:8443/other").err();
        assert!(matches!(named, Some(ConnectError::Refused(why)) if why.contains("db.example:8443")));
        assert_eq!(rt.connects(), ["https://elsewhere.example/", "https://db.example:8443/other"]);
    }

    #[test]
    fn acquire_answers_what_was_scripted_and_records_the_request() {
        let refused = AcquireError::Attestation("measurement not admitted".into());
        let mut rt = TestRuntime::new().with_answer("https://db.example/", CredentialType::Wit, Err(refused.clone()));
        assert_eq!(rt.acquire("https://db.example/", CredentialType::Wit, Some("h")).err(), Some(refused));
        let other = rt.acquire("https://db.example/", CredentialType::X509, None).err();
        assert!(matches!(other, Some(AcquireError::InvalidTarget(_))));
        assert_eq!(rt.acquisitions()[0].hint.as_deref(), Some("h"));
        assert_eq!(rt.acquisitions().len(), 2);
    }

    #[test]
    fn the_os_random_source_fills_buffers() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        OS_RANDOM.fill(&mut a).unwrap();
        OS_RANDOM.fill(&mut b).unwrap();
        assert_ne!(a, b);
    }
}
