//! Made-up PKIs shaped like the vendors' ([`amd`]: ARK → ASK/ASVK → VCEK/VLEK with AMD's
//! extensions, ECDSA P-384; [`intel`]: SGX Root CA → PCK Platform CA → PCK leaf and TCB
//! Signing, ECDSA P-256, with signed collateral and quotes), for what the real samples do not
//! cover. Also read by the issuer's tests of issuance on hardware evidence
//! (`issuer/tests/hardware_evidence.rs`).
//!
//! Certificates are built with the test kit's builder (`twi_testkit::certs`), independently of
//! the issuer's certificate profiles: the verifier's tests do not depend on the issuer.

#![allow(dead_code)]

pub mod amd;
pub mod intel;

use std::time::{Duration, SystemTime};

use p384::ecdsa::signature::{Keypair, Signer};
use twi_verifier::chain::{Cert, Crl};
use x509_cert::spki::{DynSignatureAlgorithmIdentifier, EncodePublicKey, SignatureBitStringEncoding};

pub use twi_testkit::certs::{Extra, Kind, Profile, YEAR, spki};

/// Issues `profile` for `subject`, valid from now for `lifetime`, signed by `signer` (ECDSA
/// with the signer's curve's hash: P-384 → ecdsa-with-SHA384, P-256 → ecdsa-with-SHA256).
pub fn issue<S, Sig>(
    profile: Profile,
    lifetime: Duration,
    subject: x509_cert::spki::SubjectPublicKeyInfoOwned,
    signer: &S,
) -> Cert
where
    S: Signer<Sig> + Keypair + DynSignatureAlgorithmIdentifier,
    S::VerifyingKey: EncodePublicKey,
    Sig: SignatureBitStringEncoding,
{
    let certificate = twi_testkit::certs::issue::<S, Sig>(profile, lifetime, subject, signer);
    Cert::from_certificate(&certificate).unwrap()
}

/// A CRL by `issuer` (whose key `signer` is) listing `revoked`, current from `this_update`
/// to `next_update`.
pub fn crl<S, Sig>(
    issuer: &Cert,
    signer: &S,
    revoked: &[&Cert],
    this_update: SystemTime,
    next_update: SystemTime,
) -> Crl
where
    S: Signer<Sig> + DynSignatureAlgorithmIdentifier,
    Sig: SignatureBitStringEncoding,
{
    let revoked: Vec<&x509_cert::Certificate> = revoked.iter().map(|c| c.certificate()).collect();
    let der = twi_testkit::certs::crl::<S, Sig>(issuer.certificate(), signer, &revoked, this_update, next_update);
    Crl::from_der(&der, "test CRL").unwrap()
}
