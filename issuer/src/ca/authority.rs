//! What the Credential Authority issues, for a key the Verifier attested and the policy
//! admitted:
//!
//! - an X.509 credential (SPIFFE X.509-SVID rules: the Stable identifier as its one URI SAN)
//!   with the policy version and binding digest, the SHA-384 of the evidence, the SHA-384 of
//!   the workload's SBOM when the admitted image has one and, for simulated evidence, a
//!   *critical* marker saying so, so that a standard verifier refuses a simulated credential
//!   unless told about it (the OIDs of [`Oids`], under the arc the issuer state names);
//! - both name their record's log entry (the log's origin and the SHA-256 of the record's
//!   signed statement, made before the credential under its chosen serial or `jti`);
//! - a WIMSE Workload Identity Token (draft-ietf-wimse-workload-creds, `wit+jwt`, ES384 or, under
//!   the policy's `wit_alg = "ES256"`, ES256) carrying the business claims and the policy's
//!   decision (under the claim name `urn:oid:` + the policy-binding extension's OID:
//!   collision-resistant), signed by a **dedicated WIT key** (`wit-key.pem`, P-384, `kid`
//!   `twi-wit`; or `wit-key-p256.pem`, P-256, `kid` `twi-wit-es256`), not the CA key: one key
//!   per signature format, so that an X.509 TBS and a JWS signing input can never be confused,
//!   and the WIT key can rotate without re-issuing the CA that images embed.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use der::asn1::{OctetString, Utf8StringRef};
use der::{Encode, Sequence};
use p384::ecdsa::VerifyingKey;
use twi_proto::msg::Platform;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;

use super::identity::{Certified, IssuerCa};
use super::redeem::{CertifiedResults, Checked, Marked, Pending, RequestRefused, VerifiedLaunch};
use super::x509::{ExtraExtension, Kind, p384_spki};
use crate::error::IssuerError;
use crate::jose::{Alg, EcPublicKey, EcSigningKey};
use crate::oids::Oids;
use crate::policy::Admission;
use crate::provenance::entry::LogEntry;
use crate::state;
use crate::verifier::Appraisal;
use crate::wit::Wit;

/// The P-384 (ES384) WIT key's `kid` in JWKS and WIT headers.
pub(crate) const WIT_KID: &str = "twi-wit";
/// The P-384 WIT key's file in the issuer state.
pub(crate) const WIT_KEY_FILE: &str = "wit-key.pem";
/// The P-256 (ES256) WIT key's `kid`: another key, so another `kid`.
pub(crate) const WIT_ES256_KID: &str = "twi-wit-es256";
/// The P-256 WIT key's file in the issuer state.
pub(crate) const WIT_ES256_KEY_FILE: &str = "wit-key-p256.pem";

/// The key the Credential Authority signs WITs with, and its `kid`.
#[derive(Debug, Clone)]
pub(crate) struct WitKey {
    pub key: EcSigningKey,
    pub kid: &'static str,
}

impl WitKey {
    /// The WIT key of the issuer state `dir` for `alg` (made now if the state has none yet).
    pub(crate) fn open(dir: &Path, alg: Alg) -> Result<Self, IssuerError> {
        Ok(match alg {
            Alg::Es384 => Self { key: EcSigningKey::P384(state::load_or_create_key(dir, WIT_KEY_FILE)?), kid: WIT_KID },
            Alg::Es256 => {
                Self { key: EcSigningKey::P256(state::load_or_create(dir, WIT_ES256_KEY_FILE)?), kid: WIT_ES256_KID }
            }
        })
    }

    /// The WIT key of `dir` for `alg` if the state holds one (made by an earlier `wit_alg`).
    fn open_if_present(dir: &Path, alg: Alg) -> Result<Option<Self>, IssuerError> {
        let file = match alg {
            Alg::Es384 => WIT_KEY_FILE,
            Alg::Es256 => WIT_ES256_KEY_FILE,
        };
        if !dir.join(file).exists() {
            return Ok(None);
        }
        Self::open(dir, alg).map(Some)
    }

