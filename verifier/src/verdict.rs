//! The interface every verifier shares: [`Verifier::verify`] appraises one platform's
//! evidence with its endorsements and returns [`Verified`], what a relying party reads of
//! evidence that holds (RFC 9334 "Remote ATtestation procedureS (RATS) Architecture": the
//! Verifier role), or a [`Rejection`] that says what failed and what to do about it.
//!
//! [`Verified`] is the same for every platform where platforms agree (measurement,
//! REPORTDATA, platform identity, TCB, policy or attributes, VMPL, debug, whether the root was
//! the simulated TEE's) and keeps the platform's full typed appraisal in [`Detail`] for what
//! only one platform has (SEV-SNP HOST_DATA, TDX RTMRs, Intel's TCB verdict).

use std::fmt;
use std::time::SystemTime;

use twi_attester::snp::report::{TcbLayout, TcbVersion};

use crate::bundle::UsedCertificate;
use crate::snp::appraisal::{SnpAppraisal, SnpRejection};
use crate::tdx::event_log::{self, MeasuredEvent};
use crate::tdx::tcb::TcbVerdict;
use crate::tdx::verify::{TdxAppraisal, TdxError};

/// A verifier for one platform's evidence, configured with the roots (vendor's, or the
/// simulated TEE's) and the policy it appraises under. Offline: everything it needs is in
/// its configuration, the evidence and the endorsements.
pub trait Verifier: fmt::Debug + Send + Sync {
    /// The TEE whose evidence this verifier appraises.
    fn tee(&self) -> Tee;

    /// Appraises `evidence` (the hardware's signed report or quote, as received) with the
    /// `endorsements` the host supplied with it (DER certificates, leaf first), at `now`.
    fn verify(&self, evidence: &[u8], endorsements: &[Vec<u8>], now: SystemTime) -> Result<Verified, Rejection>;

    /// Checks `endorsements` ahead of the evidence that will come with them (a host that knows
    /// the certificates it will deliver, while the guest boots) and keeps what verified, so
    /// that [`Self::verify`] has less to do; what does not verify is not kept, and `verify`
    /// refuses it as it would have. Nothing to do for a verifier that keeps nothing.
    fn prepare(&self, endorsements: &[Vec<u8>], now: SystemTime) {
        let _ = (endorsements, now);
    }
}

/// A trusted execution environment that produces evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tee {
    /// AMD SEV-SNP: an attestation report signed by the chip's VCEK or a VLEK.
    Snp,
    /// Intel TDX: a quote signed by the Quoting Enclave's attestation key.
    Tdx,
}

impl fmt::Display for Tee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tee::Snp => "SEV-SNP",
            Tee::Tdx => "TDX",
        })
    }
}

/// The platform's TCB as the evidence reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tcb {
    /// SEV-SNP REPORTED_TCB, to be read in the chip's layout (Turin moved the fields).
    Snp { reported: TcbVersion, layout: TcbLayout },
    /// TDX TEE_TCB_SVN, and Intel's verdict on the platform (`None`: not evaluated, which the
    /// policy allowed).
    Tdx { tee_tcb_svn: [u8; 16], verdict: Option<TcbVerdict> },
}

/// The platform's full typed appraisal.
#[derive(Clone, Debug)]
pub enum Detail {
    Snp(Box<SnpAppraisal>),
    Tdx(Box<TdxAppraisal>),
}

/// What verified evidence establishes.
#[derive(Clone, Debug)]
pub struct Verified {
    pub tee: Tee,
    /// The endorsements end in the simulated TEE's root, not in a vendor's: this is not
    /// hardware evidence, and nothing issued on it may claim so.
    pub simulated: bool,
    /// The root the endorsements end in, as a person reads it.
    pub anchor: String,
    /// SEV-SNP MEASUREMENT, or TDX MRTD.
    pub measurement: [u8; 48],
    /// The 64 bytes the guest bound into the evidence.
    pub report_data: [u8; 64],
    /// Which platform produced it: SEV-SNP CHIP_ID (64 bytes; zero when masked), or the TDX
    /// PCK certificate's PPID (16 bytes).
    pub platform_id: Vec<u8>,
    pub tcb: Tcb,
    /// SEV-SNP guest POLICY, or TDX TDATTRIBUTES.
    pub policy: u64,
    /// SEV-SNP: the VMPL that requested the report; TDX has none.
    pub vmpl: Option<u32>,
    /// The guest can be debugged (SNP policy bit 19, TDATTRIBUTES.DEBUG): the host can read
    /// its memory. Accepted only when the verifier's policy allows it.
    pub debug: bool,
    /// The certificates that vouched for the evidence (subject and SHA-256), the key's
    /// first, the root last: which of the certificates supplied were used.
    pub certificates: Vec<UsedCertificate>,
    /// SHA-384 of exactly the evidence bytes that were verified (a TDX quote without the
    /// bytes after it).
    pub evidence_sha384: [u8; 48],
    pub detail: Detail,
}

impl Verified {
    /// The SEV-SNP appraisal, for SEV-SNP evidence.
    pub fn snp(&self) -> Option<&SnpAppraisal> {
        match &self.detail {
            Detail::Snp(a) => Some(a),
            Detail::Tdx(_) => None,
        }
    }

    /// The TDX appraisal, for TDX evidence.
    pub fn tdx(&self) -> Option<&TdxAppraisal> {
        match &self.detail {
            Detail::Tdx(a) => Some(a),
            Detail::Snp(_) => None,
        }
    }

    /// What a person should know about the accepted evidence.
    pub fn warnings(&self) -> Vec<String> {
        match &self.detail {
            Detail::Snp(a) => a.warnings.iter().map(ToString::to_string).collect(),
            Detail::Tdx(a) => a.warnings.iter().map(ToString::to_string).collect(),
        }
    }

    /// The guest's measured event log against the evidence's runtime measurement registers:
    /// for TDX, every RTMR must be exactly the log's replay ([`MeasuredEvent`]).
    /// SEV-SNP has no runtime measurement registers, so a log has nothing to be checked
    /// against there and is not read (TWI's SEV-SNP runtime sends none).
    ///
    /// Apart from [`Verifier::verify`] so that a relying party checks the evidence's binding
    /// (REPORTDATA) first and names that failure before an unexplained RTMR.
    pub fn check_event_log(&self, events: &[MeasuredEvent<'_>]) -> Result<(), Rejection> {
        match &self.detail {
            Detail::Tdx(a) => event_log::check(events, &a.body.rtmr).map_err(Rejection::Tdx),
            Detail::Snp(_) => Ok(()),
        }
    }
}

/// Why evidence was not verified. Each message says what failed and what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("SEV-SNP report rejected: {0}")]
    Snp(#[from] SnpRejection),
    #[error("TDX quote rejected: {0}")]
    Tdx(#[from] TdxError),
}
