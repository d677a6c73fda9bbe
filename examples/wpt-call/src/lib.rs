//! A TWI workload: acquire a WIMSE Workload Identity Token (WIT) for the measured `target`, GET
//! it over server-authenticated TLS with the WIT in `Workload-Identity-Token` and a fresh
//! Workload Proof Token (WPT, signed in the vault by the key the WIT's `cnf` names) in
//! `Authorization: WPT …`, print `response: <body>` on the console, exit with the verdict.
//!
//! The relying party checks the WIT under the issuer's published keys and the WPT under the
//! key the WIT binds (draft-ietf-wimse-workload-creds, draft-ietf-wimse-wpt): a WIT copied off
//! the wire is useless without the vault's key.
//!
//! ```text
//! twi build --payload examples/wpt-call --set target=https://10.0.2.2:8443/rows \
//!     --set server-ca=rp-ca.pem --out out/wpt-call
//! twi run --image out/wpt-call/twi.rom
//! ```
#![no_std]

extern crate alloc;

use alloc::string::String;

use twi_payload::https;
use twi_payload::prelude::*;

/// The entry point `twi build --payload` links.
pub fn main(rt: &mut dyn Runtime) -> ExitCode {
    let Some(target) = rt.setting("target").and_then(|v| core::str::from_utf8(v).ok()).map(String::from) else {
        rt.log("wpt-call: no target: build with --set target=https://HOST:PORT/PATH");
        return ExitCode::Failure;
    };
    let wit = match rt.acquire(&target, CredentialType::Wit, None) {
        Ok(wit) => wit,
        Err(e) => {
            rt.log(&format!("wpt-call: no WIT for {target}: {e}"));
            return ExitCode::Failure;
        }
    };
    rt.log(&format!("wpt-call: acquired a WIT for {} ({:?}) for {target}", wit.workload_id, wit.mode));
    match https::get(rt, &wit, &target) {
        Ok(response) => {
            let body = String::from_utf8_lossy(&response.body);
            rt.log(&format!("wpt-call: {target} answered {}", response.status));
            rt.log(&format!("response: {}", body.trim_end()));
            if (200..300).contains(&response.status) { ExitCode::Success } else { ExitCode::Failure }
        }
        Err(e) => {
            rt.log(&format!("wpt-call: GET {target} failed: {e}"));
            ExitCode::Failure
        }
    }
}
