//! What a TWI workload links: the handle it gets from the runtime, and what it needs to use the
//! identity it acquires from inside the TEE.
//!
//! A workload is a `#![no_std]` crate (with `alloc`) with one entry point,
//! `pub fn main(rt: &mut dyn Runtime) -> ExitCode`; `twi build --payload DIR` links it into the
//! measured image and `twi new DIR` scaffolds one. Through [`Runtime`] it acquires credentials
//! per target (TACRA's Credential Acquisition Interface), signs with keys that never leave the
//! vault, seals data to the launch, reads its measured settings and opens relayed connections;
//! on top of those, [`tls`] is a TLS 1.3 client whose private-key operations happen in the
//! vault, [`http`] a small HTTP/1.1 client, [`wpt`] makes WIMSE Workload Proof Tokens, and
//! [`https`] puts them together: one call for a request to a target with the workload's identity.
//!
//! A workload's `src/lib.rs` (the crate is `#![no_std]`, with `extern crate alloc;`):
//!
//! ```no_run
//! # mod workload {
//! use twi_payload::prelude::*;
//!
//! pub fn main(rt: &mut dyn Runtime) -> ExitCode {
//!     match rt.acquire("https://payroll-db.example:8443", CredentialType::X509, None) {
//!         Ok(credential) => {
//!             rt.log(&format!("identity: {}", credential.workload_id));
//!             ExitCode::Success
//!         }
//!         Err(e) => {
//!             rt.log(&format!("no credential: {e}"));
//!             ExitCode::Failure
//!         }
//!     }
//! }
//! # }
//! # fn main() {}
//! ```
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod credential;
pub mod http;
pub mod https;
pub mod runtime;
pub mod target;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;
#[cfg(feature = "wpt")]
pub mod wpt;

pub use credential::{Credential, CredentialType, KeyHandle, Mode};
pub use runtime::{AcquireError, ConnectError, ExitCode, HostTime, Main, Runtime, SealError};

/// What most workloads use, in one import.
pub mod prelude {
    pub use crate::credential::{Credential, CredentialType, KeyHandle, Mode};
    pub use crate::runtime::{AcquireError, ConnectError, ExitCode, HostTime, Runtime, SealError};
    pub use crate::tls::KeyError;
    pub use alloc::format;
}
