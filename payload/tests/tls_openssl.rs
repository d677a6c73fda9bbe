//! The TLS 1.3 client against `openssl s_server`, an independent implementation: mutual TLS
//! where OpenSSL verifies our client certificate, HTTP over it, and every way the server or its
//! certificate can be wrong.
//!
//! Run: `cargo test -p twi-payload --test tls_openssl` (needs `openssl`).

mod common;

use std::sync::Arc;

use common::{Server, Tcp, config, exchange, mtls_config, now, pki, require_client_cert};
use twi_payload::http::{self, Limits, Request};
use twi_payload::tls::{
    AlertDescription, CertificateProblem, ClientKey, FixedClock, KeyError, TlsConfig, TlsError, TlsStream,
};

/// s_server in `-rev` mode (each line comes back reversed), requiring a `client-ca` client
/// certificate.
fn rev_server(cert: &str) -> Server {
    let args = require_client_cert("client-ca");
    Server::start(cert, &[&["-rev"][..], &args.iter().map(String::as_str).collect::<Vec<_>>()].concat())
}

fn www_server(client_ca: &str) -> Server {
    let args = require_client_cert(client_ca);
    Server::start("server", &[&["-WWW"][..], &args.iter().map(String::as_str).collect::<Vec<_>>()].concat())
}

fn read_line(tls: &mut TlsStream<Tcp>) -> Result<Vec<u8>, TlsError> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.last() != Some(&b'\n') {
        if tls.read(&mut byte)? == 0 {
            break;
        }
        line.push(byte[0]);
    }
    Ok(line)
}

#[test]
fn mutual_tls_round_trip_with_openssl_verifying_our_certificate() {
    let server = rev_server("server");
    let mut tls = TlsStream::connect(&mtls_config(), "localhost", Tcp::connect(server.port)).unwrap();
    tls.write_all(b"hello from the workload\n").unwrap();
    assert_eq!(read_line(&mut tls).unwrap(), b"daolkrow eht morf olleh\n");
    tls.write_all(b"second line\n").unwrap();
    assert_eq!(read_line(&mut tls).unwrap(), b"enil dnoces\n");
    tls.close().unwrap();
    assert_eq!(tls.write_all(b"after close"), Err(TlsError::Closed));
    // OpenSSL's own verdict on our certificate, in its log.
    let log = server.wait_for_log("Verification:");
    for line in [
        "Peer certificate: CN = client",
        "Verification: OK",
        "Protocol version: TLSv1.3",
        "Ciphersuite: TLS_AES_256_GCM_SHA384",
        "Supported groups: secp384r1",
    ] {
        assert!(log.contains(line), "s_server log lacks {line:?}:\n{log}");
    }
}

/// RFC 8446 §4.6.3: the server moves its keys on, without (`k`) and with (`K`) asking us to
/// move ours; the data after the KeyUpdate is read and written under the new keys. (s_server
/// takes one such command per connection.)
#[test]
fn key_updates_from_the_server_move_the_keys_on_both_ways() {
    let args = require_client_cert("client-ca");
    for command in ["k", "K"] {
        let mut server = Server::start("server", &args.iter().map(String::as_str).collect::<Vec<_>>());
        let mut tls = TlsStream::connect(&mtls_config(), "localhost", Tcp::connect(server.port)).unwrap();
        tls.write_all(b"before\n").unwrap();
        server.wait_for_log("before");
        // The data line goes a moment after the command: two lines in one read of s_server's
        // console would be taken as data, not as the command.
        server.type_line(command);
        std::thread::sleep(std::time::Duration::from_millis(300));
        let after = format!("after {command}");
        server.type_line(&after);
        let line = read_line(&mut tls).unwrap_or_else(|e| panic!("{command}: {e}\n{}", server.log()));
        assert_eq!(line, format!("{after}\n").as_bytes(), "{command}");
        let echo = format!("client {after}");
        tls.write_all(format!("{echo}\n").as_bytes()).unwrap();
        let log = server.wait_for_log(&echo);
        assert!(log.contains(&echo), "s_server did not read {echo:?} under the updated keys:\n{log}");
        // s_server reports the KeyUpdate it sent.
        let log = server.wait_for_log("SSL_do_handshake -> 1");
        assert!(log.contains("SSL_do_handshake -> 1"), "{command}: no KeyUpdate was sent:\n{log}");
        if command == "K" {
            // Our KeyUpdate in answer: a handshake record that gives s_server no data to read.
            let log = server.wait_for_log("Read BLOCK");
            assert!(log.contains("Read BLOCK"), "no KeyUpdate came back:\n{log}");
        }
        assert!(!log.contains("error") && !log.contains("alert"), "s_server log:\n{log}");
    }
}

