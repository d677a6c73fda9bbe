//! The checks KVM makes on an SEV-SNP guest's VMGEXIT through its GHCB (AMD GHCB specification
//! 2.x, publication 56421): the GHCB's registration, usage and valid bitmap, the scratch area's
//! bounds, the page-state-change descriptor and the extended guest request's certificate pages.
//!
//! Mirrored functions, all in Linux `arch/x86/kvm/svm/sev.c`: `sev_handle_vmgexit` (the GHCB
//! GPA must be the registered one), `sev_es_validate_vmgexit` (usage 0, exit fields and each
//! exit's inputs marked valid, known exit codes, guest-request pages), `setup_vmgexit_scratch`
//! (GHCB v2: the scratch area inside the shared buffer), `snp_begin_psc` (header and entries)
//! `snp_handle_ext_guest_req` (certificate buffer in RAX/RBX) and `snp_complete_req_certs`
//! (too few certificate pages). Error codes from Linux
//! `arch/x86/include/asm/sev-common.h`.

use twi_attester::snp::ghcb::{GHCB_SIZE, exit_code, msr_protocol, offset, psc, valid_bit};
use twi_attester::snp::guest_msg;

use super::{Answer, Refusal};

/// `GHCB_ERR_*`: why KVM found the GHCB's input malformed (SW_EXITINFO2 with SW_EXITINFO1 2).
pub mod ghcb_err {
    pub const INVALID_USAGE: u64 = 2;
    pub const INVALID_SCRATCH_AREA: u64 = 3;
    pub const MISSING_INPUT: u64 = 4;
    pub const INVALID_INPUT: u64 = 5;
    pub const INVALID_EVENT: u64 = 6;
}

/// `VMGEXIT_PSC_ERROR_*`: a refused page-state change (SW_EXITINFO2).
pub mod psc_error {
    pub const GENERIC: u64 = 0x100 << 32;
    pub const INVALID_HDR: u64 = (1 << 32) | 1;
    pub const INVALID_ENTRY: u64 = (1 << 32) | 2;
}

/// SVM exit codes KVM accepts through the GHCB and the inputs each needs (besides the three
/// exit fields). Values: AMD APM Vol. 2 Appendix C and the GHCB specification's NAE events.
mod svm_exit {
    pub const READ_DR7: u64 = 0x27;
    pub const WRITE_DR7: u64 = 0x37;
    pub const RDTSC: u64 = 0x6E;
    pub const RDPMC: u64 = 0x6F;
    pub const INVD: u64 = 0x76;
    pub const VMMCALL: u64 = 0x81;
    pub const RDTSCP: u64 = 0x87;
    pub const WBINVD: u64 = 0x89;
    pub const MONITOR: u64 = 0x8A;
    pub const MWAIT: u64 = 0x8B;
    pub const MMIO_READ: u64 = 0x8000_0001;
    pub const MMIO_WRITE: u64 = 0x8000_0002;
    pub const NMI_COMPLETE: u64 = 0x8000_0003;
    pub const AP_HLT_LOOP: u64 = 0x8000_0004;
    pub const AP_JUMP_TABLE: u64 = 0x8000_0005;
    pub const AP_CREATION: u64 = 0x8000_0013;
    pub const HV_FEATURES: u64 = 0x8000_FFFD;
    pub const TERM_REQUEST: u64 = 0x8000_FFFE;
    pub const UNSUPPORTED_EVENT: u64 = 0x8000_FFFF;
    /// IOIO EXITINFO1: bit 0 = IN, bit 2 = string.
    pub const IOIO_TYPE_IN: u64 = 1 << 0;
    pub const IOIO_STRING: u64 = 1 << 2;
    /// AP Creation request "destroy" (EXITINFO1[31:0]).
    pub const AP_DESTROY: u64 = 2;
}

const PAGE: u64 = 4096;

/// The exit a GHCB asks for, once KVM accepted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vmgexit {
    pub exit_code: u64,
    pub exit_info_1: u64,
    pub exit_info_2: u64,
}

/// A read-only view of a GHCB page as the host reads it.
struct Page<'a>(&'a [u8; GHCB_SIZE]);

impl Page<'_> {
    fn u64(&self, at: usize) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[at..at + 8]);
        u64::from_le_bytes(b)
    }

    fn valid(&self, field: usize) -> bool {
        let bit = valid_bit(field);
        self.u64(offset::VALID_BITMAP + (bit / 64) * 8) & (1 << (bit % 64)) != 0
    }

    /// A field KVM reads only when marked valid (`kvm_ghcb_get_*_if_valid`): 0 otherwise.
    fn if_valid(&self, field: usize) -> u64 {
        if self.valid(field) { self.u64(field) } else { 0 }
    }

    fn usage(&self) -> u32 {
        u32::from_le_bytes([
            self.0[offset::GHCB_USAGE],
            self.0[offset::GHCB_USAGE + 1],
            self.0[offset::GHCB_USAGE + 2],
            self.0[offset::GHCB_USAGE + 3],
        ])
    }
}

