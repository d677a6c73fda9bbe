//! From the reference values `twi build` writes (`reference-values.json`: the SEV-SNP launch
//! digest of the ROM and of the IGVM file, the guest policy, the TDX MRTD and RTMRs, the git
//! commit) to the policy's `[[workload.reference]]` entries ([`ReferenceFile`]): what
//! `twi policy add-image` adds to a policy file.

use serde_json::Value;
use twi_proto::msg::Platform;

use super::file::{Hex, ReferenceFile, parse_u64_text};
use super::model::{Policy, PolicyError};
use super::provenance::SbomDigest;

/// The values of one image, read from its `reference-values.json`.
struct ImageValues {
    /// `format`, and the git commit it was built from, for a comment.
    origin: String,
    snp: Option<[u8; 48]>,
    /// `snp.host_profiles`: each host profile's launch digest of the ROM, and whether the
    /// build was asked for it (`twi build --host-profile`).
    snp_profiles: Vec<ProfileDigest>,
    snp_policy: Option<u64>,
    igvm: Option<[u8; 48]>,
    sim_snp: Option<[u8; 48]>,
    tdx: Option<[u8; 48]>,
    rtmr: [Option<[u8; 48]>; 4],
    /// `sbom.digest`: the SBOM the measured launch manifest names.
    sbom: Option<SbomDigest>,
}

/// One entry of `snp.host_profiles`.
struct ProfileDigest {
    profile: String,
    digest: [u8; 48],
    admitted: bool,
}

fn profile_digests(values: &Value) -> Result<Vec<ProfileDigest>, PolicyError> {
    let Some(list) = values.pointer("/snp/host_profiles") else { return Ok(Vec::new()) };
    let list = list.as_array().ok_or_else(|| err("snp.host_profiles is not a list".into()))?;
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let profile = item.get("profile").and_then(Value::as_str);
        let profile = profile.ok_or_else(|| err(format!("snp.host_profiles[{i}] has no profile name")))?;
        let digest = hex48(item, &["launch_digest"])?
            .ok_or_else(|| err(format!("snp.host_profiles[{i}] ({profile}) has no launch_digest")))?;
        let admitted = item.get("requested").and_then(Value::as_bool).unwrap_or(true);
        out.push(ProfileDigest { profile: profile.to_string(), digest, admitted });
    }
    Ok(out)
}

/// The `snp` entries for the ROM: one per host profile when the file lists them (those the
/// build was not asked for with `admit = false`), else the one `snp.launch_digest`.
fn snp_entries(image: &ImageValues, label: &dyn Fn(Option<&str>) -> String) -> Vec<ReferenceFile> {
    if image.snp_profiles.is_empty() {
        return image
            .snp
            .iter()
            .map(|d| ReferenceFile::snp(&label(None), Platform::Snp, d, image.snp_policy))
            .collect();
    }
    let entry = |p: &ProfileDigest| {
        ReferenceFile::snp(&label(Some(&p.profile)), Platform::Snp, &p.digest, image.snp_policy)
            .on_host_profile(Some(&p.profile), p.admitted)
    };
    // Admitted entries first, so the policy reads in order of what it admits.
    let admitted = image.snp_profiles.iter().filter(|p| p.admitted).map(entry);
    admitted.chain(image.snp_profiles.iter().filter(|p| !p.admitted).map(entry)).collect()
}

fn err(message: String) -> PolicyError {
    PolicyError::ReferenceValues(message)
}

fn hex48(values: &Value, path: &[&str]) -> Result<Option<[u8; 48]>, PolicyError> {
    let name = path.join(".");
    let Some(text) = path.iter().try_fold(values, |v, k| v.get(k)).filter(|v| !v.is_null()) else { return Ok(None) };
    let text = text.as_str().ok_or_else(|| err(format!("{name} is not a string")))?;
    let digits = text.trim_start_matches("0x").to_ascii_lowercase();
    match hex::decode(&digits).ok().and_then(|b| <[u8; 48]>::try_from(b.as_slice()).ok()) {
        Some(bytes) => Ok(Some(bytes)),
        None => Err(err(format!("{name} is not 48 bytes of hex: {digits:?}"))),
    }
}

