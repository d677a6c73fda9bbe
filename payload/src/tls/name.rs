//! The name a client connects to: a DNS name (RFC 1123 host name syntax) or an IP address.
//!
//! IP addresses are read here rather than with `core::net`: its parser (both families, every
//! integer width) was 2 KB of the firmware (issue 17). These accept exactly what `core::net`
//! accepts, which the tests check on random and mutated addresses: dotted-decimal IPv4 without
//! leading zeros, and IPv6 text (RFC 4291 §2.2) with one `::` and an optional dotted-decimal
//! tail, no zone, no brackets.

use alloc::string::String;
use alloc::vec::Vec;

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
        if let Some(v4) = ipv4(name.as_bytes()) {
            return Ok(Self::Ip(v4.to_vec()));
        }
        if let Some(v6) = ipv6(name.as_bytes()) {
            return Ok(Self::Ip(v6.to_vec()));
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

/// Dotted-decimal IPv4: four decimal octets of one to three digits, no leading zeros.
fn ipv4(text: &[u8]) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut parts = text.split(|&c| c == b'.');
    for octet in &mut out {
        let part = parts.next()?;
        let well_formed = matches!(part.len(), 1..=3) && part.iter().all(u8::is_ascii_digit);
        if !well_formed || (part.len() > 1 && part[0] == b'0') {
            return None;
        }
        let value = part.iter().fold(0u16, |n, &c| n * 10 + u16::from(c - b'0'));
        *octet = u8::try_from(value).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// IPv6 text: up to eight groups of one to four hex digits, at most one `::` standing for one
/// or more zero groups, and the last 32 bits optionally in dotted decimal.
fn ipv6(text: &[u8]) -> Option<[u8; 16]> {
    let mut words = [0u16; 8];
    match text.windows(2).position(|pair| pair == b"::") {
        None => (groups(text, &mut words, true)? == 8).then_some(())?,
        Some(gap) => {
            let head = groups(&text[..gap], &mut words, false)?;
            let mut tail_words = [0u16; 8];
            let tail = groups(&text[gap + 2..], &mut tail_words, true)?;
            if head + tail > 7 {
                return None;
            }
            words[8 - tail..].copy_from_slice(&tail_words[..tail]);
        }
    }
    let mut out = [0u8; 16];
    for (pair, word) in out.chunks_exact_mut(2).zip(words) {
        pair.copy_from_slice(&word.to_be_bytes());
    }
    Some(out)
}

/// Reads `text`'s colon-separated groups into `out` (a dotted-decimal last group, where
/// `ipv4_last`, as two); how many it read, or `None` if `text` is not such a list.
fn groups(text: &[u8], out: &mut [u16; 8], ipv4_last: bool) -> Option<usize> {
    if text.is_empty() {
        return Some(0);
    }
    let mut count = 0;
    let mut parts = text.split(|&c| c == b':').peekable();
    while let Some(part) = parts.next() {
        if ipv4_last && parts.peek().is_none() && part.contains(&b'.') {
            let [a, b, c, d] = ipv4(part)?;
            out.get_mut(count..count + 2)?.copy_from_slice(&[u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d])]);
            return Some(count + 2);
        }
        let hex = |n: u16, &c: &u8| Some(n << 4 | u16::from((c as char).to_digit(16)? as u8));
        if !matches!(part.len(), 1..=4) {
            return None;
        }
        *out.get_mut(count)? = part.iter().try_fold(0u16, hex)?;
        count += 1;
    }
    Some(count)
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

    /// The address readers accept exactly what `core::net` accepts, with the same bytes: on the
    /// text of random addresses of both families (as core writes them, compressed or not, with
    /// dotted tails) and on each with one character changed, inserted or removed.
    #[test]
    fn ip_addresses_are_read_as_core_net_reads_them() {
        use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"0123456789abcdefABCDEFg:.% []";
        let mut texts: Vec<String> = [
            "::",
            ":::",
            "1::",
            "::1",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7::8",
            "::ffff:1.2.3.4",
            "1.2.3.4::",
            "01.2.3.4",
            "0.0.0.0",
            "256.1.1.1",
            "1:2:3:4:5:6:1.2.3.4",
            "::1.2.3.4",
            "1::2::3",
            "0000:0:0:0:0:0:0:00001",
        ]
        .iter()
        .map(|t| String::from(*t))
        .collect();
        for i in 0..4000u64 {
            let r = next();
            let mut words = [0u16; 8];
            for (k, w) in words.iter_mut().enumerate() {
                // Runs of zero groups, so the text is compressed in different places.
                *w = if (r >> (k * 3)) & 3 == 0 { 0 } else { (next() >> (r % 48)) as u16 };
            }
            let v6 = Ipv6Addr::from(words);
            let text = match i % 4 {
                0 => alloc::format!("{v6}"),
                1 => words.iter().map(|w| alloc::format!("{w:x}")).collect::<Vec<_>>().join(":"),
                2 => alloc::format!("{}", Ipv4Addr::from((r >> 16) as u32)),
                _ => alloc::format!(
                    "{}:{}",
                    alloc::format!("{v6}").rsplit_once(':').unwrap().0,
                    Ipv4Addr::from(r as u32)
                ),
            };
            let mut bytes = text.clone().into_bytes();
            let at = (next() as usize) % (bytes.len() + 1);
            let c = alphabet[(next() as usize) % alphabet.len()];
            match next() % 3 {
                0 if at < bytes.len() => bytes[at] = c,
                1 => bytes.insert(at, c),
                _ if at < bytes.len() => drop(bytes.remove(at)),
                _ => {}
            }
            texts.push(text);
            texts.push(String::from_utf8(bytes).unwrap());
        }
        let mut accepted = 0;
        for text in &texts {
            let ours = ipv4(text.as_bytes()).map(|a| a.to_vec()).or_else(|| ipv6(text.as_bytes()).map(|a| a.to_vec()));
            let core = text.parse::<IpAddr>().ok().map(|ip| match ip {
                IpAddr::V4(v4) => v4.octets().to_vec(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            });
            assert_eq!(ours, core, "{text:?}");
            accepted += usize::from(core.is_some());
        }
        assert!(accepted > texts.len() / 2, "too few valid addresses to compare: {accepted}");
    }
}
