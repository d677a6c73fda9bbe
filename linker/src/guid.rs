//! GUIDs as firmware stores them, and the GUIDs of the OVMF-style ROM footer.
//!
//! A GUID in memory is an `EFI_GUID` (UEFI 2.10 §2.3.1 "EFI_GUID"): `Data1` (u32), `Data2`
//! (u16) and `Data3` (u16) little-endian, then `Data4` (8 bytes) as written. For the text form
//! `00112233-4455-6677-8899-aabbccddeeff` that is the byte string
//! `33 22 11 00 55 44 77 66 88 99 aa bb cc dd ee ff` (Python's `uuid.UUID(...).bytes_le`, which
//! `sev-snp-measure` uses to read the same table). [`Guid::parse`] does the conversion at compile
//! time, so no GUID is ever written out as hand-encoded bytes.

/// A GUID in its in-memory (`EFI_GUID`, mixed-endian) byte order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Guid(pub [u8; 16]);

/// Bytes of a GUID in memory.
pub const GUID_LEN: usize = 16;
const _: () = assert!(core::mem::size_of::<Guid>() == GUID_LEN);

impl Guid {
    /// Parses the canonical text form (`8-4-4-4-12` hex digits, either case). Meant for
    /// constants: a malformed string fails the build.
    pub const fn parse(text: &str) -> Guid {
        match Self::try_parse(text) {
            Some(guid) => guid,
            None => panic!("malformed GUID text"),
        }
    }

    /// Parses the canonical text form; `None` if it is not one.
    pub const fn try_parse(text: &str) -> Option<Guid> {
        let s = text.as_bytes();
        if s.len() != 36 || s[8] != b'-' || s[13] != b'-' || s[18] != b'-' || s[23] != b'-' {
            return None;
        }
        // The 16 bytes in text order.
        let mut raw = [0u8; 16];
        let (mut i, mut j) = (0, 0);
        while i < s.len() {
            if s[i] == b'-' {
                i += 1;
                continue;
            }
            let (Some(hi), Some(lo)) = (hex_digit(s[i]), hex_digit(s[i + 1])) else {
                return None;
            };
            raw[j] = (hi << 4) | lo;
            i += 2;
            j += 1;
        }
        // Data1, Data2, Data3 are stored little-endian; Data4 as written.
        let mut b = [0u8; 16];
        b[0] = raw[3];
        b[1] = raw[2];
        b[2] = raw[1];
        b[3] = raw[0];
        b[4] = raw[5];
        b[5] = raw[4];
        b[6] = raw[7];
        b[7] = raw[6];
        let mut k = 8;
        while k < 16 {
            b[k] = raw[k];
            k += 1;
        }
        Some(Guid(b))
    }

    /// The in-memory bytes.
    pub const fn to_bytes(self) -> [u8; GUID_LEN] {
        self.0
    }
}

impl core::fmt::Debug for Guid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

impl core::fmt::Display for Guid {
    /// The canonical text form, lower case.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            u16::from_le_bytes([b[4], b[5]]),
            u16::from_le_bytes([b[6], b[7]]),
            b[8],
            b[9],
            b[10],
            b[11],
            b[12],
            b[13],
            b[14],
            b[15]
        )
    }
}

const fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The footer GUID that ends the table (QEMU `hw/i386/pc_sysfw_ovmf.c`
/// `OVMF_TABLE_FOOTER_GUID`; EDK2 `OvmfPkg/ResetVector/Ia16/ResetVectorVtf0.asm`
/// `guidedStructureEnd`).
pub const OVMF_TABLE_FOOTER: Guid = Guid::parse("96b582de-1fb2-45f7-baea-a366c55a082d");
/// Entry data: u32 offset of the SEV metadata ("ASEV") from the end of the ROM (QEMU
/// `target/i386/sev.c` `OVMF_SEV_META_DATA_GUID`; EDK2 `SEV_SNP_METADATA_GUID` in
/// `ResetVectorVtf0.asm`).
pub const SEV_METADATA_OFFSET: Guid = Guid::parse("dc886566-984a-4798-a75e-5585a7bf67cc");
/// Entry data: u32 SEV-ES AP reset address (QEMU `target/i386/sev.c` `SEV_INFO_BLOCK_GUID`,
/// struct `SevInfoBlock { uint32_t reset_addr; }`; EDK2 `SEV_ES_RESET_BLOCK_GUID`).
pub const SEV_ES_RESET_BLOCK: Guid = Guid::parse("00f771de-1a7e-4fcb-890e-68c77e2fb44e");
/// Entry data: u32 offset of the TDX metadata ("TDVF") from the end of the ROM (QEMU
/// `hw/i386/tdvf.c` `TDX_METADATA_OFFSET_GUID`; Intel TDX Virtual Firmware Design Guide
/// §11.2 "TDVF Metadata Pointer").
pub const TDX_METADATA_OFFSET: Guid = Guid::parse("e47a6535-984a-4798-865e-4685a7bf8ec2");
/// The TDX metadata GUID that immediately precedes the "TDVF" descriptor (EDK2
/// `OvmfPkg/ResetVector/X64/IntelTdxMetadata.asm` `TdxMetadataGuid`; td-shim
/// `td-shim-interface/src/metadata.rs` `TDX_METADATA_GUID`). QEMU does not check it; td-shim's
/// MRTD calculator (`td-shim-tools`, `td_shim_tee_info_hash.py`) reads the 16 bytes before the
/// descriptor the offset entry points at and refuses an image without it.
pub const TDX_METADATA: Guid = Guid::parse("e9eaf9f3-168e-44d5-a8eb-7f4d8738f6ae");
/// Entry data: u32 GPA, u32 size of the SEV kernel-hashes table (QEMU `target/i386/sev.c`
/// `SEV_HASH_TABLE_RV_GUID`). TWI boots no kernel and does not emit it; the measurement
/// calculator reads it from OVMF images.
pub const SEV_HASH_TABLE_RV: Guid = Guid::parse("7255371f-3a3b-4b04-927b-1da6efa8d454");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_order_to_efi_order() {
        let g = Guid::parse("00112233-4455-6677-8899-AABBCCDDEEFF");
        assert_eq!(
            g.0,
            [0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]
        );
    }

    #[test]
    fn rejects_malformed_text() {
        assert!(Guid::try_parse("00112233-4455-6677-8899-AABBCCDDEEF").is_none());
        assert!(Guid::try_parse("00112233x4455-6677-8899-AABBCCDDEEFF").is_none());
        assert!(Guid::try_parse("0011223g-4455-6677-8899-AABBCCDDEEFF").is_none());
    }

    #[test]
    fn display_round_trips() {
        extern crate std;
        use std::string::ToString;
        let text = "96b582de-1fb2-45f7-baea-a366c55a082d";
        assert_eq!(Guid::parse(text).to_string(), text);
    }
}
