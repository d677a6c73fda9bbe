//! The SEV-SNP guest-message envelope (SEV-SNP Firmware ABI, section "Guest Messages",
//! Table "Message Header Format"): a 0x60-byte header followed by the payload encrypted with
//! AES-256-GCM under a VM Platform Communication Key (VMPCK) from the secrets page.
//!
//! ```text
//! 0x00 [32] AUTHTAG      (the 16-byte GCM tag, then zeros)
//! 0x20 u64  MSG_SEQNO
//! 0x28 [8]  reserved
//! 0x30 u8   ALGO         (1 = AES-256-GCM)           ┐
//! 0x31 u8   HDR_VERSION  (1)                         │
//! 0x32 u16  HDR_SIZE     (0x60)                      │ additional authenticated data:
//! 0x34 u8   MSG_TYPE                                 │ bytes 0x30..0x60
//! 0x35 u8   MSG_VERSION                              │
//! 0x36 u16  MSG_SIZE     (payload bytes)             │
//! 0x38 [4]  reserved                                 │
//! 0x3C u8   MSG_VMPCK    (which VMPCK, 0..=3)        │
//! 0x3D [35] reserved                                 ┘
//! 0x60 [MSG_SIZE] payload (ciphertext)
//! ```
//!
//! The IV is the 64-bit sequence number little-endian in the first 8 of its 12 bytes. A
//! request carries the sequence number after the last one used; the firmware answers with
//! the next. Reusing a sequence number under the same VMPCK would reuse a GCM IV and break
//! the cipher, so [`Requester`] refuses to continue (and wipes its key) after any failure it
//! cannot prove harmless.
//!
//! Callers seal and open in private memory: copy a response out of the shared page once, then
//! open the copy (the host can rewrite the shared page at any time).

use twi_proto::aead::Aead;
use zeroize::Zeroizing;

pub const HEADER_SIZE: usize = 0x60;
/// One 4 KiB page carries the whole message.
pub const MAX_MESSAGE: usize = 4096;
pub const MAX_PAYLOAD: usize = MAX_MESSAGE - HEADER_SIZE;
pub const ALGO_AES_256_GCM: u8 = 1;
pub const HDR_VERSION: u8 = 1;
pub const TAG_LEN: usize = 16;
pub const VMPCK_LEN: usize = 32;

const AUTHTAG: usize = 0x00;
const SEQNO: usize = 0x20;
const ALGO: usize = 0x30;
const HDR_VERSION_OFF: usize = 0x31;
const HDR_SIZE_OFF: usize = 0x32;
const MSG_TYPE: usize = 0x34;
const MSG_VERSION: usize = 0x35;
const MSG_SIZE: usize = 0x36;
const MSG_VMPCK: usize = 0x3C;
const AAD: core::ops::Range<usize> = 0x30..0x60;

const _: () = assert!(SEQNO == AUTHTAG + 32 && ALGO == SEQNO + 16);
const _: () = assert!(MSG_VMPCK == MSG_SIZE + 2 + 4 && MSG_VMPCK + 1 + 35 == HEADER_SIZE);
const _: () = assert!(AAD.end - AAD.start == 48);

/// Message types (SEV-SNP Firmware ABI, Table "Message Type Encodings").
pub mod msg_type {
    pub const KEY_REQ: u8 = 3;
    pub const KEY_RSP: u8 = 4;
    pub const REPORT_REQ: u8 = 5;
    pub const REPORT_RSP: u8 = 6;
}

/// Why a guest message was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestMsgError {
    /// The payload does not fit a one-page message, or the output buffer is too small.
    TooLarge,
    /// The message is shorter than its header says.
    Truncated,
    /// ALGO, HDR_VERSION or HDR_SIZE is not what this implementation speaks.
    UnsupportedHeader,
    /// The sequence number is not the expected one (a replay, or a reordered message).
    Sequence { expected: u64, actual: u64 },
    /// MSG_TYPE is not the expected one.
    WrongType { expected: u8, actual: u8 },
    /// MSG_VMPCK names another key.
    WrongKey,
    /// The tag does not verify: the message was altered or sealed under another key.
    Authentication,
    /// A previous failure wiped the key: no message can be sealed or opened any more.
    KeyWiped,
    /// The 64-bit sequence space is exhausted.
    SequenceExhausted,
}

impl core::fmt::Display for GuestMsgError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooLarge => f.write_str("guest message larger than one page or its buffer"),
            Self::Truncated => f.write_str("guest message shorter than its header says"),
            Self::UnsupportedHeader => f.write_str("guest message header has an unsupported algorithm or version"),
            Self::Sequence { expected, actual } => {
                write!(f, "guest message sequence number {actual}, expected {expected} (replayed or reordered)")
            }
            Self::WrongType { expected, actual } => write!(f, "guest message type {actual}, expected {expected}"),
            Self::WrongKey => f.write_str("guest message names another VMPCK"),
            Self::Authentication => f.write_str("guest message authentication failed"),
            Self::KeyWiped => f.write_str("the VMPCK was wiped after an earlier failure"),
            Self::SequenceExhausted => f.write_str("guest message sequence numbers exhausted"),
        }
    }
}

