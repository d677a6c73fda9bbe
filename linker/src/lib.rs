//! The layout of the TWI ROM and of guest memory: one place for every fixed address, used by
//! the runtime (where things are), its linker script (generated from these constants by
//! [`script`]) and the image builder (what to write where, what the launch must measure or
//! pre-validate; it also checks the ELF's symbols against these constants at every build).
//!
//! Guest-physical memory (identity mapped, low 4 GiB):
//!
//! | range                      | what                                             |
//! |----------------------------|--------------------------------------------------|
//! | 0x0000_1000..0x0000_2000   | boot scratch: the TSC read at the reset vector   |
//! | 0x0000_2000..0x0000_4000   | TDX: the TD HOB list QEMU writes (TDVF TD_HOB section) |
//! | 0x0008_0000..0x0008_1000   | SEV-SNP secrets page (populated by the PSP at launch) |
//! | 0x0008_1000..0x0008_2000   | SEV-SNP CPUID page (populated by the PSP at launch)   |
//! | 0x0008_2000..0x0008_3000   | simulated-TD page (planted by `twi run --platform sim-tdx`) |
//! | 0x0010_0000..0x0010_6000   | boot page tables (PML4, PDPT, 4 PDs)             |
//! | 0x0020_0000..0x0040_0000   | the Rust image: text, rodata, data, vault, bss, stack ([`script`]) |
//! | 0x0040_0000..0x00A0_0000   | byte heap (`linked_list_allocator`)              |
//! | 0x00A0_0000..0x00C0_0000   | page-frame pool (`buddy_system_allocator`)       |
//! | 0x00C0_0000..0x00E0_0000   | shared pool: GHCB, guest-request and GetQuote pages, the channel ring at its end |
//!
//! All of it fits in 14 MiB, so a guest with `-m 16M` runs the whole flow (issue 17); the
//! runtime refuses to start, with a sentence, when QEMU's e820 table says RAM ends below
//! [`MIN_RAM_BYTES`]. Each region is a whole number of 2 MiB pages: SEV-SNP validates and TDX
//! accepts them 2 MiB at a time.
//! | 0xFFE0_0000..0x1_0000_0000 | the ROM                                          |
//!
//! The ROM's top 8 KiB (see [`script`]): manifest slot, boot stub, GUID table area, reset
//! vector. The GUID table area carries the firmware metadata that QEMU, the SEV-SNP firmware
//! and the TDX module read before the first instruction: [`footer`] (the OVMF-style GUID
//! table), [`sev`] (SEV metadata), [`tdvf`] (TDX metadata). All of it is computed here at
//! compile time; `twi-host-loader` copies [`footer::AREA`] into the ROM.
#![no_std]

use core::ops::Range;

mod bytes;
pub mod footer;
pub mod guid;
pub mod script;
pub mod sev;
pub mod tdvf;

