//! The wire types of the issuer's HTTP service: the request and response body of every
//! endpoint, shared by the server (`twi serve`, this crate's `http`) and its client (the host
//! loader's `remote.rs`), so that the two cannot disagree on a field.
//!
//! JSON bodies; byte strings (evidence, keys, nonces, proofs, DER certificates) are lowercase
//! hex, as in the loader's `evidence.json`; platforms by their policy names (`sim-snp`, `snp`,
//! `tdx`, `sim-tdx`); mechanisms `a`..`d`. Every error answer is an [`ErrorResponse`].

use serde::{Deserialize, Serialize};

use crate::asks::Issued;
pub use crate::evidence::{EventJson, EvidenceJson, OwnedEvidence, WireError, platform, unhex};
use crate::keystore::Provisioned;
use crate::policy::{Mechanism, platform_name};

/// Every error answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: String,
    /// TACRA's failure reason where one applies (`invalid-target`, `unsupported-type`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// `POST /v1/challenge`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    /// `sim-snp`, `snp`, `tdx` or `sim-tdx`.
    pub platform: String,
    /// The launch measurement the evidence is expected to carry (hex): the policy decides from
    /// it whether the challenge is a verifier nonce or the current AF_L1 epoch id, and which
    /// mechanism the workload uses.
    #[serde(default)]
    pub measurement: Option<String>,
    /// TACRA Initiate: the target the workload asks a credential for (required).
    #[serde(default)]
    pub target: String,
    /// `x509` (the default) or `wit`.
    #[serde(default = "x509")]
    pub credential_type: String,
    /// TACRA Initiate: the workload's hint, if any (the policy's `hints` for the target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

fn x509() -> String {
    "x509".into()
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ChallengeResponse {
    /// The freshness handle the evidence must bind (hex; empty for the `absent-*` kinds).
    pub nonce: String,
    /// The policy's mechanism for the workload and target (`a`..`d`), if it knows the workload.
    pub mechanism: Option<Mechanism>,
    /// The TACRA freshness kind (`present-nonce`, …).
    pub freshness: String,
}

/// `POST /v1/verifier/evidence`: the workload's evidence to the Verifier.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifierRequest {
    /// `a`: the Verifier asks the CA and returns the credential; `b`: it returns a signed
    /// attestation result for the workload to take to the CA.
    pub mechanism: Mechanism,
    pub evidence: EvidenceJson,
}

/// Mechanism B, the Verifier's answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct AttestationResultResponse {
    /// EAR JWT signed by the Verifier's key, binding the workload key.
    pub attestation_result: String,
    pub workload_id: String,
}

/// `POST /v1/ca/credential`: a credential request to the Credential Authority.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialAuthorityRequest {
    /// `c`: `evidence` (the CA has the Verifier appraise it); `b`: `attestation_result`,
    /// `public_key` and `proof`.
    pub mechanism: Mechanism,
    #[serde(default)]
    pub evidence: Option<EvidenceJson>,
    /// Mechanism B: the EAR JWT as the Verifier returned it.
    #[serde(default)]
    pub attestation_result: Option<String>,
    /// Mechanism B: SEC1 P-384 point (hex).
    #[serde(default)]
    pub public_key: Option<String>,
    /// Mechanism B: DER ECDSA P-384/SHA-384 signature (hex) by that key over
    /// `"TWI-CREDREQ-v1\0" ‖ eat_nonce ‖ key ‖ SHA-256(attestation_result)`.
    #[serde(default)]
    pub proof: Option<String>,
    /// Mechanism C: a renewal of this credential (its X.509 serial in hex, or its WIT `jti`),
    /// granted only under the policy's renewal rules (its stickiness) for the same workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_of: Option<String>,
}

/// An issued credential and what it was issued on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CredentialResponse {
    /// The Stable identifier (URI SAN), e.g. `spiffe://example.org/payroll-app`.
    pub workload_id: String,
    /// The X.509 serial (hex).
    pub serial: String,
    /// The X.509 credential, signed by the CA key.
    pub certificate_pem: String,
    pub platform: String,
    /// The appraised launch measurement (SNP MEASUREMENT, TDX MRTD), hex.
    pub measurement: String,
    /// The appraised chip (SNP CHIP_ID, TDX PPID), hex.
    pub chip_id: String,
    /// The Verifier's attestation result (EAR JWT); under mechanism A it names the credential.
    /// Every credential comes with one; optional on the wire for clients that predate that.
    #[serde(default)]
    pub attestation_result: Option<String>,
    /// The WIMSE Workload Identity Token.
    pub wit: String,
    /// The signed tree head and each record's inclusion proof.
    pub provenance: serde_json::Value,
    pub admission: AdmissionSummary,
}

