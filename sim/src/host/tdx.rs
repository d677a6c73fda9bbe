//! The checks KVM and QEMU make on a TD's TDG.VP.VMCALLs (Intel GHCI 1.5: MapGPA, GetQuote,
//! ReportFatalError), over the registers and shared memory the host sees.
//!
//! Mirrored functions: Linux `arch/x86/kvm/vmx/tdx.c` `tdx_map_gpa` and `tdx_get_quote`; QEMU
//! `target/i386/kvm/tdx.c` `tdx_handle_get_quote` and `tdx_handle_report_fatal_error` (10.1).

use twi_attester::tdx::abi::{FATAL_ERROR_GPA_VALID, fatal, read_fatal_message, vmcall_status};
use twi_attester::tdx::getquote;

use super::{Answer, Refusal};

const PAGE: u64 = 4096;

/// How a TD with guest physical address width `gpaw` addresses memory: legal GPAs are below
/// `1 << gpaw` and the shared bit is the top one (TDX Module ABI, GPAW; KVM
/// `kvm_vcpu_is_legal_gpa` and `vt_is_tdx_private_gpa`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gpaw(pub u8);

impl Gpaw {
    pub const fn shared_bit(self) -> u64 {
        1 << (self.0 - 1)
    }

    const fn is_legal(self, gpa: u64) -> bool {
        gpa < (1 << self.0)
    }

    const fn is_shared(self, gpa: u64) -> bool {
        gpa & self.shared_bit() != 0
    }
}

/// What MapGPA asked for, once the host accepted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapGpa {
    /// The range without the shared bit.
    pub start: u64,
    pub size: u64,
    /// True to map it shared (the shared bit was set), false to map it private.
    pub shared: bool,
}

/// TDG.VP.VMCALL<MapGPA> (R12 = GPA with the shared bit saying which way, R13 = size), as KVM
/// `tdx_map_gpa` checks it: the range must not wrap, both ends must be legal GPAs on the same
/// side of the shared bit (else INVALID_OPERAND), and start and size must be 4 KiB aligned
/// (else ALIGN_ERROR).
pub fn map_gpa(gpa: u64, size: u64, gpaw: Gpaw) -> Result<MapGpa, Refusal> {
    const MIRRORS: &str = "Linux arch/x86/kvm/vmx/tdx.c tdx_map_gpa";
    let invalid = |reason| Refusal::new(Answer::Tdvmcall(vmcall_status::OPERAND_INVALID), reason, MIRRORS);
    let end = gpa.checked_add(size).filter(|&end| end > gpa).ok_or(invalid("the range is empty or wraps"))?;
    let last = end - 1;
    if !gpaw.is_legal(gpa) || !gpaw.is_legal(last) {
        return Err(invalid("the range lies beyond the TD's guest physical address width"));
    }
    if gpaw.is_shared(gpa) != gpaw.is_shared(last) {
        return Err(invalid("the range straddles the shared bit"));
    }
    if !gpa.is_multiple_of(PAGE) || !size.is_multiple_of(PAGE) {
        return Err(Refusal::new(
            Answer::Tdvmcall(vmcall_status::ALIGN_ERROR),
            "the GPA or the size is not 4 KiB aligned",
            MIRRORS,
        ));
    }
    Ok(MapGpa { start: gpa & !gpaw.shared_bit(), size, shared: gpaw.is_shared(gpa) })
}

/// TDG.VP.VMCALL<GetQuote> (R12 = the buffer's GPA, R13 = its size), as KVM `tdx_get_quote`
/// (the buffer must be shared) and QEMU `tdx_handle_get_quote` (size non-zero, GPA and size
/// 4 KiB aligned) check the call itself. Returns the GPA QEMU sees (KVM strips the shared bit).
pub fn get_quote_call(gpa: u64, size: u64, gpaw: Gpaw) -> Result<u64, Refusal> {
    if !gpaw.is_shared(gpa) {
        return Err(Refusal::new(
            Answer::Tdvmcall(vmcall_status::OPERAND_INVALID),
            "the GetQuote buffer is private memory (its GPA lacks the shared bit)",
            "Linux arch/x86/kvm/vmx/tdx.c tdx_get_quote",
        ));
    }
    const MIRRORS: &str = "QEMU target/i386/kvm/tdx.c tdx_handle_get_quote";
    if size == 0 {
        return Err(Refusal::new(Answer::Tdvmcall(vmcall_status::OPERAND_INVALID), "the size is 0", MIRRORS));
    }
    let gpa = gpa & !gpaw.shared_bit();
    if !gpa.is_multiple_of(PAGE) || !size.is_multiple_of(PAGE) {
        return Err(Refusal::new(
            Answer::Tdvmcall(vmcall_status::ALIGN_ERROR),
            "the buffer's GPA or size is not 4 KiB aligned",
            MIRRORS,
        ));
    }
    Ok(gpa)
}

