//! EST, Enrollment over Secure Transport (RFC 7030), as the Credential Authority's standard
//! credential-acquisition protocol (TACRA names EST among the transports of its Enrollment
//! step; issue 14 item 4). Four operations, over the same TLS listener as every other route:
//!
//! | RFC 7030 | method and path | request → answer |
//! | --- | --- | --- |
//! | §4.1 Distribution of CA Certificates | `GET /.well-known/est/cacerts` | → the CA certificate as a certs-only CMS SignedData (PKCS#7) |
//! | §4.2.1 Enrollment of Clients | `POST /.well-known/est/simpleenroll` | base64 DER PKCS#10 (`application/pkcs10`) + the evidence → the issued certificate, certs-only |
//! | §4.2.2 Re-enrollment of Clients | `POST /.well-known/est/simplereenroll` | as simpleenroll, + the credential renewed in [`RENEWAL_HEADER`] → the renewed certificate |
//! | §4.5 CSR Attributes | `GET /.well-known/est/csrattrs` | → base64 DER `CsrAttrs` (`application/csrattrs`): a P-384 key, signed with ecdsa-with-SHA384 |
//!
//! **Re-enrollment.** RFC 7030 names the certificate being renewed by the TLS client
//! certificate. A TWI workload's key is in its TEE, which the host loader that speaks EST for
//! it cannot present; and a renewal here proves the same thing an enrollment does, with fresh
//! evidence binding the CSR. So the renewed credential is named in the request header
//! [`RENEWAL_HEADER`] (its X.509 serial in hex, or its WIT `jti`), and the policy's renewal
//! rules are checked against what that credential was bound to (its provenance record: the
//! same workload, and under CS_L3 the same chip), as `twi run --renew` does in process.
//!
//! Both answers are `application/pkcs7-mime; smime-type=certs-only` with
//! `Content-Transfer-Encoding: base64`: base64 of the DER `ContentInfo` in 64-character lines
//! (RFC 2045's line limit is 76), so `base64 -d | openssl pkcs7 -inform DER -print_certs`
//! reads them. The CMS structures are RustCrypto's `cms` crate (RFC 5652), on the same `der`
//! and `x509-cert` as the rest of the issuer.
//!
//! **Evidence and freshness.** TACRA's Enrollment binds the CSR *into* the evidence:
//! REPORTDATA = SHA-512 over the freshness, our identifier, the target and the CSR's DER
//! (`twi_attester::tacra`). So the evidence cannot ride inside the CSR as an attribute, the way
//! draft-ietf-lamps-csr-attestation carries it (the CSR would have to contain a digest of
//! itself). It rides beside the CSR instead, in the request header [`EVIDENCE_HEADER`]: base64
//! of the same evidence JSON the JSON API takes (`wire::EvidenceJson`: report or quote,
//! workload key, freshness element, target, endorsements, event log), with its `csr` field
//! left out or equal to the body. A header, not a `multipart` body, because the body stays
//! exactly RFC 7030's (any EST client or proxy handles it unchanged) and the evidence is small
//! and bounded (a report or quote of at most 12 KiB with its endorsement certificates; hyper
//! reads up to ~400 KiB of headers). The freshness handle still comes from TACRA's Initiate,
//! `POST /v1/challenge` (EST has no challenge operation); its value is the evidence's `nonce`.
//!
//! The CSR and the evidence go through the very appraisal `POST /v1/ca/credential` runs for
//! mechanism C (the CA has the Verifier appraise the evidence, checks the CSR's signature, that
//! its key is the evidence's key and that REPORTDATA binds exactly this CSR), with the same
//! answers: 4xx for the client's fault with its reason, 429/503 with `Retry-After` for limits.
//! A plain EST client that sends no evidence gets 400 naming the header it is missing.
//!
//! EST answers only the certificate; the rest of the issuance record a TWI client keeps (the
//! WIT, the attestation result, the provenance proofs) comes in the response header
//! [`CREDENTIAL_HEADER`]: base64 of the JSON API's `wire::CredentialResponse`.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64ct::{Base64, Encoding};
use der::{Decode, Encode};
use x509_cert::Certificate;

use super::api::{ApiError, AppState, MAX_BODY, with_issuer};
use super::wire::{CredentialResponse, EvidenceJson};

