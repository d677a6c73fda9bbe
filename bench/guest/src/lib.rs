//! The benchmark's workload (`bench/run` links it with `twi build --payload bench/guest`): the
//! figures only the guest can take, each printed as one `bench: ...` console line the benchmark
//! parses. Settings (measured into the image like any target):
//!
//! * `target-sink` (`HOST:PORT`): a server that reads `bytes` bytes, answers `ok` and closes —
//!   the guest→host throughput of the channel (relayed connection, frames, transport);
//! * `target-source`: a server that sends `bytes` bytes and closes — host→guest;
//! * `target` (`https://HOST:PORT/`) with `server-ca`: a TLS 1.3 server; each GET is a fresh
//!   connection and handshake with the workload's credential (mutual TLS);
//! * `bytes`: the transfer size (decimal; default 4 MiB); `rounds`: repetitions (default 5).
#![no_std]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use core::time::Duration;

use twi_payload::https;
use twi_payload::prelude::*;

/// The entry point `twi build --payload` links. First what a workload meets first: from its
/// entry to the first mutual-TLS response (acquire, then one GET); then the channel, then
/// warm signatures and handshakes.
pub fn main(rt: &mut dyn Runtime) -> ExitCode {
    let bytes = number(rt, "bytes").unwrap_or(4 << 20);
    let rounds = number(rt, "rounds").unwrap_or(5);
    let first = match text(rt, "target") {
        Some(target) => match first_response(rt, &target) {
            Ok(credential) => Some((target, credential)),
            Err(e) => {
                rt.log(&format!("bench: FAILED: {e}"));
                return ExitCode::Failure;
            }
        },
        None => None,
    };
    for _ in 0..rounds {
        if let Err(e) = upload(rt, bytes).and_then(|_| download(rt, bytes)) {
            rt.log(&format!("bench: FAILED: {e}"));
            return ExitCode::Failure;
        }
    }
    let Some((target, credential)) = first else { return ExitCode::Success };
    for _ in 0..rounds {
        let t0 = rt.monotonic();
        let signed = rt.sign(credential.key, b"twi bench");
        let t1 = rt.monotonic();
        let got = https::get(rt, &credential, &target);
        let t2 = rt.monotonic();
        match (signed, got) {
            (Ok(_), Ok(response)) if response.status == 200 => {
                rt.log(&format!("bench: sign {} us", micros(t1 - t0)));
                rt.log(&format!("bench: tls handshake+get {} us", micros(t2 - t1)));
            }
            (signed, got) => {
                rt.log(&format!("bench: FAILED: sign {:?}, get {:?}", signed.err(), got.map(|r| r.status).err()));
                return ExitCode::Failure;
            }
        }
    }
    ExitCode::Success
}

/// `bytes` guest→host through the sink, timed until its `ok` comes back.
fn upload(rt: &mut dyn Runtime, bytes: usize) -> Result<(), String> {
    let Some(sink) = text(rt, "target-sink") else { return Ok(()) };
    let data = vec![0x5A; 64 * 1024];
    let t0 = rt.monotonic();
    {
        let mut conn = rt.connect(&sink).map_err(|e| format!("sink: {e}"))?;
        let mut left = bytes;
        while left > 0 {
            let n = left.min(data.len());
            conn.write_all(&data[..n]).map_err(|e| format!("sink: {e:?}"))?;
            left -= n;
        }
        let mut ok = [0u8; 2];
        let mut got = 0;
        while got < ok.len() {
            match conn.read(&mut ok[got..]).map_err(|e| format!("sink: {e:?}"))? {
                0 => return Err("sink: closed before ok".into()),
                n => got += n,
            }
        }
    }
    let elapsed = rt.monotonic() - t0;
    rt.log(&format!("bench: upload {bytes} bytes in {} us", micros(elapsed)));
    Ok(())
}

/// `bytes` host→guest from the source, timed until the last one.
fn download(rt: &mut dyn Runtime, bytes: usize) -> Result<(), String> {
    let Some(source) = text(rt, "target-source") else { return Ok(()) };
    let mut buffer = vec![0u8; 64 * 1024];
    let t0 = rt.monotonic();
    let mut got = 0;
    {
        let mut conn = rt.connect(&source).map_err(|e| format!("source: {e}"))?;
        while got < bytes {
            match conn.read(&mut buffer).map_err(|e| format!("source: {e:?}"))? {
                0 => break,
                n => got += n,
            }
        }
    }
    let elapsed = rt.monotonic() - t0;
    if got != bytes {
        return Err(format!("source: {got} of {bytes} bytes"));
    }
    rt.log(&format!("bench: download {bytes} bytes in {} us", micros(elapsed)));
    Ok(())
}

fn text(rt: &dyn Runtime, key: &str) -> Option<String> {
    rt.setting(key).and_then(|v| core::str::from_utf8(v).ok()).map(String::from)
}

fn number(rt: &dyn Runtime, key: &str) -> Option<usize> {
    text(rt, key)?.parse().ok()
}

/// Entry to the first response: the credential for `target` (attestation and issuance through
/// the host), then one mutual-TLS GET with it. Logs `bench: entry to first response N us
/// (acquire A us, first get G us)`.
fn first_response(rt: &mut dyn Runtime, target: &str) -> Result<Credential, String> {
    let t0 = rt.monotonic();
    let credential = rt.acquire(target, CredentialType::X509, None).map_err(|e| format!("no credential: {e}"))?;
    let t1 = rt.monotonic();
    let response = https::get(rt, &credential, target).map_err(|e| format!("first get: {e}"))?;
    let t2 = rt.monotonic();
    if response.status != 200 {
        return Err(format!("first get answered {}", response.status));
    }
    let (total, acquire, get) = (micros(t2 - t0), micros(t1 - t0), micros(t2 - t1));
    rt.log(&format!("bench: entry to first response {total} us (acquire {acquire} us, first get {get} us)"));
    Ok(credential)
}

fn micros(d: Duration) -> u128 {
    d.as_micros()
}
