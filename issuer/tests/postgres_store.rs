//! The replicas' PostgreSQL store (issue 14 item 6) against a throwaway cluster (Debian's
//! server, started on loopback by the test kit): appenders on separate connections racing for
//! the log get contiguous, unique leaf indices and one log the audit accepts; the tables are
//! append-only; rows written behind the issuers' back are refused at the next append; a nonce
//! issued by one replica is redeemed once at another; replicas publish one epoch per period.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use p384::ecdsa::SigningKey;
use p384::elliptic_curve::Generate;
use twi_issuer::database::Postgres;
use twi_issuer::freshness::{
    Clock, EpochPublisher, FreshnessError, ManualClock, NonceScope, NonceStore, SharedFreshness, SystemClock,
};
use twi_issuer::provenance::{ProvenanceLog, ProvenanceRecord, SignedStatement, VerifierDecision, audit};
use twi_testkit::postgres::{Cluster, ClusterTls};

/// Writer `writer`'s record `i`, as the signed statement the log holds.
fn record(writer: u32, i: u32) -> SignedStatement {
    let key = SigningKey::from_slice(&[7; 48]).unwrap();
    SignedStatement::sign(plain(writer, i), "spiffe://example.org/twi-issuer", &key, "twi-log").unwrap()
}

fn plain(writer: u32, i: u32) -> ProvenanceRecord {
    ProvenanceRecord {
        workload_id: "spiffe://example.org/payroll-app".into(),
        credential_kind: "x509".into(),
        credential_id: format!("{writer:08x}{i:024x}"),
        evidence_sha384: "ab".repeat(48),
        decision: VerifierDecision {
            status: "affirming".into(),
            verifier: "twi-issuer 0.1.0".into(),
            criteria: BTreeMap::from([("platform".to_string(), "sim-snp".to_string())]),
        },
        policy_version: "7".into(),
        issued_at: 1_800_000_000 + u64::from(i),
    }
}

fn connect(cluster: &Cluster) -> Arc<Postgres> {
    Arc::new(Postgres::connect(&cluster.url()).expect("connecting to the test cluster"))
}

/// Three appenders, each on its own connection with its own in-memory tree (as three replicas
/// are), append 2-record issuances at once: every index from 0 to n-1 is used exactly once,
/// each issuance's two records are adjacent, and the audit accepts the log.
#[test]
fn concurrent_appenders_get_contiguous_unique_indices() {
    let cluster = Cluster::start();
    let key = SigningKey::try_generate().unwrap();
    const WRITERS: u32 = 3;
    const ISSUANCES: u32 = 25;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (pg, key) = (connect(&cluster), key.clone());
            std::thread::spawn(move || {
                let mut log = ProvenanceLog::open_postgres(pg).unwrap();
                let mut indices = Vec::new();
                for i in 0..ISSUANCES {
                    let records = [record(w, 2 * i), record(w, 2 * i + 1)];
                    let (appended, head) = log.append_signed(&records, &key, SystemTime::now()).unwrap();
                    assert_eq!(appended[1].index, appended[0].index + 1, "an issuance's records are adjacent");
                    assert_eq!(head.size, appended[1].index + 1);
                    indices.extend(appended.iter().map(|a| a.index));
                }
                indices
            })
        })
        .collect();
    let mut indices: Vec<u64> = writers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    indices.sort_unstable();
    let n = u64::from(WRITERS * ISSUANCES * 2);
    assert_eq!(indices, (0..n).collect::<Vec<_>>(), "no index missing or given twice");
    let audited = audit::audit_postgres(connect(&cluster), key.verifying_key(), |_, _| {}).unwrap();
    assert_eq!((audited.records, audited.heads), (n, u64::from(WRITERS * ISSUANCES)));
    // A fresh reader sees the same log, every record where its writer was told it is.
    let log = ProvenanceLog::open_postgres(connect(&cluster)).unwrap();
    assert_eq!(log.len(), n);
    assert_eq!(log.root(), audited.root);
    let (index, found) = log.find(record(2, 7).credential_id()).unwrap().unwrap();
    assert_eq!(found, record(2, 7));
    assert_eq!(log.record(index).unwrap(), record(2, 7));
}

