//! The TD's measured event log against the quote's RTMRs (Intel "TDX Module Base
//! Architecture Specification", TDG.MR.RTMR.EXTEND: RTMR = SHA-384(RTMR ‖ digest), from zero).
//!
//! TWI's runtime is the TD's firmware: nothing but the runtime extends an RTMR before the
//! quote, so a quote is explained only when every RTMR is exactly the replay of the log the
//! runtime sends with it (all zero for an RTMR the log does not touch). Each event's digest
//! must also be SHA-384 of its data, so that the data a policy reads is what was measured.

use sha2::{Digest, Sha384};

use crate::tdx::verify::TdxError;

/// One event of the log, as the runtime reports it: which RTMR it extended (0..=3), the
/// digest it extended with, and the measured data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeasuredEvent<'a> {
    pub rtmr: u8,
    pub digest: &'a [u8],
    pub data: &'a [u8],
}

/// Each event's digest is SHA-384 of its data, and the log replays to exactly `quoted`.
pub fn check(events: &[MeasuredEvent<'_>], quoted: &[[u8; 48]; 4]) -> Result<(), TdxError> {
    let mismatch = |what: &'static str, expected: &[u8], actual: &[u8]| TdxError::Mismatch {
        what,
        expected: hex::encode(expected),
        actual: hex::encode(actual),
    };
    let mut digests = Vec::with_capacity(events.len());
    for event in events {
        let digest: [u8; 48] = Sha384::digest(event.data).into();
        if event.digest != digest {
            return Err(mismatch("an event log digest (SHA-384 of its data)", &digest, event.digest));
        }
        digests.push((u32::from(event.rtmr), digest));
    }
    let replayed = twi_attester::tdx::rtmr::replay(digests.iter().map(|(i, d)| (*i, d)))
        .map_err(|e| TdxError::Malformed(e.to_string()))?;
    const NAMES: [&str; 4] = [
        "the quote's RTMR0 (expected: the event log's replay)",
        "the quote's RTMR1 (expected: the event log's replay)",
        "the quote's RTMR2 (expected: the event log's replay)",
        "the quote's RTMR3 (expected: the event log's replay)",
    ];
    for ((name, quote), replay) in NAMES.iter().zip(quoted).zip(&replayed) {
        if quote != replay {
            return Err(mismatch(name, replay, quote));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(rtmr: u8, data: &[u8], digest: &[u8; 48]) -> (u8, Vec<u8>, [u8; 48]) {
        (rtmr, data.to_vec(), *digest)
    }

    #[test]
    fn replays_and_names_what_differs() {
        let owned = [event(1, b"manifest", &Sha384::digest(b"manifest").into())];
        let events: Vec<MeasuredEvent<'_>> =
            owned.iter().map(|(rtmr, data, digest)| MeasuredEvent { rtmr: *rtmr, digest, data }).collect();
        let mut quoted = [[0u8; 48]; 4];
        quoted[1] = twi_attester::tdx::rtmr::extend(&[0; 48], &owned[0].2);
        check(&events, &quoted).unwrap();
        // No log: RTMR1 is unexplained.
        let e = check(&[], &quoted).unwrap_err();
        assert!(e.to_string().contains("the quote's RTMR1 (expected: the event log's replay)"), "{e}");
        // Data that is not what the digest measured.
        let forged = [MeasuredEvent { data: b"another manifest", ..events[0] }];
        let e = check(&forged, &quoted).unwrap_err();
        assert!(e.to_string().contains("an event log digest"), "{e}");
        // An RTMR index the TD does not have.
        let wrong = [MeasuredEvent { rtmr: 4, ..events[0] }];
        assert!(matches!(check(&wrong, &quoted), Err(TdxError::Malformed(_))));
    }
}
