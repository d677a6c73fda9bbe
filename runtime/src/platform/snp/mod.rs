//! SEV-SNP: the runtime as the firmware of an SNP guest (TCB_L4: no OVMF, no paravisor).
//!
//! Start-up ([`init`], before anything performs I/O): negotiate the GHCB protocol with the MSR
//! protocol, convert the shared pool to shared, register the GHCB, then validate the memory the
//! launch did not pre-validate (heap and frame pool). From then on the platform's HAL ([`HAL`])
//! sends port I/O and MSR accesses through the GHCB directly, answers CPUID from a private copy
//! of the CPUID page, and anything else that traps is served by the #VC handler ([`vc`]).
//!
//! Under the simulator (plain QEMU) none of this runs: SEV_STATUS reads 0.

pub mod ghcb;
pub mod instr;
pub mod svsm;
pub mod vc;

use core::arch::x86_64::CpuidResult as CpuidRegisters;
use core::ops::Range;
use core::sync::atomic::{AtomicBool, Ordering};

use spin::{Mutex, Once};
use twi_attester::snp::cpuid_page::{self, CpuidResult};
use twi_attester::snp::ghcb::{GuestRequestResult, msr_protocol};

use self::ghcb::{Ghcb, GhcbError};
use self::instr::{PageSize, PvalidateResult, msr_protocol as exchange, pvalidate};
use super::boot::BootInfo;
use super::hal::{AcceptError, ExitCode, Hal};
use super::shared::{PAGE, Shared};
use twi_attester::snp::rmp::{self, RmpSize, Vmpl0Probe};

use crate::layout::{BOOT_SCRATCH, FRAMES, HEAP, SHARED_POOL, SNP_CPUID_PAGE};

/// SEV-SNP was detected (set first thing in `init`): from then on, until [`ACTIVE`], any fault
/// must terminate through the MSR protocol instead of printing (printing would trap again).
static DETECTED: AtomicBool = AtomicBool::new(false);
static ACTIVE: AtomicBool = AtomicBool::new(false);
static GHCB: Mutex<Option<Ghcb>> = Mutex::new(None);
/// A private copy of the PSP-checked CPUID page, taken once at start-up.
static CPUID_PAGE: Once<[u8; cpuid_page::PAGE_SIZE]> = Once::new();
/// The guest-request pages (request, response, certificate buffer), allocated once.
static REQUEST_PAGES: Mutex<Option<RequestPages>> = Mutex::new(None);

#[derive(Debug)]
struct RequestPages {
    request: Shared,
    response: Shared,
    certificates: Shared,
}

/// The certificate buffer offered to the extended guest request: as much as the runtime can
/// forward with its evidence.
const CERTIFICATE_PAGES: usize = twi_proto::msg::MAX_CERT_TABLE / PAGE;

/// True once the GHCB is up: port I/O, CPUID and MSRs go through it.
pub fn active() -> bool {
    ACTIVE.load(Ordering::Acquire)
}