/// The tables refuse UPDATE, DELETE and TRUNCATE; a row inserted behind the issuers' back is
/// refused at the next append and by the audit; a credential id is logged once.
#[test]
fn the_log_is_append_only_and_refuses_rows_no_head_covers() {
    let cluster = Cluster::start();
    let key = SigningKey::try_generate().unwrap();
    let mut log = ProvenanceLog::open_postgres(connect(&cluster)).unwrap();
    log.append_signed(&[record(0, 0), record(0, 1)], &key, SystemTime::now()).unwrap();
    for sql in ["UPDATE leaves SET record = 'x'", "DELETE FROM tree_heads", "TRUNCATE leaves CASCADE"] {
        let out = cluster.psql(sql);
        assert!(!out.status.success(), "{sql} was allowed");
        assert!(String::from_utf8_lossy(&out.stderr).contains("append-only"), "{sql}: {:?}", out);
    }
    let duplicate = log.append_signed(&[record(0, 1)], &key, SystemTime::now()).unwrap_err();
    assert!(duplicate.to_string().contains("already in the provenance log"), "{duplicate}");
    let forged = cluster.psql("INSERT INTO leaves SELECT 2, 'forged', record, leaf_hash FROM leaves WHERE idx = 1");
    assert!(forged.status.success(), "{forged:?}");
    let refused = log.append_signed(&[record(0, 2)], &key, SystemTime::now()).unwrap_err().to_string();
    assert!(refused.contains("covered by no signed tree head"), "{refused}");
    let refused = audit::audit_postgres(connect(&cluster), key.verifying_key(), |_, _| {}).unwrap_err();
    assert!(refused.to_string().contains("covered by no signed tree head"), "{refused}");
    let refused = ProvenanceLog::open_postgres(connect(&cluster)).unwrap_err().to_string();
    assert!(refused.contains("record(s) from index 2 on"), "{refused}");
}

fn nonces(cluster: &Cluster) -> NonceStore {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let shared = SharedFreshness::open(connect(cluster)).unwrap();
    NonceStore::new(Duration::from_secs(60), 3, clock).shared(shared)
}

/// A nonce issued at one replica is redeemed once, at any; its scope travels with it; the
/// bound on outstanding nonces is the replicas' together.
#[test]
fn a_nonce_from_one_replica_is_redeemed_once_at_another() {
    let cluster = Cluster::start();
    let (mut one, mut two) = (nonces(&cluster), nonces(&cluster));
    let scope = NonceScope { workload: Some("spiffe://example.org/a".into()), target: "t".into() };
    let nonce = one.issue(scope.clone()).unwrap();
    assert_eq!(two.redeem(&nonce), Ok(scope));
    assert_eq!(one.redeem(&nonce), Err(FreshnessError::Replayed));
    assert_eq!(two.redeem(&nonce), Err(FreshnessError::Replayed));
    assert_eq!(one.redeem(&[7u8; 32]), Err(FreshnessError::UnknownNonce));
    assert_eq!(one.redeem(&[7u8; 5]), Err(FreshnessError::UnknownNonce));
    // Three outstanding at most, across both replicas.
    one.issue(NonceScope::default()).unwrap();
    two.issue(NonceScope::default()).unwrap();
    one.issue(NonceScope::default()).unwrap();
    assert_eq!(two.issue(NonceScope::default()), Err(FreshnessError::TooManyOutstanding(3)));
}

/// The bound counts nonces neither redeemed nor expired; an issue drops the expired rows.
#[test]
fn expired_and_redeemed_nonces_leave_the_bound() {
    let cluster = Cluster::start();
    let clock = ManualClock::new(SystemTime::now());
    let store = || {
        let shared = SharedFreshness::open(connect(&cluster)).unwrap();
        NonceStore::new(Duration::from_secs(60), 3, Arc::new(clock.clone())).shared(shared)
    };
    let (mut one, mut two) = (store(), store());
    let first = one.issue(NonceScope::default()).unwrap();
    two.issue(NonceScope::default()).unwrap();
    one.issue(NonceScope::default()).unwrap();
    assert_eq!(two.issue(NonceScope::default()), Err(FreshnessError::TooManyOutstanding(3)));
    assert_eq!(two.redeem(&first), Ok(NonceScope::default()));
    let last = two.issue(NonceScope::default()).unwrap();
    assert_eq!(one.issue(NonceScope::default()), Err(FreshnessError::TooManyOutstanding(3)));
    let kept = |cluster: &Cluster| {
        String::from_utf8_lossy(&cluster.psql("SELECT COUNT(*) FROM nonces").stdout).trim().to_string()
    };
    assert_eq!(kept(&cluster), "4", "the redeemed one is kept until it expires (a replay is told apart)");
    clock.advance(Duration::from_secs(61));
    one.issue(NonceScope::default()).unwrap();
    assert_eq!(kept(&cluster), "1", "the expired rows are dropped by the next issue");
    assert_eq!(two.redeem(&last), Err(FreshnessError::UnknownNonce));
}

