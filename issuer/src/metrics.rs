//! Process-wide counters: how many ECDSA signatures the issuer's roles have made (credentials,
//! tokens, attestation results, log statements, receipts and tree heads, epochs). The benchmark
//! reads them to set its `openssl speed` bound to the signatures an issuance actually makes, as
//! the service issue defines the bound, instead of assuming a count.

use std::sync::atomic::{AtomicU64, Ordering};

static ECDSA_SIGNATURES: AtomicU64 = AtomicU64::new(0);

/// ECDSA signatures (P-384, or P-256 for ES256 tokens) the issuer has made in this process.
pub fn ecdsa_signatures() -> u64 {
    ECDSA_SIGNATURES.load(Ordering::Relaxed)
}

/// Counts one signature made (call where a role signs, after it succeeded).
pub(crate) fn signed() {
    ECDSA_SIGNATURES.fetch_add(1, Ordering::Relaxed);
}
