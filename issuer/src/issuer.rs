//! The issuer in one process: a thin front that holds its roles — the Verifier, the
//! appraisal policy, the Credential Authority, the Key Store, the provenance log — over one
//! state directory, and is configured with the platforms it accepts evidence from. What each
//! role is asked is `asks.rs`.
//!
//! It always runs under an appraisal policy: a launch no policy admits gets nothing, and every
//! credential is logged (`twi run` writes a development policy admitting exactly its image
//! when it is given none).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use twi_proto::msg::Platform;
use twi_verifier::snp::SnpConfig;
use twi_verifier::tdx::{Collateral, TdxConfig};
use x509_cert::Certificate;

use crate::ca::{CredentialAuthority, IssuerCa};
use crate::database::Postgres;
use crate::error::IssuerError;
use crate::freshness::SharedFreshness;
use crate::held::{CA_KEYS, CaKeys, HeldKeys, KEY_STORE_KEYS, KeyStoreKeys, LOG_KEYS, LogKeys, held};
use crate::jose::Jwk;
use crate::key_store_ca::KeyStoreCa;
use crate::keystore::KeyStore;
use crate::ledger::Ledger;
use crate::policy::Policy;
use crate::records::{LOG_KID, Records};
use crate::verifier::{VERIFIER_KID, VerifierRole};
use crate::waiting::SharedResults;

/// Issuer settings.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// The trust domain the CA is named for when the state directory has none yet
    /// (`TWI issuer CA for <trust domain>`); credentials name the policy's trust domain.
    pub trust_domain: String,
    /// The simulated TEE's root (self-signed ARK), accepted only when set.
    pub sim_snp_root: Option<Certificate>,
}

/// The issuer: its roles over one state directory, under one appraisal policy.
///
/// Its asks take `&self`, so that requests are served side by side (`twi serve` shares it in an
/// `Arc`): the policy, the verifiers and every role's keys are read-only once it is configured,
/// and each piece that changes has its own lock, held only for that change — the Verifier's
/// nonces and epochs (a nonce is spent once), the Credential Authority's results awaiting
/// redemption, the Key Store's slot and the log (one transaction per issuance).
#[derive(Debug)]
pub struct Issuer {
    pub(crate) dir: PathBuf,
    pub(crate) clock: fn() -> SystemTime,
    pub(crate) policy: Policy,
    pub(crate) verifier: VerifierRole,
    /// `None` in a process that does not hold the CA's keys.
    pub(crate) ca: Option<CredentialAuthority>,
    /// The CA's certificate: the relying-party id (TACRA `rp_id`) evidence binds.
    pub(crate) ca_certificate: Certificate,
    /// Mechanism D's Key Store, opened (and its keys made) on first use; with replicas, at the start.
    pub(crate) key_store: Mutex<Option<Arc<KeyStore>>>,
    /// Held across one provisioning (look, make, keep), so that two owner requests in this
    /// process provision a workload once; provisioning is rare, so it is taken in turn.
    pub(crate) provisioning: Mutex<()>,
    /// Whether this process holds the Key Store's keys (opens it, makes them).
    pub(crate) holds_key_store: bool,
    /// The Credential Authority the Key Store has its keys certified by: here, or in the CA
    /// process it calls.
    pub(crate) key_store_ca: KeyStoreCa,
    /// The provenance log: here (this process holds its keys), in the log process it calls, or
    /// `None` (it makes no credentials).
    pub(crate) log: Option<Ledger>,
    /// With replicas: the mechanism-B results waiting to be redeemed at any of them.
    pub(crate) results: Option<SharedResults>,
    /// With replicas: their database (the Key Store keeps its credentials there).
    pub(crate) database: Option<Arc<Postgres>>,
}

/// The public keys the roles sign JSON with, as published JWKs (`kid` names the role).
#[derive(Debug, Clone)]
pub struct PublishedKeys {
    /// The Verifier's (`twi-verifier`): attestation results.
    pub verifier: Option<serde_json::Value>,
    /// The Credential Authority's: WITs (`twi-wit`, P-384; `twi-wit-es256`, P-256, under the
    /// policy's `wit_alg = "ES256"`), the signing key first, then the previous `wit_alg`'s
    /// while the state holds it. Empty where this process has no Credential Authority.
    pub wit: Vec<serde_json::Value>,
    /// The provenance log's (`twi-log`): signed tree heads.
    pub log: Option<serde_json::Value>,
}

