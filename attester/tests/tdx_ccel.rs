//! Event-log replay against a real TD: the CC event log (ACPI CCEL) and quote of a Google
//! Cloud TDX VM, from google/go-tdx-guest `testing/testdata/ccel/` (`ccel_data.dat`,
//! `cos-113-tdx-quote.dat`; `provenance.json` in `tests/data` pins them). Replaying the
//! log must give the quote's RTMR0–3, as `expected.json` records (43 events, all four match).

use twi_attester::tdx::quote::ParsedQuote;
use twi_attester::tdx::rtmr::{CcelEvents, EV_NO_ACTION};
use twi_testkit::samples::read;

#[test]
fn replaying_the_ccel_gives_the_quotes_rtmrs() {
    let log = read("tdx/t8_gcp_v4_ccel/ccel_data.dat");
    let quote = read("tdx/t8_gcp_v4_ccel/cos-113-tdx-quote.dat");
    let expected: serde_json::Value = serde_json::from_slice(&read("expected.json")).unwrap();
    let t8 = &expected["tdx"]["t8"];

    let events: Vec<_> = CcelEvents::new(&log).unwrap().collect::<Result<_, _>>().unwrap();
    // expected.json counts every record after the Spec ID header, EV_NO_ACTION ones included.
    assert_eq!(events.len() as u64, t8["ccel_replay"]["events"].as_u64().unwrap());
    assert!(events.iter().all(|e| (1..=4).contains(&e.mr_index) || e.event_type == EV_NO_ACTION));

    let rtmr = CcelEvents::new(&log).unwrap().replay().unwrap();
    let parsed = ParsedQuote::parse(&quote).unwrap();
    for (i, (replayed, quoted)) in rtmr.iter().zip(&parsed.quote.body.rtmr).enumerate() {
        assert_eq!(replayed, quoted, "RTMR{i}");
        assert_eq!(hex::encode(replayed), t8["td"][format!("rtmr{i}")].as_str().unwrap(), "RTMR{i}");
    }

    // One altered digest byte changes the replay.
    let first_digest_at = 32 + u32::from_le_bytes(log[28..32].try_into().unwrap()) as usize + 12 + 2;
    let mut altered = log.clone();
    altered[first_digest_at] ^= 1;
    assert_ne!(CcelEvents::new(&altered).unwrap().replay().unwrap(), rtmr);
    // Every truncation of the log either replays (fewer events) or fails: never panics.
    for cut in (0..2048).step_by(7) {
        if let Ok(events) = CcelEvents::new(&log[..cut]) {
            let _ = events.replay();
        }
    }
}
