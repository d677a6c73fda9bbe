//! How far a platform's TCB is behind, per component: what an operator must update, in the
//! terms the vendor's collateral uses (AMD: bootloader, TEE, SNP firmware, microcode, FMC
//! SPLs of a `TCB_VERSION`, SEV-SNP Firmware ABI "TCB_VERSION Structure"; Intel: the 16 SGX
//! and 16 TDX TCB component SVNs, PCESVN, the TDX module's and the Quoting Enclave's ISVSVN,
//! Intel "PCS API v4" TCB info and QE identity).
//!
//! Why a separate module: both verifiers report it and the verdict carries it, and neither
//! platform's module should depend on the other's.

use std::fmt;

/// One component whose security version is below the newest the vendor (or the firmware
/// itself) knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentLag {
    /// The component as the vendor names it ("microcode", "SGX TCB component 2 (BIOS)",
    /// "TDX module ISVSVN").
    pub component: String,
    /// The SVN the evidence has.
    pub have: u16,
    /// The SVN of the newest TCB level.
    pub newest: u16,
}

impl ComponentLag {
    /// How many versions behind.
    pub fn behind(&self) -> u16 {
        self.newest.saturating_sub(self.have)
    }
}

impl fmt::Display for ComponentLag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} (newest {}, {} behind)", self.component, self.have, self.newest, self.behind())
    }
}

/// The components of `have` below `newest`, in order; `names[i]` names component `i`.
pub fn lags(names: impl IntoIterator<Item = String>, have: &[u16], newest: &[u16]) -> Vec<ComponentLag> {
    names
        .into_iter()
        .zip(have.iter().zip(newest))
        .filter(|(_, (h, n))| h < n)
        .map(|(component, (&have, &newest))| ComponentLag { component, have, newest })
        .collect()
}
