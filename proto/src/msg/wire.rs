//! Encoding and decoding: the size limits, the CBOR shape check that runs before the derived
//! decoder, and the incremental reader.

use alloc::vec::Vec;
use core::fmt;

use super::{ErrorCode, Message, from_guest, from_host, is_from_host_index, is_message_index};
use crate::frame::{self, FrameDecoder, FrameError, MAX_PAYLOAD};

/// Why a message could not be sent or received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtoError {
    /// The frame around the message was bad.
    Frame(FrameError),
    /// The payload is not a well-formed message (bad CBOR, wrong types,
    /// missing fields, trailing bytes, unknown enum values inside a message).
    Malformed,
    /// The message index is not one this version knows.
    UnknownMessage,
    /// A message only the guest sends, arriving at the guest (or only the host sends, leaving it).
    WrongDirection,
    /// The named field exceeds its limit.
    FieldTooLong(&'static str),
    /// The named field has an invalid value (e.g. nonce length, key format).
    InvalidField(&'static str),
    /// The encoded message exceeds [`MAX_PAYLOAD`].
    TooLarge,
}

impl ProtoError {
    /// The code to send back in an [`ErrorMsg`].
    pub fn code(&self) -> ErrorCode {
        match self {
            ProtoError::UnknownMessage | ProtoError::WrongDirection => ErrorCode::UnexpectedMessage,
            ProtoError::Frame(_)
            | ProtoError::Malformed
            | ProtoError::FieldTooLong(_)
            | ProtoError::InvalidField(_)
            | ProtoError::TooLarge => ErrorCode::Malformed,
        }
    }
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::Frame(e) => write!(f, "bad frame: {e}"),
            ProtoError::Malformed => f.write_str("malformed message"),
            ProtoError::UnknownMessage => f.write_str("unknown message type"),
            ProtoError::WrongDirection => f.write_str("a message the other side sends"),
            ProtoError::FieldTooLong(field) => write!(f, "field `{field}` too long"),
            ProtoError::InvalidField(field) => write!(f, "field `{field}` invalid"),
            ProtoError::TooLarge => f.write_str("message too large"),
        }
    }
}

impl core::error::Error for ProtoError {}

impl From<FrameError> for ProtoError {
    fn from(e: FrameError) -> Self {
        ProtoError::Frame(e)
    }
}

/// Encodes `msg` as a CBOR payload after checking the same limits [`decode`] enforces.
pub fn encode(msg: &Message) -> Result<Vec<u8>, ProtoError> {
    msg.validate()?;
    // Writing to a Vec cannot fail; the field limits keep it well below MAX_PAYLOAD.
    within_limit(minicbor::to_vec(msg))
}

/// As [`encode`], for the guest: only the messages the guest sends encode; one only the host
/// sends is [`ProtoError::WrongDirection`]. The same bytes as [`encode`], from an encoder with
/// no code for the host's messages.
pub fn encode_from_guest(msg: &Message) -> Result<Vec<u8>, ProtoError> {
    let payload = from_guest::encode(msg).ok_or(ProtoError::WrongDirection)?;
    msg.validate()?;
    within_limit(payload)
}

/// An encoded payload no larger than [`MAX_PAYLOAD`].
fn within_limit<E>(payload: Result<Vec<u8>, E>) -> Result<Vec<u8>, ProtoError> {
    let payload = payload.map_err(|_| ProtoError::Malformed)?;
    if payload.len() > MAX_PAYLOAD {
        return Err(ProtoError::TooLarge);
    }
    Ok(payload)
}

/// Decodes and validates one message from a frame payload.
///
/// Errors: [`ProtoError::UnknownMessage`] for a message index this version
/// does not know; [`ProtoError::Malformed`] for anything that is not exactly
/// one well-typed message (including trailing bytes); `FieldTooLong` /
/// `InvalidField` when [`Message::validate`] refuses it.
pub fn decode(payload: &[u8]) -> Result<Message, ProtoError> {
    message_index(payload)?;
    let msg: Message = minicbor::decode(payload).map_err(|_| ProtoError::Malformed)?;
    msg.validate()?;
    Ok(msg)
}

/// As [`decode`], for the guest: only the messages the host sends decode; one only the guest
/// sends is [`ProtoError::WrongDirection`]. Its decoder has no code for the guest's own
/// messages, so the runtime's ROM does not carry it.
pub fn decode_from_host(payload: &[u8]) -> Result<Message, ProtoError> {
    if !is_from_host_index(message_index(payload)?) {
        return Err(ProtoError::WrongDirection);
    }
    let msg = from_host::decode(payload).ok_or(ProtoError::Malformed)?;
    msg.validate()?;
    Ok(msg)
}

