//! Where the Key Store keeps what owners provisioned and which challenges it answered.
//!
//! - **Files** (one process, or processes sharing one state directory): the layout in the
//!   module docs, check-then-write under the state directory's lock.
//! - **PostgreSQL** (replicas, `twi serve --database`): tables `keystore_credentials` and
//!   `keystore_released`, so a credential provisioned at one replica is released by any
//!   other, renewed once, and a challenge is answered once across all of them. A provisioned
//!   private key is never written in clear: it is sealed with HPKE (the suite of
//!   [`twi_attester::hpke`]) to the Key Store's wrapping key `keystore-wrap-key.pem` (P-384,
//!   0600, in the state directory the replicas share, as they share the CA's key), its
//!   associated data binding the workload identifier and the certified public key, so a row
//!   moved to another workload, or given another certificate's key, does not open.

use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use der::{DecodePem, Encode};
use p384::ecdsa::SigningKey;
use p384::elliptic_curve::Generate;
use p384::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use sha2::{Digest, Sha256};
use twi_attester::hpke;
use x509_cert::Certificate;
use zeroize::Zeroizing;

use super::{Provisioned, parse_provisioned};
use crate::database::{DatabaseError, Postgres, is_unique_violation, unix_ms};
use crate::error::IssuerError;
use crate::state;