    /// Its public key and `kid`, as the JWKS and the SPIFFE bundle publish it.
    pub(crate) fn published(&self) -> (&'static str, EcPublicKey) {
        (self.kid, self.key.public())
    }
}

/// The keys WITs of the issuer state `dir` verify under while its policy's `wit_alg` is
/// `alg`: that algorithm's key (made now if the state has none yet), then the other
/// algorithm's if the state still holds it. A policy that switched `wit_alg` keeps publishing
/// the previous key, so the WITs it signed verify until they expire; the operator deletes its
/// file (`wit-key.pem` or `wit-key-p256.pem`) once they have (README, the policy's `wit_alg`).
fn wit_keys_of(dir: &Path, alg: Alg) -> Result<(WitKey, Option<WitKey>), IssuerError> {
    let previous = match alg {
        Alg::Es384 => Alg::Es256,
        Alg::Es256 => Alg::Es384,
    };
    Ok((WitKey::open(dir, alg)?, WitKey::open_if_present(dir, previous)?))
}

/// The Credential Authority: the CA, the WIT key, and the attestation results (mechanism B)
/// it expects to redeem.
#[derive(Debug)]
pub(crate) struct CredentialAuthority {
    ca: IssuerCa,
    wit_key: WitKey,
    /// The key of the other `wit_alg`, while the state holds it: published, never signing.
    previous_wit_key: Option<WitKey>,
    /// `iss` of the WITs: `spiffe://<trust domain>/twi-issuer`.
    issuer_uri: String,
    /// The organisation of credential subjects: the policy's trust domain.
    trust_domain: String,
    /// The attestation results it expects to redeem (mechanism B), behind their own lock: taken
    /// only to insert or remove one, never while signing.
    pending: Mutex<Pending>,
    /// The attestation results it certified a Key Store process's release on (mechanism D).
    certified: Mutex<CertifiedResults>,
    /// The extension OIDs, under the state's arc.
    oids: Oids,
}

/// `map`, locked. Each change to it is one insert or remove, so a panic elsewhere while it was
/// held leaves it consistent: keep serving.
fn locked<T>(map: &Mutex<T>) -> MutexGuard<'_, T> {
    map.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The key WITs of the issuer state `dir` verify under when its policy's `wit_alg` is `alg`,
/// as a JWKS (made now if the state has none yet): what a relying party configures before any
/// workload has run (`twi build` writes it beside the image).
pub fn wit_jwks(dir: &Path, alg: Alg) -> Result<serde_json::Value, IssuerError> {
    let keys: Vec<_> =
        published_wit_keys(dir, alg)?.into_iter().map(|(kid, key)| crate::jose::Jwk::published(key, kid)).collect();
    Ok(serde_json::json!({ "keys": keys }))
}

/// The WIT keys of the issuer state `dir` under `wit_alg` `alg` (see [`wit_keys_of`]), as the
/// JWKS and the SPIFFE bundle publish them.
pub(crate) fn published_wit_keys(dir: &Path, alg: Alg) -> Result<Vec<(&'static str, EcPublicKey)>, IssuerError> {
    let (signing, previous) = wit_keys_of(dir, alg)?;
    Ok([Some(signing), previous].iter().flatten().map(WitKey::published).collect())
}

impl CredentialAuthority {
    /// The CA of the issuer state `dir` (named for `ca_domain` if made now), its WIT key for
    /// `wit_alg`, issuing in `trust_domain`.
    pub(crate) fn open(dir: &Path, ca_domain: &str, trust_domain: &str, wit_alg: Alg) -> Result<Self, IssuerError> {
        let (wit_key, previous_wit_key) = wit_keys_of(dir, wit_alg)?;
        Ok(Self {
            ca: IssuerCa::load_or_create(dir, ca_domain)?,
            wit_key,
            previous_wit_key,
            issuer_uri: format!("spiffe://{trust_domain}/twi-issuer"),
            trust_domain: trust_domain.into(),
            pending: Mutex::default(),
            certified: Mutex::default(),
            oids: Oids::load(dir)?,
        })
    }

