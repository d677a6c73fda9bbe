//! Intel TDX: the runtime as the firmware of a trust domain (TCB_L4: no TDVF/OVMF, no Linux).
//!
//! Start-up ([`init`], before anything performs I/O; the #VE handler [`ve`] is already in the
//! IDT): TDG.VP.INFO for the GPA width, hence the shared bit 1 << (GPAW − 1); accept the private
//! memory the launch did not add (heap and frame pool: TDG.MEM.PAGE.ACCEPT, 2 MiB with a 4 KiB
//! fallback); convert the shared pool with TDG.VP.VMCALL<MapGPA> and set the shared bit in its
//! page-directory entry. From then on port I/O goes through TDG.VP.VMCALL<Instruction.IO>
//! directly (`platform::port` asks [`active`]); CPUID, RDMSR and WRMSR that still trap are
//! served by the #VE handler.
//!
//! What the boot stub touches before Rust runs (boot scratch, page tables, the image with its
//! .bss and stack) is TDVF TEMP_MEM, added and accepted by the VMM before the TD starts
//! (`twi_linker::EARLY_RAM`, `twi_linker::tdvf::SECTIONS`).
//!
//! Attestation ([`HwTdx`], a [`TdxModule`]): TDG.MR.RTMR.EXTEND and TDG.MR.REPORT on private,
//! aligned buffers; TDG.VP.VMCALL<GetQuote> with the GHCI buffer in shared pages, polled.

pub mod instr;
pub mod ve;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use spin::Once;
use twi_attester::tdx::abi::{PageLevel, TdInfo, TdcallStatus, vmcall_status};
use twi_attester::tdx::getquote;
use twi_proto::msg::Platform;

use self::instr::{ExtendData, ReportBuffer, ReportData, VmcallError};
use super::boot::BootInfo;
use super::shared::{PAGE, Shared};
use crate::layout::{FRAMES, HEAP, SHARED_POOL};
use crate::session::{HostDoorbell, ModuleError, TdxModule};
use crate::tdx::{GET_QUOTE_BUFFER, TdxError};

/// The boot stub said this is a TD (set first thing in `init`): until [`ACTIVE`], a fault
/// must end the TD through ReportFatalError (printing would trap again).
static DETECTED: AtomicBool = AtomicBool::new(false);
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// 1 << (GPAW − 1) once `init` read TDG.VP.INFO; 0 otherwise (not a TD).
static SHARED_BIT: AtomicU64 = AtomicU64::new(0);
static INFO: Once<TdInfo> = Once::new();

/// True once TDVMCALL port I/O and the #VE handler are usable.
pub fn active() -> bool {
    ACTIVE.load(Ordering::Acquire)
}

/// True in a TD (from the first instruction of [`init`] on).
pub fn detected() -> bool {
    DETECTED.load(Ordering::Acquire)
}

/// True in a TD whose start-up has not finished: fatal paths must use ReportFatalError.
pub fn early() -> bool {
    DETECTED.load(Ordering::Acquire) && !active()
}

/// The shared bit under TDX, 0 otherwise.
pub fn shared_bit() -> u64 {
    SHARED_BIT.load(Ordering::Acquire)
}

/// TDG.VP.INFO as read at start-up.
pub fn info() -> Option<&'static TdInfo> {
    INFO.get()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TdxInitError {
    /// TDG.VP.INFO failed with this status.
    VpInfo(u64),
    /// TDG.VP.INFO reported a GPA width TDX does not define.
    Gpaw(u8),
    /// TDG.MEM.PAGE.ACCEPT of the page at `gpa` failed with `status`.
    Accept { gpa: u64, status: u64 },
    /// MapGPA of the shared pool failed.
    MapGpa(VmcallError),
}

impl TdxInitError {
    /// The ReportFatalError code (R12[31:0]): "TWI" in the top byte's place, then the reason.
    pub fn code(&self) -> u32 {
        FATAL_BASE
            | match self {
                Self::VpInfo(_) => 1,
                Self::Gpaw(_) => 2,
                Self::Accept { .. } => 3,
                Self::MapGpa(_) => 4,
            }
    }
}

/// ReportFatalError codes of the runtime: 0x5457_00xx.
pub const FATAL_BASE: u32 = 0x5457_0000;
pub const FATAL_GENERAL: u32 = FATAL_BASE | 0x10;
pub const FATAL_IO: u32 = FATAL_BASE | 0x11;
pub const FATAL_VE: u32 = FATAL_BASE | 0x12;

