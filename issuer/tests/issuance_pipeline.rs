//! The issue-6 building blocks wired the way `Issuer::issue` will wire them, on a verified
//! (here: constructed) SEV-SNP report: policy admission → freshness → attestation result
//! (EAR, binding the key) → Credential Authority checks the EAR (mechanism B) → WIT →
//! provenance record with an inclusion proof → a renewal on another chip refused (CS_L3).

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use p384::ecdsa::SigningKey;
use p384::elliptic_curve::Generate;
use sha2::{Digest, Sha384};
use twi_attester::binding;
use twi_attester::snp::report::{AttestationReport, EcdsaP384Signature, GuestPolicy, KeyInfo, TcbLayout, TcbVersion};
use twi_issuer::ear::{Ear, Status, claim};
use twi_issuer::freshness::{
    Clock, EpochPublisher, Fresh, Freshness, FreshnessError, FreshnessLevel, ManualClock, NonceScope, NonceStore,
};
use twi_issuer::policy::{Admission, Appraised, Policy, RenewalCheck};
use twi_issuer::provenance::{
    ProvenanceLog, ProvenanceRecord, SignedStatement, VerifierDecision, leaf_hash, verify_inclusion,
};
use twi_issuer::wit::Wit;
use twi_proto::msg::Platform;

const V1: &str = "6a1b0c5e8f2d4a7b9c3e1f0a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e2f4a6b8c0d2e4f6a8b0c2d4e6f8a0b2c4d6e8f0a";

fn policy() -> Policy {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/policy.example.toml")).unwrap();
    Policy::from_toml(&text).unwrap()
}

/// A report as the (simulated) PSP signs it, binding `nonce` and `key`.
fn report(nonce: &[u8], key_sec1: &[u8], chip: u8) -> AttestationReport {
    // Milan/Genoa layout: bootloader 3 (byte 0), tee 0, snp 8 (byte 6), microcode 115 (byte 7).
    let tcb = TcbVersion(0x7308_0000_0000_0003);
    let mut measurement = [0u8; 48];
    measurement.copy_from_slice(&hex::decode(V1).unwrap());
    AttestationReport {
        version: 3,
        guest_svn: 0,
        policy: GuestPolicy(GuestPolicy::QEMU_DEFAULT),
        family_id: [0; 16],
        image_id: [0; 16],
        vmpl: 0,
        signature_algo: 1,
        current_tcb: tcb,
        platform_info: 0,
        key_info: KeyInfo(0),
        report_data: binding::report_data(nonce, key_sec1).unwrap(),
        measurement,
        host_data: [0; 32],
        id_key_digest: [0; 48],
        author_key_digest: [0; 48],
        report_id: [1; 32],
        report_id_ma: [0xFF; 32],
        reported_tcb: tcb,
        cpuid_fam_id: 0x19,
        cpuid_mod_id: 0x01,
        cpuid_step: 0x01,
        chip_id: [chip; 64],
        committed_tcb: tcb,
        current_build: 21,
        current_minor: 55,
        current_major: 1,
        committed_build: 21,
        committed_minor: 55,
        committed_major: 1,
        launch_tcb: tcb,
        launched_mit_vector: 0,
        current_mit_vector: 0,
        signature: EcdsaP384Signature { r: [0; 72], s: [0; 72] },
    }
}

/// What the Verifier signs after admission (mechanisms A and B).
fn attestation_result(admission: &Admission, key_sec1: &[u8], nonce: &[u8], now: SystemTime) -> Ear {
    let mut policy_claims = serde_json::Map::new();
    policy_claims.insert("workload-id".into(), admission.workload_id.clone().into());
    let claims: serde_json::Map<_, _> = admission.claims.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
    policy_claims.insert("claims".into(), claims.into());
    policy_claims.insert("binding".into(), admission.binding.to_json());
    // The simulated TEE is not recognised hardware.
    let policy_id = format!("twi-policy:example.org@{}", admission.policy_version);
    support::affirming_ear(key_sec1, nonce, claim::UNRECOGNIZED_HARDWARE, policy_id, policy_claims, now)
}

