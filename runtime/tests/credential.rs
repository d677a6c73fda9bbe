//! `credential::check_credential`: the runtime accepts a credential only if its issuer anchor
//! signed it (ecdsa-with-SHA384), it certifies the Credential Key, and its only SAN is the
//! announced workload URI. Certificates are built with the test kit's RFC 5280 profiles,
//! independent of the issuer's.

mod support;

use der::asn1::{Any, BitString, Ia5String, ObjectIdentifier};
use der::oid::AssociatedOid;
use der::pem::LineEnding;
use der::{Decode, Encode, EncodePem};
use p384::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use sha2::{Digest, Sha512};
use twi_runtime::credential::{CredentialError, check_credential};
use twi_testkit::certs::{Extra as ExtraExtension, Kind, p384_spki};
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use support::{TestCa, WORKLOAD_ID, key_from_seed, public_sec1};

const CA_SUBJECT: &str = "CN=TWI issuer CA for example.org,O=TWI";
const OTHER_WORKLOAD: &str = "spiffe://example.org/other";

/// The issuer CA the runtime trusts, and the Credential Key the runtime holds.
fn trusted_ca_and_our_key() -> (TestCa, Vec<u8>) {
    (TestCa::new(0xCA, CA_SUBJECT), public_sec1(&key_from_seed(0x5EED)))
}

/// A certificate for `key` whose one subjectAltName extension holds exactly `names`.
fn issue_with_san(ca: &TestCa, key: &[u8], names: Vec<GeneralName>) -> Vec<u8> {
    let san = ExtraExtension {
        oid: SubjectAltName::OID,
        critical: false,
        value_der: SubjectAltName(names).to_der().unwrap(),
    };
    ca.issue_der(Kind::Endorsement, vec![san], p384_spki(key))
}

fn uri(s: &str) -> GeneralName {
    GeneralName::UniformResourceIdentifier(Ia5String::new(s).unwrap())
}

/// DER tag-length-value with a definite length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    match len {
        0..=0x7F => out.push(len as u8),
        0x80..=0xFF => out.extend([0x81, len as u8]),
        _ => out.extend([0x82, (len >> 8) as u8, len as u8]),
    }
    out.extend_from_slice(content);
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn accepts_a_credential_issued_for_our_key_and_workload() {
    let (ca, our_key) = trusted_ca_and_our_key();
    let cert = ca.issue_workload(&our_key, WORKLOAD_ID);
    assert_eq!(check_credential(&cert, &ca.anchor(), &our_key, WORKLOAD_ID), Ok(()));
}

#[test]
fn rejects_a_credential_signed_by_another_ca() {
    let (ca, our_key) = trusted_ca_and_our_key();
    // Same subject name as the trusted CA, different key: only the signature tells them apart.
    let impostor = TestCa::new(0xBAD, CA_SUBJECT);
    let cert = impostor.issue_workload(&our_key, WORKLOAD_ID);
    assert_eq!(check_credential(&cert, &ca.anchor(), &our_key, WORKLOAD_ID), Err(CredentialError::BadSignature));
    // The impostor's own anchor would accept it: the signature is the only thing wrong.
    assert_eq!(check_credential(&cert, &impostor.anchor(), &our_key, WORKLOAD_ID), Ok(()));
}

#[test]
fn rejects_a_credential_altered_after_signing() {
    let (ca, our_key) = trusted_ca_and_our_key();
    let mut cert = ca.issue_workload(&our_key, WORKLOAD_ID);
    // Rename the workload inside the signed SAN (same length, so the DER stays valid).
    let at = find(&cert, WORKLOAD_ID.as_bytes()).expect("the SAN URI is in the certificate");
    let last = at + WORKLOAD_ID.len() - 1;
    cert[last] = b'X';
    let renamed = "spiffe://example.org/payrolX";
    assert!(Certificate::from_der(&cert).is_ok(), "the altered certificate still parses");
    assert_eq!(check_credential(&cert, &ca.anchor(), &our_key, renamed), Err(CredentialError::BadSignature));
}

