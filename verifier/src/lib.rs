//! TWI's verifiers: appraisal of confidential-VM evidence against vendor roots and
//! collateral, one verifier per platform behind one interface ([`Verifier`]).
//!
//! * [`snp`]: AMD SEV-SNP attestation reports — the VCEK or VLEK, its chain to AMD's ARK
//!   (RSA-PSS), its TCB and chip claims, the report's ECDSA P-384 signature, the guest policy.
//! * [`tdx`]: Intel TDX quotes v4/v5 — the attestation key's signature, the Quoting Enclave's
//!   report, the PCK chain to the Intel SGX Root CA with CRLs, Intel's TCB info and QE
//!   identity, the TD's attributes, and its event log against the RTMRs.
//!
//! The simulated platforms are these same verifiers configured with the simulated TEE's root
//! ([`snp::SnpVerifier::simulated`], [`tdx::TdxVerifier::simulated`]); [`Verified::simulated`]
//! says so. Offline: certificates and collateral are inputs (the host loader fetches them
//! only when asked). The byte layouts are `twi-attester`'s; this crate depends on nothing of
//! the issuer, which uses it as its Verifier role (RFC 9334), as do `twi verify` and the
//! simulators' self-checks.

pub mod bundle;
pub mod chain;
pub mod lag;
pub mod oids;
pub mod snp;
pub mod tdx;
pub mod time;
mod verdict;

pub use verdict::{Detail, Rejection, Tcb, Tee, Verified, Verifier};
