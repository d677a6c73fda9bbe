//! The provenance log's unit tests: the Merkle tree against CT's known answers, every proof
//! in every tree shape, and the SQLite log.

use super::*;

fn h(s: &str) -> Hash {
    hex::decode(s).unwrap().try_into().unwrap()
}

// Known answers from the Certificate Transparency test suite (transparency-dev/merkle,
// proof/verify_test.go, Apache-2.0): leaves, the root of every prefix, and proofs. Leaf
// indices there are 1-based. Recomputed independently with this Python:
//
//   import hashlib
//   L = lambda d: hashlib.sha256(b'\0' + d).digest()
//   N = lambda l, r: hashlib.sha256(b'\1' + l + r).digest()
//   def mth(ds):
//       if len(ds) == 1: return L(ds[0])
//       k = 1
//       while 2 * k < len(ds): k *= 2
//       return N(mth(ds[:k]), mth(ds[k:]))
const LEAVES: [&str; 8] =
    ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];
const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];
/// (1-based leaf, tree size, proof)
const INCLUSION: [(u64, u64, &[&str]); 4] = [
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (3, 3, &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        2,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];
/// (size1, size2, proof)
const CONSISTENCY: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

fn ct_tree() -> MerkleTree {
    let mut t = MerkleTree::new();
    for leaf in LEAVES {
        t.push(leaf_hash(&hex::decode(leaf).unwrap()));
    }
    t
}

fn hashes(p: &[&str]) -> Vec<Hash> {
    p.iter().map(|s| h(s)).collect()
}

#[test]
fn roots_match_the_ct_known_answers() {
    let t = ct_tree();
    assert_eq!(
        hex::encode(MerkleTree::new().root()),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    for (n, root) in ROOTS.iter().enumerate() {
        assert_eq!(hex::encode(t.root_at(n as u64 + 1).unwrap()), *root, "size {}", n + 1);
    }
    assert_eq!(t.root_at(9), None);
}

#[test]
fn inclusion_proofs_match_and_verify() {
    let t = ct_tree();
    for (leaf, size, proof) in INCLUSION {
        let expected = hashes(proof);
        assert_eq!(t.inclusion_proof(leaf - 1, size).unwrap(), expected, "leaf {leaf} size {size}");
        let root = h(ROOTS[size as usize - 1]);
        let lh = t.leaf(leaf - 1).unwrap();
        verify_inclusion(&lh, leaf - 1, size, &expected, &root).unwrap();
        // Wrong index, size, leaf, root; truncated and extended proofs.
        assert!(verify_inclusion(&lh, leaf % size, size, &expected, &root).is_err() || size == 1);
        assert!(verify_inclusion(&lh, leaf - 1, size * 2, &expected, &root).is_err());
        assert!(verify_inclusion(&[0x55; 32], leaf - 1, size, &expected, &root).is_err());
        assert!(verify_inclusion(&lh, leaf - 1, size, &expected, &empty_root()).is_err());
        assert!(verify_inclusion(&lh, leaf - 1, size, &expected[..expected.len() - 1], &root).is_err());
        let mut longer = expected.clone();
        longer.push(root);
        assert!(verify_inclusion(&lh, leaf - 1, size, &longer, &root).is_err());
        for i in 0..expected.len() {
            let mut bad = expected.clone();
            bad[i][0] ^= 8;
            assert!(verify_inclusion(&lh, leaf - 1, size, &bad, &root).is_err());
        }
    }
    assert_eq!(
        verify_inclusion(&[0; 32], 0, 0, &[], &empty_root()),
        Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
    );
}

#[test]
fn consistency_proofs_match_and_verify() {
    let t = ct_tree();
    for (s1, s2, proof) in CONSISTENCY {
        let expected = hashes(proof);
        assert_eq!(t.consistency_proof(s1, s2).unwrap(), expected, "{s1} -> {s2}");
        let (r1, r2) = (h(ROOTS[s1 as usize - 1]), h(ROOTS[s2 as usize - 1]));
        verify_consistency(s1, s2, &r1, &r2, &expected).unwrap();
        if expected.is_empty() {
            continue;
        }
        assert!(verify_consistency(s1, s2, &r2, &r1, &expected).is_err(), "swapped roots");
        assert!(verify_consistency(s1 + 1, s2, &r1, &r2, &expected).is_err());
        assert!(verify_consistency(s1, s2 * 2, &r1, &r2, &expected).is_err());
        assert!(verify_consistency(s1, s2, &r1, &r2, &[]).is_err());
        assert!(verify_consistency(s1, s2, &r1, &r2, &expected[..expected.len() - 1]).is_err());
        for i in 0..expected.len() {
            let mut bad = expected.clone();
            bad[i][0] ^= 16;
            assert!(verify_consistency(s1, s2, &r1, &r2, &bad).is_err());
        }
    }
}

#[test]
fn every_proof_verifies_in_every_tree_shape() {
    let mut t = MerkleTree::new();
    let mut roots = vec![empty_root()];
    for i in 0u32..70 {
        t.push(leaf_hash(&i.to_be_bytes()));
        roots.push(t.root());
    }
    for size in 1..=70u64 {
        for index in 0..size {
            let proof = t.inclusion_proof(index, size).unwrap();
            verify_inclusion(&t.leaf(index).unwrap(), index, size, &proof, &roots[size as usize]).unwrap();
        }
        for old in 0..=size {
            let proof = t.consistency_proof(old, size).unwrap();
            verify_consistency(old, size, &roots[old as usize], &roots[size as usize], &proof).unwrap();
        }
    }
}
