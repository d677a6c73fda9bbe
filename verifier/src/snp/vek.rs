//! The AMD extensions of a VCEK or VLEK certificate (the "versioned endorsement key", VEK):
//! which product and TCB the key was derived for, and which chip (VCEK) or cloud provider
//! (VLEK) holds it.
//!
//! | OID (1.3.6.1.4.1.3704.1.) | name        | encoding (extnValue)                    |
//! | ------------------------- | ----------- | --------------------------------------- |
//! | 1                         | structVersion | INTEGER                               |
//! | 2                         | productName | IA5String, e.g. `Milan-B0`              |
//! | 3.1 / 3.2 / 3.3 / 3.8     | blSPL, teeSPL, snpSPL, ucodeSPL | INTEGER 0..255      |
//! | 3.9                       | fmcSPL (Turin) | INTEGER 0..255                       |
//! | 4                         | hwID (VCEK) | the chip id, raw (KDS adds no OCTET STRING tag): 64 bytes, 8 on Turin |
//! | 5                         | cspId (VLEK) | the provider's name, a string           |
//!
//! (AMD "VCEK Certificate and KDS Interface Specification", table "VCEK Certificate
//! Extensions", and AMD's VLEK certificate specification.)

use der::Decode;
use der::asn1::{Ia5StringRef, OctetString, PrintableStringRef, Utf8StringRef};
use twi_attester::snp::report::{TcbLayout, TcbVersion};

use crate::chain::Cert;
pub use crate::lag::ComponentLag;
use crate::oids::{
    AMD_BL_SPL, AMD_CSP_ID, AMD_FMC_SPL, AMD_HW_ID, AMD_PRODUCT_NAME, AMD_SNP_SPL, AMD_TEE_SPL, AMD_UCODE_SPL,
};

/// Which kind of endorsement key a certificate holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VekKind {
    /// Versioned Chip Endorsement Key: one chip, derived from its fused secret and the TCB.
    Vcek,
    /// Versioned Loaded Endorsement Key: issued to a cloud provider, loaded into its chips.
    Vlek,
}

impl VekKind {
    pub const fn name(self) -> &'static str {
        match self {
            VekKind::Vcek => "VCEK",
            VekKind::Vlek => "VLEK",
        }
    }
}

/// A malformed AMD extension.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {extension} extension of {subject} is malformed ({why})")]
pub struct VekError {
    pub subject: String,
    pub extension: &'static str,
    pub why: &'static str,
}

/// The AMD extensions of a VCEK or VLEK certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VekExtensions {
    pub product_name: Option<String>,
    pub bl_spl: Option<u8>,
    pub tee_spl: Option<u8>,
    pub snp_spl: Option<u8>,
    pub ucode_spl: Option<u8>,
    pub fmc_spl: Option<u8>,
    pub hw_id: Option<Vec<u8>>,
    pub csp_id: Option<String>,
}

impl VekExtensions {
    /// Reads the AMD extensions of `cert`. Absent extensions are `None`; present but
    /// malformed ones are an error.
    pub fn parse(cert: &Cert) -> Result<Self, VekError> {
        let err = |extension, why| VekError { subject: cert.common_name(), extension, why };
        let spl = |oid, name| -> Result<Option<u8>, VekError> {
            cert.extension(oid)
                .map(|v| {
                    let n = u64::from_der(v).map_err(|_| err(name, "not a DER INTEGER"))?;
                    u8::try_from(n).map_err(|_| err(name, "above 255"))
                })
                .transpose()
        };
        let string = |oid, name| -> Result<Option<String>, VekError> {
            cert.extension(oid).map(|v| der_string(v).ok_or(err(name, "not a string"))).transpose()
        };
        let hw_id = cert
            .extension(&AMD_HW_ID)
            .map(|v| raw_or_octet_string(v).ok_or(err("hwID", "neither 64 nor 8 bytes")))
            .transpose()?;
        Ok(Self {
            product_name: string(&AMD_PRODUCT_NAME, "productName")?,
            bl_spl: spl(&AMD_BL_SPL, "blSPL")?,
            tee_spl: spl(&AMD_TEE_SPL, "teeSPL")?,
            snp_spl: spl(&AMD_SNP_SPL, "snpSPL")?,
            ucode_spl: spl(&AMD_UCODE_SPL, "ucodeSPL")?,
            fmc_spl: spl(&AMD_FMC_SPL, "fmcSPL")?,
            hw_id,
            csp_id: string(&AMD_CSP_ID, "cspId")?,
        })
    }

