//! The appraisal policy's file format, as the host writes it: the development policy `twi run`
//! makes when given none, and the reference entries `twi policy add-image` adds for an image.
//! Written through serde (the `toml` crate) and, to edit a user's file without losing its
//! comments and layout, through `toml_edit`; every text made here is read back with the
//! issuer's parser before it is used or written, so the two cannot drift apart unnoticed.
//!
//! The issuer's policy model (`twi_issuer::policy::Policy`) is not serde-serializable yet;
//! these small structs carry the file format's field names until it is.

use serde::Serialize;
use twi_issuer::freshness::FreshnessLevel;
use twi_issuer::policy::{Fidelity, Mechanism, POLICY_FLAGS_MASK, Policy, Stickiness, platform_name};
use twi_proto::msg::Platform;

/// A policy file: `version`, `trust_domain` and its `[[workload]]` tables.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyFile {
    pub version: String,
    pub trust_domain: String,
    pub workload: Vec<WorkloadEntry>,
}

/// One `[[workload]]`.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadEntry {
    pub id: String,
    pub mechanism: Mechanism,
    pub freshness: FreshnessLevel,
    pub fidelity: Fidelity,
    pub stickiness: Stickiness,
    pub reference: Vec<ReferenceEntry>,
}

/// One `[[workload.reference]]`: the launch measurement a platform reports for an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReferenceEntry {
    pub label: String,
    /// `sim-snp`, `snp`, `sim-tdx` or `tdx`.
    pub platform: String,
    /// SEV-SNP MEASUREMENT (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measurement: Option<String>,
    /// SEV-SNP guest policy bits that must match (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_mask: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_required: Option<String>,
    /// TDX MRTD (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mrtd: Option<String>,
}

impl ReferenceEntry {
    /// An SEV-SNP entry (`policy`: pin the guest policy's flag bits to the image's).
    pub fn snp(label: String, platform: Platform, digest: &[u8], policy: Option<u64>) -> Self {
        Self {
            label,
            platform: platform_name(platform).into(),
            measurement: Some(hex::encode(digest)),
            policy_mask: policy.map(|_| format!("{POLICY_FLAGS_MASK:#x}")),
            policy_required: policy.map(|p| format!("{:#x}", p & POLICY_FLAGS_MASK)),
            mrtd: None,
        }
    }

    /// A TDX entry.
    pub fn tdx(label: String, platform: Platform, mrtd: &[u8]) -> Self {
        Self {
            label,
            platform: platform_name(platform).into(),
            measurement: None,
            policy_mask: None,
            policy_required: None,
            mrtd: Some(hex::encode(mrtd)),
        }
    }

    /// The measured value this entry admits (for finding an entry already present).
    pub fn value(&self) -> Option<&str> {
        self.measurement.as_deref().or(self.mrtd.as_deref())
    }

    /// The entry as TOML key/value lines.
    pub fn to_toml(&self) -> Result<String, PolicyFileError> {
        toml::to_string(self).map_err(|e| PolicyFileError::Encode(e.to_string()))
    }
}

/// Why a policy text could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyFileError {
    #[error("cannot encode the policy as TOML: {0}")]
    Encode(String),
    /// The issuer's parser refused what was made (a bug here, or bad --trust-domain/--workload).
    #[error("{0}")]
    Invalid(String),
}

/// The launch measurements of one image, as `twi run` computed them for the image it boots.
#[derive(Debug, Clone, Copy)]
pub struct Measured<'a> {
    /// The SEV-SNP launch digest (of the ROM, or of the IGVM file for `--platform igvm`).
    pub snp: &'a [u8; 48],
    /// The TDX MRTD, when the launch is a TD.
    pub mrtd: Option<&'a [u8; 48]>,
}

