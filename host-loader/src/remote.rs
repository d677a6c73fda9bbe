//! The issuer's roles as `twi run` reaches them: in-process (the embedded default) or over
//! HTTP (`twi run --issuer-url`, served by `twi serve`; see `twi_issuer::http` for the
//! endpoints). The guest sees no difference: the loader relays the same messages either way.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use twi_issuer::http::{
    AttestationResultResponse, ChallengeRequest, ChallengeResponse, CredentialAuthorityRequest, CredentialResponse,
    ErrorResponse, EvidenceJson, KeyReleaseRequest, KeyReleaseResponse, ProvisionRequest, ProvisionResponse,
    VerifierRequest,
};
use twi_issuer::keystore::{Provisioned, Release};
use twi_issuer::policy::{Mechanism, platform_name};
use twi_issuer::{CredentialRequestIn, EvidenceBundle, Issued, Issuer};
use twi_proto::msg::{Platform, RtmrEvent};
use x509_cert::Certificate;

/// How long one request to the remote issuer may take (appraisal of a TDX quote with its
/// collateral is the slowest, well under a second).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A credential the issuer returned, whichever way it was reached.
#[derive(Debug, Clone)]
pub struct Obtained {
    pub certificate_der: Vec<u8>,
    pub credential: CredentialResponse,
}

impl Obtained {
    fn from_issued(issued: &Issued) -> Self {
        Self { certificate_der: issued.certificate_der.clone(), credential: CredentialResponse::new(issued) }
    }

    fn from_response(credential: CredentialResponse) -> std::result::Result<Self, String> {
        let (label, der) = der::pem::decode_vec(credential.certificate_pem.as_bytes())
            .map_err(|e| format!("the issuer's certificate_pem is not PEM: {e}"))?;
        if label != "CERTIFICATE" {
            return Err(format!("the issuer's certificate_pem holds a {label}, not a CERTIFICATE"));
        }
        Ok(Self { certificate_der: der, credential })
    }
}

/// The roles the loader talks to.
#[derive(Debug)]
pub enum IssuerLink<'a> {
    /// The issuer in this process.
    Embedded(&'a mut Issuer),
    /// `twi serve` at a URL.
    Remote(&'a RemoteIssuer),
}

impl IssuerLink<'_> {
    /// The Verifier's challenge for a launch expected to measure `measurement`, and the
    /// policy's mechanism for that workload (if the policy names one).
    pub fn challenge(&mut self, platform: Platform, measurement: &[u8]) -> Result<(Vec<u8>, Option<Mechanism>)> {
        match self {
            Self::Embedded(issuer) => {
                let nonce = issuer.challenge_for(platform, measurement).map_err(|e| anyhow!("issuer: {e}"))?;
                let mechanism =
                    issuer.policy_mode().and_then(|mode| mode.workload_for(platform, measurement)).map(|w| w.mechanism);
                Ok((nonce, mechanism))
            }
            Self::Remote(remote) => {
                let request = ChallengeRequest {
                    platform: platform_name(platform).to_string(),
                    measurement: Some(hex::encode(measurement)),
                };
                let answer: ChallengeResponse =
                    remote.post("/v1/challenge", &request).map_err(|e| anyhow!("the Verifier's challenge: {e}"))?;
                let nonce = hex::decode(&answer.nonce)
                    .map_err(|e| anyhow!("the Verifier at {} sent a nonce that is not hex: {e}", remote.base))?;
                Ok((nonce, answer.mechanism))
            }
        }
    }

    /// Mechanisms A (evidence to the Verifier, which asks the CA) and C (evidence to the CA,
    /// which asks the Verifier); without a policy, the one issuance there is. `Err`: the reason.
    pub fn issue(
        &mut self,
        bundle: &EvidenceBundle<'_>,
        events: &[RtmrEvent],
        mechanism: Option<Mechanism>,
    ) -> std::result::Result<Obtained, String> {
        match self {
            Self::Embedded(issuer) => issuer
                .issue_with_mechanism(bundle, events, mechanism)
                .map(|issued| Obtained::from_issued(&issued))
                .map_err(|rejection| rejection.to_string()),
            Self::Remote(remote) => {
                let evidence = EvidenceJson::new(bundle, events);
                let response: CredentialResponse = if mechanism == Some(Mechanism::A) {
                    remote.post("/v1/verifier/evidence", &VerifierRequest { mechanism: Mechanism::A, evidence })?
                } else {
                    let request = CredentialAuthorityRequest {
                        mechanism: Mechanism::C,
                        evidence: Some(evidence),
                        attestation_result: None,
                        public_key: None,
                        proof: None,
                    };
                    remote.post("/v1/ca/credential", &request)?
                };
                Obtained::from_response(response)
            }
        }
    }

    /// A renewal of credential `previous` (X.509 serial in hex, or WIT jti) under the policy's
    /// stickiness (mechanism C: evidence to the Credential Authority). `Err`: the reason.
    pub fn renew(
        &mut self,
        bundle: &EvidenceBundle<'_>,
        events: &[RtmrEvent],
        previous: &str,
    ) -> std::result::Result<Obtained, String> {
        match self {
            Self::Embedded(issuer) => issuer
                .renew_with_events(bundle, events, previous)
                .map(|issued| Obtained::from_issued(&issued))
                .map_err(|rejection| rejection.to_string()),
            Self::Remote(remote) => Err(format!(
                "renewals are not offered over HTTP yet: run the renewal against the embedded issuer, not {}",
                remote.base
            )),
        }
    }

    /// Mechanism B, the Verifier: the signed attestation result and the workload identifier.
    pub fn attestation_result(
        &mut self,
        bundle: &EvidenceBundle<'_>,
        events: &[RtmrEvent],
    ) -> std::result::Result<(String, String), String> {
        match self {
            Self::Embedded(issuer) => issuer
                .verify_for_credential_request(bundle, events)
                .map(|result| (result.ear_jwt, result.workload_id))
                .map_err(|rejection| rejection.to_string()),
            Self::Remote(remote) => {
                let request = VerifierRequest { mechanism: Mechanism::B, evidence: EvidenceJson::new(bundle, events) };
                let answer: AttestationResultResponse = remote.post("/v1/verifier/evidence", &request)?;
                Ok((answer.attestation_result, answer.workload_id))
            }
        }
    }

    /// Mechanism B, the Credential Authority: the workload's credential request.
    pub fn redeem(&mut self, request: &CredentialRequestIn<'_>) -> std::result::Result<Obtained, String> {
        match self {
            Self::Embedded(issuer) => issuer
                .issue_for_credential_request(request)
                .map(|issued| Obtained::from_issued(&issued))
                .map_err(|rejection| rejection.to_string()),
            Self::Remote(remote) => {
                let body = CredentialAuthorityRequest {
                    mechanism: Mechanism::B,
                    evidence: None,
                    attestation_result: Some(request.ear.to_string()),
                    public_key: Some(hex::encode(request.public_key)),
                    proof: Some(hex::encode(request.proof)),
                };
                Obtained::from_response(remote.post("/v1/ca/credential", &body)?)
            }
        }
    }
}

