//! Frame figures from one run's channel dump (`twi run --channel-dump`): every frame's message
//! and size per direction, and each large frame against what it carries.
//!
//! Two ratios per message, each frame's bytes (with its delimiter) over:
//! - its payload, the CBOR message the frame carries: the framing's overhead (COBS, CRC-32,
//!   the delimiter);
//! - its content, the bytes of the message's byte and text strings (report, key, freshness,
//!   target, CSR, certificate table or its digest…): the framing's overhead and the CBOR
//!   structure's (array, map keys, string headers, small integers, all counted as overhead).
//!
//! Before issue 17 item 2 the figure divided the Evidence frame by its report and certificate
//! table only, while the frame also carried the key, the freshness element, the target and the
//! CSR; the table (SEV-SNP) and the quote (TDX) now cross the channel once (host → guest, in
//! the doorbell's answer), the Evidence names them by SHA-384, and the content ratio counts
//! every field.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use twi_proto::FrameDecoder;
use twi_proto::msg::{DoorbellKind, Message, Platform, decode};

use crate::stats::section;
use crate::twi::{Twi, last_line};

/// One frame of the dump.
struct Frame {
    name: String,
    /// Bytes on the wire, delimiter included.
    wire: usize,
    /// The CBOR payload (empty when the frame was malformed).
    payload: Vec<u8>,
    message: Option<Message>,
}

/// Every frame in `stream`.
fn frames(stream: &[u8]) -> Vec<Frame> {
    let mut decoder = FrameDecoder::new();
    let (mut out, mut since) = (Vec::new(), 0);
    for &byte in stream {
        since += 1;
        if let Some(result) = decoder.push(byte) {
            let frame = match result.map_err(twi_proto::ProtoError::from).and_then(|p| decode(&p).map(|m| (p, m))) {
                Ok((payload, message)) => {
                    Frame { name: message.name().into(), wire: since, payload, message: Some(message) }
                }
                Err(e) => Frame { name: format!("malformed ({e:?})"), wire: since, payload: Vec::new(), message: None },
            };
            out.push(frame);
            since = 0;
        }
    }
    out
}

/// The bytes of the byte and text strings in the CBOR item `cbor` (well formed: it decoded),
/// everything else being structure. Definite lengths only, as the channel's encoder writes.
fn content(cbor: &[u8]) -> usize {
    let (mut pos, mut pending, mut strings) = (0usize, 1usize, 0usize);
    while pending > 0 && pos < cbor.len() {
        pending -= 1;
        let (major, info) = (cbor[pos] >> 5, cbor[pos] & 0x1f);
        pos += 1;
        let arg = match info {
            0..=23 => u64::from(info),
            24..=27 => {
                let n = 1usize << (info - 24);
                let value = cbor[pos..pos + n].iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
                pos += n;
                value
            }
            _ => return strings,
        };
        let count = usize::try_from(arg).unwrap_or(usize::MAX);
        match major {
            2 | 3 => {
                strings += count;
                pos += count;
            }
            4 => pending += count,
            5 => pending += 2 * count,
            _ => {}
        }
    }
    strings
}

fn totals(label: &str, frames: &[Frame]) {
    let mut by: BTreeMap<&str, (usize, usize, usize, usize)> = BTreeMap::new();
    for f in frames {
        let entry = by.entry(&f.name).or_default();
        entry.0 += 1;
        entry.1 += f.wire;
        entry.2 += f.payload.len();
        entry.3 += content(&f.payload);
    }
    let total: usize = frames.iter().map(|f| f.wire).sum();
    say!("{label:<44} {total:>10} bytes in {} frames", frames.len());
    for (name, (count, wire, payload, content)) in by {
        let ratio = |of: usize| if of == 0 { "-".to_string() } else { format!("{:.3}", wire as f64 / of as f64) };
        say!("  {name:<42} {wire:>10} bytes in {count} | / payload {} | / content {}", ratio(payload), ratio(content));
    }
}