/// The development policy `twi run` uses without --policy: one workload, `workload`, admitting
/// exactly the launch measurements of the image it boots (simulated SEV-SNP and TDX;
/// `hardware`: also real SEV-SNP / TDX, the same measurement), under mechanism c, AF_L2, CF_L2
/// and CS_L1. Returns the text (for the record) and the parsed policy.
pub fn development_policy(
    trust_domain: &str,
    workload: &str,
    measured: Measured<'_>,
    hardware: bool,
) -> Result<(String, Policy), PolicyFileError> {
    let mut reference =
        vec![ReferenceEntry::snp("this image (simulated SEV-SNP)".into(), Platform::SimSnp, measured.snp, None)];
    if let Some(mrtd) = measured.mrtd {
        reference.push(ReferenceEntry::tdx("this image (simulated TDX)".into(), Platform::SimTdx, mrtd));
    }
    if hardware {
        reference.push(ReferenceEntry::snp("this image (SEV-SNP)".into(), Platform::Snp, measured.snp, None));
        if let Some(mrtd) = measured.mrtd {
            reference.push(ReferenceEntry::tdx("this image (TDX)".into(), Platform::Tdx, mrtd));
        }
    }
    let file = PolicyFile {
        version: format!("dev-{}", &hex::encode(measured.snp)[..16]),
        trust_domain: trust_domain.into(),
        workload: vec![WorkloadEntry {
            id: workload.into(),
            mechanism: Mechanism::C,
            freshness: FreshnessLevel::Nonce,
            fidelity: Fidelity::BuiltIn,
            stickiness: Stickiness::SameTcb,
            reference,
        }],
    };
    let body = toml::to_string(&file).map_err(|e| PolicyFileError::Encode(e.to_string()))?;
    let text =
        format!("# Development policy made by `twi run` (no --policy): admits exactly the image it boots.\n{body}");
    let policy = Policy::from_toml(&text).map_err(|e| PolicyFileError::Invalid(e.to_string()))?;
    Ok((text, policy))
}

/// The reference entries for an image built by `twi build`, from its reference-values.json:
/// the simulated platforms (`sim-snp`: the ROM's SEV-SNP launch digest, which the simulated
/// PSP reports; `sim-tdx`: the MRTD) and the real ones (`snp` for the ROM and for the IGVM
/// file, with the guest policy's flag bits pinned; `tdx`).
pub fn image_references(values: &serde_json::Value, label: &str) -> Result<Vec<ReferenceEntry>, String> {
    let hex48 = |pointer: &str| -> Result<Option<[u8; 48]>, String> {
        let Some(text) = values.pointer(pointer) else { return Ok(None) };
        let text = text.as_str().ok_or_else(|| format!("{pointer} is not a string"))?;
        let bytes = hex::decode(text.trim_start_matches("0x")).map_err(|e| format!("{pointer}: {e}"))?;
        <[u8; 48]>::try_from(bytes.as_slice()).map(Some).map_err(|_| format!("{pointer} is not 48 bytes of hex"))
    };
    let policy = match values.pointer("/snp/policy").and_then(serde_json::Value::as_str) {
        Some(text) => Some(
            u64::from_str_radix(text.trim_start_matches("0x"), 16).map_err(|e| format!("/snp/policy {text:?}: {e}"))?,
        ),
        None => None,
    };
    let mut entries = Vec::new();
    if let Some(digest) = hex48("/snp/launch_digest")? {
        entries.push(ReferenceEntry::snp(format!("{label} (simulated SEV-SNP)"), Platform::SimSnp, &digest, None));
        entries.push(ReferenceEntry::snp(format!("{label} (SEV-SNP)"), Platform::Snp, &digest, policy));
    }
    if let Some(digest) = hex48("/igvm/snp_launch_digest")? {
        entries.push(ReferenceEntry::snp(format!("{label} (SEV-SNP, IGVM)"), Platform::Snp, &digest, policy));
    }
    if let Some(mrtd) = hex48("/tdx/mrtd")? {
        entries.push(ReferenceEntry::tdx(format!("{label} (simulated TDX)"), Platform::SimTdx, &mrtd));
        entries.push(ReferenceEntry::tdx(format!("{label} (TDX)"), Platform::Tdx, &mrtd));
    }
    if entries.is_empty() {
        return Err("no reference values in it (expected snp.launch_digest, igvm.snp_launch_digest or tdx.mrtd)".into());
    }
    Ok(entries)
}

