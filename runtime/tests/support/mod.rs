//! What the integration tests share, from the test kit: the deterministic RNG (the vault
//! generates the same key from the same seed) and a small test CA.
#![allow(dead_code, unused_imports)]

use std::time::Duration;

pub use twi_testkit::TestRng;
pub use twi_testkit::certs::TestCa;
pub use twi_testkit::rng::{key_from_seed, public_sec1};

pub const WORKLOAD_ID: &str = "spiffe://example.org/payroll";
pub const LIFETIME: Duration = twi_testkit::certs::LIFETIME;