const VALIDATE: &str = "Linux arch/x86/kvm/svm/sev.c sev_es_validate_vmgexit";

fn bad_input(code: u64, reason: &'static str, mirrors: &'static str) -> Refusal {
    Refusal::new(Answer::GhcbBadInput(code), reason, mirrors)
}

/// A VMGEXIT with the GHCB at `ghcb_gpa` (the GHCB MSR's value) after the guest registered
/// `registered_gpa`, as KVM `sev_handle_vmgexit` and `sev_es_validate_vmgexit` check it.
pub fn validate_vmgexit(ghcb: &[u8; GHCB_SIZE], ghcb_gpa: u64, registered_gpa: u64) -> Result<Vmgexit, Refusal> {
    if ghcb_gpa != registered_gpa {
        return Err(Refusal::new(
            Answer::VmStopped,
            "an SEV-SNP guest's GHCB must be the page it registered",
            "Linux arch/x86/kvm/svm/sev.c sev_handle_vmgexit",
        ));
    }
    let page = Page(ghcb);
    if page.usage() != 0 {
        return Err(bad_input(ghcb_err::INVALID_USAGE, "only GHCB usage 0 is supported", VALIDATE));
    }
    let missing = |reason| Err(bad_input(ghcb_err::MISSING_INPUT, reason, VALIDATE));
    if ![offset::SW_EXIT_CODE, offset::SW_EXIT_INFO_1, offset::SW_EXIT_INFO_2].iter().all(|&f| page.valid(f)) {
        return missing("SW_EXITCODE, SW_EXITINFO1 and SW_EXITINFO2 must all be marked valid");
    }
    let exit = Vmgexit {
        exit_code: page.u64(offset::SW_EXIT_CODE),
        exit_info_1: page.u64(offset::SW_EXIT_INFO_1),
        exit_info_2: page.u64(offset::SW_EXIT_INFO_2),
    };
    match required_inputs(&page, &exit) {
        Some(fields) if fields.iter().all(|&f| page.valid(f)) => {}
        Some(_) => return missing("an input this exit needs is not marked valid"),
        None => return Err(bad_input(ghcb_err::INVALID_EVENT, "the exit code is not one KVM handles", VALIDATE)),
    }
    let request = matches!(exit.exit_code, exit_code::SNP_GUEST_REQUEST | exit_code::SNP_EXT_GUEST_REQUEST);
    if request
        && (!exit.exit_info_1.is_multiple_of(PAGE)
            || !exit.exit_info_2.is_multiple_of(PAGE)
            || exit.exit_info_1 == exit.exit_info_2)
    {
        return missing("the request and response pages must be two distinct, page-aligned GPAs");
    }
    Ok(exit)
}

/// The save-area fields an exit needs marked valid (`sev_es_validate_vmgexit`'s switch);
/// `None` for an exit code KVM does not handle.
fn required_inputs(page: &Page<'_>, exit: &Vmgexit) -> Option<Vec<usize>> {
    use offset::{CPL, RAX, RCX, RDX, SW_SCRATCH, XCR0};
    Some(match exit.exit_code {
        svm_exit::WRITE_DR7 => vec![RAX],
        svm_exit::RDPMC => vec![RCX],
        exit_code::CPUID if page.if_valid(RAX) == 0xD => vec![RAX, RCX, XCR0],
        exit_code::CPUID | svm_exit::MWAIT => vec![RAX, RCX],
        exit_code::IOIO if exit.exit_info_1 & svm_exit::IOIO_STRING != 0 => vec![SW_SCRATCH],
        exit_code::IOIO if exit.exit_info_1 & svm_exit::IOIO_TYPE_IN == 0 => vec![RAX],
        exit_code::MSR if exit.exit_info_1 != 0 => vec![RCX, RAX, RDX],
        exit_code::MSR => vec![RCX],
        svm_exit::VMMCALL => vec![RAX, CPL],
        svm_exit::MONITOR => vec![RAX, RCX, RDX],
        svm_exit::MMIO_READ | svm_exit::MMIO_WRITE | exit_code::SNP_PAGE_STATE_CHANGE => vec![SW_SCRATCH],
        svm_exit::AP_CREATION if exit.exit_info_1 as u32 as u64 != svm_exit::AP_DESTROY => vec![RAX],
        exit_code::IOIO
        | svm_exit::AP_CREATION
        | svm_exit::READ_DR7
        | svm_exit::RDTSC
        | svm_exit::INVD
        | svm_exit::RDTSCP
        | svm_exit::WBINVD
        | svm_exit::NMI_COMPLETE
        | svm_exit::AP_HLT_LOOP
        | svm_exit::AP_JUMP_TABLE
        | svm_exit::UNSUPPORTED_EVENT
        | svm_exit::HV_FEATURES
        | svm_exit::TERM_REQUEST
        | exit_code::SNP_GUEST_REQUEST
        | exit_code::SNP_EXT_GUEST_REQUEST => Vec::new(),
        _ => return None,
    })
}

