//! Frame figures from one run's channel dump (`twi run --channel-dump`): every frame's message
//! and size per direction, and the Evidence frame against what it must carry (the report and the
//! certificate table): the overhead the framing and the message add.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use twi_proto::MessageReader;
use twi_proto::msg::Message;

use crate::stats::section;
use crate::twi::{Twi, last_line};

/// (message name, frame bytes with its delimiter) of every frame in `stream`.
fn frames(stream: &[u8]) -> Vec<(String, usize, Option<Message>)> {
    let mut reader = MessageReader::new();
    let (mut out, mut since) = (Vec::new(), 0);
    for &byte in stream {
        since += 1;
        if let Some(result) = reader.push(byte) {
            match result {
                Ok(msg) => out.push((msg.name().to_string(), since, Some(msg))),
                Err(e) => out.push((format!("malformed ({e:?})"), since, None)),
            }
            since = 0;
        }
    }
    out
}

fn totals(label: &str, frames: &[(String, usize, Option<Message>)]) {
    let mut by: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (name, len, _) in frames {
        let entry = by.entry(name).or_default();
        entry.0 += 1;
        entry.1 += len;
    }
    let total: usize = frames.iter().map(|f| f.1).sum();
    println!("{label:<44} {total:>10} bytes in {} frames", frames.len());
    for (name, (count, bytes)) in by {
        println!("  {name:<42} {bytes:>10} bytes in {count}");
    }
}

pub fn frame_ratio(twi: &Twi, rom: &Path) -> Result<()> {
    section("frames: one run's channel, per direction");
    let dump = twi.dir.join("dump");
    let run = twi.run(rom, "frames", &["--channel-dump", dump.to_str().context("a UTF-8 path")?])?;
    if !run.ok {
        bail!("twi run --channel-dump failed: {}", last_line(&run.stderr));
    }
    let up = frames(&std::fs::read(dump.join("guest-to-host.bin"))?);
    let down = frames(&std::fs::read(dump.join("host-to-guest.bin"))?);
    totals("guest -> host", &up);
    totals("host -> guest", &down);
    let Some((_, len, Some(Message::Evidence(e)))) = up.iter().find(|f| matches!(f.2, Some(Message::Evidence(_))))
    else {
        bail!("no Evidence frame in the dump");
    };
    let payload = e.evidence.len() + e.certificates.as_ref().map_or(0, Vec::len);
    println!(
        "{:<44} {len:>10} bytes | report + certificates {payload} | ratio {:.3} (goal <= 1.02: issue 17 item 2)",
        "Evidence frame",
        *len as f64 / payload as f64
    );
    Ok(())
}