impl core::error::Error for GuestMsgError {}

/// The fields of a message header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub seqno: u64,
    pub msg_type: u8,
    pub msg_version: u8,
    pub msg_size: u16,
    pub vmpck_id: u8,
}

impl Header {
    /// Parses and checks the fixed fields; never panics.
    pub fn parse(message: &[u8]) -> Result<Self, GuestMsgError> {
        let header = message.get(..HEADER_SIZE).ok_or(GuestMsgError::Truncated)?;
        let u16_at = |off: usize| u16::from_le_bytes([header[off], header[off + 1]]);
        let mut seqno = [0u8; 8];
        seqno.copy_from_slice(&header[SEQNO..SEQNO + 8]);
        if header[ALGO] != ALGO_AES_256_GCM
            || header[HDR_VERSION_OFF] != HDR_VERSION
            || usize::from(u16_at(HDR_SIZE_OFF)) != HEADER_SIZE
        {
            return Err(GuestMsgError::UnsupportedHeader);
        }
        let msg_size = u16_at(MSG_SIZE);
        if usize::from(msg_size) > MAX_PAYLOAD {
            return Err(GuestMsgError::TooLarge);
        }
        Ok(Self {
            seqno: u64::from_le_bytes(seqno),
            msg_type: header[MSG_TYPE],
            msg_version: header[MSG_VERSION],
            msg_size,
            vmpck_id: header[MSG_VMPCK],
        })
    }

    fn write(&self, header: &mut [u8; HEADER_SIZE]) {
        header.fill(0);
        header[SEQNO..SEQNO + 8].copy_from_slice(&self.seqno.to_le_bytes());
        header[ALGO] = ALGO_AES_256_GCM;
        header[HDR_VERSION_OFF] = HDR_VERSION;
        header[HDR_SIZE_OFF..HDR_SIZE_OFF + 2].copy_from_slice(&(HEADER_SIZE as u16).to_le_bytes());
        header[MSG_TYPE] = self.msg_type;
        header[MSG_VERSION] = self.msg_version;
        header[MSG_SIZE..MSG_SIZE + 2].copy_from_slice(&self.msg_size.to_le_bytes());
        header[MSG_VMPCK] = self.vmpck_id;
    }
}

/// A VMPCK, zeroized on drop.
pub struct Vmpck(Zeroizing<[u8; VMPCK_LEN]>);

impl Vmpck {
    pub fn new(key: [u8; VMPCK_LEN]) -> Self {
        Self(Zeroizing::new(key))
    }

    /// An all-zero VMPCK is how the firmware marks a key that is not available (and how
    /// guests mark one they wiped): it must never be used.
    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|&b| b == 0)
    }

    fn cipher(&self) -> Aead {
        Aead::new(&self.0)
    }
}

impl core::fmt::Debug for Vmpck {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Vmpck(<secret>)")
    }
}

fn nonce(seqno: u64) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[..8].copy_from_slice(&seqno.to_le_bytes());
    iv
}

/// Writes a sealed message into `out`, returning its length.
pub fn seal(key: &Vmpck, header: &Header, payload: &[u8], out: &mut [u8]) -> Result<usize, GuestMsgError> {
    if payload.len() > MAX_PAYLOAD || usize::from(header.msg_size) != payload.len() {
        return Err(GuestMsgError::TooLarge);
    }
    let total = HEADER_SIZE + payload.len();
    let out = out.get_mut(..total).ok_or(GuestMsgError::TooLarge)?;
    let (head, body) = out.split_at_mut(HEADER_SIZE);
    let head: &mut [u8; HEADER_SIZE] = head.try_into().map_err(|_| GuestMsgError::TooLarge)?;
    header.write(head);
    body.copy_from_slice(payload);
    let tag = key.cipher().seal(&nonce(header.seqno), &head[AAD], body).map_err(|_| GuestMsgError::TooLarge)?;
    head[AUTHTAG..AUTHTAG + TAG_LEN].copy_from_slice(&tag);
    Ok(total)
}

/// Authenticates and decrypts `message` into `out`, returning the header and the plaintext
/// length. Checks nothing about sequence or type: see [`Requester`] and [`Responder`].
pub fn open(key: &Vmpck, message: &[u8], out: &mut [u8]) -> Result<(Header, usize), GuestMsgError> {
    let header = Header::parse(message)?;
    let len = usize::from(header.msg_size);
    let ciphertext = message.get(HEADER_SIZE..HEADER_SIZE + len).ok_or(GuestMsgError::Truncated)?;
    let plain = out.get_mut(..len).ok_or(GuestMsgError::TooLarge)?;
    plain.copy_from_slice(ciphertext);
    let tag = &message[AUTHTAG..AUTHTAG + TAG_LEN];
    if key.cipher().open(&nonce(header.seqno), &message[AAD], plain, tag).is_err() {
        return Err(GuestMsgError::Authentication);
    }
    Ok((header, len))
}

