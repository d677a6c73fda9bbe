//! Arbitrary bytes as a key release a hostile host forges: `enc`, info/aad and ciphertext
//! cut from the input and opened under a fixed recipient key. `open` must never panic, never
//! accept (the fuzzer cannot forge AES-GCM under an ECDH secret it does not know), and leave
//! the output zeroed when it refuses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twi_attester::hpke::{ENC_LEN, TAG_LEN, derive_key_pair, open};

fuzz_target!(|data: &[u8]| {
    let recipient = derive_key_pair(b"twi fuzz recipient").expect("a key pair");
    let (enc, rest) = data.split_at(data.len().min(ENC_LEN));
    let split = rest.first().map_or(0, |&b| usize::from(b)).min(rest.len());
    let (info, ct) = rest.split_at(split);
    let mut out = vec![0xAAu8; ct.len().saturating_sub(TAG_LEN)];
    let result = open(&recipient, enc, info, b"aad", ct, &mut out);
    assert!(result.is_err(), "a forged release opened");
    if ct.len() >= TAG_LEN && enc.len() == ENC_LEN {
        assert!(out.iter().all(|&b| b == 0 || b == 0xAA), "a refused open left plaintext behind");
    }
});
