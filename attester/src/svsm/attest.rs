//! The SVSM attestation protocol (58019 §7 "Attestation Protocol", protocol 1; COCONUT
//! `protocols/attest.rs`; Linux `struct svsm_attest_call`, `snp_issue_svsm_attest_req`).
//!
//! SVSM_ATTEST_SERVICES (call 0) and SVSM_ATTEST_SINGLE_SERVICE (call 1) take RCX = the GPA of
//! this request (each buffer named by GPA and size; reserved bytes zero):
//!
//! | offset | field |
//! |--------|-------|
//! | 0x00 | report buffer GPA u64, size u32, reserved[4] |
//! | 0x10 | nonce GPA u64, size u32 (COCONUT: u16 + 6 reserved), reserved[4] |
//! | 0x20 | manifest buffer GPA u64, size u32, reserved[4] |
//! | 0x30 | certificates buffer GPA u64, size u32, reserved[4] |
//! | 0x40 | (single service) service GUID[16] |
//! | 0x50 | (single service) manifest version u32, reserved[4] |
//!
//! The SVSM writes the report, the manifest and (if any) the certificates, and answers RCX =
//! manifest length, RDX = certificates length, R8 = report length (the needed sizes, with
//! INVALID_PARAMETER, when a buffer is too small). The report is the SVSM's own (VMPL0),
//! REPORT_DATA = SHA-512(nonce ‖ manifest): it binds the guest's nonce and what the SVSM
//! attests. COCONUT requires a 64-byte nonce and page-aligned report and manifest buffers, and
//! implements SVSM_ATTEST_SERVICES only (the single-service call is "unsupported protocol").
//!
//! The services manifest is a GUID table (58019 Table 13; COCONUT `GuidTable`): header {GUID
//! 63849ebb-3d92-4670-a1ff-58f9c94b87bb, u32 total length, u32 count}, then `count` entries
//! {GUID, u32 offset, u32 size} of 24 bytes each, then the entries' data. GUIDs are stored in
//! the EFI (mixed-endian) order.

pub const ATTEST_SERVICES: u32 = 0;
pub const ATTEST_SINGLE_SERVICE: u32 = 1;
/// Bytes of the services request, and of the single-service one.
pub const SERVICES_LEN: usize = 0x40;
pub const SINGLE_SERVICE_LEN: usize = 0x58;
/// The nonce the SVSM takes: 64 bytes (REPORT_DATA's size).
pub const NONCE_LEN: usize = 64;
/// The services manifest's GUID, in its stored (EFI) byte order.
pub const SERVICES_MANIFEST_GUID: [u8; 16] =
    [0xbb, 0x9e, 0x84, 0x63, 0x92, 0x3d, 0x70, 0x46, 0xa1, 0xff, 0x58, 0xf9, 0xc9, 0x4b, 0x87, 0xbb];
const MANIFEST_HEADER_LEN: usize = 24;
const MANIFEST_ENTRY_LEN: usize = 24;

/// A buffer of guest memory: its GPA and size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Location {
    pub gpa: u64,
    pub size: u32,
}

/// One attestation request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttestRequest {
    pub report: Location,
    pub nonce: Location,
    pub manifest: Location,
    pub certificates: Location,
    /// SVSM_ATTEST_SINGLE_SERVICE: the service GUID (stored order) and manifest version.
    pub service: Option<([u8; 16], u32)>,
}

/// Why an attestation request or answer is unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttestError {
    /// The request's bytes are shorter than its layout, or a reserved byte is not zero.
    Malformed,
    /// The nonce is not 64 bytes.
    NonceSize(u32),
    /// The report or manifest buffer is not page aligned.
    Alignment(u64),
    /// A length the SVSM returned exceeds the buffer it names.
    Length { what: &'static str, len: u64, room: u32 },
    /// The manifest's header, count or an entry's bounds do not hold.
    Manifest(&'static str),
}

impl core::fmt::Display for AttestError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Malformed => f.write_str("malformed SVSM attestation request"),
            Self::NonceSize(n) => write!(f, "the SVSM nonce must be 64 bytes, not {n}"),
            Self::Alignment(gpa) => write!(f, "SVSM attestation buffer at {gpa:#x} is not page aligned"),
            Self::Length { what, len, room } => {
                write!(f, "the SVSM says the {what} is {len} bytes, its buffer holds {room}")
            }
            Self::Manifest(why) => write!(f, "the SVSM services manifest is malformed: {why}"),
        }
    }
}

