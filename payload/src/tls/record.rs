//! The record layer (RFC 8446 §5): records read from and written to the transport, protected
//! once keys are set, and handshake messages joined from them.
//!
//! Once read keys are set, every record but `change_cipher_spec` is opened with them, whatever
//! its outer type says: the outer header is authenticated data (§5.2), so a relay that alters
//! it gets [`TlsError::Tampered`].

use alloc::vec::Vec;

use super::alert::AlertDescription;
use super::crypto::RecordCipher;
use super::error::MALFORMED;
use super::error::TlsError;
use super::transport::Transport;

pub(crate) const CHANGE_CIPHER_SPEC: u8 = 20;
pub(crate) const ALERT: u8 = 21;
pub(crate) const HANDSHAKE: u8 = 22;
pub(crate) const APPLICATION_DATA: u8 = 23;
const MAX_PLAINTEXT: usize = 1 << 14;
/// §5.2: a protected record is at most 2^14 + 256 bytes.
const MAX_PROTECTED: usize = MAX_PLAINTEXT + 256;
/// Received bytes are read in chunks of this size.
const READ_CHUNK: usize = 8 * 1024;
/// The largest handshake message accepted: a certificate chain of a few certificates.
const MAX_HANDSHAKE_MESSAGE: usize = 64 * 1024;
/// KeyUpdate(update_not_requested), §4.6.3.
const KEY_UPDATE: [u8; 5] = [24, 0, 0, 1, 0];

/// One record's inner type and content.
pub(crate) struct Record {
    pub(crate) kind: u8,
    pub(crate) data: Vec<u8>,
}

/// The records of one connection over `T`.
pub(crate) struct Records<T> {
    pub(crate) transport: T,
    incoming: Vec<u8>,
    pub(crate) read: Option<RecordCipher>,
    pub(crate) write: Option<RecordCipher>,
    /// Handshake bytes received and not yet taken as whole messages.
    handshake: Vec<u8>,
    /// The handshake is over: keys are updated before they are spent.
    pub(crate) established: bool,
}

impl<T: Transport> Records<T> {
    pub(crate) fn new(transport: T) -> Self {
        Self { transport, incoming: Vec::new(), read: None, write: None, handshake: Vec::new(), established: false }
    }

    /// Reads until `len` bytes are buffered; the end of the stream here cuts a record short.
    fn fill(&mut self, len: usize) -> Result<(), TlsError> {
        while self.incoming.len() < len {
            let filled = self.incoming.len();
            self.incoming.resize(filled + READ_CHUNK, 0);
            let read = self.transport.read(&mut self.incoming[filled..]);
            self.incoming.truncate(filled + *read.as_ref().unwrap_or(&0));
            if read? == 0 {
                return Err(TlsError::Truncated);
            }
        }
        Ok(())
    }

    /// The next record, opened if read keys are set.
    pub(crate) fn next(&mut self) -> Result<Record, TlsError> {
        self.fill(5)?;
        let header: [u8; 5] =
            [self.incoming[0], self.incoming[1], self.incoming[2], self.incoming[3], self.incoming[4]];
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if header[1] != 3 {
            return Err(TlsError::Protocol("bytes that are not a TLS record"));
        }
        let limit = if self.read.is_some() { MAX_PROTECTED } else { MAX_PLAINTEXT };
        if len > limit {
            return Err(TlsError::Protocol("an oversized record"));
        }
        self.fill(5 + len)?;
        let mut data: Vec<u8> = self.incoming.drain(..5 + len).skip(5).collect();
        match (&mut self.read, header[0]) {
            (_, CHANGE_CIPHER_SPEC) => Ok(Record { kind: CHANGE_CIPHER_SPEC, data }),
            (Some(cipher), _) => {
                let (kind, content) = cipher.open(&header, &mut data)?;
                if content > MAX_PLAINTEXT {
                    return Err(TlsError::Protocol("an oversized record"));
                }
                data.truncate(content);
                Ok(Record { kind, data })
            }
            (None, kind @ (HANDSHAKE | ALERT)) => Ok(Record { kind, data }),
            (None, _) => Err(TlsError::Protocol("an unexpected record type")),
        }
    }

