//! Each provenance record as a SCITT signed statement (draft-ietf-scitt-architecture): a tagged
//! COSE_Sign1 (RFC 9052) whose payload is the record's canonical JSON, exactly the bytes the
//! log stored before statements (`application/json`: `twi provenance show`, `jq` and an
//! auditor's `sqlite3` read it as they did; a COSE library hands it out as one byte string).
//!
//! Protected header: `alg` ES384 (1), `kid` (4) the log key's (`twi-log`), `content type` (3)
//! `application/json`, and the CWT Claims (15) the signed-statement profile requires: `iss` (1)
//! the issuer (`spiffe://<trust domain>/twi-issuer`), `sub` (2) the credential id (the X.509
//! serial in hex, or the WIT `jti`), `iat` (6) the issuance time. The leaf of the RFC 9162 tree
//! is the statement's bytes, so the log's receipt proves the statement, signature included.
//!
//! Signed with the **log key**: the statement is made by the issuer's provenance-log role at
//! registration, the key is already published (`twi-log` in the JWKS, `kid` here) for the
//! receipts a reader checks alongside, and it signs no other format that a statement could be
//! confused with (receipts carry `vds` and a detached payload, statements CWT claims and an
//! attached one; both are refused when read as the other). The CA key signs only X.509 and the
//! WIT key only JWS, as before.
//!
//! With an auditor key (`twi serve --auditor-key`), the payload is instead the record's JSON
//! encrypted to that key (`sealed.rs`: a tagged COSE_Encrypt, content type
//! `application/cose; cose-type="cose-encrypt"`). The headers, the CWT claims (`iss`, `sub`,
//! `iat` in clear, so a record is still found by its credential id), the signature and the leaf
//! are as for a plain record: anyone verifies the statement, its inclusion and the log without
//! the auditor key; only the auditor reads what the record says ([`SignedStatement::open`]).
//!
//! Built and read with coset; the ES384 signature with p384. Tests check statements with
//! pycose.

use coset::cwt::{ClaimsSetBuilder, Timestamp};
use coset::{AsCborValue, CoseSign1, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable, iana};
use p384::ecdsa::signature::Verifier;
use p384::ecdsa::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::sealed::{self, AuditorKey, AuditorSecret, SEALED_CONTENT_TYPE};
use super::{LogError, ProvenanceRecord};

/// The payload's content type.
pub const CONTENT_TYPE: &str = "application/json";

/// One record as the signed statement the log holds: what it says, and its exact bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedStatement {
    /// The payload: the record, or the record sealed to an auditor.
    pub content: Content,
    /// `sub`: the credential the statement is about (the record's `credential_id`).
    pub subject: String,
    /// `iss`: who made the statement.
    pub issuer: String,
    /// The tagged COSE_Sign1: the leaf.
    pub bytes: Vec<u8>,
}

/// A statement's payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// The record's JSON, in clear (`application/json`).
    Plain(ProvenanceRecord),
    /// The record encrypted to the auditor key `kid` (a tagged COSE_Encrypt, `cose_encrypt`).
    Sealed { kid: Vec<u8>, cose_encrypt: Vec<u8> },
}

fn bad(what: impl std::fmt::Display) -> LogError {
    LogError::Encode(format!("not a TWI signed statement (SCITT COSE_Sign1): {what}"))
}

impl SignedStatement {
    /// Signs `record` as issuer `iss` with the log key `key` (`kid`), the record in clear.
    pub fn sign(record: ProvenanceRecord, iss: &str, key: &SigningKey, kid: &str) -> Result<Self, LogError> {
        Self::sign_for(record, iss, key, kid, None)
    }