/// Where the reset vector stores the TSC (u64) before RAM has a stack. The boot stub uses it
/// as a 32-bit immediate, hence `u32`.
pub const BOOT_SCRATCH: u32 = 0x1000;
pub const BOOT_SCRATCH_SIZE: u32 = 0x1000;
/// PML4 at +0, PDPT at +0x1000, page directories at +0x2000..+0x6000.
pub const PAGE_TABLES: u32 = 0x10_0000;
pub const PAGE_TABLES_SIZE: u32 = 0x6000;
/// The Rust image's run addresses (the linker script's RAM region).
/// 2 MiB: the image is about 1 MiB with the TLS stack (.text, .rodata, .data) and its .bss
/// with the boot stack; the linker refuses an image that outgrows it.
pub const IMAGE_RAM: Range<usize> = 0x20_0000..0x40_0000;
/// The boot stack at the end of the image's `.bss` (the runtime runs on it for good).
pub const BOOT_STACK_SIZE: usize = 256 * 1024;
/// The byte heap: allocations of the channel, CBOR, certificate parsing and TLS (the https-get
/// workload peaks well below 1 MiB; `twi run` prints the peak at exit).
pub const HEAP: Range<usize> = 0x40_0000..0xA0_0000;
/// Page frames handed out 4 KiB at a time (the SVSM calls' private report pages).
pub const FRAMES: Range<usize> = 0xA0_0000..0xC0_0000;
/// SEV-SNP: the pool of host-visible (shared) pages: the GHCB, the guest-request pages. One
/// 2 MiB page, so the boot page tables clear its C-bit with a single directory entry; the
/// runtime converts it to shared (page-state change) before use. Nothing secret is placed here.
pub const SHARED_POOL: Range<usize> = 0xC0_0000..0xE0_0000;
/// The channel's ring (`twi_proto::ring`): the last pages of the shared pool, at a fixed place
/// so the host loader finds it without being told. Pages handed out one by one come from below it.
pub const CHANNEL_RING: Range<usize> = SHARED_POOL.end - RING_AREA..SHARED_POOL.end;
/// The ring's pages: its control page and two 64 KiB data areas (`twi_proto::ring::RING_LEN`,
/// which the runtime asserts equal).
pub const RING_AREA: usize = 0x1000 + 2 * 0x1_0000;
/// The least guest RAM the layout needs.
pub const MIN_RAM_BYTES: u64 = SHARED_POOL.end as u64;
const _: () = assert!(SHARED_POOL.start >= FRAMES.end && SHARED_POOL.start.is_multiple_of(0x20_0000));
const _: () = assert!(SHARED_POOL.end - SHARED_POOL.start == 0x20_0000);
const _: () = assert!(CHANNEL_RING.start > SHARED_POOL.start && CHANNEL_RING.start.is_multiple_of(0x1000));

/// SEV-SNP: the secrets page (VMPCKs) the PSP fills at launch (SEV metadata type 2).
pub const SNP_SECRETS_PAGE: u64 = 0x8_0000;
/// SEV-SNP: the CPUID page the PSP validates at launch (SEV metadata type 3).
pub const SNP_CPUID_PAGE: u64 = 0x8_1000;
/// The TDX simulator (`twi run --platform sim-tdx`): the page the host loader plants with
/// QEMU's generic loader to tell the runtime it plays a TD whose TDX module is simulated over
/// the channel. It starts with [`SIM_TD_MAGIC`]; nothing secret is in it. Real TDX and SEV-SNP
/// launches never read it.
pub const SIM_TD_PAGE: u64 = 0x8_2000;
/// The first bytes of [`SIM_TD_PAGE`]: "TWISIMTD", then u32 version 1 (little-endian).
pub const SIM_TD_MAGIC: [u8; 12] = *b"TWISIMTD\x01\0\0\0";
const _: () = assert!(SIM_TD_PAGE == SNP_CPUID_PAGE + 0x1000 && SIM_TD_PAGE + 0x1000 <= PAGE_TABLES as u64);
/// SEV-SNP below an SVSM: the page the runtime's SVSM calling area lives in (SEV metadata type
/// 4, SVSM_CAA). An SVSM that boots this ROM as its guest firmware (COCONUT's `igvmbuilder
/// --firmware`) reads it from the metadata, zeroes it and names it in the guest's secrets page
/// (SVSM_CAA); the runtime takes the address from there, never from this constant. Without an
/// SVSM the launch only prepares it as a zero page and nothing uses it.
pub const SVSM_CAA_PAGE: u64 = 0x8_3000;
const _: () = assert!(SVSM_CAA_PAGE == SIM_TD_PAGE + 0x1000 && SVSM_CAA_PAGE + 0x1000 <= PAGE_TABLES as u64);

/// The RAM the boot stub writes before the runtime could validate (SEV-SNP: PVALIDATE) or
/// accept (TDX: TDG.MEM.PAGE.ACCEPT) memory itself: the boot scratch page, the page tables, and
/// the Rust image with its .bss and stack. The launch prepares exactly these: SEV metadata
/// SNP_SEC_MEM sections ([`sev::SECTIONS`]) and TDVF TEMP_MEM sections ([`tdvf::SECTIONS`]).
pub const EARLY_RAM: [Range<u64>; 3] = [
    BOOT_SCRATCH as u64..(BOOT_SCRATCH + BOOT_SCRATCH_SIZE) as u64,
    PAGE_TABLES as u64..(PAGE_TABLES + PAGE_TABLES_SIZE) as u64,
    IMAGE_RAM.start as u64..IMAGE_RAM.end as u64,
];

