//! The checks both stores make of the rows they read (the next index, the stored leaf hash,
//! the last signed head covering every record) and the signing of a new head: shared by the
//! SQLite store (`store`) and the PostgreSQL one (`pg`).

use std::time::SystemTime;

use p384::ecdsa::signature::Signer;
use p384::ecdsa::{Signature, SigningKey};

use super::{Hash, LogError, MerkleTree, SignedTreeHead, leaf_hash};

/// Pushes the stored record at `idx` onto `tree`: it must be the next index, and the record
/// must still hash to its stored leaf hash.
pub(super) fn accept(
    tree: &mut MerkleTree,
    path: &str,
    idx: i64,
    record: &[u8],
    stored: &[u8],
) -> Result<(), LogError> {
    let tampered = |what: String| LogError::Tampered { path: path.into(), what };
    let expected = tree.len();
    if u64::try_from(idx).ok() != Some(expected) {
        return Err(tampered(format!("record {expected} is missing (the next stored index is {idx})")));
    }
    let hash = leaf_hash(record);
    if stored != hash.as_slice() {
        return Err(tampered(format!("record {idx} no longer hashes to its leaf hash")));
    }
    tree.push(hash);
    Ok(())
}

/// The last signed tree head `head` covers exactly the records in `tree`, with their root.
pub(super) fn covered(tree: &MerkleTree, head: Option<&SignedTreeHead>, path: &str) -> Result<(), LogError> {
    let tampered = |what: String| LogError::Tampered { path: path.into(), what };
    let size = head.map_or(0, |h| h.size);
    match tree.root_at(size) {
        None => Err(tampered(format!("a signed tree head covers {size} records but only {} are stored", tree.len()))),
        Some(root) if head.is_some_and(|h| h.root != root) => {
            Err(tampered(format!("the records no longer hash to the root signed at size {size}")))
        }
        Some(_) if tree.len() > size => Err(tampered(format!(
            "{} record(s) from index {size} on are covered by no signed tree head: they were written outside the issuer (it commits each record with its head); `twi log audit` lists the log, and the rows must be removed from a copy or the log restored from a backup",
            tree.len() - size
        ))),
        Some(_) => Ok(()),
    }
}

/// A stored head row, checked for form.
pub(super) fn head_of(
    path: &str,
    (size, ts, root, sig): (i64, i64, Vec<u8>, Vec<u8>),
) -> Result<SignedTreeHead, LogError> {
    let tampered = || LogError::Tampered { path: path.into(), what: "a stored tree head is malformed".into() };
    Ok(SignedTreeHead {
        size: u64::try_from(size).map_err(|_| tampered())?,
        timestamp_ms: u64::try_from(ts).map_err(|_| tampered())?,
        root: root.try_into().map_err(|_| tampered())?,
        signature: sig.try_into().map_err(|_| tampered())?,
    })
}

/// The tree head of `size` leaves with `root`, signed at `now`.
pub(super) fn signed_head(
    key: &SigningKey,
    size: u64,
    root: Hash,
    now: SystemTime,
) -> Result<SignedTreeHead, LogError> {
    let timestamp_ms = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let sig: Signature = key
        .try_sign(&SignedTreeHead::signed_bytes(size, timestamp_ms, &root))
        .map_err(|e| LogError::Signer(e.to_string()))?;
    crate::metrics::signed();
    crate::metrics::tree_head();
    let mut signature = [0u8; 96];
    signature.copy_from_slice(&sig.to_bytes());
    Ok(SignedTreeHead { size, timestamp_ms, root, signature })
}
