//! The launch manifest: configuration the image builder writes into the ROM, so that it is
//! part of the measured launch. The runtime trusts it for exactly that reason (a host cannot
//! change it without changing the measurement the issuer appraises).
//!
//! In the ROM it occupies a fixed 4 KiB slot (see `twi_linker::script`):
//! `u32 little-endian length ‖ postcard(LaunchManifest) ‖ zero padding`.

use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

mod body;

/// Bumped when the manifest's fields change meaning.
pub const MANIFEST_FORMAT: u16 = 2;
/// The size of the ROM slot that holds the encoded manifest.
pub const MANIFEST_SLOT_SIZE: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchManifest {
    pub format: u16,
    /// SEC1 encoding of the issuer CA's P-384 public key: the only key whose credentials the
    /// runtime accepts.
    pub issuer_anchor: Vec<u8>,
    /// The issuer CA's subject, for log lines.
    pub issuer_name: String,
    /// What the image does: attest (the product), or a diagnostic run.
    pub diagnostic: Diagnostic,
    /// The workload's settings (`twi build --set KEY=VALUE`), sorted by key, keys unique: its
    /// targets, the CAs it trusts for them (DER), anything it reads. Measured with the rest.
    pub settings: Vec<Setting>,
}

/// One measured setting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    pub key: String,
    pub value: Vec<u8>,
}

/// Diagnostic images: the same runtime, told by its measured manifest to do something else.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Diagnostic {
    /// The product: attest and obtain a credential.
    #[default]
    None,
    /// Boot, generate the key, sign once, exit with success: no channel. `twi run --accel auto`
    /// times accelerators with it.
    SelfTest,
    /// Boot, then raise #UD: shows that a CPU exception is reported (vector, error code, RIP)
    /// and ends the VM with the failure status instead of hanging.
    Fault,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestError {
    /// The slot holds no manifest (an image that `twi build` did not finish).
    Missing,
    /// The length prefix points past the slot.
    BadLength,
    /// postcard could not decode it.
    Malformed,
    /// A manifest from a newer or older builder.
    UnsupportedFormat(u16),
}

impl core::fmt::Display for ManifestError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Missing => f.write_str("the image carries no launch manifest (build it with `twi build`)"),
            Self::BadLength => f.write_str("the launch manifest's length exceeds its slot"),
            Self::Malformed => f.write_str("the launch manifest cannot be decoded"),
            Self::UnsupportedFormat(v) => write!(f, "launch manifest format {v} is not supported"),
        }
    }
}

impl LaunchManifest {
    /// The value of setting `key`, if the manifest has it.
    pub fn setting(&self, key: &str) -> Option<&[u8]> {
        self.settings.binary_search_by(|s| s.key.as_str().cmp(key)).ok().map(|i| self.settings[i].value.as_slice())
    }

    /// Adds or replaces setting `key`, keeping the settings sorted.
    pub fn set(&mut self, key: &str, value: Vec<u8>) {
        match self.settings.binary_search_by(|s| s.key.as_str().cmp(key)) {
            Ok(i) => self.settings[i].value = value,
            Err(i) => self.settings.insert(i, Setting { key: String::from(key), value }),
        }
    }

    /// The bytes of the ROM slot: length prefix, postcard body, zero padding.
    pub fn to_slot(&self) -> Result<Vec<u8>, ManifestError> {
        let body = postcard::to_allocvec(self).map_err(|_| ManifestError::Malformed)?;
        if body.len() + 4 > MANIFEST_SLOT_SIZE {
            return Err(ManifestError::BadLength);
        }
        let mut slot = Vec::with_capacity(MANIFEST_SLOT_SIZE);
        slot.extend_from_slice(&(body.len() as u32).to_le_bytes());
        slot.extend_from_slice(&body);
        slot.resize(MANIFEST_SLOT_SIZE, 0);
        Ok(slot)
    }

    /// The manifest's body in a ROM slot, as the slot holds it: the bytes after the length,
    /// as many as it says (what RTMR1 measures).
    pub fn slot_body(slot: &[u8]) -> Result<&[u8], ManifestError> {
        let (len, rest) = slot.split_first_chunk::<4>().ok_or(ManifestError::Missing)?;
        let len = u32::from_le_bytes(*len) as usize;
        if len == 0 {
            return Err(ManifestError::Missing);
        }
        rest.get(..len).ok_or(ManifestError::BadLength)
    }

    pub fn from_slot(slot: &[u8]) -> Result<Self, ManifestError> {
        let manifest = body::read(Self::slot_body(slot)?).ok_or(ManifestError::Malformed)?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(ManifestError::UnsupportedFormat(manifest.format));
        }
        if !manifest.settings.windows(2).all(|w| w[0].key < w[1].key) {
            return Err(ManifestError::Malformed);
        }
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LaunchManifest {
        LaunchManifest {
            format: MANIFEST_FORMAT,
            issuer_anchor: alloc::vec![4; 97],
            issuer_name: "CN=test".into(),
            diagnostic: Diagnostic::None,
            settings: alloc::vec![],
        }
    }

    #[test]
    fn slot_round_trip() {
        let slot = sample().to_slot().unwrap();
        assert_eq!(slot.len(), MANIFEST_SLOT_SIZE);
        assert_eq!(LaunchManifest::from_slot(&slot).unwrap(), sample());
        // What the runtime measures into RTMR1: the body as written, the manifest's encoding.
        assert_eq!(LaunchManifest::slot_body(&slot), Ok(&postcard::to_allocvec(&sample()).unwrap()[..]));
    }

    #[test]
    fn empty_and_corrupt_slots_are_rejected() {
        assert_eq!(LaunchManifest::from_slot(&[0; MANIFEST_SLOT_SIZE]), Err(ManifestError::Missing));
        let mut slot = sample().to_slot().unwrap();
        slot[..4].copy_from_slice(&5000u32.to_le_bytes());
        assert_eq!(LaunchManifest::from_slot(&slot), Err(ManifestError::BadLength));
        let mut slot = sample().to_slot().unwrap();
        slot[4] = 9; // format = 9
        assert_eq!(LaunchManifest::from_slot(&slot), Err(ManifestError::UnsupportedFormat(9)));
    }

    #[test]
    fn settings_are_kept_sorted_and_looked_up_by_key() {
        let mut m = sample();
        m.set("target", b"https://db.example:8443/rows".to_vec());
        m.set("server-ca", alloc::vec![0x30, 0x82]);
        m.set("target", b"https://db.example:8443/".to_vec());
        assert_eq!(m.settings.iter().map(|s| s.key.as_str()).collect::<Vec<_>>(), ["server-ca", "target"]);
        let back = LaunchManifest::from_slot(&m.to_slot().unwrap()).unwrap();
        assert_eq!(back.setting("target"), Some(&b"https://db.example:8443/"[..]));
        assert_eq!(back.setting("server-ca"), Some(&[0x30, 0x82][..]));
        assert_eq!(back.setting("missing"), None);
        // A manifest whose settings are out of order (no `twi build` makes one) is refused.
        let mut bad = m.clone();
        bad.settings.reverse();
        assert_eq!(LaunchManifest::from_slot(&bad.to_slot().unwrap()), Err(ManifestError::Malformed));
    }
}
