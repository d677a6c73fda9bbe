//! Host-visible memory. The only pages the host can read or write are the shared pool's
//! (`twi_linker::SHARED_POOL`, one 2 MiB page), and the only way to touch them is a [`Shared`]
//! range of it: copy private bytes in, copy the host's bytes out once into private memory.
//! Never place a secret in one.
//!
//! How the pool becomes shared depends on the platform (its bring-up, before the first [`Shared`]
//! is handed out; the HAL's shared bit says how the host addresses it):
//! * SEV-SNP: the boot page tables map it without the C-bit, and `snp::init` converts it to
//!   shared with page-state changes before the first [`Shared`] is handed out.
//! * TDX: `tdx::init` converts it with TDG.VP.VMCALL<MapGPA> and sets the shared bit
//!   (1 << (GPAW − 1)) in its page-directory entry; the GPA the VMM is told about then carries
//!   the shared bit ([`Shared::gpa`]).
//!
//! Under the simulator (plain QEMU) the pool is ordinary RAM and nothing uses it.

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::layout::{CHANNEL_RING, SHARED_POOL};

pub const PAGE: usize = 4096;

/// The next unused byte of the pool (a bump allocator: shared pages live as long as the VM).
static NEXT: AtomicUsize = AtomicUsize::new(SHARED_POOL.start);
/// Whether the channel ring's pages were handed out.
static RING_TAKEN: AtomicBool = AtomicBool::new(false);

/// Whole 4 KiB pages of the shared pool, contiguous, that the host can see.
#[derive(Debug)]
pub struct Shared {
    address: usize,
    len: usize,
}

impl Shared {
    /// `pages` contiguous pages from the pool below the channel ring; `None` when they are
    /// exhausted (479 pages in all).
    pub fn alloc(pages: usize) -> Option<Self> {
        let len = pages.checked_mul(PAGE).filter(|&len| len > 0)?;
        let address = NEXT.fetch_add(len, Ordering::Relaxed);
        (address.checked_add(len)? <= CHANNEL_RING.start).then_some(Self { address, len })
    }

    /// The channel ring's pages (`twi_linker::CHANNEL_RING`, the end of the pool, where the host
    /// loader looks for them); `None` after the first call.
    pub fn channel_ring() -> Option<Self> {
        let taken = RING_TAKEN.swap(true, Ordering::AcqRel);
        (!taken).then_some(Self { address: CHANNEL_RING.start, len: CHANNEL_RING.end - CHANNEL_RING.start })
    }

    /// The guest-physical address the host knows these pages by: under TDX with the shared
    /// bit, under SEV-SNP (C-bit clear in the page tables) the address itself.
    pub fn gpa(&self) -> u64 {
        self.address as u64 | super::hal::hal().shared_bit()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `bytes` (at most [`Self::len`]) to the start and zeroes the rest.
    pub fn write(&mut self, bytes: &[u8]) {
        assert!(bytes.len() <= self.len, "write within the shared range");
        let data = bytes.iter().copied().chain(core::iter::repeat(0)).take(self.len);
        for (i, value) in data.enumerate() {
            // SAFETY: `address..address + len` is a range of the shared pool, identity mapped
            // writable, handed out to this `Shared` alone; volatile because the host reads it
            // behind the compiler's back.
            unsafe { core::ptr::write_volatile((self.address + i) as *mut u8, value) };
        }
    }

    /// Copies the first `out.len()` bytes (at most [`Self::len`]), once, into private memory.
    pub fn read(&self, out: &mut [u8]) {
        assert!(out.len() <= self.len, "read within the shared range");
        for (i, byte) in out.iter_mut().enumerate() {
            // SAFETY: as for `write`; volatile because the host may change the page at any time
            // (the copy is what the caller parses, never the page itself).
            *byte = unsafe { core::ptr::read_volatile((self.address + i) as *const u8) };
        }
    }

    /// Copies `out.len()` bytes at `offset` (within the range), once, into private memory.
    pub fn read_at(&self, offset: usize, out: &mut [u8]) {
        assert!(offset.checked_add(out.len()).is_some_and(|end| end <= self.len), "read within the shared range");
        for (i, byte) in out.iter_mut().enumerate() {
            // SAFETY: in-bounds (checked above) read of this shared range; volatile because the
            // host may change it at any time (the copy is what the caller parses).
            *byte = unsafe { core::ptr::read_volatile((self.address + offset + i) as *const u8) };
        }
    }

    /// A u64 field (the GHCB's, the GetQuote header's), read volatile.
    pub fn read_u64(&self, offset: usize) -> u64 {
        assert!(offset.is_multiple_of(8) && offset + 8 <= self.len, "field offsets are constants");
        // SAFETY: in-bounds, aligned (checked above) read of this shared range.
        unsafe { core::ptr::read_volatile((self.address + offset) as *const u64) }
    }

    pub fn write_u64(&mut self, offset: usize, value: u64) {
        assert!(offset.is_multiple_of(8) && offset + 8 <= self.len, "field offsets are constants");
        // SAFETY: in-bounds, aligned (checked above) write to this shared range.
        unsafe { core::ptr::write_volatile((self.address + offset) as *mut u64, value) }
    }

    /// A u32 field (the channel ring's indices) in one aligned volatile load, so that it is
    /// never read half written.
    pub fn read_u32_at(&self, offset: usize) -> u32 {
        assert!(offset.is_multiple_of(4) && offset + 4 <= self.len, "field offsets are constants");
        // SAFETY: in-bounds, aligned (checked above) read of this shared range.
        unsafe { core::ptr::read_volatile((self.address + offset) as *const u32) }
    }

    /// A u32 field in one aligned volatile store, so that the host never sees it half written.
    pub fn write_u32_at(&mut self, offset: usize, value: u32) {
        assert!(offset.is_multiple_of(4) && offset + 4 <= self.len, "field offsets are constants");
        // SAFETY: in-bounds, aligned (checked above) write to this shared range.
        unsafe { core::ptr::write_volatile((self.address + offset) as *mut u32, value) }
    }

    pub fn write_bytes_at(&mut self, offset: usize, bytes: &[u8]) {
        assert!(offset + bytes.len() <= self.len, "field within the shared range");
        for (i, &b) in bytes.iter().enumerate() {
            // SAFETY: in-bounds (checked above) write to this shared range.
            unsafe { core::ptr::write_volatile((self.address + offset + i) as *mut u8, b) };
        }
    }
}
