//! `twi log`: the provenance log as anyone checks it, from the issuer's public endpoints.
//!
//! `twi log prove CREDENTIAL --issuer-url URL` (a certificate or WIT file, or its id: an X.509
//! serial in hex, or a WIT jti) fetches the credential's record — a SCITT signed statement —
//! with its RFC 9162 inclusion proof, the checkpoint it proves against and its RFC 9942 COSE
//! receipt, and verifies: the checkpoint (a C2SP signed note) under the log's verifier key, the
//! proof against the checkpoint's root (the record is in the log every witness of that
//! checkpoint sees), the receipt and the statement under the log key, the statement being about
//! this credential, and — given the credential itself — that the credential names this very
//! statement (its log-entry extension or claim: the log's origin and the statement's SHA-256).
//! Pin the keys with `--vkey` (in `provenance.json` of any run, and STATE/issuer/checkpoint.vkey)
//! and `--jwks`; without them the keys the issuer serves are taken, and the output says so.
//! Without `--issuer-url` the record is proved from the state's own log, against its last signed
//! tree head.
//! A record the issuer encrypted to an auditor (`--auditor-key`) is proved all the same; it is
//! printed only when `--auditor-key-private` decrypts it (else `encrypted_to` names the key).
//!
//! `twi log consistency OLD [NEW]` checks that the log only grew between two checkpoints an
//! auditor kept (NEW: the issuer's current one): both verify under the pinned key, and the
//! issuer's RFC 9162 consistency proof leads from OLD's root to NEW's.
//!
//! `twi log audit` reads an issuer state's `provenance.sqlite` (or, `--database URL`, the
//! replicas' PostgreSQL database) itself: every record re-hashed,
//! the tree recomputed, every signed tree head checked under the log key (`--jwks`, the
//! `twi-log` key of an `issuer-jwks.json`; else the state's own log key), progress on stderr.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use twi_issuer::oids::Oids;
use twi_issuer::provenance::{AuditorSecret, ProvenanceRecord, sealed};
use twi_issuer::provenance::{Hash, ProvenanceLog, SignedStatement, leaf_hash, verify_consistency, verify_inclusion};
use twi_issuer::provenance::{audit, checkpoint, receipt};

use super::credential::Presented;

use crate::remote::{ClientTls, RemoteIssuer};

#[derive(Subcommand, Debug)]
pub enum LogCommand {
    /// Prove that the issuer logged a credential: fetch its record (a signed statement), the
    /// inclusion proof and the COSE receipt, verify them against a signed checkpoint and the log
    /// key, and that the credential names this very statement; print the record (JSON).
    Prove {
        /// The credential: a file (a PEM certificate or a WIT), or its id (an X.509 serial in
        /// hex, or a WIT jti). A jti may begin with '-' (base64url): it is taken as the id.
        #[arg(value_name = "CREDENTIAL|ID", allow_hyphen_values = true)]
        credential: String,
        /// The issuer (`twi serve`) at this URL (https://HOST:PORT; http:// to loopback only).
        /// Without it, the proof is taken from the state's own log (STATE/issuer/provenance.sqlite).
        #[arg(long, value_name = "URL")]
        issuer_url: Option<String>,
        /// The CA (PEM) the service's TLS certificate chains to (its STATE/issuer/issuer-ca.pem).
        #[arg(long, value_name = "PEM")]
        issuer_ca: Option<std::path::PathBuf>,
        /// The log's checkpoint verifier key (`<origin>+<id>+<key>`), or a file holding it.
        #[arg(long, value_name = "VKEY")]
        vkey: Option<String>,
        /// The log's public keys (an `issuer-jwks.json`; its `twi-log` key signs statements,
        /// receipts and tree heads). Default: the key the issuer serves, or offline the state's.
        #[arg(long, value_name = "FILE")]
        jwks: Option<PathBuf>,
        /// The auditor's private key (PEM, mode 0600): decrypts a record the issuer encrypted
        /// to the auditor (`--auditor-key`). Without it such a record is proved all the same
        /// and shown as encrypted to its key id.
        #[arg(long, value_name = "PEM")]
        auditor_key_private: Option<PathBuf>,
        #[command(flatten)]
        arc: OidArcArg,
    },
    /// Check that the log only grew from checkpoint OLD to checkpoint NEW (files holding the
    /// signed notes; NEW: the issuer's current checkpoint).
    Consistency {
        /// The older checkpoint: a file holding its signed note (e.g. `checkpoint` of a run's
        /// provenance.json).
        #[arg(value_name = "OLD")]
        old: PathBuf,
        /// The newer checkpoint (a file); default: the one the issuer publishes now.
        #[arg(value_name = "NEW")]
        new: Option<PathBuf>,
        /// The issuer (`twi serve`) at this URL.
        #[arg(long, value_name = "URL")]
        issuer_url: String,
        /// The CA (PEM) the service's TLS certificate chains to.
        #[arg(long, value_name = "PEM")]
        issuer_ca: Option<PathBuf>,
        /// The log's checkpoint verifier key, or a file holding it.
        #[arg(long, value_name = "VKEY")]
        vkey: Option<String>,
    },
    /// Audit the issuer state's log (STATE/issuer/provenance.sqlite): re-hash every record,
    /// recompute the tree, check every signed tree head.
    Audit {
        /// The log's public keys (an `issuer-jwks.json`; its `twi-log` key). Default: the
        /// state's own log key.
        #[arg(long, value_name = "FILE")]
        jwks: Option<PathBuf>,
        /// Audit the log the replicas keep in this PostgreSQL database (the URL `twi serve
        /// --database` was given) instead of STATE/issuer/provenance.sqlite.
        #[arg(long, value_name = "URL")]
        database: Option<String>,
    },
}

