//! A simulated SVSM at VMPL0 (`twi run --platform sim-svsm`): COCONUT-SVSM's place in a
//! paravisor deployment, with the guest runtime below it at [`GUEST_VMPL`]. It answers SVSM
//! calls (58019 §4) in the real protocol's bytes — RAX `protocol << 32 | call`, the calling
//! area's `call_pending`, the SVSM_CORE_PVALIDATE and attestation requests, the result codes —
//! carried over the channel as [`twi_attester::svsm::exchange`] (registers and the guest pages
//! the call names, since the host cannot reach guest memory), and refuses what COCONUT refuses.
//! Each check names the COCONUT function it mirrors (coconut-svsm/svsm @ f4bc4bcd,
//! `kernel/src/{requests.rs, vmm/execloop.rs, protocols/core.rs, protocols/attest.rs}`).
//!
//! The SVSM's own attestation (SVSM_ATTEST_SERVICES) asks the simulated PSP for a report at
//! VMPL0 whose REPORT_DATA is SHA-512(nonce ‖ services manifest), as COCONUT's
//! `get_attestation_report_standard` does (its report request leaves the VMPL at 0). The
//! guest's own reports (at its VMPL, under its VMPCK) come from the PSP directly
//! ([`crate::snp::SimLaunch::launch_at`]).

use std::collections::BTreeSet;
use std::ops::Range;

use twi_attester::snp::secrets::{SECRETS_PAGE_SIZE, SvsmInfo};
use twi_attester::svsm::attest::{self, ATTEST_SERVICES, AttestRequest, SERVICES_MANIFEST_GUID};
use twi_attester::svsm::call::{CallResult, Registers, caa, protocol};
use twi_attester::svsm::core::{self as svsm_core, PvalidateEntry};
use twi_attester::svsm::exchange::{Exchange, MAX_EXCHANGE, Window};

use crate::snp::SimPsp;

/// The guest's VMPL below COCONUT-SVSM (`kernel/src/types.rs` `GUEST_VMPL = 2`).
pub const GUEST_VMPL: u8 = 2;
/// Where the simulated SVSM puts the guest's calling area: where the ROM's SEV metadata asks
/// for it (its SVSM_CAA section), as COCONUT-SVSM does with the firmware it boots.
pub const CALLING_AREA: u64 = twi_linker::SVSM_CAA_PAGE;
/// The simulated SVSM's own memory: above the guest's RAM (the 4 GiB line), 16 MiB.
pub const SVSM_MEMORY: Range<u64> = 0x1_0000_0000..0x1_0100_0000;
/// The protocol versions it speaks (COCONUT: core and attestation, min = max = 1).
const VERSION: u32 = 1;
/// PVALIDATE's "unchanged" (COCONUT `sev/utils.rs` `FAIL_UNCHANGED(0x10)`), returned as a
/// protocol-specific error unless the entry sets ignore-CF.
const FAIL_UNCHANGED: u32 = 0x10;
const PAGE: u64 = 0x1000;
const HUGE: u64 = 0x20_0000;

/// Why the host could not hand the call to the SVSM at all (a malformed exchange: on hardware
/// the guest's own memory, so only a broken guest gets here). Refusals of the call itself are
/// SVSM result codes in RAX.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SvsmRefusal {
    #[error("the SVSM call is malformed: {0}")]
    Exchange(String),
    #[error(
        "an SVSM call must carry the calling area at {expected:#x} (the secrets page's SVSM_CAA) as its first page, not {found:#x}"
    )]
    CallingArea { expected: u64, found: u64 },
}

/// The simulated SVSM of one launch.
#[derive(Debug)]
pub struct SimSvsm {
    info: SvsmInfo,
    /// The guest's RAM: what PVALIDATE may touch (COCONUT `valid_phys_region`).
    ram: Range<u64>,
    /// Pages validated as 4 KiB and as 2 MiB (the RMP's view).
    small: BTreeSet<u64>,
    huge: BTreeSet<u64>,
    calls: u64,
}

