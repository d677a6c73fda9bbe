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
//! Built and read with coset; the ES384 signature with p384. Tests check statements with
//! pycose.

use coset::cwt::{ClaimsSetBuilder, Timestamp};
use coset::{AsCborValue, CoseSign1, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable, iana};
use p384::ecdsa::signature::Verifier;
use p384::ecdsa::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::{LogError, ProvenanceRecord};

/// The payload's content type.
pub const CONTENT_TYPE: &str = "application/json";

/// One record as the signed statement the log holds: the record and its exact bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedStatement {
    /// The record (the payload, decoded).
    pub record: ProvenanceRecord,
    /// `iss`: who made the statement.
    pub issuer: String,
    /// The tagged COSE_Sign1: the leaf.
    pub bytes: Vec<u8>,
}

fn bad(what: impl std::fmt::Display) -> LogError {
    LogError::Encode(format!("not a TWI signed statement (SCITT COSE_Sign1): {what}"))
}

impl SignedStatement {
    /// Signs `record` as issuer `iss` with the log key `key` (`kid`).
    pub fn sign(record: ProvenanceRecord, iss: &str, key: &SigningKey, kid: &str) -> Result<Self, LogError> {
        let payload = serde_json::to_vec(&record).map_err(|e| LogError::Encode(e.to_string()))?;
        let iat = i64::try_from(record.issued_at).map_err(|_| LogError::Encode("issued_at is out of range".into()))?;
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
            .content_type(CONTENT_TYPE.to_string())
            .value(iana::HeaderParameter::CwtClaims as i64, claims)
            .build();
        let sign1 = CoseSign1Builder::new()
            .protected(protected)
            .payload(payload)
            .try_create_signature(b"", super::receipt::es384(key))?
            .build();
        let bytes = sign1.to_tagged_vec().map_err(|e| LogError::Encode(format!("a statement: {e}")))?;
        Ok(Self { record, issuer: iss.to_string(), bytes })
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
        if header.content_type != Some(coset::ContentType::Text(CONTENT_TYPE.into())) {
            return Err(bad(format!("the content type is not {CONTENT_TYPE}")));
        }
        let label = coset::Label::Int(iana::HeaderParameter::CwtClaims as i64);
        let claims = header.rest.iter().find(|(l, _)| *l == label).map(|(_, v)| v.clone());
        let claims = coset::cwt::ClaimsSet::from_cbor_value(claims.ok_or_else(|| bad("no CWT claims (15)"))?)
            .map_err(|e| bad(format!("the CWT claims: {e}")))?;
        let payload = sign1.payload.as_deref().ok_or_else(|| bad("the payload is detached"))?;
        let record: ProvenanceRecord = serde_json::from_slice(payload).map_err(|e| bad(format!("the record: {e}")))?;
        let issuer = claims.issuer.filter(|i| !i.is_empty()).ok_or_else(|| bad("no iss"))?;
        if claims.subject.as_deref() != Some(record.credential_id.as_str()) {
            return Err(bad("its sub is not the record's credential id"));
        }
        Ok((Self { record, issuer, bytes: bytes.to_vec() }, sign1))
    }

    /// The leaf bytes.
    pub fn to_leaf(&self) -> Result<Vec<u8>, LogError> {
        Ok(self.bytes.clone())
    }

    /// The credential the statement is about (`sub`).
    pub fn credential_id(&self) -> &str {
        &self.record.credential_id
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
                assert_eq!(other.record, made.record, "byte {i} changed what the statement says");
            }
        }
        assert!(SignedStatement::decode(&serde_json::to_vec(&record()).unwrap()).is_err(), "a bare JSON record");
    }

    #[test]
    fn a_receipt_is_not_a_statement() {
        let key = SigningKey::try_generate().unwrap();
        let receipt = crate::provenance::receipt::receipt(&key, "twi-log", 1, 0, &[], &[0; 32]).unwrap();
        assert!(SignedStatement::verify(&receipt, key.verifying_key()).is_err());
    }
}
