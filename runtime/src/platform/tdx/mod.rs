//! Intel TDX: the runtime as the firmware of a trust domain (TCB_L4: no TDVF/OVMF, no Linux).
//!
//! Start-up ([`init`], before anything performs I/O; the #VE handler [`ve`] is already in the
//! IDT): TDG.VP.INFO for the GPA width, hence the shared bit 1 << (GPAW − 1); accept the private
//! memory the launch did not add (heap and frame pool: TDG.MEM.PAGE.ACCEPT, 2 MiB with a 4 KiB
//! fallback); convert the shared pool with TDG.VP.VMCALL<MapGPA> and set the shared bit in its
//! page-directory entry. From then on the platform's HAL ([`HAL`]) sends port I/O through
//! TDG.VP.VMCALL<Instruction.IO> directly; CPUID, RDMSR and WRMSR that still trap are served by
//! the #VE handler.
//!
//! What the boot stub touches before Rust runs (boot scratch, page tables, the image with its
//! .bss and stack) is TDVF TEMP_MEM, added and accepted by the VMM before the TD starts
//! (`twi_linker::EARLY_RAM`, `twi_linker::tdvf::SECTIONS`).
//!
//! Attestation ([`HwTdx`]): TDG.MR.RTMR.EXTEND and TDG.MR.REPORT on private, aligned buffers;
//! TDG.VP.VMCALL<GetQuote> with the GHCI buffer in shared pages, polled. The TEE layer's hardware backend adapts
//! it to the TDX backend's module trait.

pub mod instr;
pub mod ve;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::arch::x86_64::CpuidResult;
use core::ops::Range;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use spin::Once;
use twi_attester::tdx::abi::{PageLevel, ReportFatalError, TdInfo, TdcallStatus, vmcall_status};
use twi_attester::tdx::getquote;

use self::instr::{ExtendData, ReportBuffer, ReportData, VmcallError};
use super::hal::{AcceptError, ExitCode, Hal};
use super::shared::{PAGE, Shared};
use crate::layout::{FRAMES, HEAP, SHARED_POOL};

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
    /// Why the TD ends, for ReportFatalError.
    pub fn reason(&self) -> FatalReason {
        match self {
            Self::VpInfo(_) => FatalReason::VpInfo,
            Self::Gpaw(_) => FatalReason::Gpaw,
            Self::Accept { .. } => FatalReason::Accept,
            Self::MapGpa(_) => FatalReason::MapGpa,
        }
    }
}

/// Why the runtime ends a TD through TDG.VP.VMCALL<ReportFatalError>: the code goes in bits 31:16
/// of R12 (bits 15:0 stay zero: QEMU refuses anything else and would pause the TD instead of
/// recording a panic), the text in the message registers (`twi_attester::tdx::abi::fatal`).
/// 0x54 ("T") in the top byte marks TWI's codes in the host's log:
///
/// | code (R12) | reason | text |
/// |------------|--------|------|
/// | 0x5401_0000 | TDG.VP.INFO failed | `TWI: TDG.VP.INFO failed` |
/// | 0x5402_0000 | GPA width not 48 or 52 | `TWI: GPA width is not 48 or 52` |
/// | 0x5403_0000 | TDG.MEM.PAGE.ACCEPT of the heap or frames failed | `TWI: TDG.MEM.PAGE.ACCEPT failed` |
/// | 0x5404_0000 | MapGPA of the shared pool failed | `TWI: MapGPA of the shared pool failed` |
/// | 0x5410_0000 | the runtime failed (the console says why) | `TWI: fatal error, see the console` |
/// | 0x5411_0000 | a TDVMCALL for port I/O or an MSR failed | `TWI: TDVMCALL I/O failed` |
/// | 0x5412_0000 | a #VE the runtime cannot serve (before start-up, or no VE info) | `TWI: unhandled #VE` |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum FatalReason {
    VpInfo = 0x5401,
    Gpaw = 0x5402,
    Accept = 0x5403,
    MapGpa = 0x5404,
    General = 0x5410,
    Io = 0x5411,
    Ve = 0x5412,
}

