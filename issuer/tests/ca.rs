//! The Credential Authority's identity on disk: created once with a private key file, reloaded
//! unchanged, and a CA certificate that an independent parser (`openssl`) accepts. The
//! `openssl` checks fail, never skip, when `openssl` is missing.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

use der::{DecodePem, Encode};
use p384::ecdsa::signature::Verifier;
use p384::ecdsa::{Signature, SigningKey, VerifyingKey};
use p384::pkcs8::DecodePrivateKey;
use twi_issuer::{IssuerCa, IssuerError, oids};
use twi_testkit::tools::{assert_ok, openssl, utf8 as path};
use x509_cert::Certificate;
use x509_cert::certificate::Version;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier};

const KEY_FILE: &str = "issuer-ca.key.pem";
const CERT_FILE: &str = "issuer-ca.pem";

#[test]
fn created_once_with_a_private_key_file_and_reloaded_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state").join("nested"); // created on demand
    let ca = IssuerCa::load_or_create(&state, "example.org").unwrap();

    // The key file: owner read/write only, PKCS#8, the CA's key.
    let key_path = state.join(KEY_FILE);
    let mode = fs::metadata(&key_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{} has mode {mode:o}, expected 600", key_path.display());
    let key_pem = fs::read_to_string(&key_path).unwrap();
    assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"), "not PKCS#8 PEM");
    let key = SigningKey::from_pkcs8_pem(&key_pem).unwrap();
    assert_eq!(key.verifying_key(), ca.verifying_key());

    // The certificate file: the CA certificate, for the CA's key.
    let cert_pem = fs::read_to_string(state.join(CERT_FILE)).unwrap();
    assert_eq!(cert_pem, ca.certificate_pem());
    assert_eq!(&Certificate::from_pem(cert_pem.as_bytes()).unwrap(), ca.certificate());
    let spki = ca.certificate().tbs_certificate().subject_public_key_info();
    assert_eq!(spki.subject_public_key.raw_bytes(), ca.public_key_sec1().as_slice());
    assert_eq!(ca.public_key_sec1().len(), 97);
    assert_eq!(ca.public_key_sec1()[0], 0x04);

    // Reloading gives the same CA, and leaves the files as they were.
    let again = IssuerCa::load_or_create(&state, "example.org").unwrap();
    assert_eq!(again.public_key_sec1(), ca.public_key_sec1());
    assert_eq!(again.certificate(), ca.certificate());
    assert_eq!(again.certificate_pem(), ca.certificate_pem());
    assert_eq!(fs::read_to_string(&key_path).unwrap(), key_pem);
    assert_eq!(fs::metadata(&key_path).unwrap().permissions().mode() & 0o777, 0o600);

    // Another state directory is another CA.
    let other = IssuerCa::load_or_create(&dir.path().join("other"), "example.org").unwrap();
    assert_ne!(other.public_key_sec1(), ca.public_key_sec1());
}

#[test]
fn ca_certificate_profile() {
    let dir = tempfile::tempdir().unwrap();
    let ca = IssuerCa::load_or_create(dir.path(), "example.org").unwrap();
    let cert = ca.certificate();
    let tbs = cert.tbs_certificate();
    assert_eq!(tbs.version(), Version::V3);

    // Self-signed: issuer is subject, and the signature verifies under its own key.
    assert_eq!(tbs.issuer(), tbs.subject());
    assert_eq!(ca.subject(), tbs.subject());
    let subject = tbs.subject().to_string();
    assert!(subject.contains("example.org"), "the CA's name does not say its trust domain: {subject}");
    assert_eq!(cert.signature_algorithm().oid, oids::ECDSA_WITH_SHA384);
    let own_key = VerifyingKey::from_sec1_bytes(tbs.subject_public_key_info().subject_public_key.raw_bytes()).unwrap();
    let signature = Signature::from_der(cert.signature().as_bytes().unwrap()).unwrap();
    own_key.verify(&tbs.to_der().unwrap(), &signature).expect("the CA certificate's self-signature");

    // basicConstraints: critical, cA; it issues end-entity credentials only (pathLen 0).
    let (critical, bc) = tbs.get_extension::<BasicConstraints>().unwrap().expect("no basicConstraints");
    assert!(critical, "basicConstraints must be critical in a CA certificate");
    assert!(bc.ca, "basicConstraints cA must be true");
    assert_eq!(bc.path_len_constraint, Some(0));

    // keyUsage: critical, keyCertSign (and cRLSign), nothing for end-entity use.
    let (critical, ku) = tbs.get_extension::<KeyUsage>().unwrap().expect("no keyUsage");
    assert!(critical, "keyUsage must be critical");
    assert!(ku.key_cert_sign(), "keyUsage lacks keyCertSign");
    assert_eq!(ku, KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign));

    // A subject key identifier, which the credentials' authorityKeyIdentifier points at.
    assert!(tbs.get_extension::<SubjectKeyIdentifier>().unwrap().is_some(), "no subjectKeyIdentifier");

    // Valid now, and for years.
    let validity = tbs.validity();
    let now = SystemTime::now();
    assert!(validity.not_before.to_system_time() <= now && now <= validity.not_after.to_system_time());
    assert!(validity.not_after.to_system_time() > now + Duration::from_secs(5 * 365 * 24 * 3600));

    // Serial: positive, at most 20 octets.
    let serial = tbs.serial_number().as_bytes();
    assert!(!serial.is_empty() && serial.len() <= 20 && serial[0] & 0x80 == 0);
}

