//! The **Key Store** (mechanism D of draft-novak-twi-attestation): the workload owner
//! provisions a credential and its private key; the Key Store releases the key only to a launch
//! the Verifier appraised, HPKE-encrypted (RFC 9180, DHKEM(P-384, HKDF-SHA384), HKDF-SHA384,
//! AES-256-GCM: [`twi_attester::hpke`]) to the ephemeral public key that launch's Evidence
//! bound, and only once per challenge.
//!
//! State (under the issuer state directory):
//!
//! ```text
//! keystore-key.pem                    the Key Store's own signing key (release receipts), 0600
//! keystore/<slot>/credential.pem      the provisioned certificate
//! keystore/<slot>/key.pem             its private key, PKCS#8, 0600 (directory 0700)
//! keystore/released/<sha256(nonce, ephemeral key)>   one file per release: never served twice
//! ```
//!
//! `<slot>` is the first 32 hex digits of SHA-256 of the workload identifier. Replicas on a
//! PostgreSQL database keep the credentials (keys sealed to `keystore-wrap-key.pem`) and the
//! releases in its tables instead, so any replica releases what was provisioned at another
//! (`shelf.rs`).
//!
//! `KeyStore::release` takes a [`ReleaseGrant`], which only the issuer makes, after its
//! Verifier appraised the Evidence under the policy and the nonce: the type system keeps the
//! key from being released on anything else. The owner provisions with [`provision_owner`]
//! (`twi keystore provision`), no policy needed: the CA certifies the owner's key, or checks
//! the owner's certificate chains to it.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use der::{Decode, EncodePem};
use p384::ecdsa::SigningKey;
use p384::elliptic_curve::Generate;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use twi_attester::hpke;
use twi_proto::msg::{key_release_aad, key_release_info};
use x509_cert::Certificate;
use zeroize::Zeroizing;

use crate::ca::IssuerCa;
use crate::database::Postgres;
use crate::error::IssuerError;
use crate::jose::Jwk;
use crate::state;

mod shelf;

use shelf::{Held, Shelf};

/// The Key Store's `kid` in JWKS and release receipts.
pub const KEY_STORE_KID: &str = "twi-keystore";
/// `typ` of a release receipt (a JWS signed by the Key Store key).
pub const RECEIPT_TYP: &str = "twi-key-release+jwt";

/// A provisioned credential (the public half; the key stays in the store).
#[derive(Debug, Clone)]
pub struct Provisioned {
    pub workload_id: String,
    pub certificate_der: Vec<u8>,
    pub certificate_pem: String,
    pub serial_hex: String,
    /// The certified SEC1 uncompressed P-384 public key.
    pub public_key: Vec<u8>,
    /// The certificate's validity.
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl Provisioned {
    /// The provisioned credential `certificate_der` of `workload_id`, as the Key Store reports
    /// it (its serial and certified key read from the certificate itself).
    pub fn from_certificate(workload_id: &str, certificate_der: &[u8]) -> Result<Self, IssuerError> {
        parse_provisioned(workload_id, certificate_der)
    }

    /// Whether the certificate has expired at `now`.
    pub fn expired(&self, now: SystemTime) -> bool {
        now > self.not_after
    }

    /// Whether the certificate is due for renewal at `now`: past half its validity.
    pub fn renewal_due(&self, now: SystemTime) -> bool {
        let half = self.not_after.duration_since(self.not_before).unwrap_or_default() / 2;
        now >= self.not_before + half
    }
}

/// What the Verifier established, and the Key Store requires, for one release.
#[derive(Debug, Clone)]
pub struct ReleaseGrant {
    pub(crate) workload_id: String,
    pub(crate) nonce: Vec<u8>,
    /// The ephemeral HPKE public key that the appraised Evidence bound in its REPORTDATA.
    pub(crate) ephemeral_public_key: Vec<u8>,
    pub(crate) evidence_sha384: [u8; 48],
    /// Until when the evidence could be presented again (its nonce or epoch expires), so its
    /// release must be remembered; `None`: for ever (absent freshness).
    pub(crate) replayable_until: Option<SystemTime>,
}

/// A release: the provisioned credential and its key, encrypted to the ephemeral key.
#[derive(Debug, Clone)]
pub struct Release {
    pub provisioned: Provisioned,
    /// HPKE `enc` (97 bytes).
    pub enc: Vec<u8>,
    /// HPKE ciphertext of the 48-byte private scalar (64 bytes).
    pub ciphertext: Vec<u8>,
    /// The Key Store's signed receipt (compact JWS, ES384, `kid` [`KEY_STORE_KID`]).
    pub receipt: String,
}

/// Why the Key Store refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyStoreError {
    #[error(
        "no credential is provisioned for {0} in the Key Store (the workload owner provisions one first; `twi run --mechanism d` does so for the demo)"
    )]
    NotProvisioned(String),
    #[error(
        "the Key Store already released a key for this challenge (replay): one release per challenge and ephemeral key"
    )]
    AlreadyReleased,
    #[error("the ephemeral key the evidence binds is not a P-384 point")]
    BadEphemeralKey,
    #[error(
        "the credential provisioned for {workload} expired at {not_after} (Unix time) and was not renewed in time: the workload owner provisions it again"
    )]
    Expired { workload: String, not_after: u64 },
    #[error("the Key Store failed: {0}")]
    Internal(String),
}

