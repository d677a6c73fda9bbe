//! Relayed connections and the host's clock: what a workload reaches the world through.
//!
//! A workload opens a byte stream to a target its measured manifest names
//! ([`Connect`]); the host loader opens the TCP connection on its side and relays bytes.
//! The guest pulls ([`Receive`] → [`Received`]) and pushes ([`Send`]): it never waits for a
//! message it did not ask for, so the channel stays a strict request/response exchange. The host
//! is an untrusted conduit: it can drop, delay or corrupt bytes, never read or forge what TLS
//! protects. Its clock ([`Time`]) is untrusted too.

use alloc::string::String;
use alloc::vec::Vec;

use minicbor::{Decode, Encode};

/// Longest [`Connect::target`] (a URL or `HOST:PORT`), in bytes.
pub const MAX_TARGET: usize = 256;
/// Most bytes one [`Send`] or [`Received`] carries.
pub const MAX_RELAY_DATA: usize = 8 * 1024;

/// Guest → host: open a connection to `target` (the host connects to its `HOST:PORT`).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct Connect {
    /// The guest's name for this connection.
    #[n(0)]
    pub id: u16,
    /// `https://HOST:PORT/…` or `HOST:PORT`, at most [`MAX_TARGET`] bytes.
    #[n(1)]
    pub target: String,
}

/// Host → guest: the connection `id` is open.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct Connected {
    #[n(0)]
    pub id: u16,
}

/// Guest → host: bytes for connection `id` (no reply).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct Send {
    #[n(0)]
    pub id: u16,
    /// At most [`MAX_RELAY_DATA`] bytes.
    #[n(1)]
    #[cbor(with = "minicbor::bytes")]
    pub data: Vec<u8>,
}

/// Guest → host: up to `max` bytes of connection `id`, as soon as some arrive.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct Receive {
    #[n(0)]
    pub id: u16,
    /// At most [`MAX_RELAY_DATA`].
    #[n(1)]
    pub max: u32,
}

/// Host → guest: the answer to a [`Receive`]; empty `data` is the end of the stream.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct Received {
    #[n(0)]
    pub id: u16,
    /// At most the [`Receive::max`] asked for (and [`MAX_RELAY_DATA`]).
    #[n(1)]
    #[cbor(with = "minicbor::bytes")]
    pub data: Vec<u8>,
}

/// Guest → host: close connection `id` (no reply).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct Close {
    #[n(0)]
    pub id: u16,
}

/// Guest → host: what time does the host say it is?
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct TimeRequest {}

/// Host → guest: the host's wall-clock time (untrusted).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct Time {
    /// Seconds since 1970-01-01T00:00:00Z.
    #[n(0)]
    pub unix_seconds: u64,
}
