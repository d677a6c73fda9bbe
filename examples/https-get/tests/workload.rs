//! The workload's logic on the host, with `twi_payload::testing`'s stand-in runtime (no TEE, no
//! issuer): what it asks for, what it logs, how it fails. Run: `cargo test`.

use https_get::main;
use twi_payload::prelude::*;
use twi_payload::testing::TestRuntime;

const TARGET: &str = "https://db.example:8443/rows";

#[test]
fn without_a_target_it_says_how_to_build_one() {
    let mut rt = TestRuntime::new();
    assert_eq!(main(&mut rt), ExitCode::Failure);
    assert!(rt.logs()[0].contains("--set target="), "{:?}", rt.logs());
    assert!(rt.acquisitions().is_empty());
}

#[test]
fn a_refused_acquisition_fails_the_run_with_the_issuers_reason() {
    let refusal = AcquireError::Attestation("the measurement is not admitted".into());
    let mut rt =
        TestRuntime::new().with_setting("target", TARGET).with_answer(TARGET, CredentialType::X509, Err(refusal));
    assert_eq!(main(&mut rt), ExitCode::Failure);
    assert_eq!(rt.acquisitions()[0].target, TARGET);
    assert_eq!(rt.acquisitions()[0].credential_type, CredentialType::X509);
    assert!(rt.logs().iter().any(|l| l.contains("the measurement is not admitted")), "{:?}", rt.logs());
    assert!(rt.connects().is_empty(), "it connected without a credential: {:?}", rt.connects());
}

#[test]
fn with_a_credential_but_no_server_ca_it_refuses_before_connecting() {
    let credential = Credential {
        target: TARGET.into(),
        credential_type: CredentialType::X509,
        mode: Mode::Enrollment,
        workload_id: "spiffe://twi.example/payroll-app".into(),
        certificates: Vec::new(),
        token: String::new(),
        key: KeyHandle(1),
        not_before: 0,
        not_after: u64::MAX,
    };
    let mut rt =
        TestRuntime::new().with_setting("target", TARGET).with_answer(TARGET, CredentialType::X509, Ok(credential));
    assert_eq!(main(&mut rt), ExitCode::Failure);
    assert!(rt.logs().iter().any(|l| l.contains("acquired spiffe://twi.example/payroll-app")), "{:?}", rt.logs());
    assert!(rt.logs().iter().any(|l| l.contains("--set server-ca=CA.pem")), "{:?}", rt.logs());
    assert!(rt.connects().is_empty(), "it connected without a CA to check the server by: {:?}", rt.connects());
}
