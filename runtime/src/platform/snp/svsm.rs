//! The runtime below an SVSM (COCONUT-SVSM at VMPL0, the runtime at a lower VMPL): the SVSM's
//! calls, and page validation through SVSM_CORE_PVALIDATE, since PVALIDATE itself is VMPL0's.
//! The byte layouts and register encodings are `twi_attester::svsm`'s (host-tested); this
//! module owns the calling area (identity-mapped private memory the SVSM named in the secrets
//! page) and the VMGEXIT that runs VMPL0.
//!
//! A call (58019 §4; Linux `svsm_perform_msr_protocol` / `svsm_issue_call`): request bytes in
//! the calling area's buffer, `call_pending` = 1, the GHCB MSR set to "run VMPL0", VMGEXIT with
//! RAX/RCX/RDX/R8/R9 holding the call; the SVSM answers in the same registers and clears
//! `call_pending`. The GHCB MSR is then restored to the GHCB's GPA.

use core::arch::asm;

use alloc::vec::Vec;
use spin::Once;
use twi_attester::snp::ghcb::{GHCB_MSR, msr_protocol};
use twi_attester::snp::secrets::SvsmInfo;

use twi_attester::svsm::attest::{ATTEST_SERVICES, AttestLengths, AttestRequest, Location, NONCE_LEN};
use twi_attester::svsm::call::{CallResult, Registers, caa, protocol, rax};
use twi_attester::svsm::core::{self as svsm_core, PvalidateEntry};

use super::instr;
use crate::platform::memory::{Frame, PAGE_SIZE};

/// The SVSM found at start-up, if the runtime runs below one.
static SVSM: Once<SvsmInfo> = Once::new();

/// Busy / incomplete answers are retried this often.
const RETRIES: u32 = 64;

/// Why an SVSM call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SvsmCallError {
    /// The hypervisor did not run VMPL0 (the GHCB MSR's response).
    RunVmpl(u64),
    /// `call_pending` was still set: the SVSM never took the call.
    NotProcessed,
    /// The SVSM's result code.
    Result(CallResult),
    /// The request does not fit the calling area (a runtime bug).
    Request,
}

/// Records the SVSM (once, at start-up). The calling area must lie in the identity-mapped low
/// 4 GiB the boot page tables cover.
pub fn install(info: SvsmInfo) -> Result<(), SvsmCallError> {
    if info.caa >= 1 << 32 {
        return Err(SvsmCallError::Request);
    }
    SVSM.call_once(|| info);
    Ok(())
}

/// The runtime's VMPL below an SVSM; `None` at VMPL0.
pub fn vmpl() -> Option<u8> {
    SVSM.get().map(|info| info.guest_vmpl)
}

/// Whether an SVSM validates memory for the runtime.
pub fn active() -> bool {
    SVSM.get().is_some()
}

fn caa_ptr(offset: usize) -> *mut u8 {
    let info = SVSM.get().expect("only called below an SVSM");
    (info.caa as usize + offset) as *mut u8
}

/// Copies `request` into the calling area's buffer; returns its GPA.
fn write_buffer(request: &[u8]) -> Result<u64, SvsmCallError> {
    if request.len() > caa::BUFFER_LEN {
        return Err(SvsmCallError::Request);
    }
    for (i, &b) in request.iter().enumerate() {
        // SAFETY: the calling area is a 4 KiB page of the guest's private memory that the SVSM
        // named in the secrets page for this purpose (identity mapped: `install` checked it is
        // below 4 GiB); nothing else in the runtime uses it, and the write stays inside its
        // buffer (checked above). Volatile: the SVSM reads it behind the compiler's back.
        unsafe { core::ptr::write_volatile(caa_ptr(caa::BUFFER + i), b) };
    }
    Ok(SVSM.get().map_or(0, |info| info.caa) + caa::BUFFER as u64)
}

