//! The auditor's check of a whole provenance log (issue 14 item 7; `twi log audit`): every
//! record re-hashed against its stored leaf hash, the RFC 9162 tree recomputed from the
//! records alone, and every signed tree head the log ever stored checked — its signature under
//! the log key, and its root against the recomputed tree at its size, so that any two heads
//! are consistent by construction (RFC 9162 §2.1.4: both are prefixes of one tree). The last
//! head must cover every record. Nothing in the database is trusted but the records.

use std::path::Path;
use std::sync::Arc;

use p384::ecdsa::VerifyingKey;
use rusqlite::{Connection, OpenFlags};

use super::{Hash, LogError, ProvenanceLog, SignedTreeHead};
use crate::database::Postgres;

/// What an audit found in a log that passed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Audited {
    /// Records, all re-hashed.
    pub records: u64,
    /// Signed tree heads, each verified.
    pub heads: u64,
    /// The root of the whole tree (the last head's).
    pub root: Hash,
}

/// Audits the log at `path` (opened read-only: a missing file is an error, not a new log)
/// against the log key; `progress(done, total)` while the records are re-hashed.
pub fn audit(path: &Path, key: &VerifyingKey, progress: impl FnMut(u64, u64)) -> Result<Audited, LogError> {
    if !path.is_file() {
        let what = "no such file: give the issuer state's provenance.sqlite (STATE/issuer/provenance.sqlite)";
        return Err(LogError::Db(path.display().to_string(), what.into()));
    }
    let db = |e: rusqlite::Error| LogError::Db(path.display().to_string(), e.to_string());
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(db)?;
    let mut log = ProvenanceLog::unchecked(conn, path);
    log.read_from(0, progress)?;
    let heads = log.tree_heads()?;
    audit_log(&log, &heads, &path.display().to_string(), key)
}

/// Audits the log in the replicas' PostgreSQL database `pg` (read only: nothing is created),
/// in one snapshot while replicas may go on appending.
pub fn audit_postgres(
    pg: Arc<Postgres>,
    key: &VerifyingKey,
    progress: impl FnMut(u64, u64) + Send,
) -> Result<Audited, LogError> {
    let shown = pg.shown().to_string();
    let mut log = ProvenanceLog::unchecked_postgres(pg);
    let heads = log.read_snapshot(progress)?;
    audit_log(&log, &heads, &shown, key)
}

fn audit_log(
    log: &ProvenanceLog,
    heads: &[SignedTreeHead],
    path: &str,
    key: &VerifyingKey,
) -> Result<Audited, LogError> {
    let tampered = |what: String| LogError::Tampered { path: path.to_string(), what };
    for head in heads {
        check_head(log, head, key).map_err(tampered)?;
    }
    super::checks::covered(log.tree(), heads.last(), path)?;
    Ok(Audited { records: log.len(), heads: heads.len() as u64, root: log.root() })
}

/// One signed head: its signature under the log key, its root the recomputed tree's at its size.
fn check_head(log: &ProvenanceLog, head: &SignedTreeHead, key: &VerifyingKey) -> Result<(), String> {
    head.verify(key).map_err(|_| {
        format!(
            "the tree head signed at size {} does not verify under the log key: it was not signed by this log",
            head.size
        )
    })?;
    match log.tree().root_at(head.size) {
        None => Err(format!("a signed tree head covers {} records but only {} are stored", head.size, log.len())),
        Some(root) if root != head.root => {
            Err(format!("the records no longer hash to the root signed at size {}", head.size))
        }
        Some(_) => Ok(()),
    }
}

/// The log key (`kid` `twi-log`) of a JWKS, as `GET /v1/keys` serves it and `twi run` writes it
/// (`issuer-jwks.json`).
pub fn key_in_jwks(jwks: &str) -> Result<VerifyingKey, LogError> {
    let bad = |what: String| LogError::Encode(format!("the JWKS: {what}"));
    let set: serde_json::Value = serde_json::from_str(jwks).map_err(|e| bad(e.to_string()))?;
    let keys = set.get("keys").and_then(|k| k.as_array()).ok_or_else(|| bad("no `keys` array".into()))?;
    let jwk = keys
        .iter()
        .find(|k| k.get("kid").and_then(|v| v.as_str()) == Some(crate::records::LOG_KID))
        .ok_or_else(|| bad(format!("no key with kid `{}` (the log's)", crate::records::LOG_KID)))?;
    let jwk: crate::jose::Jwk = serde_json::from_value(jwk.clone()).map_err(|e| bad(e.to_string()))?;
    Ok(VerifyingKey::from(jwk.to_p384().map_err(|e| bad(e.to_string()))?))
}

/// The public half of the log key of the issuer state `dir` (`log-key.pem`), for an operator
/// auditing their own log.
pub fn state_log_key(dir: &Path) -> Result<VerifyingKey, LogError> {
    use p384::pkcs8::DecodePrivateKey;
    let path = dir.join("log-key.pem");
    let unreadable =
        |e: String| LogError::Db(path.display().to_string(), format!("{e}: give the log's public key with --jwks"));
    let pem = zeroize::Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| unreadable(e.to_string()))?);
    let key = p384::ecdsa::SigningKey::from_pkcs8_pem(&pem).map_err(|e| unreadable(e.to_string()))?;
    Ok(*key.verifying_key())
}
