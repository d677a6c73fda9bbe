//! The host's end of the channel ring (`twi_proto::ring`): the guest's RAM is a file QEMU maps
//! shared (`memory-backend-file,share=on`), and the loader reads and writes the ring's pages
//! (`twi_linker::CHANNEL_RING`) with positioned reads and writes of that file, so the data
//! crosses with one copy each way and no unsafe mapping. The guest is untrusted too: its head
//! and tail are checked by the same code as on the guest's side.
//!
//! The guest announces the ring (its magic) before it rings the first doorbell; until then the
//! loader treats COM2's bytes as frames (a guest that took the 16550 fallback).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use twi_proto::ring::{self, CAPACITY, Consumer, GUEST_TO_HOST, HOST_TO_GUEST, Producer, RingError, RingMemory};

use super::error::VmError;

/// A hostile host's ring, for tests (`twi run --tamper-ring`): what the loader lies about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RingTamper {
    /// Announce more host→guest bytes than the ring holds.
    Head,
    /// Move the guest→host tail past what the guest produced.
    Tail,
}

/// The ring's pages in the guest's RAM file.
#[derive(Debug)]
struct RamFile {
    file: File,
    /// The ring's offset in the file (its guest-physical address: the file backs RAM from 0).
    base: u64,
    error: Option<io::Error>,
}

impl RingMemory for RamFile {
    fn read(&mut self, offset: usize, out: &mut [u8]) {
        if let Err(e) = self.file.read_exact_at(out, self.base + offset as u64) {
            out.fill(0);
            self.error.get_or_insert(e);
        }
    }

    fn write(&mut self, offset: usize, bytes: &[u8]) {
        if let Err(e) = self.file.write_all_at(bytes, self.base + offset as u64) {
            self.error.get_or_insert(e);
        }
    }
}

/// The loader's end of the ring.
#[derive(Debug)]
pub struct HostRing {
    memory: RamFile,
    from_guest: Consumer,
    to_guest: Producer,
    /// Whether the guest announced the ring (latched).
    active: bool,
    tamper: Option<RingTamper>,
    buffer: Vec<u8>,
}

impl HostRing {
    /// The ring in the guest's RAM file at `path` (created with the guest's RAM size before
    /// QEMU starts: see [`super::Workspace::ram_file`]).
    pub fn open(path: &Path, tamper: Option<RingTamper>) -> Result<Self, VmError> {
        let file = File::options()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| VmError::Io(format!("cannot open the guest's RAM file {}", path.display()), e))?;
        Ok(Self {
            memory: RamFile { file, base: twi_linker::CHANNEL_RING.start as u64, error: None },
            from_guest: Consumer::new(GUEST_TO_HOST),
            to_guest: Producer::new(HOST_TO_GUEST),
            active: false,
            tamper,
            buffer: vec![0; CAPACITY],
        })
    }

    /// Whether the guest runs the channel on the ring (it wrote the magic).
    pub fn active(&mut self) -> Result<bool, VmError> {
        if !self.active {
            self.active = ring::ready(&mut self.memory);
            self.check_io()?;
        }
        Ok(self.active)
    }

    /// What the guest published since the last call (empty: nothing new).
    pub fn receive(&mut self) -> Result<&[u8], VmError> {
        let n = self.from_guest.pop(&mut self.memory, &mut self.buffer).map_err(guest_broke)?;
        if n > 0 && self.tamper == Some(RingTamper::Tail) {
            // After the honest tail was published, so the guest's next push reads the lie.
            self.memory.write_u32(GUEST_TO_HOST.tail(), u32::MAX / 2);
            eprintln!("twi: tamper: the guest→host ring tail moved past the guest's head");
            self.tamper = None;
        }
        self.check_io()?;
        Ok(&self.buffer[..n])
    }

    /// Publishes `bytes` to the guest, waiting while it drains the ring, until `deadline`.
    pub fn send(&mut self, mut bytes: &[u8], deadline: Instant) -> Result<(), VmError> {
        if let (Some(RingTamper::Head), false) = (self.tamper, bytes.is_empty()) {
            self.memory.write_u32(HOST_TO_GUEST.head(), CAPACITY as u32 * 3);
            eprintln!("twi: tamper: the host→guest ring head claims three rings' worth of bytes");
            self.tamper = None;
            return Ok(());
        }
        while !bytes.is_empty() {
            let n = self.to_guest.push(&mut self.memory, bytes).map_err(guest_broke)?;
            self.check_io()?;
            bytes = &bytes[n..];
            if n == 0 {
                if Instant::now() > deadline {
                    return Err(VmError::Channel("the guest stopped draining the channel ring".into()));
                }
                std::thread::sleep(Duration::from_micros(20));
            }
        }
        Ok(())
    }

    fn check_io(&mut self) -> Result<(), VmError> {
        match self.memory.error.take() {
            Some(e) => Err(VmError::Io("reading or writing the guest's RAM file (the channel ring)".into(), e)),
            None => Ok(()),
        }
    }
}

