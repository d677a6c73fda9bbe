//! The Guest-Hypervisor Communication Block (AMD "SEV-ES Guest-Hypervisor Communication Block
//! Standardization", publication 56421, version 2.x): the page layout the guest fills before a
//! VMGEXIT, the GHCB MSR protocol used before a GHCB exists, and the exit codes the runtime
//! uses. Pure encoders and decoders; the runtime owns the page and the VMGEXIT.

/// MSR_AMD64_SEV_ES_GHCB: the GHCB MSR.
pub const GHCB_MSR: u32 = 0xC001_0130;
/// MSR_AMD64_SEV: SEV_STATUS (bit 0 SEV, bit 1 SEV-ES, bit 2 SEV-SNP).
pub const SEV_STATUS_MSR: u32 = 0xC001_0131;
pub const SEV_STATUS_SNP: u64 = 1 << 2;

/// The GHCB protocol version the runtime speaks (2: SEV-SNP support).
pub const PROTOCOL_VERSION: u16 = 2;

/// Offsets in the GHCB page (spec Table "GHCB Layout"; the save area follows the VMSA).
pub mod offset {
    pub const CPL: usize = 0x0CB;
    pub const RAX: usize = 0x1F8;
    pub const RCX: usize = 0x308;
    pub const RDX: usize = 0x310;
    pub const RBX: usize = 0x318;
    pub const SW_EXIT_CODE: usize = 0x390;
    pub const SW_EXIT_INFO_1: usize = 0x398;
    pub const SW_EXIT_INFO_2: usize = 0x3A0;
    pub const SW_SCRATCH: usize = 0x3A8;
    pub const XCR0: usize = 0x3E8;
    pub const VALID_BITMAP: usize = 0x3F0;
    pub const SHARED_BUFFER: usize = 0x800;
    pub const SHARED_BUFFER_SIZE: usize = 2032;
    pub const PROTOCOL_VERSION: usize = 0xFFA;
    pub const GHCB_USAGE: usize = 0xFFC;
}
pub const GHCB_SIZE: usize = 4096;
const _: () = assert!(offset::SHARED_BUFFER + offset::SHARED_BUFFER_SIZE + 10 == offset::PROTOCOL_VERSION);
const _: () = assert!(offset::PROTOCOL_VERSION + 2 == offset::GHCB_USAGE && offset::GHCB_USAGE + 4 == GHCB_SIZE);
const _: () = assert!(offset::VALID_BITMAP + 16 == 0x400);

/// The valid-bitmap bit of a save-area field: its quadword index.
pub const fn valid_bit(field_offset: usize) -> usize {
    field_offset / 8
}

/// SW_EXITCODE values (GHCB spec Table "Non-Automatic Exit (NAE) events" and the SEV-SNP
/// additions).
pub mod exit_code {
    pub const CPUID: u64 = 0x72;
    pub const IOIO: u64 = 0x7B;
    pub const MSR: u64 = 0x7C;
    pub const SNP_PAGE_STATE_CHANGE: u64 = 0x8000_0010;
    pub const SNP_GUEST_REQUEST: u64 = 0x8000_0011;
    pub const SNP_EXT_GUEST_REQUEST: u64 = 0x8000_0012;
}

/// SW_EXITINFO1 for an IOIO exit (GHCB spec, IOIO; same encoding as the SVM IOIO intercept's
/// EXITINFO1): port in bits 31:16, address size (bit 9: 64-bit, the runtime's mode), operand
/// size (bits 6:4), direction (bit 0: IN).
pub fn ioio_exit_info(port: u16, size_bytes: u8, is_in: bool) -> u64 {
    const ADDRESS_SIZE_64: u64 = 1 << 9;
    let size_bit = match size_bytes {
        1 => 1 << 4,
        2 => 1 << 5,
        _ => 1 << 6,
    };
    (u64::from(port) << 16) | ADDRESS_SIZE_64 | size_bit | u64::from(is_in)
}

/// The Page State Change NAE event's descriptor in the GHCB shared buffer (GHCB spec, "Page
/// State Change"; Linux `struct psc_hdr` / `struct psc_entry`): an 8-byte header {u16
/// cur_entry, u16 end_entry, u32 reserved} then 8-byte entries {cur_page 11:0, GFN 51:12,
/// operation 55:52, page size 56 (1 = 2 MiB), reserved 63:57}.
pub mod psc {
    /// Entries that fit in the shared buffer after the header (Linux `VMGEXIT_PSC_MAX_COUNT`).
    pub const MAX_ENTRIES: usize = (super::offset::SHARED_BUFFER_SIZE - HEADER_SIZE) / ENTRY_SIZE;
    pub const HEADER_SIZE: usize = 8;
    pub const ENTRY_SIZE: usize = 8;
    const _: () = assert!(MAX_ENTRIES == 253);
    /// GFN bits an entry carries.
    pub const GFN_MASK: u64 = (1 << 40) - 1;

