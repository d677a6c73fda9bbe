//! The TDX backend: it extends RTMRs (`TDG.MR.RTMR.EXTEND`) while keeping the event log a
//! verifier replays, asks the TDX module for a TDREPORT over REPORTDATA (`TDG.MR.REPORT`), and
//! obtains a quote through the GHCI GetQuote buffer (`TDG.VP.VMCALL<GetQuote>`), all over a
//! [`TdxModule`]: on hardware TDCALL/TDVMCALL (the `hw` module), under `twi run --platform
//! sim-tdx` DoorbellRequest/DoorbellResponse pairs on the channel carrying the same bytes
//! (the `sim` module).
//!
//! What the runtime measures into which RTMR (RTMR0 is left to firmware configuration, RTMR3
//! to the workload):
//!
//! | RTMR | event type (`twi_proto::msg::event_type`) | data (digest = SHA-384(data)) |
//! |------|-------------------------------------------|-------------------------------|
//! | 1    | `LAUNCH_MANIFEST`                         | the launch manifest's postcard body, as loaded from the ROM slot |
//! | 2    | `ISSUER_ANCHOR`                           | the issuer anchor it trusts (SEC1 P-384 key) |
//!
//! This follows TDVF's use of the RTMRs (TDVF design guide, "TD Measurement"; UEFI 2.10
//! §38.4.1): RTMR1 holds what firmware boots (TDVF: the OS loader; here the manifest that names
//! the payload and its digest), RTMR2 the configuration it boots with (TDVF: the kernel command
//! line; here the issuer the workload will trust), RTMR3 stays free for the workload. The host
//! renders the same events as a CC event log, the ACPI CCEL table's format, with CC register
//! index = RTMR + 1 (`twi_verifier::tdx::cc_event_log`; `twi run` writes `event-log.ccel`),
//! for verifiers that replay standard logs. The runtime sends the compact events instead of
//! the log bytes because the CCEL form adds nothing a verifier needs: every byte of it is a
//! function of the events.
//!
//! Under the simulator the quote (about 5 KB with its PCK chain) comes down in the GetQuote
//! answer from the loader, which keeps it: the evidence names it by SHA-384 ([`name_quote`])
//! instead of sending it back up. On hardware the evidence carries the quote.
//!
//! The TDX module offers a TD no key derivation: [`TdxTee`] has no sealing key.

use alloc::vec;
use alloc::vec::Vec;

use twi_attester::tdx::getquote::{self, GetQuoteError};
use twi_attester::tdx::quote::GuestView;
use twi_attester::tdx::td_report::{REPORT_TYPE_TDX, TD_REPORT_SIZE, TdReport};
use twi_proto::msg::{MAX_DOORBELL_RESPONSE, MAX_EVENT_DATA, MAX_EVENTS, Platform, RtmrEvent};
use zeroize::Zeroizing;

use super::{Evidence, Measurement, NamedQuote, Tee, TeeError};
use crate::channel::ChannelError;

/// The GetQuote buffer the runtime hands the VMM: header + room for a quote that still fits
/// one DoorbellResponse / Evidence.
pub const GET_QUOTE_BUFFER: usize = MAX_DOORBELL_RESPONSE;

