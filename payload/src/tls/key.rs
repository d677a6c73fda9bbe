//! The client's private key: outside this crate, behind [`ClientKey`].
//!
//! With mutual TLS the client proves possession of its certificate's key by signing the
//! handshake transcript in CertificateVerify (RFC 8446 §4.4.3). The key is the workload's
//! credential key, generated in the runtime's vault and never exported; this crate only ever
//! holds a handle and asks it to sign. The signature scheme is ecdsa_secp384r1_sha384: the
//! vault hashes `message` with SHA-384 and returns the DER `ECDSA-Sig-Value` (RFC 5480 §2.2),
//! exactly as TLS carries it. The runtime's nonce handling (RFC 6979 or hedged) stays in the
//! vault too.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

/// A P-384 private key that signs without revealing itself (a vault handle).
pub trait ClientKey: Send + Sync + fmt::Debug {
    /// Signs `message` with ECDSA P-384 over SHA-384 (the key hashes) and returns the DER
    /// `ECDSA-Sig-Value`.
    ///
    /// # Errors
    /// [`KeyError`] when the key cannot sign; the handshake then fails with
    /// `TlsError::ClientKey` carrying it.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError>;
}

/// Why the client key did not sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The key behind the handle no longer exists (released, or the credential was renewed).
    Unavailable,
    /// The key's owner refused this use of it (a vault policy).
    Refused,
    /// The signing operation itself failed.
    Failed,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unavailable => "the client key is gone from the vault: acquire the credential again",
            Self::Refused => "the vault refused to sign with the client key: check the key's allowed uses",
            Self::Failed => "the vault failed to sign with the client key: retry, then acquire a new credential",
        })
    }
}

/// The client certificate chain (leaf first, DER) and the handle of its key.
#[derive(Debug, Clone)]
pub(crate) struct ClientIdentity {
    pub(crate) chain: Vec<Vec<u8>>,
    pub(crate) key: Arc<dyn ClientKey>,
}

impl core::error::Error for KeyError {}