impl PublishedKeys {
    /// All of them as one JWKS (`{"keys": [...]}`): the WIT keys, the Verifier's, the log's.
    pub fn jwks(self) -> serde_json::Value {
        let others = [self.verifier, self.log].into_iter().flatten();
        serde_json::json!({ "keys": self.wit.into_iter().chain(others).collect::<Vec<_>>() })
    }
}

impl Issuer {
    /// Opens (or creates) the issuer's state under `state_dir`, issuing under `policy`.
    pub fn open(state_dir: &Path, config: IssuerConfig, policy: Policy) -> Result<Self, IssuerError> {
        Self::open_shared(state_dir, config, policy, None)
    }

    /// Opens the issuer as one of several replicas: the keys in `state_dir` (which the
    /// replicas share), the log, nonces and epochs in the PostgreSQL `database` (its tables
    /// created if absent). `None`: as [`Issuer::open`].
    pub fn open_shared(
        state_dir: &Path,
        config: IssuerConfig,
        policy: Policy,
        database: Option<Arc<Postgres>>,
    ) -> Result<Self, IssuerError> {
        Self::open_holding(state_dir, config, policy, database, HeldKeys::default())
    }

    /// As [`Issuer::open_shared`], holding only the keys `held` names in `state_dir` (a
    /// process serving some of the roles: `twi serve --roles`).
    pub fn open_holding(
        state_dir: &Path,
        config: IssuerConfig,
        policy: Policy,
        database: Option<Arc<Postgres>>,
        held: HeldKeys,
    ) -> Result<Self, IssuerError> {
        let shared = database.clone().map(SharedFreshness::open).transpose()?;
        let results = database.clone().map(SharedResults::open).transpose()?;
        let (ca, key_store, ca_certificate) = match held.ca {
            CaKeys::Public(certificate) => (None, None, *certificate),
            CaKeys::Held => {
                let ca =
                    CredentialAuthority::open(state_dir, &config.trust_domain, &policy.trust_domain, policy.wit_alg)?;
                // Replicas' keys are all made at the first start, so a copy of that state directory
                // holds every key the replicas must share (the Key Store's too, made lazily otherwise).
                let key_store = match held.key_store {
                    KeyStoreKeys::Held => database.clone().map(|db| KeyStore::open(state_dir, Some(db))).transpose()?,
                    KeyStoreKeys::NotHeld => None,
                };
                let certificate = ca.ca().certificate().clone();
                (Some(ca), key_store, certificate)
            }
        };
        let log = match held.log {
            LogKeys::Held => {
                Some(Ledger::Here(Box::new(Records::open(state_dir, &policy.trust_domain, database.as_ref())?)))
            }
            LogKeys::Peer(peer) => Some(Ledger::Peer(peer)),
            LogKeys::None => None,
        };
        Ok(Self {
            dir: state_dir.to_path_buf(),
            clock: SystemTime::now,
            verifier: VerifierRole::open(state_dir, config.sim_snp_root.as_ref(), shared, held.verifier)?,
            log,
            ca,
            ca_certificate,
            policy,
            key_store: Mutex::new(key_store.map(Arc::new)),
            provisioning: Mutex::new(()),
            holds_key_store: held.key_store == KeyStoreKeys::Held,
            key_store_ca: KeyStoreCa::Here,
            results,
            database,
        })
    }

    /// Accepts evidence from real AMD SEV-SNP hardware under `config`
    /// (`SnpConfig::default()`: AMD's built-in roots, the default policy).
    pub fn accept_hardware_snp(&mut self, config: SnpConfig) {
        self.verifier.accept_hardware_snp(config);
    }

    /// The Verifier checks `endorsements` (DER, leaf first) of `platform` ahead of the evidence
    /// that will come with them and keeps what verified: a host that knows the certificates it
    /// will deliver calls this while the guest boots, so the issuance has less to do. What
    /// does not verify is refused at the issuance, as without this call.
    pub fn prepare_endorsements(&self, platform: Platform, endorsements: &[Vec<u8>]) {
        self.verifier.prepare(platform, endorsements, (self.clock)());
    }

