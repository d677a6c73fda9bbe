//! The provenance log as the Credential Authority uses it: in its own process ([`Records`],
//! holding the log's keys), or in the log process it calls (`twi serve --roles log`, reached
//! through `--log-url`: a [`LogPeer`]). Either way an issuance has its statements signed by the
//! log before its credentials are signed (each credential names its statement), then appends
//! them with a new signed tree head in one transaction; the formats are the same.

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::Value;

use crate::error::IssuerError;
use crate::log_peer::{AppendRequest, BindingRequest, LogPeer, PeerError, SignRequest};
use crate::policy::Binding;
use crate::provenance::entry::LogEntry;
use crate::provenance::{ProvenanceRecord, SignedStatement};
use crate::records::{Records, binding_in};

/// The log of a Credential Authority process.
pub(crate) enum Ledger {
    /// In this process: it holds the log's keys.
    Here(Box<Records>),
    /// In the log process it calls.
    Peer(Arc<dyn LogPeer>),
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Here(records) => f.debug_tuple("Here").field(records).finish(),
            Self::Peer(peer) => f.debug_tuple("Peer").field(&peer.url()).finish(),
        }
    }
}

impl Ledger {
    /// The statements of `records`, signed by the log, each with the entry a credential names.
    pub(crate) fn sign(&self, records: Vec<ProvenanceRecord>) -> Result<Vec<(SignedStatement, LogEntry)>, IssuerError> {
        let peer = match self {
            Self::Here(log) => {
                let signed = log.sign_all(records)?;
                let entries = signed.iter().map(|statement| log.entry(statement)).collect::<Vec<_>>();
                return Ok(signed.into_iter().zip(entries).collect());
            }
            Self::Peer(peer) => peer,
        };
        let asked = SignRequest { records };
        let answer = peer.sign(&asked).map_err(|error| peer_error(peer.as_ref(), error))?;
        if answer.statements.len() != asked.records.len() {
            return Err(answered(peer.as_ref(), "a number of statements other than the records asked"));
        }
        let mut signed = Vec::new();
        for (hex_statement, record) in answer.statements.iter().zip(&asked.records) {
            let statement = decode(peer.as_ref(), hex_statement)?;
            // A sealed statement's record is not readable here; its subject still is.
            if statement.credential_id() != record.credential_id || statement.record().is_some_and(|r| r != record) {
                return Err(answered(peer.as_ref(), "a statement of another record than asked"));
            }
            let entry = LogEntry { origin: answer.origin.clone(), statement_sha256: statement.sha256() };
            signed.push((statement, entry));
        }
        Ok(signed)
    }

    /// Appends `statements` with a new signed tree head; the head, proofs and receipts.
    /// `binding` is kept in the private binding table for each sealed statement (a log process
    /// is sent it with the statements, over the role-to-role mutual TLS).
    pub(crate) fn record(
        &self,
        statements: &[SignedStatement],
        binding: Option<&Binding>,
        now: SystemTime,
    ) -> Result<Value, IssuerError> {
        match self {
            Self::Here(log) => log.record(statements, binding, now),
            Self::Peer(peer) => {
                let hexed = statements.iter().map(|s| s.to_leaf().map(hex::encode)).collect::<Result<_, _>>()?;
                let request = AppendRequest { statements: hexed, binding: binding.cloned() };
                peer.append(&request).map_err(|error| peer_error(peer.as_ref(), error))
            }
        }
    }

    /// The binding of credential `id`, from its record (see [`Records::binding_of`]).
    pub(crate) fn binding_of(&self, id: &str) -> Result<Option<Result<Binding, Vec<u8>>>, IssuerError> {
        match self {
            Self::Here(log) => log.binding_of(id),
            Self::Peer(peer) => {
                let Some(proof) = peer.proof(id).map_err(|error| peer_error(peer.as_ref(), error))? else {
                    return Ok(None);
                };
                let statement = proof["statement"].as_str().unwrap_or_default();
                let statement = decode(peer.as_ref(), statement)?;
                if statement.credential_id() != id {
                    return Err(answered(peer.as_ref(), "the proof of another credential than asked"));
                }
                match binding_in(&statement) {
                    Some(Err(_)) => sealed_binding(peer.as_ref(), id),
                    other => Ok(other),
                }
            }
        }
    }

    /// The log in this process, if it is here.
    pub(crate) fn here(&self) -> Option<&Records> {
        match self {
            Self::Here(records) => Some(records),
            Self::Peer(_) => None,
        }
    }
}

/// The binding of credential `id`, whose record the log process sealed, from its private binding
/// table (`Err(kid)`: the table holds no row for it).
fn sealed_binding(peer: &dyn LogPeer, id: &str) -> Result<Option<Result<Binding, Vec<u8>>>, IssuerError> {
    let request = BindingRequest { credential_id: id.to_string() };
    let Some(answer) = peer.binding(&request).map_err(|error| peer_error(peer, error))? else {
        return Err(answered(peer, "no record for a credential whose proof it gave"));
    };
    match (answer.binding, answer.sealed_to) {
        (Some(binding), _) => Ok(Some(Ok(binding))),
        (None, Some(kid)) => Ok(Some(Err(hex::decode(kid).map_err(|_| answered(peer, "a kid that is not hex"))?))),
        (None, None) => Err(answered(peer, "neither a binding nor the key a record is sealed to")),
    }
}

/// A statement (hex COSE_Sign1) the log process answered.
fn decode(peer: &dyn LogPeer, statement: &str) -> Result<SignedStatement, IssuerError> {
    let bytes = hex::decode(statement).map_err(|_| answered(peer, "a statement that is not hex"))?;
    SignedStatement::decode(&bytes).map_err(|e| answered(peer, &format!("a statement that does not read ({e})")))
}

/// The log process answered something it should not have (a bad gateway, not a passing fault).
fn answered(peer: &dyn LogPeer, what: &str) -> IssuerError {
    let error = PeerError::Refused { status: 502, reason: format!("it answered {what}") };
    IssuerError::LogPeer { url: peer.url().to_string(), error }
}

fn peer_error(peer: &dyn LogPeer, error: PeerError) -> IssuerError {
    IssuerError::LogPeer { url: peer.url().to_string(), error }
}
