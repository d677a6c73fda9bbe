//! `twi_payload::https` against `openssl s_server -WWW` through a stand-in runtime: the server
//! CA from the setting, mutual TLS with the credential (OpenSSL verifies it), the clock the
//! host cannot move before the credential, and the errors a workload meets.
//!
//! Run: `cargo test -p twi-payload --test https` (needs `openssl`).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{RANDOM, Server, SoftKey, Tcp, pki, require_client_cert};
use twi_payload::https::{self, HttpsError};
use twi_payload::prelude::*;
use twi_payload::tls::{CertificateProblem, ClientKey, Random, TlsError, Transport};

/// A runtime whose vault holds the `client` key and whose host connects to one local port.
struct Stand {
    settings: BTreeMap<String, Vec<u8>>,
    port: u16,
    host_time: Option<u64>,
    connects: usize,
}

impl Stand {
    fn new(port: u16) -> Self {
        let settings = BTreeMap::from([("server-ca".to_string(), pki().der("server-ca"))]);
        Self { settings, port, host_time: Some(common::now()), connects: 0 }
    }
}

impl Runtime for Stand {
    fn acquire(&mut self, target: &str, _: CredentialType, _: Option<&str>) -> Result<Credential, AcquireError> {
        let (not_before, not_after) = validity(&pki().der("client"));
        Ok(Credential {
            target: target.into(),
            credential_type: CredentialType::X509,
            mode: Mode::Enrollment,
            workload_id: "spiffe://twi.example/payroll-app".into(),
            certificates: vec![pki().der("client")],
            token: String::new(),
            key: KeyHandle(7),
            not_before,
            not_after,
        })
    }
    fn sign(&mut self, key: KeyHandle, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.client_key(key)?.sign(message)
    }
    fn sign_digest(&mut self, _: KeyHandle, _: &[u8; 48]) -> Result<Vec<u8>, KeyError> {
        Err(KeyError::Unavailable)
    }
    fn client_key(&mut self, key: KeyHandle) -> Result<Arc<dyn ClientKey>, KeyError> {
        if key == KeyHandle(7) { Ok(SoftKey::load("client")) } else { Err(KeyError::Unavailable) }
    }
    fn seal(&mut self, _: &[u8], _: &[u8]) -> Result<Vec<u8>, SealError> {
        Err(SealError::Unsupported)
    }
    fn unseal(&mut self, _: &[u8], _: &[u8]) -> Result<Vec<u8>, SealError> {
        Err(SealError::Unsupported)
    }
    fn random(&self) -> &'static dyn Random {
        &RANDOM
    }
    fn monotonic(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
    fn host_time(&mut self) -> Result<HostTime, ConnectError> {
        self.host_time.map(HostTime).ok_or_else(|| ConnectError::Host("no time".into()))
    }
    fn setting(&self, key: &str) -> Option<&[u8]> {
        self.settings.get(key).map(Vec::as_slice)
    }
    fn connect(&mut self, target: &str) -> Result<Box<dyn Transport + '_>, ConnectError> {
        if !target.starts_with("https://localhost:") {
            return Err(ConnectError::NotInManifest(target.into()));
        }
        self.connects += 1;
        Ok(Box::new(Tcp::connect(self.port)))
    }
    fn log(&mut self, line: &str) {
        eprintln!("{line}");
    }
}

/// A certificate's (notBefore, notAfter), seconds since the Unix epoch.
fn validity(der: &[u8]) -> (u64, u64) {
    use x509_cert::der::Decode;
    let certificate = x509_cert::Certificate::from_der(der).unwrap();
    let validity = certificate.tbs_certificate().validity();
    (validity.not_before.to_unix_duration().as_secs(), validity.not_after.to_unix_duration().as_secs())
}

fn www_server() -> Server {
    let args = require_client_cert("client-ca");
    Server::start("server", &[&["-WWW"][..], &args.iter().map(String::as_str).collect::<Vec<_>>()].concat())
}

#[test]
fn get_over_mutual_tls_with_the_credential() {
    let server = www_server();
    let mut rt = Stand::new(server.port);
    let url = format!("https://localhost:{}/hello.txt", server.port);
    let credential = rt.acquire(&url, CredentialType::X509, None).unwrap();
    let response = https::get(&mut rt, &credential, &url).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"hello from s_server\n");
    // OpenSSL's own verdict on the credential: it verified the leaf to client-ca.
    let log = server.wait_for_log("depth=0 CN = client");
    assert!(log.contains("depth=0 CN = client\nverify return:1"), "{log}");
}

#[test]
fn a_host_setting_the_clock_back_cannot_expire_the_server() {
    let server = www_server();
    let mut rt = Stand::new(server.port);
    let url = format!("https://localhost:{}/hello.txt", server.port);
    let credential = rt.acquire(&url, CredentialType::X509, None).unwrap();
    for lie in [Some(0), None] {
        rt.host_time = lie;
        let response = https::get(&mut rt, &credential, &url).unwrap();
        assert_eq!(response.status, 200, "host time {lie:?}");
    }
}

#[test]
fn without_a_server_ca_setting_nothing_is_sent() {
    let server = www_server();
    let mut rt = Stand::new(server.port);
    rt.settings.clear();
    let url = format!("https://localhost:{}/hello.txt", server.port);
    let credential = rt.acquire(&url, CredentialType::X509, None).unwrap();
    let err = https::get(&mut rt, &credential, &url).unwrap_err();
    assert!(matches!(err, HttpsError::NoServerCa(_)), "{err}");
    assert!(err.to_string().contains("--set server-ca="), "{err}");
    assert_eq!(rt.connects, 0);
}

#[test]
fn a_server_of_another_ca_is_refused() {
    let server = www_server();
    let mut rt = Stand::new(server.port);
    rt.settings.insert("server-ca".into(), pki().der("rogue-ca"));
    let url = format!("https://localhost:{}/hello.txt", server.port);
    let credential = rt.acquire(&url, CredentialType::X509, None).unwrap();
    let err = https::get(&mut rt, &credential, &url).unwrap_err();
    assert!(matches!(err, HttpsError::Tls(TlsError::ServerCertificate(CertificateProblem::UnknownIssuer))), "{err:?}");
}

#[test]
fn targets_are_checked_before_connecting() {
    let mut rt = Stand::new(1);
    let credential = rt.acquire("https://localhost:1/", CredentialType::X509, None).unwrap();
    for (url, want) in [("http://localhost:1/", "not an https://"), ("https://elsewhere:1/", "measured manifest")] {
        let err = https::get(&mut rt, &credential, url).unwrap_err();
        assert!(err.to_string().contains(want), "{url}: {err}");
    }
    assert_eq!(rt.connects, 0);
}
