//! Evidence for TWI (Trustworthy Workload Identity).
//!
//! * [`binding`]: the 64-byte REPORTDATA that binds a verifier's nonce and the workload's
//!   P-384 public key into a hardware report.
//! * [`snp`]: AMD SEV-SNP structures — the `ATTESTATION_REPORT` and the plaintext
//!   `MSG_REPORT_REQ` / `MSG_REPORT_RSP` guest-message payloads.
//! * [`hpke`]: RFC 9180 HPKE, base mode, DHKEM(P-384)/HKDF-SHA384/AES-256-GCM: the Key
//!   Store's release of a provisioned Credential Key (mechanism D).
//! * [`svsm`]: the SVSM protocols a guest below a paravisor speaks — calling area and
//!   convention, SVSM_CORE_PVALIDATE, the attestation protocol and its services manifest.
//! * [`tdx`]: Intel TDX structures — `TDREPORT_STRUCT`, TD quote bodies 1.0/1.5, the QE
//!   report, DCAP quotes v4/v5.
//!
//! `no_std`, no allocation, no `unsafe`. Every parser takes `&[u8]`, checks lengths first and
//! returns a `Result`; no input can make it panic.

#![no_std]
#![forbid(unsafe_code)]

pub mod binding;
pub mod hpke;
pub mod snp;
pub mod svsm;
pub mod tacra;
pub mod tdx;

mod bytes;
