//! The SEV-SNP backend: the guest owns the VMPCK (in a [`Requester`]), seals each firmware
//! request in private memory, hands the sealed bytes to a [`SnpDoorbell`], and opens the private
//! copy of the answer. The doorbell is the only part that differs between hardware (a VMGEXIT
//! with the GHCB's shared pages, the `hw` module) and the simulator (the channel to the host,
//! the `sim` module).
//!
//! Evidence comes through the extended guest request (GHCB specification, NAE event
//! `SNP_EXT_GUEST_REQUEST`): the report, and the certificate table the host offers (VCEK or
//! VLEK, ASK, ARK), which is checked ([`CertTable`]) and forwarded trimmed; the verifier decides
//! what to make of it. A table the loader itself delivered over the channel (the simulated
//! doorbell) is named by its SHA-384 instead, so that it crosses the channel once: the loader
//! presents the table it delivered under that name. Either way the table is not bound into
//! REPORT_DATA (it arrives with the report it would have to be bound into); what makes it
//! safe is the verifier's: the VCEK must chain to AMD's root, carry the report's chip id and
//! TCB, and verify the report's signature, so a substituted table fails or is as good. The sealing key is MSG_KEY_REQ bound to the launch
//! ([`KeyRequest::launch_bound`]) at the TCB the firmware committed to.

use alloc::vec;
use alloc::vec::Vec;

use twi_attester::snp::certs::CertTable;
use twi_attester::snp::guest_msg::{GuestMsgError, MAX_MESSAGE, Requester, msg_type};
use twi_attester::snp::key::{KeyRequest, KeyResponse};
use twi_attester::snp::msg::{ReportRequest, ReportResponse, STATUS_SUCCESS};
use twi_attester::snp::report::GuestView;
use twi_attester::snp::secrets::{SECRETS_PAGE_SIZE, SecretsPage};
use twi_proto::msg::{MAX_CERT_TABLE, Platform};
use zeroize::Zeroizing;

use super::{Certificates, Evidence, Measurement, Tee, TeeError};
use crate::channel::ChannelError;

/// The VMPCK the runtime uses at VMPL0. Below an SVSM it runs at a higher VMPL and uses the
/// VMPCK of its own VMPL ([`SnpGuest::from_secrets_page_at`]; Linux's sev-guest defaults to
/// `vmpck_id = snp_vmpl` likewise): the SVSM keeps VMPCK0, and the reports it gets carry its VMPL.
pub const VMPCK_ID: u8 = 0;
const MSG_VERSION: u8 = 1;

/// Why a firmware request failed. `Doorbell`, and `Envelope` for an answer that did not open,
/// leave the VMPCK wiped (the firmware may have consumed the sequence number); the others come
/// from an answer that opened, with the sequence numbers still in step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnpError {
    /// The secrets page holds no VMPCK0: this is not an SNP guest, or the host planted nothing.
    NoSecrets,
    /// The doorbell failed before the firmware answered.
    Doorbell(DoorbellError),
    /// The answer did not open: altered, replayed, reordered or under another key.
    Envelope(GuestMsgError),
    /// The firmware answered with a failure status.
    Firmware(u32),
    /// The answer opened but its payload is unusable.
    Malformed(&'static str),
    /// The report does not carry the REPORTDATA the runtime asked for.
    ReportDataMismatch,
    /// The report's VMPL is not the one the runtime asked for (its own).
    VmplMismatch { asked: u8, reported: u32 },
}

impl core::fmt::Display for SnpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoSecrets => f.write_str("the SEV-SNP secrets page holds no VMPCK0"),
            Self::Doorbell(e) => write!(f, "the guest request failed: {e}"),
            Self::Envelope(e) => write!(f, "the firmware's answer was refused: {e}"),
            Self::Firmware(status) => write!(f, "the firmware answered with status {status:#x}"),
            Self::Malformed(what) => write!(f, "the firmware's answer is malformed: {what}"),
            Self::ReportDataMismatch => f.write_str("the report does not carry the requested REPORTDATA"),
            Self::VmplMismatch { asked, reported } => {
                write!(f, "the report is for VMPL {reported}, the runtime runs at VMPL {asked}")
            }
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

