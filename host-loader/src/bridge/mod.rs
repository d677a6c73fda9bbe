//! The bridge: the host's half of the channel protocol, as a pure state machine from message
//! to message. A guest message goes in; the replies come out, with what the run learned
//! ([`Event`]s: progress for the user, the evidence and releases to keep). No QEMU, no
//! sockets, no files: the issuer's roles are behind [`Roles`] (in-process [`twi_issuer::Issuer`]
//! or `twi serve` through [`crate::remote::RemoteIssuer`]), the guest's firmware behind
//! [`Firmware`] (the simulators of `twi-sim`, or real hardware), and a hostile host is a
//! decorator around either ([`tamper`]). `twi run` drives it over QEMU's channel socket; tests
//! drive it over memory.
//!
//! The loader is untrusted plumbing (TACRA's CAS client): the issuer decides on the evidence
//! alone, and the guest checks what it gets against its measured manifest. The bridge still
//! refuses what no honest guest sends, so that a misbehaving guest fails early and clearly.
//!
//! ```text
//! Booting ──Hello──▶ Challenged ──Evidence──▶ (A, C: Credential; D: KeyRelease) ──Done──▶ outcome
//!                        │
//!                        └──Evidence (B)──▶ Redeeming ──CredentialRequest──▶ Credential ──Done──▶
//! ```
//! Doorbell requests are answered in any phase (the simulated firmware keeps its own state);
//! a second Hello starts over with a new challenge; a second Evidence is the issuer's to
//! refuse (a nonce is single-use). The SEV-SNP certificate table and the TDX quote a doorbell
//! answer carries are kept (`delivered.rs`), so that they cross the channel once: the guest's
//! evidence names them by SHA-384 and the bridge presents what it delivered, or refuses a name
//! it never gave.
//!
//! Driving it (here over the simulated PSP and the embedded issuer; the guest's bytes come
//! from wherever the guest is — QEMU's socket, or an in-memory link in a test):
//!
//! ```no_run
//! # fn demo(issuer: &mut twi_issuer::Issuer, psp: &twi_sim::snp::SimPsp, from_guest: &[u8])
//! #     -> Result<(), Box<dyn std::error::Error>> {
//! use twi_host_loader::bridge::{Bridge, Config, Event, firmware::SimSnp};
//!
//! let launch = psp.launch()?; // its secrets page (VMPCK0) goes into the guest's memory
//! let config = Config { measurement: vec![0; 48], ..Config::default() };
//! let mut bridge = Bridge::new(config, issuer, SimSnp { psp, launch });
//! let (to_guest, events) = bridge.feed(from_guest)?; // framed replies, and what was learned
//! for event in events {
//!     if let Event::Progress(line) = event {
//!         eprintln!("{line}");
//!     }
//! }
//! # let _ = to_guest;
//! let outcome = bridge.into_outcome(); // the credential, whether the guest accepted it, why not
//! # let _ = outcome;
//! # Ok(()) }
//! ```

mod delivered;
pub mod firmware;
pub mod relay;
pub mod roles;
pub mod tamper;
#[cfg(test)]
mod tests;
pub mod timeline;

use twi_issuer::policy::Mechanism;
use twi_issuer::{CredentialRequestIn, EvidenceBundle};
use twi_proto::msg::{
    AttestationResult, CAP_MECHANISM_A, CAP_MECHANISM_B, CAP_MECHANISM_C, CAP_MECHANISM_D, Challenge, Credential,
    CredentialRequest, DoorbellKind, DoorbellRequest, ErrorCode, ErrorMsg, Evidence, Freshness, Hello, Initiate,
    KeyRelease, Message, PROTOCOL_VERSION, Platform,
};
use twi_proto::{MessageReader, write_message};

use delivered::Delivered;
pub use firmware::{Endorsements, Firmware, FirmwareError};
pub use relay::{Conduit, ConduitError, Offline, TamperedConduit};
pub use roles::{Declined, Presented, Refusal, Released, Roles};

use crate::answers::Obtained;

