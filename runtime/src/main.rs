//! The firmware entry: wires the platform to the session and reports the boot figures.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("twi-runtime is firmware for x86_64-unknown-none: build a bootable image with `twi build`");
    std::process::exit(2);
}

#[cfg(target_os = "none")]
mod firmware {
    extern crate alloc;

    use twi_proto::manifest::{Diagnostic, LaunchManifest};
    use twi_runtime::layout::MIN_RAM_BYTES;
    use twi_runtime::layout::SNP_SECRETS_PAGE;
    use twi_runtime::layout::{SIM_TD_MAGIC, SIM_TD_PAGE};
    use twi_runtime::log;
    use twi_runtime::platform::boot::BootInfo;
    use twi_runtime::platform::exit::{ExitCode, exit};
    use twi_runtime::platform::serial::{COM2, Uart};
    use twi_runtime::platform::snp::{self as snp_platform, TerminateReason};
    use twi_runtime::platform::tdx::{self as tdx_platform, HwTdx};
    use twi_runtime::platform::{cmos, console, cpu, idt, memory, rng, time};
    use twi_runtime::session::{self, Channel, Event, Link, Tee, Trust};
    use twi_runtime::snp::SnpGuest;
    use twi_runtime::vault::Vault;

    const RUNTIME_NAME: &str = concat!("twi-runtime/", env!("CARGO_PKG_VERSION"));

    /// The Credential Key's home: its own page-aligned section of private RAM.
    #[unsafe(link_section = ".vault")]
    static VAULT: Vault = Vault::new();

    /// The VMPCK's home (inside the SNP guest's requester): the vault's pages too.
    #[unsafe(link_section = ".vault")]
    static SNP_GUEST: spin::Mutex<Option<SnpGuest>> = spin::Mutex::new(None);

    unsafe extern "C" {
        static __manifest_start: u8;
        static __manifest_end: u8;
    }

    /// COM2 as the channel's byte pipe.
    struct SerialLink(Uart);

    impl Link for SerialLink {
        fn write_all(&mut self, bytes: &[u8]) {
            self.0.write_bytes(bytes);
        }
        fn read_byte(&mut self) -> Option<u8> {
            Some(self.0.read_byte())
        }
    }

    fn fatal(what: core::fmt::Arguments<'_>) -> ! {
        console::write_line_unlocked(format_args!("FATAL: {what}"));
        exit(ExitCode::Failure)
    }

    /// The manifest slot of the ROM, copied once into private memory and decoded from the copy.
    fn load_manifest() -> LaunchManifest {
        // SAFETY: the linker script places the 4 KiB manifest slot at these ROM addresses,
        // which the boot page tables map read-only-in-practice (ROM ignores writes); the ROM is
        // immutable for the life of the VM, so a shared borrow for the copy below is sound.
        let slot = unsafe {
            let start = core::ptr::addr_of!(__manifest_start);
            let len = core::ptr::addr_of!(__manifest_end) as usize - start as usize;
            core::slice::from_raw_parts(start, len)
        };
        let copy = alloc::vec::Vec::from(slot);
        LaunchManifest::from_slot(&copy).unwrap_or_else(|e| fatal(format_args!("{e}")))
    }

    /// Takes VMPCK0 from the SEV-SNP secrets page: copies the page once into private memory,
    /// wipes the VMPCKs in the original (nothing else in this VM may use them), and parses the
    /// copy.
    fn take_snp_guest() -> Result<SnpGuest, twi_runtime::snp::SnpError> {
        let mut copy = alloc::boxed::Box::new([0u8; 4096]);
        let page = SNP_SECRETS_PAGE as usize as *mut u8;
        // SAFETY: the layout reserves this identity-mapped RAM page for the secrets page (the
        // PSP, or the simulator's QEMU loader, fills it before the first instruction); nothing
        // else in the runtime references it, and it is 4096 bytes long.
        unsafe {
            core::ptr::copy_nonoverlapping(page, copy.as_mut_ptr(), copy.len());
            core::ptr::write_bytes(page.add(0x20), 0, 4 * 32);
        }
        let guest = SnpGuest::from_secrets_page(&copy);
        zeroize::Zeroize::zeroize(copy.as_mut_slice());
        guest
    }

    /// Whether the host loader planted the simulated-TD page (`twi run --platform sim-tdx`).
    fn sim_td_page_present() -> bool {
        let mut head = [0u8; SIM_TD_MAGIC.len()];
        // SAFETY: the layout reserves this identity-mapped RAM page for the simulator's marker
        // (QEMU's loader fills it before the first instruction, or it holds whatever RAM held);
        // only called when this is neither a TD nor an SEV-SNP guest, so plain RAM reads are fine.
        unsafe { core::ptr::copy_nonoverlapping(SIM_TD_PAGE as usize as *const u8, head.as_mut_ptr(), head.len()) };
        head == SIM_TD_MAGIC
    }