/// The Key Store role.
pub struct KeyStore {
    shelf: Shelf,
    key: SigningKey,
    /// When the releases no grant can replay any more were last forgotten.
    pruned_at: std::sync::Mutex<Option<SystemTime>>,
}

/// How often the Key Store forgets the releases whose grants can no longer be replayed.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let on = match &self.shelf {
            Shelf::Files(_) => "files",
            Shelf::Database(_) => "database",
        };
        f.debug_struct("KeyStore").field("on", &on).finish_non_exhaustive()
    }
}

impl KeyStore {
    /// Opens (or creates) the Key Store under the issuer state directory `state_dir`; with a
    /// `database`, what is provisioned and released is kept there (the replicas' Key Store).
    pub(crate) fn open(state_dir: &Path, database: Option<Arc<Postgres>>) -> Result<Self, IssuerError> {
        let key = state::load_or_create_key(state_dir, "keystore-key.pem")?;
        Ok(Self { shelf: Shelf::open(state_dir, database)?, key, pruned_at: std::sync::Mutex::default() })
    }

    /// The public key release receipts verify under, as a JWK.
    pub fn jwk(&self) -> Value {
        Jwk::published(self.key.verifying_key(), KEY_STORE_KID)
    }

    /// The workload owner's step: stores `certificate_der` and its private `key` for
    /// `workload_id`, replacing what was there. The certificate must certify exactly `key`.
    pub(crate) fn provision(
        &self,
        workload_id: &str,
        certificate_der: &[u8],
        key: &SigningKey,
    ) -> Result<Provisioned, IssuerError> {
        let _guard = self.shelf.guard()?;
        let held = held(workload_id, certificate_der, key)?;
        self.shelf.put(&held)?;
        Ok(held.provisioned)
    }

    /// Provisions for `workload_id` what `make` returns (certificate DER and key), unless a
    /// credential is provisioned already and has not expired; check and write happen under the
    /// state lock (or as one conditional write to the database), so two processes agree on one
    /// credential. Returns it and whether it is new.
    pub(crate) fn provision_if_absent(
        &self,
        workload_id: &str,
        make: impl FnOnce() -> Result<(Vec<u8>, SigningKey), IssuerError>,
    ) -> Result<(Provisioned, bool), IssuerError> {
        let _guard = self.shelf.guard()?;
        let now = SystemTime::now();
        if let Some(existing) = self.provisioned(workload_id)?
            && !existing.expired(now)
        {
            return Ok((existing, false));
        }
        let (certificate_der, key) = make()?;
        let held = held(workload_id, &certificate_der, &key)?;
        match self.shelf.put_unless_current(&held, now)? {
            Some(kept) => Ok((kept, false)),
            None => Ok((held.provisioned, true)),
        }
    }

    /// The credential provisioned for `workload_id`, if any.
    pub fn provisioned(&self, workload_id: &str) -> Result<Option<Provisioned>, IssuerError> {
        self.shelf.provisioned(workload_id)
    }

