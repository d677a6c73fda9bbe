//! The simulated TEE: software models of the firmware the runtime talks to on real hardware.
//! They answer the exact request bytes the runtime would hand the hardware, so every path of
//! the runtime and the issuer runs as on hardware; only the doorbell instruction differs.
//! Their roots are a separate trust anchor that an issuer accepts only when told to.

pub mod snp;
pub mod tdx;
