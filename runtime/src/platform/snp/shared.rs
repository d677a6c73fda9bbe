//! Host-visible memory. Under SEV-SNP the only pages the host can read or write are the
//! shared pool's (`twi_layout::SHARED_POOL`: mapped without the C-bit, converted to shared by
//! a page-state change at start-up), and the only way to touch them is a [`SharedPage`]:
//! copy private bytes in, copy the host's bytes out once into private memory. Never place a
//! secret in one.

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::layout::SHARED_POOL;

pub const PAGE: usize = 4096;

/// The next unused page of the pool (a bump allocator: shared pages live as long as the VM).
static NEXT: AtomicUsize = AtomicUsize::new(SHARED_POOL.start);

/// One 4 KiB page the host can see.
#[derive(Debug)]
pub struct SharedPage {
    address: usize,
}

impl SharedPage {
    /// A page from the pool; `None` when it is exhausted (512 pages).
    pub fn alloc() -> Option<Self> {
        let address = NEXT.fetch_add(PAGE, Ordering::Relaxed);
        (address + PAGE <= SHARED_POOL.end).then_some(Self { address })
    }

    pub fn gpa(&self) -> u64 {
        self.address as u64
    }

    /// Copies `bytes` to the start of the page and zeroes the rest.
    pub fn write(&mut self, bytes: &[u8]) {
        let data = bytes.iter().copied().chain(core::iter::repeat(0)).take(PAGE);
        for (i, value) in data.enumerate() {
            // SAFETY: `address..address + PAGE` is one page of the shared pool, identity
            // mapped writable, handed out to this `SharedPage` alone; volatile because the
            // host reads it behind the compiler's back.
            unsafe { core::ptr::write_volatile((self.address + i) as *mut u8, value) };
        }
    }

    /// Copies the whole page, once, into private memory.
    pub fn read(&self, out: &mut [u8; PAGE]) {
        for (i, byte) in out.iter_mut().enumerate() {
            // SAFETY: as for `write`; volatile because the host may change the page at any time
            // (the copy is what the caller parses, never the page itself).
            *byte = unsafe { core::ptr::read_volatile((self.address + i) as *const u8) };
        }
    }

    /// A u64 field of the page (the GHCB's), read volatile.
    pub fn read_u64(&self, offset: usize) -> u64 {
        assert!(offset.is_multiple_of(8) && offset + 8 <= PAGE, "GHCB field offsets are constants");
        // SAFETY: in-bounds, aligned (checked above) read of this shared page.
        unsafe { core::ptr::read_volatile((self.address + offset) as *const u64) }
    }

    pub fn write_u64(&mut self, offset: usize, value: u64) {
        assert!(offset.is_multiple_of(8) && offset + 8 <= PAGE, "GHCB field offsets are constants");
        // SAFETY: in-bounds, aligned (checked above) write to this shared page.
        unsafe { core::ptr::write_volatile((self.address + offset) as *mut u64, value) }
    }

    pub fn write_bytes_at(&mut self, offset: usize, bytes: &[u8]) {
        assert!(offset + bytes.len() <= PAGE, "field within the page");
        for (i, &b) in bytes.iter().enumerate() {
            // SAFETY: in-bounds (checked above) write to this shared page.
            unsafe { core::ptr::write_volatile((self.address + offset + i) as *mut u8, b) };
        }
    }
}

/// Contiguous pages the host can see (the extended guest request's certificate buffer), with
/// the same rules as [`SharedPage`]: bytes go in, a private copy comes out.
#[derive(Debug)]
pub struct SharedPages {
    address: usize,
    pages: usize,
}

impl SharedPages {
    /// `pages` contiguous pages from the pool; `None` when it is exhausted.
    pub fn alloc(pages: usize) -> Option<Self> {
        let size = pages.checked_mul(PAGE)?;
        let address = NEXT.fetch_add(size, Ordering::Relaxed);
        (pages > 0 && address + size <= SHARED_POOL.end).then_some(Self { address, pages })
    }

    pub fn gpa(&self) -> u64 {
        self.address as u64
    }

    pub fn pages(&self) -> usize {
        self.pages
    }

    /// Zeroes every page (the host may write less than all of them).
    pub fn zero(&mut self) {
        for i in 0..self.pages * PAGE {
            // SAFETY: `address..address + pages * PAGE` lies in the shared pool, identity mapped
            // writable, handed out to this `SharedPages` alone; volatile because the host reads
            // it behind the compiler's back.
            unsafe { core::ptr::write_volatile((self.address + i) as *mut u8, 0) };
        }
    }

    /// Copies all the pages, once, into private memory.
    pub fn read(&self) -> alloc::vec::Vec<u8> {
        (0..self.pages * PAGE)
            .map(|i| {
                // SAFETY: as for `zero`; volatile because the host may change the pages at any
                // time (the copy is what the caller parses, never the pages themselves).
                unsafe { core::ptr::read_volatile((self.address + i) as *const u8) }
            })
            .collect()
    }
}
