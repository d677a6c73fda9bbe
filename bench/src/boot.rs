//! Cold start: `twi run` (QEMU launch → credential written) beside two references measured in the
//! same loop, interleaved: QEMU with the same flags and a ROM that exits at its reset vector (the
//! floor no firmware can beat), and OVMF from its launch to its first serial byte.

use std::io::Read;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::stats::{Samples, figure, section};
use crate::twi::{Twi, last_line};

/// OVMF as Debian's `ovmf` package installs it.
const OVMF: [&str; 2] = ["/usr/share/ovmf/OVMF.fd", "/usr/share/OVMF/OVMF_CODE.fd"];

/// A 64 KiB ROM whose reset vector writes 0x10 to isa-debug-exit (QEMU exits 33 at once).
fn floor_rom() -> Vec<u8> {
    let mut rom = vec![0xF4u8; 64 * 1024];
    // mov eax, 0x10 ; out 0xF4, eax ; hlt — 16-bit real mode, operand-size prefixes.
    let code = [0x66, 0xB8, 0x10, 0, 0, 0, 0x66, 0xE7, 0xF4, 0xF4];
    rom[0xFFF0..0xFFF0 + code.len()].copy_from_slice(&code);
    rom
}

/// QEMU's arguments for the floor ROM: the sim profile's flags as `twi run --print-qemu` prints
/// them, with the per-run placeholders made real in `dir`.
fn floor_args(twi: &Twi, rom: &Path, dir: &Path) -> Result<(PathBuf, Vec<String>)> {
    let out = twi
        .command()
        .args(["run", "--platform", "sim", "--print-qemu", "--image"])
        .arg(rom)
        .arg("--state")
        .arg(&twi.state)
        .arg("--out")
        .arg(dir.join("print"))
        .output()?;
    let line = String::from_utf8(out.stdout)?;
    let mut words = line.split_whitespace().map(str::to_string);
    let qemu = PathBuf::from(words.next().context("twi run --print-qemu printed nothing")?);
    let floor = dir.join("floor.rom");
    std::fs::write(&floor, floor_rom())?;
    std::fs::write(dir.join("secrets.bin"), [0u8; 4096])?;
    std::fs::File::create(dir.join("ram.bin"))?.set_len(128 << 20)?;
    let subst = |w: String| {
        w.replace(&rom.display().to_string(), &floor.display().to_string())
            .replace("CHANNEL.sock", &dir.join("channel.sock").display().to_string())
            .replace("GUEST-RAM.bin", &dir.join("ram.bin").display().to_string())
            .replace("SECRETS-PAGE.bin", &dir.join("secrets.bin").display().to_string())
    };
    Ok((qemu, words.map(subst).collect()))
}

/// One floor boot: QEMU start → exit, with a listener for its channel socket.
fn time_floor(qemu: &Path, args: &[String], dir: &Path) -> Result<f64> {
    let socket = dir.join("channel.sock");
    let _ = std::fs::remove_file(&socket);
    let _listener = UnixListener::bind(&socket)?;
    let start = Instant::now();
    let status = Command::new(qemu).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status()?;
    if status.code() != Some(33) {
        bail!("the floor ROM did not exit through isa-debug-exit ({status})");
    }
    Ok(start.elapsed().as_secs_f64() * 1e3)
}

/// One OVMF boot: QEMU start → the first byte on its serial port; `None` without OVMF.
fn time_ovmf(qemu: &Path) -> Result<Option<f64>> {
    let Some(ovmf) = OVMF.iter().find(|p| Path::new(p).is_file()) else { return Ok(None) };
    let start = Instant::now();
    let mut child = Command::new(qemu)
        .args(["-machine", "q35", "-accel", "tcg", "-cpu", "max", "-m", "128M", "-display", "none"])
        .args(["-monitor", "none", "-nodefaults", "-no-reboot", "-serial", "stdio", "-bios", ovmf])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut byte = [0u8; 1];
    let got = child.stdout.as_mut().map(|s| s.read(&mut byte));
    let elapsed = start.elapsed().as_secs_f64() * 1e3;
    let _ = child.kill();
    let _ = child.wait();
    Ok(matches!(got, Some(Ok(1))).then_some(elapsed))
}

pub fn cold_start(twi: &Twi, rom: &Path, runs: usize) -> Result<()> {
    section("cold start: QEMU launch -> credential (twi run --platform sim, TCG), interleaved with its references");
    let dir = twi.dir.join("floor");
    std::fs::create_dir_all(&dir)?;
    let (qemu, args) = floor_args(twi, rom, &dir)?;
    let (mut reported, mut wall, mut serial, mut floor, mut ovmf) =
        (Samples::default(), Samples::default(), Samples::default(), Samples::default(), Samples::default());
    // Each run against the reference runs beside it: a machine whose speed drifts during the
    // section (a shared host) moves both alike, where the ratio of medians mixes moments.
    let (mut per_floor, mut per_ovmf) = (Samples::default(), Samples::default());
    let mut phases = crate::timeline::Phases::default();
    for i in 0..runs {
        let run = twi.run(rom, &format!("cold-{i}"), &[])?;
        if !run.ok {
            bail!("twi run failed: {}", last_line(&run.stderr));
        }
        let ring_ms = run.reported_ms;
        phases.add(&run.timeline);
        reported.extend(ring_ms);
        wall.push(run.wall_ms);
        let floor_ms = time_floor(&qemu, &args, &dir)?;
        floor.push(floor_ms);
        per_floor.extend(ring_ms.map(|ms| ms / floor_ms));
        // A `twi` older than the ring has no --channel: then this figure has no samples.
        let over_serial = twi.run(rom, &format!("cold-serial-{i}"), &["--channel", "serial"])?;
        serial.extend(over_serial.reported_ms.filter(|_| over_serial.ok));
        if let Some(ms) = time_ovmf(&qemu)? {
            ovmf.push(ms);
            per_ovmf.extend(ring_ms.map(|ring| ring / ms));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    figure("twi run: QEMU launch -> credential (ring)", "ms", &reported, Some(("floor ROM, same flags", &floor)));
    if ovmf.0.is_empty() {
        say!("{:<44} OVMF is not installed (Debian package ovmf; qemu/install-deps installs it)", "");
    } else {
        figure(
            "twi run: QEMU launch -> credential (ring)",
            "ms",
            &reported,
            Some(("OVMF -> first serial byte", &ovmf)),
        );
    }
    figure("  the same, each run / the floor run beside it", "x", &per_floor, None);
    if !per_ovmf.0.is_empty() {
        figure("  the same, each run / the OVMF run beside it", "x", &per_ovmf, None);
    }
    say!("where it goes (each run's timeline.json: when each message crossed the bridge):");
    phases.print(&floor);
    figure("twi run: the same over the 16550 fallback", "ms", &serial, Some(("ring", &reported)));
    figure("twi run: whole process (build checks, exit)", "ms", &wall, Some(("floor ROM, same flags", &floor)));
    Ok(())
}
