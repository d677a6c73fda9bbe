//! `twi log`: the provenance log as anyone checks it, from the issuer's public endpoints.
//!
//! `twi log prove ID` fetches the record of credential ID (an X.509 serial in hex, or a WIT
//! jti) with its RFC 9162 inclusion proof and the checkpoint it proves against, verifies the
//! checkpoint (a C2SP signed note) under the log's verifier key, and the proof against the
//! checkpoint's root: the record is in the log every witness of that checkpoint sees. Pin the
//! key with `--vkey` (it is in `provenance.json` of any run, and in STATE/issuer/checkpoint.vkey);
//! without it the key the issuer serves is taken, and the output says so.
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
use twi_issuer::provenance::checkpoint;
use twi_issuer::provenance::{Hash, leaf_hash, verify_consistency, verify_inclusion};

use crate::remote::{ClientTls, RemoteIssuer};

#[derive(Subcommand, Debug)]
pub enum LogCommand {
    /// Prove that the issuer logged credential ID: fetch its record and inclusion proof, verify
    /// them against a signed checkpoint, print the record (JSON).
    Prove {
        /// The credential: an X.509 serial (hex) or a WIT jti.
        #[arg(value_name = "ID")]
        id: String,
        /// The issuer (`twi serve`) at this URL (https://HOST:PORT; http:// to loopback only).
        #[arg(long, value_name = "URL")]
        issuer_url: String,
        /// The CA (PEM) the service's TLS certificate chains to (its STATE/issuer/issuer-ca.pem).
        #[arg(long, value_name = "PEM")]
        issuer_ca: Option<std::path::PathBuf>,
        /// The log's checkpoint verifier key (`<origin>+<id>+<key>`), or a file holding it.
        #[arg(long, value_name = "VKEY")]
        vkey: Option<String>,
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

pub fn execute(state: &Path, command: LogCommand) -> Result<()> {
    match command {
        LogCommand::Prove { id, issuer_url, issuer_ca, vkey } => prove(&id, &issuer_url, issuer_ca, vkey),
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

fn prove(id: &str, issuer_url: &str, issuer_ca: Option<PathBuf>, vkey: Option<String>) -> Result<()> {
    let client = RemoteIssuer::new(issuer_url, &ClientTls { ca: issuer_ca, client: None })?;
    let (vkey, pinned) = checkpoint_vkey(&client, vkey)?;
    let vkey = vkey.as_str();
    let id = id.to_string();
    let proof = client.log_proof(&id)?;
    let field = |name: &str| proof.get(name).with_context(|| format!("the proof of {id} has no `{name}`"));
    let note = field("checkpoint")?.as_str().context("`checkpoint` is not text")?;
    let verified = checkpoint::verify(note, vkey).context("the log's checkpoint")?;
    let size = field("tree_size")?.as_u64().context("`tree_size` is not a number")?;
    let index = field("index")?.as_u64().context("`index` is not a number")?;
    let leaf = field("leaf")?.as_str().context("`leaf` is not text")?;
    if size != verified.size {
        bail!("the proof is for a tree of {size} records, the checkpoint for {}: ask again", verified.size);
    }
    let path = hashes(field("inclusion_proof")?, "inclusion proof")?;
    verify_inclusion(&leaf_hash(leaf.as_bytes()), index, size, &path, &verified.root)
        .with_context(|| format!("the record of {id} is not in the checkpoint's tree: do not trust this log"))?;
    let record: serde_json::Value = serde_json::from_str(leaf).context("the record is not JSON")?;
    eprintln!(
        "twi: credential {id} is record {index} of {size} in log {} (checkpoint verified under {}{})",
        verified.origin,
        vkey,
        if pinned { "" } else { ", the key the issuer serves: pin it with --vkey" }
    );
    println!(
        "{}",
        serde_json::to_string_pretty(
            &serde_json::json!({ "index": index, "tree_size": size, "checkpoint": note, "record": record })
        )?
    );
    Ok(())
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
        Some(path) => twi_issuer::provenance::audit::key_in_jwks(
            &std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        )
        .with_context(|| format!("{}", path.display()))?,
        None => twi_issuer::provenance::audit::state_log_key(&dir)?,
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
