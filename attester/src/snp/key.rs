//! `MSG_KEY_REQ` / `MSG_KEY_RSP` (SEV-SNP Firmware ABI, Tables "MSG_KEY_REQ Message
//! Structure" and "MSG_KEY_RSP Message Structure"): ask the firmware for a key derived from a
//! chip secret and the guest's launch parameters, for sealing data to this launch.
//!
//! ```text
//! MSG_KEY_REQ (32 bytes)                        MSG_KEY_RSP (64 bytes)
//! 0x00 u32 ROOT_KEY_SELECT (bit 0: 0 VCEK,      0x00 u32 STATUS
//!          1 VMRK; bits 2:1 KEY_SEL)            0x04..0x20 reserved
//! 0x04 u32 reserved                             0x20 [32] DERIVED_KEY
//! 0x08 u64 GUEST_FIELD_SELECT
//! 0x10 u32 VMPL
//! 0x14 u32 GUEST_SVN
//! 0x18 u64 TCB_VERSION
//! ```

use crate::bytes::{Buf, BufMut};
use zeroize::Zeroizing;

pub const KEY_REQ_SIZE: usize = 32;
pub const KEY_RSP_SIZE: usize = 64;

/// GUEST_FIELD_SELECT bits: which launch parameters are mixed into the derived key.
pub mod field {
    pub const GUEST_POLICY: u64 = 1 << 0;
    pub const IMAGE_ID: u64 = 1 << 1;
    pub const FAMILY_ID: u64 = 1 << 2;
    pub const MEASUREMENT: u64 = 1 << 3;
    pub const GUEST_SVN: u64 = 1 << 4;
    pub const TCB_VERSION: u64 = 1 << 5;
    /// Every bit the ABI defines up to version 1.55.
    pub const ALL: u64 = 0x3F;
}

const ROOT_KEY_SELECT: usize = 0x00;
const GUEST_FIELD_SELECT: usize = 0x08;
const VMPL: usize = 0x10;
const GUEST_SVN: usize = 0x14;
const TCB_VERSION: usize = 0x18;
const RSP_STATUS: usize = 0x00;
const RSP_KEY: usize = 0x20;
const _: () = assert!(TCB_VERSION + 8 == KEY_REQ_SIZE && RSP_KEY + 32 == KEY_RSP_SIZE);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyMsgError {
    Length { expected: usize, actual: usize },
    ReservedNonZero,
}

impl core::fmt::Display for KeyMsgError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Length { expected, actual } => write!(f, "key message is {actual} bytes, expected {expected}"),
            Self::ReservedNonZero => f.write_str("key message reserved bytes are not zero"),
        }
    }
}

impl core::error::Error for KeyMsgError {}

/// `MSG_KEY_REQ`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyRequest {
    /// Bit 0: derive from the VMRK (1) instead of the VCEK (0).
    pub root_key_select: u32,
    pub guest_field_select: u64,
    pub vmpl: u32,
    pub guest_svn: u32,
    pub tcb_version: u64,
}

impl KeyRequest {
    /// What the runtime's sealing key binds: the launch measurement, the guest policy and the
    /// platform TCB (so a firmware downgrade or another image cannot unseal), derived at VMPL 0
    /// from ROOT_KEY_SELECT 0 with KEY_SEL 0: the firmware's choice of VLEK (when one is
    /// installed) or the chip-unique VCEK. GUEST_SVN and TCB_VERSION are the values the request
    /// carries (0 and the current TCB are the usual choices; the firmware refuses values above
    /// the current ones).
    pub fn launch_bound(tcb_version: u64) -> Self {
        Self {
            root_key_select: 0,
            guest_field_select: field::MEASUREMENT | field::GUEST_POLICY | field::TCB_VERSION,
            vmpl: 0,
            guest_svn: 0,
            tcb_version,
        }
    }

