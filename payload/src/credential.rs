//! What `Runtime::acquire` returns: a credential for one
//! target, and the handle of its key in the vault.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The credential types a workload can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CredentialType {
    /// An X.509 certificate (SPIFFE X.509-SVID rules: one URI SAN naming the workload), for
    /// mutual TLS.
    X509,
    /// A WIMSE Workload Identity Token (`wit+jwt`), whose `cnf` key proves possession with a
    /// Workload Proof Token per request (the `wpt` module).
    Wit,
}

impl CredentialType {
    /// The name the issuer's policy uses (`x509`, `wit`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::X509 => "x509",
            Self::Wit => "wit",
        }
    }
}

impl fmt::Display for CredentialType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the credential was acquired (the issuer's policy chose it, per target).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A fresh vault key and a CSR; the Credential Authority minted the credential.
    Enrollment,
    /// A fresh vault encryption key; the Key Store released a provisioned key and credential
    /// encrypted to it, opened in the vault.
    Retrieval,
}

/// A key in the vault: signs, never leaves. Valid for the life of the launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHandle(pub u32);

/// A credential the issuer made (or released) for this launch, checked by the runtime against
/// the issuer anchor of the measured manifest.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// The target it was acquired for.
    pub target: String,
    pub credential_type: CredentialType,
    pub mode: Mode,
    /// The workload identifier the credential names (e.g. `spiffe://example.org/payroll-app`):
    /// the Stable identifier the issuer's policy mapped this launch to.
    pub workload_id: String,
    /// X.509: the certificate (DER) then its issuing chain, if any; empty for a WIT.
    pub certificates: Vec<Vec<u8>>,
    /// WIT: the compact JWS; empty for X.509.
    pub token: String,
    /// The vault key the credential certifies.
    pub key: KeyHandle,
    /// The start of its validity, seconds since the Unix epoch (as the issuer wrote it): the
    /// present is no earlier, a lower bound on time the host cannot move.
    pub not_before: u64,
    /// The end of its validity, seconds since the Unix epoch (as the issuer wrote it).
    pub not_after: u64,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("target", &self.target)
            .field("credential_type", &self.credential_type)
            .field("mode", &self.mode)
            .field("workload_id", &self.workload_id)
            .field("key", &self.key)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}
