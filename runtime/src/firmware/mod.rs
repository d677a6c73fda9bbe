//! The firmware: from the boot stub's call to the workload's exit, wiring the platform to the
//! TEE backend and the session. Bare-metal only; generic code (no `unsafe`): the machine is
//! reached through `crate::platform`.
//!
//! 1. Bring the platform up ([`platform::start`] chooses it once), the console, the TSC.
//! 2. Memory, the hardware RNG, the measured launch manifest (a private copy of its ROM slot).
//! 3. The Credential Key, generated in the vault and checked with a pairwise test.
//! 4. The TEE backend for what the platform is: SEV-SNP or TDX on hardware, or the simulated
//!    PSP / TDX module over the channel on a plain VM.
//! 5. The workload (a `twi_payload::Main`), with a [`Launch`] as its `twi_payload::Runtime`;
//!    its exit code ends the VM.
//!
//! A binary links this with [`crate::entry!`], naming its workload.

mod keys;
mod launch;
mod relay;

use alloc::vec::Vec;

use twi_payload::{ExitCode as WorkloadExit, Main};
use twi_proto::ProtoError;
use twi_proto::manifest::{Diagnostic, LaunchManifest};
use twi_proto::msg::Platform;

pub use launch::Launch;

use crate::channel::Channel;
use crate::layout::{FRAMES, MIN_RAM_BYTES, SIM_TD_PAGE, SNP_SECRETS_PAGE};
use crate::log;
use crate::memory_map;
use crate::pairwise::TestedKey;
use crate::platform::boot::BootInfo;
use crate::platform::hal::{ExitCode, exit};
use crate::platform::{self, Kind, cmos, console, cpu, fw_cfg, idt, launch as launch_pages, memory, rng::HwRng, time};
use crate::session::Event;
use crate::tee::hw::{GhcbDoorbell, TdcallModule};
use crate::tee::sim::{SimSnpDoorbell, SimTdxModule};
use crate::tee::sim_svsm::SimSvsm;
use crate::tee::snp::{SnpDoorbell, SnpError, SnpGuest, SnpTee};
use crate::tee::tdx::{RTMR_ISSUER_ANCHOR, RTMR_MANIFEST, TdxModule, TdxTee};
use crate::tee::{Certificates, Measurement, Tee};
use crate::vault::Vault;
use twi_attester::snp::secrets::SvsmInfo;
use twi_attester::svsm::call::protocol as svsm_protocol;
use twi_attester::svsm::core::PvalidateEntry;

/// The runtime's name and version, as the Hello announces it.
pub const RUNTIME_NAME: &str = concat!("twi-runtime/", env!("CARGO_PKG_VERSION"));

/// The Credential Key's home: its own page-aligned section of private RAM.
#[unsafe(link_section = ".bss.vault")]
static VAULT: Vault = Vault::new();

/// The VMPCK's home (inside the SNP guest's requester): the vault's pages too.
#[unsafe(link_section = ".bss.vault")]
static SNP_GUEST: spin::Mutex<GuestSlot> = spin::Mutex::new(GuestSlot::Empty);

/// [`SNP_GUEST`]'s content: an `Option` whose empty state is all-zero (tag 0), as `.bss.vault`
/// requires (`Option<SnpGuest>`'s `None` is not).
#[repr(u8)]
enum GuestSlot {
    Empty = 0,
    Held(SnpGuest) = 1,
}

impl GuestSlot {
    fn as_mut(&mut self) -> Option<&mut SnpGuest> {
        match self {
            Self::Held(guest) => Some(guest),
            Self::Empty => None,
        }
    }
}

/// The channel's byte pipe: the shared-memory ring, or COM2 (`crate::transport`; the name is
/// older than the ring).
pub type SerialLink = crate::transport::HostLink;

/// The built-in workload: acquire the credential for the manifest's target (or the default
/// one), with the manifest's hint if it names one, checked against the issuer anchor and sealed
/// to the launch where the platform can; exit.
pub fn acquire_and_exit(rt: &mut dyn twi_payload::Runtime) -> WorkloadExit {
    let setting = |rt: &dyn twi_payload::Runtime, key| {
        rt.setting(key).and_then(|v| core::str::from_utf8(v).ok()).map(alloc::string::String::from)
    };
    let target = setting(rt, "target").unwrap_or_else(|| launch::DEFAULT_TARGET.into());
    let hint = setting(rt, "hint");
    match rt.acquire(&target, twi_payload::CredentialType::X509, hint.as_deref()) {
        Ok(_) => WorkloadExit::Success,
        Err(e) => {
            console::write_line_unlocked(format_args!("FATAL: {e}"));
            WorkloadExit::Failure
        }
    }
}

