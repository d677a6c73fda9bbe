//! The Credential Provenance log (TWI reference architecture §5.3.2): one unique record per
//! issued credential — the workload, the Verifier's decision and criteria, the issuer's policy
//! version — in an append-only Merkle tree (RFC 9162 §2.1: SHA-256, leaf hash
//! `SHA-256(0x00 ‖ leaf)`, node hash `SHA-256(0x01 ‖ left ‖ right)`), with inclusion and
//! consistency proofs and P-384 signed tree heads.
//!
//! Storage is SQLite (compiled in): an append is one transaction (the record, its leaf hash and
//! its index commit together, fsync'd with `synchronous=FULL`), a UNIQUE constraint makes one
//! record per credential id a database invariant, triggers refuse UPDATE and DELETE, and
//! auditors can query the file with the `sqlite3` shell. The same schema moves to a networked
//! SQL database when several issuer replicas share one log.
//!
//! The database is not trusted on its own: on open, every record is re-hashed against its
//! stored leaf hash and the tree is recomputed against the last signed tree head, so an edited,
//! removed or reordered record is reported, not served.

pub mod checkpoint;
pub mod receipt;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use p384::ecdsa::signature::{Signer, Verifier};
use p384::ecdsa::{Signature, SigningKey, VerifyingKey};
use rusqlite::{Connection, OptionalExtension, params};
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
/// the leaf.
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

impl ProvenanceRecord {
    /// The leaf bytes.
    pub fn to_leaf(&self) -> Result<Vec<u8>, LogError> {
        serde_json::to_vec(self).map_err(|e| LogError::Encode(e.to_string()))
    }
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
    #[error("the signed tree head's signature does not verify under the log key")]
    BadTreeHeadSignature,
    #[error("the log key failed to sign: {0}")]
    Signer(String),
}

