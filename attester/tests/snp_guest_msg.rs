//! The SEV-SNP guest-message envelope against a vector computed independently with Python's
//! `cryptography` (AESGCM), and the sequence-number rules that keep GCM IVs unique.
//!
//! The vector: VMPCK = 00 01 .. 1f, seqno 1, MSG_REPORT_REQ (type 5, version 1, VMPCK 0) with
//! REPORT_DATA = 0xAB × 64 and VMPL 0:
//! ```python
//! hdr = bytearray(0x60); hdr[0x20:0x28] = struct.pack('<Q', 1); hdr[0x30] = 1; hdr[0x31] = 1
//! hdr[0x32:0x34] = struct.pack('<H', 0x60); hdr[0x34] = 5; hdr[0x35] = 1
//! hdr[0x36:0x38] = struct.pack('<H', 96)
//! ct = AESGCM(bytes(range(32))).encrypt(struct.pack('<Q', 1) + bytes(4), payload, bytes(hdr[0x30:0x60]))
//! hdr[0:16] = ct[-16:]; message = bytes(hdr) + ct[:-16]
//! ```

use twi_attester::snp::guest_msg::{
    GuestMsgError, HEADER_SIZE, Header, MAX_MESSAGE, Requester, Responder, Vmpck, msg_type, open, seal,
};
use twi_attester::snp::msg::ReportRequest;

const VECTOR: &str = "e9c386430a95c978fae478a6e2862a6c0000000000000000000000000000000001000000000000000000000000000000010160000501600000000000000000000000000000000000000000000000000000000000000000000000000000000000498729940f0447ace1afae68976a236067ca6485d703c0b9e5b4f655b68d2cdb47575b628b0905647376b678e5a2ab235b7e652f4edbf13c28234bd9bc1f83ecbcafa49213c0f2445044cd48be94fd5eb5f3e8b761e80896f353185b4abd740d";

fn key() -> Vmpck {
    let mut k = [0u8; 32];
    k.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
    Vmpck::new(k)
}

fn report_request() -> [u8; 96] {
    ReportRequest { report_data: [0xAB; 64], vmpl: 0 }.to_bytes()
}

#[test]
fn sealing_matches_the_independent_vector() {
    let payload = report_request();
    let header = Header { seqno: 1, msg_type: msg_type::REPORT_REQ, msg_version: 1, msg_size: 96, vmpck_id: 0 };
    let mut out = [0u8; MAX_MESSAGE];
    let len = seal(&key(), &header, &payload, &mut out).unwrap();
    assert_eq!(hex::encode(&out[..len]), VECTOR);

    let mut plain = [0u8; MAX_MESSAGE];
    let (parsed, n) = open(&key(), &hex::decode(VECTOR).unwrap(), &mut plain).unwrap();
    assert_eq!(parsed, header);
    assert_eq!(&plain[..n], &payload);
}

#[test]
fn any_altered_byte_of_tag_aad_or_ciphertext_fails_authentication() {
    let message = hex::decode(VECTOR).unwrap();
    let mut plain = [0u8; MAX_MESSAGE];
    for offset in 0..message.len() {
        let in_tag = offset < 16;
        let in_aad_or_body = offset >= 0x30;
        let in_seqno = (0x20..0x28).contains(&offset);
        if !(in_tag || in_aad_or_body || in_seqno) {
            continue; // the tag's zero padding and reserved bytes 0x28..0x30 are not authenticated
        }
        let mut altered = message.clone();
        altered[offset] ^= 0x01;
        let result = open(&key(), &altered, &mut plain);
        assert!(result.is_err(), "flipping byte {offset:#x} went unnoticed");
    }
}

#[test]
fn a_request_and_response_round_trip_with_sequence_numbers_per_the_abi() {
    let mut guest = Requester::new(key(), 0);
    let mut psp = Responder::new(key(), 0);
    let mut wire = [0u8; MAX_MESSAGE];
    let mut plain = [0u8; MAX_MESSAGE];
    for round in 0..3u64 {
        let len = guest.seal_request(msg_type::REPORT_REQ, 1, &report_request(), &mut wire).unwrap();
        let (request, n) = psp.open_request(&wire[..len], &mut plain).unwrap();
        assert_eq!(request.seqno, 2 * round + 1, "request seqno = last response + 1");
        assert_eq!(&plain[..n], &report_request());
        let len = psp.seal_response(&request, b"response", &mut wire).unwrap();
        assert_eq!(Header::parse(&wire[..len]).unwrap().seqno, 2 * round + 2, "response seqno = request + 1");
        assert_eq!(Header::parse(&wire[..len]).unwrap().msg_type, msg_type::REPORT_RSP);
        let n = guest.open_response(&wire[..len], &mut plain).unwrap();
        assert_eq!(&plain[..n], b"response");
    }
}