fn fatal(what: core::fmt::Arguments<'_>) -> ! {
    console::write_line_unlocked(format_args!("FATAL: {what}"));
    exit(ExitCode::Failure)
}

/// What boot leaves for the rest of the start.
struct Booted {
    kind: Kind,
    /// 0 until the first key is made (the PIT measures the TSC meanwhile: [`time::Calibration`]).
    tsc_hz: u64,
    reset_tsc: u64,
    /// The TSC at the Rust entry (for the boot figure, logged once the TSC's rate is known).
    entry_tsc: u64,
    /// SEV-SNP: the C-bit position (for the console).
    c_bit: u32,
    rng: HwRng,
    manifest: LaunchManifest,
}

/// From the boot stub to a first key in the vault (steps 1–3), then the workload.
pub fn start(workload: Main) -> ! {
    let (mut booted, calibration) = boot();
    let first_key = generate_key(&mut booted, calibration);
    if booted.manifest.diagnostic == Diagnostic::SelfTest {
        log!("self-test image: done in {} us since reset", time::micros(booted.tsc_hz, booted.reset_tsc, cpu::rdtsc()));
        exit(ExitCode::Success)
    }
    if booted.kind == Kind::Native && platform::vc_seen() {
        fatal(format_args!("a #VC was raised, yet SEV_STATUS said this is not an SEV-SNP guest"))
    }
    let on_malformed = |e: &ProtoError| log!("malformed frame from the host: {e}");
    let link = SerialLink::open();
    log!("channel: {}", link.describe());
    let channel = Channel::new(link, &on_malformed);
    let code = match run_on_tee(&mut booted, &channel, workload, first_key) {
        WorkloadExit::Success => ExitCode::Success,
        WorkloadExit::Failure => ExitCode::Failure,
    };
    finish(code, booted.tsc_hz, booted.reset_tsc)
}

fn boot() -> (Booted, time::Calibration) {
    let entry_tsc = cpu::rdtsc();
    let boot = BootInfo::read();
    idt::init();
    let kind = platform::start(&boot);
    console::init();
    let calibration = time::begin_calibration();
    log!("{RUNTIME_NAME} booted");
    check_ram();
    memory::init();
    let Some(rng) = HwRng::new() else {
        fatal(format_args!(
            "the CPU has no RDRAND (under QEMU TCG use -cpu max): refusing to run without a hardware RNG"
        ))
    };
    let manifest =
        LaunchManifest::from_slot(&launch_pages::manifest_slot()).unwrap_or_else(|e| fatal(format_args!("{e}")));
    if manifest.diagnostic == Diagnostic::Fault {
        log!("diagnostic image: raising #UD to exercise the fault handler");
        cpu::raise_invalid_opcode();
    }
    log!("issuer anchor: {}", manifest.issuer_name);
    let booted = Booted { kind, tsc_hz: 0, reset_tsc: boot.reset_tsc, entry_tsc, c_bit: boot.c_bit, rng, manifest };
    (booted, calibration)
}

/// The TSC's rate, measured while the runtime booted and made its first key; logs it with the
/// time from the reset vector to the Rust entry.
fn calibrated(calibration: time::Calibration, reset_tsc: u64, entry_tsc: u64) -> u64 {
    let (tsc_hz, tsc_source) = time::finish_calibration(calibration);
    log!(
        "boot: reset vector -> rust entry {} us (TSC {} MHz from {})",
        time::micros(tsc_hz, reset_tsc, entry_tsc),
        tsc_hz / 1_000_000,
        tsc_source.name()
    );
    tsc_hz
}

/// Refuses to start, with a sentence, when RAM cannot hold the layout (`memory_map`): from
/// fw_cfg's e820 table, else the CMOS (which says nothing at 16 MiB and below), else unknown.
fn check_ram() {
    let needed = 0..MIN_RAM_BYTES;
    let (ram, source) = match fw_cfg::ram_from_zero() {
        Ok(end) => (Some(end), "fw_cfg etc/e820"),
        Err(e) => {
            log!("no RAM size from fw_cfg ({e}): trying the CMOS");
            (cmos::low_ram_bytes(), "CMOS")
        }
    };
    let Some(ram) = ram else {
        log!("RAM size unknown (no fw_cfg e820 table, nothing in the CMOS): assuming the layout fits");
        return;
    };
    if let Err(have) = memory_map::check(ram, needed) {
        fatal(format_args!(
            "too little RAM: {} KiB from address 0 ({source}), the runtime needs {} MiB; run QEMU with -m {}M or more",
            have >> 10,
            MIN_RAM_BYTES >> 20,
            MIN_RAM_BYTES.div_ceil(1 << 20)
        ))
    }
    log!("RAM: {} MiB from address 0 ({source})", ram >> 20);
}

