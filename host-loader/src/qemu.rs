//! Launching QEMU for the `sim` platform, and choosing its accelerator.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

pub const QEMU_BINARY: &str = "qemu-system-x86_64";
/// The guest's RAM unless `twi run --memory` says otherwise: the runtime's layout needs 14 MiB
/// (`twi_linker::MIN_RAM_BYTES`; the whole flow runs in `-m 16M`); the rest is headroom.
pub const DEFAULT_MEMORY: MemorySize = MemorySize(128 << 20);

/// A guest RAM size, as `-m` takes it: a number of MiB, or with a suffix `K`, `M`, `G`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemorySize(pub u64);

impl MemorySize {
    /// As `-m` and memory backends take it (whole MiB).
    pub fn qemu(self) -> String {
        format!("{}M", self.0 >> 20)
    }
}

impl std::str::FromStr for MemorySize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a memory size: give MiB as a number or with a suffix (16M, 1G)");
        let (digits, shift) = match s.trim().char_indices().last() {
            Some((i, 'K' | 'k')) => (&s[..i], 10),
            Some((i, 'M' | 'm')) => (&s[..i], 20),
            Some((i, 'G' | 'g')) => (&s[..i], 30),
            _ => (s.trim(), 20),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        let bytes = n.checked_mul(1 << shift).filter(|&b| b > 0 && b % (1 << 20) == 0 && b <= 1 << 40);
        bytes.map(MemorySize).ok_or_else(|| format!("{}: whole MiB from 1M to 1024G", bad()))
    }
}

/// The guest's RAM: its size and, when the channel runs on the shared-memory ring, the file
/// QEMU backs it with (the loader reads the ring from it) and the fw_cfg offer the runtime
/// looks for (`twi_proto::ring::FW_CFG_OFFER`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestRam {
    pub size: MemorySize,
    pub ring_file: Option<PathBuf>,
}

impl GuestRam {
    /// `size` of RAM, the channel on COM2.
    pub fn serial(size: MemorySize) -> Self {
        Self { size, ring_file: None }
    }
}
/// QEMU's exit status when the runtime writes ExitCode::Success (0x10) to isa-debug-exit.
pub const GUEST_SUCCESS_STATUS: i32 = (0x10 << 1) | 1;
/// QEMU's exit status when the guest reports failure (`isa-debug-exit` value 0x11).
pub const GUEST_FAILURE_STATUS: i32 = (0x11 << 1) | 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AccelChoice {
    /// Measure which is faster here (cached per machine).
    Auto,
    Kvm,
    Tcg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Self::Kvm => "kvm",
            Self::Tcg => "tcg",
        }
    }

    /// TCG needs `-cpu max` for RDRAND; under KVM `host` passes the real CPU through.
    fn cpu(self) -> &'static str {
        match self {
            Self::Kvm => "host",
            Self::Tcg => "max",
        }
    }
}

/// The QEMU binary on PATH, or a sentence saying how to install it.
pub fn find_qemu() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("TWI_QEMU") {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("TWI_QEMU names {}, which does not exist", path.display());
        }
        return Ok(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(QEMU_BINARY);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "{QEMU_BINARY} is not installed: on Debian run `sudo apt-get install qemu-system-x86` (or `scripts/setup` from this repository), or set TWI_QEMU to its path"
    )
}

/// The arguments for the `sim` platform: q35, the ROM as `-bios`, COM1 on stdout (console),
/// COM2 on the unix socket `channel` (the CBOR channel), isa-debug-exit for the exit status,
/// and the simulated PSP's secrets page loaded at its guest-physical address (QEMU's generic
/// loader writes the file into guest RAM before the first instruction, as the PSP would).
pub fn sim_args(accel: Accel, rom: &Path, channel: &Path, ram: &GuestRam, secrets_page: Option<&Path>) -> Vec<String> {
    let machine = match ram.ring_file {
        Some(_) => "q35,memory-backend=twi-ram",
        None => "q35",
    };
    let mut args: Vec<String> =
        ["-machine", machine, "-accel", accel.name(), "-cpu", accel.cpu()].iter().map(|s| s.to_string()).collect();
    if let Some(file) = &ram.ring_file {
        args.extend(ring_ram("twi-ram", ram.size, file));
    }
    args.extend(common_devices(channel, ram.size));
    if let Some(page) = secrets_page {
        args.push("-device".into());
        args.push(format!("loader,file={},addr={:#x},force-raw=on", page.display(), twi_linker::SNP_SECRETS_PAGE));
    }
    args.push("-bios".into());
    args.push(rom.display().to_string());
    args
}

