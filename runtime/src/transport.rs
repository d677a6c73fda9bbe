//! The channel's byte links on the machine: the shared-memory ring (`twi_proto::ring`) when the
//! host loader offers it, else COM2's 16550. Bare-metal only; no `unsafe` (the ring's pages are
//! reached through `platform::shared`).
//!
//! Why a ring and not the 16550: QEMU moves host→guest serial bytes at most a FIFO's free space
//! (14 bytes) per main-loop wake-up, so a 3 KiB reply of the simulated PSP took over 100 ms. Why
//! this ring and not virtio-console or vsock: the ring is the part of a virtqueue the channel
//! needs (frames already delimit messages), with no PCI enumeration, BAR assignment or
//! descriptor table in the firmware; it lives in the shared pool, the memory a real SEV-SNP or
//! TDX host can see, and the host loader reads it through the file that backs the guest's RAM.
//! The guest rings a doorbell after publishing (one byte on COM2, which QEMU hands the loader
//! at once), so the host sleeps in `read()` instead of polling; the guest polls the ring for the
//! host's answers, as it polled the UART's line status before.
//!
//! The host is hostile: every index read from the ring is checked before use, data is copied once
//! into private memory and parsed only there, and an index that breaks the ring's rules ends the
//! channel with [`Link::broken`]'s reason (the session then says why) — never a panic.

use alloc::vec;
use alloc::vec::Vec;

use twi_proto::ring::{self, Consumer, GUEST_TO_HOST, HOST_TO_GUEST, Producer, RingMemory};

use crate::channel::Link;
use crate::platform::fw_cfg;
use crate::platform::serial::{COM2, Uart};
use crate::platform::shared::Shared;

/// Bytes copied out of the ring per refill (private memory).
const RECEIVE_BUFFER: usize = 16 * 1024;

const _: () = assert!(crate::layout::RING_AREA == ring::RING_LEN);

/// The link the channel runs on.
#[derive(Debug)]
pub enum HostLink {
    /// COM2: the fallback, and the path of hosts that do not offer the ring.
    Serial(Uart),
    /// The shared-memory ring, with COM2 as its doorbell.
    Ring(RingLink),
}

impl HostLink {
    /// The ring if the host loader offers it (fw_cfg `opt/twi/ring`), else COM2.
    pub fn open() -> Self {
        let com2 = Uart::init(COM2);
        if !fw_cfg::has_file(ring::FW_CFG_OFFER) {
            return Self::Serial(com2);
        }
        match Shared::channel_ring() {
            Some(pages) => Self::Ring(RingLink::new(RingPages(pages), com2)),
            None => Self::Serial(com2),
        }
    }

    /// For the console.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::Serial(_) => "COM2 (16550)",
            Self::Ring(_) => "shared-memory ring (64 KiB each way, COM2 as doorbell)",
        }
    }
}

impl Link for HostLink {
    fn write_all(&mut self, bytes: &[u8]) {
        match self {
            Self::Serial(uart) => uart.write_bytes(bytes),
            Self::Ring(ring) => ring.write_all(bytes),
        }
    }

    fn read_byte(&mut self) -> Option<u8> {
        match self {
            Self::Serial(uart) => Some(uart.read_byte()),
            Self::Ring(ring) => ring.read_byte(),
        }
    }

    fn broken(&self) -> Option<&'static str> {
        match self {
            Self::Serial(_) => None,
            Self::Ring(ring) => ring.broken,
        }
    }
}

/// The ring's pages in the shared pool.
#[derive(Debug)]
pub struct RingPages(Shared);

impl RingMemory for RingPages {
    fn read(&mut self, offset: usize, out: &mut [u8]) {
        self.0.read_at(offset, out);
    }
    fn write(&mut self, offset: usize, bytes: &[u8]) {
        self.0.write_bytes_at(offset, bytes);
    }
    // The indices in one aligned access each: byte by byte, the host could read one half
    // written (old and new bytes mixed) and take an honest guest for a liar.
    fn load_u32(&mut self, offset: usize) -> u32 {
        self.0.read_u32_at(offset)
    }
    fn write_u32(&mut self, offset: usize, value: u32) {
        self.0.write_u32_at(offset, value);
    }
}

/// The guest's end of the ring.
#[derive(Debug)]
pub struct RingLink {
    memory: RingPages,
    to_host: Producer,
    from_host: Consumer,
    doorbell: Uart,
    /// Bytes copied out of the ring, served one at a time; `buffer[next..filled]` is unread.
    buffer: Vec<u8>,
    next: usize,
    filled: usize,
    /// Why the ring can no longer be used (the host broke its rules).
    broken: Option<&'static str>,
}

impl RingLink {
    /// Zeroes the indices and announces the ring.
    fn new(mut memory: RingPages, doorbell: Uart) -> Self {
        ring::reset(&mut memory);
        ring::publish_ready(&mut memory);
        Self {
            memory,
            to_host: Producer::new(GUEST_TO_HOST),
            from_host: Consumer::new(HOST_TO_GUEST),
            doorbell,
            buffer: vec![0; RECEIVE_BUFFER],
            next: 0,
            filled: 0,
            broken: None,
        }
    }

    /// Publishes `bytes`, waiting for room while the host drains the ring; rings the doorbell
    /// whenever it waits and once at the end.
    fn write_all(&mut self, mut bytes: &[u8]) {
        let mut rang = false;
        while !bytes.is_empty() && self.broken.is_none() {
            match self.to_host.push(&mut self.memory, bytes) {
                Ok(0) if !rang => {
                    self.doorbell.write_byte(0);
                    rang = true;
                }
                Ok(0) => core::hint::spin_loop(),
                Ok(n) => {
                    bytes = &bytes[n..];
                    rang = false;
                }
                Err(e) => self.broken = Some(e.describe()),
            }
        }
        if !rang {
            self.doorbell.write_byte(0);
        }
    }

    /// The next byte from the host; `None` once the host broke the ring (see `broken`).
    fn read_byte(&mut self) -> Option<u8> {
        while self.next == self.filled {
            if self.broken.is_some() {
                return None;
            }
            match self.from_host.pop(&mut self.memory, &mut self.buffer) {
                Ok(0) => core::hint::spin_loop(),
                Ok(n) => (self.next, self.filled) = (0, n),
                Err(e) => self.broken = Some(e.describe()),
            }
        }
        let byte = self.buffer.get(self.next).copied();
        self.next += 1;
        byte
    }
}
