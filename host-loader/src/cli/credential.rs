//! A credential file as the `twi log` and `twi provenance` commands read it: a PEM certificate
//! or a WIT, and what it names of itself (its record's id, its SBOM, its log entry), read
//! without verifying its signature: the log's proofs are what is checked.

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;
use twi_issuer::oids::Oids;
use twi_issuer::policy::SbomDigest;
use twi_issuer::provenance::entry::LogEntry;

/// What the credential file says of itself: its record's id, the SBOM it carries and its log
/// entry.
pub(super) struct Presented {
    /// The X.509 serial (hex) or the WIT `jti`: the record's credential id.
    pub id: String,
    pub sbom: Option<SbomDigest>,
    /// The log entry the credential names (credentials issued before records were signed
    /// statements name none).
    pub entry: Option<LogEntry>,
    /// The OID arc its extensions (or claims) were read under; `None` when only the id was
    /// given, not the credential.
    pub arc: Option<String>,
}

impl Presented {
    pub fn read(path: &Path, oids: &Oids) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        if text.contains("-----BEGIN CERTIFICATE-----") {
            return Self::certificate(&text, oids).with_context(|| format!("{}", path.display()));
        }
        let token = text.trim();
        let decoded = twi_issuer::jose::decode_unverified(token)
            .with_context(|| format!("{} is neither a PEM certificate nor a WIT", path.display()))?;
        let claims = decoded.claims;
        let jti = claims.get("jti").and_then(Value::as_str).context("the WIT has no `jti`")?;
        let sbom = claims.get(&oids.claim_name(&oids.sbom_sha384)).and_then(Value::as_str);
        let sbom =
            sbom.map(|s| SbomDigest::parse(s).context("the WIT's SBOM claim is not sha384:<hex>")).transpose()?;
        let entry = claims.get(&oids.claim_name(&oids.log_entry));
        let entry = entry.map(LogEntry::from_claim).transpose().context("the WIT's log entry claim")?;
        Ok(Self { id: jti.to_string(), sbom, entry, arc: Some(oids.arc.clone()) })
    }

    fn certificate(pem: &str, oids: &Oids) -> Result<Self> {
        use der::{Decode, DecodePem};
        let start = pem.find("-----BEGIN CERTIFICATE-----").unwrap_or(0);
        let certificate = x509_cert::Certificate::from_pem(&pem[start..]).context("not a PEM certificate")?;
        let tbs = certificate.tbs_certificate();
        let id = hex::encode(tbs.serial_number().as_bytes());
        let extension = tbs.extensions().into_iter().flatten().find(|e| e.extn_id == oids.sbom_sha384);
        let sbom = extension
            .map(|e| {
                let octets = der::asn1::OctetString::from_der(e.extn_value.as_bytes())?;
                Ok::<_, der::Error>(<[u8; 48]>::try_from(octets.as_bytes()).ok().map(SbomDigest))
            })
            .transpose()
            .context("the certificate's SBOM extension is not an OCTET STRING")?
            .map(|d| d.context("the certificate's SBOM extension is not 48 bytes"))
            .transpose()?;
        let entry = tbs.extensions().into_iter().flatten().find(|e| e.extn_id == oids.log_entry);
        let entry = entry
            .map(|e| LogEntry::from_der(e.extn_value.as_bytes()))
            .transpose()
            .context("the certificate's log entry extension")?;
        Ok(Self { id, sbom, entry, arc: Some(oids.arc.clone()) })
    }
}
