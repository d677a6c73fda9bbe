//! The policy key: a detached ECDSA P-384 signature over the policy file's exact bytes
//! (`<policy>.sig`, as `openssl dgst -sha384 -sign` writes it), without which declared
//! platform claims (CF_L0) do not count — the issuer refuses to vouch for claims no one signed.
//! The same signature forms cover the CF_L1 signed inventories (`inventory.rs`).

use std::path::{Path, PathBuf};

use p384::ecdsa::signature::{Signer, Verifier};
use p384::ecdsa::{DerSignature, Signature, SigningKey, VerifyingKey};

use super::model::{Policy, PolicyError};

impl Policy {
    /// Reads a policy file and, when present, its detached signature `<path>.sig`. The
    /// signature is checked by [`Policy::verify_signature`] (or use [`Policy::load_verified`]).
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| PolicyError::Read { path: path.display().to_string(), error: e.to_string() })?;
        let mut policy = Self::parse(&text, &path.display().to_string(), path.parent())?;
        policy.sbom_store = Some(super::provenance::sbom_store_of(path));
        let sig_path = signature_path(path);
        if sig_path.exists() {
            let sig = std::fs::read(&sig_path)
                .map_err(|e| PolicyError::Read { path: sig_path.display().to_string(), error: e.to_string() })?;
            policy.signature = Some(sig);
        }
        Ok(policy)
    }

    /// Reads a policy and checks its signature with `key` when one is configured. A policy
    /// that declares CF_L0 platform claims must be signed by `key`, or it is refused.
    pub fn load_verified(path: &Path, key: Option<&PolicyKey>) -> Result<Self, PolicyError> {
        let mut policy = Self::load(path)?;
        if let Some(key) = key {
            if policy.signature.is_some() || policy.declares_platform_claims().is_some() {
                policy.verify_signature(key)?;
            }
        } else if let Some(workload) = policy.declares_platform_claims() {
            return Err(PolicyError::Signature {
                file: policy.source.clone(),
                reason: format!(
                    "workload `{workload}` declares CF_L0 platform claims, which count only under the policy key's signature, and no policy key is configured"
                ),
            });
        }
        Ok(policy)
    }

    /// Attaches a detached signature (for policies not read from a file).
    pub fn with_signature(mut self, signature: Vec<u8>) -> Self {
        self.signature = Some(signature);
        self.signed = false;
        self
    }

    /// Checks the detached signature over the policy's exact bytes under the policy key.
    /// After this, declared (CF_L0) platform claims are admitted.
    pub fn verify_signature(&mut self, key: &PolicyKey) -> Result<(), PolicyError> {
        let fail = |reason: String| PolicyError::Signature { file: self.source.clone(), reason };
        let Some(sig) = &self.signature else {
            return Err(fail(format!(
                "no signature: the policy key must sign this file (e.g. `openssl dgst -sha384 -sign policy-key.pem -out {0}.sig {0}`)",
                self.source
            )));
        };
        let sig = parse_signature(sig).ok_or_else(|| {
            fail("the signature file holds no ECDSA P-384 signature (DER, base64 of DER, or 96 raw bytes)".into())
        })?;
        key.0.verify(&self.bytes, &sig).map_err(|_| {
            fail("the signature does not verify under the policy key: the file was changed after signing, or signed by another key".into())
        })?;
        self.signed = true;
        Ok(())
    }
}

/// `<path>.sig`: where a detached signature of `path` is kept.
pub(super) fn signature_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(".sig");
    PathBuf::from(s)
}

/// An ECDSA P-384 signature in DER (as `openssl dgst -sign` writes it), base64 of DER, or raw
/// 96-byte `r ‖ s`.
pub(super) fn parse_signature(bytes: &[u8]) -> Option<Signature> {
    use base64ct::{Base64, Encoding};
    if let Ok(sig) = Signature::from_der(bytes) {
        return Some(sig);
    }
    if bytes.len() == 96 {
        return Signature::from_slice(bytes).ok();
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let compact: String = text.split_whitespace().collect();
    let der = Base64::decode_vec(&compact).ok()?;
    Signature::from_der(&der).ok()
}

/// Signs policy bytes with the policy key: DER, what `openssl dgst -sha384 -sign` writes.
pub fn sign_policy(bytes: &[u8], key: &SigningKey) -> Vec<u8> {
    let sig: Signature = key.sign(bytes);
    let der: DerSignature = sig.to_der();
    der.as_bytes().to_vec()
}

/// The policy key's public half (a P-384 public key in PEM), configured in the issuer.
#[derive(Clone, Debug)]
pub struct PolicyKey(pub VerifyingKey);

impl PolicyKey {
    pub fn from_pem(pem: &str) -> Result<Self, PolicyError> {
        use p384::pkcs8::DecodePublicKey;
        VerifyingKey::from_public_key_pem(pem)
            .map(Self)
            .map_err(|e| PolicyError::Key(format!("not a P-384 public key in PEM (SubjectPublicKeyInfo): {e}")))
    }

    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| PolicyError::Read { path: path.display().to_string(), error: e.to_string() })?;
        Self::from_pem(&pem).map_err(|e| PolicyError::Key(format!("{}: {e}", path.display())))
    }
}