fn guest_broke(e: RingError) -> VmError {
    VmError::Channel(format!("the guest broke the channel ring: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The guest's end, on the same file (what the runtime does through the shared pool).
    fn guest_side(path: &Path) -> RamFile {
        let file = File::options().read(true).write(true).open(path).unwrap();
        RamFile { file, base: twi_linker::CHANNEL_RING.start as u64, error: None }
    }

    fn ram_file(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("ram");
        File::create(&path).unwrap().set_len(twi_linker::CHANNEL_RING.end as u64).unwrap();
        path
    }

    #[test]
    fn frames_cross_the_file_both_ways_once_the_guest_announces_the_ring() {
        let dir = tempfile::tempdir().unwrap();
        let path = ram_file(dir.path());
        let mut host = HostRing::open(&path, None).unwrap();
        assert!(!host.active().unwrap(), "no magic yet: COM2 carries the frames");
        let mut guest = guest_side(&path);
        ring::reset(&mut guest);
        ring::publish_ready(&mut guest);
        assert!(host.active().unwrap());
        let mut to_host = Producer::new(GUEST_TO_HOST);
        let hello: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let mut sent = 0;
        let mut received = Vec::new();
        while received.len() < hello.len() {
            sent += to_host.push(&mut guest, &hello[sent..]).unwrap();
            received.extend_from_slice(host.receive().unwrap());
        }
        assert_eq!(received, hello);
        let deadline = Instant::now() + Duration::from_secs(5);
        host.send(b"challenge", deadline).unwrap();
        let mut from_host = Consumer::new(HOST_TO_GUEST);
        let mut out = [0u8; 32];
        assert_eq!(from_host.pop(&mut guest, &mut out).unwrap(), 9);
        assert_eq!(&out[..9], b"challenge");
    }

    #[test]
    fn a_guest_head_beyond_the_ring_is_an_error_not_a_copy() {
        let dir = tempfile::tempdir().unwrap();
        let path = ram_file(dir.path());
        let mut host = HostRing::open(&path, None).unwrap();
        let mut guest = guest_side(&path);
        guest.write_u32(GUEST_TO_HOST.head(), CAPACITY as u32 + 1);
        let error = host.receive().unwrap_err().to_string();
        assert!(
            error.starts_with("the guest broke the channel ring: the peer's ring head claims more bytes"),
            "{error}"
        );
    }

    #[test]
    fn a_guest_that_never_drains_is_given_up_on_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let path = ram_file(dir.path());
        let mut host = HostRing::open(&path, None).unwrap();
        let full = vec![1u8; CAPACITY + 1];
        let error = host.send(&full, Instant::now() + Duration::from_millis(50)).unwrap_err().to_string();
        assert_eq!(error, "the guest stopped draining the channel ring");
    }
}