/// Brings the TD up (see the module documentation). Returns `Ok(false)` when this is not a TD.
pub fn init(boot: &BootInfo) -> Result<bool, TdxInitError> {
    if !boot.tdx {
        return Ok(false);
    }
    DETECTED.store(true, Ordering::Release);
    let info = instr::vp_info().map_err(TdxInitError::VpInfo)?;
    let shared = info.shared_bit().ok_or(TdxInitError::Gpaw(info.gpaw))?;
    INFO.call_once(|| info);

    for address in accepted_2m_pages() {
        accept_2m(address)?;
    }

    // The shared pool: never accepted (it was never private for us), mapped shared by the VMM
    // on MapGPA, and reached through the shared alias of the page tables.
    let pool = SHARED_POOL.start as u64;
    instr::map_gpa(pool | shared, (SHARED_POOL.end - SHARED_POOL.start) as u64).map_err(TdxInitError::MapGpa)?;
    super::boot::set_shared_pool_bit(shared);
    SHARED_BIT.store(shared, Ordering::Release);
    ACTIVE.store(true, Ordering::Release);
    Ok(true)
}

/// The 2 MiB pages the runtime accepts itself: the heap and the frame pool.
fn accepted_2m_pages() -> impl Iterator<Item = u64> {
    HEAP.step_by(0x20_0000).chain(FRAMES.step_by(0x20_0000)).map(|a| a as u64)
}
const _: () = assert!(HEAP.start.is_multiple_of(0x20_0000) && HEAP.end.is_multiple_of(0x20_0000));
const _: () = assert!(FRAMES.start.is_multiple_of(0x20_0000) && FRAMES.end.is_multiple_of(0x20_0000));

/// Busy / interrupted TDCALLs are retried this often.
const TDCALL_RETRIES: u32 = 16;

/// One page accepted at `level`: `Ok(true)` accepted (now or before), `Ok(false)` a size
/// mismatch (the Secure EPT maps it in 4 KiB pages).
fn accept(gpa: u64, level: PageLevel) -> Result<bool, TdxInitError> {
    for _ in 0..TDCALL_RETRIES {
        let status = instr::page_accept(gpa, level);
        match TdcallStatus::decode(status) {
            // Already accepted: private memory holds only what the TD wrote (or zeroes), so
            // there is nothing of the host's to distrust in it.
            TdcallStatus::Success | TdcallStatus::AlreadyAccepted => return Ok(true),
            TdcallStatus::SizeMismatch if level == PageLevel::Size2M => return Ok(false),
            TdcallStatus::Busy | TdcallStatus::Interrupted => continue,
            _ => return Err(TdxInitError::Accept { gpa, status }),
        }
    }
    Err(TdxInitError::Accept { gpa, status: twi_attester::tdx::abi::status::OPERAND_BUSY })
}

/// Accepts a 2 MiB page, falling back to its 512 4 KiB pages on a size mismatch.
fn accept_2m(address: u64) -> Result<(), TdxInitError> {
    if accept(address, PageLevel::Size2M)? {
        return Ok(());
    }
    for page in (address..address + 0x20_0000).step_by(PAGE) {
        accept(page, PageLevel::Size4K)?;
    }
    Ok(())
}

/// Port I/O through TDG.VP.VMCALL<Instruction.IO>. A failure cannot be printed (printing is
/// port I/O): the TD ends through ReportFatalError.
pub fn io_read(port: u16, size: u8) -> u32 {
    instr::io_read(port, size).unwrap_or_else(|_| instr::report_fatal_error(FATAL_IO))
}

pub fn io_write(port: u16, size: u8, value: u32) {
    if instr::io_write(port, size, value).is_err() {
        instr::report_fatal_error(FATAL_IO)
    }
}

/// Ends the TD: ReportFatalError with `code`, then HLT for good.
pub fn fatal(code: u32) -> ! {
    instr::report_fatal_error(code)
}

/// How long to wait between two polls of an in-flight GetQuote; with
/// `crate::tdx::MAX_QUOTE_POLLS` (1000) the runtime waits up to 20 s for the quoting service.
pub const QUOTE_POLL_DELAY_MS: u64 = 20;

/// How often, and how far apart, a GetQuote the VMM answers with RETRY is submitted again.
const SUBMIT_RETRIES: u32 = 50;
const SUBMIT_RETRY_DELAY_MS: u64 = 100;