#[test]
fn an_ip_address_san_names_the_server() {
    let server = rev_server("server");
    let mut tls = TlsStream::connect(&mtls_config(), "127.0.0.1", Tcp::connect(server.port)).unwrap();
    tls.write_all(b"ip\n").unwrap();
    assert_eq!(read_line(&mut tls).unwrap(), b"pi\n");
}

#[test]
fn http_get_over_mutual_tls_returns_the_body() {
    let server = www_server("client-ca");
    let mut tls = TlsStream::connect(&mtls_config(), "localhost", Tcp::connect(server.port)).unwrap();
    let request = Request::get("localhost", "/hello.txt").unwrap().header("Accept", "text/plain").unwrap();
    let response = http::send(&mut tls, &request, &Limits::default()).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("text/plain"));
    assert_eq!(response.body, b"hello from s_server\n");
}

#[cfg(feature = "p256")]
#[test]
fn a_p256_server_chain_verifies() {
    let server = Server::start("p256-server", &["-rev"]);
    let config = config("p256-ca", None, now());
    let mut tls = TlsStream::connect(&config, "localhost", Tcp::connect(server.port)).unwrap();
    tls.write_all(b"p256\n").unwrap();
    assert_eq!(read_line(&mut tls).unwrap(), b"652p\n");
}

/// Without the `p256` feature a P-256 CA is refused when the configuration is built, and the
/// client offers only ecdsa_secp384r1_sha384, so a server with only a P-256 key has no
/// signature scheme in common with it.
#[cfg(not(feature = "p256"))]
#[test]
fn a_p256_server_is_refused_without_the_p256_feature() {
    let builder = TlsConfig::builder(&common::RANDOM, Arc::new(FixedClock(now())));
    let error = builder.trust_ca(&pki().der("p256-ca")).unwrap_err();
    assert!(matches!(&error, twi_payload::tls::ConfigError::BadCaCertificate(why) if why.contains("P-384")), "{error}");
    let server = Server::start("p256-server", &["-rev"]);
    let error = exchange(&config("server-ca", None, now()), "localhost", server.port, b"x\n").unwrap_err();
    assert_eq!(error, TlsError::Alert(AlertDescription::HandshakeFailure));
}

#[test]
fn a_wrong_server_name_is_refused() {
    let server = rev_server("server");
    let error = exchange(&mtls_config(), "payroll-db.example", server.port, b"x\n").unwrap_err();
    assert_eq!(error, TlsError::ServerCertificate(CertificateProblem::WrongName));
    let server = rev_server("server");
    let error = exchange(&mtls_config(), "127.0.0.2", server.port, b"x\n").unwrap_err();
    assert_eq!(error, TlsError::ServerCertificate(CertificateProblem::WrongName));
}

#[test]
fn a_server_certificate_from_another_ca_is_refused() {
    let server = rev_server("rogue-server");
    let error = exchange(&mtls_config(), "localhost", server.port, b"x\n").unwrap_err();
    assert_eq!(error, TlsError::ServerCertificate(CertificateProblem::UnknownIssuer));
    // The server saw our alert (RFC 8446 §6.2: unknown_ca, or bad_certificate).
    let log = server.wait_for_log("alert");
    assert!(log.contains("alert"), "s_server log:\n{log}");
}

#[test]
fn a_refused_server_is_reported_whatever_size_the_pieces_arrive_in() {
    // A refusal in the middle of the server's flight, with the rest of it buffered in pieces:
    // the alert goes out and the error comes back (this once panicked inside rustls, which
    // keeps ranges into the receive buffer across calls).
    for piece in [1, 5, 64, 700, 4096] {
        let server = rev_server("rogue-server");
        let transport = common::Trickle(Tcp::connect(server.port), piece);
        let error = TlsStream::connect(&mtls_config(), "localhost", transport).unwrap_err();
        assert_eq!(error, TlsError::ServerCertificate(CertificateProblem::UnknownIssuer), "{piece}-byte pieces");
    }
}

