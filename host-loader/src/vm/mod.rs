//! The virtual machine of one run: QEMU as a child process with the guest's console on its
//! stdout (COM1, [`console`]) and the channel (COM2) on a unix socket in a private temporary
//! directory, under one deadline. Whatever happens, the child is killed when the [`Vm`] is
//! dropped. What goes over the channel is not this module's business: [`Vm::relay`] hands
//! the bytes to a caller (the bridge) and writes back what it answers.

pub mod console;
mod error;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub use console::Console;
pub use error::VmError;
use error::io;

/// A private directory for the channel socket and the files QEMU's loader plants in guest
/// memory (the simulated secrets page holds this launch's VMPCK0: it is removed with the
/// directory when the run ends).
#[derive(Debug)]
pub struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Result<Self, VmError> {
        let dir =
            tempfile::Builder::new().prefix("twi-run-").tempdir().map_err(io("cannot create a temporary directory"))?;
        Ok(Self { dir })
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
    /// (`None`): what the guest sends goes to `answer`, what it returns goes back.
    pub fn relay(
        &mut self,
        stream: &mut UnixStream,
        mut answer: impl FnMut(&[u8]) -> Result<Vec<u8>, VmError>,
    ) -> Result<Option<ExitStatus>, VmError> {
        let mut buf = [0u8; 4096];
        loop {
            self.console.drain();
            match stream.read(&mut buf) {
                Ok(0) => return self.wait(),
                Ok(n) => {
                    let reply = answer(&buf[..n])?;
                    if !reply.is_empty() {
                        stream.write_all(&reply).map_err(io("writing the channel"))?;
                    }
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => return Err(VmError::Io("reading the channel".into(), e)),
            }
            if let Some(status) = self.exited()? {
                return Ok(Some(status));
            }
            if Instant::now() > self.deadline {
                return Ok(None);
            }
        }
    }

    /// Waits for QEMU to exit; `None` if the deadline passes first.
    pub fn wait(&mut self) -> Result<Option<ExitStatus>, VmError> {
        loop {
            if let Some(status) = self.exited()? {
                return Ok(Some(status));
            }
            if Instant::now() > self.deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(5));
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