/// The RTMR the runtime extends with its launch manifest.
pub const RTMR_MANIFEST: u8 = 1;
/// The RTMR the runtime extends with the issuer anchor it trusts.
pub const RTMR_ISSUER_ANCHOR: u8 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TdxError {
    /// The doorbell (TDCALL / TDVMCALL, or the simulator) failed with this status (a TDCALL
    /// completion status, a TDG.VP.VMCALL status, or the simulated module's).
    Doorbell(u64),
    /// The channel to the simulated module failed.
    Channel(ChannelError),
    /// The answer is unusable.
    Malformed(&'static str),
    /// The TDREPORT or the quote does not carry the requested REPORTDATA.
    ReportDataMismatch,
    /// The quote's RTMRs are not those the event log replays to.
    RtmrMismatch,
    GetQuote(GetQuoteError),
    /// More events than the evidence can carry, or an event too large.
    EventLogFull,
    /// GetQuote was still in flight after this many polls and this much waiting
    /// (`twi_attester::tdx::getquote::poll`: at least 35 s).
    QuoteTimeout {
        polls: u32,
        waited_ms: u64,
    },
}

impl core::fmt::Display for TdxError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Doorbell(status) => write!(f, "the TDX call failed with status {status:#x}"),
            Self::Channel(e) => write!(f, "{e}"),
            Self::Malformed(what) => write!(f, "the TDX module's answer is malformed: {what}"),
            Self::ReportDataMismatch => f.write_str("the TD report does not carry the requested REPORTDATA"),
            Self::RtmrMismatch => f.write_str("the quote's RTMRs do not match the runtime's event log"),
            Self::GetQuote(e) => write!(f, "{e}"),
            Self::EventLogFull => f.write_str("the RTMR event log is full"),
            Self::QuoteTimeout { polls, waited_ms } => write!(
                f,
                "GetQuote was still in flight after {} s ({polls} polls): the quoting service did not answer",
                waited_ms / 1000
            ),
        }
    }
}

/// The measurements taken so far, and the RTMR values they imply.
#[derive(Debug, Default)]
pub struct EventLog {
    events: Vec<RtmrEvent>,
}

impl EventLog {
    /// The event for `data` in `rtmr`, and its digest (to hand to `TDG.MR.RTMR.EXTEND`).
    pub fn record(&mut self, rtmr: u8, event_type: u32, data: &[u8]) -> Result<[u8; 48], TdxError> {
        if self.events.len() >= MAX_EVENTS || data.len() > MAX_EVENT_DATA || rtmr > 3 {
            return Err(TdxError::EventLogFull);
        }
        let digest = twi_proto::hash::sha384(&[data]);
        self.events.push(RtmrEvent { rtmr, event_type, digest: digest.to_vec(), data: data.to_vec() });
        Ok(digest)
    }

    pub fn events(&self) -> &[RtmrEvent] {
        &self.events
    }

    /// The RTMR values the log replays to.
    pub fn replay(&self) -> [[u8; 48]; 4] {
        let mut rtmr = [[0u8; 48]; 4];
        for event in &self.events {
            if let (Some(slot), Ok(digest)) =
                (rtmr.get_mut(usize::from(event.rtmr)), <[u8; 48]>::try_from(&event.digest[..]))
            {
                *slot = twi_attester::tdx::rtmr::extend(slot, &digest);
            }
        }
        rtmr
    }
}

/// The request of `TDG.MR.RTMR.EXTEND` on the simulated doorbell: index ‖ digest.
pub fn rtmr_extend_request(rtmr: u8, digest: &[u8; 48]) -> Vec<u8> {
    let mut request = vec![rtmr];
    request.extend_from_slice(digest);
    request
}

/// Checks a TDREPORT (a private copy) for `report_data`.
pub fn check_td_report(answer: &[u8], report_data: &[u8; 64]) -> Result<[u8; TD_REPORT_SIZE], TdxError> {
    let bytes: [u8; TD_REPORT_SIZE] = answer.try_into().map_err(|_| TdxError::Malformed("TDREPORT length"))?;
    let report = TdReport::parse(&bytes);
    if report.report_type[0] != REPORT_TYPE_TDX {
        return Err(TdxError::Malformed("REPORTTYPE is not TDX"));
    }
    if report.report_data != *report_data {
        return Err(TdxError::ReportDataMismatch);
    }
    Ok(bytes)
}

/// A fresh GetQuote buffer (private) for `td_report`, and the length of its request part.
pub fn get_quote_buffer(td_report: &[u8; TD_REPORT_SIZE]) -> Result<(Vec<u8>, usize), TdxError> {
    let mut buffer = vec![0u8; GET_QUOTE_BUFFER];
    let len = getquote::encode_request(td_report, &mut buffer).map_err(TdxError::GetQuote)?;
    Ok((buffer, len))
}

