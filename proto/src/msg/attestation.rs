//! The attestation messages: Hello, the verifier's Challenge, the simulated firmware's doorbell,
//! Evidence, and what the issuer answers (Credential, AttestationResult, KeyRelease).

use alloc::string::String;
use alloc::vec::Vec;

use minicbor::{Decode, Encode};

/// Longest [`Hello::runtime`], in bytes.
pub const MAX_RUNTIME_LEN: usize = 64;
/// Shortest accepted verifier nonce, in bytes.
pub const MIN_NONCE_LEN: usize = 16;
/// Longest accepted verifier nonce, in bytes.
pub const MAX_NONCE_LEN: usize = 64;
/// Longest [`DoorbellRequest::request`].
pub const MAX_DOORBELL_REQUEST: usize = 8 * 1024;
/// Longest [`DoorbellResponse::response`]: it carries a report or quote, so
/// it gets the same room as [`Evidence::evidence`].
pub const MAX_DOORBELL_RESPONSE: usize = 12 * 1024;
/// Longest [`Evidence::evidence`] (an SNP report or a TDX quote).
pub const MAX_EVIDENCE: usize = 12 * 1024;
/// Longest SEV-SNP certificate table ([`DoorbellResponse::certificates`],
/// [`Evidence::certificates`]): two pages, room for AMD's VCEK, ASK and ARK (about 4.7 KiB
/// of DER) and the table.
pub const MAX_CERT_TABLE: usize = 8 * 1024;
/// Length of [`Evidence::certificates_sha384`]: a SHA-384 digest.
pub const CERT_TABLE_DIGEST_LEN: usize = 48;
/// Length of [`Evidence::evidence_sha384`]: a SHA-384 digest.
pub const EVIDENCE_DIGEST_LEN: usize = 48;
/// Length of a SEC1 uncompressed P-384 point (`0x04 ‖ X ‖ Y`).
pub const P384_PUBLIC_KEY_LEN: usize = 97;
/// Longest [`Credential::certificate`] (X.509 DER).
pub const MAX_CERTIFICATE: usize = 8 * 1024;
/// Longest [`Credential::workload_id`], in bytes.
pub const MAX_WORKLOAD_ID: usize = 256;
/// Longest attestation result (an EAR JWT, compact JWS) in [`AttestationResult::ear`],
/// [`CredentialRequest::ear`] and [`Credential::attestation_result`], in bytes.
pub const MAX_ATTESTATION_RESULT: usize = 4 * 1024;
/// Longest [`CredentialRequest::proof`]: a DER ECDSA P-384 signature is at most 104 bytes.
pub const MAX_PROOF: usize = 112;
/// Length of [`KeyRelease::enc`]: HPKE DHKEM(P-384) `enc`, an uncompressed P-384 point.
pub const HPKE_ENC_LEN: usize = 97;
/// Length of [`KeyRelease::ciphertext`]: a 48-byte P-384 scalar sealed with AES-256-GCM
/// (16-byte tag).
pub const KEY_RELEASE_CIPHERTEXT_LEN: usize = 48 + 16;
/// Domain separation prefix of the HPKE `info` of a [`KeyRelease`] ([`key_release_info`]).
pub const KEY_RELEASE_INFO_CONTEXT: &[u8] = b"TWI-KEY-RELEASE-v1\0";
/// Domain separation prefix of the HPKE `aad` of a [`KeyRelease`] ([`key_release_aad`]).
pub const KEY_RELEASE_AAD_CONTEXT: &[u8] = b"TWI-KEY-RELEASE-CERT-v1\0";
/// Domain separation prefix of the [`CredentialRequest::proof`] input.
pub const CREDENTIAL_REQUEST_CONTEXT: &[u8] = b"TWI-CREDREQ-v1\0";

/// The TEE platform the evidence comes from. The discriminants are the wire values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
#[cbor(index_only)]
pub enum Platform {
    /// SEV-SNP report formats produced by the host's simulator.
    #[n(0)]
    SimSnp = 0,
    /// Real AMD SEV-SNP hardware.
    #[n(1)]
    Snp = 1,
    /// Real Intel TDX hardware.
    #[n(2)]
    Tdx = 2,
    /// TDX quote formats produced by the host's simulator.
    #[n(3)]
    SimTdx = 3,
}

