//! What a TD reports about itself.
//!
//! * [`TdQuoteBody`]: the TD report inside a DCAP quote — "TD Quote Body" (TDX 1.0, 584 bytes)
//!   and "TD Quote Body v1.5" (648 bytes: adds TEE_TCB_SVN_2 and MRSERVICETD), from Intel's
//!   "TDX DCAP Quoting Library API", appendix "Quote Format" (quote v4 and v5).
//! * [`TdReport`]: `TDREPORT_STRUCT` (1024 bytes) that `TDG.MR.REPORT` writes, from the Intel
//!   TDX Module ABI specification: `REPORTMACSTRUCT` (256) at 0, `TEE_TCB_INFO` (239, padded
//!   to 256) at 256, `TDINFO_STRUCT` (512) at 512.
//!
//! TD quote body:
//! ```text
//!   0 [16] TEE_TCB_SVN     136 [48] MRTD            328 [48] RTMR0      520 [64] REPORTDATA
//!  16 [48] MRSEAM          184 [48] MRCONFIGID      376 [48] RTMR1      --- 1.5 only ---
//!  64 [48] MRSIGNERSEAM    232 [48] MROWNER         424 [48] RTMR2      584 [16] TEE_TCB_SVN_2
//! 112 [8]  SEAMATTRIBUTES  280 [48] MROWNERCONFIG   472 [48] RTMR3      600 [48] MRSERVICETD
//! 120 [8]  TDATTRIBUTES
//! 128 [8]  XFAM
//! ```

use crate::bytes::{Buf, BufMut};

/// Size of a TDX 1.0 TD quote body.
pub const TD10_BODY_SIZE: usize = 584;
/// Size of a TDX 1.5 TD quote body.
pub const TD15_BODY_SIZE: usize = 648;

/// Offsets inside a TD quote body.
pub mod body_offset {
    pub const TEE_TCB_SVN: usize = 0;
    pub const MRSEAM: usize = 16;
    pub const MRSIGNERSEAM: usize = 64;
    pub const SEAMATTRIBUTES: usize = 112;
    pub const TDATTRIBUTES: usize = 120;
    pub const XFAM: usize = 128;
    pub const MRTD: usize = 136;
    pub const MRCONFIGID: usize = 184;
    pub const MROWNER: usize = 232;
    pub const MROWNERCONFIG: usize = 280;
    pub const RTMR0: usize = 328;
    pub const RTMR1: usize = 376;
    pub const RTMR2: usize = 424;
    pub const RTMR3: usize = 472;
    pub const REPORTDATA: usize = 520;
    pub const TEE_TCB_SVN_2: usize = 584;
    pub const MRSERVICETD: usize = 600;
}

mod layout_checks {
    use super::body_offset::*;
    use super::*;
    const _: () = assert!(MRSEAM == TEE_TCB_SVN + 16 && MRSIGNERSEAM == MRSEAM + 48);
    const _: () = assert!(SEAMATTRIBUTES == MRSIGNERSEAM + 48 && TDATTRIBUTES == SEAMATTRIBUTES + 8);
    const _: () = assert!(XFAM == TDATTRIBUTES + 8 && MRTD == XFAM + 8 && MRCONFIGID == MRTD + 48);
    const _: () = assert!(MROWNER == MRCONFIGID + 48 && MROWNERCONFIG == MROWNER + 48 && RTMR0 == MROWNERCONFIG + 48);
    const _: () = assert!(RTMR1 == RTMR0 + 48 && RTMR2 == RTMR1 + 48 && RTMR3 == RTMR2 + 48);
    const _: () = assert!(REPORTDATA == RTMR3 + 48 && REPORTDATA + 64 == TD10_BODY_SIZE);
    const _: () = assert!(TEE_TCB_SVN_2 == TD10_BODY_SIZE && MRSERVICETD == TEE_TCB_SVN_2 + 16);
    const _: () = assert!(MRSERVICETD + 48 == TD15_BODY_SIZE);
}

