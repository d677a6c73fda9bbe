//! Chains made here with the DER writer and P-384 keys, one property changed per case.

use super::*;
use alloc::string::String;
use alloc::vec;
use ecdsa::signature::hazmat::PrehashSigner;
use p384::ecdsa::SigningKey;
use sha2::Digest;

const NOW: u64 = 1_800_000_000; // 2027-01-15
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
const CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];

fn key(seed: u8) -> SigningKey {
    SigningKey::from_slice(&[seed; 48]).unwrap()
}

fn name(cn: &str) -> Vec<u8> {
    let attribute = [asn1::element(tag::OID, OID_CN), asn1::element(0x0c, cn.as_bytes())].concat();
    asn1::element(tag::SEQUENCE, &asn1::element(tag::SET, &asn1::element(tag::SEQUENCE, &attribute)))
}

fn extension(id: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
    let mut body = asn1::element(tag::OID, id);
    if critical {
        body.extend(asn1::element(tag::BOOLEAN, &[0xff]));
    }
    body.extend(asn1::element(tag::OCTET_STRING, value));
    asn1::element(tag::SEQUENCE, &body)
}

fn ce(kind: u8) -> Vec<u8> {
    vec![0x55, 0x1d, kind]
}

/// What one certificate says; `Spec::leaf` and `Spec::ca` are the usual starting points.
#[derive(Clone)]
struct Spec {
    subject: String,
    issuer: String,
    validity: (&'static str, &'static str),
    version: u8,
    extensions: Vec<Vec<u8>>,
    /// Signed with ecdsa-with-SHA384 unless this says otherwise (the OID's contents).
    algorithm: &'static [u8],
}

impl Spec {
    fn leaf(issuer: &str, dns: &[&str]) -> Self {
        let names: Vec<u8> = dns.iter().flat_map(|d| asn1::element(0x82, d.as_bytes())).collect();
        Self {
            subject: "server".into(),
            issuer: issuer.into(),
            validity: ("20250101000000Z", "20300101000000Z"),
            version: 2,
            extensions: vec![
                extension(&ce(SUBJECT_ALT_NAME), false, &asn1::element(tag::SEQUENCE, &names)),
                extension(&ce(KEY_USAGE), true, &asn1::element(tag::BIT_STRING, &[7, 0x80])),
                extension(
                    &ce(EXT_KEY_USAGE),
                    false,
                    &asn1::element(tag::SEQUENCE, &asn1::element(tag::OID, SERVER_AUTH)),
                ),
            ],
            algorithm: ECDSA_SHA384,
        }
    }

    fn ca(subject: &str, issuer: &str, path_len: Option<u8>) -> Self {
        let mut basic = asn1::element(tag::BOOLEAN, &[0xff]);
        if let Some(n) = path_len {
            basic.extend(asn1::element(tag::INTEGER, &[n]));
        }
        Self {
            subject: subject.into(),
            issuer: issuer.into(),
            validity: ("20250101000000Z", "20350101000000Z"),
            version: 2,
            extensions: vec![
                extension(&ce(BASIC_CONSTRAINTS), true, &asn1::element(tag::SEQUENCE, &basic)),
                extension(&ce(KEY_USAGE), true, &asn1::element(tag::BIT_STRING, &[1, 0x06])),
            ],
            algorithm: ECDSA_SHA384,
        }
    }

    fn with(mut self, extension: Vec<u8>) -> Self {
        self.extensions.push(extension);
        self
    }

    /// The certificate for `subject_key`, signed by `issuer_key`.
    fn sign(&self, subject_key: &SigningKey, issuer_key: &SigningKey) -> Vec<u8> {
        let algorithm = asn1::element(tag::SEQUENCE, &asn1::element(tag::OID, self.algorithm));
        let point = subject_key.verifying_key().to_sec1_point(false);
        let key_algorithm = [asn1::element(tag::OID, EC_PUBLIC_KEY), asn1::element(tag::OID, SECP384R1)].concat();
        let spki = [
            asn1::element(tag::SEQUENCE, &key_algorithm),
            asn1::element(tag::BIT_STRING, &[&[0], point.as_bytes()].concat()),
        ]
        .concat();
        let validity = [
            asn1::element(tag::GENERALIZED_TIME, self.validity.0.as_bytes()),
            asn1::element(tag::GENERALIZED_TIME, self.validity.1.as_bytes()),
        ]
        .concat();
        let tbs = asn1::element(
            tag::SEQUENCE,
            &[
                asn1::element(0xa0, &asn1::element(tag::INTEGER, &[self.version])),
                asn1::element(tag::INTEGER, &[0x01, 0x23]),
                algorithm.clone(),
                name(&self.issuer),
                asn1::element(tag::SEQUENCE, &validity),
                name(&self.subject),
                asn1::element(tag::SEQUENCE, &spki),
                asn1::element(0xa3, &asn1::element(tag::SEQUENCE, &self.extensions.concat())),
            ]
            .concat(),
        );
        let digest = sha2::Sha384::digest(&tbs);
        let signature: p384::ecdsa::Signature = issuer_key.sign_prehash(&digest).unwrap();
        let signature = [&[0][..], signature.to_der().as_bytes()].concat();
        asn1::element(tag::SEQUENCE, &[tbs, algorithm, asn1::element(tag::BIT_STRING, &signature)].concat())
    }
}

