//! Why the VM of a run could not be run.

/// A failure of the host's plumbing around the guest (never the guest's own failure).
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// A file or socket operation failed: what was attempted, and the OS's reason.
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// The channel's other end (the bridge) failed.
    #[error("{0}")]
    Channel(String),
}

/// Wraps an I/O error with what was attempted.
pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> VmError {
    let what = what.into();
    move |e| VmError::Io(what, e)
}
