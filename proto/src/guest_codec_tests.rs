//! The guest's hand-written codec against the derived one the host uses. Its decoder of the
//! host's messages ([`decode_from_host`] against [`decode`]): the same bytes give the same
//! message or both an error, for every message kind, every byte of them replaced by every
//! value, every truncation, and the corner cases of the derived decoder (repeated and unknown
//! keys, `null` options, defaults, extra array elements, non-shortest integers). Its encoder of
//! the guest's messages ([`encode_from_guest`] against [`encode`]): the same bytes for every
//! message kind, optional field, enum value and integer width, and for random messages.

extern crate std;

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::tests::{DOORBELL_KINDS, PLATFORMS};
use crate::*;

/// Every message the host sends, at small sizes, with every optional field both ways and
/// every enum's variants.
fn host_samples() -> Vec<Message> {
    let mut out: Vec<Message> = Vec::new();
    for (i, freshness) in Freshness::ALL.into_iter().enumerate() {
        let nonce = if freshness.has_handle() { vec![i as u8; MIN_NONCE_LEN] } else { Vec::new() };
        out.push(Challenge { nonce, key_release: i % 2 == 1, freshness }.into());
    }
    for (i, kind) in DOORBELL_KINDS.into_iter().enumerate() {
        let certificates = (i % 2 == 0).then(|| vec![0xCE; 3]);
        out.push(DoorbellResponse { kind, status: 1 << (i * 12), response: vec![i as u8; 5], certificates }.into());
    }
    for (ar, wit) in [(None, None), (Some("ear"), Some("a.b.c")), (Some(""), None), (None, Some("w"))] {
        out.push(
            Credential {
                certificate: vec![0x30, 0x03, 1, 2, 3],
                workload_id: "spiffe://example.org/w".into(),
                attestation_result: ar.map(String::from),
                wit: wit.map(String::from),
            }
            .into(),
        );
    }
    for code in 1..=11u8 {
        let code = minicbor::decode::<ErrorCode>(&[code]).unwrap();
        out.push(ErrorMsg::new(code, "no: é€").into());
    }
    out.push(AttestationResult { ear: "h.p.s".into() }.into());
    let mut enc = vec![0x04];
    enc.extend([7; HPKE_ENC_LEN - 1]);
    out.push(
        KeyRelease {
            certificate: vec![0x30, 0],
            workload_id: "w".into(),
            enc,
            ciphertext: vec![0xC7; KEY_RELEASE_CIPHERTEXT_LEN],
        }
        .into(),
    );
    for id in [0, 23, 24, 255, 256, u16::MAX] {
        out.push(Connected { id }.into());
        out.push(Received { id, data: vec![id as u8; 3] }.into());
    }
    out.push(Received { id: 1, data: Vec::new() }.into());
    for unix_seconds in [0, 1_800_000_000, u64::MAX] {
        out.push(Time { unix_seconds }.into());
    }
    out
}

/// `decode_from_host(bytes)` agrees with the host's `decode`: the same message, or the same
/// error; a message only the guest sends (or a malformed one under its index) is
/// `WrongDirection` to the guest. Returns whether the guest accepted it.
fn agree(bytes: &[u8], what: &dyn core::fmt::Display) -> bool {
    let guest = decode_from_host(bytes);
    let host = decode(bytes);
    match (&guest, &host) {
        (Err(ProtoError::WrongDirection), Ok(m)) => {
            assert!(!is_host_message(m), "{what}: {} refused as the guest's", m.name())
        }
        (Err(ProtoError::WrongDirection), Err(_)) => {}
        _ => assert_eq!(guest, host, "{what}: {bytes:02x?}"),
    }
    guest.is_ok()
}

fn is_host_message(m: &Message) -> bool {
    matches!(
        m,
        Message::Challenge(_)
            | Message::DoorbellResponse(_)
            | Message::Credential(_)
            | Message::Error(_)
            | Message::AttestationResult(_)
            | Message::KeyRelease(_)
            | Message::Connected(_)
            | Message::Received(_)
            | Message::Time(_)
    )
}