    /// [`Self::sign`], the record encrypted to `auditor` when given (nothing of it but the
    /// credential id and the issuance time, the CWT claims, stays in clear).
    pub fn sign_for(
        record: ProvenanceRecord,
        iss: &str,
        key: &SigningKey,
        kid: &str,
        auditor: Option<&AuditorKey>,
    ) -> Result<Self, LogError> {
        let json = zeroize::Zeroizing::new(serde_json::to_vec(&record).map_err(|e| LogError::Encode(e.to_string()))?);
        let iat = i64::try_from(record.issued_at).map_err(|_| LogError::Encode("issued_at is out of range".into()))?;
        let (payload, content_type, content) = match auditor {
            None => (json.to_vec(), CONTENT_TYPE, Content::Plain(record.clone())),
            Some(auditor) => {
                let cose_encrypt = sealed::seal(&json, auditor)?;
                let content = Content::Sealed { kid: auditor.kid().to_vec(), cose_encrypt: cose_encrypt.clone() };
                (cose_encrypt, SEALED_CONTENT_TYPE, content)
            }
        };
        let claims = ClaimsSetBuilder::new()
            .issuer(iss.to_string())
            .subject(record.credential_id.clone())
            .issued_at(Timestamp::WholeSeconds(iat))
            .build()
            .to_cbor_value()
            .map_err(|e| LogError::Encode(format!("a statement's claims: {e}")))?;
        let protected = HeaderBuilder::new()
            .algorithm(iana::Algorithm::ES384)
            .key_id(kid.as_bytes().to_vec())
            .content_type(content_type.to_string())
            .value(iana::HeaderParameter::CwtClaims as i64, claims)
            .build();
        let sign1 = CoseSign1Builder::new()
            .protected(protected)
            .payload(payload)
            .try_create_signature(b"", super::receipt::es384(key))?
            .build();
        let bytes = sign1.to_tagged_vec().map_err(|e| LogError::Encode(format!("a statement: {e}")))?;
        Ok(Self { content, subject: record.credential_id, issuer: iss.to_string(), bytes })
    }

    /// The record, when it is in clear.
    pub fn record(&self) -> Option<&ProvenanceRecord> {
        match &self.content {
            Content::Plain(record) => Some(record),
            Content::Sealed { .. } => None,
        }
    }

    /// The auditor key a sealed record is encrypted to (`None`: in clear).
    pub fn sealed_to(&self) -> Option<&[u8]> {
        match &self.content {
            Content::Plain(_) => None,
            Content::Sealed { kid, .. } => Some(kid),
        }
    }

    /// The record, decrypted with the auditor's key `auditor` when it is sealed; it must be
    /// about the statement's `sub`.
    pub fn open(&self, auditor: &AuditorSecret) -> Result<ProvenanceRecord, LogError> {
        let cose_encrypt = match &self.content {
            Content::Plain(record) => return Ok(record.clone()),
            Content::Sealed { cose_encrypt, .. } => cose_encrypt,
        };
        let json = sealed::open(cose_encrypt, auditor)?;
        let record: ProvenanceRecord =
            serde_json::from_slice(&json).map_err(|e| bad(format!("the decrypted record: {e}")))?;
        if record.credential_id != self.subject {
            return Err(bad("the decrypted record is about another credential than its sub"));
        }
        Ok(record)
    }

    /// Reads a statement's form (headers, claims, payload, `sub` naming the record's
    /// credential) without checking its signature: what the store does with its own rows, whose
    /// bytes the signed tree heads already cover.
    pub fn decode(bytes: &[u8]) -> Result<Self, LogError> {
        Ok(Self::parse(bytes)?.0)
    }

    /// Reads a statement and verifies its signature under `key`.
    pub fn verify(bytes: &[u8], key: &VerifyingKey) -> Result<Self, LogError> {
        let (statement, sign1) = Self::parse(bytes)?;
        sign1.verify_signature(b"", |sig, tbs| {
            let sig = Signature::from_slice(sig).map_err(|_| bad("the signature is not 96 bytes"))?;
            key.verify(tbs, &sig).map_err(|_| bad("its signature does not verify under the log key"))
        })?;
        Ok(statement)
    }

