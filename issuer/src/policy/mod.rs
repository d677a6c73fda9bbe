//! The Appraisal role (RFC 9334 "Appraisal Policy for Evidence"; TWI reference architecture
//! §5.4): which launches the issuer admits, and as which Stable workload.
//!
//! A TOML file (commented example: `issuer/policy.example.toml`) maps reference values — the
//! launch measurements `twi build` computes, added with `twi policy add-image` — to a Stable
//! workload identifier (`spiffe://<trust-domain>/<id>`) and business claims. A new version of
//! a workload is admitted by adding a reference entry; its identifier and claims do not
//! change. Each workload also chooses its freshness (AF_L0..2), platform-claim fidelity
//! (CF_L0..2), stickiness (CS_L1..3) and credential acquisition mechanism (A..D).
//!
//! By job:
//! - `model`: the levels, claims, reference values, workloads and the parsed [`Policy`];
//! - `file`: the file format, read and written through serde ([`PolicyFile`]), and the
//!   reference entries of a workload's signed CoRIM;
//! - `values`: the reference entries of an image, from its `reference-values.json`;
//! - `corim`: reference values as a CoRIM (draft-ietf-rats-corim), written by `twi build`
//!   and read by a workload's `reference_values_corim`;
//! - `admission`: [`Policy::admit`] maps what a Verifier established ([`Appraised`]) to an
//!   [`Admission`], or says why not — naming the closest reference entry and how it differs;
//! - `renewal`: a credential promises a [`Binding`]; [`RenewalCheck`] refuses a renewal that
//!   breaks it;
//! - `signature`: CF_L0 claims count only under the policy key's detached signature;
//! - `inventory`: CF_L1 claims from a provider's [`SignedInventory`];
//! - `targets`: per target, the TACRA mode, freshness kind and credential types;
//! - `vmpl`: the SEV-SNP VMPLs a workload admits (below a paravisor, or not);
//! - `provenance`: the SBOM a reference entry names, its store beside the policy file, and a
//!   workload's provenance demands (SBOM required, vendor, deny list, minimum versions).

mod admission;
pub mod corim;
mod dns;
mod file;
mod inventory;
mod model;
mod provenance;
mod renewal;
mod signature;
mod targets;
mod values;
pub mod vendor;
mod vmpl;

#[cfg(test)]
mod corim_tests;
#[cfg(test)]
mod tests;

pub use admission::{
    Admission, Appraised, AppraisedTcb, Binding, ClosestMatch, FieldDiff, KnownLaunch, MatchedReference,
    PlatformClaimSource, PolicyRejection,
};
pub use file::{Hex, PolicyFile, ReferenceFile, U64, WorkloadFile};
pub use inventory::SignedInventory;
pub use model::TargetRule;
pub use model::{
    ClaimValue, Claims, DEFAULT_LIFETIME, Fidelity, FreshnessLevel, Mechanism, POLICY_FLAGS_MASK, Policy, PolicyError,
    Reference, ReferenceEntry, SNP_POLICY_DEBUG, SnpReference, SnpTcb, Stickiness, TDX_ATTRIBUTES_DEBUG, TdxReference,
    Workload, parse_platform, platform_name,
};
pub use provenance::{
    ATTACHMENT_LIMIT, Component, Demands, Denied, ProvenanceChecked, ProvenanceFile, ProvenanceRefusal, SBOM_DIR, Sbom,
    SbomDigest, SbomError, VendorKey, sbom_store_of, store_attachment, store_sbom, stored_attachment, stored_sbom,
};
pub use renewal::{RenewalCheck, RenewalRefused};
pub use signature::{PolicyKey, sign_policy};
pub use targets::{TIMESTAMP_WINDOW, TargetDecision, TargetRefusal, check_absent};
pub use values::{corim_image_references, image_references};
pub use vmpl::DEFAULT_VMPLS;
