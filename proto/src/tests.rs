//! Message-level tests: round trips through the whole stack, hostile input,
//! and property-style checks over pseudo-random inputs.

extern crate std;

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use minicbor::Encoder;

use crate::*;

/// The bytes of a hex string (test vectors).
pub(crate) fn unhex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

/// xorshift64*: deterministic, dependency-free pseudo-random numbers.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
    /// Random bytes of a random length in `0..=max`.
    fn bytes_upto(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max + 1);
        self.bytes(len)
    }
    fn text(&mut self, max: usize) -> String {
        let chars = ['a', 'Z', '0', ' ', '/', ':', 'é', '€', '𝄞'];
        let mut s = String::new();
        for _ in 0..self.below(max + 1) {
            let c = chars[self.below(chars.len())];
            if s.len() + c.len_utf8() > max {
                break;
            }
            s.push(c);
        }
        s
    }
}

/// Every platform, in wire order.
pub(crate) const PLATFORMS: [Platform; 4] = [Platform::SimSnp, Platform::Snp, Platform::Tdx, Platform::SimTdx];

/// Every doorbell kind, in wire order.
pub(crate) const DOORBELL_KINDS: [DoorbellKind; 6] = [
    DoorbellKind::SnpGuestRequest,
    DoorbellKind::TdxGetQuote,
    DoorbellKind::TdxReport,
    DoorbellKind::TdxRtmrExtend,
    DoorbellKind::SnpExtGuestRequest,
    DoorbellKind::SvsmCall,
];

fn key() -> Vec<u8> {
    let mut k = vec![0x04];
    k.extend((1..=96).map(|i| i as u8));
    k
}

/// One example of every variant, at interesting sizes.
fn samples() -> Vec<Message> {
    vec![
        Hello {
            version: PROTOCOL_VERSION,
            platform: Platform::SimSnp,
            capabilities: CAP_SIM_DOORBELL,
            runtime: "twi-runtime/0.1.0".into(),
        }
        .into(),
        Challenge { nonce: vec![0xA5; 32], key_release: false, freshness: Freshness::PresentNonce }.into(),
        DoorbellRequest { kind: DoorbellKind::SnpGuestRequest, request: vec![0; MAX_DOORBELL_REQUEST] }.into(),
        DoorbellResponse {
            kind: DoorbellKind::TdxGetQuote,
            status: u64::MAX,
            response: vec![0xFF; MAX_DOORBELL_RESPONSE],
            certificates: None,
        }
        .into(),
        Evidence {
            platform: Platform::Tdx,
            evidence: (0..MAX_EVIDENCE).map(|i| i as u8).collect(),
            public_key: key(),
            nonce: vec![7; MAX_NONCE_LEN],
            event_log: Some(
                (0..MAX_EVENTS)
                    .map(|i| RtmrEvent {
                        rtmr: (i % 4) as u8,
                        event_type: event_type::ISSUER_ANCHOR,
                        digest: vec![i as u8; 48],
                        data: vec![0xEE; MAX_EVENT_DATA],
                    })
                    .collect(),
            ),
            certificates: None,
            target: "t".repeat(MAX_ACQUIRE_TARGET),
            csr: None,
            certificates_sha384: None,
            evidence_sha384: None,
        }
        .into(),
        Credential {
            certificate: vec![0x30; MAX_CERTIFICATE],
            workload_id: "spiffe://example.org/workload/abc".into(),
            attestation_result: Some("e".repeat(MAX_ATTESTATION_RESULT)),
            wit: Some("w".repeat(MAX_WIT)),
        }
        .into(),
        ErrorMsg::new(ErrorCode::PolicyRejected, "measurement not allowed").into(),
        Done { credential_accepted: true }.into(),
        LogLine::new("verifying evidence…").into(),
        AttestationResult { ear: "e".repeat(MAX_ATTESTATION_RESULT) }.into(),
        CredentialRequest {
            ear: "e".repeat(MAX_ATTESTATION_RESULT),
            public_key: evidence_key(),
            proof: vec![0x30; MAX_PROOF],
        }
        .into(),
        KeyRelease {
            certificate: vec![0x30; MAX_CERTIFICATE],
            workload_id: "w".repeat(MAX_WORKLOAD_ID),
            enc: evidence_key(),
            ciphertext: vec![0xC7; KEY_RELEASE_CIPHERTEXT_LEN],
        }
        .into(),
        Connect { id: 1, target: "h".repeat(MAX_TARGET) }.into(),
        Connected { id: 1 }.into(),
        Send { id: 1, data: vec![0x16; MAX_RELAY_DATA] }.into(),
        Receive { id: 1, max: MAX_RELAY_DATA as u32 }.into(),
        Received { id: 1, data: vec![0x17; MAX_RELAY_DATA] }.into(),
        Close { id: 1 }.into(),
        TimeRequest {}.into(),
        Time { unix_seconds: u64::MAX }.into(),
    ]
}

fn read_all(bytes: &[u8]) -> Vec<Result<Message, ProtoError>> {
    let mut reader = MessageReader::new();
    bytes.iter().filter_map(|&b| reader.push(b)).collect()
}

fn wire(msg: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    write_message(msg, &mut out).unwrap();
    out
}

/// Raw CBOR for `[index, body]`, bypassing `encode`'s checks.
fn raw(index: u64, body: impl FnOnce(&mut Encoder<&mut Vec<u8>>)) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut e = Encoder::new(&mut buf);
    e.array(2).unwrap().u64(index).unwrap();
    body(&mut e);
    buf
}