    /// SEV-SNP appraisals that reused an endorsement chain the Verifier verified before (at an
    /// earlier appraisal, or ahead of this one through [`Self::prepare_endorsements`]).
    pub fn cached_chain_hits(&self) -> u64 {
        self.verifier.cached_chain_hits()
    }

    /// Accepts evidence from real Intel TDX hardware under `config`, judging the TCB with
    /// `collateral` (verified again at each issuance, so it must be current); without
    /// collateral only if `config.policy.skip_tcb`.
    pub fn accept_hardware_tdx(&mut self, config: TdxConfig, collateral: Option<Collateral>) {
        self.verifier.accept_hardware_tdx(config, collateral);
    }

    /// Accepts evidence from the simulated TDX platform (`twi run --platform sim-tdx`):
    /// quotes whose PCK chain ends in `root`, judged with `collateral` (signed under the same
    /// root) by the same verifier as Intel's. Credentials issued on them say "sim-tdx".
    pub fn accept_simulated_tdx(&mut self, root: &Certificate, collateral: Collateral) -> Result<(), IssuerError> {
        self.verifier.accept_simulated_tdx(root, collateral)
    }

    /// Encrypts the provenance record of every credential issued from now on to `auditor`
    /// (`twi serve --auditor-key`): the statements, the leaves, receipts and checkpoints stay
    /// verifiable by anyone, only the auditor reads the records. `None`: records in clear.
    pub fn seal_records_to(&mut self, auditor: Option<crate::provenance::AuditorKey>) {
        if let Some(Ledger::Here(records)) = self.log.as_mut() {
            records.seal_to(auditor);
        }
    }

    /// The appraisal policy it issues under.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The Credential Authority's CA: the anchor images embed (an error in a process that
    /// does not hold the CA's keys).
    pub fn ca(&self) -> Result<&IssuerCa, IssuerError> {
        Ok(self.authority()?.ca())
    }

    /// The CA's certificate, also in a process that does not hold its keys.
    pub fn ca_certificate(&self) -> &Certificate {
        &self.ca_certificate
    }

    /// The Credential Authority, if this process holds its keys.
    pub(crate) fn authority(&self) -> Result<&CredentialAuthority, IssuerError> {
        held(&self.ca, CA_KEYS)
    }

    /// The provenance log, if this process holds its keys.
    pub(crate) fn records(&self) -> Result<&Records, IssuerError> {
        self.log.as_ref().and_then(Ledger::here).ok_or(IssuerError::NotHeld(LOG_KEYS))
    }

    /// The provenance log the Credential Authority signs and appends its records with: here, or
    /// in the log process it calls.
    pub(crate) fn ledger(&self) -> Result<&Ledger, IssuerError> {
        held(&self.log, LOG_KEYS)
    }

    /// The keys the Verifier, the Credential Authority and the log sign JSON with, those this
    /// process knows (`None`: it holds neither the key nor its public half).
    pub fn published_keys(&self) -> PublishedKeys {
        PublishedKeys {
            verifier: self.verifier.public_key().ok().map(|key| Jwk::published(key, VERIFIER_KID)),
            wit: self.ca.iter().flat_map(|ca| ca.wit_keys()).map(|(kid, key)| Jwk::published(key, kid)).collect(),
            log: self.records().ok().map(|records| Jwk::published(records.public_key(), LOG_KID)),
        }
    }

    /// Has the Key Store's keys certified by `ca`: this process's Credential Authority (the
    /// default), or the CA process a Key Store without the CA role calls (`twi serve --roles
    /// key-store --ca-url`).
    pub fn certify_key_store_by(&mut self, ca: KeyStoreCa) {
        self.key_store_ca = ca;
    }

    /// The Key Store (opened, and its signing key created, on first use: under its slot's
    /// lock, so that two first requests open it once).
    pub fn key_store(&self) -> Result<Arc<KeyStore>, IssuerError> {
        if !self.holds_key_store {
            return Err(IssuerError::NotHeld(KEY_STORE_KEYS));
        }
        let mut slot = self.key_store.lock().unwrap_or_else(PoisonError::into_inner);
        match &*slot {
            Some(store) => Ok(store.clone()),
            None => Ok(slot.insert(Arc::new(KeyStore::open(&self.dir, self.database.clone())?)).clone()),
        }
    }
}
