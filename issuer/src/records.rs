//! The Provenance log role (TWI reference architecture §5.3.2) as the issuer keeps it: one
//! record per credential — the X.509 certificate and the WIT each — signed as a SCITT signed
//! statement under the log key before the credential is signed (the credential names the
//! statement: [`crate::provenance::entry`]), and appended to
//! `provenance.sqlite` in the state directory *before* the credential is returned, each
//! issuance's records whole in one transaction with the signed tree head that covers them
//! (issuances appending at once share the transaction and the head: group commit); the tree
//! head signed by the **log key** (`log-key.pem`), and each
//! record handed out with its RFC 9162 inclusion proof and RFC 9942 COSE receipt; the tree
//! head is also a C2SP checkpoint signed with the checkpoint key. The log's format and its proofs are
//! `provenance.rs`; a renewal reads back the binding the previous credential promised: from its
//! record, or, for a record sealed to an auditor key, from the private binding table written in
//! the same transaction ([`crate::provenance::private`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use p384::ecdsa::{SigningKey, VerifyingKey};
use serde_json::{Value, json};
use sha2::Digest;

use crate::database::Postgres;
use crate::error::IssuerError;
use crate::group_commit::GroupCommit;
use crate::jose::Jwk;
use crate::log_peer::SignResponse;
use crate::policy::{Admission, Binding, Mechanism, platform_name};
use crate::provenance::checkpoint::CheckpointKey;
use crate::provenance::entry::LogEntry;
use crate::provenance::receipt;
use crate::provenance::{
    AuditorKey, BindingKey, Hash, LogError, PrivateBinding, ProvenanceLog, ProvenanceRecord, SignedStatement,
    SignedTreeHead, VerifierDecision, leaf_hash,
};
use crate::state;
use crate::verifier::{Appraisal, VERIFIER_BUILD, admitted_vector};

/// The log key's `kid` in JWKS.
pub(crate) const LOG_KID: &str = "twi-log";
const FILE: &str = "provenance.sqlite";

/// The issuer's provenance log: where it is, and the key that signs its tree heads.
#[derive(Debug)]
pub(crate) struct Records {
    dir: PathBuf,
    key: SigningKey,
    /// Signs the log's C2SP checkpoints.
    checkpoint: CheckpointKey,
    /// `iss` of the signed statements: `spiffe://<trust domain>/twi-issuer`.
    issuer: String,
    /// The log, open from one issuance to the next (its tree in memory; each use re-reads
    /// only what another process appended since, and checks it against the signed head).
    log: Mutex<ProvenanceLog>,
    /// In the replicas' PostgreSQL database: appends are serialised there (an advisory lock),
    /// not by the state directory's lock, which replicas on other machines do not share.
    shared: bool,
    /// The auditor key new records are encrypted to (`--auditor-key`); `None`: in clear.
    auditor: Option<AuditorKey>,
    /// Seals the private binding rows of sealed records (`binding-key.pem`).
    binding_key: BindingKey,
    /// Issuances appending at once, committed together.
    appends: GroupCommit<Pending, Result<Logged, IssuerError>>,
}

/// One issuance waiting to be appended: its statements and its private binding rows.
#[derive(Debug)]
struct Pending {
    records: Vec<SignedStatement>,
    private: Vec<PrivateBinding>,
    now: SystemTime,
}

/// What the log gave one issuance: each record's (index, inclusion proof, leaf) and receipt,
/// the signed tree head that covers them, and its checkpoint.
#[derive(Debug)]
struct Logged {
    proved: Vec<(u64, Vec<Hash>, Vec<u8>)>,
    receipts: Vec<Vec<u8>>,
    head: SignedTreeHead,
    checkpoint: String,
}

