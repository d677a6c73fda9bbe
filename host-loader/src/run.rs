//! `twi run`: boot an image under QEMU, bridge its channel to the issuer, and collect the
//! credential. The loader is untrusted plumbing: the issuer decides on the evidence alone, and
//! the guest checks the credential against the anchor in its own measured manifest.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use twi_issuer::policy::Mechanism;
use twi_issuer::{CredentialRequestIn, EvidenceBundle};
use twi_proto::msg::{
    AttestationResult, CAP_MECHANISM_A, CAP_MECHANISM_B, CAP_MECHANISM_C, CAP_MECHANISM_D, Challenge, Credential,
    DoorbellKind, DoorbellResponse, ErrorCode, ErrorMsg, KeyRelease, Message, PROTOCOL_VERSION, Platform,
};
use twi_proto::{MessageReader, write_message};

use crate::qemu::{self, GUEST_SUCCESS_STATUS};
use crate::remote::{IssuerLink, Obtained};
use crate::sim::snp::{SimLaunch, SimPsp};
use crate::sim::tdx::SimTdx;

/// A hostile-host behaviour, for tests: the loader relays the channel, so it can do these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tamper {
    /// Flip one byte of the evidence on its way to the issuer.
    EvidenceByte(usize),
    /// Give the guest a nonce the issuer never issued, and tell the issuer it was its own.
    Nonce,
    /// Flip one byte of the simulated PSP's first sealed answer on its way to the guest.
    FirmwareAnswerByte(usize),
    /// Flip one byte of the certificate table the host hands the guest (extended guest
    /// request).
    CertificateTableByte(usize),
    /// Mechanism D: flip one byte of the Key Store's HPKE ciphertext on its way to the guest.
    ReleaseByte(usize),
}

impl std::str::FromStr for Tamper {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "nonce" {
            return Ok(Self::Nonce);
        }
        let offset = |text: &str| match text.strip_prefix("0x") {
            Some(hex) => usize::from_str_radix(hex, 16).map_err(|e| e.to_string()),
            None => text.parse().map_err(|e: std::num::ParseIntError| e.to_string()),
        };
        if let Some(at) = s.strip_prefix("evidence-byte:") {
            return offset(at).map(Self::EvidenceByte);
        }
        if let Some(at) = s.strip_prefix("firmware-answer-byte:") {
            return offset(at).map(Self::FirmwareAnswerByte);
        }
        if let Some(at) = s.strip_prefix("certificate-table-byte:") {
            return offset(at).map(Self::CertificateTableByte);
        }
        if let Some(at) = s.strip_prefix("release-byte:") {
            return offset(at).map(Self::ReleaseByte);
        }
        Err("expected `nonce`, `evidence-byte:OFFSET`, `firmware-answer-byte:OFFSET`, `certificate-table-byte:OFFSET` or `release-byte:OFFSET`"
            .into())
    }
}

/// Everything a run needs, already resolved.
#[derive(Debug)]
pub struct Launch<'a> {
    pub qemu: PathBuf,
    pub accel: qemu::Accel,
    pub rom: PathBuf,
    pub out: PathBuf,
    pub timeout: Duration,
    /// The Verifier and Credential Authority: in-process or over HTTP.
    pub issuer: IssuerLink<'a>,
    pub psp: &'a SimPsp,
    /// This launch's simulated-PSP guest context (VMPCK0 and sequence numbers).
    pub sim: SimLaunch,
    /// `--platform sim-tdx`: the simulated TDX module and quoting enclave play the TD's
    /// firmware instead of the PSP (no secrets page; the simulated-TD page is planted).
    pub tdx: Option<&'a mut SimTdx>,
    pub tamper: Option<Tamper>,
    /// The launch measurement the simulated TEE will report (SNP MEASUREMENT or TDX MRTD):
    /// the issuer's policy decides from it whether the Challenge carries an epoch id (AF_L1)
    /// or a verifier nonce.
    pub measurement: Vec<u8>,
    /// The credential acquisition mechanism (`None`: the policy's choice for the workload).
    pub mechanism: Option<twi_issuer::policy::Mechanism>,
    /// A launch on real TEE hardware (`--platform snp|igvm|tdx`); `None`: the simulators.
    pub hardware: Option<Hardware>,
    /// `--renew SERIAL`: renew this credential (X.509 serial in hex, or WIT jti) instead of
    /// issuing a first one; the policy's stickiness decides whether this launch may.
    pub renew: Option<String>,
}

/// Real TEE hardware: QEMU runs the image as a confidential VM under KVM, the runtime asks
/// the PSP or the TDX module itself, and no simulated doorbell exists.
#[derive(Debug, Clone)]
pub struct Hardware {
    pub profile: HardwareProfile,
    /// SEV-SNP: where to find the VCEK and its chain when the guest forwards no certificate
    /// table (the VCEK cache layout of `twi verify snp-report`).
    pub vcek_cache: Option<PathBuf>,
    /// SEV-SNP: fetch a missing VCEK and chain from KDS at this base URL into `vcek_cache`.
    pub kds: Option<String>,
    /// TDX: fetch the TCB collateral for the quote's platform from this PCCS (or Intel PCS)
    /// into the run's output directory, when no collateral was given.
    pub pccs: Option<String>,
}

