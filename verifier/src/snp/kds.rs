//! Where VCEKs come from: an offline cache laid out like AMD's Key Distribution Service (KDS),
//! and — only on explicit request (`twi verify snp-report --fetch`, in the host loader) — KDS
//! itself, whose URLs this module names.
//!
//! # Cache layout
//!
//! ```text
//! DIR/<Product>/cert_chain.pem                 ASK + ARK   (KDS /vcek/v1/<Product>/cert_chain)
//! DIR/<Product>/vlek_cert_chain.pem            ASVK + ARK  (KDS /vlek/v1/<Product>/cert_chain)
//! DIR/<Product>/crl.der                        ARK's CRL   (KDS /vcek/v1/<Product>/crl), optional
//! DIR/<Product>/<hwid>/<tcb>.der               the VCEK    (KDS /vcek/v1/<Product>/<hwid>?blSPL=…)
//! ```
//!
//! * `<Product>`: `Milan`, `Genoa` or `Turin`, as in KDS URLs;
//! * `<hwid>`: the report's `CHIP_ID` in lowercase hex — all 64 bytes (128 digits), or the
//!   first 8 (16 digits) on Turin, exactly the path component KDS uses;
//! * `<tcb>`: the report's `REPORTED_TCB` as 16 lowercase hex digits of its 8 bytes in report
//!   (little-endian) order, e.g. `0300000000000873` for bl=3 tee=0 snp=8 ucode=115 on Milan.
//!
//! A VCEK is specific to one chip and one TCB, so `<hwid>/<tcb>.der` names exactly the
//! certificate a report needs; fill the cache with what [`vcek_url`] names.

use std::path::{Path, PathBuf};

use twi_attester::snp::report::TcbVersion;

use crate::snp::product::Product;
use crate::snp::vek::VekKind;

/// KDS, for the URLs in messages.
pub const KDS_BASE: &str = "https://kdsintf.amd.com";

/// The `<hwid>` path component for `chip_id` on `product`.
pub fn hw_id_hex(product: Product, chip_id: &[u8; 64]) -> String {
    hex::encode(&chip_id[..product.hw_id_len()])
}

/// The `<tcb>` file stem for `tcb`.
pub fn tcb_hex(tcb: TcbVersion) -> String {
    hex::encode(tcb.to_le_bytes())
}

/// Where the cache keeps the VCEK for `chip_id` at `tcb`.
pub fn vcek_path(dir: &Path, product: Product, chip_id: &[u8; 64], tcb: TcbVersion) -> PathBuf {
    dir.join(product.name()).join(hw_id_hex(product, chip_id)).join(format!("{}.der", tcb_hex(tcb)))
}

/// Where the cache keeps the intermediate + ARK for `kind` keys of `product`.
pub fn chain_path(dir: &Path, product: Product, kind: VekKind) -> PathBuf {
    let file = match kind {
        VekKind::Vcek => "cert_chain.pem",
        VekKind::Vlek => "vlek_cert_chain.pem",
    };
    dir.join(product.name()).join(file)
}

/// Where the cache keeps the ARK's CRL for `product`.
pub fn crl_path(dir: &Path, product: Product) -> PathBuf {
    dir.join(product.name()).join("crl.der")
}

/// The KDS URL of the VCEK for `chip_id` at `tcb` (what to download into [`vcek_path`]).
pub fn vcek_url(product: Product, chip_id: &[u8; 64], tcb: TcbVersion) -> String {
    vcek_url_at(KDS_BASE, product, chip_id, tcb)
}

/// [`vcek_url`] under another base URL (a KDS mirror or caching proxy).
pub fn vcek_url_at(base: &str, product: Product, chip_id: &[u8; 64], tcb: TcbVersion) -> String {
    let p = tcb.parts(product.tcb_layout());
    let fmc = p.fmc.map(|f| format!("fmcSPL={f:02}&")).unwrap_or_default();
    format!(
        "{}/vcek/v1/{}/{}?{fmc}blSPL={:02}&teeSPL={:02}&snpSPL={:02}&ucodeSPL={:02}",
        base.trim_end_matches('/'),
        product.name(),
        hw_id_hex(product, chip_id),
        p.bootloader,
        p.tee,
        p.snp,
        p.microcode
    )
}

/// The KDS URL of the intermediate + ARK chain for `kind` keys of `product`.
pub fn chain_url(product: Product, kind: VekKind) -> String {
    chain_url_at(KDS_BASE, product, kind)
}

/// [`chain_url`] under another base URL.
pub fn chain_url_at(base: &str, product: Product, kind: VekKind) -> String {
    let path = match kind {
        VekKind::Vcek => "vcek",
        VekKind::Vlek => "vlek",
    };
    format!("{}/{path}/v1/{}/cert_chain", base.trim_end_matches('/'), product.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_paths() {
        let mut chip = [0u8; 64];
        chip[0] = 0xd4;
        chip[63] = 0xb6;
        let tcb = TcbVersion(u64::from_le_bytes([3, 0, 0, 0, 0, 0, 8, 115]));
        let url = vcek_url(Product::Milan, &chip, tcb);
        assert!(url.starts_with("https://kdsintf.amd.com/vcek/v1/Milan/d400"), "{url}");
        assert!(url.ends_with("00b6?blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=115"), "{url}");
        let path = vcek_path(Path::new("/c"), Product::Milan, &chip, tcb);
        assert!(path.ends_with(format!("Milan/{}/0300000000000873.der", hex::encode(chip))));

        let turin = TcbVersion(u64::from_le_bytes([1, 2, 3, 4, 0, 0, 0, 9]));
        let url = vcek_url(Product::Turin, &chip, turin);
        assert_eq!(
            url,
            "https://kdsintf.amd.com/vcek/v1/Turin/d400000000000000?fmcSPL=01&blSPL=02&teeSPL=03&snpSPL=04&ucodeSPL=09"
        );
        assert_eq!(chain_url(Product::Genoa, VekKind::Vlek), "https://kdsintf.amd.com/vlek/v1/Genoa/cert_chain");
        assert_eq!(
            vcek_url_at("http://127.0.0.1:8080/", Product::Turin, &chip, turin),
            url.replace(KDS_BASE, "http://127.0.0.1:8080")
        );
    }
}
