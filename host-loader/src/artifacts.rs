//! What `twi run` leaves in its output directory, and nothing else: the credential and the
//! issuer's CA (`credential.pem`, `issuer-ca.pem`), under a policy the WIT, the attestation
//! result, the provenance proofs and the keys that verify them, the evidence as the guest sent
//! it, mechanism B's credential request and D's key release, and the guest console. A run
//! first removes every one of these, so that a reused `--out` never shows an earlier run's
//! credential or evidence beside this run's failure.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use twi_proto::msg::{CredentialRequest, Evidence};
use twi_verifier::tdx::cc_event_log;

use crate::answers::Obtained;
use crate::bridge::Released;

pub const CREDENTIAL: &str = "credential.pem";
pub const ISSUER_CA: &str = "issuer-ca.pem";
pub const WIT: &str = "credential.wit";
pub const ATTESTATION_RESULT: &str = "attestation-result.jwt";
pub const ATTESTATION_RESULT_CWT: &str = "attestation-result.cwt";
pub const PROVENANCE: &str = "provenance.json";
pub const ISSUER_JWKS: &str = "issuer-jwks.json";
/// The trust domain's SPIFFE bundle (the X.509 and WIT authorities only).
pub const TRUST_BUNDLE: &str = "trust-bundle.json";
pub const EVIDENCE_BIN: &str = "evidence.bin";
pub const EVIDENCE_JSON: &str = "evidence.json";
/// TDX: the runtime's RTMR event log as a CC event log (the ACPI CCEL table's format), for
/// verifiers that replay standard logs.
pub const EVENT_LOG_CCEL: &str = "event-log.ccel";
pub const KEY_RELEASE: &str = "key-release.json";
pub const CREDENTIAL_REQUEST: &str = "credential-request.json";
pub const SELF_TEST_ROM: &str = "self-test.rom";
/// When each message of the acquisition crossed, in milliseconds since the QEMU launch.
pub const TIMELINE: &str = "timeline.json";

/// Every file a run writes (the image files `twi build` writes are not among them: a run
/// rebuilds those itself when it builds the image).
pub const RUN_FILES: [&str; 16] = [
    CREDENTIAL,
    ISSUER_CA,
    WIT,
    ATTESTATION_RESULT,
    ATTESTATION_RESULT_CWT,
    PROVENANCE,
    ISSUER_JWKS,
    TRUST_BUNDLE,
    EVIDENCE_BIN,
    EVIDENCE_JSON,
    EVENT_LOG_CCEL,
    KEY_RELEASE,
    CREDENTIAL_REQUEST,
    SELF_TEST_ROM,
    TIMELINE,
    crate::vm::console::LOG,
];