    /// Sends `data` as records of type `kind`, protected if write keys are set.
    pub(crate) fn send(&mut self, kind: u8, data: &[u8]) -> Result<(), TlsError> {
        let mut out = Vec::with_capacity(data.len() + 32);
        for chunk in data.chunks(MAX_PLAINTEXT) {
            match &mut self.write {
                Some(cipher) if self.established && cipher.spent() => {
                    key_update(cipher, &mut out)?;
                    cipher.seal(kind, chunk, &mut out)?;
                }
                Some(cipher) => cipher.seal(kind, chunk, &mut out)?,
                None => {
                    out.extend_from_slice(&[kind, 3, 3]);
                    out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
                    out.extend_from_slice(chunk);
                }
            }
        }
        self.transport.write_all(&out).map_err(TlsError::from)
    }

    /// Moves the write keys on at once (§4.6.3), as a KeyUpdate that asked for it requires.
    pub(crate) fn update_write_keys(&mut self) -> Result<(), TlsError> {
        let cipher = self.write.as_mut().ok_or(TlsError::Closed)?;
        let mut out = Vec::new();
        key_update(cipher, &mut out)?;
        self.transport.write_all(&out).map_err(TlsError::from)
    }

    /// Sends a fatal alert, or `close_notify`; a failure to send is not reported.
    pub(crate) fn send_alert(&mut self, alert: AlertDescription) {
        let level = if alert == AlertDescription::CloseNotify { 1 } else { 2 };
        let _ = self.send(ALERT, &[level, u8::from(alert)]);
    }

    /// Whether handshake bytes are buffered: keys must not change in the middle of a message
    /// (§5.1).
    pub(crate) fn key_change(&self) -> Result<(), TlsError> {
        if self.handshake.is_empty() {
            Ok(())
        } else {
            Err(TlsError::Protocol("a handshake message across a key change"))
        }
    }

    /// A whole handshake message (header included) already buffered, if there is one.
    pub(crate) fn buffered_message(&mut self) -> Result<Option<Vec<u8>>, TlsError> {
        if self.handshake.len() < 4 {
            return Ok(None);
        }
        let len =
            usize::from(self.handshake[1]) << 16 | usize::from(self.handshake[2]) << 8 | usize::from(self.handshake[3]);
        if len > MAX_HANDSHAKE_MESSAGE {
            return Err(TlsError::Protocol("a handshake message larger than 64 KiB"));
        }
        if self.handshake.len() < 4 + len {
            return Ok(None);
        }
        Ok(Some(self.handshake.drain(..4 + len).collect()))
    }

    /// Keeps a handshake record's content for [`buffered_message`](Self::buffered_message).
    pub(crate) fn push_handshake(&mut self, data: &[u8]) -> Result<(), TlsError> {
        if data.is_empty() {
            return Err(MALFORMED);
        }
        self.handshake.extend_from_slice(data);
        Ok(())
    }
}

/// Appends a KeyUpdate(update_not_requested) under `cipher`'s keys to `out`, then moves
/// `cipher` to the next generation of keys.
fn key_update(cipher: &mut RecordCipher, out: &mut Vec<u8>) -> Result<(), TlsError> {
    cipher.seal(HANDSHAKE, &KEY_UPDATE, out)?;
    *cipher = cipher.updated()?;
    Ok(())
}

/// The error a received alert record stands for; `close_notify` is [`None`].
pub(crate) fn received_alert(data: &[u8]) -> Result<Option<TlsError>, TlsError> {
    let [_level, code] = data else { return Err(MALFORMED) };
    Ok(match AlertDescription::from(*code) {
        AlertDescription::CloseNotify => None,
        alert if about_our_certificate(alert) => Some(TlsError::ClientCertificateRefused(alert)),
        alert => Some(TlsError::Alert(alert)),
    })
}

/// Alerts a server sends about the client's certificate (RFC 8446 §6.2): a server never
/// receives any other certificate from us, so these always mean "your credential was refused".
fn about_our_certificate(alert: AlertDescription) -> bool {
    use AlertDescription as A;
    matches!(
        alert,
        A::BadCertificate
            | A::UnsupportedCertificate
            | A::CertificateRevoked
            | A::CertificateExpired
            | A::CertificateUnknown
            | A::UnknownCA
            | A::AccessDenied
            | A::CertificateRequired
    )
}