/// The scratch area of `min_len` bytes at SW_SCRATCH, as KVM `setup_vmgexit_scratch` accepts
/// it from a GHCB-v2 guest: it must lie inside the GHCB's shared buffer. Returns its offset in
/// the page and the bytes from there to the buffer's end (KVM's `ghcb_sa_len`).
pub fn scratch(ghcb: &[u8; GHCB_SIZE], ghcb_gpa: u64, min_len: u64) -> Result<(usize, usize), Refusal> {
    const MIRRORS: &str = "Linux arch/x86/kvm/svm/sev.c setup_vmgexit_scratch";
    let refuse = |reason| Err(bad_input(ghcb_err::INVALID_SCRATCH_AREA, reason, MIRRORS));
    let start = Page(ghcb).if_valid(offset::SW_SCRATCH);
    if start == 0 {
        return refuse("no scratch GPA was given");
    }
    let Some(end) = start.checked_add(min_len) else {
        return refuse("the scratch area wraps");
    };
    if start & !(PAGE - 1) != ghcb_gpa {
        return refuse("GHCB protocol 2 requires the scratch area inside the GHCB");
    }
    let buffer_start = ghcb_gpa + offset::SHARED_BUFFER as u64;
    let buffer_end = buffer_start + offset::SHARED_BUFFER_SIZE as u64;
    if start < buffer_start || end > buffer_end {
        return refuse("the scratch area is outside the GHCB's shared buffer");
    }
    Ok(((start - ghcb_gpa) as usize, (buffer_end - start) as usize))
}

/// One page-state-change entry KVM will act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PscEntry {
    pub gfn: u64,
    /// `msr_protocol::PSC_PRIVATE` or `PSC_SHARED`; KVM completes other operations (PSMASH,
    /// UNSMASH) without acting on them.
    pub operation: u64,
    pub huge: bool,
    /// Pages of the entry already done (`cur_page`).
    pub done: u64,
}

/// The page-state-change descriptor of a PSC VMGEXIT (after [`validate_vmgexit`]), as KVM
/// `snp_begin_psc` checks it: the scratch area holds at least the header, `end_entry` fits in
/// it (else INVALID_HDR), and every entry from `cur_entry` to `end_entry` has `cur_page` within
/// its pages and a GFN aligned to its size (else INVALID_ENTRY).
pub fn page_state_change(ghcb: &[u8; GHCB_SIZE], ghcb_gpa: u64) -> Result<Vec<PscEntry>, Refusal> {
    const MIRRORS: &str = "Linux arch/x86/kvm/svm/sev.c snp_begin_psc";
    let (at, len) = scratch(ghcb, ghcb_gpa, psc::HEADER_SIZE as u64)?;
    let page = Page(ghcb);
    let max_entries = (len - psc::HEADER_SIZE) / psc::ENTRY_SIZE;
    if max_entries > psc::MAX_ENTRIES {
        return Err(Refusal::new(Answer::PageStateChange(psc_error::GENERIC), "too many entries", MIRRORS));
    }
    let header = page.u64(at);
    let (cur, end) = (header as u16 as usize, (header >> 16) as u16 as usize);
    if end >= max_entries {
        return Err(Refusal::new(
            Answer::PageStateChange(psc_error::INVALID_HDR),
            "end_entry lies beyond the entries the scratch area holds",
            MIRRORS,
        ));
    }
    let mut entries = Vec::new();
    for index in cur..=end {
        let (done, gfn, operation, huge) = psc::decode_entry(page.u64(at + psc::HEADER_SIZE + index * psc::ENTRY_SIZE));
        let pages = if huge { 512 } else { 1 };
        if done > pages || !gfn.is_multiple_of(pages) {
            return Err(Refusal::new(
                Answer::PageStateChange(psc_error::INVALID_ENTRY),
                "an entry's cur_page exceeds its pages or its GFN is not aligned to its size",
                MIRRORS,
            ));
        }
        entries.push(PscEntry { gfn, operation, huge, done });
    }
    Ok(entries)
}