/// A root, an intermediate under it and a leaf under that, with the root as the anchor.
struct Pki {
    root: Vec<u8>,
    intermediate: Vec<u8>,
    leaf: Vec<u8>,
}

fn pki() -> Pki {
    let (root, inter, leaf) = (key(1), key(2), key(3));
    Pki {
        root: Spec::ca("root", "root", None).sign(&root, &root),
        intermediate: Spec::ca("intermediate", "root", Some(0)).sign(&inter, &root),
        leaf: Spec::leaf("intermediate", &["db.example", "*.svc.example"]).sign(&leaf, &inter),
    }
}

fn dns(name: &str) -> ServerName {
    ServerName::Dns(name.into())
}

fn check(chain: &[&[u8]], anchor: &[u8], now: u64, name: &ServerName) -> Result<(), CertificateProblem> {
    verify_server(chain, &[Anchor::new(anchor).unwrap()], now, name).map(|_| ())
}

#[test]
fn a_chain_through_an_intermediate_verifies_for_the_names_it_carries() {
    let p = pki();
    for host in ["db.example", "DB.EXAMPLE", "a.svc.example"] {
        let name = ServerName::parse(host).unwrap();
        assert_eq!(check(&[&p.leaf, &p.intermediate], &p.root, NOW, &name), Ok(()), "{host}");
    }
    // The root may be sent too; the path ends at the anchor.
    assert_eq!(check(&[&p.leaf, &p.intermediate, &p.root], &p.root, NOW, &dns("db.example")), Ok(()));
    for host in ["other.example", "svc.example", "a.b.svc.example", "example", "db.example.evil"] {
        assert_eq!(
            check(&[&p.leaf, &p.intermediate], &p.root, NOW, &dns(host)),
            Err(CertificateProblem::WrongName),
            "{host}"
        );
    }
}

#[test]
fn ip_address_names_are_compared_as_bytes() {
    let (ca, leaf_key) = (key(1), key(3));
    let root = Spec::ca("root", "root", None).sign(&ca, &ca);
    let names = asn1::element(tag::SEQUENCE, &asn1::element(0x87, &[10, 0, 0, 1]));
    let mut spec = Spec::leaf("root", &[]);
    spec.extensions[0] = extension(&ce(SUBJECT_ALT_NAME), false, &names);
    let leaf = spec.sign(&leaf_key, &ca);
    assert_eq!(check(&[&leaf], &root, NOW, &ServerName::parse("10.0.0.1").unwrap()), Ok(()));
    assert_eq!(
        check(&[&leaf], &root, NOW, &ServerName::parse("10.0.0.2").unwrap()),
        Err(CertificateProblem::WrongName)
    );
    // A DNS name that spells the address is not the address.
    assert_eq!(check(&[&leaf], &root, NOW, &dns("10.0.0.1.example")), Err(CertificateProblem::WrongName));
}

#[test]
fn a_chain_that_does_not_reach_the_anchor_is_refused() {
    let p = pki();
    let name = dns("db.example");
    assert_eq!(check(&[&p.leaf], &p.root, NOW, &name), Err(CertificateProblem::UnknownIssuer));
    let other_root = Spec::ca("root", "root", None).sign(&key(9), &key(9));
    assert_eq!(check(&[&p.leaf, &p.intermediate], &other_root, NOW, &name), Err(CertificateProblem::BadSignature));
    let forged = Spec::leaf("intermediate", &["db.example"]).sign(&key(3), &key(8));
    assert_eq!(check(&[&forged, &p.intermediate], &p.root, NOW, &name), Err(CertificateProblem::UnknownIssuer));
    assert_eq!(check(&[], &p.root, NOW, &name), Err(CertificateProblem::Missing));
}

