//! The SEV-SNP CPUID page (SEV-SNP Firmware ABI, Table "SNP_CPUID_FUNCTION" / the CPUID page
//! format): CPUID results the hypervisor proposed and the PSP checked at launch. Under SNP the
//! guest takes CPUID values from here, never from a (hypervisor-answered) CPUID exit.
//!
//! ```text
//! 0x00 u32 COUNT (≤ 64)   0x04 u32 reserved   0x08 u64 reserved
//! 0x10 entries[64], 48 bytes each:
//!      u32 EAX_IN, u32 ECX_IN, u64 XCR0_IN, u64 XSS_IN, u32 EAX, u32 EBX, u32 ECX, u32 EDX, u64 reserved
//! ```

pub const MAX_ENTRIES: usize = 64;
pub const ENTRY_SIZE: usize = 48;
pub const HEADER_SIZE: usize = 16;
pub const PAGE_SIZE: usize = 4096;
const _: () = assert!(HEADER_SIZE + MAX_ENTRIES * ENTRY_SIZE <= PAGE_SIZE);

/// CPUID leaves whose output depends on the subleaf (ECX): the lookup matches ECX_IN only for
/// these, as the ABI's CPUID checking does.
fn has_subleaves(leaf: u32) -> bool {
    matches!(
        leaf,
        0x4 | 0x7
            | 0xB
            | 0xD
            | 0xF
            | 0x10
            | 0x12
            | 0x14
            | 0x17
            | 0x18
            | 0x1D
            | 0x1E
            | 0x1F
            | 0x20
            | 0x8000_001D
            | 0x8000_0020
            | 0x8000_0026
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuidResult {
    pub eax: u32,
    pub ebx: u32,
    pub ecx: u32,
    pub edx: u32,
}

fn u32_at(page: &[u8; PAGE_SIZE], off: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&page[off..off + 4]);
    u32::from_le_bytes(b)
}

/// Looks up `leaf`/`subleaf` in a private copy of the CPUID page (XCR0/XSS-dependent leaves
/// match the first entry for the leaf: the runtime enables no XSAVE features).
pub fn lookup(page: &[u8; PAGE_SIZE], leaf: u32, subleaf: u32) -> Option<CpuidResult> {
    let count = (u32_at(page, 0) as usize).min(MAX_ENTRIES);
    (0..count).map(|i| HEADER_SIZE + i * ENTRY_SIZE).find_map(|e| {
        let matches = u32_at(page, e) == leaf && (!has_subleaves(leaf) || u32_at(page, e + 4) == subleaf);
        matches.then(|| CpuidResult {
            eax: u32_at(page, e + 24),
            ebx: u32_at(page, e + 28),
            ecx: u32_at(page, e + 32),
            edx: u32_at(page, e + 36),
        })
    })
}

/// Writes a CPUID page with `entries` (leaf, subleaf, result): for the simulator and tests.
pub fn build(entries: &[(u32, u32, CpuidResult)]) -> [u8; PAGE_SIZE] {
    let mut page = [0u8; PAGE_SIZE];
    let n = entries.len().min(MAX_ENTRIES);
    page[0..4].copy_from_slice(&(n as u32).to_le_bytes());
    for (i, (leaf, subleaf, r)) in entries.iter().take(n).enumerate() {
        let e = HEADER_SIZE + i * ENTRY_SIZE;
        page[e..e + 4].copy_from_slice(&leaf.to_le_bytes());
        page[e + 4..e + 8].copy_from_slice(&subleaf.to_le_bytes());
        for (k, v) in [r.eax, r.ebx, r.ecx, r.edx].into_iter().enumerate() {
            page[e + 24 + 4 * k..e + 28 + 4 * k].copy_from_slice(&v.to_le_bytes());
        }
    }
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_by_leaf_and_subleaf() {
        let sev = CpuidResult { eax: 0x1_000F, ebx: 0x0000_0173, ecx: 0, edx: 0 };
        let ext0 = CpuidResult { eax: 1, ebx: 2, ecx: 3, edx: 4 };
        let ext1 = CpuidResult { eax: 5, ebx: 6, ecx: 7, edx: 8 };
        let page = build(&[(0x8000_001F, 0, sev), (7, 0, ext0), (7, 1, ext1)]);
        assert_eq!(lookup(&page, 0x8000_001F, 0), Some(sev));
        assert_eq!(lookup(&page, 0x8000_001F, 5), Some(sev), "subleaf ignored for leaves without subleaves");
        assert_eq!(lookup(&page, 7, 1), Some(ext1));
        assert_eq!(lookup(&page, 7, 2), None);
        assert_eq!(lookup(&page, 1, 0), None);
        // C-bit position, as the boot stub reads it: EBX[5:0] of 0x8000_001F.
        assert_eq!(lookup(&page, 0x8000_001F, 0).unwrap().ebx & 0x3F, 0x33);
    }

    #[test]
    fn a_hostile_count_is_clamped() {
        let mut page = build(&[]);
        page[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(lookup(&page, 0xFFFF_FFFF, 0), None);
    }
}
