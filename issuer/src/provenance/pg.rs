//! The log's rows in PostgreSQL, for replicas sharing one database (issue 14 item 6): the same
//! two tables as `provenance.sqlite`, append-only by trigger (UPDATE, DELETE and TRUNCATE
//! raise), the credential id UNIQUE. An issuance is one transaction that first takes a
//! transaction-scoped advisory lock, so appends from every replica are serialised: under it
//! the replica reads the rows the others appended since its last look, re-hashes them and
//! checks them against the latest signed head, then appends at the next index, signs the new
//! head and commits. Leaf indices are therefore contiguous and unique (the primary key would
//! refuse a duplicate anyway).

use std::time::SystemTime;

use p384::ecdsa::SigningKey;
use postgres::GenericClient;
use postgres::types::Type;

use super::private::PrivateBinding;
use super::{Appended, Hash, LogError, MerkleTree, SignedStatement, SignedTreeHead, leaf_hash};
use crate::database::{Postgres, is_unique_violation};

/// The advisory lock key appends take ("TWI-LOG" in ASCII).
const APPEND_LOCK: i64 = 0x0054_5749_2d4c_4f47;
/// The advisory lock key the schema's creation takes.
const SCHEMA_LOCK: i64 = 0x0054_5749_2d53_4348;
/// Rows read per query while catching up.
const BATCH: i64 = 8192;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS leaves (
    idx           BIGINT PRIMARY KEY CHECK (idx >= 0),
    credential_id TEXT   NOT NULL UNIQUE,
    record        BYTEA  NOT NULL,
    leaf_hash     BYTEA  NOT NULL
);
CREATE TABLE IF NOT EXISTS tree_heads (
    size         BIGINT PRIMARY KEY CHECK (size >= 0),
    timestamp_ms BIGINT NOT NULL,
    root         BYTEA  NOT NULL,
    signature    BYTEA  NOT NULL
);
CREATE TABLE IF NOT EXISTS private_bindings (
    credential_id TEXT  PRIMARY KEY REFERENCES leaves (credential_id),
    enc           BYTEA NOT NULL,
    sealed        BYTEA NOT NULL
);
CREATE OR REPLACE FUNCTION twi_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'the provenance log (%) is append-only', TG_TABLE_NAME; END $$;
CREATE OR REPLACE TRIGGER leaves_append_only BEFORE UPDATE OR DELETE ON leaves
    FOR EACH ROW EXECUTE FUNCTION twi_append_only();
CREATE OR REPLACE TRIGGER leaves_no_truncate BEFORE TRUNCATE ON leaves
    FOR EACH STATEMENT EXECUTE FUNCTION twi_append_only();
CREATE OR REPLACE TRIGGER private_bindings_append_only BEFORE UPDATE OR DELETE ON private_bindings
    FOR EACH ROW EXECUTE FUNCTION twi_append_only();
CREATE OR REPLACE TRIGGER private_bindings_no_truncate BEFORE TRUNCATE ON private_bindings
    FOR EACH STATEMENT EXECUTE FUNCTION twi_append_only();
CREATE OR REPLACE TRIGGER tree_heads_append_only BEFORE UPDATE OR DELETE ON tree_heads
    FOR EACH ROW EXECUTE FUNCTION twi_append_only();
CREATE OR REPLACE TRIGGER tree_heads_no_truncate BEFORE TRUNCATE ON tree_heads
    FOR EACH STATEMENT EXECUTE FUNCTION twi_append_only();
";

/// A stored record row: index, record bytes, stored leaf hash.
pub(super) type Row = (i64, Vec<u8>, Vec<u8>);
/// A stored head row: size, timestamp, root, signature.
pub(super) type HeadRow = (i64, i64, Vec<u8>, Vec<u8>);

/// Creates the tables and triggers once (replicas starting together take turns).
pub(super) fn ensure_schema(pg: &Postgres) -> Result<(), LogError> {
    Ok(pg.create_schema(SCHEMA_LOCK, SCHEMA)?)
}

pub(super) fn db(pg: &Postgres, e: &postgres::Error) -> LogError {
    pg.error(e).into()
}

/// Up to [`BATCH`] record rows from index `from` on.
pub(super) fn rows_from(client: &mut impl GenericClient, pg: &Postgres, from: i64) -> Result<Vec<Row>, LogError> {
    let rows = client
        .query_typed(
            "SELECT idx, record, leaf_hash FROM leaves WHERE idx >= $1 ORDER BY idx LIMIT $2",
            &[(&from, Type::INT8), (&BATCH, Type::INT8)],
        )
        .map_err(|e| db(pg, &e))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}