/// True when this is an SEV-SNP guest whose GHCB is not (yet) usable: fatal paths must call
/// [`terminate`] directly, since console output would itself trap.
pub fn early() -> bool {
    DETECTED.load(Ordering::Acquire) && !active()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnpInitError {
    /// SEV_INFO: the hypervisor does not speak GHCB protocol version 2.
    Protocol {
        min: u16,
        max: u16,
    },
    /// The hypervisor's C-bit position differs from the CPUID page's.
    CBitMismatch {
        hypervisor: u8,
        cpuid_page: u32,
    },
    /// The hypervisor does not advertise SEV-SNP support.
    NoSnpFeature,
    /// A page-state change of the page at this address failed.
    PageStateChange(u64),
    /// The hypervisor did not register the GHCB.
    GhcbRegistration,
    /// PVALIDATE failed for the page at this address.
    Pvalidate(u64),
    /// The runtime is not running at VMPL0 (an SVSM or paravisor sits below it), so VMPCK0
    /// and VMPL0 reports are not its to use.
    NotVmpl0,
    /// The VMPL0 probe (RMPADJUST) failed with this code at both page sizes.
    VmplProbe(u32),
    /// Not at VMPL0, and the secrets page describes no usable SVSM.
    NoSvsm(twi_attester::snp::secrets::SvsmInfoError),
    /// An SVSM call (validation through SVSM_CORE_PVALIDATE) failed.
    Svsm(svsm::SvsmCallError),
    Ghcb(GhcbError),
}

/// Brings up the GHCB and validates the runtime's memory. Only called in an SEV-SNP guest
/// (SEV_STATUS, as the boot stub read it, says so).
pub fn init(boot: &BootInfo) -> Result<(), SnpInitError> {
    DETECTED.store(true, Ordering::Release);
    CPUID_PAGE.call_once(|| {
        let mut copy = [0u8; cpuid_page::PAGE_SIZE];
        // SAFETY: the layout reserves this identity-mapped page for the CPUID page, which the
        // PSP validated and populated at launch (SEV metadata); it is private memory and 4 KiB.
        unsafe { core::ptr::copy_nonoverlapping(SNP_CPUID_PAGE as usize as *const u8, copy.as_mut_ptr(), copy.len()) };
        copy
    });

    let info = msr_protocol::parse_sev_info(exchange(msr_protocol::SEV_INFO_REQUEST))
        .ok_or(SnpInitError::Protocol { min: 0, max: 0 })?;
    if !(info.min_version..=info.max_version).contains(&twi_attester::snp::ghcb::PROTOCOL_VERSION) {
        return Err(SnpInitError::Protocol { min: info.min_version, max: info.max_version });
    }
    if u32::from(info.c_bit) != boot.c_bit {
        return Err(SnpInitError::CBitMismatch { hypervisor: info.c_bit, cpuid_page: boot.c_bit });
    }
    let features = msr_protocol::hv_features(exchange(msr_protocol::HV_FEATURES_REQUEST)).unwrap_or(0);
    if features & msr_protocol::HV_FEATURE_SNP == 0 {
        return Err(SnpInitError::NoSnpFeature);
    }

    // The shared pool: never validated (not in the launch's pre-validated ranges), so only a
    // page-state change to shared is needed; the boot page tables map it without the C-bit.
    for address in SHARED_POOL.step_by(PAGE) {
        let gfn = address as u64 >> 12;
        let response = exchange(msr_protocol::page_state_change(gfn, msr_protocol::PSC_SHARED));
        if msr_protocol::psc_error(response) != Some(0) {
            return Err(SnpInitError::PageStateChange(address as u64));
        }
    }
    let page = Shared::alloc(1).ok_or(SnpInitError::GhcbRegistration)?;
    let gfn = page.gpa() >> 12;
    if !msr_protocol::ghcb_registered(exchange(msr_protocol::register_ghcb(gfn)), gfn) {
        return Err(SnpInitError::GhcbRegistration);
    }
    let mut ghcb = Ghcb::new(page);
    instr::write_ghcb_msr(ghcb.gpa());
    // The secrets page's VMPCK0, the report's VMPL and PVALIDATE itself assume VMPL0: check it
    // before validating anything (as Linux's enforce_vmpl0 does). Below VMPL0, an SVSM must be
    // described in the secrets page: it validates memory and the runtime uses its own VMPL's
    // VMPCK.
    match probe_vmpl0() {
        Err(SnpInitError::NotVmpl0) => {
            let info = super::launch::svsm_info().map_err(SnpInitError::NoSvsm)?;
            svsm::install(info).map_err(SnpInitError::Svsm)?;
        }
        other => other?,
    }

    // Heap and frame pool: assign as private (2 MiB entries), then PVALIDATE.
    let mut entries = [(0u64, 0u64, false); VALIDATED_2M_PAGES];
    for (entry, address) in entries.iter_mut().zip(validated_2m_pages()) {
        *entry = (address >> 12, msr_protocol::PSC_PRIVATE, true);
    }
    ghcb.page_state_change(&entries).map_err(SnpInitError::Ghcb)?;
    for address in validated_2m_pages() {
        validate_2m(address, ghcb.gpa())?;
    }
    let request = Shared::alloc(1).ok_or(SnpInitError::GhcbRegistration)?;
    let response = Shared::alloc(1).ok_or(SnpInitError::GhcbRegistration)?;
    let certificates = Shared::alloc(CERTIFICATE_PAGES).ok_or(SnpInitError::GhcbRegistration)?;
    *REQUEST_PAGES.lock() = Some(RequestPages { request, response, certificates });
    *GHCB.lock() = Some(ghcb);
    ACTIVE.store(true, Ordering::Release);
    Ok(())
}

/// Checks that the runtime runs at VMPL0: RMPADJUST on the boot scratch page, which the launch
/// validated as a 4 KiB page (SEV metadata SNP_SEC_MEM), retried at 2 MiB on a size mismatch
/// (`twi_attester::snp::rmp`: a mismatch says nothing about the VMPL).
fn probe_vmpl0() -> Result<(), SnpInitError> {
    let (mut size, mut retried) = (RmpSize::Size4K, false);
    loop {
        let rax = instr::rmpadjust_probe_vmpl1(rmp::probe_address(u64::from(BOOT_SCRATCH), size), size);
        match rmp::vmpl0_probe(rax, size, retried) {
            Vmpl0Probe::Vmpl0 => return Ok(()),
            Vmpl0Probe::NotVmpl0 => return Err(SnpInitError::NotVmpl0),
            Vmpl0Probe::Retry(other) => (size, retried) = (other, true),
            Vmpl0Probe::Failed(code) => return Err(SnpInitError::VmplProbe(code)),
        }
    }
}

/// The 2 MiB pages the runtime validates itself: the heap and the frame pool.
const VALIDATED_2M_PAGES: usize = (HEAP.end - HEAP.start + FRAMES.end - FRAMES.start) / 0x20_0000;
const _: () = assert!(HEAP.start.is_multiple_of(0x20_0000) && HEAP.end.is_multiple_of(0x20_0000));
const _: () = assert!(FRAMES.start.is_multiple_of(0x20_0000) && FRAMES.end.is_multiple_of(0x20_0000));

fn validated_2m_pages() -> impl Iterator<Item = u64> {
    HEAP.step_by(0x20_0000).chain(FRAMES.step_by(0x20_0000)).map(|a| a as u64)
}

/// Validates a 2 MiB page — PVALIDATE at VMPL0, SVSM_CORE_PVALIDATE below an SVSM — falling
/// back to its 512 4 KiB pages when the RMP holds them as such.
fn validate_2m(address: u64, ghcb_gpa: u64) -> Result<(), SnpInitError> {
    if svsm::active() {
        return svsm::validate_2m(address, ghcb_gpa).map_err(SnpInitError::Svsm);
    }
    match pvalidate(address, PageSize::Size2M, true) {
        PvalidateResult::Changed => Ok(()),
        PvalidateResult::SizeMismatch => {
            for page in (address..address + 0x20_0000).step_by(PAGE) {
                if pvalidate(page, PageSize::Size4K, true) != PvalidateResult::Changed {
                    return Err(SnpInitError::Pvalidate(page));
                }
            }
            Ok(())
        }
        // Already validated means the hypervisor or something before us validated it: the
        // contents are not known to be ours. Refuse rather than trust it.
        _ => Err(SnpInitError::Pvalidate(address)),
    }
}

/// SVSM_ATTEST_SERVICES through the SVSM below which the runtime runs (see
/// [`svsm::attest_services`]); `None` at VMPL0.
pub fn svsm_attest_services(nonce: &[u8; 64]) -> Option<Result<svsm::Attestation, svsm::SvsmCallError>> {
    if !svsm::active() {
        return None;
    }
    let ghcb_gpa = with_ghcb(|g| Ok(g.gpa())).ok()?;
    Some(svsm::attest_services(nonce, ghcb_gpa))
}

/// Runs `f` with the GHCB. Fails (instead of deadlocking) if the GHCB is already in use, which
/// would mean a #VC inside GHCB code: a runtime bug.
fn with_ghcb<T>(f: impl FnOnce(&mut Ghcb) -> Result<T, GhcbError>) -> Result<T, GhcbError> {
    let mut guard = GHCB.try_lock().ok_or(GhcbError::Unavailable)?;
    let ghcb = guard.as_mut().ok_or(GhcbError::Unavailable)?;
    f(ghcb)
}

/// CPUID from the private copy of the CPUID page; leaves it lacks read as zero (features
/// absent), so a hypervisor cannot add features the PSP did not check.
pub fn cpuid(leaf: u32, subleaf: u32) -> CpuidResult {
    CPUID_PAGE.get().and_then(|page| cpuid_page::lookup(page, leaf, subleaf)).unwrap_or(CpuidResult {
        eax: 0,
        ebx: 0,
        ecx: 0,
        edx: 0,
    })
}

/// The SEV-SNP platform, as the HAL presents it.
#[derive(Debug)]
pub struct Snp;

/// The HAL of an SEV-SNP guest: at VMPL0, or below an SVSM (then memory is validated through
/// the SVSM's core protocol; everything else is the same).
pub static HAL: Snp = Snp;

impl Hal for Snp {
    fn name(&self) -> &'static str {
        if svsm::active() { "SEV-SNP below an SVSM" } else { "SEV-SNP" }
    }

    fn io_read(&self, port: u16, size: u8) -> u32 {
        with_ghcb(|g| g.io_read(port, size)).unwrap_or_else(|_| terminate(TerminateReason::Ghcb))
    }

    fn io_write(&self, port: u16, size: u8, value: u32) {
        if with_ghcb(|g| g.io_write(port, size, value)).is_err() {
            terminate(TerminateReason::Ghcb);
        }
    }

    fn cpuid(&self, leaf: u32, subleaf: u32) -> CpuidRegisters {
        let r = cpuid(leaf, subleaf);
        CpuidRegisters { eax: r.eax, ebx: r.ebx, ecx: r.ecx, edx: r.edx }
    }

    fn rdmsr(&self, msr: u32) -> u64 {
        with_ghcb(|g| g.rdmsr(msr)).unwrap_or_else(|_| terminate(TerminateReason::Ghcb))
    }

    fn wrmsr(&self, msr: u32, value: u64) {
        if with_ghcb(|g| g.wrmsr(msr, value)).is_err() {
            terminate(TerminateReason::Ghcb);
        }
    }

    fn shared_bit(&self) -> u64 {
        0 // the C-bit is cleared in the page tables; the GPA is the address itself
    }

    fn accept(&self, range: Range<u64>) -> Result<(), AcceptError> {
        for address in (range.start..range.end).step_by(0x20_0000) {
            let entry = [(address >> 12, msr_protocol::PSC_PRIVATE, true)];
            with_ghcb(|g| g.page_state_change(&entry))
                .map_err(|_| AcceptError { address, reason: "page-state change to private" })?;
            let ghcb_gpa = with_ghcb(|g| Ok(g.gpa())).map_err(|_| AcceptError { address, reason: "GHCB" })?;
            validate_2m(address, ghcb_gpa).map_err(|e| AcceptError {
                address: if let SnpInitError::Pvalidate(page) = e { page } else { address },
                reason: if svsm::active() { "SVSM_CORE_PVALIDATE" } else { "PVALIDATE" },
            })?;
        }
        Ok(())
    }

    fn can_print(&self) -> bool {
        active()
    }

    fn terminate(&self, code: ExitCode) -> ! {
        terminate(match code {
            ExitCode::Success => TerminateReason::Success,
            ExitCode::Failure => TerminateReason::Fatal,
        })
    }

    fn halt(&self) -> ! {
        x86_64::instructions::interrupts::disable();
        loop {
            x86_64::instructions::hlt();
        }
    }

    fn exit(&self, code: ExitCode) -> ! {
        if early() {
            terminate(TerminateReason::Fatal) // no port I/O before the GHCB is up
        }
        self.io_write(super::hal::DEBUG_EXIT_PORT, 4, code as u32);
        // No debug-exit device (or it was ignored): ask the hypervisor to end the VM.
        self.terminate(code)
    }
}

