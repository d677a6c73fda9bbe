//! The issuer's roles as the bridge calls them (Verifier, Credential Authority, Key Store, in
//! the words of draft-novak-twi-attestation): one trait, so the bridge neither knows nor cares
//! whether they run in this process ([`twi_issuer::Issuer`]) or behind `twi serve`
//! ([`RemoteIssuer`]), and a test can put a decorator (the `tamper` module) or a fake between.

use twi_issuer::keystore::{Provisioned, Release};
use twi_issuer::policy::Mechanism;
use twi_issuer::{CredentialRequestIn, EvidenceBundle, Issuer};
use twi_proto::msg::{Platform, RtmrEvent};
use twi_verifier::tdx::Collateral;

use crate::remote::{IssuerLink, Obtained, RemoteIssuer};

/// Why a role refused (or could not be reached), in its own words: the bridge passes it to the
/// guest and to the user unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// The evidence as the roles receive it: the bundle the Verifier appraises and, for TDX, the
/// runtime's RTMR event log.
#[derive(Debug)]
pub struct Presented<'a> {
    pub bundle: EvidenceBundle<'a>,
    pub events: &'a [RtmrEvent],
}

/// The Verifier's challenge for one launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The verifier nonce (AF_L2) or epoch id (AF_L1) the evidence must bind.
    pub nonce: Vec<u8>,
    /// The mechanism the policy chose for the workload this launch belongs to, if it names one.
    pub mechanism: Option<Mechanism>,
}

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
    /// The Verifier's challenge for a launch expected to measure `measurement`.
    fn challenge(&mut self, platform: Platform, measurement: &[u8]) -> Result<Challenge, Refusal>;
    /// Mechanisms A and C (and C's renewal-free issuance): the credential for the attested key.
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
}

impl<R: Roles + ?Sized> Roles for &mut R {
    fn challenge(&mut self, platform: Platform, measurement: &[u8]) -> Result<Challenge, Refusal> {
        (**self).challenge(platform, measurement)
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
}

impl<R: Roles + ?Sized> Roles for Box<R> {
    fn challenge(&mut self, platform: Platform, measurement: &[u8]) -> Result<Challenge, Refusal> {
        (**self).challenge(platform, measurement)
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
}

// Both ways of reaching the issuer go through [`IssuerLink`] (remote.rs), which maps each call
// to the embedded issuer's method or to the service's endpoint.

impl Roles for Issuer {
    fn challenge(&mut self, platform: Platform, measurement: &[u8]) -> Result<Challenge, Refusal> {
        challenge(IssuerLink::Embedded(self), platform, measurement)
    }
    fn issue(&mut self, e: Presented<'_>, mechanism: Option<Mechanism>) -> Result<Obtained, Refusal> {
        IssuerLink::Embedded(self).issue(&e.bundle, e.events, mechanism).map_err(Refusal)
    }
    fn renew(&mut self, e: Presented<'_>, previous: &str) -> Result<Obtained, Refusal> {
        IssuerLink::Embedded(self).renew(&e.bundle, e.events, previous).map_err(Refusal)
    }
    fn attestation_result(&mut self, e: Presented<'_>) -> Result<(String, String), Refusal> {
        IssuerLink::Embedded(self).attestation_result(&e.bundle, e.events).map_err(Refusal)
    }
    fn redeem(&mut self, request: &CredentialRequestIn<'_>) -> Result<Obtained, Refusal> {
        IssuerLink::Embedded(self).redeem(request).map_err(Refusal)
    }
    fn provision(&mut self, platform: Platform, measurement: &[u8]) -> Result<(Provisioned, bool), Refusal> {
        IssuerLink::Embedded(self).provision(platform, measurement).map_err(Refusal)
    }
    fn release(&mut self, e: Presented<'_>) -> Result<Released, Refusal> {
        released(IssuerLink::Embedded(self).release(&e.bundle, e.events))
    }
    fn accept_tdx_collateral(&mut self, collateral: Collateral) -> Result<(), Refusal> {
        self.accept_hardware_tdx(twi_verifier::tdx::TdxConfig::default(), Some(collateral));
        Ok(())
    }
}

impl Roles for RemoteIssuer {
    fn challenge(&mut self, platform: Platform, measurement: &[u8]) -> Result<Challenge, Refusal> {
        challenge(IssuerLink::Remote(self), platform, measurement)
    }
    fn issue(&mut self, e: Presented<'_>, mechanism: Option<Mechanism>) -> Result<Obtained, Refusal> {
        IssuerLink::Remote(self).issue(&e.bundle, e.events, mechanism).map_err(Refusal)
    }
    fn renew(&mut self, e: Presented<'_>, previous: &str) -> Result<Obtained, Refusal> {
        IssuerLink::Remote(self).renew(&e.bundle, e.events, previous).map_err(Refusal)
    }
    fn attestation_result(&mut self, e: Presented<'_>) -> Result<(String, String), Refusal> {
        IssuerLink::Remote(self).attestation_result(&e.bundle, e.events).map_err(Refusal)
    }
    fn redeem(&mut self, request: &CredentialRequestIn<'_>) -> Result<Obtained, Refusal> {
        IssuerLink::Remote(self).redeem(request).map_err(Refusal)
    }
    fn provision(&mut self, platform: Platform, measurement: &[u8]) -> Result<(Provisioned, bool), Refusal> {
        IssuerLink::Remote(self).provision(platform, measurement).map_err(Refusal)
    }
    fn release(&mut self, e: Presented<'_>) -> Result<Released, Refusal> {
        released(IssuerLink::Remote(self).release(&e.bundle, e.events))
    }
    fn accept_tdx_collateral(&mut self, _: Collateral) -> Result<(), Refusal> {
        Err(Refusal("a remote issuer judges TDX quotes with its own collateral".into()))
    }
}

fn challenge(mut link: IssuerLink<'_>, platform: Platform, measurement: &[u8]) -> Result<Challenge, Refusal> {
    let (nonce, mechanism) = link.challenge(platform, measurement).map_err(|e| Refusal(format!("{e:#}")))?;
    Ok(Challenge { nonce, mechanism })
}

fn released(result: Result<(Obtained, Release, serde_json::Value), String>) -> Result<Released, Refusal> {
    let (issued, release, key_store_jwk) = result.map_err(Refusal)?;
    Ok(Released { issued, release, key_store_jwk })
}
