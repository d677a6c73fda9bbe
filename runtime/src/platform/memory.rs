//! The two allocators: a byte heap for `alloc` and a page-frame pool, both on fixed regions of
//! [`crate::layout`] that nothing else touches.

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};

use buddy_system_allocator::FrameAllocator;
use linked_list_allocator::LockedHeap;
use spin::Mutex;

use crate::layout::{FRAMES, HEAP};

#[global_allocator]
static HEAP_ALLOCATOR: PeakHeap = PeakHeap { heap: LockedHeap::empty(), peak: AtomicUsize::new(0) };

/// The heap, remembering the most it ever had in use (what `-m` must leave room for).
struct PeakHeap {
    heap: LockedHeap,
    peak: AtomicUsize,
}

// SAFETY: every call is forwarded to `LockedHeap`, a correct allocator; the peak is bookkeeping.
unsafe impl GlobalAlloc for PeakHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on unchanged.
        let block = unsafe { self.heap.alloc(layout) };
        self.peak.fetch_max(self.heap.lock().used(), Ordering::Relaxed);
        block
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { self.heap.dealloc(ptr, layout) }
    }
}

pub const PAGE_SIZE: usize = 4096;

static FRAME_POOL: Mutex<FrameAllocator<32>> = Mutex::new(FrameAllocator::new());

/// Hands both regions to their allocators. Call once, after checking that RAM covers them.
pub fn init() {
    // SAFETY: HEAP is RAM reserved for the heap by the layout (below FRAMES, above the image),
    // identity mapped writable by the boot page tables, and this is its only initialisation.
    unsafe { HEAP_ALLOCATOR.heap.lock().init(HEAP.start as *mut u8, HEAP.end - HEAP.start) };
    FRAME_POOL.lock().add_frame(FRAMES.start / PAGE_SIZE, FRAMES.end / PAGE_SIZE);
}

/// A 4 KiB page frame from the pool, identity mapped, returned on drop.
#[derive(Debug)]
pub struct Frame {
    number: usize,
}

impl Frame {
    pub fn alloc() -> Option<Self> {
        FRAME_POOL.lock().alloc(1).map(|number| Self { number })
    }

    /// Its (identity-mapped) address, which is its guest-physical address.
    pub fn address(&self) -> u64 {
        (self.number * PAGE_SIZE) as u64
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the frame lies in FRAMES (identity mapped, writable RAM), the pool handed it
        // out to this `Frame` alone, and the slice borrows `self` mutably.
        unsafe { core::slice::from_raw_parts_mut((self.number * PAGE_SIZE) as *mut u8, PAGE_SIZE) }
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        self.as_mut_slice().fill(0);
        FRAME_POOL.lock().dealloc(self.number, 1);
    }
}

#[derive(Clone, Copy, Debug)]
pub struct HeapUsage {
    pub used: usize,
    pub size: usize,
    /// The most ever in use.
    pub peak: usize,
}

pub fn heap_usage() -> HeapUsage {
    let heap = HEAP_ALLOCATOR.heap.lock();
    HeapUsage { used: heap.used(), size: heap.size(), peak: HEAP_ALLOCATOR.peak.load(Ordering::Relaxed) }
}