/// Which hardware doorbell a simulated request stands for. The discriminants are the wire
/// values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
#[cbor(index_only)]
pub enum DoorbellKind {
    /// SEV-SNP `SNP_GUEST_REQUEST` (e.g. `MSG_REPORT_REQ`).
    #[n(0)]
    SnpGuestRequest = 0,
    /// TDX `TDG.VP.VMCALL<GetQuote>`: request = the GHCI GetQuote buffer's header and
    /// TDREPORT; response = the buffer's header and quote, as the VMM leaves them.
    #[n(1)]
    TdxGetQuote = 1,
    /// TDX `TDG.MR.REPORT`: request = the 64-byte REPORTDATA; response = the 1024-byte
    /// TDREPORT_STRUCT.
    #[n(2)]
    TdxReport = 2,
    /// TDX `TDG.MR.RTMR.EXTEND`: request = u8 RTMR index (0..=3) ‖ 48-byte SHA-384 digest;
    /// response empty.
    #[n(3)]
    TdxRtmrExtend = 3,
    /// SEV-SNP `SNP_EXT_GUEST_REQUEST`: request = the sealed guest message, as for
    /// [`DoorbellKind::SnpGuestRequest`]; response = the sealed answer, and
    /// [`DoorbellResponse::certificates`] = the certificate table the host wrote into the
    /// guest's certificate pages (GHCB specification, SNP Extended Guest Request).
    #[n(4)]
    SnpExtGuestRequest = 4,
    /// An SVSM call (58019 §4) to a simulated SVSM at VMPL0: request = the registers and the
    /// guest pages the call names (`twi_attester::svsm::exchange`); response = the same, as
    /// the SVSM left them. `status` is 0 when the SVSM took the call (its result is RAX).
    #[n(5)]
    SvsmCall = 5,
}

/// Longest [`Evidence::event_log`], in events.
pub const MAX_EVENTS: usize = 8;
/// Longest [`RtmrEvent::data`], in bytes.
pub const MAX_EVENT_DATA: usize = 256;

/// One measurement the runtime extended into a TDX RTMR: a verifier replays
/// `RTMR[rtmr] = SHA-384(RTMR[rtmr] ‖ digest)` over the log and compares with the quote.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct RtmrEvent {
    /// RTMR index, 0..=3.
    #[n(0)]
    pub rtmr: u8,
    /// What was measured (the runtime's event types, `twi_proto::msg::event_type`).
    #[n(1)]
    pub event_type: u32,
    /// SHA-384 of `data`: exactly 48 bytes.
    #[n(2)]
    #[cbor(with = "minicbor::bytes")]
    pub digest: Vec<u8>,
    /// The measured bytes, at most [`MAX_EVENT_DATA`].
    #[n(3)]
    #[cbor(with = "minicbor::bytes")]
    pub data: Vec<u8>,
}

/// The runtime's RTMR event types.
pub mod event_type {
    /// RTMR1: the launch manifest the runtime loaded (its postcard body).
    pub const LAUNCH_MANIFEST: u32 = 0x5457_0001;
    /// RTMR2: the issuer anchor the runtime will trust (SEC1 P-384 public key).
    pub const ISSUER_ANCHOR: u32 = 0x5457_0002;
}

/// Guest → host, first message.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct Hello {
    /// The sender's [`PROTOCOL_VERSION`]. Not checked by [`decode`], so the
    /// receiver can answer with [`ErrorCode::UnsupportedVersion`].
    #[n(0)]
    pub version: u16,
    /// The platform the guest runs on.
    #[n(1)]
    pub platform: Platform,
    /// Bit flags, e.g. [`CAP_SIM_DOORBELL`].
    #[n(2)]
    pub capabilities: u32,
    /// Name and version of the runtime, at most [`MAX_RUNTIME_LEN`] bytes.
    #[n(3)]
    pub runtime: String,
}

