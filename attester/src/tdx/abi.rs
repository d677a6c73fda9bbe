//! The guest side of the TDX ABI as numbers: TDCALL leaves and their register conventions,
//! completion-status decoding, the TDG.VP.VMCALL (GHCI) sub-functions and statuses, and the
//! decoding of TDG.VP.INFO and TDG.VP.VEINFO.GET outputs. Pure: the runtime executes TDCALL
//! (`twi_runtime::platform::tdx::instr`) and hands the raw register values to these decoders.
//!
//! Sources (each constant was read off these; see the runtime's issue note for the table):
//! * Intel TDX Module ABI specification (1.0 / 1.5): "TDCALL Instruction Leaf Numbers",
//!   the per-leaf "Input Operands" / "Output Operands" tables of TDG.VP.VMCALL, TDG.VP.INFO,
//!   TDG.MR.RTMR.EXTEND, TDG.VP.VEINFO.GET, TDG.MR.REPORT, TDG.MEM.PAGE.ACCEPT, and the
//!   "Completion Status Codes" (class in bits 63:32). Cross-checked against the published TDX
//!   module source (`intel/tdx-module`: `tdg_vp_info.c`, `tdg_vp_veinfo_get.c`,
//!   `tdg_mr_rtmr_extend.c`, `tdx_error_codes_defs.h`) and Linux `arch/x86/coco/tdx`.
//! * Intel TDX Guest-Hypervisor Communication Interface (GHCI) 1.0 / 1.5: "TDG.VP.VMCALL
//!   Sub-function" table (leaf 0 in R10 = standard, sub-function in R11), Instruction.CPUID,
//!   Instruction.IO, Instruction.RDMSR/WRMSR, Instruction.HLT, MapGPA, GetQuote,
//!   ReportFatalError, and the "TDG.VP.VMCALL completion status codes" (returned in R10).
//! * Intel SDM Vol. 3C, "Exit Qualification for I/O Instructions" (Table 28-5) and the basic
//!   exit reasons (Appendix C), which #VE info reuses.

/// TDCALL leaf numbers (RAX on input; Module ABI "TDCALL Instruction Leaf Numbers").
pub mod leaf {
    pub const VP_VMCALL: u64 = 0;
    pub const VP_INFO: u64 = 1;
    pub const MR_RTMR_EXTEND: u64 = 2;
    pub const VP_VEINFO_GET: u64 = 3;
    pub const MR_REPORT: u64 = 4;
    pub const MEM_PAGE_ACCEPT: u64 = 6;
}

/// TDCALL completion status (RAX on output). Bits 63:32 are the status class: bit 63 = error,
/// bit 62 = non-recoverable; bits 31:0 carry details (often the operand id), which the
/// comparisons below ignore.
pub mod status {
    pub const SUCCESS: u64 = 0;
    pub const CLASS_MASK: u64 = 0xFFFF_FFFF_0000_0000;
    pub const OPERAND_INVALID: u64 = 0xC000_0100_0000_0000;
    pub const OPERAND_BUSY: u64 = 0x8000_0200_0000_0000;
    pub const INTERRUPTED_RESUMABLE: u64 = 0x8000_0003_0000_0000;
    pub const PAGE_ALREADY_ACCEPTED: u64 = 0x0000_0B0A_0000_0000;
    pub const PAGE_SIZE_MISMATCH: u64 = 0xC000_0B0B_0000_0000;
}

/// A TDCALL completion status, by class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TdcallStatus {
    Success,
    /// TDG.MEM.PAGE.ACCEPT of a page that is already accepted (a warning: bit 63 clear).
    AlreadyAccepted,
    /// TDG.MEM.PAGE.ACCEPT at a level the Secure EPT does not map (retry with 4 KiB).
    SizeMismatch,
    /// A shared resource is busy: the call may be retried.
    Busy,
    /// The call was interrupted and may be resumed by calling it again.
    Interrupted,
    OperandInvalid,
    Other(u64),
}

