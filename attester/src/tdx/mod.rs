//! Intel TDX structures: the `TDREPORT_STRUCT` a TD gets from `TDG.MR.REPORT`, the TD quote
//! bodies (TDX 1.0 and 1.5), the SGX enclave report body of the Quoting Enclave, and DCAP
//! quotes v4 and v5 with ECDSA P-256 attestation keys. Parse and build, offsets asserted at
//! compile time; the issuer's verifier reads quotes through this module only. Also the GHCI
//! GetQuote buffer ([`getquote`]), RTMR extension with event-log replay ([`rtmr`]), and the
//! TDCALL / TDVMCALL register ABI as pure encoders and decoders ([`abi`]).

pub mod abi;
pub mod enclave_report;
pub mod getquote;
pub mod quote;
pub mod rtmr;
pub mod td_report;
