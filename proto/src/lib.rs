//! The channel between the TWI guest runtime and the host loader.
//!
//! A no_std firmware talks to the host over a serial line. Every exchange is
//! one CBOR [`Message`] per frame; [`frame`] delimits and checksums the
//! frames, [`msg`] defines the messages and their limits.
//!
//! The host is treated as hostile: decoding never panics, never indexes out
//! of bounds and never allocates more than a frame's worth of memory,
//! whatever bytes arrive.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod aead;
pub mod asn1;
pub mod csr;
pub mod frame;
pub mod hash;
pub mod json;
pub mod kdf;
pub mod manifest;
pub mod msg;
pub mod point;
pub mod ring;
pub mod wit;
pub mod x509;

pub use frame::{FrameDecoder, FrameError, MAX_ENCODED_FRAME, MAX_PAYLOAD, encode_frame};
pub use msg::*;

#[cfg(test)]
mod guest_codec_tests;
#[cfg(test)]
mod tests;
