//! Object identifiers the issuer puts in certificates.
//!
//! The project has no Private Enterprise Number yet, so its arc sits under 32473, the PEN
//! that RFC 5612 reserves for documentation and examples. Everything hangs off [`TWI_ARC`]:
//! registering a real PEN changes this one module. The vendors' OIDs (AMD's VCEK extensions,
//! the signature algorithms of their chains) are the verifier's ([`twi_verifier::oids`]).

use der::asn1::ObjectIdentifier;

/// The algorithm of every signature the issuer's CA makes (RFC 5758), as the verifier names it.
pub use twi_verifier::oids::ECDSA_WITH_SHA384;

/// 1.3.6.1.4.1.32473 (RFC 5612) . 7467 ("TW" on a phone keypad is 89: any number works).
pub const TWI_ARC: &str = "1.3.6.1.4.1.32473.7467";

/// Credential extension: the evidence came from the *simulated* TEE (UTF8String naming the
/// simulated platform). A relying party must never treat such a credential as hardware-backed.
pub const SIMULATED_TEE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.32473.7467.1");
/// Credential extension: SHA-384 of the evidence the issuance was decided on (OCTET STRING),
/// linking the credential to its provenance.
pub const EVIDENCE_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.32473.7467.2");
/// Credential extension: the appraisal policy's decision (DER SEQUENCE { policyVersion
/// UTF8String, stickiness UTF8String, bindingSha256 OCTET STRING (32) }): the policy version
/// that admitted the workload and the SHA-256 of the stickiness binding it promises.
pub const POLICY_BINDING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.32473.7467.3");
