//! The name a client connects to: a DNS name (RFC 1123 host name syntax) or an IP address.

use alloc::string::String;
use alloc::vec::Vec;
use core::net::IpAddr;

use super::error::TlsError;

/// What the server's certificate must name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ServerName {
    /// A DNS name, lower case, without a trailing dot; also sent as SNI (RFC 6066 §3).
    Dns(String),
    /// An IP address as its 4 or 16 bytes (an iPAddress SAN, RFC 5280 §4.2.1.6); no SNI.
    Ip(Vec<u8>),
}

impl ServerName {
    /// Parses `name`.
    ///
    /// # Errors
    /// [`TlsError::InvalidServerName`] for anything but a valid DNS name or IP address.
    pub(crate) fn parse(name: &str) -> Result<Self, TlsError> {
        if let Ok(ip) = name.parse::<IpAddr>() {
            return Ok(Self::Ip(match ip {
                IpAddr::V4(v4) => v4.octets().to_vec(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            }));
        }
        let name = name.strip_suffix('.').unwrap_or(name);
        let label_ok = |label: &str| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        };
        // A name of digits and dots only would be read as a malformed IPv4 address.
        let numeric = name.bytes().all(|c| c.is_ascii_digit() || c == b'.');
        if name.len() > 253 || numeric || !name.split('.').all(label_ok) {
            return Err(TlsError::InvalidServerName);
        }
        Ok(Self::Dns(name.to_ascii_lowercase()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_addresses() {
        assert_eq!(ServerName::parse("DB.Example.").unwrap(), ServerName::Dns("db.example".into()));
        assert_eq!(ServerName::parse("127.0.0.1").unwrap(), ServerName::Ip(alloc::vec![127, 0, 0, 1]));
        assert_eq!(ServerName::parse("::1").unwrap(), ServerName::Ip([&[0; 15][..], &[1]].concat()));
        assert_eq!(ServerName::parse("svc_1.internal").unwrap(), ServerName::Dns("svc_1.internal".into()));
        for bad in ["not a name!", "", ".", "a..b", "-a.b", "a-.b", "1.2.3", "x".repeat(64).as_str(), "é.example"] {
            assert_eq!(ServerName::parse(bad), Err(TlsError::InvalidServerName), "{bad:?}");
        }
    }
}