/// The OID arc a credential's extensions and claims are read under.
#[derive(clap::Args, Debug)]
pub struct OidArcArg {
    /// The OID arc the issuer issues under (its STATE/issuer/oid-arc), for an issuer with its
    /// own arc: the credential's log-entry and SBOM extensions (or WIT claims) are read under
    /// it. Default: this state's arc, else the project's default arc.
    #[arg(long = "oid-arc", value_name = "OID")]
    pub oid_arc: Option<String>,
}

impl OidArcArg {
    /// `--oid-arc`'s OIDs, else the state's.
    pub fn oids(&self, state: &Path) -> Result<Oids> {
        match &self.oid_arc {
            Some(arc) => Oids::under(arc).context("--oid-arc"),
            None => Ok(Oids::load(&super::issuer::issuer_dir(state))?),
        }
    }
}

pub fn execute(state: &Path, command: LogCommand) -> Result<()> {
    match command {
        LogCommand::Prove { credential, issuer_url, issuer_ca, vkey, jwks, auditor_key_private, arc } => {
            let auditor = auditor_key_private.as_deref().map(read_auditor_secret).transpose()?;
            let presented = presented(state, &credential, &arc)?;
            let found = match issuer_url {
                Some(url) => {
                    let client = RemoteIssuer::new(&url, &ClientTls { ca: issuer_ca, client: None })?;
                    fetched(&client, &presented.id, vkey, jwks.as_deref())?
                }
                None => offline(state, &presented.id, jwks.as_deref())?,
            };
            prove(&presented, found, auditor.as_ref())
        }
        LogCommand::Consistency { old, new, issuer_url, issuer_ca, vkey } => {
            let client = RemoteIssuer::new(&issuer_url, &ClientTls { ca: issuer_ca, client: None })?;
            consistency(&client, &old, new.as_deref(), vkey)
        }
        LogCommand::Audit { jwks, database } => audit(state, jwks.as_deref(), database.as_deref()),
    }
}

/// The checkpoint verifier key: `--vkey` (the key, or a file holding it), else the one the
/// issuer serves; and whether it was pinned.
fn checkpoint_vkey(client: &RemoteIssuer, vkey: Option<String>) -> Result<(String, bool)> {
    let (vkey, pinned) = match vkey {
        Some(v) if Path::new(&v).is_file() => {
            (std::fs::read_to_string(&v).with_context(|| format!("reading --vkey {v}"))?, true)
        }
        Some(v) => (v, true),
        None => (client.log_vkey()?, false),
    };
    Ok((vkey.trim().to_string(), pinned))
}