/// What the bridge needs to know about the launch beyond its roles and firmware.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The launch measurement the TEE will report (SNP MEASUREMENT or TDX MRTD): the policy
    /// decides from it whether the challenge is a nonce or an epoch id, and which mechanism.
    pub measurement: Vec<u8>,
    /// The credential acquisition mechanism (`None`: the policy's choice, else C).
    pub mechanism: Option<Mechanism>,
    /// Renew this credential (X.509 serial in hex, or WIT jti) instead of issuing a first one.
    pub renew: Option<String>,
}

/// What the run learned from one message, in order.
#[derive(Debug, Clone)]
pub enum Event {
    /// A line for the user (`twi run` prints it as `twi: …`).
    Progress(String),
    /// The evidence as the guest sent it, with the quote it named by digest (TDX under the
    /// simulator) in place (kept as `evidence.bin` / `evidence.json`).
    Evidence(Evidence),
    /// Mechanism D: the Key Store's release, as sent to the guest (`key-release.json`).
    KeyRelease(Box<Released>, Vec<u8>),
    /// Mechanism B: the guest's credential request (`credential-request.json`).
    CredentialRequest(CredentialRequest),
}

/// The answer to one guest message (or to bytes holding several).
#[derive(Debug, Default)]
pub struct Step {
    /// Messages for the guest, in order.
    pub replies: Vec<Message>,
    pub events: Vec<Event>,
}

/// How the conversation ended, for the caller to judge together with the guest's exit.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The credential the issuer returned (and the guest was sent).
    pub issued: Option<Obtained>,
    /// The guest's Done said it accepted the credential.
    pub accepted: bool,
    /// The first reason the run cannot succeed, in words for the user.
    pub failure: Option<String>,
    /// The guest got as far as a challenge (it booted and spoke the protocol).
    pub challenged: bool,
    /// When each message of the acquisition crossed.
    pub timeline: timeline::Timeline,
}

/// The bridge cannot go on (the run must stop): the issuer or the simulator failed, not the
/// guest.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("{0}")]
    Issuer(Refusal),
    #[error(transparent)]
    Firmware(FirmwareError),
    #[error("encoding a reply: {0}")]
    Encoding(twi_proto::ProtoError),
}

/// The challenge this launch is answering.
#[derive(Debug, Clone)]
struct Challenged {
    nonce: Vec<u8>,
    mechanism: Mechanism,
    /// The target of the Initiate it answers, and the freshness kind the issuer named.
    target: String,
    freshness: Freshness,
}

#[derive(Debug)]
enum Phase {
    /// No Hello yet.
    Booting,
    /// Hello came (with these capabilities); an Initiate is due.
    Greeted(u32),
    /// A Challenge went out; evidence is due.
    Challenged(Challenged),
    /// Mechanism B: the attestation result went out; the guest's CredentialRequest is due.
    Redeeming(Challenged),
}

/// The host's side of one guest's channel.
pub struct Bridge<'a> {
    config: Config,
    roles: Box<dyn Roles + 'a>,
    firmware: Box<dyn Firmware + 'a>,
    /// The workload's connections and the host's clock ([`Offline`] unless given).
    conduit: Box<dyn Conduit + 'a>,
    phase: Phase,
    /// What the guest's Hello advertised (every acquisition of the launch goes by it).
    capabilities: u32,
    outcome: Outcome,
    reader: MessageReader,
    /// SEV-SNP: the certificate tables the doorbell answers delivered, which the guest's
    /// evidence names by digest instead of sending them back.
    delivered_tables: Delivered,
    /// TDX: the quotes the GetQuote answers delivered, likewise.
    delivered_quotes: Delivered,
}

impl std::fmt::Debug for Bridge<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge").field("platform", &self.firmware.platform()).field("phase", &self.phase).finish()
    }
}

/// The [`Hello::capabilities`] bit of a mechanism.
pub fn mechanism_capability(mechanism: Mechanism) -> u32 {
    match mechanism {
        Mechanism::A => CAP_MECHANISM_A,
        Mechanism::B => CAP_MECHANISM_B,
        Mechanism::C => CAP_MECHANISM_C,
        Mechanism::D => CAP_MECHANISM_D,
    }
}

fn error(code: ErrorCode, text: &str) -> Message {
    Message::Error(ErrorMsg::new(code, text))
}

