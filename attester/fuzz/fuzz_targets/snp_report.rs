//! Arbitrary bytes as an SEV-SNP attestation report (what a hostile host hands the issuer).
//! Parsing must never panic; an accepted report re-encodes to a report that parses to
//! itself and agrees with the input outside the reserved bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twi_attester::snp::report::{AttestationReport, SIGNED_LEN, signed_region};

fuzz_target!(|data: &[u8]| {
    let _ = signed_region(data);
    if let Ok(report) = AttestationReport::parse(data) {
        let again = report.to_bytes();
        assert_eq!(AttestationReport::parse(&again), Ok(report));
        assert_eq!(signed_region(data).map(<[u8]>::len), Ok(SIGNED_LEN));
        let _ = report.signature.to_big_endian_rs();
        let _ = report.tcb_layout();
        let _ = report.signing_key();
    }
});
