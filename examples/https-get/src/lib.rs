//! A TWI workload: acquire an X.509 credential for the measured `target`, GET it over mutual
//! TLS (the relying party sees the workload's Stable identifier in the client certificate),
//! print `response: <body>` on the console, exit with the response's verdict.
//!
//! Build and run it (the relying party's CA goes into the measured manifest):
//!
//! ```text
//! twi build --payload examples/https-get --set target=https://10.0.2.2:8443/hello \
//!     --set server-ca=rp-ca.pem --out out/https-get
//! twi run --image out/https-get/twi.rom
//! ```
#![no_std]

extern crate alloc;

use twi_payload::https;
use twi_payload::prelude::*;

/// The entry point `twi build --payload` links.
pub fn main(rt: &mut dyn Runtime) -> ExitCode {
    let Some(target) = rt.setting("target").and_then(|v| core::str::from_utf8(v).ok()).map(alloc::string::String::from)
    else {
        rt.log("https-get: no target: build with --set target=https://HOST:PORT/PATH");
        return ExitCode::Failure;
    };
    let credential = match rt.acquire(&target, CredentialType::X509, None) {
        Ok(credential) => credential,
        Err(e) => {
            rt.log(&format!("https-get: no credential for {target}: {e}"));
            return ExitCode::Failure;
        }
    };
    rt.log(&format!("https-get: acquired {} ({:?}) for {target}", credential.workload_id, credential.mode));
    match https::get(rt, &credential, &target) {
        Ok(response) => {
            let body = alloc::string::String::from_utf8_lossy(&response.body);
            rt.log(&format!("https-get: {target} answered {}", response.status));
            rt.log(&format!("response: {}", body.trim_end()));
            if (200..300).contains(&response.status) { ExitCode::Success } else { ExitCode::Failure }
        }
        Err(e) => {
            rt.log(&format!("https-get: GET {target} failed: {e}"));
            ExitCode::Failure
        }
    }
}