/// Why the doorbell failed before the firmware's answer reached the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DoorbellError {
    /// The hypervisor or the firmware refused the request: SW_EXITINFO2 of the guest-request
    /// exit (GHCB specification), or the simulated firmware's status.
    Refused(u64),
    /// The host kept answering BUSY (its rate limit) for longer than the runtime waits.
    Busy,
    /// The host says the request's buffers are too small for its answer.
    InvalidLength,
    /// The GHCB was not usable (a runtime bug: a #VC inside GHCB code).
    Ghcb,
    /// The channel to the simulated firmware failed.
    Channel(ChannelError),
}

impl core::fmt::Display for DoorbellError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Refused(status) => write!(f, "refused with status {status:#x}"),
            Self::Busy => f.write_str("the host stayed busy: retry later"),
            Self::InvalidLength => f.write_str("the host says the request buffers are too small"),
            Self::Ghcb => f.write_str("the GHCB is not usable"),
            Self::Channel(e) => write!(f, "{e}"),
        }
    }
}

/// Rings the doorbell: hands `sealed` (a sealed guest message) to the firmware through `exit`
/// and returns its answer, copied into private memory.
pub trait SnpDoorbell {
    fn guest_request(&mut self, sealed: &[u8], exit: Exit) -> Result<Answer, DoorbellError>;

    /// Whether the certificate tables this doorbell returns come from the loader at the other
    /// end of the channel, which keeps what it delivered (the simulated doorbell): the evidence
    /// then names the table by its digest instead of sending it back. `false` (the default) on
    /// hardware, where the hypervisor writes the table into the GHCB's certificate pages and
    /// the loader may never have seen it: the evidence carries the table.
    fn loader_keeps_certificates(&self) -> bool {
        false
    }
}

/// A doorbell behind a reference: the firmware runs its hardware and simulated doorbells as
/// `SnpTee<&mut dyn SnpDoorbell>`, so the ROM carries one copy of the TEE's code (issue 17).
impl<D: SnpDoorbell + ?Sized> SnpDoorbell for &mut D {
    fn guest_request(&mut self, sealed: &[u8], exit: Exit) -> Result<Answer, DoorbellError> {
        (**self).guest_request(sealed, exit)
    }

    fn loader_keeps_certificates(&self) -> bool {
        (**self).loader_keeps_certificates()
    }
}

/// A firmware answer's plaintext, in private memory, zeroized on drop.
type Plaintext = Zeroizing<Vec<u8>>;

/// The guest's end of the firmware channel.
#[derive(Debug)]
pub struct SnpGuest {
    requester: Requester,
    /// The VMPL the runtime runs at: its VMPCK, and the VMPL its reports are requested for.
    vmpl: u8,
}

impl SnpGuest {
    /// Takes VMPCK0 from a private copy of the secrets page (the runtime at VMPL0).
    pub fn from_secrets_page(page: &[u8; SECRETS_PAGE_SIZE]) -> Result<Self, SnpError> {
        Self::from_secrets_page_at(page, VMPCK_ID)
    }

    /// Takes the VMPCK of `vmpl` (the runtime's own VMPL, 0..=3) from a private copy of the
    /// secrets page; reports are then requested for that VMPL and must say so.
    pub fn from_secrets_page_at(page: &[u8; SECRETS_PAGE_SIZE], vmpl: u8) -> Result<Self, SnpError> {
        let mut secrets = SecretsPage::parse(page).ok_or(SnpError::NoSecrets)?;
        // Versions 2 and 3 exist (SNP ABI, secrets page format); anything older is not a page
        // the PSP wrote.
        if secrets.version < 2 {
            return Err(SnpError::NoSecrets);
        }
        let vmpck = secrets.take_vmpck(usize::from(vmpl)).ok_or(SnpError::NoSecrets)?;
        if vmpck.is_zero() {
            return Err(SnpError::NoSecrets);
        }
        Ok(Self { requester: Requester::new(vmpck, vmpl), vmpl })
    }

    /// The VMPL the runtime runs at.
    pub fn vmpl(&self) -> u8 {
        self.vmpl
    }

