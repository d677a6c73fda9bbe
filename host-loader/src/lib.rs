//! The host side of TWI: building images, launching them under QEMU, bridging the channel
//! to the issuer, and the simulated TEE firmware. The `twi` binary is its command line.

pub mod accel;
pub mod fetch;
pub mod igvm;
pub mod image;
pub mod measure;
pub mod qemu;
pub mod remote;
pub mod run;
/// The simulated TEE firmware, now its own crate (`twi-sim`); re-exported under its old path
/// for the crates that still name it so.
pub use twi_sim as sim;
