//! The Credential Authority as mechanism D's Key Store uses it: in its own process (it holds
//! the CA's keys), or in the CA process it calls (`twi serve --roles key-store --ca-url`: a
//! [`KeyStoreCaPeer`], over mutual TLS with its role certificate). Either way the CA certifies
//! the key the Key Store provisions for the workload the policy admits (the provisioning
//! recorded in the provenance log), and the key it releases to an appraised launch (the
//! release's certificate and WIT logged); the credentials and records are the same.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::IssuerError;
use crate::evidence::EvidenceJson;
use crate::log_peer::PeerError;

/// The Credential Authority of a Key Store process.
#[derive(Clone, Default)]
pub enum KeyStoreCa {
    /// In this process: it holds the CA's keys.
    #[default]
    Here,
    /// In the CA process it calls (`--ca-url`).
    Peer(Arc<dyn KeyStoreCaPeer>),
}

impl std::fmt::Debug for KeyStoreCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Here => f.write_str("Here"),
            Self::Peer(peer) => f.debug_tuple("Peer").field(&peer.url()).finish(),
        }
    }
}

/// `POST /v1/ca/key-store/provision`: certify `public_key` (SEC1, hex) for the workload the
/// CA's policy admits with `measurement` (hex) on `platform`, provisioned at the request of
/// `owner` (the subject of the owner's client certificate at the Key Store).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisionCertifyRequest {
    pub platform: String,
    pub measurement: String,
    pub owner: String,
    pub public_key: String,
}

/// The answer: the certificate (DER, hex), its provisioning record logged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProvisionCertified {
    pub certificate: String,
}

/// `POST /v1/ca/key-store/release`: certify the released key `public_key` (SEC1, hex) for the
/// launch of `evidence`, which the Verifier appraised and signed `attestation_result` for
/// (binding the evidence's ephemeral key and nonce). The CA checks both itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseCertifyRequest {
    pub evidence: EvidenceJson,
    pub attestation_result: String,
    pub public_key: String,
}

/// The answer: the released key's certificate (DER, hex) and WIT, both logged (`provenance`:
/// the signed tree head and each record's inclusion proof).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReleaseCertified {
    pub certificate: String,
    pub wit: String,
    pub wit_jti: String,
    pub provenance: Value,
}

/// The Credential Authority in another process, as a Key Store calls it (`twi serve --roles
/// key-store --ca-url`), over mutual TLS with its role certificate.
pub trait KeyStoreCaPeer: Send + Sync {
    /// Its base URL, for messages.
    fn url(&self) -> &str;

    /// `POST /v1/ca/key-store/provision`.
    fn provision(&self, request: &ProvisionCertifyRequest) -> Result<ProvisionCertified, PeerError>;

    /// `POST /v1/ca/key-store/release`.
    fn release(&self, request: &ReleaseCertifyRequest) -> Result<ReleaseCertified, PeerError>;
}

/// The paths of the CA's endpoints for a Key Store of another process.
pub const PROVISION_PATH: &str = "/v1/ca/key-store/provision";
pub const RELEASE_PATH: &str = "/v1/ca/key-store/release";

/// A certificate (DER, hex) the CA process answered, checked to certify `public_key` (SEC1)
/// under the CA `ca` (its signature, by the CA's key).
pub(crate) fn answered_certificate(
    peer: &dyn KeyStoreCaPeer,
    certificate: &str,
    public_key: &[u8],
    ca: &x509_cert::Certificate,
) -> Result<Vec<u8>, IssuerError> {
    let der = hex::decode(certificate).map_err(|_| answered(peer, "a certificate that is not hex"))?;
    let parsed = <x509_cert::Certificate as der::Decode>::from_der(&der)
        .map_err(|e| answered(peer, &format!("a certificate that does not parse ({e})")))?;
    let spki = parsed.tbs_certificate().subject_public_key_info();
    let certified = spki.subject_public_key.as_bytes().unwrap_or_default();
    let (certified, asked) =
        (p384::PublicKey::from_sec1_bytes(certified), p384::PublicKey::from_sec1_bytes(public_key));
    if !matches!((certified, asked), (Ok(certified), Ok(asked)) if certified == asked) {
        return Err(answered(peer, "a certificate for another key than asked"));
    }
    twi_verifier::chain::verify_issued_by(&parsed, ca)
        .map_err(|e| answered(peer, &format!("a certificate not signed by its CA ({e})")))?;
    Ok(der)
}

/// The CA process answered something it should not have (a bad gateway).
fn answered(peer: &dyn KeyStoreCaPeer, what: &str) -> IssuerError {
    let error = PeerError::Refused { status: 502, reason: format!("it answered {what}") };
    IssuerError::CaPeer { url: peer.url().to_string(), error }
}

/// Why the CA process gave no answer.
pub(crate) fn peer_error(peer: &dyn KeyStoreCaPeer, error: PeerError) -> IssuerError {
    IssuerError::CaPeer { url: peer.url().to_string(), error }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use p384::ecdsa::SigningKey;
    use p384::elliptic_curve::Generate;

    use super::*;
    use crate::ca::IssuerCa;

    /// A CA process that is never called: only its URL names it.
    struct Named;

    impl KeyStoreCaPeer for Named {
        fn url(&self) -> &str {
            "https://ca.test"
        }
        fn provision(&self, _: &ProvisionCertifyRequest) -> Result<ProvisionCertified, PeerError> {
            Err(PeerError::Unavailable("not called".into()))
        }
        fn release(&self, _: &ReleaseCertifyRequest) -> Result<ReleaseCertified, PeerError> {
            Err(PeerError::Unavailable("not called".into()))
        }
    }

    fn sec1(key: &SigningKey) -> Vec<u8> {
        key.verifying_key().to_sec1_point(false).as_bytes().to_vec()
    }

    #[test]
    fn the_key_store_keeps_only_a_certificate_of_its_key_by_its_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ca = IssuerCa::load_or_create(&dir.path().join("ca"), "example.org").unwrap();
        let other_ca = IssuerCa::load_or_create(&dir.path().join("other"), "example.org").unwrap();
        let (key, other_key) = (SigningKey::try_generate().unwrap(), SigningKey::try_generate().unwrap());
        let lifetime = Duration::from_secs(3600);
        let certified = ca.certify_key("spiffe://example.org/vault-app", key.verifying_key(), lifetime).unwrap();
        let answer = hex::encode(&certified.der);
        let kept = answered_certificate(&Named, &answer, &sec1(&key), ca.certificate()).unwrap();
        assert_eq!(kept, certified.der);

        let refused = |answer: &str, key: &SigningKey, ca: &IssuerCa| match answered_certificate(
            &Named,
            answer,
            &sec1(key),
            ca.certificate(),
        )
        .unwrap_err()
        {
            IssuerError::CaPeer { url, error: PeerError::Refused { status: 502, reason } } => {
                assert_eq!(url, "https://ca.test");
                reason
            }
            other => panic!("{other:?}"),
        };
        assert!(refused(&answer, &other_key, &ca).contains("another key"));
        assert!(refused(&answer, &key, &other_ca).contains("not signed by its CA"));
        assert!(refused("zz", &key, &ca).contains("not hex"));
        assert!(refused("3000", &key, &ca).contains("does not parse"));
    }
}