/// The certificate pages of an SNP_EXT_GUEST_REQUEST (after [`validate_vmgexit`]) whose
/// request message has type `msg_type`, as KVM `snp_handle_ext_guest_req` checks them: for a
/// report request RAX (the pages' GPA) and RBX (their count) must be valid and RAX page
/// aligned, else INVALID_INPUT. Returns (GPA, pages) for a report request, `None` otherwise.
pub fn ext_guest_request(ghcb: &[u8; GHCB_SIZE], msg_type: u8) -> Result<Option<(u64, u64)>, Refusal> {
    const MIRRORS: &str = "Linux arch/x86/kvm/svm/sev.c snp_handle_ext_guest_req";
    if msg_type != guest_msg::msg_type::REPORT_REQ {
        return Ok(None);
    }
    let page = Page(ghcb);
    if !page.valid(offset::RAX) || !page.valid(offset::RBX) {
        return Err(bad_input(ghcb_err::INVALID_INPUT, "RAX and RBX must carry the certificate pages", MIRRORS));
    }
    let gpa = page.u64(offset::RAX);
    if !gpa.is_multiple_of(PAGE) {
        return Err(bad_input(ghcb_err::INVALID_INPUT, "the certificate buffer is not page aligned", MIRRORS));
    }
    Ok(Some((gpa, page.u64(offset::RBX))))
}

/// A GHCB MSR protocol request as upstream KVM's `sev_handle_vmgexit_msr_protocol` handles
/// it for an SEV-SNP guest: SEV information, CPUID, AP reset hold, hypervisor features, GHCB
/// GPA preference and registration, page-state change (private or shared only, else the error
/// response) and termination are answered; any other request (e.g. the Run VMPL request an
/// SVSM call uses, which only COCONUT-SVSM's patched host kernel handles) gets no answer.
/// Returns the request's function code.
pub fn msr_request(value: u64) -> Result<u64, Refusal> {
    const MIRRORS: &str = "Linux arch/x86/kvm/svm/sev.c sev_handle_vmgexit_msr_protocol";
    const PREFERRED_GPA_REQUEST: u64 = 0x010;
    let function = value & 0xFFF;
    match function {
        msr_protocol::PSC_REQUEST if !PSC_OPERATIONS.contains(&((value >> 52) & 0xF)) => Err(Refusal::new(
            Answer::MsrError((1 << 63) | msr_protocol::PSC_RESPONSE),
            "a page-state change through the MSR must be to private or to shared",
            MIRRORS,
        )),
        msr_protocol::SEV_INFO_REQUEST
        | msr_protocol::CPUID_REQUEST
        | msr_protocol::AP_RESET_HOLD_REQUEST
        | msr_protocol::HV_FEATURES_REQUEST
        | PREFERRED_GPA_REQUEST
        | msr_protocol::REGISTER_GHCB_REQUEST
        | msr_protocol::PSC_REQUEST
        | msr_protocol::TERMINATE => Ok(function),
        _ => Err(Refusal::new(Answer::MsrUnanswered, "upstream KVM does not handle this MSR request", MIRRORS)),
    }
}

/// `SNP_GUEST_VMM_ERR_INVALID_LEN` in SW_EXITINFO2 bits 63:32 (Linux `SNP_GUEST_ERR`).
pub const VMM_ERR_INVALID_LEN: u64 = 1 << 32;

/// The certificate table of `table_len` bytes into the `pages` the guest offered for it (RBX),
/// as a VMM that serves certificates answers (KVM `snp_complete_req_certs` on the VMM's ENOSPC):
/// too few pages leave the request unanswered with INVALID_LEN and the pages needed in RBX, so
/// the guest can ask again with more or fall back to a plain guest request.
pub fn certificate_pages(pages: u64, table_len: usize) -> Result<(), Refusal> {
    let needed = table_len.div_ceil(PAGE as usize) as u64;
    if pages < needed {
        return Err(Refusal::new(
            Answer::GuestRequest { exit_info_2: VMM_ERR_INVALID_LEN, pages_needed: needed },
            "the certificate table needs more pages than the guest offered",
            "Linux arch/x86/kvm/svm/sev.c snp_complete_req_certs",
        ));
    }
    Ok(())
}

/// The page-state-change operations KVM acts on.
pub const PSC_OPERATIONS: [u64; 2] = [msr_protocol::PSC_PRIVATE, msr_protocol::PSC_SHARED];

#[cfg(test)]
mod tests;