    /// One entry: `gfn` to `operation` (`msr_protocol::PSC_PRIVATE` / `PSC_SHARED`), as a 2 MiB
    /// page when `huge`, nothing done yet (cur_page 0).
    pub const fn entry(gfn: u64, operation: u64, huge: bool) -> u64 {
        ((huge as u64) << 56) | ((operation & 0xF) << 52) | ((gfn & GFN_MASK) << 12)
    }

    /// An entry's fields: (cur_page, gfn, operation, huge).
    pub const fn decode_entry(entry: u64) -> (u64, u64, u64, bool) {
        (entry & 0xFFF, (entry >> 12) & GFN_MASK, (entry >> 52) & 0xF, (entry >> 56) & 1 == 1)
    }

    /// The header of a descriptor whose entries run to index `end` (inclusive), none done yet.
    pub const fn header(end: u16) -> u64 {
        (end as u64) << 16
    }
}

/// SW_EXITINFO2 after an SNP guest request: the firmware's status in bits 31:0, the
/// hypervisor's in bits 63:32 (GHCB spec, "SNP Guest Request").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestRequestResult {
    Success,
    /// The certificate buffer of an extended request is too small (RBX holds the pages needed).
    InvalidLength,
    /// The firmware is busy: send the same request again.
    Busy,
    /// Any other hypervisor or firmware error.
    Failed(u64),
}

impl GuestRequestResult {
    pub fn from_exit_info_2(info: u64) -> Self {
        match (info >> 32, info as u32) {
            (0, 0) => Self::Success,
            (1, _) => Self::InvalidLength,
            (2, _) => Self::Busy,
            _ => Self::Failed(info),
        }
    }
}

/// The GHCB MSR protocol (spec section "GHCB MSR Protocol"): requests and responses carried in
/// the GHCB MSR itself, with the function in bits 11:0.
pub mod msr_protocol {
    pub const SEV_INFO_RESPONSE: u64 = 0x001;
    pub const SEV_INFO_REQUEST: u64 = 0x002;
    pub const CPUID_REQUEST: u64 = 0x004;
    pub const CPUID_RESPONSE: u64 = 0x005;
    /// AP Reset Hold: the vCPU stays with the hypervisor until woken (response 0x007, GHCBData
    /// 63:12 non-zero when woken).
    pub const AP_RESET_HOLD_REQUEST: u64 = 0x006;
    pub const AP_RESET_HOLD_RESPONSE: u64 = 0x007;
    pub const REGISTER_GHCB_REQUEST: u64 = 0x012;
    pub const REGISTER_GHCB_RESPONSE: u64 = 0x013;
    pub const PSC_REQUEST: u64 = 0x014;
    pub const PSC_RESPONSE: u64 = 0x015;
    /// SNP Run VMPL (GHCB spec 2.03; Linux `GHCB_MSR_VMPL_REQ`): ask the hypervisor to run
    /// the guest's VMPL in bits 39:32 (an SVSM call runs VMPL0). Response 0x017, bits 63:32 zero
    /// on success.
    pub const RUN_VMPL_REQUEST: u64 = 0x016;
    pub const RUN_VMPL_RESPONSE: u64 = 0x017;
    pub const HV_FEATURES_REQUEST: u64 = 0x080;
    pub const HV_FEATURES_RESPONSE: u64 = 0x081;
    pub const TERMINATE: u64 = 0x100;
    const FUNCTION_MASK: u64 = 0xFFF;

    /// Page-state-change operations.
    pub const PSC_PRIVATE: u64 = 1;
    pub const PSC_SHARED: u64 = 2;

    /// Hypervisor feature bit 0: SEV-SNP support.
    pub const HV_FEATURE_SNP: u64 = 1 << 0;

    /// Terminate reason set 0 (GHCB spec, "Termination Request"): general, protocol, SNP-unsupported.
    pub const REASON_SET_GENERAL: u8 = 0;
    pub const REASON_GENERAL: u8 = 0;
    pub const REASON_PROTOCOL_UNSUPPORTED: u8 = 1;
    pub const REASON_SNP_UNSUPPORTED: u8 = 2;
    /// The reason set Linux uses for its own codes (`SEV_TERM_SET_LINUX`, `sev-common.h`: 0 GHCB
    /// registration, 1 page-state change, 2 PVALIDATE, 3 not VMPL0, … 11 SVSM CA remap). A host
    /// log that shows set 1 is read with Linux's meanings, so TWI never uses it.
    pub const REASON_SET_LINUX: u8 = 1;
    /// TWI's own reason set (the GHCB spec defines only set 0; any other number is the guest's
    /// to define, and 5 is one neither Linux nor OVMF uses).
    pub const REASON_SET_TWI: u8 = 5;
    // A 4-bit set of its own: neither the spec's nor Linux's.
    const _: () = assert!(REASON_SET_TWI <= 0xF && REASON_SET_TWI != REASON_SET_LINUX);
    const _: () = assert!(REASON_SET_TWI != REASON_SET_GENERAL);