impl ImageValues {
    fn read(values: &Value) -> Result<Self, PolicyError> {
        let text = |path: &str| values.pointer(path).and_then(Value::as_str).map(str::to_string);
        let format = text("/format").unwrap_or_else(|| "unknown format".into());
        let git = match (text("/build/git_commit"), values.pointer("/build/git_dirty").and_then(Value::as_bool)) {
            (Some(c), Some(true)) => format!(", git {c} (dirty)"),
            (Some(c), _) => format!(", git {c}"),
            _ => String::new(),
        };
        let snp_policy = match text("/snp/policy") {
            Some(p) => Some(parse_u64_text(&p).ok_or_else(|| err(format!("snp.policy is not a number: {p:?}")))?),
            None => None,
        };
        let mut rtmr = [None; 4];
        if let Some(list) = values.pointer("/tdx/rtmr").and_then(Value::as_array) {
            for (i, slot) in rtmr.iter_mut().enumerate().take(list.len()) {
                *slot = hex48(&list[i], &[])
                    .map_err(|_| err(format!("tdx.rtmr[{i}] is not 48 bytes of hex: {}", list[i])))?;
            }
        }
        let sbom = match text("/sbom/digest") {
            Some(d) => {
                Some(SbomDigest::parse(&d).ok_or_else(|| err(format!("sbom.digest is not sha384:<hex>: {d:?}")))?)
            }
            None => None,
        };
        Ok(Self {
            sbom,
            origin: format!("{format}{git}"),
            snp: hex48(values, &["snp", "launch_digest"])?,
            snp_profiles: profile_digests(values)?,
            snp_policy,
            igvm: hex48(values, &["igvm", "snp_launch_digest"])?,
            sim_snp: hex48(values, &["sim_snp", "launch_digest"])?,
            tdx: hex48(values, &["tdx", "mrtd"])?,
            rtmr,
        })
    }
}

/// The reference entries of an image built by `twi build`, from its reference-values.json:
/// the simulated platforms (`sim-snp`: the ROM's SEV-SNP launch digest, which the simulated
/// PSP reports; `sim-tdx`: the MRTD) and the real ones (`snp` for the ROM, one per host
/// profile in `snp.host_profiles` — those the build was not asked for with `admit = false`,
/// so a refusal names them — and for the IGVM file, with the guest policy's flag bits pinned;
/// `tdx`), labelled after `label`, each naming the image's SBOM (`sbom.digest`) when the file
/// has one.
pub fn image_references(values: &Value, label: &str) -> Result<Vec<ReferenceFile>, PolicyError> {
    let image = ImageValues::read(values)?;
    let mut entries = Vec::new();
    if let Some(digest) = &image.snp {
        entries.push(ReferenceFile::snp(&format!("{label} (simulated SEV-SNP)"), Platform::SimSnp, digest, None));
    }
    entries.extend(snp_entries(&image, &|profile| match profile {
        Some(p) => format!("{label} (SEV-SNP, host {p})"),
        None => format!("{label} (SEV-SNP)"),
    }));
    if let Some(digest) = &image.igvm {
        entries.push(ReferenceFile::snp(&format!("{label} (SEV-SNP, IGVM)"), Platform::Snp, digest, image.snp_policy));
    }
    if let Some(mrtd) = &image.tdx {
        entries.push(ReferenceFile::tdx(&format!("{label} (simulated TDX)"), Platform::SimTdx, mrtd));
        entries.push(ReferenceFile::tdx(&format!("{label} (TDX)"), Platform::Tdx, mrtd));
    }
    if entries.is_empty() {
        return Err(err(
            "no reference values in it (expected snp.launch_digest, igvm.snp_launch_digest or tdx.mrtd)".into()
        ));
    }
    for entry in &mut entries {
        entry.sbom = image.sbom;
    }
    Ok(entries)
}

