//! The verifier's types the simulators produce (TDX collateral, certificate chains) and, in
//! tests, the verifier that must accept what they make. They live in `twi-issuer` until the
//! verifier crate (`twi-verifier`) is on main; this is the one place to point at it then.

#[cfg(test)]
pub(crate) use twi_issuer::snp;
pub(crate) use twi_issuer::{chain, tdx};