    pub(crate) fn ca(&self) -> &IssuerCa {
        &self.ca
    }

    /// Mechanism B: the Verifier signed `ear_jwt` for `launch`; the CA will redeem it once.
    pub(crate) fn expect(&self, ear_jwt: &str, launch: VerifiedLaunch) {
        locked(&self.pending).expect(ear_jwt, launch);
    }

    /// The launch a `checked` attestation result stands for, once (the Verifier in this
    /// process signed it: see `redeem.rs`).
    pub(crate) fn take_pending(&self, checked: &Checked) -> Result<VerifiedLaunch, RequestRefused> {
        locked(&self.pending).take(checked)
    }

    /// Mechanism D with the Key Store in another process: marks the `checked` result as one a
    /// release was certified on (see [`Marked`]; without a database shared by replicas).
    pub(crate) fn mark_certified(&self, checked: &Checked) -> Marked {
        locked(&self.certified).mark(checked)
    }

    /// Undoes [`Self::mark_certified`] (no certificate was issued on the result).
    pub(crate) fn unmark_certified(&self, checked: &Checked) {
        locked(&self.certified).unmark(checked);
    }

    /// The keys WITs verify under, with their `kid`s: the one this CA signs with, then the
    /// previous `wit_alg`'s while the state holds it.
    pub(crate) fn wit_keys(&self) -> Vec<(&'static str, EcPublicKey)> {
        [Some(&self.wit_key), self.previous_wit_key.as_ref()].into_iter().flatten().map(WitKey::published).collect()
    }

    /// The X.509 credential for `public_key`, the workload `admission` names, issued on
    /// `appraisal`, under the serial and naming the log entry its record was made with.
    pub(crate) fn certify(
        &self,
        admission: &Admission,
        appraisal: &Appraisal,
        public_key: &[u8],
        named: &Named,
    ) -> Result<Certified, IssuerError> {
        let subject: Name =
            format!("CN={},O={}", admission.workload, self.trust_domain).parse().map_err(IssuerError::certificate)?;
        let mut extra = vec![
            ExtraExtension {
                oid: self.oids.evidence_sha384,
                critical: false,
                value_der: der_of(OctetString::new(appraisal.verified.evidence_sha384.to_vec()))?,
            },
            policy_extension(&self.oids, admission)?,
            log_entry_extension(&self.oids, &named.entry)?,
        ];
        let simulated = match appraisal.platform {
            Platform::SimSnp => Some("sim-snp"),
            Platform::SimTdx => Some("sim-tdx"),
            Platform::Snp | Platform::Tdx => None,
        };
        if let Some(name) = simulated {
            let value_der = der_of(Utf8StringRef::new(name))?;
            extra.push(ExtraExtension { oid: self.oids.simulated_tee, critical: true, value_der });
        }
        if let Some(vmpl) = admission.vmpl {
            extra.push(ExtraExtension {
                oid: self.oids.vmpl,
                critical: false,
                value_der: der_of(Ok::<_, IssuerError>(vmpl))?,
            });
        }
        if let Some(provenance) = &admission.provenance {
            extra.push(ExtraExtension {
                oid: self.oids.sbom_sha384,
                critical: false,
                value_der: der_of(OctetString::new(provenance.sbom.0.to_vec()))?,
            });
        }
        let kind = Kind::Workload { uri: admission.workload_id.clone(), dns: admission.dns_names.clone() };
        let spki = p384_spki(public_key)?;
        self.ca.sign_serial(named.serial.clone(), subject, kind, extra, spki, admission.lifetime)
    }

