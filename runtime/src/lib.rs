//! The TWI runtime: bare-metal firmware for a confidential VM that generates the workload's
//! Credential Key in private memory, binds it into the hardware report, and obtains a
//! credential for it over the CBOR channel.
//!
//! Machine-independent parts (the vault, the session protocol, the credential check) build
//! and test on the host; `platform` (boot, ports, exceptions, allocators) only on the
//! bare-metal target.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod credential;
pub use twi_linker as layout;
pub mod sealing;
pub mod session;
pub mod snp;
pub mod tdx;
pub mod vault;

#[cfg(target_os = "none")]
pub mod platform;

/// The deterministic RNG the vault's unit tests share with the integration tests.
#[cfg(test)]
#[path = "../tests/support/test_rng.rs"]
mod test_rng;
