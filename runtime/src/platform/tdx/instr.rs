//! TDCALL (`66 0F 01 CC`), each leaf behind one safe, typed function. Nothing else in the
//! runtime executes it. Register conventions and status codes: `twi_attester::tdx::abi`
//! (Intel TDX Module ABI spec, GHCI spec), where they are host-tested.
//!
//! Every function here must only run inside a TD (the caller checks `tdx::detected()`):
//! outside one TDCALL raises #UD.
//!
//! TDG.VP.VMCALL exposes R10–R15 only (RCX = 0xFC00): the VMM sees and may change exactly
//! those, so they are declared clobbered on every call and carry nothing but the call's own
//! operands. Every other register is preserved by the TDX module.

use core::arch::asm;

use twi_attester::tdx::abi::{
    IO_READ, IO_WRITE, NUM_RTMRS, PageLevel, REPORT_SUBTYPE, ReportFatalError, TdInfo, VMCALL_STANDARD, VeInfo, expose,
    leaf, vmcall, vmcall_status,
};

/// TDG.VP.INFO: GPAW, ATTRIBUTES, vCPU counts. `Err` is the TDCALL status.
pub fn vp_info() -> Result<TdInfo, u64> {
    let (rax, rcx, rdx, r8, r9): (u64, u64, u64, u64, u64);
    // SAFETY: TDG.VP.INFO only writes RAX, RCX, RDX and R8–R11 (declared as outputs or
    // clobbers); it reads and writes no memory.
    unsafe {
        asm!(
            ".byte 0x66, 0x0f, 0x01, 0xcc",
            inout("rax") leaf::VP_INFO => rax,
            lateout("rcx") rcx,
            lateout("rdx") rdx,
            lateout("r8") r8,
            lateout("r9") r9,
            lateout("r10") _,
            lateout("r11") _,
            options(nostack, nomem),
        );
    }
    if rax != 0 {
        return Err(rax);
    }
    Ok(TdInfo::decode(rcx, rdx, r8, r9))
}

/// TDG.VP.VEINFO.GET: what caused the #VE being handled (and marks the info consumed, so a
/// later #VE can be delivered). `Err` is the TDCALL status.
pub fn ve_info() -> Result<VeInfo, u64> {
    let (rax, rcx, rdx, r8, r9, r10): (u64, u64, u64, u64, u64, u64);
    // SAFETY: TDG.VP.VEINFO.GET only writes RAX, RCX, RDX, R8–R10 (declared); no memory.
    unsafe {
        asm!(
            ".byte 0x66, 0x0f, 0x01, 0xcc",
            inout("rax") leaf::VP_VEINFO_GET => rax,
            lateout("rcx") rcx,
            lateout("rdx") rdx,
            lateout("r8") r8,
            lateout("r9") r9,
            lateout("r10") r10,
            lateout("r11") _,
            options(nostack, nomem),
        );
    }
    if rax != 0 {
        return Err(rax);
    }
    Ok(VeInfo::decode(rcx, rdx, r8, r9, r10))
}

/// The TDREPORT_STRUCT buffer of TDG.MR.REPORT: 1024 bytes, 1024-byte aligned, private.
#[derive(Debug)]
#[repr(C, align(1024))]
pub struct ReportBuffer(pub [u8; 1024]);
/// REPORTDATA for TDG.MR.REPORT: 64 bytes, 64-byte aligned, private.
#[derive(Debug)]
#[repr(C, align(64))]
pub struct ReportData(pub [u8; 64]);
/// The extension data of TDG.MR.RTMR.EXTEND: 48 bytes in a 64-byte aligned block, private.
#[derive(Debug)]
#[repr(C, align(64))]
pub struct ExtendData(pub [u8; 48]);
const _: () = assert!(core::mem::align_of::<ReportBuffer>() == twi_attester::tdx::abi::REPORT_ALIGN);
const _: () = assert!(core::mem::align_of::<ReportData>() == twi_attester::tdx::abi::REPORT_DATA_ALIGN);
const _: () = assert!(core::mem::align_of::<ExtendData>() == twi_attester::tdx::abi::RTMR_EXTEND_ALIGN);

