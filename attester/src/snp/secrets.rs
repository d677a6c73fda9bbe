//! The SEV-SNP secrets page (SEV-SNP Firmware ABI, Table "Secrets Page Format"): the PSP fills
//! it at launch with the four VM Platform Communication Keys. A simulator plants one with the
//! same layout. Read it once into private memory and parse the copy.
//!
//! ```text
//! 0x000 u32 VERSION     0x004 u32 IMIEN    0x008 u32 FMS    0x00C reserved
//! 0x010 [16] GOSVW
//! 0x020 [32] VMPCK0     0x040 [32] VMPCK1  0x060 [32] VMPCK2  0x080 [32] VMPCK3
//! 0x0A0 [96] guest OS area
//! 0x100 [64] VMSA tweak bitmap
//! 0x140 u64 SVSM_BASE   0x148 u64 SVSM_SIZE   0x150 u64 SVSM_CAA
//! 0x158 u32 SVSM_MAX_VERSION   0x15C u8 SVSM_GUEST_VMPL   0x15D [3] reserved
//! ```
//!
//! The SVSM fields (58019 §3 "SVSM Discovery"; Linux `struct snp_secrets_page`; COCONUT
//! `kernel/src/sev/secrets_page.rs`) are filled by an SVSM in the copy of the page it gives the
//! guest below it; [`SvsmInfo::parse`] applies Linux's `svsm_setup_ca` rules.

use crate::bytes::Buf;
use crate::snp::guest_msg::Vmpck;

pub const SECRETS_PAGE_SIZE: usize = 4096;
const VERSION: usize = 0x000;
const VMPCK0: usize = 0x020;
pub const VMPCK_OFFSETS: [usize; 4] = [VMPCK0, VMPCK0 + 0x20, VMPCK0 + 0x40, VMPCK0 + 0x60];

/// The parts of the secrets page the runtime uses.
#[derive(Debug)]
pub struct SecretsPage {
    pub version: u32,
    vmpcks: [Vmpck; 4],
}

impl SecretsPage {
    /// Parses a private copy of the page. `None` when the page is all zero in its header and
    /// keys (no PSP or simulator filled it).
    pub fn parse(page: &[u8; SECRETS_PAGE_SIZE]) -> Option<Self> {
        let b = Buf(page);
        let version = b.u32::<VERSION>();
        let vmpcks = [
            Vmpck::new(b.get::<{ VMPCK_OFFSETS[0] }, 32>()),
            Vmpck::new(b.get::<{ VMPCK_OFFSETS[1] }, 32>()),
            Vmpck::new(b.get::<{ VMPCK_OFFSETS[2] }, 32>()),
            Vmpck::new(b.get::<{ VMPCK_OFFSETS[3] }, 32>()),
        ];
        if version == 0 && vmpcks.iter().all(Vmpck::is_zero) {
            return None;
        }
        Some(Self { version, vmpcks })
    }

    /// Takes VMPCK `id` (0..=3) out of the parsed page.
    pub fn take_vmpck(&mut self, id: usize) -> Option<Vmpck> {
        let slot = self.vmpcks.get_mut(id)?;
        Some(core::mem::replace(slot, Vmpck::new([0; 32])))
    }
}

/// Where the SVSM lives and which VMPL the guest runs at, from the secrets page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SvsmInfo {
    pub base: u64,
    pub size: u64,
    /// The GPA of the guest's calling area.
    pub caa: u64,
    pub max_version: u32,
    pub guest_vmpl: u8,
}

/// Why the secrets page does not describe a usable SVSM (Linux terminates with
/// GHCB_TERM_NO_SVSM, _SVSM_VMPL0 and _SVSM_CAA for these).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SvsmInfoError {
    /// SVSM_SIZE is 0: no SVSM is advertised.
    NoSvsm,
    /// SVSM_GUEST_VMPL is 0: a guest at VMPL0 has no SVSM below it.
    GuestAtVmpl0,
    /// The calling area is not page aligned.
    CaaAlignment(u64),
}

impl core::fmt::Display for SvsmInfoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoSvsm => f.write_str("the secrets page advertises no SVSM"),
            Self::GuestAtVmpl0 => f.write_str("the secrets page says the guest runs at VMPL0 under an SVSM"),
            Self::CaaAlignment(gpa) => write!(f, "the SVSM calling area {gpa:#x} is not page aligned"),
        }
    }
}

