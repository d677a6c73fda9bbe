//! The provenance log on disk: appends, one record per credential, proofs that an independent
//! verifier checks against signed tree heads, survival of a restart, and detection of edits
//! made behind its back.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use p384::ecdsa::SigningKey;
use p384::elliptic_curve::Generate;
use twi_issuer::provenance::{
    LogError, ProvenanceLog, ProvenanceRecord, SignedStatement, VerifierDecision, leaf_hash, verify_consistency,
    verify_inclusion,
};

/// Record `i` as the signed statement the log holds (ECDSA per RFC 6979 is deterministic, so
/// `record(i)` is the same bytes each time).
fn record(i: u32) -> SignedStatement {
    signed(plain(i))
}

fn signed(record: ProvenanceRecord) -> SignedStatement {
    let key = SigningKey::from_slice(&[7; 48]).unwrap();
    SignedStatement::sign(record, "spiffe://example.org/twi-issuer", &key, "twi-log").unwrap()
}

fn plain(i: u32) -> ProvenanceRecord {
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
    assert_eq!(log.find(record(4).credential_id()).unwrap(), Some((4, record(4))));
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
    let mut again = plain(2);
    again.credential_id = plain(1).credential_id;
    assert_eq!(log.append(&signed(again)), Err(LogError::Duplicate(plain(1).credential_id)));
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
    let forged_bytes = record(9).to_leaf().unwrap();
    let forged = hex::encode(&forged_bytes);
    let e = tamper(&format!("UPDATE leaves SET record = x'{forged}' WHERE idx = 1"));
    assert!(e.contains("record 1 no longer hashes to its leaf hash"), "{e}");
    // A record rewritten together with its leaf hash: the signed root catches it.
    let hash = hex::encode(leaf_hash(&forged_bytes));
    let e = tamper(&format!("UPDATE leaves SET record = x'{forged}', leaf_hash = x'{hash}' WHERE idx = 1"));
    assert!(e.contains("no longer hash to the root signed at size 4"), "{e}");
    // A record removed from the middle, or from the end.
    let e = tamper("DELETE FROM leaves WHERE idx = 2");
    assert!(e.contains("record 2 is missing"), "{e}");
    let e = tamper("DELETE FROM leaves WHERE idx = 3");
    assert!(e.contains("a signed tree head covers 4 records but only 3 are stored"), "{e}");
}

/// Issue 14 item 7: an issuance's records and the head that covers them commit together; an
/// issuance refused halfway (its second credential id is logged already) leaves nothing.
#[test]
fn an_issuance_commits_its_records_with_their_signed_head() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.sqlite");
    let key = SigningKey::try_generate().unwrap();
    let mut log = ProvenanceLog::open(&path).unwrap();
    let (appended, head) = log.append_signed(&[record(0), record(1)], &key, now()).unwrap();
    assert_eq!(appended.iter().map(|a| a.index).collect::<Vec<_>>(), [0, 1]);
    assert_eq!((head.size, head.root), (2, log.root()));
    head.verify(key.verifying_key()).unwrap();
    let refused = log.append_signed(&[record(2), record(1)], &key, now()).unwrap_err();
    assert_eq!(refused, LogError::Duplicate(plain(1).credential_id));
    assert_eq!((log.len(), log.root()), (2, head.root), "nothing of the refused issuance remains in memory");
    let (appended, head3) = log.append_signed(&[record(2)], &key, now()).unwrap();
    assert_eq!((appended[0].index, head3.size), (2, 3));
    drop(log);
    let log = ProvenanceLog::open(&path).unwrap();
    assert_eq!((log.len(), log.latest_tree_head().unwrap()), (3, Some(head3)));
    assert_eq!(log.tree_heads().unwrap().iter().map(|h| h.size).collect::<Vec<_>>(), [2, 3]);
}

/// A row inserted into the database directly (with a valid leaf hash) is covered by no signed
/// head: the next append refuses it loudly instead of signing it into the log, and so does a
/// restart. On main's code it was signed into the next head.
#[test]
fn rows_no_signed_head_covers_are_refused_before_the_next_append_and_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.sqlite");
    let key = SigningKey::try_generate().unwrap();
    let mut log = ProvenanceLog::open(&path).unwrap();
    log.append_signed(&[record(0), record(1)], &key, now()).unwrap();
    let forged = record(7).to_leaf().unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO leaves (idx, credential_id, record, leaf_hash) VALUES (2, 'forged', ?1, ?2)",
        rusqlite::params![forged, leaf_hash(&forged).as_slice()],
    )
    .unwrap();
    drop(conn);
    let refused = log.append_signed(&[record(2)], &key, now()).unwrap_err().to_string();
    assert!(refused.contains("1 record(s) from index 2 on are covered by no signed tree head"), "{refused}");
    assert!(refused.contains("written outside the issuer"), "{refused}");
    let refused = ProvenanceLog::open(&path).unwrap_err().to_string();
    assert!(refused.contains("covered by no signed tree head"), "{refused}");
    let audit = twi_issuer::provenance::audit::audit(&path, key.verifying_key(), |_, _| {}).unwrap_err();
    assert!(audit.to_string().contains("covered by no signed tree head"), "{audit}");
}

