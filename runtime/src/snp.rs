//! The runtime's SEV-SNP guest: it owns the VMPCK (in a [`Requester`]), seals each firmware
//! request in private memory, hands the sealed bytes to a doorbell, and opens the private
//! copy of the answer. The doorbell is the only part that differs between hardware (a
//! VMGEXIT with the GHCB's shared pages) and the simulator (the channel to the host).

use alloc::vec;
use alloc::vec::Vec;

use twi_attester::snp::guest_msg::{GuestMsgError, MAX_MESSAGE, Requester, msg_type};
use twi_attester::snp::key::{KeyRequest, KeyResponse};
use twi_attester::snp::msg::{ReportRequest, ReportResponse, STATUS_SUCCESS};
use twi_attester::snp::report::AttestationReport;
use twi_attester::snp::secrets::{SECRETS_PAGE_SIZE, SecretsPage};
use zeroize::Zeroizing;

/// The VMPCK the runtime uses: it runs at VMPL0 and so owns VMPCK0.
pub const VMPCK_ID: u8 = 0;
const MSG_VERSION: u8 = 1;

/// Why a firmware request failed. `Doorbell`, and `Envelope` for an answer that did not open,
/// leave the VMPCK wiped (the firmware may have consumed the sequence number); the others come
/// from an answer that opened, with the sequence numbers still in step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnpError {
    /// The secrets page holds no VMPCK0: this is not an SNP guest, or the host planted nothing.
    NoSecrets,
    /// The doorbell failed before the firmware answered (the status it returned, if any).
    Doorbell(u64),
    /// The answer did not open: altered, replayed, reordered or under another key.
    Envelope(GuestMsgError),
    /// The firmware answered with a failure status.
    Firmware(u32),
    /// The answer opened but its payload is unusable.
    Malformed(&'static str),
    /// The report does not carry the REPORTDATA the runtime asked for.
    ReportDataMismatch,
}

impl core::fmt::Display for SnpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoSecrets => f.write_str("the SEV-SNP secrets page holds no VMPCK0"),
            Self::Doorbell(status) => write!(f, "the guest request failed with status {status:#x}"),
            Self::Envelope(e) => write!(f, "the firmware's answer was refused: {e}"),
            Self::Firmware(status) => write!(f, "the firmware answered with status {status:#x}"),
            Self::Malformed(what) => write!(f, "the firmware's answer is malformed: {what}"),
            Self::ReportDataMismatch => f.write_str("the report does not carry the requested REPORTDATA"),
        }
    }
}

/// Which guest-request exit the doorbell takes (GHCB specification, NAE events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// `SNP_GUEST_REQUEST`: the firmware's answer only.
    GuestRequest,
    /// `SNP_EXT_GUEST_REQUEST`: the firmware's answer, and the certificate table (VCEK or
    /// VLEK, ASK, ARK) the host writes into the guest's certificate pages.
    ExtGuestRequest,
}

/// What the doorbell brings back, copied into private memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The firmware's sealed answer.
    pub sealed: Vec<u8>,
    /// [`Exit::ExtGuestRequest`]: the host's certificate buffer (unparsed: see
    /// `twi_attester::snp::certs`); `None` when the host supplied none.
    pub certificates: Option<Vec<u8>>,
}

impl Answer {
    pub fn sealed(sealed: Vec<u8>) -> Self {
        Self { sealed, certificates: None }
    }
}

/// Rings the doorbell: hands `request` (a sealed guest message) to the firmware through
/// `exit` and returns its answer, copied into private memory. `Err(status)` when the
/// firmware or the transport refused.
pub type Doorbell<'a> = dyn FnMut(&[u8], Exit) -> Result<Answer, u64> + 'a;

/// A firmware answer's plaintext, in private memory, zeroized on drop.
type Plaintext = Zeroizing<Vec<u8>>;

/// The guest's end of the firmware channel.
#[derive(Debug)]
pub struct SnpGuest {
    requester: Requester,
}

