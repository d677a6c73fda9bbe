//! Nonces and epochs in the replicas' PostgreSQL database (issue 14 item 6): a nonce issued by
//! one replica is redeemed once at any (the redemption is one conditional UPDATE, so two
//! replicas racing for it cannot both win), and every replica publishes the same epoch for a
//! period (the first to sign it stores it; the others take the stored one after checking its
//! signature under the shared epoch key).

use std::sync::Arc;
use std::time::SystemTime;

use p384::ecdsa::signature::Verifier;
use p384::ecdsa::{Signature, VerifyingKey};
use postgres::types::Type;

use super::{FreshnessError, NONCE_LEN, NonceScope, SignedEpoch};
use crate::database::{Postgres, unix_ms as ms};

/// The advisory lock key the tables' creation takes ("TWI-FRS" in ASCII).
const SCHEMA_LOCK: i64 = 0x0054_5749_2d46_5253;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS nonces (
    nonce      BYTEA   PRIMARY KEY,
    expires_ms BIGINT  NOT NULL,
    workload   TEXT,
    target     TEXT    NOT NULL,
    redeemed   BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX IF NOT EXISTS nonces_expiry ON nonces (expires_ms);
-- The outstanding ones only: counting them reads this index, not every nonce kept until expiry.
CREATE INDEX IF NOT EXISTS nonces_outstanding ON nonces (expires_ms) WHERE NOT redeemed;
CREATE TABLE IF NOT EXISTS epochs (
    number BIGINT PRIMARY KEY,
    epoch  BYTEA  NOT NULL
);
";

/// The shared nonce and epoch tables.
#[derive(Debug, Clone)]
pub struct SharedFreshness {
    pg: Arc<Postgres>,
}

fn store(e: impl std::fmt::Display) -> FreshnessError {
    FreshnessError::Store(e.to_string())
}

impl SharedFreshness {
    /// The tables in `pg`, created if absent.
    pub fn open(pg: Arc<Postgres>) -> Result<Self, FreshnessError> {
        pg.create_schema(SCHEMA_LOCK, SCHEMA).map_err(store)?;
        Ok(Self { pg })
    }

    /// Stores `nonce` for `scope` until `expires`, unless `max` are outstanding at `now`
    /// (expired ones are dropped first).
    pub(super) fn issue(
        &self,
        nonce: &[u8; NONCE_LEN],
        scope: &NonceScope,
        expires: SystemTime,
        max: usize,
        now: SystemTime,
    ) -> Result<(), FreshnessError> {
        let pg = &self.pg;
        // One call: drop the expired, count the outstanding (the partial index), insert.
        let outstanding = pg
            .run(|client| {
                let expired = "DELETE FROM nonces WHERE expires_ms <= $1";
                client.execute_typed(expired, &[(&ms(now), Type::INT8)]).map_err(|e| pg.error(&e))?;
                let row = client
                    .query_typed_one("SELECT COUNT(*) FROM nonces WHERE NOT redeemed", &[])
                    .map_err(|e| pg.error(&e))?;
                let outstanding = usize::try_from(row.get::<_, i64>(0)).unwrap_or(usize::MAX);
                if outstanding < max {
                    client
                        .execute_typed(
                            "INSERT INTO nonces (nonce, expires_ms, workload, target) VALUES ($1, $2, $3, $4)",
                            &[
                                (&nonce.as_slice(), Type::BYTEA),
                                (&ms(expires), Type::INT8),
                                (&scope.workload, Type::TEXT),
                                (&scope.target, Type::TEXT),
                            ],
                        )
                        .map_err(|e| pg.error(&e))?;
                }
                Ok::<usize, crate::database::DatabaseError>(outstanding)
            })
            .map_err(store)?;
        if outstanding >= max {
            return Err(FreshnessError::TooManyOutstanding(outstanding));
        }
        Ok(())
    }

    /// Redeems `nonce` once, whichever replica issued it.
    pub(super) fn redeem(&self, nonce: &[u8], now: SystemTime) -> Result<NonceScope, FreshnessError> {
        let pg = &self.pg;
        let found = pg
            .run(|client| {
                let row = client
                    .query_typed_opt(
                        "UPDATE nonces SET redeemed = TRUE WHERE nonce = $1 AND NOT redeemed
                         RETURNING expires_ms, workload, target",
                        &[(&nonce, Type::BYTEA)],
                    )
                    .map_err(|e| pg.error(&e))?;
                if let Some(row) = row {
                    return Ok(Redeemed::Taken(row.get(0), NonceScope { workload: row.get(1), target: row.get(2) }));
                }
                let known =
                    client.query_opt("SELECT 1 FROM nonces WHERE nonce = $1", &[&nonce]).map_err(|e| pg.error(&e))?;
                Ok::<_, crate::database::DatabaseError>(if known.is_some() {
                    Redeemed::Spent
                } else {
                    Redeemed::Unknown
                })
            })
            .map_err(store)?;
        match found {
            Redeemed::Taken(expires_ms, _) if ms(now) >= expires_ms => {
                Err(FreshnessError::Expired(u64::try_from((ms(now) - expires_ms) / 1000).unwrap_or(0)))
            }
            Redeemed::Taken(_, scope) => Ok(scope),
            Redeemed::Spent => Err(FreshnessError::Replayed),
            Redeemed::Unknown => Err(FreshnessError::UnknownNonce),
        }
    }

    /// The epoch `number` every replica publishes: `candidate` (just signed here) unless
    /// another replica stored one first; the stored one must verify under `key`.
    pub(super) fn publish(&self, candidate: &SignedEpoch, key: &VerifyingKey) -> Result<SignedEpoch, FreshnessError> {
        let pg = &self.pg;
        let number = i64::try_from(candidate.number).map_err(|_| store("the epoch number is out of range"))?;
        let bytes = candidate.to_bytes();
        pg.run(|client| {
            client
                .execute(
                    "INSERT INTO epochs (number, epoch) VALUES ($1, $2) ON CONFLICT (number) DO NOTHING",
                    &[&number, &bytes.as_slice()],
                )
                .map_err(|e| pg.error(&e))
        })
        .map_err(store)?;
        self.epoch(candidate.number, key)?.ok_or_else(|| store(format!("epoch {number} was not stored")))
    }

    /// The stored epoch `number`, checked under `key`.
    pub(super) fn epoch(&self, number: u64, key: &VerifyingKey) -> Result<Option<SignedEpoch>, FreshnessError> {
        let pg = &self.pg;
        let Ok(n) = i64::try_from(number) else { return Ok(None) };
        let row = pg
            .run(|client| {
                client.query_opt("SELECT epoch FROM epochs WHERE number = $1", &[&n]).map_err(|e| pg.error(&e))
            })
            .map_err(store)?;
        let Some(row) = row else { return Ok(None) };
        let epoch = SignedEpoch::from_bytes(row.get::<_, &[u8]>(0))?;
        let sig = Signature::from_slice(&epoch.signature).map_err(|_| FreshnessError::BadEpochSignature)?;
        key.verify(&SignedEpoch::tbs(epoch.number, epoch.not_before, epoch.not_after, &epoch.seed), &sig)
            .map_err(|_| FreshnessError::BadEpochSignature)?;
        if epoch.number != number {
            return Err(FreshnessError::UnknownEpoch);
        }
        Ok(Some(epoch))
    }
}

/// What a redemption found.
enum Redeemed {
    /// Outstanding until then (ms), for this scope: now redeemed.
    Taken(i64, NonceScope),
    /// Redeemed before.
    Spent,
    /// Never issued, or expired and dropped.
    Unknown,
}