impl TdcallStatus {
    pub const fn decode(rax: u64) -> Self {
        if rax == status::SUCCESS {
            return Self::Success;
        }
        match rax & status::CLASS_MASK {
            status::PAGE_ALREADY_ACCEPTED => Self::AlreadyAccepted,
            status::PAGE_SIZE_MISMATCH => Self::SizeMismatch,
            status::OPERAND_BUSY => Self::Busy,
            status::INTERRUPTED_RESUMABLE => Self::Interrupted,
            status::OPERAND_INVALID => Self::OperandInvalid,
            _ => Self::Other(rax),
        }
    }

    /// Bit 63 of the class: an error (as opposed to success or a warning).
    pub const fn is_error(rax: u64) -> bool {
        rax & (1 << 63) != 0
    }
}

/// TDG.VP.VMCALL: which registers the TD exposes to the VMM (RCX bitmap, one bit per GPR
/// number: RAX = 0 … R15 = 15). R10–R15 carry the standard GHCI calls' operands; every other
/// GPR stays hidden (the TDX module preserves it).
pub mod expose {
    pub const R10: u64 = 1 << 10;
    pub const R11: u64 = 1 << 11;
    pub const R12: u64 = 1 << 12;
    pub const R13: u64 = 1 << 13;
    pub const R14: u64 = 1 << 14;
    pub const R15: u64 = 1 << 15;
    /// R10–R15 (0xFC00): the mask the runtime uses for every TDVMCALL.
    pub const R10_TO_R15: u64 = R10 | R11 | R12 | R13 | R14 | R15;
}

/// R10 on input: 0 selects a standard GHCI TDVMCALL whose sub-function is in R11.
pub const VMCALL_STANDARD: u64 = 0;

/// TDG.VP.VMCALL sub-functions (R11; GHCI "TDG.VP.VMCALL Sub-function" table). The
/// `Instruction.*` ones reuse the VMX basic exit reason of the instruction.
pub mod vmcall {
    pub const INSTRUCTION_CPUID: u64 = 10;
    pub const INSTRUCTION_HLT: u64 = 12;
    pub const INSTRUCTION_IO: u64 = 30;
    pub const INSTRUCTION_RDMSR: u64 = 31;
    pub const INSTRUCTION_WRMSR: u64 = 32;
    pub const MAP_GPA: u64 = 0x1_0001;
    pub const GET_QUOTE: u64 = 0x1_0002;
    pub const REPORT_FATAL_ERROR: u64 = 0x1_0003;
    pub const SETUP_EVENT_NOTIFY: u64 = 0x1_0004;
}

/// TDG.VP.VMCALL completion status (R10 on output; GHCI "TDG.VP.VMCALL completion status").
pub mod vmcall_status {
    pub const SUCCESS: u64 = 0;
    /// MapGPA: partially done, resume at the GPA in R11.
    pub const RETRY: u64 = 1;
    pub const OPERAND_INVALID: u64 = 0x8000_0000_0000_0000;
    pub const GPA_INUSE: u64 = 0x8000_0000_0000_0001;
    pub const ALIGN_ERROR: u64 = 0x8000_0000_0000_0002;
}

/// Instruction.IO direction (R13).
pub const IO_READ: u64 = 0;
pub const IO_WRITE: u64 = 1;

/// ReportFatalError R12 bit 63: R13 holds the GPA of an error-information page. The runtime
/// never sets it (no shared page may be needed to die).
pub const FATAL_ERROR_GPA_VALID: u64 = 1 << 63;

/// TDG.VP.VMCALL<ReportFatalError> (GHCI 1.5, "TDG.VP.VMCALL<ReportFatalError>" input operands):
/// R12 is the error code — the TD-specific code in bits 31:16, bits 15:0 zero, bit 63 "R13
/// holds a GPA" — and up to 64 bytes of text ride in R14, R15, RBX, RDI, RSI, R8, R9, RDX, in
/// that order, each exposed through the RCX mask.
///
/// QEMU (`target/i386/kvm/tdx.c` `tdx_handle_report_fatal_error`, 10.1) refuses an error code
/// with any of bits 15:0 set — it then stops the vCPU without recording a guest panic, so the
/// loader sees a hang, not a failure — and copies the message from exactly the masked registers
/// of that list, packed in that order, followed by a NUL. [`ReportFatalError::new`] always
/// exposes all eight, so the text arrives whole and in order.
pub mod fatal {
    /// Bytes of text the message registers carry.
    pub const MESSAGE_LEN: usize = 64;
    /// The message registers by GPR number (RAX 0, RCX 1, RDX 2, RBX 3, RSP 4, RBP 5, RSI 6,
    /// RDI 7, R8..R15 8..15), in the order their bytes form the text.
    pub const MESSAGE_REGISTERS: [u8; 8] = [14, 15, 3, 7, 6, 8, 9, 2];
    /// Bits of R12 a TD-specific code may not use (QEMU's check).
    pub const RESERVED_CODE_BITS: u64 = 0xFFFF;
}