#[test]
fn validity_is_checked_for_the_leaf_and_the_intermediates_not_the_anchor() {
    let p = pki();
    let name = dns("db.example");
    assert_eq!(check(&[&p.leaf, &p.intermediate], &p.root, 1_700_000_000, &name), Err(CertificateProblem::NotYetValid));
    assert_eq!(check(&[&p.leaf, &p.intermediate], &p.root, 1_900_000_000, &name), Err(CertificateProblem::Expired));
    let (root, inter, leaf) = (key(1), key(2), key(3));
    let mut spec = Spec::ca("intermediate", "root", None);
    spec.validity = ("20250101000000Z", "20260101000000Z");
    let expired_ca = spec.sign(&inter, &root);
    let leaf = Spec::leaf("intermediate", &["db.example"]).sign(&leaf, &inter);
    assert_eq!(check(&[&leaf, &expired_ca], &p.root, NOW, &name), Err(CertificateProblem::Expired));
    let mut spec = Spec::ca("root", "root", None);
    spec.validity = ("20250101000000Z", "20260101000000Z");
    let expired_root = spec.sign(&root, &root);
    assert_eq!(check(&[&leaf, &p.intermediate], &expired_root, NOW, &name), Ok(()));
}

#[test]
fn intermediates_must_be_cas_within_their_path_length() {
    let (root, a, b, leaf_key) = (key(1), key(2), key(4), key(3));
    let anchor = Spec::ca("root", "root", None).sign(&root, &root);
    let name = dns("db.example");
    let leaf = Spec::leaf("b", &["db.example"]).sign(&leaf_key, &b);
    let b_cert = Spec::ca("b", "a", None).sign(&b, &a);
    // a's pathLenConstraint of 0 allows no intermediate below it; 1 allows b.
    let a_zero = Spec::ca("a", "root", Some(0)).sign(&a, &root);
    let a_one = Spec::ca("a", "root", Some(1)).sign(&a, &root);
    assert_eq!(check(&[&leaf, &b_cert, &a_zero], &anchor, NOW, &name), Err(CertificateProblem::UnknownIssuer));
    assert_eq!(check(&[&leaf, &b_cert, &a_one], &anchor, NOW, &name), Ok(()));
    // Not a CA: no basicConstraints, or cA absent.
    let mut not_ca = Spec::ca("a", "root", None);
    not_ca.extensions.remove(0);
    let leaf_a = Spec::leaf("a", &["db.example"]).sign(&leaf_key, &a);
    assert_eq!(check(&[&leaf_a, &not_ca.sign(&a, &root)], &anchor, NOW, &name), Err(CertificateProblem::UnknownIssuer));
    // keyUsage without keyCertSign.
    let mut no_sign = Spec::ca("a", "root", None);
    no_sign.extensions[1] = extension(&ce(KEY_USAGE), true, &asn1::element(tag::BIT_STRING, &[7, 0x80]));
    assert_eq!(
        check(&[&leaf_a, &no_sign.sign(&a, &root)], &anchor, NOW, &name),
        Err(CertificateProblem::UnknownIssuer)
    );
}

#[test]
fn the_leaf_must_be_for_server_authentication_and_not_a_ca() {
    let (root, leaf_key) = (key(1), key(3));
    let anchor = Spec::ca("root", "root", None).sign(&root, &root);
    let name = dns("db.example");
    let mut client_only = Spec::leaf("root", &["db.example"]);
    client_only.extensions[2] =
        extension(&ce(EXT_KEY_USAGE), false, &asn1::element(tag::SEQUENCE, &asn1::element(tag::OID, CLIENT_AUTH)));
    assert_eq!(
        check(&[&client_only.sign(&leaf_key, &root)], &anchor, NOW, &name),
        Err(CertificateProblem::WrongPurpose)
    );
    let mut no_eku = Spec::leaf("root", &["db.example"]);
    no_eku.extensions.remove(2);
    assert_eq!(check(&[&no_eku.sign(&leaf_key, &root)], &anchor, NOW, &name), Ok(()));
    let mut no_signing = Spec::leaf("root", &["db.example"]);
    no_signing.extensions[1] = extension(&ce(KEY_USAGE), true, &asn1::element(tag::BIT_STRING, &[3, 0x08]));
    assert_eq!(
        check(&[&no_signing.sign(&leaf_key, &root)], &anchor, NOW, &name),
        Err(CertificateProblem::WrongPurpose)
    );
    let basic = asn1::element(tag::SEQUENCE, &asn1::element(tag::BOOLEAN, &[0xff]));
    let ca_leaf = Spec::leaf("root", &["db.example"]).with(extension(&ce(BASIC_CONSTRAINTS), true, &basic));
    assert!(matches!(
        check(&[&ca_leaf.sign(&leaf_key, &root)], &anchor, NOW, &name),
        Err(CertificateProblem::Other(_))
    ));
}