    /// The WIT for `public_key` as `admission` admitted it, with the `jti` and naming the log
    /// entry its record was made with: its compact JWS.
    pub(crate) fn wit(
        &self,
        admission: &Admission,
        public_key: &[u8],
        now: SystemTime,
        jti: &str,
        entry: &LogEntry,
    ) -> Result<String, IssuerError> {
        let failed = |e: crate::jose::JoseError| IssuerError::token("WIT", e);
        let mut wit =
            Wit::new(&self.issuer_uri, &admission.workload_id, public_key, now, admission.lifetime).map_err(failed)?;
        wit.jti = jti.to_string();
        // The record's log entry, as in the X.509 extension.
        wit = wit.with_claim(&self.oids.claim_name(&self.oids.log_entry), entry.to_claim()).map_err(failed)?;
        for (name, value) in &admission.claims {
            wit = wit.with_claim(name, value.clone()).map_err(failed)?;
        }
        // The policy's decision, as in the X.509 extension and under its OID as a
        // collision-resistant claim name (RFC 7519 §4.2).
        let decision = serde_json::json!({
            "policy_version": admission.policy_version,
            "stickiness": admission.stickiness.name(),
            "binding": admission.binding.to_json(),
        });
        wit = wit.with_claim(&self.oids.claim_name(&self.oids.policy_binding), decision).map_err(failed)?;
        // The SEV-SNP VMPL, as in the X.509 extension.
        if let Some(vmpl) = admission.vmpl {
            wit = wit.with_claim(&self.oids.claim_name(&self.oids.vmpl), vmpl).map_err(failed)?;
        }
        // The SBOM's digest (`sha384:<hex>`), as in the X.509 extension.
        if let Some(provenance) = &admission.provenance {
            let name = self.oids.claim_name(&self.oids.sbom_sha384);
            wit = wit.with_claim(&name, provenance.sbom.to_string()).map_err(failed)?;
        }
        wit.sign(&self.wit_key.key, Some(self.wit_key.kid)).map_err(failed)
    }

    /// Mechanism D, the owner's step: the certificate for the provisioned `key` of
    /// `workload_id`, valid for `lifetime`, under the serial its log record was made for and
    /// naming that record's entry.
    pub(crate) fn certify_provisioned(
        &self,
        workload_id: &str,
        key: &VerifyingKey,
        lifetime: Duration,
        named: &Named,
    ) -> Result<Certified, IssuerError> {
        let extra = vec![log_entry_extension(&self.oids, &named.entry)?];
        self.ca.certify_key_named(workload_id, key, lifetime, named.serial.clone(), extra)
    }
}

/// What an X.509 credential is issued under before it is signed: its serial, and the log
/// entry of the record made for that serial.
#[derive(Debug, Clone)]
pub(crate) struct Named {
    pub serial: SerialNumber,
    pub entry: LogEntry,
}

/// The credential's log entry ([`Oids::log_entry`]).
pub(crate) fn log_entry_extension(oids: &Oids, entry: &LogEntry) -> Result<ExtraExtension, IssuerError> {
    let value_der = entry.to_der().map_err(IssuerError::certificate)?;
    Ok(ExtraExtension { oid: oids.log_entry, critical: false, value_der })
}

/// The policy's decision in the credential ([`Oids::policy_binding`]).
#[derive(Sequence)]
struct PolicyBindingExt<'a> {
    policy_version: Utf8StringRef<'a>,
    stickiness: Utf8StringRef<'a>,
    binding_sha256: OctetString,
}

fn policy_extension(oids: &Oids, admission: &Admission) -> Result<ExtraExtension, IssuerError> {
    let value = PolicyBindingExt {
        policy_version: Utf8StringRef::new(&admission.policy_version).map_err(IssuerError::certificate)?,
        stickiness: Utf8StringRef::new(admission.stickiness.name()).map_err(IssuerError::certificate)?,
        binding_sha256: OctetString::new(admission.binding.digest().to_vec()).map_err(IssuerError::certificate)?,
    };
    let value_der = value.to_der().map_err(IssuerError::certificate)?;
    Ok(ExtraExtension { oid: oids.policy_binding, critical: false, value_der })
}

fn der_of<T: Encode, E: std::fmt::Display>(value: Result<T, E>) -> Result<Vec<u8>, IssuerError> {
    value.map_err(IssuerError::certificate)?.to_der().map_err(IssuerError::certificate)
}