/// Host → guest, the answer to an [`super::Initiate`] (TACRA's Initiate response): the
/// freshness kind the issuer's policy chose for the target, its handle, and the mode.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct Challenge {
    /// The Freshness Handle: [`MIN_NONCE_LEN`]`..=`[`MAX_NONCE_LEN`] bytes for
    /// `present-nonce` and `present-epoch`, empty for the `absent-*` kinds.
    #[n(0)]
    #[cbor(with = "minicbor::bytes")]
    pub nonce: Vec<u8>,
    /// Mechanism D: the host will answer the Evidence with a [`KeyRelease`], so the Evidence
    /// must bind a fresh ephemeral HPKE public key (generated in the vault) instead of the
    /// Credential Key. Absent on the wire means `false` (mechanisms A, B, C).
    #[n(1)]
    #[cbor(default)]
    pub key_release: bool,
    /// The freshness kind the evidence must carry (absent: `present-nonce`).
    #[n(2)]
    #[cbor(default)]
    pub freshness: super::Freshness,
}

/// Guest → host: the exact bytes the guest would hand to the TEE hardware
/// (the host simulates the TEE).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct DoorbellRequest {
    /// Which doorbell this stands for.
    #[n(0)]
    pub kind: DoorbellKind,
    /// Request bytes, at most [`MAX_DOORBELL_REQUEST`].
    #[n(1)]
    #[cbor(with = "minicbor::bytes")]
    pub request: Vec<u8>,
}

/// Host → guest: what the real doorbell would have returned.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct DoorbellResponse {
    /// Echo of the request's kind.
    #[n(0)]
    pub kind: DoorbellKind,
    /// Firmware / VMM status the real doorbell would return; 0 = success.
    #[n(1)]
    pub status: u64,
    /// Response bytes, at most [`MAX_DOORBELL_RESPONSE`].
    #[n(2)]
    #[cbor(with = "minicbor::bytes")]
    pub response: Vec<u8>,
    /// [`DoorbellKind::SnpExtGuestRequest`]: the certificate table, at most
    /// [`MAX_CERT_TABLE`] bytes (`None`: the host has no certificates).
    #[n(3)]
    #[cbor(with = "minicbor::bytes")]
    pub certificates: Option<Vec<u8>>,
}