/// The SEV-SNP extended guest request's certificate table, at its limit, in both messages that
/// carry it.
#[test]
fn certificate_tables_round_trip() {
    let msgs: [Message; 2] = [
        DoorbellResponse {
            kind: DoorbellKind::SnpExtGuestRequest,
            status: 0,
            response: vec![0x11; 1184 + 0x60],
            certificates: Some(vec![0x30; MAX_CERT_TABLE]),
        }
        .into(),
        Evidence {
            platform: Platform::Snp,
            evidence: vec![0x5A; 1184],
            public_key: key(),
            nonce: vec![7; MAX_NONCE_LEN],
            event_log: None,
            certificates: Some(vec![0x30; MAX_CERT_TABLE]),
            target: "t".repeat(MAX_ACQUIRE_TARGET),
            csr: Some(vec![0x30; MAX_CSR]),
            certificates_sha384: None,
            evidence_sha384: None,
        }
        .into(),
    ];
    for m in msgs {
        let payload = encode(&m).unwrap();
        assert!(payload.len() <= MAX_PAYLOAD);
        assert_eq!(decode(&payload), Ok(m));
    }
}

/// The certificate table's name in the Evidence (key 8): a SHA-384 round-trips, and whatever
/// a hostile peer puts under the key is an error, never a panic or an allocation beyond the
/// payload: a length past the end, the wrong type, the wrong length.
#[test]
fn certificate_table_digests_decode_bounded() {
    let named = Evidence {
        platform: Platform::SimSnp,
        evidence: vec![0x5A; 1184],
        public_key: key(),
        nonce: vec![7; 32],
        event_log: None,
        certificates: None,
        target: "t".into(),
        csr: None,
        certificates_sha384: Some((0..CERT_TABLE_DIGEST_LEN as u8).collect()),
        evidence_sha384: None,
    };
    let payload = encode(&named.clone().into()).unwrap();
    assert_eq!(decode(&payload), Ok(named.into()));
    let evidence = |digest: &dyn Fn(&mut Encoder<&mut Vec<u8>>)| {
        raw(4, |e| {
            e.map(6).unwrap();
            e.u8(0).unwrap().u8(0).unwrap();
            e.u8(1).unwrap().bytes(&[0x5A; 1184]).unwrap();
            e.u8(2).unwrap().bytes(&key()).unwrap();
            e.u8(3).unwrap().bytes(&[7; 32]).unwrap();
            e.u8(6).unwrap().str("t").unwrap();
            e.u8(8).unwrap();
            digest(e);
        })
    };
    assert!(matches!(
        decode(&evidence(&|e| {
            e.bytes(&[1; 48]).unwrap();
        })),
        Ok(Message::Evidence(_))
    ));
    /// Writes the digest field's value (one hostile shape per case).
    type Writes<'a> = &'a dyn Fn(&mut Encoder<&mut Vec<u8>>);
    let cases: [(Writes, ProtoError); 4] = [
        (
            &|e| {
                e.bytes(&[1; 47]).unwrap();
            },
            ProtoError::InvalidField("certificates_sha384"),
        ),
        (
            &|e| {
                e.bytes(&[]).unwrap();
            },
            ProtoError::InvalidField("certificates_sha384"),
        ),
        (
            &|e| {
                e.str("not a digest").unwrap();
            },
            ProtoError::Malformed,
        ),
        // A byte string that claims 4 GiB: refused by the shape check before any allocation.
        (&|e| e.writer_mut().extend_from_slice(&[0x5A, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2]), ProtoError::Malformed),
    ];
    for (digest, expected) in cases {
        assert_eq!(decode(&evidence(digest)), Err(expected));
    }
}

/// The quote's name in the Evidence (key 9, in place of the quote at key 1): a SHA-384
/// round-trips with an empty quote, and whatever a hostile peer puts under the key is an error,
/// never a panic or an allocation beyond the payload: beside a quote, the wrong length, the
/// wrong type, a length past the end.
#[test]
fn quote_digests_decode_bounded() {
    let named = Evidence {
        platform: Platform::SimTdx,
        evidence: Vec::new(),
        public_key: key(),
        nonce: vec![7; 32],
        event_log: None,
        certificates: None,
        target: "t".into(),
        csr: None,
        certificates_sha384: None,
        evidence_sha384: Some((0..EVIDENCE_DIGEST_LEN as u8).collect()),
    };
    let payload = encode(&named.clone().into()).unwrap();
    assert_eq!(decode(&payload), Ok(named.into()));
    let evidence = |quote: &[u8], digest: &dyn Fn(&mut Encoder<&mut Vec<u8>>)| {
        raw(4, |e| {
            e.map(6).unwrap();
            e.u8(0).unwrap().u8(3).unwrap();
            e.u8(1).unwrap().bytes(quote).unwrap();
            e.u8(2).unwrap().bytes(&key()).unwrap();
            e.u8(3).unwrap().bytes(&[7; 32]).unwrap();
            e.u8(6).unwrap().str("t").unwrap();
            e.u8(9).unwrap();
            digest(e);
        })
    };
    let sha384 = |e: &mut Encoder<&mut Vec<u8>>| {
        e.bytes(&[1; EVIDENCE_DIGEST_LEN]).unwrap();
    };
    assert!(matches!(decode(&evidence(&[], &sha384)), Ok(Message::Evidence(_))));
    let invalid = ProtoError::InvalidField("evidence_sha384");
    // Never beside a quote: the receiver would not know which one the guest checked.
    assert_eq!(decode(&evidence(&[0x5A; 100], &sha384)), Err(invalid));
    /// Writes the digest field's value (one hostile shape per case).
    type Writes<'a> = &'a dyn Fn(&mut Encoder<&mut Vec<u8>>);
    let cases: [(Writes, ProtoError); 5] = [
        (
            &|e| {
                e.bytes(&[1; EVIDENCE_DIGEST_LEN - 1]).unwrap();
            },
            invalid,
        ),
        (
            &|e| {
                e.bytes(&[1; EVIDENCE_DIGEST_LEN + 1]).unwrap();
            },
            invalid,
        ),
        (
            &|e| {
                e.bytes(&[]).unwrap();
            },
            invalid,
        ),
        (
            &|e| {
                e.u64(48).unwrap();
            },
            ProtoError::Malformed,
        ),
        // A byte string that claims 4 GiB: refused by the shape check before any allocation.
        (&|e| e.writer_mut().extend_from_slice(&[0x5A, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2]), ProtoError::Malformed),
    ];
    for (digest, expected) in cases {
        assert_eq!(decode(&evidence(&[], digest)), Err(expected));
    }
    // Every truncation of a named evidence is an error, never a panic.
    for len in 0..payload.len() {
        assert!(decode(&payload[..len]).is_err(), "{len}");
    }
}

