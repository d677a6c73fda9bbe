//! Signed vendor statements: what a policy's `vendor_key` checks instead of the name the builder
//! declares in the SBOM.
//!
//! A vendor statement is a tagged COSE_Sign1 (RFC 9052), ES384 under the vendor's P-384 key,
//! protected header `alg` ES384 (1), `kid` (4) the SHA-256 of the key's SubjectPublicKeyInfo
//! (DER), content type (3) [`CONTENT_TYPE`]; its payload is JSON naming the vendor and what it
//! vouches for: the workload component as the SBOM lists it — `metadata.component`'s name,
//! version and SHA-384 (the digest of the runtime ELF with the workload linked in).
//!
//! Why that component and not the image: the statement is attached into the SBOM (`twi build
//! --attach`), whose digest the launch manifest measures, so the launch digest and the image
//! files depend on the statement and cannot be named in it. The ELF exists before the SBOM and
//! does not depend on it: the vendor builds it (or rebuilds it reproducibly), signs the
//! statement over the SBOM of that build, and the final `twi build --runtime-elf ELF --attach
//! vendor.cose` makes the image around the same ELF. The SBOM lists the statement's SHA-384 and
//! the manifest measures it as `twi.attach.NAME`, so the measurement covers which statement was
//! attached; the issuer reads the statement's bytes from the policy's store by that digest.
//!
//! coset builds and reads the structures; p384 signs and verifies.

use coset::{CoseSign1, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable, iana};
use p384::ecdsa::signature::{Signer, Verifier};
use p384::ecdsa::{Signature, SigningKey, VerifyingKey};
use p384::pkcs8::EncodePublicKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The payload's content type.
pub const CONTENT_TYPE: &str = "application/vnd.twi.vendor-statement+json";
/// The payload's `type`.
pub const STATEMENT_TYPE: &str = "twi-vendor-statement/1";
/// The largest statement read (a statement is a few hundred bytes).
pub const MAX_LEN: usize = 64 * 1024;

/// What a vendor vouches for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorStatement {
    /// [`STATEMENT_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// The vendor's name, as a policy's `vendor` names it.
    pub vendor: String,
    /// The workload component, as the SBOM's `metadata.component` lists it.
    pub subject: Subject,
}

/// The workload component a statement is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    pub name: String,
    pub version: String,
    /// SHA-384, lowercase hex.
    pub sha384: String,
}

/// The `kid` of a vendor key: SHA-256 of its SubjectPublicKeyInfo (DER).
pub fn key_id(key: &VerifyingKey) -> [u8; 32] {
    let der = key.to_public_key_der().map(|d| d.as_bytes().to_vec()).unwrap_or_default();
    Sha256::digest(der).into()
}

/// `statement` signed with the vendor's `key`: the tagged COSE_Sign1's bytes.
pub fn sign(statement: &VendorStatement, key: &SigningKey) -> Result<Vec<u8>, String> {
    let payload = serde_json::to_vec(statement).map_err(|e| format!("encoding the statement: {e}"))?;
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::ES384)
        .key_id(key_id(key.verifying_key()).to_vec())
        .content_type(CONTENT_TYPE.to_string())
        .build();
    let sign1 = CoseSign1Builder::new()
        .protected(protected)
        .payload(payload)
        .try_create_signature(b"", |tbs| {
            let signature: Signature = key.try_sign(tbs).map_err(|e| format!("signing: {e}"))?;
            Ok::<_, String>(signature.to_bytes().to_vec())
        })?
        .build();
    sign1.to_tagged_vec().map_err(|e| format!("encoding the COSE_Sign1: {e}"))
}