impl IssuerLink<'_> {
    /// Mechanism D, the workload owner's step as `twi run --mechanism d` does it for the demo:
    /// a credential and its key in the Key Store for the workload this launch belongs to.
    /// Returns it and whether it was provisioned now.
    /// Remote: `POST /v1/key-store/provision`; the certified key is read from the certificate.
    pub fn provision(
        &mut self,
        platform: Platform,
        measurement: &[u8],
    ) -> std::result::Result<(Provisioned, bool), String> {
        match self {
            Self::Embedded(issuer) => issuer.provision_workload(platform, measurement).map_err(|e| e.to_string()),
            Self::Remote(remote) => {
                let request = ProvisionRequest {
                    platform: platform_name(platform).to_string(),
                    measurement: hex::encode(measurement),
                };
                let answer: ProvisionResponse = remote.post("/v1/key-store/provision", &request)?;
                let der = hex::decode(&answer.certificate)
                    .map_err(|e| format!("the Key Store at {} sent a certificate that is not hex: {e}", remote.base))?;
                let provisioned = Provisioned::from_certificate(&answer.workload_id, &der)
                    .map_err(|e| format!("the Key Store at {} sent {e}", remote.base))?;
                Ok((provisioned, answer.created))
            }
        }
    }

    /// Mechanism D: the Verifier appraises the evidence (which binds the guest's ephemeral HPKE
    /// key), then the Key Store releases the provisioned key encrypted to it. Returns the
    /// credential of record, the release, and the Key Store's public key (JWK) that verifies
    /// the release receipt.
    /// Remote: `POST /v1/key-store/release`, answered the same way.
    pub fn release(
        &mut self,
        bundle: &EvidenceBundle<'_>,
        events: &[RtmrEvent],
    ) -> std::result::Result<(Obtained, Release, serde_json::Value), String> {
        match self {
            Self::Embedded(issuer) => {
                let released = issuer.release_key(bundle, events).map_err(|rejection| rejection.to_string())?;
                let jwk = issuer.key_store().map(|k| k.jwk()).map_err(|e| e.to_string())?;
                Ok((Obtained::from_issued(&released.issued), released.release, jwk))
            }
            Self::Remote(remote) => {
                let request = KeyReleaseRequest { evidence: EvidenceJson::new(bundle, events) };
                let answer: KeyReleaseResponse = remote.post("/v1/key-store/release", &request)?;
                let bad = |what: &str, e: &dyn std::fmt::Display| {
                    format!("the Key Store at {} sent {what} that is not hex: {e}", remote.base)
                };
                let der = hex::decode(&answer.certificate).map_err(|e| bad("a certificate", &e))?;
                let enc = hex::decode(&answer.enc).map_err(|e| bad("an `enc`", &e))?;
                let ciphertext = hex::decode(&answer.ciphertext).map_err(|e| bad("a ciphertext", &e))?;
                // The certified key is read from the certificate, not taken on the service's word.
                let provisioned = Provisioned::from_certificate(&answer.credential.workload_id, &der)
                    .map_err(|e| format!("the Key Store at {} sent {e}", remote.base))?;
                let obtained = Obtained::from_response(answer.credential)?;
                if obtained.certificate_der != der {
                    return Err(format!(
                        "the Key Store at {} sent two different certificates (PEM and DER) in one release",
                        remote.base
                    ));
                }
                let release = Release { provisioned, enc, ciphertext, receipt: answer.receipt };
                Ok((obtained, release, answer.key_store_key))
            }
        }
    }
}

