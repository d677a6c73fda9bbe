//! The reference values of `twi build` as a CoRIM (`reference-values.corim`; the format is
//! `twi_issuer::policy::corim`, which the issuer's policy reads back), and the IGVM file's own
//! CoRIM headers.
//!
//! Signed with `--corim-key` (a P-384 private key in PEM: ES384), else written unsigned — a bare
//! `#6.501` document, which the issuer's policy refuses — and the build says so. No throwaway key
//! stands in for a signature.
//!
//! With `--igvm-corim`, the IGVM file carries, for its SEV-SNP platform, the CoRIM document
//! (`IGVM_VHT_CORIM_DOCUMENT`: the `igvm` crate's launch-measurement profile, its digest the
//! crate's own calculation, checked against ours) and, with a key, its signature
//! (`IGVM_VHT_CORIM_SIGNATURE`: a COSE_Sign1 over that document with a nil payload, as the
//! header's definition asks). Initialization headers are not measured, so the launch digest is
//! the same with or without them. Opt-in, because a loader built without the `igvm` crate's
//! `corim` feature (as `igvm_c`'s Makefile builds the C library QEMU links) refuses a file with
//! header types it does not know.

use std::path::Path;

use anyhow::{Context, Result, bail};
use igvm::IgvmFile;
use igvm::corim::launch_measurement::{LaunchMeasurement, MeasurementKind};
use igvm_defs::IgvmPlatformType;
use p384::ecdsa::SigningKey;
use twi_issuer::policy::corim::{self, LaunchPlatform, LaunchValue, PolicyBits};
use zeroize::Zeroizing;

pub use corim::FILE_NAME;

/// The key `twi build --corim-key` signs with, and the signer name the CoRIM states.
#[derive(Debug)]
pub struct CorimKey {
    key: SigningKey,
    signer: String,
}

impl CorimKey {
    /// A P-384 private key in PEM (PKCS#8, `openssl genpkey -algorithm EC -pkeyopt
    /// ec_paramgen_curve:P-384`, or SEC1, `openssl ecparam -name secp384r1 -genkey`).
    pub fn load(path: &Path, signer: &str) -> Result<Self> {
        Ok(Self { key: p384_private_key(path, "--corim-key", "corim-key.pem")?, signer: signer.to_string() })
    }
}

/// The P-384 private key in PEM (PKCS#8 or SEC1) at `path`, given as option `flag`; the error
/// says how to make one (as `example`).
pub fn p384_private_key(path: &Path, flag: &str, example: &str) -> Result<SigningKey> {
    use p384::pkcs8::DecodePrivateKey;
    let pem = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("{flag} {}: cannot read it", path.display()))?,
    );
    let secret = p384::SecretKey::from_pkcs8_pem(&pem).or_else(|_| p384::SecretKey::from_sec1_pem(&pem));
    let secret = secret.map_err(|_| {
        anyhow::anyhow!(
            "{flag} {}: not a P-384 private key in PEM (make one with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out {example}`)",
            path.display()
        )
    })?;
    Ok(SigningKey::from(secret))
}

/// What `twi build` does with CoRIMs: the key to sign them, whether the IGVM file carries its
/// own, and the security version number that one endorses.
#[derive(Debug, Default)]
pub struct CorimSettings {
    pub key: Option<CorimKey>,
    pub igvm: bool,
    pub svn: u64,
    /// The reference values' `rim-validity`, from the build for this many days; `None`: none
    /// (they never expire).
    pub valid_days: Option<u32>,
}

/// The launch measurements of a build: the ROM's SEV-SNP launch digest per asked-for host
/// profile (named) and the IGVM file's (with the guest policy's flag bits the image is built
/// for), and the ROM's TDX MRTD.
pub fn launch_values(snp: &[([u8; 48], Option<&str>)], policy: u64, mrtd: &[u8; 48]) -> Vec<LaunchValue> {
    let mask = twi_issuer::policy::POLICY_FLAGS_MASK;
    let bits = PolicyBits { mask, required: policy & mask };
    let mut values: Vec<LaunchValue> = Vec::new();
    for (digest, profile) in snp {
        if !values.iter().any(|v| v.digest == *digest) {
            values.push(LaunchValue {
                platform: LaunchPlatform::SevSnp,
                digest: *digest,
                policy: Some(bits),
                host_profile: profile.map(str::to_string),
            });
        }
    }
    values.push(LaunchValue { platform: LaunchPlatform::Tdx, digest: *mrtd, policy: None, host_profile: None });
    values
}

/// `reference-values.corim`: the document for `values` and the SBOM digest the launch manifest
/// carries, identified by the ROM's SHA-384, signed when `settings` has a key.
pub fn reference_corim(
    rom_sha384: &str,
    values: &[LaunchValue],
    sbom: Option<&[u8; 48]>,
    settings: &CorimSettings,
) -> Result<Vec<u8>> {
    let short = rom_sha384.get(..32).unwrap_or(rom_sha384);
    let validity = settings.valid_days.map(|days| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        (now, now.saturating_add(i64::from(days) * 86_400))
    });
    let (id, tag) = (format!("twi-reference-values:{short}"), format!("twi-launch:{short}"));
    let document = corim::document(&id, &tag, values, sbom, validity).context("the reference values' CoRIM")?;
    match &settings.key {
        Some(k) => corim::sign(&document, &k.key, &k.signer, false).context("signing the CoRIM"),
        None => Ok(document),
    }
}

/// The IGVM file's bytes with its SEV-SNP CoRIM headers (see the module comment); the
/// `igvm` crate's launch digest must equal `ours`.
pub fn igvm_with_corim(file: &IgvmFile, ours: &[u8; 48], settings: &CorimSettings) -> Result<Vec<u8>> {
    let mut serializer = igvm::IgvmSerializer::new(file).context("the igvm crate's measurement of the IGVM file")?;
    let theirs = serializer.measurement_for(IgvmPlatformType::SEV_SNP).map(|m| m.digest.clone());
    if theirs.as_deref() != Some(ours.as_slice()) {
        bail!(
            "the igvm crate measures the IGVM file as {} but twi as {}: not embedding a CoRIM either could contradict",
            theirs.map_or_else(|| "nothing".into(), hex::encode),
            hex::encode(ours)
        );
    }
    let mut launch = LaunchMeasurement::for_platform(IgvmPlatformType::SEV_SNP)?;
    launch.set_measurement(MeasurementKind::Launch)?;
    launch.endorse(settings.svn).with(MeasurementKind::Launch)?.finish()?;
    let document = serializer.add_corim(IgvmPlatformType::SEV_SNP, launch.build())?.to_vec();
    if let Some(k) = &settings.key {
        let signature = corim::sign(&document, &k.key, &k.signer, true).context("signing the IGVM file's CoRIM")?;
        serializer.set_corim_signature(IgvmPlatformType::SEV_SNP, signature)?;
    }
    let mut out = Vec::new();
    serializer.serialize(&mut out).context("serializing the IGVM file")?;
    Ok(out)
}
