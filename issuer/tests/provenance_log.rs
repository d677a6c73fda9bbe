//! The provenance log on disk: appends, one record per credential, proofs that an independent
//! verifier checks against signed tree heads, survival of a restart, and detection of edits
//! made behind its back.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use p384::ecdsa::SigningKey;
use p384::elliptic_curve::Generate;
use twi_issuer::provenance::{
    LogError, ProvenanceLog, ProvenanceRecord, VerifierDecision, leaf_hash, verify_consistency, verify_inclusion,
};

fn record(i: u32) -> ProvenanceRecord {
    ProvenanceRecord {
        workload_id: "spiffe://example.org/payroll-app".into(),
        credential_kind: "x509".into(),
        credential_id: format!("{:032x}", 0x1000 + i),
        evidence_sha384: "ab".repeat(48),
        decision: VerifierDecision {
            status: "affirming".into(),
            verifier: "twi-issuer 0.1.0".into(),
            criteria: BTreeMap::from([
                ("platform".to_string(), "sim-snp".to_string()),
                ("reference".to_string(), "v1".to_string()),
                ("freshness".to_string(), "AF_L2".to_string()),
            ]),
        },
        policy_version: "7".into(),
        issued_at: 1_800_000_000 + u64::from(i),
    }
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_100)
}

#[test]
fn appends_prove_inclusion_and_consistency_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("provenance.sqlite");
    let key = SigningKey::try_generate().unwrap();
    let (head5, proof_of_3) = {
        let mut log = ProvenanceLog::open(&path).unwrap();
        for i in 0..5 {
            let appended = log.append(&record(i)).unwrap();
            assert_eq!((appended.index, appended.tree_size), (u64::from(i), u64::from(i) + 1));
            assert_eq!(appended.leaf_hash, leaf_hash(&record(i).to_leaf().unwrap()));
        }
        let head = log.sign_tree_head(&key, now()).unwrap();
        head.verify(key.verifying_key()).unwrap();
        (head, log.inclusion_proof(3, 5).unwrap())
    };
    // An auditor holding only the signed head, the record and the proof.
    let leaf = leaf_hash(&record(3).to_leaf().unwrap());
    verify_inclusion(&leaf, 3, head5.size, &proof_of_3, &head5.root).unwrap();

    // After a restart: same records, same root, and the log grows consistently.
    let mut log = ProvenanceLog::open(&path).unwrap();
    assert_eq!(log.len(), 5);
    assert_eq!(log.root(), head5.root);
    assert_eq!(log.latest_tree_head().unwrap(), Some(head5.clone()));
    assert_eq!(log.record(2).unwrap(), record(2));
    assert_eq!(log.find(&record(4).credential_id).unwrap(), Some((4, record(4))));
    assert_eq!(log.find("no-such-credential").unwrap(), None);
    for i in 5..9 {
        log.append(&record(i)).unwrap();
    }
    let head9 = log.sign_tree_head(&key, now() + Duration::from_secs(60)).unwrap();
    let proof = log.consistency_proof(5, 9).unwrap();
    verify_consistency(head5.size, head9.size, &head5.root, &head9.root, &proof).unwrap();
    assert!(verify_consistency(head5.size, head9.size, &head9.root, &head5.root, &proof).is_err());
    assert!(matches!(log.record(9), Err(LogError::OutOfRange { .. })));
    assert!(log.inclusion_proof(9, 9).is_err());
}

#[test]
fn one_record_per_credential() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = ProvenanceLog::open(&dir.path().join("p.sqlite")).unwrap();
    log.append(&record(1)).unwrap();
    let mut again = record(2);
    again.credential_id = record(1).credential_id;
    assert_eq!(log.append(&again), Err(LogError::Duplicate(record(1).credential_id)));
    assert_eq!(log.len(), 1, "a refused append leaves no trace");
    log.append(&record(2)).unwrap();
}

#[test]
fn the_database_refuses_updates_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.sqlite");
    ProvenanceLog::open(&path).unwrap().append(&record(0)).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let e = conn.execute("UPDATE leaves SET record = x'00' WHERE idx = 0", []).unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");
    let e = conn.execute("DELETE FROM leaves", []).unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");
}

/// Edits by someone who bypasses the triggers (drops them) are found when the log is opened.
#[test]
fn edits_behind_the_logs_back_are_detected() {
    let key = SigningKey::try_generate().unwrap();
    let tamper = |sql: &str| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.sqlite");
        {
            let mut log = ProvenanceLog::open(&path).unwrap();
            for i in 0..4 {
                log.append(&record(i)).unwrap();
            }
            log.sign_tree_head(&key, now()).unwrap();
        }
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("DROP TRIGGER leaves_append_only_update; DROP TRIGGER leaves_append_only_delete;").unwrap();
        conn.execute_batch(sql).unwrap();
        drop(conn);
        ProvenanceLog::open(&path).unwrap_err().to_string()
    };
    // A record rewritten (its stored hash left alone).
    let forged = String::from_utf8(record(9).to_leaf().unwrap()).unwrap();
    let e = tamper(&format!("UPDATE leaves SET record = CAST('{forged}' AS BLOB) WHERE idx = 1"));
    assert!(e.contains("record 1 no longer hashes to its leaf hash"), "{e}");
    // A record rewritten together with its leaf hash: the signed root catches it.
    let hash = hex::encode(leaf_hash(forged.as_bytes()));
    let e =
        tamper(&format!("UPDATE leaves SET record = CAST('{forged}' AS BLOB), leaf_hash = x'{hash}' WHERE idx = 1"));
    assert!(e.contains("no longer hash to the root signed at size 4"), "{e}");
    // A record removed from the middle, or from the end.
    let e = tamper("DELETE FROM leaves WHERE idx = 2");
    assert!(e.contains("record 2 is missing"), "{e}");
    let e = tamper("DELETE FROM leaves WHERE idx = 3");
    assert!(e.contains("a signed tree head covers 4 records but only 3 are stored"), "{e}");
}
