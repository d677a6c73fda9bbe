//! The handshake's parsers against hand-made messages: what RFC 8446 allows passes, everything
//! else is an error (never a panic), whatever prefix of it arrives.

use super::*;

fn server_hello_with(extensions: &[(u16, &[u8])], random: [u8; 32], suite: u16) -> Vec<u8> {
    let mut body = Vec::new();
    put_u16(&mut body, 0x0303);
    body.extend_from_slice(&random);
    body.push(0);
    put_u16(&mut body, suite);
    body.push(0);
    put_vec(&mut body, 2, |e| {
        for (kind, data) in extensions {
            put_u16(e, *kind);
            let _ = put_vec(e, 2, |d| d.extend_from_slice(data));
        }
    })
    .unwrap();
    body
}

fn share(group: u16) -> Vec<u8> {
    let mut data = Vec::new();
    put_u16(&mut data, group);
    put_vec(&mut data, 2, |k| k.extend_from_slice(&[4; 97])).unwrap();
    data
}

fn good() -> Vec<u8> {
    server_hello_with(
        &[(EXT_SUPPORTED_VERSIONS, &[3, 4]), (EXT_KEY_SHARE, &share(SECP384R1))],
        [7; 32],
        TLS_AES_256_GCM_SHA384,
    )
}

#[test]
fn a_tls13_server_hello_gives_its_key_share() {
    assert_eq!(server_hello(&good()).unwrap(), &[4; 97][..]);
    for cut in 0..good().len() {
        assert!(server_hello(&good()[..cut]).is_err(), "cut at {cut}");
    }
    let mut longer = good();
    longer.push(0);
    assert_eq!(server_hello(&longer), Err(MALFORMED));
}

/// What kind of error a case expects.
type Expected = fn(&TlsError) -> bool;

#[test]
fn what_the_client_did_not_offer_is_refused() {
    let versions: &[u8] = &[3, 4];
    let key_share = share(SECP384R1);
    let cases: [(Vec<u8>, Expected); 7] = [
        (server_hello_with(&[(EXT_KEY_SHARE, &key_share)], [7; 32], TLS_AES_256_GCM_SHA384), |e| {
            matches!(e, TlsError::Incompatible(_))
        }),
        (server_hello_with(&[(EXT_SUPPORTED_VERSIONS, &[3, 3]), (EXT_KEY_SHARE, &key_share)], [7; 32], 0x1302), |e| {
            matches!(e, TlsError::Incompatible(_))
        }),
        (
            server_hello_with(
                &[(EXT_SUPPORTED_VERSIONS, versions), (EXT_KEY_SHARE, &key_share)],
                HELLO_RETRY_REQUEST,
                0x1302,
            ),
            |e| matches!(e, TlsError::Incompatible(_)),
        ),
        (server_hello_with(&[(EXT_SUPPORTED_VERSIONS, versions), (EXT_KEY_SHARE, &key_share)], [7; 32], 0x1301), |e| {
            matches!(e, TlsError::Protocol(_))
        }),
        (
            server_hello_with(&[(EXT_SUPPORTED_VERSIONS, versions), (EXT_KEY_SHARE, &share(0x001d))], [7; 32], 0x1302),
            |e| matches!(e, TlsError::Protocol(_)),
        ),
        (server_hello_with(&[(EXT_SUPPORTED_VERSIONS, versions)], [7; 32], 0x1302), |e| {
            matches!(e, TlsError::Protocol(_))
        }),
        (
            server_hello_with(
                &[(EXT_SUPPORTED_VERSIONS, versions), (EXT_KEY_SHARE, &key_share), (EXT_KEY_SHARE, &key_share)],
                [7; 32],
                0x1302,
            ),
            |e| matches!(e, TlsError::Protocol(_)),
        ),
    ];
    for (i, (hello, expected)) in cases.iter().enumerate() {
        let error = server_hello(hello).unwrap_err();
        assert!(expected(&error), "case {i}: {error:?}");
    }
}

#[test]
fn encrypted_extensions_may_only_answer_what_was_offered() {
    let ee = |kind: u16, data: &[u8]| {
        let mut body = Vec::new();
        put_vec(&mut body, 2, |e| {
            put_u16(e, kind);
            let _ = put_vec(e, 2, |d| d.extend_from_slice(data));
        })
        .unwrap();
        body
    };
    assert_eq!(encrypted_extensions(&[0, 0]), Ok(()));
    assert_eq!(encrypted_extensions(&ee(EXT_SERVER_NAME, &[])), Ok(()));
    assert_eq!(encrypted_extensions(&ee(EXT_SUPPORTED_GROUPS, &[0, 2, 0, 0x18])), Ok(()));
    assert!(encrypted_extensions(&ee(16, &[0, 3, 2, b'h', b'2'])).is_err(), "ALPN was not offered");
    assert!(encrypted_extensions(&ee(EXT_SERVER_NAME, &[1])).is_err());
    assert_eq!(encrypted_extensions(&[0, 4, 0]), Err(MALFORMED));
}

