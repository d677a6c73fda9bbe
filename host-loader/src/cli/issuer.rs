//! The issuer as the subcommands open it: the embedded issuer's state, the anchor an image
//! trusts (and the check that an image trusts the issuer a run will use), and the appraisal
//! policy file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use twi_issuer::policy::{Fidelity, Policy, PolicyKey};
use twi_issuer::{Issuer, IssuerCa, IssuerConfig};
use twi_proto::manifest::{Diagnostic, LaunchManifest, MANIFEST_FORMAT};

use super::args::IdentityArgs;

/// The embedded issuer's state directory: `STATE/issuer`.
pub fn issuer_dir(state: &Path) -> PathBuf {
    state.join("issuer")
}

/// Opens (or makes) the embedded issuer's CA under `STATE/issuer`: the anchor images embed,
/// before a policy is known.
pub fn open_ca(state: &Path, identity: &IdentityArgs) -> Result<IssuerCa> {
    IssuerCa::load_or_create(&issuer_dir(state), &identity.trust_domain).context("opening the issuer's CA")
}

/// Opens (or makes) the embedded issuer under `STATE/issuer`, issuing under `policy`.
pub fn open_issuer(
    state: &Path,
    identity: &IdentityArgs,
    sim_root: Option<x509_cert::Certificate>,
    policy: Policy,
) -> Result<Issuer> {
    open_issuer_shared(state, identity, sim_root, policy, None, twi_issuer::HeldKeys::default())
}

/// [`open_issuer`], as one of the replicas whose mutable state is in the PostgreSQL database
/// at `database` (`None`: the embedded stores), holding the keys `held` names.
pub fn open_issuer_shared(
    state: &Path,
    identity: &IdentityArgs,
    sim_root: Option<x509_cert::Certificate>,
    policy: Policy,
    database: Option<&str>,
    held: twi_issuer::HeldKeys,
) -> Result<Issuer> {
    let config = IssuerConfig { trust_domain: identity.trust_domain.clone(), sim_snp_root: sim_root };
    let database = database.map(twi_issuer::database::Postgres::connect).transpose()?.map(std::sync::Arc::new);
    Issuer::open_holding(&issuer_dir(state), config, policy, database, held).context("opening the issuer")
}

/// The issuer an image trusts: its CA's public key (SEC1) and name.
#[derive(Debug, Clone)]
pub struct Anchor {
    pub public_key: Vec<u8>,
    pub name: String,
}

impl Anchor {
    /// The embedded issuer's.
    pub fn of(ca: &IssuerCa) -> Self {
        Self { public_key: ca.public_key_sec1(), name: ca.subject().to_string() }
    }

    /// A remote issuer's, from its CA certificate.
    pub fn of_certificate(certificate: &x509_cert::Certificate) -> Self {
        let tbs = certificate.tbs_certificate();
        Self {
            public_key: tbs.subject_public_key_info().subject_public_key.raw_bytes().to_vec(),
            name: tbs.subject().to_string(),
        }
    }

    /// The launch manifest of an image that trusts this issuer.
    pub fn manifest(&self, diagnostic: Diagnostic) -> LaunchManifest {
        LaunchManifest {
            format: MANIFEST_FORMAT,
            issuer_anchor: self.public_key.clone(),
            issuer_name: self.name.clone(),
            diagnostic,
            settings: Vec::new(),
        }
    }

    /// Refuses an image whose manifest trusts another issuer: the guest would boot, be
    /// issued a credential and refuse it. `issuer` names where this run's issuer comes from
    /// (`--state DIR` or `the issuer at URL`), `fix` what to do instead.
    pub fn check_image(&self, image: &Path, manifest: &LaunchManifest, issuer: &str, fix: &str) -> Result<()> {
        if manifest.issuer_anchor == self.public_key {
            return Ok(());
        }
        let key = |k: &[u8]| hex::encode(k.get(1..9).unwrap_or(k));
        bail!(
            "{} was built for another issuer: it trusts \"{}\" (key {}…), but this run's issuer ({issuer}) is \"{}\" (key {}…): {fix}",
            image.display(),
            manifest.issuer_name,
            key(&manifest.issuer_anchor),
            self.name,
            key(&self.public_key)
        )
    }
}

/// Reads an appraisal policy. With `key`, its signature must verify (and must exist if the
/// policy declares CF_L0 platform claims). Without one, the policy is used all the same and
/// its CF_L0 workloads are not admitted, as the policy format says (the issuer refuses to
/// vouch for unsigned claims): a warning names them and what to do.
pub fn load_policy(path: &Path, key: Option<&Path>) -> Result<Policy> {
    if let Some(key) = key {
        let key = PolicyKey::load(key).context("--policy-key")?;
        return Policy::load_verified(path, Some(&key)).map_err(|e| anyhow::anyhow!("the appraisal policy: {e}"));
    }
    let policy = Policy::load(path).map_err(|e| anyhow::anyhow!("the appraisal policy: {e}"))?;
    for workload in policy.workloads.iter().filter(|w| w.fidelity == Fidelity::Declared) {
        eprintln!(
            "twi: warning: {}: workload `{}` declares CF_L0 platform claims, which count only under the policy key's signature, and no --policy-key is given: no launch is admitted as it (sign the file, e.g. `openssl dgst -sha384 -sign policy-key.pem -out {}.sig {}`, and pass --policy-key)",
            path.display(),
            workload.id,
            path.display(),
            path.display()
        );
    }
    Ok(policy)
}