impl<'a> Bridge<'a> {
    /// A bridge for one launch: `roles` answer for the issuer, `firmware` for the guest's TEE.
    pub fn new(config: Config, roles: impl Roles + 'a, firmware: impl Firmware + 'a) -> Self {
        Self {
            config,
            roles: Box::new(roles),
            firmware: Box::new(firmware),
            conduit: Box::new(Offline),
            phase: Phase::Booting,
            capabilities: 0,
            outcome: Outcome::default(),
            reader: MessageReader::new(),
            delivered_tables: Delivered::tables(),
            delivered_quotes: Delivered::quotes(),
        }
    }

    /// Relays the workload's connections (and answers its time requests) through `conduit`.
    pub fn with_conduit(mut self, conduit: impl Conduit + 'a) -> Self {
        self.conduit = Box::new(conduit);
        self
    }

    /// The platform the guest must report.
    pub fn platform(&self) -> Platform {
        self.firmware.platform()
    }

    /// Before the guest speaks (while it boots): the issuer's Verifier checks the endorsements
    /// this host will deliver, so that appraising the evidence that comes with them is left
    /// with the report itself. Anything wrong with them is refused at the evidence, as before.
    pub fn prepare(&mut self) {
        if let Some(endorsements) = self.firmware.endorsements_ahead() {
            self.roles.prepare(self.firmware.platform(), &endorsements);
        }
    }

    /// How the conversation stands (final once the guest has exited).
    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    /// Ends the conversation.
    pub fn into_outcome(self) -> Outcome {
        self.outcome
    }

