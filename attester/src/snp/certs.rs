//! The certificate table of the SNP extended guest request (GHCB specification, section
//! "SNP Extended Guest Request", certificate table format): the hypervisor writes it into
//! the guest's certificate pages alongside the firmware's answer, so that the guest can hand
//! the verifier its VCEK (or VLEK), ASK and ARK with the report.
//!
//! ```text
//! entry i (24 bytes): [16] GUID ‖ u32 offset ‖ u32 length      (little-endian integers)
//! terminator:         24 zero bytes
//! offset:             from the start of the buffer; the certificates follow the table
//! ```
//!
//! The GUIDs are stored in RFC 4122 byte order (the order of the string form), as AMD's own
//! tools (libuuid `uuid_parse`) and the hypervisors that fill the table write them.
//!
//! The buffer is the host's: [`CertTable::parse`] takes a private copy and refuses an entry
//! that points outside it, overlaps the table, or a table without its terminator.

/// Length of one table entry.
pub const ENTRY_LEN: usize = 24;
/// The most entries (terminator excluded) the runtime and the verifier accept: the GHCB
/// specification defines four kinds; room is left for a few the host may add.
pub const MAX_ENTRIES: usize = 8;

/// `63da758d-e664-4564-adc5-f4b93be8accd`: the VCEK.
pub const GUID_VCEK: [u8; 16] = guid(0x63da758d, 0xe664, 0x4564, [0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd]);
/// `a8074bc2-a25a-483e-aae6-39c045a0b8a1`: the VLEK.
pub const GUID_VLEK: [u8; 16] = guid(0xa8074bc2, 0xa25a, 0x483e, [0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8, 0xa1]);
/// `4ab7b379-bbac-4fe4-a02f-05aef327c782`: the ASK (or, with a VLEK, the ASVK).
pub const GUID_ASK: [u8; 16] = guid(0x4ab7b379, 0xbbac, 0x4fe4, [0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82]);
/// `c0b406a4-a803-4952-9743-3fb6014cd0ae`: the ARK.
pub const GUID_ARK: [u8; 16] = guid(0xc0b406a4, 0xa803, 0x4952, [0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae]);

/// A GUID in RFC 4122 (string) byte order.
const fn guid(time_low: u32, time_mid: u16, time_hi: u16, rest: [u8; 8]) -> [u8; 16] {
    let a = time_low.to_be_bytes();
    let b = time_mid.to_be_bytes();
    let c = time_hi.to_be_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], rest[0], rest[1], rest[2], rest[3], rest[4], rest[5], rest[6],
        rest[7],
    ]
}

/// What an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    Vcek,
    Vlek,
    Ask,
    Ark,
    /// A GUID the specification does not name (kept, not interpreted).
    Other([u8; 16]),
}

impl CertKind {
    pub fn from_guid(guid: [u8; 16]) -> Self {
        match guid {
            GUID_VCEK => Self::Vcek,
            GUID_VLEK => Self::Vlek,
            GUID_ASK => Self::Ask,
            GUID_ARK => Self::Ark,
            other => Self::Other(other),
        }
    }

    pub fn guid(self) -> [u8; 16] {
        match self {
            Self::Vcek => GUID_VCEK,
            Self::Vlek => GUID_VLEK,
            Self::Ask => GUID_ASK,
            Self::Ark => GUID_ARK,
            Self::Other(guid) => guid,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertTableError {
    /// No all-zero terminator within the buffer (or within [`MAX_ENTRIES`] entries).
    Unterminated,
    /// An entry's certificate lies outside the buffer, inside the table, or is empty.
    EntryOutOfBounds { index: usize },
    /// The same kind of certificate appears twice.
    Duplicate { index: usize },
    /// The output buffer of [`encode`] is too small.
    BufferTooSmall { needed: usize },
}

impl core::fmt::Display for CertTableError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Unterminated => {
                write!(f, "the certificate table has no terminating zero entry within {MAX_ENTRIES} entries")
            }
            Self::EntryOutOfBounds { index } => {
                write!(f, "certificate table entry {index} points outside the certificate buffer")
            }
            Self::Duplicate { index } => write!(f, "certificate table entry {index} repeats a certificate kind"),
            Self::BufferTooSmall { needed } => write!(f, "the certificate buffer needs {needed} bytes"),
        }
    }
}

/// One certificate of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertEntry<'a> {
    pub kind: CertKind,
    /// The certificate as the host stored it (DER for AMD's keys).
    pub bytes: &'a [u8],
}

/// A checked certificate table over a (private) buffer.
#[derive(Debug, Clone, Copy)]
pub struct CertTable<'a> {
    buffer: &'a [u8],
    count: usize,
}

