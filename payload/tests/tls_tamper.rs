//! A relay that alters one byte, in either direction, never gets altered data through.
//!
//! The host relays a workload's connections and may corrupt them. Here a relay between our
//! client and `openssl s_server -WWW` (mutual TLS, an HTTP GET) flips one byte per connection:
//! in every record of a clean run (its type, length and first/middle/last payload bytes, and
//! the version of protected records, which is authenticated data, RFC 8446 §5.2), and at every
//! byte of the records that carry the request and the response. Each connection must fail with
//! an error, and whatever the client delivered before failing must be a prefix of the clean
//! response. Flips in protected records from the server must be reported as
//! [`TlsError::Tampered`].
//!
//! Run: `cargo test -p twi-payload --test tls_tamper` (needs `openssl`).

mod common;

use std::time::Duration;

use common::{At, Direction, Flip, Relayed, Server, Tcp, mtls_config, relay, require_client_cert};
use twi_payload::tls::{TlsConfig, TlsError, TlsStream};

const REQUEST: &[u8] = b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n";
const APPLICATION_DATA: u8 = 23;

/// One TLS record of a clean run: its type and payload length.
#[derive(Debug, Clone, Copy)]
struct Record {
    kind: u8,
    len: usize,
}

fn records(bytes: &[u8]) -> Vec<Record> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 5 <= bytes.len() {
        let len = usize::from(u16::from_be_bytes([bytes[at + 3], bytes[at + 4]]));
        out.push(Record { kind: bytes[at], len });
        at += 5 + len;
    }
    assert_eq!(at, bytes.len(), "the clean transcript is whole records");
    out
}

/// How one relayed exchange went.
struct Outcome {
    /// What the client delivered to its caller.
    delivered: Vec<u8>,
    result: Result<(), TlsError>,
    relayed: Relayed,
}

/// Runs the GET through a relay applying `flip`; returns what the client delivered, how the
/// exchange ended, and the bytes relayed each way.
fn get_through(config: &TlsConfig, port: u16, flip: Option<Flip>) -> Outcome {
    let (relay_port, relayed) = relay(port, flip);
    let mut delivered = Vec::new();
    let result = (|| {
        // A flipped length can leave a peer waiting for bytes that never come: that stall
        // must end as a transport error, quickly.
        let transport = Tcp::connect_with_timeout(relay_port, Duration::from_secs(1));
        let mut tls = TlsStream::connect(config, "localhost", transport)?;
        tls.write_all(REQUEST)?;
        let mut buf = [0u8; 512];
        loop {
            match tls.read(&mut buf)? {
                0 => return Ok(()),
                n => delivered.extend_from_slice(&buf[..n]),
            }
        }
    })();
    Outcome { delivered, result, relayed: relayed.join().unwrap() }
}

/// The flips for record `index`: its type, its length (made larger than any record may be),
/// its first, middle and last payload bytes, and for protected records its version.
fn record_flips(direction: Direction, index: usize, record: Record) -> Vec<Flip> {
    let flip = |at, mask| Flip { direction, record: index, at, mask };
    let mut flips = vec![flip(At::Start(0), 0x01), flip(At::Start(3), 0x80)];
    if record.kind == APPLICATION_DATA {
        flips.push(flip(At::Start(2), 0x01));
    }
    if record.len > 0 {
        flips.extend([flip(At::Start(5), 0x01), flip(At::Start(5 + record.len / 2), 0x01), flip(At::End(0), 0x01)]);
    }
    flips
}

/// Every byte of record `index`.
fn every_byte(direction: Direction, index: usize, record: Record) -> impl Iterator<Item = Flip> {
    (0..5 + record.len).map(move |n| Flip { direction, record: index, at: At::Start(n), mask: 0x01 })
}

#[test]
fn one_flipped_byte_in_either_direction_fails_the_connection() {
    let args = require_client_cert("client-ca");
    let server =
        Server::start("server", &[&["-WWW"][..], &args.iter().map(String::as_str).collect::<Vec<_>>()].concat());
    let config = mtls_config();

    let Outcome { delivered: clean, result, relayed: (to_server, to_client) } = get_through(&config, server.port, None);
    result.unwrap();
    assert!(clean.ends_with(b"\r\n\r\nhello from s_server\n"), "{}", String::from_utf8_lossy(&clean));
    let (up, down) = (records(&to_server), records(&to_client));

    let mut cases = Vec::new();
    for (direction, records) in [(Direction::ToServer, &up), (Direction::ToClient, &down)] {
        for (index, record) in records.iter().enumerate() {
            cases.extend(record_flips(direction, index, *record));
        }
    }
    // The request is the client's last record; the response is the server's last but one
    // (before its close_notify).
    let (request, response) = (up.len() - 1, down.len() - 2);
    assert_eq!((up[request].kind, down[response].kind), (APPLICATION_DATA, APPLICATION_DATA));
    cases.extend(every_byte(Direction::ToServer, request, up[request]));
    cases.extend(every_byte(Direction::ToClient, response, down[response]));

    let mut tampered = 0;
    for flip in &cases {
        let Outcome { delivered, result, .. } = get_through(&config, server.port, Some(*flip));
        let kind = if flip.direction == Direction::ToServer { up[flip.record].kind } else { down[flip.record].kind };
        let error = result.expect_err(&format!("{flip:?} (record type {kind}): the connection succeeded"));
        assert!(clean.starts_with(&delivered), "{flip:?}: delivered bytes the server never sent");
        // Header bytes rustls checks before decrypting (the version's high byte, the length)
        // fail as protocol errors; everything the AEAD authenticates fails as tampering.
        let authenticated = match flip.at {
            At::Start(n) => n == 0 || n == 2 || n >= 5,
            At::End(_) => true,
        };
        if flip.direction == Direction::ToClient && kind == APPLICATION_DATA && authenticated {
            assert_eq!(error, TlsError::Tampered, "{flip:?}");
            tampered += 1;
        }
    }
    assert!(cases.len() > 200 && tampered > 100, "{} cases, {tampered} tampered", cases.len());
}

/// A relay that ends the connection early (before the server's close_notify, or in the middle
/// of the response record) cannot pass the cut off as the end of the response.
#[test]
fn a_cut_connection_is_truncated_never_a_shorter_response() {
    let args = require_client_cert("client-ca");
    let server =
        Server::start("server", &[&["-WWW"][..], &args.iter().map(String::as_str).collect::<Vec<_>>()].concat());
    let config = mtls_config();
    let Outcome { delivered: clean, result, relayed: (_, to_client) } = get_through(&config, server.port, None);
    result.unwrap();
    let down = records(&to_client);
    let (response, close_notify) = (down.len() - 2, down.len() - 1);
    for (record, at) in [(close_notify, At::Start(0)), (response, At::Start(5)), (response, At::End(0))] {
        let cut = Flip { direction: Direction::ToClient, record, at, mask: 0 };
        let Outcome { delivered, result, .. } = get_through(&config, server.port, Some(cut));
        assert_eq!(result, Err(TlsError::Truncated), "{cut:?}");
        assert!(clean.starts_with(&delivered), "{cut:?}");
    }
}