    /// Bytes from the channel in (any split: partial frames wait for the rest); the framed
    /// replies out, with the events of every complete message. A malformed frame gets an
    /// Error frame back and is skipped, as the guest does with ours.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(Vec<u8>, Vec<Event>), BridgeError> {
        let (mut out, mut events) = (Vec::new(), Vec::new());
        for &byte in bytes {
            let Some(result) = self.reader.push(byte) else { continue };
            let step = match result {
                Ok(message) => self.receive(message)?,
                Err(e) => Step {
                    replies: vec![error(e.code(), "malformed frame from the host's view")],
                    events: vec![Event::Progress(format!("malformed frame from the guest: {e}"))],
                },
            };
            for reply in &step.replies {
                write_message(reply, &mut out).map_err(BridgeError::Encoding)?;
            }
            events.extend(step.events);
        }
        Ok((out, events))
    }

    /// One message from the guest in; the replies and what was learned out.
    pub fn receive(&mut self, message: Message) -> Result<Step, BridgeError> {
        let mut step = Step::default();
        // The workload's relayed traffic is not part of the acquisition's timeline.
        if let Some(reply) = self.relay(&message, &mut step) {
            step.replies.extend(reply);
            return Ok(step);
        }
        let (asked, arrived) = (message.name(), std::time::Instant::now());
        self.answer(message, &mut step)?;
        self.outcome.timeline.record(asked, arrived, &step.replies);
        Ok(step)
    }

    /// A message of the acquisition (or the guest's log line or error): its replies into `step`.
    fn answer(&mut self, message: Message, step: &mut Step) -> Result<(), BridgeError> {
        let reply = match message {
            Message::Hello(hello) => self.hello(&hello, step),
            Message::Initiate(initiate) => self.initiate(&initiate, step),
            Message::DoorbellRequest(request) => self.doorbell(&request, step)?,
            Message::Evidence(evidence) => self.evidence(evidence, step)?,
            Message::CredentialRequest(request) => self.credential_request(request, step),
            Message::Done(done) => {
                self.outcome.accepted = done.credential_accepted;
                if done.credential_accepted {
                    step.progress("the guest verified the credential against its built-in issuer anchor");
                } else {
                    self.fail("the guest rejected the credential".into());
                }
                None
            }
            // The guest answers each malformed frame it skips with Error(Malformed) and carries
            // on; only its other errors end the session.
            Message::Error(e) if e.code == ErrorCode::Malformed => {
                step.progress(format!("the guest skipped a malformed frame: {}", e.message));
                None
            }
            Message::Error(e) => {
                self.fail(format!("the guest reported an error ({:?}): {}", e.code, e.message));
                None
            }
            Message::Log(line) => {
                step.progress(format!("guest: {}", line.line));
                None
            }
            other => {
                Some(error(ErrorCode::UnexpectedMessage, &format!("{} is not a message a guest sends", other.name())))
            }
        };
        step.replies.extend(reply);
        Ok(())
    }

    /// Records the first reason the run cannot succeed.
    fn fail(&mut self, reason: String) {
        self.outcome.failure.get_or_insert(reason);
    }

    /// Records `reason` as the run's failure and answers the guest with `code` and `text`.
    fn refuse(&mut self, reason: String, code: ErrorCode, text: &str) -> Message {
        self.fail(reason);
        error(code, text)
    }

    fn hello(&mut self, hello: &Hello, step: &mut Step) -> Option<Message> {
        step.progress(format!("booted: {} on platform {:?}", hello.runtime, hello.platform));
        if hello.version != PROTOCOL_VERSION {
            let text =
                format!("protocol version {} is not supported (this loader speaks {PROTOCOL_VERSION})", hello.version);
            return Some(self.refuse(format!("the guest speaks {text}"), ErrorCode::UnsupportedVersion, &text));
        }
        let platform = self.firmware.platform();
        if hello.platform != platform {
            let text =
                format!("platform {:?} cannot run under `--platform {}`", hello.platform, self.firmware.option());
            return Some(self.refuse(format!("the guest reports {text}"), ErrorCode::UnexpectedMessage, &text));
        }
        self.capabilities = hello.capabilities;
        self.phase = Phase::Greeted(hello.capabilities);
        None
    }

    /// TACRA Initiate: the issuer's policy for the workload and target says how (mechanism,
    /// freshness kind) and hands out the handle; the guest gets them in a Challenge.
    fn initiate(&mut self, initiate: &Initiate, step: &mut Step) -> Option<Message> {
        let Phase::Greeted(capabilities) = self.phase else {
            let text = "an Initiate before a Hello";
            return Some(self.refuse(format!("the guest sent {text}"), ErrorCode::UnexpectedMessage, text));
        };
        let platform = self.firmware.platform();
        let challenge = match self.roles.initiate(platform, &self.config.measurement, initiate) {
            Ok(challenge) => challenge,
            Err(declined) => {
                let reason = format!("the issuer declined the target {}: {}", initiate.target, declined.refusal);
                return Some(self.refuse(reason, declined.code, &declined.refusal.0));
            }
        };
        let mechanism = self.config.mechanism.or(challenge.mechanism).unwrap_or(Mechanism::C);
        if capabilities & mechanism_capability(mechanism) == 0 {
            let text = format!(
                "the guest does not advertise credential acquisition mechanism {} (capabilities {capabilities:#x})",
                mechanism.name(),
            );
            return Some(self.refuse(text.clone(), ErrorCode::UnexpectedMessage, &text));
        }
        step.progress(format!(
            "credential acquisition mechanism {} for target {} ({}), freshness {}",
            mechanism.name(),
            initiate.target,
            initiate.credential_type.name(),
            challenge.freshness.name()
        ));
        if mechanism == Mechanism::D
            && let Err(text) = self.provision(step)
        {
            return Some(self.refuse(text.clone(), ErrorCode::Internal, &text));
        }
        // The handle is the Verifier's, and only the Verifier checks it: the guest binds it into
        // its report, and the issuer refuses a nonce it did not issue or already saw.
        self.outcome.challenged = true;
        let (nonce, freshness) = (challenge.nonce, challenge.freshness);
        let target = initiate.target.clone();
        self.phase = Phase::Challenged(Challenged { nonce: nonce.clone(), mechanism, target, freshness });
        Some(Challenge { nonce, key_release: mechanism == Mechanism::D, freshness }.into())
    }

    /// Mechanism D: the workload owner's provisioning step, done here once for the demo.
    /// `Err`: why it failed.
    fn provision(&mut self, step: &mut Step) -> Result<(), String> {
        match self.roles.provision(self.firmware.platform(), &self.config.measurement) {
            Ok((provisioned, created)) => {
                step.progress(format!(
                    "Key Store: {} credential for {} (serial {}){}",
                    if created { "provisioned a" } else { "holds the provisioned" },
                    provisioned.workload_id,
                    provisioned.serial_hex,
                    if created { " and its key, as the workload owner would" } else { "" }
                ));
                Ok(())
            }
            Err(e) => Err(format!("the Key Store cannot provision a credential: {e}")),
        }
    }

    fn doorbell(&mut self, request: &DoorbellRequest, step: &mut Step) -> Result<Option<Message>, BridgeError> {
        match self.firmware.doorbell(request) {
            Ok(answer) => {
                if let Some(table) = &answer.certificates {
                    self.delivered_tables.remember_table(table);
                }
                if request.kind == DoorbellKind::TdxGetQuote && answer.status == 0 {
                    self.delivered_quotes.remember_quote(&answer.response);
                }
                if answer.status != 0 {
                    step.progress(format!(
                        "the simulated firmware refused {:?} (status {:#x})",
                        request.kind, answer.status
                    ));
                }
                Ok(Some(answer.into()))
            }
            Err(FirmwareError::NotSimulated) => {
                let text = FirmwareError::NotSimulated.to_string();
                Ok(Some(self.refuse(format!("the guest misbehaved: {text}"), ErrorCode::UnexpectedMessage, &text)))
            }
            Err(FirmwareError::OtherPlatform(text)) => Ok(Some(error(ErrorCode::DoorbellFailed, text))),
            Err(e) => Err(BridgeError::Firmware(e)),
        }
    }

    fn evidence(&mut self, mut evidence: Evidence, step: &mut Step) -> Result<Option<Message>, BridgeError> {
        if let Some(refusal) = self.present_named_quote(&mut evidence, step) {
            return Ok(Some(refusal));
        }
        let platform = self.firmware.platform();
        if evidence.platform != platform {
            let text = format!("evidence of platform {:?} on a {platform:?} launch", evidence.platform);
            return Ok(Some(self.refuse(format!("the guest sent {text}"), ErrorCode::VerificationFailed, &text)));
        }
        let challenged = match &self.phase {
            Phase::Challenged(c) | Phase::Redeeming(c) => c.clone(),
            _ => {
                let text = "evidence before a Challenge";
                return Ok(Some(self.refuse(format!("the guest sent {text}"), ErrorCode::UnexpectedMessage, text)));
            }
        };
        if challenged.freshness.has_handle() && challenged.nonce != evidence.nonce {
            let reason = "the guest echoed a nonce other than the challenge".to_string();
            return Ok(Some(self.refuse(reason, ErrorCode::VerificationFailed, "nonce echo mismatch")));
        }
        if challenged.target != evidence.target {
            let reason = format!("the guest's evidence is for {}, not the target it Initiated", evidence.target);
            return Ok(Some(self.refuse(reason, ErrorCode::VerificationFailed, "target mismatch")));
        }
        step.events.push(Event::Evidence(evidence.clone()));
        let endorsements = match self.endorsements(&evidence, step)? {
            Ok(endorsements) => endorsements,
            Err(reply) => return Ok(Some(reply)),
        };
        let bundle = EvidenceBundle::of_message(&evidence, &endorsements);
        let presented = Presented { bundle, events: evidence.event_log.as_deref().unwrap_or_default() };
        Ok(Some(match challenged.mechanism {
            Mechanism::B => self.attest(presented, challenged, step),
            Mechanism::D => self.release(presented, &evidence.public_key, step),
            Mechanism::A | Mechanism::C => self.issue(presented, challenged.mechanism, step),
        }))
    }

    /// TDX under the simulator: the quote the guest named by digest (`Evidence::evidence_sha384`)
    /// instead of sending it back, put in place: the one this host delivered in a GetQuote
    /// answer under that name (the name stays, for the record). `Some`: the reply refusing a
    /// name this host never delivered.
    fn present_named_quote(&mut self, evidence: &mut Evidence, step: &mut Step) -> Option<Message> {
        let Some(digest) = &evidence.evidence_sha384 else {
            step.progress(format!(
                "evidence received: {}-byte report, {:?}",
                evidence.evidence.len(),
                evidence.platform
            ));
            return None;
        };
        match self.delivered_quotes.named(digest) {
            Ok(quote) => evidence.evidence = quote.to_vec(),
            Err(e) => {
                let text = "the evidence names a quote this host did not deliver";
                return Some(self.refuse(e, ErrorCode::VerificationFailed, text));
            }
        }
        step.progress(format!(
            "evidence received: the {}-byte quote this host delivered, named by the guest (sha384:{}), {:?}",
            evidence.evidence.len(),
            hex::encode(digest),
            evidence.platform
        ));
        None
    }

    /// The certificates (SEV-SNP) the Verifier checks the report with, and for real TDX the
    /// collateral it judges the quote's TCB with. `Err`: the reply refusing the evidence.
    fn endorsements(
        &mut self,
        evidence: &Evidence,
        step: &mut Step,
    ) -> Result<Result<Vec<Vec<u8>>, Message>, BridgeError> {
        let refused = |bridge: &mut Self, reason: String, text: String| {
            Ok(Err(bridge.refuse(reason, ErrorCode::VerificationFailed, &text)))
        };
        if matches!(evidence.platform, Platform::Tdx | Platform::SimTdx) {
            let accepted = match self.firmware.collateral(&evidence.evidence) {
                Ok(Some(collateral)) => self.roles.accept_tdx_collateral(collateral).map_err(|e| e.to_string()),
                Ok(None) => Ok(()),
                Err(FirmwareError::Simulator(e)) => return Err(BridgeError::Firmware(e.into())),
                Err(e) => Err(e.to_string()),
            };
            return match accepted {
                Ok(()) => Ok(Ok(Vec::new())),
                Err(e) => refused(self, format!("the issuer cannot judge the quote's TCB: {e}"), e),
            };
        }
        // SEV-SNP: the certificate table the guest forwarded (extended guest request), or the
        // one this host delivered and the guest named, else the host's own copies of the VCEK
        // and its chain.
        let found = match (&evidence.certificates, &evidence.certificates_sha384) {
            (Some(table), _) => table_endorsements(table, "the guest's certificate table".into()),
            (None, Some(digest)) => match self.delivered_tables.named(digest) {
                Ok(table) => {
                    let source = format!("the certificate table this host delivered (sha384:{})", hex::encode(digest));
                    table_endorsements(table, source)
                }
                Err(e) => {
                    let text = "the evidence names a certificate table this host did not deliver";
                    return refused(self, e, text.into());
                }
            },
            (None, None) => match self.firmware.endorsements(&evidence.evidence) {
                Err(FirmwareError::Simulator(e)) => return Err(BridgeError::Firmware(e.into())),
                other => other.map_err(|e| e.to_string()),
            },
        };
        match found {
            Ok(found) => {
                step.progress(format!("endorsements: {}", found.source));
                Ok(Ok(found.certificates))
            }
            Err(e) => refused(self, format!("the issuer rejected the evidence: {e}"), e),
        }
    }

    /// Mechanisms A and C (and renewals): the credential for the attested key.
    fn issue(&mut self, presented: Presented<'_>, mechanism: Mechanism, step: &mut Step) -> Message {
        let result = match &self.config.renew {
            Some(previous) => {
                step.progress(format!("renewal of credential {previous}"));
                self.roles.renew(presented, previous)
            }
            None => self.roles.issue(presented, Some(mechanism)),
        };
        match result {
            Ok(issued) => {
                let credential = &issued.credential;
                step.progress(format!(
                    "verified: chip {}…, measurement {}…",
                    credential.chip_id.get(..16).unwrap_or(&credential.chip_id),
                    credential.measurement.get(..16).unwrap_or(&credential.measurement)
                ));
                step.progress(format!("issued: {} (serial {})", credential.workload_id, credential.serial));
                // Mechanism A: the credential comes inside the Verifier's attestation result.
                let attestation_result =
                    (mechanism == Mechanism::A).then(|| credential.attestation_result.clone()).flatten();
                let reply = Credential {
                    certificate: issued.certificate_der.clone(),
                    workload_id: credential.workload_id.clone(),
                    attestation_result,
                    wit: Some(issued.credential.wit.clone()),
                };
                self.acquired(issued);
                reply.into()
            }
            Err(rejection) => self.rejected(rejection),
        }
    }

    /// One acquisition is done: the outcome records it (the last one of the launch is what
    /// `twi run` writes out) and the workload may Initiate the next (another target or type).
    fn acquired(&mut self, issued: Obtained) {
        self.outcome.issued = Some(issued);
        self.phase = Phase::Greeted(self.capabilities);
    }

    fn rejected(&mut self, rejection: Refusal) -> Message {
        self.refuse(
            format!("the issuer rejected the evidence: {rejection}"),
            ErrorCode::VerificationFailed,
            &rejection.0,
        )
    }

    /// Mechanism B: the Verifier answers with a signed attestation result binding the key; the
    /// workload takes it to the Credential Authority itself.
    fn attest(&mut self, presented: Presented<'_>, challenged: Challenged, step: &mut Step) -> Message {
        match self.roles.attestation_result(presented) {
            Ok((ear, workload_id)) => {
                step.progress(format!(
                    "verified: attestation result for {workload_id} ({}-byte EAR) sent to the guest",
                    ear.len()
                ));
                self.phase = Phase::Redeeming(challenged);
                AttestationResult { ear }.into()
            }
            Err(rejection) => self.rejected(rejection),
        }
    }

    /// Mechanism D: the Verifier appraises; the Key Store releases the provisioned key
    /// encrypted to the ephemeral key the evidence binds.
    fn release(&mut self, presented: Presented<'_>, ephemeral_key: &[u8], step: &mut Step) -> Message {
        match self.roles.release(presented) {
            Ok(released) => {
                step.progress(format!(
                    "verified; the Key Store released the key of {} (serial {}), HPKE-encrypted to the ephemeral key the evidence binds",
                    released.issued.credential.workload_id, released.issued.credential.serial
                ));
                let reply = KeyRelease {
                    certificate: released.release.provisioned.certificate_der.clone(),
                    workload_id: released.issued.credential.workload_id.clone(),
                    enc: released.release.enc.clone(),
                    ciphertext: released.release.ciphertext.clone(),
                };
                self.acquired(released.issued.clone());
                step.events.push(Event::KeyRelease(Box::new(released), ephemeral_key.to_vec()));
                reply.into()
            }
            Err(rejection) => self.refuse(
                format!("the issuer refused the key release: {rejection}"),
                ErrorCode::VerificationFailed,
                &rejection.0,
            ),
        }
    }

    /// Mechanism B, second half: the guest's CredentialRequest to the Credential Authority.
    fn credential_request(&mut self, request: CredentialRequest, step: &mut Step) -> Option<Message> {
        let Phase::Redeeming(challenged) = &self.phase else {
            let text = "a CredentialRequest answers an AttestationResult (mechanism B) only";
            return Some(self.refuse(format!("the guest sent {text}"), ErrorCode::UnexpectedMessage, text));
        };
        // One request per attestation result.
        self.phase = Phase::Challenged(challenged.clone());
        step.events.push(Event::CredentialRequest(request.clone()));
        let request_in =
            CredentialRequestIn { ear: &request.ear, public_key: &request.public_key, proof: &request.proof };
        Some(match self.roles.redeem(&request_in) {
            Ok(issued) => {
                step.progress(format!(
                    "the Credential Authority accepted the attestation result and proof of possession; issued: {} (serial {})",
                    issued.credential.workload_id, issued.credential.serial
                ));
                let reply = Credential {
                    certificate: issued.certificate_der.clone(),
                    workload_id: issued.credential.workload_id.clone(),
                    attestation_result: None,
                    wit: Some(issued.credential.wit.clone()),
                };
                self.acquired(issued);
                reply.into()
            }
            Err(rejection) => self.refuse(
                format!("the Credential Authority refused the request: {rejection}"),
                ErrorCode::PolicyRejected,
                &rejection.0,
            ),
        })
    }
}

/// The VCEK (or VLEK) and ASK of a certificate table, for the Verifier; `source` says whose.
fn table_endorsements(table: &[u8], source: String) -> Result<Endorsements, String> {
    twi_verifier::snp::endorsements_from_table(table)
        .map(|certificates| Endorsements { certificates, source: format!("VCEK and ASK from {source}") })
        .map_err(|e| e.to_string())
}

impl Step {
    fn progress(&mut self, line: impl Into<String>) {
        self.events.push(Event::Progress(line.into()));
    }
}