/// The registers of one ReportFatalError call, ready to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportFatalError {
    /// R12: the error code (`reason << 16`).
    pub r12: u64,
    /// RCX: R10–R15 and the other message registers.
    pub rcx: u64,
    /// The message registers' values, in [`fatal::MESSAGE_REGISTERS`] order (R14 first),
    /// little-endian text, zero-padded.
    pub message: [u64; 8],
}

impl ReportFatalError {
    /// The call for the TD-specific `reason` (bits 31:16 of R12; bits 15:0 stay zero, as QEMU
    /// requires) with `text` (at most [`fatal::MESSAGE_LEN`] bytes are sent; a longer text is cut).
    pub const fn new(reason: u16, text: &[u8]) -> Self {
        let mut message = [0u64; 8];
        let mut i = 0;
        while i < text.len() && i < fatal::MESSAGE_LEN {
            message[i / 8] |= (text[i] as u64) << (8 * (i % 8));
            i += 1;
        }
        let mut rcx = expose::R10_TO_R15;
        let mut r = 0;
        while r < fatal::MESSAGE_REGISTERS.len() {
            rcx |= 1 << fatal::MESSAGE_REGISTERS[r];
            r += 1;
        }
        Self { r12: (reason as u64) << 16, rcx, message }
    }

    /// The TD-specific reason (bits 31:16 of R12).
    pub const fn reason(&self) -> u16 {
        (self.r12 >> 16) as u16
    }
}

/// The host's reading of a ReportFatalError (what QEMU's handler does with the TD's registers,
/// `gprs` indexed by GPR number): `None` when the error code has any of bits 15:0 set (QEMU
/// refuses it); else the message, taken from the masked message registers in GHCI order, up to
/// its first NUL.
pub fn read_fatal_message(rcx: u64, gprs: &[u64; 16]) -> Option<([u8; fatal::MESSAGE_LEN], usize)> {
    if gprs[12] & fatal::RESERVED_CODE_BITS != 0 {
        return None;
    }
    let mut text = [0u8; fatal::MESSAGE_LEN];
    let mut at = 0;
    for &register in &fatal::MESSAGE_REGISTERS {
        if rcx & (1 << register) != 0 {
            text[at..at + 8].copy_from_slice(&gprs[usize::from(register)].to_le_bytes());
            at += 8;
        }
    }
    let len = text[..at].iter().position(|&b| b == 0).unwrap_or(at);
    Some((text, len))
}

/// TDG.MEM.PAGE.ACCEPT levels (RCX bits 2:0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum PageLevel {
    Size4K = 0,
    Size2M = 1,
}

impl PageLevel {
    pub const fn bytes(self) -> u64 {
        match self {
            Self::Size4K => 0x1000,
            Self::Size2M => 0x20_0000,
        }
    }
}

/// RCX of TDG.MEM.PAGE.ACCEPT: the page's GPA (aligned to its level) with the level in bits
/// 2:0. `None` for a misaligned GPA.
pub const fn accept_operand(gpa: u64, level: PageLevel) -> Option<u64> {
    if !gpa.is_multiple_of(level.bytes()) {
        return None;
    }
    Some(gpa | level as u64)
}

/// TDG.MR.REPORT: the TDREPORT buffer's alignment, REPORTDATA's, and the only sub-type (0).
pub const REPORT_ALIGN: usize = 1024;
pub const REPORT_DATA_ALIGN: usize = 64;
pub const REPORT_SUBTYPE: u64 = 0;
/// TDG.MR.RTMR.EXTEND: the 48-byte extension data's alignment, and the number of RTMRs (a TD
/// may extend any of 0..=3: the module checks `index < NUM_RTMRS`).
pub const RTMR_EXTEND_ALIGN: usize = 64;
pub const NUM_RTMRS: u64 = 4;

