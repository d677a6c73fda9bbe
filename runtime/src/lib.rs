//! The TWI runtime: the library a workload links to run as the firmware of a confidential VM. It
//! generates the workload's Credential Key in private memory, binds it into the hardware report
//! it requests itself, and obtains a credential for it over the CBOR channel.
//!
//! | module | what | where it runs |
//! | --- | --- | --- |
//! | [`channel`] | framed, validated messages to the host over a byte link | host tests and firmware |
//! | [`session`] | the protocol: Hello, Challenge, Evidence, Credential, Done | host tests and firmware |
//! | [`tee`] | one [`tee::Tee`] trait; SEV-SNP and TDX backends over hardware or simulated doorbells | host tests and firmware |
//! | [`vault`], [`credential`], [`sealing`] | the Credential Key, the credential check, sealing | host tests and firmware |
//! | [`tsc`], [`memory_map`] | the machine decisions the platform takes (the TSC rate's source, RAM from QEMU's e820 table), pure | host tests and firmware |
//! | `platform` | boot, the platform HAL, exceptions, allocators, the machine's own I/O | firmware only |
//! | `transport` | the channel's links on the machine: the shared-memory ring, COM2 | firmware only |
//! | `firmware` | the wiring from the boot stub to the workload ([`entry!`]) | firmware only |
//!
//! Machine-independent parts build and test on the host; `platform` and `firmware` only on
//! the bare-metal target, where the platform is a leaf the rest reaches through its HAL.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod channel;
pub mod credential;
pub mod memory_map;
pub mod pairwise;
pub use twi_linker as layout;
pub mod sealing;
pub mod session;
pub mod tee;
pub mod tsc;
pub mod vault;

#[cfg(target_os = "none")]
pub mod firmware;
#[cfg(target_os = "none")]
pub mod platform;
#[cfg(target_os = "none")]
pub mod transport;
