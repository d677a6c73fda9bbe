//! The network side of the bridge: the connections a workload opens to its targets and the
//! host's clock, behind [`Conduit`] (TCP in `twi run`: [`crate::conduit::TcpConduit`]; fakes in
//! tests). The host is an untrusted conduit by design: it relays bytes it cannot read (the
//! workload runs TLS over them) and a clock the workload must not trust; so the bridge checks
//! only the shape of what the guest asks, and a hostile host is a decorator
//! ([`TamperedConduit`]) that alters relayed bytes.

use twi_proto::msg::{Close, Connect, Connected, ErrorCode, Message, Receive, Received, Send, Time};

use super::{Bridge, Step, error};

/// Why a relayed connection failed, in words for the guest's log and the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConduitError(pub String);

/// The host's side of a workload's connections, and its clock.
pub trait Conduit {
    /// Opens connection `id` to `host_port` (`HOST:PORT`).
    fn connect(&mut self, id: u16, host_port: &str) -> Result<(), ConduitError>;
    /// Writes `data` to connection `id`.
    fn send(&mut self, id: u16, data: &[u8]) -> Result<(), ConduitError>;
    /// Up to `max` bytes from connection `id`, waiting until some arrive; empty at its end.
    fn receive(&mut self, id: u16, max: usize) -> Result<Vec<u8>, ConduitError>;
    /// Closes connection `id` (nothing if it is not open).
    fn close(&mut self, id: u16);
    /// The host's wall-clock time, seconds since the Unix epoch.
    fn now(&self) -> u64;
}

/// No network: every connection is refused (a run whose workload connects nowhere).
#[derive(Debug, Default)]
pub struct Offline;

impl Conduit for Offline {
    fn connect(&mut self, _: u16, host_port: &str) -> Result<(), ConduitError> {
        Err(ConduitError(format!("this run relays no connections (asked for {host_port})")))
    }
    fn send(&mut self, id: u16, _: &[u8]) -> Result<(), ConduitError> {
        Err(ConduitError(format!("connection {id} is not open")))
    }
    fn receive(&mut self, id: u16, _: usize) -> Result<Vec<u8>, ConduitError> {
        Err(ConduitError(format!("connection {id} is not open")))
    }
    fn close(&mut self, _: u16) {}
    fn now(&self) -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
    }
}

impl<C: Conduit + ?Sized> Conduit for Box<C> {
    fn connect(&mut self, id: u16, host_port: &str) -> Result<(), ConduitError> {
        (**self).connect(id, host_port)
    }
    fn send(&mut self, id: u16, data: &[u8]) -> Result<(), ConduitError> {
        (**self).send(id, data)
    }
    fn receive(&mut self, id: u16, max: usize) -> Result<Vec<u8>, ConduitError> {
        (**self).receive(id, max)
    }
    fn close(&mut self, id: u16) {
        (**self).close(id)
    }
    fn now(&self) -> u64 {
        (**self).now()
    }
}

/// A hostile host (`--tamper relay-byte:N`): flips the `N`th byte of what the target sends the
/// workload (counted over the whole connection). TLS must turn it into a failure.
#[derive(Debug)]
pub struct TamperedConduit<C> {
    inner: C,
    flip_at: usize,
    received: usize,
}

impl<C: Conduit> TamperedConduit<C> {
    pub fn new(inner: C, flip_at: usize) -> Self {
        Self { inner, flip_at, received: 0 }
    }
}

impl<C: Conduit> Conduit for TamperedConduit<C> {
    fn connect(&mut self, id: u16, host_port: &str) -> Result<(), ConduitError> {
        self.inner.connect(id, host_port)
    }
    fn send(&mut self, id: u16, data: &[u8]) -> Result<(), ConduitError> {
        self.inner.send(id, data)
    }
    fn receive(&mut self, id: u16, max: usize) -> Result<Vec<u8>, ConduitError> {
        let mut data = self.inner.receive(id, max)?;
        let range = self.received..self.received + data.len();
        if range.contains(&self.flip_at) {
            data[self.flip_at - range.start] ^= 0x01;
            super::tamper::announce(format_args!("flipped byte {} of connection {id} from its target", self.flip_at));
        }
        self.received = range.end;
        Ok(data)
    }
    fn close(&mut self, id: u16) {
        self.inner.close(id)
    }
    fn now(&self) -> u64 {
        self.inner.now()
    }
}

impl Bridge<'_> {
    /// A relay message from the guest; `None` for one that is not about the network.
    pub(super) fn relay(&mut self, message: &Message, step: &mut Step) -> Option<Option<Message>> {
        Some(match message {
            Message::Connect(Connect { id, target }) => Some(self.relay_connect(*id, target, step)),
            Message::Send(Send { id, data }) => self.relay_send(*id, data, step),
            Message::Receive(Receive { id, max }) => Some(self.relay_receive(*id, *max as usize)),
            Message::Close(Close { id }) => {
                self.conduit.close(*id);
                None
            }
            Message::TimeRequest(_) => Some(Time { unix_seconds: self.conduit.now() }.into()),
            _ => return None,
        })
    }

    fn relay_connect(&mut self, id: u16, target: &str, step: &mut Step) -> Message {
        // The guest checked the target against its measured manifest and sends HOST:PORT.
        match self.conduit.connect(id, target) {
            Ok(()) => {
                step.progress(format!("relaying connection {id} to {target}"));
                Connected { id }.into()
            }
            Err(e) => {
                step.progress(format!("cannot connect to {target} for the guest: {e}"));
                error(ErrorCode::Internal, &format!("cannot connect to {target}: {e}"))
            }
        }
    }

    fn relay_send(&mut self, id: u16, data: &[u8], step: &mut Step) -> Option<Message> {
        // No reply on success: the guest's next read reports a broken connection.
        if let Err(e) = self.conduit.send(id, data) {
            step.progress(format!("connection {id}: {e}"));
            self.conduit.close(id);
        }
        None
    }

    fn relay_receive(&mut self, id: u16, max: usize) -> Message {
        match self.conduit.receive(id, max) {
            Ok(mut data) => {
                data.truncate(max);
                Received { id, data }.into()
            }
            Err(e) => error(ErrorCode::Internal, &format!("connection {id}: {e}")),
        }
    }
}