#[test]
fn evidence_to_logged_credential_and_a_refused_renewal() {
    let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let mut freshness =
        Freshness { epochs: None, nonces: NonceStore::new(Duration::from_secs(120), 1000, shared.clone()) };
    let verifier_key = SigningKey::try_generate().unwrap();
    let ca_key = SigningKey::try_generate().unwrap();
    let log_key = SigningKey::try_generate().unwrap();
    let workload = SigningKey::try_generate().unwrap();
    let key_sec1 = workload.verifying_key().to_sec1_point(false).as_bytes().to_vec();
    let policy = policy();

    // Verifier: challenge, Evidence, verified report (signature checks are the verifier's).
    let nonce = freshness.nonces.issue(NonceScope::default()).unwrap();
    let rep = report(&nonce, &key_sec1, 0xA1);
    assert_eq!(rep.report_data, binding::report_data(&nonce, &key_sec1).unwrap());
    let appraised = Appraised::from_snp_report(Platform::SimSnp, &rep, TcbLayout::MilanGenoa);
    let admission = policy.admit(&appraised).unwrap();
    assert_eq!(admission.freshness, FreshnessLevel::Nonce);
    assert_eq!(freshness.check(admission.freshness, &nonce), Ok(Fresh::Nonce(NonceScope::default())));
    assert_eq!(freshness.check(admission.freshness, &nonce), Err(FreshnessError::Replayed));

    // Mechanism B: the Verifier's EAR travels through the workload to the CA.
    let now = shared.now();
    let cwt = attestation_result(&admission, &key_sec1, &nonce, now).sign_cwt(&verifier_key, None).unwrap();
    let ear = Ear::verify_cwt(&cwt, verifier_key.verifying_key(), now).unwrap();
    let twi = &ear.submods["twi"];
    // The simulated TEE's unrecognised hardware makes the status contraindicated (its worst claim).
    assert_eq!(twi.status(), Status::Contraindicated);
    assert_eq!(ear.status(), Status::Contraindicated);
    assert_eq!(twi.bound_key().unwrap(), Some(p384::PublicKey::from(workload.verifying_key())));
    let workload_id = twi.verifier_claims["workload-id"].as_str().unwrap();

    // Credential Authority: a WIT for the bound key, with the business claims and the binding.
    let mut wit = Wit::new("https://issuer.example.org", workload_id, &key_sec1, now, admission.lifetime).unwrap();
    for (name, value) in &admission.claims {
        wit = wit.with_claim(name, value.clone()).unwrap();
    }
    let oids = twi_issuer::oids::Oids::default();
    wit = wit.with_claim(&oids.claim_name(&oids.policy_binding), admission.binding.to_json()).unwrap();
    let token = wit.sign(&ca_key, None).unwrap();
    let verified = Wit::verify(&token, ca_key.verifying_key(), now).unwrap();
    assert_eq!(verified.sub, "spiffe://example.org/payroll-app");
    assert_eq!(verified.claims["location"], "DE");

    // Provenance: one record for the credential, provable against a signed tree head.
    let dir = tempfile::tempdir().unwrap();
    let mut log = ProvenanceLog::open(&dir.path().join("provenance.sqlite")).unwrap();
    let record = ProvenanceRecord {
        workload_id: admission.workload_id.clone(),
        credential_kind: "wit".into(),
        credential_id: verified.jti.clone(),
        evidence_sha384: hex::encode(Sha384::digest(rep.to_bytes())),
        decision: VerifierDecision {
            status: ear.status().name().into(),
            verifier: ear.verifier_id.build.clone(),
            criteria: BTreeMap::from([
                ("platform".to_string(), "sim-snp".to_string()),
                ("measurement".to_string(), V1.to_string()),
                ("reference".to_string(), admission.reference.label.clone()),
                ("freshness".to_string(), admission.freshness.name().to_string()),
                ("fidelity".to_string(), admission.fidelity.name().to_string()),
                ("stickiness".to_string(), admission.stickiness.name().to_string()),
                ("mechanism".to_string(), "b".to_string()),
            ]),
        },
        policy_version: admission.policy_version.clone(),
        issued_at: verified.iat,
    };
    // The record as the log's signed statement (COSE_Sign1 under the log key), its leaf.
    let statement = SignedStatement::sign(record, "spiffe://example.org/twi-issuer", &log_key, "twi-log").unwrap();
    let appended = log.append(&statement).unwrap();
    let head = log.sign_tree_head(&log_key, now).unwrap();
    let proof = log.inclusion_proof(appended.index, head.size).unwrap();
    verify_inclusion(&leaf_hash(&statement.to_leaf().unwrap()), appended.index, head.size, &proof, &head.root).unwrap();
    SignedStatement::verify(&statement.to_leaf().unwrap(), log_key.verifying_key()).unwrap();
    head.verify(log_key.verifying_key()).unwrap();

    // Renewal a day later from another chip: payroll-app is CS_L3, so it is refused.
    clock.advance(Duration::from_secs(86_400));
    let nonce = freshness.nonces.issue(NonceScope::default()).unwrap();
    let moved = Appraised::from_snp_report(Platform::SimSnp, &report(&nonce, &key_sec1, 0xB2), TcbLayout::MilanGenoa);
    let renewal = policy.admit(&moved).unwrap();
    let refused = RenewalCheck { previous: admission.binding.clone() }.check(&renewal).unwrap_err();
    assert_eq!(refused.differences[0].field, "chip_id");
    assert!(refused.to_string().starts_with("renewal of spiffe://example.org/payroll-app refused"), "{refused}");
    // The same chip renews.
    let same = Appraised::from_snp_report(Platform::SimSnp, &report(&nonce, &key_sec1, 0xA1), TcbLayout::MilanGenoa);
    RenewalCheck { previous: admission.binding }.check(&policy.admit(&same).unwrap()).unwrap();
}

#[test]
fn af_l1_evidence_binds_the_current_epoch() {
    let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let epoch_key = SigningKey::try_generate().unwrap();
    let epoch_vk = *epoch_key.verifying_key();
    let mut freshness = Freshness {
        epochs: Some(EpochPublisher::new(epoch_key, Duration::from_secs(600), Duration::from_secs(30), shared.clone())),
        nonces: NonceStore::new(Duration::from_secs(120), 10, shared.clone()),
    };
    // The workload fetches the published epoch, checks it, and binds its id as the nonce.
    let published = freshness.epochs.as_mut().unwrap().current().unwrap().to_bytes();
    let epoch = twi_issuer::freshness::SignedEpoch::from_bytes(&published).unwrap();
    epoch.verify(&epoch_vk, shared.now()).unwrap();
    let nonce = epoch.id();
    assert_eq!(freshness.check(FreshnessLevel::Epoch, &nonce), Ok(Fresh::Epoch(epoch.number)));
    // Unlike a nonce, an epoch is shared: a second workload may use it within the epoch.
    assert_eq!(freshness.check(FreshnessLevel::Epoch, &nonce), Ok(Fresh::Epoch(epoch.number)));
    // Two epochs later it is stale.
    clock.advance(Duration::from_secs(1300));
    assert_eq!(freshness.check(FreshnessLevel::Epoch, &nonce), Err(FreshnessError::UnknownEpoch));
    assert_eq!(freshness.check(FreshnessLevel::Epoch, &[0; 32]), Err(FreshnessError::UnknownEpoch));
}