/// The `sim-tdx` platform: as [`sim_args`], but instead of the SEV-SNP secrets page QEMU's
/// loader plants the simulated-TD page (`twi_linker::SIM_TD_PAGE`) that tells the runtime its
/// TDX module is simulated over the channel.
pub fn sim_tdx_args(accel: Accel, rom: &Path, channel: &Path, ram: &GuestRam, td_page: &Path) -> Vec<String> {
    let mut args = sim_args(accel, rom, channel, ram, None);
    let bios_at = args.iter().position(|a| a == "-bios").unwrap_or(args.len());
    args.splice(
        bios_at..bios_at,
        [
            "-device".to_string(),
            format!("loader,file={},addr={:#x},force-raw=on", td_page.display(), twi_linker::SIM_TD_PAGE),
        ],
    );
    args
}

/// The simulated-TD page: [`twi_linker::SIM_TD_MAGIC`], then zeros.
pub fn sim_td_page() -> Vec<u8> {
    let mut page = vec![0u8; 4096];
    page[..twi_linker::SIM_TD_MAGIC.len()].copy_from_slice(&twi_linker::SIM_TD_MAGIC);
    page
}

/// Shell-quoted command line, for `--print-qemu` and error messages.
pub fn command_line(qemu: &Path, args: &[String]) -> String {
    let quote = |s: &str| {
        if s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=,".contains(c)) {
            s.to_string()
        } else {
            format!("'{s}'")
        }
    };
    std::iter::once(qemu.display().to_string()).chain(args.iter().map(|a| quote(a))).collect::<Vec<_>>().join(" ")
}

/// Runs `rom` in self-test mode (it exits right after key generation and a signature) under
/// `accel`, and returns how long QEMU took, or `None` if it failed or exceeded `budget`.
pub fn time_self_test(qemu: &Path, accel: Accel, rom: &Path, budget: Duration) -> Option<Duration> {
    let mut args = sim_args(accel, rom, Path::new("/dev/null"), &GuestRam::serial(DEFAULT_MEMORY), None);
    // No channel in self-test mode: drop the COM2 chardev (its last four arguments before -bios).
    let bios_at = args.iter().position(|a| a == "-bios")?;
    args.drain(bios_at - 4..bios_at);
    let start = Instant::now();
    let mut child =
        Command::new(qemu).args(&args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().ok()?;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return (status.code() == Some(GUEST_SUCCESS_STATUS)).then(|| start.elapsed());
            }
            Ok(None) if start.elapsed() < budget => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// The SEV-SNP launch a profile describes (what the reference values were computed for).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnpProfile {
    pub vcpus: u32,
    /// QEMU `-cpu` model, e.g. "EPYC-v4".
    pub cpu_type: String,
    pub policy: u64,
}

