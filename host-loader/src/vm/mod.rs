//! The virtual machine of one run: QEMU as a child process with the guest's console on its
//! stdout (COM1, [`console`]) and the channel on a unix socket in a private temporary
//! directory (COM2: the frames themselves, or under the shared-memory [`ring`] the guest's
//! doorbell), under one deadline. Whatever happens, the child is killed when the [`Vm`] is
//! dropped. What goes over the channel is not this module's business: [`Vm::relay`] hands
//! the bytes to a caller (the bridge) and writes back what it answers.

pub mod console;
mod error;
pub mod ring;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub use console::Console;
pub use error::VmError;
use error::io;
pub use ring::{HostRing, RingTamper};

/// Every byte of the channel, one file per direction (`twi run --channel-dump DIR`:
/// `guest-to-host.bin`, `host-to-guest.bin`), for the benchmark's frame figures.
#[derive(Debug)]
pub struct ChannelDump {
    to_host: std::fs::File,
    to_guest: std::fs::File,
}

impl ChannelDump {
    pub fn create(dir: &Path) -> Result<Self, VmError> {
        std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
        let file = |name: &str| {
            let path = dir.join(name);
            std::fs::File::create(&path).map_err(io(format!("cannot write {}", path.display())))
        };
        Ok(Self { to_host: file("guest-to-host.bin")?, to_guest: file("host-to-guest.bin")? })
    }

    /// Appends what crossed: `from_guest`, and the loader's `reply`.
    pub fn record(&mut self, from_guest: &[u8], reply: &[u8]) -> Result<(), VmError> {
        self.to_host.write_all(from_guest).map_err(io("writing the channel dump"))?;
        self.to_guest.write_all(reply).map_err(io("writing the channel dump"))
    }
}

/// How the channel crosses between guest and loader (`twi run --channel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// The shared-memory ring in the guest's shared pool, COM2 as its doorbell (the default on
    /// the simulated platforms; the 16550 if the guest does not take it).
    Ring,
    /// COM2's 16550 alone: the fallback, and what the hardware profiles use for now.
    Serial,
}

/// A private directory for the channel socket and the files QEMU's loader plants in guest
/// memory (the simulated secrets page holds this launch's VMPCK0: it is removed with the
/// directory when the run ends).
#[derive(Debug)]
pub struct Workspace {
    dir: tempfile::TempDir,
    /// The guest's RAM file, when the channel runs on the ring (in /dev/shm where there is one:
    /// memory, not disk; removed with the directory).
    ram: Option<tempfile::TempDir>,
}

impl Workspace {
    pub fn new() -> Result<Self, VmError> {
        let dir =
            tempfile::Builder::new().prefix("twi-run-").tempdir().map_err(io("cannot create a temporary directory"))?;
        Ok(Self { dir, ram: None })
    }

    /// Creates the file that backs the guest's `bytes` of RAM (QEMU maps it shared; the loader
    /// reads the channel ring from it), private to this user, and returns its path.
    pub fn ram_file(&mut self, bytes: u64) -> Result<PathBuf, VmError> {
        let shm = Path::new("/dev/shm");
        let builder = || tempfile::Builder::new().prefix("twi-ram-").tempdir_in(shm);
        let dir = match shm.is_dir().then(builder) {
            Some(Ok(dir)) => dir,
            _ => tempfile::Builder::new()
                .prefix("twi-ram-")
                .tempdir()
                .map_err(io("cannot create a directory for the guest's RAM file"))?,
        };
        let path = dir.path().join("guest-ram");
        let file = std::fs::File::create(&path).map_err(io(format!("cannot create {}", path.display())))?;
        file.set_len(bytes).map_err(io(format!("cannot size {}", path.display())))?;
        self.ram = Some(dir);
        Ok(path)
    }

    /// Where the channel socket is (QEMU connects to it).
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("channel.sock")
    }

    /// A path in the private directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// How the guest's QEMU ended.
#[derive(Debug)]
pub struct Exit {
    /// `None`: the deadline passed first (QEMU was killed).
    pub status: Option<ExitStatus>,
    /// The guest console's FATAL line, if any.
    pub fatal: Option<String>,
    /// What QEMU writes on stderr, read when asked ([`Exit::qemu_stderr`]).
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Exit {
    /// What QEMU wrote on stderr (empty if it is still running).
    pub fn qemu_stderr(&mut self) -> String {
        match self.status {
            Some(_) => self.stderr.take().and_then(|reader| reader.join().ok()).unwrap_or_default(),
            None => String::new(),
        }
    }
}

/// A running guest.
#[derive(Debug)]
pub struct Vm {
    child: Child,
    console: Console,
    stderr: Option<std::thread::JoinHandle<String>>,
    listener: UnixListener,
    deadline: Instant,
    /// Keeps the socket's directory alive as long as QEMU may use it.
    _workspace: Workspace,
}

impl Vm {
    /// Starts `qemu` with `args` (which name `workspace`'s socket), its console logged into
    /// `out`, to finish before `timeout`.
    pub fn start(
        qemu: &Path,
        args: &[String],
        workspace: Workspace,
        out: &Path,
        timeout: Duration,
    ) -> Result<Self, VmError> {
        let socket = workspace.socket();
        let listener = UnixListener::bind(&socket).map_err(io(format!("cannot listen on {}", socket.display())))?;
        listener.set_nonblocking(true).map_err(io("cannot poll the channel socket"))?;
        let deadline = Instant::now() + timeout;
        let mut child = Command::new(qemu)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io(format!("cannot start {}", qemu.display())))?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            let _ = child.kill();
            return Err(VmError::Channel("QEMU's stdout and stderr were not piped".into()));
        };
        let console = match Console::spawn(stdout, out) {
            Ok(console) => console,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        Ok(Self { child, console, stderr: Some(read_all(stderr)), listener, deadline, _workspace: workspace })
    }

