//! The issuer's roles over HTTP (`twi run --issuer-url`, served by `twi serve`): a blocking
//! client of the endpoints `twi_issuer::http` serves, speaking its wire types
//! (`twi_issuer::http::wire`), so client and server share every field. The guest sees no
//! difference from the embedded issuer: the loader relays the same messages either way.
//! HTTPS (rustls, the service's certificate verified under the issuer CA, the owner's client
//! certificate for the owner's endpoints); plain HTTP to a loopback address only.
//!
//! [`Protocol::Est`] (`twi run --protocol est`) takes mechanism C's Enrollment through EST
//! (RFC 7030 simpleenroll, `twi_issuer::http::est`) instead of `POST /v1/ca/credential`: the
//! CSR as the base64 PKCS#10 body, the rest of the evidence in the `TWI-Evidence` header, the
//! certificate from the certs-only PKCS#7 answer (checked against the issuance record the
//! `TWI-Credential` header carries). The Initiate (`/v1/challenge`) and the other mechanisms
//! stay on the JSON API, which has no EST form.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use twi_issuer::http::PeerError;
use twi_issuer::http::wire::{
    AttestationResultResponse, ChallengeRequest, ChallengeResponse, CredentialAuthorityRequest, CredentialResponse,
    ErrorResponse, EvidenceJson, KeyReleaseRequest, KeyReleaseResponse, ProvisionRequest, ProvisionResponse,
    VerifierRequest,
};
use twi_issuer::keystore::{Provisioned, Release};
use twi_issuer::log_peer::{AppendRequest, BindingAnswer, BindingRequest, SignRequest, SignResponse};
use twi_issuer::policy::{Mechanism, platform_name};
use twi_issuer::{Challenge, CredentialRequestIn, Evidence};
use twi_proto::msg::{ErrorCode, Freshness, Initiate, Platform};
use ureq::RequestBuilder;
use ureq::typestate::WithBody;

use crate::answers::{Declined, Obtained, Refusal};
use x509_cert::Certificate;

/// How long one request to the remote issuer may take (appraisal of a TDX quote with its
/// collateral is the slowest, well under a second).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Connections kept open to the service for the next request. The service works on requests
/// concurrently, and a process calling another role (a Credential Authority calling its log
/// process, say) makes as many calls at once as it has requests in flight: each kept
/// connection spares a mutual-TLS handshake (ureq keeps 3 by default).
const IDLE_CONNECTIONS: usize = 32;
/// The largest text answer read (ureq's own default for `read_to_string`: 10 MiB).
const TEXT_LIMIT: usize = 10 * 1024 * 1024;

/// A blocking client for `twi serve`. Each role's method returns the service's reason (or why
/// it could not be reached) as its error.
#[derive(Debug)]
pub struct RemoteIssuer {
    base: String,
    agent: ureq::Agent,
    protocol: Protocol,
}

/// How an Enrollment's credential is asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Protocol {
    /// The JSON API (`POST /v1/ca/credential`, `POST /v1/verifier/evidence`).
    #[default]
    Json,
    /// EST (RFC 7030) `simpleenroll`, for mechanism C.
    Est,
}

/// How the client authenticates the service, and itself.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// The CA (PEM) the service's certificate must chain to: `--issuer-ca`, else the issuer CA
    /// the image was built against.
    pub ca: Option<PathBuf>,
    /// The owner's client certificate chain and key (PEM), for the owner's endpoints.
    pub client: Option<(PathBuf, PathBuf)>,
}

impl RemoteIssuer {
    /// `url`: `https://HOST:PORT` (a trailing `/` is ignored), verified under `tls.ca`; or
    /// `http://` to a loopback address (a `twi serve --insecure-plain-http`).
    pub fn new(url: &str, tls: &ClientTls) -> Result<Self> {
        let base = url.trim_end_matches('/').to_string();
        let mut config = ureq::Agent::config_builder()
            .timeout_global(Some(REQUEST_TIMEOUT))
            .max_idle_connections(IDLE_CONNECTIONS)
            .max_idle_connections_per_host(IDLE_CONNECTIONS)
            .http_status_as_error(false)
            .user_agent(concat!("twi/", env!("CARGO_PKG_VERSION")));
        if base.starts_with("https://") {
            let Some(ca) = &tls.ca else {
                bail!(
                    "--issuer-url {url}: name the CA its server certificate chains to with --issuer-ca FILE (the service's STATE/issuer/issuer-ca.pem), or run an image built against it (`--image IMG/twi.rom` uses IMG/issuer-ca.pem)"
                );
            };
            config = config.tls_config(tls_config(ca, tls.client.as_ref())?);
        } else if let Some(rest) = base.strip_prefix("http://") {
            if !loopback(rest) {
                bail!(
                    "--issuer-url {url}: plain HTTP is allowed to a loopback address only; use https:// (`twi serve` speaks TLS by default)"
                );
            }
            if tls.client.is_some() {
                bail!("--issuer-url {url}: a client certificate needs https://");
            }
        } else {
            bail!("--issuer-url {url:?}: expected https://HOST:PORT (or http:// to a loopback address)");
        }
        Ok(Self { base, agent: config.build().into(), protocol: Protocol::Json })
    }

