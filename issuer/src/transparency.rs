//! The provenance log as anyone may read it (SCITT's transparency service role, over RFC 9162
//! proofs and C2SP checkpoints): the current checkpoint, its verifier key, a credential's
//! record with its inclusion proof, and consistency proofs between tree sizes. The HTTP
//! service serves these (`GET /v1/log/...`) and `twi log prove` checks them.

use serde_json::Value;

use crate::error::IssuerError;
use crate::issuer::Issuer;

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

    /// The RFC 9162 consistency proof between the trees of `first` and `second` leaves.
    pub fn log_consistency(&self, first: u64, second: u64) -> Result<Value, IssuerError> {
        self.records()?.consistency(first, second)
    }
}
