//! SEV-SNP report appraisal: the report's ECDSA P-384 signature under the VCEK, the VCEK's
//! chain to the AMD root (or, when configured, the simulated root), and the VCEK's claims
//! about the chip.

use std::time::SystemTime;

use p384::ecdsa::signature::Verifier;
use twi_attester::snp::report::{AttestationReport, signed_region};
use x509_cert::Certificate;

use crate::chain::{self, ChainError};
use crate::oids::AMD_HW_ID;

/// SIGNATURE_ALGO 1: ECDSA P-384 with SHA-384 (SEV-SNP Firmware ABI, Table 145).
pub const SIG_ALGO_ECDSA_P384_SHA384: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnpError {
    #[error("the report is malformed: {0}")]
    Malformed(String),
    #[error("the endorsement chain does not hold: {0}")]
    Chain(#[from] ChainError),
    #[error("the VCEK and ASK certificates are missing (the host must supply them with the report)")]
    MissingEndorsements,
    #[error("the report uses signature algorithm {0}; only 1 (ECDSA P-384 SHA-384) exists")]
    SignatureAlgorithm(u32),
    #[error("the report's signature does not verify under the VCEK: the report was altered or signed by another chip")]
    BadSignature,
    #[error("the VCEK certifies chip {vcek}, but the report comes from chip {report}")]
    ChipMismatch { vcek: String, report: String },
    #[error("the guest policy allows debugging (policy bit 19): its memory is readable by the host")]
    DebugPolicy,
}

/// Verifies `report_bytes` under the chain `[vcek, ask]` to `ark`, at `now`. Returns the
/// parsed report; the caller appraises its contents (REPORTDATA, measurement, ...).
pub fn verify_report(
    report_bytes: &[u8],
    endorsements: &[Certificate],
    ark: &Certificate,
    now: SystemTime,
) -> Result<AttestationReport, SnpError> {
    let report = AttestationReport::parse(report_bytes).map_err(|e| SnpError::Malformed(e.to_string()))?;
    let vcek = endorsements.first().ok_or(SnpError::MissingEndorsements)?;
    chain::verify_chain(endorsements, ark, now)?;
    // The hwID extension holds the 64-byte chip id raw in extnValue (AMD VCEK spec, Table 8).
    // A VLEK has none: it is not tied to one chip.
    if let Some(hw_id) = extension_value(vcek, &AMD_HW_ID)
        && hw_id != report.chip_id
    {
        return Err(SnpError::ChipMismatch { vcek: hex(hw_id), report: hex(&report.chip_id) });
    }
    if report.signature_algo != SIG_ALGO_ECDSA_P384_SHA384 {
        return Err(SnpError::SignatureAlgorithm(report.signature_algo));
    }
    verify_signature(report_bytes, &report, vcek)?;
    if report.policy.debug() {
        return Err(SnpError::DebugPolicy);
    }
    Ok(report)
}

/// The signature over bytes 0x000..0x2A0 of the report as received (never a re-encoding).
fn verify_signature(report_bytes: &[u8], report: &AttestationReport, vcek: &Certificate) -> Result<(), SnpError> {
    let signed = signed_region(report_bytes).map_err(|e| SnpError::Malformed(e.to_string()))?;
    let rs = report.signature.to_big_endian_rs().map_err(|_| SnpError::BadSignature)?;
    let signature = p384::ecdsa::Signature::from_slice(&rs).map_err(|_| SnpError::BadSignature)?;
    let key_bytes =
        vcek.tbs_certificate().subject_public_key_info().subject_public_key.as_bytes().ok_or(SnpError::BadSignature)?;
    let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes).map_err(|_| SnpError::BadSignature)?;
    key.verify(signed, &signature).map_err(|_| SnpError::BadSignature)
}

/// The raw extnValue of the extension `oid`, if the certificate has it.
pub fn extension_value<'a>(cert: &'a Certificate, oid: &der::asn1::ObjectIdentifier) -> Option<&'a [u8]> {
    cert.tbs_certificate().extensions()?.iter().find(|e| &e.extn_id == oid).map(|e| e.extn_value.as_bytes())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