/// TDATTRIBUTES bit 0: the TD is debuggable (TUD.DEBUG): its memory and state are readable
/// by the host.
pub const TD_ATTRIBUTE_DEBUG: u64 = 1;

/// A TD quote body (TDX 1.0, or 1.5 when `tee_tcb_svn_2` and `mr_service_td` are present).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TdQuoteBody {
    /// TEE_TCB_SVN: byte 0 the TDX module's minor SVN, byte 1 its major version, the rest as
    /// the TDX module defines (compared with TCB info's `tdxtcbcomponents`).
    pub tee_tcb_svn: [u8; 16],
    pub mr_seam: [u8; 48],
    pub mr_signer_seam: [u8; 48],
    pub seam_attributes: [u8; 8],
    pub td_attributes: [u8; 8],
    pub xfam: [u8; 8],
    pub mr_td: [u8; 48],
    pub mr_config_id: [u8; 48],
    pub mr_owner: [u8; 48],
    pub mr_owner_config: [u8; 48],
    pub rtmr: [[u8; 48]; 4],
    pub report_data: [u8; 64],
    /// TDX 1.5: the current TEE TCB SVN (differs from `tee_tcb_svn` after a TD-preserving
    /// module update).
    pub tee_tcb_svn_2: Option<[u8; 16]>,
    /// TDX 1.5: the measurement of the service TD bound to this TD.
    pub mr_service_td: Option<[u8; 48]>,
}

impl TdQuoteBody {
    fn read<const L: usize>(b: &Buf<'_, L>) -> Self {
        use body_offset::*;
        Self {
            tee_tcb_svn: b.get::<TEE_TCB_SVN, 16>(),
            mr_seam: b.get::<MRSEAM, 48>(),
            mr_signer_seam: b.get::<MRSIGNERSEAM, 48>(),
            seam_attributes: b.get::<SEAMATTRIBUTES, 8>(),
            td_attributes: b.get::<TDATTRIBUTES, 8>(),
            xfam: b.get::<XFAM, 8>(),
            mr_td: b.get::<MRTD, 48>(),
            mr_config_id: b.get::<MRCONFIGID, 48>(),
            mr_owner: b.get::<MROWNER, 48>(),
            mr_owner_config: b.get::<MROWNERCONFIG, 48>(),
            rtmr: [b.get::<RTMR0, 48>(), b.get::<RTMR1, 48>(), b.get::<RTMR2, 48>(), b.get::<RTMR3, 48>()],
            report_data: b.get::<REPORTDATA, 64>(),
            tee_tcb_svn_2: None,
            mr_service_td: None,
        }
    }

    fn write<const L: usize>(&self, w: &mut BufMut<'_, L>) {
        use body_offset::*;
        w.put::<TEE_TCB_SVN, 16>(self.tee_tcb_svn);
        w.put::<MRSEAM, 48>(self.mr_seam);
        w.put::<MRSIGNERSEAM, 48>(self.mr_signer_seam);
        w.put::<SEAMATTRIBUTES, 8>(self.seam_attributes);
        w.put::<TDATTRIBUTES, 8>(self.td_attributes);
        w.put::<XFAM, 8>(self.xfam);
        w.put::<MRTD, 48>(self.mr_td);
        w.put::<MRCONFIGID, 48>(self.mr_config_id);
        w.put::<MROWNER, 48>(self.mr_owner);
        w.put::<MROWNERCONFIG, 48>(self.mr_owner_config);
        let [r0, r1, r2, r3] = self.rtmr;
        w.put::<RTMR0, 48>(r0);
        w.put::<RTMR1, 48>(r1);
        w.put::<RTMR2, 48>(r2);
        w.put::<RTMR3, 48>(r3);
        w.put::<REPORTDATA, 64>(self.report_data);
    }