/// TDX: where QEMU writes the TD HOB list (PHIT + resource descriptors; `hw/i386/tdvf-hob.c`).
/// Two pages, as OVMF reserves.
pub const TD_HOB: Range<u64> = 0x2000..0x4000;

/// SEV-ES/SNP: the AP reset address of the SEV-ES reset block. QEMU starts every AP's VMSA at
/// CS.base = addr & 0xFFFF_0000, IP = addr & 0xFFFF (`target/i386/sev.c`
/// `sev_es_set_reset_vector`) and refuses a zero address. The runtime runs on one vCPU and never
/// wakes an AP, but the host can (INIT-SIPI): the address is the boot stub's AP parking entry
/// ([`AP_PARK`]), 16-bit code that asks the hypervisor to hold the vCPU (GHCB MSR protocol "AP
/// Reset Hold") for as long as it runs, and touches no memory. The value enters the AP VMSAs,
/// hence the launch digest, when more than one vCPU is configured.
pub const SEV_ES_AP_RESET: u32 = AP_PARK as u32;

/// The SEV-ES/SNP AP parking entry: the first bytes of the boot stub, placed there by the linker
/// script (which asserts the symbol's address).
pub const AP_PARK: u64 = BOOT_STUB.start;
const _: () = assert!(AP_PARK >> 16 == 0xFFFF, "an SEV-ES AP starts with CS.base 0xFFFF0000");

/// The ROM: 2 MiB ending at 4 GiB (QEMU needs a multiple of 64 KiB for `-bios`).
pub const ROM_SIZE: usize = 2 * 1024 * 1024;
pub const ROM_BASE: u64 = (1 << 32) - ROM_SIZE as u64;
/// The launch manifest's 4 KiB slot.
pub const MANIFEST_ADDR: u64 = 0xFFFF_E000;
pub const MANIFEST_SIZE: usize = 4096;
/// The boot stub (16/32/64-bit code and its GDT).
pub const BOOT_STUB: Range<u64> = 0xFFFF_F000..0xFFFF_FB00;
/// The OVMF-style GUID table area; the table ends at `GUID_TABLE.end` (= 4 GiB − 0x20) and is
/// read backwards from there.
pub const GUID_TABLE: Range<u64> = 0xFFFF_FB00..0xFFFF_FFE0;
/// The reset vector: 16 bytes at 4 GiB − 16.
pub const RESET_VECTOR: u64 = 0xFFFF_FFF0;

const _: () = assert!(HEAP.start >= IMAGE_RAM.end && HEAP.end <= FRAMES.start);
const _: () = assert!((PAGE_TABLES + PAGE_TABLES_SIZE) as usize <= IMAGE_RAM.start);
const _: () = assert!(SNP_CPUID_PAGE + 0x1000 <= PAGE_TABLES as u64 && SNP_SECRETS_PAGE > BOOT_SCRATCH as u64);
const _: () = assert!(MANIFEST_ADDR + MANIFEST_SIZE as u64 == BOOT_STUB.start);
const _: () = assert!(BOOT_STUB.end == GUID_TABLE.start && GUID_TABLE.end == (1 << 32) - 0x20);
const _: () = assert!(ROM_SIZE.is_multiple_of(0x10000));
const _: () = assert!(BOOT_SCRATCH as u64 + BOOT_SCRATCH_SIZE as u64 <= TD_HOB.start);
const _: () =
    assert!(TD_HOB.end <= SNP_SECRETS_PAGE && TD_HOB.start.is_multiple_of(0x1000) && TD_HOB.end.is_multiple_of(0x1000));
const _: () = assert!(EARLY_RAM[0].end <= EARLY_RAM[1].start && EARLY_RAM[1].end <= EARLY_RAM[2].start);
const _: () = assert!(RESET_VECTOR + 16 == 1 << 32);