#[test]
fn the_guests_decoder_reads_every_host_message_as_the_derived_one() {
    let samples = host_samples();
    let mut kinds: Vec<&str> = samples.iter().map(Message::name).collect();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(kinds.len(), 9, "{kinds:?}");
    for m in &samples {
        let payload = encode(m).unwrap();
        assert_eq!(decode_from_host(&payload).as_ref(), Ok(m), "{}", m.name());
        assert!(agree(&payload, &m.name()));
    }
}

/// Every byte replaced by each of the 256 values, every truncation, and a byte appended: the
/// two decoders agree (and neither panics), and many of the changed messages still decode.
#[test]
fn every_byte_value_and_truncation_decodes_alike() {
    let mut accepted = 0usize;
    let mut tried = 0usize;
    for m in host_samples() {
        let payload = encode(&m).unwrap();
        for pos in 0..payload.len() {
            for value in 0..=255u8 {
                let mut bad = payload.clone();
                bad[pos] = value;
                tried += 1;
                accepted += usize::from(agree(&bad, &format_args!("{} byte {pos} = {value:#04x}", m.name())));
            }
        }
        for len in 0..payload.len() {
            assert!(!agree(&payload[..len], &format_args!("{} cut to {len}", m.name())));
        }
        for extra in [0x00, 0xF6, 0xFF] {
            let mut long = payload.clone();
            long.push(extra);
            assert!(!agree(&long, &format_args!("{} + {extra:#04x}", m.name())));
        }
    }
    // Byte-string and text contents, integers and flags change without breaking the shape.
    assert!(accepted > tried / 20, "only {accepted} of {tried} changed payloads decoded");
}

/// `[index, body]`: message `index` with `body`, raw CBOR bytes (not checked by `encode`).
fn msg(index: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0x82, index];
    out.extend_from_slice(body);
    out
}