    /// Reads a TDX 1.0 body.
    pub fn parse_td10(bytes: &[u8; TD10_BODY_SIZE]) -> Self {
        Self::read(&Buf(bytes))
    }

    /// Reads a TDX 1.5 body.
    pub fn parse_td15(bytes: &[u8; TD15_BODY_SIZE]) -> Self {
        let b = Buf(bytes);
        Self {
            tee_tcb_svn_2: Some(b.get::<{ body_offset::TEE_TCB_SVN_2 }, 16>()),
            mr_service_td: Some(b.get::<{ body_offset::MRSERVICETD }, 48>()),
            ..Self::read(&b)
        }
    }

    /// True for a TDX 1.5 body.
    pub const fn is_td15(&self) -> bool {
        self.tee_tcb_svn_2.is_some() || self.mr_service_td.is_some()
    }

    /// Size of the encoding.
    pub const fn encoded_len(&self) -> usize {
        if self.is_td15() { TD15_BODY_SIZE } else { TD10_BODY_SIZE }
    }

    /// Encodes the body as TDX 1.0 (when neither 1.5 field is set).
    pub fn to_td10_bytes(&self) -> [u8; TD10_BODY_SIZE] {
        let mut out = [0u8; TD10_BODY_SIZE];
        self.write(&mut BufMut(&mut out));
        out
    }

    /// Encodes the body as TDX 1.5 (absent 1.5 fields as zeros).
    pub fn to_td15_bytes(&self) -> [u8; TD15_BODY_SIZE] {
        let mut out = [0u8; TD15_BODY_SIZE];
        let mut w = BufMut(&mut out);
        self.write(&mut w);
        w.put::<{ body_offset::TEE_TCB_SVN_2 }, 16>(self.tee_tcb_svn_2.unwrap_or_default());
        w.put::<{ body_offset::MRSERVICETD }, 48>(self.mr_service_td.unwrap_or([0; 48]));
        out
    }

    /// TDATTRIBUTES as a little-endian u64.
    pub const fn td_attributes_u64(&self) -> u64 {
        u64::from_le_bytes(self.td_attributes)
    }

    /// TUD.DEBUG: the TD's memory is readable by the host.
    pub const fn debug(&self) -> bool {
        self.td_attributes_u64() & TD_ATTRIBUTE_DEBUG != 0
    }
}

/// Size of `TDREPORT_STRUCT`.
pub const TD_REPORT_SIZE: usize = 1024;

/// Offsets inside `TDREPORT_STRUCT` (TDX Module ABI: `REPORTMACSTRUCT`, `TEE_TCB_INFO`,
/// `TDINFO_STRUCT`).
pub mod report_offset {
    // REPORTMACSTRUCT
    pub const REPORT_TYPE: usize = 0;
    pub const MAC_RESERVED1: usize = 4;
    pub const CPUSVN: usize = 16;
    pub const TEE_TCB_INFO_HASH: usize = 32;
    pub const TEE_INFO_HASH: usize = 80;
    pub const REPORTDATA: usize = 128;
    pub const MAC_RESERVED2: usize = 192;
    pub const MAC: usize = 224;
    // TEE_TCB_INFO
    pub const TEE_TCB_INFO: usize = 256;
    pub const VALID: usize = 256;
    pub const TEE_TCB_SVN: usize = 264;
    pub const MRSEAM: usize = 280;
    pub const MRSIGNERSEAM: usize = 328;
    pub const ATTRIBUTES: usize = 376;
    pub const TEE_TCB_SVN_2: usize = 384;
    pub const TCB_RESERVED: usize = 400;
    /// Size of TEE_TCB_INFO; padding follows up to TDINFO.
    pub const TEE_TCB_INFO_SIZE: usize = 239;
    // TDINFO_STRUCT
    pub const TDINFO: usize = 512;
    pub const TD_ATTRIBUTES: usize = 512;
    pub const XFAM: usize = 520;
    pub const MRTD: usize = 528;
    pub const MRCONFIGID: usize = 576;
    pub const MROWNER: usize = 624;
    pub const MROWNERCONFIG: usize = 672;
    pub const RTMR0: usize = 720;
    pub const SERVTD_HASH: usize = 912;
    pub const TDINFO_RESERVED: usize = 960;
}

