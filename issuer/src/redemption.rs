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
use crate::ca::{self, CredentialRequestIn, RequestRefused, VerifiedLaunch};
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
        &mut self,
        ear_jwt: &str,
        launch: VerifiedLaunch,
        evidence: &Evidence<'_>,
        established: &Established,
    ) -> Result<(), IssuerError> {
        let Some(shared) = &self.results else {
            self.ca.expect(ear_jwt, launch);
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
    pub(crate) fn redeemed(&mut self, request: &CredentialRequestIn<'_>) -> Result<VerifiedLaunch, Rejection> {
        let now = (self.clock)();
        let Some(shared) = self.results.clone() else {
            return Ok(self.ca.redeem(request, self.verifier.public_key(), now)?);
        };
        let checked = ca::check(request, self.verifier.public_key(), now)?;
        let taken = shared.take(checked.ear_sha256(), now).map_err(IssuerError::from)?;
        let (owned, fresh) = taken.ok_or_else(ca::not_pending)?;
        let evidence = owned.evidence();
        let same_key = PublicKey::from_sec1_bytes(evidence.bundle.public_key).ok()
            == PublicKey::from_sec1_bytes(request.public_key).ok();
        if !same_key {
            return Err(RequestRefused("the attestation result's evidence binds another key".into()).into());
        }
        // The nonce was spent when the result was signed: what that established stands.
        let established = fresh.ok_or(FreshnessError::Replayed);
        let (appraisal, admission) = self.judged(&evidence, Mechanism::B, None, &established)?;
        let launch = VerifiedLaunch { admission, appraisal, nonce: evidence.bundle.nonce.to_vec() };
        Ok(checked.confirm(launch)?)
    }
}
