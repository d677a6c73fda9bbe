//! Verified TDX endorsements, kept (issue 14 item 9): an issuer appraises quote after quote
//! from the same platforms under the same collateral, and most of an appraisal's P-256
//! verifications are of bytes it has verified before — the collateral's two signed documents
//! and their signing chains (five signatures and two CRL checks), the PCK chain (three) and its
//! CRLs — leaving the two that are the quote's own (the QE report by the PCK key, the quote by
//! the attestation key). What verified is kept:
//!
//! - the verified collateral, until the first of its dates passes (its documents'
//!   `nextUpdate`, its chains' `notAfter`, the root CRL's next update);
//! - a PCK path and the CRLs it was checked against, under the SHA-256 of their DER bytes (each
//!   length-prefixed, in order), until the first certificate or CRL stops being current.
//!
//! A hit skips those signatures, never a quote's own or any check of the quote, and is taken
//! only inside the window the kept bytes are valid for. Bounded: when full, the paths are all
//! dropped (they are few; a flood of distinct ones only costs re-verification).

use std::collections::HashMap;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::chain::{Cert, Crl};
use crate::tdx::roots::TdxAnchor;

/// Paths kept at most.
const MAX_PATHS: usize = 1024;

/// From when until when something kept may be used.
pub(crate) type Window = (SystemTime, SystemTime);

/// The PCK paths a `TdxVerifier` verified (its clones share them), and how often one
/// was reused.
#[derive(Debug, Default)]
pub(crate) struct PathCache {
    paths: HashMap<[u8; 32], (TdxAnchor, Window)>,
    hits: u64,
}

impl PathCache {
    /// The anchor of a PCK path verified and checked against CRLs under `key`, if that is still
    /// current at `now`.
    pub(crate) fn path(&mut self, key: &[u8; 32], now: SystemTime) -> Option<TdxAnchor> {
        let (anchor, window) = self.paths.get(key)?;
        if !within(*window, now) {
            self.paths.remove(key);
            return None;
        }
        let anchor = anchor.clone();
        self.hits += 1;
        Some(anchor)
    }

    /// Keeps the anchor of the path and CRLs under `key`, current during `window`.
    pub(crate) fn keep_path(&mut self, key: [u8; 32], anchor: TdxAnchor, window: Window) {
        if self.paths.len() >= MAX_PATHS {
            self.paths.clear();
        }
        self.paths.insert(key, (anchor, window));
    }

    /// Appraisals that reused a verified path.
    pub(crate) fn hits(&self) -> u64 {
        self.hits
    }
}

pub(crate) fn within((from, until): Window, now: SystemTime) -> bool {
    from <= now && now <= until
}

/// The key of a PCK path and the CRLs it is checked against.
pub(crate) fn path_key(path: &[Cert], crls: &[Crl]) -> [u8; 32] {
    let mut h = Sha256::new();
    for der in path.iter().map(Cert::der).chain([&b"crls"[..]]).chain(crls.iter().map(Crl::der)) {
        h.update((der.len() as u64).to_be_bytes());
        h.update(der);
    }
    h.finalize().into()
}

/// When every certificate of `path` is valid and every CRL current.
pub(crate) fn path_window(path: &[Cert], crls: &[Crl]) -> Window {
    let mut window = (SystemTime::UNIX_EPOCH, None::<SystemTime>);
    for validity in path.iter().map(|c| c.certificate().tbs_certificate().validity()) {
        narrow(&mut window, validity.not_before.to_system_time(), Some(validity.not_after.to_system_time()));
    }
    for crl in crls {
        narrow(&mut window, crl.this_update(), crl.next_update());
    }
    // Nothing to bound it: a window that never opens.
    (window.0, window.1.unwrap_or(SystemTime::UNIX_EPOCH))
}

fn narrow(window: &mut (SystemTime, Option<SystemTime>), from: SystemTime, until: Option<SystemTime>) {
    window.0 = window.0.max(from);
    if let Some(until) = until {
        window.1 = Some(window.1.map_or(until, |w| w.min(until)));
    }
}
