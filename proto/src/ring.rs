//! The channel's fast transport: two single-producer, single-consumer byte rings in memory both
//! ends can reach — the guest's shared pool (`twi_linker::CHANNEL_RING`), which under SEV-SNP
//! and TDX is the only memory the host can see, and which the host loader reads and writes
//! through the file backing the guest's RAM. The frames ([`crate::frame`]) travel over it
//! unchanged: the ring replaces the 16550's byte-at-a-time path (QEMU admits at most the FIFO's
//! free space, 14 bytes, per main-loop wake-up), not the framing.
//!
//! The same shape as a virtio queue or Xen's console ring (a producer index and a consumer
//! index, free-running, over a power-of-two data area), reduced to bytes because the frames
//! already delimit messages.
//!
//! ```text
//! offset      what                                   written by
//! 0x0000      u64 magic "TWIRING1" (0 = not in use)  guest, once its indices are zeroed
//! 0x0040      u32 guest→host head (bytes produced)   guest
//! 0x0080      u32 guest→host tail (bytes consumed)   host
//! 0x00C0      u32 host→guest head                    host
//! 0x0100      u32 host→guest tail                    guest
//! 0x1000      guest→host data, CAPACITY bytes
//! 0x1000+CAP  host→guest data, CAPACITY bytes
//! ```
//!
//! Indices are little-endian, free-running (wrapping at 2^32) and each in its own cache line.
//! The peer is hostile: each side keeps its own index in private memory and reads the peer's
//! index once per call, then checks it before use (a head never more than CAPACITY ahead of the
//! tail; a tail never behind the previous tail nor past the head), so a lying index is a
//! [`RingError`], never an out-of-bounds copy. Data is copied out once, into the caller's
//! private buffer, and parsed there.

/// Bytes of one direction's data area (a power of two).
pub const CAPACITY: usize = 64 * 1024;
/// Bytes of the control page before the data areas.
pub const CONTROL_LEN: usize = 4096;
/// Bytes of the whole ring area.
pub const RING_LEN: usize = CONTROL_LEN + 2 * CAPACITY;
/// What the guest writes at offset 0 once the ring is ready.
pub const MAGIC: u64 = u64::from_le_bytes(*b"TWIRING1");
/// Offset of the magic.
pub const MAGIC_OFFSET: usize = 0;
/// The fw_cfg file by which the host loader offers the ring (its contents are ignored): a guest
/// that does not find it keeps to the 16550.
pub const FW_CFG_OFFER: &str = "opt/twi/ring";

const _: () = assert!(CAPACITY.is_power_of_two() && CAPACITY <= u32::MAX as usize / 2);

/// One direction of the ring: where its indices and data live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Direction {
    head: usize,
    tail: usize,
    data: usize,
}

impl Direction {
    /// The offset of the producer's index.
    pub const fn head(&self) -> usize {
        self.head
    }
    /// The offset of the consumer's index.
    pub const fn tail(&self) -> usize {
        self.tail
    }
}

/// Guest to host: the guest produces, the host consumes.
pub const GUEST_TO_HOST: Direction = Direction { head: 0x40, tail: 0x80, data: CONTROL_LEN };
/// Host to guest: the host produces, the guest consumes.
pub const HOST_TO_GUEST: Direction = Direction { head: 0xC0, tail: 0x100, data: CONTROL_LEN + CAPACITY };

/// The ring's memory as one end reaches it (volatile accesses to the shared pool in the guest,
/// positioned reads and writes of the RAM file on the host, a byte array in tests). Offsets are
/// relative to the ring area and always within [`RING_LEN`].
pub trait RingMemory {
    /// Copies `out.len()` bytes at `offset` out of the ring.
    fn read(&mut self, offset: usize, out: &mut [u8]);
    /// Copies `bytes` into the ring at `offset`.
    fn write(&mut self, offset: usize, bytes: &[u8]);

    /// One read of an index. The guest overrides it with one aligned 32-bit access.
    fn load_u32(&mut self, offset: usize) -> u32 {
        let mut word = [0u8; 4];
        self.read(offset, &mut word);
        u32::from_le_bytes(word)
    }

    /// Writes an index. The guest overrides it with one aligned 32-bit store, so that the peer
    /// never sees it half written.
    fn write_u32(&mut self, offset: usize, value: u32) {
        self.write(offset, &value.to_le_bytes());
    }

    /// Reads the peer's index until two reads agree. The host's file I/O copies bytes (the
    /// kernel may copy four bytes one at a time), so a read that races the peer's update can
    /// return old and new bytes mixed — a value the peer never wrote, which the checks would
    /// take for a lie or, worse, accept. The race lasts one store: a second read after it
    /// returns the whole value. Bounded: a peer that never stops changing its index is judged
    /// by the checks on the last value read.
    fn read_u32(&mut self, offset: usize) -> u32 {
        let mut value = self.load_u32(offset);
        for _ in 0..STABLE_READS {
            let again = self.load_u32(offset);
            if again == value {
                break;
            }
            value = again;
        }
        value
    }
}

