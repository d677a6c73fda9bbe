//! Arbitrary bytes as the GHCI GetQuote buffer the VMM hands back (what a hostile host leaves
//! in the shared pages) and as a request the host-side simulator receives. Parsing must never
//! panic; a quote taken out of a response lies inside the buffer, and a response re-encoded
//! from it parses to the same quote.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twi_attester::tdx::getquote::{encode_response, parse_request, parse_response};

fuzz_target!(|data: &[u8]| {
    let _ = parse_request(data);
    if let Ok(quote) = parse_response(data) {
        assert!(quote.len() <= data.len());
        // The VMM answers in the guest's own buffer (its header's version stays).
        let mut again = data.to_vec();
        if let Ok(n) = encode_response(Ok(quote), &mut again) {
            assert_eq!(parse_response(&again[..n]), Ok(quote));
        }
    }
});