    /// One request/response exchange; returns the plaintext answer (private memory).
    /// The host's certificate table comes back untouched with the plaintext (`None` unless
    /// `exit` is [`Exit::ExtGuestRequest`] and the host supplied one).
    fn exchange(
        &mut self,
        req_type: u8,
        payload: &[u8],
        exit: Exit,
        doorbell: &mut dyn SnpDoorbell,
    ) -> Result<(Plaintext, Option<Vec<u8>>), SnpError> {
        let mut sealed = vec![0u8; MAX_MESSAGE];
        let len =
            self.requester.seal_request(req_type, MSG_VERSION, payload, &mut sealed).map_err(SnpError::Envelope)?;
        let Answer { sealed: answer, certificates } = match doorbell.guest_request(&sealed[..len], exit) {
            Ok(answer) => answer,
            Err(e) => {
                // The firmware may have consumed the sequence number: never seal under it again.
                self.requester.wipe();
                return Err(SnpError::Doorbell(e));
            }
        };
        let mut plain = Zeroizing::new(vec![0u8; MAX_MESSAGE]);
        let n = self.requester.open_response(&answer, &mut plain).map_err(SnpError::Envelope)?;
        plain.truncate(n);
        Ok((plain, certificates.filter(|_| exit == Exit::ExtGuestRequest)))
    }

    /// MSG_REPORT_REQ at the runtime's VMPL with `report_data`: the 1184-byte report, checked to
    /// carry it and that VMPL.
    pub fn report(&mut self, report_data: &[u8; 64], doorbell: &mut dyn SnpDoorbell) -> Result<Vec<u8>, SnpError> {
        self.report_through(report_data, Exit::GuestRequest, doorbell).map(|(report, _)| report)
    }

    /// MSG_REPORT_REQ through the extended guest request: the report, and the host's
    /// certificate table (unparsed) when it supplied one.
    pub fn report_with_certificates(
        &mut self,
        report_data: &[u8; 64],
        doorbell: &mut dyn SnpDoorbell,
    ) -> Result<(Vec<u8>, Option<Vec<u8>>), SnpError> {
        self.report_through(report_data, Exit::ExtGuestRequest, doorbell)
    }

    fn report_through(
        &mut self,
        report_data: &[u8; 64],
        exit: Exit,
        doorbell: &mut dyn SnpDoorbell,
    ) -> Result<(Vec<u8>, Option<Vec<u8>>), SnpError> {
        let request = ReportRequest { report_data: *report_data, vmpl: u32::from(self.vmpl) };
        let (answer, certificates) = self.exchange(msg_type::REPORT_REQ, &request.to_bytes(), exit, doorbell)?;
        let response = ReportResponse::parse(&answer).map_err(|_| SnpError::Malformed("MSG_REPORT_RSP"))?;
        if response.status != STATUS_SUCCESS {
            return Err(SnpError::Firmware(response.status));
        }
        // Only the length and REPORT_DATA are the guest's to check: the version is the
        // verifier's, so that new firmware does not stop attestation.
        let report = GuestView::parse(response.report).map_err(|_| SnpError::Malformed("attestation report"))?;
        if report.report_data != *report_data {
            return Err(SnpError::ReportDataMismatch);
        }
        if report.vmpl != u32::from(self.vmpl) {
            return Err(SnpError::VmplMismatch { asked: self.vmpl, reported: report.vmpl });
        }
        Ok((response.report.to_vec(), certificates))
    }

    /// MSG_KEY_REQ: a 32-byte key derived by the firmware (zeroized on drop).
    pub fn derive_key(
        &mut self,
        request: &KeyRequest,
        doorbell: &mut dyn SnpDoorbell,
    ) -> Result<Zeroizing<[u8; 32]>, SnpError> {
        let (answer, _) = self.exchange(msg_type::KEY_REQ, &request.to_bytes(), Exit::GuestRequest, doorbell)?;
        let response = KeyResponse::parse(&answer).map_err(|_| SnpError::Malformed("MSG_KEY_RSP"))?;
        if response.status != STATUS_SUCCESS {
            return Err(SnpError::Firmware(response.status));
        }
        Ok(response.key)
    }
}

/// The part of the host's certificate buffer worth forwarding with the evidence: the table and
/// its certificates, checked to lie within the buffer, without the buffer's unused tail. The
/// certificates themselves are the verifier's to check, against its own roots.
pub fn forwardable_certificates(buffer: Option<&[u8]>) -> (Option<Vec<u8>>, Certificates) {
    match usable_table(buffer) {
        Ok(table) => {
            let outcome = Certificates::Forwarded { count: table.len(), bytes: table.used_len() };
            (Some(table.used().to_vec()), outcome)
        }
        Err(outcome) => (None, outcome),
    }
}

/// What the evidence says of a certificate table the loader delivered and keeps: its SHA-384
/// ([`CertTable::sha384`], over the same bytes [`forwardable_certificates`] would send), so
/// that the table crosses the channel once. A table not worth forwarding is not named either.
pub fn named_certificates(buffer: Option<&[u8]>) -> (Option<[u8; 48]>, Certificates) {
    match usable_table(buffer) {
        Ok(table) => (Some(table.sha384()), Certificates::Named { count: table.len(), bytes: table.used_len() }),
        Err(outcome) => (None, outcome),
    }
}

