//! AMD EPYC product lines that run SEV-SNP, and how a report or a certificate names them.

use std::fmt;

use twi_attester::snp::report::TcbLayout;

/// A product line, as AMD's Key Distribution Service names it in its URLs
/// (`/vcek/v1/{Milan,Genoa,Turin}/...`) and as the ARK/ASK common names carry it
/// (`ARK-Milan`, `SEV-Genoa`, `SEV-VLEK-Turin`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Product {
    /// EPYC 7003 (family 19h, models 00h–0Fh).
    Milan,
    /// EPYC 9004/8004 (family 19h, models 10h–1Fh and A0h–AFh: Genoa, Bergamo, Siena share
    /// Genoa's keys).
    Genoa,
    /// EPYC 9005 (family 1Ah, models 00h–1Fh).
    Turin,
}

impl Product {
    pub const ALL: [Product; 3] = [Product::Milan, Product::Genoa, Product::Turin];

    /// The name KDS uses in its URLs.
    pub const fn name(self) -> &'static str {
        match self {
            Product::Milan => "Milan",
            Product::Genoa => "Genoa",
            Product::Turin => "Turin",
        }
    }

    /// The product of a CPU by its CPUID family and model (report v3+ `CPUID_FAM_ID`,
    /// `CPUID_MOD_ID`; AMD's family/model numbers of each EPYC generation).
    pub const fn from_cpuid(family: u8, model: u8) -> Option<Self> {
        match (family, model) {
            (0x19, 0x00..=0x0F) => Some(Product::Milan),
            (0x19, 0x10..=0x1F | 0xA0..=0xAF) => Some(Product::Genoa),
            (0x1A, 0x00..=0x1F) => Some(Product::Turin),
            _ => None,
        }
    }

    /// The product a certificate name or productName extension mentions: `Milan-B0`,
    /// `SEV-Milan`, `ARK-Genoa`, `SEV-VLEK-Turin` (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.to_ascii_lowercase();
        Self::ALL.into_iter().find(|p| name.contains(&p.name().to_ascii_lowercase()))
    }

    /// Which `TCB_VERSION` byte layout the product's firmware uses (SEV-SNP ABI spec,
    /// "TCB_VERSION Structure": Turin added the FMC SVN and moved the others).
    pub const fn tcb_layout(self) -> TcbLayout {
        match self {
            Product::Milan | Product::Genoa => TcbLayout::MilanGenoa,
            Product::Turin => TcbLayout::Turin,
        }
    }

    /// Bytes of `CHIP_ID` that the VCEK's hwID carries: all 64, except on Turin, whose chip
    /// id is 8 bytes (the rest of `CHIP_ID` is zero).
    pub const fn hw_id_len(self) -> usize {
        match self {
            Product::Turin => 8,
            _ => 64,
        }
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_cpuid() {
        assert_eq!(Product::from_cpuid(0x19, 0x01), Some(Product::Milan));
        assert_eq!(Product::from_cpuid(0x19, 0x11), Some(Product::Genoa));
        assert_eq!(Product::from_cpuid(0x19, 0xA0), Some(Product::Genoa));
        assert_eq!(Product::from_cpuid(0x1A, 0x02), Some(Product::Turin));
        assert_eq!(Product::from_cpuid(0x17, 0x31), None);
        assert_eq!(Product::from_cpuid(0, 0), None);
        for (name, want) in [
            ("Milan-B0", Product::Milan),
            ("SEV-VLEK-Milan", Product::Milan),
            ("ARK-Genoa", Product::Genoa),
            ("turin", Product::Turin),
        ] {
            assert_eq!(Product::from_name(name), Some(want), "{name}");
        }
        assert_eq!(Product::from_name("SEV-Sim"), None);
        assert_eq!(Product::Turin.tcb_layout(), TcbLayout::Turin);
        assert_eq!(Product::Genoa.tcb_layout(), TcbLayout::MilanGenoa);
    }
}