/// Why an output file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("cannot write {0}: {1} (check --out)")]
    Write(PathBuf, #[source] std::io::Error),
    #[error("cannot remove {0} from an earlier run: {1} (remove it, or choose another --out)")]
    Remove(PathBuf, #[source] std::io::Error),
    #[error("cannot encode {0}: {1}")]
    Json(&'static str, #[source] serde_json::Error),
}

/// The output directory of one run.
#[derive(Debug, Clone)]
pub struct OutDir {
    dir: PathBuf,
}

impl OutDir {
    /// Creates `dir` if needed and removes what an earlier run wrote there.
    pub fn prepare(dir: &Path) -> Result<Self, ArtifactError> {
        fs::create_dir_all(dir).map_err(|e| ArtifactError::Write(dir.to_path_buf(), e))?;
        for name in RUN_FILES {
            let path = dir.join(name);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(ArtifactError::Remove(path, e)),
            }
        }
        Ok(Self { dir: dir.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes `bytes` as `name`.
    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> Result<PathBuf, ArtifactError> {
        let path = self.dir.join(name);
        fs::write(&path, bytes).map_err(|e| ArtifactError::Write(path.clone(), e))?;
        Ok(path)
    }

    fn write_json(&self, name: &'static str, value: &serde_json::Value) -> Result<PathBuf, ArtifactError> {
        let text = serde_json::to_string_pretty(value).map_err(|e| ArtifactError::Json(name, e))?;
        self.write(name, text + "\n")
    }

    /// Keeps the evidence as received (before anything the host did to it) for the user and
    /// for audits: `evidence.bin` is the raw report or quote (a quote the guest named by
    /// digest, `quote_sha384`, is the one this host delivered under that name),
    /// `evidence.json` says what it binds; TDX: `event-log.ccel` is its event log as a CC event
    /// log.
    pub fn evidence(&self, evidence: &Evidence) -> Result<(), ArtifactError> {
        self.write(EVIDENCE_BIN, &evidence.evidence)?;
        if let Some(events) = &evidence.event_log {
            self.write(EVENT_LOG_CCEL, cc_event_log(&twi_issuer::measured_events(events)))?;
        }
        let json = serde_json::json!({
            "platform": format!("{:?}", evidence.platform),
            "evidence": EVIDENCE_BIN,
            "nonce": hex::encode(&evidence.nonce),
            "public_key": hex::encode(&evidence.public_key),
            "target": evidence.target,
            "csr": evidence.csr.as_ref().map(hex::encode),
            "certificate_table": evidence.certificates.as_ref().map(hex::encode),
            "certificate_table_sha384": evidence.certificates_sha384.as_ref().map(hex::encode),
            "quote_sha384": evidence.evidence_sha384.as_ref().map(hex::encode),
            "report_data_binding": "TACRA: SHA-512(len32(freshness) || freshness || len32(rp_id) || rp_id || len32(target) || target || len32(subject) || subject); subject = csr (Enrollment) or the key's SubjectPublicKeyInfo (Retrieval); freshness = nonce",
            "event_log_ccel": evidence.event_log.as_ref().map(|_| EVENT_LOG_CCEL),
            "event_log": evidence.event_log.as_ref().map(|events| events.iter().map(|e| serde_json::json!({
                "rtmr": e.rtmr,
                "event_type": format!("{:#x}", e.event_type),
                "digest": hex::encode(&e.digest),
                "data": hex::encode(&e.data),
            })).collect::<Vec<_>>()),
        });
        self.write_json(EVIDENCE_JSON, &json)?;
        Ok(())
    }

    /// Mechanism D: `key-release.json` records the release the guest was sent (the HPKE `enc`
    /// and ciphertext are safe to keep: only the guest's ephemeral key opens them) and its
    /// signed receipt, with the key that verifies it.
    pub fn key_release(&self, released: &Released, ephemeral_public_key: &[u8]) -> Result<(), ArtifactError> {
        let release = &released.release;
        let json = serde_json::json!({
            "workload_id": release.provisioned.workload_id,
            "x509_serial": release.provisioned.serial_hex,
            "provisioned_public_key": hex::encode(&release.provisioned.public_key),
            "ephemeral_public_key": hex::encode(ephemeral_public_key),
            "hpke": "RFC 9180 base mode, DHKEM(P-384, HKDF-SHA384) / HKDF-SHA384 / AES-256-GCM",
            "info": "\"TWI-KEY-RELEASE-v1\\0\" || u16be(len nonce) || nonce || ephemeral_public_key",
            "aad": "\"TWI-KEY-RELEASE-CERT-v1\\0\" || SHA-256(certificate DER)",
            "enc": hex::encode(&release.enc),
            "ciphertext": hex::encode(&release.ciphertext),
            "receipt": release.receipt,
            "key_store_key": released.key_store_jwk,
        });
        self.write_json(KEY_RELEASE, &json)?;
        Ok(())
    }

    /// Mechanism B: keeps the guest's CredentialRequest so that its proof of possession can be
    /// checked by anyone.
    pub fn credential_request(&self, request: &CredentialRequest) -> Result<(), ArtifactError> {
        let json = serde_json::json!({
            "ear": request.ear,
            "public_key": hex::encode(&request.public_key),
            "proof": hex::encode(&request.proof),
            "proof_signs": "ECDSA P-384/SHA-384 (DER) over \"TWI-CREDREQ-v1\\0\" || eat_nonce || public_key || SHA-256(ear)",
        });
        self.write_json(CREDENTIAL_REQUEST, &json)?;
        Ok(())
    }

    /// The credential, its WIT, attestation result and provenance proofs, the issuer's role
    /// keys (`jwks`) and its SPIFFE bundle (`bundle`). Returns the names of the files written
    /// beside the certificate.
    pub fn credential(
        &self,
        issued: &Obtained,
        jwks: serde_json::Value,
        bundle: serde_json::Value,
    ) -> anyhow::Result<Vec<&'static str>> {
        let credential = &issued.credential;
        self.write(CREDENTIAL, &credential.certificate_pem)?;
        let mut written = vec![WIT];
        self.write(WIT, &credential.wit)?;
        if let Some(ear) = &credential.attestation_result {
            self.write(ATTESTATION_RESULT, ear)?;
            written.push(ATTESTATION_RESULT);
        }
        self.write_json(PROVENANCE, &credential.provenance)?;
        self.write_json(ISSUER_JWKS, &jwks)?;
        self.write_json(TRUST_BUNDLE, &bundle)?;
        written.extend([PROVENANCE, ISSUER_JWKS, TRUST_BUNDLE]);
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reused output directory loses what the last run wrote, and only that.
    #[test]
    fn prepare_removes_the_run_files_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        for name in RUN_FILES.iter().chain(&["twi.rom", "notes.txt"]) {
            fs::write(dir.path().join(name), b"stale").unwrap();
        }
        let out = OutDir::prepare(dir.path()).unwrap();
        for name in RUN_FILES {
            assert!(!out.join(name).exists(), "{name} from an earlier run survived");
        }
        assert!(out.join("twi.rom").exists() && out.join("notes.txt").exists());
        // A directory that does not exist yet is made.
        let fresh = OutDir::prepare(&dir.path().join("a/b")).unwrap();
        assert!(fresh.path().is_dir());
    }
}
