//! AMD's side of SEV-SNP verification: product lines, the built-in roots, the VCEK/VLEK
//! certificate extensions, the KDS cache layout, and the appraisal policy. The verifier that
//! puts them together is [`crate::snp`].

pub mod kds;
pub mod policy;
pub mod product;
pub mod roots;
pub mod vek;

pub use policy::{PolicyViolation, SnpPolicy};
pub use product::Product;
pub use roots::{Anchor, SnpTrust};
pub use vek::{VekExtensions, VekKind};