/// What [`add_references`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Added {
    /// The workload was not in the file and was made (with the format's defaults).
    pub new_workload: bool,
    /// Labels of the entries added.
    pub added: Vec<String>,
    /// Labels of the entries the workload had already (same platform, same value).
    pub present: Vec<String>,
}

/// Adds `entries` to the `[[workload]]` whose id is `workload` in the policy `text` (made when
/// missing), keeping the file's comments and layout; entries the workload already has are
/// left alone. Returns the new text, checked by the issuer's parser.
pub fn add_references(
    text: &str,
    workload: &str,
    entries: &[ReferenceEntry],
) -> Result<(String, Added), PolicyFileError> {
    use toml_edit::{ArrayOfTables, DocumentMut, Item, Table};
    let invalid = |e: &dyn std::fmt::Display| PolicyFileError::Invalid(e.to_string());
    let mut doc: DocumentMut = text.parse().map_err(|e| invalid(&e))?;
    let mut added = Added::default();
    let workloads = doc
        .entry("workload")
        .or_insert(Item::ArrayOfTables(ArrayOfTables::new()))
        .as_array_of_tables_mut()
        .ok_or_else(|| PolicyFileError::Invalid("`workload` is not an array of tables ([[workload]])".into()))?;
    let found = workloads.iter().position(|w| w.get("id").and_then(|id| id.as_str()) == Some(workload));
    let index = match found {
        Some(index) => index,
        None => {
            let mut table = Table::new();
            table["id"] = toml_edit::value(workload);
            workloads.push(table);
            added.new_workload = true;
            workloads.len() - 1
        }
    };
    let table = workloads
        .get_mut(index)
        .ok_or_else(|| PolicyFileError::Invalid(format!("workload `{workload}` vanished while editing")))?;
    let references = table
        .entry("reference")
        .or_insert(Item::ArrayOfTables(ArrayOfTables::new()))
        .as_array_of_tables_mut()
        .ok_or_else(|| {
            PolicyFileError::Invalid(format!("workload `{workload}`: `reference` is not [[workload.reference]]"))
        })?;
    for entry in entries {
        let same = |t: &Table| {
            t.get("platform").and_then(|p| p.as_str()) == Some(entry.platform.as_str())
                && [t.get("measurement"), t.get("mrtd")]
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str())
                    .any(|v| Some(v.trim_start_matches("0x").to_ascii_lowercase().as_str()) == entry.value())
        };
        if references.iter().any(same) {
            added.present.push(entry.label.clone());
            continue;
        }
        let lines: DocumentMut = entry.to_toml()?.parse().map_err(|e| invalid(&e))?;
        references.push(lines.as_table().clone());
        added.added.push(entry.label.clone());
    }
    let text = doc.to_string();
    Policy::from_toml(&text).map_err(|e| invalid(&e))?;
    Ok((text, added))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNP: [u8; 48] = [0x11; 48];
    const MRTD: [u8; 48] = [0x22; 48];

    fn values() -> serde_json::Value {
        serde_json::json!({
            "snp": { "launch_digest": hex::encode(SNP), "policy": "0x30000" },
            "igvm": { "snp_launch_digest": hex::encode([0x33; 48]) },
            "tdx": { "mrtd": hex::encode(MRTD) },
        })
    }

    #[test]
    fn the_development_policy_admits_exactly_the_image() {
        let (text, policy) =
            development_policy("example.org", "demo", Measured { snp: &SNP, mrtd: Some(&MRTD) }, false).unwrap();
        assert!(text.starts_with("# Development policy made by `twi run`"), "{text}");
        assert_eq!(policy.version, format!("dev-{}", &hex::encode(SNP)[..16]));
        let workload = policy.workload("demo").unwrap();
        assert_eq!(
            (workload.mechanism, workload.fidelity, workload.stickiness),
            (Mechanism::C, Fidelity::BuiltIn, Stickiness::SameTcb)
        );
        assert_eq!(workload.freshness, FreshnessLevel::Nonce);
        let platforms: Vec<_> = workload.references.iter().map(|r| r.platform).collect();
        assert_eq!(platforms, [Platform::SimSnp, Platform::SimTdx]);
        let (_, hardware) =
            development_policy("example.org", "demo", Measured { snp: &SNP, mrtd: None }, true).unwrap();
        let platforms: Vec<_> = hardware.workload("demo").unwrap().references.iter().map(|r| r.platform).collect();
        assert_eq!(platforms, [Platform::SimSnp, Platform::Snp]);
        // Names the issuer refuses are refused here too, before anything boots.
        assert!(development_policy("Not A Domain", "demo", Measured { snp: &SNP, mrtd: None }, false).is_err());
        // Quotes and backslashes in names are TOML-escaped, not spliced into the text.
        let err = development_policy("example.org", "a\"b", Measured { snp: &SNP, mrtd: None }, false).unwrap_err();
        assert!(err.to_string().contains("is not a SPIFFE path"), "{err}");
    }

    #[test]
    fn image_references_cover_every_platform() {
        let entries = image_references(&values(), "v2").unwrap();
        let summary: Vec<_> = entries.iter().map(|e| (e.platform.as_str(), e.label.as_str())).collect();
        assert_eq!(
            summary,
            [
                ("sim-snp", "v2 (simulated SEV-SNP)"),
                ("snp", "v2 (SEV-SNP)"),
                ("snp", "v2 (SEV-SNP, IGVM)"),
                ("sim-tdx", "v2 (simulated TDX)"),
                ("tdx", "v2 (TDX)"),
            ]
        );
        assert_eq!(entries[1].policy_required.as_deref(), Some("0x30000"));
        assert_eq!(entries[0].policy_mask, None, "the simulated PSP reports its own guest policy");
        assert!(image_references(&serde_json::json!({}), "x").unwrap_err().contains("no reference values"));
        let short = serde_json::json!({ "tdx": { "mrtd": "abcd" } });
        assert!(image_references(&short, "x").unwrap_err().contains("48 bytes"));
    }

    #[test]
    fn adding_keeps_comments_skips_what_is_there_and_makes_missing_workloads() {
        let text = format!(
            "# the operator's note\nversion = \"1\"\ntrust_domain = \"example.org\"\n\n[[workload]]\n# why payroll\nid = \"payroll-app\"\n\n[[workload.reference]]\nlabel = \"old\"\nplatform = \"sim-snp\"\nmeasurement = \"0x{}\"\n",
            hex::encode(SNP).to_uppercase()
        );
        let entries = image_references(&values(), "v2").unwrap();
        let (edited, added) = add_references(&text, "payroll-app", &entries).unwrap();
        assert!(edited.contains("# the operator's note") && edited.contains("# why payroll"), "{edited}");
        assert!(!added.new_workload);
        assert_eq!(added.present, ["v2 (simulated SEV-SNP)"], "the same sim-snp measurement is there already");
        assert_eq!(added.added.len(), 4);
        let policy = Policy::from_toml(&edited).unwrap();
        assert_eq!(policy.workload("payroll-app").unwrap().references.len(), 5);
        // Again: nothing new.
        let (again, added) = add_references(&edited, "payroll-app", &entries).unwrap();
        assert_eq!((again, added.added.len()), (edited.clone(), 0));
        // Another workload is made, with the format's defaults, for another image.
        let other_image = serde_json::json!({ "tdx": { "mrtd": hex::encode([0x44; 48]) } });
        let (other, added) = add_references(&edited, "ledger", &image_references(&other_image, "v1").unwrap()).unwrap();
        assert!(added.new_workload);
        assert_eq!(Policy::from_toml(&other).unwrap().workload("ledger").unwrap().references.len(), 2);
        // One image cannot be two workloads: the issuer's parser says so, and nothing is written.
        let error = add_references(&edited, "ledger", &entries[..1]).unwrap_err().to_string();
        assert!(error.contains("one launch cannot have two identities"), "{error}");
        // A workload id the format refuses is refused, and nothing is returned to write.
        assert!(add_references(&edited, "no spaces", &entries[..1]).is_err());
    }
}
