//! A blocking TLS 1.3 stream driven over rustls's unbuffered connection.
//!
//! rustls's unbuffered API does no I/O: each call to `process_tls_records` consumes received
//! bytes and answers with the next thing to do (encode and transmit handshake records, read
//! more, hand out application data, accept application data to encrypt). This module is that
//! loop, over the caller's [`Transport`], with three buffers of our own: received TLS bytes,
//! TLS bytes to send, and decrypted bytes not yet read.
//!
//! Only authenticated plaintext is ever handed out: a record is decrypted and its tag checked
//! (RFC 8446 §5.2) before its bytes reach `read`. The end of the stream is the server's
//! `close_notify` (§6.1); a transport that ends without one is [`TlsError::Truncated`], so a
//! relay cannot cut a response short unnoticed.

use alloc::sync::Arc;
use alloc::vec::Vec;

use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::pki_types::ServerName;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, InsufficientSizeError, UnbufferedStatus, WriteTraffic,
};

use super::config::TlsConfig;
use super::error::TlsError;
use super::key::KeyFailure;
use super::transport::Transport;

/// Received TLS bytes are read in chunks of this size.
const READ_CHUNK: usize = 8 * 1024;
/// Most received bytes held at once: a 64 KiB handshake message (rustls's limit for a
/// certificate chain) joined from several records, plus one full record (2^14 + 256 + 5 bytes).
const MAX_INCOMING: usize = 64 * 1024 + 2 * (16 * 1024 + 256 + 5);

/// What one run of the record loop is for.
enum Goal<'a> {
    /// Finish the handshake.
    Handshake,
    /// Have decrypted bytes to hand out, or the peer's close.
    Read,
    /// Encrypt and send these bytes.
    Write(&'a [u8]),
    /// Send our `close_notify`.
    Close,
}

/// What the loop must do after a state was handled.
enum Next {
    Continue,
    ReadMore,
    Done,
}

/// A TLS 1.3 client connection over a [`Transport`].
pub struct TlsStream<T: Transport> {
    conn: UnbufferedClientConnection,
    transport: T,
    incoming: Vec<u8>,
    outgoing: Vec<u8>,
    plaintext: Vec<u8>,
    read_pos: usize,
    peer_closed: bool,
    we_closed: bool,
    failed: Option<TlsError>,
    key_failure: Arc<KeyFailure>,
}

impl<T: Transport> TlsStream<T> {
    /// Connects: runs the whole handshake with `server_name` (a DNS name or an IP address,
    /// which the server's certificate must name) over `transport`.
    ///
    /// # Errors
    /// [`TlsError`] with the reason the handshake failed. A server that refuses the client
    /// certificate is reported on the first `read` or `write_all`, because in TLS 1.3 its
    /// verdict arrives after the client's last handshake message (RFC 8446 §4.4.2.4).
    pub fn connect(config: &TlsConfig, server_name: &str, transport: T) -> Result<Self, TlsError> {
        let name = ServerName::try_from(server_name).map_err(|_| TlsError::InvalidServerName)?.to_owned();
        let key_failure = Arc::new(KeyFailure::default());
        let conn = UnbufferedClientConnection::new(config.for_connection(&key_failure), name)?;
        let mut stream = Self {
            conn,
            transport,
            incoming: Vec::new(),
            outgoing: Vec::new(),
            plaintext: Vec::new(),
            read_pos: 0,
            peer_closed: false,
            we_closed: false,
            failed: None,
            key_failure,
        };
        stream.run(Goal::Handshake)?;
        Ok(stream)
    }