    fn parse(bytes: &[u8]) -> Result<(Self, CoseSign1), LogError> {
        let sign1 = CoseSign1::from_tagged_slice(bytes).map_err(bad)?;
        let header = &sign1.protected.header;
        if header.alg != Some(coset::RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES384)) {
            return Err(bad("alg is not ES384"));
        }
        let label = coset::Label::Int(iana::HeaderParameter::CwtClaims as i64);
        let claims = header.rest.iter().find(|(l, _)| *l == label).map(|(_, v)| v.clone());
        let claims = coset::cwt::ClaimsSet::from_cbor_value(claims.ok_or_else(|| bad("no CWT claims (15)"))?)
            .map_err(|e| bad(format!("the CWT claims: {e}")))?;
        let payload = sign1.payload.as_deref().ok_or_else(|| bad("the payload is detached"))?;
        let issuer = claims.issuer.filter(|i| !i.is_empty()).ok_or_else(|| bad("no iss"))?;
        let subject = claims.subject.filter(|s| !s.is_empty()).ok_or_else(|| bad("no sub"))?;
        let content = match &header.content_type {
            Some(coset::ContentType::Text(t)) if t == CONTENT_TYPE => {
                let record: ProvenanceRecord =
                    serde_json::from_slice(payload).map_err(|e| bad(format!("the record: {e}")))?;
                if record.credential_id != subject {
                    return Err(bad("its sub is not the record's credential id"));
                }
                Content::Plain(record)
            }
            Some(coset::ContentType::Text(t)) if t == SEALED_CONTENT_TYPE => {
                Content::Sealed { kid: sealed::sealed_to(payload)?, cose_encrypt: payload.to_vec() }
            }
            _ => return Err(bad(format!("the content type is neither {CONTENT_TYPE} nor {SEALED_CONTENT_TYPE}"))),
        };
        Ok((Self { content, subject, issuer, bytes: bytes.to_vec() }, sign1))
    }

    /// The leaf bytes.
    pub fn to_leaf(&self) -> Result<Vec<u8>, LogError> {
        Ok(self.bytes.clone())
    }

    /// The credential the statement is about (`sub`).
    pub fn credential_id(&self) -> &str {
        &self.subject
    }

    /// SHA-256 of the statement's bytes: what the credential names (its log entry).
    pub fn sha256(&self) -> [u8; 32] {
        Sha256::digest(&self.bytes).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provenance::VerifierDecision;
    use p384::elliptic_curve::Generate;

    fn record() -> ProvenanceRecord {
        ProvenanceRecord {
            workload_id: "spiffe://example.org/app".into(),
            credential_kind: "x509".into(),
            credential_id: "0a1b".into(),
            evidence_sha384: "ab".repeat(48),
            decision: VerifierDecision {
                status: "affirming".into(),
                verifier: "v".into(),
                criteria: Default::default(),
            },
            policy_version: "1".into(),
            issued_at: 1_800_000_000,
        }
    }

    #[test]
    fn a_statement_verifies_under_its_key_only_and_every_bit_matters() {
        let key = SigningKey::try_generate().unwrap();
        let iss = "spiffe://example.org/twi-issuer";
        let made = SignedStatement::sign(record(), iss, &key, "twi-log").unwrap();
        assert_eq!(made.bytes[0], 0xd2, "a tagged COSE_Sign1 (tag 18)");
        let read = SignedStatement::verify(&made.bytes, key.verifying_key()).unwrap();
        assert_eq!(read, made);
        assert_eq!(read.issuer, iss);
        assert!(SignedStatement::verify(&made.bytes, SigningKey::try_generate().unwrap().verifying_key()).is_err());
        for i in 0..made.bytes.len() {
            let mut damaged = made.bytes.clone();
            damaged[i] ^= 0x01;
            if let Ok(other) = SignedStatement::verify(&damaged, key.verifying_key()) {
                assert_eq!(other.content, made.content, "byte {i} changed what the statement says");
            }
        }
        assert!(SignedStatement::decode(&serde_json::to_vec(&record()).unwrap()).is_err(), "a bare JSON record");
    }

    #[test]
    fn a_sealed_statement_verifies_without_the_auditor_key_and_opens_with_it() {
        let key = SigningKey::try_generate().unwrap();
        let auditor = AuditorSecret::generate().unwrap();
        let iss = "spiffe://example.org/twi-issuer";
        let made = SignedStatement::sign_for(record(), iss, &key, "twi-log", Some(auditor.public())).unwrap();
        let read = SignedStatement::verify(&made.bytes, key.verifying_key()).unwrap();
        assert_eq!(read, made);
        assert_eq!((read.credential_id(), read.record()), ("0a1b", None), "sub in clear, the record not");
        assert_eq!(read.sealed_to(), Some(&auditor.public().kid()[..]));
        let json = serde_json::to_vec(&record()).unwrap();
        assert!(!made.bytes.windows(json.len()).any(|w| w == json), "no plaintext in the leaf");
        let workload = b"spiffe://example.org/app";
        assert!(!made.bytes.windows(workload.len()).any(|w| w == workload), "nor the workload");
        assert_eq!(read.open(&auditor).unwrap(), record());
        let wrong = read.open(&AuditorSecret::generate().unwrap()).unwrap_err().to_string();
        assert!(wrong.contains("encrypted to auditor key"), "{wrong}");
        let plain = SignedStatement::sign(record(), iss, &key, "twi-log").unwrap();
        assert_eq!(plain.open(&auditor).unwrap(), record(), "a plain record reads as it is");
    }

    #[test]
    fn a_receipt_is_not_a_statement() {
        let key = SigningKey::try_generate().unwrap();
        let receipt = crate::provenance::receipt::receipt(&key, "twi-log", 1, 0, &[], &[0; 32]).unwrap();
        assert!(SignedStatement::verify(&receipt, key.verifying_key()).is_err());
    }
}
