//! Runtime measurement registers: extension and event-log replay.
//!
//! `TDG.MR.RTMR.EXTEND` (TDX Module ABI) sets `RTMR[i] = SHA-384(RTMR[i] ‖ digest)`, every RTMR
//! starting at 48 zero bytes. A verifier replays an event log (each event names an RTMR and
//! the SHA-384 digest that was extended) and compares the result with the quote's RTMRs.
//!
//! Two logs are read here:
//! * the runtime's own, handed over as `(rtmr index 0..=3, digest)` pairs ([`replay`]);
//! * a CC event log as firmware publishes it in the ACPI CCEL table (TCG PC Client Platform
//!   Firmware Profile "crypto agile" log: a `TCG_PCR_EVENT` Spec ID header, then
//!   `TCG_PCR_EVENT2` records), in which the "PCR index" is the CC measurement register index:
//!   0 = MRTD, 1..=4 = RTMR0..=3 (UEFI `EFI_CC_MEASUREMENT_PROTOCOL`, TDVF design guide,
//!   "TD Event Log") — [`CcelEvents`].

/// Number of RTMRs.
pub const RTMR_COUNT: usize = 4;
/// A SHA-384 digest.
pub type Digest384 = [u8; 48];

/// `SHA-384(rtmr ‖ digest)`.
pub fn extend(rtmr: &Digest384, digest: &Digest384) -> Digest384 {
    twi_proto::hash::sha384(&[rtmr, digest])
}

/// Why a log does not replay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayError {
    /// An event names an RTMR outside 0..=3.
    Index(u32),
    /// The CC event log is malformed at this byte offset.
    Malformed { at: usize, what: &'static str },
}

impl core::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Index(i) => write!(f, "an event extends RTMR{i}, which does not exist"),
            Self::Malformed { at, what } => write!(f, "the event log is malformed at byte {at}: {what}"),
        }
    }
}

/// Replays `(rtmr index, digest)` events from all-zero RTMRs.
pub fn replay<'a>(
    events: impl IntoIterator<Item = (u32, &'a Digest384)>,
) -> Result<[Digest384; RTMR_COUNT], ReplayError> {
    let mut rtmr = [[0u8; 48]; RTMR_COUNT];
    for (index, digest) in events {
        let slot = rtmr.get_mut(index as usize).ok_or(ReplayError::Index(index))?;
        *slot = extend(slot, digest);
    }
    Ok(rtmr)
}

/// TCG algorithm id of SHA-384.
pub const TPM_ALG_SHA384: u16 = 0x000C;
/// `EV_NO_ACTION`: informational, never extended.
pub const EV_NO_ACTION: u32 = 0x0000_0003;

/// One `TCG_PCR_EVENT2` of a CC event log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CcEvent<'a> {
    /// The CC measurement register index (1..=4 = RTMR0..=3).
    pub mr_index: u32,
    pub event_type: u32,
    /// The SHA-384 digest of the event (a CC log carries exactly one bank).
    pub digest: Digest384,
    pub data: &'a [u8],
}

impl CcEvent<'_> {
    /// The RTMR this event extends, or `None` for MRTD / EV_NO_ACTION.
    pub fn rtmr(&self) -> Option<u32> {
        (self.event_type != EV_NO_ACTION && self.mr_index >= 1).then(|| self.mr_index - 1)
    }
}

/// The events of a CC event log (the CCEL table's log area), after its Spec ID header. Stops
/// at the end of the area or at the first unused record (all-ones or all-zero header, as the
/// area is padded). Every length is checked against the area; nothing can panic.
#[derive(Clone, Debug)]
pub struct CcelEvents<'a> {
    log: &'a [u8],
    pos: usize,
    /// Digest sizes of the algorithms the Spec ID event declares.
    algorithms: [(u16, u16); 8],
    algorithm_count: usize,
    failed: bool,
}

fn u32_at(log: &[u8], at: usize, what: &'static str) -> Result<u32, ReplayError> {
    at.checked_add(4)
        .and_then(|end| log.get(at..end))
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(ReplayError::Malformed { at, what })
}

fn u16_at(log: &[u8], at: usize, what: &'static str) -> Result<u16, ReplayError> {
    at.checked_add(2)
        .and_then(|end| log.get(at..end))
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .ok_or(ReplayError::Malformed { at, what })
}

