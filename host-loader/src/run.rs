//! `twi run`'s launch: boot the image under QEMU ([`crate::vm`]), relay its channel through
//! the bridge ([`crate::bridge`]), keep what the run learns ([`crate::artifacts`]), and judge
//! the end: success only when the guest exited cleanly after confirming that it accepted the
//! credential (checked against the anchor in its own measured manifest).

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::answers::Obtained;
use crate::artifacts::{ArtifactError, OutDir};
use crate::bridge::{Bridge, BridgeError, Event};
use crate::hardware::HardwareProfile;
use crate::qemu::{self, Accel, GUEST_FAILURE_STATUS, GUEST_SUCCESS_STATUS, GuestRam, MemorySize};
use crate::vm::{ChannelDump, HostRing, RingTamper, Transport, Vm, VmError, Workspace};

/// The machine QEMU plays.
#[derive(Debug)]
pub enum Machine {
    /// Plain QEMU with the simulated PSP: this launch's secrets page (VMPCK0) is planted.
    SimSnp { accel: Accel, secrets_page: Zeroizing<Vec<u8>> },
    /// Plain QEMU with the simulated TDX module: the simulated-TD page is planted.
    SimTdx { accel: Accel },
    /// A confidential VM on real hardware (KVM).
    Hardware(HardwareProfile),
}

/// Everything a run needs, already resolved.
#[derive(Debug)]
pub struct Launch {
    pub qemu: PathBuf,
    pub machine: Machine,
    /// The ROM (or for `--platform igvm` the IGVM file) QEMU loads.
    pub image: PathBuf,
    pub out: OutDir,
    pub timeout: Duration,
    /// The guest's RAM.
    pub memory: MemorySize,
    /// How the channel crosses (the hardware profiles keep to COM2 for now).
    pub transport: Transport,
    /// Test hook: a hostile host's ring.
    pub tamper_ring: Option<RingTamper>,
    /// Benchmark hook: where to dump the channel's bytes.
    pub channel_dump: Option<PathBuf>,
}

/// A successful run.
#[derive(Debug)]
pub struct Success {
    /// The last credential the guest acquired and accepted; `None` when the workload exited
    /// successfully without acquiring one (a payload may not need one on every run).
    pub issued: Option<Obtained>,
    pub elapsed: Duration,
    /// When each message of the acquisition crossed, in milliseconds since the QEMU launch
    /// (`timeline.json`).
    pub timeline: serde_json::Value,
    /// The same in one line for the user, if the acquisition completed.
    pub time_went: Option<String>,
}

/// Why a run did not end with an accepted credential, in one sentence for the user.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Vm(#[from] VmError),
    #[error(transparent)]
    Bridge(#[from] BridgeError),
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    /// The guest, the issuer or the bridge refused something: the first reason.
    #[error("{0}")]
    Refused(String),
    #[error("the guest failed: {0}")]
    GuestFailed(String),
    #[error("QEMU exited with {status} before the guest finished{stderr}{hint}")]
    QemuExited { status: ExitStatus, stderr: String, hint: String },
    #[error(
        "the guest did not finish within {secs} s (accelerator {accel}){advice}; the console log is in {console}",
        accel = accel.name(),
        advice = timeout_advice(*accel),
        console = console.display()
    )]
    Timeout { secs: u64, accel: Accel, console: PathBuf },
    /// The workload ran and returned `ExitCode::Failure`.
    #[error("the workload reported failure{last}; the guest console is in {console}", last = last_line(console))]
    WorkloadFailed { console: PathBuf },
    #[error("the guest exited without confirming that it accepted the credential")]
    NotConfirmed,
}

/// The workload's last console line (what it said before failing), as `: LINE`.
fn last_line(console: &std::path::Path) -> String {
    let text = std::fs::read_to_string(console).unwrap_or_default();
    let line = text.lines().rev().map(str::trim).find(|l| !l.is_empty() && !l.starts_with("heap:"));
    line.map(|l| format!(": {l}")).unwrap_or_default()
}

/// What to try when a guest ran out of time under `accel`.
fn timeout_advice(accel: Accel) -> &'static str {
    match accel {
        // A nested, paravirtualised /dev/kvm runs firmware code about 1000x slower than TCG.
        Accel::Kvm => {
            ": under --accel kvm some machines (a nested, paravirtualised KVM) run firmware far slower than TCG; try --accel tcg, or --accel auto to measure which is faster here"
        }
        Accel::Tcg => "",
    }
}

impl Machine {
    fn accel(&self) -> Accel {
        match self {
            Self::SimSnp { accel, .. } | Self::SimTdx { accel } => *accel,
            Self::Hardware(_) => Accel::Kvm,
        }
    }