impl SimSvsm {
    /// An SVSM for a guest with `ram_bytes` of RAM below 4 GiB.
    pub fn new(ram_bytes: u64) -> Self {
        let info = SvsmInfo {
            base: SVSM_MEMORY.start,
            size: SVSM_MEMORY.end - SVSM_MEMORY.start,
            caa: CALLING_AREA,
            max_version: VERSION,
            guest_vmpl: GUEST_VMPL,
        };
        let ram = 0..ram_bytes.min(SVSM_MEMORY.start);
        Self { info, ram, small: BTreeSet::new(), huge: BTreeSet::new(), calls: 0 }
    }

    /// What the secrets page tells the guest about this SVSM.
    pub fn info(&self) -> SvsmInfo {
        self.info
    }

    /// Writes the SVSM fields into the guest's copy of the secrets page (COCONUT
    /// `secrets_page.rs` `set_svsm_data`).
    pub fn plant(&self, page: &mut [u8; SECRETS_PAGE_SIZE]) {
        self.info.write(page);
    }

    /// How many calls the SVSM took.
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// Whether the 4 KiB page at `gpa` is validated (as such or inside a validated 2 MiB page).
    pub fn is_validated(&self, gpa: u64) -> bool {
        self.small.contains(&(gpa & !(PAGE - 1))) || self.huge.contains(&(gpa & !(HUGE - 1)))
    }

    /// One SVSM call: the guest's exchange in, the SVSM's exchange out.
    pub fn call(&mut self, psp: &SimPsp, request: &[u8]) -> Result<Vec<u8>, SvsmRefusal> {
        let exchange = Exchange::decode(request).map_err(|e| SvsmRefusal::Exchange(e.to_string()))?;
        let mut pages: Vec<(u64, Vec<u8>)> = exchange.windows().iter().map(|w| (w.gpa, w.bytes.to_vec())).collect();
        let first = &mut pages[0];
        if first.0 != self.info.caa || first.1.len() != caa::SIZE {
            return Err(SvsmRefusal::CallingArea { expected: self.info.caa, found: first.0 });
        }
        let mut regs = exchange.regs;
        // COCONUT `get_and_clear_caa_request_flag`: the flag is cleared in any case, and a
        // VMGEXIT without it is no request (the guest resumes with its registers unchanged).
        let pending = first.1[caa::CALL_PENDING] != 0;
        first.1[caa::CALL_PENDING] = 0;
        if pending {
            self.calls += 1;
            let mut memory = GuestMemory { pages: &mut pages };
            let (protocol, call) = ((regs.rax >> 32) as u32, regs.rax as u32);
            let result = self.dispatch(psp, protocol, call, &mut regs, &mut memory);
            regs.rax = result.map_or_else(CallResult::encode, |()| CallResult::Success.encode());
        }
        let windows: Vec<Window<'_>> = pages.iter().map(|(gpa, bytes)| Window { gpa: *gpa, bytes }).collect();
        let mut out = vec![0u8; MAX_EXCHANGE];
        let len = Exchange::encode(&regs, &windows, &mut out).map_err(|e| SvsmRefusal::Exchange(e.to_string()))?;
        out.truncate(len);
        Ok(out)
    }