fn put_location(out: &mut [u8], at: usize, l: &Location) {
    out[at..at + 8].copy_from_slice(&l.gpa.to_le_bytes());
    out[at + 8..at + 12].copy_from_slice(&l.size.to_le_bytes());
    out[at + 12..at + 16].fill(0);
}

fn location(bytes: &[u8], at: usize) -> Result<Location, AttestError> {
    let b = bytes.get(at..at + 16).ok_or(AttestError::Malformed)?;
    if b[12..16] != [0; 4] {
        return Err(AttestError::Malformed);
    }
    let mut gpa = [0u8; 8];
    gpa.copy_from_slice(&b[..8]);
    Ok(Location { gpa: u64::from_le_bytes(gpa), size: u32::from_le_bytes([b[8], b[9], b[10], b[11]]) })
}

impl AttestRequest {
    /// The guest's SVSM_ATTEST_SERVICES request as it lays it out: the request at `buffer` (in
    /// the calling area), the nonce right after it, the report and the manifest in the given
    /// pages, no certificate buffer. Returns the request and the bytes to write at `buffer`.
    pub fn services_in(
        buffer: u64,
        report: Location,
        manifest: Location,
        nonce: &[u8; NONCE_LEN],
    ) -> (Self, [u8; SERVICES_LEN + NONCE_LEN]) {
        let nonce_at = Location { gpa: buffer + SERVICES_LEN as u64, size: NONCE_LEN as u32 };
        let request = Self { report, nonce: nonce_at, manifest, certificates: Location::default(), service: None };
        let mut bytes = [0u8; SERVICES_LEN + NONCE_LEN];
        bytes[..SERVICES_LEN].copy_from_slice(&request.encode().0[..SERVICES_LEN]);
        bytes[SERVICES_LEN..].copy_from_slice(nonce);
        (request, bytes)
    }

    /// The call this request is for.
    pub const fn call(&self) -> u32 {
        if self.service.is_some() { ATTEST_SINGLE_SERVICE } else { ATTEST_SERVICES }
    }

    /// Its bytes; the length depends on the call.
    pub fn encode(&self) -> ([u8; SINGLE_SERVICE_LEN], usize) {
        let mut out = [0u8; SINGLE_SERVICE_LEN];
        put_location(&mut out, 0x00, &self.report);
        put_location(&mut out, 0x10, &self.nonce);
        put_location(&mut out, 0x20, &self.manifest);
        put_location(&mut out, 0x30, &self.certificates);
        match self.service {
            None => (out, SERVICES_LEN),
            Some((guid, version)) => {
                out[0x40..0x50].copy_from_slice(&guid);
                out[0x50..0x54].copy_from_slice(&version.to_le_bytes());
                (out, SINGLE_SERVICE_LEN)
            }
        }
    }

    /// The SVSM's reading of a request for `call` (reserved bytes zero, a 64-byte nonce,
    /// page-aligned report and manifest buffers: COCONUT's checks).
    pub fn parse(bytes: &[u8], call: u32) -> Result<Self, AttestError> {
        let service = match call {
            ATTEST_SINGLE_SERVICE => {
                let b = bytes.get(0x40..SINGLE_SERVICE_LEN).ok_or(AttestError::Malformed)?;
                if b[0x14..0x18] != [0; 4] {
                    return Err(AttestError::Malformed);
                }
                let mut guid = [0u8; 16];
                guid.copy_from_slice(&b[..16]);
                Some((guid, u32::from_le_bytes([b[16], b[17], b[18], b[19]])))
            }
            _ => None,
        };
        let request = Self {
            report: location(bytes, 0x00)?,
            nonce: location(bytes, 0x10)?,
            manifest: location(bytes, 0x20)?,
            certificates: location(bytes, 0x30)?,
            service,
        };
        if request.nonce.size as usize != NONCE_LEN {
            return Err(AttestError::NonceSize(request.nonce.size));
        }
        for gpa in [request.report.gpa, request.manifest.gpa] {
            if !gpa.is_multiple_of(0x1000) {
                return Err(AttestError::Alignment(gpa));
            }
        }
        Ok(request)
    }
}

/// The lengths the SVSM returns (RCX, RDX, R8), each checked against the buffer it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttestLengths {
    pub manifest: usize,
    pub certificates: usize,
    pub report: usize,
}

