//! Where a credential's record is, as the credential itself names it: the log (the origin its
//! C2SP checkpoints carry) and the SHA-256 of the record's signed statement. The statement is
//! signed before the credential (it names the credential by the serial or `jti` chosen first),
//! so the credential can commit to it; the log's receipt then proves that statement is a leaf.
//!
//! In a certificate: the extension [`crate::oids::Oids::log_entry`], DER
//! `SEQUENCE { log UTF8String, statementSha256 OCTET STRING (32) }`. In a WIT: the claim of the
//! same OID (`urn:oid:…`), `{"log": origin, "statement_sha256": hex}`.

use der::asn1::{OctetString, Utf8StringRef};
use der::{Decode, Encode, Sequence};
use serde_json::{Value, json};

/// A credential's log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// The log's origin, e.g. `example.org/twi-log`.
    pub origin: String,
    /// SHA-256 of the record's signed statement (the leaf's bytes).
    pub statement_sha256: [u8; 32],
}

#[derive(Sequence)]
struct LogEntryDer<'a> {
    log: Utf8StringRef<'a>,
    statement_sha256: OctetString,
}

/// Why a credential's log entry could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the credential's log entry is malformed: {0}")]
pub struct BadEntry(String);

impl LogEntry {
    /// The extension's value (DER).
    pub fn to_der(&self) -> Result<Vec<u8>, BadEntry> {
        let bad = |e: der::Error| BadEntry(e.to_string());
        let value = LogEntryDer {
            log: Utf8StringRef::new(&self.origin).map_err(bad)?,
            statement_sha256: OctetString::new(self.statement_sha256.to_vec()).map_err(bad)?,
        };
        value.to_der().map_err(bad)
    }

    /// Reads the extension's value.
    pub fn from_der(bytes: &[u8]) -> Result<Self, BadEntry> {
        let value = LogEntryDer::from_der(bytes).map_err(|e| BadEntry(e.to_string()))?;
        let statement_sha256 =
            value.statement_sha256.as_bytes().try_into().map_err(|_| BadEntry("the hash is not 32 bytes".into()))?;
        Ok(Self { origin: value.log.as_str().to_string(), statement_sha256 })
    }

    /// The WIT claim's value.
    pub fn to_claim(&self) -> Value {
        json!({ "log": self.origin, "statement_sha256": hex::encode(self.statement_sha256) })
    }

    /// Reads the WIT claim's value.
    pub fn from_claim(value: &Value) -> Result<Self, BadEntry> {
        let origin = value.get("log").and_then(Value::as_str).ok_or_else(|| BadEntry("no `log` text".into()))?;
        let hash = value.get("statement_sha256").and_then(Value::as_str).and_then(|h| hex::decode(h).ok());
        let statement_sha256 = hash
            .and_then(|h| <[u8; 32]>::try_from(h).ok())
            .ok_or_else(|| BadEntry("`statement_sha256` is not 32 bytes of hex".into()))?;
        Ok(Self { origin: origin.to_string(), statement_sha256 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_read_back_and_malformed_ones_are_refused() {
        let entry = LogEntry { origin: "example.org/twi-log".into(), statement_sha256: [9; 32] };
        assert_eq!(LogEntry::from_der(&entry.to_der().unwrap()).unwrap(), entry);
        assert_eq!(LogEntry::from_claim(&entry.to_claim()).unwrap(), entry);
        let short =
            LogEntryDer { log: Utf8StringRef::new("x").unwrap(), statement_sha256: OctetString::new([1; 31]).unwrap() };
        assert!(LogEntry::from_der(&short.to_der().unwrap()).is_err());
        assert!(LogEntry::from_der(&[0x30, 0x00]).is_err());
        assert!(LogEntry::from_claim(&json!({ "log": "x", "statement_sha256": "00" })).is_err());
        assert!(LogEntry::from_claim(&json!("x")).is_err());
    }
}