/// Takes the quote out of the VMM's answer (a private copy of the buffer), and checks that it
/// quotes this TD: our REPORTDATA, and RTMRs that the event log replays to. Only those (at the
/// offsets every quote version shares, [`GuestView`]) are the guest's to check; the version,
/// signatures and certification data are the issuer's to verify, passed on untouched (OUT_LEN
/// bytes, as the VMM returned them), so that a new quote format does not stop attestation.
pub fn take_quote(buffer: &[u8], report_data: &[u8; 64], log: &EventLog) -> Result<Vec<u8>, TdxError> {
    let quote = getquote::parse_response(buffer).map_err(TdxError::GetQuote)?;
    let view = GuestView::parse(quote).map_err(|_| TdxError::Malformed("quote"))?;
    if view.report_data != *report_data {
        return Err(TdxError::ReportDataMismatch);
    }
    if view.rtmr != log.replay() {
        return Err(TdxError::RtmrMismatch);
    }
    Ok(quote.to_vec())
}

/// How the evidence names a quote the loader delivered and keeps
/// ([`TdxModule::loader_keeps_quotes`]): the SHA-384 of the bytes [`take_quote`] returned,
/// which the loader computes over the same `OUT_LEN` bytes of the GetQuote answer it sent, so
/// that the quote crosses the channel once.
///
/// The name binds nothing the quote does not: REPORTDATA (the key, the freshness, the target)
/// is inside the quote, checked here and again by the verifier with the quote's signature
/// chain. It only keeps the host from presenting a quote other than the one this guest saw
/// and checked (its REPORTDATA and RTMRs): the loader refuses a name it never delivered.
pub fn name_quote(quote: &[u8]) -> NamedQuote {
    NamedQuote { sha384: twi_proto::hash::sha384(&[quote]), len: quote.len() }
}

/// What the TDX backend needs from the TDX module and the VMM's quoting service.
pub trait TdxModule {
    /// TDG.MR.RTMR.EXTEND of `digest` into RTMR `rtmr`.
    fn rtmr_extend(&mut self, rtmr: u8, digest: &[u8; 48]) -> Result<(), TdxError>;
    /// TDG.MR.REPORT over `report_data`: the TDREPORT, a private copy (checked by the caller).
    fn report(&mut self, report_data: &[u8; 64]) -> Result<Vec<u8>, TdxError>;
    /// TDG.VP.VMCALL<GetQuote>: hands the request (`buffer[..request_len]`: GHCI header and
    /// TDREPORT; `buffer.len()` is the whole buffer the VMM may fill) to the VMM, once.
    fn submit_quote(&mut self, buffer: &[u8], request_len: usize) -> Result<(), TdxError>;
    /// One look at the GetQuote buffer: copies what the VMM left there into `out` (private) and
    /// returns how many bytes it copied. While the status is in flight that may be the header
    /// only.
    fn poll_quote(&mut self, out: &mut [u8]) -> Result<usize, TdxError>;
    /// Waits about `ms` milliseconds between two polls of an in-flight GetQuote; returns the
    /// milliseconds that passed (on hardware, measured), which count against the time bound.
    fn pause(&mut self, ms: u64) -> u64;

    /// Whether the quotes this module returns come from the loader at the other end of the
    /// channel, which keeps what it delivered (the simulated quoting service): the evidence
    /// then names the quote by its SHA-384 instead of sending it back. `false` (the default)
    /// on hardware, where the VMM's quoting service writes the quote into a shared buffer the
    /// loader never sees: the evidence carries the quote.
    fn loader_keeps_quotes(&self) -> bool {
        false
    }
}

/// A module behind a reference: the firmware runs the TDX module and the simulated one as
/// `TdxTee<&mut dyn TdxModule>`, so the ROM carries one copy of the TEE's code (issue 17).
impl<M: TdxModule + ?Sized> TdxModule for &mut M {
    fn rtmr_extend(&mut self, rtmr: u8, digest: &[u8; 48]) -> Result<(), TdxError> {
        (**self).rtmr_extend(rtmr, digest)
    }