/// The console, channel and exit device every profile shares with `sim`.
fn common_devices(channel: &Path, memory: MemorySize) -> Vec<String> {
    let mut args: Vec<String> = vec!["-m".into(), memory.qemu()];
    args.extend(
        [
            "-display",
            "none",
            "-monitor",
            "none",
            "-nodefaults",
            "-no-reboot",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-chardev",
            "stdio,id=console,signal=off",
            "-serial",
            "chardev:console",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    args.push("-chardev".into());
    args.push(format!("socket,id=channel,path={}", channel.display()));
    args.push("-serial".into());
    args.push("chardev:channel".into());
    args
}

/// RAM `id` backed by `file`, shared with the loader (which reads the channel ring's pages from
/// it), and the fw_cfg offer the runtime looks for before it takes the ring
/// (`twi_proto::ring::FW_CFG_OFFER`). Under SEV-SNP and TDX the file holds only what the guest
/// shares (its private pages are in KVM's guest_memfd): the ring lives in the shared pool.
fn ring_ram(id: &str, size: MemorySize, file: &Path) -> Vec<String> {
    vec![
        "-object".into(),
        format!("memory-backend-file,id={id},size={},mem-path={},share=on", size.qemu(), file.display()),
        "-fw_cfg".into(),
        format!("name={},string=1", twi_proto::ring::FW_CFG_OFFER),
    ]
}

/// `sev-snp-guest` with private memory (QEMU ≥ 9.1, an SEV-SNP host), its shared RAM `ram1` in
/// a memfd, or with the ring in the file the loader reads. `cbitpos=51` and
/// `reduced-phys-bits=1` are those of EPYC Milan and Genoa hosts (CPUID 0x8000_001F EBX).
fn snp_object(p: &SnpProfile, ram: &GuestRam) -> Vec<String> {
    let mut args = match &ram.ring_file {
        Some(file) => ring_ram("ram1", ram.size, file),
        None => vec![
            "-object".into(),
            format!("memory-backend-memfd,id=ram1,size={},share=true,prealloc=false", ram.size.qemu()),
        ],
    };
    args.push("-object".into());
    args.push(format!("sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1,policy={:#x}", p.policy));
    args
}

/// The `snp` profile: the ROM as `-bios` of an SEV-SNP guest under KVM. The measurement of
/// this launch is the `snp.launch_digest` of `reference-values.json` for the same vCPUs, model
/// and policy (QEMU ≥ 9.1 launches with SEV_FEATURES = SNP_ACTIVE, guest features 0x1).
pub fn snp_args(rom: &Path, channel: &Path, p: &SnpProfile, ram: &GuestRam) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "-machine".into(),
        "q35,confidential-guest-support=sev0,memory-backend=ram1".into(),
        "-accel".into(),
        "kvm".into(),
        "-cpu".into(),
        p.cpu_type.clone(),
        "-smp".into(),
        p.vcpus.to_string(),
    ];
    args.extend(snp_object(p, ram));
    args.extend(common_devices(channel, ram.size));
    args.push("-bios".into());
    args.push(rom.display().to_string());
    args
}

/// The `tdx` profile (QEMU ≥ 10.1, a TDX host, Linux ≥ 6.16): the ROM as `-bios` of a TD, with
/// a quote-generation socket to the host's QGS on vsock port 4050. Its MRTD is `tdx.mrtd` of
/// `reference-values.json`.
pub fn tdx_args(rom: &Path, channel: &Path, ram: &GuestRam) -> Vec<String> {
    let machine = match ram.ring_file {
        Some(_) => "q35,kernel-irqchip=split,confidential-guest-support=tdx0,memory-backend=twi-ram",
        None => "q35,kernel-irqchip=split,confidential-guest-support=tdx0",
    };
    let mut args: Vec<String> = vec![
        "-machine".into(),
        machine.into(),
        "-accel".into(),
        "kvm".into(),
        "-cpu".into(),
        "host".into(),
        "-object".into(),
        r#"{"qom-type":"tdx-guest","id":"tdx0","quote-generation-socket":{"type":"vsock","cid":"2","port":"4050"}}"#
            .into(),
    ];
    if let Some(file) = &ram.ring_file {
        args.extend(ring_ram("twi-ram", ram.size, file));
    }
    args.extend(common_devices(channel, ram.size));
    args.push("-bios".into());
    args.push(rom.display().to_string());
    args
}