impl AttestLengths {
    pub fn from_registers(request: &AttestRequest, rcx: u64, rdx: u64, r8: u64) -> Result<Self, AttestError> {
        let check = |what, len: u64, room: u32| {
            if len > u64::from(room) { Err(AttestError::Length { what, len, room }) } else { Ok(len as usize) }
        };
        Ok(Self {
            manifest: check("manifest", rcx, request.manifest.size)?,
            certificates: check("certificate table", rdx, request.certificates.size)?,
            report: check("report", r8, request.report.size)?,
        })
    }
}

/// REPORT_DATA of the SVSM's report: SHA-512(nonce ‖ manifest) (58019 §7; COCONUT
/// `attest_multiple_services`).
pub fn report_data(nonce: &[u8; NONCE_LEN], manifest: &[u8]) -> [u8; 64] {
    twi_proto::hash::sha512(&[nonce, manifest])
}

/// One service of a services manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ManifestEntry<'a> {
    pub guid: [u8; 16],
    pub data: &'a [u8],
}

/// The entries of a services manifest, each checked to lie within it.
pub fn manifest_entries(manifest: &[u8]) -> Result<impl Iterator<Item = ManifestEntry<'_>> + '_, AttestError> {
    let header = manifest.get(..MANIFEST_HEADER_LEN).ok_or(AttestError::Manifest("shorter than its header"))?;
    if header[..16] != SERVICES_MANIFEST_GUID {
        return Err(AttestError::Manifest("not the services manifest GUID"));
    }
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize;
    if u32_at(header, 16) != manifest.len() {
        return Err(AttestError::Manifest("total length differs from the manifest's"));
    }
    let count = u32_at(header, 20);
    let table_end = count
        .checked_mul(MANIFEST_ENTRY_LEN)
        .and_then(|n| n.checked_add(MANIFEST_HEADER_LEN))
        .filter(|&end| end <= manifest.len())
        .ok_or(AttestError::Manifest("more entries than fit"))?;
    let table = &manifest[MANIFEST_HEADER_LEN..table_end];
    for e in table.chunks_exact(MANIFEST_ENTRY_LEN) {
        let (offset, size) = (u32_at(e, 16), u32_at(e, 20));
        if offset < table_end || offset.checked_add(size).is_none_or(|end| end > manifest.len()) {
            return Err(AttestError::Manifest("an entry's data lies outside the manifest"));
        }
    }
    Ok(table.chunks_exact(MANIFEST_ENTRY_LEN).map(move |e| {
        let mut guid = [0u8; 16];
        guid.copy_from_slice(&e[..16]);
        let (offset, size) = (u32_at(e, 16), u32_at(e, 20));
        ManifestEntry { guid, data: &manifest[offset..offset + size] }
    }))
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha512};
    extern crate std;
    use std::vec::Vec;

    use super::*;

    fn request() -> AttestRequest {
        AttestRequest {
            report: Location { gpa: 0x90_0000, size: 0x1000 },
            nonce: Location { gpa: 0x90_1000, size: 64 },
            manifest: Location { gpa: 0x90_2000, size: 0x1000 },
            certificates: Location { gpa: 0, size: 0 },
            service: None,
        }
    }

    #[test]
    fn the_services_request_has_linuxs_layout_and_coconuts_checks() {
        let (bytes, len) = request().encode();
        assert_eq!(len, 0x40);
        assert_eq!(&bytes[0..8], &0x90_0000u64.to_le_bytes());
        assert_eq!(&bytes[8..12], &0x1000u32.to_le_bytes());
        assert_eq!(&bytes[0x10..0x18], &0x90_1000u64.to_le_bytes());
        assert_eq!(&bytes[0x18..0x1C], &64u32.to_le_bytes());
        assert_eq!(AttestRequest::parse(&bytes[..len], ATTEST_SERVICES), Ok(request()));
        assert_eq!(request().call(), ATTEST_SERVICES);
        let mut bad = bytes;
        bad[0x1C] = 1; // reserved
        assert_eq!(AttestRequest::parse(&bad[..len], ATTEST_SERVICES), Err(AttestError::Malformed));
        let mut short_nonce = request();
        short_nonce.nonce.size = 32;
        assert_eq!(AttestRequest::parse(&short_nonce.encode().0, ATTEST_SERVICES), Err(AttestError::NonceSize(32)));
        let mut unaligned = request();
        unaligned.report.gpa += 8;
        assert_eq!(
            AttestRequest::parse(&unaligned.encode().0, ATTEST_SERVICES),
            Err(AttestError::Alignment(0x90_0008))
        );
        assert_eq!(AttestRequest::parse(&bytes[..0x3F], ATTEST_SERVICES), Err(AttestError::Malformed));
    }

    #[test]
    fn the_single_service_request_adds_the_guid_and_version() {
        let single = AttestRequest { service: Some(([7; 16], 1)), ..request() };
        let (bytes, len) = single.encode();
        assert_eq!((len, single.call()), (0x58, ATTEST_SINGLE_SERVICE));
        assert_eq!(&bytes[0x40..0x50], &[7; 16]);
        assert_eq!(&bytes[0x50..0x54], &1u32.to_le_bytes());
        assert_eq!(AttestRequest::parse(&bytes[..len], ATTEST_SINGLE_SERVICE), Ok(single));
        assert_eq!(AttestRequest::parse(&bytes[..0x40], ATTEST_SINGLE_SERVICE), Err(AttestError::Malformed));
    }

    #[test]
    fn returned_lengths_are_bounded_by_the_buffers() {
        let r = request();
        assert_eq!(
            AttestLengths::from_registers(&r, 24, 0, 1184),
            Ok(AttestLengths { manifest: 24, certificates: 0, report: 1184 })
        );
        assert!(matches!(AttestLengths::from_registers(&r, 0x1001, 0, 1184), Err(AttestError::Length { .. })));
        assert!(matches!(AttestLengths::from_registers(&r, 24, 1, 1184), Err(AttestError::Length { .. })));
    }

    /// A manifest as COCONUT's GuidTable writes it.
    fn manifest(entries: &[([u8; 16], &[u8])]) -> Vec<u8> {
        let header = MANIFEST_HEADER_LEN + entries.len() * MANIFEST_ENTRY_LEN;
        let total = header + entries.iter().map(|e| e.1.len()).sum::<usize>();
        let mut out = SERVICES_MANIFEST_GUID.to_vec();
        out.extend((total as u32).to_le_bytes());
        out.extend((entries.len() as u32).to_le_bytes());
        let mut at = header as u32;
        for (guid, data) in entries {
            out.extend(guid);
            out.extend(at.to_le_bytes());
            out.extend((data.len() as u32).to_le_bytes());
            at += data.len() as u32;
        }
        for (_, data) in entries {
            out.extend(*data);
        }
        out
    }

    #[test]
    fn the_services_manifest_is_a_checked_guid_table() {
        // COCONUT with no service compiled in: the 24-byte header alone.
        let empty = manifest(&[]);
        assert_eq!(empty.len(), 24);
        assert_eq!(manifest_entries(&empty).unwrap().count(), 0);
        // The stored GUID is 63849ebb-3d92-4670-a1ff-58f9c94b87bb in EFI order.
        assert_eq!(&empty[..4], &0x6384_9ebbu32.to_le_bytes());
        let vtpm = [0xAB; 16];
        let m = manifest(&[(vtpm, b"tpm ek"), ([1; 16], b"")]);
        let entries: Vec<_> = manifest_entries(&m).unwrap().collect();
        assert_eq!(
            entries,
            [ManifestEntry { guid: vtpm, data: b"tpm ek" }, ManifestEntry { guid: [1; 16], data: b"" }]
        );
        let mut bad = m.clone();
        bad[16] ^= 1; // total length
        assert!(manifest_entries(&bad).is_err());
        let mut bad = m.clone();
        bad[20] = 9; // count
        assert!(manifest_entries(&bad).is_err());
        let mut bad = m.clone();
        bad[MANIFEST_HEADER_LEN + 20] = 0xFF; // an entry's size
        assert!(manifest_entries(&bad).is_err());
        assert!(manifest_entries(&m[..10]).is_err());
    }

    #[test]
    fn report_data_binds_the_nonce_and_the_manifest() {
        let nonce = [5u8; 64];
        let m = manifest(&[]);
        let mut joined = nonce.to_vec();
        joined.extend(&m);
        assert_eq!(report_data(&nonce, &m), <[u8; 64]>::from(Sha512::digest(&joined)));
        assert_ne!(report_data(&nonce, &m), report_data(&[6; 64], &m));
        assert_ne!(report_data(&nonce, &m), report_data(&nonce, &manifest(&[([1; 16], b"x")])));
    }
}
