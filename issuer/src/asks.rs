//! What each role of the issuer is asked, in the words of draft-novak-twi-attestation's
//! credential acquisition mechanisms — the same asks as the HTTP endpoints (`http`):
//!
//! | role | ask | mechanism |
//! | --- | --- | --- |
//! | Verifier | [`Issuer::challenge`]: what the evidence must bind (or [`Issuer::current_epoch`]) | all |
//! | Verifier | [`Issuer::verifier_credential`]: appraise, and obtain the credential from the CA | A |
//! | Verifier | [`Issuer::verifier_attestation_result`]: appraise, and sign a result binding the key | B |
//! | Credential Authority | [`Issuer::ca_credential`]: evidence (C, renewals) or an attestation result (B) | B, C |
//! | Key Store | [`Issuer::key_store_provision`]: the owner's step, done for the demo | D |
//! | Key Store | [`Issuer::key_store_release`]: the provisioned key, encrypted to the evidence's key | D |
//!
//! Every ask that appraises evidence goes the same way: the evidence must be well formed (it
//! parses as its platform's report or quote, its key is a P-384 point, a CSR comes exactly
//! with Enrollment: malformed evidence leaves the nonce usable), then the nonce is established
//! (a verifier nonce is redeemed whatever happens next: one try per appraisal), the Verifier
//! appraises, the policy admits, the workload is served for the target in this mode and under
//! this mechanism (issue 14: the policy's, not the host's choice), the workload's freshness is
//! required, a renewal is checked against the previous credential's binding. Every credential is logged before it is
//! returned.

use sha2::{Digest, Sha256};
use twi_attester::binding::Purpose;
use twi_proto::msg::{CredentialKind, Freshness as FreshnessKind, Platform};

use crate::ca::{Certified, CredentialRequestIn, Named, RequestRefused, VerifiedLaunch};
use crate::error::IssuerError;
use crate::freshness::{Fresh, FreshnessError, NonceScope, SignedEpoch};
use crate::issuer::Issuer;
use crate::keystore::Release;
use crate::policy::{Admission, FreshnessLevel, Mechanism, RenewalCheck, check_absent};
use crate::provenance::SignedStatement;
use crate::provenance::entry::LogEntry;
use crate::records::Issuance;
use crate::rejection::Rejection;
use crate::verifier::{Appraisal, Evidence, Expected, ResultFor};

/// The answer to TACRA's Initiate for one launch and target: how the evidence must be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The Freshness Handle: a verifier nonce (`present-nonce`), the current epoch's id
    /// (`present-epoch`), or empty (`absent-*`).
    pub nonce: Vec<u8>,
    /// The mechanism the policy chose for the workload and target, if it knows the workload
    /// (D is Retrieval; A, B, C are Enrollment).
    pub mechanism: Option<Mechanism>,
    /// The freshness kind the evidence must carry.
    pub freshness: FreshnessKind,
}