/// Generates the first signing key in the vault (the first acquisition's); reads the TSC's
/// rate the PIT measured meanwhile (the boot and the key generation: about 20 ms under TCG,
/// well within the PIT's 54.9 ms); runs the pairwise consistency test; logs how long each took.
fn generate_key(booted: &mut Booted, calibration: time::Calibration) -> TestedKey {
    let t0 = cpu::rdtsc();
    let (key, _) = VAULT
        .generate(&mut booted.rng)
        .unwrap_or_else(|e| fatal(format_args!("Credential Key generation failed: {e}")));
    let t1 = cpu::rdtsc();
    booted.tsc_hz = calibrated(calibration, booted.reset_tsc, booted.entry_tsc);
    let t2 = cpu::rdtsc();
    let Some(tested) = TestedKey::test(&VAULT, key) else {
        fatal(format_args!("the Credential Key failed its pairwise consistency test"))
    };
    let (hz, t3) = (booted.tsc_hz, cpu::rdtsc());
    log!("key generated: P-384 keygen {} us, sign {} us", time::micros(hz, t0, t1), time::micros(hz, t2, t3));
    tested
}

/// A new signing key in the vault, checked with the pairwise consistency test.
pub(crate) fn new_key(rng: &mut HwRng) -> Result<TestedKey, &'static str> {
    let (key, _) = VAULT.generate(rng).map_err(|_| "Credential Key generation failed")?;
    TestedKey::test(&VAULT, key).ok_or_else(|| {
        VAULT.remove(key);
        "the Credential Key failed its pairwise consistency test"
    })
}

/// Chooses the TEE backend for the platform (step 4) and runs the workload on it.
fn run_on_tee(
    booted: &mut Booted,
    channel: &Channel<'_, SerialLink>,
    workload: Main,
    first_key: TestedKey,
) -> WorkloadExit {
    let Booted { kind, c_bit, rng, manifest, tsc_hz, .. } = booted;
    let tsc_hz = *tsc_hz;
    let manifest = &*manifest;
    let body = manifest_body();
    let measurements = [
        Measurement { rtmr: RTMR_MANIFEST, event_type: twi_proto::msg::event_type::LAUNCH_MANIFEST, data: &body },
        Measurement {
            rtmr: RTMR_ISSUER_ANCHOR,
            event_type: twi_proto::msg::event_type::ISSUER_ANCHOR,
            data: &manifest.issuer_anchor,
        },
    ];
    // A fresh nonce for the SVSM's own evidence (`twi run --platform sim-svsm`).
    let mut svsm_nonce = [0u8; 64];
    if *kind == Kind::Native {
        rand_core::TryRng::try_fill_bytes(&mut *rng, &mut svsm_nonce)
            .unwrap_or_else(|_| fatal(format_args!("the hardware RNG failed")));
    }
    let mut first_key = Some(first_key);
    let mut run = |tee: &mut dyn Tee, measurements: &[Measurement<'_>]| {
        let mut launch = Launch::new(tee, channel, manifest, measurements, &mut *rng, first_key.take(), tsc_hz);
        workload(&mut launch)
    };
    match kind {
        Kind::Tdx => {
            log_td_platform();
            let mut module = TdcallModule::new()
                .unwrap_or_else(|| fatal(format_args!("no room in the shared pool for the GetQuote buffer")));
            run(&mut TdxTee::new(&mut module as &mut dyn TdxModule, Platform::Tdx), &measurements)
        }
        Kind::Snp => {
            let vmpl = platform::snp::svsm::vmpl().unwrap_or(0);
            let mut guard = take_snp_guest(vmpl).unwrap_or_else(|e| fatal(format_args!("{e}")));
            match platform::snp::svsm::vmpl() {
                None => log!("platform: SEV-SNP (C-bit {c_bit}, GHCB up, VMPCK0 taken from the secrets page)"),
                Some(n) => log!(
                    "platform: SEV-SNP below an SVSM at VMPL {n} (C-bit {c_bit}; memory validated through SVSM_CORE_PVALIDATE; VMPCK{n} taken from the secrets page, reports for VMPL {n})"
                ),
            }
            let guest = guard.as_mut().unwrap_or_else(|| fatal(format_args!("the SNP guest vanished")));
            run(&mut SnpTee::new(guest, &mut GhcbDoorbell as &mut dyn SnpDoorbell, Platform::Snp), &[])
        }
        Kind::Native if let Ok(info) = launch_pages::svsm_info() => {
            below_sim_svsm(info, channel, &svsm_nonce, &mut run)
        }
        Kind::Native => match take_snp_guest(0) {
            Ok(mut guard) => {
                log!("platform: simulated SEV-SNP (VMPCK0 taken from the secrets page)");
                let guest = guard.as_mut().unwrap_or_else(|| fatal(format_args!("the SNP guest vanished")));
                let mut doorbell = SimSnpDoorbell::new(channel);
                run(&mut SnpTee::new(guest, &mut doorbell as &mut dyn SnpDoorbell, Platform::SimSnp), &[])
            }
            Err(_) if launch_pages::sim_td_page_present() => {
                log!("platform: simulated TDX (TDX module and quoting service over the channel)");
                let mut module = SimTdxModule::new(channel);
                run(&mut TdxTee::new(&mut module as &mut dyn TdxModule, Platform::SimTdx), &measurements)
            }
            Err(e) => fatal(format_args!(
                "no TEE: not a TD nor an SEV-SNP guest, no simulated secrets page at {SNP_SECRETS_PAGE:#x} ({e}) and no simulated-TD page at {SIM_TD_PAGE:#x}; run under `twi run --platform sim`, `--platform sim-tdx` or `--platform sim-svsm`"
            )),
        },
    }
}

