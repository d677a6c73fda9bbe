//! The host side of TWI: building images, launching them under QEMU, bridging the channel
//! to the issuer, and the command line (`twi`), whose entry is [`cli::main`].
//!
//! - [`bridge`]: the channel protocol's host half, a pure state machine (no QEMU, no files);
//! - [`vm`]: QEMU as a child process, its console and its channel socket, under a deadline;
//! - [`run`]: one `twi run` launch, the two put together; [`artifacts`]: what it writes;
//! - [`image`], [`igvm`], [`measure`]: images and the launch measurements hardware reports;
//!   [`corim`]: those measurements as a signed CoRIM, beside the images and inside the IGVM file;
//! - [`remote`], [`fetch`]: the issuer over HTTP, vendor collateral on request;
//! - [`policy_file`]: the appraisal policy's file format as the host writes it.

pub mod accel;
pub mod answers;
pub mod artifacts;
pub mod bridge;
pub mod cli;
pub mod conduit;
pub mod corim;
pub mod fetch;
pub mod hardware;
pub mod igvm;
pub mod image;
pub mod measure;
pub mod payload;
pub mod policy_file;
pub mod qemu;
pub mod remote;
pub mod run;
pub mod sbom;
pub mod vm;

/// The simulated TEE firmware, now its own crate (`twi-sim`); re-exported under its old path
/// for the crates that still name it so.
pub use twi_sim as sim;

// `verify.rs` (the `twi verify` subcommand, compiled as part of [`cli`]) names this crate by
// its package name, as it did when it was a module of the binary.
extern crate self as twi_host_loader;