const SVSM_BASE: usize = 0x140;
const SVSM_SIZE: usize = 0x148;
const SVSM_CAA: usize = 0x150;
const SVSM_MAX_VERSION: usize = 0x158;
const SVSM_GUEST_VMPL: usize = 0x15C;
const _: () = assert!(SVSM_BASE == 0xA0 + 96 + 64 && SVSM_GUEST_VMPL == SVSM_MAX_VERSION + 4);

impl SvsmInfo {
    /// Reads the SVSM fields of a private copy of the secrets page.
    pub fn parse(page: &[u8; SECRETS_PAGE_SIZE]) -> Result<Self, SvsmInfoError> {
        let b = Buf(page);
        let info = Self {
            base: b.u64::<SVSM_BASE>(),
            size: b.u64::<SVSM_SIZE>(),
            caa: b.u64::<SVSM_CAA>(),
            max_version: b.u32::<SVSM_MAX_VERSION>(),
            guest_vmpl: b.u8::<SVSM_GUEST_VMPL>(),
        };
        if info.size == 0 {
            return Err(SvsmInfoError::NoSvsm);
        }
        if info.guest_vmpl == 0 {
            return Err(SvsmInfoError::GuestAtVmpl0);
        }
        if !info.caa.is_multiple_of(4096) {
            return Err(SvsmInfoError::CaaAlignment(info.caa));
        }
        Ok(info)
    }

    /// Writes the fields into a page (what an SVSM, or a simulated one, does).
    pub fn write(&self, page: &mut [u8; SECRETS_PAGE_SIZE]) {
        page[SVSM_BASE..SVSM_BASE + 8].copy_from_slice(&self.base.to_le_bytes());
        page[SVSM_SIZE..SVSM_SIZE + 8].copy_from_slice(&self.size.to_le_bytes());
        page[SVSM_CAA..SVSM_CAA + 8].copy_from_slice(&self.caa.to_le_bytes());
        page[SVSM_MAX_VERSION..SVSM_MAX_VERSION + 4].copy_from_slice(&self.max_version.to_le_bytes());
        page[SVSM_GUEST_VMPL] = self.guest_vmpl;
    }
}

/// A secrets page as a simulator plants it: VERSION 3 and VMPCK0 = `vmpck0` (others zero, as a
/// launch that gives the guest only VMPL0 access would).
pub fn simulated_page(vmpck0: &[u8; 32]) -> [u8; SECRETS_PAGE_SIZE] {
    let mut page = [0u8; SECRETS_PAGE_SIZE];
    page[VERSION..VERSION + 4].copy_from_slice(&3u32.to_le_bytes());
    page[VMPCK0..VMPCK0 + 32].copy_from_slice(vmpck0);
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmpck0_sits_at_0x20_and_zero_pages_are_absent() {
        let page = simulated_page(&[0x42; 32]);
        assert_eq!(&page[0x20..0x40], &[0x42; 32]);
        assert!(page[0x40..].iter().all(|&b| b == 0));
        let mut parsed = SecretsPage::parse(&page).unwrap();
        assert_eq!(parsed.version, 3);
        assert!(!parsed.take_vmpck(0).unwrap().is_zero());
        assert!(parsed.take_vmpck(0).unwrap().is_zero(), "a key is taken only once");
        assert!(parsed.take_vmpck(1).unwrap().is_zero());
        assert!(parsed.take_vmpck(4).is_none());
        assert!(SecretsPage::parse(&[0; SECRETS_PAGE_SIZE]).is_none());
    }

    #[test]
    fn svsm_fields_sit_where_linux_and_coconut_put_them() {
        let mut page = simulated_page(&[1; 32]);
        assert_eq!(SvsmInfo::parse(&page), Err(SvsmInfoError::NoSvsm));
        let info = SvsmInfo { base: 0x1_0000_0000, size: 0x100_0000, caa: 0x8_3000, max_version: 1, guest_vmpl: 2 };
        info.write(&mut page);
        assert_eq!(&page[0x140..0x148], &0x1_0000_0000u64.to_le_bytes());
        assert_eq!(&page[0x150..0x158], &0x8_3000u64.to_le_bytes());
        assert_eq!((page[0x158], page[0x15C]), (1, 2));
        assert_eq!(SvsmInfo::parse(&page), Ok(info));
        let mut vmpl0 = page;
        vmpl0[0x15C] = 0;
        assert_eq!(SvsmInfo::parse(&vmpl0), Err(SvsmInfoError::GuestAtVmpl0));
        let mut unaligned = page;
        unaligned[0x150] = 8;
        assert_eq!(SvsmInfo::parse(&unaligned), Err(SvsmInfoError::CaaAlignment(0x8_3008)));
    }
}