/// How many times [`RingMemory::read_u32`] re-reads an index that keeps changing.
const STABLE_READS: usize = 16;

/// The peer broke the ring's rules: the transport cannot be trusted any further.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// The producer's head is more than [`CAPACITY`] ahead of what was consumed (it claims bytes
    /// it cannot have written).
    HeadOutOfRange { head: u32, tail: u32 },
    /// The consumer's tail moved backwards or past what was produced.
    TailOutOfRange { tail: u32, previous: u32, head: u32 },
}

impl RingError {
    /// A sentence for the console and the run's error.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::HeadOutOfRange { .. } => "the peer's ring head claims more bytes than the ring holds",
            Self::TailOutOfRange { .. } => "the peer's ring tail moved backwards or past the bytes produced",
        }
    }
}

impl core::fmt::Display for RingError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::HeadOutOfRange { head, tail } => write!(f, "{} (head {head}, tail {tail})", self.describe()),
            Self::TailOutOfRange { tail, previous, head } => {
                write!(f, "{} (tail {tail}, previous {previous}, head {head})", self.describe())
            }
        }
    }
}

/// Zeroes every index (the guest, before it writes [`MAGIC`]).
pub fn reset(memory: &mut impl RingMemory) {
    for direction in [GUEST_TO_HOST, HOST_TO_GUEST] {
        memory.write_u32(direction.head, 0);
        memory.write_u32(direction.tail, 0);
    }
}

/// Whether the guest has set the ring up.
pub fn ready(memory: &mut impl RingMemory) -> bool {
    let mut magic = [0u8; 8];
    memory.read(MAGIC_OFFSET, &mut magic);
    u64::from_le_bytes(magic) == MAGIC
}

/// Marks the ring ready (the guest, after [`reset`]).
pub fn publish_ready(memory: &mut impl RingMemory) {
    memory.write(MAGIC_OFFSET, &MAGIC.to_le_bytes());
}

/// The producing end of one direction. Its head lives here, in private memory; the ring's copy
/// is only ever written.
#[derive(Debug)]
pub struct Producer {
    direction: Direction,
    head: u32,
    /// The consumer's tail as last checked.
    tail: u32,
}

impl Producer {
    /// A producer of `direction` whose indices were just reset.
    pub const fn new(direction: Direction) -> Self {
        Self { direction, head: 0, tail: 0 }
    }

    /// Copies as much of `bytes` as there is room for, publishes it, and returns how much. Zero
    /// means the consumer has not made room yet.
    pub fn push(&mut self, memory: &mut impl RingMemory, bytes: &[u8]) -> Result<usize, RingError> {
        let tail = memory.read_u32(self.direction.tail);
        let consumed = tail.wrapping_sub(self.tail);
        let outstanding = self.head.wrapping_sub(self.tail);
        if consumed > outstanding {
            return Err(RingError::TailOutOfRange { tail, previous: self.tail, head: self.head });
        }
        self.tail = tail;
        let free = CAPACITY - self.head.wrapping_sub(tail) as usize;
        let n = free.min(bytes.len());
        if n == 0 {
            return Ok(0);
        }
        let start = self.head as usize % CAPACITY;
        let first = n.min(CAPACITY - start);
        memory.write(self.direction.data + start, &bytes[..first]);
        memory.write(self.direction.data, &bytes[first..n]);
        // The data is in the ring before the head that announces it (the memory's writes are
        // ordered: volatile stores on x86, sequential writes of one file on the host).
        self.head = self.head.wrapping_add(n as u32);
        memory.write_u32(self.direction.head, self.head);
        Ok(n)
    }

    /// Bytes pushed and not yet consumed, as of the last check of the consumer's tail.
    pub fn pending(&self) -> usize {
        self.head.wrapping_sub(self.tail) as usize
    }
}

/// The consuming end of one direction. Its tail lives here; the ring's copy is only written.
#[derive(Debug)]
pub struct Consumer {
    direction: Direction,
    tail: u32,
}

impl Consumer {
    /// A consumer of `direction` whose indices were just reset.
    pub const fn new(direction: Direction) -> Self {
        Self { direction, tail: 0 }
    }

    /// Copies up to `out.len()` available bytes into `out` (private memory), releases their
    /// room, and returns how many. Zero means nothing has arrived.
    pub fn pop(&mut self, memory: &mut impl RingMemory, out: &mut [u8]) -> Result<usize, RingError> {
        let head = memory.read_u32(self.direction.head);
        let available = head.wrapping_sub(self.tail) as usize;
        if available > CAPACITY {
            return Err(RingError::HeadOutOfRange { head, tail: self.tail });
        }
        let n = available.min(out.len());
        if n == 0 {
            return Ok(0);
        }
        let start = self.tail as usize % CAPACITY;
        let first = n.min(CAPACITY - start);
        memory.read(self.direction.data + start, &mut out[..first]);
        memory.read(self.direction.data, &mut out[first..n]);
        self.tail = self.tail.wrapping_add(n as u32);
        memory.write_u32(self.direction.tail, self.tail);
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