/// `twi run --platform sim-svsm`: a plain VM whose secrets page names a (simulated) SVSM. As
/// below COCONUT-SVSM on hardware: the SVSM must speak the core and attestation protocols
/// (QUERY_PROTOCOL), memory the runtime validates goes through SVSM_CORE_PVALIDATE (here the
/// frame pool), the SVSM's own evidence is checked (SVSM_ATTEST_SERVICES: a VMPL0 report
/// binding `nonce` and its services manifest), and the session's evidence comes from the PSP
/// under the VMPCK of the runtime's VMPL, at that VMPL.
fn below_sim_svsm(
    info: SvsmInfo,
    channel: &Channel<'_, SerialLink>,
    nonce: &[u8; 64],
    run: &mut dyn FnMut(&mut dyn Tee, &[Measurement<'_>]) -> WorkloadExit,
) -> WorkloadExit {
    let vmpl = info.guest_vmpl;
    let mut svsm = SimSvsm::new(channel, info);
    for (protocol, name) in [(svsm_protocol::CORE, "core"), (svsm_protocol::ATTEST, "attestation")] {
        match svsm.query_protocol(protocol, 1) {
            Ok(Some(_)) => {}
            Ok(None) => fatal(format_args!("the SVSM does not speak the {name} protocol version 1")),
            Err(e) => fatal(format_args!("SVSM_CORE_QUERY_PROTOCOL: {e}")),
        }
    }
    let frames = PvalidateEntry { gpa: FRAMES.start as u64, huge: true, validate: true };
    svsm.pvalidate(&[frames]).unwrap_or_else(|e| fatal(format_args!("SVSM_CORE_PVALIDATE of the frame pool: {e}")));
    let own = crate::tee::svsm::attest(&mut svsm, nonce).unwrap_or_else(|e| fatal(format_args!("{e}")));
    log!(
        "SVSM at VMPL0: core and attestation protocols v1; frame pool validated through SVSM_CORE_PVALIDATE; its report (VMPL0) binds our nonce and its {}-byte services manifest",
        own.manifest.len()
    );
    let mut guard = take_snp_guest(vmpl).unwrap_or_else(|e| fatal(format_args!("{e}")));
    log!(
        "platform: simulated SEV-SNP below a simulated SVSM at VMPL {vmpl} (VMPCK{vmpl} taken from the secrets page, reports for VMPL {vmpl})"
    );
    let guest = guard.as_mut().unwrap_or_else(|| fatal(format_args!("the SNP guest vanished")));
    let mut doorbell = SimSnpDoorbell::new(channel);
    run(&mut SnpTee::new(guest, &mut doorbell as &mut dyn SnpDoorbell, Platform::SimSnp), &[])
}

/// Takes the VMPCK of `vmpl` (the runtime's own) from the SEV-SNP secrets page into the vault's
/// pages.
fn take_snp_guest(vmpl: u8) -> Result<spin::MutexGuard<'static, GuestSlot>, SnpError> {
    let copy = launch_pages::take_secrets_page();
    let guest = SnpGuest::from_secrets_page_at(&copy, vmpl);
    launch_pages::wipe(copy);
    let mut slot = SNP_GUEST.lock();
    *slot = GuestSlot::Held(guest?);
    Ok(slot)
}

fn log_td_platform() {
    let info = platform::tdx::info();
    log!(
        "platform: Intel TDX (GPAW {}, attributes {:#x}, {} vCPUs; heap and frames accepted, shared pool mapped)",
        info.map_or(0, |i| i.gpaw),
        info.map_or(0, |i| i.attributes),
        info.map_or(0, |i| i.num_vcpus)
    );
    if info.is_some_and(|i| i.attributes & twi_attester::tdx::abi::ATTRIBUTE_DEBUG != 0) {
        // The quote says so too (TD_ATTRIBUTES), and an issuer's policy should refuse it.
        log!("WARNING: a DEBUG TD: the host can read this TD's memory, the Credential Key included");
    }
}

/// The launch manifest's postcard body, as the ROM slot holds it: what RTMR1 measures (the
/// slot [`start`] read the manifest from, so it has one).
fn manifest_body() -> Vec<u8> {
    let slot = launch_pages::manifest_slot();
    LaunchManifest::slot_body(&slot).map(<[u8]>::to_vec).unwrap_or_else(|e| fatal(format_args!("{e}")))
}

/// The session's progress, on the console.
pub(crate) fn log_event(event: Event<'_>) {
    match event {
        Event::ChallengeReceived => log!("challenge received"),
        Event::ReportReceived => log!("report received"),
        Event::EvidenceSent => log!("evidence sent"),
        Event::CredentialAccepted(id) => log!("credential accepted for {id}"),
        Event::CredentialSealed(len) => log!("credential sealed to this launch ({len} bytes)"),
        Event::Certificates(table) => log_certificates(table),
        Event::QuoteNamed(len) => log!("quote from the host: {len} bytes, named by its SHA-384 (the host keeps it)"),
        Event::AttestationResultWithCredential(len) => {
            log!("mechanism A: an attestation result ({len}-byte EAR) came with the credential")
        }
        Event::ReleaseKeyBound => log!("mechanism D: the evidence binds an ephemeral HPKE key generated in the vault"),
        Event::KeyReleased => {
            log!("mechanism D: the Key Store's release opened in the vault; the provisioned key is the Credential Key")
        }
        Event::AttestationResultReceived(len) => {
            log!("mechanism B: attestation result received ({len}-byte EAR); requesting the credential")
        }
        Event::CredentialRequested => {
            log!("mechanism B: credential requested, the proof of possession signed in the vault")
        }
    }
}

fn log_certificates(table: Certificates) {
    match table {
        Certificates::Forwarded { count, bytes } => {
            log!("certificate table from the host: {count} certificates ({bytes} bytes), forwarded with the evidence")
        }
        Certificates::Named { count, bytes } => {
            log!(
                "certificate table from the host: {count} certificates ({bytes} bytes), named by its SHA-384 (the host keeps it)"
            )
        }
        Certificates::None => log!("the host supplied no certificate table: the verifier uses its own VCEK"),
        Certificates::Dropped => log!("the host's certificate table is malformed or too large: not forwarded"),
    }
}

fn finish(code: ExitCode, tsc_hz: u64, reset_tsc: u64) -> ! {
    let heap = memory::heap_usage();
    log!("heap: {} of {} bytes in use, peak {}", heap.used, heap.size, heap.peak);
    if code == ExitCode::Success {
        log!("done in {} us since reset", time::micros(tsc_hz, reset_tsc, cpu::rdtsc()));
    }
    exit(code)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    console::write_line_unlocked(format_args!("FATAL: panic: {info}"));
    exit(ExitCode::Failure)
}

/// Defines the firmware entry the boot stub calls (`rust_entry`), running `$workload`
/// (a `twi_payload::Main`: `fn(&mut dyn twi_payload::Runtime) -> twi_payload::ExitCode`).
#[macro_export]
macro_rules! entry {
    ($workload:path) => {
        #[unsafe(no_mangle)]
        #[unsafe(link_section = ".text.rust_entry")]
        pub extern "C" fn rust_entry() -> ! {
            $crate::firmware::start($workload)
        }
    };
}