/// What one issuance logs: the decision, and the credentials it makes (kind, id).
#[derive(Debug)]
pub(crate) struct Issuance<'a> {
    pub admission: &'a Admission,
    pub appraisal: &'a Appraisal,
    pub mechanism: Mechanism,
    /// `("x509", serial)`, `("wit", jti)`.
    pub credentials: [(&'static str, String); 2],
}

impl Records {
    /// The log of `trust_domain` in the issuer state `dir` (checked, and created if absent)
    /// and its keys; a new log is named `<trust domain>/twi-log` in its checkpoints, and its
    /// statements are made by `spiffe://<trust domain>/twi-issuer`.
    pub(crate) fn open(dir: &Path, trust_domain: &str, database: Option<&Arc<Postgres>>) -> Result<Self, IssuerError> {
        let issuer = format!("spiffe://{trust_domain}/twi-issuer");
        let key = state::load_or_create_key(dir, "log-key.pem")?;
        let checkpoint = CheckpointKey::load_or_create(dir, &format!("{trust_domain}/twi-log"))?;
        // Opened (and checked) once; each use takes the state lock and catches up with what
        // other processes sharing the state directory appended, so they append in turn.
        let log = match database {
            Some(pg) => ProvenanceLog::open_postgres(pg.clone())?,
            None => {
                let _lock = state::lock(dir)?;
                let log = ProvenanceLog::open(&dir.join(FILE))?;
                refuse_legacy(&log, &dir.join(FILE))?;
                log
            }
        };
        let shared = database.is_some();
        let binding_key = BindingKey::load_or_create(dir)?;
        let log = Mutex::new(log);
        let appends = GroupCommit::default();
        Ok(Self { dir: dir.to_path_buf(), key, checkpoint, issuer, log, shared, auditor: None, binding_key, appends })
    }

    /// Encrypts every record made from now on to `auditor` (records already logged stay as
    /// they are: a log may hold both).
    pub(crate) fn seal_to(&mut self, auditor: Option<AuditorKey>) {
        self.auditor = auditor;
    }

    /// Signs `record` as a statement, sealed to the auditor key if there is one.
    fn sign(&self, record: ProvenanceRecord) -> Result<SignedStatement, LogError> {
        SignedStatement::sign_for(record, &self.issuer, &self.key, LOG_KID, self.auditor.as_ref())
    }

    /// The key signed tree heads verify under.
    pub(crate) fn public_key(&self) -> &VerifyingKey {
        self.key.verifying_key()
    }

    /// Runs `f` on the log, holding the state directory's lock (the log's in-memory tree must
    /// not go stale under another process's appends).
    fn with_log<T>(&self, f: impl FnOnce(&mut ProvenanceLog) -> Result<T, LogError>) -> Result<T, IssuerError> {
        let _lock = if self.shared { None } else { Some(state::lock(&self.dir)?) };
        // A panic elsewhere while the log was held leaves it as the store has it: refresh re-checks.
        let mut log = self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        log.refresh()?;
        Ok(f(&mut log)?)
    }

    /// The binding of credential `id` (an X.509 serial in hex, or a WIT `jti`), from its
    /// record, or for a record encrypted to an auditor key from its private binding row;
    /// `None` when the log has no such credential; `Some(Err(kid))` when the record is
    /// encrypted to the auditor key `kid` and the private table holds no row for it (a record
    /// logged before the table was). A row that does not open for its record is an `Err`.
    pub(crate) fn binding_of(&self, id: &str) -> Result<Option<Result<Binding, Vec<u8>>>, IssuerError> {
        let found = self.with_log(|log| {
            let Some((_, statement)) = log.find(id)? else { return Ok(None) };
            let row = if statement.record().is_none() { log.private_binding(id)? } else { None };
            Ok(Some((statement, row)))
        })?;
        let Some((statement, row)) = found else { return Ok(None) };
        let (Some(Err(_)), Some(row)) = (binding_in(&statement), row) else { return Ok(binding_in(&statement)) };
        let json = self.binding_key.open(&row, &statement.sha256())?;
        let binding = serde_json::from_slice(&json).map_err(|e| {
            let what = format!("the private binding row of credential {id} opens but holds no binding ({e})");
            IssuerError::State(self.dir.join(FILE), what)
        })?;
        Ok(Some(Ok(binding)))
    }

    /// The private binding rows of those of `statements` that are sealed: `binding` (the
    /// issuance's) sealed to the binding key for each.
    fn private_rows(&self, statements: &[SignedStatement], binding: &Binding) -> Result<Vec<PrivateBinding>, LogError> {
        let json = serde_json::to_vec(binding).map_err(|e| LogError::Encode(e.to_string()))?;
        statements
            .iter()
            .filter(|statement| statement.record().is_none())
            .map(|statement| self.binding_key.seal(statement.credential_id(), &statement.sha256(), &json))
            .collect()
    }

    /// Signs each of `records` as a statement (before the credentials they name are signed).
    pub(crate) fn sign_all(&self, records: Vec<ProvenanceRecord>) -> Result<Vec<SignedStatement>, IssuerError> {
        Ok(records.into_iter().map(|record| self.sign(record)).collect::<Result<Vec<_>, _>>()?)
    }

    /// What a Credential Authority of another process asks this log to sign (`POST
    /// /v1/log/statements`): one issuance's records, each well-formed for this trust domain;
    /// `Err` says what is wrong with them (the caller's fault).
    pub(crate) fn sign_asked(&self, records: Vec<ProvenanceRecord>, now: SystemTime) -> Result<SignResponse, String> {
        if records.is_empty() || records.len() > 2 {
            return Err(format!("an issuance has one or two records, not {}", records.len()));
        }
        for record in &records {
            well_formed(record, &self.issuer, now).map_err(|e| format!("record {:?}: {e}", record.credential_id))?;
        }
        let statements = self.sign_all(records).map_err(|e| format!("signing: {e}"))?;
        let statements = statements.iter().map(|s| s.to_leaf().map(hex::encode)).collect::<Result<_, _>>();
        let statements = statements.map_err(|e| format!("encoding: {e}"))?;
        Ok(SignResponse { origin: self.checkpoint.origin().to_string(), statements })
    }

    /// What a Credential Authority of another process asks this log to append (`POST
    /// /v1/log/append`): statements this log signed (their signature checked under its key);
    /// `Ok(Err)` when they are not (the caller's fault), `Err` for the log's own faults.
    pub(crate) fn append_asked(
        &self,
        statements: &[String],
        binding: Option<&Binding>,
        now: SystemTime,
    ) -> Result<Result<Value, String>, IssuerError> {
        if statements.is_empty() || statements.len() > 2 {
            return Ok(Err(format!("an issuance appends one or two statements, not {}", statements.len())));
        }
        let mut signed = Vec::new();
        for (i, statement) in statements.iter().enumerate() {
            let Ok(bytes) = hex::decode(statement) else { return Ok(Err(format!("statement {i} is not hex"))) };
            match SignedStatement::verify(&bytes, self.public_key()) {
                Ok(statement) => signed.push(statement),
                Err(e) => return Ok(Err(format!("statement {i} is not one this log signed: {e}"))),
            }
        }
        // The issuance's binding, as the Credential Authority sends it: kept for the sealed ones.
        Ok(Ok(self.record(&signed, binding, now)?))
    }

    /// Mechanism D, the owner's step: the record of the certificate `serial_hex` the CA makes
    /// for a key the Key Store holds for `workload_id` at `owner`'s request, signed.
    pub(crate) fn provisioning(
        &self,
        workload_id: &str,
        serial_hex: &str,
        owner: &str,
        policy_version: &str,
        now: SystemTime,
    ) -> Result<SignedStatement, IssuerError> {
        Ok(self.sign(provisioning(workload_id, serial_hex, owner, policy_version, now))?)
    }

    /// The log entry a credential names: this log's origin and its statement's SHA-256.
    pub(crate) fn entry(&self, statement: &SignedStatement) -> LogEntry {
        LogEntry { origin: self.checkpoint.origin().to_string(), statement_sha256: statement.sha256() }
    }

    /// Appends the statements of one issuance, signs the tree head, and returns the head and
    /// each record's statement, inclusion proof and receipt (the `provenance.json` a run writes).
    /// `binding`: the issuance's, kept in the private binding table for each sealed statement.
    /// Issuances appending at once are committed together ([`GroupCommit`]): one transaction
    /// holds each one's records whole, and one signed tree head and one receipt signature cover
    /// them all.
    pub(crate) fn record(
        &self,
        records: &[SignedStatement],
        binding: Option<&Binding>,
        now: SystemTime,
    ) -> Result<Value, IssuerError> {
        let private = binding.map(|binding| self.private_rows(records, binding)).transpose()?.unwrap_or_default();
        let pending = Pending { records: records.to_vec(), private, now };
        let logged = self.appends.submit(pending, |batch| self.append_batch(batch)).ok_or_else(|| {
            let what = "the append this issuance was batched with failed (a panic); nothing of it is logged";
            IssuerError::State(self.dir.join(FILE), what.into())
        })??;
        let Logged { proved, receipts, head, checkpoint } = logged;
        let entries: Vec<Value> = records
            .iter()
            .zip(proved.into_iter().zip(receipts))
            .map(|(statement, ((index, proof, leaf), receipt))| {
                json!({
                    "credential_kind": statement.record().map(|r| r.credential_kind.as_str()),
                    "credential_id": statement.credential_id(),
                    "index": index,
                    "statement": hex::encode(&leaf),
                    "statement_sha256": hex::encode(statement.sha256()),
                    "leaf_hash": hex::encode(leaf_hash(&leaf)),
                    "inclusion_proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
                    "receipt": hex::encode(receipt),
                    "record": statement.record(),
                    "encrypted_to": statement.sealed_to().map(crate::provenance::sealed::shown_kid),
                })
            })
            .collect();
        Ok(json!({
            "log": "RFC 9162 Merkle tree (SHA-256); each leaf is the record's SCITT signed statement (`statement`: a COSE_Sign1 under the log key, CWT claims iss and sub = the credential id, payload the record's JSON, or that JSON encrypted to the auditor key `encrypted_to` names), `statement_sha256` what the credential names; `receipt`: an RFC 9942 COSE receipt (RFC9162_SHA256 inclusion, detached root, ES384 under the log key)",
            "tree_head": {
                "size": head.size,
                "timestamp_ms": head.timestamp_ms,
                "root": hex::encode(head.root),
                "signature": hex::encode(head.signature),
                "signed_bytes": "\"TWI-STH-v1\" (16 bytes, NUL-padded) || u64be size || u64be timestamp_ms || root; ECDSA P-384/SHA-384 r||s",
                "key": Jwk::published(self.public_key(), LOG_KID),
            },
            "records": entries,
            "checkpoint": checkpoint,
            "checkpoint_vkey": self.checkpoint.vkey(),
        }))
    }

    /// Appends each of `batch` (one issuance each): together in one transaction when they
    /// can be, else (one of them refused, say a duplicate) each in its own.
    fn append_batch(&self, batch: Vec<Pending>) -> Vec<Result<Logged, IssuerError>> {
        if let [one] = batch.as_slice() {
            return vec![self.append(&one.records, &one.private, one.now)];
        }
        let records: Vec<SignedStatement> = batch.iter().flat_map(|p| p.records.iter().cloned()).collect();
        let private: Vec<PrivateBinding> = batch.iter().flat_map(|p| p.private.iter().cloned()).collect();
        let now = batch.iter().map(|p| p.now).max().unwrap_or_else(SystemTime::now);
        let Ok(mut together) = self.append(&records, &private, now) else {
            return batch.iter().map(|p| self.append(&p.records, &p.private, p.now)).collect();
        };
        let mut logged = Vec::with_capacity(batch.len());
        for pending in &batch {
            let n = pending.records.len();
            logged.push(Ok(Logged {
                proved: together.proved.drain(..n).collect(),
                receipts: together.receipts.drain(..n).collect(),
                head: together.head.clone(),
                checkpoint: together.checkpoint.clone(),
            }));
        }
        logged
    }

    /// Appends `records` and `private` in one transaction with the tree head that covers them;
    /// their inclusion proofs and receipts (one signature for all), and the head's checkpoint.
    fn append(
        &self,
        records: &[SignedStatement],
        private: &[PrivateBinding],
        now: SystemTime,
    ) -> Result<Logged, IssuerError> {
        let (proved, head) = self.with_log(|log| {
            let (appended, head) = log.append_signed_with(records, private, &self.key, now)?;
            crate::metrics::appended(records.len());
            let mut proved = Vec::new();
            for (record, appended) in records.iter().zip(appended) {
                proved.push((appended.index, log.inclusion_proof(appended.index, head.size)?, record.to_leaf()?));
            }
            Ok((proved, head))
        })?;
        let checkpoint = self.checkpoint.sign(head.size, &head.root).map_err(|e| LogError::Signer(e.to_string()))?;
        // One signature over the head's root serves every record's receipt.
        let leaves: Vec<(u64, &[_])> = proved.iter().map(|(index, proof, _)| (*index, proof.as_slice())).collect();
        let receipts = receipt::receipts(&self.key, LOG_KID, head.size, &head.root, &leaves)?;
        Ok(Logged { proved, receipts, head, checkpoint })
    }

    /// The log's checkpoint signer (C2SP signed notes).
    pub(crate) fn checkpoint_key(&self) -> &CheckpointKey {
        &self.checkpoint
    }

    /// The current checkpoint (signed note), and the inclusion proof against it of the record
    /// of credential `id` (`None` if the log has none): what `GET /v1/log/proof/{id}` answers.
    pub(crate) fn prove(&self, id: &str) -> Result<Option<Value>, IssuerError> {
        let found = self.with_log(|log| {
            let Some((index, statement)) = log.find(id)? else { return Ok(None) };
            let size = log.len();
            Ok(Some((index, statement.to_leaf()?, log.inclusion_proof(index, size)?, size, log.root())))
        })?;
        let Some((index, leaf, proof, size, root)) = found else { return Ok(None) };
        let checkpoint = self.checkpoint.sign(size, &root).map_err(|e| LogError::Signer(e.to_string()))?;
        let receipt = receipt::receipt(&self.key, LOG_KID, size, index, &proof, &root)?;
        Ok(Some(json!({
            "credential_id": id,
            "index": index,
            "tree_size": size,
            "statement": hex::encode(&leaf),
            "statement_sha256": hex::encode(sha2::Sha256::digest(&leaf)),
            "leaf_hash": hex::encode(leaf_hash(&leaf)),
            "inclusion_proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
            "checkpoint": checkpoint,
            "receipt": hex::encode(receipt),
        })))
    }

    /// The RFC 9162 consistency proof from the tree of `first` leaves to the tree of `second`.
    pub(crate) fn consistency(&self, first: u64, second: u64) -> Result<Value, IssuerError> {
        let proof = self.with_log(|log| log.consistency_proof(first, second))?;
        Ok(json!({
            "first": first,
            "second": second,
            "consistency_proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
        }))
    }

    /// The checkpoint of the log as it is now.
    pub(crate) fn current_checkpoint(&self) -> Result<String, IssuerError> {
        let (size, root) = self.with_log(|log| Ok((log.len(), log.root())))?;
        Ok(self.checkpoint.sign(size, &root).map_err(|e| LogError::Signer(e.to_string()))?)
    }
}

/// Mechanism D, the owner's step: the record of the certificate `serial_hex` the CA makes for a
/// key the Key Store holds for `workload_id` at `owner`'s request. No evidence was appraised
/// (`evidence_sha384` empty, status `none`); the criteria name the owner.
pub(crate) fn provisioning(
    workload_id: &str,
    serial_hex: &str,
    owner: &str,
    policy_version: &str,
    now: SystemTime,
) -> ProvenanceRecord {
    let criteria = BTreeMap::from([
        ("mechanism".to_string(), "d".to_string()),
        ("step".to_string(), "owner-provisioning".to_string()),
        ("provisioned_by".to_string(), owner.to_string()),
    ]);
    ProvenanceRecord {
        workload_id: workload_id.into(),
        credential_kind: "x509".into(),
        credential_id: serial_hex.into(),
        evidence_sha384: String::new(),
        decision: VerifierDecision { status: "none".into(), verifier: VERIFIER_BUILD.into(), criteria },
        policy_version: policy_version.into(),
        issued_at: crate::jose::unix_seconds(now),
    }
}

/// The binding a statement's record names: `None` when it names none; `Some(Err(kid))` when the
/// record is encrypted to the auditor key `kid`.
pub(crate) fn binding_in(statement: &SignedStatement) -> Option<Result<Binding, Vec<u8>>> {
    let Some(record) = statement.record() else {
        return Some(Err(statement.sealed_to().unwrap_or_default().to_vec()));
    };
    let binding = record.decision.criteria.get("binding").and_then(|text| serde_json::from_str(text).ok());
    binding.map(Ok)
}

/// Seconds a record's `issued_at` may differ from the log's clock.
const CLOCK_SKEW: u64 = 300;

/// A record a Credential Authority of another process asks to have signed, checked for the
/// form the issuer's own records have: a credential of this trust domain (`issuer` is
/// `spiffe://<trust domain>/twi-issuer`), of kind `x509` (a hex serial) or `wit`, the evidence's
/// SHA-384 (or none, for mechanism D's provisioning), a decision, and the time now.
fn well_formed(record: &ProvenanceRecord, issuer: &str, now: SystemTime) -> Result<(), String> {
    let domain = issuer.trim_end_matches("twi-issuer");
    let id = &record.credential_id;
    let named = |n: &str| !n.is_empty() && !n.contains(char::is_whitespace);
    if !record.workload_id.strip_prefix(domain).is_some_and(named) {
        return Err(format!("workload_id {:?} is not a workload of {domain}", record.workload_id));
    }
    let id_ok = match record.credential_kind.as_str() {
        "x509" => !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "wit" => {
            !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        }
        other => return Err(format!("credential_kind {other:?} is neither x509 nor wit")),
    };
    if !id_ok {
        return Err(format!("credential_id {id:?} is not an X.509 serial (hex) or a WIT jti (base64url)"));
    }
    let evidence = &record.evidence_sha384;
    let sha384 = evidence.len() == 96 && evidence.bytes().all(|b| b.is_ascii_hexdigit());
    if !(evidence.is_empty() || sha384) {
        return Err("evidence_sha384 is neither empty nor 96 hex digits".into());
    }
    if record.decision.status.is_empty() || record.decision.verifier.is_empty() || record.policy_version.is_empty() {
        return Err("the decision's status and verifier, and the policy version, must be given".into());
    }
    if crate::jose::unix_seconds(now).abs_diff(record.issued_at) > CLOCK_SKEW {
        return Err(format!("issued_at {} is more than {CLOCK_SKEW} s from this log's clock", record.issued_at));
    }
    Ok(())
}

/// A log whose first record is bare JSON was written before records became signed statements:
/// its tree heads sign those bytes, so the records cannot be re-signed in place. It is refused
/// with what to do, rather than extended with leaves of another format.
fn refuse_legacy(log: &ProvenanceLog, path: &Path) -> Result<(), IssuerError> {
    if log.is_empty() {
        return Ok(());
    }
    match log.record(0) {
        Ok(_) => Ok(()),
        // A stored row the signed heads cover that does not read as a statement: the old format.
        Err(LogError::Encode(_)) => Err(IssuerError::State(
            path.to_path_buf(),
            "this provenance log holds records in the format before signed statements (bare JSON leaves); its signed heads cover those bytes, so it cannot be converted: `twi log audit` still checks it; move it aside (e.g. to provenance-v1.sqlite) to start a new log of COSE signed statements".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// The records of one issuance: the same decision and criteria for each credential.
pub(crate) fn records(issuance: &Issuance<'_>, now: SystemTime) -> Result<Vec<ProvenanceRecord>, IssuerError> {
    let admission = issuance.admission;
    let appraisal = issuance.appraisal;
    let binding = serde_json::to_string(&admission.binding).map_err(|e| LogError::Encode(e.to_string()))?;
    let mut criteria = BTreeMap::from([
        ("platform".to_string(), platform_name(appraisal.platform).to_string()),
        ("measurement".to_string(), hex::encode(appraisal.verified.measurement)),
        ("reference".to_string(), admission.reference.label.clone()),
        ("freshness".to_string(), admission.freshness.name().to_string()),
        ("fidelity".to_string(), admission.fidelity.name().to_string()),
        ("stickiness".to_string(), admission.stickiness.name().to_string()),
        ("mechanism".to_string(), issuance.mechanism.name().to_string()),
        ("binding".to_string(), binding),
    ]);
    // Workload Provenance: the SBOM the credential carries, and the demands it met.
    if let Some(provenance) = &admission.provenance {
        criteria.insert("sbom".to_string(), provenance.sbom.to_string());
        let checks = serde_json::to_string(&provenance.checks).map_err(|e| LogError::Encode(e.to_string()))?;
        criteria.insert("provenance".to_string(), checks);
    }
    let issued_at = crate::jose::unix_seconds(now);
    let status = admitted_vector(appraisal.platform).worst();
    Ok(issuance
        .credentials
        .iter()
        .map(|(kind, id)| ProvenanceRecord {
            workload_id: admission.workload_id.clone(),
            credential_kind: (*kind).into(),
            credential_id: id.clone(),
            evidence_sha384: hex::encode(appraisal.verified.evidence_sha384),
            decision: VerifierDecision {
                status: status.name().into(),
                verifier: VERIFIER_BUILD.into(),
                criteria: criteria.clone(),
            },
            policy_version: admission.policy_version.clone(),
            issued_at,
        })
        .collect())
}
