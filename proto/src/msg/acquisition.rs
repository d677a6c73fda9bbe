//! TACRA's acquisition messages (draft-novak-rats-tacra, "Credential Acquisition Interface"):
//! what the runtime asks for and how the issuer says it must be bound.
//!
//! ```text
//! guest                                          host (CAS client) → issuer
//!   Hello                                   ──▶
//!   Initiate {target, credential type, hint} ──▶   the issuer's policy for the target decides
//!                                          ◀──  Challenge {handle, freshness kind, retrieval?}
//!   Evidence {…, target, freshness element, CSR (Enrollment) | CEK (Retrieval)} ──▶
//!                                          ◀──  Credential {certificate, WIT} | KeyRelease
//! ```
//!
//! The guest never chooses the mode (Enrollment or Retrieval) nor the freshness kind: the
//! issuer's policy does, per target. The REPORTDATA binding is TACRA's
//! (`twi_attester::tacra::report_data`): the freshness element, the relying party's identifier
//! from the measured manifest, the target, and the CSR (Enrollment) or the CEK's
//! SubjectPublicKeyInfo (Retrieval).

use alloc::string::String;

use minicbor::{Decode, Encode};

/// Longest [`Initiate::target`] and [`super::Evidence::target`], in bytes.
pub const MAX_ACQUIRE_TARGET: usize = 512;
/// Longest [`Initiate::hint`], in bytes.
pub const MAX_HINT: usize = 256;
/// Longest [`super::Evidence::csr`]: a PKCS#10 request for a P-384 key, with room.
pub const MAX_CSR: usize = 1024;
/// Longest [`super::Credential::wit`] (a compact JWS), in bytes.
pub const MAX_WIT: usize = 4 * 1024;

/// The credential types a workload can ask for. The discriminants are the wire values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
#[cbor(index_only)]
pub enum CredentialKind {
    /// An X.509 certificate (SPIFFE X.509-SVID rules).
    #[n(0)]
    X509 = 0,
    /// A WIMSE Workload Identity Token (`wit+jwt`).
    #[n(1)]
    Wit = 1,
}

impl CredentialKind {
    /// Both kinds.
    pub const ALL: [Self; 2] = [Self::X509, Self::Wit];

    /// The kind the policy names `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The name the issuer's policy uses.
    pub const fn name(self) -> &'static str {
        match self {
            Self::X509 => "x509",
            Self::Wit => "wit",
        }
    }
}

/// How freshness is established for one acquisition (TACRA "Freshness Kind"); the names are
/// the draft's (`twi_attester::tacra` says what each kind's freshness element is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Encode, Decode)]
#[cbor(index_only)]
pub enum Freshness {
    /// A single-use nonce: [`super::Challenge::nonce`].
    #[n(0)]
    #[default]
    PresentNonce,
    /// The current epoch's id: [`super::Challenge::nonce`].
    #[n(1)]
    PresentEpoch,
    /// An epoch marker the guest holds (its measured manifest's `epoch` setting).
    #[n(2)]
    AbsentEpoch,
    /// The guest's timestamp, 8 big-endian bytes of seconds since the Unix epoch.
    #[n(3)]
    AbsentTimestamp,
    /// No freshness.
    #[n(4)]
    AbsentNone,
}

impl Freshness {
    /// Every kind.
    pub const ALL: [Self; 5] =
        [Self::PresentNonce, Self::PresentEpoch, Self::AbsentEpoch, Self::AbsentTimestamp, Self::AbsentNone];

    /// The kind the draft names `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The draft's name (`present-nonce`, …).
    pub const fn name(self) -> &'static str {
        match self {
            Self::PresentNonce => "present-nonce",
            Self::PresentEpoch => "present-epoch",
            Self::AbsentEpoch => "absent-epoch",
            Self::AbsentTimestamp => "absent-timestamp",
            Self::AbsentNone => "absent-none",
        }
    }

    /// Whether the Challenge carries a handle the evidence binds.
    pub const fn has_handle(self) -> bool {
        matches!(self, Self::PresentNonce | Self::PresentEpoch)
    }
}

/// Guest → host, after Hello: TACRA Initiate, a credential for `target`.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct Initiate {
    /// The Target (UTF-8, at most [`MAX_ACQUIRE_TARGET`] bytes), e.g. `https://db.example:8443/rows`.
    #[n(0)]
    pub target: String,
    #[n(1)]
    pub credential_type: CredentialKind,
    /// The workload's hint to the issuer (at most [`MAX_HINT`] bytes), if any.
    #[n(2)]
    pub hint: Option<String>,
}