/// The host's table when it is worth passing on: present, not empty, well formed, within
/// [`MAX_CERT_TABLE`]; else what became of it.
fn usable_table(buffer: Option<&[u8]>) -> Result<CertTable<'_>, Certificates> {
    let buffer = buffer.ok_or(Certificates::None)?;
    match CertTable::parse(buffer) {
        Ok(table) if table.is_empty() => Err(Certificates::None),
        Ok(table) if table.used_len() <= MAX_CERT_TABLE => Ok(table),
        _ => Err(Certificates::Dropped),
    }
}

/// The SEV-SNP TEE: the guest's VMPCK (borrowed: it lives in the vault's pages) and a doorbell
/// to the firmware.
#[derive(Debug)]
pub struct SnpTee<'g, D: SnpDoorbell> {
    guest: &'g mut SnpGuest,
    doorbell: D,
    platform: Platform,
    /// COMMITTED_TCB of the last report: the sealing key binds it (the hypervisor chooses
    /// REPORTED_TCB and may set it below the committed one, while the firmware refuses key
    /// requests above the committed TCB).
    committed_tcb: Option<u64>,
}

impl<'g, D: SnpDoorbell> SnpTee<'g, D> {
    /// `platform` is [`Platform::Snp`] on hardware, [`Platform::SimSnp`] under the simulator.
    pub fn new(guest: &'g mut SnpGuest, doorbell: D, platform: Platform) -> Self {
        Self { guest, doorbell, platform, committed_tcb: None }
    }

    fn committed_tcb(&mut self) -> Result<u64, TeeError> {
        if let Some(tcb) = self.committed_tcb {
            return Ok(tcb);
        }
        // No report yet: ask for one (its REPORTDATA binds nothing) to learn the TCB.
        let report = self.guest.report(&[0; 64], &mut self.doorbell).map_err(snp_error)?;
        self.remember_tcb(&report)
    }

    fn remember_tcb(&mut self, report: &[u8]) -> Result<u64, TeeError> {
        let parsed = GuestView::parse(report).map_err(|_| TeeError::Snp(SnpError::Malformed("attestation report")))?;
        self.committed_tcb = Some(parsed.committed_tcb.0);
        Ok(parsed.committed_tcb.0)
    }
}

/// A doorbell whose channel failed is a channel failure, not a firmware one.
fn snp_error(e: SnpError) -> TeeError {
    match e {
        SnpError::Doorbell(DoorbellError::Channel(e)) => TeeError::Channel(e),
        other => TeeError::Snp(other),
    }
}

impl<D: SnpDoorbell> Tee for SnpTee<'_, D> {
    fn platform(&self) -> Platform {
        self.platform
    }

    fn extend(&mut self, _: &Measurement<'_>) -> Result<(), TeeError> {
        Err(TeeError::Unsupported("SEV-SNP has no runtime measurement registers (the launch digest covers the image)"))
    }

    fn evidence(&mut self, report_data: &[u8; 64]) -> Result<Evidence, TeeError> {
        let (report, buffer) =
            self.guest.report_with_certificates(report_data, &mut self.doorbell).map_err(snp_error)?;
        self.remember_tcb(&report)?;
        let buffer = buffer.as_deref();
        let ((certificates, table), certificates_sha384) = if self.doorbell.loader_keeps_certificates() {
            let (digest, table) = named_certificates(buffer);
            ((None, table), digest)
        } else {
            (forwardable_certificates(buffer), None)
        };
        Ok(Evidence {
            bytes: report,
            named: None,
            certificates,
            certificates_sha384,
            certificate_table: Some(table),
            event_log: None,
        })
    }

    fn sealing_key(&mut self) -> Result<Zeroizing<[u8; 32]>, TeeError> {
        let tcb = self.committed_tcb()?;
        // The key's VMPL must be at least the requester's (SEV-SNP Firmware ABI, MSG_KEY_REQ):
        // below an SVSM, the runtime's own.
        let request = KeyRequest { vmpl: u32::from(self.guest.vmpl()), ..KeyRequest::launch_bound(tcb) };
        self.guest.derive_key(&request, &mut self.doorbell).map_err(snp_error)
    }
}
