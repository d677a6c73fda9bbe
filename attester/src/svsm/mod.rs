//! The Secure VM Service Module (SVSM) protocols, as a guest below an SVSM (AMD "Secure VM
//! Service Module for SEV-SNP Guests", publication 58019 rev. 1.00) speaks them: the calling
//! convention and the calling area ([`call`]), the core protocol's page validation ([`core`]),
//! the attestation protocol ([`attest`]), and where the guest finds the SVSM (the SNP secrets
//! page's SVSM fields, [`crate::snp::secrets::SvsmInfo`]). Pure byte layouts and register
//! encodings, shared by the runtime (which makes the calls), the simulated SVSM and the verifier.
//!
//! Each layout was checked against COCONUT-SVSM (`kernel/src/protocols/{core,attest,errors}.rs`,
//! `kernel/src/requests.rs`) and Linux (`arch/x86/include/asm/sev.h` `struct svsm_ca`,
//! `svsm_pvalidate_call`, `svsm_attest_call`; `arch/x86/boot/startup/sev-shared.c`
//! `svsm_perform_msr_protocol`, `svsm_setup_ca`).

pub mod attest;
pub mod call;
pub mod core;
pub mod exchange;