/// RFC 7030 §4.1.
pub const CACERTS_PATH: &str = "/.well-known/est/cacerts";
/// RFC 7030 §4.2.1.
pub const SIMPLEENROLL_PATH: &str = "/.well-known/est/simpleenroll";
/// RFC 7030 §4.2.2.
pub const SIMPLEREENROLL_PATH: &str = "/.well-known/est/simplereenroll";
/// RFC 7030 §4.5.
pub const CSRATTRS_PATH: &str = "/.well-known/est/csrattrs";
/// The CSR attributes' media type (RFC 7030 §4.5.2).
pub const CSRATTRS: &str = "application/csrattrs";
/// The re-enrollment's request header naming the credential it renews (X.509 serial in hex,
/// or WIT `jti`).
pub const RENEWAL_HEADER: &str = "twi-renewal-of";
/// The answer's media type (RFC 7030 §4.1.3, §4.2.3; S/MIME's certs-only).
pub const CERTS_ONLY: &str = "application/pkcs7-mime; smime-type=certs-only";
/// The enrollment request's media type (RFC 7030 §4.2.1).
pub const PKCS10: &str = "application/pkcs10";
/// The request header carrying the evidence bundle (base64 of `wire::EvidenceJson` JSON).
pub const EVIDENCE_HEADER: &str = "twi-evidence";
/// The response header carrying the issuance record (base64 of `wire::CredentialResponse` JSON).
pub const CREDENTIAL_HEADER: &str = "twi-credential";

/// id-signedData (RFC 5652 §5.1).
const SIGNED_DATA: der::oid::ObjectIdentifier = der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");

/// Bytes that are not what EST carries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EstError {
    #[error("the {what} is not base64 (RFC 7030 bodies are base64 DER): {reason}")]
    NotBase64 { what: &'static str, reason: String },
    #[error("the PKCS#7 is not a certs-only SignedData: {0}")]
    NotCertsOnly(String),
    #[error("the certificate does not encode as DER: {0}")]
    Certificate(String),
}

/// A certs-only CMS SignedData (RFC 5652 §5; no signers, no content) holding `certificates`,
/// DER.
pub fn certs_only(certificates: &[Certificate]) -> Result<Vec<u8>, EstError> {
    let info = cms::content_info::ContentInfo::try_from(certificates.to_vec())
        .map_err(|e| EstError::Certificate(e.to_string()))?;
    info.to_der().map_err(|e| EstError::Certificate(e.to_string()))
}

/// The certificates (DER, in order) of a certs-only SignedData `der`.
pub fn certificates(der: &[u8]) -> Result<Vec<Vec<u8>>, EstError> {
    use cms::cert::CertificateChoices;
    let bad = |e: &dyn std::fmt::Display| EstError::NotCertsOnly(e.to_string());
    let info = cms::content_info::ContentInfo::from_der(der).map_err(|e| bad(&e))?;
    if info.content_type != SIGNED_DATA {
        return Err(EstError::NotCertsOnly(format!("its content type is {}, not signedData", info.content_type)));
    }
    let signed: cms::signed_data::SignedData = info.content.decode_as().map_err(|e| bad(&e))?;
    let mut out = Vec::new();
    for choice in signed.certificates.map(|set| set.0.into_vec()).unwrap_or_default() {
        match choice {
            CertificateChoices::Certificate(cert) => out.push(cert.to_der().map_err(|e| bad(&e))?),
            CertificateChoices::Other(_) => {
                return Err(EstError::NotCertsOnly("it holds a non-X.509 certificate".into()));
            }
        }
    }
    Ok(out)
}

/// `bytes` as base64 in 64-character lines (RFC 2045's transfer encoding, as RFC 7030 sends).
pub fn base64_lines(bytes: &[u8]) -> String {
    let text = Base64::encode_string(bytes);
    let mut out = String::with_capacity(text.len() + text.len() / 64 + 1);
    for line in text.as_bytes().chunks(64) {
        // Base64 output is ASCII: every chunk is UTF-8.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push_str("\r\n");
    }
    out
}

