//! The launch manifest's body read without serde (issue 17: postcard's and serde's derived
//! deserializer were about 2.7 KB of the runtime's ROM). The host writes it with postcard
//! ([`LaunchManifest::to_slot`]); this reads exactly what `postcard::from_bytes` reads, and
//! yields the same value (the tests compare the two on every byte change and truncation):
//! the fields in order; integers as postcard's varints (LEB128, at most as many bytes as the
//! type needs, the last one within the type's range); a byte string or text as its varint
//! length and bytes (text in UTF-8); the diagnostic as its variant index; bytes after the
//! manifest ignored. It returns `None`, never panics, on anything else.

use alloc::string::String;
use alloc::vec::Vec;

use super::{Diagnostic, LaunchManifest, Setting};

/// Reads a [`LaunchManifest`] from the start of `body`.
pub(super) fn read(body: &[u8]) -> Option<LaunchManifest> {
    let mut r = Reader(body);
    let format = u16::try_from(r.varint(u16::BITS)?).ok()?;
    let issuer_anchor = r.bytes()?;
    let issuer_name = r.text()?;
    let diagnostic = match r.varint(u32::BITS)? {
        0 => Diagnostic::None,
        1 => Diagnostic::SelfTest,
        2 => Diagnostic::Fault,
        _ => return None,
    };
    let count = r.len()?;
    // No capacity from the count: each setting takes at least two bytes, so a count beyond
    // the body ends the loop at its end.
    let mut settings = Vec::new();
    for _ in 0..count {
        settings.push(Setting { key: r.text()?, value: r.bytes()? });
    }
    Some(LaunchManifest { format, issuer_anchor, issuer_name, diagnostic, settings })
}

/// The bytes still to read.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    /// An unsigned integer of `bits` bits as a varint: seven bits a byte, least significant
    /// first, the high bit set on every byte but the last.
    fn varint(&mut self, bits: u32) -> Option<u64> {
        let max_bytes = bits.div_ceil(7);
        let mut value = 0u64;
        for i in 0..max_bytes {
            let byte = *self.take(1)?.first()?;
            value |= u64::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                // The last possible byte carries only the bits the type has left.
                let in_range = i + 1 < max_bytes || u32::from(byte) < 1 << (bits % 7);
                return in_range.then_some(value);
            }
        }
        None
    }

    fn len(&mut self) -> Option<usize> {
        usize::try_from(self.varint(usize::BITS)?).ok()
    }

    fn bytes(&mut self) -> Option<Vec<u8>> {
        let len = self.len()?;
        self.take(len).map(<[u8]>::to_vec)
    }

    fn text(&mut self) -> Option<String> {
        let len = self.len()?;
        core::str::from_utf8(self.take(len)?).ok().map(String::from)
    }
}

#[cfg(test)]
mod tests {
    use alloc::format;
    use alloc::vec;

    use super::*;

    /// `read` and postcard's deserializer agree on `bytes`; returns whether they accepted it.
    fn agree(bytes: &[u8], what: &str) -> bool {
        let ours = read(bytes);
        assert_eq!(ours, postcard::from_bytes::<LaunchManifest>(bytes).ok(), "{what}: {bytes:02x?}");
        ours.is_some()
    }

    /// Manifests with every diagnostic, empty and long fields (one- and two-byte lengths),
    /// non-ASCII text and several settings.
    fn samples() -> Vec<LaunchManifest> {
        let diagnostics = [Diagnostic::None, Diagnostic::SelfTest, Diagnostic::Fault];
        diagnostics
            .into_iter()
            .enumerate()
            .map(|(i, diagnostic)| LaunchManifest {
                format: [2, 127, 128][i],
                issuer_anchor: vec![4; [0, 97, 200][i]],
                issuer_name: ["", "CN=test", "CN=é€𝄞"][i].into(),
                diagnostic,
                settings: (0..i).map(|j| Setting { key: format!("key-{j}"), value: vec![j as u8; j * 130] }).collect(),
            })
            .collect()
    }

    #[test]
    fn reads_what_postcard_writes() {
        for m in samples() {
            let body = postcard::to_allocvec(&m).unwrap();
            assert_eq!(read(&body), Some(m.clone()));
            let mut longer = body.clone();
            longer.extend([0xFF, 0]);
            assert_eq!(read(&longer), Some(m), "bytes after the manifest are ignored, as postcard does");
        }
    }

    /// Every byte of every sample set to each of the 256 values, and every truncation.
    #[test]
    fn every_byte_value_and_truncation_reads_as_postcard_reads_it() {
        let (mut accepted, mut tried) = (0usize, 0usize);
        for m in samples() {
            let body = postcard::to_allocvec(&m).unwrap();
            for pos in 0..body.len() {
                for value in 0..=255u8 {
                    let mut changed = body.clone();
                    changed[pos] = value;
                    tried += 1;
                    accepted += usize::from(agree(&changed, &format!("byte {pos} = {value:#04x}")));
                }
            }
            for len in 0..body.len() {
                assert!(!agree(&body[..len], &format!("cut to {len}")));
            }
        }
        assert!(accepted > tried / 4, "only {accepted} of {tried} changed bodies read");
    }

    /// Varints at their edges: longer than needed (accepted), one byte too many, and a last
    /// byte beyond the type's range.
    #[test]
    fn varints_read_as_postcard_reads_them() {
        let tail = [0, 0, 0, 0]; // anchor, name, diagnostic, settings: all empty
        let cases: [&[u8]; 8] = [
            &[0x82, 0x00],                                                       // format 2 in two bytes
            &[0xFF, 0xFF, 0x03],                                                 // format 65535
            &[0xFF, 0xFF, 0x04],                                                 // format 65536: too large for a u16
            &[0x82, 0x80, 0x80, 0x00],                                           // four bytes for a u16
            &[0x80],                                                             // unfinished
            &[0x02, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], // 2^63-byte anchor
            &[0x02, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02], // beyond u64
            &[0x02, 0x00, 0x00, 0x82, 0x80, 0x80, 0x80, 0x10],                   // diagnostic beyond u32
        ];
        for (i, head) in cases.into_iter().enumerate() {
            let mut body = head.to_vec();
            body.extend(tail);
            agree(&body, &format!("case {i}"));
        }
        let mut two = vec![0x82, 0x00];
        two.extend(tail);
        assert!(read(&two).is_some());
    }
}