    pub fn to_bytes(&self) -> [u8; KEY_REQ_SIZE] {
        let mut out = [0u8; KEY_REQ_SIZE];
        let mut w = BufMut(&mut out);
        w.u32::<ROOT_KEY_SELECT>(self.root_key_select);
        w.u64::<GUEST_FIELD_SELECT>(self.guest_field_select);
        w.u32::<VMPL>(self.vmpl);
        w.u32::<GUEST_SVN>(self.guest_svn);
        w.u64::<TCB_VERSION>(self.tcb_version);
        out
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, KeyMsgError> {
        let b: &[u8; KEY_REQ_SIZE] =
            bytes.try_into().map_err(|_| KeyMsgError::Length { expected: KEY_REQ_SIZE, actual: bytes.len() })?;
        let b = Buf(b);
        if !b.zero::<0x04, 4>() {
            return Err(KeyMsgError::ReservedNonZero);
        }
        Ok(Self {
            root_key_select: b.u32::<ROOT_KEY_SELECT>(),
            guest_field_select: b.u64::<GUEST_FIELD_SELECT>(),
            vmpl: b.u32::<VMPL>(),
            guest_svn: b.u32::<GUEST_SVN>(),
            tcb_version: b.u64::<TCB_VERSION>(),
        })
    }
}

/// `MSG_KEY_RSP`: the status and, on success, the derived key (zeroized on drop).
#[derive(Debug)]
pub struct KeyResponse {
    pub status: u32,
    pub key: Zeroizing<[u8; 32]>,
}

impl KeyResponse {
    pub fn parse(bytes: &[u8]) -> Result<Self, KeyMsgError> {
        let b: &[u8; KEY_RSP_SIZE] = bytes
            .get(..KEY_RSP_SIZE)
            .and_then(|b| b.try_into().ok())
            .ok_or(KeyMsgError::Length { expected: KEY_RSP_SIZE, actual: bytes.len() })?;
        let b = Buf(b);
        Ok(Self { status: b.u32::<RSP_STATUS>(), key: Zeroizing::new(b.get::<RSP_KEY, 32>()) })
    }

    pub fn encode(status: u32, key: &[u8; 32]) -> [u8; KEY_RSP_SIZE] {
        let mut out = [0u8; KEY_RSP_SIZE];
        let mut w = BufMut(&mut out);
        w.u32::<RSP_STATUS>(status);
        w.put::<RSP_KEY, 32>(*key);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout() {
        let req = KeyRequest {
            root_key_select: 1,
            guest_field_select: 0x0807_0605_0403_0201,
            vmpl: 0x0c0b_0a09,
            guest_svn: 0x100f_0e0d,
            tcb_version: 0x1817_1615_1413_1211,
        };
        let b = req.to_bytes();
        assert_eq!(&b[0..4], &[1, 0, 0, 0]);
        assert_eq!(&b[4..8], &[0; 4]);
        assert_eq!(&b[8..16], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&b[16..20], &[9, 10, 11, 12]);
        assert_eq!(&b[20..24], &[13, 14, 15, 16]);
        assert_eq!(&b[24..32], &[0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18]);
        assert_eq!(KeyRequest::parse(&b), Ok(req));
        let mut bad = b;
        bad[5] = 1;
        assert_eq!(KeyRequest::parse(&bad), Err(KeyMsgError::ReservedNonZero));
        assert!(KeyRequest::parse(&b[..31]).is_err());
    }

    #[test]
    fn response_layout() {
        let b = KeyResponse::encode(0x16, &[0x5A; 32]);
        assert_eq!(&b[0..4], &[0x16, 0, 0, 0]);
        assert!(b[4..0x20].iter().all(|&x| x == 0));
        let rsp = KeyResponse::parse(&b).unwrap();
        assert_eq!((rsp.status, *rsp.key), (0x16, [0x5A; 32]));
        assert!(KeyResponse::parse(&b[..63]).is_err());
    }
}
