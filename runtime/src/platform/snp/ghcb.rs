//! The runtime's GHCB: one shared page through which every non-automatic exit goes (IOIO,
//! MSR, CPUID for leaves outside the CPUID page, page-state changes, guest requests).

use twi_attester::snp::ghcb::{
    GuestRequestResult, PROTOCOL_VERSION, exit_code, ioio_exit_info, offset, psc, valid_bit,
};

use super::instr::{vmgexit, write_ghcb_msr};
use crate::platform::shared::Shared;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GhcbError {
    /// SW_EXITINFO1[31:0] = 1: the hypervisor asks the guest to take the exception that
    /// SW_EXITINFO2 describes (the runtime treats it as a failure of the exit).
    Exception(u64),
    /// SW_EXITINFO1[31:0] = 2: the hypervisor found the GHCB input invalid (SW_EXITINFO2 holds
    /// the GHCB_ERR code).
    InvalidInput(u64),
    /// Any other SW_EXITINFO1 value.
    Unexpected(u64),
    /// The GHCB is not registered yet, or already in use (a #VC inside GHCB code: a runtime bug).
    Unavailable,
    /// The hypervisor did not mark a field it had to return as valid.
    MissingField(usize),
    /// A page-state change was not completed.
    PageStateChange(u64),
}

/// The GHCB page and the protocol around it.
#[derive(Debug)]
pub struct Ghcb {
    page: Shared,
}

/// A page-state-change descriptor holds at most this many entries (GHCB spec: the shared
/// buffer's 2032 bytes, less the 8-byte header).
pub const PSC_MAX_ENTRIES: usize = psc::MAX_ENTRIES;

impl Ghcb {
    pub fn new(page: Shared) -> Self {
        Self { page }
    }

    pub fn gpa(&self) -> u64 {
        self.page.gpa()
    }

    /// Starts a request: the save area and valid bitmap cleared, protocol version and usage set.
    fn begin(&mut self) {
        self.page.write(&[]);
        self.page.write_bytes_at(offset::PROTOCOL_VERSION, &PROTOCOL_VERSION.to_le_bytes());
        self.page.write_bytes_at(offset::GHCB_USAGE, &0u32.to_le_bytes());
    }

    /// Writes a save-area field and marks it valid (bit = quadword index, little-endian words).
    fn set(&mut self, field: usize, value: u64) {
        self.page.write_u64(field, value);
        let bit = valid_bit(field);
        let word_offset = offset::VALID_BITMAP + (bit / 64) * 8;
        let word = self.page.read_u64(word_offset) | (1 << (bit % 64));
        self.page.write_u64(word_offset, word);
    }

    fn is_valid(&self, field: usize) -> bool {
        let bit = valid_bit(field);
        let word = self.page.read_u64(offset::VALID_BITMAP + (bit / 64) * 8);
        word & (1 << (bit % 64)) != 0
    }

    fn get(&self, field: usize) -> Result<u64, GhcbError> {
        if !self.is_valid(field) {
            return Err(GhcbError::MissingField(field));
        }
        Ok(self.page.read_u64(field))
    }

    /// Sets the exit fields and performs the VMGEXIT.
    fn exit(&mut self, code: u64, info1: u64, info2: u64) -> Result<(), GhcbError> {
        self.set(offset::SW_EXIT_CODE, code);
        self.set(offset::SW_EXIT_INFO_1, info1);
        self.set(offset::SW_EXIT_INFO_2, info2);
        write_ghcb_msr(self.gpa());
        vmgexit();
        // GHCB spec: SW_EXITINFO1[31:0] is 0 on success, 1 for "inject SW_EXITINFO2's event",
        // 2 for a GHCB input error; anything else is not defined.
        let result = self.page.read_u64(offset::SW_EXIT_INFO_1) as u32;
        let info2 = self.page.read_u64(offset::SW_EXIT_INFO_2);
        match result {
            0 => Ok(()),
            1 => Err(GhcbError::Exception(info2)),
            2 => Err(GhcbError::InvalidInput(info2)),
            other => Err(GhcbError::Unexpected(u64::from(other))),
        }
    }

    /// OUT of `size` bytes (1, 2 or 4) to `port`. Only those bytes of `value` reach the host.
    pub fn io_write(&mut self, port: u16, size: u8, value: u32) -> Result<(), GhcbError> {
        let value = match size {
            1 => value & 0xFF,
            2 => value & 0xFFFF,
            _ => value,
        };
        self.begin();
        self.set(offset::RAX, u64::from(value));
        self.exit(exit_code::IOIO, ioio_exit_info(port, size, false), 0)
    }

    /// IN of `size` bytes (1, 2 or 4) from `port`.
    pub fn io_read(&mut self, port: u16, size: u8) -> Result<u32, GhcbError> {
        self.begin();
        self.set(offset::RAX, 0);
        self.exit(exit_code::IOIO, ioio_exit_info(port, size, true), 0)?;
        let mask = match size {
            1 => 0xFF,
            2 => 0xFFFF,
            _ => 0xFFFF_FFFF,
        };
        Ok((self.get(offset::RAX)? & mask) as u32)
    }

