//! The TDX verifier on hostile quotes, with the real t1 collateral (verified once): nothing may
//! panic, and nothing but the real quotes may verify (with the collateral: t1 only; signatures
//! and chain alone: t1, t3 or t8).
#![no_main]

mod samples;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use twi_verifier::tdx::{Collateral, TdxConfig, TdxTrust, VerifiedCollateral, appraise};

const NOW: &str = "2025-07-01T00:00:00Z";

const QUOTES: [&str; 3] = [
    "tdx/t1_dcapqvl_v4/tdx_quote",
    "tdx/t3_gotdxguest_v4/tdx_prod_quote_SPR_E4.dat",
    "tdx/t8_gcp_v4_ccel/cos-113-tdx-quote.dat",
];

fn fixture() -> &'static (VerifiedCollateral, Vec<Vec<u8>>) {
    static F: OnceLock<(VerifiedCollateral, Vec<Vec<u8>>)> = OnceLock::new();
    F.get_or_init(|| {
        let json = samples::read("tdx/t1_dcapqvl_v4/tdx_quote_collateral.json");
        let c = Collateral::from_dcap_qvl_json(&json, std::path::Path::new("t1")).unwrap();
        (c.verify(&TdxTrust::intel(), samples::at(NOW)).unwrap(), QUOTES.iter().map(|q| samples::read(q)).collect())
    })
}

fn is_genuine(quote: &[u8], genuine: &[Vec<u8>]) -> bool {
    genuine.iter().any(|g| g.get(..quote.len()) == Some(quote))
}

fuzz_target!(|data: &[u8]| {
    let (collateral, genuine) = fixture();
    let config = TdxConfig::default();
    if let Ok(a) = appraise(data, Some(collateral), &config, samples::at(NOW)) {
        assert!(is_genuine(&data[..a.quote_len], &genuine[..1]), "a forged quote verified");
    }
    // Signatures and chain only.
    let skip = TdxConfig { policy: twi_verifier::tdx::TdxPolicy { skip_tcb: true, ..Default::default() }, ..config };
    if let Ok(a) = appraise(data, None, &skip, samples::at(NOW)) {
        assert!(is_genuine(&data[..a.quote_len], genuine), "a forged quote verified");
    }
});