    /// The same client, asking for Enrollments over `protocol`.
    pub fn with_protocol(self, protocol: Protocol) -> Self {
        Self { protocol, ..self }
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

    /// The Verifier's attestation result `jwt` re-signed as a CWT (`POST /v1/verifier/ear-cwt`).
    pub fn ear_cwt(&self, jwt: &str) -> Result<Vec<u8>> {
        let request = twi_issuer::http::wire::EarCwtRequest { attestation_result: jwt.to_string() };
        let answer: twi_issuer::http::wire::EarCwtResponse = self
            .post(twi_issuer::http::results::EAR_CWT_PATH, &request)
            .map_err(|e| anyhow!("the attestation result as a CWT: {e}"))?;
        hex::decode(&answer.cwt).context("the Verifier's CWT is not hex")
    }

    /// The provenance log's checkpoint verifier key.
    pub fn log_vkey(&self) -> Result<String> {
        self.get_text(twi_issuer::http::log::VKEY_PATH)
    }

    /// The log's current checkpoint (a C2SP signed note).
    pub fn log_checkpoint(&self) -> Result<String> {
        self.get_text(twi_issuer::http::log::CHECKPOINT_PATH)
    }

    /// The service's counters (`GET /metrics`, Prometheus text format): read one with
    /// [`twi_issuer::metrics::read`].
    pub fn metrics(&self) -> Result<String> {
        self.get_text("/metrics")
    }

    /// The RFC 9162 consistency proof from the tree of `first` records to the tree of `second`.
    pub fn log_consistency(&self, first: u64, second: u64) -> Result<serde_json::Value> {
        let path = format!("{}/{first}/{second}", twi_issuer::http::log::CONSISTENCY_PATH);
        let text = self.get_text(&path)?;
        serde_json::from_str(&text).with_context(|| format!("{}{path} is not JSON", self.base))
    }

    /// The record of credential `id`, its inclusion proof and the checkpoint it proves against.
    pub fn log_proof(&self, id: &str) -> Result<serde_json::Value> {
        if !is_credential_id(id) {
            bail!("{id:?} is not a credential id: give an X.509 serial (hex) or a WIT jti (base64url)");
        }
        let path = format!("{}/{id}", twi_issuer::http::log::PROOF_PATH);
        let text = self.get_text(&path)?;
        serde_json::from_str(&text).with_context(|| format!("{}{path} is not JSON", self.base))
    }

    /// The SBOM document of `digest` the log role serves (from its policy's SBOM store), its
    /// digest checked here: the bytes are the document the record names, or an error.
    pub fn log_sbom(&self, digest: &twi_issuer::policy::SbomDigest) -> Result<Vec<u8>> {
        let path = format!("{}/{}", twi_issuer::http::log::SBOM_PATH, digest.path_form());
        let bytes = self.get_text(&path)?.into_bytes();
        let found = twi_issuer::policy::SbomDigest::of(&bytes);
        if found != *digest {
            bail!("{}{path} served a document whose digest is {found}, not {digest}: do not trust it", self.base);
        }
        Ok(bytes)
    }

    /// The statement attached to an SBOM (`twi build --attach`) of SHA-384 `digest`, from the
    /// log role (`GET /v1/log/attachment/sha384-HEX`), its digest checked.
    pub fn log_attachment(&self, digest: &twi_issuer::policy::SbomDigest) -> Result<Vec<u8>> {
        let path = format!("{}/{}", twi_issuer::http::log::ATTACHMENT_PATH, digest.path_form());
        let bytes = self.get_bytes(&path, twi_issuer::policy::ATTACHMENT_LIMIT)?;
        let found = twi_issuer::policy::SbomDigest::of(&bytes);
        if found != *digest {
            bail!("{}{path} served a statement whose digest is {found}, not {digest}: do not trust it", self.base);
        }
        Ok(bytes)
    }

    /// The trust domain's SPIFFE bundle the service publishes.
    pub fn trust_bundle(&self) -> Result<serde_json::Value> {
        let path = twi_issuer::bundle::BUNDLE_PATH;
        let text = self.get_text(path)?;
        serde_json::from_str(&text).with_context(|| format!("{}{path} is not JSON", self.base))
    }

    /// `POST /v1/challenge`: the Verifier's challenge for a launch expected to measure
    /// `measurement`, and the policy's mechanism for that workload.
    pub fn initiate(
        &self,
        platform: Platform,
        measurement: &[u8],
        initiate: &Initiate,
    ) -> std::result::Result<Challenge, Declined> {
        let request = ChallengeRequest {
            platform: platform_name(platform).to_string(),
            measurement: Some(hex::encode(measurement)),
            target: initiate.target.clone(),
            credential_type: initiate.credential_type.name().to_string(),
            hint: initiate.hint.clone(),
        };
        let answer: ChallengeResponse = self.post_coded("/v1/challenge", &request).map_err(|(code, text)| {
            let code = match code.as_deref() {
                Some("invalid-target") => ErrorCode::InvalidTarget,
                Some("unsupported-type") => ErrorCode::UnsupportedType,
                Some("rejected-hint") => ErrorCode::RejectedHint,
                _ => ErrorCode::Internal,
            };
            Declined { code, refusal: Refusal(format!("the Verifier's challenge: {text}")) }
        })?;
        let bad = |what: String| Declined { code: ErrorCode::Internal, refusal: Refusal(what) };
        let nonce = hex::decode(&answer.nonce)
            .map_err(|e| bad(format!("the Verifier at {} sent a nonce that is not hex: {e}", self.base)))?;
        let freshness = Freshness::from_name(&answer.freshness)
            .ok_or_else(|| bad(format!("the Verifier at {} named no TACRA freshness kind", self.base)))?;
        Ok(Challenge { nonce, mechanism: answer.mechanism, freshness })
    }

    /// Mechanism A (`POST /v1/verifier/evidence`: the Verifier asks the CA) or C (`POST
    /// /v1/ca/credential`: the CA asks the Verifier).
    pub fn issue(
        &self,
        evidence: &Evidence<'_>,
        mechanism: Option<Mechanism>,
    ) -> std::result::Result<Obtained, String> {
        if self.protocol == Protocol::Est {
            return match mechanism {
                Some(Mechanism::A) => Err(est_refused(Mechanism::A)),
                _ => self.simpleenroll(evidence, None),
            };
        }
        if mechanism == Some(Mechanism::A) {
            let evidence = EvidenceJson::new(evidence);
            let request = VerifierRequest { mechanism: Mechanism::A, evidence };
            return Obtained::from_response(self.post("/v1/verifier/evidence", &request)?);
        }
        self.enroll_json(evidence, None)
    }

    /// A renewal of credential `previous` (X.509 serial in hex, or WIT jti) on fresh evidence:
    /// mechanism C's request naming it (`POST /v1/ca/credential`, or EST simplereenroll).
    pub fn renew(&self, evidence: &Evidence<'_>, previous: &str) -> std::result::Result<Obtained, String> {
        match self.protocol {
            Protocol::Est => self.simpleenroll(evidence, Some(previous)),
            Protocol::Json => self.enroll_json(evidence, Some(previous)),
        }
    }

    /// Mechanism C at the Credential Authority (`POST /v1/ca/credential`).
    fn enroll_json(&self, evidence: &Evidence<'_>, renewal_of: Option<&str>) -> std::result::Result<Obtained, String> {
        let request = CredentialAuthorityRequest {
            mechanism: Mechanism::C,
            evidence: Some(EvidenceJson::new(evidence)),
            attestation_result: None,
            public_key: None,
            proof: None,
            renewal_of: renewal_of.map(str::to_string),
        };
        Obtained::from_response(self.post("/v1/ca/credential", &request)?)
    }

    /// Mechanism B, the Verifier (`POST /v1/verifier/evidence`): the signed attestation result
    /// and the workload identifier.
    pub fn attestation_result(&self, evidence: &Evidence<'_>) -> std::result::Result<(String, String), String> {
        if self.protocol == Protocol::Est {
            return Err(est_refused(Mechanism::B));
        }
        let request = VerifierRequest { mechanism: Mechanism::B, evidence: EvidenceJson::new(evidence) };
        let answer: AttestationResultResponse = self.post("/v1/verifier/evidence", &request)?;
        Ok((answer.attestation_result, answer.workload_id))
    }

    /// Mechanism B, the Credential Authority (`POST /v1/ca/credential`): the workload's
    /// credential request.
    pub fn redeem(&self, request: &CredentialRequestIn<'_>) -> std::result::Result<Obtained, String> {
        let body = CredentialAuthorityRequest {
            mechanism: Mechanism::B,
            evidence: None,
            attestation_result: Some(request.ear.to_string()),
            public_key: Some(hex::encode(request.public_key)),
            proof: Some(hex::encode(request.proof)),
            renewal_of: None,
        };
        Obtained::from_response(self.post("/v1/ca/credential", &body)?)
    }

    /// Mechanism D, the workload owner's step as `twi run --mechanism d` does it for the demo
    /// (`POST /v1/key-store/provision`): the credential the Key Store holds for the workload of
    /// this launch, and whether it was provisioned now. The certified key is read from the
    /// certificate.
    pub fn provision(
        &self,
        platform: Platform,
        measurement: &[u8],
    ) -> std::result::Result<(Provisioned, bool), String> {
        let request =
            ProvisionRequest { platform: platform_name(platform).to_string(), measurement: hex::encode(measurement) };
        let answer: ProvisionResponse = self.post("/v1/key-store/provision", &request)?;
        let der = hex::decode(&answer.certificate)
            .map_err(|e| format!("the Key Store at {} sent a certificate that is not hex: {e}", self.base))?;
        let provisioned = Provisioned::from_certificate(&answer.workload_id, &der)
            .map_err(|e| format!("the Key Store at {} sent {e}", self.base))?;
        Ok((provisioned, answer.created))
    }

    /// Mechanism D (`POST /v1/key-store/release`): the Verifier appraises the evidence (which
    /// binds the guest's ephemeral HPKE key), then the Key Store releases the provisioned key
    /// encrypted to it. Returns the credential of record, the release, and the Key Store's
    /// public key (JWK) that verifies the release receipt.
    pub fn release(
        &self,
        evidence: &Evidence<'_>,
    ) -> std::result::Result<(Obtained, Release, serde_json::Value), String> {
        let request = KeyReleaseRequest { evidence: EvidenceJson::new(evidence) };
        let answer: KeyReleaseResponse = self.post("/v1/key-store/release", &request)?;
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            format!("the Key Store at {} sent {what} that is not hex: {e}", self.base)
        };
        let der = hex::decode(&answer.certificate).map_err(|e| bad("a certificate", &e))?;
        let enc = hex::decode(&answer.enc).map_err(|e| bad("an `enc`", &e))?;
        let ciphertext = hex::decode(&answer.ciphertext).map_err(|e| bad("a ciphertext", &e))?;
        // The certified key is read from the certificate, not taken on the service's word.
        let provisioned = Provisioned::from_certificate(&answer.credential.workload_id, &der)
            .map_err(|e| format!("the Key Store at {} sent {e}", self.base))?;
        let obtained = Obtained::from_response(answer.credential)?;
        if obtained.certificate_der != der {
            return Err(format!(
                "the Key Store at {} sent two different certificates (PEM and DER) in one release",
                self.base
            ));
        }
        let release = Release { provisioned, enc, ciphertext, receipt: answer.receipt };
        Ok((obtained, release, answer.key_store_key))
    }