#[test]
fn openssl_accepts_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    IssuerCa::load_or_create(dir.path(), "example.org").unwrap();
    let cert = dir.path().join(CERT_FILE);
    let key = dir.path().join(KEY_FILE);

    for strict in [false, true] {
        let mut args = vec!["verify"];
        if strict {
            args.push("-x509_strict");
        }
        args.extend(["-CAfile", path(&cert), path(&cert)]);
        let out = openssl(&args);
        assert_ok(&out, &format!("openssl {args:?}"));
        assert!(String::from_utf8_lossy(&out.stdout).contains(": OK"));
    }

    let out = openssl(&["x509", "-in", path(&cert), "-noout", "-ext", "basicConstraints,keyUsage"]);
    assert_ok(&out, "openssl x509 -ext");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("X509v3 Basic Constraints: critical"), "{text}");
    assert!(text.contains("CA:TRUE"), "{text}");
    assert!(text.contains("X509v3 Key Usage: critical"), "{text}");
    assert!(text.contains("Certificate Sign"), "{text}");

    // The key file is one openssl reads, and it is the certificate's key.
    let from_key = openssl(&["pkey", "-in", path(&key), "-pubout"]);
    assert_ok(&from_key, "openssl pkey");
    let from_cert = openssl(&["x509", "-in", path(&cert), "-noout", "-pubkey"]);
    assert_ok(&from_cert, "openssl x509 -pubkey");
    assert_eq!(from_key.stdout, from_cert.stdout);
}

#[test]
fn corrupt_state_is_reported_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    IssuerCa::load_or_create(dir.path(), "example.org").unwrap();
    let key_path = dir.path().join(KEY_FILE);
    fs::write(&key_path, "not a key").unwrap();
    let err = IssuerCa::load_or_create(dir.path(), "example.org").expect_err("a corrupt key file was accepted");
    assert!(err.to_string().contains(path(&key_path)), "the message does not name the file: {err}");
    assert!(matches!(&err, IssuerError::State(p, _) if p == &key_path), "{err:?}");

    let dir = tempfile::tempdir().unwrap();
    IssuerCa::load_or_create(dir.path(), "example.org").unwrap();
    let cert_path = dir.path().join(CERT_FILE);
    fs::write(&cert_path, "not a certificate").unwrap();
    match IssuerCa::load_or_create(dir.path(), "example.org") {
        Err(IssuerError::State(p, _)) => assert_eq!(p, cert_path),
        other => panic!("a corrupt certificate file gave {other:?}"),
    }
}

/// With the certificate gone but the key still there, the CA must not silently mint a new
/// key over the old one (every credential and every image anchor would stop verifying).
#[test]
fn a_lone_key_file_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let ca = IssuerCa::load_or_create(dir.path(), "example.org").unwrap();
    let key_pem = fs::read_to_string(dir.path().join(KEY_FILE)).unwrap();
    fs::remove_file(dir.path().join(CERT_FILE)).unwrap();
    match IssuerCa::load_or_create(dir.path(), "example.org") {
        Err(IssuerError::State(..)) => {}
        Ok(again) => assert_eq!(again.public_key_sec1(), ca.public_key_sec1(), "the CA key was replaced"),
        Err(e) => panic!("unexpected error: {e}"),
    }
    assert_eq!(fs::read_to_string(dir.path().join(KEY_FILE)).unwrap(), key_pem, "the CA key file was overwritten");
}