mod report_layout_checks {
    use super::report_offset::*;
    use super::*;
    const _: () = assert!(MAC_RESERVED1 == REPORT_TYPE + 4 && CPUSVN == MAC_RESERVED1 + 12);
    const _: () = assert!(TEE_TCB_INFO_HASH == CPUSVN + 16 && TEE_INFO_HASH == TEE_TCB_INFO_HASH + 48);
    const _: () = assert!(REPORTDATA == TEE_INFO_HASH + 48 && MAC_RESERVED2 == REPORTDATA + 64);
    const _: () = assert!(MAC == MAC_RESERVED2 + 32 && MAC + 32 == TEE_TCB_INFO);
    const _: () = assert!(TEE_TCB_SVN == VALID + 8 && MRSEAM == TEE_TCB_SVN + 16 && MRSIGNERSEAM == MRSEAM + 48);
    const _: () = assert!(ATTRIBUTES == MRSIGNERSEAM + 48 && TEE_TCB_SVN_2 == ATTRIBUTES + 8);
    const _: () = assert!(TCB_RESERVED == TEE_TCB_SVN_2 + 16 && TEE_TCB_INFO + TEE_TCB_INFO_SIZE == TCB_RESERVED + 95);
    const _: () = assert!(TEE_TCB_INFO + TEE_TCB_INFO_SIZE <= TDINFO && TDINFO == 512);
    const _: () = assert!(XFAM == TD_ATTRIBUTES + 8 && MRTD == XFAM + 8 && MRCONFIGID == MRTD + 48);
    const _: () = assert!(MROWNER == MRCONFIGID + 48 && MROWNERCONFIG == MROWNER + 48 && RTMR0 == MROWNERCONFIG + 48);
    const _: () = assert!(SERVTD_HASH == RTMR0 + 4 * 48 && TDINFO_RESERVED == SERVTD_HASH + 48);
    const _: () = assert!(TDINFO_RESERVED + 64 == TD_REPORT_SIZE);
}

/// `TDREPORT_STRUCT`, as `TDG.MR.REPORT` returns it. The MAC (over REPORTMACSTRUCT, keyed by
/// the CPU) can only be checked by `TDG.MR.VERIFYREPORT` on the same platform; a verifier
/// elsewhere relies on the quote instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TdReport {
    /// REPORTTYPE: TYPE (0x81 for TDX), SUBTYPE, VERSION (0: TDX 1.0, 1: TDX 1.5), reserved.
    pub report_type: [u8; 4],
    pub cpu_svn: [u8; 16],
    pub tee_tcb_info_hash: [u8; 48],
    pub tee_info_hash: [u8; 48],
    pub report_data: [u8; 64],
    pub mac: [u8; 32],
    pub tee_tcb_info_valid: [u8; 8],
    pub tee_tcb_svn: [u8; 16],
    pub mr_seam: [u8; 48],
    pub mr_signer_seam: [u8; 48],
    pub seam_attributes: [u8; 8],
    pub tee_tcb_svn_2: [u8; 16],
    pub td_attributes: [u8; 8],
    pub xfam: [u8; 8],
    pub mr_td: [u8; 48],
    pub mr_config_id: [u8; 48],
    pub mr_owner: [u8; 48],
    pub mr_owner_config: [u8; 48],
    pub rtmr: [[u8; 48]; 4],
    pub servtd_hash: [u8; 48],
}

/// REPORTTYPE.TYPE of a TD report.
pub const REPORT_TYPE_TDX: u8 = 0x81;