/// Base64 `text` (line breaks and other whitespace allowed, as RFC 2045 writes it) as bytes.
pub fn from_base64(what: &'static str, text: &[u8]) -> Result<Vec<u8>, EstError> {
    let compact: Vec<u8> = text.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    Base64::decode_vec(std::str::from_utf8(&compact).map_err(|e| EstError::NotBase64 { what, reason: e.to_string() })?)
        .map_err(|e| EstError::NotBase64 { what, reason: e.to_string() })
}

impl From<EstError> for ApiError {
    fn from(error: EstError) -> Self {
        Self::bad_request(error.to_string())
    }
}

/// A certs-only answer (200) with `extra` headers.
fn certs_only_answer(
    certificates: &[Certificate],
    extra: Option<(&'static str, String)>,
) -> Result<Response, ApiError> {
    let der = certs_only(certificates).map_err(|e| ApiError::internal(format!("the EST answer: {e}")))?;
    let mut response = (StatusCode::OK, base64_lines(&der)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CERTS_ONLY));
    headers.insert("content-transfer-encoding", HeaderValue::from_static("base64"));
    if let Some((name, value)) = extra {
        let value = HeaderValue::try_from(value).map_err(|e| ApiError::internal(format!("the EST answer: {e}")))?;
        headers.insert(axum::http::HeaderName::from_static(name), value);
    }
    Ok(response)
}

/// `GET /.well-known/est/cacerts`: the CA certificate credentials chain to.
pub(super) async fn cacerts(State(state): State<AppState>) -> Result<Response, ApiError> {
    let ca = with_issuer(&state, |issuer| Ok(issuer.ca_certificate().clone())).await?;
    certs_only_answer(&[ca], None)
}

/// `POST /.well-known/est/simpleenroll`: mechanism C's appraisal of the evidence in
/// [`EVIDENCE_HEADER`] with the body's CSR; the issued certificate, certs-only.
pub(super) async fn simpleenroll(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    enroll(state, headers, body, None, "credential authority (EST simpleenroll)").await
}

/// `POST /.well-known/est/simplereenroll`: [`simpleenroll`] renewing the credential
/// [`RENEWAL_HEADER`] names, under the policy's renewal rules.
pub(super) async fn simplereenroll(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let renewed = headers.get(RENEWAL_HEADER).map(|v| v.to_str().map(str::trim));
    let renewal_of = match renewed {
        Some(Ok(id)) if !id.is_empty() && id.len() <= 128 => id.to_string(),
        _ => {
            return Err(ApiError::bad_request(format!(
                "a re-enrollment names the credential it renews in the `{RENEWAL_HEADER}` header (its X.509 serial in hex, or its WIT jti), beside the fresh evidence: the workload's key stays in its TEE, so it cannot be named by a TLS client certificate (`twi run --protocol est --renew SERIAL` does this)"
            )));
        }
    };
    enroll(state, headers, body, Some(renewal_of), "credential authority (EST simplereenroll)").await
}

/// `GET /.well-known/est/csrattrs`: what a CSR must be (RFC 7030 §4.5.2): the key an EC key on
/// secp384r1, the signature ecdsa-with-SHA384.
pub(super) async fn csrattrs() -> Result<Response, ApiError> {
    let der = csr_attributes().map_err(|e| ApiError::internal(format!("the CSR attributes: {e}")))?;
    let mut response = (StatusCode::OK, base64_lines(&der)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CSRATTRS));
    headers.insert("content-transfer-encoding", HeaderValue::from_static("base64"));
    Ok(response)
}

/// `CsrAttrs ::= SEQUENCE OF AttrOrOID`: the attribute id-ecPublicKey with the value
/// secp384r1, and the OID ecdsa-with-SHA384 (RFC 7030 §4.5.2's own example asks for the same
/// key and signature).
pub fn csr_attributes() -> der::Result<Vec<u8>> {
    use der::asn1::{Any, SetOfVec};
    const EC_PUBLIC_KEY: der::oid::ObjectIdentifier = der::oid::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    const SECP384R1: der::oid::ObjectIdentifier = der::oid::ObjectIdentifier::new_unwrap("1.3.132.0.34");
    const ECDSA_WITH_SHA384: der::oid::ObjectIdentifier = der::oid::ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
    let curve = SetOfVec::try_from(vec![Any::encode_from(&SECP384R1)?])?;
    let key = x509_cert::attr::Attribute { oid: EC_PUBLIC_KEY, values: curve };
    vec![Any::encode_from(&key)?, Any::encode_from(&ECDSA_WITH_SHA384)?].to_der()
}

