//! The issuer's roles as the bridge calls them (Verifier, Credential Authority, Key Store, in
//! the words of draft-novak-twi-attestation): one trait, so the bridge neither knows nor cares
//! whether they run in this process ([`twi_issuer::Issuer`], whose asks each method maps to)
//! or behind `twi serve` ([`RemoteIssuer`], whose endpoints each method calls), and a test can
//! put a decorator (the `tamper` module) or a fake between.

use twi_issuer::keystore::{Provisioned, Release};
use twi_issuer::policy::Mechanism;
use twi_issuer::{CredentialRequest, CredentialRequestIn, Issued, Issuer, Rejection};
use twi_proto::msg::{Initiate, Platform};
use twi_verifier::tdx::{Collateral, TdxConfig};

pub use crate::answers::{Declined, Obtained, Refusal};
use crate::remote::RemoteIssuer;

/// The Verifier's challenge for one launch: the nonce (AF_L2) or epoch id (AF_L1) the evidence
/// must bind, and the mechanism the policy chose for the workload, if it names one.
pub use twi_issuer::Challenge;
/// The evidence as the roles receive it: the bundle the Verifier appraises and, for TDX, the
/// runtime's RTMR event log.
pub use twi_issuer::Evidence as Presented;

/// Mechanism D: what the Key Store released.
#[derive(Debug, Clone)]
pub struct Released {
    /// The provisioned credential of record.
    pub issued: Obtained,
    /// The release: HPKE `enc` and ciphertext to the ephemeral key, and the signed receipt.
    pub release: Release,
    /// The Key Store's public key (JWK) that verifies the receipt.
    pub key_store_jwk: serde_json::Value,
}

