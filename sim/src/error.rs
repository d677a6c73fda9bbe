//! Why a simulator could not be opened or could not answer. Every message names the file or
//! the step, so the user knows what to fix (usually: the state directory).

use std::path::PathBuf;

/// A failure of the simulated TEE itself (never a refusal of a guest request: those are
/// firmware status codes in the answer, as on hardware).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A file of the simulator's state directory cannot be read or written.
    #[error("the simulated TEE's state {path}: {error} (check the directory given as --state or --sim-chip)")]
    State { path: PathBuf, error: String },
    /// A state file holds something other than what the simulator wrote there.
    #[error(
        "the simulated TEE's state {path} is corrupt: {what}; remove the directory to make a new simulated machine"
    )]
    Corrupt { path: PathBuf, what: String },
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed: {0}")]
    Rng(String),
    /// A certificate or key could not be built or encoded.
    #[error("the simulated TEE cannot encode {what}: {error}")]
    Encoding { what: &'static str, error: String },
}

impl SimError {
    pub(crate) fn state(path: impl Into<PathBuf>, error: impl std::fmt::Display) -> Self {
        Self::State { path: path.into(), error: error.to_string() }
    }

    pub(crate) fn encoding(what: &'static str, error: impl std::fmt::Display) -> Self {
        Self::Encoding { what, error: error.to_string() }
    }
}

/// Fills `bytes` from the operating system's RNG.
pub(crate) fn random(bytes: &mut [u8]) -> Result<(), SimError> {
    getrandom::fill(bytes).map_err(|e| SimError::Rng(e.to_string()))
}