    /// TWI's reason codes in [`REASON_SET_TWI`], as a host log shows them (GHCB MSR value
    /// `0x<code>5100`). Failures after the console is up also print a line saying why.
    ///
    /// | code | meaning |
    /// |------|---------|
    /// | 1 | fatal error after start-up (the console says why) |
    /// | 2 | the GHCB became unusable (an I/O or MSR exit failed) |
    /// | 3 | the hypervisor's C-bit position differs from the CPUID page's |
    /// | 4 | page-state change (to shared or private) failed |
    /// | 5 | the hypervisor did not register the GHCB |
    /// | 6 | PVALIDATE (or the SVSM's) of the heap or frame pool failed |
    /// | 7 | not at VMPL0 and no SVSM described in the secrets page |
    /// | 8 | the boot stub found no C-bit position in the CPUID page |
    /// | 9 | an SVSM call (core protocol) failed |
    /// | 10 | a #VC before the GHCB was up (or without SEV-SNP detected) |
    pub mod twi_reason {
        pub const FATAL: u8 = 1;
        pub const GHCB: u8 = 2;
        pub const C_BIT_MISMATCH: u8 = 3;
        pub const PAGE_STATE_CHANGE: u8 = 4;
        pub const GHCB_REGISTRATION: u8 = 5;
        pub const PVALIDATE: u8 = 6;
        pub const NOT_VMPL0: u8 = 7;
        pub const NO_C_BIT: u8 = 8;
        pub const SVSM_CALL: u8 = 9;
        pub const EARLY_VC: u8 = 10;
        /// Every code, for the table's tests.
        pub const ALL: [u8; 10] = [
            FATAL,
            GHCB,
            C_BIT_MISMATCH,
            PAGE_STATE_CHANGE,
            GHCB_REGISTRATION,
            PVALIDATE,
            NOT_VMPL0,
            NO_C_BIT,
            SVSM_CALL,
            EARLY_VC,
        ];
    }

    pub const fn function(value: u64) -> u64 {
        value & FUNCTION_MASK
    }

    /// The hypervisor's supported protocol range and the C-bit position.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct SevInfo {
        pub max_version: u16,
        pub min_version: u16,
        pub c_bit: u8,
    }

    pub fn parse_sev_info(value: u64) -> Option<SevInfo> {
        (function(value) == SEV_INFO_RESPONSE).then_some(SevInfo {
            max_version: (value >> 48) as u16,
            min_version: (value >> 32) as u16,
            c_bit: (value >> 24) as u8,
        })
    }

    pub fn register_ghcb(gfn: u64) -> u64 {
        (gfn << 12) | REGISTER_GHCB_REQUEST
    }

    /// True when the response confirms registration of exactly `gfn`.
    pub fn ghcb_registered(value: u64, gfn: u64) -> bool {
        function(value) == REGISTER_GHCB_RESPONSE && value >> 12 == gfn
    }

    pub fn page_state_change(gfn: u64, operation: u64) -> u64 {
        ((operation & 0xF) << 52) | ((gfn & ((1 << 40) - 1)) << 12) | PSC_REQUEST
    }

    /// The error code of a page-state-change response (0: done), `None` if it is not one.
    pub fn psc_error(value: u64) -> Option<u32> {
        (function(value) == PSC_RESPONSE).then_some((value >> 32) as u32)
    }

    pub fn hv_features(value: u64) -> Option<u64> {
        (function(value) == HV_FEATURES_RESPONSE).then_some(value >> 12)
    }

    pub const fn run_vmpl(vmpl: u8) -> u64 {
        ((vmpl as u64) << 32) | RUN_VMPL_REQUEST
    }

    /// True when the response says the requested VMPL ran (Linux `svsm_perform_msr_protocol`).
    pub const fn run_vmpl_done(value: u64) -> bool {
        value & FUNCTION_MASK == RUN_VMPL_RESPONSE && value >> 32 == 0
    }

    pub const fn terminate(reason_set: u8, reason_code: u8) -> u64 {
        ((reason_code as u64) << 16) | (((reason_set & 0xF) as u64) << 12) | TERMINATE
    }
}