    /// Releases the key provisioned for the grant's workload: HPKE-sealed to the grant's
    /// ephemeral key with `info` = [`key_release_info`]`(nonce, ephemeral key)` and `aad` =
    /// [`key_release_aad`]`(SHA-256(certificate))`, with the certificate `certify` issues now
    /// for the provisioned key (the Credential Authority's, with the issuer's extensions for this
    /// launch). Refused if nothing is provisioned, if the provisioned credential expired, or if
    /// this challenge was answered for this ephemeral key before (recorded durably before
    /// anything is encrypted).
    pub(crate) fn release(
        &self,
        grant: &ReleaseGrant,
        now: SystemTime,
        certify: impl FnOnce(&[u8]) -> Result<Vec<u8>, IssuerError>,
    ) -> Result<Release, KeyStoreError> {
        let internal = |e: &dyn std::fmt::Display| KeyStoreError::Internal(e.to_string());
        p384::PublicKey::from_sec1_bytes(&grant.ephemeral_public_key).map_err(|_| KeyStoreError::BadEphemeralKey)?;
        let (released, key) = self.take_key(grant, now, certify)?;

        // One release per challenge and ephemeral key, whatever happens next. Not per freshness
        // element alone: under an AF_L1 epoch, or with no freshness, launches share it, each
        // with its own ephemeral key.
        let marker = Self::released_marker(grant);
        if !self.shelf.mark_released(&marker, now, grant.replayable_until).map_err(|e| internal(&e))? {
            return Err(KeyStoreError::AlreadyReleased);
        }
        self.prune_released(now).map_err(|e| internal(&e))?;

        let certificate_sha256: [u8; 32] = Sha256::digest(&released.certificate_der).into();
        let info = key_release_info(&grant.nonce, &grant.ephemeral_public_key);
        let aad = key_release_aad(&certificate_sha256);
        let scalar = Zeroizing::new(key.to_bytes());
        let mut ciphertext = vec![0u8; scalar.len() + hpke::TAG_LEN];
        let ephemeral = p384::SecretKey::try_generate().map_err(|_| internal(&"the OS RNG failed"))?;
        let enc =
            hpke::seal_with_ephemeral(&grant.ephemeral_public_key, &ephemeral, &info, &aad, &scalar, &mut ciphertext)
                .map_err(|e| internal(&e))?;
        drop(ephemeral);
        let receipt = self.receipt(grant, &released, now, &enc, &ciphertext).map_err(|e| internal(&e))?;
        Ok(Release { provisioned: released, enc: enc.to_vec(), ciphertext, receipt })
    }

    /// Forgets, at most every [`PRUNE_EVERY`], the releases whose grants can no longer be
    /// presented (their nonce or epoch expired: the Verifier refuses such evidence before the
    /// Key Store sees it). Releases under absent freshness are kept.
    fn prune_released(&self, now: SystemTime) -> Result<(), IssuerError> {
        let mut pruned_at = self.pruned_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if pruned_at.is_some_and(|at| now.duration_since(at).unwrap_or_default() < PRUNE_EVERY) {
            return Ok(());
        }
        self.shelf.forget_released(now)?;
        *pruned_at = Some(now);
        Ok(())
    }

    /// The name of a release: SHA-256(len32(nonce) ‖ nonce ‖ ephemeral public key).
    fn released_marker(grant: &ReleaseGrant) -> [u8; 32] {
        let len = u32::try_from(grant.nonce.len()).unwrap_or(u32::MAX).to_be_bytes();
        Sha256::new()
            .chain_update(len)
            .chain_update(&grant.nonce)
            .chain_update(&grant.ephemeral_public_key)
            .finalize()
            .into()
    }

    /// Under the state lock (never half of a re-provisioning; in the database, one row read
    /// whole): the provisioned key, and the certificate `certify` issues for it now; the stored
    /// certificate is replaced by that one once past half its validity (renewed before it
    /// expires), and an expired one is refused.
    fn take_key(
        &self,
        grant: &ReleaseGrant,
        now: SystemTime,
        certify: impl FnOnce(&[u8]) -> Result<Vec<u8>, IssuerError>,
    ) -> Result<(Provisioned, SigningKey), KeyStoreError> {
        let internal = |e: &dyn std::fmt::Display| KeyStoreError::Internal(e.to_string());
        let _guard = self.shelf.guard().map_err(|e| internal(&e))?;
        let Held { provisioned, key } = self
            .shelf
            .held(&grant.workload_id)
            .map_err(|e| internal(&e))?
            .ok_or_else(|| KeyStoreError::NotProvisioned(grant.workload_id.clone()))?;
        if provisioned.expired(now) {
            let not_after = crate::jose::unix_seconds(provisioned.not_after);
            return Err(KeyStoreError::Expired { workload: grant.workload_id.clone(), not_after });
        }
        let der = certify(&provisioned.public_key).map_err(|e| internal(&e))?;
        let renewed = held(&grant.workload_id, &der, &key)
            .map_err(|_| internal(&"the released certificate does not certify the provisioned key"))?;
        if provisioned.renewal_due(now) {
            self.shelf.renew(&provisioned, &renewed).map_err(|e| internal(&e))?;
        }
        Ok((renewed.provisioned, renewed.key))
    }