/// Guest → host: attestation evidence binding the workload key.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct Evidence {
    /// Platform that produced `evidence`.
    #[n(0)]
    pub platform: Platform,
    /// SNP report or TDX quote, at most [`MAX_EVIDENCE`] bytes; empty when
    /// [`Evidence::evidence_sha384`] names it instead.
    #[n(1)]
    #[cbor(with = "minicbor::bytes")]
    pub evidence: Vec<u8>,
    /// SEC1 uncompressed P-384 point, exactly [`P384_PUBLIC_KEY_LEN`] bytes.
    #[n(2)]
    #[cbor(with = "minicbor::bytes")]
    pub public_key: Vec<u8>,
    /// The freshness element the evidence binds: the Challenge's handle (`present-*`), the
    /// epoch marker (`absent-epoch`), the timestamp (`absent-timestamp`), or empty.
    #[n(3)]
    #[cbor(with = "minicbor::bytes")]
    pub nonce: Vec<u8>,
    /// TDX: the RTMR events the runtime extended, in order (at most [`MAX_EVENTS`]).
    #[n(4)]
    pub event_log: Option<Vec<RtmrEvent>>,
    /// SEV-SNP: the certificate table of the extended guest request (VCEK or VLEK, ASK,
    /// ARK), as the host gave it to the runtime, at most [`MAX_CERT_TABLE`] bytes. The
    /// verifier checks the certificates as it would any others. Sent when the table reached
    /// the guest some other way than this channel (the GHCB's certificate pages on hardware),
    /// so the loader may not have it; otherwise the guest names it by
    /// [`Evidence::certificates_sha384`] instead.
    #[n(5)]
    #[cbor(with = "minicbor::bytes")]
    pub certificates: Option<Vec<u8>>,
    /// The Target of the [`super::Initiate`] this evidence answers.
    #[n(6)]
    pub target: String,
    /// Enrollment: the PKCS#10 CSR (DER) of [`Evidence::public_key`], signed by it; the
    /// binding's subject. Absent for Retrieval, whose subject is the CEK's
    /// SubjectPublicKeyInfo (made from `public_key`).
    #[n(7)]
    #[cbor(with = "minicbor::bytes")]
    pub csr: Option<Vec<u8>>,
    /// SEV-SNP: the SHA-384 digest ([`CERT_TABLE_DIGEST_LEN`] bytes) of the certificate table
    /// the loader delivered in a [`DoorbellResponse`] (its used part: the entries and the
    /// certificates, as `twi_attester::snp::certs::table_sha384` computes it), in place of
    /// the table itself, which would cross the channel a second time. The loader presents the
    /// table it delivered with that digest and refuses the evidence if it delivered none.
    /// Never together with [`Evidence::certificates`]. A receiver of an older version skips
    /// the key and finds no table, so it falls back to its own copies.
    #[n(8)]
    #[cbor(with = "minicbor::bytes")]
    pub certificates_sha384: Option<Vec<u8>>,
    /// TDX under the simulator: the SHA-384 digest ([`EVIDENCE_DIGEST_LEN`] bytes) of the
    /// quote the loader delivered in a [`DoorbellKind::TdxGetQuote`] answer (the GetQuote
    /// buffer's `OUT_LEN` quote bytes, as `twi_attester::tdx::getquote::parse_response` takes
    /// them out), in place of the quote itself (with its PCK chain about 5 KB), which would
    /// cross the channel a second time; [`Evidence::evidence`] is then empty (never both).
    /// The loader presents the quote it delivered with that digest and refuses the evidence
    /// if it delivered none.
    ///
    /// The digest binds nothing the quote does not: REPORTDATA is inside the quote, and the
    /// verifier checks the quote's signature chain and its REPORTDATA against the key either
    /// way. It only keeps the host from presenting a quote other than the one the guest saw
    /// and checked (its REPORTDATA and RTMRs). On hardware the VMM's quoting service writes
    /// the quote into a shared buffer the loader never sees, so the guest sends the quote.
    /// A receiver of an older version skips the key, finds an empty quote and refuses it.
    #[n(9)]
    #[cbor(with = "minicbor::bytes")]
    pub evidence_sha384: Option<Vec<u8>>,
}

/// Host → guest: the issued workload credential.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct Credential {
    /// X.509 certificate (DER), at most [`MAX_CERTIFICATE`] bytes.
    #[n(0)]
    #[cbor(with = "minicbor::bytes")]
    pub certificate: Vec<u8>,
    /// Workload identity, e.g. a `spiffe://` URI, at most [`MAX_WORKLOAD_ID`] bytes.
    #[n(1)]
    pub workload_id: String,
    /// Mechanism A: the Verifier's attestation result (EAR JWT, at most
    /// [`MAX_ATTESTATION_RESULT`] bytes) that came with the credential and names it.
    #[n(2)]
    pub attestation_result: Option<String>,
    /// The WIT for the same key (compact JWS, `wit+jwt`), at most [`super::MAX_WIT`] bytes.
    #[n(3)]
    pub wit: Option<String>,
}

/// Host → guest (mechanism B): the Verifier's signed attestation result (EAR JWT) binding the
/// workload key; the guest forwards it to the Credential Authority in a [`CredentialRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct AttestationResult {
    /// Compact JWS, at most [`MAX_ATTESTATION_RESULT`] bytes.
    #[n(0)]
    pub ear: String,
}