impl<'a> CertTable<'a> {
    /// Parses and checks the table at the start of `buffer`.
    pub fn parse(buffer: &'a [u8]) -> Result<Self, CertTableError> {
        let mut count = None;
        for index in 0..=MAX_ENTRIES {
            let Some(raw) = buffer.get(index * ENTRY_LEN..(index + 1) * ENTRY_LEN) else { break };
            if raw.iter().all(|&b| b == 0) {
                count = Some(index);
                break;
            }
        }
        let count = count.ok_or(CertTableError::Unterminated)?;
        let table = Self { buffer, count };
        let table_end = (count + 1) * ENTRY_LEN;
        for index in 0..count {
            let (guid, offset, length) = table.raw_entry(index);
            let end = offset.checked_add(length);
            if length == 0 || offset < table_end || end.is_none_or(|end| end > buffer.len()) {
                return Err(CertTableError::EntryOutOfBounds { index });
            }
            if (0..index).any(|earlier| table.raw_entry(earlier).0 == guid) {
                return Err(CertTableError::Duplicate { index });
            }
        }
        Ok(table)
    }

    /// GUID, offset, length of entry `index` (< `count`, so within the buffer).
    fn raw_entry(&self, index: usize) -> ([u8; 16], usize, usize) {
        let at = index * ENTRY_LEN;
        let mut guid = [0u8; 16];
        guid.copy_from_slice(&self.buffer[at..at + 16]);
        let word = |o: usize| {
            u32::from_le_bytes([self.buffer[o], self.buffer[o + 1], self.buffer[o + 2], self.buffer[o + 3]]) as usize
        };
        (guid, word(at + 16), word(at + 20))
    }

    /// Number of certificates (the terminator excluded).
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn entries(&self) -> impl Iterator<Item = CertEntry<'a>> + '_ {
        (0..self.count).map(|index| {
            let (guid, offset, length) = self.raw_entry(index);
            CertEntry { kind: CertKind::from_guid(guid), bytes: &self.buffer[offset..offset + length] }
        })
    }

    /// The certificate of `kind`, if the table has one.
    pub fn get(&self, kind: CertKind) -> Option<&'a [u8]> {
        self.entries().find(|e| e.kind == kind).map(|e| e.bytes)
    }

    /// The bytes of the buffer the table uses (table, terminator and certificates): what is
    /// worth keeping of a page-sized buffer.
    pub fn used_len(&self) -> usize {
        let table_end = (self.count + 1) * ENTRY_LEN;
        (0..self.count)
            .map(|i| self.raw_entry(i))
            .map(|(_, offset, length)| offset + length)
            .fold(table_end, usize::max)
    }

    /// The part of the buffer the table uses (see [`CertTable::used_len`]).
    pub fn used(&self) -> &'a [u8] {
        &self.buffer[..self.used_len()]
    }

    /// SHA-384 of [`CertTable::used`]: how a guest names the table its host delivered in place
    /// of sending it back (`twi_proto::msg::Evidence::certificates_sha384`), and how the host
    /// finds the table it delivered. The guest and the host compute it over the same bytes
    /// whatever unused tail a buffer has.
    pub fn sha384(&self) -> [u8; 48] {
        twi_proto::hash::sha384(&[self.used()])
    }
}

