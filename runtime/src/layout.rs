//! Guest-physical memory layout of the runtime (identity mapped, low 4 GiB).
//!
//! | range                      | what                                             |
//! |----------------------------|--------------------------------------------------|
//! | 0x0000_1000..0x0000_2000   | boot scratch: the TSC read at the reset vector   |
//! | 0x0010_0000..0x0010_6000   | boot page tables (PML4, PDPT, 4 PDs)             |
//! | 0x0020_0000..0x0080_0000   | the Rust image: text, rodata, data, vault, bss, stack (linker/runtime.ld) |
//! | 0x0080_0000..0x0100_0000   | byte heap (`linked_list_allocator`)              |
//! | 0x0100_0000..0x0200_0000   | page-frame pool (`buddy_system_allocator`)       |
//! | 0xFFE0_0000..0x1_0000_0000 | the ROM                                          |
//!
//! The boot stub uses the first two as 32-bit immediates, hence `u32`.

use core::ops::Range;

/// Where the reset vector stores the TSC (u64) before RAM has a stack.
pub const BOOT_SCRATCH: u32 = 0x1000;
/// PML4 at +0, PDPT at +0x1000, page directories at +0x2000..+0x6000.
pub const PAGE_TABLES: u32 = 0x10_0000;
/// The byte heap: allocations of the channel, CBOR and certificate parsing.
pub const HEAP: Range<usize> = 0x80_0000..0x100_0000;
/// Page frames handed out 4 KiB at a time (shared pages, DMA buffers).
pub const FRAMES: Range<usize> = 0x100_0000..0x200_0000;
/// The least guest RAM the layout needs.
pub const MIN_RAM_BYTES: u64 = FRAMES.end as u64;

const _: () = assert!(HEAP.end <= FRAMES.start);
const _: () = assert!((PAGE_TABLES as usize) + 0x6000 <= 0x20_0000);