impl FatalReason {
    /// The message the host logs with the code.
    pub fn text(self) -> &'static str {
        match self {
            Self::VpInfo => "TWI: TDG.VP.INFO failed",
            Self::Gpaw => "TWI: GPA width is not 48 or 52",
            Self::Accept => "TWI: TDG.MEM.PAGE.ACCEPT failed",
            Self::MapGpa => "TWI: MapGPA of the shared pool failed",
            Self::General => "TWI: fatal error, see the console",
            Self::Io => "TWI: TDVMCALL I/O failed",
            Self::Ve => "TWI: unhandled #VE",
        }
    }
}

/// Brings the TD up (see the module documentation). Only called in a TD (the boot stub saw the
/// CPU start in protected mode).
pub fn init() -> Result<(), TdxInitError> {
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
    Ok(())
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

/// Ends the TD: ReportFatalError with `reason`, then HLT for good.
pub fn fatal(reason: FatalReason) -> ! {
    instr::report_fatal_error(&ReportFatalError::new(reason as u16, reason.text().as_bytes()))
}

/// The TDX platform, as the HAL presents it.
#[derive(Debug)]
pub struct Tdx;

/// The HAL of a trust domain.
pub static HAL: Tdx = Tdx;

impl Hal for Tdx {
    fn name(&self) -> &'static str {
        "Intel TDX"
    }

    /// A failure cannot be printed (printing is port I/O): the TD ends through ReportFatalError.
    fn io_read(&self, port: u16, size: u8) -> u32 {
        instr::io_read(port, size).unwrap_or_else(|_| fatal(FatalReason::Io))
    }

    fn io_write(&self, port: u16, size: u8, value: u32) {
        if instr::io_write(port, size, value).is_err() {
            fatal(FatalReason::Io)
        }
    }

    /// CPUID as the TDX module virtualises it; leaves it leaves to the VMM raise #VE, whose
    /// handler asks the VMM (untrusted values).
    fn cpuid(&self, leaf: u32, subleaf: u32) -> CpuidResult {
        core::arch::x86_64::__cpuid_count(leaf, subleaf)
    }

    fn rdmsr(&self, msr: u32) -> u64 {
        instr::rdmsr(msr).unwrap_or_else(|_| fatal(FatalReason::Io))
    }

    fn wrmsr(&self, msr: u32, value: u64) {
        if instr::wrmsr(msr, value).is_err() {
            fatal(FatalReason::Io)
        }
    }

    fn shared_bit(&self) -> u64 {
        shared_bit()
    }

    fn accept(&self, range: Range<u64>) -> Result<(), AcceptError> {
        for address in (range.start..range.end).step_by(0x20_0000) {
            accept_2m(address).map_err(|e| AcceptError {
                address: if let TdxInitError::Accept { gpa, .. } = e { gpa } else { address },
                reason: "TDG.MEM.PAGE.ACCEPT",
            })?;
        }
        Ok(())
    }

    fn can_print(&self) -> bool {
        active()
    }

    fn terminate(&self, code: ExitCode) -> ! {
        if code == ExitCode::Failure {
            // No debug-exit device: tell the VMM why the TD stops.
            fatal(FatalReason::General)
        }
        self.halt()
    }

    /// HLT in a TD raises #VE: ask the VMM to halt the vCPU instead.
    fn halt(&self) -> ! {
        x86_64::instructions::interrupts::disable();
        loop {
            let _ = instr::hlt();
            core::hint::spin_loop();
        }
    }

    fn exit(&self, code: ExitCode) -> ! {
        if early() {
            fatal(FatalReason::General) // no port I/O before TDVMCALL I/O is up
        }
        self.io_write(super::hal::DEBUG_EXIT_PORT, 4, code as u32);
        self.terminate(code)
    }
}

/// How often, and how far apart, a GetQuote the VMM answers with RETRY is submitted again.
const SUBMIT_RETRIES: u32 = 50;
const SUBMIT_RETRY_DELAY_MS: u64 = 100;

/// Why a TDX module or VMM call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TdxCallError {
    /// The TDCALL completion status (TDX Module ABI) or the TDG.VP.VMCALL status (GHCI).
    Status(u64),
    /// The caller's request does not fit the GetQuote buffer.
    RequestTooLong,
}