#[test]
fn every_variant_round_trips() {
    let msgs = samples();
    let mut stream = vec![0, 0]; // leading empty frames are ignored
    for (i, m) in msgs.iter().enumerate() {
        // The variant index on the wire is what `is_message_index` expects.
        let payload = encode(m).unwrap();
        assert!(payload.len() <= MAX_PAYLOAD);
        let mut d = minicbor::Decoder::new(&payload);
        assert_eq!(d.array().unwrap(), Some(2), "{}", m.name());
        assert_eq!(d.u64().unwrap(), i as u64, "{}", m.name());
        assert_eq!(decode(&payload).as_ref(), Ok(m));
        stream.extend(wire(m));
        stream.push(0);
    }
    let got: Vec<Message> = read_all(&stream).into_iter().map(Result::unwrap).collect();
    assert_eq!(got, msgs);
    let names: Vec<&str> = got.iter().map(Message::name).collect();
    assert_eq!(
        names,
        [
            "Hello",
            "Challenge",
            "DoorbellRequest",
            "DoorbellResponse",
            "Evidence",
            "Credential",
            "Error",
            "Done",
            "Log",
            "AttestationResult",
            "CredentialRequest",
            "KeyRelease",
            "Connect",
            "Connected",
            "Send",
            "Receive",
            "Received",
            "Close",
            "TimeRequest",
            "Time"
        ]
    );
}

/// The guest's reader decodes every message the host sends (the `Message` variants documented
/// "Host → guest" or "Either direction") exactly as the full decoder does, and refuses every
/// message only the guest sends, before decoding its body; the guest's writer encodes every
/// message the guest sends as the full encoder does, and refuses the host's.
#[test]
fn the_guest_reads_what_the_host_sends_and_writes_what_it_sends() {
    let from_host = [
        "Challenge",
        "DoorbellResponse",
        "Credential",
        "Error",
        "AttestationResult",
        "KeyRelease",
        "Connected",
        "Received",
        "Time",
    ];
    let mut seen = Vec::new();
    for m in samples() {
        let payload = encode(&m).unwrap();
        if from_host.contains(&m.name()) {
            assert_eq!(decode_from_host(&payload).as_ref(), Ok(&m), "{}", m.name());
            seen.push(m.name());
        } else {
            assert_eq!(decode_from_host(&payload), Err(ProtoError::WrongDirection), "{}", m.name());
        }
        let mut reader = MessageReader::from_host();
        let mut stream = wire(&m);
        stream.push(0);
        let read: Vec<_> = stream.iter().filter_map(|&b| reader.push(b)).collect();
        assert_eq!(read, [decode_from_host(&payload)], "{}", m.name());
    }
    assert_eq!(seen, from_host);
    for m in samples() {
        let sent = encode_from_guest(&m);
        if from_host.contains(&m.name()) && m.name() != "Error" {
            assert_eq!(sent, Err(ProtoError::WrongDirection), "{}", m.name());
        } else {
            assert_eq!(sent, encode(&m), "{}", m.name());
            let mut framed = Vec::new();
            write_message_from_guest(&m, &mut framed).unwrap();
            assert_eq!(framed, wire(&m), "{}", m.name());
        }
    }
    assert_eq!(decode_from_host(&[0x82, 0x18, 0x63, 0x80]), Err(ProtoError::UnknownMessage));
    assert_eq!(decode_from_host(b"junk"), Err(ProtoError::Malformed));
}

#[test]
fn enum_wire_values_are_stable() {
    let platform = |p| minicbor::to_vec(p).unwrap();
    assert_eq!(platform(Platform::SimSnp), [0]);
    assert_eq!(platform(Platform::Snp), [1]);
    assert_eq!(platform(Platform::Tdx), [2]);
    assert_eq!(platform(Platform::SimTdx), [3]);
    assert_eq!(minicbor::to_vec(DoorbellKind::SnpGuestRequest).unwrap(), [0]);
    assert_eq!(minicbor::to_vec(DoorbellKind::TdxGetQuote).unwrap(), [1]);
    assert_eq!(minicbor::to_vec(DoorbellKind::TdxReport).unwrap(), [2]);
    assert_eq!(minicbor::to_vec(DoorbellKind::TdxRtmrExtend).unwrap(), [3]);
    assert_eq!(minicbor::to_vec(ErrorCode::Malformed).unwrap(), [1]);
    assert_eq!(minicbor::to_vec(ErrorCode::CredentialRejected).unwrap(), [8]);
    assert_eq!(ErrorCode::DoorbellFailed as u8, 7);
    // The discriminants are the wire values (the guest's encoder writes them).
    let wire = |bytes: Vec<u8>| bytes[0];
    PLATFORMS.into_iter().for_each(|p| assert_eq!(wire(minicbor::to_vec(p).unwrap()), p as u8, "{p:?}"));
    DOORBELL_KINDS.into_iter().for_each(|k| assert_eq!(wire(minicbor::to_vec(k).unwrap()), k as u8, "{k:?}"));
    CredentialKind::ALL.into_iter().for_each(|k| assert_eq!(wire(minicbor::to_vec(k).unwrap()), k as u8, "{k:?}"));
    for code in 1..=11u8 {
        assert_eq!(minicbor::decode::<ErrorCode>(&[code]).unwrap() as u8, code);
    }
    // A complete message, byte for byte: [7, {0: true}].
    let done = Message::Done(Done { credential_accepted: true });
    assert_eq!(encode(&done).unwrap(), [0x82, 0x07, 0xA1, 0x00, 0xF5]);
}

