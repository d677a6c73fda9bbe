//! A lean rustls crypto provider: one TLS 1.3 suite, one group, ECDSA verification only.
//!
//! rustls leaves the cryptography to a `CryptoProvider`. Its bundled providers (aws-lc-rs,
//! ring) are C/assembly that do not build for a soft-float bare-metal target, and the
//! RustCrypto community provider carries every suite, X25519, RSA, EdDSA and ChaCha20 (about
//! 550 KB of a 256 KiB ROM budget). This one offers exactly what a TWI workload needs, on the
//! RustCrypto crates the runtime already links, so the ROM holds one copy of each:
//!
//! - cipher suite TLS_AES_256_GCM_SHA384 (RFC 8446 §B.4): AES-256-GCM records, SHA-384
//!   transcript, HKDF-SHA-384 (rustls's HKDF over our HMAC);
//! - key exchange secp384r1 (§4.2.7), ephemeral ECDH;
//! - signature verification ECDSA P-384/SHA-384, and P-256/SHA-256 with the `p256` feature
//!   (§4.2.3), for the server's CertificateVerify and its certificate chain;
//! - no private-key loading: the client key signs through [`super::ClientKey`] in the vault;
//! - randomness from the caller's [`Random`].
//!
//! No TLS 1.2 (its suites, PRF and RSA key exchange are not compiled in), no RSA, no X25519, no
//! ChaCha20-Poly1305, no session resumption, no 0-RTT.

mod aead;
mod hash;
mod kx;
mod verify;

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec;

use rustls::crypto::tls13::HkdfUsingHmac;
use rustls::crypto::{CipherSuiteCommon, CryptoProvider, KeyProvider};
use rustls::pki_types::PrivateKeyDer;
use rustls::sign::SigningKey;
use rustls::{CipherSuite, Error, SupportedCipherSuite, Tls13CipherSuite};

use super::random::{Entropy, Random};

static SHA384: hash::Sha384Hash = hash::Sha384Hash;
static HMAC_SHA384: hash::HmacSha384 = hash::HmacSha384;
static HKDF_SHA384: HkdfUsingHmac<'static> = HkdfUsingHmac(&HMAC_SHA384);
static AES_256_GCM: aead::Aes256GcmAead = aead::Aes256GcmAead;

/// TLS_AES_256_GCM_SHA384 (RFC 8446 §B.4).
static TLS13_AES_256_GCM_SHA384: Tls13CipherSuite = Tls13CipherSuite {
    common: CipherSuiteCommon {
        suite: CipherSuite::TLS13_AES_256_GCM_SHA384,
        hash_provider: &SHA384,
        // AES-GCM: 2^24 full-size records per key keeps the distinguishing advantage below
        // 2^-60 (draft-irtf-cfrg-aead-limits §5.1); rustls sends a KeyUpdate before then.
        confidentiality_limit: 1 << 24,
    },
    hkdf_provider: &HKDF_SHA384,
    aead_alg: &AES_256_GCM,
    quic: None,
};

/// The provider's parts that need the caller's random source, which rustls wants `'static`.
#[derive(Debug)]
struct Seeded {
    entropy: Entropy,
    kx: kx::P384Kx,
}

/// The provider for one configuration.
///
/// rustls holds a provider's random source and key-exchange groups as `&'static`; since ours
/// carry the caller's source, each configuration allocates them once (two pointers each) and
/// never frees them. Build a configuration once per target and reuse it.
pub(crate) fn provider(random: &'static dyn Random) -> CryptoProvider {
    let seeded: &'static Seeded = Box::leak(Box::new(Seeded { entropy: Entropy(random), kx: kx::P384Kx { random } }));
    CryptoProvider {
        cipher_suites: vec![SupportedCipherSuite::Tls13(&TLS13_AES_256_GCM_SHA384)],
        kx_groups: vec![&seeded.kx],
        signature_verification_algorithms: verify::ALGORITHMS,
        secure_random: &seeded.entropy,
        key_provider: &NO_PRIVATE_KEYS,
    }
}

static NO_PRIVATE_KEYS: NoPrivateKeys = NoPrivateKeys;

/// Refuses private keys: they live in the vault and sign through `ClientKey`.
#[derive(Debug)]
struct NoPrivateKeys;

impl KeyProvider for NoPrivateKeys {
    fn load_private_key(&self, _key_der: PrivateKeyDer<'static>) -> Result<Arc<dyn SigningKey>, Error> {
        Err(Error::General("private keys are not loaded here: sign through a ClientKey held by the vault".into()))
    }
}