    /// QEMU's arguments, with the files it plants written into `workspace`.
    fn qemu_args(
        &self,
        image: &std::path::Path,
        workspace: &Workspace,
        ram: &GuestRam,
    ) -> Result<Vec<String>, VmError> {
        let socket = workspace.socket();
        Ok(match self {
            Self::Hardware(profile) => profile.qemu_args(image, &socket, ram),
            Self::SimTdx { accel } => {
                let page = workspace.path("sim-td-page.bin");
                std::fs::write(&page, qemu::sim_td_page())
                    .map_err(|e| VmError::Io(format!("cannot write {}", page.display()), e))?;
                qemu::sim_tdx_args(*accel, image, &socket, ram, &page)
            }
            Self::SimSnp { accel, secrets_page } => {
                let page = workspace.path("secrets-page.bin");
                twi_sim::state::write_private(&page, secrets_page).map_err(|e| VmError::Channel(e.to_string()))?;
                qemu::sim_args(*accel, image, &socket, ram, Some(&page))
            }
        })
    }
}

/// Boots the launch and bridges its channel until the guest exits or the deadline passes.
pub fn run(launch: &Launch, mut bridge: Bridge<'_>) -> Result<Success, RunError> {
    let started = Instant::now();
    let mut workspace = Workspace::new()?;
    let ring_file = match launch.transport {
        Transport::Serial => None,
        Transport::Ring => Some(workspace.ram_file(launch.memory.0)?),
    };
    let mut ring = ring_file.as_deref().map(|file| HostRing::open(file, launch.tamper_ring)).transpose()?;
    let ram = GuestRam { size: launch.memory, ring_file };
    let args = launch.machine.qemu_args(&launch.image, &workspace, &ram)?;
    let mut dump = launch.channel_dump.as_deref().map(ChannelDump::create).transpose()?;
    let mut vm = Vm::start(&launch.qemu, &args, workspace, launch.out.path(), launch.timeout)?;
    // While QEMU starts and the guest boots (tens of milliseconds before its first message).
    bridge.prepare();
    let mut status = None;
    if let Some(mut stream) = vm.accept()? {
        status = vm.relay(&mut stream, ring.as_mut(), |bytes| {
            let reply = relay(&mut bridge, &launch.out, bytes)?;
            if let Some(dump) = dump.as_mut() {
                dump.record(bytes, &reply)?;
            }
            Ok(reply)
        })?;
    }
    if status.is_none() {
        status = vm.wait()?;
    }
    let exited = Instant::now();
    let mut exit = vm.finish(status);
    let outcome = bridge.into_outcome();
    let Some(status) = exit.status else {
        let console = launch.out.join(crate::vm::console::LOG);
        return Err(RunError::Timeout { secs: launch.timeout.as_secs(), accel: launch.machine.accel(), console });
    };
    if let Some(reason) = outcome.failure {
        return Err(RunError::Refused(reason));
    }
    if status.code() != Some(GUEST_SUCCESS_STATUS) {
        if let Some(fatal) = exit.fatal.take() {
            return Err(RunError::GuestFailed(fatal));
        }
        if status.code() == Some(GUEST_FAILURE_STATUS) && outcome.accepted {
            return Err(RunError::WorkloadFailed { console: launch.out.join(crate::vm::console::LOG) });
        }
        let stderr = exit.qemu_stderr();
        let hint = match (&launch.machine, outcome.challenged) {
            (Machine::Hardware(profile), false) => format!(" ({})", profile.host_requirement()),
            _ => String::new(),
        };
        let stderr = if stderr.trim().is_empty() { String::new() } else { format!(": {}", stderr.trim()) };
        return Err(RunError::QemuExited { status, stderr, hint });
    }
    if outcome.issued.is_some() && !outcome.accepted {
        return Err(RunError::NotConfirmed);
    }
    let timeline = outcome.timeline.to_json(started, exited);
    let time_went = outcome.timeline.phases(started, exited).map(|p| p.summary());
    Ok(Success { issued: outcome.issued, elapsed: started.elapsed(), timeline, time_went })
}

/// One read from the channel through the bridge: its progress shown, its records kept.
fn relay(bridge: &mut Bridge<'_>, out: &OutDir, bytes: &[u8]) -> Result<Vec<u8>, VmError> {
    let (reply, events) = bridge.feed(bytes).map_err(|e| VmError::Channel(e.to_string()))?;
    for event in events {
        let kept = match event {
            Event::Progress(line) => {
                eprintln!("twi: {line}");
                Ok(())
            }
            Event::Evidence(evidence) => out.evidence(&evidence),
            Event::KeyRelease(released, ephemeral) => out.key_release(&released, &ephemeral),
            Event::CredentialRequest(request) => out.credential_request(&request),
        };
        kept.map_err(|e| VmError::Channel(e.to_string()))?;
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run out of time under KVM says what to try; under TCG there is nothing to switch to.
    #[test]
    fn a_kvm_timeout_suggests_tcg_and_auto() {
        let kvm = RunError::Timeout { secs: 20, accel: Accel::Kvm, console: "out/console.log".into() }.to_string();
        assert!(kvm.starts_with("the guest did not finish within 20 s (accelerator kvm): "), "{kvm}");
        assert!(
            kvm.contains("try --accel tcg, or --accel auto") && kvm.ends_with("the console log is in out/console.log"),
            "{kvm}"
        );
        let tcg = RunError::Timeout { secs: 20, accel: Accel::Tcg, console: "c.log".into() }.to_string();
        assert_eq!(tcg, "the guest did not finish within 20 s (accelerator tcg); the console log is in c.log");
    }
}