#[test]
fn truncated_frame_is_an_error_and_next_frame_decodes() {
    let msg = &samples()[4];
    let full = wire(msg);
    let mut stream = full[..full.len() / 3].to_vec();
    stream.push(0);
    stream.extend(&full);
    let got = read_all(&stream);
    assert_eq!(got.len(), 2);
    assert!(matches!(got[0], Err(ProtoError::Frame(_))));
    assert_eq!(got[1].as_ref(), Ok(msg));
}

#[test]
fn oversized_frame_reported_once() {
    let mut stream = vec![0x42; MAX_ENCODED_FRAME + 1];
    stream.push(0);
    let msg = &samples()[0];
    stream.extend(wire(msg));
    let got = read_all(&stream);
    assert_eq!(got, vec![Err(ProtoError::Frame(FrameError::Oversized)), Ok(msg.clone())]);
}

#[test]
fn garbage_then_valid_frame() {
    let msg = &samples()[1];
    let mut stream = vec![0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0xFF, 0x13];
    stream.extend(wire(msg)); // the garbage glues onto this frame's start…
    stream.extend(wire(msg)); // …so only the second copy survives
    let got = read_all(&stream);
    assert_eq!(got.len(), 2);
    assert!(got[0].is_err());
    assert_eq!(got[1].as_ref(), Ok(msg));
}

#[test]
fn single_bit_flips_never_yield_a_message() {
    let tail = samples()[7].clone();
    for msg in samples() {
        let frame = wire(&msg);
        let stride = if frame.len() > 2000 { 97 } else { 1 };
        for byte in (0..frame.len()).step_by(stride) {
            for bit in 0..8 {
                let mut bad = frame.clone();
                bad[byte] ^= 1 << bit;
                // Terminate whatever is left and append a good frame to show resync.
                bad.push(0);
                bad.extend(wire(&tail));
                let got = read_all(&bad);
                let (last, rest) = got.split_last().unwrap();
                assert_eq!(last.as_ref(), Ok(&tail), "{} byte {byte} bit {bit}", msg.name());
                for r in rest {
                    assert!(
                        matches!(r, Err(ProtoError::Frame(FrameError::Checksum | FrameError::Malformed))),
                        "{} byte {byte} bit {bit}: {r:?}",
                        msg.name()
                    );
                }
            }
        }
    }
}

#[test]
fn unknown_message_index() {
    for index in [21, 100, u64::MAX] {
        let buf = raw(index, |e| {
            e.map(0).unwrap();
        });
        assert_eq!(decode(&buf), Err(ProtoError::UnknownMessage));
    }
    assert_eq!(ProtoError::UnknownMessage.code(), ErrorCode::UnexpectedMessage);
}

#[test]
fn wrong_types_and_shapes_are_malformed() {
    let hello = |version: &dyn Fn(&mut Encoder<&mut Vec<u8>>)| {
        raw(0, |e| {
            e.map(4).unwrap().u8(0).unwrap();
            version(e);
            e.u8(1).unwrap().u8(0).unwrap();
            e.u8(2).unwrap().u32(0).unwrap();
            e.u8(3).unwrap().str("rt").unwrap();
        })
    };
    // Sanity: the well-typed version decodes.
    assert!(
        decode(&hello(&|e| {
            e.u16(1).unwrap();
        }))
        .is_ok()
    );
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "version as text",
            hello(&|e| {
                e.str("1").unwrap();
            }),
        ),
        (
            "version out of u16 range",
            hello(&|e| {
                e.u32(70_000).unwrap();
            }),
        ),
        (
            "negative version",
            hello(&|e| {
                e.i8(-1).unwrap();
            }),
        ),
        (
            "missing version",
            raw(0, |e| {
                e.map(1).unwrap().u8(3).unwrap().str("rt").unwrap();
            }),
        ),
        (
            "unknown platform",
            raw(4, |e| {
                e.map(4).unwrap().u8(0).unwrap().u8(9).unwrap();
                e.u8(1).unwrap().bytes(b"ev").unwrap();
                e.u8(2).unwrap().bytes(&key()).unwrap();
                e.u8(3).unwrap().bytes(&[0; 16]).unwrap();
            }),
        ),
        (
            "nonce as text",
            raw(1, |e| {
                e.map(1).unwrap().u8(0).unwrap().str("0123456789abcdef").unwrap();
            }),
        ),
        (
            "body not a map",
            raw(7, |e| {
                e.bool(true).unwrap();
            }),
        ),
        ("index as text", {
            let mut b = Vec::new();
            Encoder::new(&mut b).array(2).unwrap().str("0").unwrap();
            b
        }),
        ("not an array", vec![0x07]),
        ("empty", vec![]),
        ("truncated", vec![0x82, 0x07, 0xA1, 0x00]),
        ("trailing byte", vec![0x82, 0x07, 0xA1, 0x00, 0xF5, 0x00]),
        ("indefinite array", vec![0x9F, 0x07, 0xA1, 0x00, 0xF5, 0xFF]),
        ("indefinite map", vec![0x82, 0x07, 0xBF, 0x00, 0xF5, 0xFF]),
        ("tagged", vec![0xC0, 0x82, 0x07, 0xA1, 0x00, 0xF5]),
        ("reserved info", vec![0x82, 0x07, 0xA1, 0x00, 0xFC]),
        ("huge byte string length", vec![0x82, 0x01, 0xA1, 0x00, 0x5B, 0x7F, 0, 0, 0, 0, 0, 0, 0]),
        ("huge map length", vec![0x82, 0x01, 0xBB, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
        (
            "invalid utf-8",
            raw(8, |e| {
                e.map(1).unwrap().u8(0).unwrap();
                e.writer_mut().extend([0x62, 0xC3, 0x28]);
            }),
        ),
    ];
    for (what, buf) in cases {
        assert_eq!(decode(&buf), Err(ProtoError::Malformed), "{what}");
    }
    assert_eq!(decode(&vec![0; MAX_PAYLOAD + 1]), Err(ProtoError::TooLarge));
}