/// One SVSM call (no retries): `call_pending`, run VMPL0, check the answer.
fn call_once(regs: Registers, ghcb_gpa: u64) -> Result<Registers, SvsmCallError> {
    // SAFETY: `call_pending` is the calling area's first byte (see `write_buffer`).
    unsafe { core::ptr::write_volatile(caa_ptr(caa::CALL_PENDING), 1) };
    let request = msr_protocol::run_vmpl(0);
    let (rax_out, rcx_out, rdx_out, r8_out, r9_out): (u64, u64, u64, u64, u64);
    // SAFETY: WRMSR sets the GHCB MSR to the Run VMPL request (ECX = the GHCB MSR, EDX:EAX = the
    // request); then RAX/RCX/RDX are loaded with the call and VMGEXIT hands the vCPU to the
    // SVSM, which answers in RAX, RCX, RDX, R8 and R9 (declared outputs) and may write guest
    // memory (the calling area, buffers the request names), hence no `nomem`. No other register
    // changes (58019 §4; Linux `svsm_issue_call` declares the same).
    unsafe {
        asm!(
            "wrmsr",
            "mov rax, {a}",
            "mov rcx, {c}",
            "mov rdx, {d}",
            "rep vmmcall",
            a = in(reg) regs.rax,
            c = in(reg) regs.rcx,
            d = in(reg) regs.rdx,
            inout("rcx") u64::from(GHCB_MSR) => rcx_out,
            inout("rax") request & 0xFFFF_FFFF => rax_out,
            inout("rdx") request >> 32 => rdx_out,
            inout("r8") regs.r8 => r8_out,
            inout("r9") regs.r9 => r9_out,
            options(nostack),
        );
    }
    let response = instr::read_ghcb_msr();
    instr::write_ghcb_msr(ghcb_gpa);
    // SAFETY: as above; the SVSM has returned, so nothing else touches the byte now.
    let pending = unsafe {
        let pending = core::ptr::read_volatile(caa_ptr(caa::CALL_PENDING));
        core::ptr::write_volatile(caa_ptr(caa::CALL_PENDING), 0);
        pending
    };
    if !msr_protocol::run_vmpl_done(response) {
        return Err(SvsmCallError::RunVmpl(response));
    }
    if pending != 0 {
        return Err(SvsmCallError::NotProcessed);
    }
    Ok(Registers { rax: rax_out, rcx: rcx_out, rdx: rdx_out, r8: r8_out, r9: r9_out })
}

/// An SVSM call, retried while the SVSM answers Busy or Incomplete; `Ok` only on success.
pub fn call(regs: Registers, ghcb_gpa: u64) -> Result<Registers, SvsmCallError> {
    for _ in 0..RETRIES {
        let out = call_once(regs, ghcb_gpa)?;
        match CallResult::decode(out.rax) {
            CallResult::Success => return Ok(out),
            result if result.retry() => continue,
            result => return Err(SvsmCallError::Result(result)),
        }
    }
    Err(SvsmCallError::Result(CallResult::Busy))
}

/// SVSM_CORE_PVALIDATE of `entries` (at most `svsm_core::MAX_ENTRIES`).
fn pvalidate(entries: &[PvalidateEntry], ghcb_gpa: u64) -> Result<(), SvsmCallError> {
    let mut request = [0u8; caa::BUFFER_LEN];
    let len = svsm_core::encode_pvalidate(entries, &mut request).map_err(|_| SvsmCallError::Request)?;
    let gpa = write_buffer(&request[..len])?;
    let regs = Registers { rax: rax(protocol::CORE, svsm_core::PVALIDATE), rcx: gpa, ..Registers::default() };
    call(regs, ghcb_gpa).map(drop)
}

/// Validates the 2 MiB page at `address` through the SVSM, falling back to its 512 4 KiB pages
/// when the RMP holds them as such (SVSM_PVALIDATE_FAIL_SIZEMISMATCH).
pub fn validate_2m(address: u64, ghcb_gpa: u64) -> Result<(), SvsmCallError> {
    let huge = [PvalidateEntry { gpa: address, huge: true, validate: true }];
    match pvalidate(&huge, ghcb_gpa) {
        Err(SvsmCallError::Result(CallResult::Protocol(svsm_core::FAIL_SIZEMISMATCH))) => {}
        other => return other,
    }
    let mut small = [PvalidateEntry { gpa: 0, huge: false, validate: true }; 256];
    for half in 0..2u64 {
        for (i, entry) in small.iter_mut().enumerate() {
            entry.gpa = address + (half * 256 + i as u64) * 0x1000;
        }
        pvalidate(&small, ghcb_gpa)?;
    }
    Ok(())
}

/// The SVSM's report and services manifest.
pub type Attestation = (Vec<u8>, Vec<u8>);

/// SVSM_ATTEST_SERVICES with `nonce`: the SVSM's report and services manifest, copied out of
/// two private pages of the frame pool (page aligned, as COCONUT requires). The request and
/// the nonce go in the calling area's buffer. No certificate buffer is offered.
pub fn attest_services(nonce: &[u8; NONCE_LEN], ghcb_gpa: u64) -> Result<Attestation, SvsmCallError> {
    let mut report = Frame::alloc().ok_or(SvsmCallError::Request)?;
    let mut manifest = Frame::alloc().ok_or(SvsmCallError::Request)?;
    let buffer = SVSM.get().map_or(0, |info| info.caa) + caa::BUFFER as u64;
    let report_at = Location { gpa: report.address(), size: PAGE_SIZE as u32 };
    let manifest_at = Location { gpa: manifest.address(), size: PAGE_SIZE as u32 };
    let (request, bytes) = AttestRequest::services_in(buffer, report_at, manifest_at, nonce);
    let gpa = write_buffer(&bytes)?;
    let regs = Registers { rax: rax(protocol::ATTEST, ATTEST_SERVICES), rcx: gpa, ..Registers::default() };
    let out = call(regs, ghcb_gpa)?;
    let lengths =
        AttestLengths::from_registers(&request, out.rcx, out.rdx, out.r8).map_err(|_| SvsmCallError::Request)?;
    Ok((report.as_mut_slice()[..lengths.report].to_vec(), manifest.as_mut_slice()[..lengths.manifest].to_vec()))
}