#[cfg(test)]
mod tests {
    use super::msr_protocol::*;
    use super::*;

    /// Linux `struct psc_entry`: cur_page 11:0, gfn 51:12, operation 55:52, pagesize 56.
    #[test]
    fn page_state_change_entries_use_linuxs_bit_layout() {
        assert_eq!(psc::entry(0x12345, PSC_SHARED, true), (1 << 56) | (2 << 52) | (0x12345 << 12));
        assert_eq!(psc::entry(1 << 40, PSC_PRIVATE, false), 1 << 52); // GFN bit 40 dropped
        assert_eq!(psc::decode_entry(psc::entry(0x400, PSC_SHARED, true) | 7), (7, 0x400, PSC_SHARED, true));
        assert_eq!(psc::header(252).to_le_bytes(), [0, 0, 252, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn msr_protocol_encodings() {
        // GHCB spec 2.x, section 2.3.1: GPA registration carries the GFN in bits 63:12.
        assert_eq!(register_ghcb(0x1234), 0x0123_4012);
        assert!(ghcb_registered(0x0123_4013, 0x1234));
        assert!(!ghcb_registered(0x0123_5013, 0x1234));
        // Page state change: GFN in 51:12, operation in 55:52.
        assert_eq!(page_state_change(0x3000, PSC_SHARED), 0x0020_0000_0300_0014);
        assert_eq!(psc_error(0x0000_0000_0000_0015), Some(0));
        assert_eq!(psc_error(0x0000_0005_0000_0015), Some(5));
        assert_eq!(psc_error(0x0000_0000_0000_0013), None);
        // SEV_INFO: max 63:48, min 47:32, C-bit 31:24.
        assert_eq!(
            parse_sev_info(0x0002_0001_3300_0001),
            Some(SevInfo { max_version: 2, min_version: 1, c_bit: 0x33 })
        );
        assert_eq!(terminate(REASON_SET_TWI, 7), 0x0007_5100);
        assert_eq!(terminate(REASON_SET_GENERAL, REASON_SNP_UNSUPPORTED), 0x0002_0100);
        assert_eq!(hv_features(0x0000_0000_0000_1081), Some(1));
        // Run VMPL0 (an SVSM call): the target VMPL in bits 39:32.
        assert_eq!(run_vmpl(0), 0x016);
        assert_eq!(run_vmpl(2), 0x2_0000_0016);
        assert!(run_vmpl_done(0x017));
        assert!(!run_vmpl_done(0x1_0000_0017), "a non-zero error in bits 63:32");
        assert!(!run_vmpl_done(0x016));
    }

    #[test]
    fn twi_reasons_are_distinct_and_never_in_linux_or_the_spec_set() {
        // Host logs read set 1 with Linux's meanings (code 0 there is "GHCB registration
        // failed", 1 "page-state change failed"): TWI's codes must not appear under it (the set
        // itself is checked at compile time, beside its definition).
        let mut codes = twi_reason::ALL;
        codes.sort_unstable();
        assert!(codes.windows(2).all(|pair| pair[0] != pair[1]), "codes are unique");
        assert!(!codes.contains(&0), "code 0 is left unused");
        for code in twi_reason::ALL {
            let request = terminate(REASON_SET_TWI, code);
            assert_eq!((request >> 12) & 0xF, u64::from(REASON_SET_TWI));
            assert_eq!((request >> 16) & 0xFF, u64::from(code));
            assert_eq!(function(request), TERMINATE);
        }
    }

    #[test]
    fn ioio_and_guest_request_results() {
        // OUT dx, al to COM1: port 0x3F8 in 31:16, A64 (bit 9), 8-bit operand (bit 4), OUT.
        assert_eq!(ioio_exit_info(0x3F8, 1, false), 0x03F8_0210);
        assert_eq!(ioio_exit_info(0x2FD, 1, true), 0x02FD_0211);
        assert_eq!(ioio_exit_info(0xF4, 4, false), 0x00F4_0240);
        assert_eq!(GuestRequestResult::from_exit_info_2(0), GuestRequestResult::Success);
        assert_eq!(GuestRequestResult::from_exit_info_2(2 << 32), GuestRequestResult::Busy);
        assert_eq!(GuestRequestResult::from_exit_info_2(1 << 32), GuestRequestResult::InvalidLength);
        assert_eq!(GuestRequestResult::from_exit_info_2(0x16), GuestRequestResult::Failed(0x16));
        assert_eq!(valid_bit(offset::RAX), 63);
        assert_eq!(valid_bit(offset::SW_EXIT_CODE), 114);
    }
}