#[test]
fn unknown_map_keys_are_skipped() {
    // Forward compatibility: a newer peer may add fields.
    let buf = raw(7, |e| {
        e.map(3).unwrap();
        e.u8(0).unwrap().bool(false).unwrap();
        e.u8(9).unwrap().array(2).unwrap().str("x").unwrap().map(0).unwrap();
        e.u8(10).unwrap().bytes(&[1, 2, 3]).unwrap();
    });
    assert_eq!(decode(&buf), Ok(Message::Done(Done { credential_accepted: false })));
}

fn event(rtmr: u8) -> RtmrEvent {
    RtmrEvent { rtmr, event_type: event_type::LAUNCH_MANIFEST, digest: vec![1; 48], data: vec![2; 16] }
}

#[test]
fn field_limits_on_both_sides() {
    let mut evidence = Evidence {
        platform: Platform::Snp,
        evidence: vec![1; 100],
        public_key: key(),
        nonce: vec![2; 32],
        event_log: None,
        certificates: None,
        target: "https://rp.example/".into(),
        csr: None,
        certificates_sha384: None,
        evidence_sha384: None,
    };
    let cases: Vec<(Message, ProtoError)> = vec![
        (
            Hello { version: 1, platform: Platform::Snp, capabilities: 0, runtime: "r".repeat(MAX_RUNTIME_LEN + 1) }
                .into(),
            ProtoError::FieldTooLong("runtime"),
        ),
        (
            Challenge { nonce: vec![0; 15], key_release: false, freshness: Freshness::PresentNonce }.into(),
            ProtoError::InvalidField("nonce"),
        ),
        (
            Challenge { nonce: vec![0; 65], key_release: true, freshness: Freshness::PresentNonce }.into(),
            ProtoError::InvalidField("nonce"),
        ),
        (
            DoorbellRequest { kind: DoorbellKind::SnpGuestRequest, request: vec![0; MAX_DOORBELL_REQUEST + 1] }.into(),
            ProtoError::FieldTooLong("request"),
        ),
        (
            DoorbellResponse {
                kind: DoorbellKind::SnpGuestRequest,
                status: 0,
                response: vec![0; MAX_DOORBELL_RESPONSE + 1],
                certificates: None,
            }
            .into(),
            ProtoError::FieldTooLong("response"),
        ),
        (
            DoorbellResponse {
                kind: DoorbellKind::SnpExtGuestRequest,
                status: 0,
                response: vec![],
                certificates: Some(vec![0; MAX_CERT_TABLE + 1]),
            }
            .into(),
            ProtoError::FieldTooLong("certificates"),
        ),
        (
            Evidence { certificates: Some(vec![0; MAX_CERT_TABLE + 1]), ..evidence.clone() }.into(),
            ProtoError::FieldTooLong("certificates"),
        ),
        (
            Evidence { evidence: vec![0; MAX_EVIDENCE + 1], ..evidence.clone() }.into(),
            ProtoError::FieldTooLong("evidence"),
        ),
        (
            Evidence { public_key: key()[..96].to_vec(), ..evidence.clone() }.into(),
            ProtoError::InvalidField("public_key"),
        ),
        (Evidence { nonce: vec![0; MAX_NONCE_LEN + 1], ..evidence.clone() }.into(), ProtoError::FieldTooLong("nonce")),
        (Evidence { csr: Some(vec![0x30; MAX_CSR + 1]), ..evidence.clone() }.into(), ProtoError::FieldTooLong("csr")),
        // The certificate table's name is a SHA-384, never beside the table itself.
        (
            Evidence { certificates_sha384: Some(vec![0; CERT_TABLE_DIGEST_LEN - 1]), ..evidence.clone() }.into(),
            ProtoError::InvalidField("certificates_sha384"),
        ),
        (
            Evidence { certificates_sha384: Some(vec![0; CERT_TABLE_DIGEST_LEN + 1]), ..evidence.clone() }.into(),
            ProtoError::InvalidField("certificates_sha384"),
        ),
        (
            Evidence {
                certificates: Some(vec![0x30; 100]),
                certificates_sha384: Some(vec![0; CERT_TABLE_DIGEST_LEN]),
                evidence_sha384: None,
                ..evidence.clone()
            }
            .into(),
            ProtoError::InvalidField("certificates_sha384"),
        ),
        // The quote's name is a SHA-384 in place of the quote, never beside it.
        (
            Evidence {
                evidence: Vec::new(),
                evidence_sha384: Some(vec![0; EVIDENCE_DIGEST_LEN - 1]),
                ..evidence.clone()
            }
            .into(),
            ProtoError::InvalidField("evidence_sha384"),
        ),
        (
            Evidence { evidence_sha384: Some(vec![0; EVIDENCE_DIGEST_LEN]), ..evidence.clone() }.into(),
            ProtoError::InvalidField("evidence_sha384"),
        ),
        (
            Evidence { target: "t".repeat(MAX_ACQUIRE_TARGET + 1), ..evidence.clone() }.into(),
            ProtoError::FieldTooLong("target"),
        ),
        (
            Challenge { nonce: vec![1; 32], key_release: false, freshness: Freshness::AbsentNone }.into(),
            ProtoError::FieldTooLong("nonce"),
        ),
        (
            Initiate { target: "t".repeat(MAX_ACQUIRE_TARGET + 1), credential_type: CredentialKind::X509, hint: None }
                .into(),
            ProtoError::FieldTooLong("target"),
        ),
        (
            Evidence { event_log: Some(vec![event(0); MAX_EVENTS + 1]), ..evidence.clone() }.into(),
            ProtoError::FieldTooLong("event_log"),
        ),
        (
            Evidence {
                event_log: Some(vec![RtmrEvent { data: vec![0; MAX_EVENT_DATA + 1], ..event(0) }]),
                ..evidence.clone()
            }
            .into(),
            ProtoError::FieldTooLong("event data"),
        ),
        (
            Evidence { event_log: Some(vec![event(4)]), ..evidence.clone() }.into(),
            ProtoError::InvalidField("event_log"),
        ),
        (
            Evidence { event_log: Some(vec![RtmrEvent { digest: vec![0; 47], ..event(0) }]), ..evidence.clone() }
                .into(),
            ProtoError::InvalidField("event_log"),
        ),
        (
            Credential {
                certificate: vec![0; MAX_CERTIFICATE + 1],
                workload_id: String::new(),
                attestation_result: None,
                wit: None,
            }
            .into(),
            ProtoError::FieldTooLong("certificate"),
        ),
        (
            Credential {
                certificate: vec![],
                workload_id: "w".repeat(MAX_WORKLOAD_ID + 1),
                attestation_result: None,
                wit: None,
            }
            .into(),
            ProtoError::FieldTooLong("workload_id"),
        ),
        (
            Credential {
                certificate: vec![],
                workload_id: String::new(),
                attestation_result: Some("e".repeat(MAX_ATTESTATION_RESULT + 1)),
                wit: None,
            }
            .into(),
            ProtoError::FieldTooLong("attestation_result"),
        ),
        (AttestationResult { ear: "e".repeat(MAX_ATTESTATION_RESULT + 1) }.into(), ProtoError::FieldTooLong("ear")),
        (
            CredentialRequest { ear: String::new(), public_key: evidence_key(), proof: vec![0; MAX_PROOF + 1] }.into(),
            ProtoError::FieldTooLong("proof"),
        ),
        (
            CredentialRequest { ear: String::new(), public_key: vec![0x04; 96], proof: vec![] }.into(),
            ProtoError::InvalidField("public_key"),
        ),
        (
            ErrorMsg { code: ErrorCode::Internal, message: "m".repeat(MAX_TEXT + 1) }.into(),
            ProtoError::FieldTooLong("message"),
        ),
        (LogLine { line: "l".repeat(MAX_TEXT + 1) }.into(), ProtoError::FieldTooLong("line")),
        (
            KeyRelease { certificate: vec![0; MAX_CERTIFICATE + 1], ..key_release() }.into(),
            ProtoError::FieldTooLong("certificate"),
        ),
        (Connect { id: 0, target: "h".repeat(MAX_TARGET + 1) }.into(), ProtoError::FieldTooLong("target")),
        (Send { id: 0, data: vec![0; MAX_RELAY_DATA + 1] }.into(), ProtoError::FieldTooLong("data")),
        (Receive { id: 0, max: MAX_RELAY_DATA as u32 + 1 }.into(), ProtoError::FieldTooLong("max")),
        (Received { id: 0, data: vec![0; MAX_RELAY_DATA + 1] }.into(), ProtoError::FieldTooLong("data")),
        (
            KeyRelease { workload_id: "w".repeat(MAX_WORKLOAD_ID + 1), ..key_release() }.into(),
            ProtoError::FieldTooLong("workload_id"),
        ),
        (KeyRelease { enc: evidence_key()[..96].to_vec(), ..key_release() }.into(), ProtoError::InvalidField("enc")),
        (KeyRelease { enc: vec![0x02; HPKE_ENC_LEN], ..key_release() }.into(), ProtoError::InvalidField("enc")),
        (
            KeyRelease { ciphertext: vec![0; KEY_RELEASE_CIPHERTEXT_LEN - 1], ..key_release() }.into(),
            ProtoError::InvalidField("ciphertext"),
        ),
        (
            KeyRelease { ciphertext: vec![0; KEY_RELEASE_CIPHERTEXT_LEN + 1], ..key_release() }.into(),
            ProtoError::InvalidField("ciphertext"),
        ),
    ];
    evidence.public_key[0] = 0x02; // compressed-point prefix
    let cases = cases.into_iter().chain([(Message::from(evidence), ProtoError::InvalidField("public_key"))]);
    for (msg, err) in cases {
        // The sender refuses…
        assert_eq!(encode(&msg), Err(err), "encode {}", msg.name());
        assert_eq!(write_message(&msg, &mut Vec::new()), Err(err));
        // …and so does the receiver, if a hostile peer skips the check.
        let payload = minicbor::to_vec(&msg).unwrap();
        assert_eq!(decode(&payload), Err(err), "decode {}", msg.name());
        let mut framed = Vec::new();
        encode_frame(&payload, &mut framed).unwrap();
        assert_eq!(read_all(&framed), vec![Err(err)]);
        assert_eq!(err.code(), ErrorCode::Malformed);
    }
}