/// The TDX module and the VMM's quoting service on hardware.
#[derive(Debug)]
pub struct HwTdx {
    quote: Shared,
}

impl HwTdx {
    /// A GetQuote buffer of `buffer_len` bytes (whole pages) in the shared pool; `None` when this
    /// is not a TD that is up, or the pool has no room.
    pub fn new(buffer_len: usize) -> Option<Self> {
        if !active() {
            return None;
        }
        let pages = buffer_len.div_ceil(PAGE);
        if pages * PAGE > getquote::MAX_BUFFER {
            return None;
        }
        Some(Self { quote: Shared::alloc(pages)? })
    }

    /// TDG.MR.RTMR.EXTEND of `digest` into RTMR `rtmr`.
    pub fn rtmr_extend(&mut self, rtmr: u8, digest: &[u8; 48]) -> Result<(), TdxCallError> {
        let data = Box::new(ExtendData(*digest));
        retrying(|| instr::rtmr_extend(rtmr, &data))
    }

    /// TDG.MR.REPORT over `report_data`: the TDREPORT, a private copy.
    pub fn report(&mut self, report_data: &[u8; 64]) -> Result<Vec<u8>, TdxCallError> {
        let mut report = Box::new(ReportBuffer([0; 1024]));
        let data = Box::new(ReportData(*report_data));
        retrying(|| instr::mr_report(&mut report, &data))?;
        Ok(report.0.to_vec())
    }

    /// Writes the request (GHCI header and TDREPORT) once into the shared buffer, zeroes the
    /// rest (room for the quote), and asks the VMM for the quote.
    pub fn submit_quote(&mut self, request: &[u8]) -> Result<(), TdxCallError> {
        if request.len() > self.quote.len() {
            return Err(TdxCallError::RequestTooLong);
        }
        self.quote.write(request);
        // RETRY: the VMM has too many GetQuote requests in flight (QEMU allows 16): ask again
        // later with the same buffer, a bounded number of times.
        for _ in 0..SUBMIT_RETRIES {
            match instr::get_quote(self.quote.gpa(), self.quote.len() as u64) {
                Err(VmcallError::Vmm(vmcall_status::RETRY)) => {
                    super::time::delay_ms(SUBMIT_RETRY_DELAY_MS);
                }
                result => return result.map_err(|e| TdxCallError::Status(status_of(e))),
            }
        }
        Err(TdxCallError::Status(vmcall_status::RETRY))
    }

    /// One look at the GetQuote buffer, copied into `out` (private); returns the bytes copied:
    /// the header only while the status is in flight, else the whole buffer (header included,
    /// read before the data it announces). Only the copy is parsed.
    pub fn poll_quote(&mut self, out: &mut [u8]) -> usize {
        let mut header = [0u8; getquote::HEADER_SIZE];
        self.quote.read(&mut header);
        let status = getquote::Header::parse(&header).status;
        if status == getquote::status::IN_FLIGHT {
            let n = header.len().min(out.len());
            out[..n].copy_from_slice(&header[..n]);
            return n;
        }
        let n = out.len().min(self.quote.len());
        self.quote.read(&mut out[..n]);
        n
    }

    /// Waits about `ms` milliseconds between two polls of an in-flight GetQuote; returns the
    /// milliseconds the TSC says passed.
    pub fn pause(&mut self, ms: u64) -> u64 {
        super::time::delay_ms(ms)
    }
}

/// Runs a TDCALL whose busy / interrupted statuses mean "call again".
fn retrying(mut call: impl FnMut() -> u64) -> Result<(), TdxCallError> {
    for _ in 0..TDCALL_RETRIES {
        let status = call();
        match TdcallStatus::decode(status) {
            TdcallStatus::Success => return Ok(()),
            TdcallStatus::Busy | TdcallStatus::Interrupted => continue,
            _ => return Err(TdxCallError::Status(status)),
        }
    }
    Err(TdxCallError::Status(twi_attester::tdx::abi::status::OPERAND_BUSY))
}

fn status_of(e: VmcallError) -> u64 {
    match e {
        VmcallError::Tdcall(status) | VmcallError::Vmm(status) => status,
    }
}
