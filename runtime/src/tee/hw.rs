//! The hardware doorbells: the TEE backends' traits over the platform's own calls (the GHCB
//! guest request, TDCALL/TDVMCALL). Bare-metal only; the platform stays a leaf that knows
//! nothing of the backends.

use alloc::vec::Vec;

use super::snp::{Answer, DoorbellError, Exit, SnpDoorbell};
use super::svsm::{SvsmAttestation, SvsmDoorbell, SvsmError};
use super::tdx::{GET_QUOTE_BUFFER, TdxError, TdxModule};
use crate::platform::snp::{self as snp_platform, GuestRequestError, RequestExit};
use crate::platform::tdx::{HwTdx, TdxCallError};

/// The SEV-SNP guest request through the GHCB (VMGEXIT).
#[derive(Debug, Default)]
pub struct GhcbDoorbell;

impl SnpDoorbell for GhcbDoorbell {
    fn guest_request(&mut self, sealed: &[u8], exit: Exit) -> Result<Answer, DoorbellError> {
        let exit = match exit {
            Exit::GuestRequest => RequestExit::Plain,
            Exit::ExtGuestRequest => RequestExit::Extended,
        };
        match snp_platform::guest_request(sealed, exit) {
            Ok(answer) => Ok(Answer { sealed: answer.response, certificates: answer.certificates }),
            Err(GuestRequestError::Refused(info)) => Err(DoorbellError::Refused(info)),
            Err(GuestRequestError::Busy) => Err(DoorbellError::Busy),
            Err(GuestRequestError::InvalidLength) => Err(DoorbellError::InvalidLength),
            Err(GuestRequestError::Ghcb) => Err(DoorbellError::Ghcb),
        }
    }
}

/// The SVSM's attestation protocol through the calling area and VMGEXIT.
#[derive(Debug, Default)]
pub struct SvsmCallDoorbell;

impl SvsmDoorbell for SvsmCallDoorbell {
    fn attest_services(&mut self, nonce: &[u8; 64]) -> Result<SvsmAttestation, SvsmError> {
        use crate::platform::snp::svsm::SvsmCallError;
        match snp_platform::svsm_attest_services(nonce) {
            None => Err(SvsmError::Doorbell("the runtime does not run below an SVSM")),
            Some(Ok((report, manifest))) => Ok(SvsmAttestation { report, manifest, certificates: None }),
            Some(Err(SvsmCallError::Result(result))) => Err(SvsmError::Call(result)),
            Some(Err(SvsmCallError::RunVmpl(_))) => Err(SvsmError::Doorbell("the hypervisor did not run VMPL0")),
            Some(Err(SvsmCallError::NotProcessed)) => Err(SvsmError::Doorbell("the SVSM did not take the call")),
            Some(Err(SvsmCallError::Request)) => Err(SvsmError::Doorbell("no room for the request or its buffers")),
        }
    }
}

/// The TDX module and the VMM's quoting service (TDCALL / TDVMCALL).
#[derive(Debug)]
pub struct TdcallModule(HwTdx);

impl TdcallModule {
    /// `None` when the shared pool has no room for the GetQuote buffer (or this is no TD).
    pub fn new() -> Option<Self> {
        HwTdx::new(GET_QUOTE_BUFFER).map(Self)
    }
}

fn status(e: TdxCallError) -> TdxError {
    match e {
        TdxCallError::Status(status) => TdxError::Doorbell(status),
        TdxCallError::RequestTooLong => TdxError::Malformed("GetQuote request longer than its buffer"),
    }
}

impl TdxModule for TdcallModule {
    fn rtmr_extend(&mut self, rtmr: u8, digest: &[u8; 48]) -> Result<(), TdxError> {
        self.0.rtmr_extend(rtmr, digest).map_err(status)
    }

    fn report(&mut self, report_data: &[u8; 64]) -> Result<Vec<u8>, TdxError> {
        self.0.report(report_data).map_err(status)
    }

    fn submit_quote(&mut self, buffer: &[u8], request_len: usize) -> Result<(), TdxError> {
        let request = buffer.get(..request_len).ok_or(TdxError::Malformed("GetQuote request length"))?;
        self.0.submit_quote(request).map_err(status)
    }

    fn poll_quote(&mut self, out: &mut [u8]) -> Result<usize, TdxError> {
        Ok(self.0.poll_quote(out))
    }

    fn pause(&mut self, ms: u64) -> u64 {
        self.0.pause(ms)
    }
}
