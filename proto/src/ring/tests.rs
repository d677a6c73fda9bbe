//! The ring against a byte array: data crosses intact across the wrap, both ways, and every lie
//! about an index is refused before any byte is copied.

use alloc::vec;
use alloc::vec::Vec;

use super::*;

struct Memory(Vec<u8>);

impl Memory {
    fn new() -> Self {
        Self(vec![0; RING_LEN])
    }
}

impl RingMemory for Memory {
    fn read(&mut self, offset: usize, out: &mut [u8]) {
        out.copy_from_slice(&self.0[offset..offset + out.len()]);
    }
    fn write(&mut self, offset: usize, bytes: &[u8]) {
        self.0[offset..offset + bytes.len()].copy_from_slice(bytes);
    }
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32).map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8).collect()
}

#[test]
fn bytes_cross_intact_across_many_wraps_in_both_directions() {
    let mut memory = Memory::new();
    reset(&mut memory);
    publish_ready(&mut memory);
    assert!(ready(&mut memory));
    for direction in [GUEST_TO_HOST, HOST_TO_GUEST] {
        let (mut producer, mut consumer) = (Producer::new(direction), Consumer::new(direction));
        let sent = pattern(5 * CAPACITY + 12_345, direction.data as u32);
        let mut received = Vec::new();
        let mut at = 0;
        let mut buf = vec![0u8; 7_000];
        while received.len() < sent.len() {
            // Uneven pushes and pops, so the wrap falls inside copies of every size.
            let chunk = (at % 20_011 + 1).min(sent.len() - at);
            at += producer.push(&mut memory, &sent[at..at + chunk]).unwrap();
            let n = consumer.pop(&mut memory, &mut buf).unwrap();
            received.extend_from_slice(&buf[..n]);
        }
        assert_eq!(received, sent);
    }
}

#[test]
fn a_full_ring_accepts_nothing_until_the_consumer_makes_room() {
    let mut memory = Memory::new();
    let mut producer = Producer::new(GUEST_TO_HOST);
    let mut consumer = Consumer::new(GUEST_TO_HOST);
    assert_eq!(producer.push(&mut memory, &vec![1; CAPACITY + 10]).unwrap(), CAPACITY);
    assert_eq!(producer.push(&mut memory, &[2; 10]).unwrap(), 0);
    assert_eq!(producer.pending(), CAPACITY);
    let mut buf = [0u8; 100];
    assert_eq!(consumer.pop(&mut memory, &mut buf).unwrap(), 100);
    assert_eq!(producer.push(&mut memory, &[2; 200]).unwrap(), 100);
}

#[test]
fn an_empty_ring_yields_nothing() {
    let mut memory = Memory::new();
    let mut consumer = Consumer::new(HOST_TO_GUEST);
    assert_eq!(consumer.pop(&mut memory, &mut [0u8; 16]).unwrap(), 0);
}

#[test]
fn a_head_beyond_the_capacity_is_refused_for_every_lying_value() {
    for lie in [CAPACITY as u32 + 1, CAPACITY as u32 * 2, u32::MAX / 2, u32::MAX, 0x8000_0000] {
        let mut memory = Memory::new();
        memory.write_u32(HOST_TO_GUEST.head, lie);
        let mut consumer = Consumer::new(HOST_TO_GUEST);
        let mut out = vec![0xAAu8; 64];
        assert_eq!(consumer.pop(&mut memory, &mut out), Err(RingError::HeadOutOfRange { head: lie, tail: 0 }));
        assert!(out.iter().all(|&b| b == 0xAA), "nothing copied for head {lie}");
    }
    // Exactly full is honest.
    let mut memory = Memory::new();
    memory.write_u32(HOST_TO_GUEST.head, CAPACITY as u32);
    assert_eq!(Consumer::new(HOST_TO_GUEST).pop(&mut memory, &mut [0u8; 8]), Ok(8));
}

#[test]
fn the_consumer_reads_from_its_own_tail_not_the_rings() {
    let mut memory = Memory::new();
    let data = pattern(CAPACITY, 3);
    memory.write(HOST_TO_GUEST.data, &data);
    let mut consumer = Consumer::new(HOST_TO_GUEST);
    memory.write_u32(HOST_TO_GUEST.head, 100);
    assert_eq!(consumer.pop(&mut memory, &mut [0u8; 100]), Ok(100));
    // The host rewinds the tail the guest published and claims a full ring: trusting the ring's
    // tail would hand out the first 100 bytes twice. The consumer goes on from its own.
    memory.write_u32(HOST_TO_GUEST.tail, 0);
    memory.write_u32(HOST_TO_GUEST.head, CAPACITY as u32);
    let mut out = vec![0u8; CAPACITY];
    assert_eq!(consumer.pop(&mut memory, &mut out), Ok(CAPACITY - 100));
    assert_eq!(&out[..CAPACITY - 100], &data[100..]);
    // And a head beyond its own tail + CAPACITY is a lie, whatever the ring's tail says.
    memory.write_u32(HOST_TO_GUEST.head, 2 * CAPACITY as u32 + 1);
    assert!(matches!(consumer.pop(&mut memory, &mut out), Err(RingError::HeadOutOfRange { .. })));
}

