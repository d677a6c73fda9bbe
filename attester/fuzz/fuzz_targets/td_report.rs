//! Arbitrary bytes as a TDREPORT_STRUCT, a TD quote body (1.0 and 1.5) and a QE report: all
//! fixed-size, so every input of the size parses; the encodings must round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twi_attester::tdx::enclave_report::{ENCLAVE_REPORT_SIZE, EnclaveReport};
use twi_attester::tdx::td_report::{TD_REPORT_SIZE, TD10_BODY_SIZE, TD15_BODY_SIZE, TdQuoteBody, TdReport};

fuzz_target!(|data: &[u8]| {
    if let Some(b) = data.first_chunk::<TD_REPORT_SIZE>() {
        let r = TdReport::parse(b);
        assert_eq!(TdReport::parse(&r.to_bytes()), r);
        let _ = r.quote_body();
    }
    if let Some(b) = data.first_chunk::<TD15_BODY_SIZE>() {
        let body = TdQuoteBody::parse_td15(b);
        assert_eq!(&body.to_td15_bytes(), b);
    }
    if let Some(b) = data.first_chunk::<TD10_BODY_SIZE>() {
        let body = TdQuoteBody::parse_td10(b);
        assert_eq!(&body.to_td10_bytes(), b);
    }
    if let Some(b) = data.first_chunk::<ENCLAVE_REPORT_SIZE>() {
        assert_eq!(&EnclaveReport::parse(b).to_bytes(), b);
    }
});
