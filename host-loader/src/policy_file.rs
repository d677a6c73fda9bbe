//! The appraisal policy files the host writes: the development policy `twi run` makes when
//! given none, and the reference entries `twi policy add-image` adds for an image. Both are
//! the issuer's own file types (`twi_issuer::policy::PolicyFile`, written through serde); to
//! edit a user's file without losing its comments and layout, the entries go in through
//! `toml_edit`. Every text made here is read back with the issuer's parser before it is used
//! or written.

use twi_issuer::policy::{
    Fidelity, Mechanism, Policy, PolicyError, PolicyFile, ReferenceFile, SbomDigest, Stickiness, WorkloadFile,
};
use twi_proto::msg::Platform;

/// The launch measurements of one image, as `twi run` computed them for the image it boots.
#[derive(Debug, Clone, Copy)]
pub struct Measured<'a> {
    /// The SEV-SNP launch digest (of the ROM, or of the IGVM file for `--platform igvm`).
    pub snp: &'a [u8; 48],
    /// The TDX MRTD, when the launch is a TD.
    pub mrtd: Option<&'a [u8; 48]>,
    /// The SBOM digest the image's launch manifest carries: each entry names it, so the
    /// credential carries it (no provenance demands: the document itself is not read).
    pub sbom: Option<SbomDigest>,
    /// The image's SEV-SNP digest on host profiles other than the one `snp` is for: listed
    /// (hardware only) with `admit = false`, so a launch on such a host is refused naming it.
    pub other_host_profiles: &'a [(&'static str, [u8; 48])],
}

/// The development policy `twi run` uses without --policy: one workload, `workload`, admitting
/// exactly the launch measurements of the image it boots (simulated SEV-SNP and TDX;
/// `hardware`: also real SEV-SNP / TDX, the same measurement), under `mechanism` (`twi run
/// --mechanism`, else c; d makes the default target's mode Retrieval), AF_L2, CF_L2 and CS_L1.
/// Returns the text (for the record) and the parsed policy.
pub fn development_policy(
    trust_domain: &str,
    workload: &str,
    measured: Measured<'_>,
    hardware: bool,
    mechanism: Mechanism,
) -> Result<(String, Policy), PolicyError> {
    development_policy_at_vmpl(trust_domain, workload, measured, hardware, mechanism, 0)
}

/// [`development_policy`] for a guest that runs at `vmpl` (`twi run --platform sim-svsm`: the
/// simulated SVSM's guest VMPL), which the workload then admits instead of VMPL0.
pub fn development_policy_at_vmpl(
    trust_domain: &str,
    workload: &str,
    measured: Measured<'_>,
    hardware: bool,
    mechanism: Mechanism,
    vmpl: u32,
) -> Result<(String, Policy), PolicyError> {
    let mut entry = WorkloadFile::new(workload);
    if vmpl != 0 {
        entry.vmpls = Some(vec![vmpl]);
    }
    (entry.mechanism, entry.fidelity, entry.stickiness) = (mechanism, Fidelity::BuiltIn, Stickiness::SameTcb);
    entry.reference.push(ReferenceFile::snp("this image (simulated SEV-SNP)", Platform::SimSnp, measured.snp, None));
    if let Some(mrtd) = measured.mrtd {
        entry.reference.push(ReferenceFile::tdx("this image (simulated TDX)", Platform::SimTdx, mrtd));
    }
    if hardware {
        // With other profiles, `measured.snp` is the ROM's digest on the default host profile
        // (`twi run` measures so).
        let default = (!measured.other_host_profiles.is_empty()).then_some(crate::measure::host_profile::DEFAULT.name);
        let snp = ReferenceFile::snp("this image (SEV-SNP)", Platform::Snp, measured.snp, None);
        entry.reference.push(snp.on_host_profile(default, true));
        for (profile, digest) in measured.other_host_profiles {
            let label = format!("this image (SEV-SNP, host {profile})");
            entry
                .reference
                .push(ReferenceFile::snp(&label, Platform::Snp, digest, None).on_host_profile(Some(profile), false));
        }
        if let Some(mrtd) = measured.mrtd {
            entry.reference.push(ReferenceFile::tdx("this image (TDX)", Platform::Tdx, mrtd));
        }
    }
    for reference in &mut entry.reference {
        reference.sbom = measured.sbom;
    }
    let file = PolicyFile {
        version: format!("dev-{}", &hex::encode(measured.snp)[..16]),
        trust_domain: trust_domain.into(),
        wit_alg: Default::default(),
        workload: vec![entry],
    };
    let text = format!(
        "# Development policy made by `twi run` (no --policy): admits exactly the image it boots.\n{}",
        file.to_toml()?
    );
    let policy = Policy::from_toml(&text)?;
    Ok((text, policy))
}