/// The shared pages of the GetQuote buffer: the whole private buffer, whole pages.
const QUOTE_PAGES: usize = GET_QUOTE_BUFFER.div_ceil(PAGE);
const _: () = assert!(QUOTE_PAGES * PAGE <= getquote::MAX_BUFFER && QUOTE_PAGES * PAGE >= GET_QUOTE_BUFFER);

/// The TDX module and the VMM's quoting service on hardware.
#[derive(Debug)]
pub struct HwTdx {
    quote: Shared,
}

impl HwTdx {
    /// `None` when the shared pool has no room for the GetQuote buffer.
    pub fn new() -> Option<Self> {
        if !active() {
            return None;
        }
        Some(Self { quote: Shared::alloc(QUOTE_PAGES)? })
    }
}

/// Runs a TDCALL whose busy / interrupted statuses mean "call again".
fn retrying(mut call: impl FnMut() -> u64) -> Result<(), TdxError> {
    for _ in 0..TDCALL_RETRIES {
        let status = call();
        match TdcallStatus::decode(status) {
            TdcallStatus::Success => return Ok(()),
            TdcallStatus::Busy | TdcallStatus::Interrupted => continue,
            _ => return Err(TdxError::Doorbell(status)),
        }
    }
    Err(TdxError::Doorbell(twi_attester::tdx::abi::status::OPERAND_BUSY))
}

fn status_of(e: VmcallError) -> u64 {
    match e {
        VmcallError::Tdcall(status) | VmcallError::Vmm(status) => status,
    }
}

impl TdxModule for HwTdx {
    fn platform(&self) -> Platform {
        Platform::Tdx
    }

    fn rtmr_extend(&mut self, _: &mut dyn HostDoorbell, rtmr: u8, digest: &[u8; 48]) -> Result<(), ModuleError> {
        let data = Box::new(ExtendData(*digest));
        retrying(|| instr::rtmr_extend(rtmr, &data)).map_err(ModuleError::Tdx)
    }

    fn report(&mut self, _: &mut dyn HostDoorbell, report_data: &[u8; 64]) -> Result<Vec<u8>, ModuleError> {
        let mut report = Box::new(ReportBuffer([0; 1024]));
        let data = Box::new(ReportData(*report_data));
        retrying(|| instr::mr_report(&mut report, &data)).map_err(ModuleError::Tdx)?;
        Ok(report.0.to_vec())
    }

    fn submit_quote(&mut self, _: &mut dyn HostDoorbell, buffer: &[u8], request_len: usize) -> Result<(), ModuleError> {
        let request = buffer.get(..request_len).ok_or(TdxError::Malformed("GetQuote request length"))?;
        // The request is written once; the rest of the shared buffer is zeroed (room for the
        // quote).
        self.quote.write(request);
        // RETRY: the VMM has too many GetQuote requests in flight (QEMU allows 16): ask again
        // later with the same buffer, a bounded number of times.
        for _ in 0..SUBMIT_RETRIES {
            match instr::get_quote(self.quote.gpa(), self.quote.len() as u64) {
                Err(VmcallError::Vmm(vmcall_status::RETRY)) => super::time::delay_ms(SUBMIT_RETRY_DELAY_MS),
                result => return result.map_err(|e| ModuleError::Tdx(TdxError::Doorbell(status_of(e)))),
            }
        }
        Err(ModuleError::Tdx(TdxError::Doorbell(vmcall_status::RETRY)))
    }

    fn poll_quote(&mut self, _: &mut dyn HostDoorbell, out: &mut [u8]) -> Result<usize, ModuleError> {
        // The header first: while the status is in flight nothing else is worth copying.
        let mut header = [0u8; getquote::HEADER_SIZE];
        self.quote.read(&mut header);
        let status = getquote::Header::parse(&header).status;
        if status == getquote::status::IN_FLIGHT {
            let n = header.len().min(out.len());
            out[..n].copy_from_slice(&header[..n]);
            return Ok(n);
        }
        // Done: the whole buffer, copied once into private memory, header included (the status
        // is read before the data it announces); only this copy is parsed.
        let n = out.len().min(self.quote.len());
        self.quote.read(&mut out[..n]);
        Ok(n)
    }

    fn pause(&mut self) {
        super::time::delay_ms(QUOTE_POLL_DELAY_MS);
    }
}
