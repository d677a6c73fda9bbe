//! The Payroll story of the TWI source documents: `payroll-app` reads salary rows from
//! `payroll-db`, the relying party, which authorizes it by its Stable identifier
//! (`spiffe://example.org/payroll-app`), never by a measurement. It does so twice, once per
//! credential type the issuer hands out for its target:
//!
//! 1. an X.509 credential, used as the client certificate of mutual TLS;
//! 2. a WIMSE WIT, sent with a fresh Workload Proof Token over server-authenticated TLS.
//!
//! A new release (`--set release=v2`, or changed code) measures differently; the issuer admits
//! it once its reference values are in the issuer's policy, and payroll-db's configuration does
//! not change. The README's "The Payroll story" walks through it.
//!
//! ```text
//! twi build --payload examples/payroll --set target=https://10.0.2.2:8443/rows \
//!     --set server-ca=payroll-db-ca.pem --set release=v1 --out out/payroll-v1
//! twi run --image out/payroll-v1/twi.rom --policy payroll-policy.toml
//! ```
#![no_std]

extern crate alloc;

use alloc::string::String;

use twi_payload::https;
use twi_payload::prelude::*;

fn setting(rt: &mut dyn Runtime, key: &str) -> Option<String> {
    rt.setting(key).and_then(|v| core::str::from_utf8(v).ok()).map(String::from)
}

/// Reads `target` with a credential of `kind`; the body, or why not.
fn read_rows(rt: &mut dyn Runtime, target: &str, kind: CredentialType) -> Result<String, String> {
    let credential = rt.acquire(target, kind, None).map_err(|e| format!("no {kind:?} credential: {e}"))?;
    rt.log(&format!("payroll: acquired {kind:?} for {} ({:?})", credential.workload_id, credential.mode));
    let response = https::get(rt, &credential, target).map_err(|e| format!("GET {target} failed: {e}"))?;
    let body = String::from_utf8_lossy(&response.body).trim_end().into();
    if (200..300).contains(&response.status) {
        Ok(body)
    } else {
        Err(format!("{target} answered {}: {body}", response.status))
    }
}

/// The entry point `twi build --payload` links.
pub fn main(rt: &mut dyn Runtime) -> ExitCode {
    let Some(target) = setting(rt, "target") else {
        rt.log("payroll: no target: build with --set target=https://HOST:PORT/PATH");
        return ExitCode::Failure;
    };
    let release = setting(rt, "release").unwrap_or_else(|| "unreleased".into());
    rt.log(&format!("payroll-app {release}: reading {target}"));
    let mut verdict = ExitCode::Success;
    for (kind, how) in [(CredentialType::X509, "mTLS"), (CredentialType::Wit, "WIT+WPT")] {
        match read_rows(rt, &target, kind) {
            Ok(rows) => rt.log(&format!("payroll: rows over {how}: {}", rows.replace('\n', " | "))),
            Err(why) => {
                rt.log(&format!("payroll: over {how}: {why}"));
                verdict = ExitCode::Failure;
            }
        }
    }
    verdict
}
