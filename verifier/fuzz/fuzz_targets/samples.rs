//! The real samples the targets verify against, read once at start-up from tests/data.

use std::path::PathBuf;

pub fn read(rel: &str) -> Vec<u8> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data"));
    std::fs::read(dir.join(rel)).unwrap_or_else(|e| panic!("fuzz target needs the samples in {}: {e}", dir.display()))
}

pub fn at(text: &str) -> std::time::SystemTime {
    twi_verifier::time::parse_rfc3339(text).expect("time")
}
