//! The simulated TEE: software models of the firmware the runtime talks to on real hardware
//! (the AMD Secure Processor of an SEV-SNP guest; the Intel TDX module and its TD quoting
//! enclave). They answer the exact request bytes the runtime would hand the hardware (SEV-SNP
//! Firmware ABI guest messages, TDX Module ABI TDREPORT, GHCI GetQuote buffers), carried as
//! `twi-proto` doorbell messages over the channel, so every path of the runtime and the issuer
//! runs as on hardware; only the doorbell instruction differs. Their roots are a separate trust
//! anchor that an issuer accepts only when told to.
//!
//! The crate depends on the byte layouts (`twi-attester`), the channel messages (`twi-proto`)
//! and the verifier's collateral types, never on the issuer's roles; its keys live in a state
//! directory it manages itself ([`state`]).

pub mod certs;
pub mod error;
pub mod host;
pub mod snp;
pub mod state;
pub mod svsm;
pub mod tdx;
mod verifier;

pub use error::SimError;