/// Reads `bytes` as a vendor statement whose signature verifies under `key`; `Err` says why not.
pub fn verify(bytes: &[u8], key: &VerifyingKey) -> Result<VendorStatement, String> {
    let sign1 = read(bytes)?;
    let kid = key_id(key);
    if sign1.protected.header.key_id != kid {
        return Err(format!(
            "it is signed by key {} (kid), not by the policy's vendor_key {}",
            hex::encode(&sign1.protected.header.key_id),
            hex::encode(kid)
        ));
    }
    sign1.verify_signature(b"", |sig, tbs| {
        let sig = Signature::from_slice(sig).map_err(|_| "its signature is not 96 bytes".to_string())?;
        key.verify(tbs, &sig).map_err(|_| "its signature does not verify under the policy's vendor_key".to_string())
    })?;
    payload_of(&sign1)
}

/// What a statement says and the `kid` of the key it names, its signature NOT checked: for
/// showing a statement (`twi provenance show`); a policy's check is [`verify`].
pub fn claims(bytes: &[u8]) -> Result<(VendorStatement, Vec<u8>), String> {
    let sign1 = read(bytes)?;
    Ok((payload_of(&sign1)?, sign1.protected.header.key_id.clone()))
}

/// `bytes` as a tagged COSE_Sign1 with a vendor statement's algorithm and content type.
fn read(bytes: &[u8]) -> Result<CoseSign1, String> {
    if bytes.len() > MAX_LEN {
        return Err(format!("it is {} bytes, more than a vendor statement's {MAX_LEN}", bytes.len()));
    }
    let sign1 = CoseSign1::from_tagged_slice(bytes).map_err(|e| format!("not a tagged COSE_Sign1 ({e})"))?;
    let header = &sign1.protected.header;
    if header.alg != Some(coset::RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES384)) {
        return Err("its alg is not ES384".into());
    }
    if header.content_type != Some(coset::ContentType::Text(CONTENT_TYPE.into())) {
        return Err(format!("its content type is not {CONTENT_TYPE}"));
    }
    Ok(sign1)
}

/// The statement a (read) COSE_Sign1 carries.
fn payload_of(sign1: &CoseSign1) -> Result<VendorStatement, String> {
    let payload = sign1.payload.as_deref().ok_or("its payload is detached")?;
    let statement: VendorStatement =
        serde_json::from_slice(payload).map_err(|e| format!("its payload is not a vendor statement ({e})"))?;
    if statement.kind != STATEMENT_TYPE {
        return Err(format!("its type is {:?}, not {STATEMENT_TYPE:?}", statement.kind));
    }
    Ok(statement)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p384::elliptic_curve::Generate;

    fn statement() -> VendorStatement {
        let subject = Subject { name: "payroll".into(), version: "image".into(), sha384: "ab".repeat(48) };
        VendorStatement { kind: STATEMENT_TYPE.into(), vendor: "Example Corp".into(), subject }
    }

    #[test]
    fn a_statement_verifies_under_its_key_only_and_unaltered() {
        let key = SigningKey::try_generate().unwrap();
        let bytes = sign(&statement(), &key).unwrap();
        assert_eq!(verify(&bytes, key.verifying_key()).unwrap(), statement());

        // Read for showing, without a key: what it claims and the kid of the key it names.
        assert_eq!(claims(&bytes).unwrap(), (statement(), key_id(key.verifying_key()).to_vec()));
        assert!(claims(b"not COSE").unwrap_err().contains("not a tagged COSE_Sign1"));

        let other = SigningKey::try_generate().unwrap();
        assert!(verify(&bytes, other.verifying_key()).unwrap_err().contains("not by the policy's vendor_key"));
        // The payload's vendor name changed in place (same length): the signature fails.
        let at = bytes.windows(7).position(|w| w == b"Example").unwrap();
        let mut altered = bytes.clone();
        altered[at] = b'F';
        assert!(verify(&altered, key.verifying_key()).unwrap_err().contains("does not verify"));
        assert!(verify(b"not cbor", key.verifying_key()).unwrap_err().contains("not a tagged COSE_Sign1"));
        assert!(verify(&vec![0; MAX_LEN + 1], key.verifying_key()).unwrap_err().contains("more than"));
    }
}