/// Which hardware launch line (`qemu.rs`) the run uses.
#[derive(Debug, Clone)]
pub enum HardwareProfile {
    /// The ROM on an SEV-SNP host.
    Snp(qemu::SnpProfile),
    /// The IGVM file (in [`Launch::rom`]) on an SEV-SNP host.
    Igvm(qemu::SnpProfile),
    /// The ROM on a TDX host.
    Tdx,
}

impl Hardware {
    /// The platform the guest must report.
    pub fn platform(&self) -> Platform {
        match self.profile {
            HardwareProfile::Snp(_) | HardwareProfile::Igvm(_) => Platform::Snp,
            HardwareProfile::Tdx => Platform::Tdx,
        }
    }

    fn qemu_args(&self, image: &Path, channel: &Path) -> Vec<String> {
        match &self.profile {
            HardwareProfile::Snp(profile) => qemu::snp_args(image, channel, profile),
            HardwareProfile::Igvm(profile) => qemu::igvm_args(image, channel, profile),
            HardwareProfile::Tdx => qemu::tdx_args(image, channel),
        }
    }

    /// What the host must offer, for the message when QEMU cannot start the VM.
    fn host_requirement(&self) -> &'static str {
        match self.profile {
            HardwareProfile::Snp(_) => {
                "--platform snp needs an AMD SEV-SNP host: KVM with SEV-SNP enabled and QEMU >= 9.1; see qemu/README.md"
            }
            HardwareProfile::Igvm(_) => {
                "--platform igvm needs an AMD SEV-SNP host and a QEMU built with IGVM support (>= 9.2); see qemu/README.md"
            }
            HardwareProfile::Tdx => {
                "--platform tdx needs an Intel TDX host: KVM with TDX, QEMU >= 10.1 with tdx-guest and a quote generation service; see qemu/README.md"
            }
        }
    }

    /// The `--platform` value, for messages.
    fn option(&self) -> &'static str {
        match self.profile {
            HardwareProfile::Snp(_) => "snp",
            HardwareProfile::Igvm(_) => "igvm",
            HardwareProfile::Tdx => "tdx",
        }
    }
}

/// The guest's GetQuote buffer size (`twi_runtime::tdx::GET_QUOTE_BUFFER`): the runtime sends
/// only its request part over the channel.
const GET_QUOTE_CAPACITY: usize = twi_proto::msg::MAX_DOORBELL_RESPONSE;

/// What happened, for the caller to report.
#[derive(Debug)]
pub struct Success {
    pub issued: Obtained,
    pub elapsed: Duration,
}

/// The state of the conversation with the guest.
#[derive(Default)]
struct Conversation {
    nonce: Option<Vec<u8>>,
    nonce_for_issuer: Option<Vec<u8>>,
    issued: Option<Obtained>,
    /// The first reason the run cannot succeed, in words for the user.
    failure: Option<String>,
    credential_accepted: bool,
    tampered_firmware_answer: bool,
    /// The mechanism this run uses (decided at Hello: the option, else the policy's choice).
    mechanism: Option<Mechanism>,
    /// Mechanism B: the attestation result the Verifier returned, awaiting the guest's
    /// CredentialRequest.
    attestation_result: Option<String>,
}

/// The [`Hello::capabilities`](twi_proto::msg::Hello::capabilities) bit of a mechanism.
pub fn mechanism_capability(mechanism: Mechanism) -> u32 {
    match mechanism {
        Mechanism::A => CAP_MECHANISM_A,
        Mechanism::B => CAP_MECHANISM_B,
        Mechanism::C => CAP_MECHANISM_C,
        Mechanism::D => CAP_MECHANISM_D,
    }
}

impl Launch<'_> {
    /// The platform the guest must report in its Hello.
    fn expected_platform(&self) -> Platform {
        match &self.hardware {
            Some(hardware) => hardware.platform(),
            None if self.tdx.is_some() => Platform::SimTdx,
            None => Platform::SimSnp,
        }
    }
}