    /// The kind the certificate itself declares: a hwID makes a VCEK, a cspId a VLEK, and
    /// otherwise the common name (`SEV-VCEK`, `SEV-VLEK`) decides.
    pub fn kind(&self, cert: &Cert) -> Option<VekKind> {
        match (&self.hw_id, &self.csp_id) {
            (Some(_), None) => Some(VekKind::Vcek),
            (None, Some(_)) => Some(VekKind::Vlek),
            (Some(_), Some(_)) => None,
            (None, None) => {
                let cn = cert.common_name().to_ascii_uppercase();
                if cn.contains("VLEK") {
                    Some(VekKind::Vlek)
                } else if cn.contains("VCEK") {
                    Some(VekKind::Vcek)
                } else {
                    None
                }
            }
        }
    }

    /// The TCB the key was derived for, as a `TCB_VERSION` in `layout`, or the name of the
    /// first extension missing for it.
    pub fn tcb(&self, layout: TcbLayout) -> Result<TcbVersion, &'static str> {
        let bl = self.bl_spl.ok_or("blSPL")?;
        let tee = self.tee_spl.ok_or("teeSPL")?;
        let snp = self.snp_spl.ok_or("snpSPL")?;
        let ucode = self.ucode_spl.ok_or("ucodeSPL")?;
        let bytes = match layout {
            TcbLayout::MilanGenoa => [bl, tee, 0, 0, 0, 0, snp, ucode],
            TcbLayout::Turin => [self.fmc_spl.ok_or("fmcSPL")?, bl, tee, snp, 0, 0, 0, ucode],
        };
        Ok(TcbVersion(u64::from_le_bytes(bytes)))
    }
}

/// A DER string of any of the types AMD uses.
fn der_string(v: &[u8]) -> Option<String> {
    Ia5StringRef::from_der(v)
        .map(|s| s.to_string())
        .or_else(|_| Utf8StringRef::from_der(v).map(|s| s.to_string()))
        .or_else(|_| PrintableStringRef::from_der(v).map(|s| s.to_string()))
        .ok()
}

/// The hwID: the raw bytes KDS writes (64, or 8 on Turin), or the same wrapped in an
/// OCTET STRING.
fn raw_or_octet_string(v: &[u8]) -> Option<Vec<u8>> {
    match v.len() {
        64 | 8 => Some(v.to_vec()),
        _ => OctetString::from_der(v).ok().map(|o| o.as_bytes().to_vec()).filter(|b| matches!(b.len(), 64 | 8)),
    }
}

/// The components of a TCB, for messages: `bl=3 tee=0 snp=8 ucode=115` (and `fmc=` on Turin).
pub fn describe_tcb(tcb: TcbVersion, layout: TcbLayout) -> String {
    let p = tcb.parts(layout);
    let fmc = p.fmc.map(|f| format!("fmc={f} ")).unwrap_or_default();
    format!(
        "{fmc}bl={} tee={} snp={} ucode={} ({})",
        p.bootloader,
        p.tee,
        p.snp,
        p.microcode,
        hex::encode(tcb.to_le_bytes())
    )
}

/// The components of `reported` below `newest` (both read in `layout`): bootloader, TEE, SNP
/// firmware, microcode, and on Turin FMC.
pub fn tcb_lag(reported: TcbVersion, newest: TcbVersion, layout: TcbLayout) -> Vec<ComponentLag> {
    let (r, n) = (reported.parts(layout), newest.parts(layout));
    let fields = |p: &twi_attester::snp::report::TcbParts| {
        [p.fmc.unwrap_or(0), p.bootloader, p.tee, p.snp, p.microcode].map(u16::from)
    };
    let names = ["fmc", "bootloader", "tee", "snp", "microcode"].map(String::from);
    crate::lag::lags(names, &fields(&r), &fields(&n))
}