/// The issuer's roles, as one launch needs them.
pub trait Roles {
    /// TACRA Initiate for a launch expected to measure `measurement`: the mode, freshness kind
    /// and handle the issuer's policy names for the target.
    fn initiate(&mut self, platform: Platform, measurement: &[u8], initiate: &Initiate) -> Result<Challenge, Declined>;
    /// Mechanisms A (evidence to the Verifier, which asks the CA) and C (evidence to the CA,
    /// which asks the Verifier): the credential for the attested key.
    fn issue(&mut self, evidence: Presented<'_>, mechanism: Option<Mechanism>) -> Result<Obtained, Refusal>;
    /// A renewal of credential `previous` (X.509 serial in hex, or WIT jti) under the policy's
    /// stickiness.
    fn renew(&mut self, evidence: Presented<'_>, previous: &str) -> Result<Obtained, Refusal>;
    /// Mechanism B, the Verifier: the signed attestation result (EAR JWT) and the workload id.
    fn attestation_result(&mut self, evidence: Presented<'_>) -> Result<(String, String), Refusal>;
    /// Mechanism B, the Credential Authority: redeem the workload's credential request.
    fn redeem(&mut self, request: &CredentialRequestIn<'_>) -> Result<Obtained, Refusal>;
    /// Mechanism D, the owner's step (done once for the demo): a credential and key in the Key
    /// Store for the workload of this launch, and whether it was provisioned now.
    fn provision(&mut self, platform: Platform, measurement: &[u8]) -> Result<(Provisioned, bool), Refusal>;
    /// Mechanism D: appraisal, then the Key Store's release to the key the evidence binds.
    fn release(&mut self, evidence: Presented<'_>) -> Result<Released, Refusal>;
    /// Real TDX: judge the quote's TCB with this collateral (fetched for the quote's platform).
    fn accept_tdx_collateral(&mut self, collateral: Collateral) -> Result<(), Refusal>;
    /// The Verifier checks `endorsements` of `platform` ahead of the evidence that will come
    /// with them (while the guest boots), and keeps what verified.
    fn prepare(&mut self, platform: Platform, endorsements: &[Vec<u8>]);
}

/// The roles behind a reference or a box are the roles.
macro_rules! forward_roles {
    ($($holder:ty),*) => {$(
        impl<R: Roles + ?Sized> Roles for $holder {
            fn initiate(&mut self, platform: Platform, measurement: &[u8], initiate: &Initiate) -> Result<Challenge, Declined> {
                (**self).initiate(platform, measurement, initiate)
            }
            fn issue(&mut self, evidence: Presented<'_>, mechanism: Option<Mechanism>) -> Result<Obtained, Refusal> {
                (**self).issue(evidence, mechanism)
            }
            fn renew(&mut self, evidence: Presented<'_>, previous: &str) -> Result<Obtained, Refusal> {
                (**self).renew(evidence, previous)
            }
            fn attestation_result(&mut self, evidence: Presented<'_>) -> Result<(String, String), Refusal> {
                (**self).attestation_result(evidence)
            }
            fn redeem(&mut self, request: &CredentialRequestIn<'_>) -> Result<Obtained, Refusal> {
                (**self).redeem(request)
            }
            fn provision(&mut self, platform: Platform, measurement: &[u8]) -> Result<(Provisioned, bool), Refusal> {
                (**self).provision(platform, measurement)
            }
            fn release(&mut self, evidence: Presented<'_>) -> Result<Released, Refusal> {
                (**self).release(evidence)
            }
            fn accept_tdx_collateral(&mut self, collateral: Collateral) -> Result<(), Refusal> {
                (**self).accept_tdx_collateral(collateral)
            }
            fn prepare(&mut self, platform: Platform, endorsements: &[Vec<u8>]) {
                (**self).prepare(platform, endorsements)
            }
        }
    )*};
}
forward_roles!(&mut R, Box<R>);

fn obtained(issued: Result<Issued, Rejection>) -> Result<Obtained, Refusal> {
    Ok(Obtained::from_issued(&issued?))
}

/// The issuer in this process: each method is one of its asks.
impl Roles for Issuer {
    fn initiate(&mut self, platform: Platform, measurement: &[u8], initiate: &Initiate) -> Result<Challenge, Declined> {
        let Initiate { target, credential_type, hint } = initiate;
        Ok(Issuer::initiate(self, platform, measurement, target, *credential_type, hint.as_deref())?)
    }
    fn issue(&mut self, evidence: Presented<'_>, mechanism: Option<Mechanism>) -> Result<Obtained, Refusal> {
        obtained(match mechanism {
            Some(Mechanism::A) => self.verifier_credential(&evidence),
            _ => self.ca_credential(CredentialRequest::Evidence { evidence, renewal_of: None }),
        })
    }
    fn renew(&mut self, evidence: Presented<'_>, previous: &str) -> Result<Obtained, Refusal> {
        obtained(self.ca_credential(CredentialRequest::Evidence { evidence, renewal_of: Some(previous) }))
    }
    fn attestation_result(&mut self, evidence: Presented<'_>) -> Result<(String, String), Refusal> {
        let result = self.verifier_attestation_result(&evidence)?;
        Ok((result.ear_jwt, result.workload_id))
    }
    fn redeem(&mut self, request: &CredentialRequestIn<'_>) -> Result<Obtained, Refusal> {
        obtained(self.ca_credential(CredentialRequest::AttestationResult(*request)))
    }
    fn provision(&mut self, platform: Platform, measurement: &[u8]) -> Result<(Provisioned, bool), Refusal> {
        let owner = "the workload owner (twi run --mechanism d, in process)";
        self.key_store_provision(platform, measurement, owner).map_err(|e| Refusal(e.to_string()))
    }
    fn release(&mut self, evidence: Presented<'_>) -> Result<Released, Refusal> {
        let released = self.key_store_release(&evidence)?;
        let key_store_jwk = self.key_store().map(|k| k.jwk()).map_err(|e| Refusal(e.to_string()))?;
        Ok(Released { issued: Obtained::from_issued(&released.issued), release: released.release, key_store_jwk })
    }
    fn accept_tdx_collateral(&mut self, collateral: Collateral) -> Result<(), Refusal> {
        self.accept_hardware_tdx(TdxConfig::default(), Some(collateral));
        Ok(())
    }
    fn prepare(&mut self, platform: Platform, endorsements: &[Vec<u8>]) {
        self.prepare_endorsements(platform, endorsements)
    }
}

/// `twi serve` at a URL: each method is one of its endpoints.
impl Roles for RemoteIssuer {
    fn initiate(&mut self, platform: Platform, measurement: &[u8], initiate: &Initiate) -> Result<Challenge, Declined> {
        RemoteIssuer::initiate(self, platform, measurement, initiate)
    }
    fn issue(&mut self, evidence: Presented<'_>, mechanism: Option<Mechanism>) -> Result<Obtained, Refusal> {
        RemoteIssuer::issue(self, &evidence, mechanism).map_err(Refusal)
    }
    fn renew(&mut self, evidence: Presented<'_>, previous: &str) -> Result<Obtained, Refusal> {
        RemoteIssuer::renew(self, &evidence, previous).map_err(Refusal)
    }
    fn attestation_result(&mut self, evidence: Presented<'_>) -> Result<(String, String), Refusal> {
        RemoteIssuer::attestation_result(self, &evidence).map_err(Refusal)
    }
    fn redeem(&mut self, request: &CredentialRequestIn<'_>) -> Result<Obtained, Refusal> {
        RemoteIssuer::redeem(self, request).map_err(Refusal)
    }
    fn provision(&mut self, platform: Platform, measurement: &[u8]) -> Result<(Provisioned, bool), Refusal> {
        RemoteIssuer::provision(self, platform, measurement).map_err(Refusal)
    }
    fn release(&mut self, evidence: Presented<'_>) -> Result<Released, Refusal> {
        let (issued, release, key_store_jwk) = RemoteIssuer::release(self, &evidence).map_err(Refusal)?;
        Ok(Released { issued, release, key_store_jwk })
    }
    fn accept_tdx_collateral(&mut self, _: Collateral) -> Result<(), Refusal> {
        Err(Refusal("a remote issuer judges TDX quotes with its own collateral".into()))
    }
    /// Nothing: the service's Verifier keeps the chains it verified itself.
    fn prepare(&mut self, _: Platform, _: &[Vec<u8>]) {}
}
