//! The SGX enclave report body (Intel SDM Vol. 3D, "REPORT (Enclave Report)", the first 384
//! bytes: `sgx_report_body_t`). In a TDX quote it is the Quoting Enclave's report, signed by
//! the PCK key; its REPORTDATA binds the quote's attestation key.
//!
//! ```text
//! 0x000 [16] CPUSVN        0x040 [32] MRENCLAVE     0x100 u16 ISVPRODID
//! 0x010 u32  MISCSELECT    0x060 [32] reserved      0x102 u16 ISVSVN
//! 0x014 [28] reserved      0x080 [32] MRSIGNER      0x104 [60] reserved
//! 0x030 [16] ATTRIBUTES    0x0A0 [96] reserved      0x140 [64] REPORTDATA
//! ```
//!
//! Reserved bytes are kept (`reserved_*`), so encoding a parsed report gives back its bytes.

use crate::bytes::{Buf, BufMut};

/// Size of the report body.
pub const ENCLAVE_REPORT_SIZE: usize = 384;

/// Field offsets.
pub mod offset {
    pub const CPUSVN: usize = 0x000;
    pub const MISCSELECT: usize = 0x010;
    pub const RESERVED1: usize = 0x014;
    pub const ATTRIBUTES: usize = 0x030;
    pub const MRENCLAVE: usize = 0x040;
    pub const RESERVED2: usize = 0x060;
    pub const MRSIGNER: usize = 0x080;
    pub const RESERVED3: usize = 0x0A0;
    pub const ISVPRODID: usize = 0x100;
    pub const ISVSVN: usize = 0x102;
    pub const RESERVED4: usize = 0x104;
    pub const REPORTDATA: usize = 0x140;
}
use offset::*;

const _: () = assert!(RESERVED1 == MISCSELECT + 4 && ATTRIBUTES == RESERVED1 + 28);
const _: () = assert!(MRENCLAVE == ATTRIBUTES + 16 && RESERVED2 == MRENCLAVE + 32 && MRSIGNER == RESERVED2 + 32);
const _: () = assert!(RESERVED3 == MRSIGNER + 32 && ISVPRODID == RESERVED3 + 96 && ISVSVN == ISVPRODID + 2);
const _: () =
    assert!(RESERVED4 == ISVSVN + 2 && REPORTDATA == RESERVED4 + 60 && REPORTDATA + 64 == ENCLAVE_REPORT_SIZE);

/// An SGX enclave report body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnclaveReport {
    pub cpu_svn: [u8; 16],
    pub misc_select: u32,
    pub reserved_1: [u8; 28],
    /// ATTRIBUTES: FLAGS (u64) then XFRM (u64), little-endian.
    pub attributes: [u8; 16],
    pub mr_enclave: [u8; 32],
    pub reserved_2: [u8; 32],
    pub mr_signer: [u8; 32],
    pub reserved_3: [u8; 96],
    pub isv_prod_id: u16,
    pub isv_svn: u16,
    pub reserved_4: [u8; 60],
    pub report_data: [u8; 64],
}

impl EnclaveReport {
    /// Reads a report body; every 384-byte input is one.
    pub fn parse(bytes: &[u8; ENCLAVE_REPORT_SIZE]) -> Self {
        let b = Buf(bytes);
        Self {
            cpu_svn: b.get::<CPUSVN, 16>(),
            misc_select: b.u32::<MISCSELECT>(),
            reserved_1: b.get::<RESERVED1, 28>(),
            attributes: b.get::<ATTRIBUTES, 16>(),
            mr_enclave: b.get::<MRENCLAVE, 32>(),
            reserved_2: b.get::<RESERVED2, 32>(),
            mr_signer: b.get::<MRSIGNER, 32>(),
            reserved_3: b.get::<RESERVED3, 96>(),
            isv_prod_id: u16::from_le_bytes(b.get::<ISVPRODID, 2>()),
            isv_svn: u16::from_le_bytes(b.get::<ISVSVN, 2>()),
            reserved_4: b.get::<RESERVED4, 60>(),
            report_data: b.get::<REPORTDATA, 64>(),
        }
    }

    /// Encodes the report body. Inverse of [`parse`](Self::parse).
    pub fn to_bytes(&self) -> [u8; ENCLAVE_REPORT_SIZE] {
        let mut out = [0u8; ENCLAVE_REPORT_SIZE];
        let mut w = BufMut(&mut out);
        w.put::<CPUSVN, 16>(self.cpu_svn);
        w.u32::<MISCSELECT>(self.misc_select);
        w.put::<RESERVED1, 28>(self.reserved_1);
        w.put::<ATTRIBUTES, 16>(self.attributes);
        w.put::<MRENCLAVE, 32>(self.mr_enclave);
        w.put::<RESERVED2, 32>(self.reserved_2);
        w.put::<MRSIGNER, 32>(self.mr_signer);
        w.put::<RESERVED3, 96>(self.reserved_3);
        w.put::<ISVPRODID, 2>(self.isv_prod_id.to_le_bytes());
        w.put::<ISVSVN, 2>(self.isv_svn.to_le_bytes());
        w.put::<RESERVED4, 60>(self.reserved_4);
        w.put::<REPORTDATA, 64>(self.report_data);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_at_their_offsets_and_round_trip() {
        let mut bytes = [0u8; ENCLAVE_REPORT_SIZE];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i * 7 + 3) as u8;
        }
        let r = EnclaveReport::parse(&bytes);
        assert_eq!(r.to_bytes(), bytes);
        assert_eq!(r.cpu_svn[0], bytes[0]);
        assert_eq!(r.misc_select, u32::from_le_bytes(bytes[16..20].try_into().unwrap()));
        assert_eq!(r.attributes[0], bytes[48]);
        assert_eq!(r.mr_enclave[0], bytes[64]);
        assert_eq!(r.mr_signer[31], bytes[159]);
        assert_eq!(r.isv_prod_id, u16::from_le_bytes([bytes[256], bytes[257]]));
        assert_eq!(r.isv_svn, u16::from_le_bytes([bytes[258], bytes[259]]));
        assert_eq!(r.report_data[0], bytes[320]);
        assert_eq!(r.report_data[63], bytes[383]);
    }
}
