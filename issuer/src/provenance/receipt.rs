//! COSE Receipts (RFC 9942) for the log's records: a COSE_Sign1 by the log key whose
//! verifiable data structure is RFC 9162's Merkle tree (`vds` 395 = 1, RFC9162_SHA256) and whose
//! proof (`vdp` 396, inclusion −1) is `[tree size, leaf index, [path hashes]]`. The payload is
//! detached: it is the tree's root, which the reader recomputes from the record and the proof
//! and then checks the log's signature over. So anyone holding a record, its receipt and the
//! log's public key knows the record was in the log the key signed, with no checkpoint fetch.
//!
//! Built and read with coset (RFC 9052 types); the ES384 signature stays with p384. The tests
//! check receipts with pycose, a COSE implementation independent of this one.

use coset::cbor::value::Value;
use coset::{CborSerializable, CoseSign1, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable, iana};
use p384::ecdsa::signature::{Signer, Verifier};
use p384::ecdsa::{Signature, SigningKey, VerifyingKey};

use super::{Hash, LogError, inclusion_root, leaf_hash};

/// `vds`: the verifiable data structure (protected header).
pub const VDS: i64 = 395;
/// `vdp`: the verifiable data structure proofs (unprotected header).
pub const VDP: i64 = 396;
/// The RFC9162_SHA256 verifiable data structure.
pub const RFC9162_SHA256: i64 = 1;
/// The inclusion proof type.
pub const INCLUSION: i64 = -1;

/// A signer for coset's builders: the raw `r ‖ s` ES384 signature (RFC 9053 §2.1) of the
/// to-be-signed bytes under `key`, as the log's statements and receipts carry it.
pub(super) fn es384(key: &SigningKey) -> impl FnOnce(&[u8]) -> Result<Vec<u8>, LogError> + '_ {
    move |tbs| {
        let signature: Signature = key.try_sign(tbs).map_err(|e| LogError::Signer(e.to_string()))?;
        crate::metrics::signed();
        Ok(signature.to_bytes().to_vec())
    }
}

/// The receipt (tagged COSE_Sign1) that leaf `index` of the tree of `size` leaves, with
/// inclusion `path`, is under `root`, signed by the log key `key` (`kid`).
pub fn receipt(
    key: &SigningKey,
    kid: &str,
    size: u64,
    index: u64,
    path: &[Hash],
    root: &Hash,
) -> Result<Vec<u8>, LogError> {
    let mut made = receipts(key, kid, size, root, &[(index, path)])?;
    made.pop().ok_or_else(|| LogError::Encode("a receipt: none made".into()))
}

/// The receipts of several leaves of one tree (`size`, `root`), each `(index, path)`: one
/// signature for all of them. What a receipt signs is the same for every leaf of a tree — the
/// protected header (alg, kid, vds) and the detached root (RFC 9942 §5; the inclusion proof
/// is in the unprotected header) — so the records of one issuance, appended under one tree
/// head, share it (one ES384 signature instead of one per record).
pub fn receipts(
    key: &SigningKey,
    kid: &str,
    size: u64,
    root: &Hash,
    leaves: &[(u64, &[Hash])],
) -> Result<Vec<Vec<u8>>, LogError> {
    let encode = |e: &dyn std::fmt::Display| LogError::Encode(format!("a receipt: {e}"));
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::ES384)
        .key_id(kid.as_bytes().to_vec())
        .value(VDS, Value::Integer(RFC9162_SHA256.into()))
        .build();
    if leaves.is_empty() {
        return Ok(Vec::new());
    }
    let signature = CoseSign1Builder::new()
        .protected(protected.clone())
        .try_create_detached_signature(root, b"", es384(key))?
        .build()
        .signature;
    let mut made = Vec::with_capacity(leaves.len());
    for (index, path) in leaves {
        let unprotected = HeaderBuilder::new().value(VDP, inclusion(size, *index, path)?).build();
        let sign1 = CoseSign1Builder::new()
            .protected(protected.clone())
            .unprotected(unprotected)
            .signature(signature.clone())
            .build();
        made.push(sign1.to_tagged_vec().map_err(|e| encode(&e))?);
    }
    Ok(made)
}

/// The `vdp` map of one inclusion proof: `{-1: [bstr .cbor [size, index, [path]]]}`.
fn inclusion(size: u64, index: u64, path: &[Hash]) -> Result<Value, LogError> {
    let proof = Value::Array(vec![
        Value::Integer(size.into()),
        Value::Integer(index.into()),
        Value::Array(path.iter().map(|h| Value::Bytes(h.to_vec())).collect()),
    ]);
    let mut proof_bytes = Vec::new();
    coset::cbor::ser::into_writer(&proof, &mut proof_bytes)
        .map_err(|e| LogError::Encode(format!("a receipt's proof: {e}")))?;
    Ok(Value::Map(vec![(Value::Integer(INCLUSION.into()), Value::Array(vec![Value::Bytes(proof_bytes)]))]))
}

/// What a receipt proved: the record is leaf `index` of the tree of `size` leaves with `root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proved {
    pub size: u64,
    pub index: u64,
    pub root: Hash,
}

