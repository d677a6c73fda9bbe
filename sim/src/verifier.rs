//! The verifier's types the simulators produce (TDX collateral, certificate chains) and, in
//! tests, the verifier that must accept what they make: `twi-verifier`, the same code that
//! appraises real evidence.

#[cfg(test)]
pub(crate) use twi_verifier::snp;
pub(crate) use twi_verifier::{chain, tdx};
