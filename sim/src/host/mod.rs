//! What a real host checks before it acts on a guest's request, so that a request KVM or QEMU
//! would refuse fails here too, with the host's answer and its reason.
//!
//! The simulators answer the runtime's requests without the doorbell (no GHCB page, no
//! TDVMCALL registers cross the channel), so these checks are functions over exactly what the
//! host sees on hardware: the GHCB page and the GPA in the GHCB MSR, the TDVMCALL's registers,
//! the GetQuote buffer. Each check names the host function it mirrors (Linux
//! `arch/x86/kvm/svm/sev.c` and `arch/x86/kvm/vmx/tdx.c`, QEMU `target/i386/kvm/tdx.c`), so a
//! divergence can be traced to a line of the host. The simulated TDX module applies the
//! GetQuote check to every request it answers (the simulated module's `get_quote`).

pub mod snp;
pub mod tdx;

/// What the guest sees when the host refuses its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// SW_EXITINFO1 = 2 ("malformed input") and SW_EXITINFO2 = this `GHCB_ERR_*` code (KVM
    /// `svm_vmgexit_bad_input`); the guest resumes.
    GhcbBadInput(u64),
    /// SW_EXITINFO1 = 0 and SW_EXITINFO2 = this `VMGEXIT_PSC_ERROR_*` code (KVM
    /// `snp_complete_psc`); the guest resumes.
    PageStateChange(u64),
    /// SW_EXITINFO2 = this value (`SNP_GUEST_ERR(vmm_error, 0)`) and RBX = the pages the
    /// certificates need (KVM `snp_complete_req_certs`); the guest resumes.
    GuestRequest { exit_info_2: u64, pages_needed: u64 },
    /// The GHCB MSR keeps the guest's request: no response code, the request was not handled
    /// (KVM `sev_handle_vmgexit_msr_protocol`'s default case).
    MsrUnanswered,
    /// The GHCB MSR holds this response, which reports an error.
    MsrError(u64),
    /// `KVM_RUN` fails: the guest never resumes and the VMM reports an internal error.
    VmStopped,
    /// The TDG.VP.VMCALL completes with this status in R10.
    Tdvmcall(u64),
    /// QEMU logs the request as invalid and stops the vCPU without recording a guest panic:
    /// the loader sees a hang, not a failure.
    TdPaused,
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::GhcbBadInput(code) => write!(f, "SW_EXITINFO1 2, SW_EXITINFO2 {code:#x}"),
            Self::PageStateChange(code) => write!(f, "page-state-change error {code:#x}"),
            Self::GuestRequest { exit_info_2, pages_needed } => {
                write!(f, "SW_EXITINFO2 {exit_info_2:#x} with RBX = {pages_needed} pages")
            }
            Self::MsrUnanswered => f.write_str("no answer (the GHCB MSR keeps the request)"),
            Self::MsrError(value) => write!(f, "GHCB MSR {value:#x}"),
            Self::VmStopped => f.write_str("KVM_RUN failing (the VM stops)"),
            Self::Tdvmcall(status) => write!(f, "TDG.VP.VMCALL status {status:#x}"),
            Self::TdPaused => f.write_str("a paused TD (no guest panic recorded)"),
        }
    }
}

/// A request a real host refuses: the answer the guest gets, why, and the host function whose
/// check this is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a real host refuses this request ({reason}; {mirrors}) and answers {answer}: fix the request the guest builds"
)]
pub struct Refusal {
    pub answer: Answer,
    pub reason: &'static str,
    /// The mirrored host function, as `project path function`.
    pub mirrors: &'static str,
}

impl Refusal {
    pub(crate) const fn new(answer: Answer, reason: &'static str, mirrors: &'static str) -> Self {
        Self { answer, reason, mirrors }
    }
}
