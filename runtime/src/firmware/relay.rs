//! Connections the host relays: a [`Transport`] over the channel's Connect / Send / Receive /
//! Close messages (see `twi_proto::msg::relay`). The host is an untrusted conduit: what comes
//! back is only bytes for TLS to authenticate, and a host that answers out of turn ends the
//! connection, never the runtime.

use alloc::string::String;

use twi_payload::tls::{Transport, TransportError};
use twi_proto::msg::{Close, Connect, MAX_RELAY_DATA, Message, Receive, Send};

use crate::channel::{Channel, ChannelError, Link};

/// One relayed connection.
pub struct RelayStream<'c, 'a, L: Link> {
    channel: &'c Channel<'a, L>,
    id: u16,
    closed: bool,
}

impl<L: Link> core::fmt::Debug for RelayStream<'_, '_, L> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RelayStream").field("id", &self.id).field("closed", &self.closed).finish()
    }
}

/// Why the host did not open a connection.
#[derive(Debug)]
pub enum OpenError {
    /// The host refused (its Error message: it is untrusted, so this is a hint).
    Refused(String),
    /// The channel failed.
    Channel(ChannelError),
}

impl<'c, 'a, L: Link> RelayStream<'c, 'a, L> {
    /// Asks the host to connect to `host_port` (`HOST:PORT`) as connection `id`.
    pub fn open(channel: &'c Channel<'a, L>, id: u16, host_port: &str) -> Result<Self, OpenError> {
        channel.send(&Message::Connect(Connect { id, target: String::from(host_port) })).map_err(OpenError::Channel)?;
        match channel.recv_reply() {
            Ok(Message::Connected(c)) if c.id == id => Ok(Self { channel, id, closed: false }),
            Ok(other) => Err(OpenError::Channel(ChannelError::Unexpected(other.name()))),
            Err(ChannelError::HostError(_, why)) => Err(OpenError::Refused(why)),
            Err(e) => Err(OpenError::Channel(e)),
        }
    }
}

fn transport_error(e: ChannelError) -> TransportError {
    match e {
        ChannelError::HostError(..) => TransportError::Reset,
        other => TransportError::Other(alloc::format!("{other}")),
    }
}

impl<L: Link> Transport for RelayStream<'_, '_, L> {
    fn write_all(&mut self, buf: &[u8]) -> Result<(), TransportError> {
        if self.closed {
            return Err(TransportError::Reset);
        }
        for chunk in buf.chunks(MAX_RELAY_DATA) {
            let message = Message::Send(Send { id: self.id, data: chunk.to_vec() });
            self.channel.send(&message).map_err(transport_error)?;
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<usize, TransportError> {
        if self.closed || buf.is_empty() {
            return Ok(0);
        }
        let max = buf.len().min(MAX_RELAY_DATA) as u32;
        self.channel.send(&Message::Receive(Receive { id: self.id, max })).map_err(transport_error)?;
        match self.channel.recv_reply().map_err(transport_error)? {
            // More than asked for is the host's lie: refuse it rather than truncate silently.
            Message::Received(r) if r.id == self.id && r.data.len() <= buf.len() => {
                buf[..r.data.len()].copy_from_slice(&r.data);
                if r.data.is_empty() {
                    self.closed = true;
                }
                Ok(r.data.len())
            }
            other => Err(TransportError::Other(alloc::format!("the host answered a read with {}", other.name()))),
        }
    }
}

impl<L: Link> Drop for RelayStream<'_, '_, L> {
    fn drop(&mut self) {
        // Best effort: the host closes its side too when the guest exits.
        let _ = self.channel.send(&Message::Close(Close { id: self.id }));
    }
}