impl<'a> CcelEvents<'a> {
    /// Reads the Spec ID header (`TCG_PCR_EVENT` with a SHA-1-sized digest and the
    /// "Spec ID Event03" structure).
    pub fn new(log: &'a [u8]) -> Result<Self, ReplayError> {
        // TCG_PCR_EVENT: u32 pcr, u32 type, [20] digest, u32 size, data.
        let event_type = u32_at(log, 4, "the Spec ID event type")?;
        if event_type != EV_NO_ACTION {
            return Err(ReplayError::Malformed { at: 4, what: "the first event is not the Spec ID event" });
        }
        let size = u32_at(log, 28, "the Spec ID event size")? as usize;
        let data_start: usize = 32;
        let data = data_start
            .checked_add(size)
            .and_then(|end| log.get(data_start..end))
            .ok_or(ReplayError::Malformed { at: 28, what: "the Spec ID event size" })?;
        if !data.starts_with(b"Spec ID Event03\0") {
            return Err(ReplayError::Malformed { at: data_start, what: "no \"Spec ID Event03\" signature" });
        }
        // 16 signature, u32 platform class, u8 minor, u8 major, u8 errata, u8 uintn size,
        // u32 number of algorithms, then {u16 id, u16 digest size} each.
        let count = u32_at(data, 24, "the algorithm count")? as usize;
        let mut algorithms = [(0u16, 0u16); 8];
        if count == 0 || count > algorithms.len() {
            return Err(ReplayError::Malformed { at: data_start + 24, what: "the algorithm count" });
        }
        for (i, slot) in algorithms.iter_mut().enumerate().take(count) {
            let at = 28 + 4 * i;
            *slot = (u16_at(data, at, "an algorithm id")?, u16_at(data, at + 2, "a digest size")?);
        }
        Ok(Self { log, pos: data_start + size, algorithms, algorithm_count: count, failed: false })
    }

    fn digest_size(&self, alg: u16) -> Option<usize> {
        self.algorithms[..self.algorithm_count].iter().find(|(id, _)| *id == alg).map(|(_, size)| usize::from(*size))
    }

    fn next_event(&mut self) -> Result<Option<CcEvent<'a>>, ReplayError> {
        let start = self.pos;
        let log = self.log;
        if log.len().saturating_sub(start) < 12 {
            return Ok(None);
        }
        let mr_index = u32_at(log, start, "the register index")?;
        let event_type = u32_at(log, start + 4, "the event type")?;
        if (mr_index == u32::MAX && event_type == u32::MAX) || (mr_index == 0 && event_type == 0) {
            return Ok(None); // the unused rest of the area
        }
        let count = u32_at(log, start + 8, "the digest count")?;
        let mut at = start + 12;
        let mut sha384 = None;
        for _ in 0..count.min(8) {
            let alg = u16_at(log, at, "a digest algorithm")?;
            let size = self.digest_size(alg).ok_or(ReplayError::Malformed { at, what: "an undeclared algorithm" })?;
            let digest = log.get(at + 2..at + 2 + size).ok_or(ReplayError::Malformed { at, what: "a digest" })?;
            if alg == TPM_ALG_SHA384 {
                sha384 = Some(
                    <Digest384>::try_from(digest)
                        .map_err(|_| ReplayError::Malformed { at, what: "a SHA-384 digest that is not 48 bytes" })?,
                );
            }
            at += 2 + size;
        }
        if count > 8 {
            return Err(ReplayError::Malformed { at: start + 8, what: "more than 8 digests" });
        }
        let size = u32_at(log, at, "the event size")? as usize;
        let data = (at + 4)
            .checked_add(size)
            .and_then(|end| log.get(at + 4..end))
            .ok_or(ReplayError::Malformed { at, what: "the event size" })?;
        self.pos = at + 4 + size;
        let digest = sha384.ok_or(ReplayError::Malformed { at: start, what: "an event without a SHA-384 digest" })?;
        Ok(Some(CcEvent { mr_index, event_type, digest, data }))
    }

    /// Replays every event into the four RTMRs.
    pub fn replay(self) -> Result<[Digest384; RTMR_COUNT], ReplayError> {
        let mut rtmr = [[0u8; 48]; RTMR_COUNT];
        for event in self {
            let event = event?;
            if let Some(index) = event.rtmr() {
                let slot = rtmr.get_mut(index as usize).ok_or(ReplayError::Index(index))?;
                *slot = extend(slot, &event.digest);
            }
        }
        Ok(rtmr)
    }
}

impl<'a> Iterator for CcelEvents<'a> {
    type Item = Result<CcEvent<'a>, ReplayError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_event() {
            Ok(event) => event.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha384};

    #[test]
    fn extend_is_sha384_of_the_concatenation() {
        let zero = [0u8; 48];
        let d = [0x11u8; 48];
        let mut cat = [0u8; 96];
        cat[48..].copy_from_slice(&d);
        let want: Digest384 = Sha384::digest(cat).into();
        assert_eq!(extend(&zero, &d), want);
        let r = replay([(1, &d), (1, &d)]).unwrap();
        assert_eq!(r[1], extend(&want, &d));
        assert_eq!(r[0], zero);
        assert_eq!(replay([(4, &d)]), Err(ReplayError::Index(4)));
    }

    #[test]
    fn malformed_logs_are_errors_not_panics() {
        assert!(CcelEvents::new(&[]).is_err());
        assert!(CcelEvents::new(&[0xFF; 64]).is_err());
    }
}