/// What the Credential Authority is asked.
#[derive(Debug, Clone, Copy)]
pub enum CredentialRequest<'a> {
    /// Mechanism C: the evidence, which the CA has the Verifier appraise; with `renewal_of`
    /// (a credential's X.509 serial in hex or WIT jti), refused unless the launch keeps what
    /// that credential was bound to (the workload's stickiness, e.g. CS_L3: the same chip).
    Evidence { evidence: Evidence<'a>, renewal_of: Option<&'a str> },
    /// Mechanism B: the Verifier's attestation result and a proof of possession of its key.
    AttestationResult(CredentialRequestIn<'a>),
    /// The roles in separate processes: the evidence, and the attestation result the Verifier
    /// of another process signed for it for `mechanism` — C: this process's CA asked it; A: it
    /// asks this process's CA (both over mutual TLS, `http::peer`). Redeemed once. With
    /// `renewal_of`, a renewal (mechanism C) as for [`CredentialRequest::Evidence`].
    Appraised { evidence: Evidence<'a>, attestation_result: &'a str, mechanism: Mechanism, renewal_of: Option<&'a str> },
}

/// A credential and what it was issued on.
#[derive(Debug, Clone)]
pub struct Issued {
    pub certificate_der: Vec<u8>,
    pub certificate_pem: String,
    pub workload_id: String,
    pub serial_hex: String,
    pub appraisal: Appraisal,
    pub admission: Admission,
    /// The WIT (compact JWS, `typ` `wit+jwt`) and its `jti`.
    pub wit: String,
    pub wit_jti: String,
    /// The Verifier's attestation result (EAR JWT) binding the key; under mechanism A it also
    /// names the credential.
    pub ear_jwt: String,
    /// The signed tree head and each record's inclusion proof.
    pub provenance: serde_json::Value,
}

/// Mechanism B, what the Verifier returns: the signed attestation result binding the key.
#[derive(Debug, Clone)]
pub struct AttestationResult {
    /// EAR JWT signed by the Verifier's key (`verifier-key.pem`).
    pub ear_jwt: String,
    pub workload_id: String,
}

/// Mechanism D: what the Key Store released after the Verifier appraised the Evidence.
#[derive(Debug, Clone)]
pub struct KeyReleased {
    /// The provisioned credential of record (its WIT, attestation result and provenance;
    /// the attestation result binds the ephemeral key).
    pub issued: Issued,
    /// The HPKE-encrypted key and the Key Store's receipt.
    pub release: Release,
}

/// The attestation result of an issuance: made for the issued key, made naming the
/// credential too (mechanism A), or the one the workload presented (mechanism B).
pub(crate) enum ResultOfRecord {
    Make,
    NamingCredential,
    Presented(String),
}

impl Issuer {
    /// TACRA Initiate: how a launch expected to have `measurement` on `platform` acquires a
    /// `kind` credential for `target` — the mode (by mechanism) and freshness kind its workload's
    /// policy names for the target, with the handle. A launch the policy does not know gets a
    /// verifier nonce (the evidence decides later).
    pub fn initiate(
        &self,
        platform: Platform,
        measurement: &[u8],
        target: &str,
        kind: CredentialKind,
        hint: Option<&str>,
    ) -> Result<Challenge, Rejection> {
        let workload = self.policy.workload_for(platform, measurement);
        let decision = workload.map(|w| w.target(target, kind)).transpose()?;
        workload.map(|w| w.hint(target, hint)).transpose()?;
        let freshness = decision.as_ref().map_or(FreshnessKind::PresentNonce, |d| d.freshness);
        let scope = NonceScope { workload: workload.map(|w| w.id.clone()), target: target.into() };
        let nonce = match freshness {
            FreshnessKind::PresentNonce => self.verifier.challenge(Some(FreshnessLevel::Nonce), scope)?,
            FreshnessKind::PresentEpoch => self.verifier.challenge(Some(FreshnessLevel::Epoch), scope)?,
            _ => Vec::new(),
        };
        Ok(Challenge { nonce, mechanism: decision.map(|d| d.mechanism), freshness })
    }

    /// TACRA's `rp_id` of this issuer: its CA's name, as `twi build` writes it into the
    /// manifest the runtime binds it from.
    pub fn rp_id(&self) -> String {
        self.ca_certificate.tbs_certificate().subject().to_string()
    }

    /// The Verifier's current AF_L1 epoch, signed by its epoch key: what it publishes for
    /// workloads to bind (its id) without a round trip per attestation.
    pub fn current_epoch(&self) -> Result<SignedEpoch, IssuerError> {
        Ok(self.verifier.current_epoch()?)
    }

    /// Mechanism A, what the Verifier is asked: appraise the evidence under the policy and
    /// obtain the credential for its key from the Credential Authority; the attestation result
    /// names the credential.
    pub fn verifier_credential(&self, evidence: &Evidence<'_>) -> Result<Issued, Rejection> {
        let (appraisal, admission) = self.admitted(evidence, Mechanism::A, None)?;
        let launch = VerifiedLaunch { admission, appraisal, nonce: evidence.bundle.nonce.to_vec() };
        self.issue(launch, evidence.bundle.public_key, Mechanism::A, ResultOfRecord::NamingCredential)
    }

    /// Mechanism A with the Credential Authority in another process: the Verifier's result
    /// `ear_jwt` (its own, checked under its key) signed again naming the credential
    /// `certificate_der` that Credential Authority issued on it, as the one-process path's
    /// result does. (The Credential Authority's provenance record keeps the result it was
    /// shown, made before the credential existed.)
    pub fn attestation_result_naming(&self, ear_jwt: &str, certificate_der: &[u8]) -> Result<String, IssuerError> {
        let certificate = <x509_cert::Certificate as der::Decode>::from_der(certificate_der)
            .map_err(|e| IssuerError::Certificate(format!("the Credential Authority's certificate: {e}")))?;
        let serial = hex::encode(certificate.tbs_certificate().serial_number().as_bytes());
        let sha256 = hex::encode(Sha256::digest(certificate_der));
        self.verifier.naming_credential(ear_jwt, (&sha256, &serial), (self.clock)())
    }

    /// Mechanism B, what the Verifier is asked: appraise the evidence under the policy and
    /// return an attestation result signed by the Verifier's key that binds the workload's
    /// key. No credential is issued here: the workload takes the result to the Credential
    /// Authority ([`CredentialRequest::AttestationResult`]).
    pub fn verifier_attestation_result(&self, evidence: &Evidence<'_>) -> Result<AttestationResult, Rejection> {
        self.verifier_appraisal(evidence, Mechanism::B)
    }

    /// What the Verifier is asked by the Credential Authority (mechanism C) or the Key Store
    /// (mechanism D) of another process, or by the workload (mechanism B): as
    /// [`Self::verifier_attestation_result`], the evidence appraised and admitted for
    /// `mechanism`; the result is redeemed once, by the role that asked for it.
    pub fn verifier_appraisal(
        &self,
        evidence: &Evidence<'_>,
        mechanism: Mechanism,
    ) -> Result<AttestationResult, Rejection> {
        let established = self.established(evidence, mechanism)?;
        let (appraisal, admission) = self.judged(evidence, mechanism, None, Some(&established))?;
        let bundle = &evidence.bundle;
        let ear_jwt = self.verifier.attestation_result(
            self.result_for(&admission, &appraisal, bundle.public_key, bundle.nonce),
            (self.clock)(),
        )?;
        let workload_id = admission.workload_id.clone();
        let launch = VerifiedLaunch { admission, appraisal, nonce: bundle.nonce.to_vec() };
        self.await_redemption(&ear_jwt, launch, evidence, &established)?;
        Ok(AttestationResult { ear_jwt, workload_id })
    }

    /// What the Credential Authority is asked: a credential for evidence (mechanism C, and
    /// renewals) or for the Verifier's attestation result (mechanism B). The certificate is
    /// signed by the CA key, never the Verifier's.
    pub fn ca_credential(&self, request: CredentialRequest<'_>) -> Result<Issued, Rejection> {
        match request {
            CredentialRequest::Evidence { evidence, renewal_of } => {
                let (appraisal, admission) = self.admitted(&evidence, Mechanism::C, renewal_of)?;
                let launch = VerifiedLaunch { admission, appraisal, nonce: evidence.bundle.nonce.to_vec() };
                self.issue(launch, evidence.bundle.public_key, Mechanism::C, ResultOfRecord::Make)
            }
            CredentialRequest::AttestationResult(request) => {
                let launch = self.redeemed(&request)?;
                let presented = ResultOfRecord::Presented(request.ear.to_string());
                self.issue(launch, request.public_key, Mechanism::B, presented)
            }
            CredentialRequest::Appraised { evidence, attestation_result, mechanism, renewal_of } => {
                if !matches!(mechanism, Mechanism::A | Mechanism::C) {
                    let why = format!(
                        "the Credential Authority issues on a Verifier's result for mechanism a or c, not {mechanism}"
                    );
                    return Err(RequestRefused(why).into());
                }
                let key = evidence.bundle.public_key;
                let launch = self.appraised_elsewhere(attestation_result, key, mechanism)?;
                if let Some(previous) = renewal_of {
                    self.check_renewal(previous, &launch.admission)?;
                }
                self.issue(launch, key, mechanism, ResultOfRecord::Presented(attestation_result.to_string()))
            }
        }
    }

    /// The Verifier's appraisal and the policy's admission, common to every mechanism (see
    /// the module docs for the order). `mechanism`: the route the request came by (a renewal
    /// is a Credential Authority request whatever the workload's mechanism).
    pub(crate) fn admitted(
        &self,
        evidence: &Evidence<'_>,
        mechanism: Mechanism,
        renewal_of: Option<&str>,
    ) -> Result<(Appraisal, Admission), Rejection> {
        let established = self.established(evidence, mechanism)?;
        self.judged(evidence, mechanism, renewal_of, Some(&established))
    }

    /// The evidence is well formed (malformed evidence is refused before the nonce is spent:
    /// the workload may retry); then what makes it fresh, its verifier nonce spent.
    fn established(&self, evidence: &Evidence<'_>, mechanism: Mechanism) -> Result<Established, Rejection> {
        let rp_id = self.rp_id();
        self.verifier.well_formed(evidence, &Expected { rp_id: &rp_id, purpose: purpose_of(mechanism) })?;
        Ok(self.verifier.establish(evidence.bundle.nonce))
    }

    /// [`Issuer::admitted`] once the evidence's freshness is `established` (`None`: vouched for
    /// by the Verifier's signed result, whose nonce is the evidence's — the Credential Authority
    /// certifying a release for the Key Store of another process).
    pub(crate) fn judged(
        &self,
        evidence: &Evidence<'_>,
        mechanism: Mechanism,
        renewal_of: Option<&str>,
        established: Option<&Established>,
    ) -> Result<(Appraisal, Admission), Rejection> {
        let purpose = purpose_of(mechanism);
        let rp_id = self.rp_id();
        let expected = Expected { rp_id: &rp_id, purpose };
        let mut appraisal = self.verifier.appraise(evidence, &expected, (self.clock)())?;
        let mut admission = self.policy.admit(&appraisal.appraised())?;
        self.policy.admit_vmpl(&mut admission, appraisal.verified.vmpl)?;
        let route = Route { purpose, mechanism: renewal_of.is_none().then_some(mechanism) };
        appraisal.freshness = Some(self.served(&admission, evidence, route, established)?);
        if let Some(previous) = renewal_of {
            self.check_renewal(previous, &admission)?;
        }
        Ok((appraisal, admission))
    }

    /// A renewal of credential `previous` is granted to `admission` only under the policy's
    /// renewal rules, checked against what `previous` was bound to (its provenance record).
    fn check_renewal(&self, previous: &str, admission: &Admission) -> Result<(), Rejection> {
        let binding = match self.ledger()?.binding_of(previous)? {
            None => return Err(Rejection::UnknownPreviousCredential(previous.to_string())),
            Some(Err(kid)) => {
                let kid = crate::provenance::sealed::shown_kid(&kid);
                return Err(Rejection::SealedPreviousRecord { id: previous.to_string(), kid });
            }
            Some(Ok(binding)) => binding,
        };
        Ok(RenewalCheck { previous: binding }.check(admission)?)
    }

    /// The admitted workload is served for the evidence's target (TACRA), in this mode, with
    /// the freshness the target's policy names (or, where it names none, the workload's level);
    /// returns the freshness kind that held.
    fn served(
        &self,
        admission: &Admission,
        evidence: &Evidence<'_>,
        route: Route,
        established: Option<&Established>,
    ) -> Result<FreshnessKind, Rejection> {
        let purpose = route.purpose;
        let bundle = &evidence.bundle;
        let workload = self.policy.workload(&admission.workload).ok_or_else(|| {
            Rejection::Internal(IssuerError::State(self.dir.clone(), "the admitted workload left the policy".into()))
        })?;
        // The types were checked at Initiate; any type the target serves will do here.
        let decision = workload
            .target(bundle.target, CredentialKind::X509)
            .or_else(|_| workload.target(bundle.target, CredentialKind::Wit))?;
        let retrieval = decision.mechanism == Mechanism::D;
        if retrieval != (purpose == Purpose::KeyRelease) {
            let name = |r: bool| if r { "Retrieval" } else { "Enrollment" };
            let (workload, target) = (admission.workload.clone(), bundle.target.to_string());
            return Err(Rejection::Mode { workload, target, expected: name(retrieval), got: name(!retrieval) });
        }
        if let Some(used) = route.mechanism {
            decision.permits(&admission.workload, bundle.target, used)?;
        }
        let level = match decision.freshness {
            _ if !decision.explicit_freshness => admission.freshness,
            FreshnessKind::PresentNonce => FreshnessLevel::Nonce,
            FreshnessKind::PresentEpoch => FreshnessLevel::Epoch,
            kind => {
                let now = crate::jose::unix_seconds((self.clock)());
                check_absent(&decision, bundle.nonce, now).map_err(|reason| Rejection::AbsentFreshness {
                    workload: admission.workload_id.clone(),
                    kind: kind.name(),
                    target: bundle.target.to_string(),
                    reason,
                })?;
                return Ok(kind);
            }
        };
        // The Verifier that signed the result required the freshness when it appraised.
        let Some(established) = established else { return Ok(decision.freshness) };
        let scoped = match established {
            Ok(Fresh::Nonce(scope)) => scope.admits(&admission.workload, bundle.target),
            _ => Ok(()),
        };
        scoped.and_then(|()| crate::freshness::Freshness::require(level, established)).map_err(|error| {
            Rejection::Freshness { workload: admission.workload_id.clone(), level: level.name(), error }
        })?;
        Ok(decision.freshness)
    }

    pub(crate) fn result_for<'a>(
        &'a self,
        admission: &'a Admission,
        appraisal: &Appraisal,
        public_key: &'a [u8],
        nonce: &'a [u8],
    ) -> ResultFor<'a> {
        ResultFor {
            admission,
            platform: appraisal.platform,
            trust_domain: &self.policy.trust_domain,
            public_key,
            nonce,
            freshness: appraisal.freshness,
            credential: None,
        }
    }

    /// The Credential Authority issues for `public_key` on `launch` (certificate, WIT), the
    /// attestation result of record is made or taken, and both credentials are logged.
    fn issue(
        &self,
        launch: VerifiedLaunch,
        public_key: &[u8],
        mechanism: Mechanism,
        result: ResultOfRecord,
    ) -> Result<Issued, Rejection> {
        let VerifiedLaunch { admission, appraisal, nonce } = launch;
        let planned = self.planned(&admission, &appraisal, mechanism)?;
        let certified = self.authority()?.certify(&admission, &appraisal, public_key, &planned.x509)?;
        let certificate_sha256 = hex::encode(Sha256::digest(&certified.der));
        let mut result_for = self.result_for(&admission, &appraisal, public_key, &nonce);
        let ear_jwt = match result {
            ResultOfRecord::Presented(ear) => ear,
            ResultOfRecord::Make => self.verifier.attestation_result(result_for, (self.clock)())?,
            ResultOfRecord::NamingCredential => {
                result_for.credential = Some((&certificate_sha256, &certified.serial_hex));
                self.verifier.attestation_result(result_for, (self.clock)())?
            }
        };
        let credential = Credential { certified, public_key, ear_jwt };
        self.logged(appraisal, admission, credential, planned)
    }

    /// The records of an issuance, signed before its credentials (under the serial and `jti`
    /// chosen here) so that each credential names its own log entry.
    pub(crate) fn planned(
        &self,
        admission: &Admission,
        appraisal: &Appraisal,
        mechanism: Mechanism,
    ) -> Result<Planned, Rejection> {
        let now = (self.clock)();
        let serial = crate::ca::random_serial()?;
        let jti = crate::jose::random_id().map_err(|e| IssuerError::token("WIT", e))?;
        let credentials = [("x509", hex::encode(serial.as_bytes())), ("wit", jti.clone())];
        let issuance = Issuance { admission, appraisal, mechanism, credentials };
        let signed = self.ledger()?.sign(crate::records::records(&issuance, now)?)?;
        let (statements, entries): (Vec<_>, Vec<_>) = signed.into_iter().unzip();
        let Ok([x509_entry, wit_entry]) = <[LogEntry; 2]>::try_from(entries) else {
            return Err(IssuerError::State(self.dir.clone(), "an issuance makes two records".into()).into());
        };
        let x509 = Named { serial, entry: x509_entry };
        Ok(Planned { now, x509, jti, wit_entry, statements })
    }

    /// The WIT for the credential's key, and both credentials logged (their statements, made
    /// in [`Self::planned`]): what the caller hands out.
    pub(crate) fn logged(
        &self,
        appraisal: Appraisal,
        admission: Admission,
        credential: Credential<'_>,
        planned: Planned,
    ) -> Result<Issued, Rejection> {
        let Planned { now, jti, wit_entry, statements, .. } = planned;
        let wit = self.authority()?.wit(&admission, credential.public_key, now, &jti, &wit_entry)?;
        let provenance = self.ledger()?.record(&statements, Some(&admission.binding), now)?;
        let Certified { der, pem, serial_hex } = credential.certified;
        Ok(Issued {
            certificate_der: der,
            certificate_pem: pem,
            workload_id: admission.workload_id.clone(),
            serial_hex,
            appraisal,
            admission,
            wit,
            wit_jti: jti,
            ear_jwt: credential.ear_jwt,
            provenance,
        })
    }
}

/// An issuance's records, signed before its credentials: the certificate's serial and log
/// entry, the WIT's `jti` and log entry, and the statements to append.
pub(crate) struct Planned {
    now: std::time::SystemTime,
    pub(crate) x509: Named,
    jti: String,
    wit_entry: LogEntry,
    statements: Vec<SignedStatement>,
}

/// What made the evidence fresh, or why nothing did (only an AF_L0 workload is admitted then).
pub(crate) type Established = Result<Fresh, FreshnessError>;

/// Enrollment, or mechanism D's Retrieval.
fn purpose_of(mechanism: Mechanism) -> Purpose {
    if mechanism == Mechanism::D { Purpose::KeyRelease } else { Purpose::Credential }
}

/// How a request came: its mode, and the mechanism whose route it took (`None`: a renewal,
/// which any workload asks of the Credential Authority).
#[derive(Clone, Copy)]
struct Route {
    purpose: Purpose,
    mechanism: Option<Mechanism>,
}

/// An X.509 credential on its way to the log: the certificate, the key it certifies (the
/// WIT's too) and the attestation result of record.
pub(crate) struct Credential<'a> {
    pub(crate) certified: Certified,
    pub(crate) public_key: &'a [u8],
    pub(crate) ear_jwt: String,
}