/// The `igvm` profile: `twi.igvm` loaded by QEMU's IGVM loader (QEMU ≥ 10.0 built with
/// `--enable-igvm`) into an SEV-SNP guest; no `-bios`. Its measurement is
/// `igvm.snp_launch_digest` of `reference-values.json`.
pub fn igvm_args(igvm: &Path, channel: &Path, p: &SnpProfile, ram: &GuestRam) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "-object".into(),
        format!("igvm-cfg,id=igvm0,file={}", igvm.display()),
        "-machine".into(),
        "q35,confidential-guest-support=sev0,memory-backend=ram1,igvm-cfg=igvm0".into(),
        "-accel".into(),
        "kvm".into(),
        "-cpu".into(),
        p.cpu_type.clone(),
        "-smp".into(),
        p.vcpus.to_string(),
    ];
    args.extend(snp_object(p, ram));
    args.extend(common_devices(channel, ram.size));
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_parse_as_qemu_takes_them() {
        for (text, mib) in [("16M", 16), ("16", 16), ("16m", 16), ("1G", 1024), ("32768K", 32), ("128M", 128)] {
            assert_eq!(text.parse::<MemorySize>(), Ok(MemorySize(mib << 20)), "{text}");
            assert_eq!(MemorySize(mib << 20).qemu(), format!("{mib}M"));
        }
        for bad in ["", "M", "16Q", "-1M", "0", "1000K", "2000G", "1.5G"] {
            let error = bad.parse::<MemorySize>().unwrap_err();
            assert!(error.contains("is not a memory size") || error.contains("whole MiB"), "{bad}: {error}");
        }
    }

    #[test]
    fn the_ring_backs_ram_with_the_file_and_offers_itself_by_fw_cfg() {
        let ram = GuestRam { size: MemorySize(16 << 20), ring_file: Some("/dev/shm/x/guest-ram".into()) };
        let args = sim_args(Accel::Tcg, Path::new("twi.rom"), Path::new("c.sock"), &ram, None).join(" ");
        assert!(args.starts_with("-machine q35,memory-backend=twi-ram -accel tcg -cpu max"), "{args}");
        assert!(
            args.contains("-object memory-backend-file,id=twi-ram,size=16M,mem-path=/dev/shm/x/guest-ram,share=on")
        );
        assert!(args.contains("-fw_cfg name=opt/twi/ring,string=1") && args.contains("-m 16M"), "{args}");
        let serial =
            sim_args(Accel::Tcg, Path::new("twi.rom"), Path::new("c.sock"), &GuestRam::serial(DEFAULT_MEMORY), None);
        let serial = serial.join(" ");
        assert!(
            !serial.contains("memory-backend") && !serial.contains("fw_cfg") && serial.contains("-m 128M"),
            "{serial}"
        );
    }

    /// `--channel ring` on the hardware profiles: RAM in the file the loader reads (shared, the
    /// machine's backend) and the offer; without it, the profiles as before (SNP's RAM in a
    /// memfd, TDX's QEMU's own).
    #[test]
    fn the_hardware_profiles_take_the_ring_when_asked() {
        let ring = GuestRam { size: MemorySize(64 << 20), ring_file: Some("/dev/shm/x/guest-ram".into()) };
        let serial = GuestRam::serial(MemorySize(64 << 20));
        let (rom, sock) = (Path::new("twi.rom"), Path::new("c.sock"));
        let p = SnpProfile { vcpus: 1, cpu_type: "EPYC-v4".into(), policy: 0x30000 };
        let file = "memory-backend-file,id={id},size=64M,mem-path=/dev/shm/x/guest-ram,share=on";
        let offer = "-fw_cfg name=opt/twi/ring,string=1";
        for args in [snp_args(rom, sock, &p, &ring), igvm_args(Path::new("twi.igvm"), sock, &p, &ring)] {
            let args = args.join(" ");
            assert!(args.contains(&file.replace("{id}", "ram1")) && args.contains(offer), "{args}");
            assert!(args.contains("memory-backend=ram1") && !args.contains("memfd"), "{args}");
        }
        let args = tdx_args(rom, sock, &ring).join(" ");
        assert!(args.contains("confidential-guest-support=tdx0,memory-backend=twi-ram"), "{args}");
        assert!(args.contains(&file.replace("{id}", "twi-ram")) && args.contains(offer), "{args}");
        let snp = snp_args(rom, sock, &p, &serial).join(" ");
        assert!(snp.contains("memory-backend-memfd,id=ram1,size=64M,share=true") && !snp.contains("fw_cfg"), "{snp}");
        let tdx = tdx_args(rom, sock, &serial).join(" ");
        assert!(!tdx.contains("memory-backend") && !tdx.contains("fw_cfg"), "{tdx}");
    }
}
