//! What the sample-based tests share: the real vendor samples (`tests/data`, through the test
//! kit: a missing folder fails loudly), fixed verification times, and the exhaustive loops.

#![allow(dead_code, unused_imports)]

use std::time::SystemTime;

pub use twi_testkit::samples::{dir as samples, expected, flipped, json, on_all_cores, provenance, read};

pub fn at(rfc3339: &str) -> SystemTime {
    twi_verifier::time::parse_rfc3339(rfc3339).unwrap_or_else(|| panic!("bad time {rfc3339}"))
}
