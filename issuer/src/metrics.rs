//! Process-wide counters, served as `GET /metrics` in the Prometheus text exposition format
//! (version 0.0.4): the ECDSA signatures the issuer's roles have made (credentials, tokens,
//! attestation results, log statements, receipts and tree heads, epochs), the X.509
//! certificates among them, the records appended to the provenance log and the signed tree
//! heads that cover them. Counts only: no identifier, key or credential. The benchmark reads
//! them to set its `openssl speed` bound to the signatures an issuance actually makes, as the
//! service issue defines the bound, instead of assuming a count.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

static ECDSA_SIGNATURES: AtomicU64 = AtomicU64::new(0);
static X509_CERTIFICATES: AtomicU64 = AtomicU64::new(0);
static LOG_RECORDS: AtomicU64 = AtomicU64::new(0);
static TREE_HEADS: AtomicU64 = AtomicU64::new(0);

/// The counters, by their exposition name and help text.
const COUNTERS: [(&str, &str, &AtomicU64); 4] = [
    ("twi_ecdsa_signatures_total", "ECDSA signatures made by this process", &ECDSA_SIGNATURES),
    ("twi_x509_certificates_total", "X.509 certificates signed by this process", &X509_CERTIFICATES),
    ("twi_log_records_total", "records this process appended to the provenance log", &LOG_RECORDS),
    ("twi_log_tree_heads_total", "signed tree heads this process made", &TREE_HEADS),
];

/// ECDSA signatures (P-384, or P-256 for ES256 tokens) the issuer has made in this process.
pub fn ecdsa_signatures() -> u64 {
    ECDSA_SIGNATURES.load(Ordering::Relaxed)
}

/// Counts one signature made (call where a role signs, after it succeeded).
pub(crate) fn signed() {
    ECDSA_SIGNATURES.fetch_add(1, Ordering::Relaxed);
}

/// Counts one X.509 certificate signed (its signature is counted by [`signed`]).
pub(crate) fn certified() {
    X509_CERTIFICATES.fetch_add(1, Ordering::Relaxed);
}

/// Counts `n` records appended to the provenance log.
pub(crate) fn appended(n: usize) {
    LOG_RECORDS.fetch_add(n as u64, Ordering::Relaxed);
}

/// Counts one signed tree head made (its signature is counted by [`signed`]).
pub(crate) fn tree_head() {
    TREE_HEADS.fetch_add(1, Ordering::Relaxed);
}

/// Every counter in the Prometheus text exposition format.
pub fn exposition() -> String {
    let mut text = String::new();
    for (name, help, counter) in COUNTERS {
        let value = counter.load(Ordering::Relaxed);
        let _ = write!(text, "# HELP {name} {help}.\n# TYPE {name} counter\n{name} {value}\n");
    }
    text
}

/// Reads counter `name` from an exposition `text` (what a client of `GET /metrics` does).
pub fn read(text: &str, name: &str) -> Option<u64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (key, value) = line.split_once(' ')?;
        (key == name).then(|| value.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_each_counter_with_its_type_and_reads_back() {
        signed();
        appended(2);
        tree_head();
        let text = exposition();
        for (name, _, _) in COUNTERS {
            assert!(text.contains(&format!("# TYPE {name} counter\n")), "{text}");
            assert!(read(&text, name).is_some(), "{name} in {text}");
        }
        assert!(read(&text, "twi_ecdsa_signatures_total").unwrap() >= 1);
        assert!(read(&text, "twi_log_records_total").unwrap() >= 2);
        assert!(read(&text, "twi_log_tree_heads_total").unwrap() >= 1);
        assert_eq!(read(&text, "twi_no_such_total"), None);
    }
}
