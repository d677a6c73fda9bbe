//! TLS alerts (RFC 8446 §6): the descriptions a peer may send, and the ones this client sends.

/// An alert description (RFC 8446 §6, the TLS Alerts registry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AlertDescription {
    CloseNotify,
    UnexpectedMessage,
    BadRecordMac,
    RecordOverflow,
    HandshakeFailure,
    BadCertificate,
    UnsupportedCertificate,
    CertificateRevoked,
    CertificateExpired,
    CertificateUnknown,
    IllegalParameter,
    UnknownCA,
    AccessDenied,
    DecodeError,
    DecryptError,
    ProtocolVersion,
    InsufficientSecurity,
    InternalError,
    InappropriateFallback,
    UserCanceled,
    MissingExtension,
    UnsupportedExtension,
    UnrecognizedName,
    BadCertificateStatusResponse,
    UnknownPskIdentity,
    CertificateRequired,
    NoApplicationProtocol,
    /// A code this client does not name.
    Unknown(u8),
}

/// (code, description) for every named description.
const CODES: [(u8, AlertDescription); 27] = {
    use AlertDescription as A;
    [
        (0, A::CloseNotify),
        (10, A::UnexpectedMessage),
        (20, A::BadRecordMac),
        (22, A::RecordOverflow),
        (40, A::HandshakeFailure),
        (42, A::BadCertificate),
        (43, A::UnsupportedCertificate),
        (44, A::CertificateRevoked),
        (45, A::CertificateExpired),
        (46, A::CertificateUnknown),
        (47, A::IllegalParameter),
        (48, A::UnknownCA),
        (49, A::AccessDenied),
        (50, A::DecodeError),
        (51, A::DecryptError),
        (70, A::ProtocolVersion),
        (71, A::InsufficientSecurity),
        (80, A::InternalError),
        (86, A::InappropriateFallback),
        (90, A::UserCanceled),
        (109, A::MissingExtension),
        (110, A::UnsupportedExtension),
        (112, A::UnrecognizedName),
        (113, A::BadCertificateStatusResponse),
        (115, A::UnknownPskIdentity),
        (116, A::CertificateRequired),
        (120, A::NoApplicationProtocol),
    ]
};

impl From<u8> for AlertDescription {
    fn from(code: u8) -> Self {
        CODES.iter().find(|(c, _)| *c == code).map_or(Self::Unknown(code), |(_, a)| *a)
    }
}

impl From<AlertDescription> for u8 {
    fn from(alert: AlertDescription) -> Self {
        match alert {
            AlertDescription::Unknown(code) => code,
            named => CODES.iter().find(|(_, a)| *a == named).map_or(80, |(c, _)| *c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in 0..=255u8 {
            assert_eq!(u8::from(AlertDescription::from(code)), code);
        }
        assert_eq!(AlertDescription::from(116), AlertDescription::CertificateRequired);
        assert_eq!(AlertDescription::from(48), AlertDescription::UnknownCA);
        assert_eq!(AlertDescription::from(7), AlertDescription::Unknown(7));
    }
}
