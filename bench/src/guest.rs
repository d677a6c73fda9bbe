//! The guest's own figures, from the benchmark workload (`bench/guest`): the channel's
//! throughput each way through relayed connections (ring, beside the 16550 fallback), key
//! generation beside a signature, a mutual-TLS handshake + GET beside `openssl s_client`
//! doing the same handshake from the host, and the workload's first response from its entry
//! (acquire + GET) beside that same host handshake with a credential already on disk.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::stats::{Samples, figure, section};
use crate::twi::{Twi, last_line, numbers_after};

/// A local server on its own thread, for as long as the benchmark runs.
fn serve(handle: impl Fn(TcpStream) + Send + 'static) -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            handle(stream);
        }
    });
    Ok(port)
}

/// Reads everything the guest uploads, then answers `ok` once `bytes` arrived.
fn sink(bytes: usize) -> Result<u16> {
    serve(move |mut s| {
        let (mut got, mut buf) = (0, vec![0u8; 1 << 16]);
        while got < bytes {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => got += n,
            }
        }
        let _ = s.write_all(b"ok");
    })
}

/// Sends `bytes` and closes.
fn source(bytes: usize) -> Result<u16> {
    serve(move |mut s| {
        let buf = vec![0xA5u8; 1 << 16];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(buf.len());
            if s.write_all(&buf[..n]).is_err() {
                return;
            }
            left -= n;
        }
    })
}