/// The advisory lock key the tables' creation takes ("TWI-KST" in ASCII).
const SCHEMA_LOCK: i64 = 0x0054_5749_2d4b_5354;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS keystore_credentials (
    workload_id    TEXT   PRIMARY KEY,
    certificate    BYTEA  NOT NULL,
    not_after_ms   BIGINT NOT NULL,
    key_enc        BYTEA  NOT NULL,
    key_sealed     BYTEA  NOT NULL,
    provisioned_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS keystore_released (
    released_sha256 BYTEA  PRIMARY KEY,
    released_ms  BIGINT NOT NULL
);
ALTER TABLE keystore_released ADD COLUMN IF NOT EXISTS until_ms BIGINT;
CREATE INDEX IF NOT EXISTS keystore_released_until ON keystore_released (until_ms);
";

/// The wrapping key's file in the state directory.
pub(super) const WRAPPING_KEY: &str = "keystore-wrap-key.pem";

/// HPKE `info` of a provisioned key sealed at rest.
const AT_REST_INFO: &[u8] = b"twi keystore: a provisioned key at rest";

/// The Key Store's storage.
pub(super) enum Shelf {
    Files(Files),
    Database(Database),
}

/// A credential and its key as the shelf holds them.
pub(super) struct Held {
    pub(super) provisioned: Provisioned,
    pub(super) key: SigningKey,
}

impl Shelf {
    /// The files under `state_dir`, or the tables in `database` (keys sealed to the wrapping
    /// key in `state_dir`).
    pub(super) fn open(state_dir: &Path, database: Option<Arc<Postgres>>) -> Result<Self, IssuerError> {
        match database {
            None => Files::open(state_dir).map(Self::Files),
            Some(pg) => Database::open(state_dir, pg).map(Self::Database),
        }
    }

    /// Held for the duration of a check-then-write: the state directory's lock for files; the
    /// database's writes are conditional instead.
    pub(super) fn guard(&self) -> Result<Option<fs::File>, IssuerError> {
        match self {
            Self::Files(files) => state::lock(&files.state_dir).map(Some),
            Self::Database(_) => Ok(None),
        }
    }

    /// The credential provisioned for `workload_id` (its public half).
    pub(super) fn provisioned(&self, workload_id: &str) -> Result<Option<Provisioned>, IssuerError> {
        match self {
            Self::Files(files) => files.provisioned(workload_id),
            Self::Database(db) => db.provisioned(workload_id),
        }
    }

    /// The credential provisioned for `workload_id` and its key.
    pub(super) fn held(&self, workload_id: &str) -> Result<Option<Held>, IssuerError> {
        match self {
            Self::Files(files) => files.held(workload_id),
            Self::Database(db) => db.held(workload_id),
        }
    }

    /// Keeps `held`, replacing what was there.
    pub(super) fn put(&self, held: &Held) -> Result<(), IssuerError> {
        match self {
            Self::Files(files) => files.put(held),
            Self::Database(db) => db.put(held, None),
        }
    }

    /// Keeps `held` unless a credential that has not expired at `now` is there (under the
    /// guard, files were checked already); returns that one instead.
    pub(super) fn put_unless_current(&self, held: &Held, now: SystemTime) -> Result<Option<Provisioned>, IssuerError> {
        match self {
            Self::Files(files) => files.put(held).map(|()| None),
            Self::Database(db) => db.put_unless_current(held, now),
        }
    }

    /// Replaces the stored certificate `old` by `renewed` (same key). In the database only
    /// while `old` is still the stored one: another replica's renewal or a new provisioning
    /// in between is kept.
    pub(super) fn renew(&self, old: &Provisioned, renewed: &Held) -> Result<(), IssuerError> {
        match self {
            Self::Files(files) => files.put(renewed),
            Self::Database(db) => db.put(renewed, Some(old)),
        }
    }

    /// Records the release `released_sha256` names (the challenge and the ephemeral key it was
    /// sealed to): `false` when it was made before.
    /// It is remembered until `until` (`None`: for ever).
    pub(super) fn mark_released(
        &self,
        released_sha256: &[u8; 32],
        now: SystemTime,
        until: Option<SystemTime>,
    ) -> Result<bool, IssuerError> {
        match self {
            Self::Files(files) => files.mark_released(released_sha256, until),
            Self::Database(db) => db.mark_released(released_sha256, now, until),
        }
    }

    /// Forgets the releases remembered until before `now`.
    pub(super) fn forget_released(&self, now: SystemTime) -> Result<(), IssuerError> {
        match self {
            Self::Files(files) => files.forget_released(now),
            Self::Database(db) => db.forget_released(now),
        }
    }
}

fn state_err(path: &Path, e: impl std::fmt::Display) -> IssuerError {
    IssuerError::State(path.to_path_buf(), e.to_string())
}

/// The Key Store's files under the state directory.
pub(super) struct Files {
    dir: PathBuf,
    state_dir: PathBuf,
}

impl Files {
    fn open(state_dir: &Path) -> Result<Self, IssuerError> {
        let dir = state_dir.join("keystore");
        state::private_dir(&dir)?;
        state::private_dir(&dir.join("released"))?;
        Ok(Self { dir, state_dir: state_dir.to_path_buf() })
    }

    /// `<slot>`: the first 32 hex digits of SHA-256 of the workload identifier.
    fn slot(&self, workload_id: &str) -> PathBuf {
        self.dir.join(&hex::encode(Sha256::digest(workload_id.as_bytes()))[..32])
    }

    fn provisioned(&self, workload_id: &str) -> Result<Option<Provisioned>, IssuerError> {
        let cert_path = self.slot(workload_id).join("credential.pem");
        if !cert_path.exists() {
            return Ok(None);
        }
        let pem = fs::read_to_string(&cert_path).map_err(|e| state_err(&cert_path, e))?;
        let certificate = Certificate::from_pem(pem.as_bytes()).map_err(|e| state_err(&cert_path, e))?;
        let der = certificate.to_der().map_err(|e| state_err(&cert_path, e))?;
        parse_provisioned(workload_id, &der).map(Some)
    }

    fn held(&self, workload_id: &str) -> Result<Option<Held>, IssuerError> {
        let Some(provisioned) = self.provisioned(workload_id)? else { return Ok(None) };
        let key_path = self.slot(workload_id).join("key.pem");
        let pem = state::read_secret(&key_path)?;
        let key = SigningKey::from_pkcs8_pem(&pem).map_err(|e| state_err(&key_path, e))?;
        Ok(Some(Held { provisioned, key }))
    }

    fn put(&self, held: &Held) -> Result<(), IssuerError> {
        let slot = self.slot(&held.provisioned.workload_id);
        state::private_dir(&slot)?;
        let pem = held.key.to_pkcs8_pem(LineEnding::LF).map_err(|e| IssuerError::Certificate(e.to_string()))?;
        state::write_private(&slot.join("key.pem"), pem.as_bytes())?;
        let cert_path = slot.join("credential.pem");
        fs::write(&cert_path, &held.provisioned.certificate_pem).map_err(|e| state_err(&cert_path, e))
    }

    /// A marker file per release, holding until when it is remembered (Unix milliseconds;
    /// empty: for ever).
    fn mark_released(&self, released_sha256: &[u8; 32], until: Option<SystemTime>) -> Result<bool, IssuerError> {
        use std::io::Write;
        let marker = self.dir.join("released").join(hex::encode(released_sha256));
        match fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&marker) {
            Ok(mut file) => {
                let until = until.map(|t| unix_ms(t).to_string()).unwrap_or_default();
                file.write_all(until.as_bytes()).map_err(|e| state_err(&marker, e))?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(state_err(&marker, e)),
        }
    }

    /// Removes the markers remembered until before `now` (not the empty ones: for ever).
    fn forget_released(&self, now: SystemTime) -> Result<(), IssuerError> {
        let dir = self.dir.join("released");
        let now = unix_ms(now);
        for entry in fs::read_dir(&dir).map_err(|e| state_err(&dir, e))? {
            let path = entry.map_err(|e| state_err(&dir, e))?.path();
            let until = fs::read_to_string(&path).ok().and_then(|text| text.trim().parse::<i64>().ok());
            if until.is_some_and(|until| until < now) {
                fs::remove_file(&path).map_err(|e| state_err(&path, e))?;
            }
        }
        Ok(())
    }
}

/// The Key Store's tables in the replicas' database.
pub(super) struct Database {
    pg: Arc<Postgres>,
    wrapping: p384::SecretKey,
    /// Where `wrapping` is kept, for messages.
    wrapping_path: PathBuf,
}

/// HPKE's associated data for `workload_id`'s key certified as `public_key` (SEC1).
fn at_rest_aad(workload_id: &str, public_key: &[u8]) -> Vec<u8> {
    [workload_id.as_bytes(), &[0], public_key].concat()
}

impl Database {
    fn open(state_dir: &Path, pg: Arc<Postgres>) -> Result<Self, IssuerError> {
        let wrapping = state::load_or_create_key(state_dir, WRAPPING_KEY)?;
        pg.create_schema(SCHEMA_LOCK, SCHEMA)?;
        Ok(Self { pg, wrapping: wrapping.into(), wrapping_path: state_dir.join(WRAPPING_KEY) })
    }

    /// `held`'s key sealed to the wrapping key: (`enc`, ciphertext).
    fn seal(&self, held: &Held) -> Result<(Vec<u8>, Vec<u8>), IssuerError> {
        let scalar = Zeroizing::new(held.key.to_bytes());
        let mut sealed = vec![0u8; scalar.len() + hpke::TAG_LEN];
        let ephemeral = p384::SecretKey::try_generate().map_err(|_| IssuerError::Rng)?;
        let aad = at_rest_aad(&held.provisioned.workload_id, &held.provisioned.public_key);
        let recipient = hpke::serialize_public_key(&self.wrapping.public_key());
        let enc = hpke::seal_with_ephemeral(&recipient, &ephemeral, AT_REST_INFO, &aad, &scalar, &mut sealed)
            .map_err(|e| IssuerError::Certificate(format!("sealing a provisioned key: {e}")))?;
        Ok((enc.to_vec(), sealed))
    }

    /// The key of `provisioned`, opened from its sealed row.
    fn unseal(&self, provisioned: &Provisioned, enc: &[u8], sealed: &[u8]) -> Result<SigningKey, IssuerError> {
        let refused = |what: &str| {
            let what = format!(
                "the Key Store's row for {} in {} {what}: the row was altered, or this key is not the one the replicas share (copy the first replica's state directory to the others after its first start)",
                provisioned.workload_id,
                self.pg.shown()
            );
            IssuerError::State(self.wrapping_path.clone(), what)
        };
        let aad = at_rest_aad(&provisioned.workload_id, &provisioned.public_key);
        let mut scalar = Zeroizing::new(vec![0u8; sealed.len().saturating_sub(hpke::TAG_LEN)]);
        hpke::open(&self.wrapping, enc, AT_REST_INFO, &aad, sealed, &mut scalar)
            .map_err(|_| refused("does not open"))?;
        let key = SigningKey::from_slice(&scalar).map_err(|_| refused("holds no P-384 key"))?;
        if key.verifying_key().to_sec1_point(false).as_bytes() != provisioned.public_key.as_slice() {
            return Err(refused("holds a key its certificate does not certify"));
        }
        Ok(key)
    }

    fn held(&self, workload_id: &str) -> Result<Option<Held>, IssuerError> {
        let pg = &self.pg;
        let row = pg.run(|client| {
            client
                .query_opt(
                    "SELECT certificate, key_enc, key_sealed FROM keystore_credentials WHERE workload_id = $1",
                    &[&workload_id],
                )
                .map_err(|e| pg.error(&e))
        })?;
        let Some(row) = row else { return Ok(None) };
        let (certificate, enc, sealed): (Vec<u8>, Vec<u8>, Vec<u8>) = (row.get(0), row.get(1), row.get(2));
        let provisioned = parse_provisioned(workload_id, &certificate)?;
        let key = self.unseal(&provisioned, &enc, &sealed)?;
        Ok(Some(Held { provisioned, key }))
    }

    /// The certificate provisioned for `workload_id`, its key left sealed.
    fn provisioned(&self, workload_id: &str) -> Result<Option<Provisioned>, IssuerError> {
        let pg = &self.pg;
        let row = pg.run(|client| {
            client
                .query_opt("SELECT certificate FROM keystore_credentials WHERE workload_id = $1", &[&workload_id])
                .map_err(|e| pg.error(&e))
        })?;
        row.map(|row| parse_provisioned(workload_id, &row.get::<_, Vec<u8>>(0))).transpose()
    }

    /// Inserts `held` provisioned at `at`, or replaces the stored row where `replace_if` (SQL over
    /// the stored row `k`, with `$7` = `param`) holds; the number of rows written.
    fn upsert(
        &self,
        held: &Held,
        at: SystemTime,
        replace_if: &str,
        param: &(dyn postgres::types::ToSql + Sync),
    ) -> Result<u64, IssuerError> {
        let (enc, sealed) = self.seal(held)?;
        let p = &held.provisioned;
        let (pg, not_after, at) = (&self.pg, unix_ms(p.not_after), unix_ms(at));
        let sql = format!(
            "INSERT INTO keystore_credentials AS k VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (workload_id) DO UPDATE SET certificate = $2, not_after_ms = $3,
                 key_enc = $4, key_sealed = $5, provisioned_ms = $6
             WHERE {replace_if}"
        );
        let written = pg.run(|client| {
            client
                .execute(&sql, &[&p.workload_id, &p.certificate_der, &not_after, &enc, &sealed, &at, param])
                .map_err(|e| pg.error(&e))
        })?;
        Ok(written)
    }

    /// Upserts `held`; with `only_over`, only while that certificate is the stored one.
    fn put(&self, held: &Held, only_over: Option<&Provisioned>) -> Result<(), IssuerError> {
        let over = only_over.map(|old| old.certificate_der.clone());
        self.upsert(held, SystemTime::now(), "$7::BYTEA IS NULL OR k.certificate = $7", &over).map(|_| ())
    }

    fn put_unless_current(&self, held: &Held, now: SystemTime) -> Result<Option<Provisioned>, IssuerError> {
        let written = self.upsert(held, now, "k.not_after_ms < $7", &unix_ms(now))?;
        if written == 1 {
            return Ok(None);
        }
        // Another replica provisioned the workload meanwhile: its credential is the one kept.
        let workload_id = &held.provisioned.workload_id;
        let kept = self.provisioned(workload_id)?;
        kept.map(Some).ok_or_else(|| IssuerError::Database(self.gone(workload_id)))
    }

    fn gone(&self, workload_id: &str) -> DatabaseError {
        DatabaseError::Query {
            url: self.pg.shown().to_string(),
            what: format!("the Key Store's row for {workload_id} was neither written nor found"),
        }
    }

    fn mark_released(
        &self,
        released_sha256: &[u8; 32],
        now: SystemTime,
        until: Option<SystemTime>,
    ) -> Result<bool, IssuerError> {
        let (pg, marker, now, until) = (&self.pg, released_sha256.as_slice(), unix_ms(now), until.map(unix_ms));
        const INSERT: &str =
            "INSERT INTO keystore_released (released_sha256, released_ms, until_ms) VALUES ($1, $2, $3)";
        let inserted = pg.run(|client| match client.execute(INSERT, &[&marker, &now, &until]) {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(pg.error(&e)),
        })?;
        Ok(inserted)
    }

    fn forget_released(&self, now: SystemTime) -> Result<(), IssuerError> {
        let (pg, now) = (&self.pg, unix_ms(now));
        const DELETE: &str = "DELETE FROM keystore_released WHERE until_ms < $1";
        pg.run(|client| client.execute(DELETE, &[&now]).map_err(|e| pg.error(&e)))?;
        Ok(())
    }
}