    /// Waits for QEMU to connect the channel; `None` if QEMU exited or the deadline passed.
    pub fn accept(&mut self) -> Result<Option<UnixStream>, VmError> {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).map_err(io("cannot configure the channel"))?;
                    stream
                        .set_read_timeout(Some(Duration::from_millis(20)))
                        .map_err(io("cannot configure the channel"))?;
                    return Ok(Some(stream));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(VmError::Io("accepting QEMU's channel connection".into(), e)),
            }
            if self.exited()?.is_some() || Instant::now() > self.deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Relays the channel until QEMU exits (returning its status) or the deadline passes
    /// (`None`): what the guest sends goes to `answer`, what it returns goes back. With a
    /// `ring`, once the guest announced it the frames move through it and COM2's bytes are only
    /// doorbells (the ring is also looked at whenever the socket is quiet for 20 ms); before
    /// that, and without one, COM2 carries the frames.
    pub fn relay(
        &mut self,
        stream: &mut UnixStream,
        mut ring: Option<&mut HostRing>,
        mut answer: impl FnMut(&[u8]) -> Result<Vec<u8>, VmError>,
    ) -> Result<Option<ExitStatus>, VmError> {
        let mut buf = [0u8; 4096];
        loop {
            self.console.drain();
            let read = match stream.read(&mut buf) {
                Ok(0) => return self.wait(),
                Ok(n) => n,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => 0,
                Err(e) => return Err(VmError::Io("reading the channel".into(), e)),
            };
            let on_ring = match ring.as_deref_mut() {
                Some(ring) => ring.active()?,
                None => false,
            };
            match ring.as_deref_mut() {
                Some(ring) if on_ring => self.pump(ring, &mut answer)?,
                _ if read > 0 => {
                    let reply = answer(&buf[..read])?;
                    if !reply.is_empty() {
                        stream.write_all(&reply).map_err(io("writing the channel"))?;
                    }
                }
                _ => {}
            }
            if let Some(status) = self.exited()? {
                return Ok(Some(status));
            }
            if Instant::now() > self.deadline {
                return Ok(None);
            }
        }
    }

    /// Hands everything the guest published on the ring to `answer`, and its replies back.
    fn pump(
        &self,
        ring: &mut HostRing,
        answer: &mut impl FnMut(&[u8]) -> Result<Vec<u8>, VmError>,
    ) -> Result<(), VmError> {
        loop {
            let bytes = ring.receive()?;
            if bytes.is_empty() {
                return Ok(());
            }
            let reply = answer(bytes)?;
            ring.send(&reply, self.deadline)?;
        }
    }

    /// Waits for QEMU to exit; `None` if the deadline passes first. Polled every 250 µs for
    /// the first 20 ms (QEMU is usually ending: the guest exited or the channel closed, and the
    /// run's figure stops here; a doubling pause from the start overshot QEMU's few
    /// milliseconds of teardown by as much again), then backing off to 5 ms.
    pub fn wait(&mut self) -> Result<Option<ExitStatus>, VmError> {
        const PROMPT: Duration = Duration::from_millis(20);
        let (started, mut pause) = (Instant::now(), Duration::from_micros(250));
        loop {
            if let Some(status) = self.exited()? {
                return Ok(Some(status));
            }
            if Instant::now() > self.deadline {
                return Ok(None);
            }
            std::thread::sleep(pause);
            if started.elapsed() > PROMPT {
                pause = (pause * 2).min(Duration::from_millis(5));
            }
        }
    }

    fn exited(&mut self) -> Result<Option<ExitStatus>, VmError> {
        self.child.try_wait().map_err(io("waiting for QEMU"))
    }

    /// Ends the run: a QEMU that exited has its console read to the end and its stderr kept;
    /// one still running (the deadline passed) is killed.
    pub fn finish(mut self, status: Option<ExitStatus>) -> Exit {
        match status {
            Some(_) => self.console.finish(),
            None => self.console.drain(),
        }
        Exit { status, fatal: self.console.fatal(), stderr: self.stderr.take() }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn read_all(mut stderr: ChildStderr) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    })
}
