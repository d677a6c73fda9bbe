//! Evidence through the SVSM attestation protocol (58019 §7; `twi_attester::svsm::attest`): the
//! guest below an SVSM hands the SVSM a 64-byte nonce — the session's REPORTDATA — and gets the
//! SVSM's own report (VMPL0), whose REPORT_DATA is SHA-512(nonce ‖ services manifest), with the
//! manifest. The report thus binds the guest's REPORTDATA and what the SVSM attests about
//! itself (its services, e.g. a vTPM), and a verifier recomputes the binding from the nonce and
//! the manifest it receives.
//!
//! As for the PSP, the SVSM is reached through a doorbell ([`SvsmDoorbell`]): on hardware the
//! calling area and VMGEXIT (`crate::platform::snp::svsm`), under a simulated SVSM the channel
//! carrying the same request bytes (phase 2). What the guest checks is the same either way
//! ([`attest`]). Until the Evidence message carries a manifest and a nonce (phase 2: the
//! verifier's VMPL/SVSM policy), the runtime below an SVSM sends the report it obtains with the
//! VMPCK of its own VMPL (the `snp` module); this path is ready for the simulator and the
//! verifier to meet it.

use alloc::vec::Vec;

use twi_attester::snp::report::GuestView;
use twi_attester::svsm::attest::{self, AttestError, NONCE_LEN};
use twi_attester::svsm::call::CallResult;

/// What the SVSM returned, copied into private memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvsmAttestation {
    /// The SVSM's attestation report (1184 bytes).
    pub report: Vec<u8>,
    /// The services manifest the report binds.
    pub manifest: Vec<u8>,
    /// The certificate table, when the SVSM returned one (an extended report).
    pub certificates: Option<Vec<u8>>,
}

/// Why the SVSM's evidence is unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SvsmError {
    /// The call failed: the SVSM's result code.
    Call(CallResult),
    /// The doorbell could not make the call (no SVSM, no room for the buffers, the channel).
    Doorbell(&'static str),
    /// The request or the returned lengths, or the manifest, are malformed.
    Attest(AttestError),
    /// The report is not a report (its length).
    Report,
    /// REPORT_DATA is not SHA-512(nonce ‖ manifest).
    Binding,
    /// The report is not the SVSM's own (VMPL0).
    Vmpl(u32),
}

impl core::fmt::Display for SvsmError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Call(result) => write!(f, "the SVSM attestation call failed: {result}"),
            Self::Doorbell(why) => write!(f, "the SVSM could not be called: {why}"),
            Self::Attest(e) => write!(f, "{e}"),
            Self::Report => f.write_str("the SVSM returned no attestation report"),
            Self::Binding => f.write_str("the SVSM's report does not bind the nonce and the manifest"),
            Self::Vmpl(vmpl) => write!(f, "the SVSM's report is for VMPL {vmpl}, not the SVSM's VMPL0"),
        }
    }
}

/// Rings the SVSM: SVSM_ATTEST_SERVICES with `nonce`.
pub trait SvsmDoorbell {
    fn attest_services(&mut self, nonce: &[u8; NONCE_LEN]) -> Result<SvsmAttestation, SvsmError>;
}

/// The SVSM's evidence for `report_data`, checked: a report, at VMPL0, whose REPORT_DATA is
/// SHA-512(report_data ‖ manifest), and a well-formed manifest.
pub fn attest(doorbell: &mut dyn SvsmDoorbell, report_data: &[u8; 64]) -> Result<SvsmAttestation, SvsmError> {
    let answer = doorbell.attest_services(report_data)?;
    let view = GuestView::parse(&answer.report).map_err(|_| SvsmError::Report)?;
    attest::manifest_entries(&answer.manifest).map_err(SvsmError::Attest)?.for_each(drop);
    if view.report_data != attest::report_data(report_data, &answer.manifest) {
        return Err(SvsmError::Binding);
    }
    if view.vmpl != 0 {
        return Err(SvsmError::Vmpl(view.vmpl));
    }
    Ok(answer)
}
