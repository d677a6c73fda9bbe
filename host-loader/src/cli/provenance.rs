//! `twi provenance show CREDENTIAL`: what a credential was issued on, from the issuer's
//! provenance log and the SBOM store (Workload and Credential Provenance, RATS-for-TWI §5.3).
//!
//! The credential (a PEM certificate, or a WIT file) names its record: the X.509 serial or the
//! WIT `jti`, as `twi log prove` looks it up. The record, read from the issuer state's
//! `provenance.sqlite`, says which workload it is and which decisions led to it (the
//! Verifier's status, the reference entry, the levels, the provenance demands met); its
//! inclusion in the tree the log key signed is checked (RFC 9162). The SBOM the record names —
//! the one the measured launch manifest names — is read from the store beside the policy
//! (`--policy`, or `--sboms`), its digest checked, and its components listed: what the workload
//! was made of. The credential's own SBOM claim (X.509 extension or WIT claim) must agree with
//! the record.
//!
//! A record the issuer encrypted to an auditor (`--auditor-key`) is decrypted with
//! `--auditor-key-private`; without it only what is in clear is shown — the credential id, the
//! auditor key the record is encrypted to, and its verified inclusion — and the SBOM agreement
//! cannot be checked.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::{Value, json};
use twi_issuer::oids::Oids;
use twi_issuer::policy::{Sbom, SbomDigest, sbom_store_of};

use super::credential::Presented;
use twi_issuer::provenance::{ProvenanceLog, ProvenanceRecord, SignedStatement, leaf_hash, verify_inclusion};

#[derive(Subcommand, Debug)]
pub enum ProvenanceCommand {
    /// Show what CREDENTIAL was issued on: its workload, the decisions that led to it, what the
    /// workload was made of (the components of its SBOM) and whether its record is in the log.
    Show {
        /// The credential: a PEM certificate, or a file holding a WIT (compact JWS).
        #[arg(value_name = "CREDENTIAL")]
        credential: PathBuf,
        /// The appraisal policy file whose sboms/ directory stores the image's SBOM.
        #[arg(long, value_name = "FILE", conflicts_with = "sboms")]
        policy: Option<PathBuf>,
        /// The SBOM store itself (a directory of sha384-HEX.cdx.json documents).
        #[arg(long, value_name = "DIR")]
        sboms: Option<PathBuf>,
        /// The log's public keys (an `issuer-jwks.json`; its `twi-log` key). Default: the
        /// state's own log key.
        #[arg(long, value_name = "FILE")]
        jwks: Option<PathBuf>,
        /// The auditor's private key (PEM, mode 0600): decrypts a record the issuer encrypted
        /// to the auditor (`--auditor-key`). Without it such a record's inclusion is still
        /// proved, and it is shown as encrypted to its key id.
        #[arg(long, value_name = "PEM")]
        auditor_key_private: Option<PathBuf>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn execute(state: &Path, command: ProvenanceCommand) -> Result<()> {
    let ProvenanceCommand::Show { credential, policy, sboms, jwks, auditor_key_private, json } = command;
    let auditor = auditor_key_private.as_deref().map(super::log::read_auditor_secret).transpose()?;
    let dir = super::issuer::issuer_dir(state);
    let presented = Presented::read(&credential, &Oids::load(&dir)?)?;
    let (index, statement, inclusion) = logged(&dir, &presented.id, jwks.as_deref())?;
    let (record, encrypted_to) = super::log::opened(&statement, auditor.as_ref(), &mut Vec::new())?;
    let inclusion =
        json!({ "index": index, "tree_size": inclusion.0, "root": hex::encode(inclusion.1), "verified": true });
    let Some(record) = record else {
        let report = json!({
            "credential": { "id": statement.credential_id(), "file": credential.display().to_string() },
            "encrypted_to": encrypted_to,
            "inclusion": inclusion,
        });
        return print_report(&report, json, sealed_text);
    };
    let named = record.decision.criteria.get("sbom").map(|d| SbomDigest::parse(d).context("the record's `sbom`"));
    let named = named.transpose()?;
    if presented.sbom != named {
        bail!(
            "{} carries SBOM {} but its record names {}: the credential and the log disagree; do not trust it",
            credential.display(),
            shown(presented.sbom.as_ref()),
            shown(named.as_ref())
        );
    }
    let store = sboms.or_else(|| policy.as_deref().map(sbom_store_of));
    let sbom = match (&named, &store) {
        (Some(digest), Some(store)) => Some(Sbom::load(store, digest).context("the workload's SBOM")?),
        _ => None,
    };
    let report = json!({
        "credential": { "kind": record.credential_kind, "id": record.credential_id, "file": credential.display().to_string() },
        "workload": record.workload_id,
        "issued_at": record.issued_at,
        "policy_version": record.policy_version,
        "evidence_sha384": record.evidence_sha384,
        "decision": { "status": record.decision.status, "verifier": record.decision.verifier, "criteria": criteria(&record) },
        "sbom": named.map(|d| d.to_string()),
        "components": sbom.as_ref().map(|s| serde_json::to_value(&s.components)).transpose()?,
        "vendor": sbom.as_ref().and_then(|s| s.vendor.clone()),
        "encrypted_to": encrypted_to,
        "inclusion": inclusion,
    });
    let store_missing = named.is_some() && store.is_none();
    print_report(&report, json, |r| text(r, store_missing))
}

/// The report as one JSON object, or as `text` makes it.
fn print_report(report: &Value, json: bool, text: impl Fn(&Value) -> String) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", text(report));
    }
    Ok(())
}