/// The GetQuote buffer's header as QEMU `tdx_handle_get_quote` checks it, for a buffer of
/// `size` bytes whose start is `buffer`: structure version 1, size at most 128 KiB, and `in_len`
/// within the buffer after the 24-byte header (each else INVALID_OPERAND). Returns `in_len`.
pub fn get_quote_header(size: u64, buffer: &[u8]) -> Result<u32, Refusal> {
    const MIRRORS: &str = "QEMU target/i386/kvm/tdx.c tdx_handle_get_quote";
    let invalid = |reason| Refusal::new(Answer::Tdvmcall(vmcall_status::OPERAND_INVALID), reason, MIRRORS);
    let header: &[u8; getquote::HEADER_SIZE] = buffer
        .get(..getquote::HEADER_SIZE)
        .and_then(|h| h.try_into().ok())
        .ok_or(invalid("the buffer is shorter than the 24-byte header"))?;
    let header = getquote::Header::parse(header);
    if header.version != getquote::VERSION {
        return Err(invalid("the header's structure version is not 1"));
    }
    if size > getquote::MAX_BUFFER as u64 {
        return Err(invalid("the buffer is larger than 128 KiB"));
    }
    if u64::from(header.in_len) > size.saturating_sub(getquote::HEADER_SIZE as u64) {
        return Err(invalid("in_len runs past the end of the buffer"));
    }
    Ok(header.in_len)
}

/// A fatal error as the host records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatalReport {
    /// The TD-specific code: R12 bits 31:16.
    pub reason: u16,
    /// The text from the message registers (up to its first NUL), if any register was exposed.
    pub message: Option<String>,
    /// R13, when R12 bit 63 says it holds the GPA of an error-information page.
    pub gpa: Option<u64>,
}

/// TDG.VP.VMCALL<ReportFatalError> as QEMU `tdx_handle_report_fatal_error` reads it from the
/// TD's registers (`gprs` indexed by GPR number, RCX = the exposure mask): an error code with
/// any of bits 15:0 set is refused — QEMU logs it and stops the vCPU without recording a guest
/// panic — else the TD ends with the code, the message and the optional GPA recorded.
pub fn report_fatal_error(gprs: &[u64; 16]) -> Result<FatalReport, Refusal> {
    let code = gprs[12];
    if code & fatal::RESERVED_CODE_BITS != 0 {
        return Err(Refusal::new(
            Answer::TdPaused,
            "the error code has bits 15:0 set",
            "QEMU target/i386/kvm/tdx.c tdx_handle_report_fatal_error",
        ));
    }
    let rcx = gprs[1];
    let message = read_fatal_message(rcx, gprs)
        .filter(|_| rcx != 0)
        .map(|(text, len)| String::from_utf8_lossy(&text[..len]).into_owned());
    let gpa = (code & FATAL_ERROR_GPA_VALID != 0).then_some(gprs[13]);
    Ok(FatalReport { reason: (code >> 16) as u16, message, gpa })
}

#[cfg(test)]
mod tests {
    use super::*;
    use twi_attester::tdx::abi::ReportFatalError;
    use twi_attester::tdx::td_report::TD_REPORT_SIZE;

    const GPAW: Gpaw = Gpaw(52);

    /// The TD's registers for a ReportFatalError call the guest encoded.
    fn registers(call: &ReportFatalError) -> [u64; 16] {
        let mut gprs = [0u64; 16];
        gprs[1] = call.rcx;
        gprs[12] = call.r12;
        for (value, register) in call.message.iter().zip(fatal::MESSAGE_REGISTERS) {
            gprs[register as usize] = *value;
        }
        gprs
    }

    #[test]
    fn the_guests_fatal_error_calls_reach_qemu_whole() {
        for (reason, text) in [(0x5401u16, "TWI: #VE not handled"), (0xFFFF, ""), (1, &"x".repeat(70))] {
            let report = report_fatal_error(&registers(&ReportFatalError::new(reason, text.as_bytes()))).unwrap();
            assert_eq!(report.reason, reason);
            let sent = &text.as_bytes()[..text.len().min(fatal::MESSAGE_LEN)];
            assert_eq!(report.message.as_deref().map(str::as_bytes), Some(sent));
            assert_eq!(report.gpa, None);
        }
    }

    #[test]
    fn qemu_pauses_a_td_whose_fatal_code_uses_bits_15_to_0() {
        let mut gprs = registers(&ReportFatalError::new(0x5401, b"TWI"));
        for low in [1u64, 0x8000, 0xFFFF] {
            gprs[12] = (0x5401 << 16) | low;
            let refusal = report_fatal_error(&gprs).unwrap_err();
            assert_eq!(refusal.answer, Answer::TdPaused);
            assert!(refusal.mirrors.contains("tdx_handle_report_fatal_error"), "{refusal}");
        }
        // Bit 63 hands QEMU R13 as a GPA; no exposed register means no message.
        let mut gprs = [0u64; 16];
        gprs[12] = FATAL_ERROR_GPA_VALID | (7 << 16);
        gprs[13] = 0x1000;
        assert_eq!(report_fatal_error(&gprs), Ok(FatalReport { reason: 7, message: None, gpa: Some(0x1000) }));
    }