/// The reference entries of an image from its signed CoRIM (`twi build`'s
/// `reference-values.corim`), once its signature verifies under `key`: the entries
/// [`image_references`] makes from the JSON, labelled the same, for what the build admits —
/// `sim-snp` for the ROM's launch digest on its first host profile, `snp` for each host profile
/// the build was asked for (its named SEV-SNP triples), `snp` for the IGVM file (the SEV-SNP
/// triple without a profile name), both with the guest policy's bits the CoRIM pins, `sim-tdx`
/// and `tdx` for the MRTD — each naming the SBOM the CoRIM states. A CoRIM states reference
/// values only, so host profiles a build lists but was not asked for (the JSON's
/// `admit = false` entries, which only name a profile in a refusal) are not among them.
pub fn corim_image_references(
    bytes: &[u8],
    key: &p384::ecdsa::VerifyingKey,
    label: &str,
) -> Result<Vec<ReferenceFile>, PolicyError> {
    use super::corim::{LaunchPlatform, LaunchValue};
    let values = super::corim::read_signed(bytes, key).map_err(|e| err(e.to_string()))?;
    let snp = values.launch.iter().filter(|v| v.platform == LaunchPlatform::SevSnp);
    let (rom, igvm): (Vec<&LaunchValue>, Vec<&LaunchValue>) = snp.partition(|v| v.host_profile.is_some());
    let real = |label: String, v: &LaunchValue| {
        ReferenceFile {
            policy_mask: v.policy.map(|p| super::file::U64(p.mask)),
            policy_required: v.policy.map(|p| super::file::U64(p.required)),
            ..ReferenceFile::snp(&label, Platform::Snp, &v.digest, None)
        }
        .on_host_profile(v.host_profile.as_deref(), true)
    };
    let mut entries = Vec::new();
    if let Some(first) = rom.first() {
        entries.push(ReferenceFile::snp(
            &format!("{label} (simulated SEV-SNP)"),
            Platform::SimSnp,
            &first.digest,
            None,
        ));
    }
    for v in &rom {
        let profile = v.host_profile.as_deref().unwrap_or_default();
        entries.push(real(format!("{label} (SEV-SNP, host {profile})"), v));
    }
    entries.extend(igvm.iter().map(|v| real(format!("{label} (SEV-SNP, IGVM)"), v)));
    for v in values.launch.iter().filter(|v| v.platform == LaunchPlatform::Tdx) {
        entries.push(ReferenceFile::tdx(&format!("{label} (simulated TDX)"), Platform::SimTdx, &v.digest));
        entries.push(ReferenceFile::tdx(&format!("{label} (TDX)"), Platform::Tdx, &v.digest));
    }
    let sbom = values.sbom.map(SbomDigest);
    Ok(entries.into_iter().map(|entry| ReferenceFile { sbom, ..entry }).collect())
}

impl Policy {
    /// A TOML snippet of `[[workload.reference]]` entries for the values in a
    /// `reference-values.json`, labelled `label`, to go under a workload's `[[workload]]`
    /// table (`twi policy add-image` edits the file itself). Takes what the file has:
    /// `snp.launch_digest` (with `snp.policy`), `igvm.snp_launch_digest`,
    /// `sim_snp.launch_digest`, `tdx.mrtd` (and `tdx.rtmr` when it lists RTMRs).
    pub fn reference_values_entry(json: &str, label: &str) -> Result<String, PolicyError> {
        let values: Value = serde_json::from_str(json).map_err(|e| err(format!("not JSON: {e}")))?;
        let image = ImageValues::read(&values)?;
        let mut entries = Vec::new();
        let snp =
            |label: String, platform, digest: &[u8; 48]| ReferenceFile::snp(&label, platform, digest, image.snp_policy);
        entries.extend(snp_entries(&image, &|profile| match profile {
            Some(p) => format!("{label} (host {p})"),
            None => label.to_string(),
        }));
        if let Some(d) = &image.igvm {
            entries.push(snp(format!("{label} (IGVM)"), Platform::Snp, d));
        }
        if let Some(d) = &image.sim_snp {
            entries.push(snp(format!("{label} (simulated)"), Platform::SimSnp, d));
        }
        if let Some(mrtd) = &image.tdx {
            let [rtmr0, rtmr1, rtmr2, rtmr3] = image.rtmr.map(|r| r.map(Hex));
            entries.push(ReferenceFile {
                rtmr0,
                rtmr1,
                rtmr2,
                rtmr3,
                ..ReferenceFile::tdx(label, Platform::Tdx, mrtd)
            });
        }
        if entries.is_empty() {
            return Err(err(
                "no reference values found (expected snp.launch_digest, igvm.snp_launch_digest, sim_snp.launch_digest or tdx.mrtd)".into(),
            ));
        }
        let mut out = format!("# From reference-values.json ({}).\n", image.origin);
        for mut entry in entries {
            entry.sbom = image.sbom;
            out.push_str(&format!("[[workload.reference]]\n{}\n", entry.to_toml()?));
        }
        Ok(out)
    }
}