impl SnpGuest {
    /// Takes VMPCK0 from a private copy of the secrets page.
    pub fn from_secrets_page(page: &[u8; SECRETS_PAGE_SIZE]) -> Result<Self, SnpError> {
        let mut secrets = SecretsPage::parse(page).ok_or(SnpError::NoSecrets)?;
        // Versions 2 and 3 exist (SNP ABI, secrets page format); anything older is not a page
        // the PSP wrote.
        if secrets.version < 2 {
            return Err(SnpError::NoSecrets);
        }
        let vmpck = secrets.take_vmpck(usize::from(VMPCK_ID)).ok_or(SnpError::NoSecrets)?;
        if vmpck.is_zero() {
            return Err(SnpError::NoSecrets);
        }
        Ok(Self { requester: Requester::new(vmpck, VMPCK_ID) })
    }

    /// One request/response exchange; returns the plaintext answer (private memory).
    /// The host's certificate table comes back untouched with the plaintext (`None` unless
    /// `exit` is [`Exit::ExtGuestRequest`] and the host supplied one).
    fn exchange(
        &mut self,
        req_type: u8,
        payload: &[u8],
        exit: Exit,
        doorbell: &mut Doorbell<'_>,
    ) -> Result<(Plaintext, Option<Vec<u8>>), SnpError> {
        let mut sealed = vec![0u8; MAX_MESSAGE];
        let len =
            self.requester.seal_request(req_type, MSG_VERSION, payload, &mut sealed).map_err(SnpError::Envelope)?;
        let Answer { sealed: answer, certificates } = match doorbell(&sealed[..len], exit) {
            Ok(answer) => answer,
            Err(status) => {
                // The firmware may have consumed the sequence number: never seal under it again.
                self.requester.wipe();
                return Err(SnpError::Doorbell(status));
            }
        };
        let mut plain = Zeroizing::new(vec![0u8; MAX_MESSAGE]);
        let n = self.requester.open_response(&answer, &mut plain).map_err(SnpError::Envelope)?;
        plain.truncate(n);
        Ok((plain, certificates.filter(|_| exit == Exit::ExtGuestRequest)))
    }

    /// MSG_REPORT_REQ at VMPL0 with `report_data`: the 1184-byte report, checked to carry it.
    pub fn report(&mut self, report_data: &[u8; 64], doorbell: &mut Doorbell<'_>) -> Result<Vec<u8>, SnpError> {
        self.report_through(report_data, Exit::GuestRequest, doorbell).map(|(report, _)| report)
    }

    /// MSG_REPORT_REQ through the extended guest request: the report, and the host's
    /// certificate table (unparsed) when it supplied one.
    pub fn report_with_certificates(
        &mut self,
        report_data: &[u8; 64],
        doorbell: &mut Doorbell<'_>,
    ) -> Result<(Vec<u8>, Option<Vec<u8>>), SnpError> {
        self.report_through(report_data, Exit::ExtGuestRequest, doorbell)
    }

    fn report_through(
        &mut self,
        report_data: &[u8; 64],
        exit: Exit,
        doorbell: &mut Doorbell<'_>,
    ) -> Result<(Vec<u8>, Option<Vec<u8>>), SnpError> {
        let request = ReportRequest { report_data: *report_data, vmpl: 0 };
        let (answer, certificates) = self.exchange(msg_type::REPORT_REQ, &request.to_bytes(), exit, doorbell)?;
        let response = ReportResponse::parse(&answer).map_err(|_| SnpError::Malformed("MSG_REPORT_RSP"))?;
        if response.status != STATUS_SUCCESS {
            return Err(SnpError::Firmware(response.status));
        }
        let report =
            AttestationReport::parse(response.report).map_err(|_| SnpError::Malformed("attestation report"))?;
        if report.report_data != *report_data {
            return Err(SnpError::ReportDataMismatch);
        }
        Ok((response.report.to_vec(), certificates))
    }

    /// MSG_KEY_REQ: a 32-byte key derived by the firmware (zeroized on drop).
    pub fn derive_key(
        &mut self,
        request: &KeyRequest,
        doorbell: &mut Doorbell<'_>,
    ) -> Result<Zeroizing<[u8; 32]>, SnpError> {
        let (answer, _) = self.exchange(msg_type::KEY_REQ, &request.to_bytes(), Exit::GuestRequest, doorbell)?;
        let response = KeyResponse::parse(&answer).map_err(|_| SnpError::Malformed("MSG_KEY_RSP"))?;
        if response.status != STATUS_SUCCESS {
            return Err(SnpError::Firmware(response.status));
        }
        Ok(response.key)
    }
}