#[test]
fn certificate_requests_and_chains_are_read_strictly() {
    let request = |schemes: &[u16]| {
        let mut body = alloc::vec![0];
        put_vec(&mut body, 2, |e| {
            put_u16(e, EXT_SIGNATURE_ALGORITHMS);
            let _ = put_vec(e, 2, |d| {
                let _ = put_vec(d, 2, |s| schemes.iter().for_each(|&x| put_u16(s, x)));
            });
        })
        .unwrap();
        body
    };
    assert!(certificate_request(&request(&[0x0403, ECDSA_SECP384R1_SHA384])).unwrap().accepts_p384);
    assert!(!certificate_request(&request(&[0x0804])).unwrap().accepts_p384);
    assert!(certificate_request(&[0, 0, 0]).is_err(), "no signature_algorithms");
    let mut with_context = request(&[ECDSA_SECP384R1_SHA384]);
    with_context[0] = 1;
    with_context.insert(1, 9);
    assert!(certificate_request(&with_context).is_err());

    assert_eq!(certificate_chain(&[0, 0, 0, 0]), Err(TlsError::ServerCertificate(CertificateProblem::Missing)));
    let entry = |der: &[u8]| [&[0, 0, der.len() as u8][..], der, &[0, 0]].concat();
    let chain = |entries: &[Vec<u8>]| {
        let list = entries.concat();
        [&[0, 0, 0, list.len() as u8][..], &list].concat()
    };
    assert_eq!(certificate_chain(&chain(&[entry(b"leaf"), entry(b"ca")])).unwrap(), [&b"leaf"[..], b"ca"]);
    assert_eq!(certificate_chain(&chain(&[entry(b"")])), Err(MALFORMED));
    assert_eq!(certificate_chain(&chain(&alloc::vec![entry(b"x"); MAX_CHAIN + 1])), Err(MALFORMED));
}

#[test]
fn the_client_hello_offers_exactly_one_configuration() {
    let hello = client_hello(&[9; 32], &ServerName::Dns("db.example".into()), &[4; 97]).unwrap();
    let mut r = Reader::new(&hello);
    assert_eq!(r.u8().unwrap(), CLIENT_HELLO);
    let mut body = Reader::new(r.vec24().unwrap());
    r.finish().unwrap();
    assert_eq!(body.u16().unwrap(), 0x0303);
    assert_eq!(body.take(32).unwrap(), [9; 32]);
    assert_eq!(body.vec8().unwrap(), b"");
    assert_eq!(body.vec16().unwrap(), [0x13, 0x02]);
    assert_eq!(body.vec8().unwrap(), [0]);
    let mut extensions = Reader::new(body.vec16().unwrap());
    body.finish().unwrap();
    let mut seen = Vec::new();
    while !extensions.is_empty() {
        seen.push((extensions.u16().unwrap(), extensions.vec16().unwrap().to_vec()));
    }
    let kinds: Vec<u16> = seen.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        kinds,
        [EXT_SERVER_NAME, EXT_SUPPORTED_VERSIONS, EXT_SUPPORTED_GROUPS, EXT_SIGNATURE_ALGORITHMS, EXT_KEY_SHARE]
    );
    assert_eq!(seen[0].1, [&[0, 13, 0, 0, 10][..], b"db.example"].concat());
    assert_eq!(seen[1].1, [2, 3, 4]);
    assert_eq!(seen[2].1, [0, 2, 0, 0x18]);
    assert_eq!(seen[4].1[..6], [0, 101, 0, 0x18, 0, 97]);
    // No SNI for an address (RFC 6066 §3).
    let hello = client_hello(&[9; 32], &ServerName::Ip(alloc::vec![127, 0, 0, 1]), &[4; 97]).unwrap();
    assert_eq!(
        hello.len(),
        client_hello(&[9; 32], &ServerName::Dns("db.example".into()), &[4; 97]).unwrap().len() - 19
    );
}

/// Arbitrary bytes into every parser a server's messages reach: errors, never panics.
#[test]
fn arbitrary_bytes_never_panic_a_parser() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let seeds = [good(), alloc::vec![0, 0, 0, 4, 0, 0, 0, 0], alloc::vec![0; 40]];
    for round in 0..20_000 {
        let mut bytes = seeds[round % seeds.len()].clone();
        for _ in 0..(next() % 4) {
            let at = (next() as usize) % bytes.len();
            bytes[at] = next() as u8;
        }
        bytes.truncate((next() as usize) % (bytes.len() + 1));
        let _ = server_hello(&bytes);
        let _ = encrypted_extensions(&bytes);
        let _ = certificate_request(&bytes);
        let _ = certificate_chain(&bytes);
        let _ = x509::Certificate::parse(&bytes);
        let _ = crate::tls::record::received_alert(&bytes);
    }
}