/// TDG.MR.REPORT, sub-type 0: the TDX module writes the TDREPORT for `data` into `report`.
/// Both live in identity-mapped private memory (the heap or the image), so their addresses
/// are their GPAs. Returns the TDCALL status.
pub fn mr_report(report: &mut ReportBuffer, data: &ReportData) -> u64 {
    let rax: u64;
    // SAFETY: the TDX module reads 64 bytes at `data` and writes 1024 bytes at `report`, both
    // exclusively borrowed/borrowed Rust objects of exactly those sizes and alignments, whose
    // identity-mapped addresses are their private GPAs; it writes RAX, RCX, RDX, R8–R11.
    unsafe {
        asm!(
            ".byte 0x66, 0x0f, 0x01, 0xcc",
            inout("rax") leaf::MR_REPORT => rax,
            inout("rcx") report.0.as_mut_ptr() as u64 => _,
            inout("rdx") data.0.as_ptr() as u64 => _,
            inout("r8") REPORT_SUBTYPE => _,
            lateout("r9") _,
            lateout("r10") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    rax
}

/// TDG.MR.RTMR.EXTEND of `data` into RTMR `index` (0..=3). Returns the TDCALL status
/// (TDX_OPERAND_INVALID for an index the module refuses).
pub fn rtmr_extend(index: u8, data: &ExtendData) -> u64 {
    if u64::from(index) >= NUM_RTMRS {
        return twi_attester::tdx::abi::status::OPERAND_INVALID;
    }
    let rax: u64;
    // SAFETY: the TDX module reads the 48 bytes at `data` (a 64-byte aligned private Rust
    // object, identity mapped) and changes only the TD's RTMR; it writes RAX, RCX, RDX, R8–R11.
    unsafe {
        asm!(
            ".byte 0x66, 0x0f, 0x01, 0xcc",
            inout("rax") leaf::MR_RTMR_EXTEND => rax,
            inout("rcx") data.0.as_ptr() as u64 => _,
            inout("rdx") u64::from(index) => _,
            lateout("r8") _,
            lateout("r9") _,
            lateout("r10") _,
            lateout("r11") _,
            options(nostack, readonly),
        );
    }
    rax
}

/// TDG.MEM.PAGE.ACCEPT of the page at `gpa` (aligned to `level`). Returns the TDCALL status.
///
/// Accepting a pending page zeroes it; accepting an accepted one changes nothing (status
/// PAGE_ALREADY_ACCEPTED). Private memory can only hold what the TD itself wrote, so neither
/// outcome can take live data from the runtime: the callers (`tdx::init`) pass pages of the
/// heap and the frame pool before anything lives there.
pub(super) fn page_accept(gpa: u64, level: PageLevel) -> u64 {
    let Some(operand) = twi_attester::tdx::abi::accept_operand(gpa, level) else {
        return twi_attester::tdx::abi::status::OPERAND_INVALID;
    };
    let rax: u64;
    // SAFETY: see above: the page is free memory of the layout, so zeroing it (a pending page)
    // or leaving it (an accepted one) breaks no Rust object. Writes RAX, RCX, RDX, R8–R11.
    unsafe {
        asm!(
            ".byte 0x66, 0x0f, 0x01, 0xcc",
            inout("rax") leaf::MEM_PAGE_ACCEPT => rax,
            inout("rcx") operand => _,
            lateout("rdx") _,
            lateout("r8") _,
            lateout("r9") _,
            lateout("r10") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    rax
}

/// The operands and results of a standard TDG.VP.VMCALL: R11 the sub-function on input, an
/// output on return; R10 the VMCALL status on return; R12–R15 operands and outputs.
#[derive(Clone, Copy, Debug, Default)]
struct Vmcall {
    r10: u64,
    r11: u64,
    r12: u64,
    r13: u64,
    r14: u64,
    r15: u64,
}

/// Why a TDG.VP.VMCALL failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmcallError {
    /// TDCALL itself failed (RAX): a malformed call, a runtime bug.
    Tdcall(u64),
    /// The VMM's status (R10): GHCI "TDG.VP.VMCALL completion status".
    Vmm(u64),
}

/// One standard TDG.VP.VMCALL exposing R10–R15, with R10 (the VMM's status) left to the
/// caller. Only the sub-functions of this module go through it: none of them lets the VMM
/// touch private memory.
fn vmcall_regs(sub_function: u64, r12: u64, r13: u64, r14: u64, r15: u64) -> Result<Vmcall, VmcallError> {
    let mut regs = Vmcall { r10: VMCALL_STANDARD, r11: sub_function, r12, r13, r14, r15 };
    let rax: u64;
    // SAFETY: TDG.VP.VMCALL exits to the VMM with R10–R15 exposed (RCX mask); on return the
    // TDX module has restored every other GPR, and R10–R15 (declared in/out) hold what the VMM
    // left. The VMM cannot access the TD's private memory; the shared memory it may write
    // (the GetQuote buffer) is only read through `Shared`, volatile. Hence no `nomem`: the
    // compiler must not cache shared-buffer contents across the call.
    unsafe {
        asm!(
            ".byte 0x66, 0x0f, 0x01, 0xcc",
            inout("rax") leaf::VP_VMCALL => rax,
            inout("rcx") expose::R10_TO_R15 => _,
            inout("r10") regs.r10,
            inout("r11") regs.r11,
            inout("r12") regs.r12,
            inout("r13") regs.r13,
            inout("r14") regs.r14,
            inout("r15") regs.r15,
            options(nostack),
        );
    }
    if rax != 0 {
        return Err(VmcallError::Tdcall(rax));
    }
    Ok(regs)
}

/// A standard TDG.VP.VMCALL that must succeed (R10 = 0).
fn vmcall(sub_function: u64, r12: u64, r13: u64, r14: u64, r15: u64) -> Result<Vmcall, VmcallError> {
    let regs = vmcall_regs(sub_function, r12, r13, r14, r15)?;
    if regs.r10 != vmcall_status::SUCCESS {
        return Err(VmcallError::Vmm(regs.r10));
    }
    Ok(regs)
}

/// TDG.VP.VMCALL<Instruction.CPUID>: EAX, EBX, ECX, EDX as the VMM answers them (untrusted).
pub fn cpuid(leaf: u32, subleaf: u32) -> Result<[u32; 4], VmcallError> {
    let r = vmcall(vmcall::INSTRUCTION_CPUID, u64::from(leaf), u64::from(subleaf), 0, 0)?;
    Ok([r.r12 as u32, r.r13 as u32, r.r14 as u32, r.r15 as u32])
}

/// TDG.VP.VMCALL<Instruction.IO> read of `size` (1, 2 or 4) bytes from `port`.
pub fn io_read(port: u16, size: u8) -> Result<u32, VmcallError> {
    let r = vmcall(vmcall::INSTRUCTION_IO, u64::from(size), IO_READ, u64::from(port), 0)?;
    Ok(r.r11 as u32)
}

/// TDG.VP.VMCALL<Instruction.IO> write of `size` (1, 2 or 4) bytes to `port`.
pub fn io_write(port: u16, size: u8, value: u32) -> Result<(), VmcallError> {
    vmcall(vmcall::INSTRUCTION_IO, u64::from(size), IO_WRITE, u64::from(port), u64::from(value)).map(drop)
}

/// TDG.VP.VMCALL<Instruction.RDMSR>: the VMM's value (untrusted).
pub fn rdmsr(index: u32) -> Result<u64, VmcallError> {
    vmcall(vmcall::INSTRUCTION_RDMSR, u64::from(index), 0, 0, 0).map(|r| r.r11)
}

/// TDG.VP.VMCALL<Instruction.WRMSR>: the VMM emulates the write (no TD MSR changes).
pub fn wrmsr(index: u32, value: u64) -> Result<(), VmcallError> {
    vmcall(vmcall::INSTRUCTION_WRMSR, u64::from(index), value, 0, 0).map(drop)
}

/// TDG.VP.VMCALL<Instruction.HLT> with interrupts blocked (R12 = 1): the vCPU sleeps until the
/// VMM wakes it (it never does for the runtime, which uses it to stop).
pub fn hlt() -> Result<(), VmcallError> {
    vmcall(vmcall::INSTRUCTION_HLT, 1, 0, 0, 0).map(drop)
}

/// How often MapGPA may answer RETRY before the runtime gives up.
const MAP_GPA_RETRIES: u32 = 64;

/// TDG.VP.VMCALL<MapGPA> of `[gpa, gpa + len)` (`gpa` carries the shared bit to map shared):
/// resumes where the VMM says after a RETRY (R11), a bounded number of times.
///
/// Mapping a private range shared makes its private contents unreachable, so only the shared
/// pool's set-up calls this (`tdx::init`), before any `Shared` exists.
pub(super) fn map_gpa(gpa: u64, len: u64) -> Result<(), VmcallError> {
    let end = gpa.checked_add(len).ok_or(VmcallError::Vmm(vmcall_status::OPERAND_INVALID))?;
    let mut start = gpa;
    for _ in 0..MAP_GPA_RETRIES {
        let regs = vmcall_regs(vmcall::MAP_GPA, start, end - start, 0, 0)?;
        match regs.r10 {
            vmcall_status::SUCCESS => return Ok(()),
            vmcall_status::RETRY => {
                // R11 is the GPA to resume from; it must lie inside what is left, or the VMM is
                // lying about its progress.
                let resume = regs.r11;
                if !(start..end).contains(&resume) || !resume.is_multiple_of(0x1000) {
                    return Err(VmcallError::Vmm(vmcall_status::RETRY));
                }
                start = resume;
            }
            status => return Err(VmcallError::Vmm(status)),
        }
    }
    Err(VmcallError::Vmm(vmcall_status::RETRY))
}

/// TDG.VP.VMCALL<GetQuote>: asks the VMM to fill the shared buffer at `shared_gpa` (with the
/// shared bit, 4 KiB aligned) of `len` bytes (a multiple of 4 KiB). Returns once the request
/// is queued; completion is the buffer's status field leaving "in flight".
pub fn get_quote(shared_gpa: u64, len: u64) -> Result<(), VmcallError> {
    vmcall(vmcall::GET_QUOTE, shared_gpa, len, 0, 0).map(drop)
}

/// TDG.VP.VMCALL<ReportFatalError> with the code and text of `call` (no error-information
/// page), then stops the vCPU for good. Works before the console or any shared page exists.
pub fn report_fatal_error(call: &ReportFatalError) -> ! {
    let [r14, r15, rbx, rdi, rsi, r8, r9, rdx] = call.message;
    // SAFETY: TDG.VP.VMCALL exits to the VMM with the registers of `call.rcx` exposed (R10–R15
    // and the message registers; `ReportFatalError::new` builds that mask). It reads no memory.
    // LLVM reserves RBX, so the asm saves it in a scratch register, loads the message word and
    // restores it after the call; every other exposed register is declared clobbered, since
    // the VMM may change them.
    unsafe {
        asm!(
            "xchg {word}, rbx",
            ".byte 0x66, 0x0f, 0x01, 0xcc",
            "xchg {word}, rbx",
            word = inout(reg) rbx => _,
            inout("rax") leaf::VP_VMCALL => _,
            inout("rcx") call.rcx => _,
            inout("rdx") rdx => _,
            inout("rsi") rsi => _,
            inout("rdi") rdi => _,
            inout("r8") r8 => _,
            inout("r9") r9 => _,
            inout("r10") VMCALL_STANDARD => _,
            inout("r11") vmcall::REPORT_FATAL_ERROR => _,
            inout("r12") call.r12 => _,
            inout("r13") 0u64 => _,
            inout("r14") r14 => _,
            inout("r15") r15 => _,
            options(nostack, nomem),
        );
    }
    loop {
        let _ = hlt();
        core::hint::spin_loop();
    }
}