    /// COCONUT `request_loop_once` and the protocols' `*_protocol_request`.
    fn dispatch(
        &mut self,
        psp: &SimPsp,
        protocol: u32,
        call: u32,
        regs: &mut Registers,
        memory: &mut GuestMemory<'_>,
    ) -> Result<(), CallResult> {
        match (protocol, call) {
            (protocol::CORE, svsm_core::PVALIDATE) => self.pvalidate(regs.rcx, memory),
            (protocol::CORE, svsm_core::QUERY_PROTOCOL) => {
                regs.rcx = query_protocol(regs.rcx);
                Ok(())
            }
            // REMAP_CA, CREATE/DELETE_VCPU, DEPOSIT/WITHDRAW_MEM and CONFIGURE_VTOM, which
            // COCONUT serves, are not simulated: a runtime that needs them fails here clearly.
            (protocol::CORE, _) => Err(CallResult::UnsupportedCall),
            (protocol::ATTEST, ATTEST_SERVICES) => attest_services(psp, regs, memory),
            // COCONUT serves SVSM_ATTEST_SINGLE_SERVICE only for a compiled-in service (vTPM,
            // UEFI variables); this SVSM has none.
            (protocol::ATTEST, _) => Err(CallResult::UnsupportedCall),
            _ => Err(CallResult::UnsupportedProtocol),
        }
    }

    /// COCONUT `core_pvalidate`: RCX 8-byte aligned; `entries` non-zero, no more than fit in
    /// the page after the request's offset, above `next`; entries done in order, `next`
    /// advanced per success and written back, the first failure ends the call.
    fn pvalidate(&mut self, gpa: u64, memory: &mut GuestMemory<'_>) -> Result<(), CallResult> {
        if !gpa.is_multiple_of(8) {
            return Err(CallResult::InvalidParameter);
        }
        let offset = (gpa % PAGE) as usize;
        let header = memory.read(gpa, svsm_core::HEADER_LEN).ok_or(CallResult::InvalidAddress)?;
        let (entries, next) = svsm_core::pvalidate_progress(&header).ok_or(CallResult::InvalidParameter)?;
        let max = (PAGE as usize - offset - svsm_core::HEADER_LEN) / svsm_core::ENTRY_LEN;
        if entries == 0 || usize::from(entries) > max || entries <= next {
            return Err(CallResult::InvalidParameter);
        }
        let len = svsm_core::HEADER_LEN + usize::from(entries) * svsm_core::ENTRY_LEN;
        let mut request = memory.read(gpa, len).ok_or(CallResult::InvalidAddress)?;
        let mut done = next;
        let mut result = Ok(());
        for i in usize::from(next)..usize::from(entries) {
            let at = svsm_core::HEADER_LEN + i * svsm_core::ENTRY_LEN;
            let mut raw = [0u8; 8];
            raw.copy_from_slice(&request[at..at + 8]);
            result = self.pvalidate_one(u64::from_le_bytes(raw));
            if result.is_err() {
                break;
            }
            done += 1;
        }
        request[2..4].copy_from_slice(&done.to_le_bytes());
        memory.write(gpa, &request[..svsm_core::HEADER_LEN]);
        result
    }

    /// COCONUT `core_pvalidate_one`: reserved bits and page sizes (INVALID_PARAMETER), the
    /// range inside the guest's memory and outside the SVSM's (`valid_phys_region`:
    /// INVALID_ADDRESS), then PVALIDATE's own answers as protocol errors: a size mismatch with
    /// the RMP (6) and "unchanged" (0x10, unless ignore-CF).
    fn pvalidate_one(&mut self, raw: u64) -> Result<(), CallResult> {
        let entry = PvalidateEntry::decode(raw).map_err(|_| CallResult::InvalidParameter)?;
        let len = if entry.huge { HUGE } else { PAGE };
        let end = entry.gpa.checked_add(len).ok_or(CallResult::InvalidAddress)?;
        let svsm = self.info.base..self.info.base + self.info.size;
        if entry.gpa < self.ram.start || end > self.ram.end || (entry.gpa < svsm.end && svsm.start < end) {
            return Err(CallResult::InvalidAddress);
        }
        let ignore_cf = raw & 0b1000 != 0;
        let mismatch = if entry.huge {
            self.small.range(entry.gpa..end).next().is_some()
        } else {
            self.huge.contains(&(entry.gpa & !(HUGE - 1)))
        };
        if mismatch {
            return Err(CallResult::Protocol(svsm_core::FAIL_SIZEMISMATCH));
        }
        let set = if entry.huge { &mut self.huge } else { &mut self.small };
        let changed = if entry.validate { set.insert(entry.gpa) } else { set.remove(&entry.gpa) };
        if !changed && !ignore_cf {
            return Err(CallResult::Protocol(FAIL_UNCHANGED));
        }
        Ok(())
    }
}

