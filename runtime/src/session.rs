//! The runtime's side of the channel protocol, independent of the machine and of the platform:
//! it runs the same on the bare-metal target (over COM2) and in host tests (over an in-memory
//! link), over any [`Tee`].
//!
//! ```text
//! guest                                   host (loader = TACRA's CAS client, + issuer)
//!   Hello {version, platform, caps}  ──▶
//!   Initiate {target, type, hint}    ──▶
//!                                    ◀──  Challenge {handle, freshness kind, retrieval?}
//!   [Tee::extend]  (TDX: RTMR extensions; simulated: DoorbellRequest/Response pairs)
//!   [Tee::evidence] (the report or quote over REPORTDATA; simulated: doorbell pairs)
//!   Evidence {report|quote or its digest, key, freshness, target, CSR, event log, certificate table or its digest} ──▶
//!                                    ◀──  Credential {certificate, workload id, WIT, [EAR: A]} | Error
//!                                    ◀──  or (mechanism B) AttestationResult {EAR binding the key}
//!   CredentialRequest {EAR, key, proof} ──▶   (mechanism B: proof = the vault's signature)
//!                                    ◀──  Credential {certificate, workload id, WIT} | Error
//!                                    ◀──  or (Retrieval, mechanism D) KeyRelease {certificate, enc, ct}
//!   [Tee::sealing_key] (SEV-SNP: MSG_KEY_REQ; the credential is sealed to the launch)
//!   Done {credential_accepted}       ──▶
//! ```
//!
//! REPORTDATA is TACRA's binding (`twi_attester::tacra`): the freshness element the issuer's
//! policy asked for (the Challenge's handle, the manifest's epoch marker, the host's time as a
//! timestamp, or nothing), the relying party's identifier from the measured manifest (never
//! from the host), the target, and the subject. **Enrollment** (mechanisms A, B, C): the
//! subject is a PKCS#10 request (`twi_proto::csr`) for the vault key, signed by it.
//! **Retrieval** (mechanism D; the Challenge says `key_release`): the runtime generates an
//! encryption key CEK in the vault and the subject is its SubjectPublicKeyInfo. The Key Store
//! answers with a KeyRelease: the provisioned certificate and its private key,
//! HPKE-encrypted to CEK with `info` = freshness ‖ CEK and `aad` = SHA-256(certificate). The
//! vault opens it and installs the key; the certificate must then certify exactly that key
//! under the manifest's issuer anchor, as for Enrollment.
//!
//! Every frame from the host is hostile (see [`crate::channel`]); a message that does not fit the
//! protocol state ends the session with an Error frame.

use alloc::string::String;
use alloc::vec::Vec;

use rand_core::TryCryptoRng;
use twi_attester::tacra;
use twi_proto::msg::{
    CAP_MECHANISM_A, CAP_MECHANISM_B, CAP_MECHANISM_C, CAP_MECHANISM_D, CAP_SIM_DOORBELL, Challenge, Credential,
    CredentialKind, CredentialRequest, Done, ErrorCode, Evidence, Freshness, Hello, Initiate, KeyRelease, Message,
    PROTOCOL_VERSION, Platform, TimeRequest, credential_request_signed_bytes, key_release_aad, key_release_info,
};

use crate::channel::{Channel, ChannelError, Link};
use crate::credential::{CredentialError, check_credential, check_wit};
use crate::pairwise::TestedKey;
use crate::sealing::{SealError, SealingKey};
use crate::tee::{Certificates, Measurement, Tee, TeeError};
use crate::vault::{KeyId, PublicKeySec1, Vault, VaultError};

/// What the session reports as it goes, for the console and the boot figures.
#[derive(Debug)]
pub enum Event<'a> {
    ChallengeReceived,
    ReportReceived,
    EvidenceSent,
    CredentialAccepted(&'a str),
    /// Mechanism A: an attestation result (EAR JWT, its length) came with the credential.
    AttestationResultWithCredential(usize),
    /// Mechanism B: the Verifier's attestation result (its length) arrived; the runtime
    /// forwards it to the Credential Authority with a proof of possession.
    AttestationResultReceived(usize),
    /// Mechanism B: the CredentialRequest, with the vault's proof of possession, went out.
    CredentialRequested,
    /// The credential was sealed to the launch (its sealed size).
    CredentialSealed(usize),
    /// Mechanism D: the Evidence binds an ephemeral HPKE key generated in the vault.
    ReleaseKeyBound,
    /// Mechanism D: the Key Store's release opened in the vault and is the Credential Key now.
    KeyReleased,
    /// What became of the host's certificate table (SEV-SNP extended guest request).
    Certificates(Certificates),
    /// TDX under the simulator: the quote (its length) came from the loader, which keeps it;
    /// the evidence names it by its SHA-384.
    QuoteNamed(usize),
}

