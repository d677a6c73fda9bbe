//! `twi provenance show CREDENTIAL`: what a credential was issued on, from the issuer's
//! provenance log and the SBOM store (Workload and Credential Provenance, RATS-for-TWI §5.3).
//!
//! The credential (a PEM certificate, or a WIT file) names its record: the X.509 serial or the
//! WIT `jti`, as `twi log prove` looks it up, and proved the same way: from the service's log
//! role (`--issuer-url`: the record, its inclusion proof against a signed C2SP checkpoint, its
//! COSE receipt), from any machine, or from the issuer state's own `provenance.sqlite` against
//! its last signed tree head. The record says which workload it is and which decisions led to
//! it (the Verifier's status, the reference entry, the levels, the provenance demands met); the
//! credential must name this very statement (its log-entry extension or claim). The SBOM the
//! record names — the one the measured launch manifest names — is read from the store beside
//! the policy (`--policy`, or `--sboms`), else fetched from the log role
//! (`GET /v1/log/sbom/sha384-HEX`), its digest checked, and its components listed: what the
//! workload was made of. The credential's own SBOM claim (X.509 extension or WIT claim) must
//! agree with the record.
//!
//! A record the issuer encrypted to an auditor (`--auditor-key`) is decrypted with
//! `--auditor-key-private`; without it only what is in clear is shown — the credential id, the
//! auditor key the record is encrypted to, and its verified inclusion — and the SBOM agreement
//! cannot be checked.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::{Value, json};
use twi_issuer::policy::{ATTACHMENT_LIMIT, Sbom, SbomDigest, sbom_store_of, stored_attachment, vendor};
use twi_issuer::provenance::ProvenanceRecord;

use super::credential::Presented;
use super::log::Found;
use crate::remote::{ClientTls, RemoteIssuer};

#[derive(Subcommand, Debug)]
pub enum ProvenanceCommand {
    /// Show what CREDENTIAL was issued on: its workload, the decisions that led to it, what the
    /// workload was made of (the components of its SBOM) and whether its record is in the log.
    Show {
        /// The credential: a PEM certificate, or a file holding a WIT (compact JWS).
        #[arg(value_name = "CREDENTIAL")]
        credential: PathBuf,
        /// The issuer (`twi serve`) whose log role holds the record, at this URL
        /// (https://HOST:PORT; http:// to loopback only): the record, its inclusion proof, the
        /// signed checkpoint and the SBOM are fetched from it and verified here. Without it they
        /// are read from the state's own log (STATE/issuer/provenance.sqlite).
        #[arg(long, value_name = "URL")]
        issuer_url: Option<String>,
        /// The CA (PEM) the service's TLS certificate chains to (its STATE/issuer/issuer-ca.pem).
        #[arg(long, visible_alias = "ca", value_name = "PEM", requires = "issuer_url")]
        issuer_ca: Option<PathBuf>,
        /// The log's checkpoint verifier key (`<origin>+<id>+<key>`), or a file holding it
        /// (with --issuer-url). Default: the key the service serves.
        #[arg(long, value_name = "VKEY", requires = "issuer_url")]
        vkey: Option<String>,
        /// The appraisal policy file whose sboms/ directory stores the image's SBOM.
        #[arg(long, value_name = "FILE", conflicts_with = "sboms")]
        policy: Option<PathBuf>,
        /// The SBOM store itself (a directory of sha384-HEX.cdx.json documents).
        #[arg(long, value_name = "DIR")]
        sboms: Option<PathBuf>,
        /// The log's public keys (an `issuer-jwks.json`; its `twi-log` key). Default: the key
        /// the service serves (with --issuer-url), else the state's own log key.
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
        #[command(flatten)]
        arc: super::log::OidArcArg,
    },
}

pub fn execute(state: &Path, command: ProvenanceCommand) -> Result<()> {
    let ProvenanceCommand::Show {
        credential,
        issuer_url,
        issuer_ca,
        vkey,
        policy,
        sboms,
        jwks,
        auditor_key_private,
        json,
        arc,
    } = command;
    let auditor = auditor_key_private.as_deref().map(super::log::read_auditor_secret).transpose()?;
    let presented = Presented::read(&credential, &arc.oids(state)?)?;
    let client = issuer_url.map(|url| RemoteIssuer::new(&url, &ClientTls { ca: issuer_ca, client: None }));
    let client = client.transpose()?;
    let found = match &client {
        Some(client) => super::log::fetched(client, &presented.id, vkey, jwks.as_deref())?,
        None => super::log::offline(state, &presented.id, jwks.as_deref())?,
    };
    let mut checked = found.checked.clone();
    let statement = super::log::statement_of(&presented, &found, &mut checked)?;
    let (record, encrypted_to) = super::log::opened(&statement, auditor.as_ref(), &mut checked)?;
    let inclusion = inclusion(&found, &checked);
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
            "{} carries SBOM {} but its record names {}: the credential and the log disagree; do not trust it{}",
            credential.display(),
            shown(presented.sbom.as_ref()),
            shown(named.as_ref()),
            if presented.entry.is_none() {
                " (or the issuer issues under its own OID arc: give it with --oid-arc)"
            } else {
                ""
            }
        );
    }
    let store = sboms.or_else(|| policy.as_deref().map(sbom_store_of));
    let sbom = named.as_ref().map(|digest| sbom_of(digest, store.as_deref(), client.as_ref())).transpose()?.flatten();
    let attached = match &sbom {
        Some(sbom) => attached(sbom, store.as_deref(), client.as_ref())?,
        None => Vec::new(),
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
        "attached": attached,
        "encrypted_to": encrypted_to,
        "inclusion": inclusion,
    });
    let store_missing = named.is_some() && sbom.is_none();
    print_report(&report, json, |r| text(r, store_missing))
}

