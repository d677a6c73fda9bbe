//! Every way a TLS connection can fail, as types the workload can act on.
//!
//! The errors are sorted by what the caller should do next: a
//! server that cannot be trusted (its chain or name), a server that refused *us* (a fatal alert
//! about our certificate, RFC 8446 §6.2), bytes altered in transit (a record that failed
//! authentication, §5.2), a peer that speaks something else, and failures of the parts the
//! caller supplied (transport, key, randomness, clock). None of these ever panics: everything
//! here comes from peer or host bytes.

use core::fmt;

use super::alert::AlertDescription;
use super::key::KeyError;
use super::transport::TransportError;

/// The error for any structure that does not decode.
pub(crate) const MALFORMED: TlsError = TlsError::Protocol("a malformed message");

/// Why a TLS connection failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsError {
    /// The server name is neither a DNS name nor an IP address.
    InvalidServerName,
    /// The server's certificate chain or name did not verify: this is not the server the
    /// configuration trusts (or the clock is wrong).
    ServerCertificate(CertificateProblem),
    /// The server ended the connection with a fatal alert about our certificate (for example
    /// `certificate_required`, `unknown_ca`, `bad_certificate`): it did not accept the
    /// workload's credential.
    ClientCertificateRefused(AlertDescription),
    /// The server ended the connection with another fatal alert.
    Alert(AlertDescription),
    /// A record failed authentication: bytes were altered in transit. Nothing of it was
    /// delivered.
    Tampered,
    /// The server does not offer what this client requires (TLS 1.3, TLS_AES_256_GCM_SHA384,
    /// secp384r1, ECDSA).
    Incompatible(&'static str),
    /// The peer broke the protocol; the text says how (malformed, unexpected or oversized
    /// messages).
    Protocol(&'static str),
    /// The client key (in the vault) did not sign.
    ClientKey(KeyError),
    /// The random source failed.
    Random,
    /// The configured clock gave no time, so certificates could not be checked.
    Clock,
    /// The transport failed.
    Transport(TransportError),
    /// The transport ended before the server's `close_notify`: what was received may be cut
    /// short (RFC 8446 §6.1), so it is not reported as a clean end.
    Truncated,
    /// The connection is closed: this side closed it, or it failed before.
    Closed,
    /// Something failed inside the TLS implementation; the text says what.
    Internal(&'static str),
}

/// What was wrong with the server's certificate chain (RFC 5280 §6 path validation).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertificateProblem {
    /// The chain does not lead to a configured CA certificate.
    UnknownIssuer,
    /// The certificate does not name the server (DNS name or IP address SAN).
    WrongName,
    /// The certificate's `notAfter` is before the configured clock's time.
    Expired,
    /// The certificate's `notBefore` is after the configured clock's time.
    NotYetValid,
    /// A signature in the chain does not verify.
    BadSignature,
    /// A signature in the chain uses an algorithm this client does not verify (only ECDSA
    /// P-384/P-256 with SHA-384/SHA-256 are).
    UnsupportedAlgorithm,
    /// The certificate is not for TLS server authentication (extended key usage).
    WrongPurpose,
    /// The certificate is malformed or has an unknown critical extension.
    Malformed,
    /// The server sent no certificate.
    Missing,
    /// Anything else path validation refused; the text says what.
    Other(&'static str),
}

impl TlsError {
    /// The alert this client sends when the connection fails with this error (RFC 8446 §6.2);
    /// none for the peer's own alerts and for a broken or closed transport.
    pub(crate) fn alert_to_send(&self) -> Option<AlertDescription> {
        use AlertDescription as A;
        Some(match self {
            Self::ServerCertificate(CertificateProblem::UnknownIssuer) => A::UnknownCA,
            Self::ServerCertificate(CertificateProblem::Expired | CertificateProblem::NotYetValid) => {
                A::CertificateExpired
            }
            Self::ServerCertificate(CertificateProblem::UnsupportedAlgorithm) => A::UnsupportedCertificate,
            Self::ServerCertificate(CertificateProblem::BadSignature) => A::DecryptError,
            Self::ServerCertificate(_) => A::BadCertificate,
            Self::Tampered => A::BadRecordMac,
            Self::Protocol(_) if *self == MALFORMED => A::DecodeError,
            Self::Protocol(_) => A::UnexpectedMessage,
            Self::Incompatible(_) => A::HandshakeFailure,
            Self::ClientKey(_) | Self::Random | Self::Clock | Self::Internal(_) => A::InternalError,
            Self::InvalidServerName
            | Self::ClientCertificateRefused(_)
            | Self::Alert(_)
            | Self::Transport(_)
            | Self::Truncated
            | Self::Closed => return None,
        })
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidServerName => {
                f.write_str("the server name is not a DNS name or an IP address: fix the target in the manifest")
            }
            Self::ServerCertificate(problem) => write!(f, "the server's certificate was rejected: {problem}"),
            Self::ClientCertificateRefused(alert) => write!(
                f,
                "the server refused the client certificate ({alert:?}): check that the server trusts the issuer CA"
            ),
            Self::Alert(alert) => write!(f, "the server aborted the connection with alert {alert:?}"),
            Self::Tampered => f.write_str(
                "a TLS record failed authentication: the bytes were altered in transit (by the relay?); reconnect",
            ),
            Self::Incompatible(reason) => {
                write!(f, "the server does not support TLS 1.3 with AES-256-GCM, P-384 and ECDSA ({reason})")
            }
            Self::Protocol(reason) => write!(f, "the peer broke the TLS protocol ({reason}); reconnect"),
            Self::ClientKey(error) => write!(f, "{error}"),
            Self::Random => f.write_str("the random source failed: check the platform's entropy source"),
            Self::Clock => f.write_str("no wall time to check certificates at: supply one in the TLS configuration"),
            Self::Transport(error) => write!(f, "{error}"),
            Self::Truncated => f.write_str("the connection ended without close_notify: the data may be incomplete"),
            Self::Closed => f.write_str("the TLS connection is closed: open a new one"),
            Self::Internal(reason) => write!(f, "internal TLS error ({reason})"),
        }
    }
}

impl fmt::Display for CertificateProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownIssuer => {
                f.write_str("it does not chain to a configured CA: check the server CA in the manifest")
            }
            Self::WrongName => f.write_str("it does not name the server: check the target's host name or IP address"),
            Self::Expired => f.write_str("it has expired at the configured time: renew it, or check the clock"),
            Self::NotYetValid => f.write_str("it is not valid yet at the configured time: check the clock"),
            Self::BadSignature => f.write_str("a signature in its chain does not verify"),
            Self::UnsupportedAlgorithm => {
                f.write_str("its chain uses a signature algorithm other than ECDSA P-384/P-256: reissue it with ECDSA")
            }
            Self::WrongPurpose => f.write_str("it is not for TLS server authentication (extended key usage)"),
            Self::Malformed => f.write_str("it is malformed or has an unknown critical extension"),
            Self::Missing => f.write_str("the server sent no certificate"),
            Self::Other(reason) => write!(f, "{reason}"),
        }
    }
}

impl From<TransportError> for TlsError {
    fn from(error: TransportError) -> Self {
        Self::Transport(error)
    }
}

impl core::error::Error for TlsError {}

impl core::error::Error for CertificateProblem {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_tells_the_server_what_it_is_about() {
        let cases = [
            (TlsError::ServerCertificate(CertificateProblem::UnknownIssuer), Some(AlertDescription::UnknownCA)),
            (TlsError::ServerCertificate(CertificateProblem::Expired), Some(AlertDescription::CertificateExpired)),
            (TlsError::ServerCertificate(CertificateProblem::WrongName), Some(AlertDescription::BadCertificate)),
            (TlsError::Tampered, Some(AlertDescription::BadRecordMac)),
            (MALFORMED, Some(AlertDescription::DecodeError)),
            (TlsError::Protocol("an unexpected message"), Some(AlertDescription::UnexpectedMessage)),
            (TlsError::ClientKey(KeyError::Refused), Some(AlertDescription::InternalError)),
            (TlsError::Alert(AlertDescription::HandshakeFailure), None),
            (TlsError::Truncated, None),
        ];
        for (error, alert) in cases {
            assert_eq!(error.alert_to_send(), alert, "{error:?}");
        }
    }
}