/// One past the largest stored index.
pub(super) fn stored(client: &mut impl GenericClient, pg: &Postgres) -> Result<u64, LogError> {
    let max: Option<i64> = client.query_typed_one("SELECT MAX(idx) FROM leaves", &[]).map_err(|e| db(pg, &e))?.get(0);
    Ok(max.and_then(|m| u64::try_from(m).ok()).map_or(0, |m| m + 1))
}

/// The head row of the largest size.
pub(super) fn latest_head(client: &mut impl GenericClient, pg: &Postgres) -> Result<Option<HeadRow>, LogError> {
    let row = client
        .query_typed_opt("SELECT size, timestamp_ms, root, signature FROM tree_heads ORDER BY size DESC LIMIT 1", &[])
        .map_err(|e| db(pg, &e))?;
    Ok(row.map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))))
}

/// Every head row, by size.
pub(super) fn heads(client: &mut impl GenericClient, pg: &Postgres) -> Result<Vec<HeadRow>, LogError> {
    let rows = client
        .query("SELECT size, timestamp_ms, root, signature FROM tree_heads ORDER BY size", &[])
        .map_err(|e| db(pg, &e))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect())
}

/// The record bytes at `idx`.
pub(super) fn record(client: &mut impl GenericClient, pg: &Postgres, idx: i64) -> Result<Option<Vec<u8>>, LogError> {
    let row = client.query_opt("SELECT record FROM leaves WHERE idx = $1", &[&idx]).map_err(|e| db(pg, &e))?;
    Ok(row.map(|r| r.get(0)))
}

/// The index of credential `id`.
pub(super) fn find(client: &mut impl GenericClient, pg: &Postgres, id: &str) -> Result<Option<i64>, LogError> {
    let row = client.query_opt("SELECT idx FROM leaves WHERE credential_id = $1", &[&id]).map_err(|e| db(pg, &e))?;
    Ok(row.map(|r| r.get(0)))
}

/// Credential `id`'s private binding row.
pub(super) fn private_binding(
    client: &mut impl GenericClient,
    pg: &Postgres,
    id: &str,
) -> Result<Option<PrivateBinding>, LogError> {
    let row = client
        .query_opt("SELECT enc, sealed FROM private_bindings WHERE credential_id = $1", &[&id])
        .map_err(|e| db(pg, &e))?;
    Ok(row.map(|r| PrivateBinding { credential_id: id.to_string(), enc: r.get(0), sealed: r.get(1) }))
}

/// Inserts one private binding row (in the issuance's transaction).
fn insert_private(client: &mut impl GenericClient, pg: &Postgres, row: &PrivateBinding) -> Result<(), LogError> {
    client
        .execute_typed(
            "INSERT INTO private_bindings (credential_id, enc, sealed) VALUES ($1, $2, $3)",
            &[(&row.credential_id, Type::TEXT), (&row.enc, Type::BYTEA), (&row.sealed, Type::BYTEA)],
        )
        .map_err(|e| db(pg, &e))?;
    Ok(())
}

/// Inserts one record row; a logged credential id is [`LogError::Duplicate`].
pub(super) fn insert_leaf(
    client: &mut impl GenericClient,
    pg: &Postgres,
    index: u64,
    id: &str,
    leaf: &[u8],
    hash: &Hash,
) -> Result<(), LogError> {
    let idx = i64::try_from(index).map_err(|_| LogError::OutOfRange { size: index, what: "an index".into() })?;
    match client.execute_typed(
        "INSERT INTO leaves (idx, credential_id, record, leaf_hash) VALUES ($1, $2, $3, $4)",
        &[(&idx, Type::INT8), (&id, Type::TEXT), (&leaf, Type::BYTEA), (&hash.as_slice(), Type::BYTEA)],
    ) {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) && constraint(&e) == Some("leaves_credential_id_key") => {
            Err(LogError::Duplicate(id.into()))
        }
        Err(e) => Err(db(pg, &e)),
    }
}

/// The constraint a database error names.
fn constraint(e: &postgres::Error) -> Option<&str> {
    e.as_db_error().and_then(|db| db.constraint())
}

