//! The runtime's GHCB: one shared page through which every non-automatic exit goes (IOIO,
//! MSR, CPUID for leaves outside the CPUID page, page-state changes, guest requests).

use twi_attester::snp::ghcb::{GuestRequestResult, PROTOCOL_VERSION, exit_code, ioio_exit_info, offset, valid_bit};

use super::instr::{vmgexit, write_ghcb_msr};
use super::shared::SharedPage;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GhcbError {
    /// SW_EXITINFO1[31:0] = 1: the hypervisor refused the exit (SW_EXITINFO2 says why).
    Refused(u64),
    /// The hypervisor did not mark a field it had to return as valid.
    MissingField(usize),
    /// A page-state change was not completed.
    PageStateChange(u64),
}

/// The GHCB page and the protocol around it.
#[derive(Debug)]
pub struct Ghcb {
    page: SharedPage,
}

/// A page-state-change descriptor holds at most this many entries (GHCB spec: the shared
/// buffer's 2032 bytes, less the 8-byte header).
pub const PSC_MAX_ENTRIES: usize = 253;

impl Ghcb {
    pub fn new(page: SharedPage) -> Self {
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
        let result = self.page.read_u64(offset::SW_EXIT_INFO_1);
        if result as u32 == 1 {
            return Err(GhcbError::Refused(self.page.read_u64(offset::SW_EXIT_INFO_2)));
        }
        Ok(())
    }

    /// OUT of `size` bytes (1, 2 or 4) to `port`.
    pub fn io_write(&mut self, port: u16, size: u8, value: u32) -> Result<(), GhcbError> {
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

    /// CPUID through the hypervisor: for leaves the CPUID page lacks. The answer is the
    /// hypervisor's and untrusted: callers use it only where a lie cannot hurt.
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
    pub fn guest_request(
        &mut self,
        request: &SharedPage,
        response: &SharedPage,
    ) -> Result<GuestRequestResult, GhcbError> {
        self.begin();
        self.exit(exit_code::SNP_GUEST_REQUEST, request.gpa(), response.gpa())?;
        Ok(GuestRequestResult::from_exit_info_2(self.page.read_u64(offset::SW_EXIT_INFO_2)))
    }

    /// Page-state change of `entries` (each: GFN, operation, 2 MiB or not), in batches of
    /// [`PSC_MAX_ENTRIES`], each batch resubmitted until the hypervisor has processed it all.
    pub fn page_state_change(&mut self, entries: &[(u64, u64, bool)]) -> Result<(), GhcbError> {
        for batch in entries.chunks(PSC_MAX_ENTRIES) {
            let end = (batch.len() - 1) as u16;
            let mut buffer = [0u8; 8 + PSC_MAX_ENTRIES * 8];
            buffer[2..4].copy_from_slice(&end.to_le_bytes());
            for (i, &(gfn, operation, huge)) in batch.iter().enumerate() {
                let entry = (u64::from(huge) << 56) | ((operation & 0xF) << 52) | ((gfn & ((1 << 40) - 1)) << 12);
                buffer[8 + 8 * i..16 + 8 * i].copy_from_slice(&entry.to_le_bytes());
            }
            let used = 8 + batch.len() * 8;
            // The hypervisor advances CUR_ENTRY as it goes and may stop early: resubmit
            // (bounded) until CUR_ENTRY passes END_ENTRY.
            let mut done = false;
            for _ in 0..64 {
                self.begin();
                self.page.write_bytes_at(offset::SHARED_BUFFER, &buffer[..used]);
                self.set(offset::SW_SCRATCH, self.gpa() + offset::SHARED_BUFFER as u64);
                self.exit(exit_code::SNP_PAGE_STATE_CHANGE, 0, 0)?;
                let status = self.page.read_u64(offset::SW_EXIT_INFO_2);
                let header = self.page.read_u64(offset::SHARED_BUFFER);
                let (cur, end_now) = (header as u16, (header >> 16) as u16);
                if status != 0 || end_now != end {
                    return Err(GhcbError::PageStateChange(status.max(header)));
                }
                if cur > end {
                    done = true;
                    break;
                }
                buffer[..2].copy_from_slice(&cur.to_le_bytes());
            }
            if !done {
                return Err(GhcbError::PageStateChange(0));
            }
        }
        Ok(())
    }
}