/// Guest → host (mechanism B): a request to the Credential Authority for a credential on the
/// key the attestation result binds, with proof that the sender holds that key.
///
/// `proof` is the Credential Key's ECDSA P-384 / SHA-384 signature, DER-encoded, over
/// [`credential_request_signed_bytes`]: `"TWI-CREDREQ-v1\0" ‖ nonce ‖ public_key ‖
/// SHA-256(ear)`, where `nonce` is the verifier nonce of the [`Challenge`] (the EAR's
/// `eat_nonce`), `public_key` the 97-byte SEC1 point and `ear` the JWT's ASCII bytes. The
/// private key never leaves the guest's vault.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct CredentialRequest {
    /// The EAR JWT as received, at most [`MAX_ATTESTATION_RESULT`] bytes.
    #[n(0)]
    pub ear: String,
    /// SEC1 uncompressed P-384 point, exactly [`P384_PUBLIC_KEY_LEN`] bytes.
    #[n(1)]
    #[cbor(with = "minicbor::bytes")]
    pub public_key: Vec<u8>,
    /// DER ECDSA signature, at most [`MAX_PROOF`] bytes.
    #[n(2)]
    #[cbor(with = "minicbor::bytes")]
    pub proof: Vec<u8>,
}

/// The bytes a [`CredentialRequest::proof`] signs: `"TWI-CREDREQ-v1\0" ‖ nonce ‖ public_key ‖
/// ear_sha256` (no length prefixes: the nonce length is the EAR's and the key is fixed-size).
pub fn credential_request_signed_bytes(nonce: &[u8], public_key: &[u8], ear_sha256: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(CREDENTIAL_REQUEST_CONTEXT.len() + nonce.len() + public_key.len() + 32);
    out.extend_from_slice(CREDENTIAL_REQUEST_CONTEXT);
    out.extend_from_slice(nonce);
    out.extend_from_slice(public_key);
    out.extend_from_slice(ear_sha256);
    out
}

/// Host → guest (mechanism D): the Key Store's release of the credential the workload owner
/// provisioned, and of its private key, HPKE-encrypted (RFC 9180 base mode,
/// DHKEM(P-384, HKDF-SHA384), HKDF-SHA384, AES-256-GCM) to the ephemeral public key that the
/// Evidence bound (its [`Evidence::public_key`]).
///
/// The plaintext is the 48-byte big-endian P-384 scalar of the Credential Key;
/// `info` = [`key_release_info`]`(nonce, ephemeral_public_key)` and `aad` =
/// [`key_release_aad`]`(SHA-256(certificate))`, so a release opens only for the key and
/// challenge it was made for, and only with the certificate it came with.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct KeyRelease {
    /// The provisioned X.509 certificate (DER), at most [`MAX_CERTIFICATE`] bytes.
    #[n(0)]
    #[cbor(with = "minicbor::bytes")]
    pub certificate: Vec<u8>,
    /// Workload identity, at most [`MAX_WORKLOAD_ID`] bytes.
    #[n(1)]
    pub workload_id: String,
    /// HPKE `enc`, exactly [`HPKE_ENC_LEN`] bytes starting with 0x04.
    #[n(2)]
    #[cbor(with = "minicbor::bytes")]
    pub enc: Vec<u8>,
    /// HPKE ciphertext of the private key, exactly [`KEY_RELEASE_CIPHERTEXT_LEN`] bytes.
    #[n(3)]
    #[cbor(with = "minicbor::bytes")]
    pub ciphertext: Vec<u8>,
}

/// The HPKE `info` of a [`KeyRelease`]: `"TWI-KEY-RELEASE-v1\0" ‖ u16be(len(nonce)) ‖ nonce ‖
/// ephemeral_public_key` (the 97-byte SEC1 point the Evidence bound).
pub fn key_release_info(nonce: &[u8], ephemeral_public_key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(KEY_RELEASE_INFO_CONTEXT.len() + 2 + nonce.len() + ephemeral_public_key.len());
    out.extend_from_slice(KEY_RELEASE_INFO_CONTEXT);
    out.extend_from_slice(&u16::try_from(nonce.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(nonce);
    out.extend_from_slice(ephemeral_public_key);
    out
}

/// The HPKE `aad` of a [`KeyRelease`]: `"TWI-KEY-RELEASE-CERT-v1\0" ‖ SHA-256(certificate)`.
pub fn key_release_aad(certificate_sha256: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(KEY_RELEASE_AAD_CONTEXT.len() + 32);
    out.extend_from_slice(KEY_RELEASE_AAD_CONTEXT);
    out.extend_from_slice(certificate_sha256);
    out
}