#[test]
fn constructors_truncate_on_char_boundary() {
    let long = alloc::format!("a{}", "é".repeat(200)); // 401 bytes
    let e = ErrorMsg::new(ErrorCode::Internal, &long);
    assert_eq!(e.message.len(), MAX_TEXT - 1);
    assert!(long.starts_with(&e.message));
    assert_eq!(ErrorMsg::new(ErrorCode::Internal, "short").message, "short");
    assert_eq!(LogLine::new(&"€".repeat(100)).line.len(), 255);
    assert!(encode(&e.into()).is_ok());
}

#[test]
fn errors_display() {
    use alloc::string::ToString;
    assert_eq!(ProtoError::Frame(FrameError::Checksum).to_string(), "bad frame: frame checksum mismatch");
    assert_eq!(ProtoError::FieldTooLong("nonce").to_string(), "field `nonce` too long");
    assert_eq!(FrameError::Oversized.to_string(), FrameError::Oversized.as_str());
}

fn random_message(rng: &mut Rng) -> Message {
    let platform = [Platform::SimSnp, Platform::Snp, Platform::Tdx, Platform::SimTdx][rng.below(4)];
    let kind = [
        DoorbellKind::SnpGuestRequest,
        DoorbellKind::TdxGetQuote,
        DoorbellKind::TdxReport,
        DoorbellKind::TdxRtmrExtend,
        DoorbellKind::SnpExtGuestRequest,
    ][rng.below(5)];
    let nonce_len = MIN_NONCE_LEN + rng.below(MAX_NONCE_LEN - MIN_NONCE_LEN + 1);
    // Mostly small fields, sometimes up to the limit.
    let mut len = |max: usize| if rng.below(8) == 0 { max } else { max.min(64) };
    let (req, resp, ev, cert, table) = (
        len(MAX_DOORBELL_REQUEST),
        len(MAX_DOORBELL_RESPONSE),
        len(MAX_EVIDENCE),
        len(MAX_CERTIFICATE),
        len(MAX_CERT_TABLE),
    );
    match rng.below(12) {
        0 => Hello {
            version: rng.next() as u16,
            platform,
            capabilities: rng.next() as u32,
            runtime: rng.text(MAX_RUNTIME_LEN),
        }
        .into(),
        1 => Challenge {
            nonce: rng.bytes(nonce_len),
            key_release: rng.below(2) == 0,
            freshness: Freshness::PresentNonce,
        }
        .into(),
        2 => DoorbellRequest { kind, request: rng.bytes_upto(req) }.into(),
        3 => DoorbellResponse {
            kind,
            status: rng.next(),
            response: rng.bytes_upto(resp),
            certificates: (rng.below(2) == 0).then(|| rng.bytes_upto(table)),
        }
        .into(),
        4 => {
            let mut public_key = rng.bytes(P384_PUBLIC_KEY_LEN);
            public_key[0] = 0x04;
            let event_log = (rng.below(2) == 0).then(|| {
                (0..rng.below(MAX_EVENTS + 1))
                    .map(|i| RtmrEvent {
                        rtmr: (i % 4) as u8,
                        event_type: rng.next() as u32,
                        digest: rng.bytes(48),
                        data: rng.bytes_upto(MAX_EVENT_DATA),
                    })
                    .collect()
            });
            // A certificate table only without a large quote, as on hardware (SNP reports are
            // 1184 bytes), so that the message fits a frame.
            let evidence = rng.bytes_upto(ev);
            let certificates = (evidence.len() <= 2048 && rng.below(2) == 0).then(|| rng.bytes_upto(table));
            // Or the table's name: a SHA-384 in its place.
            let certificates_sha384 =
                (certificates.is_none() && rng.below(2) == 0).then(|| rng.bytes(CERT_TABLE_DIGEST_LEN));
            // A quote named by its SHA-384 in place of the quote.
            let (evidence, evidence_sha384) =
                if rng.below(4) == 0 { (Vec::new(), Some(rng.bytes(EVIDENCE_DIGEST_LEN))) } else { (evidence, None) };
            let (target, csr) = (rng.text(MAX_ACQUIRE_TARGET), (rng.below(2) == 0).then(|| rng.bytes_upto(MAX_CSR)));
            Evidence {
                platform,
                evidence,
                public_key,
                nonce: rng.bytes(nonce_len),
                event_log,
                certificates,
                target,
                csr,
                certificates_sha384,
                evidence_sha384,
            }
            .into()
        }
        5 => Credential {
            certificate: rng.bytes_upto(cert),
            workload_id: rng.text(MAX_WORKLOAD_ID),
            attestation_result: (rng.below(2) == 0).then(|| rng.text(MAX_ATTESTATION_RESULT)),
            wit: (rng.below(2) == 0).then(|| rng.text(MAX_WIT)),
        }
        .into(),
        9 => AttestationResult { ear: rng.text(MAX_ATTESTATION_RESULT) }.into(),
        10 => {
            let mut public_key = rng.bytes(P384_PUBLIC_KEY_LEN);
            public_key[0] = 0x04;
            CredentialRequest { ear: rng.text(MAX_ATTESTATION_RESULT), public_key, proof: rng.bytes_upto(MAX_PROOF) }
                .into()
        }
        11 => {
            let mut enc = rng.bytes(HPKE_ENC_LEN);
            enc[0] = 0x04;
            KeyRelease {
                certificate: rng.bytes_upto(cert),
                workload_id: rng.text(MAX_WORKLOAD_ID),
                enc,
                ciphertext: rng.bytes(KEY_RELEASE_CIPHERTEXT_LEN),
            }
            .into()
        }
        6 => ErrorMsg { code: ErrorCode::Malformed, message: rng.text(MAX_TEXT) }.into(),
        7 => Done { credential_accepted: rng.next() & 1 == 1 }.into(),
        _ => LogLine { line: rng.text(MAX_TEXT) }.into(),
    }
}