/// TDG.VP.INFO's outputs (Module ABI TDG.VP.INFO "Output Operands").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TdInfo {
    /// RCX[5:0]: the effective GPA width (48 or 52).
    pub gpaw: u8,
    /// RDX: TD ATTRIBUTES.
    pub attributes: u64,
    /// R8[31:0]: vCPUs initialised; R8[63:32]: the maximum.
    pub num_vcpus: u32,
    pub max_vcpus: u32,
    /// R9[31:0]: this vCPU's index.
    pub vcpu_index: u32,
}

/// TD ATTRIBUTES bit 0: DEBUG (the TD's state is readable by the host: nothing is secret).
pub const ATTRIBUTE_DEBUG: u64 = 1 << 0;

impl TdInfo {
    pub const fn decode(rcx: u64, rdx: u64, r8: u64, r9: u64) -> Self {
        Self {
            gpaw: (rcx & 0x3F) as u8,
            attributes: rdx,
            num_vcpus: r8 as u32,
            max_vcpus: (r8 >> 32) as u32,
            vcpu_index: r9 as u32,
        }
    }

    /// The shared bit, 1 << (GPAW − 1), for the GPA widths TDX defines (48, 52); `None`
    /// otherwise (a corrupt answer must not become a shift of the wrong bit).
    pub const fn shared_bit(&self) -> Option<u64> {
        match self.gpaw {
            48 | 52 => Some(1 << (self.gpaw - 1)),
            _ => None,
        }
    }
}

/// VMX basic exit reasons that #VE reports (SDM Vol. 3D Appendix C).
pub mod exit_reason {
    pub const CPUID: u32 = 10;
    pub const HLT: u32 = 12;
    pub const IO: u32 = 30;
    pub const RDMSR: u32 = 31;
    pub const WRMSR: u32 = 32;
    pub const EPT_VIOLATION: u32 = 48;
}

/// TDG.VP.VEINFO.GET's outputs (Module ABI "Output Operands": RCX exit reason, RDX exit
/// qualification, R8 guest linear address, R9 guest physical address, R10[31:0] instruction
/// length, R10[63:32] instruction information).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VeInfo {
    pub exit_reason: u32,
    pub exit_qualification: u64,
    pub gla: u64,
    pub gpa: u64,
    pub instruction_length: u32,
    pub instruction_info: u32,
}

impl VeInfo {
    pub const fn decode(rcx: u64, rdx: u64, r8: u64, r9: u64, r10: u64) -> Self {
        Self {
            exit_reason: rcx as u32,
            exit_qualification: rdx,
            gla: r8,
            gpa: r9,
            instruction_length: r10 as u32,
            instruction_info: (r10 >> 32) as u32,
        }
    }
}

/// The exit qualification of an I/O instruction (SDM Vol. 3C Table 28-5): bits 2:0 size − 1,
/// bit 3 direction (1 = IN), bit 4 string, bit 5 REP, bit 6 operand (1 = immediate), bits
/// 31:16 the port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoQualification {
    pub size: u8,
    pub is_in: bool,
    pub string: bool,
    pub port: u16,
}

impl IoQualification {
    /// `None` for a size encoding other than 1, 2 or 4 bytes.
    pub const fn decode(qualification: u64) -> Option<Self> {
        let size = match qualification & 0x7 {
            0 => 1,
            1 => 2,
            3 => 4,
            _ => return None,
        };
        Some(Self {
            size,
            is_in: qualification & (1 << 3) != 0,
            string: qualification & (1 << 4) != 0,
            port: (qualification >> 16) as u16,
        })
    }
}

/// The value an IN of `size` bytes leaves in RAX: the low `size` bytes replaced, the rest kept
/// (a 32-bit IN zero-extends into RAX, as any 32-bit register write does).
pub const fn merge_in(rax: u64, value: u64, size: u8) -> u64 {
    match size {
        1 => (rax & !0xFF) | (value & 0xFF),
        2 => (rax & !0xFFFF) | (value & 0xFFFF),
        _ => value & 0xFFFF_FFFF,
    }
}

