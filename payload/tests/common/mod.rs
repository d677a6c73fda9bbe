//! Test kit for the TLS interop tests: a PKI made by `openssl`, `openssl s_server` on a
//! loopback port, a TCP transport, a software client key, an OS random source, and a relay
//! that flips one byte.
//!
//! OpenSSL is the independent implementation: it issues every certificate (P-384 and P-256
//! ECDSA) and plays the server, verifying our client certificate itself. Nothing here reaches
//! beyond 127.0.0.1. Without `openssl` the tests fail and say how to install it; they never
//! skip.
#![allow(dead_code)]

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use p384::ecdsa::signature::Signer;
use p384::pkcs8::DecodePrivateKey;
use twi_payload::tls::{
    ClientKey, FixedClock, KeyError, Random, RandomError, TlsConfig, TlsError, TlsStream, Transport, TransportError,
};

const INSTALL: &str =
    "openssl is needed by the TLS interop tests: apt-get install openssl (or run ./qemu/install-deps)";

/// Runs `openssl ARGS` in `dir`; panics with the install command if openssl is missing.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out =
        Command::new("openssl").args(args).current_dir(dir).output().unwrap_or_else(|e| panic!("{INSTALL} ({e})"));
    assert!(out.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Every certificate and key the tests use, made once per test binary.
pub struct Pki {
    pub dir: PathBuf,
    _temp: tempfile::TempDir,
}

impl Pki {
    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    pub fn der(&self, name: &str) -> Vec<u8> {
        fs::read(self.dir.join(format!("{name}.der"))).unwrap()
    }
}

/// A CA named `name` on `curve` (P-384 or P-256), valid two days.
fn make_ca(dir: &Path, name: &str, curve: &str) {
    openssl(
        dir,
        &["req", "-x509", "-newkey", "ec", "-pkeyopt", &format!("ec_paramgen_curve:{curve}"), "-nodes"]
            .iter()
            .copied()
            .chain([
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-subj",
                &format!("/CN={name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ])
            .collect::<Vec<_>>(),
    );
    openssl(dir, &["x509", "-in", &format!("{name}.pem"), "-outform", "DER", "-out", &format!("{name}.der")]);
}

/// A leaf `name` issued by `ca` on `curve`, with `ext` (subjectAltName, extendedKeyUsage),
/// valid one day; also its key as PKCS#8 DER.
fn make_leaf(dir: &Path, name: &str, ca: &str, curve: &str, ext: &str) {
    let (key, csr, pem) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"));
    let curve = format!("ec_paramgen_curve:{curve}");
    let subject = format!("/CN={name}");
    openssl(
        dir,
        &[
            "req", "-new", "-newkey", "ec", "-pkeyopt", &curve, "-nodes", "-keyout", &key, "-out", &csr, "-subj",
            &subject,
        ],
    );
    fs::write(dir.join(format!("{name}.ext")), format!("basicConstraints=critical,CA:FALSE\n{ext}\n")).unwrap();
    let (ca_pem, ca_key, ext_file) = (format!("{ca}.pem"), format!("{ca}.key"), format!("{name}.ext"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "1",
            "-extfile",
            &ext_file,
            "-sha384",
        ],
    );
    openssl(dir, &["x509", "-in", &pem, "-outform", "DER", "-out", &format!("{name}.der")]);
    openssl(dir, &["pkcs8", "-topk8", "-nocrypt", "-in", &key, "-outform", "DER", "-out", &format!("{name}.key.der")]);
}

const SERVER_EXT: &str = "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth";
const CLIENT_EXT: &str = "subjectAltName=URI:spiffe://twi.example/payroll-app\nextendedKeyUsage=clientAuth";

/// The test PKI: `server-ca` → `server`; `client-ca` → `client`; `rogue-ca` → `rogue-server`,
/// `rogue-client`; `p256-ca` → `p256-server` (all P-384 but the last two).
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().to_path_buf();
        for (ca, curve) in [("server-ca", "P-384"), ("client-ca", "P-384"), ("rogue-ca", "P-384"), ("p256-ca", "P-256")]
        {
            make_ca(&dir, ca, curve);
        }
        make_leaf(&dir, "server", "server-ca", "P-384", SERVER_EXT);
        make_leaf(&dir, "client", "client-ca", "P-384", CLIENT_EXT);
        make_leaf(&dir, "rogue-server", "rogue-ca", "P-384", SERVER_EXT);
        make_leaf(&dir, "rogue-client", "rogue-ca", "P-384", CLIENT_EXT);
        make_leaf(&dir, "p256-server", "p256-ca", "P-256", SERVER_EXT);
        fs::write(dir.join("hello.txt"), "hello from s_server\n").unwrap();
        Pki { dir, _temp: temp }
    })
}

/// `openssl s_server` on 127.0.0.1 with an OS-chosen port, killed on drop.
pub struct Server {
    child: Child,
    pub port: u16,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `openssl s_server` with the `server` certificate (TLS 1.3 only) plus `args`.
    pub fn start(cert: &str, args: &[&str]) -> Self {
        let pki = pki();
        let mut child = Command::new("openssl")
            .args(["s_server", "-accept", "127.0.0.1:0", "-tls1_3", "-cert", &pki.path(&format!("{cert}.pem"))])
            .args(["-key", &pki.path(&format!("{cert}.key"))])
            .args(args)
            .current_dir(&pki.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{INSTALL} ({e})"));
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let port = loop {
            line.clear();
            if stdout.read_line(&mut line).unwrap() == 0 {
                let mut err = String::new();
                child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
                panic!("openssl s_server did not start: {err}");
            }
            if let Some(addr) = line.trim().strip_prefix("ACCEPT ") {
                break addr.rsplit(':').next().unwrap().parse().unwrap();
            }
        };
        let log = Arc::new(Mutex::new(String::new()));
        drain(stdout, log.clone());
        drain(BufReader::new(child.stderr.take().unwrap()), log.clone());
        Server { child, port, log }
    }

    /// Types `line` on s_server's console: in its default mode a line is sent to the client,
    /// and the lines `k` and `K` send a TLS 1.3 KeyUpdate (`K` asking for one back).
    pub fn type_line(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Everything s_server printed so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until s_server has printed `needle` (its output lags the client a little).
    pub fn wait_for_log(&self, needle: &str) -> String {
        for _ in 0..100 {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.log()
    }
}

fn drain(mut from: impl BufRead + Send + 'static, into: Arc<Mutex<String>>) {
    thread::spawn(move || {
        let mut line = String::new();
        while from.read_line(&mut line).unwrap_or(0) > 0 {
            into.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// s_server options that require and verify a client certificate issued by `ca`.
pub fn require_client_cert(ca: &str) -> Vec<String> {
    vec![
        "-Verify".into(),
        "1".into(),
        "-verify_return_error".into(),
        "-CAfile".into(),
        pki().path(&format!("{ca}.pem")),
    ]
}

/// A TCP connection as the TLS transport, with a read timeout so a stalled peer fails the test.
pub struct Tcp(pub TcpStream);

impl Tcp {
    pub fn connect(port: u16) -> Self {
        Self::connect_with_timeout(port, Duration::from_secs(10))
    }

    /// A connection whose reads give up after `timeout` (a stalled peer is a transport error).
    pub fn connect_with_timeout(port: u16, timeout: Duration) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(timeout)).unwrap();
        Tcp(stream)
    }
}

fn transport_error(e: io::Error) -> TransportError {
    match e.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted | io::ErrorKind::BrokenPipe => {
            TransportError::Reset
        }
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => TransportError::TimedOut,
        _ => TransportError::Other(e.to_string()),
    }
}

impl Transport for Tcp {
    fn write_all(&mut self, buf: &[u8]) -> Result<(), TransportError> {
        self.0.write_all(buf).map_err(transport_error)
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<usize, TransportError> {
        self.0.read(buf).map_err(transport_error)
    }
}

/// A transport that hands TLS at most `.1` bytes per read, as a relay with small frames does:
/// records and handshake messages arrive in pieces.
pub struct Trickle(pub Tcp, pub usize);

impl Transport for Trickle {
    fn write_all(&mut self, buf: &[u8]) -> Result<(), TransportError> {
        self.0.write_all(buf)
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<usize, TransportError> {
        let n = buf.len().min(self.1);
        self.0.read(&mut buf[..n])
    }
}

/// The operating system's random source.
#[derive(Debug)]
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError> {
        fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(buf)).map_err(|_| RandomError)
    }
}

pub static RANDOM: OsRandom = OsRandom;

/// A client key in process memory: a stand-in for the vault in tests.
#[derive(Debug)]
pub struct SoftKey(p384::ecdsa::SigningKey);

impl SoftKey {
    pub fn load(name: &str) -> Arc<dyn ClientKey> {
        Arc::new(SoftKey(p384::ecdsa::SigningKey::from_pkcs8_der(&pki().der(&format!("{name}.key"))).unwrap()))
    }
}

impl ClientKey for SoftKey {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let signature: p384::ecdsa::Signature = self.0.sign(message);
        Ok(signature.to_der().as_bytes().to_vec())
    }
}

/// Now, as the test machine's clock says.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A configuration trusting `server_ca`, presenting `client` (if any), checking at `time`.
pub fn config(server_ca: &str, client: Option<&str>, time: u64) -> TlsConfig {
    let pki = pki();
    let mut builder = TlsConfig::builder(&RANDOM, Arc::new(FixedClock(time))).trust_ca(&pki.der(server_ca)).unwrap();
    if let Some(client) = client {
        builder = builder.client_certificate(vec![pki.der(client)], SoftKey::load(client)).unwrap();
    }
    builder.build().unwrap()
}

/// The standard mutual-TLS configuration: trusts `server-ca`, presents `client`, checks now.
pub fn mtls_config() -> TlsConfig {
    config("server-ca", Some("client"), now())
}

/// Connects through TCP to `port` as `name`, then writes `request` and reads to the end.
pub fn exchange(config: &TlsConfig, name: &str, port: u16, request: &[u8]) -> Result<Vec<u8>, TlsError> {
    let mut tls = TlsStream::connect(config, name, Tcp::connect(port))?;
    tls.write_all(request)?;
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = tls.read(&mut buf)?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// Which way a relayed byte travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    ToServer,
    ToClient,
}

/// A byte of a TLS record, counted from its first header byte or back from its last byte (so
/// that records whose size varies between runs, like those carrying ECDSA signatures, are hit
/// at the same place).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    Start(usize),
    End(usize),
}

/// What the relay does to the bytes going `direction`, at record number `record` (from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flip {
    pub direction: Direction,
    pub record: usize,
    pub at: At,
    /// The bits to flip; zero means: cut the connection instead, just before this byte.
    pub mask: u8,
}

/// The bytes a relay passed on: (to the server, to the client).
pub type Relayed = (Vec<u8>, Vec<u8>);

/// A one-connection relay on 127.0.0.1 between the client and `upstream`, applying `flip` if
/// given. Returns the relay's port and a handle yielding the bytes relayed each way (to the
/// server, to the client), as sent on.
pub fn relay(upstream: u16, flip: Option<Flip>) -> (u16, thread::JoinHandle<Relayed>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let (client, _) = listener.accept().unwrap();
        let server = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
        let flip_for = |d: Direction| flip.filter(|f| f.direction == d);
        let up = pump(client.try_clone().unwrap(), server.try_clone().unwrap(), flip_for(Direction::ToServer));
        let down = pump(server, client, flip_for(Direction::ToClient));
        (up.join().unwrap(), down.join().unwrap())
    });
    (port, handle)
}

