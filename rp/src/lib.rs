//! `twi-rp`: the relying party of the Payroll story ("payroll-db"), an HTTPS service that
//! authenticates a workload by the credential the TWI issuer gave it and authorizes it by its
//! Stable identifier and business claims, never by a measurement.
//!
//! Two ways in (draft-ietf-wimse-workload-creds §3 and §4, draft-ietf-wimse-wpt):
//!
//! - **mTLS**: a client certificate chained to the issuer CA; the workload is its one
//!   `spiffe://` URI SAN (SPIFFE X.509-SVID). See [`tls`].
//! - **WIT + WPT** over server-authenticated TLS: `Workload-Identity-Token: <WIT>` verified
//!   under the issuer's published WIT keys ([`wit`]), and `Authorization: WPT <jwt>` proving
//!   possession of the WIT's `cnf` key for exactly this request ([`wpt`]), each proof once
//!   ([`replay`]).
//!
//! Then [`policy`] decides by route, identifier and claims, and the route's configured data is
//! served. A failed authentication is a 401 with `WWW-Authenticate: WPT` and an RFC 9457 problem
//! document naming the check ([`error::AuthError::check`]); an authenticated workload that may
//! not do what it asks gets a 403.
//!
//! ```no_run
//! # async fn run() -> Result<(), twi_rp::RpError> {
//! let rp = twi_rp::RelyingParty::from_config_file(std::path::Path::new("rp.toml"))?;
//! rp.run().await
//! # }
//! ```
//!
//! The JOSE checks use the `jsonwebtoken` crate, not the issuer's own JOSE code, so the tests
//! check the issuer's tokens with an independent implementation.

pub mod config;
pub mod error;
pub mod jose;
pub mod policy;
pub mod replay;
pub mod server;
pub mod simulated;
pub mod tls;
pub mod wit;
pub mod wpt;

pub use config::{Config, ConfigError};
pub use error::AuthError;
pub use server::{RelyingParty, RpError};