    /// The Key Store's signed receipt of a release.
    fn receipt(
        &self,
        grant: &ReleaseGrant,
        released: &Provisioned,
        now: SystemTime,
        enc: &[u8],
        ciphertext: &[u8],
    ) -> Result<String, crate::jose::JoseError> {
        let mut claims = Map::new();
        claims.insert("iss".into(), "twi-keystore".into());
        claims.insert("sub".into(), released.workload_id.clone().into());
        claims.insert("iat".into(), crate::jose::unix_seconds(now).into());
        claims.insert("x509-serial".into(), released.serial_hex.clone().into());
        claims.insert("x509-sha256".into(), hex::encode(Sha256::digest(&released.certificate_der)).into());
        claims.insert("nonce-sha256".into(), hex::encode(Sha256::digest(&grant.nonce)).into());
        claims.insert("ephemeral-key".into(), hex::encode(&grant.ephemeral_public_key).into());
        claims.insert("evidence-sha384".into(), hex::encode(grant.evidence_sha384).into());
        claims.insert("enc-sha256".into(), hex::encode(Sha256::digest(enc)).into());
        claims.insert("ciphertext-sha256".into(), hex::encode(Sha256::digest(ciphertext)).into());
        claims.insert(
            "hpke".into(),
            json!({"mode": "base", "kem": hpke::KEM_ID, "kdf": hpke::KDF_ID, "aead": hpke::AEAD_ID}),
        );
        crate::jose::sign_compact(&self.key, RECEIPT_TYP, Some(KEY_STORE_KID), &claims)
    }
}

/// `certificate_der` and `key` as the shelf keeps them: refused unless the certificate
/// certifies exactly `key`.
fn held(workload_id: &str, certificate_der: &[u8], key: &SigningKey) -> Result<Held, IssuerError> {
    let provisioned = parse_provisioned(workload_id, certificate_der)?;
    if provisioned.public_key != key.verifying_key().to_sec1_point(false).as_bytes() {
        return Err(IssuerError::Certificate(
            "the provisioned certificate does not certify the provisioned key".into(),
        ));
    }
    Ok(Held { provisioned, key: key.clone() })
}

fn parse_provisioned(workload_id: &str, certificate_der: &[u8]) -> Result<Provisioned, IssuerError> {
    let bad = |e: &dyn std::fmt::Display| IssuerError::Certificate(format!("the provisioned certificate: {e}"));
    let certificate = Certificate::from_der(certificate_der).map_err(|e| bad(&e))?;
    let tbs = certificate.tbs_certificate();
    let public_key = tbs.subject_public_key_info().subject_public_key.raw_bytes().to_vec();
    let serial_hex = hex::encode(tbs.serial_number().as_bytes());
    let certificate_pem = certificate.to_pem(der::pem::LineEnding::LF).map_err(|e| bad(&e))?;
    let validity = tbs.validity();
    Ok(Provisioned {
        workload_id: workload_id.to_string(),
        certificate_der: certificate_der.to_vec(),
        certificate_pem,
        serial_hex,
        public_key,
        not_before: validity.not_before.to_system_time(),
        not_after: validity.not_after.to_system_time(),
    })
}

/// Mechanism D, the workload owner's credential (`twi keystore provision`).
#[derive(Debug, Clone, Copy)]
pub struct OwnerCredential<'a> {
    /// The workload identifier the policy names, e.g. `spiffe://example.org/payroll-app`.
    pub workload_id: &'a str,
    /// The owner's P-384 key.
    pub key: &'a SigningKey,
    /// The owner's certificate for `key` (DER): it must chain to this issuer's CA, the anchor
    /// a runtime checks a released credential against. `None`: the CA certifies `key` now.
    pub certificate: Option<&'a [u8]>,
    /// Lifetime of a certificate the CA issues here.
    pub lifetime: std::time::Duration,
    /// The auditor key the provisioning record is encrypted to (`--auditor-key`); `None`: in clear.
    pub auditor: Option<&'a crate::provenance::AuditorKey>,
}

