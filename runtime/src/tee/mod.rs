//! The trusted execution environment, as the rest of the runtime sees it: one trait, [`Tee`],
//! with a backend per platform.
//!
//! | backend | pure half (`twi_attester`) | doorbell |
//! | --- | --- | --- |
//! | [`snp::SnpTee`] | guest messages (AES-GCM under the VMPCK), report, key request, certificate table | [`snp::SnpDoorbell`]: the GHCB guest request (`hw`), or the channel (`sim`) |
//! | [`tdx::TdxTee`] | TDREPORT, GetQuote buffer, quote, RTMR replay | [`tdx::TdxModule`]: TDCALL/TDVMCALL (`hw`), or the channel (`sim`) |
//! | [`svsm::attest`] (below an SVSM; checked at start, not yet the session's evidence) | SVSM attestation request, manifest, REPORT_DATA binding | [`svsm::SvsmDoorbell`]: the calling area and VMGEXIT (`hw`), or the channel ([`sim_svsm`]) |
//!
//! A backend turns "evidence for these 64 bytes of REPORTDATA" into the platform's report or
//! quote, checked to carry them; derives the launch-bound sealing key where the platform has one;
//! and extends runtime measurements where it has registers for them. The doorbell is the only
//! part that differs between the hardware and the simulator: the simulated firmware on the host
//! answers the very bytes the hardware would.

pub mod sim;
pub mod sim_svsm;
pub mod snp;
pub mod svsm;
pub mod tdx;

#[cfg(target_os = "none")]
pub mod hw;

use alloc::vec::Vec;

use twi_proto::msg::{Platform, RtmrEvent};
use zeroize::Zeroizing;

use crate::channel::ChannelError;

/// Evidence for one REPORTDATA, in private memory, as the Evidence message carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// The SEV-SNP attestation report or the TDX quote; empty when [`Evidence::named`]
    /// names the quote instead.
    pub bytes: Vec<u8>,
    /// TDX under the simulator: the quote the loader delivered (the simulated GetQuote's
    /// answer) and keeps, named by its SHA-384 in place of [`Evidence::bytes`] so that it
    /// crosses the channel once.
    pub named: Option<NamedQuote>,
    /// SEV-SNP: the host's certificate table (extended guest request), checked and trimmed,
    /// when the loader may not have it (hardware).
    pub certificates: Option<Vec<u8>>,
    /// SEV-SNP: the SHA-384 of the table the loader delivered and keeps (the simulated
    /// doorbell), sent in its place.
    pub certificates_sha384: Option<[u8; 48]>,
    /// What became of the host's certificate table (SEV-SNP; `None` elsewhere).
    pub certificate_table: Option<Certificates>,
    /// TDX: the RTMR event log the quote's RTMRs replay to.
    pub event_log: Option<Vec<RtmrEvent>>,
}

/// A quote the loader delivered and keeps, as the evidence names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamedQuote {
    /// SHA-384 of the quote's bytes (the GetQuote buffer's `OUT_LEN` bytes).
    pub sha384: [u8; 48],
    /// The quote's length, for the console.
    pub len: usize,
}

/// The certificate table of the extended guest request, as the runtime found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Certificates {
    /// Forwarded with the evidence: this many certificates, this many bytes.
    Forwarded { count: usize, bytes: usize },
    /// Delivered by the loader, which keeps it: the evidence names it by its SHA-384.
    Named { count: usize, bytes: usize },
    /// The host supplied none (or an empty table): the verifier uses its own copies.
    None,
    /// The host's table is malformed or too large to forward; the verifier uses its own copies.
    Dropped,
}

/// Something the runtime measures into a runtime measurement register before it asks for
/// evidence (TDX: an RTMR and its event log).
#[derive(Debug, Clone, Copy)]
pub struct Measurement<'a> {
    pub rtmr: u8,
    pub event_type: u32,
    pub data: &'a [u8],
}

/// Why the TEE could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TeeError {
    /// The platform has no such facility (e.g. no sealing key in a TD, no RTMRs under SEV-SNP).
    Unsupported(&'static str),
    /// The channel to the simulated firmware failed (simulated TEE only).
    Channel(ChannelError),
    /// SEV-SNP firmware or its doorbell refused, or answered something unusable.
    Snp(snp::SnpError),
    /// The TDX module or the VMM's quoting service refused, or answered something unusable.
    Tdx(tdx::TdxError),
}

impl core::fmt::Display for TeeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Unsupported(what) => write!(f, "not available on this platform: {what}"),
            Self::Channel(e) => write!(f, "the channel to the simulated firmware failed: {e}"),
            Self::Snp(e) => write!(f, "attestation firmware: {e}"),
            Self::Tdx(e) => write!(f, "TDX: {e}"),
        }
    }
}

/// The TEE of this launch.
pub trait Tee {
    /// What the Hello and the Evidence say this platform is.
    fn platform(&self) -> Platform;

    /// Extends a runtime measurement register with `measurement` and records the event, so the
    /// next evidence covers it. [`TeeError::Unsupported`] where the platform has none.
    fn extend(&mut self, measurement: &Measurement<'_>) -> Result<(), TeeError>;

    /// Evidence whose REPORTDATA is `report_data`, checked to carry it.
    fn evidence(&mut self, report_data: &[u8; 64]) -> Result<Evidence, TeeError>;

    /// The key the platform derives for this launch (image, policy, TCB), for sealing.
    /// [`TeeError::Unsupported`] where the platform offers none to the guest.
    fn sealing_key(&mut self) -> Result<Zeroizing<[u8; 32]>, TeeError>;
}