    /// Mechanism C over EST (RFC 7030 §4.2.1): the CSR as the body, the evidence beside it.
    fn simpleenroll(&self, evidence: &Evidence<'_>, renewal_of: Option<&str>) -> std::result::Result<Obtained, String> {
        use base64ct::{Base64, Encoding};
        use twi_issuer::http::est;
        let Some(csr) = evidence.bundle.csr else {
            return Err("EST enrolls a CSR, and this evidence carries none (a Retrieval's evidence): the guest sent no CSR for its Enrollment".into());
        };
        let mut json = EvidenceJson::new(evidence);
        json.csr = None;
        let header = serde_json::to_vec(&json).map_err(|e| format!("the evidence as JSON: {e}"))?;
        let path = if renewal_of.is_some() { est::SIMPLEREENROLL_PATH } else { est::SIMPLEENROLL_PATH };
        let url = format!("{}{path}", self.base);
        let (evidence_header, body) = (Base64::encode_string(&header), est::base64_lines(csr));
        let mut response = self.post_retried(&url, |request| {
            let request = request.header("content-type", est::PKCS10).header(est::EVIDENCE_HEADER, &evidence_header);
            match renewal_of {
                Some(previous) => request.header(est::RENEWAL_HEADER, previous).send(&body),
                None => request.send(&body),
            }
        })?;
        let status = response.status();
        let record = response.headers().get(est::CREDENTIAL_HEADER).map(|v| v.as_bytes().to_vec());
        let text = response.body_mut().read_to_string().map_err(|e| format!("reading the answer of {url}: {e}"))?;
        if !status.is_success() {
            return Err(refusal(&url, status, &text).1);
        }
        let bad = |what: String| format!("{url} answered {what}");
        let der = est::from_base64("answer", text.as_bytes()).map_err(|e| bad(e.to_string()))?;
        let certificates = est::certificates(&der).map_err(|e| bad(e.to_string()))?;
        let [certificate] = certificates.as_slice() else {
            return Err(bad(format!("{} certificates, not the one it issued", certificates.len())));
        };
        let record = record.ok_or_else(|| bad(format!("no `{}` issuance record", est::CREDENTIAL_HEADER)))?;
        let record = est::from_base64("issuance record", &record).map_err(|e| bad(e.to_string()))?;
        let credential: CredentialResponse =
            serde_json::from_slice(&record).map_err(|e| bad(format!("an issuance record that is not JSON ({e})")))?;
        let obtained = Obtained::from_response(credential)?;
        if obtained.certificate_der != *certificate {
            return Err(bad("a PKCS#7 certificate other than its issuance record's".into()));
        }
        Ok(obtained)
    }

