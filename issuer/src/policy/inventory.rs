//! CF_L1 platform claims from a signed inventory (TWI reference architecture §5.4.4.1, "external
//! attested claim provider"): an inventory of platforms, keyed by chip id, published by a
//! claim provider (e.g. the data-centre asset system that records where each server is racked)
//! and signed by that provider's P-384 key. The issuer trusts the provider's key, not the
//! host: the file travels through untrusted hands, its signature covers its exact bytes, and
//! it carries an expiry so that stale inventories stop counting.
//!
//! ```json
//! { "provider": "dc-inventory.example.org", "expires": "2027-01-01T00:00:00Z",
//!   "platforms": { "<chip id hex>": { "location": "DE", "datacenter": "fra-1" } } }
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use p384::ecdsa::VerifyingKey;
use p384::ecdsa::signature::Verifier;
use serde::Deserialize;

use super::admission::{Appraised, PlatformClaimSource};
use super::model::Claims;
use super::signature::{parse_signature, signature_path};

/// A CF_L1 claim source: a signed inventory of platforms by chip id (see the module docs).
#[derive(Clone, Debug)]
pub struct SignedInventory {
    provider: String,
    expires: SystemTime,
    now: SystemTime,
    platforms: BTreeMap<String, Claims>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    provider: String,
    expires: String,
    platforms: BTreeMap<String, Claims>,
}

impl SignedInventory {
    /// Parses `bytes` after checking `signature` (DER, base64 of DER or raw `r ‖ s`) under the
    /// provider's key; `now` decides expiry.
    pub fn from_signed(
        bytes: &[u8],
        signature: &[u8],
        provider_key: &VerifyingKey,
        now: SystemTime,
    ) -> Result<Self, String> {
        let sig = parse_signature(signature).ok_or("the inventory signature is not an ECDSA P-384 signature")?;
        provider_key
            .verify(bytes, &sig)
            .map_err(|_| "the inventory's signature does not verify under the claim provider's key".to_string())?;
        let raw: RawInventory =
            serde_json::from_slice(bytes).map_err(|e| format!("the inventory is malformed: {e}"))?;
        let expires = twi_verifier::time::parse_rfc3339(&raw.expires)
            .ok_or_else(|| format!("the inventory's expiry {:?} is not an RFC 3339 UTC time", raw.expires))?;
        let platforms = raw.platforms.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
        Ok(Self { provider: raw.provider, expires, now, platforms })
    }

    /// Reads `path` and its detached signature `<path>.sig`.
    pub fn load(path: &Path, provider_key: &VerifyingKey, now: SystemTime) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let sig_path = signature_path(path);
        let sig = std::fs::read(&sig_path).map_err(|e| format!("cannot read {}: {e}", sig_path.display()))?;
        Self::from_signed(&bytes, &sig, provider_key, now)
    }
}

impl PlatformClaimSource for SignedInventory {
    fn name(&self) -> String {
        format!("signed inventory of {}", self.provider)
    }

    fn claims_for(&self, appraised: &Appraised) -> Result<Claims, String> {
        if self.now >= self.expires {
            return Err(format!("the inventory expired at {}", twi_verifier::time::format_rfc3339(self.expires)));
        }
        let chip = hex::encode(&appraised.chip_id);
        self.platforms.get(&chip).cloned().ok_or_else(|| format!("chip {chip} is not in the inventory"))
    }
}