/// Why a policy text could not be edited.
#[derive(Debug, thiserror::Error)]
pub enum PolicyFileError {
    /// The text is not TOML of the policy's shape, or the issuer's parser refused the result
    /// (e.g. one image made two workloads' launch).
    #[error("{0}")]
    Invalid(String),
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
    /// Labels of the entries added with `admit = false`: other host profiles' launches, which
    /// admit nothing and let a refusal name the profile.
    pub known: Vec<String>,
}

/// Adds `entries` to the `[[workload]]` whose id is `workload` in the policy `text` (made when
/// missing), keeping the file's comments and layout; entries the workload already has are
/// left alone. Returns the new text, checked by the issuer's parser.
pub fn add_references(
    text: &str,
    dir: Option<&std::path::Path>,
    workload: &str,
    entries: &[ReferenceFile],
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
        let value = entry.measured().map(hex::encode);
        let same = |t: &Table| {
            t.get("platform").and_then(|p| p.as_str()) == Some(entry.platform.as_str())
                && [t.get("measurement"), t.get("mrtd")]
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str())
                    .any(|v| Some(v.trim_start_matches("0x").to_ascii_lowercase()) == value)
        };
        let label = entry.label.clone().unwrap_or_default();
        let admits = entry.admit != Some(false);
        if let Some(existing) = references.iter_mut().find(|t| same(t)) {
            // A host profile listed before as not admitted, now asked for: admit it.
            if admits && existing.get("admit").and_then(|a| a.as_bool()) == Some(false) {
                existing.remove("admit");
                added.added.push(label);
            } else {
                added.present.push(label);
            }
            continue;
        }
        let lines: DocumentMut = entry.to_toml().map_err(|e| invalid(&e))?.parse().map_err(|e| invalid(&e))?;
        references.push(lines.as_table().clone());
        if admits { added.added.push(label) } else { added.known.push(label) }
    }
    let text = doc.to_string();
    match dir {
        Some(dir) => Policy::from_toml_in(&text, dir),
        None => Policy::from_toml(&text),
    }
    .map_err(|e| invalid(&e))?;
    Ok((text, added))
}