    fn get_text(&self, path: &str) -> Result<String> {
        let bytes = self.get_bytes(path, TEXT_LIMIT)?;
        String::from_utf8(bytes).map_err(|_| anyhow!("{}{path} answered with text that is not UTF-8", self.base))
    }

    /// GETs `path`: its body (at most `limit` bytes), or the service's reason for refusing.
    fn get_bytes(&self, path: &str, limit: usize) -> Result<Vec<u8>> {
        let url = format!("{}{path}", self.base);
        let mut response = self.agent.get(&url).call().map_err(|e| anyhow!("{}", self.unreachable(&e)))?;
        let status = response.status();
        let body = response.body_mut().with_config().limit(limit as u64).read_to_vec();
        let bytes = body.map_err(|e| anyhow!("reading {url}: {e}"))?;
        if !status.is_success() {
            bail!("{url} answered {status}: {}", reason(&String::from_utf8_lossy(&bytes)));
        }
        Ok(bytes)
    }

    /// POSTs `body` as JSON; `Err` is the reason in words (the issuer's own, for a refusal).
    fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> std::result::Result<T, String> {
        self.post_coded(path, body).map_err(|(_, text)| text)
    }

    /// As `post`, with the error answer's TACRA code (`invalid-target`, …) when it has one.
    fn post_coded<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> std::result::Result<T, (Option<String>, String)> {
        let url = format!("{}{path}", self.base);
        let mut response = self.post_retried(&url, |request| request.send_json(body)).map_err(|e| (None, e))?;
        let status = response.status();
        let text =
            response.body_mut().read_to_string().map_err(|e| (None, format!("reading the answer of {url}: {e}")))?;
        if !status.is_success() {
            return Err(refusal(&url, status, &text));
        }
        serde_json::from_str(&text).map_err(|e| (None, format!("{url} answered with unexpected JSON ({e})")))
    }

