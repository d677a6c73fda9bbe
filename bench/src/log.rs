//! Cost per issuance by the provenance log's size (issue 14 item 7): the embedded issuer of the
//! `issue` section, its log filled first with `sizes` records (and one signed tree head over
//! them, as the issuer would have left it), then issuing, the sizes interleaved run by run. The
//! reference is the smallest size, measured in the same run; the goal is within 1.2× of it.

use std::path::Path;
use std::time::SystemTime;

use anyhow::{Context, Result, anyhow};
use p384::ecdsa::signature::Signer;
use p384::ecdsa::{Signature, SigningKey};
use p384::pkcs8::DecodePrivateKey;
use twi_issuer::provenance::{
    MerkleTree, ProvenanceRecord, SignedStatement, SignedTreeHead, VerifierDecision, leaf_hash,
};
use twi_issuer::{Issuer, IssuerConfig};
use twi_sim::snp::SimPsp;

use crate::issue::{LAUNCH_DIGEST, issuance_rate, policy};
use crate::stats::{Samples, figure, section};

/// Issuances timed per sample.
const PER_SAMPLE: u32 = 5;

/// Milliseconds per issuance at each of `sizes` prior records (the first is the reference).
pub fn cost_by_size(runs: usize, sizes: &[u64]) -> Result<()> {
    section("cost per issuance by provenance log size (embedded issuer, simulated SEV-SNP, mechanism c)");
    let dir = tempfile::tempdir()?;
    let mut psp = SimPsp::load_or_create(&dir.path().join("psp"))?;
    psp.set_launch_digest(LAUNCH_DIGEST);
    let mut issuers = Vec::new();
    for &size in sizes {
        let state = dir.path().join(format!("issuer-{size}"));
        let config = || IssuerConfig { trust_domain: "example.org".into(), sim_snp_root: Some(psp.root().clone()) };
        drop(Issuer::open(&state, config(), policy()?)?);
        fill(&state, size)?;
        let opened = std::time::Instant::now();
        let issuer = Issuer::open(&state, config(), policy()?)?;
        say!("issuer with {size} log records opened in {:.0} ms", opened.elapsed().as_secs_f64() * 1e3);
        issuers.push((size, issuer, Samples::default()));
    }
    for _ in 0..runs {
        for (_, issuer, samples) in &mut issuers {
            samples.push(1e3 / issuance_rate(&psp, issuer, PER_SAMPLE)?);
        }
    }
    let Some(((reference_size, _, reference), rest)) = issuers.split_first() else { return Ok(()) };
    figure(&format!("ms per issuance, log of {reference_size} records"), "ms", reference, None);
    for (size, _, samples) in rest {
        let what = format!("at {reference_size} records");
        figure(&format!("ms per issuance, log of {size} records"), "ms", samples, Some((&what, reference)));
    }
    Ok(())
}

/// Appends `count` records (signed statements) to the issuer state's empty log, with a tree head over them signed
/// by its log key, in one transaction.
fn fill(state: &Path, count: u64) -> Result<()> {
    let pem = std::fs::read_to_string(state.join("log-key.pem")).context("the issuer's log key")?;
    let key = SigningKey::from_pkcs8_pem(&pem).map_err(|e| anyhow!("the log key: {e}"))?;
    let mut conn = rusqlite::Connection::open(state.join("provenance.sqlite"))?;
    let transaction = conn.transaction()?;
    let mut tree = MerkleTree::new();
    for (i, leaf) in (0..count).zip(statements(&key, count)?) {
        let hash = leaf_hash(&leaf);
        transaction.execute(
            "INSERT INTO leaves (idx, credential_id, record, leaf_hash) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![i64::try_from(i)?, format!("fill-{i:08}"), leaf, hash.as_slice()],
        )?;
        tree.push(hash);
    }
    let timestamp_ms = u64::try_from(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH)?.as_millis())?;
    let root = tree.root();
    let signature: Signature = key.sign(&SignedTreeHead::signed_bytes(count, timestamp_ms, &root));
    transaction.execute(
        "INSERT INTO tree_heads (size, timestamp_ms, root, signature) VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![
            i64::try_from(count)?,
            i64::try_from(timestamp_ms)?,
            root.as_slice(),
            signature.to_bytes().as_slice()
        ],
    )?;
    transaction.commit()?;
    Ok(())
}