#[cfg(test)]
mod tests {
    use super::*;
    use twi_issuer::policy::{FreshnessLevel, image_references};

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
        let (text, policy) = development_policy(
            "example.org",
            "demo",
            Measured { snp: &SNP, mrtd: Some(&MRTD), sbom: None, other_host_profiles: &[] },
            false,
            Mechanism::C,
        )
        .unwrap();
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
        let (_, hardware) = development_policy(
            "example.org",
            "demo",
            Measured { snp: &SNP, mrtd: None, sbom: None, other_host_profiles: &[] },
            true,
            Mechanism::C,
        )
        .unwrap();
        let platforms: Vec<_> = hardware.workload("demo").unwrap().references.iter().map(|r| r.platform).collect();
        assert_eq!(platforms, [Platform::SimSnp, Platform::Snp]);
        assert!(workload.references.iter().all(|r| r.sbom.is_none()));
        // An image whose manifest names its SBOM: every entry names it, so credentials carry it.
        let sbom = Some(SbomDigest([7; 48]));
        let (text, named) = development_policy(
            "example.org",
            "demo",
            Measured { snp: &SNP, mrtd: Some(&MRTD), sbom, other_host_profiles: &[] },
            true,
            Mechanism::C,
        )
        .unwrap();
        assert!(named.workload("demo").unwrap().references.iter().all(|r| r.sbom == sbom), "{text}");
        // On hardware, the image's digest on another host profile is listed, admitting nothing.
        let legacy = [("amd-snp-legacy", [0x55; 48])];
        let image = Measured { snp: &SNP, mrtd: None, sbom: None, other_host_profiles: &legacy };
        let (text, hardware) = development_policy("example.org", "demo", image, true, Mechanism::C).unwrap();
        assert!(text.contains("host_profile = \"amd-snp-legacy\"\nadmit = false"), "{text}");
        let a = twi_issuer::policy::Appraised {
            platform: Platform::Snp,
            measurement: vec![0x55; 48],
            rtmrs: vec![],
            policy: 0x30000,
            tcb: twi_issuer::policy::AppraisedTcb::Snp(Default::default()),
            chip_id: vec![1; 64],
            host_data: vec![0; 32],
            platform_info: 0,
        };
        let refusal = hardware.admit(&a).unwrap_err().to_string();
        assert!(refusal.contains("launched under host profile amd-snp-legacy"), "{refusal}");
        assert!(refusal.contains("admits host profile linux-6.11 only"), "{refusal}");
        // Names the issuer refuses are refused here too, before anything boots.
        assert!(
            development_policy(
                "Not A Domain",
                "demo",
                Measured { snp: &SNP, mrtd: None, sbom: None, other_host_profiles: &[] },
                false,
                Mechanism::C
            )
            .is_err()
        );
        // Quotes and backslashes in names are TOML-escaped, not spliced into the text.
        let err = development_policy(
            "example.org",
            "a\"b",
            Measured { snp: &SNP, mrtd: None, sbom: None, other_host_profiles: &[] },
            false,
            Mechanism::C,
        )
        .unwrap_err();
        assert!(err.to_string().contains("is not a SPIFFE path"), "{err}");
    }

    /// Another host profile's digest goes in with `admit = false`; adding an image built for
    /// that profile later admits the same entry rather than adding a second one.
    #[test]
    fn a_host_profile_listed_as_not_admitted_is_admitted_once_asked_for() {
        let image = |asked_legacy: bool| {
            serde_json::json!({ "snp": { "launch_digest": hex::encode(SNP), "host_profiles": [
                { "profile": "linux-6.11", "launch_digest": hex::encode(SNP), "requested": true },
                { "profile": "amd-snp-legacy", "launch_digest": hex::encode([0x55; 48]), "requested": asked_legacy },
            ] } })
        };
        let text = "version = \"1\"\ntrust_domain = \"example.org\"\n";
        let (first, added) = add_references(text, None, "w", &image_references(&image(false), "v1").unwrap()).unwrap();
        assert_eq!(added.added, ["v1 (simulated SEV-SNP)", "v1 (SEV-SNP, host linux-6.11)"]);
        assert_eq!(added.known, ["v1 (SEV-SNP, host amd-snp-legacy)"]);
        assert!(first.contains("admit = false"), "{first}");
        let (second, added) =
            add_references(&first, None, "w", &image_references(&image(true), "v1").unwrap()).unwrap();
        assert_eq!(added.added, ["v1 (SEV-SNP, host amd-snp-legacy)"]);
        assert!(!second.contains("admit"), "{second}");
        let refs = &Policy::from_toml(&second).unwrap().workloads[0].references;
        assert!(refs.len() == 3 && refs.iter().all(|r| r.admitted));
    }

    #[test]
    fn adding_keeps_comments_skips_what_is_there_and_makes_missing_workloads() {
        let text = format!(
            "# the operator's note\nversion = \"1\"\ntrust_domain = \"example.org\"\n\n[[workload]]\n# why payroll\nid = \"payroll-app\"\n\n[[workload.reference]]\nlabel = \"old\"\nplatform = \"sim-snp\"\nmeasurement = \"0x{}\"\n",
            hex::encode(SNP).to_uppercase()
        );
        let entries = image_references(&values(), "v2").unwrap();
        let (edited, added) = add_references(&text, None, "payroll-app", &entries).unwrap();
        assert!(edited.contains("# the operator's note") && edited.contains("# why payroll"), "{edited}");
        assert!(!added.new_workload);
        assert_eq!(added.present, ["v2 (simulated SEV-SNP)"], "the same sim-snp measurement is there already");
        assert_eq!(added.added.len(), 4);
        let policy = Policy::from_toml(&edited).unwrap();
        assert_eq!(policy.workload("payroll-app").unwrap().references.len(), 5);
        // Again: nothing new.
        let (again, added) = add_references(&edited, None, "payroll-app", &entries).unwrap();
        assert_eq!((again, added.added.len()), (edited.clone(), 0));
        // Another workload is made, with the format's defaults, for another image.
        let other_image = serde_json::json!({ "tdx": { "mrtd": hex::encode([0x44; 48]) } });
        let (other, added) =
            add_references(&edited, None, "ledger", &image_references(&other_image, "v1").unwrap()).unwrap();
        assert!(added.new_workload);
        assert_eq!(Policy::from_toml(&other).unwrap().workload("ledger").unwrap().references.len(), 2);
        // One image cannot be two workloads: the issuer's parser says so, and nothing is written.
        let error = add_references(&edited, None, "ledger", &entries[..1]).unwrap_err().to_string();
        assert!(error.contains("one launch cannot have two identities"), "{error}");
        // A workload id the format refuses is refused, and nothing is returned to write.
        assert!(add_references(&edited, None, "no spaces", &entries[..1]).is_err());
    }
}