    /// Reads decrypted bytes into `buf`, blocking until some arrive; `Ok(0)` once the server
    /// has closed the connection cleanly (or for an empty `buf`).
    ///
    /// # Errors
    /// [`TlsError`]: a failed connection stays failed and returns the same error.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, TlsError> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.read_pos == self.plaintext.len() {
            self.plaintext.clear();
            self.read_pos = 0;
            if !self.peer_closed {
                self.run(Goal::Read)?;
            }
        }
        let available = &self.plaintext[self.read_pos..];
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.read_pos += n;
        Ok(n)
    }

    /// Encrypts and sends all of `data`.
    ///
    /// # Errors
    /// [`TlsError::Closed`] after [`close`](Self::close); otherwise why the connection failed.
    pub fn write_all(&mut self, data: &[u8]) -> Result<(), TlsError> {
        if self.we_closed {
            return Err(TlsError::Closed);
        }
        if data.is_empty() {
            return Ok(());
        }
        self.run(Goal::Write(data))
    }

    /// Sends `close_notify`: nothing more will be written. Reading what the server still sends
    /// stays possible. Closing twice is harmless.
    ///
    /// # Errors
    /// Why the connection failed, if it did.
    pub fn close(&mut self) -> Result<(), TlsError> {
        if self.we_closed {
            return Ok(());
        }
        self.run(Goal::Close)?;
        self.we_closed = true;
        Ok(())
    }

    /// The transport, e.g. to shut it down after [`close`](Self::close).
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Runs the record loop until `goal` is met; a failure is kept and returned from then on.
    fn run(&mut self, goal: Goal<'_>) -> Result<(), TlsError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let result = self.run_inner(&goal);
        if let Err(error) = &result {
            self.failed = Some(error.clone());
        }
        result
    }

    fn run_inner(&mut self, goal: &Goal<'_>) -> Result<(), TlsError> {
        loop {
            let UnbufferedStatus { mut discard, state } = self.conn.process_tls_records(&mut self.incoming[..]);
            let mut io = Io {
                transport: &mut self.transport,
                outgoing: &mut self.outgoing,
                plaintext: &mut self.plaintext,
                peer_closed: &mut self.peer_closed,
            };
            let next = match state {
                Ok(state) => handle(state, goal, &mut io, &mut discard),
                Err(error) => Err(error.into()),
            };
            self.incoming.drain(..discard.min(self.incoming.len()));
            match next {
                Ok(Next::Continue) => {}
                Ok(Next::Done) => return Ok(()),
                Ok(Next::ReadMore) => self.read_more(goal)?,
                Err(error) => return Err(self.fail(error)),
            }
        }
    }

    /// Reads more TLS bytes from the transport.
    fn read_more(&mut self, goal: &Goal<'_>) -> Result<(), TlsError> {
        let filled = self.incoming.len();
        if filled >= MAX_INCOMING {
            return Err(self.fail(TlsError::Protocol("a message larger than the receive buffer")));
        }
        self.incoming.resize((filled + READ_CHUNK).min(MAX_INCOMING), 0);
        let read = self.transport.read(&mut self.incoming[filled..]);
        self.incoming.truncate(filled + *read.as_ref().unwrap_or(&0));
        match read {
            Err(error) => Err(self.fail(error.into())),
            Ok(0) if matches!(goal, Goal::Read) && self.peer_closed => Ok(()),
            Ok(0) => Err(self.fail(TlsError::Truncated)),
            Ok(_) => Ok(()),
        }
    }

    /// Settles the error to report (a vault failure behind a signing error wins), and sends
    /// rustls's fatal alert, if it queued one, on a best-effort basis.
    fn fail(&mut self, error: TlsError) -> TlsError {
        let error = match self.key_failure.get() {
            Some(key_error) => TlsError::ClientKey(key_error),
            None => error,
        };
        self.flush_alert();
        error
    }

    fn flush_alert(&mut self) {
        for _ in 0..4 {
            let status = self.conn.process_tls_records(&mut []);
            match status.state {
                Ok(ConnectionState::EncodeTlsData(mut encoder)) => {
                    if encode(&mut self.outgoing, |out| encoder.encode(out)).is_err() {
                        return;
                    }
                }
                Ok(ConnectionState::TransmitTlsData(transmit)) => {
                    let _ = self.transport.write_all(&self.outgoing);
                    self.outgoing.clear();
                    transmit.done();
                    return;
                }
                _ => return,
            }
        }
    }
}

impl<T: Transport> core::fmt::Debug for TlsStream<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TlsStream")
            .field("handshaking", &self.conn.is_handshaking())
            .field("buffered", &(self.plaintext.len() - self.read_pos))
            .field("peer_closed", &self.peer_closed)
            .field("we_closed", &self.we_closed)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// The parts of a stream a state handler touches besides the connection.
struct Io<'s, T> {
    transport: &'s mut T,
    outgoing: &'s mut Vec<u8>,
    plaintext: &'s mut Vec<u8>,
    peer_closed: &'s mut bool,
}