/// The message index of a payload whose shape [`check_shape`] accepts, telling an unknown
/// message type apart from a malformed one.
fn message_index(payload: &[u8]) -> Result<u64, ProtoError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(ProtoError::TooLarge);
    }
    check_shape(payload)?;
    let mut probe = minicbor::Decoder::new(payload);
    probe.array().map_err(|_| ProtoError::Malformed)?;
    let index = probe.u64().map_err(|_| ProtoError::Malformed)?;
    if !is_message_index(index) {
        return Err(ProtoError::UnknownMessage);
    }
    Ok(index)
}

/// Checks that `buf` is exactly one well-formed CBOR item using only what
/// [`encode`] produces: definite lengths, no tags, text in UTF-8 (the decoders refuse
/// anything else, this only refuses it earlier).
///
/// This runs before the derived decoder so that hostile input cannot make it
/// allocate beyond the payload size: minicbor's `skip` (used for unknown map
/// keys) keeps a heap stack for nested indefinite-length items. It also
/// rejects trailing bytes.
fn check_shape(buf: &[u8]) -> Result<(), ProtoError> {
    if skip_items(buf, 0, 1) == Some(buf.len()) { Ok(()) } else { Err(ProtoError::Malformed) }
}

/// The position after the `count` well-formed CBOR items at `pos` in `buf`, with definite
/// lengths, no tags and text in UTF-8; `None` if they are not there.
///
/// It never recurses: definite lengths only need a count of the items still expected, and
/// that count is bounded by the input length because every item takes at least one byte.
pub(super) fn skip_items(buf: &[u8], mut pos: usize, count: usize) -> Option<usize> {
    let mut pending = count;
    while pending > 0 {
        pending -= 1;
        let initial = *buf.get(pos)?;
        pos += 1;
        let (major, info) = (initial >> 5, initial & 0x1f);
        let arg = match info {
            0..=23 => u64::from(info),
            24..=27 => {
                let n = 1usize << (info - 24);
                let bytes = buf.get(pos..pos.saturating_add(n))?;
                pos += n;
                bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
            }
            // 28..=30 are reserved, 31 is indefinite length or "break".
            _ => return None,
        };
        let remaining = buf.len().saturating_sub(pos);
        // Lengths above what is left cannot be satisfied; this also keeps
        // `pending` and `pos` far from overflow.
        let count = usize::try_from(arg).ok().filter(|&n| n <= remaining);
        match major {
            0 | 1 | 7 => {} // integers, simple values and floats: all in the header
            2 => pos += count?,
            // Text is UTF-8, as minicbor's decoder (and its `skip`) requires.
            3 => {
                let end = pos + count?;
                core::str::from_utf8(buf.get(pos..end)?).ok()?;
                pos = end;
            }
            4 => pending = pending.checked_add(count?)?,
            5 => pending = pending.checked_add(count?.checked_mul(2)?)?,
            _ => return None, // 6: tags
        }
    }
    Some(pos)
}

/// Encodes `msg` and appends it as one frame to `out`.
pub fn write_message(msg: &Message, out: &mut Vec<u8>) -> Result<(), ProtoError> {
    let payload = encode(msg)?;
    frame::encode_frame(&payload, out)?;
    Ok(())
}

/// As [`write_message`], for the guest ([`encode_from_guest`]).
pub fn write_message_from_guest(msg: &Message, out: &mut Vec<u8>) -> Result<(), ProtoError> {
    let payload = encode_from_guest(msg)?;
    frame::encode_frame(&payload, out)?;
    Ok(())
}

/// Incremental message receiver: a [`FrameDecoder`] plus [`decode`] (or, in the guest,
/// [`decode_from_host`]).
#[derive(Debug)]
pub struct MessageReader {
    frames: FrameDecoder,
    /// A function pointer, not a flag: a guest that only makes [`Self::from_host`] readers
    /// links no code for [`decode`].
    decode: fn(&[u8]) -> Result<Message, ProtoError>,
}

impl Default for MessageReader {
    fn default() -> Self {
        Self::new()
    }
}

impl MessageReader {
    /// Creates a reader of every message (allocates the frame buffer once): the host's.
    pub fn new() -> Self {
        Self { frames: FrameDecoder::default(), decode }
    }

    /// Creates the guest's reader: only what the host sends ([`decode_from_host`]).
    pub fn from_host() -> Self {
        Self { frames: FrameDecoder::default(), decode: decode_from_host }
    }

    /// Feeds one byte; returns `Some` when a frame is complete. After an
    /// error the reader carries on with the next frame.
    pub fn push(&mut self, byte: u8) -> Option<Result<Message, ProtoError>> {
        let payload = self.frames.push(byte)?;
        Some(payload.map_err(ProtoError::from).and_then(|p| (self.decode)(&p)))
    }

    /// Drops any partially received frame.
    pub fn reset(&mut self) {
        self.frames.reset();
    }
}