#[test]
fn critical_extensions_it_does_not_process_fail_the_chain() {
    let (root, leaf_key) = (key(1), key(3));
    let anchor = Spec::ca("root", "root", None).sign(&root, &root);
    let name = dns("db.example");
    let leaf_with = |ext| Spec::leaf("root", &["db.example"]).with(ext).sign(&leaf_key, &root);
    let policies = ce(32);
    let private = [0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37];
    assert_eq!(check(&[&leaf_with(extension(&policies, false, &[0x30, 0]))], &anchor, NOW, &name), Ok(()));
    assert_eq!(check(&[&leaf_with(extension(&private, false, &[5, 0]))], &anchor, NOW, &name), Ok(()));
    for critical in [extension(&policies, true, &[0x30, 0]), extension(&private, true, &[5, 0])] {
        assert_eq!(check(&[&leaf_with(critical)], &anchor, NOW, &name), Err(CertificateProblem::Malformed));
    }
    let constrained = leaf_with(extension(&ce(NAME_CONSTRAINTS), true, &[0x30, 0]));
    assert!(matches!(check(&[&constrained], &anchor, NOW, &name), Err(CertificateProblem::Other(_))));
    let constrained_root = Spec::ca("root", "root", None).with(extension(&ce(NAME_CONSTRAINTS), true, &[0x30, 0]));
    assert!(Anchor::new(&constrained_root.sign(&root, &root)).is_err());
    // The same extension twice.
    let twice = Spec::leaf("root", &["db.example"]).with(extension(
        &ce(KEY_USAGE),
        true,
        &asn1::element(tag::BIT_STRING, &[7, 0x80]),
    ));
    assert_eq!(check(&[&twice.sign(&leaf_key, &root)], &anchor, NOW, &name), Err(CertificateProblem::Malformed));
}

#[test]
fn other_versions_and_algorithms_are_refused() {
    let (root, leaf_key) = (key(1), key(3));
    let anchor = Spec::ca("root", "root", None).sign(&root, &root);
    let name = dns("db.example");
    let mut v1 = Spec::leaf("root", &["db.example"]);
    v1.version = 0;
    assert_eq!(check(&[&v1.sign(&leaf_key, &root)], &anchor, NOW, &name), Err(CertificateProblem::Malformed));
    let mut sha256 = Spec::leaf("root", &["db.example"]);
    sha256.algorithm = ECDSA_SHA256;
    // Labelled SHA-256 but signed over SHA-384 here: the label is what is verified.
    assert_eq!(check(&[&sha256.sign(&leaf_key, &root)], &anchor, NOW, &name), Err(CertificateProblem::BadSignature));
    let mut rsa = Spec::leaf("root", &["db.example"]);
    rsa.algorithm = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
    assert_eq!(
        check(&[&rsa.sign(&leaf_key, &root)], &anchor, NOW, &name),
        Err(CertificateProblem::UnsupportedAlgorithm)
    );
    assert!(Anchor::new(b"not a certificate").is_err());
}

#[test]
fn every_altered_or_truncated_byte_of_the_leaf_fails_without_panicking() {
    let p = pki();
    let name = dns("db.example");
    for i in 0..p.leaf.len() {
        let mut leaf = p.leaf.clone();
        leaf[i] ^= 0x01;
        assert!(check(&[&leaf, &p.intermediate], &p.root, NOW, &name).is_err(), "byte {i}");
        assert!(check(&[&p.leaf[..i], &p.intermediate], &p.root, NOW, &name).is_err(), "cut at {i}");
    }
}

#[test]
fn wildcards_match_one_whole_leftmost_label() {
    assert!(dns_matches(b"*.example.com", b"a.example.com"));
    assert!(dns_matches(b"DB.Example.com", b"db.example.com"));
    for (pattern, host) in [
        (&b"*.example.com"[..], &b"example.com"[..]),
        (b"*.example.com", b"a.b.example.com"),
        (b"*.com", b"example.com"),
        (b"a*.example.com", b"ab.example.com"),
        (b"*.example.com", b".example.com"),
    ] {
        assert!(!dns_matches(pattern, host), "{pattern:?} {host:?}");
    }
}
