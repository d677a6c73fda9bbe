//! Mechanism D's asks (draft-novak-twi-attestation's Retrieval): the workload owner's
//! provisioning at the Key Store, and the Key Store's release to an appraised launch — with the
//! Credential Authority that certifies the Key Store's keys in this process or in the CA process
//! the Key Store calls ([`KeyStoreCa`]); and that CA's half, what it is asked by such a Key
//! Store (`POST /v1/ca/key-store/provision`, `/v1/ca/key-store/release`). The certificates,
//! WITs and records are the same either way.

use twi_attester::binding::Purpose;
use twi_proto::msg::Platform;

use crate::asks::{Credential, Issued, KeyReleased, Planned, ResultOfRecord};
use crate::ca::{self, Certified, CredentialAuthority, Named, RequestRefused, VerifiedLaunch};
use crate::error::IssuerError;
use crate::evidence::EvidenceJson;
use crate::held::{CA_KEYS, held};
use crate::issuer::Issuer;
use crate::key_store_ca::{
    KeyStoreCa, KeyStoreCaPeer, ProvisionCertifyRequest, ReleaseCertified, ReleaseCertifyRequest, answered_certificate,
    peer_error,
};
use crate::keystore::{Provisioned, ReleaseGrant};
use crate::policy::{Admission, Mechanism, platform_name};
use crate::rejection::Rejection;
use crate::verifier::{Appraisal, Evidence, Expected};

impl Issuer {
    /// Mechanism D, the **workload owner**'s step (`owner` names who asked: the operator
    /// certificate's subject, or `twi run --mechanism d` doing it for the demo): makes sure the
    /// Key Store holds a credential for the workload the policy admits with `measurement` on
    /// `platform`. When none is provisioned yet, generates a P-384 key and has the Credential
    /// Authority certify it for the workload's Stable identifier (no evidence: the owner asks
    /// for it, not the launch), recorded in the provenance log like any issuance (the
    /// certificate names its entry). Returns the provisioned credential and whether it was
    /// created now. (The owner's own key: [`crate::keystore::provision_owner`].)
    pub fn key_store_provision(
        &self,
        platform: Platform,
        measurement: &[u8],
        owner: &str,
    ) -> Result<(Provisioned, bool), IssuerError> {
        let (workload_id, _) = self.provisioned_workload(platform, measurement)?;
        let _in_turn = self.provisioning.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = (self.clock)();
        let store = self.key_store()?;
        if let Some(held) = store.provisioned(&workload_id)?.filter(|held| !held.expired(now)) {
            return Ok((held, false));
        }
        // Made and logged before the Key Store keeps it (outside the Key Store's lock, which
        // the embedded log takes too). Requests in this process provision in turn; should
        // another replica provision the workload meanwhile, its credential is kept and this one
        // stays a record of one never handed out.
        use p384::elliptic_curve::Generate;
        let key = p384::ecdsa::SigningKey::try_generate().map_err(|_| IssuerError::Rng)?;
        let der = match &self.key_store_ca {
            KeyStoreCa::Here => self.ca_provision(platform, measurement, owner, key.verifying_key())?,
            KeyStoreCa::Peer(peer) => {
                let public_key = key.verifying_key().to_sec1_point(false).as_bytes().to_vec();
                let request = ProvisionCertifyRequest {
                    platform: platform_name(platform).to_string(),
                    measurement: hex::encode(measurement),
                    owner: owner.to_string(),
                    public_key: hex::encode(&public_key),
                };
                let answer = peer.provision(&request).map_err(|e| peer_error(peer.as_ref(), e))?;
                answered_certificate(peer.as_ref(), &answer.certificate, &public_key, &self.ca_certificate)?
            }
        };
        let store = self.key_store()?;
        store.provision_if_absent(&workload_id, || Ok((der, key)))
    }

    /// The workload the policy admits with `measurement` on `platform`, to provision for: its
    /// Stable identifier and the lifetime of its credentials.
    pub(crate) fn provisioned_workload(
        &self,
        platform: Platform,
        measurement: &[u8],
    ) -> Result<(String, std::time::Duration), IssuerError> {
        let workload = self.policy.workload_for(platform, measurement).ok_or_else(|| {
            IssuerError::NothingToProvision { platform: platform_name(platform), measurement: hex::encode(measurement) }
        })?;
        Ok((format!("spiffe://{}/{}", self.policy.trust_domain, workload.id), workload.lifetime))
    }

    /// Mechanism D, what the Key Store is asked: the **Verifier** appraises the evidence (whose
    /// key is the ephemeral HPKE key the runtime generated for the release) under the policy
    /// and nonce as for the other mechanisms; only then the **Key Store** releases the key
    /// provisioned for the admitted workload, HPKE-encrypted to that ephemeral key, once per
    /// nonce, with a certificate the Credential Authority issues for it now (its extensions
    /// name this launch; the stored one is renewed with it once past half its validity). The
    /// release is logged (records: that X.509 credential under its serial, and a WIT bound to
    /// the released key), and the attestation result binds the ephemeral key the Evidence
    /// attested.
    pub fn key_store_release(&self, evidence: &Evidence<'_>) -> Result<KeyReleased, Rejection> {
        let (appraisal, admission) = self.admitted(evidence, Mechanism::D, None)?;
        let launch = VerifiedLaunch { admission, appraisal, nonce: evidence.bundle.nonce.to_vec() };
        self.released(launch, evidence, ResultOfRecord::Make)
    }

