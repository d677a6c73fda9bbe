//! The TD's measured event log against the quote's RTMRs (Intel "TDX Module Base
//! Architecture Specification", TDG.MR.RTMR.EXTEND: RTMR = SHA-384(RTMR ‖ digest), from zero).
//!
//! TWI's runtime is the TD's firmware: nothing but the runtime extends an RTMR before the
//! quote, so a quote is explained only when every RTMR is exactly the replay of the log the
//! runtime sends with it (all zero for an RTMR the log does not touch). Each event's digest
//! must also be SHA-384 of its data, so that the data a policy reads is what was measured.
//!
//! The same log in the format standard verifiers replay ([`cc_event_log`]): the CC event log
//! that TDVF and td-shim publish in the ACPI CCEL table (TCG PC Client Platform Firmware
//! Profile, "crypto agile" log; UEFI 2.10 §38.4.1 for the register indices). The runtime sends
//! its events compactly over the channel; every byte of the CCEL form is a function of them
//! (rtmr, type, digest, data), so the host renders it and a verifier that replays it trusts
//! nothing the host added: a changed byte changes the replay.

use sha2::{Digest, Sha384};

use crate::tdx::verify::TdxError;

/// One event of the log, as the runtime reports it: which RTMR it extended (0..=3), the
/// digest it extended with, and the measured data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeasuredEvent<'a> {
    pub rtmr: u8,
    /// What was measured (`twi_proto::msg::event_type`).
    pub event_type: u32,
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

/// `EV_NO_ACTION`, the type of the log's first (Spec ID) event.
const EV_NO_ACTION: u32 = 0x3;
/// TCG algorithm id of SHA-384 (`TPM_ALG_SHA384`).
const TPM_ALG_SHA384: u16 = 0x000C;

/// `events` as a CC event log: the `TCG_PCR_EVENT` Spec ID header ("Spec ID Event03", one
/// algorithm, SHA-384), then one `TCG_PCR_EVENT2` per event whose register index is the CC
/// measurement register index (RTMR *n* is index *n* + 1; 0 is MRTD) and whose one digest is
/// the event's SHA-384. An event whose digest is not 48 bytes is written with its digest as
/// given, so that the log replays to what the runtime claimed and the replay exposes it.
pub fn cc_event_log(events: &[MeasuredEvent<'_>]) -> Vec<u8> {
    let mut log = Vec::with_capacity(65 + events.iter().map(|e| 66 + e.data.len()).sum::<usize>());
    // TCG_PCR_EVENT: PCR 0, EV_NO_ACTION, a zero SHA-1-sized digest, then TCG_EfiSpecIdEvent.
    let mut spec_id = b"Spec ID Event03\0".to_vec();
    spec_id.extend_from_slice(&0u32.to_le_bytes()); // platformClass: client
    spec_id.extend_from_slice(&[0, 2, 0, 2]); // version 2.0, errata 0, uintnSize 2 (UINT64)
    spec_id.extend_from_slice(&1u32.to_le_bytes()); // numberOfAlgorithms
    spec_id.extend_from_slice(&TPM_ALG_SHA384.to_le_bytes());
    spec_id.extend_from_slice(&48u16.to_le_bytes());
    spec_id.push(0); // vendorInfoSize
    log.extend_from_slice(&0u32.to_le_bytes());
    log.extend_from_slice(&EV_NO_ACTION.to_le_bytes());
    log.extend_from_slice(&[0; 20]);
    push_sized(&mut log, &spec_id);
    for event in events {
        log.extend_from_slice(&(u32::from(event.rtmr) + 1).to_le_bytes());
        log.extend_from_slice(&event.event_type.to_le_bytes());
        log.extend_from_slice(&1u32.to_le_bytes()); // TPML_DIGEST_VALUES.count
        log.extend_from_slice(&TPM_ALG_SHA384.to_le_bytes());
        log.extend_from_slice(event.digest);
        push_sized(&mut log, event.data);
    }
    log
}

/// A `u32` little-endian size, then `bytes`.
fn push_sized(log: &mut Vec<u8>, bytes: &[u8]) {
    log.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes());
    log.extend_from_slice(bytes);
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
        let events: Vec<MeasuredEvent<'_>> = owned
            .iter()
            .map(|(rtmr, data, digest)| MeasuredEvent { rtmr: *rtmr, event_type: 1, digest, data })
            .collect();
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

    /// The CCEL form parses with the reader of firmware logs and replays to the same RTMRs.
    #[test]
    fn the_cc_event_log_replays_to_the_same_rtmrs() {
        use twi_attester::tdx::rtmr::CcelEvents;
        let data: [&[u8]; 3] = [b"launch manifest", b"issuer anchor", b"second manifest"];
        let digests: Vec<[u8; 48]> = data.iter().map(|d| Sha384::digest(d).into()).collect();
        let events = [
            MeasuredEvent { rtmr: 1, event_type: 0x5457_0001, digest: &digests[0], data: data[0] },
            MeasuredEvent { rtmr: 2, event_type: 0x5457_0002, digest: &digests[1], data: data[1] },
            MeasuredEvent { rtmr: 1, event_type: 0x5457_0001, digest: &digests[2], data: data[2] },
        ];
        let log = cc_event_log(&events);
        let parsed: Vec<_> = CcelEvents::new(&log).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(parsed.len(), 3);
        for (p, e) in parsed.iter().zip(&events) {
            assert_eq!(
                (p.rtmr(), p.event_type, &p.digest[..], p.data),
                (Some(u32::from(e.rtmr)), e.event_type, e.digest, e.data)
            );
        }
        let replayed = CcelEvents::new(&log).unwrap().replay().unwrap();
        check(&events, &replayed).unwrap();
        // The Spec ID event is, from its type on, byte for byte the one TDVF wrote in a Google
        // Cloud TD's CCEL (which puts 1 in its register field, where the TCG profile says 0).
        let gcp = twi_testkit::samples::read("tdx/t8_gcp_v4_ccel/ccel_data.dat");
        assert_eq!(hex::encode(&log[4..65]), hex::encode(&gcp[4..65]));
        assert_eq!(&log[..4], &[0; 4]);
    }
}