    /// POSTs to `url` (the request built by `send`) under one `Idempotency-Key`, sending it
    /// again while the failure is transient: the connection broke or timed out, or the service
    /// answered 408, 429, 502, 503, 504 or 409 with `Retry-After` (its answer to this key is
    /// still being made). The service answers a retry with the first attempt's credential, so
    /// a timed-out issuance is delivered instead of lost ([`RETRY`] says how often and how long).
    fn post_retried(
        &self,
        url: &str,
        send: impl Fn(RequestBuilder<WithBody>) -> std::result::Result<Answer, ureq::Error>,
    ) -> std::result::Result<Answer, String> {
        let key = request_id().map_err(|e| format!("no request id for {url}: {e}"))?;
        let mut attempt = 1;
        loop {
            let result = send(self.agent.post(url).header(twi_issuer::http::idempotency::HEADER, &key));
            let wait = match &result {
                Err(error) if RETRY.transient(error) => RETRY.backoff(attempt),
                Ok(answer) if RETRY.retried(answer) => RETRY.retry_after(answer).unwrap_or(RETRY.backoff(attempt)),
                _ => return result.map_err(|e| self.unreachable(&e)),
            };
            if attempt >= RETRY.attempts || wait > RETRY.longest_wait {
                return result.map_err(|e| self.unreachable(&e));
            }
            let why = match &result {
                Ok(answer) => format!("answered {}", answer.status()),
                Err(error) => format!("failed ({error})"),
            };
            eprintln!(
                "twi: {url} {why}; sending it again in {:.1} s with the same Idempotency-Key (attempt {} of {})",
                wait.as_secs_f64(),
                attempt + 1,
                RETRY.attempts
            );
            std::thread::sleep(wait);
            attempt += 1;
        }
    }

    fn unreachable(&self, error: &ureq::Error) -> String {
        format!(
            "the issuer at {} cannot be reached ({error}); is `twi serve` running there, and is --issuer-ca the CA its certificate chains to?",
            self.base
        )
    }
}

/// The Verifier as another role's process calls it (`twi serve --verifier-url`, issue 14
/// item 5): `POST /v1/verifier/evidence` for mechanism C or D, over mutual TLS when the client
/// has a certificate, with this client's retries.
impl twi_issuer::http::VerifierPeer for RemoteIssuer {
    fn url(&self) -> &str {
        &self.base
    }

