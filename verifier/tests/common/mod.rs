//! What the sample-based tests share: finding the real vendor samples (`tests/data` in the
//! repository; a missing folder fails loudly), `expected.json`, fixed verification times, and
//! running exhaustive loops on every core.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// `tests/data` at the root of the repository (`PROVENANCE.md` there names each file's source).
pub const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data");

pub fn samples() -> PathBuf {
    let dir = Path::new(SAMPLES);
    assert!(
        dir.join("expected.json").is_file() && dir.join("provenance.json").is_file(),
        "real vendor samples are missing: looked for {} (expected.json and provenance.json inside it). \
         They are part of the repository (tests/data); these tests need them.",
        dir.display()
    );
    dir.to_path_buf()
}

pub fn read(rel: &str) -> Vec<u8> {
    let path = samples().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read sample {}: {e}", path.display()))
}

pub fn json(rel: &str) -> serde_json::Value {
    serde_json::from_slice(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not JSON: {e}"))
}

/// `expected.json`, computed by an independent verifier.
pub fn expected() -> serde_json::Value {
    json("expected.json")
}

/// The provenance entry of `file` (relative to the samples folder), checked against the
/// file's sha256 when provenance pins one.
pub fn provenance(file: &str) -> serde_json::Value {
    use sha2::Digest;
    let all = json("provenance.json");
    let entry = all
        .as_array()
        .and_then(|a| a.iter().find(|e| e["file"] == file))
        .unwrap_or_else(|| panic!("provenance.json has no entry for {file}"))
        .clone();
    if let Some(sha) = entry["sha256"].as_str() {
        assert_eq!(hex::encode(sha2::Sha256::digest(read(file))), sha, "{file} is not the file provenance.json names");
    }
    entry
}

pub fn at(rfc3339: &str) -> SystemTime {
    twi_verifier::time::parse_rfc3339(rfc3339).unwrap_or_else(|| panic!("bad time {rfc3339}"))
}

/// Runs `check` on every item, on all cores; panics (with the item's own message) if any did.
pub fn on_all_cores<T: Sync>(items: &[T], check: impl Fn(&T) + Sync) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        for part in items.chunks(chunk) {
            let check = &check;
            scope.spawn(move || part.iter().for_each(check));
        }
    });
}

/// `bytes` with bit `offset % 8` of byte `offset` flipped: a different bit in consecutive
/// bytes, so every bit position of every field gets exercised across a structure.
pub fn flipped(bytes: &[u8], offset: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[offset] ^= 1 << (offset % 8);
    out
}
