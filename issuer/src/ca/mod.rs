//! The Credential Authority role (draft-novak-twi-attestation; RFC 9334's Relying Party that
//! issues): it certifies exactly the attested key, never a key it was merely told about.
//!
//! - [`IssuerCa`]: its signing identity, a P-384 key and a self-signed CA certificate created
//!   on first use in the issuer's state directory (the anchor every image embeds);
//! - `authority`: what it issues — the X.509 credential (SPIFFE X.509-SVID profile, with the
//!   policy's binding and the evidence digest in extensions) and the WIMSE WIT (signed by its
//!   own WIT key, never the CA key), and the certificates of provisioned (mechanism D) keys;
//! - `redeem`: mechanism B, the attestation results it accepts from the Verifier;
//! - `x509`: the certificate profiles it builds with.

mod authority;
mod identity;
mod redeem;
mod x509;

pub use authority::wit_jwks;
pub(crate) use authority::{CredentialAuthority, Named, log_entry_extension, published_wit_keys};
pub(crate) use identity::Certified;
pub use identity::IssuerCa;
pub(crate) use redeem::{
    CERTIFIED_FOR, Checked, MAX_CERTIFIED, MAX_PENDING, Marked, VerifiedLaunch, certified_already, check, check_result,
    not_pending,
};
pub use redeem::{CredentialRequestIn, MAX_ATTESTATION_RESULT_AGE, RequestRefused};
pub(crate) use x509::random_serial;