/// COCONUT `core_query_protocol`: `(max << 32) | min` for a supported protocol and version,
/// else 0.
fn query_protocol(rcx: u64) -> u64 {
    let (protocol, version) = ((rcx >> 32) as u32, rcx as u32);
    match protocol {
        protocol::CORE | protocol::ATTEST if version == VERSION => (u64::from(VERSION) << 32) | u64::from(VERSION),
        _ => 0,
    }
}

/// The services manifest of an SVSM with no services compiled in: the GUID table's header
/// alone (COCONUT `GuidTable::to_vec`).
pub fn services_manifest() -> Vec<u8> {
    let mut manifest = SERVICES_MANIFEST_GUID.to_vec();
    manifest.extend(24u32.to_le_bytes());
    manifest.extend(0u32.to_le_bytes());
    manifest
}

/// COCONUT `attest_multiple_services` with `AttestServicesOp`'s checks: reserved bytes clear
/// and a 64-byte nonce within one page (INVALID_PARAMETER), page-aligned report and manifest
/// buffers; the needed lengths in RCX (manifest), RDX (certificates) and R8 (report), and
/// INVALID_PARAMETER when a buffer is too small (`write_attestation_report`).
fn attest_services(psp: &SimPsp, regs: &mut Registers, memory: &mut GuestMemory<'_>) -> Result<(), CallResult> {
    let bytes = memory.read(regs.rcx, attest::SERVICES_LEN).ok_or(CallResult::InvalidParameter)?;
    let request = AttestRequest::parse(&bytes, ATTEST_SERVICES).map_err(|_| CallResult::InvalidParameter)?;
    if request.nonce.gpa % PAGE + attest::NONCE_LEN as u64 > PAGE {
        return Err(CallResult::InvalidParameter);
    }
    let nonce = memory.read(request.nonce.gpa, attest::NONCE_LEN).ok_or(CallResult::InvalidParameter)?;
    let mut nonce_bytes = [0u8; attest::NONCE_LEN];
    nonce_bytes.copy_from_slice(&nonce);
    let manifest = services_manifest();
    let report = psp.report(attest::report_data(&nonce_bytes, &manifest), 0);
    regs.rcx = manifest.len() as u64;
    regs.rdx = 0;
    regs.r8 = report.len() as u64;
    if manifest.len() > request.manifest.size as usize || report.len() > request.report.size as usize {
        return Err(CallResult::InvalidParameter);
    }
    if !memory.write(request.report.gpa, &report) || !memory.write(request.manifest.gpa, &manifest) {
        return Err(CallResult::InvalidAddress);
    }
    Ok(())
}

/// The guest pages an exchange carried: what the SVSM can read and write for this call.
struct GuestMemory<'a> {
    pages: &'a mut Vec<(u64, Vec<u8>)>,
}

impl GuestMemory<'_> {
    fn find(&self, gpa: u64, len: usize) -> Option<(usize, usize)> {
        self.pages.iter().enumerate().find_map(|(i, (start, bytes))| {
            let at = usize::try_from(gpa.checked_sub(*start)?).ok()?;
            (at.checked_add(len)? <= bytes.len()).then_some((i, at))
        })
    }

    fn read(&self, gpa: u64, len: usize) -> Option<Vec<u8>> {
        let (i, at) = self.find(gpa, len)?;
        Some(self.pages[i].1[at..at + len].to_vec())
    }

    fn write(&mut self, gpa: u64, data: &[u8]) -> bool {
        match self.find(gpa, data.len()) {
            Some((i, at)) => {
                self.pages[i].1[at..at + data.len()].copy_from_slice(data);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests;
