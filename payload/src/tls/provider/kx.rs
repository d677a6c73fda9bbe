//! Ephemeral ECDH on secp384r1 for the TLS 1.3 key share (RFC 8446 §4.2.8, §7.4.2).
//!
//! The client offers one group, so the server either uses it or fails the handshake (no
//! HelloRetryRequest dance with another curve). Key shares are SEC1 uncompressed points
//! (§4.2.8.2: `legacy_form` = 4, X, Y); the peer's point is parsed and checked on the curve
//! before use; the shared secret is the X coordinate (§7.4.2). The ephemeral scalar comes from
//! the caller's [`Random`] and is wiped when the exchange completes or is dropped.

use alloc::boxed::Box;

use p384::{PublicKey, SecretKey};
use rustls::crypto::{ActiveKeyExchange, SharedSecret, SupportedKxGroup};
use rustls::{Error, NamedGroup, PeerMisbehaved};
use zeroize::Zeroizing;

use crate::tls::random::Random;

/// SEC1 uncompressed P-384 point: 0x04 ‖ X (48) ‖ Y (48).
const POINT_LEN: usize = twi_proto::point::P384_UNCOMPRESSED_LEN;
/// A source that yields this many out-of-range scalars in a row (each has odds below 2^-190) is
/// broken, not unlucky.
const SCALAR_ATTEMPTS: usize = 4;

/// secp384r1 as the only key-exchange group.
#[derive(Debug)]
pub(crate) struct P384Kx {
    pub(crate) random: &'static dyn Random,
}

impl SupportedKxGroup for P384Kx {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        let secret = self.ephemeral()?;
        let public = twi_proto::point::p384_uncompressed(&secret.public_key());
        Ok(Box::new(P384Exchange { secret, public }))
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::secp384r1
    }
}

impl P384Kx {
    fn ephemeral(&self) -> Result<SecretKey, Error> {
        for _ in 0..SCALAR_ATTEMPTS {
            let mut bytes = Zeroizing::new([0u8; 48]);
            self.random.fill(&mut bytes[..]).map_err(|_| Error::FailedToGetRandomBytes)?;
            if let Ok(secret) = SecretKey::from_slice(&bytes[..]) {
                return Ok(secret);
            }
        }
        Err(Error::FailedToGetRandomBytes)
    }
}

struct P384Exchange {
    secret: SecretKey,
    public: [u8; POINT_LEN],
}

impl ActiveKeyExchange for P384Exchange {
    fn complete(self: Box<Self>, peer_pub_key: &[u8]) -> Result<SharedSecret, Error> {
        let peer = parse_peer(peer_pub_key)?;
        let shared = self.secret.diffie_hellman(&peer);
        Ok(SharedSecret::from(&shared.raw_secret_bytes()[..]))
    }

    fn pub_key(&self) -> &[u8] {
        &self.public
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::secp384r1
    }
}

/// §4.2.8.2: exactly an uncompressed point, and on the curve (the SEC1 decoder checks).
fn parse_peer(bytes: &[u8]) -> Result<PublicKey, Error> {
    let invalid = || Error::PeerMisbehaved(PeerMisbehaved::InvalidKeyShare);
    twi_proto::point::p384_from_uncompressed(bytes).ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::random::RandomError;
    use core::sync::atomic::{AtomicU8, Ordering};

    /// Deterministic bytes for tests only: a counter, never a real source.
    #[derive(Debug)]
    struct Counter(AtomicU8);

    impl Random for Counter {
        fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError> {
            for b in buf {
                *b = self.0.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }
    }

    #[derive(Debug)]
    struct Failing;

    impl Random for Failing {
        fn fill(&self, _: &mut [u8]) -> Result<(), RandomError> {
            Err(RandomError)
        }
    }

    fn group(random: &'static dyn Random) -> P384Kx {
        P384Kx { random }
    }

    #[test]
    fn both_sides_agree() {
        static RNG: Counter = Counter(AtomicU8::new(1));
        let a = group(&RNG).start().unwrap();
        let b = group(&RNG).start().unwrap();
        let (a_pub, b_pub) = (a.pub_key().to_vec(), b.pub_key().to_vec());
        assert_eq!(a_pub.len(), POINT_LEN);
        let s1 = a.complete(&b_pub).unwrap();
        let s2 = b.complete(&a_pub).unwrap();
        assert_eq!(s1.secret_bytes(), s2.secret_bytes());
        assert_eq!(s1.secret_bytes().len(), 48);
    }

    #[test]
    fn bad_peer_points_are_refused() {
        static RNG: Counter = Counter(AtomicU8::new(1));
        let peer = group(&RNG).start().unwrap().pub_key().to_vec();
        let mut off_curve = peer.clone();
        off_curve[96] ^= 1;
        let mut compressed = peer[..49].to_vec();
        compressed[0] = 0x02;
        for bad in [&off_curve[..], &compressed[..], &peer[..96], &[][..]] {
            let err = group(&RNG).start().unwrap().complete(bad).err().unwrap();
            assert_eq!(err, Error::PeerMisbehaved(PeerMisbehaved::InvalidKeyShare));
        }
    }

    #[test]
    fn a_failing_source_is_an_error() {
        static RNG: Failing = Failing;
        assert_eq!(group(&RNG).start().err().unwrap(), Error::FailedToGetRandomBytes);
    }
}