#[test]
fn a_tail_that_moves_backwards_or_past_the_head_is_refused() {
    for (published, lie) in [(100u32, 101u32), (100, u32::MAX), (100, 0x8000_0000), (0, 1)] {
        let mut memory = Memory::new();
        let mut producer = Producer::new(GUEST_TO_HOST);
        assert_eq!(producer.push(&mut memory, &vec![7; published as usize]).unwrap(), published as usize);
        memory.write_u32(GUEST_TO_HOST.tail, lie);
        let before = memory.0.clone();
        assert!(
            matches!(producer.push(&mut memory, &[1; 10]), Err(RingError::TailOutOfRange { .. })),
            "tail {lie} after {published} bytes"
        );
        assert_eq!(memory.0, before, "nothing written after tail {lie}");
    }
    // A consumer that rewinds: first it consumes 50, then claims 10.
    let mut memory = Memory::new();
    let mut producer = Producer::new(GUEST_TO_HOST);
    producer.push(&mut memory, &[7; 100]).unwrap();
    memory.write_u32(GUEST_TO_HOST.tail, 50);
    assert_eq!(producer.push(&mut memory, &[1; 10]), Ok(10));
    memory.write_u32(GUEST_TO_HOST.tail, 10);
    assert_eq!(
        producer.push(&mut memory, &[1; 10]),
        Err(RingError::TailOutOfRange { tail: 10, previous: 50, head: 110 })
    );
}

#[test]
fn indices_wrap_at_two_to_the_32() {
    let mut memory = Memory::new();
    let start = u32::MAX - 1000;
    let mut producer = Producer { direction: HOST_TO_GUEST, head: start, tail: start };
    let mut consumer = Consumer { direction: HOST_TO_GUEST, tail: start };
    memory.write_u32(HOST_TO_GUEST.tail, start);
    let sent = pattern(30_000, 9);
    assert_eq!(producer.push(&mut memory, &sent).unwrap(), sent.len());
    let mut out = vec![0u8; 30_000];
    assert_eq!(consumer.pop(&mut memory, &mut out).unwrap(), sent.len());
    assert_eq!(out, sent);
    assert_eq!(memory.read_u32(HOST_TO_GUEST.tail), start.wrapping_add(30_000));
}

#[test]
fn errors_say_what_the_peer_did() {
    let e = RingError::HeadOutOfRange { head: 9, tail: 1 };
    assert_eq!(alloc::format!("{e}"), "the peer's ring head claims more bytes than the ring holds (head 9, tail 1)");
}

/// A ring whose next read of one index races the peer's update of it: that read returns the
/// old value's low byte with the new value's upper bytes (what the host's byte-wise file I/O
/// read in the benchmark: tail 0x6793D4 between 0x6772D4 and 0x679303).
struct TornOnce {
    memory: Memory,
    index: usize,
    old: u32,
    torn: bool,
}

impl RingMemory for TornOnce {
    fn read(&mut self, offset: usize, out: &mut [u8]) {
        self.memory.read(offset, out);
        if offset == self.index && out.len() == 4 && !self.torn {
            self.torn = true;
            out[0] = self.old.to_le_bytes()[0];
        }
    }
    fn write(&mut self, offset: usize, bytes: &[u8]) {
        self.memory.write(offset, bytes);
    }
}

#[test]
fn an_index_read_while_the_peer_writes_it_is_read_again_not_taken_for_a_lie() {
    let mut memory = Memory::new();
    let mut producer = Producer::new(GUEST_TO_HOST);
    let mut consumer = Consumer::new(GUEST_TO_HOST);
    let mut out = vec![0u8; CAPACITY];
    // The producer has seen the tail at 0x72D4; the consumer has since consumed up to the head,
    // 0x9303. Read torn, the tail would be 0x93D4: past the head.
    let (old, head) = (0x72D4u32, 0x9303u32);
    for n in [old, head - old] {
        producer.push(&mut memory, &vec![5; n as usize]).unwrap();
        assert_eq!(consumer.pop(&mut memory, &mut out).unwrap(), n as usize);
        if n == old {
            producer.push(&mut memory, &[]).unwrap(); // the producer reads the tail: 0x72D4
        }
    }
    let mut torn = TornOnce { memory, index: GUEST_TO_HOST.tail, old, torn: false };
    assert_eq!(producer.push(&mut torn, &[1; 10]), Ok(10), "the second read returns the whole tail");
    assert!(torn.torn, "the test's race happened");
}