/// Another process's appends (sharing the state directory) are read incrementally and checked
/// against its signed head: an open log catches up instead of reopening.
#[test]
fn an_open_log_catches_up_with_another_writers_signed_appends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.sqlite");
    let key = SigningKey::try_generate().unwrap();
    let mut ours = ProvenanceLog::open(&path).unwrap();
    ours.append_signed(&[record(0)], &key, now()).unwrap();
    let mut theirs = ProvenanceLog::open(&path).unwrap();
    let (_, head) = theirs.append_signed(&[record(1), record(2)], &key, now()).unwrap();
    let (appended, head4) = ours.append_signed(&[record(3)], &key, now()).unwrap();
    assert_eq!((appended[0].index, head4.size), (3, 4));
    assert_eq!(ours.tree().root_at(3), Some(head.root));
}

/// `twi log audit`'s check: every record re-hashed, every signed head verified under the log key
/// and against the recomputed tree.
#[test]
fn the_audit_checks_every_signed_head() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.sqlite");
    let key = SigningKey::try_generate().unwrap();
    let mut log = ProvenanceLog::open(&path).unwrap();
    for i in 0..5 {
        log.append_signed(&[record(2 * i), record(2 * i + 1)], &key, now()).unwrap();
    }
    let mut calls = Vec::new();
    let audited = twi_issuer::provenance::audit::audit(&path, key.verifying_key(), |done, total| {
        calls.push((done, total));
    })
    .unwrap();
    assert_eq!((audited.records, audited.heads, audited.root), (10, 5, log.root()));
    assert_eq!(calls.last(), Some(&(10, 10)), "progress ends at the whole log");
    // Under another key, the first head already fails.
    let other = SigningKey::try_generate().unwrap();
    let e = twi_issuer::provenance::audit::audit(&path, other.verifying_key(), |_, _| {}).unwrap_err().to_string();
    assert!(e.contains("the tree head signed at size 2 does not verify under the log key"), "{e}");
    // An old head whose root was rewritten (triggers dropped): the audit finds it, though the
    // latest head (all a restart checks) is intact.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("DROP TRIGGER tree_heads_append_only_update;").unwrap();
    conn.execute("UPDATE tree_heads SET root = ?1 WHERE size = 4", [vec![0u8; 32]]).unwrap();
    drop(conn);
    ProvenanceLog::open(&path).expect("the latest head is intact");
    let e = twi_issuer::provenance::audit::audit(&path, key.verifying_key(), |_, _| {}).unwrap_err().to_string();
    assert!(e.contains("at size 4"), "{e}");
    let missing = twi_issuer::provenance::audit::audit(&dir.path().join("none.sqlite"), key.verifying_key(), |_, _| {});
    assert!(missing.unwrap_err().to_string().contains("no such file"));
}

/// A log from before records were signed statements (bare JSON leaves, covered by a signed
/// head): the issuer refuses to extend it, saying why and what to do; the audit still reads it.
#[test]
fn a_log_of_bare_json_records_is_refused_by_the_issuer_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("provenance.sqlite");
    let key = SigningKey::try_generate().unwrap();
    let mut log = ProvenanceLog::open(&path).unwrap();
    let leaf = serde_json::to_vec(&plain(0)).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO leaves (idx, credential_id, record, leaf_hash) VALUES (0, ?1, ?2, ?3)",
        rusqlite::params![plain(0).credential_id, leaf, leaf_hash(&leaf).as_slice()],
    )
    .unwrap();
    drop(conn);
    // The old issuer committed each row with its head: read the row, then sign the head over it.
    assert!(log.refresh().is_err(), "not covered yet");
    log.sign_tree_head(&key, now()).unwrap();
    drop(log);
    twi_issuer::provenance::audit::audit(&path, key.verifying_key(), |_, _| {}).unwrap();
    let policy = twi_issuer::policy::Policy::from_toml(&format!(
        "version = \"1\"\ntrust_domain = \"example.org\"\n\n[[workload]]\nid = \"app\"\n\n[[workload.reference]]\n\
         label = \"v1\"\nplatform = \"sim-snp\"\nmeasurement = \"{}\"\n",
        "5a".repeat(48)
    ));
    let Ok(policy) = policy else { panic!("the test policy: {policy:?}") };
    let config = twi_issuer::IssuerConfig { trust_domain: "example.org".into(), sim_snp_root: None };
    let refused = twi_issuer::Issuer::open(dir.path(), config, policy).unwrap_err().to_string();
    assert!(refused.contains("format before signed statements"), "{refused}");
    assert!(refused.contains("move it aside"), "{refused}");
}
