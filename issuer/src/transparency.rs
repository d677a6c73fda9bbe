//! The provenance log as anyone may read it (SCITT's transparency service role, over RFC 9162
//! proofs and C2SP checkpoints): the current checkpoint, its verifier key, a credential's
//! record with its inclusion proof, consistency proofs between tree sizes, and the SBOMs the
//! records name (from the policy's SBOM store). The HTTP service serves these
//! (`GET /v1/log/...`); `twi log prove` and `twi provenance show --issuer-url` check them.

use serde_json::Value;

use crate::error::IssuerError;
use crate::issuer::Issuer;
use crate::log_peer::SignResponse;
use crate::policy::{SbomDigest, SbomError, stored_sbom};
use crate::provenance::ProvenanceRecord;

impl Issuer {
    /// The log's current checkpoint: a C2SP signed note (tlog-checkpoint body).
    pub fn log_checkpoint(&self) -> Result<String, IssuerError> {
        self.records()?.current_checkpoint()
    }

    /// The C2SP verifier key of the log's checkpoints (`<origin>+<key id>+<key>`).
    pub fn log_vkey(&self) -> Result<String, IssuerError> {
        Ok(self.records()?.checkpoint_key().vkey().to_string())
    }

    /// The record of credential `id` (an X.509 serial in hex, or a WIT `jti`), its RFC 9162
    /// inclusion proof and the checkpoint it proves against; `None` if the log has no record
    /// of it.
    pub fn log_proof(&self, id: &str) -> Result<Option<Value>, IssuerError> {
        self.records()?.prove(id)
    }

    /// For a Credential Authority of another process (`POST /v1/log/statements`): `records`,
    /// one issuance's, signed as statements; `Ok(Err)` says why they are not well-formed.
    pub fn log_sign_for_ca(&self, records: Vec<ProvenanceRecord>) -> Result<Result<SignResponse, String>, IssuerError> {
        Ok(self.records()?.sign_asked(records, (self.clock)()))
    }

    /// For a Credential Authority of another process (`POST /v1/log/append`): `statements`
    /// (hex), which this log signed, appended with a new signed tree head in one transaction;
    /// `Ok(Err)` says why they are not this log's statements.
    /// `binding`: the issuance's, kept in the private binding table for the sealed statements.
    pub fn log_append_for_ca(
        &self,
        statements: &[String],
        binding: Option<&crate::policy::Binding>,
    ) -> Result<Result<Value, String>, IssuerError> {
        self.records()?.append_asked(statements, binding, (self.clock)())
    }

    /// For a Credential Authority of another process (`POST /v1/log/binding`): the binding of
    /// credential `id` from its record, or from the private binding table when the record is
    /// sealed; `None` when the log has no record of it.
    pub fn log_binding_for_ca(&self, id: &str) -> Result<Option<crate::log_peer::BindingAnswer>, IssuerError> {
        let answer = self.records()?.binding_of(id)?.map(|found| match found {
            Ok(binding) => crate::log_peer::BindingAnswer { binding: Some(binding), sealed_to: None },
            Err(kid) => crate::log_peer::BindingAnswer {
                binding: None,
                sealed_to: Some(crate::provenance::sealed::shown_kid(&kid)),
            },
        });
        Ok(answer)
    }

    /// The RFC 9162 consistency proof between the trees of `first` and `second` leaves.
    pub fn log_consistency(&self, first: u64, second: u64) -> Result<Value, IssuerError> {
        self.records()?.consistency(first, second)
    }

    /// The SBOM document `digest` names, as the policy's SBOM store holds it (its digest
    /// checked): what a provenance record's `sbom` criterion names. `SbomError::Missing` when
    /// the store has no such document, or the policy has no store.
    pub fn log_sbom(&self, digest: &SbomDigest) -> Result<Vec<u8>, SbomError> {
        let Some(store) = self.policy().sbom_store() else {
            return Err(SbomError::Missing {
                path: format!(
                    "{} (this issuer's policy was not loaded from a file, so it has no SBOM store)",
                    digest.file_name()
                ),
            });
        };
        stored_sbom(store, digest)
    }

    /// The attached statement (`twi build --attach`) of SHA-384 `digest` that an SBOM lists, as
    /// the policy's SBOM store holds it (`twi policy add-image` keeps it there; its digest
    /// checked). `SbomError::Missing` when the store has no such statement, or no store.
    pub fn log_attachment(&self, digest: &SbomDigest) -> Result<Vec<u8>, SbomError> {
        let Some(store) = self.policy().sbom_store() else {
            return Err(SbomError::Missing {
                path: format!("{digest} (this issuer's policy was not loaded from a file, so it has no SBOM store)"),
            });
        };
        crate::policy::stored_attachment(store, digest, crate::policy::ATTACHMENT_LIMIT)
    }
}
