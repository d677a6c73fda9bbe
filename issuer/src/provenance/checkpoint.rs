//! The log's tree heads as C2SP checkpoints (c2sp.org/tlog-checkpoint) in C2SP signed notes
//! (c2sp.org/signed-note), the format transparency-log witnesses and verifiers already read:
//!
//! ```text
//! <origin>\n<tree size>\n<base64 RFC 9162 root>\n
//! \n
//! — <key name> <base64(4-byte key id ‖ Ed25519 signature)>\n
//! ```
//!
//! signed with an Ed25519 **checkpoint key** (`checkpoint.skey` in the issuer state), whose
//! verifier key (`checkpoint.vkey`) is published as the standard `<name>+<hex key id>+<base64(0x01 ‖ key)>`. The
//! key name is the origin, as tlog-checkpoint recommends. Ed25519 because tlog-tiles requires a
//! public log's checkpoint to carry at least one Ed25519 signature, and Go's
//! `golang.org/x/mod/sumdb/note` (which witnesses use) verifies nothing else; the log's P-384
//! tree-head signature stays for the JSON proofs of `provenance.json`.
//!
//! Formatting and signing are Cloudflare's `signed_note` and `tlog_tiles` crates (ports of the
//! Go originals); the tests verify what they write with an independent re-implementation of the
//! Go verifier's rules.

use std::path::Path;

use signed_note::{Note, StandardSigner, StandardVerifier, VerifierList};
use tlog_tiles::{Checkpoint, Hash as TlogHash};

use crate::error::IssuerError;
use crate::state;

const SKEY_FILE: &str = "checkpoint.skey";
const VKEY_FILE: &str = "checkpoint.vkey";

/// Why a checkpoint could not be made or was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("the checkpoint verifier key {0:?} is not a C2SP verifier key (name+hexid+base64)")]
    BadVerifierKey(String),
    #[error("the checkpoint is not a signed note signed by {key}: {reason}")]
    NotSigned { key: String, reason: String },
    #[error("the signed note does not hold a C2SP checkpoint (origin, size, base64 root)")]
    Malformed,
    #[error("the checkpoint is for log {actual:?}, not {expected:?}: check the issuer URL and key")]
    WrongOrigin { expected: String, actual: String },
    #[error("cannot sign the checkpoint: {0}")]
    Sign(String),
}

/// The log's checkpoint signer: origin (= key name) and Ed25519 key.
pub struct CheckpointKey {
    signer: StandardSigner,
    vkey: String,
}

impl std::fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointKey").field("vkey", &self.vkey).finish_non_exhaustive()
    }
}

impl CheckpointKey {
    /// The key in the issuer state `dir`, made for log `origin` if absent. A key made for
    /// another origin is kept (the origin is the log's name and never changes).
    pub fn load_or_create(dir: &Path, origin: &str) -> Result<Self, IssuerError> {
        let (skey_path, vkey_path) = (dir.join(SKEY_FILE), dir.join(VKEY_FILE));
        if !skey_path.exists() {
            if !signed_note::is_key_name_valid(origin) {
                return Err(IssuerError::State(skey_path, format!("{origin:?} is not a valid signed-note key name")));
            }
            let (skey, vkey) = signed_note::generate_key(&mut rand_core06::OsRng, origin);
            state::write_private(&vkey_path, vkey.as_bytes())?;
            state::write_private(&skey_path, skey.as_bytes())?;
        }
        let bad = |e: &dyn std::fmt::Display| {
            IssuerError::State(skey_path.clone(), format!("{e}: remove it and {VKEY_FILE} to make a new key"))
        };
        let signer = StandardSigner::new(state::read(&skey_path)?.trim()).map_err(|e| bad(&e))?;
        let vkey = state::read(&vkey_path)?.trim().to_string();
        // The verifier key must check what the signer key signs.
        let probe = Self { signer, vkey };
        let note = probe.sign(0, &[0; 32]).map_err(|e| bad(&e))?;
        verify(&note, &probe.vkey).map_err(|e| bad(&e))?;
        Ok(probe)
    }

    /// The log's origin (the checkpoint's first line, the key's name).
    pub fn origin(&self) -> &str {
        signed_note::Signer::name(&self.signer)
    }

    /// The C2SP verifier key that checks this key's checkpoints.
    pub fn vkey(&self) -> &str {
        &self.vkey
    }

    /// The signed checkpoint of the tree of `size` leaves with root `root`.
    pub fn sign(&self, size: u64, root: &[u8; 32]) -> Result<String, CheckpointError> {
        let checkpoint = Checkpoint::new(self.origin(), size, TlogHash(*root), "")
            .map_err(|e| CheckpointError::Sign(e.to_string()))?;
        let mut note = Note::new(&checkpoint.to_bytes(), &[]).map_err(|e| CheckpointError::Sign(e.to_string()))?;
        note.add_sigs(&[&self.signer]).map_err(|e| CheckpointError::Sign(e.to_string()))?;
        String::from_utf8(note.to_bytes()).map_err(|e| CheckpointError::Sign(e.to_string()))
    }
}

/// A checkpoint that verified: the log's origin, size and root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    pub origin: String,
    pub size: u64,
    pub root: [u8; 32],
}

/// Verifies `note` (a signed checkpoint) under the C2SP verifier key `vkey`, and that it is
/// the checkpoint of the log named by the key.
pub fn verify(note: &str, vkey: &str) -> Result<VerifiedCheckpoint, CheckpointError> {
    let verifier = StandardVerifier::new(vkey.trim()).map_err(|_| CheckpointError::BadVerifierKey(vkey.into()))?;
    let origin = signed_note::Verifier::name(&verifier).to_string();
    let parsed = Note::from_bytes(note.as_bytes())
        .map_err(|e| CheckpointError::NotSigned { key: vkey.into(), reason: e.to_string() })?;
    parsed
        .verify(&VerifierList::new(vec![Box::new(verifier)]))
        .map_err(|e| CheckpointError::NotSigned { key: vkey.into(), reason: e.to_string() })?;
    let checkpoint = Checkpoint::from_bytes(parsed.text()).map_err(|_| CheckpointError::Malformed)?;
    if checkpoint.origin() != origin {
        return Err(CheckpointError::WrongOrigin { expected: origin, actual: checkpoint.origin().into() });
    }
    Ok(VerifiedCheckpoint { origin, size: checkpoint.size(), root: checkpoint.hash().0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_signs_and_verifies_and_a_changed_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let key = CheckpointKey::load_or_create(dir.path(), "example.org/twi-log").unwrap();
        let note = key.sign(3, &[7; 32]).unwrap();
        assert!(note.starts_with(
            "example.org/twi-log\n3\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n\n— example.org/twi-log "
        ));
        let verified = verify(&note, key.vkey()).unwrap();
        assert_eq!(verified, VerifiedCheckpoint { origin: "example.org/twi-log".into(), size: 3, root: [7; 32] });
        // The same key again from the state.
        let again = CheckpointKey::load_or_create(dir.path(), "ignored").unwrap();
        assert_eq!(again.vkey(), key.vkey());
        // Another size, another key, another name: refused.
        assert!(verify(&note.replacen("\n3\n", "\n4\n", 1), key.vkey()).is_err());
        let other = CheckpointKey::load_or_create(tempfile::tempdir().unwrap().path(), "example.org/twi-log").unwrap();
        assert!(verify(&note, other.vkey()).is_err());
        assert!(matches!(verify(&note, "not a key"), Err(CheckpointError::BadVerifierKey(_))));
    }
}
