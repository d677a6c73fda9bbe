//! The TWI test kit: what the tests of every crate would otherwise each write again.
//!
//! - [`samples`]: the real vendor samples in the repository's `tests/data`, with the checks
//!   that they are there and are the files `provenance.json` names;
//! - [`rng`]: the deterministic test RNG (xorshift64), so a test can make the same key the
//!   runtime's vault makes from the same seed;
//! - [`certs`]: a certificate builder and a small test CA (RFC 5280 profiles: CA, key
//!   endorsement, SPIFFE X.509-SVID-shaped workload credential), independent of the issuer's
//!   own builder so that a test of one does not lean on the other;
//! - [`tools`]: the independent implementations the tests check against (`openssl`, Python's
//!   jwcrypto and pyhpke), which fail with the install command (`./qemu/install-deps`) when
//!   missing and never install anything;
//! - [`scenario`]: the end-to-end scenario builder, `twi run` as a user runs it
//!   (`Scenario::new(twi).platform("sim").mechanism("b").policy(..).run()`), and `twi serve`
//!   as a child process;
//! - [`postgres`]: a throwaway PostgreSQL cluster on loopback (replicas' tests).
//!
//! Dev-only: a dev-dependency of tests, never of a library or binary. It depends on no crate
//! of this workspace, so the runtime and the attester (which depend on nothing of the host
//! side) may use it too.

pub mod certs;
pub mod postgres;
pub mod rng;
pub mod samples;
pub mod scenario;
pub mod tacra;
pub mod tools;

pub use rng::TestRng;