const BUSY_RETRY_DELAY_MS: u64 = 2_000;
const BUSY_RETRIES: u32 = 30;

/// Which guest-request exit to take (GHCB specification, NAE events).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestExit {
    /// `SNP_GUEST_REQUEST`.
    Plain,
    /// `SNP_EXT_GUEST_REQUEST`: the host also fills the certificate pages.
    Extended,
}

/// The firmware's answer, copied once into private memory.
#[derive(Debug)]
pub struct GuestAnswer {
    /// The whole response page (the sealed answer and what follows it).
    pub response: alloc::vec::Vec<u8>,
    /// The certificate buffer of an extended request (unparsed).
    pub certificates: Option<alloc::vec::Vec<u8>>,
}

/// Why a guest request failed before the firmware's answer reached the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestRequestError {
    /// SW_EXITINFO2 of the exit: the hypervisor or the firmware refused.
    Refused(u64),
    /// The host answered BUSY for the whole retry budget.
    Busy,
    /// The host says the request's buffers are too small (SW_EXITINFO2 bit 32 on a plain
    /// request: nothing the runtime can fix by resending).
    InvalidLength,
    /// The GHCB or the request pages are not usable (not an SNP guest, or a runtime bug).
    Ghcb,
}

/// The SNP guest-request doorbell: copies the sealed request into the shared request page,
/// asks the firmware through the GHCB (resending while it reports busy), and copies the whole
/// response page (and, for the extended request, the certificate buffer) once into private
/// memory.
pub fn guest_request(sealed: &[u8], exit: RequestExit) -> Result<GuestAnswer, GuestRequestError> {
    let mut pages = REQUEST_PAGES.lock();
    let RequestPages { request, response, certificates } = pages.as_mut().ok_or(GuestRequestError::Ghcb)?;
    request.write(sealed);
    response.write(&[]);
    if exit == RequestExit::Extended {
        certificates.write(&[]);
    }
    let mut exit = exit;
    // BUSY is the host's rate limit: resend the same ciphertext every 2 s for up to 60 s (as
    // Linux's sev-guest driver does), never a re-sealed request.
    for _ in 0..=BUSY_RETRIES {
        let result = match exit {
            RequestExit::Plain => with_ghcb(|g| g.guest_request(request, response)),
            RequestExit::Extended => with_ghcb(|g| g.ext_guest_request(request, response, certificates)).map(|r| r.0),
        };
        match result.map_err(|_| GuestRequestError::Ghcb)? {
            GuestRequestResult::Success => return Ok(copy_answer(response, certificates, exit)),
            GuestRequestResult::Busy => {
                super::time::delay_ms(BUSY_RETRY_DELAY_MS);
            }
            GuestRequestResult::InvalidLength if exit == RequestExit::Extended => {
                // The host's certificates need more pages than the runtime can forward. The
                // firmware has not seen this request, so the same ciphertext goes again as a
                // plain guest request (as Linux's sev-guest driver does): its sequence number
                // is used exactly once, and the verifier falls back to its own certificates.
                exit = RequestExit::Plain;
            }
            GuestRequestResult::InvalidLength => return Err(GuestRequestError::InvalidLength),
            GuestRequestResult::Failed(info) => return Err(GuestRequestError::Refused(info)),
        }
    }
    Err(GuestRequestError::Busy)
}