#[test]
fn validity_is_checked_at_the_supplied_time() {
    // The server certificate is valid for one day from now: 30 days later it has expired, a
    // year earlier it was not valid yet, whatever the machine's own clock says.
    let server = rev_server("server");
    let later = config("server-ca", Some("client"), now() + 30 * 86_400);
    let error = exchange(&later, "localhost", server.port, b"x\n").unwrap_err();
    assert_eq!(error, TlsError::ServerCertificate(CertificateProblem::Expired));
    let server = rev_server("server");
    let earlier = config("server-ca", Some("client"), now() - 365 * 86_400);
    let error = exchange(&earlier, "localhost", server.port, b"x\n").unwrap_err();
    assert_eq!(error, TlsError::ServerCertificate(CertificateProblem::NotYetValid));
}

#[test]
fn the_server_refusing_our_certificate_is_reported_as_such() {
    // Our certificate is from a CA the server does not trust.
    let server = rev_server("server");
    let untrusted = config("server-ca", Some("rogue-client"), now());
    let error = exchange(&untrusted, "localhost", server.port, b"x\n").unwrap_err();
    assert_eq!(error, TlsError::ClientCertificateRefused(AlertDescription::UnknownCA));
    // No certificate at all, where one is required.
    let server = rev_server("server");
    let anonymous = config("server-ca", None, now());
    let error = exchange(&anonymous, "localhost", server.port, b"x\n").unwrap_err();
    assert_eq!(error, TlsError::ClientCertificateRefused(AlertDescription::CertificateRequired));
}

#[derive(Debug)]
struct RefusingVault;

impl ClientKey for RefusingVault {
    fn sign(&self, _message: &[u8]) -> Result<Vec<u8>, KeyError> {
        Err(KeyError::Refused)
    }
}

#[test]
fn a_vault_that_will_not_sign_fails_the_handshake_with_its_reason() {
    let server = rev_server("server");
    let pki = pki();
    let config = TlsConfig::builder(&common::RANDOM, Arc::new(FixedClock(now())))
        .trust_ca(&pki.der("server-ca"))
        .unwrap()
        .client_certificate(vec![pki.der("client")], Arc::new(RefusingVault))
        .unwrap()
        .build()
        .unwrap();
    let error = TlsStream::connect(&config, "localhost", Tcp::connect(server.port)).unwrap_err();
    assert_eq!(error, TlsError::ClientKey(KeyError::Refused));
}

#[test]
fn a_server_that_cannot_do_our_suite_or_group_fails_cleanly() {
    let server = Server::start("server", &["-rev", "-ciphersuites", "TLS_AES_128_GCM_SHA256"]);
    let error = exchange(&mtls_config(), "localhost", server.port, b"x\n").unwrap_err();
    assert_eq!(error, TlsError::Alert(AlertDescription::HandshakeFailure));
    let server = Server::start("server", &["-rev", "-groups", "X25519:P-256"]);
    let error = exchange(&mtls_config(), "localhost", server.port, b"x\n").unwrap_err();
    assert_eq!(error, TlsError::Alert(AlertDescription::HandshakeFailure));
}

#[test]
fn bad_configurations_are_refused_up_front() {
    use twi_payload::tls::ConfigError;
    let builder = || TlsConfig::builder(&common::RANDOM, Arc::new(FixedClock(now())));
    assert_eq!(builder().build().unwrap_err(), ConfigError::NoTrustAnchor);
    assert!(matches!(builder().trust_ca(b"not a certificate").unwrap_err(), ConfigError::BadCaCertificate(_)));
    let key = common::SoftKey::load("client");
    assert_eq!(builder().client_certificate(vec![], key).unwrap_err(), ConfigError::EmptyClientChain);
    let server = rev_server("server");
    let error = TlsStream::connect(&mtls_config(), "not a name!", Tcp::connect(server.port)).unwrap_err();
    assert_eq!(error, TlsError::InvalidServerName);
}
