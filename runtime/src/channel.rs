//! The framed, validated message channel to the host loader, over any byte [`Link`] (on the
//! machine the shared-memory ring or COM2, the transport module; an in-memory pipe in host tests).
//!
//! Every frame from the host is hostile: the reader checks its size before allocating and its
//! shape before decoding (`twi_proto::frame`); a malformed one is answered with an Error frame,
//! reported to the channel's observer, and skipped, up to [`MAX_MALFORMED_FRAMES`] per session.
//!
//! The channel is shared by whoever speaks to the host: the session and, under the simulated TEE,
//! the simulated firmware's doorbell (the TEE layer's simulated backend). Its methods take `&self` (one CPU, no
//! interrupts: a `RefCell` is the whole of the synchronisation), so both can hold it at once; a
//! borrow never outlives one call.

use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;

use twi_proto::msg::{ErrorCode, ErrorMsg, Message};
use twi_proto::{MessageReader, ProtoError, write_message_from_guest};

/// Malformed frames tolerated in one session before the runtime gives up on the host.
pub const MAX_MALFORMED_FRAMES: u32 = 8;

/// A byte pipe to the host.
pub trait Link {
    fn write_all(&mut self, bytes: &[u8]);
    /// Blocks until the next byte; `None` when the link is closed (host tests) or broken.
    fn read_byte(&mut self) -> Option<u8>;
    /// Why the link stopped working, when the host broke the transport's rules (a shared-memory
    /// ring's lying index); `None` for a link that is open or merely closed.
    fn broken(&self) -> Option<&'static str> {
        None
    }
}

/// Why an exchange with the host failed: the channel itself, or the host's answer did not fit the
/// protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelError {
    /// The host closed the link.
    Closed,
    /// The host broke the transport's rules (why): nothing more is read from it.
    Transport(&'static str),
    /// The host sent more than [`MAX_MALFORMED_FRAMES`] malformed frames.
    TooManyMalformedFrames,
    /// A message of ours could not be encoded (a runtime bug: our messages fit the limits).
    Encode,
    /// The channel was already in use by a caller further up the stack (a runtime bug).
    Busy,
    /// The host answered with an Error message (its code and text).
    HostError(ErrorCode, String),
    /// The host sent a message that does not fit the protocol state (its name).
    Unexpected(&'static str),
}

impl core::fmt::Display for ChannelError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Closed => f.write_str("the host closed the channel"),
            Self::Transport(why) => write!(f, "the host broke the channel's transport: {why}"),
            Self::TooManyMalformedFrames => f.write_str("the host sent too many malformed frames"),
            Self::Encode => f.write_str("a message could not be encoded"),
            Self::Busy => f.write_str("the channel is already in use (re-entered)"),
            Self::HostError(code, message) => write!(f, "the host reported an error ({code:?}): {message}"),
            Self::Unexpected(what) => write!(f, "unexpected message from the host: {what}"),
        }
    }
}

/// Told about every malformed frame the channel skips (for the console).
pub type MalformedObserver<'a> = &'a dyn Fn(&ProtoError);

struct Inner<L> {
    link: L,
    reader: MessageReader,
    malformed: u32,
    out: Vec<u8>,
}

/// The framed message channel over a [`Link`].
pub struct Channel<'a, L: Link> {
    inner: RefCell<Inner<L>>,
    on_malformed: MalformedObserver<'a>,
}

impl<L: Link> core::fmt::Debug for Channel<'_, L> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let malformed = self.inner.try_borrow().map(|i| i.malformed).ok();
        f.debug_struct("Channel").field("malformed", &malformed).finish_non_exhaustive()
    }
}

impl<'a, L: Link> Channel<'a, L> {
    pub fn new(link: L, on_malformed: MalformedObserver<'a>) -> Self {
        let inner = Inner { link, reader: MessageReader::from_host(), malformed: 0, out: Vec::new() };
        Self { inner: RefCell::new(inner), on_malformed }
    }

    /// Frames and sends one message.
    pub fn send(&self, msg: &Message) -> Result<(), ChannelError> {
        let mut inner = self.inner.try_borrow_mut().map_err(|_| ChannelError::Busy)?;
        let Inner { link, out, .. } = &mut *inner;
        out.clear();
        write_message_from_guest(msg, out).map_err(|_| ChannelError::Encode)?;
        link.write_all(out);
        Ok(())
    }

    /// The next well-formed message. A malformed frame is answered with an Error frame, reported
    /// to the observer, and skipped.
    pub fn recv(&self) -> Result<Message, ChannelError> {
        loop {
            let result = {
                let mut inner = self.inner.try_borrow_mut().map_err(|_| ChannelError::Busy)?;
                let byte = match inner.link.read_byte() {
                    Some(byte) => byte,
                    None => return Err(inner.link.broken().map_or(ChannelError::Closed, ChannelError::Transport)),
                };
                inner.reader.push(byte)
            };
            match result {
                None => continue,
                Some(Ok(msg)) => return Ok(msg),
                Some(Err(error)) => self.skip_malformed(&error)?,
            }
        }
    }

    fn skip_malformed(&self, error: &ProtoError) -> Result<(), ChannelError> {
        (self.on_malformed)(error);
        let malformed = {
            let mut inner = self.inner.try_borrow_mut().map_err(|_| ChannelError::Busy)?;
            inner.malformed += 1;
            inner.malformed
        };
        self.send(&Message::Error(ErrorMsg::new(error.code(), "malformed frame from the host")))?;
        if malformed >= MAX_MALFORMED_FRAMES {
            return Err(ChannelError::TooManyMalformedFrames);
        }
        Ok(())
    }

    /// The next message, or the host's Error as [`ChannelError::HostError`].
    pub fn recv_reply(&self) -> Result<Message, ChannelError> {
        match self.recv()? {
            Message::Error(e) => Err(ChannelError::HostError(e.code, e.message)),
            other => Ok(other),
        }
    }

    /// Tells the host why the session ends (best effort: the channel may be what failed).
    pub fn report(&self, code: ErrorCode, why: &dyn core::fmt::Display) {
        let mut text = String::new();
        let _ = core::fmt::write(&mut text, format_args!("{why}"));
        let _ = self.send(&Message::Error(ErrorMsg::new(code, &text)));
    }
}