    /// [`Self::key_store_release`] in a process without the Verifier role: the Verifier of
    /// another process appraised `evidence` and signed `attestation_result` when this process's
    /// Key Store asked it (over mutual TLS, `http::peer`); redeemed once.
    pub fn key_store_release_appraised(
        &self,
        evidence: &Evidence<'_>,
        attestation_result: &str,
    ) -> Result<KeyReleased, Rejection> {
        let launch = self.appraised_elsewhere(attestation_result, evidence.bundle.public_key, Mechanism::D)?;
        self.released(launch, evidence, ResultOfRecord::Presented(attestation_result.to_string()))
    }

    /// The Key Store's release for the admitted `launch` of `evidence`, with `result` as the
    /// attestation result of record: the released key certified for this launch by the
    /// Credential Authority (here, or of the CA process the Key Store calls), and logged.
    fn released(
        &self,
        launch: VerifiedLaunch,
        evidence: &Evidence<'_>,
        result: ResultOfRecord,
    ) -> Result<KeyReleased, Rejection> {
        let VerifiedLaunch { admission, appraisal, .. } = launch;
        let bundle = &evidence.bundle;
        let now = (self.clock)();
        let grant = ReleaseGrant {
            workload_id: admission.workload_id.clone(),
            nonce: bundle.nonce.to_vec(),
            ephemeral_public_key: bundle.public_key.to_vec(),
            evidence_sha384: appraisal.verified.evidence_sha384,
            replayable_until: crate::verifier::replayable_for(appraisal.freshness).map(|window| now + window),
        };
        let ear_jwt = match result {
            ResultOfRecord::Presented(ear) => ear,
            _ => self
                .verifier
                .attestation_result(self.result_for(&admission, &appraisal, bundle.public_key, bundle.nonce), now)?,
        };
        let mut certifying = match &self.key_store_ca {
            KeyStoreCa::Here => Certifying::Here(self.planned(&admission, &appraisal, Mechanism::D)?),
            KeyStoreCa::Peer(peer) => Certifying::Peer { peer: peer.clone(), answer: None, failed: None },
        };
        let store = self.key_store()?;
        let ca = Authorities { ca: &self.ca, certificate: &self.ca_certificate };
        // The released certificate is issued now, for this launch, with the issuer's extensions.
        let asked = ReleaseAsk { admission: &admission, appraisal: &appraisal, evidence, ear_jwt: &ear_jwt };
        let release = store.release(&grant, now, |key| certifying.certify(&ca, &asked, key));
        let release = release.map_err(|e| certifying.failure().map_or_else(|| Rejection::from(e), Rejection::from))?;
        let provisioned = &release.provisioned;
        let certified = Certified {
            der: provisioned.certificate_der.clone(),
            pem: provisioned.certificate_pem.clone(),
            serial_hex: provisioned.serial_hex.clone(),
        };
        let issued = match certifying {
            Certifying::Here(planned) => {
                let credential = Credential { certified, public_key: &provisioned.public_key, ear_jwt };
                self.logged(appraisal, admission, credential, planned)?
            }
            Certifying::Peer { answer, .. } => {
                let answer = answer.ok_or_else(|| IssuerError::certificate("the Key Store released no certificate"))?;
                let Certified { der, pem, serial_hex } = certified;
                let (wit, wit_jti, provenance) = (answer.wit, answer.wit_jti, answer.provenance);
                let workload_id = admission.workload_id.clone();
                Issued {
                    certificate_der: der,
                    certificate_pem: pem,
                    workload_id,
                    serial_hex,
                    appraisal,
                    admission,
                    wit,
                    wit_jti,
                    ear_jwt,
                    provenance,
                }
            }
        };
        Ok(KeyReleased { issued, release })
    }

    /// The Credential Authority's half of provisioning, for the Key Store of this process or
    /// of another (`owner`: who asked the Key Store): `key` certified for the workload the policy
    /// admits with `measurement` on `platform`, its provisioning record logged first (the
    /// certificate names its entry). The certificate (DER).
    pub(crate) fn ca_provision(
        &self,
        platform: Platform,
        measurement: &[u8],
        owner: &str,
        key: &p384::ecdsa::VerifyingKey,
    ) -> Result<Vec<u8>, IssuerError> {
        let authority = self.authority()?;
        let (workload_id, lifetime) = self.provisioned_workload(platform, measurement)?;
        let (version, now) = (self.policy.version.clone(), (self.clock)());
        let serial = crate::ca::random_serial()?;
        let log = self.ledger()?;
        let record = crate::records::provisioning(&workload_id, &hex::encode(serial.as_bytes()), owner, &version, now);
        let Some((statement, entry)) = log.sign(vec![record])?.pop() else {
            return Err(IssuerError::State(self.dir.clone(), "the provisioning makes one record".into()));
        };
        let named = Named { serial, entry };
        let certified = authority.certify_provisioned(&workload_id, key, lifetime, &named)?;
        log.record(&[statement], None, now)?;
        Ok(certified.der)
    }