/// The frame figures of one `twi run --channel-dump` on each simulated platform: `sim`
/// (SEV-SNP: the report, and the certificate table in the extended guest request's answer)
/// and `sim-tdx` (TDX: the quote, PCK chain included, in the simulated GetQuote's answer).
pub fn frame_ratio(twi: &Twi, rom: &Path) -> Result<()> {
    for platform in ["sim", "sim-tdx"] {
        platform_frames(twi, rom, platform)?;
    }
    Ok(())
}

fn platform_frames(twi: &Twi, rom: &Path, platform: &str) -> Result<()> {
    section(&format!(
        "frames, --platform {platform}: one run's channel, per direction (frame bytes / CBOR payload | / string content)"
    ));
    let dump = twi.dir.join(format!("dump-{platform}"));
    let run = twi.run_on(
        platform,
        rom,
        &format!("frames-{platform}"),
        &["--channel-dump", dump.to_str().context("a UTF-8 path")?],
    )?;
    if !run.ok {
        bail!("twi run --platform {platform} --channel-dump failed: {}", last_line(&run.stderr));
    }
    let up = frames(&std::fs::read(dump.join("guest-to-host.bin"))?);
    let down = frames(&std::fs::read(dump.join("host-to-guest.bin"))?);
    totals("guest -> host", &up);
    totals("host -> guest", &down);
    let Some(frame) = up.iter().find(|f| matches!(f.message, Some(Message::Evidence(_)))) else {
        bail!("no Evidence frame in the dump");
    };
    let Some(Message::Evidence(e)) = &frame.message else { unreachable!() };
    let (wire, payload, content) = (frame.wire, frame.payload.len(), content(&frame.payload));
    say!(
        "{:<44} {wire:>10} bytes | CBOR payload {payload} | content {content} ({}) | ratio {:.3} to the payload, {:.3} to the content (goal <= 1.02: issue 17 item 2)",
        "Evidence frame",
        carried(e),
        wire as f64 / payload as f64,
        wire as f64 / content as f64,
    );
    on_the_channel(&down, e);
    Ok(())
}

/// What the Evidence carries of the firmware's answer.
fn carried(e: &twi_proto::msg::Evidence) -> String {
    let table = match (&e.certificates, &e.certificates_sha384) {
        (Some(table), _) => format!("certificate table sent back, {} bytes", table.len()),
        (None, Some(_)) => "certificate table named by its SHA-384".to_string(),
        (None, None) => "no certificate table".to_string(),
    };
    let evidence = match (e.platform, &e.evidence_sha384) {
        (_, Some(_)) => "quote named by its SHA-384".to_string(),
        (Platform::Tdx | Platform::SimTdx, None) => format!("quote sent back, {} bytes", e.evidence.len()),
        _ => format!("report {}", e.evidence.len()),
    };
    format!("{evidence}, {table}")
}

/// The bytes of the firmware's answers (certificate table, quote) each way: down in the
/// simulated doorbell's answers, up in the Evidence.
fn on_the_channel(down: &[Frame], e: &twi_proto::msg::Evidence) {
    let (mut table_down, mut quote_down) = (0, 0);
    for f in down {
        if let Some(Message::DoorbellResponse(r)) = &f.message {
            table_down += r.certificates.as_ref().map_or(0, Vec::len);
            if r.kind == DoorbellKind::TdxGetQuote {
                quote_down += r.response.len();
            }
        }
    }
    let table_up = e.certificates.as_ref().map_or(0, Vec::len);
    say!(
        "{:<44} {table_down:>10} bytes host -> guest | {table_up} bytes guest -> host",
        "certificate table on the channel"
    );
    if quote_down > 0 {
        say!(
            "{:<44} {quote_down:>10} bytes host -> guest (GetQuote answers) | {} bytes guest -> host",
            "TDX quote on the channel",
            e.evidence.len()
        );
    }
}
