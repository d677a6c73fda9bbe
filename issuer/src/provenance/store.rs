//! The log's store: records and signed tree heads in SQLite, the RFC 9162 tree in memory.
//!
//! Issue 14 item 7: an issuance is one transaction (all its records and the new signed tree
//! head commit together, one fsync of the write-ahead log under `synchronous=FULL`), and an
//! append costs O(log n): the tree is kept in memory across issuances and only hashes the new
//! leaves; the store is re-read only past what this process knows. Before each append (and on
//! open) the store is checked against the last signed tree head: a row no signed head covers
//! was written outside the issuer (the issuer never commits a record without its head), and is
//! refused loudly rather than signed into the next head.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use p384::ecdsa::SigningKey;
use rusqlite::{Connection, OptionalExtension, params};

use super::checks::{accept, covered, head_of, signed_head};
use super::pg::{self, Append};
use super::private::PrivateBinding;
use super::{Appended, Hash, LogError, MerkleTree, SignedStatement, SignedTreeHead, leaf_hash};
use crate::database::Postgres;

/// The provenance log: records in SQLite (or the replicas' PostgreSQL), the tree in memory.
#[derive(Debug)]
pub struct ProvenanceLog {
    rows: Rows,
    tree: MerkleTree,
    /// The file, or the database URL without its password, for messages.
    path: String,
}

/// Where the records and signed heads are stored.
#[derive(Debug)]
enum Rows {
    Sqlite(Connection),
    Postgres(Arc<Postgres>),
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
PRAGMA foreign_keys = ON;
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
CREATE TABLE IF NOT EXISTS private_bindings (
    credential_id TEXT PRIMARY KEY REFERENCES leaves (credential_id),
    enc           BLOB NOT NULL,
    sealed        BLOB NOT NULL
);
CREATE TRIGGER IF NOT EXISTS private_bindings_append_only_update BEFORE UPDATE ON private_bindings
    BEGIN SELECT RAISE(ABORT, 'the private binding table is append-only'); END;
CREATE TRIGGER IF NOT EXISTS private_bindings_append_only_delete BEFORE DELETE ON private_bindings
    BEGIN SELECT RAISE(ABORT, 'the private binding table is append-only'); END;
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
    /// against the last signed tree head (which must cover every record).
    pub fn open(path: &Path) -> Result<Self, LogError> {
        let db = |e: rusqlite::Error| LogError::Db(path.display().to_string(), e.to_string());
        let conn = Connection::open(path).map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        let mut log = Self { rows: Rows::Sqlite(conn), tree: MerkleTree::new(), path: path.display().to_string() };
        log.read_from(0, |_, _| {})?;
        log.check_covered()?;
        Ok(log)
    }

    /// Opens the log in the replicas' PostgreSQL database (creating its tables if absent),
    /// re-hashing every record and checking the tree against the last signed tree head.
    pub fn open_postgres(pg: Arc<Postgres>) -> Result<Self, LogError> {
        pg::ensure_schema(&pg)?;
        let mut log = Self::unchecked_postgres(pg);
        log.refresh()?;
        Ok(log)
    }

    /// The log over `conn` with nothing read or checked yet (the audit reads it itself).
    pub(super) fn unchecked(conn: Connection, path: &Path) -> Self {
        Self { rows: Rows::Sqlite(conn), tree: MerkleTree::new(), path: path.display().to_string() }
    }

    /// Reads the whole log in `pg` (one snapshot) into the tree and returns every signed head,
    /// for the audit; `progress(done, total)` as it goes.
    pub(super) fn read_snapshot(
        &mut self,
        mut progress: impl FnMut(u64, u64) + Send,
    ) -> Result<Vec<SignedTreeHead>, LogError> {
        let Rows::Postgres(pg) = &self.rows else { return self.tree_heads() };
        let rows = pg::snapshot(pg, &mut self.tree, &self.path, true, &mut progress)?;
        rows.into_iter().map(|row| head_of(&self.path, row)).collect()
    }

    /// The log in `pg` with nothing read or checked yet.
    pub(super) fn unchecked_postgres(pg: Arc<Postgres>) -> Self {
        let path = pg.shown().to_string();
        Self { rows: Rows::Postgres(pg), tree: MerkleTree::new(), path }
    }

