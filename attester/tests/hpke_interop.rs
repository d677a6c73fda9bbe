//! HPKE (RFC 9180, DHKEM(P-384, HKDF-SHA384), HKDF-SHA384, AES-256-GCM) interoperability with
//! an independent implementation: Python's `pyhpke` (`qemu/install-deps` installs it), driven
//! by the test kit's `hpke_check.py`. Rust seals, Python opens; Python seals, Rust opens; both
//! derive the same key pair from the same ikm (DeriveKeyPair, §7.1.3), and both refuse
//! tampered messages.
//!
//! This test fails, rather than skips, when python3 or pyhpke cannot be had: interoperability
//! is the point of the test.

use twi_attester::hpke;
use twi_testkit::TestRng;
use twi_testkit::tools::{Python, hpke_check};

#[test]
fn rust_and_pyhpke_open_each_others_messages() {
    // Fail before anything is made when pyhpke is missing.
    Python::with(&["pyhpke", "cryptography"]);
    let ikm = b"twi hpke interop: recipient key pair ikm";
    let sk = hpke::derive_key_pair(ikm).expect("DeriveKeyPair");
    let pk = hpke::serialize_public_key(&sk.public_key());
    let (info, aad) = (b"twi key release info".as_slice(), b"twi key release aad".as_slice());
    let pt = [0xa5u8; 48];
    let mut ct = [0u8; 48 + hpke::TAG_LEN];
    let enc = hpke::seal(&pk, info, aad, &pt, &mut ct, &mut TestRng(0x2545_f491_4f6c_dd1d)).unwrap();

    let request = serde_json::json!({
        "ikm": hex::encode(ikm),
        "sk": hex::encode(sk.to_bytes()),
        "pk": hex::encode(pk),
        "enc": hex::encode(enc),
        "ct": hex::encode(ct),
        "info": hex::encode(info),
        "aad": hex::encode(aad),
    });
    let out = hpke_check(&request);
    assert!(out.status.success(), "hpke_check.py failed: {}", String::from_utf8_lossy(&out.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let field = |name: &str| hex::decode(answer[name].as_str().unwrap()).unwrap();

    // DeriveKeyPair agrees (same labels, suite id and rejection sampling).
    assert_eq!(field("derived_sk"), sk.to_bytes().to_vec());
    assert_eq!(field("derived_pk"), pk.to_vec());
    // Rust → Python.
    assert_eq!(field("opened"), pt.to_vec(), "pyhpke opened Rust's message to other bytes");
    assert_eq!(answer["refused_all"], true, "pyhpke accepted a tampered message");
    // Python → Rust.
    let (py_enc, py_ct, py_info, py_aad) = (field("py_enc"), field("py_ct"), field("py_info"), field("py_aad"));
    let mut opened = vec![0u8; py_ct.len() - hpke::TAG_LEN];
    hpke::open(&sk, &py_enc, &py_info, &py_aad, &py_ct, &mut opened).expect("Rust opens pyhpke's message");
    assert_eq!(opened, field("py_pt"));
    // And refuses it altered.
    let mut bad = py_ct.clone();
    *bad.last_mut().unwrap() ^= 0x80;
    assert_eq!(hpke::open(&sk, &py_enc, &py_info, &py_aad, &bad, &mut opened), Err(hpke::HpkeError::Open));
    assert_eq!(hpke::open(&sk, &py_enc, b"other info", &py_aad, &py_ct, &mut opened), Err(hpke::HpkeError::Open));
}