/// Real SEV-SNP without a certificate table from the guest: the VCEK for the report's chip and
/// TCB, and its chain, from the VCEK cache (fetched from KDS first when `--fetch` allows).
fn cached_endorsements(launch: &Launch<'_>, report: &[u8]) -> Result<Vec<Vec<u8>>> {
    use twi_attester::snp::report::{AttestationReport, SigningKey};
    use twi_verifier::snp::{Product, VekKind};
    let hardware = launch.hardware.as_ref().ok_or_else(|| anyhow!("not a hardware launch"))?;
    let parsed = AttestationReport::parse(report).map_err(|e| anyhow!("the report is malformed: {e:?}"))?;
    if parsed.signing_key() == SigningKey::Vlek {
        bail!(
            "the report is signed with a VLEK and the guest forwarded no certificate table: the host must supply the VLEK through the extended guest request"
        );
    }
    let Some(dir) = &hardware.vcek_cache else {
        bail!(
            "the guest forwarded no certificate table (the host offers none through the extended guest request): pass --vcek-cache DIR, and --fetch to fill it from AMD KDS"
        );
    };
    let products = parsed
        .tcb_layout()
        .and_then(|_| Product::from_cpuid(parsed.cpuid_fam_id, parsed.cpuid_mod_id))
        .map_or(Product::ALL.to_vec(), |p| vec![p]);
    let kds = hardware.kds.as_deref();
    let (vcek, product) = crate::fetch::vcek_from_cache(dir, &products, &parsed.chip_id, parsed.reported_tcb, kds)
        .map_err(|missing| match missing {
            crate::fetch::VcekMissing::NotCached(wanted) => anyhow!(
                "no VCEK for this chip and TCB in {}: add --fetch, or download {}",
                dir.display(),
                wanted.iter().map(|(_, url)| url.as_str()).collect::<Vec<_>>().join(" or ")
            ),
            crate::fetch::VcekMissing::NotFetched(failures) => {
                anyhow!("no VCEK from KDS: {}", failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
            }
        })?;
    let chain = crate::fetch::chain_from_cache(dir, product, VekKind::Vcek, kds)?;
    let mut endorsements = vec![fs::read(&vcek).with_context(|| format!("cannot read {}", vcek.display()))?];
    let pem = fs::read(&chain).with_context(|| format!("no chain at {}", chain.display()))?;
    endorsements
        .extend(twi_verifier::chain::split_certificates(&pem).map_err(|e| anyhow!("{}: {e}", chain.display()))?);
    progress(format_args!("endorsements: VCEK and chain from {}", dir.display()));
    Ok(endorsements)
}

/// Real TDX: unless collateral was configured up front, fetch it for the quote's platform from
/// the PCCS into the output directory and hand it to the issuer's verifier.
fn hardware_tdx_collateral(launch: &mut Launch<'_>, quote: &[u8]) -> Result<()> {
    let Some(pccs) = launch.hardware.as_ref().and_then(|h| h.pccs.clone()) else { return Ok(()) };
    let dir = launch.out.join("collateral");
    let (collateral, notes) = crate::fetch::collateral_for_quote(&pccs, &dir, quote)?;
    for note in notes {
        progress(format_args!("warning: {note}"));
    }
    progress(format_args!("collateral: fetched from {pccs} into {}", dir.display()));
    match &mut launch.issuer {
        IssuerLink::Embedded(issuer) => {
            issuer.accept_hardware_tdx(twi_verifier::tdx::TdxConfig::default(), Some(collateral));
        }
        IssuerLink::Remote(_) => bail!("a remote issuer judges TDX quotes with its own collateral"),
    }
    Ok(())
}

fn progress(what: impl std::fmt::Display) {
    eprintln!("twi: {what}");
}

pub fn run(mut launch: Launch<'_>) -> Result<Success> {
    let started = Instant::now();
    let sockdir =
        tempfile::Builder::new().prefix("twi-run-").tempdir().context("cannot create a temporary directory")?;
    let socket = sockdir.path().join("channel.sock");
    let listener = UnixListener::bind(&socket).with_context(|| format!("cannot listen on {}", socket.display()))?;
    listener.set_nonblocking(true)?;

    // The secrets page holds this launch's VMPCK0: it lives in the private temporary
    // directory, removed with it when the run ends.
    let args = if let Some(hardware) = &launch.hardware {
        hardware.qemu_args(&launch.rom, &socket)
    } else if launch.tdx.is_some() {
        let page = sockdir.path().join("sim-td-page.bin");
        fs::write(&page, qemu::sim_td_page())?;
        qemu::sim_tdx_args(launch.accel, &launch.rom, &socket, &page)
    } else {
        let secrets_page = sockdir.path().join("secrets-page.bin");
        write_secret_file(&secrets_page, &launch.sim.secrets_page())?;
        qemu::sim_args(launch.accel, &launch.rom, &socket, Some(&secrets_page))
    };
    let mut child = Command::new(&launch.qemu)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", launch.qemu.display()))?;
    let mut guard = KillOnDrop(Some(&mut child));
    let console = spawn_console_reader(guard.child().stdout.take().expect("stdout is piped"), &launch.out)?;
    let qemu_stderr = spawn_stderr_reader(guard.child().stderr.take().expect("stderr is piped"));
    let deadline = started + launch.timeout;

    let mut conversation = Conversation::default();
    let mut stream = accept_until(&listener, &mut guard, deadline)?;
    let mut exit_status = None;
    if let Some(stream) = stream.as_mut() {
        stream.set_read_timeout(Some(Duration::from_millis(20)))?;
        exit_status = converse(stream, &mut guard, deadline, &mut launch, &mut conversation, &console)?;
    }
    if exit_status.is_none() {
        exit_status = wait_until(&mut guard, deadline)?;
    }
    if exit_status.is_some() {
        // QEMU has exited: read the console to its end, so a last FATAL line is not missed.
        finish_console(&console);
    } else {
        drain_console(&console);
    }
    let Some(status) = exit_status else {
        bail!(
            "the guest did not finish within {} s (accelerator {}); the console log is in {}",
            launch.timeout.as_secs(),
            launch.accel.name(),
            launch.out.join("console.log").display()
        );
    };
    guard.0 = None; // exited: nothing to kill
    let fatal = console.fatal.lock().map(|f| f.clone()).unwrap_or_default();
    if let Some(reason) = conversation.failure {
        bail!("{reason}");
    }
    if status.code() != Some(GUEST_SUCCESS_STATUS) {
        if let Some(fatal) = fatal {
            bail!("the guest failed: {fatal}");
        }
        let stderr = qemu_stderr.join().unwrap_or_default();
        let hint = match (&launch.hardware, conversation.nonce.is_none()) {
            (Some(hardware), true) => format!(" ({})", hardware.host_requirement()),
            _ => String::new(),
        };
        bail!(
            "QEMU exited with {status} before the guest finished{}{hint}",
            if stderr.trim().is_empty() { String::new() } else { format!(": {}", stderr.trim()) }
        );
    }
    let issued = conversation.issued.ok_or_else(|| anyhow!("the guest exited successfully without a credential"))?;
    if !conversation.credential_accepted {
        bail!("the guest exited without confirming that it accepted the credential");
    }
    Ok(Success { issued, elapsed: started.elapsed() })
}

/// Kills QEMU if the run ends early.
struct KillOnDrop<'a>(Option<&'a mut Child>);