/// The record's place in the log, as proved: where, in which tree, and what was checked.
fn inclusion(found: &Found, checked: &[String]) -> Value {
    json!({
        "index": found.index,
        "tree_size": found.size,
        "root": hex::encode(found.root),
        "log": found.origin,
        "checkpoint": found.checkpoint,
        "verified": true,
        "checked": checked,
    })
}

/// The SBOM `digest` names: from the local `store` if given, else from the service's log role
/// (`client`), its digest checked either way; `None` with neither.
fn sbom_of(digest: &SbomDigest, store: Option<&Path>, client: Option<&RemoteIssuer>) -> Result<Option<Sbom>> {
    if let Some(store) = store {
        return Ok(Some(Sbom::load(store, digest).context("the workload's SBOM")?));
    }
    let Some(client) = client else { return Ok(None) };
    let bytes = client.log_sbom(digest).context("the workload's SBOM from the issuer's log role")?;
    let what = format!("{}{}/{}", client.url(), twi_issuer::http::log::SBOM_PATH, digest.path_form());
    Ok(Some(Sbom::parse(&bytes, &what)?))
}

/// The statements `sbom` lists as attached (`twi build --attach`; components of type `data`), each
/// fetched like the SBOM and its digest checked: what it is and, for a vendor statement, what it
/// claims and under which key (its signature is the issuer's to check against the policy's
/// `vendor_key`; the record's `provenance` criterion says it did).
fn attached(sbom: &Sbom, store: Option<&Path>, client: Option<&RemoteIssuer>) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for component in sbom.components.iter().filter(|c| c.kind == "data") {
        let digest = component.sha384.as_deref().and_then(SbomDigest::from_hex);
        let Some(digest) = digest else {
            bail!("the SBOM lists attached statement {:?} without a SHA-384", component.name);
        };
        let bytes = match (store, client) {
            (Some(store), _) => Some(
                stored_attachment(store, &digest, ATTACHMENT_LIMIT)
                    .with_context(|| format!("the attached statement {:?} the SBOM lists", component.name))?,
            ),
            (None, Some(client)) => Some(client.log_attachment(&digest)?),
            (None, None) => None,
        };
        let vendor = bytes.as_deref().and_then(|b| vendor::claims(b).ok()).map(|(statement, kid)| {
            json!({ "vendor": statement.vendor, "subject": statement.subject, "kid": hex::encode(kid) })
        });
        out.push(json!({
            "name": component.name,
            "sha384": digest.to_string(),
            "bytes": bytes.as_ref().map(Vec::len),
            "vendor_statement": vendor,
        }));
    }
    Ok(out)
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
    ) + &checked_text(inclusion)
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
            "made of: the SBOM {digest} (give --policy FILE, --sboms DIR or --issuer-url URL to list its components)\n"
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
    out.push_str(&attached_text(&report["attached"]));
    let inclusion = &report["inclusion"];
    out.push_str(&format!(
        "log: record {} is included in the signed tree of {} records (root {}): verified under the log key\n",
        inclusion["index"],
        inclusion["tree_size"],
        s(&inclusion["root"])
    ));
    out.push_str(&checked_text(inclusion));
    out
}

/// The attached statements, a line each.
fn attached_text(attached: &Value) -> String {
    let s = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    let mut out = String::new();
    for a in attached.as_array().into_iter().flatten() {
        let what = match (&a["bytes"], &a["vendor_statement"]) {
            (Value::Null, _) => "not fetched (give --policy FILE, --sboms DIR or --issuer-url URL)".to_string(),
            (bytes, Value::Null) => format!("{bytes} bytes, digest checked"),
            (bytes, v) => format!(
                "{bytes} bytes, digest checked: a vendor statement by {:?} for {} {} (sha384 {}), under key {} (the issuer checks its signature against the policy's vendor_key)",
                s(&v["vendor"]),
                s(&v["subject"]["name"]),
                s(&v["subject"]["version"]),
                s(&v["subject"]["sha384"]),
                s(&v["kid"])
            ),
        };
        out.push_str(&format!("attached: {} ({}): {what}\n", s(&a["name"]), s(&a["sha384"])));
    }
    out
}

/// What was checked to prove the record, one `  ok` line each.
fn checked_text(inclusion: &Value) -> String {
    let lines = inclusion["checked"].as_array().into_iter().flatten();
    lines.map(|line| format!("  ok {}\n", line.as_str().unwrap_or_default())).collect()
}