/// [`simpleenroll`] and [`simplereenroll`]: the CSR and evidence of the request, issued on
/// (as a renewal of `renewal_of`).
async fn enroll(
    state: AppState,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    renewal_of: Option<String>,
    role: &'static str,
) -> Result<Response, ApiError> {
    if !state.roles.verifier && state.peers.verifier.is_none() {
        return Err(ApiError::role_missing(
            "Verifier",
            "EST enrollment's Credential Authority has it appraise: serve both roles, or give `twi serve --verifier-url`",
        ));
    }
    let csr = enrollment_csr(&headers, body)?;
    let mut evidence = enrollment_evidence(&headers)?;
    if evidence.csr.as_ref().is_some_and(|bound| *bound != csr) {
        return Err(ApiError::bad_request(format!(
            "the {EVIDENCE_HEADER} evidence names a CSR other than the request body's: leave its `csr` out (the body is the CSR)"
        )));
    }
    evidence.csr = Some(csr);
    let issued = super::handlers::enrolled(&state, evidence, renewal_of, role).await?;
    let certificate = Certificate::from_der(&issued.certificate_der)
        .map_err(|e| ApiError::internal(format!("the issued certificate does not decode: {e}")))?;
    let record = serde_json::to_vec(&CredentialResponse::new(&issued))
        .map_err(|e| ApiError::internal(format!("the issuance record: {e}")))?;
    certs_only_answer(&[certificate], Some((CREDENTIAL_HEADER, Base64::encode_string(&record))))
}

/// The request's PKCS#10 (DER), from its base64 body of type `application/pkcs10`.
fn enrollment_csr(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Vec<u8>, ApiError> {
    let media = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !media.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case(PKCS10)) {
        return Err(ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: format!(
                "send the CSR as base64 DER PKCS#10 with `Content-Type: {PKCS10}` (RFC 7030 §4.2.1), not {media:?}"
            ),
            code: None,
            retry_after: None,
        });
    }
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!("the request body is larger than the limit of {MAX_BODY} bytes"),
            code: None,
            retry_after: None,
        },
        _ => ApiError::bad_request(format!("the request body could not be read: {}", e.body_text())),
    })?;
    Ok(from_base64("CSR", &body)?)
}

/// The evidence the request carries in [`EVIDENCE_HEADER`].
fn enrollment_evidence(headers: &HeaderMap) -> Result<super::wire::OwnedEvidence, ApiError> {
    let Some(value) = headers.get(EVIDENCE_HEADER) else {
        return Err(ApiError::bad_request(format!(
            "this EST server issues only on attestation evidence: send the TEE's evidence bound to this CSR (TACRA Enrollment) in the `{EVIDENCE_HEADER}` header, base64 of the evidence JSON `POST /v1/ca/credential` takes, after getting its freshness from `POST /v1/challenge` (`twi run --protocol est` does this)"
        )));
    };
    let json = from_base64("evidence header", value.as_bytes())?;
    let evidence: EvidenceJson = serde_json::from_slice(&json).map_err(|e| {
        ApiError::bad_request(format!("the `{EVIDENCE_HEADER}` header is not the evidence JSON of the JSON API: {e}"))
    })?;
    Ok(evidence.decode()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_lines_round_trip_and_stay_short() {
        let bytes: Vec<u8> = (0..=255).collect();
        let text = base64_lines(&bytes);
        assert!(text.lines().all(|l| l.len() <= 64), "{text}");
        assert_eq!(from_base64("test", text.as_bytes()).unwrap(), bytes);
        assert!(matches!(from_base64("test", b"not base64!"), Err(EstError::NotBase64 { .. })));
    }

    #[test]
    fn certs_only_is_refused_when_it_is_not_signed_data() {
        // A ContentInfo of type id-data (1.2.840.113549.1.7.1) with an empty OCTET STRING.
        let data =
            [0x30, 0x0f, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01, 0xa0, 0x02, 0x04, 0x00];
        let error = certificates(&data).unwrap_err();
        assert!(error.to_string().contains("not signedData"), "{error}");
        assert!(certificates(b"\x30\x00").is_err());
    }
}
