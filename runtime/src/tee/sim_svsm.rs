//! The doorbell of a simulated SVSM (`twi run --platform sim-svsm`): each SVSM call travels over
//! the channel as a DoorbellRequest of kind SvsmCall carrying the registers and the guest pages
//! the call names (`twi_attester::svsm::exchange`), the calling area first. On hardware the
//! SVSM reads and writes those pages itself after a VMGEXIT (`crate::platform::snp::svsm`);
//! here the runtime keeps them in private memory, sends them, and takes back only pages at the
//! same addresses and of the same lengths as it sent (the host is as hostile as ever).
//!
//! The request bytes and the checks on the answer are the hardware path's: `call_pending` set
//! before the call and clear after it (still set: the SVSM never took the call), the result
//! code in RAX, SVSM_CORE_PVALIDATE's header with `next` advanced, the attestation protocol's
//! lengths bounded by the buffers.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

use twi_attester::snp::secrets::SvsmInfo;
use twi_attester::svsm::attest::{ATTEST_SERVICES, AttestLengths, AttestRequest, Location, NONCE_LEN};
use twi_attester::svsm::call::{CallResult, Registers, caa, protocol, rax};
use twi_attester::svsm::core::{self as svsm_core, PvalidateEntry};
use twi_attester::svsm::exchange::{Exchange, MAX_EXCHANGE, Window};
use twi_proto::msg::{DoorbellKind, DoorbellRequest, Message};

use super::svsm::{SvsmAttestation, SvsmDoorbell, SvsmError};
use crate::channel::{Channel, Link};

/// Busy / incomplete answers are retried this often (as on hardware).
const RETRIES: u32 = 8;
/// The buffers offered to SVSM_ATTEST_SERVICES: a report (1184 bytes) and a manifest fit.
const REPORT_BUFFER: usize = 2048;
const MANIFEST_BUFFER: usize = 256;

/// A page-aligned page of private memory: its address is the GPA the call names (the runtime's
/// memory is identity mapped).
#[repr(C, align(4096))]
struct Page([u8; 4096]);

impl Page {
    fn boxed() -> Box<Self> {
        Box::new(Self([0; 4096]))
    }

    fn gpa(&self) -> u64 {
        self.0.as_ptr() as u64
    }
}

/// The simulated SVSM, reached over the channel.
pub struct SimSvsm<'c, 'a, L: Link> {
    channel: &'c Channel<'a, L>,
    info: SvsmInfo,
    /// The calling area, as the runtime last saw it.
    caa: Box<[u8; caa::SIZE]>,
}

impl<L: Link> core::fmt::Debug for SimSvsm<'_, '_, L> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SimSvsm").field("info", &self.info).finish_non_exhaustive()
    }
}

impl<'c, 'a, L: Link> SimSvsm<'c, 'a, L> {
    pub fn new(channel: &'c Channel<'a, L>, info: SvsmInfo) -> Self {
        Self { channel, info, caa: Box::new([0; caa::SIZE]) }
    }

    /// One call with `request` in the calling area's buffer and `pages` (GPA, private bytes)
    /// beside it; the SVSM's registers, once it took the call.
    fn call_once(
        &mut self,
        regs: Registers,
        request: &[u8],
        pages: &mut [(u64, &mut [u8])],
    ) -> Result<Registers, SvsmError> {
        let buffer = self
            .caa
            .get_mut(caa::BUFFER..caa::BUFFER + request.len())
            .ok_or(SvsmError::Doorbell("the request does not fit the calling area"))?;
        buffer.copy_from_slice(request);
        self.caa[caa::CALL_PENDING] = 1;
        let mut windows = vec![Window { gpa: self.info.caa, bytes: &self.caa[..] }];
        windows.extend(pages.iter().map(|(gpa, bytes)| Window { gpa: *gpa, bytes: &bytes[..] }));
        let mut out = vec![0u8; MAX_EXCHANGE];
        let len = Exchange::encode(&regs, &windows, &mut out)
            .map_err(|_| SvsmError::Doorbell("the call names pages it cannot carry"))?;
        out.truncate(len);
        let answer = self.ring(out)?;
        let exchange = Exchange::decode(&answer).map_err(|_| SvsmError::Doorbell("the SVSM's answer is malformed"))?;
        let windows = exchange.windows();
        // The same pages, at the same addresses, of the same lengths: nothing else is taken.
        let same = windows.len() == pages.len() + 1
            && windows[0].gpa == self.info.caa
            && windows[0].bytes.len() == caa::SIZE
            && windows[1..]
                .iter()
                .zip(pages.iter())
                .all(|(w, (gpa, bytes))| w.gpa == *gpa && w.bytes.len() == bytes.len());
        if !same {
            return Err(SvsmError::Doorbell("the SVSM's answer names other pages than the call"));
        }
        self.caa.copy_from_slice(windows[0].bytes);
        for (w, (_, bytes)) in windows[1..].iter().zip(pages.iter_mut()) {
            bytes.copy_from_slice(w.bytes);
        }
        if self.caa[caa::CALL_PENDING] != 0 {
            self.caa[caa::CALL_PENDING] = 0;
            return Err(SvsmError::Doorbell("the SVSM did not take the call (call_pending still set)"));
        }
        Ok(exchange.regs)
    }

