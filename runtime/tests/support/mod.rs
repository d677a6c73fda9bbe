//! Helpers shared by the integration tests: the deterministic RNG and a small test CA that
//! issues certificates with the issuer's own profiles (`twi_issuer::x509`).
#![allow(dead_code)]

pub mod test_rng;

use std::time::Duration;

use der::Encode;
use p384::ecdsa::SigningKey;
use p384::elliptic_curve::Generate;
use twi_issuer::x509::{ExtraExtension, Kind, Profile, issue, p384_spki, random_serial};
use x509_cert::name::Name;
use x509_cert::spki::SubjectPublicKeyInfoOwned;

pub use test_rng::TestRng;

pub const WORKLOAD_ID: &str = "spiffe://example.org/payroll";
pub const LIFETIME: Duration = Duration::from_secs(3600);

/// The P-384 key `TestRng(seed)` generates: the same key the vault generates from that seed.
pub fn key_from_seed(seed: u64) -> SigningKey {
    SigningKey::try_generate_from_rng(&mut TestRng(seed)).expect("TestRng is infallible")
}

/// SEC1 uncompressed encoding of `key`'s public key (what the vault hands out).
pub fn public_sec1(key: &SigningKey) -> Vec<u8> {
    key.verifying_key().to_sec1_point(false).as_bytes().to_vec()
}

/// A certificate authority for tests: a deterministic key and a subject name.
pub struct TestCa {
    pub key: SigningKey,
    pub subject: Name,
}

impl TestCa {
    pub fn new(seed: u64, subject: &str) -> Self {
        Self { key: key_from_seed(seed), subject: subject.parse().expect("a valid test DN") }
    }

    /// The CA's public key as a launch manifest carries it (the runtime's issuer anchor).
    pub fn anchor(&self) -> Vec<u8> {
        public_sec1(&self.key)
    }

    /// A DER certificate of `kind` (plus `extra` extensions) for `subject_key`, signed by
    /// this CA with ecdsa-with-SHA384.
    pub fn issue_der(&self, kind: Kind, extra: Vec<ExtraExtension>, subject_key: SubjectPublicKeyInfoOwned) -> Vec<u8> {
        let profile = Profile {
            subject: "CN=payroll,O=example.org".parse().expect("a valid DN"),
            issuer: Some(self.subject.clone()),
            kind,
            extra,
        };
        let serial = random_serial().expect("serial");
        issue(profile, serial, LIFETIME, subject_key, &self.key).expect("issue").to_der().expect("DER")
    }

    /// A workload credential for the SEC1 key `key` naming the URI `uri`: what the issuer
    /// hands out.
    pub fn issue_workload(&self, key: &[u8], uri: &str) -> Vec<u8> {
        self.issue_der(Kind::Workload { uri: uri.to_owned() }, Vec::new(), p384_spki(key).expect("a P-384 key"))
    }
}
