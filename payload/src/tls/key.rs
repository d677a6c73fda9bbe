//! The client's private key: outside this crate, behind [`ClientKey`].
//!
//! With mutual TLS the client proves possession of its certificate's key by signing the
//! handshake transcript in CertificateVerify (RFC 8446 §4.4.3). The key is the workload's
//! credential key, generated in the runtime's vault and never exported; this crate only ever
//! holds a handle and asks it to sign. The signature scheme is ecdsa_secp384r1_sha384: the
//! vault hashes `message` with SHA-384 and returns the DER `ECDSA-Sig-Value` (RFC 5480 §2.2),
//! exactly as TLS carries it. The runtime's nonce handling (RFC 6979 or hedged) stays in the
//! vault too.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU8, Ordering};

use rustls::client::ResolvesClientCert;
use rustls::pki_types::CertificateDer;
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::{Error, SignatureAlgorithm, SignatureScheme};

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

impl KeyError {
    const ALL: [Self; 3] = [Self::Unavailable, Self::Refused, Self::Failed];

    fn code(self) -> u8 {
        match self {
            Self::Unavailable => 1,
            Self::Refused => 2,
            Self::Failed => 3,
        }
    }
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
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: Arc<dyn ClientKey>,
}

/// What a failed signature was, kept for the connection that asked for it: rustls carries
/// signer errors as text, and the stream reports them as the typed [`KeyError`] instead.
#[derive(Debug, Default)]
pub(crate) struct KeyFailure(AtomicU8);

impl KeyFailure {
    fn record(&self, error: KeyError) {
        self.0.store(error.code(), Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> Option<KeyError> {
        let code = self.0.load(Ordering::Relaxed);
        KeyError::ALL.into_iter().find(|e| e.code() == code)
    }
}

/// One connection's client-certificate resolver: always the configured chain and key.
#[derive(Debug)]
pub(crate) struct Resolver(Arc<CertifiedKey>);

impl Resolver {
    pub(crate) fn new(identity: &ClientIdentity, failure: Arc<KeyFailure>) -> Self {
        let key = Arc::new(VaultKey { key: identity.key.clone(), failure });
        Self(Arc::new(CertifiedKey::new(identity.chain.clone(), key)))
    }
}

impl ResolvesClientCert for Resolver {
    /// The chain is presented whatever CA names the server hints: it is the one credential the
    /// workload holds for this target, and the server's verdict is the answer.
    fn resolve(&self, _root_hint_subjects: &[&[u8]], _sigschemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

#[derive(Debug)]
struct VaultKey {
    key: Arc<dyn ClientKey>,
    failure: Arc<KeyFailure>,
}

impl SigningKey for VaultKey {
    /// Only ecdsa_secp384r1_sha384; a server that does not offer it gets no CertificateVerify
    /// (rustls then sends an empty Certificate and the server decides).
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        offered
            .contains(&SignatureScheme::ECDSA_NISTP384_SHA384)
            .then(|| Box::new(VaultSigner { key: self.key.clone(), failure: self.failure.clone() }) as Box<dyn Signer>)
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::ECDSA
    }
}

#[derive(Debug)]
struct VaultSigner {
    key: Arc<dyn ClientKey>,
    failure: Arc<KeyFailure>,
}

impl Signer for VaultSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        self.key.sign(message).map_err(|error| {
            self.failure.record(error);
            Error::General(alloc::string::ToString::to_string(&error))
        })
    }

    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::ECDSA_NISTP384_SHA384
    }
}

impl core::error::Error for KeyError {}
