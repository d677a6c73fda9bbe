//! COM1, the guest's console: every line goes to `console.log` as it arrives and is shown on
//! stderr (`  guest | …`); the runtime's last words, a `FATAL: …` line (a CPU exception with
//! its vector and RIP, a panic), are kept for the run's error message.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::ChildStdout;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::error::VmError;

/// The name of the console log in the run's output directory.
pub const LOG: &str = "console.log";

/// The console reader's side the run keeps.
#[derive(Debug)]
pub struct Console {
    lines: mpsc::Receiver<String>,
    fatal: Arc<Mutex<Option<String>>>,
}

impl Console {
    /// Reads `stdout` on a thread of its own, into `out/console.log`.
    pub fn spawn(stdout: ChildStdout, out: &Path) -> Result<Self, VmError> {
        let path = out.join(LOG);
        let mut log =
            fs::File::create(&path).map_err(|e| VmError::Io(format!("cannot write {}", path.display()), e))?;
        let (tx, rx) = mpsc::channel();
        let fatal = Arc::new(Mutex::new(None));
        let fatal_writer = fatal.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).split(b'\n') {
                let Ok(line) = line else { break };
                let text = String::from_utf8_lossy(&line).trim_end_matches('\r').to_string();
                let _ = writeln!(log, "{text}");
                if let Some(reason) = text.strip_prefix("FATAL: ")
                    && let Ok(mut first) = fatal_writer.lock()
                {
                    first.get_or_insert_with(|| reason.to_string());
                }
                if tx.send(text).is_err() {
                    break;
                }
            }
        });
        Ok(Self { lines: rx, fatal })
    }

    /// Shows the lines that arrived so far, without waiting for more (the channel's relay calls
    /// it between reads: a wait here would delay every answer to the guest).
    pub fn drain(&self) {
        while let Ok(line) = self.lines.try_recv() {
            eprintln!("  guest | {line}");
        }
    }

    /// After QEMU exited: every remaining line, until the reader sees the end of the pipe
    /// (bounded, in case a grandchild still holds it open), so a last FATAL line is not missed.
    pub fn finish(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => eprintln!("  guest | {line}"),
                Err(_) => break,
            }
        }
    }

    /// The first `FATAL:` line's reason, if the guest wrote one.
    pub fn fatal(&self) -> Option<String> {
        self.fatal.lock().ok().and_then(|f| f.clone())
    }
}