/// What the policy admitted the launch as.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdmissionSummary {
    pub workload_id: String,
    pub policy_version: String,
    /// The label of the reference value that matched.
    pub reference: String,
}

impl CredentialResponse {
    pub fn new(issued: &Issued) -> Self {
        let verified = &issued.appraisal.verified;
        Self {
            workload_id: issued.workload_id.clone(),
            serial: issued.serial_hex.clone(),
            certificate_pem: issued.certificate_pem.clone(),
            platform: platform_name(issued.appraisal.platform).to_string(),
            measurement: hex::encode(verified.measurement),
            chip_id: hex::encode(&verified.platform_id),
            attestation_result: Some(issued.ear_jwt.clone()),
            wit: issued.wit.clone(),
            provenance: issued.provenance.clone(),
            admission: AdmissionSummary {
                workload_id: issued.admission.workload_id.clone(),
                policy_version: issued.admission.policy_version.clone(),
                reference: issued.admission.reference.label.clone(),
            },
        }
    }
}

/// `POST /v1/key-store/provision`: mechanism D, the workload owner's step.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisionRequest {
    /// `sim-snp`, `snp`, `tdx` or `sim-tdx`.
    pub platform: String,
    /// The launch measurement (hex) of the workload's launches: the policy's workload that
    /// admits it is the one provisioned for.
    pub measurement: String,
}

/// The credential the Key Store holds for the workload (its key never leaves but in a release).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProvisionResponse {
    pub workload_id: String,
    /// The X.509 serial (hex).
    pub serial: String,
    pub certificate_pem: String,
    /// The same certificate, DER (hex).
    pub certificate: String,
    /// The certified SEC1 P-384 public key (hex): the key a release hands over.
    pub public_key: String,
    /// Whether it was provisioned by this request (`false`: it was held already).
    pub created: bool,
}

impl ProvisionResponse {
    pub fn new(provisioned: &Provisioned, created: bool) -> Self {
        Self {
            workload_id: provisioned.workload_id.clone(),
            serial: provisioned.serial_hex.clone(),
            certificate_pem: provisioned.certificate_pem.clone(),
            certificate: hex::encode(&provisioned.certificate_der),
            public_key: hex::encode(&provisioned.public_key),
            created,
        }
    }
}

/// `POST /v1/key-store/release`: the launch's evidence, whose key is the ephemeral HPKE key
/// the runtime generated for the release (REPORTDATA under `Purpose::KeyRelease`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyReleaseRequest {
    pub evidence: EvidenceJson,
}

/// Mechanism D, the Key Store's answer: the provisioned credential of record (certificate,
/// workload id, its WIT, attestation result and provenance) and the provisioned key
/// HPKE-sealed to the ephemeral key (RFC 9180 base mode, DHKEM(P-384, HKDF-SHA384),
/// HKDF-SHA384, AES-256-GCM; `info` = `key_release_info(nonce, ephemeral key)`, `aad` =
/// `key_release_aad(SHA-256(certificate DER))`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyReleaseResponse {
    #[serde(flatten)]
    pub credential: CredentialResponse,
    /// The provisioned certificate, DER (hex).
    pub certificate: String,
    /// HPKE `enc` (hex, 97 bytes).
    pub enc: String,
    /// HPKE ciphertext of the 48-byte private scalar (hex, 64 bytes).
    pub ciphertext: String,
    /// The Key Store's receipt (compact JWS, ES384, `typ` `twi-key-release+jwt`).
    pub receipt: String,
    /// The Key Store's public key (JWK, `kid` `twi-keystore`) the receipt verifies under.
    pub key_store_key: serde_json::Value,
}

/// `POST /v1/verifier/ear-cwt`: an attestation result (EAR JWT) this Verifier signed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EarCwtRequest {
    pub attestation_result: String,
}

/// The same attestation result as a CWT (COSE_Sign1), hex.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EarCwtResponse {
    pub cwt: String,
}