/// A blocking client for `twi serve`.
#[derive(Debug)]
pub struct RemoteIssuer {
    base: String,
    agent: ureq::Agent,
}

impl RemoteIssuer {
    /// `url`: `http://HOST:PORT` (a trailing `/` is ignored).
    pub fn new(url: &str) -> Result<Self> {
        let base = url.trim_end_matches('/').to_string();
        if !base.starts_with("http://") {
            bail!(
                "--issuer-url {url:?}: only http:// URLs are supported (put `twi serve` behind a TLS-terminating proxy on the same host, or reach it over a private network)"
            );
        }
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(REQUEST_TIMEOUT))
            .http_status_as_error(false)
            .user_agent(concat!("twi/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Self { base, agent: config.into() })
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    /// The CA certificate credentials chain to (and images embed as their issuer anchor).
    pub fn ca_certificate(&self) -> Result<(String, Certificate)> {
        let pem = self.get_text("/v1/ca/certificate").context("fetching the issuer's CA certificate")?;
        let certificate = <Certificate as der::DecodePem>::from_pem(pem.as_bytes())
            .with_context(|| format!("{}/v1/ca/certificate is not a PEM certificate", self.base))?;
        Ok((pem, certificate))
    }

    /// The served roles' JSON signing keys (JWKS).
    pub fn keys(&self) -> Result<serde_json::Value> {
        let text = self.get_text("/v1/keys")?;
        serde_json::from_str(&text).with_context(|| format!("{}/v1/keys is not JSON", self.base))
    }

    fn get_text(&self, path: &str) -> Result<String> {
        let url = format!("{}{path}", self.base);
        let mut response = self.agent.get(&url).call().map_err(|e| anyhow!("{}", self.unreachable(&e)))?;
        let status = response.status();
        let text = response.body_mut().read_to_string().map_err(|e| anyhow!("reading {url}: {e}"))?;
        if !status.is_success() {
            bail!("{url} answered {status}: {}", reason(&text));
        }
        Ok(text)
    }

    /// POSTs `body` as JSON; `Err` is the reason in words (the issuer's own, for a refusal).
    fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> std::result::Result<T, String> {
        let url = format!("{}{path}", self.base);
        let mut response = self.agent.post(&url).send_json(body).map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let text = response.body_mut().read_to_string().map_err(|e| format!("reading the answer of {url}: {e}"))?;
        if !status.is_success() {
            return Err(if status.is_client_error() {
                reason(&text)
            } else {
                format!("{url} answered {status}: {}", reason(&text))
            });
        }
        serde_json::from_str(&text).map_err(|e| format!("{url} answered with unexpected JSON ({e})"))
    }

    fn unreachable(&self, error: &ureq::Error) -> String {
        format!("the issuer at {} cannot be reached ({error}); is `twi serve` running there?", self.base)
    }
}

/// The `error` of an error answer, else the text itself.
fn reason(text: &str) -> String {
    serde_json::from_str::<ErrorResponse>(text).map(|e| e.error).unwrap_or_else(|_| text.trim().to_string())
}