#[test]
fn property_random_messages_round_trip() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut stream = Vec::new();
    let mut sent = Vec::new();
    for _ in 0..500 {
        let msg = random_message(&mut rng);
        let payload = encode(&msg).unwrap();
        assert_eq!(decode(&payload).as_ref(), Ok(&msg));
        write_message(&msg, &mut stream).unwrap();
        sent.push(msg);
    }
    let got: Vec<Message> = read_all(&stream).into_iter().map(Result::unwrap).collect();
    assert_eq!(got, sent);
}

#[test]
fn property_hostile_input_never_panics() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let valid: Vec<Vec<u8>> = samples().iter().map(|m| encode(m).unwrap()).collect();
    // One reader for the whole run: state left over by a bad frame must not
    // break the next one.
    let mut reader = MessageReader::new();
    let mut accepted = 0;
    for round in 0..10_000 {
        // Pure noise, and valid payloads with a few bytes mutated, truncated or extended.
        let mut buf = if round % 4 == 0 {
            let len = rng.below(64);
            rng.bytes(len)
        } else {
            let mut b = valid[rng.below(valid.len())].clone();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(b.len());
                b[i] = rng.next() as u8;
            }
            b
        };
        match rng.below(4) {
            0 => buf.truncate(rng.below(buf.len() + 1)),
            1 => {
                let extra = rng.bytes_upto(7);
                buf.extend(extra);
            }
            _ => {}
        }
        // Whatever decode accepts must validate and survive a round trip.
        if let Ok(msg) = decode(&buf) {
            accepted += 1;
            assert_eq!(msg.validate(), Ok(()));
            assert_eq!(decode(&encode(&msg).unwrap()), Ok(msg));
        }
        // The same bytes as a raw stream, and wrapped in a valid frame.
        for &b in &buf {
            let _ = reader.push(b);
        }
        let mut framed = Vec::new();
        encode_frame(&buf, &mut framed).unwrap();
        framed.insert(0, 0); // end the noise before it
        let mut results: Vec<_> = framed.iter().filter_map(|&b| reader.push(b)).collect();
        // The framed copy always arrives, decoded exactly as `decode` does.
        assert_eq!(results.pop(), Some(decode(&buf)));
    }
    // Some mutations (e.g. in byte-string contents) keep a message valid.
    assert!(accepted > 100, "only {accepted} mutated inputs decoded");
}