/// Two replicas with the same epoch key publish the same epoch, and accept each other's.
#[test]
fn replicas_publish_one_epoch() {
    let cluster = Cluster::start();
    let key = SigningKey::try_generate().unwrap();
    let publisher = |cluster: &Cluster| {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let shared = SharedFreshness::open(connect(cluster)).unwrap();
        EpochPublisher::new(key.clone(), Duration::from_secs(3600), Duration::from_secs(60), clock).shared(shared)
    };
    let (mut one, mut two) = (publisher(&cluster), publisher(&cluster));
    let epoch = one.current().unwrap();
    assert_eq!(two.current().unwrap(), epoch);
    assert_eq!(two.check(&epoch.id()).unwrap(), epoch);
}

/// A database that takes TCP only over TLS with a client certificate (`hostssl … cert`): the
/// replica reaches it with `sslrootcert`, `sslcert` and `sslkey` in the URL, and the server
/// sees its certificate. Plain TCP is refused by the server, TLS without the client
/// certificate too, and a server whose certificate another CA signed by the replica.
#[test]
fn replicas_reach_the_database_over_mutual_tls() {
    let (cluster, tls) = Cluster::start_tls();
    let plain = Postgres::connect(&cluster.url()).unwrap_err().to_string();
    assert!(plain.contains("no encryption"), "plain TCP: {plain}");
    let anonymous = Postgres::connect(&tls.url(&cluster.url(), false)).unwrap_err().to_string();
    assert!(anonymous.contains("certificate"), "TLS without a client certificate: {anonymous}");
    let impostor = ClusterTls { ca: tls.other_ca.clone(), ..tls.clone() };
    let refused = Postgres::connect(&impostor.url(&cluster.url(), true)).unwrap_err().to_string();
    assert!(refused.contains("UnknownIssuer"), "a server certificate of another CA: {refused}");

    let url = tls.url(&cluster.url(), true);
    let key = SigningKey::try_generate().unwrap();
    let mut log = ProvenanceLog::open_postgres(Arc::new(Postgres::connect(&url).unwrap())).unwrap();
    let (appended, _) = log.append_signed(&[record(0, 0), record(0, 1)], &key, SystemTime::now()).unwrap();
    assert_eq!(appended.iter().map(|a| a.index).collect::<Vec<_>>(), [0, 1]);
    let seen = cluster.psql("SELECT s.client_dn FROM pg_stat_ssl s WHERE s.ssl AND s.client_dn IS NOT NULL");
    assert!(String::from_utf8_lossy(&seen.stdout).contains("CN=twi"), "the server saw no client certificate: {seen:?}");
    assert_eq!(twi_issuer::database::display_url(&url), format!("{} (mutual TLS)", cluster.url()));
}

/// A replica whose connections the server closed (a restart, a failover, an administrator's
/// `pg_terminate_backend`) opens them again: a call that finds its connection broken fails
/// (the service answers it 503 with `Retry-After`), the next ones work. On main before this the
/// replica answered "the connection is closed" until it was restarted.
#[test]
fn a_replica_reconnects_after_the_server_closed_its_connections() {
    let cluster = Cluster::start();
    let key = SigningKey::try_generate().unwrap();
    let pg = connect(&cluster);
    let mut log = ProvenanceLog::open_postgres(pg.clone()).unwrap();
    log.append_signed(&[record(0, 0)], &key, SystemTime::now()).unwrap();
    let terminate = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                     WHERE datname = 'twi' AND pid <> pg_backend_pid()";
    for round in 1..4u32 {
        let killed = cluster.psql(terminate);
        assert!(killed.status.success(), "{killed:?}");
        assert_ne!(String::from_utf8_lossy(&killed.stdout).trim(), "0", "no connection was closed");
        let mut failed = 0;
        let appended = (0..=twi_issuer::database::CONNECTIONS).find_map(|_| {
            let result = log.append_signed(&[record(round, 0)], &key, SystemTime::now());
            failed += usize::from(result.is_err());
            result.ok()
        });
        assert!(appended.is_some(), "round {round}: the replica did not reconnect");
        assert!(failed <= 1, "round {round}: {failed} calls failed on one broken connection");
    }
    let audited = audit::audit_postgres(pg, key.verifying_key(), |_, _| {}).unwrap();
    assert_eq!(audited.records, 4, "every append logged once");
}
