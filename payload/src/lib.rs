//! What a TWI workload links to talk to the world from inside the TEE.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod http;
pub mod tls;