/// The value an OUT of `size` bytes takes from RAX.
pub const fn out_value(rax: u64, size: u8) -> u64 {
    match size {
        1 => rax & 0xFF,
        2 => rax & 0xFFFF,
        _ => rax & 0xFFFF_FFFF,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes_ignore_the_detail_bits() {
        assert_eq!(TdcallStatus::decode(0), TdcallStatus::Success);
        // PAGE_ALREADY_ACCEPTED with the operand id of RCX (1) in the low bits.
        assert_eq!(TdcallStatus::decode(0x0000_0B0A_0000_0001), TdcallStatus::AlreadyAccepted);
        assert_eq!(TdcallStatus::decode(0xC000_0B0B_0000_0001), TdcallStatus::SizeMismatch);
        assert_eq!(TdcallStatus::decode(0x8000_0200_0000_0000), TdcallStatus::Busy);
        assert_eq!(TdcallStatus::decode(0x8000_0003_0000_0000), TdcallStatus::Interrupted);
        assert_eq!(TdcallStatus::decode(0xC000_0100_0000_0002), TdcallStatus::OperandInvalid);
        assert_eq!(TdcallStatus::decode(0xC000_0B0D_0000_0000), TdcallStatus::Other(0xC000_0B0D_0000_0000));
        assert!(!TdcallStatus::is_error(0x0000_0B0A_0000_0000));
        assert!(TdcallStatus::is_error(0xC000_0B0B_0000_0000));
    }

    #[test]
    fn accept_operand_puts_the_level_in_the_low_bits() {
        assert_eq!(accept_operand(0x80_0000, PageLevel::Size2M), Some(0x80_0001));
        assert_eq!(accept_operand(0x80_1000, PageLevel::Size4K), Some(0x80_1000));
        assert_eq!(accept_operand(0x80_1000, PageLevel::Size2M), None);
        assert_eq!(accept_operand(0x80_1001, PageLevel::Size4K), None);
    }

    #[test]
    fn vp_info_decodes_gpaw_and_the_shared_bit() {
        // RCX = 0x34 (GPAW 52) with junk above bit 5; R8 = max 4 << 32 | num 1; R9 = index 0.
        let info = TdInfo::decode(0xFFC0 | 52, 0x1000_0000, (4 << 32) | 1, 0);
        assert_eq!(info.gpaw, 52);
        assert_eq!(info.shared_bit(), Some(0x0008_0000_0000_0000));
        assert_eq!((info.num_vcpus, info.max_vcpus, info.vcpu_index), (1, 4, 0));
        assert_eq!(TdInfo::decode(48, 0, 0, 0).shared_bit(), Some(0x0000_8000_0000_0000));
        assert_eq!(TdInfo::decode(40, 0, 0, 0).shared_bit(), None);
        assert_eq!(TdInfo::decode(0, 0, 0, 0).shared_bit(), None);
    }

    #[test]
    fn ve_info_splits_r10_into_length_and_info() {
        let ve = VeInfo::decode(30, 0x3F8_0008, 0, 0, (0x1234_5678 << 32) | 1);
        assert_eq!(ve.exit_reason, exit_reason::IO);
        assert_eq!(ve.instruction_length, 1);
        assert_eq!(ve.instruction_info, 0x1234_5678);
    }

    #[test]
    fn io_qualification_decodes_size_direction_and_port() {
        // `in al, dx` with DX = 0x3F8: size 0 (1 byte), bit 3 (IN), port in 31:16.
        assert_eq!(
            IoQualification::decode(0x03F8_0008),
            Some(IoQualification { size: 1, is_in: true, string: false, port: 0x3F8 })
        );
        // `out 0xF4, eax`: size 3 (4 bytes), OUT, immediate operand (bit 6).
        assert_eq!(
            IoQualification::decode(0x00F4_0043),
            Some(IoQualification { size: 4, is_in: false, string: false, port: 0xF4 })
        );
        // `out dx, ax` to 0x2F8.
        assert_eq!(
            IoQualification::decode(0x02F8_0001),
            Some(IoQualification { size: 2, is_in: false, string: false, port: 0x2F8 })
        );
        // `rep outsb`: string and REP.
        assert_eq!(IoQualification::decode(0x02F8_0030).map(|q| q.string), Some(true));
        // Size encoding 2 (3 bytes) does not exist.
        assert_eq!(IoQualification::decode(0x02F8_0002), None);
    }

    #[test]
    fn in_merges_into_rax_as_the_cpu_would() {
        let rax = 0xDEAD_BEEF_1234_5678;
        assert_eq!(merge_in(rax, 0xAB, 1), 0xDEAD_BEEF_1234_56AB);
        assert_eq!(merge_in(rax, 0xABCD, 2), 0xDEAD_BEEF_1234_ABCD);
        assert_eq!(merge_in(rax, 0xFFFF_FFFF_ABCD_EF01, 4), 0x0000_0000_ABCD_EF01);
        assert_eq!(out_value(rax, 1), 0x78);
        assert_eq!(out_value(rax, 2), 0x5678);
        assert_eq!(out_value(rax, 4), 0x1234_5678);
    }

    /// The registers as the TDX module hands them to the VMM for `call`.
    fn gprs_of(call: &ReportFatalError) -> [u64; 16] {
        let mut gprs = [0u64; 16];
        gprs[1] = call.rcx;
        gprs[10] = VMCALL_STANDARD;
        gprs[11] = vmcall::REPORT_FATAL_ERROR;
        gprs[12] = call.r12;
        for (value, &register) in call.message.iter().zip(&fatal::MESSAGE_REGISTERS) {
            gprs[usize::from(register)] = *value;
        }
        gprs
    }

    #[test]
    fn fatal_error_puts_the_reason_in_bits_31_16_and_the_text_in_ghci_order() {
        let call = ReportFatalError::new(0x5401, b"TWI: TDG.VP.INFO failed");
        assert_eq!(call.r12, 0x5401_0000);
        assert_eq!(call.r12 & fatal::RESERVED_CODE_BITS, 0, "QEMU refuses a code with bits 15:0 set");
        assert_eq!(call.reason(), 0x5401);
        // R14 carries the first 8 bytes, little-endian; R15 the next.
        assert_eq!(call.message[0], u64::from_le_bytes(*b"TWI: TDG"));
        assert_eq!(call.message[1], u64::from_le_bytes(*b".VP.INFO"));
        // R10–R15, RBX (3), RDX (2), RSI (6), RDI (7), R8, R9; never RAX, RCX, RSP, RBP.
        assert_eq!(call.rcx, 0xFFCC);
        let (text, len) = read_fatal_message(call.rcx, &gprs_of(&call)).unwrap();
        assert_eq!(&text[..len], b"TWI: TDG.VP.INFO failed");
        for reason in [0, 1, 0x5412, u16::MAX] {
            assert_eq!(ReportFatalError::new(reason, b"").r12 & 0xFFFF, 0);
        }
    }

    #[test]
    fn fatal_error_text_fills_all_eight_registers_and_is_cut_at_64_bytes() {
        let long = [b'x'; 80];
        let call = ReportFatalError::new(7, &long);
        assert!(call.message.iter().all(|&r| r == u64::from_le_bytes([b'x'; 8])));
        let (text, len) = read_fatal_message(call.rcx, &gprs_of(&call)).unwrap();
        assert_eq!((len, &text[..]), (64, &[b'x'; 64][..]));
        // QEMU packs only the masked registers: a mask without RBX would shift the text, so the
        // call must expose every message register.
        let (_, short) = read_fatal_message(call.rcx & !(1 << 3), &gprs_of(&call)).unwrap();
        assert_eq!(short, 56);
        // The host's check: a code in bits 15:0 (the old 0x5457_00xx codes) is refused.
        let mut old = gprs_of(&call);
        old[12] = 0x5457_0010;
        assert_eq!(read_fatal_message(call.rcx, &old), None);
    }

    #[test]
    fn the_standard_mask_exposes_r10_to_r15_only() {
        assert_eq!(expose::R10_TO_R15, 0xFC00);
    }
}