    fn report(&mut self, report_data: &[u8; 64]) -> Result<Vec<u8>, TdxError> {
        (**self).report(report_data)
    }

    fn submit_quote(&mut self, buffer: &[u8], request_len: usize) -> Result<(), TdxError> {
        (**self).submit_quote(buffer, request_len)
    }

    fn poll_quote(&mut self, out: &mut [u8]) -> Result<usize, TdxError> {
        (**self).poll_quote(out)
    }

    fn pause(&mut self, ms: u64) -> u64 {
        (**self).pause(ms)
    }

    fn loader_keeps_quotes(&self) -> bool {
        (**self).loader_keeps_quotes()
    }
}

/// The TDX TEE: a [`TdxModule`] and the event log of what this launch extended.
#[derive(Debug)]
pub struct TdxTee<M: TdxModule> {
    module: M,
    log: EventLog,
    platform: Platform,
}

impl<M: TdxModule> TdxTee<M> {
    /// `platform` is [`Platform::Tdx`] on hardware, [`Platform::SimTdx`] under the simulator.
    pub fn new(module: M, platform: Platform) -> Self {
        Self { module, log: EventLog::default(), platform }
    }

    /// The module, when the TEE is done with (for tests that inspect it).
    pub fn into_module(self) -> M {
        self.module
    }

    /// Submits the GetQuote request for `td_report` and polls until the VMM answers, backing off
    /// for at least 35 s of waiting (`getquote::poll`: a bound in time, not polls); returns the
    /// quote, checked against `report_data` and the event log.
    fn quote(&mut self, td_report: &[u8; TD_REPORT_SIZE], report_data: &[u8; 64]) -> Result<Vec<u8>, TdxError> {
        let (mut buffer, request_len) = get_quote_buffer(td_report)?;
        self.module.submit_quote(&buffer, request_len)?;
        let (mut polls, mut waited_ms) = (0u32, 0u64);
        loop {
            let n = self.module.poll_quote(&mut buffer)?;
            match take_quote(&buffer[..n.min(buffer.len())], report_data, &self.log) {
                Err(TdxError::GetQuote(GetQuoteError::InFlight)) => {
                    match getquote::poll::next_delay(polls, waited_ms) {
                        Some(delay) => {
                            waited_ms = waited_ms.saturating_add(self.module.pause(delay));
                            polls += 1;
                        }
                        None => return Err(TdxError::QuoteTimeout { polls: polls + 1, waited_ms }),
                    }
                }
                other => return other,
            }
        }
    }
}

/// A module whose channel failed is a channel failure, not a TDX one.
fn tdx_error(e: TdxError) -> TeeError {
    match e {
        TdxError::Channel(e) => TeeError::Channel(e),
        other => TeeError::Tdx(other),
    }
}

impl<M: TdxModule> Tee for TdxTee<M> {
    fn platform(&self) -> Platform {
        self.platform
    }

    fn extend(&mut self, m: &Measurement<'_>) -> Result<(), TeeError> {
        let digest = self.log.record(m.rtmr, m.event_type, m.data).map_err(TeeError::Tdx)?;
        self.module.rtmr_extend(m.rtmr, &digest).map_err(tdx_error)
    }

    fn evidence(&mut self, report_data: &[u8; 64]) -> Result<Evidence, TeeError> {
        let answer = self.module.report(report_data).map_err(tdx_error)?;
        let td_report = check_td_report(&answer, report_data).map_err(TeeError::Tdx)?;
        let quote = self.quote(&td_report, report_data).map_err(tdx_error)?;
        let (bytes, named) =
            if self.module.loader_keeps_quotes() { (Vec::new(), Some(name_quote(&quote))) } else { (quote, None) };
        Ok(Evidence {
            bytes,
            named,
            certificates: None,
            certificates_sha384: None,
            certificate_table: None,
            event_log: Some(self.log.events().to_vec()),
        })
    }

    fn sealing_key(&mut self) -> Result<Zeroizing<[u8; 32]>, TeeError> {
        Err(TeeError::Unsupported("the TDX module derives no sealing key for a TD"))
    }
}