    /// What the Credential Authority is asked by the Key Store of another process for a
    /// release: `public_key` (the released key) certified for the launch of `evidence`, on the
    /// Verifier's `attestation_result`. The CA checks both itself — the result under the
    /// Verifier's key, current, affirming, binding the evidence's ephemeral key and nonce; the
    /// evidence appraised again here and admitted by this policy for mechanism D (its freshness
    /// is the result's: the Verifier spent the nonce) — and that it certified no release on this
    /// result before (one certificate per result), then issues and logs the certificate and
    /// WIT as in one process.
    pub fn ca_certify_release(
        &self,
        evidence: &Evidence<'_>,
        attestation_result: &str,
        public_key: &[u8],
    ) -> Result<Issued, Rejection> {
        let now = (self.clock)();
        let bound = evidence.bundle.public_key;
        let checked = ca::check_result(attestation_result, bound, self.verifier.public_key()?, now)?;
        p384::PublicKey::from_sec1_bytes(public_key)
            .map_err(|_| RequestRefused("the released key is not a P-384 point (SEC1)".into()))?;
        let rp_id = self.rp_id();
        self.verifier.well_formed(evidence, &Expected { rp_id: &rp_id, purpose: Purpose::KeyRelease })?;
        let (appraisal, admission) = self.judged(evidence, Mechanism::D, None, None)?;
        let launch = VerifiedLaunch { admission, appraisal, nonce: evidence.bundle.nonce.to_vec() };
        let VerifiedLaunch { admission, appraisal, .. } = checked.confirm(launch)?;
        // One certificate per result, marked before anything is signed or logged; unmarked
        // if none is issued (the log cannot be reached: the Key Store's retry runs again).
        self.certified_once(&checked)?;
        let issued = (|| {
            let planned = self.planned(&admission, &appraisal, Mechanism::D)?;
            let certified = self.authority()?.certify(&admission, &appraisal, public_key, &planned.x509)?;
            let credential = Credential { certified, public_key, ear_jwt: attestation_result.to_string() };
            self.logged(appraisal, admission, credential, planned)
        })();
        if issued.is_err() {
            self.not_certified(&checked);
        }
        issued
    }
}

/// The Credential Authority that certifies a release's key: this process's, with the records
/// already signed; or the CA process's, and what it answered (or why it did not).
enum Certifying {
    Here(Planned),
    Peer { peer: std::sync::Arc<dyn KeyStoreCaPeer>, answer: Option<ReleaseCertified>, failed: Option<IssuerError> },
}

/// This process's Credential Authority, if it holds it, and the CA's certificate.
struct Authorities<'a> {
    ca: &'a Option<CredentialAuthority>,
    certificate: &'a x509_cert::Certificate,
}

/// The launch a release is for.
struct ReleaseAsk<'a> {
    admission: &'a Admission,
    appraisal: &'a Appraisal,
    evidence: &'a Evidence<'a>,
    ear_jwt: &'a str,
}

impl Certifying {
    /// The certificate (DER) of the released `key` for the launch `asked`.
    fn certify(&mut self, ca: &Authorities<'_>, asked: &ReleaseAsk<'_>, key: &[u8]) -> Result<Vec<u8>, IssuerError> {
        let (peer, answer, failed) = match self {
            Self::Here(planned) => {
                let authority = held(ca.ca, CA_KEYS)?;
                return Ok(authority.certify(asked.admission, asked.appraisal, key, &planned.x509)?.der);
            }
            Self::Peer { peer, answer, failed } => (peer, answer, failed),
        };
        let request = ReleaseCertifyRequest {
            evidence: EvidenceJson::new(asked.evidence),
            attestation_result: asked.ear_jwt.to_string(),
            public_key: hex::encode(key),
        };
        let certified = peer
            .release(&request)
            .map_err(|e| peer_error(peer.as_ref(), e))
            .and_then(|a| Ok((answered_certificate(peer.as_ref(), &a.certificate, key, ca.certificate)?, a)));
        match certified {
            Ok((der, certified)) => {
                *answer = Some(certified);
                Ok(der)
            }
            Err(error) => {
                let said = IssuerError::certificate(&error);
                *failed = Some(error);
                Err(said)
            }
        }
    }

    /// Why the CA process did not certify the release, if that is why it failed.
    fn failure(&mut self) -> Option<IssuerError> {
        match self {
            Self::Here(_) => None,
            Self::Peer { failed, .. } => failed.take(),
        }
    }
}