#[test]
fn a_replayed_response_is_rejected_and_wipes_the_key() {
    let mut guest = Requester::new(key(), 0);
    let mut psp = Responder::new(key(), 0);
    let mut wire = [0u8; MAX_MESSAGE];
    let mut plain = [0u8; MAX_MESSAGE];
    let len = guest.seal_request(msg_type::REPORT_REQ, 1, &report_request(), &mut wire).unwrap();
    let (request, _) = psp.open_request(&wire[..len], &mut plain).unwrap();
    let len = psp.seal_response(&request, b"first", &mut wire).unwrap();
    let first_response = wire[..len].to_vec();
    guest.open_response(&first_response, &mut plain).unwrap();

    guest.seal_request(msg_type::REPORT_REQ, 1, &report_request(), &mut wire).unwrap();
    let err = guest.open_response(&first_response, &mut plain).unwrap_err();
    assert_eq!(err, GuestMsgError::Sequence { expected: 4, actual: 2 });
    assert!(guest.is_wiped(), "the VMPCK must be wiped so its IV space is never reused");
    assert_eq!(guest.seal_request(msg_type::REPORT_REQ, 1, &report_request(), &mut wire), Err(GuestMsgError::KeyWiped));
}

#[test]
fn reordered_wrong_type_and_wrong_key_responses_are_rejected() {
    let mut wire = [0u8; MAX_MESSAGE];
    let mut plain = [0u8; MAX_MESSAGE];
    // A response whose seqno skips ahead (reordered).
    let mut guest = Requester::new(key(), 0);
    guest.seal_request(msg_type::REPORT_REQ, 1, &report_request(), &mut wire).unwrap();
    let skipped = Header { seqno: 4, msg_type: msg_type::REPORT_RSP, msg_version: 1, msg_size: 4, vmpck_id: 0 };
    let len = seal(&key(), &skipped, b"late", &mut wire).unwrap();
    assert_eq!(guest.open_response(&wire[..len], &mut plain), Err(GuestMsgError::Sequence { expected: 2, actual: 4 }));

    // The right seqno but a key response to a report request.
    let mut guest = Requester::new(key(), 0);
    guest.seal_request(msg_type::REPORT_REQ, 1, &report_request(), &mut wire).unwrap();
    let wrong = Header { seqno: 2, msg_type: msg_type::KEY_RSP, msg_version: 1, msg_size: 4, vmpck_id: 0 };
    let len = seal(&key(), &wrong, b"key!", &mut wire).unwrap();
    assert!(matches!(guest.open_response(&wire[..len], &mut plain), Err(GuestMsgError::WrongType { .. })));

    // Sealed under another VMPCK.
    let mut guest = Requester::new(key(), 0);
    guest.seal_request(msg_type::REPORT_REQ, 1, &report_request(), &mut wire).unwrap();
    let good = Header { seqno: 2, msg_type: msg_type::REPORT_RSP, msg_version: 1, msg_size: 4, vmpck_id: 0 };
    let len = seal(&Vmpck::new([7; 32]), &good, b"evil", &mut wire).unwrap();
    assert_eq!(guest.open_response(&wire[..len], &mut plain), Err(GuestMsgError::Authentication));
    assert!(guest.is_wiped());
}

#[test]
fn a_second_request_before_the_first_is_answered_is_refused() {
    let mut guest = Requester::new(key(), 0);
    let mut wire = [0u8; MAX_MESSAGE];
    guest.seal_request(msg_type::REPORT_REQ, 1, &report_request(), &mut wire).unwrap();
    assert!(matches!(
        guest.seal_request(msg_type::REPORT_REQ, 1, &report_request(), &mut wire),
        Err(GuestMsgError::Sequence { .. })
    ));
}

#[test]
fn an_all_zero_vmpck_is_never_used() {
    let mut guest = Requester::new(Vmpck::new([0; 32]), 0);
    let mut wire = [0u8; MAX_MESSAGE];
    assert_eq!(guest.seal_request(msg_type::REPORT_REQ, 1, &report_request(), &mut wire), Err(GuestMsgError::KeyWiped));
}

#[test]
fn hostile_headers_never_panic() {
    let mut plain = [0u8; MAX_MESSAGE];
    let mut rng = twi_testkit::TestRng(0x1234_5678_9abc_def0);
    for len in [0, 1, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + 1, 200, MAX_MESSAGE, MAX_MESSAGE + 10] {
        for _ in 0..200 {
            let mut message = vec![0u8; len];
            for b in &mut message {
                *b = rng.next_u64() as u8;
            }
            if len > 0x36 {
                message[0x30] = 1;
                message[0x31] = 1;
                message[0x32] = 0x60;
                message[0x33] = 0;
            }
            assert!(open(&key(), &message, &mut plain).is_err());
        }
    }
}
