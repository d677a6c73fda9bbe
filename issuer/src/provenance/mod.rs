//! The Credential Provenance log (TWI reference architecture §5.3.2): one unique record per
//! issued credential — the workload, the Verifier's decision and criteria, the issuer's policy
//! version — in an append-only Merkle tree (RFC 9162 §2.1: SHA-256, leaf hash
//! `SHA-256(0x00 ‖ leaf)`, node hash `SHA-256(0x01 ‖ left ‖ right)`), with inclusion and
//! consistency proofs and P-384 signed tree heads.
//!
//! Each record is a SCITT signed statement (`statement.rs`, COSE_Sign1 with the record's JSON as
//! payload, or that JSON encrypted to an auditor key: `sealed.rs`) and the leaf is the statement's bytes; `receipt.rs` makes the RFC 9942 receipts
//! that prove a leaf under a tree head, `checkpoint.rs` the C2SP checkpoints. Beside the log,
//! never published, the private binding table (`private.rs`) keeps a sealed record's binding for
//! renewals, sealed at rest to the issuer's binding key.
//!
//! Storage is SQLite (compiled in, `store.rs`): an issuance is one transaction (its records,
//! their leaf hashes and indices, and the new signed tree head commit together, fsync'd with
//! `synchronous=FULL`), a UNIQUE constraint makes one record per credential id a database
//! invariant, triggers refuse UPDATE and DELETE, and auditors can query the file with the
//! `sqlite3` shell. The same schema moves to a networked SQL database when several issuer
//! replicas share one log.
//!
//! The database is not trusted on its own: on open, every record is re-hashed against its
//! stored leaf hash and the tree is recomputed against the last signed tree head, so an edited,
//! removed or reordered record is reported, not served; rows no signed head covers are refused
//! on open and before every append; `audit.rs` checks every signed head there ever was.

pub mod audit;
pub mod checkpoint;
mod checks;
pub mod entry;
mod pg;
pub mod private;
pub mod receipt;
pub mod sealed;
pub mod statement;
mod store;

pub use private::{BindingKey, PrivateBinding};
pub use sealed::{AuditorKey, AuditorSecret};
pub use statement::{Content, SignedStatement};
pub use store::ProvenanceLog;

use p384::ecdsa::signature::Verifier;
use p384::ecdsa::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A SHA-256 tree hash.
pub type Hash = [u8; 32];

