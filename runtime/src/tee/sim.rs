//! The simulated TEE's doorbells (`twi run --platform sim | sim-tdx`): the firmware lives on the
//! host (the simulator crate), and each firmware call travels over the channel as a
//! DoorbellRequest of its kind, answered by a DoorbellResponse. The bytes are exactly what the
//! hardware doorbell would hand the firmware (a sealed SEV-SNP guest message, a TDREPORT
//! request, a GHCI GetQuote buffer), so the backends above are the same code on both.
//!
//! The host's answers are as hostile as anything else it sends: they arrive through the
//! channel's checks and are parsed by the backends from private copies.

use alloc::vec::Vec;

use twi_proto::msg::{DoorbellKind, DoorbellRequest, Message};

use super::snp::{Answer, DoorbellError, Exit, SnpDoorbell};
use super::tdx::{TdxError, TdxModule, rtmr_extend_request};
use crate::channel::{Channel, ChannelError, Link};

/// Why a simulated doorbell call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SimError {
    /// The exchange failed: the channel, the host's Error, or a message out of turn.
    Channel(ChannelError),
    /// The simulated firmware answered with this (non-zero) status.
    Status(u64),
}

/// One simulated firmware call: `request` as a DoorbellRequest of `kind`, and the matching
/// DoorbellResponse's payload and certificate table.
fn call<L: Link>(
    channel: &Channel<'_, L>,
    kind: DoorbellKind,
    request: &[u8],
) -> Result<(Vec<u8>, Option<Vec<u8>>), SimError> {
    let message = Message::DoorbellRequest(DoorbellRequest { kind, request: request.to_vec() });
    channel.send(&message).map_err(SimError::Channel)?;
    match channel.recv_reply().map_err(SimError::Channel)? {
        Message::DoorbellResponse(r) if r.kind == kind && r.status == 0 => Ok((r.response, r.certificates)),
        Message::DoorbellResponse(r) if r.kind == kind => Err(SimError::Status(r.status)),
        other => Err(SimError::Channel(ChannelError::Unexpected(other.name()))),
    }
}

/// The simulated PSP's doorbell.
#[derive(Debug)]
pub struct SimSnpDoorbell<'c, 'a, L: Link> {
    channel: &'c Channel<'a, L>,
}

impl<'c, 'a, L: Link> SimSnpDoorbell<'c, 'a, L> {
    pub fn new(channel: &'c Channel<'a, L>) -> Self {
        Self { channel }
    }
}

impl<L: Link> SnpDoorbell for SimSnpDoorbell<'_, '_, L> {
    fn guest_request(&mut self, sealed: &[u8], exit: Exit) -> Result<Answer, DoorbellError> {
        let kind = match exit {
            Exit::GuestRequest => DoorbellKind::SnpGuestRequest,
            Exit::ExtGuestRequest => DoorbellKind::SnpExtGuestRequest,
        };
        match call(self.channel, kind, sealed) {
            Ok((sealed, certificates)) => Ok(Answer { sealed, certificates }),
            Err(SimError::Channel(e)) => Err(DoorbellError::Channel(e)),
            Err(SimError::Status(status)) => Err(DoorbellError::Refused(status)),
        }
    }

    /// The certificate table came in the loader's DoorbellResponse: the loader has it.
    fn loader_keeps_certificates(&self) -> bool {
        true
    }
}

/// The simulated TDX module and quoting service: every call is a DoorbellRequest of its kind;
/// GetQuote is polled by sending the request again, and the host's answer is the start of the
/// buffer.
#[derive(Debug)]
pub struct SimTdxModule<'c, 'a, L: Link> {
    channel: &'c Channel<'a, L>,
    quote_request: Vec<u8>,
}

impl<'c, 'a, L: Link> SimTdxModule<'c, 'a, L> {
    pub fn new(channel: &'c Channel<'a, L>) -> Self {
        Self { channel, quote_request: Vec::new() }
    }

    fn call(&self, kind: DoorbellKind, request: &[u8]) -> Result<Vec<u8>, TdxError> {
        match call(self.channel, kind, request) {
            Ok((response, _)) => Ok(response),
            Err(SimError::Channel(e)) => Err(TdxError::Channel(e)),
            Err(SimError::Status(status)) => Err(TdxError::Doorbell(status)),
        }
    }
}

impl<L: Link> TdxModule for SimTdxModule<'_, '_, L> {
    fn rtmr_extend(&mut self, rtmr: u8, digest: &[u8; 48]) -> Result<(), TdxError> {
        self.call(DoorbellKind::TdxRtmrExtend, &rtmr_extend_request(rtmr, digest)).map(drop)
    }

    fn report(&mut self, report_data: &[u8; 64]) -> Result<Vec<u8>, TdxError> {
        self.call(DoorbellKind::TdxReport, report_data)
    }

    fn submit_quote(&mut self, buffer: &[u8], request_len: usize) -> Result<(), TdxError> {
        self.quote_request = buffer.get(..request_len).ok_or(TdxError::Malformed("GetQuote request length"))?.to_vec();
        Ok(())
    }

    fn poll_quote(&mut self, out: &mut [u8]) -> Result<usize, TdxError> {
        let answer = self.call(DoorbellKind::TdxGetQuote, &self.quote_request)?;
        // The VMM's answer is the start of the shared buffer: copy it over our private buffer
        // (bounded by it).
        let n = answer.len().min(out.len());
        out[..n].copy_from_slice(&answer[..n]);
        Ok(n)
    }

    /// The simulated quoting service answers each poll at once and decides itself how many
    /// polls a quote stays in flight; the guest counts the pause as taken, so the time bound
    /// holds in polls the host cannot stretch.
    fn pause(&mut self, ms: u64) -> u64 {
        ms
    }

    /// The quote came in the loader's DoorbellResponse: the loader has it.
    fn loader_keeps_quotes(&self) -> bool {
        true
    }
}