fn openssl(dir: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .context("openssl is needed (qemu/install-deps)")?;
    if !out.status.success() {
        bail!("openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// A P-384 CA and a server certificate for 127.0.0.1 in `dir` (`ca.pem`, `srv.pem`, `srv.key`).
fn pki(dir: &Path) -> Result<()> {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384", "-nodes"];
    let ca = ["req", "-x509", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=bench-ca"];
    let ca_ext = ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"];
    openssl(dir, &[&ca[..], &ec, &ca_ext].concat())?;
    openssl(dir, &[&["req", "-new", "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=srv"][..], &ec].concat())?;
    std::fs::write(dir.join("srv.ext"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")?;
    let sign = ["-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1", "-sha384"];
    openssl(dir, &[&["x509", "-req", "-in", "srv.csr", "-out", "srv.pem", "-extfile", "srv.ext"][..], &sign].concat())
}

/// `openssl s_server` answering GETs over TLS 1.3, asking for (not checking) a client certificate.
struct TlsServer(Child, u16);

impl TlsServer {
    fn start(dir: &Path) -> Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new("openssl")
            .args(["s_server", "-accept", &port.to_string(), "-cert", "srv.pem", "-key", "srv.key", "-www"])
            .args(["-tls1_3", "-verify", "1", "-quiet"])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(Self(child, port));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        bail!("openssl s_server did not start")
    }

    /// One handshake and GET by `openssl s_client` from the host, whole process.
    fn host_handshake_ms(&self, dir: &Path) -> Result<f64> {
        let start = Instant::now();
        let mut child = Command::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{}", self.1), "-tls1_3", "-CAfile", "ca.pem", "-quiet"])
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(b"GET / HTTP/1.0\r\n\r\n");
        }
        child.wait()?;
        Ok(start.elapsed().as_secs_f64() * 1e3)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn image(twi: &Twi, name: &str, settings: &[String]) -> Result<PathBuf> {
    let payload = concat!(env!("CARGO_MANIFEST_DIR"), "/guest");
    let mut extra = vec!["--payload", payload];
    for s in settings {
        extra.extend(["--set", s]);
    }
    Ok(twi.build(name, &extra)?.join("twi.rom"))
}

/// MB/s of each `bench: upload|download N bytes in T us` line.
fn rates(console: &str, what: &str) -> Vec<f64> {
    let marker = format!("bench: {what} ");
    console
        .lines()
        .filter_map(|l| l.split_once(&marker).map(|(_, rest)| rest))
        .filter_map(|rest| {
            let bytes: f64 = rest.split_whitespace().next()?.parse().ok()?;
            let us: f64 = rest.split(" in ").nth(1)?.split_whitespace().next()?.parse().ok()?;
            (us > 0.0).then_some(bytes / us)
        })
        .collect()
}

pub fn guest(twi: &Twi, runs: usize) -> Result<()> {
    section("guest figures (bench/guest workload, TCG)");
    let dir = twi.dir.join("guest");
    std::fs::create_dir_all(&dir)?;
    pki(&dir)?;
    let tls = TlsServer::start(&dir)?;
    let (big, small) = (4usize << 20, 64usize << 10);
    let ca = dir.join("ca.pem").display().to_string();
    let settings = |bytes: usize, rounds: usize| -> Result<Vec<String>> {
        Ok(vec![
            format!("target-sink=127.0.0.1:{}", sink(bytes)?),
            format!("target-source=127.0.0.1:{}", source(bytes)?),
            format!("target=https://127.0.0.1:{}/", tls.1),
            format!("server-ca={ca}"),
            format!("bytes={bytes}"),
            format!("rounds={rounds}"),
        ])
    };
    let rounds = 5;
    let ring_rom = image(twi, "bench-ring", &settings(big, rounds)?)?;
    let serial_rom = image(twi, "bench-serial", &settings(small, 1)?)?;
    let mut s = GuestSamples::default();
    for i in 0..runs.div_ceil(rounds).max(2) {
        let run = twi.run(&ring_rom, &format!("guest-{i}"), &["--memory", "16M"])?;
        if !run.ok {
            bail!("the benchmark workload failed: {}\n{}", last_line(&run.stderr), run.console);
        }
        s.add(&run.console);
        for _ in 0..rounds {
            s.host_tls.push(tls.host_handshake_ms(&dir)?);
        }
        let run = twi.run(&serial_rom, &format!("guest-serial-{i}"), &["--memory", "16M", "--channel", "serial"])?;
        s.serial_up.extend(rates(&run.console, "upload"));
        s.serial_down.extend(rates(&run.console, "download"));
    }
    s.print();
    Ok(())
}

#[derive(Default)]
struct GuestSamples {
    up: Samples,
    down: Samples,
    serial_up: Samples,
    serial_down: Samples,
    keygen: Samples,
    boot_sign: Samples,
    sign: Samples,
    tls: Samples,
    host_tls: Samples,
    first_response: Samples,
    acquire: Samples,
}

impl GuestSamples {
    /// The figures of one run's console. A guest whose TSC calibration failed (the PIT did not
    /// answer in time on a loaded host) prints 0 for its times: those are no samples.
    fn add(&mut self, console: &str) {
        let ms = |marker: &str| numbers_after(console, marker).into_iter().filter(|&us| us > 0.0).map(|us| us / 1e3);
        self.up.extend(rates(console, "upload"));
        self.down.extend(rates(console, "download"));
        self.keygen.extend(ms("P-384 keygen "));
        self.boot_sign.extend(ms(" us, sign "));
        self.sign.extend(ms("bench: sign "));
        self.tls.extend(ms("bench: tls handshake+get "));
        self.first_response.extend(ms("bench: entry to first response "));
        self.acquire.extend(ms("(acquire "));
    }

    fn print(&self) {
        figure(
            "channel guest -> host (4 MiB, ring)",
            "MB/s",
            &self.up,
            Some(("16550 fallback, 64 KiB", &self.serial_up)),
        );
        figure(
            "channel host -> guest (4 MiB, ring)",
            "MB/s",
            &self.down,
            Some(("16550 fallback, 64 KiB", &self.serial_down)),
        );
        figure(
            "guest P-384 key generation (at boot)",
            "ms",
            &self.keygen,
            Some(("its first signature", &self.boot_sign)),
        );
        figure("guest P-384 signature (vault, warm)", "ms", &self.sign, None);
        figure(
            "payload entry -> first mTLS response (acquire + GET)",
            "ms",
            &self.first_response,
            Some(("host openssl s_client with a credential on disk", &self.host_tls)),
        );
        figure("  of which acquire (attestation + issuance via the host)", "ms", &self.acquire, None);
        figure(
            "guest mTLS 1.3 handshake + GET",
            "ms",
            &self.tls,
            Some(("host openssl s_client, whole process", &self.host_tls)),
        );
    }
}