/// The root of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1).
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// `SHA-256(0x00 ‖ leaf)`.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(leaf);
    h.finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two smaller than `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// An in-memory RFC 9162 tree over leaf hashes. `levels[k][i]` is the root of the perfect
/// subtree of 2^k leaves starting at leaf `i·2^k`, so appends cost O(log n) and any root or
/// proof is assembled from O(log n) stored nodes.
#[derive(Clone, Debug, Default)]
pub struct MerkleTree {
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    pub fn new() -> Self {
        Self::default()
    }

    /// Leaves in the tree.
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut node = leaf;
        let mut k = 0;
        loop {
            if self.levels.len() == k {
                self.levels.push(Vec::new());
            }
            self.levels[k].push(node);
            let level = &self.levels[k];
            if level.len() % 2 == 1 {
                break;
            }
            node = node_hash(&level[level.len() - 2], &level[level.len() - 1]);
            k += 1;
        }
    }

    /// Drops every leaf from `len` on (an append whose transaction failed): level `k` keeps
    /// the `len >> k` perfect subtrees that lie wholly within the first `len` leaves.
    pub fn truncate(&mut self, len: u64) {
        for (k, level) in self.levels.iter_mut().enumerate() {
            level.truncate(usize::try_from(len >> k).unwrap_or(usize::MAX));
        }
        while self.levels.last().is_some_and(Vec::is_empty) {
            self.levels.pop();
        }
    }

    /// The leaf hash at `index`.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        self.levels.first()?.get(usize::try_from(index).ok()?).copied()
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Hash {
        self.root_at(self.len()).unwrap_or_else(empty_root)
    }

    /// The root of the first `size` leaves (`None` past the end).
    pub fn root_at(&self, size: u64) -> Option<Hash> {
        match size {
            0 => Some(empty_root()),
            s if s > self.len() => None,
            s => Some(self.range(0, s)),
        }
    }

    /// MTH(D[start..end]) for 0 ≤ start < end ≤ len, where `start` is a multiple of the
    /// largest power of two ≤ end − start (true of every range the RFC's recursion visits).
    fn range(&self, start: u64, end: u64) -> Hash {
        let n = end - start;
        if n.is_power_of_two() && start.is_multiple_of(n) {
            let k = n.trailing_zeros() as usize;
            if let Some(h) = self.levels.get(k).and_then(|l| l.get((start >> k) as usize)) {
                return *h;
            }
        }
        let k = split(n);
        node_hash(&self.range(start, start + k), &self.range(start + k, end))
    }

    /// The audit path of leaf `index` in the tree of the first `size` leaves (RFC 9162
    /// §2.1.3.1), leaf-side first.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Option<Vec<Hash>> {
        if index >= size || size > self.len() {
            return None;
        }
        let mut out = Vec::new();
        self.path(index, 0, size, &mut out);
        Some(out)
    }

    fn path(&self, m: u64, start: u64, end: u64, out: &mut Vec<Hash>) {
        let n = end - start;
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < start + k {
            self.path(m, start, start + k, out);
            out.push(self.range(start + k, end));
        } else {
            self.path(m, start + k, end, out);
            out.push(self.range(start, start + k));
        }
    }

    /// The consistency proof from the tree of `old` leaves to the tree of `new` leaves (RFC
    /// 9162 §2.1.4.1); empty when `old` is 0 or equals `new`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Option<Vec<Hash>> {
        if old > new || new > self.len() {
            return None;
        }
        let mut out = Vec::new();
        if old > 0 && old < new {
            self.subproof(old, 0, new, true, &mut out);
        }
        Some(out)
    }

    fn subproof(&self, m: u64, start: u64, end: u64, whole: bool, out: &mut Vec<Hash>) {
        let n = end - start;
        if m == n {
            if !whole {
                out.push(self.range(start, end));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, start, start + k, whole, out);
            out.push(self.range(start + k, end));
        } else {
            self.subproof(m - k, start + k, end, false, out);
            out.push(self.range(start, start + k));
        }
    }
}

/// Why a proof did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is outside a tree of {size} leaves")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("the proof has the wrong number of hashes for these tree sizes")]
    WrongLength,
    #[error("the proof does not lead to the expected root")]
    RootMismatch,
    #[error("a consistency proof needs the first size ({first}) to be at most the second ({second})")]
    SizesOutOfOrder { first: u64, second: u64 },
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> Result<(), ProofError> {
    if &inclusion_root(leaf, index, size, proof)? != root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// The root an inclusion proof leads to (RFC 9162 §2.1.3.2), for a reader that learns the root
/// from the proof, as a COSE receipt's verifier does.
pub fn inclusion_root(leaf: &Hash, index: u64, size: u64, proof: &[Hash]) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return Err(ProofError::WrongLength);
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::WrongLength);
    }
    Ok(r)
}

/// Verifies a consistency proof between the tree of `first` leaves (root `first_root`) and the
/// tree of `second` leaves (root `second_root`) (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if first > second {
        return Err(ProofError::SizesOutOfOrder { first, second });
    }
    if first == second {
        // Same tree: nothing to prove but equality.
        return match (proof.is_empty(), first_root == second_root) {
            (true, true) => Ok(()),
            (false, _) => Err(ProofError::WrongLength),
            (true, false) => Err(ProofError::RootMismatch),
        };
    }
    if first == 0 {
        // Every tree extends the empty tree.
        return if proof.is_empty() { Ok(()) } else { Err(ProofError::WrongLength) };
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let Some((head, rest)) = path.split_first() else {
        return Err(ProofError::WrongLength);
    };
    let (mut f_n, mut s_n) = (first - 1, second - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut f_r, mut s_r) = (*head, *head);
    for c in rest {
        if s_n == 0 {
            return Err(ProofError::WrongLength);
        }
        if f_n & 1 == 1 || f_n == s_n {
            f_r = node_hash(c, &f_r);
            s_r = node_hash(c, &s_r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            s_r = node_hash(&s_r, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::WrongLength);
    }
    if &f_r != first_root || &s_r != second_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Records and the log

/// The Verifier's decision and the criteria it applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifierDecision {
    /// The EAR status (`affirming`, `warning`, …).
    pub status: String,
    /// The Verifier's identity (build).
    pub verifier: String,
    /// What was checked and matched: platform, measurement, reference entry, freshness,
    /// fidelity, stickiness, mechanism, … (sorted by name).
    pub criteria: std::collections::BTreeMap<String, String>,
}

/// One issued credential's provenance. Its canonical JSON (this field order, sorted maps) is
/// the payload of its signed statement ([`SignedStatement`]), whose bytes are the leaf.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenanceRecord {
    /// The workload identifier, e.g. `spiffe://example.org/payroll-app`.
    pub workload_id: String,
    /// `x509` or `wit`.
    pub credential_kind: String,
    /// The X.509 serial (hex) or the WIT `jti`: unique in the log.
    pub credential_id: String,
    /// SHA-384 of the Evidence, hex.
    pub evidence_sha384: String,
    pub decision: VerifierDecision,
    /// The appraisal policy's version.
    pub policy_version: String,
    /// Seconds since the Unix epoch.
    pub issued_at: u64,
}