/// The credential `target` names: a file holding it (read under `arc`), or its id.
fn presented(state: &Path, target: &str, arc: &OidArcArg) -> Result<Presented> {
    if Path::new(target).is_file() {
        return Presented::read(Path::new(target), &arc.oids(state)?);
    }
    Ok(Presented { id: target.to_string(), sbom: None, entry: None, arc: None })
}

/// A record found in the log with what proves it: the statement (the leaf), where it is, the
/// tree it was proved in (its size and root), the key it must verify under, and what was
/// checked on the way.
pub(super) struct Found {
    pub statement: Vec<u8>,
    pub index: u64,
    pub size: u64,
    pub root: Hash,
    pub origin: String,
    pub log_key: p384::ecdsa::VerifyingKey,
    pub checked: Vec<String>,
    pub checkpoint: Option<String>,
}

/// The record of `id` from the issuer's HTTP endpoint: the checkpoint verified under the
/// checkpoint key, the inclusion proof against its root, and the COSE receipt under the log key.
pub(super) fn fetched(client: &RemoteIssuer, id: &str, vkey: Option<String>, jwks: Option<&Path>) -> Result<Found> {
    let (vkey, pinned) = checkpoint_vkey(client, vkey)?;
    let (log_key, key_source) = match jwks {
        Some(path) => (jwks_log_key(path)?, format!("the `twi-log` key of {}", path.display())),
        None => {
            let served = serde_json::to_string(&client.keys()?)?;
            let key = audit::key_in_jwks(&served).context("the issuer's /v1/keys")?;
            (key, "the `twi-log` key the issuer serves (pin it with --jwks)".to_string())
        }
    };
    let proof = client.log_proof(id)?;
    let field = |name: &str| proof.get(name).with_context(|| format!("the proof of {id} has no `{name}`"));
    let text = |name: &str| field(name)?.as_str().with_context(|| format!("`{name}` is not text"));
    let note = text("checkpoint")?;
    let verified = checkpoint::verify(note, &vkey).context("the log's checkpoint")?;
    let (size, index) = (field("tree_size")?.as_u64(), field("index")?.as_u64());
    let (size, index) = (size.context("`tree_size` is not a number")?, index.context("`index` is not a number")?);
    let statement = hex::decode(text("statement")?).context("`statement` is not hex")?;
    if size != verified.size {
        bail!("the proof is for a tree of {size} records, the checkpoint for {}: ask again", verified.size);
    }
    let path = hashes(field("inclusion_proof")?, "inclusion proof")?;
    verify_inclusion(&leaf_hash(&statement), index, size, &path, &verified.root)
        .with_context(|| format!("the record of {id} is not in the checkpoint's tree: do not trust this log"))?;
    let receipt = hex::decode(text("receipt")?).context("`receipt` is not hex")?;
    let proved = receipt::verify(&receipt, &statement, &log_key).context("the record's COSE receipt")?;
    if (proved.size, proved.index, proved.root) != (size, index, verified.root) {
        bail!("the receipt proves another tree or leaf than the checkpoint's: do not trust this log");
    }
    let pinned = if pinned { "" } else { ", the key the issuer serves: pin it with --vkey" };
    let checked = vec![
        format!("checkpoint of {} records verified under {vkey}{pinned}", verified.size),
        format!("RFC 9162 inclusion of leaf {index} in the checkpoint's root"),
        format!("RFC 9942 COSE receipt (leaf {index} of {size}) verified under {key_source}"),
    ];
    let checkpoint = Some(note.to_string());
    let (root, origin) = (verified.root, verified.origin);
    Ok(Found { statement, index, size, root, origin, log_key, checked, checkpoint })
}