#[test]
fn rejects_a_credential_for_another_key() {
    let (ca, our_key) = trusted_ca_and_our_key();
    let other_key = public_sec1(&key_from_seed(0x0DD));
    let cert = ca.issue_workload(&other_key, WORKLOAD_ID);
    assert_eq!(check_credential(&cert, &ca.anchor(), &our_key, WORKLOAD_ID), Err(CredentialError::WrongKey));
}

#[test]
fn rejects_our_key_labelled_as_another_curve() {
    let (ca, our_key) = trusted_ca_and_our_key();
    // Our exact point bytes, but the SPKI claims secp256r1.
    let secp256r1 = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
    let spki = SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new_unwrap("1.2.840.10045.2.1"),
            parameters: Some(Any::encode_from(&secp256r1).unwrap()),
        },
        subject_public_key: BitString::from_bytes(&our_key).unwrap(),
    };
    let cert = ca.issue_der(Kind::Workload { uri: WORKLOAD_ID.into() }, Vec::new(), spki);
    assert_eq!(check_credential(&cert, &ca.anchor(), &our_key, WORKLOAD_ID), Err(CredentialError::WrongKey));
}

#[test]
fn rejects_a_credential_naming_another_workload() {
    let (ca, our_key) = trusted_ca_and_our_key();
    let anchor = ca.anchor();
    // The certificate names another workload than the host announces...
    let cert = ca.issue_workload(&our_key, OTHER_WORKLOAD);
    assert_eq!(check_credential(&cert, &anchor, &our_key, WORKLOAD_ID), Err(CredentialError::WrongSubjectAltName));
    // ...or the host announces another workload than the certificate names...
    let cert = ca.issue_workload(&our_key, WORKLOAD_ID);
    assert_eq!(check_credential(&cert, &anchor, &our_key, OTHER_WORKLOAD), Err(CredentialError::WrongSubjectAltName));
    // ...or a URI that merely starts with the workload id.
    let cert = ca.issue_workload(&our_key, "spiffe://example.org/payroll/admin");
    assert_eq!(check_credential(&cert, &anchor, &our_key, WORKLOAD_ID), Err(CredentialError::WrongSubjectAltName));
}

#[test]
fn rejects_a_credential_without_exactly_one_uri_san() {
    let (ca, our_key) = trusted_ca_and_our_key();
    let anchor = ca.anchor();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("two URIs, ours first", issue_with_san(&ca, &our_key, vec![uri(WORKLOAD_ID), uri(OTHER_WORKLOAD)])),
        ("two URIs, ours second", issue_with_san(&ca, &our_key, vec![uri(OTHER_WORKLOAD), uri(WORKLOAD_ID)])),
        ("our URI twice", issue_with_san(&ca, &our_key, vec![uri(WORKLOAD_ID), uri(WORKLOAD_ID)])),
        (
            "the id as a DNS name",
            issue_with_san(&ca, &our_key, vec![GeneralName::DnsName(Ia5String::new(WORKLOAD_ID).unwrap())]),
        ),
        ("no SAN at all", ca.issue_der(Kind::Endorsement, Vec::new(), p384_spki(&our_key))),
        (
            "two SAN extensions",
            ca.issue_der(
                Kind::Workload { uri: WORKLOAD_ID.into() },
                vec![ExtraExtension {
                    oid: SubjectAltName::OID,
                    critical: false,
                    value_der: SubjectAltName(vec![uri(OTHER_WORKLOAD)]).to_der().unwrap(),
                }],
                p384_spki(&our_key),
            ),
        ),
    ];
    for (what, cert) in cases {
        assert_eq!(
            check_credential(&cert, &anchor, &our_key, WORKLOAD_ID),
            Err(CredentialError::WrongSubjectAltName),
            "{what}"
        );
    }
}

#[test]
fn rejects_bytes_that_are_not_a_der_certificate() {
    let (ca, our_key) = trusted_ca_and_our_key();
    let anchor = ca.anchor();
    let cert = ca.issue_workload(&our_key, WORKLOAD_ID);
    let pem = Certificate::from_der(&cert).unwrap().to_pem(LineEnding::LF).unwrap().into_bytes();
    let mut trailing = cert.clone();
    trailing.push(0);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"definitely not a certificate".to_vec()),
        ("empty", Vec::new()),
        ("truncated", cert[..cert.len() - 1].to_vec()),
        ("trailing byte", trailing),
        ("PEM instead of DER", pem),
    ];
    for (what, bytes) in cases {
        assert_eq!(check_credential(&bytes, &anchor, &our_key, WORKLOAD_ID), Err(CredentialError::NotDer), "{what}");
    }
}