    /// The exchange as a DoorbellRequest; the DoorbellResponse's bytes.
    fn ring(&self, exchange: Vec<u8>) -> Result<Vec<u8>, SvsmError> {
        let kind = DoorbellKind::SvsmCall;
        let message = Message::DoorbellRequest(DoorbellRequest { kind, request: exchange });
        self.channel.send(&message).map_err(|_| SvsmError::Doorbell("the channel to the simulated SVSM failed"))?;
        match self.channel.recv_reply() {
            Ok(Message::DoorbellResponse(r)) if r.kind == kind && r.status == 0 => Ok(r.response),
            Ok(Message::DoorbellResponse(r)) if r.kind == kind => {
                Err(SvsmError::Doorbell("the host refused the SVSM call"))
            }
            _ => Err(SvsmError::Doorbell("the channel to the simulated SVSM failed")),
        }
    }

    /// A call, retried while the SVSM answers Busy or Incomplete; `Ok` only on success.
    fn call(
        &mut self,
        regs: Registers,
        request: &[u8],
        pages: &mut [(u64, &mut [u8])],
    ) -> Result<Registers, SvsmError> {
        for _ in 0..RETRIES {
            let out = self.call_once(regs, request, pages)?;
            match CallResult::decode(out.rax) {
                CallResult::Success => return Ok(out),
                result if result.retry() => continue,
                result => return Err(SvsmError::Call(result)),
            }
        }
        Err(SvsmError::Call(CallResult::Busy))
    }

    /// SVSM_CORE_QUERY_PROTOCOL: `(min, max)` when the SVSM speaks `protocol` at `version`.
    pub fn query_protocol(&mut self, protocol_id: u32, version: u32) -> Result<Option<(u32, u32)>, SvsmError> {
        let regs = Registers {
            rax: rax(protocol::CORE, svsm_core::QUERY_PROTOCOL),
            rcx: svsm_core::query_protocol(protocol_id, version),
            ..Registers::default()
        };
        let out = self.call(regs, &[], &mut [])?;
        Ok(svsm_core::query_protocol_answer(out.rcx))
    }

    /// SVSM_CORE_PVALIDATE of `entries`, the request in the calling area's buffer; checks that
    /// the SVSM did them all (`next` = `entries`).
    pub fn pvalidate(&mut self, entries: &[PvalidateEntry]) -> Result<(), SvsmError> {
        let mut request = vec![0u8; caa::BUFFER_LEN];
        let len = svsm_core::encode_pvalidate(entries, &mut request)
            .map_err(|_| SvsmError::Doorbell("a PVALIDATE request the SVSM cannot take"))?;
        let gpa = self.info.caa + caa::BUFFER as u64;
        let regs = Registers { rax: rax(protocol::CORE, svsm_core::PVALIDATE), rcx: gpa, ..Registers::default() };
        self.call(regs, &request[..len], &mut [])?;
        match svsm_core::pvalidate_progress(&self.caa[caa::BUFFER..]) {
            Some((n, next)) if usize::from(n) == entries.len() && next == n => Ok(()),
            _ => Err(SvsmError::Doorbell("the SVSM reported success without validating every page")),
        }
    }
}

impl<L: Link> SvsmDoorbell for SimSvsm<'_, '_, L> {
    /// SVSM_ATTEST_SERVICES: the request and the nonce in the calling area's buffer, the report
    /// and the manifest in two page-aligned private pages (as COCONUT requires).
    fn attest_services(&mut self, nonce: &[u8; NONCE_LEN]) -> Result<SvsmAttestation, SvsmError> {
        let (mut report, mut manifest) = (Page::boxed(), Page::boxed());
        let buffer = self.info.caa + caa::BUFFER as u64;
        let report_at = Location { gpa: report.gpa(), size: REPORT_BUFFER as u32 };
        let manifest_at = Location { gpa: manifest.gpa(), size: MANIFEST_BUFFER as u32 };
        let (request, bytes) = AttestRequest::services_in(buffer, report_at, manifest_at, nonce);
        let regs = Registers { rax: rax(protocol::ATTEST, ATTEST_SERVICES), rcx: buffer, ..Registers::default() };
        let (report_gpa, manifest_gpa) = (report.gpa(), manifest.gpa());
        let mut pages =
            [(report_gpa, &mut report.0[..REPORT_BUFFER]), (manifest_gpa, &mut manifest.0[..MANIFEST_BUFFER])];
        let out = self.call(regs, &bytes, &mut pages)?;
        let lengths = AttestLengths::from_registers(&request, out.rcx, out.rdx, out.r8).map_err(SvsmError::Attest)?;
        Ok(SvsmAttestation {
            report: report.0[..lengths.report].to_vec(),
            manifest: manifest.0[..lengths.manifest].to_vec(),
            certificates: None,
        })
    }
}