/// The response page and (extended request) the certificate buffer, copied once into private
/// memory: only these copies are parsed.
fn copy_answer(response: &Shared, certificates: &Shared, exit: RequestExit) -> GuestAnswer {
    let mut copy = alloc::vec![0u8; PAGE];
    response.read(&mut copy);
    let table = (exit == RequestExit::Extended).then(|| {
        let mut buffer = alloc::vec![0u8; certificates.len()];
        certificates.read(&mut buffer);
        buffer
    });
    GuestAnswer { response: copy, certificates: table }
}

/// Why the runtime asks the hypervisor to end the VM (GHCB MSR protocol "Termination Request").
/// Success and the GHCB spec's own conditions use reason set 0; everything else TWI's own set
/// (`twi_attester::snp::ghcb::msr_protocol::twi_reason` documents the codes), never Linux's set
/// 1, whose codes a host log would read as Linux's meanings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TerminateReason {
    /// The workload finished: set 0, "general termination request".
    Success,
    Fatal,
    Ghcb,
    CBitMismatch,
    /// SnpInitError::PageStateChange / Ghcb (page-state change of the heap or frame pool)
    PageStateChange,
    GhcbRegistration,
    Pvalidate,
    NotVmpl0,
    SvsmCall,
    EarlyVc,
    /// Reported with the GHCB spec's own codes (reason set 0).
    ProtocolUnsupported,
    SnpUnsupported,
}