    /// The launch manifest's postcard body, as the ROM slot holds it: what RTMR1 measures.
    fn manifest_body(manifest: &LaunchManifest) -> alloc::vec::Vec<u8> {
        let slot = manifest.to_slot().unwrap_or_else(|e| fatal(format_args!("{e}")));
        let len = slot.get(..4).map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
        slot.get(4..4 + len).map(<[u8]>::to_vec).unwrap_or_default()
    }

    #[unsafe(no_mangle)]
    #[unsafe(link_section = ".text.rust_entry")]
    pub extern "C" fn rust_entry() -> ! {
        let entry_tsc = cpu::rdtsc();
        let boot = BootInfo::read();
        idt::init();
        // Under SEV-SNP nothing may touch a port, CPUID or an MSR before the GHCB is up; a
        // failure here can only be reported through the GHCB MSR protocol.
        let snp_hardware = match snp_platform::init(&boot) {
            Ok(active) => active,
            Err(e) => snp_platform::terminate(TerminateReason::from(e)),
        };
        // In a TD the #VE handler is in the IDT already; TDG.VP.INFO, memory acceptance and the
        // shared pool come before any port I/O (which then goes through TDVMCALL). A failure
        // here can only be reported with ReportFatalError.
        let tdx_hardware = match tdx_platform::init(&boot) {
            Ok(active) => active,
            Err(e) => tdx_platform::fatal(e.code()),
        };
        console::init();
        let tsc_hz = time::calibrate_tsc_hz();
        log!("{RUNTIME_NAME} booted");
        log!(
            "boot: reset vector -> rust entry {} us (TSC {} MHz)",
            time::micros(tsc_hz, boot.reset_tsc, entry_tsc),
            tsc_hz / 1_000_000
        );

        match cmos::low_ram_bytes() {
            Some(ram) if ram < MIN_RAM_BYTES => {
                fatal(format_args!("{} MiB of RAM, the runtime needs {} MiB", ram >> 20, MIN_RAM_BYTES >> 20))
            }
            _ => {}
        }
        memory::init();

        let Some(mut rng) = rng::HwRng::new() else {
            fatal(format_args!(
                "the CPU has no RDRAND (under QEMU TCG use -cpu max): refusing to run without a hardware RNG"
            ))
        };
        let manifest = load_manifest();
        if manifest.diagnostic == Diagnostic::Fault {
            log!("diagnostic image: raising #UD to exercise the fault handler");
            cpu::raise_invalid_opcode();
        }
        log!("issuer anchor: {}", manifest.issuer_name);

        let t0 = cpu::rdtsc();
        if let Err(e) = VAULT.generate(&mut rng) {
            fatal(format_args!("Credential Key generation failed: {e:?}"))
        }
        let t1 = cpu::rdtsc();
        // Pairwise consistency test (FIPS 140-3 IG 10.3.A): sign and verify once before use.
        let public = VAULT.public_key().unwrap_or_else(|e| fatal(format_args!("{e:?}")));
        let probe = b"twi pairwise consistency test";
        let signature = VAULT.sign(probe).unwrap_or_else(|e| fatal(format_args!("{e:?}")));
        let t2 = cpu::rdtsc();
        if !verifies(&public, probe, signature.as_bytes()) {
            fatal(format_args!("the Credential Key failed its pairwise consistency test"))
        }
        log!(
            "key generated: P-384 keygen {} us, sign {} us",
            time::micros(tsc_hz, t0, t1),
            time::micros(tsc_hz, t1, t2)
        );

        if manifest.diagnostic == Diagnostic::SelfTest {
            log!("self-test image: done in {} us since reset", time::micros(tsc_hz, boot.reset_tsc, cpu::rdtsc()));
            exit(ExitCode::Success)
        }

        if !snp_hardware && snp_platform::vc::VC_SEEN.load(core::sync::atomic::Ordering::Acquire) {
            fatal(format_args!("a #VC was raised, yet SEV_STATUS said this is not an SEV-SNP guest"))
        }
        let sim_tdx = if tdx_hardware {
            // Neither the SEV-SNP secrets page nor the simulator's page exists in a TD: their
            // addresses are private memory nobody accepted.
            false
        } else {
            match take_snp_guest() {
                Ok(guest) => {
                    *SNP_GUEST.lock() = Some(guest);
                    false
                }
                Err(_) if !snp_hardware && sim_td_page_present() => true,
                Err(e) => fatal(format_args!(
                    "no TEE: not a TD nor an SEV-SNP guest, no simulated secrets page at {SNP_SECRETS_PAGE:#x} ({e}) and no simulated-TD page at {SIM_TD_PAGE:#x}; run under `twi run --platform sim` or `--platform sim-tdx`"
                )),
            }
        };
        if tdx_hardware {
            let info = tdx_platform::info();
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
        } else if sim_tdx {
            log!("platform: simulated TDX (TDX module and quoting service over the channel)");
        } else if snp_hardware {
            log!("platform: SEV-SNP (C-bit {}, GHCB up, VMPCK0 taken from the secrets page)", boot.c_bit);
        } else {
            log!("platform: simulated SEV-SNP (VMPCK0 taken from the secrets page)");
        }

        let mut channel = Channel::new(SerialLink(Uart::init(COM2)));
        let trust = Trust { issuer_anchor: &manifest.issuer_anchor };
        let mut events = |event: Event<'_>| match event {
            Event::ChallengeReceived => log!("challenge received"),
            Event::ReportReceived => log!("report received"),
            Event::EvidenceSent => log!("evidence sent"),
            Event::MalformedFrame(e) => log!("malformed frame from the host: {e}"),
            Event::CredentialAccepted(id) => log!("credential accepted for {id}"),
            Event::CredentialSealed(len) => log!("credential sealed to this launch ({len} bytes)"),
            Event::Certificates(session::Certificates::Forwarded { count, bytes }) => {
                log!(
                    "certificate table from the host: {count} certificates ({bytes} bytes), forwarded with the evidence"
                )
            }
            Event::Certificates(session::Certificates::None) => {
                log!("the host supplied no certificate table: the verifier uses its own VCEK")
            }
            Event::Certificates(session::Certificates::Dropped) => {
                log!("the host's certificate table is malformed or too large: not forwarded")
            }
            Event::AttestationResultWithCredential(len) => {
                log!("mechanism A: an attestation result ({len}-byte EAR) came with the credential")
            }
            Event::ReleaseKeyBound => {
                log!("mechanism D: the evidence binds an ephemeral HPKE key generated in the vault")
            }
            Event::KeyReleased => {
                log!(
                    "mechanism D: the Key Store's release opened in the vault; the provisioned key is the Credential Key"
                )
            }
            Event::AttestationResultReceived(len) => {
                log!("mechanism B: attestation result received ({len}-byte EAR); requesting the credential")
            }
        };
        if sim_tdx || tdx_hardware {
            let body = manifest_body(&manifest);
            let measurements = [
                session::Measurement {
                    rtmr: twi_runtime::tdx::RTMR_MANIFEST,
                    event_type: twi_proto::msg::event_type::LAUNCH_MANIFEST,
                    data: &body,
                },
                session::Measurement {
                    rtmr: twi_runtime::tdx::RTMR_ISSUER_ANCHOR,
                    event_type: twi_proto::msg::event_type::ISSUER_ANCHOR,
                    data: &manifest.issuer_anchor,
                },
            ];
            let result = if tdx_hardware {
                let Some(mut module) = HwTdx::new() else {
                    fatal(format_args!("no room in the shared pool for the GetQuote buffer"))
                };
                session::run_tdx(
                    &mut channel,
                    &mut module,
                    &VAULT,
                    &mut rng,
                    &trust,
                    &measurements,
                    RUNTIME_NAME,
                    &mut events,
                )
            } else {
                let mut module = session::SimTdxModule::default();
                session::run_tdx(
                    &mut channel,
                    &mut module,
                    &VAULT,
                    &mut rng,
                    &trust,
                    &measurements,
                    RUNTIME_NAME,
                    &mut events,
                )
            };
            finish(result, tsc_hz, boot.reset_tsc)
        }
        let mut snp_guard = SNP_GUEST.lock();
        let Some(snp) = snp_guard.as_mut() else { fatal(format_args!("the SNP guest vanished")) };
        let mut ghcb_doorbell = snp_platform::guest_request;
        let mut tee = if snp_hardware { Tee::Snp(&mut ghcb_doorbell) } else { Tee::SimSnp };
        let result = session::run(&mut channel, &VAULT, snp, &mut tee, &mut rng, &trust, RUNTIME_NAME, &mut events);
        finish(result, tsc_hz, boot.reset_tsc)
    }

    fn finish(result: Result<session::Outcome, session::SessionError>, tsc_hz: u64, reset_tsc: u64) -> ! {
        let heap = memory::heap_usage();
        log!("heap: {} of {} bytes in use", heap.used, heap.size);
        match result {
            Ok(_) => {
                log!("done in {} us since reset", time::micros(tsc_hz, reset_tsc, cpu::rdtsc()));
                exit(ExitCode::Success)
            }
            Err(e) => fatal(format_args!("{e}")),
        }
    }

    fn verifies(public: &[u8], message: &[u8], der: &[u8]) -> bool {
        use p384::ecdsa::signature::Verifier;
        let Ok(key) = p384::ecdsa::VerifyingKey::from_sec1_bytes(public) else { return false };
        let Ok(signature) = p384::ecdsa::Signature::from_der(der) else { return false };
        key.verify(message, &signature).is_ok()
    }

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
        console::write_line_unlocked(format_args!("FATAL: panic: {info}"));
        exit(ExitCode::Failure)
    }
}