/// The guest's side: seals requests and opens their responses, keeping the sequence number in
/// private memory. Any failure to open a response wipes the key (the firmware may already have
/// consumed the sequence number, so continuing could reuse an IV).
#[derive(Debug)]
pub struct Requester {
    key: Option<Vmpck>,
    vmpck_id: u8,
    /// The sequence number of the last response (0 before the first request).
    last: u64,
    /// The request sealed and not yet answered: (seqno, type, version).
    pending: Option<(u64, u8, u8)>,
}

impl Requester {
    pub fn new(key: Vmpck, vmpck_id: u8) -> Self {
        let key = (!key.is_zero()).then_some(key);
        Self { key, vmpck_id, last: 0, pending: None }
    }

    pub fn is_wiped(&self) -> bool {
        self.key.is_none()
    }

    /// Drops (zeroizes) the key: every later call fails with [`GuestMsgError::KeyWiped`].
    pub fn wipe(&mut self) {
        self.key = None;
    }

    /// Seals the next request. While a sealed request is unanswered a new one is refused: its
    /// sequence number may already be consumed by the firmware, so the only safe continuations
    /// are the answer to the pending request or wiping the key.
    pub fn seal_request(
        &mut self,
        msg_type: u8,
        msg_version: u8,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, GuestMsgError> {
        let key = self.key.as_ref().ok_or(GuestMsgError::KeyWiped)?;
        if self.pending.is_some() {
            return Err(GuestMsgError::Sequence { expected: self.last + 2, actual: self.last + 1 });
        }
        let seqno =
            self.last.checked_add(1).filter(|s| s.checked_add(1).is_some()).ok_or(GuestMsgError::SequenceExhausted)?;
        let msg_size = u16::try_from(payload.len()).map_err(|_| GuestMsgError::TooLarge)?;
        let header = Header { seqno, msg_type, msg_version, msg_size, vmpck_id: self.vmpck_id };
        let len = seal(key, &header, payload, out)?;
        self.pending = Some((seqno, msg_type, msg_version));
        Ok(len)
    }

    /// Opens the response to the pending request: it must carry the next sequence number, the
    /// response type (request type + 1) and our VMPCK id. On any failure the key is wiped.
    pub fn open_response(&mut self, message: &[u8], out: &mut [u8]) -> Result<usize, GuestMsgError> {
        let result = self.try_open_response(message, out);
        match result {
            Ok(_) => self.pending = None,
            Err(_) => self.wipe(),
        }
        result
    }

    fn try_open_response(&mut self, message: &[u8], out: &mut [u8]) -> Result<usize, GuestMsgError> {
        let key = self.key.as_ref().ok_or(GuestMsgError::KeyWiped)?;
        let (seqno, req_type, req_version) = self.pending.ok_or(GuestMsgError::Sequence { expected: 0, actual: 0 })?;
        let header = Header::parse(message)?;
        if header.seqno != seqno + 1 {
            return Err(GuestMsgError::Sequence { expected: seqno + 1, actual: header.seqno });
        }
        if header.msg_type != req_type.wrapping_add(1) {
            return Err(GuestMsgError::WrongType { expected: req_type.wrapping_add(1), actual: header.msg_type });
        }
        if header.vmpck_id != self.vmpck_id {
            return Err(GuestMsgError::WrongKey);
        }
        if header.msg_version != req_version {
            return Err(GuestMsgError::UnsupportedHeader);
        }
        let (_, len) = open(key, message, out)?;
        self.last = seqno + 1;
        Ok(len)
    }
}

/// The firmware's side (used by the simulated PSP): opens requests in sequence and seals their
/// responses.
#[derive(Debug)]
pub struct Responder {
    key: Vmpck,
    vmpck_id: u8,
    last: u64,
}

impl Responder {
    pub fn new(key: Vmpck, vmpck_id: u8) -> Self {
        Self { key, vmpck_id, last: 0 }
    }

    /// Opens the next request: its sequence number must be the last one plus one.
    pub fn open_request(&mut self, message: &[u8], out: &mut [u8]) -> Result<(Header, usize), GuestMsgError> {
        let header = Header::parse(message)?;
        if header.seqno != self.last + 1 {
            return Err(GuestMsgError::Sequence { expected: self.last + 1, actual: header.seqno });
        }
        if header.vmpck_id != self.vmpck_id {
            return Err(GuestMsgError::WrongKey);
        }
        let opened = open(&self.key, message, out)?;
        self.last = header.seqno;
        Ok(opened)
    }

    /// Seals the response to `request` (sequence + 1, type + 1).
    pub fn seal_response(&mut self, request: &Header, payload: &[u8], out: &mut [u8]) -> Result<usize, GuestMsgError> {
        let msg_size = u16::try_from(payload.len()).map_err(|_| GuestMsgError::TooLarge)?;
        let header = Header {
            seqno: request.seqno + 1,
            msg_type: request.msg_type.wrapping_add(1),
            msg_version: request.msg_version,
            msg_size,
            vmpck_id: self.vmpck_id,
        };
        let len = seal(&self.key, &header, payload, out)?;
        self.last = header.seqno;
        Ok(len)
    }
}