/// Puts `owner`'s key and credential into the Key Store of the issuer state `state_dir`,
/// replacing what was there (the CA is made, named for `ca_domain`, if there is none yet).
/// Logged like any issuance, before the Key Store keeps it: a certificate the CA makes here
/// names its provenance record; an owner's own certificate gets a record under its serial.
/// With the replicas' `database`, the record goes to their log and the credential to their
/// Key Store, where every replica finds it.
pub fn provision_owner(
    state_dir: &Path,
    ca_domain: &str,
    owner: &OwnerCredential<'_>,
    database: Option<Arc<Postgres>>,
) -> Result<Provisioned, IssuerError> {
    crate::spiffe::check_workload_id(owner.workload_id, ca_domain).map_err(IssuerError::Certificate)?;
    let wrapping = state_dir.join(shelf::WRAPPING_KEY);
    if database.is_some() && !wrapping.exists() {
        // Keys made here would be this directory's own: a CA the replicas do not issue under,
        // a wrapping key they cannot open the row with.
        return Err(IssuerError::State(
            wrapping,
            "is missing: provisioning into the replicas' database needs a copy of their state directory (made after a replica's first start), whose keys they share".into(),
        ));
    }
    let ca = IssuerCa::load_or_create(state_dir, ca_domain)?;
    let mut records = crate::records::Records::open(state_dir, ca_domain, database.as_ref())?;
    records.seal_to(owner.auditor.cloned());
    let now = SystemTime::now();
    let record = |serial_hex: &str| records.provisioning(owner.workload_id, serial_hex, OWNER_CLI, NO_POLICY, now);
    let (der, statement) = match owner.certificate {
        Some(der) => {
            ca.check_owner_certificate(der, owner.workload_id, now)?;
            let certificate = Certificate::from_der(der).map_err(IssuerError::certificate)?;
            (der.to_vec(), record(&hex::encode(certificate.tbs_certificate().serial_number().as_bytes()))?)
        }
        None => {
            let serial = crate::ca::random_serial()?;
            let statement = record(&hex::encode(serial.as_bytes()))?;
            let extra =
                vec![crate::ca::log_entry_extension(&crate::oids::Oids::load(state_dir)?, &records.entry(&statement))?];
            let key = owner.key.verifying_key();
            (ca.certify_key_named(owner.workload_id, key, owner.lifetime, serial, extra)?.der, statement)
        }
    };
    records.record(&[statement], None, now)?;
    KeyStore::open(state_dir, database)?.provision(owner.workload_id, &der, owner.key)
}

