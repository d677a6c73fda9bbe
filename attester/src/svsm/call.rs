//! The SVSM calling convention (58019 §4 "Calling Convention"; Linux `svsm_issue_call`,
//! COCONUT `kernel/src/requests.rs`):
//!
//! * RAX = `protocol << 32 | call`, arguments in RCX, RDX, R8, R9; the result code comes back
//!   in RAX, outputs in RCX, RDX, R8, R9.
//! * The guest sets the calling area's `call_pending` to 1, then asks the hypervisor to run
//!   VMPL0 (GHCB MSR protocol request 0x016 with the target VMPL in bits 39:32,
//!   [`crate::snp::ghcb::msr_protocol::run_vmpl`], then VMGEXIT). The SVSM clears
//!   `call_pending` when it has taken the call; still 1 afterwards means the call never ran.
//!
//! Calling area (one 4 KiB page of guest memory the SVSM names in the secrets page):
//!
//! | offset | field |
//! |--------|-------|
//! | 0x0 | `call_pending` u8 |
//! | 0x1 | `mem_available` u8 |
//! | 0x2 | COCONUT: `no_eoi_required` u8; Linux: reserved |
//! | 0x3..0x8 | reserved |
//! | 0x8..0x1000 | the call buffer (4088 bytes): Linux places PVALIDATE and attestation requests here |

/// Protocol numbers (58019 Table 5; COCONUT `protocols/mod.rs`).
pub mod protocol {
    pub const CORE: u32 = 0;
    pub const ATTEST: u32 = 1;
    pub const VTPM: u32 = 2;
}

/// RAX for `call` of `protocol`.
pub const fn rax(protocol: u32, call: u32) -> u64 {
    ((protocol as u64) << 32) | call as u64
}

/// The calling area's layout.
pub mod caa {
    pub const SIZE: usize = 4096;
    pub const CALL_PENDING: usize = 0x0;
    pub const MEM_AVAILABLE: usize = 0x1;
    pub const BUFFER: usize = 0x8;
    pub const BUFFER_LEN: usize = SIZE - BUFFER;
}
const _: () = assert!(caa::BUFFER_LEN == 4088);

/// The registers of one call (in: the request; out: the SVSM's answer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Registers {
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub r8: u64,
    pub r9: u64,
}

/// A call's result code (RAX on return; 58019 Table 4; Linux `SVSM_ERR_*`; COCONUT
/// `protocols/errors.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallResult {
    Success,
    Incomplete,
    UnsupportedProtocol,
    UnsupportedCall,
    InvalidAddress,
    InvalidFormat,
    InvalidParameter,
    InvalidRequest,
    Busy,
    /// A protocol-specific error: 0x8000_1000 + code (PVALIDATE: 0x8000_1006 size mismatch).
    Protocol(u32),
    /// A value no version of the protocol defines.
    Unknown(u64),
}

impl CallResult {
    pub const fn decode(rax: u64) -> Self {
        match rax {
            0 => Self::Success,
            0x8000_0000 => Self::Incomplete,
            0x8000_0001 => Self::UnsupportedProtocol,
            0x8000_0002 => Self::UnsupportedCall,
            0x8000_0003 => Self::InvalidAddress,
            0x8000_0004 => Self::InvalidFormat,
            0x8000_0005 => Self::InvalidParameter,
            0x8000_0006 => Self::InvalidRequest,
            0x8000_0007 => Self::Busy,
            0x8000_1000..=0x8000_1FFF => Self::Protocol((rax - 0x8000_1000) as u32),
            other => Self::Unknown(other),
        }
    }

    pub const fn encode(self) -> u64 {
        match self {
            Self::Success => 0,
            Self::Incomplete => 0x8000_0000,
            Self::UnsupportedProtocol => 0x8000_0001,
            Self::UnsupportedCall => 0x8000_0002,
            Self::InvalidAddress => 0x8000_0003,
            Self::InvalidFormat => 0x8000_0004,
            Self::InvalidParameter => 0x8000_0005,
            Self::InvalidRequest => 0x8000_0006,
            Self::Busy => 0x8000_0007,
            Self::Protocol(code) => 0x8000_1000 + code as u64,
            Self::Unknown(value) => value,
        }
    }

    /// Incomplete and Busy: the same call may be made again (as Linux does).
    pub const fn retry(self) -> bool {
        matches!(self, Self::Incomplete | Self::Busy)
    }
}

impl core::fmt::Display for CallResult {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Success => f.write_str("success"),
            Self::Incomplete => f.write_str("incomplete"),
            Self::UnsupportedProtocol => f.write_str("protocol not supported"),
            Self::UnsupportedCall => f.write_str("call not supported"),
            Self::InvalidAddress => f.write_str("invalid address"),
            Self::InvalidFormat => f.write_str("invalid format"),
            Self::InvalidParameter => f.write_str("invalid parameter"),
            Self::InvalidRequest => f.write_str("invalid request"),
            Self::Busy => f.write_str("busy"),
            Self::Protocol(code) => write!(f, "protocol error {code:#x}"),
            Self::Unknown(value) => write!(f, "unknown result {value:#x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rax_carries_the_protocol_in_the_high_half() {
        // Linux: SVSM_CORE_CALL(x) = (0 << 32) | x, SVSM_ATTEST_CALL(x) = (1 << 32) | x.
        assert_eq!(rax(protocol::CORE, 1), 1);
        assert_eq!(rax(protocol::ATTEST, 0), 0x1_0000_0000);
        assert_eq!(rax(protocol::ATTEST, 1), 0x1_0000_0001);
    }

    #[test]
    fn result_codes_round_trip_and_name_the_specs_values() {
        for (value, result) in [
            (0, CallResult::Success),
            (0x8000_0000, CallResult::Incomplete),
            (0x8000_0005, CallResult::InvalidParameter),
            (0x8000_0007, CallResult::Busy),
            (0x8000_1006, CallResult::Protocol(6)),
            (0x8000_2000, CallResult::Unknown(0x8000_2000)),
            (1, CallResult::Unknown(1)),
        ] {
            assert_eq!(CallResult::decode(value), result);
            assert_eq!(result.encode(), value);
        }
        assert!(CallResult::Busy.retry() && CallResult::Incomplete.retry());
        assert!(!CallResult::InvalidParameter.retry());
    }
}