/// Writes a table of `certs` (certificates packed after the terminator, in order) into `out`;
/// returns the length used.
pub fn encode(certs: &[(CertKind, &[u8])], out: &mut [u8]) -> Result<usize, CertTableError> {
    if certs.len() > MAX_ENTRIES {
        return Err(CertTableError::Unterminated);
    }
    let table_end = (certs.len() + 1) * ENTRY_LEN;
    let needed = table_end + certs.iter().map(|(_, c)| c.len()).sum::<usize>();
    if out.len() < needed {
        return Err(CertTableError::BufferTooSmall { needed });
    }
    out[..needed].fill(0);
    let mut offset = table_end;
    for (index, (kind, cert)) in certs.iter().enumerate() {
        let at = index * ENTRY_LEN;
        out[at..at + 16].copy_from_slice(&kind.guid());
        out[at + 16..at + 20].copy_from_slice(&(offset as u32).to_le_bytes());
        out[at + 20..at + 24].copy_from_slice(&(cert.len() as u32).to_le_bytes());
        out[offset..offset + cert.len()].copy_from_slice(cert);
        offset += cert.len();
    }
    Ok(needed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_in_string_byte_order() {
        assert_eq!(GUID_VCEK[..4], [0x63, 0xda, 0x75, 0x8d]);
        assert_eq!(GUID_VCEK[4..8], [0xe6, 0x64, 0x45, 0x64]);
        assert_eq!(
            GUID_ARK[..],
            [0xc0, 0xb4, 0x06, 0xa4, 0xa8, 0x03, 0x49, 0x52, 0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae]
        );
    }

    /// A table written by hand: VCEK "abc" at 72, ASK "de" at 75.
    fn hand_table() -> [u8; 80] {
        let mut buf = [0u8; 80];
        buf[..16].copy_from_slice(&GUID_VCEK);
        buf[16..20].copy_from_slice(&72u32.to_le_bytes());
        buf[20..24].copy_from_slice(&3u32.to_le_bytes());
        buf[24..40].copy_from_slice(&GUID_ASK);
        buf[40..44].copy_from_slice(&75u32.to_le_bytes());
        buf[44..48].copy_from_slice(&2u32.to_le_bytes());
        buf[72..77].copy_from_slice(b"abcde");
        buf
    }

    #[test]
    fn parses_a_hand_written_table() {
        let buf = hand_table();
        let table = CertTable::parse(&buf).unwrap();
        assert_eq!(table.len(), 2);
        assert_eq!(table.get(CertKind::Vcek), Some(&b"abc"[..]));
        assert_eq!(table.get(CertKind::Ask), Some(&b"de"[..]));
        assert_eq!(table.get(CertKind::Ark), None);
        assert_eq!(table.used_len(), 77);
    }

    /// The digest covers the used bytes only, so a page-sized buffer and its trimmed copy have
    /// the same name (the value is Python's `hashlib.sha384` of the 77 bytes).
    #[test]
    fn the_digest_names_the_used_bytes() {
        let mut page = [0u8; 4096];
        page[..80].copy_from_slice(&hand_table());
        let (trimmed, padded) = (hand_table(), CertTable::parse(&page).unwrap());
        let trimmed = CertTable::parse(&trimmed[..77]).unwrap();
        assert_eq!(padded.used(), trimmed.used());
        assert_eq!(
            hex::encode(padded.sha384()),
            "72e6882c9a0e15ca076003508e6a83d51c2e62f78db08f5a3d49fa03584e1344d547bddd19cd6bf51cc3bf7f577618b5"
        );
        assert_eq!(padded.sha384(), trimmed.sha384());
    }

    #[test]
    fn encode_writes_the_hand_written_table() {
        let mut out = [0xFFu8; 80];
        let n = encode(&[(CertKind::Vcek, b"abc"), (CertKind::Ask, b"de")], &mut out).unwrap();
        assert_eq!(n, 77);
        assert_eq!(out[..77], hand_table()[..77]);
        assert_eq!(
            encode(&[(CertKind::Vcek, b"abc")], &mut [0u8; 50]),
            Err(CertTableError::BufferTooSmall { needed: 51 })
        );
    }

    #[test]
    fn empty_table_is_just_the_terminator() {
        let table = CertTable::parse(&[0u8; 4096]).unwrap();
        assert!(table.is_empty());
        assert_eq!(table.used_len(), ENTRY_LEN);
    }

    #[test]
    fn hostile_tables_are_refused() {
        // No terminator: a truncated buffer, and a buffer full of entries.
        assert_eq!(CertTable::parse(&hand_table()[..30]).unwrap_err(), CertTableError::Unterminated);
        assert_eq!(CertTable::parse(&[]).unwrap_err(), CertTableError::Unterminated);
        assert_eq!(CertTable::parse(&[0xAB; 4096]).unwrap_err(), CertTableError::Unterminated);
        // Past the end of the buffer, inside the table, empty, and an overflowing offset.
        for (offset, length) in [(72u32, 9u32), (10, 3), (72, 0), (u32::MAX, 2)] {
            let mut buf = hand_table();
            buf[16..20].copy_from_slice(&offset.to_le_bytes());
            buf[20..24].copy_from_slice(&length.to_le_bytes());
            assert_eq!(CertTable::parse(&buf).unwrap_err(), CertTableError::EntryOutOfBounds { index: 0 });
        }
        let mut buf = hand_table();
        buf[24..40].copy_from_slice(&GUID_VCEK);
        assert_eq!(CertTable::parse(&buf).unwrap_err(), CertTableError::Duplicate { index: 1 });
    }

    #[test]
    fn every_prefix_and_byte_flip_is_handled_without_panic() {
        let buf = hand_table();
        for n in 0..=buf.len() {
            let _ = CertTable::parse(&buf[..n]).map(|t| t.entries().count());
        }
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut b = buf;
                b[i] ^= 1 << bit;
                if let Ok(t) = CertTable::parse(&b) {
                    assert!(t.used_len() <= b.len());
                    assert_eq!(t.entries().count(), t.len());
                }
            }
        }
    }
}