/// The record of `id` from the state's own log: its last signed tree head verified under the log
/// key, and the inclusion proof against it.
pub(super) fn offline(state: &Path, id: &str, jwks: Option<&Path>) -> Result<Found> {
    let dir = super::issuer::issuer_dir(state);
    let path = dir.join("provenance.sqlite");
    if !path.is_file() {
        bail!("{} does not exist: give --issuer-url, or the --state of the issuer that issued it", path.display());
    }
    let (log_key, key_source) = match jwks {
        Some(file) => (jwks_log_key(file)?, format!("the `twi-log` key of {}", file.display())),
        None => (audit::state_log_key(&dir)?, format!("the state's log key ({})", dir.join("log-key.pem").display())),
    };
    let log = ProvenanceLog::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let Some((index, statement)) = log.find(id)? else {
        bail!("{} has no record of credential {id:?}: was it issued by this state's issuer?", path.display());
    };
    let head = log.latest_tree_head()?.context("the log has no signed tree head")?;
    head.verify(&log_key).context("the log's signed tree head")?;
    let proof = log.inclusion_proof(index, head.size)?;
    verify_inclusion(&leaf_hash(&statement.bytes), index, head.size, &proof, &head.root)
        .with_context(|| format!("the record of {id} is not in the signed tree: do not trust this log"))?;
    let vkey = std::fs::read_to_string(dir.join("checkpoint.vkey")).context("the state's checkpoint.vkey")?;
    let origin = vkey.split('+').next().unwrap_or_default().to_string();
    let checked = vec![
        format!("signed tree head of {} records verified under {key_source}", head.size),
        format!("RFC 9162 inclusion of leaf {index} in its root"),
    ];
    let (size, root) = (head.size, head.root);
    Ok(Found { statement: statement.bytes, index, size, root, origin, log_key, checked, checkpoint: None })
}

/// The statement of a record proved in the log, checked and printed with what was checked.
fn prove(presented: &Presented, found: Found, auditor: Option<&AuditorSecret>) -> Result<()> {
    let mut checked = found.checked.clone();
    let statement = statement_of(presented, &found, &mut checked)?;
    let (record, encrypted_to) = opened(&statement, auditor, &mut checked)?;
    eprintln!("twi: credential {} is record {} of {} in log {}:", presented.id, found.index, found.size, found.origin);
    for line in &checked {
        eprintln!("twi:   ok {line}");
    }
    let answer = serde_json::json!({
        "index": found.index,
        "tree_size": found.size,
        "log": found.origin,
        "checkpoint": found.checkpoint,
        "statement_sha256": hex::encode(statement.sha256()),
        "checked": checked,
        "record": record,
        "encrypted_to": encrypted_to,
    });
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}

/// The signed statement of a record `found` in the log: its signature under the log key, that
/// it is about the credential, and that the credential names it (adding each to `checked`).
pub(super) fn statement_of(presented: &Presented, found: &Found, checked: &mut Vec<String>) -> Result<SignedStatement> {
    let id = &presented.id;
    let statement =
        SignedStatement::verify(&found.statement, &found.log_key).context("the record's signed statement")?;
    if statement.credential_id() != id {
        bail!("the log's statement is about {:?}, not {id:?}: do not trust this log", statement.credential_id());
    }
    checked.push(format!(
        "SCITT signed statement (COSE_Sign1, iss {}, sub {id}) verified under the log key",
        statement.issuer
    ));
    let sha256 = statement.sha256();
    match &presented.entry {
        Some(entry) if entry.statement_sha256 != sha256 || entry.origin != found.origin => bail!(
            "the credential names statement {} in log {}, but the log holds {} in {} for it: the credential and the log disagree; do not trust it",
            hex::encode(entry.statement_sha256),
            entry.origin,
            hex::encode(sha256),
            found.origin
        ),
        Some(entry) => checked.push(format!(
            "the credential names this statement (SHA-256 {}) in log {}",
            hex::encode(entry.statement_sha256),
            entry.origin
        )),
        None => match &presented.arc {
            None => checked.push("the credential itself was not given (only its id): nothing to match".into()),
            Some(arc) => checked.push(format!(
                "the credential names no log entry under OID arc {arc}: issued before records were signed statements, or under the issuer's own arc (give it with --oid-arc)"
            )),
        },
    }
    Ok(statement)
}

/// The auditor's private key of `--auditor-key-private` (a key file: 0600).
pub fn read_auditor_secret(path: &Path) -> Result<AuditorSecret> {
    AuditorSecret::load(path).context("--auditor-key-private")
}

