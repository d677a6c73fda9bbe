//! Arbitrary bytes as a TDX quote (v4/v5). Parsing must never panic; an accepted quote
//! re-encodes to exactly the bytes it was read from, and its signed part is a prefix of them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twi_attester::tdx::quote::ParsedQuote;

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = ParsedQuote::parse(data) {
        assert!(parsed.len <= data.len());
        assert!(data.starts_with(parsed.signed));
        let q = parsed.quote;
        assert_eq!(q.encoded_len(), parsed.len);
        let mut out = vec![0u8; parsed.len];
        assert_eq!(q.encode(&mut out), Ok(parsed.len));
        assert_eq!(&out[..], &data[..parsed.len]);
        let _ = q.qe_report_body();
    }
});
