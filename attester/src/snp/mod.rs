//! AMD SEV-SNP structures from the *SEV Secure Nested Paging Firmware ABI Specification*
//! (AMD publication 56860): the attestation report and the plaintext payloads of the
//! `MSG_REPORT_REQ` / `MSG_REPORT_RSP` guest messages; and the certificate table of the
//! extended guest request (GHCB specification).

pub mod certs;
pub mod cpuid_page;
pub mod ghcb;
pub mod guest_msg;
pub mod key;
pub mod msg;
pub mod report;
pub mod rmp;
pub mod secrets;
