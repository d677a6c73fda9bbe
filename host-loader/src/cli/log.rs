//! `twi log`: the provenance log as anyone checks it, from the issuer's public endpoints.
//!
//! `twi log prove ID` fetches the record of credential ID (an X.509 serial in hex, or a WIT
//! jti) with its RFC 9162 inclusion proof and the checkpoint it proves against, verifies the
//! checkpoint (a C2SP signed note) under the log's verifier key, and the proof against the
//! checkpoint's root: the record is in the log every witness of that checkpoint sees. Pin the
//! key with `--vkey` (it is in `provenance.json` of any run, and in STATE/issuer/checkpoint.vkey);
//! without it the key the issuer serves is taken, and the output says so.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use twi_issuer::provenance::checkpoint;
use twi_issuer::provenance::{leaf_hash, verify_inclusion};

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
}

pub fn execute(command: LogCommand) -> Result<()> {
    let LogCommand::Prove { id, issuer_url, issuer_ca, vkey } = command;
    let client = RemoteIssuer::new(&issuer_url, &ClientTls { ca: issuer_ca, client: None })?;
    let (vkey, pinned) = match vkey {
        Some(v) if std::path::Path::new(&v).is_file() => {
            (std::fs::read_to_string(&v).with_context(|| format!("reading --vkey {v}"))?, true)
        }
        Some(v) => (v, true),
        None => (client.log_vkey()?, false),
    };
    let vkey = vkey.trim();
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
    let path = field("inclusion_proof")?
        .as_array()
        .context("`inclusion_proof` is not an array")?
        .iter()
        .map(|h| {
            let bytes = hex::decode(h.as_str().unwrap_or_default()).ok();
            bytes.and_then(|b| <[u8; 32]>::try_from(b).ok()).context("an inclusion proof hash is not 32 bytes of hex")
        })
        .collect::<Result<Vec<_>>>()?;
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