/// The report of a record encrypted to an auditor, read without the auditor's key.
fn sealed_text(report: &Value) -> String {
    let s = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    let credential = &report["credential"];
    let inclusion = &report["inclusion"];
    format!(
        "credential: {} ({})\nrecord: encrypted to auditor key {}: give --auditor-key-private FILE to read what it says\nlog: record {} is included in the signed tree of {} records (root {}): verified under the log key\n",
        s(&credential["id"]),
        s(&credential["file"]),
        s(&report["encrypted_to"]),
        inclusion["index"],
        inclusion["tree_size"],
        s(&inclusion["root"])
    )
}

fn shown(digest: Option<&SbomDigest>) -> String {
    digest.map_or_else(|| "none".to_string(), ToString::to_string)
}

/// The record's criteria, with the JSON-valued ones (`binding`, `provenance`) as JSON.
fn criteria(record: &ProvenanceRecord) -> Value {
    let map = record.decision.criteria.iter().map(|(name, value)| {
        let parsed = match name.as_str() {
            "binding" | "provenance" => serde_json::from_str(value).unwrap_or_else(|_| value.clone().into()),
            _ => Value::String(value.clone()),
        };
        (name.clone(), parsed)
    });
    Value::Object(map.collect())
}

/// The signed statement of credential `id` in the state's log (its signature verified), its
/// index, and the signed tree head (size, root) its inclusion proof was checked against.
fn logged(dir: &Path, id: &str, jwks: Option<&Path>) -> Result<(u64, SignedStatement, (u64, [u8; 32]))> {
    let path = dir.join("provenance.sqlite");
    if !path.is_file() {
        bail!("{} does not exist: give the --state of the issuer that issued the credential", path.display());
    }
    let key = match jwks {
        Some(file) => twi_issuer::provenance::audit::key_in_jwks(
            &std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?,
        )?,
        None => twi_issuer::provenance::audit::state_log_key(dir)?,
    };
    let log = ProvenanceLog::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let Some((index, statement)) = log.find(id)? else {
        bail!("{} has no record of credential {id}: was it issued by this state's issuer?", path.display());
    };
    let head = log.latest_tree_head()?.context("the log has no signed tree head")?;
    head.verify(&key).context("the log's signed tree head")?;
    let proof = log.inclusion_proof(index, head.size)?;
    verify_inclusion(&leaf_hash(&statement.bytes), index, head.size, &proof, &head.root)
        .with_context(|| format!("the record of {id} is not in the signed tree: do not trust this log"))?;
    let statement = SignedStatement::verify(&statement.bytes, &key).context("the record's signed statement")?;
    if statement.credential_id() != id {
        bail!("the log's statement is about {:?}, not {id:?}: do not trust this log", statement.credential_id());
    }
    Ok((index, statement, (head.size, head.root)))
}

/// The report as text.
fn text(report: &Value, store_missing: bool) -> String {
    let s = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    let credential = &report["credential"];
    let mut out =
        format!("credential: {} {} ({})\n", s(&credential["kind"]), s(&credential["id"]), s(&credential["file"]));
    out.push_str(&format!("workload: {}\n", s(&report["workload"])));
    out.push_str(&format!(
        "issued at: {} (Unix seconds), under policy version {}\n",
        report["issued_at"],
        s(&report["policy_version"])
    ));
    let decision = &report["decision"];
    out.push_str(&format!("decisions: verifier {} says {}\n", s(&decision["verifier"]), s(&decision["status"])));
    for (name, value) in decision["criteria"].as_object().into_iter().flatten() {
        if name == "provenance" {
            for check in value.as_array().into_iter().flatten() {
                out.push_str(&format!("  provenance: {}\n", s(check)));
            }
        } else {
            out.push_str(&format!("  {name}: {}\n", s(value)));
        }
    }
    match (report["sbom"].as_str(), report["components"].as_array()) {
        (None, _) => out.push_str("made of: unknown (the admitted image names no SBOM)\n"),
        (Some(digest), None) if store_missing => out.push_str(&format!(
            "made of: the SBOM {digest} (give --policy FILE or --sboms DIR to list its components)\n"
        )),
        (Some(digest), components) => {
            let list = components.cloned().unwrap_or_default();
            let vendor = report["vendor"].as_str().map(|v| format!(", supplied by {v}")).unwrap_or_default();
            out.push_str(&format!("made of ({} components, SBOM {digest}{vendor}):\n", list.len()));
            for c in &list {
                let purl = c["purl"].as_str().map(|p| format!(" {p}")).unwrap_or_default();
                out.push_str(&format!("  {} {} {}{purl}\n", s(&c["kind"]), s(&c["name"]), s(&c["version"])));
            }
        }
    }
    let inclusion = &report["inclusion"];
    out.push_str(&format!(
        "log: record {} is included in the signed tree of {} records (root {}): verified under the log key\n",
        inclusion["index"],
        inclusion["tree_size"],
        s(&inclusion["root"])
    ));
    out
}