#[test]
fn rejects_a_credential_signed_with_ecdsa_sha512() {
    let (ca, our_key) = trusted_ca_and_our_key();
    let sha384_oid = [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x03];
    let sha512_oid = [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x04];
    // A coherent ecdsa-with-SHA512 certificate: the TBS's signature field and the outer
    // signatureAlgorithm both say SHA-512, and the CA key really signed SHA-512(TBS).
    let good = Certificate::from_der(&ca.issue_workload(&our_key, WORKLOAD_ID)).unwrap();
    let mut tbs = good.tbs_certificate().to_der().unwrap();
    let at = find(&tbs, &sha384_oid).expect("the TBS names its signature algorithm");
    tbs[at..at + sha384_oid.len()].copy_from_slice(&sha512_oid);
    let digest = Sha512::digest(&tbs);
    let signature: p384::ecdsa::Signature = ca.key.sign_prehash(&digest).unwrap();
    ca.key.verifying_key().verify_prehash(&digest, &signature).expect("a genuine signature");
    let mut body = tbs.clone();
    body.extend(tlv(0x30, &sha512_oid));
    body.extend(tlv(0x03, &[&[0u8][..], signature.to_der().as_bytes()].concat()));
    let cert = tlv(0x30, &body);
    let parsed = Certificate::from_der(&cert).expect("a well-formed certificate");
    assert_eq!(parsed.signature_algorithm().oid, ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4"));

    assert_eq!(
        check_credential(&cert, &ca.anchor(), &our_key, WORKLOAD_ID),
        Err(CredentialError::UnexpectedSignatureAlgorithm)
    );
}

#[test]
fn rejects_an_anchor_that_is_not_a_p384_public_key() {
    let (ca, our_key) = trusted_ca_and_our_key();
    let cert = ca.issue_workload(&our_key, WORKLOAD_ID);
    let anchor = ca.anchor();
    let mut off_curve = anchor.clone();
    off_curve[1] ^= 1;
    let mut origin = vec![0u8; 97];
    origin[0] = 0x04;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("truncated", anchor[..96].to_vec()),
        ("point not on the curve", off_curve),
        ("all-zero coordinates", origin),
        ("the CA certificate instead of its key", cert.clone()),
    ];
    for (what, bad_anchor) in cases {
        assert_eq!(
            check_credential(&cert, &bad_anchor, &our_key, WORKLOAD_ID),
            Err(CredentialError::BadAnchor),
            "{what}"
        );
    }
}

/// The header walk never panics on what the host may hand back, and reads the validity
/// `x509-cert` reads: every truncation and every byte's low or high bit flipped in a good credential is
/// refused.
#[test]
fn the_header_walk_survives_every_truncation_and_flipped_bit() {
    let (ca, our_key) = trusted_ca_and_our_key();
    let anchor = ca.anchor();
    let cert = ca.issue_workload(&our_key, WORKLOAD_ID);
    let parsed = Certificate::from_der(&cert).unwrap();
    let validity = parsed.tbs_certificate().validity();
    let expected = (validity.not_before.to_unix_duration().as_secs(), validity.not_after.to_unix_duration().as_secs());
    assert_eq!(twi_runtime::credential::validity(&cert), Ok(expected));
    for end in 0..cert.len() {
        assert!(check_credential(&cert[..end], &anchor, &our_key, WORKLOAD_ID).is_err(), "truncated at {end}");
        assert!(twi_runtime::credential::validity(&cert[..end]).is_err(), "truncated at {end}");
    }
    for at in (0..cert.len()).flat_map(|byte| [(byte, 0x01u8), (byte, 0x80)]) {
        let mut bad = cert.clone();
        bad[at.0] ^= at.1;
        let _ = twi_runtime::credential::validity(&bad);
        if check_credential(&bad, &anchor, &our_key, WORKLOAD_ID).is_ok() {
            panic!("byte {} flipped by {:#04x} and still accepted", at.0, at.1);
        }
    }
}

