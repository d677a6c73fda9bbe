//! Client certificates issued on the *simulated* TEE, accepted only when configured.
//!
//! The TWI issuer marks a credential issued on simulated evidence with a **critical** extension
//! (its OID under the issuer's arc, `…​.1`). RFC 5280 §4.2 makes a verifier that does not
//! recognise a critical extension reject the certificate, and rustls-webpki does so: by default
//! the relying party refuses simulated credentials like any standard verifier. A development
//! relying party that sets `simulated_tee_oid` recognises that one extension: a leaf carrying
//! it (and no other unknown critical extension) is checked here — issued directly by the issuer
//! CA (name and ECDSA signature, verified with the rustls provider's algorithms), within its
//! validity, an end entity with EKU clientAuth — and every other certificate still goes to
//! webpki.

use std::sync::Arc;

use der::{Decode, Encode};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls13_signature_with_raw_key};
use rustls::pki_types::{CertificateDer, SubjectPublicKeyInfoDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use x509_cert::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage};

/// Extensions (besides the simulated-TEE marker) this check understands when critical.
const KNOWN_CRITICAL: [&str; 4] = ["2.5.29.15", "2.5.29.19", "2.5.29.17", "2.5.29.37"];
const CLIENT_AUTH: &str = "1.3.6.1.5.5.7.3.2";

/// webpki for every client certificate, except those with the configured simulated-TEE marker.
#[derive(Debug)]
pub struct SimulatedAware {
    pub inner: Arc<dyn ClientCertVerifier>,
    pub marker: der::asn1::ObjectIdentifier,
    /// The issuer CA (DER) a simulated credential must be issued by.
    pub issuer_ca: Certificate,
    pub algorithms: WebPkiSupportedAlgorithms,
}

fn refuse(why: impl Into<String>) -> Error {
    Error::General(format!("simulated-TEE client certificate refused: {}", why.into()))
}

impl SimulatedAware {
    fn marked(&self, cert: &Certificate) -> bool {
        let exts = cert.tbs_certificate().extensions().map(Vec::as_slice).unwrap_or_default();
        exts.iter().any(|e| e.extn_id == self.marker && e.critical)
    }

    fn check(&self, cert: &Certificate, intermediates: &[CertificateDer<'_>], now: UnixTime) -> Result<(), Error> {
        if !intermediates.is_empty() {
            return Err(refuse("it came with intermediates; the issuer CA issues credentials directly"));
        }
        let tbs = cert.tbs_certificate();
        if tbs.issuer() != self.issuer_ca.tbs_certificate().subject() {
            return Err(refuse("it is not issued by the configured issuer CA"));
        }
        self.check_signature(cert)?;
        let now = std::time::Duration::from_secs(now.as_secs());
        let validity = tbs.validity();
        if now < validity.not_before.to_unix_duration() || now > validity.not_after.to_unix_duration() {
            return Err(refuse("it is outside its validity period"));
        }
        for ext in tbs.extensions().map(Vec::as_slice).unwrap_or_default() {
            let oid = ext.extn_id.to_string();
            if ext.critical && ext.extn_id != self.marker && !KNOWN_CRITICAL.contains(&oid.as_str()) {
                return Err(refuse(format!("it has another unknown critical extension {oid}")));
            }
        }
        match tbs.get_extension::<BasicConstraints>() {
            Ok(Some((_, bc))) if !bc.ca => {}
            _ => return Err(refuse("it is not marked as an end entity (basicConstraints cA=false)")),
        }
        match tbs.get_extension::<ExtendedKeyUsage>() {
            Ok(Some((_, eku))) if eku.0.iter().any(|p| p.to_string() == CLIENT_AUTH) => Ok(()),
            _ => Err(refuse("its extended key usage does not include clientAuth")),
        }
    }

    fn check_signature(&self, cert: &Certificate) -> Result<(), Error> {
        let content = |alg: &x509_cert::spki::AlgorithmIdentifierOwned| -> Result<Vec<u8>, Error> {
            let der = alg.to_der().map_err(|e| refuse(e.to_string()))?;
            // The contents of the SEQUENCE (short form: algorithm identifiers are small).
            der.get(2..).map(<[u8]>::to_vec).ok_or_else(|| refuse("an algorithm identifier is empty"))
        };
        let ca_spki = self.issuer_ca.tbs_certificate().subject_public_key_info();
        let (key_alg, sig_alg) = (content(&ca_spki.algorithm)?, content(cert.signature_algorithm())?);
        let alg = self
            .algorithms
            .all
            .iter()
            .find(|a| a.public_key_alg_id().as_ref() == key_alg && a.signature_alg_id().as_ref() == sig_alg)
            .ok_or_else(|| refuse("its signature algorithm is not one the TLS provider verifies"))?;
        let tbs = cert.tbs_certificate().to_der().map_err(|e| refuse(e.to_string()))?;
        let signature = cert.signature().as_bytes().ok_or_else(|| refuse("its signature is not whole bytes"))?;
        alg.verify_signature(ca_spki.subject_public_key.raw_bytes(), &tbs, signature)
            .map_err(|_| refuse("its signature does not verify under the issuer CA"))
    }
}

impl ClientCertVerifier for SimulatedAware {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        match Certificate::from_der(end_entity.as_ref()) {
            Ok(cert) if self.marked(&cert) => {
                self.check(&cert, intermediates, now)?;
                Ok(ClientCertVerified::assertion())
            }
            _ => self.inner.verify_client_cert(end_entity, intermediates, now),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        // webpki cannot parse a certificate with the marker (an unknown critical extension):
        // a marked leaf's handshake signature is checked under its SubjectPublicKeyInfo.
        match Certificate::from_der(cert.as_ref()) {
            Ok(parsed) if self.marked(&parsed) => {
                let spki =
                    parsed.tbs_certificate().subject_public_key_info().to_der().map_err(|e| refuse(e.to_string()))?;
                verify_tls13_signature_with_raw_key(
                    message,
                    &SubjectPublicKeyInfoDer::from(spki),
                    dss,
                    &self.algorithms,
                )
            }
            _ => self.inner.verify_tls13_signature(message, cert, dss),
        }
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