    /// The runtime's one MapGPA: the whole shared pool, with the shared bit (`tdx::init`).
    #[test]
    fn the_runtimes_shared_pool_mapping_passes_kvm() {
        let pool = twi_linker::SHARED_POOL;
        let size = (pool.end - pool.start) as u64;
        for gpaw in [Gpaw(48), Gpaw(52)] {
            let mapped = map_gpa(pool.start as u64 | gpaw.shared_bit(), size, gpaw).unwrap();
            assert_eq!(mapped, MapGpa { start: pool.start as u64, size, shared: true });
        }
    }

    #[test]
    fn kvm_refuses_map_gpa_ranges_it_cannot_map() {
        let shared = GPAW.shared_bit();
        let cases = [
            (shared | 0x1000, 0, vmcall_status::OPERAND_INVALID),      // empty
            (!0xFFF, 0x2000, vmcall_status::OPERAND_INVALID),          // wraps
            (1 << 52, 0x1000, vmcall_status::OPERAND_INVALID),         // beyond GPAW
            (shared - 0x1000, 0x2000, vmcall_status::OPERAND_INVALID), // straddles the shared bit
            (shared | 0x1800, 0x1000, vmcall_status::ALIGN_ERROR),
            (shared | 0x1000, 0x1800, vmcall_status::ALIGN_ERROR),
        ];
        for (gpa, size, status) in cases {
            let refusal = map_gpa(gpa, size, GPAW).unwrap_err();
            assert_eq!(refusal.answer, Answer::Tdvmcall(status), "{gpa:#x}+{size:#x}: {refusal}");
            assert!(refusal.mirrors.ends_with("tdx_map_gpa"));
        }
        assert!(!map_gpa(0x1000, 0x1000, GPAW).unwrap().shared);
    }

    /// The runtime's GetQuote buffer (header + TDREPORT in a whole-page shared buffer of the
    /// runtime's size) passes KVM's and QEMU's checks.
    #[test]
    fn the_runtimes_get_quote_buffer_passes_qemu() {
        let size = twi_proto::msg::MAX_DOORBELL_RESPONSE;
        let mut buffer = vec![0u8; size];
        let len = getquote::encode_request(&[7; TD_REPORT_SIZE], &mut buffer).unwrap();
        assert_eq!(len, getquote::HEADER_SIZE + TD_REPORT_SIZE);
        let gpa = GPAW.shared_bit() | 0xC0_0000;
        assert_eq!(get_quote_call(gpa, size as u64, GPAW), Ok(0xC0_0000));
        assert_eq!(get_quote_header(size as u64, &buffer), Ok(TD_REPORT_SIZE as u32));
    }

    #[test]
    fn kvm_and_qemu_refuse_get_quote_calls_and_headers() {
        let shared = GPAW.shared_bit();
        for (gpa, size, status) in [
            (0xC0_0000, 0x3000, vmcall_status::OPERAND_INVALID), // private buffer
            (shared | 0xC0_0000, 0, vmcall_status::OPERAND_INVALID),
            (shared | 0xC0_0800, 0x3000, vmcall_status::ALIGN_ERROR),
            (shared | 0xC0_0000, 0x2800, vmcall_status::ALIGN_ERROR),
        ] {
            assert_eq!(get_quote_call(gpa, size, GPAW).unwrap_err().answer, Answer::Tdvmcall(status));
        }
        let mut buffer = vec![0u8; 0x3000];
        getquote::encode_request(&[7; TD_REPORT_SIZE], &mut buffer).unwrap();
        let refused = |size: u64, buffer: &[u8]| get_quote_header(size, buffer).unwrap_err().answer;
        let invalid = Answer::Tdvmcall(vmcall_status::OPERAND_INVALID);
        let mut version_2 = buffer.clone();
        version_2[0] = 2;
        assert_eq!(refused(0x3000, &version_2), invalid);
        assert_eq!(refused(0x3000, &buffer[..20]), invalid);
        assert_eq!(refused(0x21000, &buffer), invalid); // over 128 KiB
        let mut long = buffer.clone();
        long[16..20].copy_from_slice(&(0x3000u32 - 23).to_le_bytes());
        assert_eq!(refused(0x3000, &long), invalid);
        long[16..20].copy_from_slice(&(0x3000u32 - 24).to_le_bytes());
        assert_eq!(get_quote_header(0x3000, &long), Ok(0x3000 - 24));
    }
}