    fn appraise(&self, mechanism: Mechanism, evidence: &EvidenceJson) -> std::result::Result<String, PeerError> {
        let request = VerifierRequest { mechanism, evidence: evidence.clone() };
        let answer: AttestationResultResponse = self.post_to_peer("/v1/verifier/evidence", &request)?;
        Ok(answer.attestation_result)
    }
}

/// The Credential Authority as mechanism A's Verifier in another process calls it (`twi serve
/// --ca-url`): `POST /v1/ca/credential` with mechanism a, the evidence and the Verifier's
/// attestation result, over mutual TLS.
impl twi_issuer::http::CaPeer for RemoteIssuer {
    fn url(&self) -> &str {
        &self.base
    }

    fn credential(
        &self,
        evidence: &EvidenceJson,
        attestation_result: &str,
    ) -> std::result::Result<CredentialResponse, PeerError> {
        let request = CredentialAuthorityRequest {
            mechanism: Mechanism::A,
            evidence: Some(evidence.clone()),
            attestation_result: Some(attestation_result.to_string()),
            public_key: None,
            proof: None,
            renewal_of: None,
        };
        self.post_to_peer("/v1/ca/credential", &request)
    }
}

/// The provenance log as a Credential Authority in another process calls it (`twi serve
/// --log-url`): its records signed, then appended (under one `Idempotency-Key` per append, so a
/// retry is not appended twice), a renewal's previous record read back; over mutual TLS.
impl twi_issuer::http::LogPeer for RemoteIssuer {
    fn url(&self) -> &str {
        &self.base
    }

    fn sign(&self, request: &SignRequest) -> std::result::Result<SignResponse, PeerError> {
        self.post_to_peer(twi_issuer::http::log::STATEMENTS_PATH, request)
    }

    fn append(&self, request: &AppendRequest) -> std::result::Result<serde_json::Value, PeerError> {
        self.post_to_peer(twi_issuer::http::log::APPEND_PATH, request)
    }

    fn binding(&self, request: &BindingRequest) -> std::result::Result<Option<BindingAnswer>, PeerError> {
        match self.post_to_peer(twi_issuer::http::log::BINDING_PATH, request) {
            Err(PeerError::Refused { status: 404, .. }) => Ok(None),
            answer => answer.map(Some),
        }
    }

    fn proof(&self, id: &str) -> std::result::Result<Option<serde_json::Value>, PeerError> {
        if !is_credential_id(id) {
            return Ok(None);
        }
        let url = format!("{}{}/{id}", self.base, twi_issuer::http::log::PROOF_PATH);
        let response = self.agent.get(&url).call().map_err(|e| PeerError::Unavailable(self.unreachable(&e)))?;
        if response.status() == ureq::http::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        peer_answer(&url, response).map(Some)
    }
}

/// The Credential Authority as a Key Store in another process calls it (`twi serve --roles
/// key-store --ca-url`): the keys it provisions and releases certified (a release under one
/// `Idempotency-Key`, so a retry is not issued twice), over mutual TLS.
impl twi_issuer::KeyStoreCaPeer for RemoteIssuer {
    fn url(&self) -> &str {
        &self.base
    }

    fn provision(
        &self,
        request: &twi_issuer::key_store_ca::ProvisionCertifyRequest,
    ) -> std::result::Result<twi_issuer::key_store_ca::ProvisionCertified, PeerError> {
        self.post_to_peer(twi_issuer::key_store_ca::PROVISION_PATH, request)
    }

    fn release(
        &self,
        request: &twi_issuer::key_store_ca::ReleaseCertifyRequest,
    ) -> std::result::Result<twi_issuer::key_store_ca::ReleaseCertified, PeerError> {
        self.post_to_peer(twi_issuer::key_store_ca::RELEASE_PATH, request)
    }
}

impl RemoteIssuer {
    /// POSTs `body` to another role's `path` for a role of this service ([`peer_answer`]).
    fn post_to_peer<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> std::result::Result<T, PeerError> {
        let url = format!("{}{path}", self.base);
        let response = self.post_retried(&url, |builder| builder.send_json(body)).map_err(PeerError::Unavailable)?;
        peer_answer(&url, response)
    }
}

/// Another role's answer from `url`: a 4xx is its refusal (with the status), anything else that
/// is not an answer is `Unavailable`.
fn peer_answer<T: DeserializeOwned>(url: &str, mut response: Answer) -> std::result::Result<T, PeerError> {
    let status = response.status();
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|e| PeerError::Unavailable(format!("reading the answer of {url}: {e}")))?;
    if status.is_client_error() {
        return Err(PeerError::Refused { status: status.as_u16(), reason: refusal(url, status, &text).1 });
    }
    if !status.is_success() {
        return Err(PeerError::Unavailable(refusal(url, status, &text).1));
    }
    serde_json::from_str(&text)
        .map_err(|e| PeerError::Unavailable(format!("{url} answered with unexpected JSON ({e})")))
}