impl TdReport {
    /// Reads a TDREPORT. Reserved bytes are ignored ([`to_bytes`](Self::to_bytes) writes
    /// zeros); every 1024-byte input is one.
    pub fn parse(bytes: &[u8; TD_REPORT_SIZE]) -> Self {
        use report_offset::*;
        let b = Buf(bytes);
        Self {
            report_type: b.get::<REPORT_TYPE, 4>(),
            cpu_svn: b.get::<CPUSVN, 16>(),
            tee_tcb_info_hash: b.get::<TEE_TCB_INFO_HASH, 48>(),
            tee_info_hash: b.get::<TEE_INFO_HASH, 48>(),
            report_data: b.get::<REPORTDATA, 64>(),
            mac: b.get::<MAC, 32>(),
            tee_tcb_info_valid: b.get::<VALID, 8>(),
            tee_tcb_svn: b.get::<TEE_TCB_SVN, 16>(),
            mr_seam: b.get::<MRSEAM, 48>(),
            mr_signer_seam: b.get::<MRSIGNERSEAM, 48>(),
            seam_attributes: b.get::<ATTRIBUTES, 8>(),
            tee_tcb_svn_2: b.get::<TEE_TCB_SVN_2, 16>(),
            td_attributes: b.get::<TD_ATTRIBUTES, 8>(),
            xfam: b.get::<XFAM, 8>(),
            mr_td: b.get::<MRTD, 48>(),
            mr_config_id: b.get::<MRCONFIGID, 48>(),
            mr_owner: b.get::<MROWNER, 48>(),
            mr_owner_config: b.get::<MROWNERCONFIG, 48>(),
            rtmr: [
                b.get::<RTMR0, 48>(),
                b.get::<{ RTMR0 + 48 }, 48>(),
                b.get::<{ RTMR0 + 96 }, 48>(),
                b.get::<{ RTMR0 + 144 }, 48>(),
            ],
            servtd_hash: b.get::<SERVTD_HASH, 48>(),
        }
    }

    /// Encodes the report, reserved bytes zero. Inverse of [`parse`](Self::parse).
    pub fn to_bytes(&self) -> [u8; TD_REPORT_SIZE] {
        use report_offset::*;
        let mut out = [0u8; TD_REPORT_SIZE];
        let mut w = BufMut(&mut out);
        w.put::<REPORT_TYPE, 4>(self.report_type);
        w.put::<CPUSVN, 16>(self.cpu_svn);
        w.put::<TEE_TCB_INFO_HASH, 48>(self.tee_tcb_info_hash);
        w.put::<TEE_INFO_HASH, 48>(self.tee_info_hash);
        w.put::<REPORTDATA, 64>(self.report_data);
        w.put::<MAC, 32>(self.mac);
        w.put::<VALID, 8>(self.tee_tcb_info_valid);
        w.put::<TEE_TCB_SVN, 16>(self.tee_tcb_svn);
        w.put::<MRSEAM, 48>(self.mr_seam);
        w.put::<MRSIGNERSEAM, 48>(self.mr_signer_seam);
        w.put::<ATTRIBUTES, 8>(self.seam_attributes);
        w.put::<TEE_TCB_SVN_2, 16>(self.tee_tcb_svn_2);
        w.put::<TD_ATTRIBUTES, 8>(self.td_attributes);
        w.put::<XFAM, 8>(self.xfam);
        w.put::<MRTD, 48>(self.mr_td);
        w.put::<MRCONFIGID, 48>(self.mr_config_id);
        w.put::<MROWNER, 48>(self.mr_owner);
        w.put::<MROWNERCONFIG, 48>(self.mr_owner_config);
        let [r0, r1, r2, r3] = self.rtmr;
        w.put::<RTMR0, 48>(r0);
        w.put::<{ RTMR0 + 48 }, 48>(r1);
        w.put::<{ RTMR0 + 96 }, 48>(r2);
        w.put::<{ RTMR0 + 144 }, 48>(r3);
        w.put::<SERVTD_HASH, 48>(self.servtd_hash);
        out
    }