    /// Every signed tree head, by size.
    pub fn tree_heads(&self) -> Result<Vec<SignedTreeHead>, LogError> {
        let conn = match &self.rows {
            Rows::Sqlite(conn) => conn,
            Rows::Postgres(pg) => {
                let rows = pg.run(|c| pg::heads(c, pg))?;
                return rows.into_iter().map(|row| head_of(&self.path, row)).collect();
            }
        };
        let mut stmt = conn
            .prepare("SELECT size, timestamp_ms, root, signature FROM tree_heads ORDER BY size")
            .map_err(self.db())?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).map_err(self.db())?;
        let mut heads = Vec::new();
        for row in rows {
            heads.push(head_of(&self.path, row.map_err(self.db())?)?);
        }
        Ok(heads)
    }

    /// Reads the stored records from index `from` on (the tree holds the first `from`),
    /// re-hashing each against its stored leaf hash; `progress(done, total)` now and then.
    pub(super) fn read_from(&mut self, from: u64, mut progress: impl FnMut(u64, u64)) -> Result<(), LogError> {
        let total = self.stored()?;
        let Rows::Sqlite(conn) = &self.rows else {
            return Err(LogError::Db(self.path.clone(), "a PostgreSQL log is read in snapshots (refresh)".into()));
        };
        let path = self.path.clone();
        let db = |e: rusqlite::Error| LogError::Db(path.clone(), e.to_string());
        let from_idx = i64::try_from(from)
            .map_err(|_| LogError::Tampered { path: path.clone(), what: format!("index {from} is out of range") })?;
        let mut stmt =
            conn.prepare("SELECT idx, record, leaf_hash FROM leaves WHERE idx >= ?1 ORDER BY idx").map_err(db)?;
        let mut rows = stmt.query(params![from_idx]).map_err(db)?;
        while let Some(row) = rows.next().map_err(db)? {
            let idx: i64 = row.get(0).map_err(db)?;
            let record: Vec<u8> = row.get(1).map_err(db)?;
            let stored: Vec<u8> = row.get(2).map_err(db)?;
            accept(&mut self.tree, &path, idx, &record, &stored)?;
            if self.tree.len().is_multiple_of(PROGRESS_EVERY) {
                progress(self.tree.len(), total);
            }
        }
        progress(self.tree.len(), total);
        Ok(())
    }

    /// Records stored: one past the largest index (gaps are found when the rows are read).
    fn stored(&self) -> Result<u64, LogError> {
        let conn = match &self.rows {
            Rows::Sqlite(conn) => conn,
            Rows::Postgres(pg) => return pg.run(|c| pg::stored(c, pg)),
        };
        let max: Option<i64> = conn.query_row("SELECT MAX(idx) FROM leaves", [], |r| r.get(0)).map_err(self.db())?;
        Ok(max.and_then(|m| u64::try_from(m).ok()).map_or(0, |m| m + 1))
    }

    /// The last signed tree head covers exactly the records in the tree, with their root.
    pub(super) fn check_covered(&self) -> Result<(), LogError> {
        covered(&self.tree, self.latest_tree_head()?.as_ref(), &self.path)
    }

    /// Brings the tree up to the store before an append or a proof: reads (and re-hashes) only
    /// the records appended since (by another process sharing the state directory), then checks
    /// that the last signed tree head covers them all. Rows deleted since are refused too.
    pub fn refresh(&mut self) -> Result<(), LogError> {
        if let Rows::Postgres(pg) = &self.rows {
            let latest = pg::snapshot(pg, &mut self.tree, &self.path, false, &mut |_, _| {})?;
            let latest = latest.into_iter().next().map(|row| head_of(&self.path, row)).transpose()?;
            return covered(&self.tree, latest.as_ref(), &self.path);
        }
        let stored = self.stored()?;
        if stored < self.tree.len() {
            let what = format!("{} records were read, {stored} are stored now", self.tree.len());
            return Err(LogError::Tampered { path: self.path.clone(), what });
        }
        if stored > self.tree.len() {
            self.read_from(self.tree.len(), |_, _| {})?;
        }
        self.check_covered()
    }

    /// Appends the records of one issuance and signs the tree head that covers them, in one
    /// transaction; a record whose credential id is logged already refuses the whole issuance,
    /// and nothing of it remains.
    pub fn append_signed(
        &mut self,
        records: &[SignedStatement],
        key: &SigningKey,
        now: SystemTime,
    ) -> Result<(Vec<Appended>, SignedTreeHead), LogError> {
        self.append_signed_with(records, &[], key, now)
    }

    /// [`Self::append_signed`], and in the same transaction the private binding rows of those
    /// of `records` that are sealed (each row names one of `records`).
    pub fn append_signed_with(
        &mut self,
        records: &[SignedStatement],
        private: &[PrivateBinding],
        key: &SigningKey,
        now: SystemTime,
    ) -> Result<(Vec<Appended>, SignedTreeHead), LogError> {
        if let Some(stray) = private.iter().find(|row| records.iter().all(|r| r.credential_id() != row.credential_id)) {
            let what =
                format!("a private binding row for {}, which is not among the records appended", stray.credential_id);
            return Err(LogError::Encode(what));
        }
        if let Rows::Postgres(pg) = &self.rows {
            // Catches up and checks under the replicas' append lock, in the same transaction.
            let start = self.tree.len();
            let append = Append { tree: &mut self.tree, path: &self.path, records, private, key, now };
            let result = pg::append_signed(pg, append);
            if result.is_err() {
                self.tree.truncate(start);
            }
            return result;
        }
        self.refresh()?;
        let start = self.tree.len();
        let result = self.append_signed_in_transaction(records, private, key, now);
        if result.is_err() {
            self.tree.truncate(start);
        }
        result
    }

    fn append_signed_in_transaction(
        &mut self,
        records: &[SignedStatement],
        private: &[PrivateBinding],
        key: &SigningKey,
        now: SystemTime,
    ) -> Result<(Vec<Appended>, SignedTreeHead), LogError> {
        let path = self.path.clone();
        let db = |e: rusqlite::Error| LogError::Db(path.clone(), e.to_string());
        let Rows::Sqlite(conn) = &mut self.rows else {
            return Err(LogError::Db(
                path,
                "a PostgreSQL log appends in one locked transaction (pg::append_signed)".into(),
            ));
        };
        let transaction = conn.transaction().map_err(db)?;
        let mut appended = Vec::with_capacity(records.len());
        for record in records {
            let leaf = record.to_leaf()?;
            let hash = leaf_hash(&leaf);
            let index = self.tree.len();
            insert_leaf(&transaction, index, record.credential_id(), &leaf, &hash).map_err(|e| match e {
                InsertError::Duplicate => LogError::Duplicate(record.credential_id().to_string()),
                InsertError::Db(e) => db(e),
            })?;
            self.tree.push(hash);
            appended.push(Appended { index, leaf_hash: hash, tree_size: self.tree.len() });
        }
        for row in private {
            insert_private(&transaction, row).map_err(db)?;
        }
        let head = signed_head(key, self.tree.len(), self.tree.root(), now)?;
        insert_head(&transaction, &head).map_err(db)?;
        transaction.commit().map_err(db)?;
        Ok((appended, head))
    }

    fn db(&self) -> impl Fn(rusqlite::Error) -> LogError + '_ {
        move |e| LogError::Db(self.path.clone(), e.to_string())
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

    /// Appends `record` alone (its own transaction, no tree head: a head must be signed before
    /// the log is next opened, see [`Self::append_signed`]); a second record for the same
    /// credential id is refused.
    pub fn append(&mut self, record: &SignedStatement) -> Result<Appended, LogError> {
        let leaf = record.to_leaf()?;
        let hash = leaf_hash(&leaf);
        let index = self.tree.len();
        match &self.rows {
            Rows::Sqlite(conn) => {
                insert_leaf(conn, index, record.credential_id(), &leaf, &hash).map_err(|e| match e {
                    InsertError::Duplicate => LogError::Duplicate(record.credential_id().to_string()),
                    InsertError::Db(e) => (self.db())(e),
                })?
            }
            Rows::Postgres(pg) => pg.run(|c| pg::insert_leaf(c, pg, index, record.credential_id(), &leaf, &hash))?,
        }
        self.tree.push(hash);
        Ok(Appended { index, leaf_hash: hash, tree_size: self.tree.len() })
    }

    /// The record at `index`.
    pub fn record(&self, index: u64) -> Result<SignedStatement, LogError> {
        let out_of_range = || LogError::OutOfRange { size: self.len(), what: format!("record {index}") };
        let idx = i64::try_from(index).map_err(|_| out_of_range())?;
        let bytes: Option<Vec<u8>> = match &self.rows {
            Rows::Sqlite(conn) => conn
                .query_row("SELECT record FROM leaves WHERE idx = ?1", params![idx], |r| r.get(0))
                .optional()
                .map_err(self.db())?,
            Rows::Postgres(pg) => pg.run(|c| pg::record(c, pg, idx))?,
        };
        let bytes = bytes.ok_or_else(out_of_range)?;
        if Some(leaf_hash(&bytes)) != self.tree.leaf(index) {
            return Err(LogError::Tampered {
                path: self.path.clone(),
                what: format!("record {index} changed since the log was opened"),
            });
        }
        SignedStatement::decode(&bytes)
    }

    /// The index and record of credential `credential_id`, if logged.
    pub fn find(&self, credential_id: &str) -> Result<Option<(u64, SignedStatement)>, LogError> {
        let idx: Option<i64> = match &self.rows {
            Rows::Sqlite(conn) => conn
                .query_row("SELECT idx FROM leaves WHERE credential_id = ?1", params![credential_id], |r| r.get(0))
                .optional()
                .map_err(self.db())?,
            Rows::Postgres(pg) => pg.run(|c| pg::find(c, pg, credential_id))?,
        };
        match idx.and_then(|i| u64::try_from(i).ok()) {
            None => Ok(None),
            Some(i) => Ok(Some((i, self.record(i)?))),
        }
    }

    /// The private binding row of credential `credential_id`, if the table holds one.
    pub fn private_binding(&self, credential_id: &str) -> Result<Option<PrivateBinding>, LogError> {
        let conn = match &self.rows {
            Rows::Sqlite(conn) => conn,
            Rows::Postgres(pg) => return pg.run(|c| pg::private_binding(c, pg, credential_id)),
        };
        let row = |r: &rusqlite::Row<'_>| {
            Ok(PrivateBinding { credential_id: credential_id.to_string(), enc: r.get(0)?, sealed: r.get(1)? })
        };
        let sql = "SELECT enc, sealed FROM private_bindings WHERE credential_id = ?1";
        conn.query_row(sql, params![credential_id], row).optional().map_err(self.db())
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
        let head = signed_head(key, self.len(), self.root(), now)?;
        match &self.rows {
            Rows::Sqlite(conn) => insert_head(conn, &head).map_err(self.db())?,
            Rows::Postgres(pg) => pg.run(|c| pg::insert_head(c, pg, &head))?,
        }
        Ok(head)
    }

    /// The signed tree head of the largest size.
    pub fn latest_tree_head(&self) -> Result<Option<SignedTreeHead>, LogError> {
        let row: Option<(i64, i64, Vec<u8>, Vec<u8>)> = match &self.rows {
            Rows::Sqlite(conn) => conn
                .query_row(
                    "SELECT size, timestamp_ms, root, signature FROM tree_heads ORDER BY size DESC LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()
                .map_err(self.db())?,
            Rows::Postgres(pg) => pg.run(|c| pg::latest_head(c, pg))?,
        };
        row.map(|row| head_of(&self.path, row)).transpose()
    }
}