/// Whether `id` can name a credential in the log's URL: an X.509 serial (hex) or a WIT `jti`
/// (base64url), nothing a path could be made of.
fn is_credential_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A response as ureq gives it.
type Answer = ureq::http::Response<ureq::Body>;

/// When and how often a POST is sent again ([`RemoteIssuer::post_retried`]).
#[derive(Debug, Clone, Copy)]
struct Retry {
    /// Attempts in all, the first included.
    attempts: u32,
    /// The wait after the first failed attempt, doubled after each further one.
    first_wait: Duration,
    /// A `Retry-After` longer than this ends the retries (the service is busy for longer than
    /// a launch should wait).
    longest_wait: Duration,
}

const RETRY: Retry =
    Retry { attempts: 4, first_wait: Duration::from_millis(500), longest_wait: Duration::from_secs(10) };

impl Retry {
    /// A failure that may pass: the connection broke, was refused or timed out (not a TLS or
    /// address error, which a retry repeats).
    fn transient(&self, error: &ureq::Error) -> bool {
        matches!(error, ureq::Error::Io(_) | ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed)
    }

    /// An answer that says "again later": 408, 429, 502, 503, 504, and 409 when it comes with
    /// `Retry-After` (the same Idempotency-Key still being answered).
    fn retried(&self, answer: &Answer) -> bool {
        match answer.status().as_u16() {
            408 | 429 | 502 | 503 | 504 => true,
            409 => answer.headers().contains_key("retry-after"),
            _ => false,
        }
    }

    /// The answer's `Retry-After` in seconds, if it has one.
    fn retry_after(&self, answer: &Answer) -> Option<Duration> {
        let value = answer.headers().get("retry-after")?.to_str().ok()?;
        value.trim().parse().ok().map(Duration::from_secs)
    }

    /// The wait before attempt `attempt + 1`.
    fn backoff(&self, attempt: u32) -> Duration {
        self.first_wait * 2u32.saturating_pow(attempt.saturating_sub(1))
    }
}

/// A fresh request id: 128 random bits, hex.
fn request_id() -> std::result::Result<String, getrandom::Error> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id)?;
    Ok(hex::encode(id))
}

/// An error answer of `url`: its TACRA code if any, and the reason (the service's own words for
/// a 4xx).
fn refusal(url: &str, status: ureq::http::StatusCode, text: &str) -> (Option<String>, String) {
    let answer = serde_json::from_str::<ErrorResponse>(text).ok();
    let code = answer.as_ref().and_then(|a| a.code.clone());
    let reason = answer.map(|a| a.error).unwrap_or_else(|| text.trim().to_string());
    (code, if status.is_client_error() { reason } else { format!("{url} answered {status}: {reason}") })
}

/// Why `--protocol est` does not take `mechanism`'s request.
fn est_refused(mechanism: Mechanism) -> String {
    format!(
        "--protocol est enrolls through the Credential Authority with evidence (mechanism c); the issuer's policy gives this workload mechanism {mechanism}, which EST does not carry: run without --protocol est"
    )
}

/// The rustls client configuration: only `ca` as root, the owner's certificate if given.
fn tls_config(ca: &Path, client: Option<&(PathBuf, PathBuf)>) -> Result<ureq::tls::TlsConfig> {
    use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};
    let read = |path: &Path| std::fs::read(path).with_context(|| format!("cannot read {}", path.display()));
    let certificates = |path: &Path| -> Result<Vec<Certificate<'static>>> {
        let pem = read(path)?;
        let mut certs = Vec::new();
        for item in ureq::tls::parse_pem(&pem) {
            if let PemItem::Certificate(cert) = item.map_err(|e| anyhow!("{} is not PEM: {e}", path.display()))? {
                certs.push(cert);
            }
        }
        if certs.is_empty() {
            bail!("{} holds no `BEGIN CERTIFICATE` block", path.display());
        }
        Ok(certs)
    };
    let mut builder = TlsConfig::builder().root_certs(RootCerts::new_with_certs(&certificates(ca)?));
    if let Some((cert, key)) = client {
        let pem = zeroize::Zeroizing::new(read(key)?);
        let key = PrivateKey::from_pem(&pem)
            .map_err(|e| anyhow!("{} holds no PKCS#8 or SEC1 private key: {e}", key.display()))?;
        builder = builder.client_cert(Some(ClientCert::new_with_certs(&certificates(cert)?, key)));
    }
    Ok(builder.build())
}