/// Stores a signed head (one per size: a second signature over a size keeps the first).
pub(super) fn insert_head(
    client: &mut impl GenericClient,
    pg: &Postgres,
    head: &SignedTreeHead,
) -> Result<(), LogError> {
    let range = |what: &str| LogError::Encode(format!("the tree head's {what} is out of range"));
    let size = i64::try_from(head.size).map_err(|_| range("size"))?;
    let timestamp_ms = i64::try_from(head.timestamp_ms).map_err(|_| range("timestamp"))?;
    client
        .execute_typed(
            "INSERT INTO tree_heads (size, timestamp_ms, root, signature) VALUES ($1, $2, $3, $4)
             ON CONFLICT (size) DO NOTHING",
            &[
                (&size, Type::INT8),
                (&timestamp_ms, Type::INT8),
                (&head.root.as_slice(), Type::BYTEA),
                (&head.signature.as_slice(), Type::BYTEA),
            ],
        )
        .map_err(|e| db(pg, &e))?;
    Ok(())
}

/// What an append in one transaction needs of the log.
pub(super) struct Append<'a> {
    pub tree: &'a mut MerkleTree,
    pub path: &'a str,
    pub records: &'a [SignedStatement],
    /// The private binding rows of the sealed ones among `records`.
    pub private: &'a [PrivateBinding],
    pub key: &'a SigningKey,
    pub now: SystemTime,
}

/// One issuance under the append lock: catch up with (and check) what other replicas
/// appended, append `records` at the next indices, sign and store the new head, commit.
pub(super) fn append_signed(pg: &Postgres, a: Append<'_>) -> Result<(Vec<Appended>, SignedTreeHead), LogError> {
    pg.run(|client| {
        let mut tx = client.transaction().map_err(|e| db(pg, &e))?;
        tx.execute_typed("SELECT pg_advisory_xact_lock($1)", &[(&APPEND_LOCK, Type::INT8)]).map_err(|e| db(pg, &e))?;
        catch_up(&mut tx, pg, a.tree, a.path, &mut |_, _| {})?;
        let latest = latest_head(&mut tx, pg)?.map(|row| super::checks::head_of(a.path, row)).transpose()?;
        super::checks::covered(a.tree, latest.as_ref(), a.path)?;
        let mut appended = Vec::with_capacity(a.records.len());
        for record in a.records {
            let leaf = record.to_leaf()?;
            let hash = leaf_hash(&leaf);
            let index = a.tree.len();
            insert_leaf(&mut tx, pg, index, record.credential_id(), &leaf, &hash)?;
            a.tree.push(hash);
            appended.push(Appended { index, leaf_hash: hash, tree_size: a.tree.len() });
        }
        for row in a.private {
            insert_private(&mut tx, pg, row)?;
        }
        let head = super::checks::signed_head(a.key, a.tree.len(), a.tree.root(), a.now)?;
        insert_head(&mut tx, pg, &head)?;
        tx.commit().map_err(|e| db(pg, &e))?;
        Ok((appended, head))
    })
}

/// Reads every row past the tree into it, each re-hashed and at its expected index;
/// `progress(done, total)` after each batch.
pub(super) fn catch_up(
    client: &mut impl GenericClient,
    pg: &Postgres,
    tree: &mut MerkleTree,
    path: &str,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<(), LogError> {
    let total = stored(client, pg)?;
    if total < tree.len() {
        let what = format!("{} records were read, {total} are stored now", tree.len());
        return Err(LogError::Tampered { path: path.into(), what });
    }
    loop {
        let from =
            i64::try_from(tree.len()).map_err(|_| LogError::OutOfRange { size: tree.len(), what: "the log".into() })?;
        let rows = rows_from(client, pg, from)?;
        if rows.is_empty() {
            progress(tree.len(), total);
            return Ok(());
        }
        for (idx, record, stored) in rows {
            super::checks::accept(tree, path, idx, &record, &stored)?;
        }
        progress(tree.len(), total);
    }
}

/// Catches `tree` up with the database in one snapshot (a repeatable-read transaction, so
/// the rows and the heads read belong together while other replicas append), returning the
/// signed heads: every one with `all`, else the latest.
pub(super) fn snapshot(
    pg: &Postgres,
    tree: &mut MerkleTree,
    path: &str,
    all: bool,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<Vec<HeadRow>, LogError> {
    pg.run(|client| {
        let mut tx = client
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(|e| db(pg, &e))?;
        catch_up(&mut tx, pg, tree, path, progress)?;
        let heads = if all { heads(&mut tx, pg)? } else { latest_head(&mut tx, pg)?.into_iter().collect() };
        tx.commit().map_err(|e| db(pg, &e))?;
        Ok(heads)
    })
}