impl KillOnDrop<'_> {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("child present")
    }
}

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn accept_until(listener: &UnixListener, guard: &mut KillOnDrop<'_>, deadline: Instant) -> Result<Option<UnixStream>> {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                return Ok(Some(stream));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e).context("accepting QEMU's channel connection"),
        }
        if guard.child().try_wait()?.is_some() || Instant::now() > deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn wait_until(guard: &mut KillOnDrop<'_>, deadline: Instant) -> Result<Option<std::process::ExitStatus>> {
    loop {
        if let Some(status) = guard.child().try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() > deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Relays the channel until QEMU exits (returning its status) or the deadline passes.
fn converse(
    stream: &mut UnixStream,
    guard: &mut KillOnDrop<'_>,
    deadline: Instant,
    launch: &mut Launch<'_>,
    conversation: &mut Conversation,
    console: &Console,
) -> Result<Option<std::process::ExitStatus>> {
    let mut reader = MessageReader::new();
    let mut buf = [0u8; 4096];
    loop {
        drain_console(console);
        match stream.read(&mut buf) {
            Ok(0) => return wait_until(guard, deadline),
            Ok(n) => {
                for &byte in &buf[..n] {
                    if let Some(result) = reader.push(byte) {
                        let reply = match result {
                            Ok(msg) => handle(msg, launch, conversation)?,
                            Err(e) => {
                                progress(format_args!("malformed frame from the guest: {e}"));
                                Some(Message::Error(ErrorMsg::new(e.code(), "malformed frame from the host's view")))
                            }
                        };
                        if let Some(reply) = reply {
                            let mut frame = Vec::new();
                            write_message(&reply, &mut frame).map_err(|e| anyhow!("encoding a reply: {e}"))?;
                            stream.write_all(&frame)?;
                        }
                    }
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => return Err(e).context("reading the channel"),
        }
        if let Some(status) = guard.child().try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() > deadline {
            return Ok(None);
        }
    }
}

/// Answers one message from the guest.
fn handle(msg: Message, launch: &mut Launch<'_>, conversation: &mut Conversation) -> Result<Option<Message>> {
    let fail = |conversation: &mut Conversation, reason: String| {
        conversation.failure.get_or_insert(reason);
    };
    Ok(match msg {
        Message::Hello(hello) => {
            progress(format_args!("booted: {} on platform {:?}", hello.runtime, hello.platform));
            if hello.version != PROTOCOL_VERSION {
                let text = format!(
                    "protocol version {} is not supported (this loader speaks {PROTOCOL_VERSION})",
                    hello.version
                );
                fail(conversation, format!("the guest speaks {text}"));
                return Ok(Some(Message::Error(ErrorMsg::new(ErrorCode::UnsupportedVersion, &text))));
            }
            let expected = launch.expected_platform();
            if hello.platform != expected {
                let option = match &launch.hardware {
                    Some(hardware) => hardware.option(),
                    None if launch.tdx.is_some() => "sim-tdx",
                    None => "sim",
                };
                let text = format!("platform {:?} cannot run under `--platform {option}`", hello.platform);
                fail(conversation, format!("the guest reports {text}"));
                return Ok(Some(Message::Error(ErrorMsg::new(ErrorCode::UnexpectedMessage, &text))));
            }
            // The Verifier's challenge; it also says which mechanism the policy chose for the
            // workload this measurement belongs to.
            let (nonce, policy_mechanism) = launch.issuer.challenge(expected, &launch.measurement)?;
            let mechanism = launch.mechanism.or(policy_mechanism).unwrap_or(Mechanism::C);
            if hello.capabilities & mechanism_capability(mechanism) == 0 {
                let text = format!(
                    "the guest does not advertise credential acquisition mechanism {} (capabilities {:#x})",
                    mechanism.name(),
                    hello.capabilities
                );
                fail(conversation, text.clone());
                return Ok(Some(Message::Error(ErrorMsg::new(ErrorCode::UnexpectedMessage, &text))));
            }
            progress(format_args!("credential acquisition mechanism {}", mechanism.name()));
            conversation.mechanism = Some(mechanism);
            if mechanism == Mechanism::D {
                // The workload owner's provisioning step, done here once for the demo.
                match launch.issuer.provision(expected, &launch.measurement) {
                    Ok((provisioned, created)) => progress(format_args!(
                        "Key Store: {} credential for {} (serial {}){}",
                        if created { "provisioned a" } else { "holds the provisioned" },
                        provisioned.workload_id,
                        provisioned.serial_hex,
                        if created { " and its key, as the workload owner would" } else { "" }
                    )),
                    Err(e) => {
                        let text = format!("the Key Store cannot provision a credential: {e}");
                        fail(conversation, text.clone());
                        return Ok(Some(Message::Error(ErrorMsg::new(ErrorCode::Internal, &text))));
                    }
                }
            }
            let sent = if launch.tamper == Some(Tamper::Nonce) {
                let mut other = vec![0u8; nonce.len()];
                getrandom::fill(&mut other).map_err(|e| anyhow!("OS RNG: {e}"))?;
                progress("tamper: sending the guest a nonce the issuer never issued");
                other
            } else {
                nonce.clone()
            };
            conversation.nonce = Some(sent.clone());
            conversation.nonce_for_issuer = Some(nonce);
            Some(Message::Challenge(Challenge { nonce: sent, key_release: mechanism == Mechanism::D }))
        }
        Message::DoorbellRequest(_) if launch.hardware.is_some() => {
            let text = "a guest on real hardware asked for the simulated doorbell";
            fail(conversation, format!("the guest misbehaved: {text}"));
            Some(Message::Error(ErrorMsg::new(ErrorCode::UnexpectedMessage, text)))
        }
        Message::DoorbellRequest(request) => match request.kind {
            DoorbellKind::SnpGuestRequest | DoorbellKind::SnpExtGuestRequest => {
                let (status, mut response) = launch.sim.guest_request(launch.psp, &request.request);
                if status != 0 {
                    progress(format_args!("simulated PSP refused a guest request (status {status:#x})"));
                }
                if let Some(Tamper::FirmwareAnswerByte(offset)) = launch.tamper
                    && !conversation.tampered_firmware_answer
                    && let Some(byte) = response.get_mut(offset)
                {
                    *byte ^= 0x01;
                    conversation.tampered_firmware_answer = true;
                    progress(format_args!("tamper: flipped byte {offset:#x} of the PSP's sealed answer"));
                }
                // The extended request also returns the certificate table, as a hypervisor writes
                // it into the guest's certificate pages.
                let certificates = if request.kind == DoorbellKind::SnpExtGuestRequest && status == 0 {
                    let mut table = launch.psp.certificate_table()?;
                    if let Some(Tamper::CertificateTableByte(offset)) = launch.tamper
                        && let Some(byte) = table.get_mut(offset)
                    {
                        *byte ^= 0x01;
                        progress(format_args!("tamper: flipped byte {offset:#x} of the certificate table"));
                    }
                    Some(table)
                } else {
                    None
                };
                Some(Message::DoorbellResponse(DoorbellResponse { kind: request.kind, status, response, certificates }))
            }
            DoorbellKind::TdxGetQuote | DoorbellKind::TdxReport | DoorbellKind::TdxRtmrExtend => {
                let Some(tdx) = launch.tdx.as_deref_mut() else {
                    return Ok(Some(Message::Error(ErrorMsg::new(
                        ErrorCode::DoorbellFailed,
                        "the simulated TDX module is only available under --platform sim-tdx",
                    ))));
                };
                let (status, mut response) = match request.kind {
                    DoorbellKind::TdxReport => match tdx.report(&request.request) {
                        Ok(report) => (0, report),
                        Err(status) => (status, Vec::new()),
                    },
                    DoorbellKind::TdxRtmrExtend => (tdx.extend(&request.request), Vec::new()),
                    _ => (0, tdx.get_quote(&request.request, GET_QUOTE_CAPACITY)),
                };
                if status != 0 {
                    progress(format_args!("simulated TDX module refused {:?} (status {status:#x})", request.kind));
                }
                if let Some(Tamper::FirmwareAnswerByte(offset)) = launch.tamper
                    && request.kind == DoorbellKind::TdxReport
                    && !conversation.tampered_firmware_answer
                    && let Some(byte) = response.get_mut(offset)
                {
                    *byte ^= 0x01;
                    conversation.tampered_firmware_answer = true;
                    progress(format_args!("tamper: flipped byte {offset:#x} of the TDREPORT"));
                }
                Some(Message::DoorbellResponse(DoorbellResponse {
                    kind: request.kind,
                    status,
                    response,
                    certificates: None,
                }))
            }
        },
        Message::Evidence(evidence) => {
            progress(format_args!(
                "evidence received: {}-byte report, {:?}",
                evidence.evidence.len(),
                evidence.platform
            ));
            if evidence.platform != launch.expected_platform() {
                let text = format!(
                    "evidence of platform {:?} on a {:?} launch",
                    evidence.platform,
                    launch.expected_platform()
                );
                fail(conversation, format!("the guest sent {text}"));
                return Ok(Some(Message::Error(ErrorMsg::new(ErrorCode::VerificationFailed, &text))));
            }
            if conversation.nonce.as_deref() != Some(evidence.nonce.as_slice()) {
                fail(conversation, "the guest echoed a nonce other than the challenge".into());
                return Ok(Some(Message::Error(ErrorMsg::new(ErrorCode::VerificationFailed, "nonce echo mismatch"))));
            }
            write_evidence(&launch.out, &evidence)?;
            let mut report = evidence.evidence.clone();
            if let Some(Tamper::EvidenceByte(offset)) = launch.tamper
                && let Some(byte) = report.get_mut(offset)
            {
                *byte ^= 0x01;
                progress(format_args!("tamper: flipped evidence byte {offset:#x} on its way to the issuer"));
            }
            // SEV-SNP endorsements: the certificate table the guest forwarded (extended guest
            // request), else the host's own copies of the VCEK and ASK.
            if evidence.platform == Platform::Tdx
                && let Err(e) = hardware_tdx_collateral(launch, &report)
            {
                fail(conversation, format!("the issuer cannot judge the quote's TCB: {e}"));
                return Ok(Some(Message::Error(ErrorMsg::new(ErrorCode::VerificationFailed, &e.to_string()))));
            }
            let endorsements =
                match (&evidence.certificates, launch.tdx.is_some() || evidence.platform == Platform::Tdx) {
                    (_, true) => Vec::new(),
                    (Some(table), false) => match twi_verifier::snp::endorsements_from_table(table) {
                        Ok(endorsements) => {
                            progress("endorsements: VCEK and ASK from the guest's certificate table");
                            endorsements
                        }
                        Err(e) => {
                            fail(conversation, format!("the issuer rejected the evidence: {e}"));
                            return Ok(Some(Message::Error(ErrorMsg::new(
                                ErrorCode::VerificationFailed,
                                &e.to_string(),
                            ))));
                        }
                    },
                    (None, false) if launch.hardware.is_some() => match cached_endorsements(launch, &report) {
                        Ok(endorsements) => endorsements,
                        Err(e) => {
                            fail(conversation, format!("the issuer rejected the evidence: {e}"));
                            return Ok(Some(Message::Error(ErrorMsg::new(
                                ErrorCode::VerificationFailed,
                                &e.to_string(),
                            ))));
                        }
                    },
                    (None, false) => {
                        progress(
                            "endorsements: the guest forwarded no certificate table; using the host's VCEK and ASK",
                        );
                        launch.psp.endorsements()?
                    }
                };
            let nonce = conversation.nonce_for_issuer.clone().unwrap_or_default();
            let bundle = EvidenceBundle {
                platform: evidence.platform,
                evidence: &report,
                public_key: &evidence.public_key,
                nonce: &nonce,
                endorsements: &endorsements,
            };
            let events = evidence.event_log.as_deref().unwrap_or_default();
            if conversation.mechanism == Some(Mechanism::B) {
                // Mechanism B: the Verifier answers with a signed attestation result binding the
                // key; the workload takes it to the Credential Authority itself.
                return Ok(Some(match launch.issuer.attestation_result(&bundle, events) {
                    Ok((ear_jwt, workload_id)) => {
                        progress(format_args!(
                            "verified: attestation result for {} ({}-byte EAR) sent to the guest",
                            workload_id,
                            ear_jwt.len()
                        ));
                        conversation.attestation_result = Some(ear_jwt.clone());
                        Message::AttestationResult(AttestationResult { ear: ear_jwt })
                    }
                    Err(rejection) => {
                        fail(conversation, format!("the issuer rejected the evidence: {rejection}"));
                        Message::Error(ErrorMsg::new(ErrorCode::VerificationFailed, &rejection))
                    }
                }));
            }
            if conversation.mechanism == Some(Mechanism::D) {
                // Mechanism D: the Verifier appraises; the Key Store releases the provisioned key
                // encrypted to the ephemeral key the evidence binds.
                return Ok(Some(match launch.issuer.release(&bundle, events) {
                    Ok((issued, mut release, key_store_jwk)) => {
                        progress(format_args!(
                            "verified; the Key Store released the key of {} (serial {}), HPKE-encrypted to the ephemeral key the evidence binds",
                            issued.credential.workload_id, issued.credential.serial
                        ));
                        write_key_release(&launch.out, &release, &evidence.public_key, key_store_jwk)?;
                        if let Some(Tamper::ReleaseByte(offset)) = launch.tamper
                            && let Some(byte) = release.ciphertext.get_mut(offset)
                        {
                            *byte ^= 0x01;
                            progress(format_args!("tamper: flipped byte {offset:#x} of the released ciphertext"));
                        }
                        let reply = Message::KeyRelease(KeyRelease {
                            certificate: release.provisioned.certificate_der,
                            workload_id: issued.credential.workload_id.clone(),
                            enc: release.enc,
                            ciphertext: release.ciphertext,
                        });
                        conversation.issued = Some(issued);
                        reply
                    }
                    Err(rejection) => {
                        fail(conversation, format!("the issuer refused the key release: {rejection}"));
                        Message::Error(ErrorMsg::new(ErrorCode::VerificationFailed, &rejection))
                    }
                }));
            }
            let result = match &launch.renew {
                Some(previous) => {
                    progress(format_args!("renewal of credential {previous}"));
                    launch.issuer.renew(&bundle, events, previous)
                }
                None => launch.issuer.issue(&bundle, events, conversation.mechanism),
            };
            match result {
                Ok(issued) => {
                    let credential = &issued.credential;
                    progress(format_args!(
                        "verified: chip {}…, measurement {}…",
                        credential.chip_id.get(..16).unwrap_or(&credential.chip_id),
                        credential.measurement.get(..16).unwrap_or(&credential.measurement)
                    ));
                    progress(format_args!("issued: {} (serial {})", credential.workload_id, credential.serial));
                    // Mechanism A: the credential comes inside the Verifier's attestation result.
                    let attestation_result = (conversation.mechanism == Some(Mechanism::A))
                        .then(|| credential.attestation_result.clone())
                        .flatten();
                    let reply = Message::Credential(Credential {
                        certificate: issued.certificate_der.clone(),
                        workload_id: credential.workload_id.clone(),
                        attestation_result,
                    });
                    conversation.issued = Some(issued);
                    Some(reply)
                }
                Err(rejection) => {
                    fail(conversation, format!("the issuer rejected the evidence: {rejection}"));
                    Some(Message::Error(ErrorMsg::new(ErrorCode::VerificationFailed, &rejection)))
                }
            }
        }
        Message::CredentialRequest(request) => {
            let expected = conversation.attestation_result.take();
            if conversation.mechanism != Some(Mechanism::B) || expected.is_none() {
                let text = "a CredentialRequest answers an AttestationResult (mechanism B) only";
                fail(conversation, format!("the guest sent {text}"));
                return Ok(Some(Message::Error(ErrorMsg::new(ErrorCode::UnexpectedMessage, text))));
            }
            write_credential_request(&launch.out, &request)?;
            let request_in =
                CredentialRequestIn { ear: &request.ear, public_key: &request.public_key, proof: &request.proof };
            match launch.issuer.redeem(&request_in) {
                Ok(issued) => {
                    progress(format_args!(
                        "the Credential Authority accepted the attestation result and proof of possession; issued: {} (serial {})",
                        issued.credential.workload_id, issued.credential.serial
                    ));
                    let reply = Message::Credential(Credential {
                        certificate: issued.certificate_der.clone(),
                        workload_id: issued.credential.workload_id.clone(),
                        attestation_result: None,
                    });
                    conversation.issued = Some(issued);
                    Some(reply)
                }
                Err(rejection) => {
                    fail(conversation, format!("the Credential Authority refused the request: {rejection}"));
                    Some(Message::Error(ErrorMsg::new(ErrorCode::PolicyRejected, &rejection)))
                }
            }
        }
        Message::Done(done) => {
            conversation.credential_accepted = done.credential_accepted;
            if done.credential_accepted {
                progress("the guest verified the credential against its built-in issuer anchor");
            } else {
                fail(conversation, "the guest rejected the credential".into());
            }
            None
        }
        // The guest answers each malformed frame it skips with Error(Malformed) and carries on;
        // only its other errors end the session.
        Message::Error(error) if error.code == ErrorCode::Malformed => {
            progress(format_args!("the guest skipped a malformed frame: {}", error.message));
            None
        }
        Message::Error(error) => {
            fail(conversation, format!("the guest reported an error ({:?}): {}", error.code, error.message));
            None
        }
        Message::Log(line) => {
            progress(format_args!("guest: {}", line.line));
            None
        }
        other => {
            let text = format!("{} is not a message a guest sends", other.name());
            Some(Message::Error(ErrorMsg::new(ErrorCode::UnexpectedMessage, &text)))
        }
    })
}

fn write_secret_file(path: &Path, bytes: &[u8]) -> Result<()> {
    twi_issuer::ca::write_private(path, bytes).map_err(|e| anyhow!("{e}"))
}

/// Keeps the evidence as received (before any tampering) for the user and for audits:
/// `evidence.bin` is the raw report, `evidence.json` says what it binds.
fn write_evidence(out: &Path, evidence: &twi_proto::msg::Evidence) -> Result<()> {
    fs::write(out.join("evidence.bin"), &evidence.evidence)?;
    let json = serde_json::json!({
        "platform": format!("{:?}", evidence.platform),
        "evidence": "evidence.bin",
        "nonce": hex::encode(&evidence.nonce),
        "public_key": hex::encode(&evidence.public_key),
        "report_data_binding": "SHA-512(\"TWI-REPORTDATA-v1\\0\" || u16be(len nonce) || nonce || u16be(len key) || key)",
        "event_log": evidence.event_log.as_ref().map(|events| events.iter().map(|e| serde_json::json!({
            "rtmr": e.rtmr,
            "event_type": format!("{:#x}", e.event_type),
            "digest": hex::encode(&e.digest),
            "data": hex::encode(&e.data),
        })).collect::<Vec<_>>()),
    });
    fs::write(out.join("evidence.json"), serde_json::to_string_pretty(&json)? + "\n")?;
    Ok(())
}

/// Mechanism D: `key-release.json` records what the Key Store sent (the HPKE `enc` and
/// ciphertext are safe to keep: only the guest's ephemeral key opens them) and its signed
/// receipt, with the key that verifies it.
fn write_key_release(
    out: &Path,
    release: &twi_issuer::keystore::Release,
    ephemeral_public_key: &[u8],
    key_store_jwk: serde_json::Value,
) -> Result<()> {
    let json = serde_json::json!({
        "workload_id": release.provisioned.workload_id,
        "x509_serial": release.provisioned.serial_hex,
        "provisioned_public_key": hex::encode(&release.provisioned.public_key),
        "ephemeral_public_key": hex::encode(ephemeral_public_key),
        "hpke": "RFC 9180 base mode, DHKEM(P-384, HKDF-SHA384) / HKDF-SHA384 / AES-256-GCM",
        "info": "\"TWI-KEY-RELEASE-v1\\0\" || u16be(len nonce) || nonce || ephemeral_public_key",
        "aad": "\"TWI-KEY-RELEASE-CERT-v1\\0\" || SHA-256(certificate DER)",
        "enc": hex::encode(&release.enc),
        "ciphertext": hex::encode(&release.ciphertext),
        "receipt": release.receipt,
        "key_store_key": key_store_jwk,
    });
    fs::write(out.join("key-release.json"), serde_json::to_string_pretty(&json)? + "\n")?;
    Ok(())
}

/// Mechanism B: keeps the guest's CredentialRequest (`credential-request.json`) so that its
/// proof of possession can be checked by anyone.
fn write_credential_request(out: &Path, request: &twi_proto::msg::CredentialRequest) -> Result<()> {
    let json = serde_json::json!({
        "ear": request.ear,
        "public_key": hex::encode(&request.public_key),
        "proof": hex::encode(&request.proof),
        "proof_signs": "ECDSA P-384/SHA-384 (DER) over \"TWI-CREDREQ-v1\\0\" || eat_nonce || public_key || SHA-256(ear)",
    });
    fs::write(out.join("credential-request.json"), serde_json::to_string_pretty(&json)? + "\n")?;
    Ok(())
}

/// COM1: every line goes to `console.log`; lines are shown on stderr as they arrive.
struct Console {
    lines: mpsc::Receiver<String>,
    fatal: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

fn spawn_console_reader(stdout: std::process::ChildStdout, out: &Path) -> Result<Console> {
    let path = out.join("console.log");
    let mut log = fs::File::create(&path).with_context(|| format!("cannot write {}", path.display()))?;
    let (tx, rx) = mpsc::channel();
    let fatal = std::sync::Arc::new(std::sync::Mutex::new(None));
    let fatal_writer = fatal.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n') {
            let Ok(line) = line else { break };
            let text = String::from_utf8_lossy(&line).trim_end_matches('\r').to_string();
            let _ = writeln!(log, "{text}");
            if let Some(reason) = text.strip_prefix("FATAL: ")
                && let Ok(mut f) = fatal_writer.lock()
            {
                f.get_or_insert_with(|| reason.to_string());
            }
            if tx.send(text).is_err() {
                break;
            }
        }
    });
    Ok(Console { lines: rx, fatal })
}

fn drain_console(console: &Console) {
    // Give the reader thread a moment after QEMU exits so the last lines are not lost.
    while let Ok(line) = console.lines.recv_timeout(Duration::from_millis(1)) {
        eprintln!("  guest | {line}");
    }
}

/// After QEMU exited: every remaining line, until the reader thread sees end of file (bounded,
/// in case a grandchild still holds the pipe open).
fn finish_console(console: &Console) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match console.lines.recv_timeout(left) {
            Ok(line) => eprintln!("  guest | {line}"),
            Err(_) => break,
        }
    }
}

fn spawn_stderr_reader(mut stderr: std::process::ChildStderr) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    })
}