/// The provenance log: records in SQLite, the tree in memory.
#[derive(Debug)]
pub struct ProvenanceLog {
    conn: Connection,
    tree: MerkleTree,
    path: PathBuf,
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
CREATE TABLE IF NOT EXISTS leaves (
    idx           INTEGER PRIMARY KEY,
    credential_id TEXT    NOT NULL UNIQUE,
    record        BLOB    NOT NULL,
    leaf_hash     BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS tree_heads (
    size         INTEGER PRIMARY KEY,
    timestamp_ms INTEGER NOT NULL,
    root         BLOB    NOT NULL,
    signature    BLOB    NOT NULL
);
CREATE TRIGGER IF NOT EXISTS leaves_append_only_update BEFORE UPDATE ON leaves
    BEGIN SELECT RAISE(ABORT, 'the provenance log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS leaves_append_only_delete BEFORE DELETE ON leaves
    BEGIN SELECT RAISE(ABORT, 'the provenance log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS tree_heads_append_only_update BEFORE UPDATE ON tree_heads
    BEGIN SELECT RAISE(ABORT, 'signed tree heads are append-only'); END;
CREATE TRIGGER IF NOT EXISTS tree_heads_append_only_delete BEFORE DELETE ON tree_heads
    BEGIN SELECT RAISE(ABORT, 'signed tree heads are append-only'); END;
";

impl ProvenanceLog {
    /// Opens (or creates) the log at `path`, re-hashing every record and checking the tree
    /// against the last signed tree head.
    pub fn open(path: &Path) -> Result<Self, LogError> {
        let db = |e: rusqlite::Error| LogError::Db(path.display().to_string(), e.to_string());
        let conn = Connection::open(path).map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        let tampered = |what: String| LogError::Tampered { path: path.display().to_string(), what };
        let mut tree = MerkleTree::new();
        {
            let mut stmt = conn.prepare("SELECT idx, record, leaf_hash FROM leaves ORDER BY idx").map_err(db)?;
            let mut rows = stmt.query([]).map_err(db)?;
            while let Some(row) = rows.next().map_err(db)? {
                let idx: i64 = row.get(0).map_err(db)?;
                let record: Vec<u8> = row.get(1).map_err(db)?;
                let stored: Vec<u8> = row.get(2).map_err(db)?;
                let expected = tree.len();
                if u64::try_from(idx).ok() != Some(expected) {
                    return Err(tampered(format!("record {expected} is missing (the next stored index is {idx})")));
                }
                let hash = leaf_hash(&record);
                if stored.as_slice() != hash.as_slice() {
                    return Err(tampered(format!("record {idx} no longer hashes to its leaf hash")));
                }
                tree.push(hash);
            }
        }
        let log = Self { conn, tree, path: path.to_path_buf() };
        if let Some(head) = log.latest_tree_head()? {
            match log.tree.root_at(head.size) {
                None => {
                    return Err(tampered(format!(
                        "a signed tree head covers {} records but only {} are stored",
                        head.size,
                        log.tree.len()
                    )));
                }
                Some(root) if root != head.root => {
                    return Err(tampered(format!(
                        "the records no longer hash to the root signed at size {}",
                        head.size
                    )));
                }
                Some(_) => {}
            }
        }
        Ok(log)
    }

    fn db(&self) -> impl Fn(rusqlite::Error) -> LogError + '_ {
        move |e| LogError::Db(self.path.display().to_string(), e.to_string())
    }

    /// Records in the log.
    pub fn len(&self) -> u64 {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// The current root.
    pub fn root(&self) -> Hash {
        self.tree.root()
    }

    /// The tree (for proofs at any size).
    pub fn tree(&self) -> &MerkleTree {
        &self.tree
    }

    /// Appends `record`; a second record for the same credential id is refused.
    pub fn append(&mut self, record: &ProvenanceRecord) -> Result<Appended, LogError> {
        let leaf = record.to_leaf()?;
        let hash = leaf_hash(&leaf);
        let index = self.tree.len();
        let idx = i64::try_from(index).map_err(|_| LogError::Encode("the log is full".into()))?;
        let result = self.conn.execute(
            "INSERT INTO leaves (idx, credential_id, record, leaf_hash) VALUES (?1, ?2, ?3, ?4)",
            params![idx, record.credential_id, leaf, hash.as_slice()],
        );
        match result {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                return Err(LogError::Duplicate(record.credential_id.clone()));
            }
            Err(e) => return Err((self.db())(e)),
        }
        self.tree.push(hash);
        Ok(Appended { index, leaf_hash: hash, tree_size: self.tree.len() })
    }

    /// The record at `index`.
    pub fn record(&self, index: u64) -> Result<ProvenanceRecord, LogError> {
        let out_of_range = || LogError::OutOfRange { size: self.len(), what: format!("record {index}") };
        let idx = i64::try_from(index).map_err(|_| out_of_range())?;
        let bytes: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT record FROM leaves WHERE idx = ?1", params![idx], |r| r.get(0))
            .optional()
            .map_err(self.db())?;
        let bytes = bytes.ok_or_else(out_of_range)?;
        if Some(leaf_hash(&bytes)) != self.tree.leaf(index) {
            return Err(LogError::Tampered {
                path: self.path.display().to_string(),
                what: format!("record {index} changed since the log was opened"),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| LogError::Encode(e.to_string()))
    }

    /// The index and record of credential `credential_id`, if logged.
    pub fn find(&self, credential_id: &str) -> Result<Option<(u64, ProvenanceRecord)>, LogError> {
        let idx: Option<i64> = self
            .conn
            .query_row("SELECT idx FROM leaves WHERE credential_id = ?1", params![credential_id], |r| r.get(0))
            .optional()
            .map_err(self.db())?;
        match idx.and_then(|i| u64::try_from(i).ok()) {
            None => Ok(None),
            Some(i) => Ok(Some((i, self.record(i)?))),
        }
    }

    /// The inclusion proof of record `index` in the tree of `size` records.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, LogError> {
        self.tree
            .inclusion_proof(index, size)
            .ok_or(LogError::OutOfRange { size: self.len(), what: format!("record {index} in a tree of {size}") })
    }

    /// The consistency proof from size `old` to size `new`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, LogError> {
        self.tree
            .consistency_proof(old, new)
            .ok_or(LogError::OutOfRange { size: self.len(), what: format!("a consistency proof from {old} to {new}") })
    }

    /// Signs (and stores) a tree head for the current tree at `now`.
    pub fn sign_tree_head(&mut self, key: &SigningKey, now: SystemTime) -> Result<SignedTreeHead, LogError> {
        let size = self.len();
        let root = self.root();
        let timestamp_ms = now.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        let sig: Signature = key
            .try_sign(&SignedTreeHead::signed_bytes(size, timestamp_ms, &root))
            .map_err(|e| LogError::Signer(e.to_string()))?;
        let mut signature = [0u8; 96];
        signature.copy_from_slice(&sig.to_bytes());
        let head = SignedTreeHead { size, timestamp_ms, root, signature };
        // One head per size: a second signature over the same size keeps the first.
        self.conn
            .execute(
                "INSERT OR IGNORE INTO tree_heads (size, timestamp_ms, root, signature) VALUES (?1, ?2, ?3, ?4)",
                params![size as i64, timestamp_ms as i64, root.as_slice(), signature.as_slice()],
            )
            .map_err(self.db())?;
        Ok(head)
    }

    /// The signed tree head of the largest size.
    pub fn latest_tree_head(&self) -> Result<Option<SignedTreeHead>, LogError> {
        let row: Option<(i64, i64, Vec<u8>, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT size, timestamp_ms, root, signature FROM tree_heads ORDER BY size DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(self.db())?;
        let Some((size, ts, root, sig)) = row else { return Ok(None) };
        let tampered = || LogError::Tampered {
            path: self.path.display().to_string(),
            what: "a stored tree head is malformed".into(),
        };
        Ok(Some(SignedTreeHead {
            size: u64::try_from(size).map_err(|_| tampered())?,
            timestamp_ms: u64::try_from(ts).map_err(|_| tampered())?,
            root: root.try_into().map_err(|_| tampered())?,
            signature: sig.try_into().map_err(|_| tampered())?,
        }))
    }
}

#[cfg(test)]
mod tests;
