//! Mechanism B's redemption when the issuer runs as replicas (issue 14 item 6): the Verifier of
//! one replica signs an attestation result, and the workload may take it to the Credential
//! Authority of any other. A single process keeps what its Verifier concluded in memory
//! (`ca::redeem`'s `Pending`); replicas keep, in their database, the evidence the result was
//! appraised on and the freshness that appraisal established — not its conclusions — and the
//! redeeming replica appraises that evidence again under its own keys and policy (without
//! spending the nonce a second time). A row in the database therefore cannot make the CA issue
//! anything the evidence itself does not earn: the result must verify under the Verifier's key
//! and bind the requested key and the evidence's nonce, the evidence must verify under its
//! vendor's chain and bind the same key, and the policy must admit it again.

use p384::PublicKey;
use sha2::{Digest, Sha256};

use crate::MAX_ATTESTATION_RESULT_AGE;
use crate::asks::Established;
use crate::ca::{self, Checked, CredentialRequestIn, Marked, RequestRefused, VerifiedLaunch};
use crate::error::IssuerError;
use crate::freshness::FreshnessError;
use crate::issuer::Issuer;
use crate::policy::Mechanism;
use crate::rejection::Rejection;
use crate::verifier::Evidence;
use crate::waiting::Kept;

impl Issuer {
    /// Mechanism B, the Verifier's half: the CA will redeem `ear_jwt`, appraised on `evidence`
    /// as `launch` with the freshness `established`, once — in this process, or with replicas
    /// at any of them.
    pub(crate) fn await_redemption(
        &self,
        ear_jwt: &str,
        launch: VerifiedLaunch,
        evidence: &Evidence<'_>,
        established: &Established,
    ) -> Result<(), IssuerError> {
        let Some(shared) = &self.results else {
            self.authority()?.expect(ear_jwt, launch);
            return Ok(());
        };
        let kept = Kept::new(evidence, established.as_ref().ok().cloned());
        let now = (self.clock)();
        let digest: [u8; 32] = Sha256::digest(ear_jwt.as_bytes()).into();
        shared.put(&digest, &kept, now + MAX_ATTESTATION_RESULT_AGE, now, ca::MAX_PENDING)?;
        Ok(())
    }

    /// Mechanism B, the Credential Authority's half: the launch `request`'s attestation result
    /// stands for, once the request holds (see `ca::redeem`), at most once.
    pub(crate) fn redeemed(&self, request: &CredentialRequestIn<'_>) -> Result<VerifiedLaunch, Rejection> {
        let checked = ca::check(request, self.verifier.public_key()?, (self.clock)())?;
        self.taken(&checked, request.public_key, Mechanism::B)
    }

    /// Mechanisms C and D with the roles in separate processes (issue 14 item 5): the
    /// Verifier of another process appraised the evidence binding `public_key` for `mechanism`
    /// and signed `ear_jwt`, which this process's Credential Authority or Key Store asked it
    /// for over mutual TLS (so no proof of possession: the evidence binds the key). The launch
    /// it stands for, once, as for mechanism B.
    pub(crate) fn appraised_elsewhere(
        &self,
        ear_jwt: &str,
        public_key: &[u8],
        mechanism: Mechanism,
    ) -> Result<VerifiedLaunch, Rejection> {
        let checked = ca::check_result(ear_jwt, public_key, self.verifier.public_key()?, (self.clock)())?;
        self.taken(&checked, public_key, mechanism)
    }

    /// Mechanism D with the Key Store in another process, at the Credential Authority: the
    /// `checked` attestation result is one it certifies a release on once — remembered in
    /// memory, or (replicas) in their database, until it is too old to be presented — however
    /// often a Key Store holding a role certificate presents it.
    pub(crate) fn certified_once(&self, checked: &Checked) -> Result<(), Rejection> {
        let marked = match &self.results {
            Some(shared) => {
                let now = (self.clock)();
                shared.mark_certified(checked.ear_sha256(), now + ca::CERTIFIED_FOR, now).map_err(IssuerError::from)?
            }
            None => self.authority()?.mark_certified(checked),
        };
        match marked {
            Marked::First => Ok(()),
            Marked::Again => Err(ca::certified_already().into()),
            Marked::Full => Err(IssuerError::Full(format!(
                "the Credential Authority remembers {} attestation results it certified a release on, none expired yet",
                ca::MAX_CERTIFIED
            ))
            .into()),
        }
    }

    /// Undoes [`Self::certified_once`] for the `checked` result when no certificate was issued
    /// on it. Should the store not answer, the result stays marked (refused until it expires)
    /// and the service's log says so.
    pub(crate) fn not_certified(&self, checked: &Checked) {
        let forgotten = match &self.results {
            Some(shared) => shared.unmark_certified(checked.ear_sha256()).map_err(IssuerError::from),
            None => self.authority().map(|authority| authority.unmark_certified(checked)),
        };
        if let Err(e) = forgotten {
            eprintln!("twi serve: a release not certified stays marked as certified on its attestation result: {e}");
        }
    }

    /// The launch a `checked` attestation result binding `public_key` stands for, taken once
    /// and admitted again for `mechanism`: from this process's memory, or (replicas) the
    /// evidence kept in the database appraised again here.
    fn taken(&self, checked: &Checked, public_key: &[u8], mechanism: Mechanism) -> Result<VerifiedLaunch, Rejection> {
        let now = (self.clock)();
        let Some(shared) = self.results.clone() else {
            let launch = self.authority()?.take_pending(checked)?;
            if launch.admission.mechanism != mechanism {
                let made_for = launch.admission.mechanism;
                return Err(RequestRefused(format!(
                    "the attestation result was made for mechanism {made_for}, not {mechanism}"
                ))
                .into());
            }
            return Ok(launch);
        };
        let taken = shared.take(checked.ear_sha256(), now).map_err(IssuerError::from)?;
        let (owned, fresh) = taken.ok_or_else(ca::not_pending)?;
        let evidence = owned.evidence();
        let same_key =
            PublicKey::from_sec1_bytes(evidence.bundle.public_key).ok() == PublicKey::from_sec1_bytes(public_key).ok();
        if !same_key {
            return Err(RequestRefused("the attestation result's evidence binds another key".into()).into());
        }
        // The nonce was spent when the result was signed: what that established stands.
        let established = fresh.ok_or(FreshnessError::Replayed);
        let (appraisal, admission) = self.judged(&evidence, mechanism, None, Some(&established))?;
        let launch = VerifiedLaunch { admission, appraisal, nonce: evidence.bundle.nonce.to_vec() };
        Ok(checked.confirm(launch)?)
    }
}
