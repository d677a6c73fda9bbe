//! The workload's own TLS client (`twi_payload::tls`, what runs in the guest) against the
//! relying party: mutual TLS with an issued credential, and a server outside the trusted CA
//! refused cleanly however the bytes arrive (a rustls server sends its whole flight in one
//! record; refusing in the middle of it once panicked inside the client).

mod support;
#[path = "../../verifier/tests/synthetic/mod.rs"]
mod synthetic;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use p384::ecdsa::SigningKey;
use p384::ecdsa::signature::Signer;
use support::net::start;
use support::world;
use twi_payload::http::{self, Limits, Request};
use twi_payload::tls::{
    CertificateProblem, ClientKey, FixedClock, KeyError, Random, RandomError, TlsConfig, TlsError, TlsStream,
    Transport, TransportError,
};

#[derive(Debug)]
struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError> {
        std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(buf)).map_err(|_| RandomError)
    }
}

static RANDOM: OsRandom = OsRandom;

#[derive(Debug)]
struct SoftKey(SigningKey);

impl ClientKey for SoftKey {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let signature: p384::ecdsa::Signature = self.0.sign(message);
        Ok(signature.to_der().as_bytes().to_vec())
    }
}

/// TCP handing TLS at most `piece` bytes per read.
struct Pieces(TcpStream, usize);

impl Transport for Pieces {
    fn write_all(&mut self, buf: &[u8]) -> Result<(), TransportError> {
        self.0.write_all(buf).map_err(|e| TransportError::Other(e.to_string()))
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<usize, TransportError> {
        let n = buf.len().min(self.1);
        self.0.read(&mut buf[..n]).map_err(|e| TransportError::Other(e.to_string()))
    }
}

fn der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().to_vec()
}

fn config(server_ca_pem: &str, client: bool) -> TlsConfig {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let builder = TlsConfig::builder(&RANDOM, Arc::new(FixedClock(now))).trust_ca(&der(server_ca_pem)).unwrap();
    let builder = match client {
        true => {
            let launch = &world().v1;
            let key = Arc::new(SoftKey(launch.key.clone()));
            builder.client_certificate(vec![launch.certificate_der.clone()], key).unwrap()
        }
        false => builder,
    };
    builder.build().unwrap()
}

/// A CA that issued nothing the relying party holds (and named otherwise, so that path
/// building finds no candidate issuer at all).
fn other_ca() -> String {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, "some other CA");
    params.self_signed(&key).unwrap().pem()
}

fn connect(addr: SocketAddr, piece: usize) -> Pieces {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    Pieces(tcp, piece)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_workload_client_gets_rows_over_mutual_tls() {
    let rp = start().await;
    let (addr, config) = (rp.addr, config(&rp.server_ca_pem, true));
    let response = tokio::task::spawn_blocking(move || {
        let mut tls = TlsStream::connect(&config, "127.0.0.1", connect(addr, 16_384)).unwrap();
        let request = Request::get(&addr.to_string(), "/rows").unwrap();
        http::send(&mut tls, &request, &Limits::default()).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"alice,4200\nbob,3900\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_outside_the_trusted_ca_is_refused_in_any_size_of_pieces() {
    let rp = start().await;
    let other_ca = other_ca();
    let (addr, config) = (rp.addr, config(&other_ca, true));
    tokio::task::spawn_blocking(move || {
        for piece in [1, 7, 64, 700, 16_384] {
            let error = TlsStream::connect(&config, "127.0.0.1", connect(addr, piece)).unwrap_err();
            assert_eq!(error, TlsError::ServerCertificate(CertificateProblem::UnknownIssuer), "{piece}-byte pieces");
        }
    })
    .await
    .unwrap();
}
