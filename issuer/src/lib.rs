//! The TWI issuer: it appraises Evidence from a confidential VM and issues a credential bound
//! to the key that the Evidence attests.
//!
//! A thin front ([`Issuer`]) over its roles, in the words of RFC 9334 and
//! draft-novak-twi-attestation, each a module with its own error type:
//!
//! | role | module | what it does |
//! | --- | --- | --- |
//! | Verifier | `verifier` | appraises evidence with `twi-verifier` (one verifier per platform), checks what REPORTDATA binds, keeps nonces and epochs, signs attestation results ([`ear`]) |
//! | Appraisal policy | [`policy`] | maps verified launches to Stable workload identifiers and claims; freshness, fidelity, stickiness |
//! | Credential Authority | `ca` | its CA ([`IssuerCa`]); X.509 and WIT ([`wit`]) credentials for the attested key; mechanism B's redemption; the SPIFFE bundle ([`bundle`]) |
//! | Key Store | [`keystore`] | mechanism D: provisioned credentials, released HPKE-encrypted to the evidence's key |
//! | Provenance log | [`provenance`], `records` | one record per credential in an RFC 9162 Merkle tree, with inclusion proofs |
//!
//! What each role is asked is `asks`; the same asks over HTTP are [`http`] (their wire types:
//! [`http::wire`]). The issuer always runs under an appraisal policy.

mod asks;
pub mod bundle;
mod ca;
pub mod database;
pub mod ear;
mod error;
pub mod evidence;
pub mod freshness;
mod group_commit;
pub mod held;
pub mod http;
mod issuer;
pub mod jose;
pub mod key_store_ca;
pub mod keystore;
mod ledger;
pub mod log_peer;
pub mod metrics;
pub mod oids;
pub mod policy;
pub mod provenance;
mod records;
mod redemption;
mod rejection;
mod results;
mod retrieval;
mod spiffe;
mod state;
mod transparency;
mod verifier;
mod waiting;
pub mod wit;

pub use asks::{AttestationResult, Challenge, CredentialRequest, Issued, KeyReleased};
pub use ca::{CredentialRequestIn, IssuerCa, MAX_ATTESTATION_RESULT_AGE, RequestRefused, wit_jwks};
pub use error::IssuerError;
pub use held::{CaKeys, HeldKeys, KeyStoreKeys, LogKeys, VerifierKeys};
pub use issuer::{Issuer, IssuerConfig, PublishedKeys};
pub use key_store_ca::{KeyStoreCa, KeyStoreCaPeer};
pub use rejection::Rejection;
pub use verifier::VERIFIER_KID;
pub use verifier::{Appraisal, Evidence, EvidenceBundle, EvidenceRejection, measured_events};

/// Transitional: `runtime/tests/session.rs` names this path until the runtime's tests drive
/// the host's bridge instead of their own loader (issue 12, item 4). Use
/// [`twi_verifier::snp::endorsements_from_table`].
#[doc(hidden)]
pub mod snp {
    pub use twi_verifier::snp::endorsements_from_table;
}
