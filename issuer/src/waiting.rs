//! Mechanism-B attestation results waiting in the replicas' PostgreSQL database (what
//! `redemption` keeps): one row per
//! result the Verifier of any replica signed, keyed by the result's SHA-256, until it expires
//! ([`crate::MAX_ATTESTATION_RESULT_AGE`]). Taking one is one `DELETE … RETURNING`, so two
//! replicas racing for the same result cannot both get it; at most `max` rows wait (past it the
//! oldest makes room), so a flood of appraisals cannot grow the table without bound. Beside
//! them, the results a CA replica certified a Key Store process's release on
//! (`certified_results`), so that it certifies one per result.

use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::ca::Marked;
use crate::database::{DatabaseError, Postgres, unix_ms};
use crate::evidence::{EvidenceJson, OwnedEvidence};
use crate::freshness::Fresh;
use crate::verifier::Evidence;

/// The advisory lock key the table's creation takes ("TWI-RES" in ASCII).
const SCHEMA_LOCK: i64 = 0x0054_5749_2d52_4553;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS attestation_results (
    ear_sha256 BYTEA  PRIMARY KEY,
    expires_ms BIGINT NOT NULL,
    launch     BYTEA  NOT NULL
);
CREATE INDEX IF NOT EXISTS attestation_results_expiry ON attestation_results (expires_ms);
CREATE TABLE IF NOT EXISTS certified_results (
    ear_sha256 BYTEA  PRIMARY KEY,
    expires_ms BIGINT NOT NULL
);
";

/// What waits for a result: the evidence it was appraised on and the freshness that appraisal
/// established (`None`: none, which only an AF_L0 workload admits).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Kept {
    evidence: EvidenceJson,
    fresh: Option<Fresh>,
}

impl Kept {
    pub(crate) fn new(evidence: &Evidence<'_>, fresh: Option<Fresh>) -> Self {
        Self { evidence: EvidenceJson::new(evidence), fresh }
    }
}

/// The shared table of attestation results to redeem.
#[derive(Debug, Clone)]
pub struct SharedResults {
    pg: Arc<Postgres>,
}

impl SharedResults {
    /// The table in `pg`, created if absent.
    pub fn open(pg: Arc<Postgres>) -> Result<Self, DatabaseError> {
        pg.create_schema(SCHEMA_LOCK, SCHEMA)?;
        Ok(Self { pg })
    }

    /// Keeps `launch` under `ear_sha256` until `expires`, in one transaction that first drops
    /// the expired rows at `now` and, when `max` wait, the oldest.
    pub(crate) fn put(
        &self,
        ear_sha256: &[u8; 32],
        launch: &Kept,
        expires: SystemTime,
        now: SystemTime,
        max: usize,
    ) -> Result<(), DatabaseError> {
        let pg = &self.pg;
        let launch = serde_json::to_vec(launch).map_err(|e| self.undecodable(&e))?;
        let keep = i64::try_from(max.saturating_sub(1)).unwrap_or(i64::MAX);
        pg.run(|client| {
            let mut tx = client.transaction().map_err(|e| pg.error(&e))?;
            tx.execute("DELETE FROM attestation_results WHERE expires_ms <= $1", &[&unix_ms(now)])
                .map_err(|e| pg.error(&e))?;
            tx.execute(
                "DELETE FROM attestation_results WHERE ear_sha256 IN
                 (SELECT ear_sha256 FROM attestation_results ORDER BY expires_ms DESC OFFSET $1)",
                &[&keep],
            )
            .map_err(|e| pg.error(&e))?;
            tx.execute(
                "INSERT INTO attestation_results (ear_sha256, expires_ms, launch) VALUES ($1, $2, $3)",
                &[&ear_sha256.as_slice(), &unix_ms(expires), &launch],
            )
            .map_err(|e| pg.error(&e))?;
            tx.commit().map_err(|e| pg.error(&e))
        })
    }

    /// The evidence and freshness kept under `ear_sha256`, removed: `None` if there is none
    /// (never signed, already taken by some replica) or it expired before `now`.
    pub(crate) fn take(
        &self,
        ear_sha256: &[u8; 32],
        now: SystemTime,
    ) -> Result<Option<(OwnedEvidence, Option<Fresh>)>, DatabaseError> {
        let pg = &self.pg;
        let row = pg.run(|client| {
            client
                .query_opt(
                    "DELETE FROM attestation_results WHERE ear_sha256 = $1 RETURNING expires_ms, launch",
                    &[&ear_sha256.as_slice()],
                )
                .map_err(|e| pg.error(&e))
        })?;
        let Some(row) = row.filter(|row| row.get::<_, i64>(0) > unix_ms(now)) else {
            return Ok(None);
        };
        let kept: Kept = serde_json::from_slice(row.get(1)).map_err(|e| self.undecodable(&e))?;
        let evidence = kept.evidence.decode().map_err(|e| self.undecodable(&e))?;
        Ok(Some((evidence, kept.fresh)))
    }

    /// Mechanism D with the Key Store in another process: marks the attestation result
    /// `ear_sha256` as one a CA replica certified a release on, until `expires` (when the
    /// result is too old to be presented anyway), after dropping the marks expired at `now`.
    /// One `INSERT … ON CONFLICT DO NOTHING`, so two replicas racing on one result cannot both
    /// mark it first.
    pub(crate) fn mark_certified(
        &self,
        ear_sha256: &[u8; 32],
        expires: SystemTime,
        now: SystemTime,
    ) -> Result<Marked, DatabaseError> {
        let pg = &self.pg;
        let inserted = pg.run(|client| {
            let mut tx = client.transaction().map_err(|e| pg.error(&e))?;
            tx.execute("DELETE FROM certified_results WHERE expires_ms <= $1", &[&unix_ms(now)])
                .map_err(|e| pg.error(&e))?;
            let inserted = tx
                .execute(
                    "INSERT INTO certified_results (ear_sha256, expires_ms) VALUES ($1, $2)
                     ON CONFLICT (ear_sha256) DO NOTHING",
                    &[&ear_sha256.as_slice(), &unix_ms(expires)],
                )
                .map_err(|e| pg.error(&e))?;
            tx.commit().map_err(|e| pg.error(&e))?;
            Ok(inserted)
        })?;
        Ok(if inserted == 1 { Marked::First } else { Marked::Again })
    }

    /// Undoes [`Self::mark_certified`] for `ear_sha256` (no certificate was issued on it).
    pub(crate) fn unmark_certified(&self, ear_sha256: &[u8; 32]) -> Result<(), DatabaseError> {
        let pg = &self.pg;
        pg.run(|client| {
            client
                .execute("DELETE FROM certified_results WHERE ear_sha256 = $1", &[&ear_sha256.as_slice()])
                .map_err(|e| pg.error(&e))
        })?;
        Ok(())
    }

    fn undecodable(&self, e: &dyn std::fmt::Display) -> DatabaseError {
        DatabaseError::Query { url: self.pg.shown().into(), what: format!("a waiting attestation result: {e}") }
    }
}
