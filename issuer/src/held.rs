//! Which of the issuer's keys a process holds (`twi serve --roles` with a state directory of
//! its own), and how it knows the roles whose keys it does not hold.

use p384::ecdsa::VerifyingKey;
use x509_cert::Certificate;

use crate::error::IssuerError;

/// What `role` (the keys named, for the error) is in this process, if it holds it.
pub(crate) fn held<'a, T>(role: &'a Option<T>, keys: &'static str) -> Result<&'a T, IssuerError> {
    role.as_ref().ok_or(IssuerError::NotHeld(keys))
}

/// The Credential Authority's keys, as [`held`] names them.
pub(crate) const CA_KEYS: &str = "the Credential Authority's keys";
/// The Key Store's keys, as [`held`] names them.
pub(crate) const KEY_STORE_KEYS: &str = "the Key Store's keys";
/// The provenance log's keys, as [`held`] names them.
pub(crate) const LOG_KEYS: &str = "the provenance log's keys";

/// Which of the issuer's keys a process holds in its state directory. One process serving
/// every role (and replicas, which share one state) holds them all; a process serving some
/// roles only holds theirs, and knows the others by their public halves (`twi serve --roles`
/// with a state of its own: what a compromise of that process gives away is its roles' keys).
#[derive(Debug, Clone, Default)]
pub struct HeldKeys {
    /// The Verifier's: its result and epoch keys.
    pub verifier: VerifierKeys,
    /// The Credential Authority's: its CA and WIT keys.
    pub ca: CaKeys,
    /// The Key Store's (the CA that certifies its keys: [`crate::Issuer::certify_key_store_by`]).
    pub key_store: KeyStoreKeys,
    /// The provenance log's: its log key and checkpoint key.
    pub log: LogKeys,
}

/// The Key Store's keys in a process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeyStoreKeys {
    /// `keystore-key.pem` and `keystore-wrap-key.pem` in the state: made at the start with
    /// replicas (whose state copies must hold every key), on first use otherwise.
    #[default]
    Held,
    /// Not held: a process that does not serve the Key Store neither makes nor reads them.
    NotHeld,
}

/// The provenance log's keys in a process.
#[derive(Clone, Default)]
pub enum LogKeys {
    /// `log-key.pem` and the checkpoint key in the state (made if absent), with the log.
    #[default]
    Held,
    /// Held by the log process this one calls (`twi serve --log-url`): it signs and appends
    /// this process's records.
    Peer(std::sync::Arc<dyn crate::log_peer::LogPeer>),
    /// Neither held nor called: this process makes no credentials.
    None,
}

impl std::fmt::Debug for LogKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Held => f.write_str("Held"),
            Self::Peer(peer) => f.debug_tuple("Peer").field(&peer.url()).finish(),
            Self::None => f.write_str("None"),
        }
    }
}

/// The Verifier's keys in a process.
#[derive(Debug, Clone, Default)]
pub enum VerifierKeys {
    /// `verifier-key.pem` and `epoch-key.pem` in the state (made if absent).
    #[default]
    Held,
    /// Held by the Verifier process: its attestation results are checked under this key.
    Public(VerifyingKey),
    /// Not known here: attestation results are refused.
    Unknown,
}

/// The Credential Authority's keys in a process.
#[derive(Debug, Clone, Default)]
pub enum CaKeys {
    /// The CA and WIT keys in the state (made if absent).
    #[default]
    Held,
    /// Held by the CA process: its certificate (the relying-party id evidence binds).
    Public(Box<Certificate>),
}