/// Where the next byte of a record stream falls, tracked on the original bytes.
#[derive(Default)]
struct Framer {
    record: usize,
    offset: usize,
    header: [u8; 5],
    len: Option<usize>,
}

impl Framer {
    fn hits(&self, flip: &Flip) -> bool {
        self.record == flip.record
            && match flip.at {
                At::Start(n) => self.offset == n,
                At::End(n) => self.len.is_some_and(|len| self.offset + n == 5 + len - 1),
            }
    }

    fn advance(&mut self, original: u8) {
        if self.offset < 5 {
            self.header[self.offset] = original;
        }
        if self.offset == 4 {
            self.len = Some(usize::from(u16::from_be_bytes([self.header[3], self.header[4]])));
        }
        self.offset += 1;
        if self.len.is_some_and(|len| self.offset == 5 + len) {
            *self = Framer { record: self.record + 1, ..Framer::default() };
        }
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, flip: Option<Flip>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut seen = Vec::new();
        let mut framer = Framer::default();
        let mut buf = [0u8; 4096];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut cut = None;
            for (i, byte) in buf[..n].iter_mut().enumerate() {
                let original = *byte;
                match flip.filter(|f| framer.hits(f)) {
                    Some(Flip { mask: 0, .. }) => cut = cut.or(Some(i)),
                    Some(flip) => *byte ^= flip.mask,
                    None => {}
                }
                framer.advance(original);
            }
            let n = cut.unwrap_or(n);
            seen.extend_from_slice(&buf[..n]);
            if to.write_all(&buf[..n]).is_err() || cut.is_some() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
        let _ = from.shutdown(Shutdown::Read);
        seen
    })
}