    /// The TD quote body the Quoting Enclave derives from this report: TDX 1.0 for report
    /// version 0, TDX 1.5 (with TEE_TCB_SVN_2 and the service-TD hash) otherwise.
    pub fn quote_body(&self) -> TdQuoteBody {
        let td15 = self.report_type[2] >= 1;
        TdQuoteBody {
            tee_tcb_svn: self.tee_tcb_svn,
            mr_seam: self.mr_seam,
            mr_signer_seam: self.mr_signer_seam,
            seam_attributes: self.seam_attributes,
            td_attributes: self.td_attributes,
            xfam: self.xfam,
            mr_td: self.mr_td,
            mr_config_id: self.mr_config_id,
            mr_owner: self.mr_owner,
            mr_owner_config: self.mr_owner_config,
            rtmr: self.rtmr,
            report_data: self.report_data,
            tee_tcb_svn_2: td15.then_some(self.tee_tcb_svn_2),
            mr_service_td: td15.then_some(self.servtd_hash),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern<const N: usize>(seed: u8) -> [u8; N] {
        let mut out = [0u8; N];
        for (i, b) in out.iter_mut().enumerate() {
            *b = seed.wrapping_add((i as u8).wrapping_mul(31));
        }
        out
    }

    #[test]
    fn td_bodies_round_trip_at_their_offsets() {
        let bytes: [u8; TD15_BODY_SIZE] = pattern(5);
        let td15 = TdQuoteBody::parse_td15(&bytes);
        assert_eq!(td15.to_td15_bytes(), bytes);
        assert!(td15.is_td15());
        assert_eq!(td15.encoded_len(), TD15_BODY_SIZE);
        let td10_bytes: [u8; TD10_BODY_SIZE] = bytes[..TD10_BODY_SIZE].try_into().unwrap();
        let td10 = TdQuoteBody::parse_td10(&td10_bytes);
        assert_eq!(td10.to_td10_bytes(), td10_bytes);
        assert!(!td10.is_td15());
        assert_eq!(TdQuoteBody { tee_tcb_svn_2: None, mr_service_td: None, ..td15 }, td10);
        assert_eq!(td10.mr_td[..], bytes[136..184]);
        assert_eq!(td10.rtmr[0][..], bytes[328..376]);
        assert_eq!(td10.rtmr[3][..], bytes[472..520]);
        assert_eq!(td10.report_data[..], bytes[520..584]);
        assert_eq!(td15.tee_tcb_svn_2.unwrap()[..], bytes[584..600]);
        assert_eq!(td15.mr_service_td.unwrap()[..], bytes[600..648]);
        assert_eq!(td10.debug(), bytes[120] & 1 == 1);
    }

    #[test]
    fn td_report_offsets_and_quote_body() {
        let mut bytes: [u8; TD_REPORT_SIZE] = pattern(9);
        // Zero the reserved ranges: they are not kept.
        for r in [4..16, 192..224, 400..512, 960..1024] {
            bytes[r].fill(0);
        }
        bytes[0] = REPORT_TYPE_TDX;
        bytes[2] = 1; // TDX 1.5
        let r = TdReport::parse(&bytes);
        assert_eq!(r.to_bytes(), bytes);
        assert_eq!(r.report_data[..], bytes[128..192]); // FACTS: report_data at 128..192
        assert_eq!(r.mr_td[..], bytes[528..576]); // MRTD at 528
        assert_eq!(r.rtmr[0][..], bytes[720..768]); // RTMR0 at 720
        let body = r.quote_body();
        assert!(body.is_td15());
        assert_eq!(body.mr_td, r.mr_td);
        assert_eq!(body.tee_tcb_svn, r.tee_tcb_svn);
        assert_eq!(body.mr_service_td, Some(r.servtd_hash));
        bytes[2] = 0;
        assert!(!TdReport::parse(&bytes).quote_body().is_td15());
    }
}