/// Verifies `receipt` for the record `leaf` under the log key `key`.
pub fn verify(receipt: &[u8], leaf: &[u8], key: &VerifyingKey) -> Result<Proved, LogError> {
    let bad = |what: &str| LogError::Encode(format!("the receipt is not an RFC 9942 RFC9162_SHA256 receipt: {what}"));
    let sign1 = CoseSign1::from_tagged_slice(receipt)
        .or_else(|_| CoseSign1::from_slice(receipt))
        .map_err(|e| bad(&e.to_string()))?;
    let header = &sign1.protected.header;
    if header.alg != Some(coset::RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES384)) {
        return Err(bad("alg is not ES384"));
    }
    let label = |n: i64| coset::Label::Int(n);
    let vds = header.rest.iter().find(|(l, _)| *l == label(VDS)).map(|(_, v)| v);
    if vds != Some(&Value::Integer(RFC9162_SHA256.into())) {
        return Err(bad("vds is not RFC9162_SHA256"));
    }
    let proofs =
        sign1.unprotected.rest.iter().find(|(l, _)| *l == label(VDP)).map(|(_, v)| v).ok_or_else(|| bad("no vdp"))?;
    let (size, index, path) = inclusion_proof(proofs).ok_or_else(|| bad("no well-formed inclusion proof"))?;
    let root = inclusion_root(&leaf_hash(leaf), index, size, &path)
        .map_err(|e| LogError::Encode(format!("the receipt's proof: {e}")))?;
    sign1.verify_detached_signature(&root, b"", |sig, tbs| {
        let sig = Signature::from_slice(sig).map_err(|_| LogError::BadTreeHeadSignature)?;
        key.verify(tbs, &sig).map_err(|_| LogError::BadTreeHeadSignature)
    })?;
    Ok(Proved { size, index, root })
}

/// The one inclusion proof of a `vdp` map: (tree size, leaf index, path).
fn inclusion_proof(proofs: &Value) -> Option<(u64, u64, Vec<Hash>)> {
    let Value::Map(entries) = proofs else { return None };
    let (_, list) = entries.iter().find(|(k, _)| *k == Value::Integer(INCLUSION.into()))?;
    let Value::Array(list) = list else { return None };
    let [Value::Bytes(bytes)] = list.as_slice() else { return None };
    let value: Value = coset::cbor::de::from_reader(bytes.as_slice()).ok()?;
    let Value::Array(parts) = value else { return None };
    let [Value::Integer(size), Value::Integer(index), Value::Array(path)] = parts.as_slice() else { return None };
    let path = path
        .iter()
        .map(|h| match h {
            Value::Bytes(b) => Hash::try_from(b.as_slice()).ok(),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some((u64::try_from(*size).ok()?, u64::try_from(*index).ok()?, path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provenance::MerkleTree;
    use p384::elliptic_curve::Generate;

    /// `n` leaves of ten bytes each, and their tree.
    fn tree_of(n: u8) -> (Vec<Vec<u8>>, MerkleTree) {
        let leaves: Vec<Vec<u8>> = (0..n).map(|i| vec![i; 10]).collect();
        let mut tree = MerkleTree::new();
        for leaf in &leaves {
            tree.push(leaf_hash(leaf));
        }
        (leaves, tree)
    }

    #[test]
    fn a_receipt_proves_its_record_and_nothing_else() {
        let key = SigningKey::try_generate().unwrap();
        let (leaves, tree) = tree_of(5);
        let path = tree.inclusion_proof(3, 5).unwrap();
        let made = receipt(&key, "twi-log", 5, 3, &path, &tree.root()).unwrap();
        assert_eq!(made[0], 0xd2, "a tagged COSE_Sign1 (tag 18)");
        let proved = verify(&made, &leaves[3], key.verifying_key()).unwrap();
        assert_eq!(proved, Proved { size: 5, index: 3, root: tree.root() });
        // Another record, another key, a damaged receipt: refused.
        assert!(verify(&made, &leaves[2], key.verifying_key()).is_err());
        assert!(verify(&made, &leaves[3], SigningKey::try_generate().unwrap().verifying_key()).is_err());
        // Every single-bit change is refused, or (coset reads the detached payload's nil
        // leniently: 0xf7 "undefined" too) proves exactly the same thing.
        for i in 0..made.len() {
            let mut damaged = made.clone();
            damaged[i] ^= 0x01;
            if let Ok(other) = verify(&damaged, &leaves[3], key.verifying_key()) {
                assert_eq!(other, proved, "byte {i} changed what the receipt proves");
            }
        }
    }

    /// The receipts of one tree head share one signature, and each proves its own leaf only.
    #[test]
    fn the_receipts_of_one_tree_share_a_signature_and_prove_their_own_leaves() {
        let key = SigningKey::try_generate().unwrap();
        let (leaves, tree) = tree_of(7);
        let paths: Vec<_> = [5u64, 6].iter().map(|&i| tree.inclusion_proof(i, 7).unwrap()).collect();
        let before = crate::metrics::ecdsa_signatures();
        let made = receipts(&key, "twi-log", 7, &tree.root(), &[(5, &paths[0]), (6, &paths[1])]).unwrap();
        assert!(crate::metrics::ecdsa_signatures() - before >= 1);
        let read = |r: &[u8]| CoseSign1::from_tagged_slice(r).unwrap();
        assert_eq!(read(&made[0]).signature, read(&made[1]).signature, "one signature");
        assert_eq!(read(&made[0]).signature.len(), 96);
        for (i, receipt) in [(5usize, &made[0]), (6, &made[1])] {
            let proved = verify(receipt, &leaves[i], key.verifying_key()).unwrap();
            assert_eq!(proved, Proved { size: 7, index: i as u64, root: tree.root() });
            assert!(verify(receipt, &leaves[11 - i], key.verifying_key()).is_err(), "the other leaf");
        }
        assert!(receipts(&key, "twi-log", 7, &tree.root(), &[]).unwrap().is_empty());
    }
}
