//! Object identifiers the issuer puts in certificates, under one arc an operator can choose.
//!
//! The project has no IANA Private Enterprise Number. Its default arc is therefore one it may
//! use without asking anyone: Microsoft's ad hoc GUID arc 1.2.840.113556.1.8000.2554, whose
//! allocations are implicit — a GUID `aaaabbbb-cccc-dddd-eeee-ffffffgggggg` owns
//! `1.2.840.113556.1.8000.2554.A.B.C.D.E.F.G` (each chunk read as hex), every arc within 32
//! bits so every X.509 stack reads it (unlike the 128-bit arcs of 2.25). The project's GUID is
//! `7a220e43-85e1-4285-bce7-4835d438cde8`. Not the documentation PEN of RFC 5612 (32473),
//! which earlier versions used and which no deployment may rely on.
//!
//! An operator with its own PEN writes the arc (a dotted OID) to `STATE/issuer/oid-arc`; the
//! Credential Authority then issues under it ([`Oids::load`]). Relying parties read the arc of
//! their issuer the same way (`Oids::under`). The vendors' OIDs (AMD's VCEK extensions, the
//! signature algorithms of their chains) are the verifier's ([`twi_verifier::oids`]).

use std::path::Path;

use der::asn1::ObjectIdentifier;

use crate::error::IssuerError;

/// The algorithm of every signature the issuer's CA makes (RFC 5758), as the verifier names it.
pub use twi_verifier::oids::ECDSA_WITH_SHA384;

/// The project's default arc (see the module docs): the ad hoc GUID arc with our GUID.
pub const DEFAULT_ARC: &str = "1.2.840.113556.1.8000.2554.31266.3651.34273.17029.48359.4732372.3722728";
/// The arc RFC 5612 reserves for documentation: refused as an issuing arc.
pub const DOCUMENTATION_ARC: &str = "1.3.6.1.4.1.32473";
/// The file in the issuer state that names another arc.
pub const ARC_FILE: &str = "oid-arc";

/// The issuer's extension OIDs under one arc.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Oids {
    pub arc: String,
    /// Credential extension (critical): the evidence came from the *simulated* TEE
    /// (UTF8String naming the simulated platform). Standard verifiers refuse a critical
    /// extension they do not know, so a simulated credential passes only where told.
    pub simulated_tee: ObjectIdentifier,
    /// Credential extension: SHA-384 of the evidence the issuance was decided on (OCTET
    /// STRING), linking the credential to its provenance.
    pub evidence_sha384: ObjectIdentifier,
    /// Credential extension: the appraisal policy's decision (DER SEQUENCE { policyVersion
    /// UTF8String, stickiness UTF8String, bindingSha256 OCTET STRING (32) }).
    pub policy_binding: ObjectIdentifier,
    /// Credential extension: the SEV-SNP VMPL the evidence was made at (INTEGER 0..=3; 0 at
    /// VMPL0, the guest's VMPL below a paravisor such as COCONUT-SVSM). Absent for TDX.
    pub vmpl: ObjectIdentifier,
    /// Credential extension: SHA-384 of the workload's SBOM (OCTET STRING (48)), which the
    /// measured launch manifest names and the admitted reference entry carries (Workload
    /// Provenance, RATS-for-TWI §5.3.1). Absent when the image's SBOM is not known.
    pub sbom_sha384: ObjectIdentifier,
    /// Credential extension: the credential's entry in the provenance log (DER SEQUENCE {
    /// log UTF8String — the log's origin, as its C2SP checkpoints name it, statementSha256
    /// OCTET STRING (32) — SHA-256 of the record's signed statement, the log's leaf }). The
    /// log's receipt for that statement proves the entry; `twi log prove CREDENTIAL` checks both.
    pub log_entry: ObjectIdentifier,
}

impl Oids {
    /// The OIDs under `arc` (a dotted OID, not under the documentation arc).
    pub fn under(arc: &str) -> Result<Self, IssuerError> {
        let arc = arc.trim();
        let bad = |why: String| IssuerError::Certificate(format!("OID arc {arc:?}: {why}"));
        if arc == DOCUMENTATION_ARC || arc.starts_with(&format!("{DOCUMENTATION_ARC}.")) {
            return Err(bad("it is RFC 5612's documentation arc; use your organisation's PEN arc".into()));
        }
        let child = |n: u32| ObjectIdentifier::new(&format!("{arc}.{n}")).map_err(|e| bad(e.to_string()));
        Ok(Self {
            arc: arc.into(),
            simulated_tee: child(1)?,
            evidence_sha384: child(2)?,
            policy_binding: child(3)?,
            vmpl: child(4)?,
            sbom_sha384: child(5)?,
            log_entry: child(6)?,
        })
    }

    /// The JWT claim name (RFC 7519 §4.2: collision-resistant, an OID as a URN, RFC 3061)
    /// under which a WIT carries what the extension `oid` carries in a certificate.
    pub fn claim_name(&self, oid: &ObjectIdentifier) -> String {
        format!("urn:oid:{oid}")
    }

    /// The arc of the issuer state `dir`: `dir/oid-arc` if present, else [`DEFAULT_ARC`].
    pub fn load(dir: &Path) -> Result<Self, IssuerError> {
        let path = dir.join(ARC_FILE);
        if !path.exists() {
            return Self::under(DEFAULT_ARC);
        }
        let text = crate::state::read(&path)?;
        Self::under(&text).map_err(|e| IssuerError::State(path, format!("{e}; write one dotted OID")))
    }
}

impl Default for Oids {
    fn default() -> Self {
        // DEFAULT_ARC is a constant that `under` accepts (tested below).
        Self::under(DEFAULT_ARC).unwrap_or_else(|_| unreachable!("the default OID arc is valid"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_arc_is_valid_and_not_the_documentation_arc() {
        let oids = Oids::under(DEFAULT_ARC).unwrap();
        assert_eq!(oids.simulated_tee.to_string(), format!("{DEFAULT_ARC}.1"));
        assert!(!DEFAULT_ARC.starts_with(DOCUMENTATION_ARC));
        assert!(Oids::under("1.3.6.1.4.1.32473.7467").is_err());
        assert!(Oids::under("1.3.6.1.4.1.32473").is_err());
        assert!(Oids::under("not an oid").is_err());
        assert_eq!(oids.claim_name(&oids.policy_binding), format!("urn:oid:{DEFAULT_ARC}.3"));
        assert_eq!(Oids::under(" 1.3.6.1.4.1.99999 ").unwrap().policy_binding.to_string(), "1.3.6.1.4.1.99999.3");
    }

    #[test]
    fn the_state_names_another_arc() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Oids::load(dir.path()).unwrap(), Oids::default());
        std::fs::write(dir.path().join(ARC_FILE), "1.3.6.1.4.1.99999.7\n").unwrap();
        assert_eq!(Oids::load(dir.path()).unwrap().evidence_sha384.to_string(), "1.3.6.1.4.1.99999.7.2");
        std::fs::write(dir.path().join(ARC_FILE), "1.3.6.1.4.1.32473.1\n").unwrap();
        assert!(Oids::load(dir.path()).unwrap_err().to_string().contains("documentation arc"));
    }
}