/// How often [`ProvenanceLog::read_from`] reports its progress, in records.
const PROGRESS_EVERY: u64 = 65_536;

enum InsertError {
    Duplicate,
    Db(rusqlite::Error),
}

/// Inserts one record row (in the caller's transaction, or its own).
fn insert_leaf(conn: &Connection, index: u64, id: &str, leaf: &[u8], hash: &Hash) -> Result<(), InsertError> {
    let idx = i64::try_from(index).map_err(|_| InsertError::Db(rusqlite::Error::IntegralValueOutOfRange(0, 0)))?;
    let result = conn.execute(
        "INSERT INTO leaves (idx, credential_id, record, leaf_hash) VALUES (?1, ?2, ?3, ?4)",
        params![idx, id, leaf, hash.as_slice()],
    );
    match result {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
            Err(InsertError::Duplicate)
        }
        Err(e) => Err(InsertError::Db(e)),
    }
}

/// Inserts one private binding row (in the caller's transaction).
fn insert_private(conn: &Connection, row: &PrivateBinding) -> Result<(), rusqlite::Error> {
    conn.execute(
        "INSERT INTO private_bindings (credential_id, enc, sealed) VALUES (?1, ?2, ?3)",
        params![row.credential_id, row.enc, row.sealed],
    )?;
    Ok(())
}

/// Stores a signed head. One head per size: a second signature over the same size keeps the first.
fn insert_head(conn: &Connection, head: &SignedTreeHead) -> Result<(), rusqlite::Error> {
    let size = i64::try_from(head.size).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(0, 0))?;
    let timestamp_ms = i64::try_from(head.timestamp_ms).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(1, 0))?;
    conn.execute(
        "INSERT OR IGNORE INTO tree_heads (size, timestamp_ms, root, signature) VALUES (?1, ?2, ?3, ?4)",
        params![size, timestamp_ms, head.root.as_slice(), head.signature.as_slice()],
    )?;
    Ok(())
}