/// A case: what it shows, the bytes, the message both decoders read from them (if any).
type Case = (&'static str, Vec<u8>, Option<Message>);

/// The derived decoder's edges in the message's shape: the array, the index, the map keys.
fn shape_cases() -> Vec<Case> {
    let time = || Some(Message::from(Time { unix_seconds: 5 }));
    vec![
        ("extra array elements are ignored", [&[0x84, 19, 0xA1, 0, 5, 0x60][..], &[0xA0]].concat(), time()),
        ("no body", vec![0x81, 19], None),
        ("empty array", vec![0x80], None),
        ("index as a wide integer", [&[0x82, 0x1B, 0, 0, 0, 0, 0, 0, 0, 19][..], &[0xA1, 0, 5]].concat(), time()),
        ("a key as a wide integer", msg(19, &[0xA1, 0x19, 0, 0, 5]), time()),
        ("a repeated key keeps the last value", msg(13, &[0xA2, 0, 1, 0, 2]), Some(Connected { id: 2 }.into())),
        (
            "unknown keys, negative and large, are skipped",
            msg(
                13,
                &[
                    0xA4, 0x20, 0x82, 0xF6, 0xA1, 1, 0x41, b'x', 0, 9, 0x1B, 0, 0, 1, 0, 0, 0, 0, 0, 0x61, b'y', 1,
                    0xF9, 0x3E, 0,
                ],
            ),
            Some(Connected { id: 9 }.into()),
        ),
        ("a key beyond i64", msg(13, &[0xA2, 0, 9, 0x1B, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0]), None),
        ("a text key", msg(13, &[0xA1, 0x62, b'i', b'd', 9]), None),
        ("invalid UTF-8 in a skipped value", msg(13, &[0xA2, 0, 9, 1, 0x62, 0xC3, 0x28]), None),
        ("the body as an array", msg(19, &[0x81, 5]), None),
        ("a guest's message", msg(18, &[0xA0]), None),
    ]
}

/// The derived decoder's edges in the fields' values: missing, null, defaults, enum values,
/// types.
fn value_cases() -> Vec<Case> {
    let nonce = [&[0x58, 32][..], &[1; 32]].concat();
    let challenge = |freshness| Challenge { nonce: vec![1; 32], key_release: false, freshness };
    let credential = |ar: &[u8]| msg(5, &[&[0xA3, 0, 0x41, 0x30, 1, 0x61, b'w', 2][..], ar].concat());
    vec![
        ("a u16 out of range", msg(13, &[0xA1, 0, 0x1A, 0, 1, 0, 0]), None),
        ("a missing required field", msg(16, &[0xA1, 0, 1]), None),
        ("defaults", msg(1, &[&[0xA1, 0][..], &nonce].concat()), Some(challenge(Freshness::PresentNonce).into())),
        (
            "a given freshness",
            msg(1, &[&[0xA2, 0][..], &nonce, &[2, 1]].concat()),
            Some(challenge(Freshness::PresentEpoch).into()),
        ),
        ("an unknown freshness", msg(1, &[&[0xA2, 0][..], &nonce, &[2, 5]].concat()), None),
        (
            "null for an optional field",
            credential(&[0xF6]),
            Some(
                Credential { certificate: vec![0x30], workload_id: "w".into(), attestation_result: None, wit: None }
                    .into(),
            ),
        ),
        ("undefined is not null", credential(&[0xF7]), None),
        ("null as a two-byte simple value", credential(&[0xF8, 22]), None),
        ("null for a required field", msg(9, &[0xA1, 0, 0xF6]), None),
        ("a negative enum value", msg(6, &[0xA2, 0, 0x20, 1, 0x61, b'x']), None),
        ("error code 0", msg(6, &[0xA2, 0, 0, 1, 0x61, b'x']), None),
        ("a flag as an integer", msg(1, &[&[0xA2, 0][..], &nonce, &[1, 1]].concat()), None),
        ("bytes as text", msg(16, &[0xA2, 0, 1, 1, 0x64, b'd', b'a', b't', b'a']), None),
        ("invalid UTF-8", msg(9, &[0xA1, 0, 0x62, 0xC3, 0x28]), None),
    ]
}

/// What the derived decoder does at its edges, which the hand-written one must do too.
#[test]
fn the_derived_decoders_corner_cases_decode_alike() {
    for (what, bytes, expected) in shape_cases().into_iter().chain(value_cases()) {
        assert_eq!(decode_from_host(&bytes).ok(), expected, "{what}");
        agree(&bytes, &what);
    }
}

/// xorshift64: deterministic pseudo-random numbers from `seed`.
fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

/// Random multi-byte changes, truncations and extensions of the host's messages, framed and
/// fed to the guest's reader too: the same results as the derived decoder, never a panic.
#[test]
fn random_changes_decode_alike() {
    let valid: Vec<Vec<u8>> = host_samples().iter().map(|m| encode(m).unwrap()).collect();
    let mut next = xorshift(0x2545_F491_4F6C_DD1Du64);
    let mut reader = MessageReader::from_host();
    for round in 0..20_000 {
        let mut buf = valid[next() as usize % valid.len()].clone();
        for _ in 0..1 + next() % 4 {
            let i = next() as usize % buf.len();
            buf[i] = next() as u8;
        }
        match next() % 3 {
            0 => buf.truncate(next() as usize % (buf.len() + 1)),
            1 => buf.extend((0..next() % 8).map(|_| next() as u8)),
            _ => {}
        }
        agree(&buf, &format_args!("round {round}"));
        let mut framed = vec![0];
        encode_frame(&buf, &mut framed).unwrap();
        let results: Vec<_> = framed.iter().filter_map(|&b| reader.push(b)).collect();
        assert_eq!(results.last(), Some(&decode_from_host(&buf)), "round {round}");
    }
}

/// Every message the guest sends, with every optional field both ways, every enum's variants
/// and integers at each width's edges.
fn guest_samples() -> Vec<Message> {
    let mut out: Vec<Message> = Vec::new();
    let widths = [0u64, 23, 24, 255, 256, 65_535, 65_536, u64::from(u32::MAX)];
    for (i, platform) in PLATFORMS.into_iter().enumerate() {
        let capabilities = widths[i * 2 + 1] as u32;
        out.push(Hello { version: widths[i] as u16, platform, capabilities, runtime: "twi-runtime/0.1".into() }.into());
    }
    for (i, kind) in DOORBELL_KINDS.into_iter().enumerate() {
        out.push(DoorbellRequest { kind, request: vec![i as u8; i * 60] }.into());
    }
    let mut public_key = vec![0x04];
    public_key.extend([9; P384_PUBLIC_KEY_LEN - 1]);
    for (i, platform) in PLATFORMS.into_iter().enumerate() {
        let some = |n: usize| (i % 2 == 1).then(|| vec![n as u8; n]);
        let event_log = match i {
            0 => None,
            1 => Some(Vec::new()),
            _ => Some(
                (0..i)
                    .map(|j| RtmrEvent {
                        rtmr: j as u8,
                        event_type: widths[j + 3] as u32,
                        digest: vec![j as u8; 48],
                        data: vec![0xEE; j * 100],
                    })
                    .collect(),
            ),
        };
        out.push(
            Evidence {
                platform,
                evidence: if i == 3 { Vec::new() } else { vec![1; 300] },
                public_key: public_key.clone(),
                nonce: vec![7; i * 8],
                event_log,
                certificates: (i == 1).then(|| vec![0xCE; 70]),
                target: "https://db.example:8443/rows".into(),
                csr: some(200),
                certificates_sha384: (i == 3).then(|| vec![3; CERT_TABLE_DIGEST_LEN]),
                evidence_sha384: (i == 3).then(|| vec![4; EVIDENCE_DIGEST_LEN]),
            }
            .into(),
        );
    }
    for code in 1..=11u8 {
        out.push(ErrorMsg::new(minicbor::decode(&[code]).unwrap(), "the credential was refused").into());
    }
    out.extend([Done { credential_accepted: true }.into(), Done { credential_accepted: false }.into()]);
    out.push(LogLine::new("").into());
    out.push(LogLine::new(&"é".repeat(MAX_TEXT / 2)).into());
    out.push(CredentialRequest { ear: "h.p.s".into(), public_key: public_key.clone(), proof: vec![0x30; 70] }.into());
    for id in [0, 1, 24, 256, u16::MAX] {
        out.push(Connect { id, target: "db.example:8443".into() }.into());
        out.push(Send { id, data: vec![0x16; usize::from(id % 300)] }.into());
        out.push(Receive { id, max: u32::from(id) % MAX_RELAY_DATA as u32 }.into());
        out.push(Close { id }.into());
    }
    out.push(TimeRequest {}.into());
    for credential_type in CredentialKind::ALL {
        for hint in [None, Some(String::new()), Some("prod".into())] {
            out.push(Initiate { target: "https://db.example/rows".into(), credential_type, hint }.into());
        }
    }
    out
}

#[test]
fn the_guests_encoder_writes_every_guest_message_as_the_derived_one() {
    let samples = guest_samples();
    let mut kinds: Vec<&str> = samples.iter().map(Message::name).collect();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(kinds.len(), 13, "{kinds:?}");
    for m in &samples {
        let derived = encode(m).unwrap();
        assert_eq!(encode_from_guest(m).as_ref(), Ok(&derived), "{m:?}");
        assert_eq!(decode(&derived).as_ref(), Ok(m), "{}", m.name());
    }
    // And it refuses what `encode` refuses.
    let too_long = LogLine { line: "x".repeat(MAX_TEXT + 1) }.into();
    assert_eq!(encode_from_guest(&too_long), Err(ProtoError::FieldTooLong("line")));
    assert_eq!(encode_from_guest(&too_long), encode(&too_long));
}

/// Random guest messages (random lengths, integers, optional fields, events): the same bytes.
#[test]
fn random_guest_messages_encode_alike() {
    let samples = guest_samples();
    let mut next = xorshift(0x9E37_79B9_7F4A_7C15u64);
    for round in 0..2_000 {
        let mut m = samples[next() as usize % samples.len()].clone();
        match &mut m {
            Message::Hello(h) => (h.version, h.capabilities) = (next() as u16, next() as u32),
            Message::Evidence(ev) => {
                ev.nonce = vec![0; next() as usize % (MAX_NONCE_LEN + 1)];
                ev.csr = next().is_multiple_of(2).then(|| vec![1; next() as usize % MAX_CSR]);
                for event in ev.event_log.iter_mut().flatten() {
                    event.event_type = next() as u32;
                    event.rtmr = (next() % 4) as u8;
                }
            }
            Message::Receive(r) => r.max = (next() % (MAX_RELAY_DATA as u64 + 1)) as u32,
            Message::Send(s) => s.data = vec![2; next() as usize % (MAX_RELAY_DATA + 1)],
            Message::Connect(c) => c.id = next() as u16,
            _ => {}
        }
        assert_eq!(encode_from_guest(&m), encode(&m), "round {round}: {}", m.name());
    }
}