/// Whether `authority` (`HOST:PORT/...`) names a loopback host.
fn loopback(authority: &str) -> bool {
    let host_port = authority.split('/').next().unwrap_or_default();
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.rsplit_once(':').map_or(host_port, |(host, _)| host),
    };
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The `error` of an error answer, else the text itself.
fn reason(text: &str) -> String {
    serde_json::from_str::<ErrorResponse>(text).map(|e| e.error).unwrap_or_else(|_| text.trim().to_string())
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::thread::JoinHandle;

    use super::*;

    /// What the fake service does with one request.
    enum Act {
        /// Reads the request and closes the connection without an answer.
        Drop,
        /// Answers with this status line and extra header lines.
        Answer(&'static str, &'static str),
    }

    /// Reads one HTTP/1.1 request: its `idempotency-key` header (lower-cased names).
    fn read_request(stream: &TcpStream) -> Option<String> {
        let mut reader = BufReader::new(stream);
        let (mut key, mut length) = (None, 0usize);
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).ok()?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            match name.to_ascii_lowercase().as_str() {
                "idempotency-key" => key = Some(value.trim().to_string()),
                "content-length" => length = value.trim().parse().unwrap(),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).ok()?;
        key
    }

    /// A loopback service acting `acts` in turn, one connection per request; returns its URL and
    /// the Idempotency-Key of each request it got.
    fn service(acts: Vec<Act>) -> (String, JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let mut keys = Vec::new();
            for act in acts {
                let (mut stream, _) = listener.accept().unwrap();
                keys.push(read_request(&stream).expect("an Idempotency-Key on every POST"));
                if let Act::Answer(status, headers) = act {
                    let body = r#"{"error":"busy or fine","answer":7}"#;
                    let head = format!("HTTP/1.1 {status}\r\n{headers}content-type: application/json\r\n");
                    let answer = format!("{head}content-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                    stream.write_all(answer.as_bytes()).unwrap();
                }
            }
            keys
        });
        (url, handle)
    }

    fn post(url: &str) -> std::result::Result<serde_json::Value, String> {
        let issuer = RemoteIssuer::new(url, &ClientTls::default()).unwrap();
        issuer.post("/v1/ca/credential", &serde_json::json!({"mechanism": "c"}))
    }

    #[test]
    fn a_request_whose_connection_broke_is_sent_again_with_the_same_key() {
        let (url, service) = service(vec![Act::Drop, Act::Answer("200 OK", "")]);
        let answer = post(&url).unwrap();
        assert_eq!(answer["answer"], 7);
        let keys = service.join().unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0], keys[1], "the retry must carry the first attempt's Idempotency-Key");
        assert_eq!(keys[0].len(), 32, "128 random bits in hex: {}", keys[0]);
    }

    #[test]
    fn busy_answers_are_retried_after_their_retry_after_and_in_progress_ones_too() {
        let acts = vec![
            Act::Answer("503 Service Unavailable", "retry-after: 0\r\n"),
            Act::Answer("429 Too Many Requests", "retry-after: 0\r\n"),
            Act::Answer("409 Conflict", "retry-after: 0\r\n"),
            Act::Answer("200 OK", ""),
        ];
        let (url, service) = service(acts);
        assert_eq!(post(&url).unwrap()["answer"], 7);
        let keys = service.join().unwrap();
        assert!(keys.iter().all(|k| *k == keys[0]), "{keys:?}");
    }

    #[test]
    fn a_refusal_is_not_sent_again_and_retries_end() {
        let (url, answered) = service(vec![Act::Answer("400 Bad Request", "")]);
        assert_eq!(post(&url).unwrap_err(), "busy or fine");
        assert_eq!(answered.join().unwrap().len(), 1, "a 400 is the client's fault: no retry");

        let busy = || Act::Answer("503 Service Unavailable", "retry-after: 0\r\n");
        let (url, answered) = service((0..RETRY.attempts).map(|_| busy()).collect());
        let error = post(&url).unwrap_err();
        assert!(error.contains("503"), "{error}");
        assert_eq!(answered.join().unwrap().len(), RETRY.attempts as usize);

        let (url, answered) = service(vec![Act::Answer("503 Service Unavailable", "retry-after: 3600\r\n")]);
        assert!(post(&url).unwrap_err().contains("503"), "a Retry-After of an hour is not waited for");
        assert_eq!(answered.join().unwrap().len(), 1);

        let (url, answered) = service(vec![Act::Answer("409 Conflict", "")]);
        assert!(post(&url).is_err());
        assert_eq!(answered.join().unwrap().len(), 1, "a 409 without Retry-After is not ours to retry");
    }
}
