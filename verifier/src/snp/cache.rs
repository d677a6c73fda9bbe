//! Verified endorsement chains, kept (issue 14 item 9): an issuer appraises report after report
//! from the same chips, and the VCEK → ASK → ARK chain (AMD "VCEK Certificate and KDS Interface
//! Specification") is the same bytes each time — three of the four P-384/RSA verifications of
//! an appraisal. A chain that verified is kept under the SHA-256 of its DER certificates (each
//! length-prefixed, in order) until the first of its certificates expires: a hit skips the
//! chain, never the report's own signature or any check of the report. Bounded: when full, the
//! whole cache is dropped (chains are few; a flood of distinct ones only costs re-verification).

use std::collections::HashMap;
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use x509_cert::Certificate;

use super::appraisal::VerifiedVek;

/// Chains kept at most.
const MAX_CHAINS: usize = 1024;

/// The verified chains, by the hash of their DER bytes.
#[derive(Debug, Default)]
pub(crate) struct ChainCache {
    entries: HashMap<[u8; 32], (VerifiedVek, SystemTime, SystemTime)>,
    hits: u64,
}

/// The cache key of an endorsement list.
pub(crate) fn key(endorsements: &[Vec<u8>]) -> [u8; 32] {
    let mut h = Sha256::new();
    for der in endorsements {
        h.update((der.len() as u64).to_be_bytes());
        h.update(der);
    }
    h.finalize().into()
}

/// When every certificate of `path` is valid: the latest notBefore to the earliest notAfter.
pub(crate) fn window<'a>(path: impl IntoIterator<Item = &'a Certificate>) -> (SystemTime, SystemTime) {
    let (mut not_before, mut not_after) = (SystemTime::UNIX_EPOCH, None::<SystemTime>);
    for c in path {
        let validity = c.tbs_certificate().validity();
        not_before = not_before.max(validity.not_before.to_system_time());
        let end = validity.not_after.to_system_time();
        not_after = Some(not_after.map_or(end, |a| a.min(end)));
    }
    // No certificate: a window that never opens.
    (not_before, not_after.unwrap_or(SystemTime::UNIX_EPOCH))
}

impl ChainCache {
    /// The chain verified under `key`, if it is still valid at `now`.
    pub(crate) fn get(&mut self, key: &[u8; 32], now: SystemTime) -> Option<VerifiedVek> {
        let (vek, not_before, not_after) = self.entries.get(key)?;
        if now < *not_before || now > *not_after {
            self.entries.remove(key);
            return None;
        }
        self.hits += 1;
        Some(vek.clone())
    }

    /// Keeps `vek`, verified from the endorsements of `key`, valid from `window.0` to `window.1`.
    pub(crate) fn insert(&mut self, key: [u8; 32], vek: VerifiedVek, window: (SystemTime, SystemTime)) {
        if self.entries.len() >= MAX_CHAINS {
            self.entries.clear();
        }
        self.entries.insert(key, (vek, window.0, window.1));
    }

    /// Appraisals that reused a verified chain.
    pub(crate) fn hits(&self) -> u64 {
        self.hits
    }
}