/// The record of a verified statement: in clear, decrypted with the auditor's key, or — sealed
/// and no key given — none, with the key id it is encrypted to.
pub fn opened(
    statement: &SignedStatement,
    auditor: Option<&AuditorSecret>,
    checked: &mut Vec<String>,
) -> Result<(Option<ProvenanceRecord>, Option<String>)> {
    let Some(kid) = statement.sealed_to().map(sealed::shown_kid) else {
        return Ok((statement.record().cloned(), None));
    };
    let Some(auditor) = auditor else {
        checked.push(format!("the record is encrypted to auditor key {kid}: give --auditor-key-private to read it"));
        return Ok((None, Some(kid)));
    };
    let record = statement.open(auditor).context("decrypting the record with --auditor-key-private")?;
    checked.push(format!("the record decrypted with auditor key {kid} and is about this credential"));
    Ok((Some(record), Some(kid)))
}

/// The `twi-log` key of a JWKS file.
fn jwks_log_key(path: &Path) -> Result<p384::ecdsa::VerifyingKey> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    audit::key_in_jwks(&text).with_context(|| format!("{}", path.display()))
}

/// A JSON array of hex SHA-256 hashes.
fn hashes(value: &serde_json::Value, what: &str) -> Result<Vec<Hash>> {
    let array = value.as_array().with_context(|| format!("the {what} is not an array"))?;
    array
        .iter()
        .map(|h| {
            let bytes = hex::decode(h.as_str().unwrap_or_default()).ok();
            bytes
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .with_context(|| format!("a {what} hash is not 32 bytes of hex"))
        })
        .collect()
}

fn consistency(client: &RemoteIssuer, old: &Path, new: Option<&Path>, vkey: Option<String>) -> Result<()> {
    let (vkey, pinned) = checkpoint_vkey(client, vkey)?;
    let read = |path: &Path| std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()));
    let old_note = read(old)?;
    let new_note = match new {
        Some(path) => read(path)?,
        None => client.log_checkpoint()?,
    };
    let first = checkpoint::verify(&old_note, &vkey).with_context(|| format!("checkpoint {}", old.display()))?;
    let second = checkpoint::verify(&new_note, &vkey).context("the newer checkpoint")?;
    if first.origin != second.origin {
        bail!("the checkpoints are of two logs ({} and {})", first.origin, second.origin);
    }
    let answer = client.log_consistency(first.size, second.size)?;
    let proof = hashes(
        answer.get("consistency_proof").context("the issuer's answer has no `consistency_proof`")?,
        "consistency proof",
    )?;
    verify_consistency(first.size, second.size, &first.root, &second.root, &proof).with_context(|| {
        format!(
            "the log of {} records is not an extension of the one of {}: it was rewritten; do not trust this log",
            second.size, first.size
        )
    })?;
    eprintln!(
        "twi: log {} grew consistently from {} to {} records (checkpoints verified under {vkey}{})",
        first.origin,
        first.size,
        second.size,
        if pinned { "" } else { ", the key the issuer serves: pin it with --vkey" }
    );
    Ok(())
}

fn audit(state: &Path, jwks: Option<&Path>, database: Option<&str>) -> Result<()> {
    let dir = super::issuer::issuer_dir(state);
    let key = match jwks {
        Some(path) => jwks_log_key(path)?,
        None => audit::state_log_key(&dir)?,
    };
    let path = dir.join("provenance.sqlite");
    let started = std::time::Instant::now();
    let mut shown = started;
    let progress = move |done: u64, total: u64| {
        if shown.elapsed() >= std::time::Duration::from_secs(1) {
            eprintln!("twi: audit: {done} of {total} records re-hashed");
            shown = std::time::Instant::now();
        }
    };
    let (audited, what) = match database {
        Some(url) => {
            let pg = std::sync::Arc::new(twi_issuer::database::Postgres::connect(url)?);
            let shown = pg.shown().to_string();
            let audited = twi_issuer::provenance::audit::audit_postgres(pg, &key, progress)
                .with_context(|| format!("auditing the log in {shown}"))?;
            (audited, shown)
        }
        None => {
            let audited = twi_issuer::provenance::audit::audit(&path, &key, progress)
                .with_context(|| format!("auditing {}", path.display()))?;
            (audited, path.display().to_string())
        }
    };
    eprintln!(
        "twi: audit of {what} passed: {} records, {} signed tree heads, root {} ({:.1} s)",
        audited.records,
        audited.heads,
        hex::encode(audited.root),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
