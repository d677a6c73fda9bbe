//! The pages the launch fills before the first instruction, read once into private memory:
//! the launch manifest's ROM slot, the SEV-SNP secrets page (or the simulator's stand-in for
//! it), and the simulated-TD marker page. Their addresses are fixed by the layout
//! (`twi_linker`); only this module reads them.

use alloc::boxed::Box;
use alloc::vec::Vec;

use twi_attester::snp::secrets::{SvsmInfo, SvsmInfoError};
use zeroize::Zeroize;

use crate::layout::{SIM_TD_MAGIC, SIM_TD_PAGE, SNP_SECRETS_PAGE};

unsafe extern "C" {
    static __manifest_start: u8;
    static __manifest_end: u8;
}

/// SEV-SNP secrets page: the VMPCK fields (VMPCK0..3, 32 bytes each, from offset 0x20).
const VMPCKS: core::ops::Range<usize> = 0x20..0xA0;

/// A private copy of the launch manifest's ROM slot (parse the copy, never the ROM).
pub fn manifest_slot() -> Vec<u8> {
    // SAFETY: the linker script places the 4 KiB manifest slot at these ROM addresses, which
    // the boot page tables map (ROM ignores writes); the ROM is immutable for the life of the
    // VM, so a shared borrow for the copy below is sound.
    let slot = unsafe {
        let start = core::ptr::addr_of!(__manifest_start);
        let len = core::ptr::addr_of!(__manifest_end) as usize - start as usize;
        core::slice::from_raw_parts(start, len)
    };
    Vec::from(slot)
}

/// Takes the SEV-SNP secrets page: copies it once into private memory and wipes the VMPCKs in
/// the original (nothing else in this VM may use them). The caller parses the copy and zeroizes
/// it when done.
pub fn take_secrets_page() -> Box<[u8; 4096]> {
    let mut copy = Box::new([0u8; 4096]);
    let page = SNP_SECRETS_PAGE as usize as *mut u8;
    // SAFETY: the layout reserves this identity-mapped RAM page for the secrets page (the
    // PSP, or the simulator's QEMU loader, fills it before the first instruction); nothing
    // else in the runtime references it, and it is 4096 bytes long.
    unsafe {
        core::ptr::copy_nonoverlapping(page, copy.as_mut_ptr(), copy.len());
        core::ptr::write_bytes(page.add(VMPCKS.start), 0, VMPCKS.len());
    }
    copy
}

/// The SVSM fields of the secrets page (read from a private copy, zeroized after), for a guest
/// that is not at VMPL0. The VMPCKs stay in the page for [`take_secrets_page`].
pub fn svsm_info() -> Result<SvsmInfo, SvsmInfoError> {
    let mut copy = Box::new([0u8; 4096]);
    // SAFETY: as in `take_secrets_page`: the layout's secrets page, identity mapped, 4096 bytes;
    // this only reads it.
    unsafe { core::ptr::copy_nonoverlapping(SNP_SECRETS_PAGE as usize as *const u8, copy.as_mut_ptr(), copy.len()) };
    let info = SvsmInfo::parse(&copy);
    copy.as_mut_slice().zeroize();
    info
}

/// Zeroizes a copy taken by [`take_secrets_page`].
pub fn wipe(mut copy: Box<[u8; 4096]>) {
    copy.as_mut_slice().zeroize();
}

/// Whether the host loader planted the simulated-TD page (`twi run --platform sim-tdx`). Only
/// for a plain VM: in a TD or an SEV-SNP guest that address is private memory nobody accepted.
pub fn sim_td_page_present() -> bool {
    let mut head = [0u8; SIM_TD_MAGIC.len()];
    // SAFETY: the layout reserves this identity-mapped RAM page for the simulator's marker
    // (QEMU's loader fills it before the first instruction, or it holds whatever RAM held);
    // the caller is on a plain VM, so plain RAM reads are fine.
    unsafe { core::ptr::copy_nonoverlapping(SIM_TD_PAGE as usize as *const u8, head.as_mut_ptr(), head.len()) };
    head == SIM_TD_MAGIC
}