    /// CPUID through the hypervisor. The answer is the hypervisor's and untrusted; the runtime
    /// does not use it (CPUID comes from the CPUID page), it exists for diagnostics.
    pub fn cpuid(&mut self, leaf: u32, subleaf: u32) -> Result<[u32; 4], GhcbError> {
        self.begin();
        self.set(offset::RAX, u64::from(leaf));
        self.set(offset::RCX, u64::from(subleaf));
        self.set(offset::XCR0, 1);
        self.exit(exit_code::CPUID, 0, 0)?;
        Ok([
            self.get(offset::RAX)? as u32,
            self.get(offset::RBX)? as u32,
            self.get(offset::RCX)? as u32,
            self.get(offset::RDX)? as u32,
        ])
    }

    pub fn rdmsr(&mut self, msr: u32) -> Result<u64, GhcbError> {
        self.begin();
        self.set(offset::RCX, u64::from(msr));
        self.exit(exit_code::MSR, 0, 0)?;
        Ok((self.get(offset::RAX)? & 0xFFFF_FFFF) | (self.get(offset::RDX)? << 32))
    }

    pub fn wrmsr(&mut self, msr: u32, value: u64) -> Result<(), GhcbError> {
        self.begin();
        self.set(offset::RCX, u64::from(msr));
        self.set(offset::RAX, value & 0xFFFF_FFFF);
        self.set(offset::RDX, value >> 32);
        self.exit(exit_code::MSR, 1, 0)
    }

    /// SNP_GUEST_REQUEST with the request and response pages; the result of SW_EXITINFO2.
    pub fn guest_request(&mut self, request: &Shared, response: &Shared) -> Result<GuestRequestResult, GhcbError> {
        self.begin();
        self.exit(exit_code::SNP_GUEST_REQUEST, request.gpa(), response.gpa())?;
        Ok(GuestRequestResult::from_exit_info_2(self.page.read_u64(offset::SW_EXIT_INFO_2)))
    }

    /// SNP_EXT_GUEST_REQUEST (GHCB specification, SNP Extended Guest Request): as
    /// [`Ghcb::guest_request`], with the certificate buffer in RAX (GPA) and RBX (pages). When
    /// the buffer is too small the result is `InvalidLength` and the second value is the number
    /// of pages the hypervisor asks for (RBX); otherwise it is 0.
    pub fn ext_guest_request(
        &mut self,
        request: &Shared,
        response: &Shared,
        certificates: &Shared,
    ) -> Result<(GuestRequestResult, u64), GhcbError> {
        self.begin();
        self.set(offset::RAX, certificates.gpa());
        self.set(offset::RBX, certificates.len().div_ceil(crate::platform::shared::PAGE) as u64);
        self.exit(exit_code::SNP_EXT_GUEST_REQUEST, request.gpa(), response.gpa())?;
        let result = GuestRequestResult::from_exit_info_2(self.page.read_u64(offset::SW_EXIT_INFO_2));
        let pages_needed = if result == GuestRequestResult::InvalidLength { self.get(offset::RBX)? } else { 0 };
        Ok((result, pages_needed))
    }

    /// Page-state change of `entries` (each: GFN, operation, 2 MiB or not), in batches of
    /// [`PSC_MAX_ENTRIES`]. The hypervisor advances the descriptor's CUR_ENTRY (and entries'
    /// CUR_PAGE) as it goes and may stop early; the same descriptor is then resubmitted as the
    /// hypervisor left it (bounded), until CUR_ENTRY passes END_ENTRY.
    pub fn page_state_change(&mut self, entries: &[(u64, u64, bool)]) -> Result<(), GhcbError> {
        for batch in entries.chunks(PSC_MAX_ENTRIES) {
            let end = (batch.len() - 1) as u16;
            let mut buffer = [0u8; 8 + PSC_MAX_ENTRIES * 8];
            buffer[..8].copy_from_slice(&psc::header(end).to_le_bytes());
            for (i, &(gfn, operation, huge)) in batch.iter().enumerate() {
                buffer[8 + 8 * i..16 + 8 * i].copy_from_slice(&psc::entry(gfn, operation, huge).to_le_bytes());
            }
            self.begin();
            self.page.write_bytes_at(offset::SHARED_BUFFER, &buffer[..8 + batch.len() * 8]);
            let mut last_cur = 0u16;
            let mut done = false;
            for _ in 0..64 {
                // Only the exit fields are reset between submissions; the descriptor stays as
                // the hypervisor left it.
                self.page.write_u64(offset::VALID_BITMAP, 0);
                self.page.write_u64(offset::VALID_BITMAP + 8, 0);
                self.set(offset::SW_SCRATCH, self.gpa() + offset::SHARED_BUFFER as u64);
                self.exit(exit_code::SNP_PAGE_STATE_CHANGE, 0, 0)?;
                let status = self.page.read_u64(offset::SW_EXIT_INFO_2);
                let header = self.page.read_u64(offset::SHARED_BUFFER);
                let (cur, end_now, reserved) = (header as u16, (header >> 16) as u16, (header >> 32) as u32);
                if status != 0 || end_now != end || reserved != 0 || cur < last_cur {
                    return Err(GhcbError::PageStateChange(if status != 0 { status } else { header }));
                }
                if cur > end {
                    done = true;
                    break;
                }
                last_cur = cur;
            }
            if !done {
                return Err(GhcbError::PageStateChange(0));
            }
        }
        Ok(())
    }
}
