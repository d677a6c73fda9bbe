//! Feeds arbitrary bytes, as a hostile host would, to the guest's message
//! reader. The reader must never panic, and whatever it accepts must be a
//! valid message that re-encodes and decodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twi_proto::{MessageReader, decode, encode};

fuzz_target!(|data: &[u8]| {
    let mut reader = MessageReader::new();
    for &byte in data {
        if let Some(Ok(msg)) = reader.push(byte) {
            let payload = encode(&msg).expect("accepted message must re-encode");
            assert_eq!(decode(&payload), Ok(msg));
        }
    }
    // The same bytes as a bare payload.
    let _ = decode(data);
});
