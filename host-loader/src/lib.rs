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
pub mod sim;