/// Records `0..count` as the signed statements the issuer would have made (log key,
/// `twi-log`), signed on every core.
fn statements(key: &SigningKey, count: u64) -> Result<Vec<Vec<u8>>> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as u64;
    let per = count.div_ceil(cores.max(1)).max(1);
    let chunks: Vec<Result<Vec<Vec<u8>>>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..count)
            .step_by(usize::try_from(per).unwrap_or(usize::MAX))
            .map(|start| {
                s.spawn(move || {
                    (start..(start + per).min(count))
                        .map(|i| {
                            let signed =
                                SignedStatement::sign(record(i), "spiffe://example.org/twi-issuer", key, "twi-log");
                            Ok(signed.map_err(|e| anyhow!("{e}"))?.bytes)
                        })
                        .collect()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().map_err(|_| anyhow!("a signing thread panicked"))?).collect()
    });
    Ok(chunks.into_iter().collect::<Result<Vec<_>>>()?.concat())
}

/// A record like the issuer's, for credential `fill-i`.
fn record(i: u64) -> ProvenanceRecord {
    ProvenanceRecord {
        workload_id: "spiffe://example.org/bench".into(),
        credential_kind: "x509".into(),
        credential_id: format!("fill-{i:08}"),
        evidence_sha384: "ab".repeat(48),
        decision: VerifierDecision {
            status: "contraindicated".into(),
            verifier: "twi-bench".into(),
            criteria: [("platform".to_string(), "sim-snp".to_string())].into(),
        },
        policy_version: "bench-1".into(),
        issued_at: 1_800_000_000 + i,
    }
}

/// Statements made per sample in [`sealing`].
const SEALED_PER_SAMPLE: u64 = 50;

/// The cost and size of a record sealed to an auditor key (issue 16 item 2: COSE_Encrypt,
/// ECDH-ES + HKDF-256 with a fresh ephemeral P-384 key, A256GCM) beside one in clear: making
/// its signed statement, as the issuer does for each credential, on one core.
pub fn sealing(runs: usize) -> Result<()> {
    section("a provenance record's signed statement, in clear and sealed to an auditor key (one core)");
    let key = SigningKey::from_slice(&[7; 48]).map_err(|e| anyhow!("the bench key: {e}"))?;
    let auditor = twi_issuer::provenance::AuditorSecret::generate()?;
    let iss = "spiffe://example.org/twi-issuer";
    let (mut plain, mut sealed) = (Samples::default(), Samples::default());
    for _ in 0..runs {
        for (samples, to) in [(&mut plain, None), (&mut sealed, Some(auditor.public()))] {
            let start = std::time::Instant::now();
            for i in 0..SEALED_PER_SAMPLE {
                SignedStatement::sign_for(record(i), iss, &key, "twi-log", to)?;
            }
            samples.push(start.elapsed().as_secs_f64() * 1e6 / SEALED_PER_SAMPLE as f64);
        }
    }
    figure("µs per statement, record in clear", "µs", &plain, None);
    figure("µs per statement, record sealed to the auditor", "µs", &sealed, Some(("in clear", &plain)));
    let clear = SignedStatement::sign_for(record(0), iss, &key, "twi-log", None)?.bytes.len();
    let closed = SignedStatement::sign_for(record(0), iss, &key, "twi-log", Some(auditor.public()))?.bytes.len();
    say!("statement (leaf) size: {clear} bytes in clear, {closed} bytes sealed");
    Ok(())
}
