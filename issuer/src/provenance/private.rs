//! The private binding table: for each record sealed to an auditor key, the binding that
//! record holds, kept beside the log so that a renewal of the credential can be checked
//! against it as an open record's binding is (the sealed record itself only the auditor reads).
//!
//! It is never published: no HTTP answer, proof, receipt or checkpoint reads it, and even in
//! the log's own store (`provenance.sqlite`, or the replicas' PostgreSQL database, table
//! `private_bindings`) a row holds the binding only sealed with HPKE (the suite of
//! [`twi_attester::hpke`], as the Key Store seals provisioned keys at rest) to the issuer's
//! binding key `binding-key.pem` (P-384, 0600, in the state directory; replicas share it as
//! they share `log-key.pem`). The associated data names the credential and the SHA-256 of its
//! statement, so a row moved to another credential, or left over from another record, does not
//! open. A row is written in the same transaction as its record.

use std::path::{Path, PathBuf};

use p384::elliptic_curve::Generate;
use twi_attester::hpke;
use zeroize::Zeroizing;

use super::LogError;
use crate::error::IssuerError;
use crate::state;

/// The binding key's file in the state directory.
pub const BINDING_KEY: &str = "binding-key.pem";

/// HPKE `info` of a binding at rest.
const AT_REST_INFO: &[u8] = b"twi provenance: a sealed record's binding at rest";

/// One row: the credential, and its record's binding sealed to the binding key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivateBinding {
    pub credential_id: String,
    /// HPKE `enc` (the ephemeral public key, SEC1 uncompressed).
    pub enc: Vec<u8>,
    /// The binding's JSON, sealed (ciphertext ‖ tag).
    pub sealed: Vec<u8>,
}

/// The issuer's binding key: seals and opens rows of the private binding table.
#[derive(Debug)]
pub struct BindingKey {
    key: p384::SecretKey,
    path: PathBuf,
}

/// The associated data of credential `id`'s row, whose record's statement has SHA-256
/// `statement_sha256`.
fn aad(id: &str, statement_sha256: &[u8; 32]) -> Vec<u8> {
    [id.as_bytes(), &[0], statement_sha256].concat()
}

impl BindingKey {
    /// The key `binding-key.pem` of the state directory `dir` (made, 0600, if absent).
    pub fn load_or_create(dir: &Path) -> Result<Self, IssuerError> {
        let key = state::load_or_create_key(dir, BINDING_KEY)?;
        Ok(Self { key: key.into(), path: dir.join(BINDING_KEY) })
    }

    /// Credential `id`'s row: `binding` (its record's, as JSON) sealed for the record whose
    /// statement has SHA-256 `statement_sha256`.
    pub fn seal(&self, id: &str, statement_sha256: &[u8; 32], binding: &[u8]) -> Result<PrivateBinding, LogError> {
        let mut sealed = vec![0u8; binding.len() + hpke::TAG_LEN];
        let ephemeral = p384::SecretKey::try_generate().map_err(|_| LogError::Sealed("no randomness".into()))?;
        let recipient = hpke::serialize_public_key(&self.key.public_key());
        let enc = hpke::seal_with_ephemeral(
            &recipient,
            &ephemeral,
            AT_REST_INFO,
            &aad(id, statement_sha256),
            binding,
            &mut sealed,
        )
        .map_err(|e| LogError::Sealed(format!("sealing the binding of {id}: {e}")))?;
        Ok(PrivateBinding { credential_id: id.to_string(), enc: enc.to_vec(), sealed })
    }

    /// The binding JSON in `row`, which must be the row of the record whose statement has
    /// SHA-256 `statement_sha256`; `Err` says what is wrong with the row (altered, moved, or
    /// sealed under another binding key).
    pub fn open(&self, row: &PrivateBinding, statement_sha256: &[u8; 32]) -> Result<Zeroizing<Vec<u8>>, IssuerError> {
        let mut binding = Zeroizing::new(vec![0u8; row.sealed.len().saturating_sub(hpke::TAG_LEN)]);
        let aad = aad(&row.credential_id, statement_sha256);
        hpke::open(&self.key, &row.enc, AT_REST_INFO, &aad, &row.sealed, &mut binding).map_err(|_| {
            let what = format!(
                "the private binding row of credential {} does not open under this key for its record: the row was altered or moved, or this is not the binding key the issuer sealed it with (replicas share the state's keys)",
                row.credential_id
            );
            IssuerError::State(self.path.clone(), what)
        })?;
        Ok(binding)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_opens_only_for_its_credential_and_record_under_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = BindingKey::load_or_create(dir.path()).unwrap();
        let statement = [7u8; 32];
        let row = key.seal("0a1b", &statement, b"{\"stickiness\":\"CS_L1\"}").unwrap();
        assert!(!row.sealed.windows(5).any(|w| w == b"CS_L1"), "sealed, not in clear");
        assert_eq!(key.open(&row, &statement).unwrap().as_slice(), b"{\"stickiness\":\"CS_L1\"}");
        // The same key reloads from the state directory.
        let again = BindingKey::load_or_create(dir.path()).unwrap();
        assert_eq!(again.open(&row, &statement).unwrap().as_slice(), b"{\"stickiness\":\"CS_L1\"}");

        let moved = PrivateBinding { credential_id: "0a1c".into(), ..row.clone() };
        assert!(key.open(&moved, &statement).unwrap_err().to_string().contains("does not open"));
        assert!(key.open(&row, &[8u8; 32]).is_err(), "another record's statement");
        let mut altered = row.clone();
        altered.sealed[0] ^= 1;
        assert!(key.open(&altered, &statement).is_err());
        let other = tempfile::tempdir().unwrap();
        assert!(BindingKey::load_or_create(other.path()).unwrap().open(&row, &statement).is_err());
    }
}
