//! The real vendor samples in the repository's `tests/data` (`PROVENANCE.md` there names
//! each file's source repository, path, commit and licence; `provenance.json` pins their
//! SHA-256), and the helpers of the exhaustive negative tests run over them.
//!
//! A missing folder fails loudly: the samples are part of the repository, and a test that
//! silently found nothing would pass without checking anything.

use std::path::{Path, PathBuf};

use sha2::Digest;

/// `tests/data` at the root of the repository.
pub const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data");

/// The samples folder, after checking that it holds `expected.json` and `provenance.json`.
pub fn dir() -> PathBuf {
    let dir = Path::new(DIR);
    assert!(
        dir.join("expected.json").is_file() && dir.join("provenance.json").is_file(),
        "real vendor samples are missing: looked for {} (expected.json and provenance.json inside it). \
         They are part of the repository (tests/data); these tests need them.",
        dir.display()
    );
    dir.to_path_buf()
}

/// The path of sample `rel` (relative to the samples folder).
pub fn path(rel: &str) -> PathBuf {
    dir().join(rel)
}

/// The bytes of sample `rel`.
pub fn read(rel: &str) -> Vec<u8> {
    let path = path(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read sample {}: {e}", path.display()))
}

/// Sample `rel`, parsed as JSON.
pub fn json(rel: &str) -> serde_json::Value {
    serde_json::from_slice(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not JSON: {e}"))
}

/// `expected.json`: every sample's fields as an independent implementation computed them.
pub fn expected() -> serde_json::Value {
    json("expected.json")
}

/// The provenance entry of `file` (relative to the samples folder), checked against the
/// file's SHA-256 when provenance pins one.
pub fn provenance(file: &str) -> serde_json::Value {
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

/// `bytes` with bit `offset % 8` of byte `offset` flipped: a different bit in consecutive
/// bytes, so that every bit position of every field is exercised across a structure.
pub fn flipped(bytes: &[u8], offset: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[offset] ^= 1 << (offset % 8);
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pinned_sample_is_the_file_provenance_names() {
        let all = json("provenance.json");
        let entries = all.as_array().expect("provenance.json is a list");
        assert!(!entries.is_empty());
        for entry in entries {
            let file = entry["file"].as_str().expect("each entry names its file");
            assert!(path(file).is_file(), "{file} is listed in provenance.json but missing");
            provenance(file);
        }
    }

    #[test]
    fn a_flip_changes_one_bit() {
        let bytes = [0u8; 10];
        for offset in 0..bytes.len() {
            let f = flipped(&bytes, offset);
            assert_eq!(f.iter().map(|b| b.count_ones()).sum::<u32>(), 1);
            assert_eq!(f[offset], 1 << (offset % 8));
        }
    }
}
