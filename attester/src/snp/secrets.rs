//! The SEV-SNP secrets page (SEV-SNP Firmware ABI, Table "Secrets Page Format"): the PSP fills
//! it at launch with the four VM Platform Communication Keys. A simulator plants one with the
//! same layout. Read it once into private memory and parse the copy.
//!
//! ```text
//! 0x000 u32 VERSION     0x004 u32 IMIEN    0x008 u32 FMS    0x00C reserved
//! 0x010 [16] GOSVW
//! 0x020 [32] VMPCK0     0x040 [32] VMPCK1  0x060 [32] VMPCK2  0x080 [32] VMPCK3
//! 0x0A0 [96] guest OS area
//! ```

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
}