/// Who provisions with [`provision_owner`], as its provenance record names them.
const OWNER_CLI: &str = "the workload owner (twi keystore provision, on the issuer's host)";
/// The policy version a provisioning record names when no policy was consulted.
const NO_POLICY: &str = "none (owner-provisioning)";

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const WORKLOAD: &str = "spiffe://example.org/payroll-app";
    const HOUR: Duration = Duration::from_secs(3600);

    /// The CA certifying a released key for WORKLOAD (what the issuer passes as `certify`).
    fn certifier(ca: &IssuerCa) -> impl Fn(&[u8]) -> Result<Vec<u8>, IssuerError> + Copy + '_ {
        move |sec1| {
            let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(sec1).unwrap();
            Ok(ca.certify_key(WORKLOAD, &key, HOUR)?.der)
        }
    }

    /// A Key Store in files under `dir` holding WORKLOAD's new key, certified by `ca`.
    fn provisioned_in_files(dir: &Path, ca: &IssuerCa) -> (KeyStore, SigningKey) {
        let store = KeyStore::open(dir, None).unwrap();
        let key = SigningKey::try_generate().unwrap();
        store.provision(WORKLOAD, &ca.certify_key(WORKLOAD, key.verifying_key(), HOUR).unwrap().der, &key).unwrap();
        (store, key)
    }

    fn grant(nonce: u8) -> ReleaseGrant {
        let ephemeral = p384::SecretKey::try_generate().unwrap();
        ReleaseGrant {
            workload_id: WORKLOAD.into(),
            nonce: vec![nonce; 32],
            ephemeral_public_key: hpke::serialize_public_key(&ephemeral.public_key()).to_vec(),
            evidence_sha384: [nonce; 48],
            replayable_until: None,
        }
    }

    /// `twi keystore provision` on the issuer's host is logged like any issuance: the
    /// certificate the CA makes names its record, and an owner's own certificate gets one too.
    #[test]
    fn provisioning_by_the_owner_is_logged_and_the_certificate_names_its_record() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::try_generate().unwrap();
        let owner =
            OwnerCredential { workload_id: WORKLOAD, key: &key, certificate: None, lifetime: HOUR, auditor: None };
        let provisioned = provision_owner(dir.path(), "example.org", &owner, None).unwrap();
        let records = crate::records::Records::open(dir.path(), "example.org", None);
        let proof = records.unwrap().prove(&provisioned.serial_hex).unwrap().expect("the provisioning is logged");
        let statement = hex::decode(proof["statement"].as_str().unwrap()).unwrap();
        let record = crate::provenance::SignedStatement::decode(&statement).unwrap().record().cloned().unwrap();
        assert_eq!(
            (record.workload_id.as_str(), record.decision.criteria["step"].as_str()),
            (WORKLOAD, "owner-provisioning")
        );
        let named = hex::decode(proof["statement_sha256"].as_str().unwrap()).unwrap();
        assert!(provisioned.certificate_der.windows(32).any(|w| w == named), "the certificate names its record");

        // The owner's own certificate (from this CA): kept, and logged under its serial.
        let ca = IssuerCa::load_or_create(dir.path(), "example.org").unwrap();
        let own = ca.certify_key(WORKLOAD, key.verifying_key(), HOUR).unwrap();
        let owner = OwnerCredential { certificate: Some(&own.der), ..owner };
        let kept = provision_owner(dir.path(), "example.org", &owner, None).unwrap();
        assert_eq!(kept.serial_hex, own.serial_hex);
        let records = crate::records::Records::open(dir.path(), "example.org", None);
        assert!(records.unwrap().prove(&own.serial_hex).unwrap().is_some(), "the owner's certificate is logged");
    }

    /// A release answers a challenge for one ephemeral key once; two launches that share a
    /// freshness element (an AF_L1 epoch) have their own ephemeral keys, each answered.
    #[test]
    fn one_release_per_challenge_and_key_even_when_launches_share_an_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let ca = IssuerCa::load_or_create(dir.path(), "example.org").unwrap();
        let (store, key) = provisioned_in_files(dir.path(), &ca);
        let certify = certifier(&ca);
        let now = SystemTime::now();
        let epoch = grant_to_known(1);
        assert_eq!(opened(&store.release(&epoch, now, certify).unwrap(), 1), key.to_bytes().to_vec());
        assert!(matches!(store.release(&epoch, now, certify), Err(KeyStoreError::AlreadyReleased)));
        // The same epoch, another launch: its own ephemeral key (and Evidence).
        let public = hpke::serialize_public_key(&ephemeral_secret(2).public_key()).to_vec();
        let second_launch = ReleaseGrant { ephemeral_public_key: public, evidence_sha384: [9; 48], ..grant(1) };
        let released = store.release(&second_launch, now, certify).unwrap();
        let (secret, aad) =
            (ephemeral_secret(2), key_release_aad(&Sha256::digest(&released.provisioned.certificate_der).into()));
        let info = key_release_info(&[1; 32], &second_launch.ephemeral_public_key);
        let mut scalar = vec![0u8; 48];
        hpke::open(&secret, &released.enc, &info, &aad, &released.ciphertext, &mut scalar).unwrap();
        assert_eq!(scalar, key.to_bytes().to_vec());
    }

    /// A release is remembered while its grant could be presented again (its nonce or epoch
    /// lives), then forgotten; one under absent freshness is remembered for ever.
    #[test]
    fn releases_are_forgotten_once_their_grants_expire_but_not_without_freshness() {
        let dir = tempfile::tempdir().unwrap();
        let ca = IssuerCa::load_or_create(dir.path(), "example.org").unwrap();
        let (store, _) = provisioned_in_files(dir.path(), &ca);
        let certify = certifier(&ca);
        let markers = || std::fs::read_dir(dir.path().join("keystore/released")).unwrap().count();
        let now = SystemTime::now();
        let nonce = ReleaseGrant { replayable_until: Some(now + Duration::from_secs(300)), ..grant_to_known(1) };
        store.release(&nonce, now, certify).unwrap();
        store.release(&grant_to_known(2), now, certify).unwrap();
        assert_eq!(markers(), 2);
        // While the nonce lives: remembered, and refused again.
        let soon = now + Duration::from_secs(120);
        store.release(&grant_to_known(3), soon, certify).unwrap();
        assert_eq!(markers(), 3);
        assert!(matches!(store.release(&nonce, soon, certify), Err(KeyStoreError::AlreadyReleased)));
        // Past it: forgotten at the next release; the absent-freshness ones stay.
        store.release(&grant_to_known(4), now + Duration::from_secs(400), certify).unwrap();
        assert_eq!(markers(), 3, "the expired grant's release is forgotten, the others kept");
        let refused = store.release(&grant_to_known(2), now + HOUR / 2, certify);
        assert!(matches!(refused, Err(KeyStoreError::AlreadyReleased)), "absent freshness: remembered for ever");
    }

    #[test]
    fn the_stored_credential_is_renewed_past_half_its_life_and_an_expired_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = IssuerCa::load_or_create(dir.path(), "example.org").unwrap();
        let store = KeyStore::open(dir.path(), None).unwrap();
        let key = SigningKey::try_generate().unwrap();
        let first = store.provision(WORKLOAD, &ca.certify_key(WORKLOAD, key.verifying_key(), HOUR).unwrap().der, &key);
        let first = first.unwrap();
        let certify = certifier(&ca);
        let now = SystemTime::now();
        // Early in its life: released with a fresh certificate, the stored one kept.
        let early = store.release(&grant(1), now + HOUR / 6, certify).unwrap();
        assert_ne!(early.provisioned.serial_hex, first.serial_hex);
        assert_eq!(early.provisioned.public_key, first.public_key);
        assert_eq!(store.provisioned(WORKLOAD).unwrap().unwrap().serial_hex, first.serial_hex);
        // Past half its life: the stored certificate is replaced by the one released.
        let late = store.release(&grant(2), now + HOUR * 2 / 3, certify).unwrap();
        assert_eq!(store.provisioned(WORKLOAD).unwrap().unwrap().serial_hex, late.provisioned.serial_hex);
        // Expired and never renewed: refused, saying what to do.
        let other = tempfile::tempdir().unwrap();
        let store = KeyStore::open(other.path(), None).unwrap();
        store.provision(WORKLOAD, &first.certificate_der, &key).unwrap();
        let refused = store.release(&grant(3), now + HOUR * 2, certify).unwrap_err();
        assert!(matches!(refused, KeyStoreError::Expired { .. }), "{refused}");
        assert!(refused.to_string().contains("provisions it again"), "{refused}");
        // A certificate for another key is never released with this one.
        let stranger = SigningKey::try_generate().unwrap();
        let wrong = |_: &[u8]| Ok(ca.certify_key(WORKLOAD, stranger.verifying_key(), HOUR)?.der);
        assert!(matches!(store.release(&grant(4), now, wrong), Err(KeyStoreError::Internal(_))));
    }

    /// The key `release` sealed to `grant(nonce)`'s ephemeral key, opened as the runtime does.
    fn opened(release: &Release, nonce: u8) -> Vec<u8> {
        let secret = ephemeral_secret(nonce);
        let certificate_sha256: [u8; 32] = Sha256::digest(&release.provisioned.certificate_der).into();
        let public = hpke::serialize_public_key(&secret.public_key());
        let (info, aad) = (key_release_info(&[nonce; 32], &public), key_release_aad(&certificate_sha256));
        let mut scalar = vec![0u8; 48];
        hpke::open(&secret, &release.enc, &info, &aad, &release.ciphertext, &mut scalar).unwrap();
        scalar
    }

    fn ephemeral_secret(nonce: u8) -> p384::SecretKey {
        p384::SecretKey::from_slice(&[nonce; 48]).unwrap()
    }

    fn grant_to_known(nonce: u8) -> ReleaseGrant {
        let public = hpke::serialize_public_key(&ephemeral_secret(nonce).public_key()).to_vec();
        ReleaseGrant { ephemeral_public_key: public, ..grant(nonce) }
    }

    /// Replicas on one database, each with its own copy of the state directory: what the owner
    /// provisioned at one is released by the other, a challenge is answered once across them,
    /// a renewal at one is what the other finds, and the rows hold the key sealed, never in
    /// clear; a row moved to another workload, or read with another wrapping key, does not open.
    #[test]
    fn replicas_share_the_key_store_through_the_database_with_keys_sealed() {
        let cluster = twi_testkit::postgres::Cluster::start();
        let pg = || Arc::new(Postgres::connect(&cluster.url()).unwrap());
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let key = SigningKey::try_generate().unwrap();
        let owner =
            OwnerCredential { workload_id: WORKLOAD, key: &key, certificate: None, lifetime: HOUR, auditor: None };
        // Not into the database from a directory that is not the replicas' state.
        let refused = provision_owner(a.path(), "example.org", &owner, Some(pg())).unwrap_err().to_string();
        assert!(refused.contains("needs a copy of their state directory"), "{refused}");
        let at_a = KeyStore::open(a.path(), Some(pg())).unwrap();
        let first = provision_owner(a.path(), "example.org", &owner, Some(pg())).unwrap();
        assert!(!a.path().join("keystore").exists(), "nothing provisioned is kept in files");
        for entry in std::fs::read_dir(a.path()).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), b.path().join(entry.file_name())).unwrap();
            }
        }
        let ca = IssuerCa::load_or_create(b.path(), "example.org").unwrap();
        let certify = certifier(&ca);
        let at_b = KeyStore::open(b.path(), Some(pg())).unwrap();
        let now = SystemTime::now();
        let released = at_b.release(&grant_to_known(1), now, certify).unwrap();
        assert_eq!(opened(&released, 1), key.to_bytes().to_vec(), "the owner's key, released at the other replica");
        assert!(matches!(at_a.release(&grant_to_known(1), now, certify), Err(KeyStoreError::AlreadyReleased)));

        // Renewed at one replica past half its life: the other finds the renewed certificate.
        let late = at_a.release(&grant_to_known(2), now + HOUR * 2 / 3, certify).unwrap();
        assert_ne!(late.provisioned.serial_hex, first.serial_hex);
        assert_eq!(at_b.provisioned(WORKLOAD).unwrap().unwrap().serial_hex, late.provisioned.serial_hex);

        // A release whose nonce expired is forgotten (at the next release past it); the
        // absent-freshness ones above are kept.
        let at = now + HOUR * 2 / 3 + PRUNE_EVERY;
        let nonce = ReleaseGrant { replayable_until: Some(at + Duration::from_secs(300)), ..grant_to_known(3) };
        at_b.release(&nonce, at, certify).unwrap();
        let count = || {
            String::from_utf8_lossy(&cluster.psql("SELECT count(*) FROM keystore_released").stdout).trim().to_string()
        };
        assert_eq!(count(), "3");
        at_b.release(&grant_to_known(4), at + Duration::from_secs(400), certify).unwrap();
        assert_eq!(count(), "3", "the expired release forgotten, the new one kept");

        // The rows: the key sealed, not in clear.
        let rows = cluster.psql("SELECT encode(key_sealed, 'hex') || encode(key_enc, 'hex') FROM keystore_credentials");
        let rows = String::from_utf8_lossy(&rows.stdout).to_string();
        assert!(rows.len() > 2 * (48 + 16 + 97), "{rows}");
        assert!(!rows.contains(&hex::encode(key.to_bytes())), "the key is in the database in clear");

        // Another wrapping key does not open the row; nor does the row under another name.
        let c = tempfile::tempdir().unwrap();
        let error = KeyStore::open(c.path(), Some(pg())).unwrap().release(&grant_to_known(3), now, certify);
        assert!(matches!(&error, Err(KeyStoreError::Internal(e)) if e.contains("does not open")), "{error:?}");
        let moved = "spiffe://example.org/other-app";
        cluster.psql(&format!("UPDATE keystore_credentials SET workload_id = '{moved}'"));
        let grant = ReleaseGrant { workload_id: moved.into(), ..grant_to_known(4) };
        let error = at_b.release(&grant, now, certify);
        assert!(matches!(&error, Err(KeyStoreError::Internal(e)) if e.contains("does not open")), "{error:?}");
    }
}