fn evidence_key() -> Vec<u8> {
    let mut k = vec![0x11; P384_PUBLIC_KEY_LEN];
    k[0] = 0x04;
    k
}

#[test]
fn credential_request_proof_input_is_documented_layout() {
    let bytes = credential_request_signed_bytes(&[1; 32], &evidence_key(), &[2; 32]);
    assert_eq!(&bytes[..15], b"TWI-CREDREQ-v1\0");
    assert_eq!(bytes.len(), 15 + 32 + P384_PUBLIC_KEY_LEN + 32);
    assert_eq!(&bytes[15..47], &[1; 32]);
    assert_eq!(&bytes[47..47 + P384_PUBLIC_KEY_LEN], evidence_key().as_slice());
    assert_eq!(&bytes[bytes.len() - 32..], &[2; 32]);
}

#[test]
fn mechanism_messages_round_trip() {
    for m in [
        Message::from(Credential {
            certificate: vec![0x30, 0],
            workload_id: "w".into(),
            attestation_result: None,
            wit: None,
        }),
        AttestationResult { ear: "eyJhbGciOiJFUzM4NCJ9.e30.c2ln".into() }.into(),
        CredentialRequest { ear: "a.b.c".into(), public_key: evidence_key(), proof: vec![0x30, 0x02] }.into(),
        key_release().into(),
        Challenge { nonce: vec![3; 32], key_release: true, freshness: Freshness::PresentNonce }.into(),
    ] {
        assert_eq!(decode(&encode(&m).unwrap()), Ok(m));
    }
}

fn key_release() -> KeyRelease {
    KeyRelease {
        certificate: vec![0x30, 0x03, 0x02, 0x01, 0x00],
        workload_id: "spiffe://example.org/demo".into(),
        enc: evidence_key(),
        ciphertext: vec![0x11; KEY_RELEASE_CIPHERTEXT_LEN],
    }
}

#[test]
fn a_challenge_without_key_release_decodes_as_before() {
    // What a loader before mechanism D sends: the map has only the nonce.
    let payload = raw(1, |e| {
        e.map(1).unwrap().u8(0).unwrap().bytes(&[9; 32]).unwrap();
    });
    assert_eq!(
        decode(&payload),
        Ok(Challenge { nonce: vec![9; 32], key_release: false, freshness: Freshness::PresentNonce }.into())
    );
}

#[test]
fn key_release_info_and_aad_are_the_documented_layout() {
    let info = key_release_info(&[1; 32], &evidence_key());
    assert_eq!(&info[..19], b"TWI-KEY-RELEASE-v1\0");
    assert_eq!(&info[19..21], &[0, 32]);
    assert_eq!(&info[21..53], &[1; 32]);
    assert_eq!(&info[53..], evidence_key().as_slice());
    let aad = key_release_aad(&[2; 32]);
    assert_eq!(&aad[..24], b"TWI-KEY-RELEASE-CERT-v1\0");
    assert_eq!(&aad[24..], &[2; 32]);
}

#[test]
fn hostile_key_release_bytes_never_panic() {
    // Every truncation and every single-byte corruption of a valid KeyRelease payload decodes
    // to a message or an error, never a panic.
    let payload = encode(&key_release().into()).unwrap();
    for end in 0..payload.len() {
        let _ = decode(&payload[..end]);
    }
    for i in 0..payload.len() {
        for flip in [0x01u8, 0x80, 0xFF] {
            let mut bad = payload.clone();
            bad[i] ^= flip;
            if let Ok(Message::KeyRelease(m)) = decode(&bad) {
                assert_eq!(m.enc.len(), HPKE_ENC_LEN);
                assert_eq!(m.ciphertext.len(), KEY_RELEASE_CIPHERTEXT_LEN);
            }
        }
    }
}
