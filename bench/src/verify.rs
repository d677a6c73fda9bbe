//! The Verifier's cost per TDX quote with and without what it keeps (issue 14 item 9): the
//! simulated TDX platform's quote and collateral (signed as Intel's are, P-256 throughout, by
//! the same verifier code) appraised by a fresh `TdxVerifier` each time — the collateral's
//! signatures and chains, the PCK chain and its CRLs, the QE report and the quote all verified —
//! and, interleaved, by one verifier that appraised before and kept the verified collateral and
//! PCK path, so only the QE report's and the quote's own signatures remain.

use std::time::{Instant, SystemTime};

use anyhow::{Context, Result, anyhow};
use twi_sim::tdx::SimTdx;
use twi_verifier::Verifier;
use twi_verifier::tdx::TdxVerifier;

use crate::stats::{Samples, figure, section};

pub fn tdx_appraisal(runs: usize) -> Result<()> {
    section("TDX quote appraisal by the Verifier: collateral and PCK path kept vs everything verified");
    let dir = tempfile::tempdir()?;
    let mut tdx = SimTdx::load_or_create(dir.path()).context("the simulated TDX platform")?;
    tdx.launch([0x5A; 48]);
    let report = tdx.report(&[0u8; 64]).map_err(|status| anyhow!("TDG.MR.REPORT failed: {status:#x}"))?;
    let report = report.try_into().map_err(|_| anyhow!("the TDREPORT has an unexpected size"))?;
    let quote = tdx.quote(&report).context("the simulated quoting enclave")?;
    let (root, collateral) = (tdx.root().clone(), tdx.collateral().context("the simulated collateral")?);
    let verifier = || TdxVerifier::simulated(&root, collateral.clone()).map_err(|e| anyhow!("{e}"));
    let kept = verifier()?;
    let now = SystemTime::now();
    kept.verify(&quote, &[], now).map_err(|e| anyhow!("the simulated quote: {e}"))?;
    let (mut warm, mut cold) = (Samples::default(), Samples::default());
    for _ in 0..runs * 10 {
        let fresh = verifier()?;
        let start = Instant::now();
        fresh.verify(&quote, &[], now).map_err(|e| anyhow!("{e}"))?;
        cold.push(start.elapsed().as_secs_f64() * 1e3);
        let start = Instant::now();
        kept.verify(&quote, &[], now).map_err(|e| anyhow!("{e}"))?;
        warm.push(start.elapsed().as_secs_f64() * 1e3);
    }
    figure("appraisal, collateral and PCK path kept", "ms", &warm, Some(("everything verified", &cold)));
    say!(
        "  (kept collateral reused {} times, kept PCK path {} times)",
        kept.cached_collateral_hits(),
        kept.cached_chain_hits()
    );
    Ok(())
}