/// A compact JWS whose claims set is `claims` (header and signature are not read by the check).
fn wit(claims: &serde_json::Value) -> String {
    use base64ct::{Base64UrlUnpadded, Encoding};
    let part = |bytes: &[u8]| Base64UrlUnpadded::encode_string(bytes);
    format!("{}.{}.{}", part(br#"{"alg":"ES384"}"#), part(claims.to_string().as_bytes()), part(b"sig"))
}

/// `check_wit` accepts the WIT naming the workload and the Credential Key, and refuses each
/// departure with the error that names it.
#[test]
fn the_wit_must_name_the_workload_and_the_credential_key() {
    use base64ct::{Base64UrlUnpadded, Encoding};
    use twi_runtime::credential::check_wit;
    let our_key = public_sec1(&key_from_seed(0x5EED));
    let other_key = public_sec1(&key_from_seed(0x0BAD));
    let claims = |sub: &str, key: &[u8], crv: &str| {
        let jwk = serde_json::json!({"kty": "EC", "crv": crv,
            "x": Base64UrlUnpadded::encode_string(&key[1..49]), "y": Base64UrlUnpadded::encode_string(&key[49..])});
        serde_json::json!({"iss": "spiffe://example.org/twi-issuer", "exp": 1.8e9, "sub": sub, "cnf": {"jwk": jwk}})
    };
    assert_eq!(check_wit(&wit(&claims(WORKLOAD_ID, &our_key, "P-384")), &our_key, WORKLOAD_ID), Ok(()));
    let good = claims(WORKLOAD_ID, &our_key, "P-384").to_string();
    let escaped = {
        use base64ct::{Base64UrlUnpadded, Encoding};
        let text = good.replace("spiffe://", "spiffe:\\/\\/");
        assert!(text.contains(r"spiffe:\/\/"), "{text}");
        format!("e30.{}.c2ln", Base64UrlUnpadded::encode_string(text.as_bytes()))
    };
    let repeated = {
        let text = good.replacen('{', &format!("{{\"sub\":\"{OTHER_WORKLOAD}\","), 1);
        format!("e30.{}.c2ln", Base64UrlUnpadded::encode_string(text.as_bytes()))
    };
    let refused = [
        (wit(&claims(OTHER_WORKLOAD, &our_key, "P-384")), CredentialError::WrongSubjectAltName),
        (
            wit(&serde_json::json!({"cnf": claims(WORKLOAD_ID, &our_key, "P-384")["cnf"]})),
            CredentialError::WrongSubjectAltName,
        ),
        (wit(&claims(WORKLOAD_ID, &other_key, "P-384")), CredentialError::WrongKey),
        (wit(&claims(WORKLOAD_ID, &our_key, "P-256")), CredentialError::WrongKey),
        (wit(&serde_json::json!({"sub": WORKLOAD_ID})), CredentialError::BadWit),
        (
            wit(&serde_json::json!({"sub": WORKLOAD_ID, "cnf": {"jwk": {"crv": "P-384", "x": "!!"}}})),
            CredentialError::BadWit,
        ),
        (wit(&serde_json::json!({"sub": 7})), CredentialError::BadWit),
        (wit(&serde_json::json!(["not", "an", "object"])), CredentialError::BadWit),
        // JSON escapes in the fields read: the reader refuses them (no SPIFFE ID holds one, and
        // the issuer writes none), so `spiffe:\/\/…` is no WIT at all.
        (escaped, CredentialError::BadWit),
        // Two `sub` members: a parser keeping the last would see another workload.
        (repeated, CredentialError::BadWit),
        ("only.two".to_string(), CredentialError::BadWit),
        ("a.b.c.d".to_string(), CredentialError::BadWit),
        ("a.not base64.c".to_string(), CredentialError::BadWit),
    ];
    for (token, error) in refused {
        assert_eq!(check_wit(&token, &our_key, WORKLOAD_ID), Err(error), "{token}");
    }
}
