//! A blocking TLS 1.3 client stream over a [`Transport`].
//!
//! Only authenticated plaintext is ever handed out: a record is decrypted and its tag checked
//! (RFC 8446 §5.2) before its bytes reach `read`. The end of the stream is the server's
//! `close_notify` (§6.1); a transport that ends without one is [`TlsError::Truncated`], so a
//! relay cannot cut a response short unnoticed.

use alloc::vec::Vec;

use super::config::TlsConfig;
use super::error::MALFORMED;
use super::error::TlsError;
use super::handshake;
use super::name::ServerName;
use super::record::{ALERT, APPLICATION_DATA, HANDSHAKE, Records, received_alert};
use super::transport::Transport;

const NEW_SESSION_TICKET: u8 = 4;
const KEY_UPDATE: u8 = 24;

/// A TLS 1.3 client connection over a [`Transport`].
pub struct TlsStream<T: Transport> {
    records: Records<T>,
    plaintext: Vec<u8>,
    read_pos: usize,
    peer_closed: bool,
    we_closed: bool,
    failed: Option<TlsError>,
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
        let name = ServerName::parse(server_name)?;
        let mut stream = Self {
            records: Records::new(transport),
            plaintext: Vec::new(),
            read_pos: 0,
            peer_closed: false,
            we_closed: false,
            failed: None,
        };
        match handshake::run(&mut stream.records, config, &name) {
            Ok(()) => Ok(stream),
            Err(error) => Err(stream.fail(error)),
        }
    }

    /// Reads decrypted bytes into `buf`, blocking until some arrive; `Ok(0)` once the server
    /// has closed the connection cleanly (or for an empty `buf`).
    ///
    /// # Errors
    /// [`TlsError`]: a failed connection stays failed and returns the same error.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, TlsError> {
        self.usable()?;
        if buf.is_empty() {
            return Ok(0);
        }
        while self.read_pos == self.plaintext.len() && !self.peer_closed {
            if let Err(error) = self.receive() {
                return Err(self.fail(error));
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
        self.usable()?;
        if self.we_closed {
            return Err(TlsError::Closed);
        }
        if data.is_empty() {
            return Ok(());
        }
        self.records.send(APPLICATION_DATA, data).map_err(|error| self.fail(error))
    }

    /// Sends `close_notify`: nothing more will be written. Reading what the server still sends
    /// stays possible. Closing twice is harmless.
    ///
    /// # Errors
    /// Why the connection failed, if it did.
    pub fn close(&mut self) -> Result<(), TlsError> {
        self.usable()?;
        if !self.we_closed {
            self.records.send(ALERT, &[1, 0]).map_err(|error| self.fail(error))?;
            self.we_closed = true;
        }
        Ok(())
    }

    /// The transport, e.g. to shut it down after [`close`](Self::close).
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.records.transport
    }

    /// Reads one record after the handshake: data, the peer's close, or a post-handshake
    /// message (§4.6).
    fn receive(&mut self) -> Result<(), TlsError> {
        let record = self.records.next()?;
        match record.kind {
            APPLICATION_DATA => {
                self.plaintext = record.data;
                self.read_pos = 0;
            }
            ALERT => match received_alert(&record.data)? {
                None => self.peer_closed = true,
                Some(error) => return Err(error),
            },
            HANDSHAKE => {
                self.records.push_handshake(&record.data)?;
                while let Some(message) = self.records.buffered_message()? {
                    self.post_handshake(&message)?;
                }
            }
            _ => return Err(TlsError::Protocol("an unexpected message")),
        }
        Ok(())
    }

    /// NewSessionTicket is ignored (no resumption); KeyUpdate moves the keys on (§4.6.3).
    fn post_handshake(&mut self, message: &[u8]) -> Result<(), TlsError> {
        match (message[0], &message[4..]) {
            (NEW_SESSION_TICKET, _) => Ok(()),
            (KEY_UPDATE, [requested @ (0 | 1)]) => {
                self.records.key_change()?;
                let read = self.records.read.as_ref().ok_or(TlsError::Closed)?.updated()?;
                self.records.read = Some(read);
                if *requested == 1 && !self.we_closed {
                    self.records.update_write_keys()?;
                }
                Ok(())
            }
            (KEY_UPDATE, _) => Err(MALFORMED),
            _ => Err(TlsError::Protocol("an unexpected handshake message")),
        }
    }

    /// The connection's fate once it failed: every later call returns the same error. One
    /// copy for `read`, `write_all` and `close` (its clone is not small).
    #[inline(never)]
    fn usable(&self) -> Result<(), TlsError> {
        self.failed.as_ref().map_or(Ok(()), |error| Err(error.clone()))
    }

    /// Keeps `error` as the connection's fate and tells the server, when it is ours to tell.
    fn fail(&mut self, error: TlsError) -> TlsError {
        if let Some(alert) = error.alert_to_send() {
            self.records.send_alert(alert);
        }
        self.failed = Some(error.clone());
        error
    }
}

impl<T: Transport> core::fmt::Debug for TlsStream<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TlsStream")
            .field("buffered", &(self.plaintext.len() - self.read_pos))
            .field("peer_closed", &self.peer_closed)
            .field("we_closed", &self.we_closed)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}