/// Where a record landed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    pub index: u64,
    pub leaf_hash: Hash,
    pub tree_size: u64,
}

const STH_LABEL: &[u8; 16] = b"TWI-STH-v1\0\0\0\0\0\0";

/// A signed tree head: the log's commitment to its first `size` records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedTreeHead {
    pub size: u64,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    pub root: Hash,
    /// ECDSA P-384 `r ‖ s` over [`SignedTreeHead::signed_bytes`].
    pub signature: [u8; 96],
}

impl SignedTreeHead {
    /// `"TWI-STH-v1" (16 bytes) ‖ u64be size ‖ u64be timestamp_ms ‖ root`.
    pub fn signed_bytes(size: u64, timestamp_ms: u64, root: &Hash) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..16].copy_from_slice(STH_LABEL);
        out[16..24].copy_from_slice(&size.to_be_bytes());
        out[24..32].copy_from_slice(&timestamp_ms.to_be_bytes());
        out[32..].copy_from_slice(root);
        out
    }

    pub fn verify(&self, key: &VerifyingKey) -> Result<(), LogError> {
        let sig = Signature::from_slice(&self.signature).map_err(|_| LogError::BadTreeHeadSignature)?;
        key.verify(&Self::signed_bytes(self.size, self.timestamp_ms, &self.root), &sig)
            .map_err(|_| LogError::BadTreeHeadSignature)
    }
}

/// Problems with the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    #[error("the provenance log database {0}: {1}")]
    Db(String, String),
    #[error("the provenance log at {path} was altered: {what}; restore it from a backup and investigate")]
    Tampered { path: String, what: String },
    #[error("credential {0} is already in the provenance log: each credential has exactly one record")]
    Duplicate(String),
    #[error("the log has {size} records; {what} is out of range")]
    OutOfRange { size: u64, what: String },
    #[error("cannot encode a record: {0}")]
    Encode(String),
    #[error("{0}")]
    Sealed(String),
    #[error("the signed tree head's signature does not verify under the log key")]
    BadTreeHeadSignature,
    #[error("the log key failed to sign: {0}")]
    Signer(String),
}

impl From<crate::database::DatabaseError> for LogError {
    fn from(e: crate::database::DatabaseError) -> Self {
        match e {
            crate::database::DatabaseError::Connect { url, what }
            | crate::database::DatabaseError::Query { url, what } => LogError::Db(url, what),
        }
    }
}

#[cfg(test)]
mod tests;