impl<T: Transport> Io<'_, T> {
    fn transmit(&mut self) -> Result<(), TlsError> {
        let result = self.transport.write_all(self.outgoing);
        self.outgoing.clear();
        result.map_err(TlsError::from)
    }
}

/// Handles one state of the connection towards `goal`.
fn handle<T: Transport>(
    state: ConnectionState<'_, '_, ClientConnectionData>,
    goal: &Goal<'_>,
    io: &mut Io<'_, T>,
    discard: &mut usize,
) -> Result<Next, TlsError> {
    match state {
        ConnectionState::EncodeTlsData(mut encoder) => {
            encode(io.outgoing, |out| encoder.encode(out))?;
            Ok(Next::Continue)
        }
        ConnectionState::TransmitTlsData(transmit) => {
            io.transmit()?;
            transmit.done();
            Ok(Next::Continue)
        }
        ConnectionState::BlockedHandshake => Ok(Next::ReadMore),
        ConnectionState::ReadTraffic(mut traffic) => {
            while let Some(record) = traffic.next_record() {
                let record = record?;
                *discard += record.discard;
                io.plaintext.extend_from_slice(record.payload);
            }
            Ok(Next::Continue)
        }
        ConnectionState::PeerClosed => {
            *io.peer_closed = true;
            Ok(Next::Continue)
        }
        ConnectionState::Closed => {
            *io.peer_closed = true;
            match goal {
                Goal::Write(_) => Err(TlsError::Closed),
                _ => Ok(Next::Done),
            }
        }
        ConnectionState::WriteTraffic(writer) => on_traffic(writer, goal, io),
        _ => Err(TlsError::Internal("rustls reached a state a TLS client does not expect".into())),
    }
}

/// The handshake is done and application data may flow: finish `goal` or wait for more bytes.
fn on_traffic<T: Transport>(
    mut writer: WriteTraffic<'_, ClientConnectionData>,
    goal: &Goal<'_>,
    io: &mut Io<'_, T>,
) -> Result<Next, TlsError> {
    match goal {
        Goal::Handshake => Ok(Next::Done),
        Goal::Read if !io.plaintext.is_empty() || *io.peer_closed => Ok(Next::Done),
        Goal::Read => Ok(Next::ReadMore),
        Goal::Write(data) => {
            encrypt(io.outgoing, |out| writer.encrypt(data, out))?;
            io.transmit()?;
            Ok(Next::Done)
        }
        Goal::Close => {
            encrypt(io.outgoing, |out| writer.queue_close_notify(out))?;
            io.transmit()?;
            Ok(Next::Done)
        }
    }
}

/// Appends an encoded handshake record to `outgoing`, growing it to what rustls asks for.
fn encode(outgoing: &mut Vec<u8>, mut f: impl FnMut(&mut [u8]) -> Result<usize, EncodeError>) -> Result<(), TlsError> {
    let start = outgoing.len();
    let mut room = 1024;
    loop {
        outgoing.resize(start + room, 0);
        match f(&mut outgoing[start..]) {
            Ok(n) => {
                outgoing.truncate(start + n);
                return Ok(());
            }
            Err(EncodeError::InsufficientSize(InsufficientSizeError { required_size })) if required_size > room => {
                room = required_size;
            }
            Err(_) => {
                outgoing.truncate(start);
                return Err(TlsError::Internal("rustls could not encode a handshake record".into()));
            }
        }
    }
}

/// Appends encrypted records to `outgoing`, growing it to what rustls asks for.
fn encrypt(
    outgoing: &mut Vec<u8>,
    mut f: impl FnMut(&mut [u8]) -> Result<usize, EncryptError>,
) -> Result<(), TlsError> {
    let start = outgoing.len();
    let mut room = 1024;
    loop {
        outgoing.resize(start + room, 0);
        match f(&mut outgoing[start..]) {
            Ok(n) => {
                outgoing.truncate(start + n);
                return Ok(());
            }
            Err(EncryptError::InsufficientSize(InsufficientSizeError { required_size })) if required_size > room => {
                room = required_size;
            }
            Err(_) => {
                outgoing.truncate(start);
                return Err(TlsError::Internal("rustls could not encrypt (its key's record limit is spent)".into()));
            }
        }
    }
}