#[derive(Debug)]
pub enum SessionError {
    /// The exchange with the host failed (closed, malformed frames, its Error, out of turn).
    Channel(ChannelError),
    Vault(VaultError),
    Binding,
    /// The issuer asked for a freshness kind this launch cannot give (its reason).
    Freshness(&'static str),
    /// The TEE refused or returned something unusable.
    Tee(TeeError),
    /// Sealing the credential to the launch failed.
    Seal(SealError),
    Credential(CredentialError),
    /// Mechanism D: the Key Store's release could not be opened or installed.
    KeyRelease(VaultError),
}

impl From<ChannelError> for SessionError {
    fn from(e: ChannelError) -> Self {
        Self::Channel(e)
    }
}

impl core::fmt::Display for SessionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Channel(e) => write!(f, "{e}"),
            Self::Vault(e) => write!(f, "key vault: {e}"),
            Self::Binding => f.write_str("the acquisition cannot be bound into REPORTDATA"),
            Self::Freshness(why) => write!(f, "the issuer's freshness kind cannot be met: {why}"),
            Self::Tee(e) => write!(f, "{e}"),
            Self::Seal(e) => write!(f, "sealing the credential failed: {e}"),
            Self::Credential(e) => write!(f, "credential rejected: {e}"),
            Self::KeyRelease(e) => write!(f, "key release refused: {e}"),
        }
    }
}

/// What the session needs from the launch, all from the measured manifest: who may issue our
/// credential, and what the evidence names as its relying party.
#[derive(Debug)]
pub struct Trust<'a> {
    /// SEC1 P-384 public key of the issuer CA.
    pub issuer_anchor: &'a [u8],
    /// TACRA's `rp_id`: the issuer's identifier (the manifest's issuer name).
    pub rp_id: &'a str,
    /// TACRA `absent-epoch`: the epoch marker the launch holds (the manifest's `epoch`
    /// setting), if any.
    pub epoch_marker: Option<&'a [u8]>,
}

/// What the workload asks for (TACRA Initiate).
#[derive(Debug, Clone, Copy)]
pub struct Acquisition<'a> {
    pub target: &'a str,
    pub credential_type: CredentialKind,
    pub hint: Option<&'a str>,
}

/// A successful session: the credential, checked, and (where the platform can) sealed to this
/// launch.
#[derive(Debug)]
pub struct Outcome {
    pub certificate: Vec<u8>,
    /// The vault key the credential certifies (under mechanism D the released key, else the
    /// key the session was given).
    pub key: KeyId,
    pub workload_id: String,
    /// The WIT for the same key, if the issuer made one.
    pub wit: Option<String>,
    /// The credential sealed under the launch-bound key (see [`crate::sealing`]); empty where
    /// the platform derives no sealing key (TDX).
    pub sealed_credential: Vec<u8>,
}

/// The key the Evidence binds, and TACRA's subject for it.
struct Bound {
    key: KeyId,
    public: PublicKeySec1,
    /// The CSR's DER (Enrollment) or the CEK's SubjectPublicKeyInfo DER (Retrieval).
    subject: Vec<u8>,
    /// Enrollment: the CSR, sent with the evidence.
    csr: Option<Vec<u8>>,
}

/// The credential the issuer sent, checked.
struct Received {
    certificate: Vec<u8>,
    workload_id: String,
    key: KeyId,
    wit: Option<String>,
}

/// What sealing binds the credential to (authenticated as associated data).
pub const SEALED_CREDENTIAL_CONTEXT: &[u8] = b"twi sealed credential v1";

/// The credential acquisition mechanisms this runtime takes, as [`Hello::capabilities`] bits.
pub const RUNTIME_MECHANISMS: u32 = CAP_MECHANISM_A | CAP_MECHANISM_B | CAP_MECHANISM_C | CAP_MECHANISM_D;