impl TerminateReason {
    /// The reason set and code for the GHCB MSR termination request.
    pub fn set_and_code(self) -> (u8, u8) {
        use msr_protocol::{REASON_SET_GENERAL as GENERAL, REASON_SET_TWI as TWI, twi_reason};
        match self {
            Self::Success => (GENERAL, msr_protocol::REASON_GENERAL),
            Self::ProtocolUnsupported => (GENERAL, msr_protocol::REASON_PROTOCOL_UNSUPPORTED),
            Self::SnpUnsupported => (GENERAL, msr_protocol::REASON_SNP_UNSUPPORTED),
            Self::Fatal => (TWI, twi_reason::FATAL),
            Self::Ghcb => (TWI, twi_reason::GHCB),
            Self::CBitMismatch => (TWI, twi_reason::C_BIT_MISMATCH),
            Self::PageStateChange => (TWI, twi_reason::PAGE_STATE_CHANGE),
            Self::GhcbRegistration => (TWI, twi_reason::GHCB_REGISTRATION),
            Self::Pvalidate => (TWI, twi_reason::PVALIDATE),
            Self::NotVmpl0 => (TWI, twi_reason::NOT_VMPL0),
            Self::SvsmCall => (TWI, twi_reason::SVSM_CALL),
            Self::EarlyVc => (TWI, twi_reason::EARLY_VC),
        }
    }
}

impl From<SnpInitError> for TerminateReason {
    fn from(e: SnpInitError) -> Self {
        match e {
            SnpInitError::Protocol { .. } => Self::ProtocolUnsupported,
            SnpInitError::NoSnpFeature => Self::SnpUnsupported,
            SnpInitError::CBitMismatch { .. } => Self::CBitMismatch,
            SnpInitError::PageStateChange(_) | SnpInitError::Ghcb(_) => Self::PageStateChange,
            SnpInitError::GhcbRegistration => Self::GhcbRegistration,
            SnpInitError::Pvalidate(_) => Self::Pvalidate,
            SnpInitError::NotVmpl0 | SnpInitError::VmplProbe(_) | SnpInitError::NoSvsm(_) => Self::NotVmpl0,
            SnpInitError::Svsm(_) => Self::SvsmCall,
        }
    }
}

/// GHCB MSR-protocol termination: works even when the GHCB page is unusable.
pub fn terminate(reason: TerminateReason) -> ! {
    let (set, code) = reason.set_and_code();
    instr::write_ghcb_msr(msr_protocol::terminate(set, code));
    loop {
        instr::vmgexit();
        core::hint::spin_loop();
    }
}