/// One session with the host: the channel, the vault holding the Credential Key, and the trust
/// the measured manifest gives.
pub struct Session<'s, 'a, L: Link> {
    pub channel: &'s Channel<'a, L>,
    pub vault: &'s Vault,
    pub trust: Trust<'s>,
    /// The runtime's name and version, for the Hello.
    pub runtime_name: &'s str,
    pub events: &'s mut dyn FnMut(Event<'_>),
}

impl<L: Link> core::fmt::Debug for Session<'_, '_, L> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session").field("runtime_name", &self.runtime_name).finish_non_exhaustive()
    }
}

/// The Error frame code a TEE failure is reported with.
fn tee_error_code(e: &TeeError) -> ErrorCode {
    match e {
        TeeError::Tdx(crate::tee::tdx::TdxError::EventLogFull) | TeeError::Unsupported(_) => ErrorCode::Internal,
        _ => ErrorCode::DoorbellFailed,
    }
}

impl<L: Link> Session<'_, '_, L> {
    /// Runs the protocol above for `request` with the signing key `key` (in the vault, its
    /// pairwise consistency test passed; Enrollment sends the PKCS#10 request that test signed).
    /// `measurements` are extended into the TEE (after the Challenge, before the evidence):
    /// pass none where the platform has no runtime measurement registers.
    pub fn run<R: TryCryptoRng + ?Sized>(
        &mut self,
        tee: &mut dyn Tee,
        rng: &mut R,
        measurements: &[Measurement<'_>],
        key: &TestedKey,
        request: &Acquisition<'_>,
    ) -> Result<Outcome, SessionError> {
        let platform = tee.platform();
        let challenge = self.initiate(platform, request)?;
        let freshness = self.freshness_element(&challenge)?;
        let bound = self.bound_key(key, challenge.key_release, rng)?;
        for m in measurements {
            tee.extend(m).map_err(|e| self.tee_abort(e))?;
        }
        let report_data = tacra::report_data(&freshness, self.trust.rp_id, request.target, &bound.subject)
            .map_err(|_| SessionError::Binding)?;
        let evidence = tee.evidence(&report_data).map_err(|e| self.tee_abort(e))?;
        (self.events)(Event::ReportReceived);
        if let Some(table) = evidence.certificate_table {
            (self.events)(Event::Certificates(table));
        }
        if let Some(named) = &evidence.named {
            (self.events)(Event::QuoteNamed(named.len));
        }
        let public_key = bound.public.to_vec();
        self.channel.send(&Message::Evidence(Evidence {
            platform,
            evidence: evidence.bytes,
            public_key: public_key.clone(),
            nonce: freshness.clone(),
            event_log: evidence.event_log,
            certificates: evidence.certificates,
            target: String::from(request.target),
            csr: bound.csr,
            certificates_sha384: evidence.certificates_sha384.map(|digest| digest.to_vec()),
            evidence_sha384: evidence.named.map(|named| named.sha384.to_vec()),
        }))?;
        (self.events)(Event::EvidenceSent);

        let received = self.receive_credential(bound.key, &public_key, &freshness, challenge.key_release)?;
        let sealed_credential = self.seal(tee, &received.certificate, rng)?;
        self.channel.send(&Message::Done(Done { credential_accepted: true }))?;
        let Received { certificate, workload_id, key, wit } = received;
        Ok(Outcome { certificate, key, workload_id, wit, sealed_credential })
    }

    /// A TEE failure ends the session with an Error frame, unless the exchange with the host is
    /// what failed (then the host already knows, or cannot hear).
    fn tee_abort(&self, e: TeeError) -> SessionError {
        match e {
            TeeError::Channel(ChannelError::Unexpected(what)) => {
                self.abort(ErrorCode::UnexpectedMessage, ChannelError::Unexpected(what).into())
            }
            TeeError::Channel(e) => SessionError::Channel(e),
            e => self.abort(tee_error_code(&e), SessionError::Tee(e)),
        }
    }

    /// Tells the host why the session ends, then returns `error`.
    fn abort(&self, code: ErrorCode, error: SessionError) -> SessionError {
        self.channel.report(code, &error);
        error
    }

    /// Hello and Initiate, then the issuer's Challenge (its freshness kind and handle, and
    /// whether it will answer with a key release: Retrieval).
    fn initiate(&mut self, platform: Platform, request: &Acquisition<'_>) -> Result<Challenge, SessionError> {
        let simulated = matches!(platform, Platform::SimSnp | Platform::SimTdx);
        self.channel.send(&Message::Hello(Hello {
            version: PROTOCOL_VERSION,
            platform,
            capabilities: RUNTIME_MECHANISMS | if simulated { CAP_SIM_DOORBELL } else { 0 },
            runtime: String::from(self.runtime_name),
        }))?;
        self.channel.send(&Message::Initiate(Initiate {
            target: String::from(request.target),
            credential_type: request.credential_type,
            hint: request.hint.map(String::from),
        }))?;
        let challenge = match self.channel.recv_reply()? {
            Message::Challenge(challenge) => challenge,
            other => return Err(self.unexpected(other.name())),
        };
        (self.events)(Event::ChallengeReceived);
        Ok(challenge)
    }

    /// The freshness element of the Challenge's kind: its handle (`present-*`), the manifest's
    /// epoch marker (`absent-epoch`), the host's time (`absent-timestamp`: the runtime has no
    /// trusted clock, so the issuer bounds how far it may be off), or nothing (`absent-none`).
    fn freshness_element(&mut self, challenge: &Challenge) -> Result<Vec<u8>, SessionError> {
        match challenge.freshness {
            Freshness::PresentNonce | Freshness::PresentEpoch => Ok(challenge.nonce.clone()),
            Freshness::AbsentNone => Ok(Vec::new()),
            Freshness::AbsentEpoch => match self.trust.epoch_marker {
                Some(marker) => Ok(marker.to_vec()),
                None => {
                    let error = SessionError::Freshness("absent-epoch needs an `epoch` setting in the manifest");
                    Err(self.abort(ErrorCode::Internal, error))
                }
            },
            Freshness::AbsentTimestamp => {
                self.channel.send(&Message::TimeRequest(TimeRequest {}))?;
                match self.channel.recv_reply()? {
                    Message::Time(time) => Ok(tacra::timestamp_element(time.unix_seconds).to_vec()),
                    other => Err(self.unexpected(other.name())),
                }
            }
        }
    }

    fn unexpected(&self, what: &'static str) -> SessionError {
        self.abort(ErrorCode::UnexpectedMessage, ChannelError::Unexpected(what).into())
    }

    /// The key the Evidence binds and TACRA's subject: `key` and the CSR its pairwise test signed
    /// (Enrollment), or under Retrieval (`key_release`) a fresh encryption key CEK generated in
    /// the vault for the Key Store to encrypt the release to, and its SubjectPublicKeyInfo.
    fn bound_key<R: TryCryptoRng + ?Sized>(
        &mut self,
        key: &TestedKey,
        key_release: bool,
        rng: &mut R,
    ) -> Result<Bound, SessionError> {
        let vault_error = |s: &Self, e| s.abort(ErrorCode::Internal, SessionError::Vault(e));
        if !key_release {
            let public = self.vault.public_key(key.key()).map_err(|e| vault_error(self, e))?;
            let csr = key.csr().to_vec();
            return Ok(Bound { key: key.key(), public, subject: csr.clone(), csr: Some(csr) });
        }
        let (cek, public) = self.vault.generate_decryption_key(rng).map_err(|e| vault_error(self, e))?;
        (self.events)(Event::ReleaseKeyBound);
        let subject = twi_proto::csr::spki_der(&public).map_err(|_| SessionError::Binding)?;
        Ok(Bound { key: cek, public, subject, csr: None })
    }

    /// The issuer's Credential, checked against the anchor of the measured manifest and our key.
    /// A refused credential is reported to the host (Error, then Done {false}).
    ///
    /// Mechanisms A and C answer the Evidence with the Credential (under A it carries the
    /// Verifier's attestation result). Under mechanism B the Verifier answers with an
    /// AttestationResult: the runtime forwards it to the Credential Authority in a
    /// CredentialRequest, with the vault's signature over it as proof of possession
    /// ([`credential_request_signed_bytes`]), and then expects the Credential. Under mechanism D
    /// (`key_release`; `public_key` is then the ephemeral key the Evidence bound) only a
    /// KeyRelease is accepted: the vault opens it and installs the released key, and the
    /// certificate must certify that key.
    fn receive_credential(
        &mut self,
        bound: KeyId,
        public_key: &[u8],
        nonce: &[u8],
        key_release: bool,
    ) -> Result<Received, SessionError> {
        let mut requested = false;
        let (credential, key, credential_key) = loop {
            match self.channel.recv_reply()? {
                Message::Credential(c) if !key_release => break (c, bound, public_key.to_vec()),
                Message::KeyRelease(release) if key_release => {
                    break self.install_release(release, bound, nonce, public_key)?;
                }
                Message::AttestationResult(result) if !requested && !key_release => {
                    self.request_credential(result.ear, bound, public_key, nonce)?;
                    requested = true;
                }
                other => return Err(self.unexpected(other.name())),
            }
        };
        let Credential { certificate, workload_id, attestation_result, wit } = credential;
        if let Err(e) = check_credential(&certificate, self.trust.issuer_anchor, &credential_key, &workload_id) {
            return Err(self.refuse(SessionError::Credential(e)));
        }
        if let Some(token) = &wit
            && let Err(e) = check_wit(token, &credential_key, &workload_id)
        {
            return Err(self.refuse(SessionError::Credential(e)));
        }
        (self.events)(Event::CredentialAccepted(&workload_id));
        if let Some(result) = &attestation_result {
            (self.events)(Event::AttestationResultWithCredential(result.len()));
        }
        Ok(Received { certificate, workload_id, key, wit })
    }

    /// A refused credential: Error(CredentialRejected), then Done {false}.
    fn refuse(&self, error: SessionError) -> SessionError {
        let error = self.abort(ErrorCode::CredentialRejected, error);
        if let Err(e) = self.channel.send(&Message::Done(Done { credential_accepted: false })) {
            return SessionError::Channel(e);
        }
        error
    }

    /// Mechanism D: opens the Key Store's release in the vault; the released key becomes the
    /// Credential Key. Returns the credential and the key it must certify.
    fn install_release(
        &mut self,
        release: KeyRelease,
        cek: KeyId,
        nonce: &[u8],
        public_key: &[u8],
    ) -> Result<(Credential, KeyId, Vec<u8>), SessionError> {
        let KeyRelease { certificate, workload_id, enc, ciphertext } = release;
        let certificate_sha256 = twi_proto::hash::sha256(&[&certificate]);
        let info = key_release_info(nonce, public_key);
        let aad = key_release_aad(&certificate_sha256);
        let (installed, public) = self
            .vault
            .install_released_key(cek, &enc, &info, &aad, &ciphertext)
            .map_err(|e| self.refuse(SessionError::KeyRelease(e)))?;
        (self.events)(Event::KeyReleased);
        Ok((Credential { certificate, workload_id, attestation_result: None, wit: None }, installed, public.to_vec()))
    }

    /// Mechanism B: forwards the Verifier's attestation result to the Credential Authority with
    /// the vault's signature over it as proof of possession.
    fn request_credential(
        &mut self,
        ear: String,
        key: KeyId,
        public_key: &[u8],
        nonce: &[u8],
    ) -> Result<(), SessionError> {
        (self.events)(Event::AttestationResultReceived(ear.len()));
        let ear_sha256 = twi_proto::hash::sha256(&[ear.as_bytes()]);
        let signed = credential_request_signed_bytes(nonce, public_key, &ear_sha256);
        let proof =
            self.vault.sign(key, &signed).map_err(|e| self.abort(ErrorCode::Internal, SessionError::Vault(e)))?;
        self.channel.send(&Message::CredentialRequest(CredentialRequest {
            ear,
            public_key: public_key.to_vec(),
            proof: proof.as_bytes().to_vec(),
        }))?;
        (self.events)(Event::CredentialRequested);
        Ok(())
    }

    /// Seals the credential under the TEE's launch-bound key and checks it unseals; nothing
    /// where the platform derives no sealing key.
    fn seal<R: TryCryptoRng + ?Sized>(
        &mut self,
        tee: &mut dyn Tee,
        certificate: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>, SessionError> {
        let key = match tee.sealing_key() {
            Ok(key) => key,
            Err(TeeError::Unsupported(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.tee_abort(e)),
        };
        let sealing = SealingKey::new(key);
        let sealed = sealing.seal(SEALED_CREDENTIAL_CONTEXT, certificate, rng).map_err(SessionError::Seal)?;
        let unsealed = sealing.unseal(SEALED_CREDENTIAL_CONTEXT, &sealed).map_err(SessionError::Seal)?;
        if unsealed.as_slice() != certificate {
            return Err(SessionError::Seal(SealError::Unseal));
        }
        (self.events)(Event::CredentialSealed(sealed.len()));
        Ok(sealed)
    }
}
