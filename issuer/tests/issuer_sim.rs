//! The issuer appraising evidence from the simulated SEV-SNP PSP, in process (no QEMU): what a
//! user checks on the credential it issues, and every way the evidence can be wrong.
//!
//! The credential checks use an independent parser (`openssl`) next to `x509-cert`; they need
//! `openssl` on the PATH and fail, never skip, when it is missing.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use der::asn1::{ObjectIdentifier, OctetString, Utf8StringRef};
use der::{Decode, Encode};
use p384::ecdsa::signature::{Signer, Verifier};
use p384::ecdsa::{Signature, SigningKey};
use p384::elliptic_curve::Generate;
use p384::pkcs8::DecodePrivateKey;
use sha2::{Digest, Sha384};
use twi_attester::snp::msg::{ReportRequest, ReportResponse, STATUS_SUCCESS};
use twi_attester::snp::report::{
    AttestationReport, EcdsaP384Signature, GuestPolicy, REPORT_SIZE, SIGNED_LEN, SUPPORTED_VERSIONS, offset,
};
use twi_issuer::freshness::{FreshnessError, FreshnessLevel, NONCE_LEN};
use twi_issuer::policy::Policy;
use twi_issuer::{
    CredentialRequest, Evidence, EvidenceBundle, EvidenceRejection, Issued, Issuer, IssuerConfig, Rejection, oids,
};
use twi_proto::msg::{CredentialKind, Platform};
use twi_sim::snp::SimPsp;
use twi_testkit::samples::{flipped, on_all_cores};
use twi_testkit::tools::openssl;
use twi_verifier::chain::ChainError;
use twi_verifier::snp::{SnpError, verify_report};
use x509_cert::Certificate;
use x509_cert::certificate::Version;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName,
    SubjectKeyIdentifier,
};

const TRUST_DOMAIN: &str = "example.org";
const WORKLOAD: &str = "payroll";
const WORKLOAD_ID: &str = "spiffe://example.org/payroll";
const LIFETIME: Duration = Duration::from_secs(3600);
const LAUNCH_DIGEST: [u8; 48] = [0x5A; 48];

const ID_KP_SERVER_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.1");
const ID_KP_CLIENT_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");
const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// The issuer's policy: the simulated chip's launch is `payroll`, under mechanism c and a
/// single-use nonce (AF_L2).
fn policy() -> Policy {
    Policy::from_toml(&format!(
        "version = \"sim-1\"\ntrust_domain = \"{TRUST_DOMAIN}\"\n\n[[workload]]\nid = \"{WORKLOAD}\"\nmechanism = \"c\"\n\
         freshness = \"AF_L2\"\n\n[[workload.reference]]\nlabel = \"sim\"\nplatform = \"sim-snp\"\nmeasurement = \"{}\"\n",
        hex(&LAUNCH_DIGEST)
    ))
    .unwrap()
}

/// A simulated chip, an issuer that trusts it (or not), and a workload key.
struct Setup {
    dir: tempfile::TempDir,
    psp: SimPsp,
    issuer: Issuer,
    key: SigningKey,
    public_key: Vec<u8>,
    endorsements: Vec<Vec<u8>>,
    /// TACRA: this issuer's identifier and the workload key's CSR.
    rp_id: String,
    csr: Vec<u8>,
}

impl Setup {
    /// An issuer that accepts the simulated chip.
    fn new() -> Self {
        Self::build(true)
    }

    fn build(trust_sim: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut psp = SimPsp::load_or_create(&dir.path().join("psp")).unwrap();
        psp.set_launch_digest(LAUNCH_DIGEST);
        let config =
            IssuerConfig { trust_domain: TRUST_DOMAIN.into(), sim_snp_root: trust_sim.then(|| psp.root().clone()) };
        let issuer = Issuer::open(&dir.path().join("issuer"), config, policy()).unwrap();
        let key = SigningKey::try_generate().unwrap();
        let public_key = sec1(&key);
        let endorsements = psp.endorsements().unwrap();
        let (rp_id, csr) = (issuer.rp_id(), twi_testkit::tacra::csr(&key));
        Self { dir, psp, issuer, key, public_key, endorsements, rp_id, csr }
    }

    fn psp_dir(&self) -> PathBuf {
        self.dir.path().join("psp")
    }

    /// A fresh nonce from the issuer's Verifier.
    fn nonce(&mut self) -> Vec<u8> {
        self.issuer.initiate(Platform::SimSnp, &LAUNCH_DIGEST, TARGET, CredentialKind::X509, None).unwrap().nonce
    }

    /// TACRA's REPORTDATA for an enrollment of the workload key with freshness `nonce`.
    fn bound(&self, nonce: &[u8]) -> [u8; 64] {
        twi_testkit::tacra::report_data(nonce, &self.rp_id, TARGET, &self.csr)
    }

    /// A fresh nonce and a report binding it to the workload key.
    fn fresh(&mut self) -> (Vec<u8>, Vec<u8>) {
        let nonce = self.nonce();
        let report = report_for(&self.psp, self.bound(&nonce));
        (nonce, report)
    }

    fn issue_with(
        &mut self,
        nonce: &[u8],
        evidence: &[u8],
        public_key: &[u8],
        endorsements: &[Vec<u8>],
    ) -> Result<Issued, Rejection> {
        let (target, csr) = (TARGET, Some(self.csr.as_slice()));
        let bundle =
            EvidenceBundle { platform: Platform::SimSnp, evidence, public_key, nonce, endorsements, target, csr };
        issue(&mut self.issuer, bundle)
    }

    /// Issues on `evidence` for `nonce`, with the workload key and the chip's own endorsements.
    fn issue(&mut self, nonce: &[u8], evidence: &[u8]) -> Result<Issued, Rejection> {
        let (public_key, endorsements) = (self.public_key.clone(), self.endorsements.clone());
        self.issue_with(nonce, evidence, &public_key, &endorsements)
    }

    /// Expects `evidence` for `nonce` (workload key, the chip's endorsements) to be rejected,
    /// and returns the rejection.
    fn reject(&mut self, nonce: &[u8], evidence: &[u8]) -> Rejection {
        match self.issue(nonce, evidence) {
            Ok(issued) => panic!("the issuer accepted bad evidence and issued serial {}", issued.serial_hex),
            Err(rejection) => rejection,
        }
    }

    fn endorsement_certs(&self) -> Vec<Certificate> {
        self.endorsements.iter().map(|d| Certificate::from_der(d).unwrap()).collect()
    }
}

/// Mechanism C: the evidence to the Credential Authority.
fn issue(issuer: &mut Issuer, bundle: EvidenceBundle<'_>) -> Result<Issued, Rejection> {
    issuer.ca_credential(CredentialRequest::Evidence { evidence: Evidence { bundle, events: &[] }, renewal_of: None })
}

/// The SEV-SNP verifier's error inside an issuer's rejection (its hints aside).
fn snp_error(rejection: &Rejection) -> Option<&SnpError> {
    match rejection {
        Rejection::Evidence(EvidenceRejection::Verifier(twi_verifier::Rejection::Snp(r))) => Some(&r.error),
        _ => None,
    }
}

/// The target the tests acquire for.
const TARGET: &str = twi_testkit::tacra::TARGET;

fn sec1(key: &SigningKey) -> Vec<u8> {
    key.verifying_key().to_sec1_point(false).as_bytes().to_vec()
}

/// What the runtime does: MSG_REPORT_REQ at VMPL0 for `report_data`, the report out of
/// MSG_REPORT_RSP.
fn report_for(psp: &SimPsp, report_data: [u8; 64]) -> Vec<u8> {
    let response = psp.handle_report_request(&ReportRequest { report_data, vmpl: 0 }.to_bytes());
    let parsed = ReportResponse::parse(&response).unwrap();
    assert_eq!(parsed.status, STATUS_SUCCESS);
    assert_eq!(parsed.report.len(), REPORT_SIZE);
    parsed.report.to_vec()
}

/// `report` edited by `edit` and signed again with the simulated chip's VCEK key (which the
/// simulator keeps on disk): a report the chip could have produced, so only the edit is wrong.
fn resign(psp_dir: &Path, report: &[u8], edit: impl FnOnce(&mut AttestationReport)) -> Vec<u8> {
    let pem = fs::read_to_string(psp_dir.join("vcek.key.pem")).unwrap();
    let vcek = SigningKey::from_pkcs8_pem(&pem).unwrap();
    let mut parsed = AttestationReport::parse(report).unwrap();
    edit(&mut parsed);
    let unsigned = parsed.to_bytes();
    let signature: Signature = vcek.sign(&unsigned[..SIGNED_LEN]);
    parsed.signature = EcdsaP384Signature::from_big_endian_rs(&signature.to_bytes().into());
    parsed.to_bytes().to_vec()
}

/// The message of a rejection is one sentence a person can act on: it names what is wrong
/// (`phrases`) and carries no Rust debug formatting.
#[track_caller]
fn assert_actionable(rejection: &Rejection, phrases: &[&str]) {
    let msg = rejection.to_string();
    assert!(msg.len() >= 30, "rejection message too short to act on: {msg:?}");
    assert!(msg.starts_with(|c: char| c.is_ascii_alphabetic()), "rejection message: {msg:?}");
    assert!(!msg.contains('\n') && msg.trim() == msg, "rejection message is not one line: {msg:?}");
    for artifact in ["{ ", " }", "Some(", "Ok(", "Err(", "\\\""] {
        assert!(!msg.contains(artifact), "rejection message leaks debug formatting ({artifact:?}): {msg:?}");
    }
    for phrase in phrases {
        assert!(msg.contains(phrase), "rejection message {msg:?} does not say {phrase:?}");
    }
}

fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

fn extension<'a>(cert: &'a Certificate, oid: &ObjectIdentifier) -> &'a x509_cert::ext::Extension {
    let exts = cert.tbs_certificate().extensions().expect("the certificate has no extensions");
    let mut found = exts.iter().filter(|e| &e.extn_id == oid);
    let ext = found.next().unwrap_or_else(|| panic!("extension {oid} is missing"));
    assert!(found.next().is_none(), "extension {oid} appears more than once");
    ext
}

// ---------------------------------------------------------------------------------------------
// 1. The credential
// ---------------------------------------------------------------------------------------------

#[test]
fn credential_contents() {
    let mut s = Setup::new();
    let (nonce, report) = s.fresh();
    let before = SystemTime::now();
    let issued = s.issue(&nonce, &report).expect("valid simulated evidence must be accepted");
    let after = SystemTime::now();

    // What the issuer says it did.
    assert_eq!(issued.workload_id, WORKLOAD_ID);
    let cert = Certificate::from_der(&issued.certificate_der).unwrap();
    assert_eq!(<Certificate as der::DecodePem>::from_pem(issued.certificate_pem.as_bytes()).unwrap(), cert);
    assert_eq!(issued.appraisal.platform, Platform::SimSnp);
    let appraisal = &issued.appraisal.verified;
    assert_eq!(appraisal.measurement, LAUNCH_DIGEST);
    let parsed = AttestationReport::parse(&report).unwrap();
    assert_eq!(appraisal.platform_id, parsed.chip_id);
    assert_eq!(appraisal.policy, GuestPolicy::QEMU_DEFAULT);
    let twi_verifier::Tcb::Snp { reported, .. } = appraisal.tcb else { panic!("not a SEV-SNP TCB") };
    assert_eq!(reported, parsed.reported_tcb);
    let evidence_digest: [u8; 48] = Sha384::digest(&report).into();
    assert_eq!(appraisal.evidence_sha384, evidence_digest);

    let tbs = cert.tbs_certificate();
    assert_eq!(tbs.version(), Version::V3);

    // Serial: positive, at most 20 octets (RFC 5280 4.1.2.2), as reported.
    let serial = tbs.serial_number().as_bytes();
    assert!(!serial.is_empty() && serial.len() <= 20, "serial is {} bytes", serial.len());
    assert_eq!(serial[0] & 0x80, 0, "serial is negative");
    assert!(serial.iter().any(|&b| b != 0), "serial is zero");
    assert_eq!(issued.serial_hex, hex(serial));

    // Exactly one SAN, the workload's SPIFFE ID as a URI.
    let (_, san) = tbs.get_extension::<SubjectAltName>().unwrap().expect("no subjectAltName");
    match san.0.as_slice() {
        [GeneralName::UniformResourceIdentifier(uri)] => assert_eq!(uri.as_str(), WORKLOAD_ID),
        other => panic!("expected exactly one URI SAN, got {other:?}"),
    }

    // keyUsage: critical, digitalSignature only.
    let (critical, ku) = tbs.get_extension::<KeyUsage>().unwrap().expect("no keyUsage");
    assert!(critical, "keyUsage must be critical");
    assert_eq!(ku, KeyUsage(KeyUsages::DigitalSignature.into()), "keyUsage must be digitalSignature only");

    // basicConstraints: present, not a CA.
    let (_, bc) = tbs.get_extension::<BasicConstraints>().unwrap().expect("no basicConstraints");
    assert!(!bc.ca, "a workload credential must not be a CA");
    assert_eq!(bc.path_len_constraint, None);

    // EKU: TLS server and client.
    let (_, eku) = tbs.get_extension::<ExtendedKeyUsage>().unwrap().expect("no extendedKeyUsage");
    assert!(eku.0.contains(&ID_KP_SERVER_AUTH), "EKU lacks serverAuth: {:?}", eku.0);
    assert!(eku.0.contains(&ID_KP_CLIENT_AUTH), "EKU lacks clientAuth: {:?}", eku.0);

    // The key is the workload's, as a P-384 SubjectPublicKeyInfo.
    let spki = tbs.subject_public_key_info();
    assert_eq!(spki.algorithm.oid, ID_EC_PUBLIC_KEY);
    let curve = spki.algorithm.parameters.as_ref().expect("no curve parameter").decode_as::<ObjectIdentifier>();
    assert_eq!(curve.unwrap(), SECP384R1);
    assert_eq!(spki.subject_public_key.raw_bytes(), s.public_key.as_slice(), "the credential is for another key");
    // ...so what the workload signs verifies under the credential's key.
    let in_cert = p384::ecdsa::VerifyingKey::from_sec1_bytes(spki.subject_public_key.raw_bytes()).unwrap();
    let proof: Signature = s.key.sign(b"tls handshake transcript");
    in_cert.verify(b"tls handshake transcript", &proof).expect("the workload's signature under the credential key");

    // Issued and signed by the issuer's CA.
    let ca = s.issuer.ca().unwrap().certificate();
    assert_eq!(tbs.issuer(), ca.tbs_certificate().subject());
    assert_eq!(cert.signature_algorithm().oid, oids::ECDSA_WITH_SHA384);
    assert_eq!(tbs.signature().oid, oids::ECDSA_WITH_SHA384);
    let signature = Signature::from_der(cert.signature().as_bytes().unwrap()).unwrap();
    s.issuer.ca().unwrap().verifying_key().verify(&tbs.to_der().unwrap(), &signature).expect("CA signature");
    let (_, aki) = tbs.get_extension::<AuthorityKeyIdentifier>().unwrap().expect("no authorityKeyIdentifier");
    let (_, ca_ski) = ca.tbs_certificate().get_extension::<SubjectKeyIdentifier>().unwrap().expect("CA has no SKI");
    assert_eq!(aki.key_identifier.as_ref(), Some(&ca_ski.0));

    // Validity: the configured lifetime (to the second) and it holds now.
    let validity = tbs.validity();
    let not_before = validity.not_before.to_system_time();
    let not_after = validity.not_after.to_system_time();
    let span = not_after.duration_since(not_before).expect("notAfter before notBefore");
    assert!(span <= LIFETIME + Duration::from_secs(2), "validity {span:?} exceeds the 1 h lifetime");
    assert!(span + Duration::from_secs(2) >= LIFETIME, "validity {span:?} is shorter than the 1 h lifetime");
    assert!(not_before <= after, "notBefore is in the future");
    assert!(before <= not_after && SystemTime::now() <= not_after, "already expired");

    // Marked as simulated, critical (a standard verifier refuses it unless told), naming the
    // platform; under the project's arc, not the documentation arc.
    let oids = oids::Oids::default();
    assert!(!oids.arc.starts_with(oids::DOCUMENTATION_ARC));
    let sim = extension(&cert, &oids.simulated_tee);
    assert!(sim.critical, "the simulated-TEE extension must be critical");
    assert_eq!(Utf8StringRef::from_der(sim.extn_value.as_bytes()).unwrap().as_str(), "sim-snp");

    // Carries the digest of exactly this evidence.
    let digest = extension(&cert, &oids.evidence_sha384);
    assert!(!digest.critical);
    assert_eq!(OctetString::from_der(digest.extn_value.as_bytes()).unwrap().as_bytes(), evidence_digest);

    // The VMPL the report was made at (0: no paravisor below the simulated launch).
    let vmpl = extension(&cert, &oids.vmpl);
    assert!(!vmpl.critical);
    assert_eq!(u32::from_der(vmpl.extn_value.as_bytes()).unwrap(), 0);

    // Nothing else: every extension is one the profile decided on.
    let mut got: Vec<String> = tbs.extensions().unwrap().iter().map(|e| e.extn_id.to_string()).collect::<Vec<_>>();
    got.sort();
    let mut want: Vec<String> = [
        "2.5.29.14", // subjectKeyIdentifier
        "2.5.29.35", // authorityKeyIdentifier
        "2.5.29.19", // basicConstraints
        "2.5.29.15", // keyUsage
        "2.5.29.37", // extKeyUsage
        "2.5.29.17", // subjectAltName
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(
        [oids.evidence_sha384, oids.simulated_tee, oids.policy_binding, oids.vmpl, oids.log_entry]
            .map(|oid| oid.to_string()),
    )
    .collect();
    want.sort();
    assert_eq!(got, want);

    // An independent parser agrees.
    let ca_pem = s.dir.path().join("ca.pem");
    let cert_pem = s.dir.path().join("cert.pem");
    fs::write(&ca_pem, s.issuer.ca().unwrap().certificate_pem()).unwrap();
    fs::write(&cert_pem, &issued.certificate_pem).unwrap();
    let (ca_pem, cert_pem) = (ca_pem.to_str().unwrap(), cert_pem.to_str().unwrap());
    // Not told about the simulated TEE, openssl refuses the critical extension it does not know.
    let refused = openssl(&["verify", "-x509_strict", "-CAfile", ca_pem, cert_pem]);
    let said = format!("{}{}", String::from_utf8_lossy(&refused.stdout), String::from_utf8_lossy(&refused.stderr));
    assert!(!refused.status.success() && said.contains("unhandled critical extension"), "{said}");
    for purpose in [None, Some("sslclient"), Some("sslserver")] {
        let mut args = vec!["verify", "-x509_strict", "-ignore_critical", "-CAfile", ca_pem];
        if let Some(p) = purpose {
            args.extend(["-purpose", p]);
        }
        args.push(cert_pem);
        let out = openssl(&args);
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains(": OK"),
            "openssl {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = openssl(&["x509", "-in", cert_pem, "-noout", "-ext", "subjectAltName"]);
    assert!(out.status.success(), "openssl x509 failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("Subject Alternative Name"))
        .skip(1)
        .flat_map(|l| l.split(','))
        .collect();
    assert_eq!(names.iter().map(|n| n.trim()).collect::<Vec<_>>(), [format!("URI:{WORKLOAD_ID}")], "{text}");
}

// ---------------------------------------------------------------------------------------------
// 2. Freshness
// ---------------------------------------------------------------------------------------------

/// The workload's AF_L2 refusing `error`.
fn stale(error: FreshnessError) -> Rejection {
    Rejection::Freshness { workload: WORKLOAD_ID.into(), level: "AF_L2", error }
}

#[test]
fn each_issuance_is_distinct_and_each_nonce_single_use() {
    let mut s = Setup::new();
    let (nonce1, report1) = s.fresh();
    let (nonce2, report2) = s.fresh();
    assert_eq!(nonce1.len(), NONCE_LEN);
    assert_ne!(nonce1, nonce2, "two challenges gave the same nonce");
    let first = s.issue(&nonce1, &report1).unwrap();
    let second = s.issue(&nonce2, &report2).unwrap();
    assert_ne!(first.serial_hex, second.serial_hex, "two credentials share a serial number");
    assert_ne!(first.certificate_der, second.certificate_der);
    assert_ne!(first.appraisal.verified.evidence_sha384, second.appraisal.verified.evidence_sha384);

    // Replaying an accepted bundle.
    let replay = s.reject(&nonce1, &report1);
    assert_eq!(replay, stale(FreshnessError::Replayed));
    assert_actionable(&replay, &["nonce", "replay"]);

    // A nonce the issuer never gave out, with evidence honestly bound to it.
    let forged = vec![0x42; NONCE_LEN];
    let report = report_for(&s.psp, s.bound(&forged));
    let unchecked =
        FreshnessError::WeakerThanRequired { required: FreshnessLevel::Nonce, found: "no issuer nonce or epoch" };
    assert_eq!(s.reject(&forged, &report), stale(unchecked));

    // A rejected appraisal uses the nonce up too: the good evidence for it is then too late.
    // (Issue 14: only once appraisal begins, on well-formed evidence — a truncated report is
    // refused before the nonce is spent, so the nonce survives it.)
    let (nonce3, report3) = s.fresh();
    let mut truncated = report3.clone();
    truncated.pop();
    assert!(matches!(snp_error(&s.reject(&nonce3, &truncated)), Some(SnpError::Malformed(_))));
    let mut forged = report3.clone();
    forged[0x50] ^= 1; // signed content (REPORT_DATA): the signature no longer verifies
    assert!(snp_error(&s.reject(&nonce3, &forged)).is_some());
    assert_eq!(s.reject(&nonce3, &report3), stale(FreshnessError::Replayed));
}

// ---------------------------------------------------------------------------------------------
// 3. The simulator is trusted only when configured
// ---------------------------------------------------------------------------------------------

#[test]
fn simulated_evidence_needs_the_sim_root_configured() {
    let mut s = Setup::build(false);
    let (nonce, report) = s.fresh();
    let rejection = s.reject(&nonce, &report);
    assert_eq!(rejection, Rejection::Evidence(EvidenceRejection::SimulationNotAccepted));
    assert_actionable(&rejection, &["simulated TEE", "not accepted", "--platform sim"]);

    // Labelling the same evidence as hardware does not get it through either.
    let nonce = s.nonce();
    let report = report_for(&s.psp, s.bound(&nonce));
    let (pk, en) = (s.public_key.clone(), s.endorsements.clone());
    let bundle = EvidenceBundle {
        platform: Platform::Snp,
        evidence: &report,
        public_key: &pk,
        nonce: &nonce,
        endorsements: &en,
        target: TARGET,
        csr: Some(&s.csr),
    };
    let rejection = issue(&mut s.issuer, bundle).unwrap_err();
    assert_eq!(rejection, Rejection::Evidence(EvidenceRejection::UnsupportedPlatform(Platform::Snp)));
    assert_actionable(&rejection, &["Snp", "cannot be appraised"]);
}

// ---------------------------------------------------------------------------------------------
// 4. Every signed bit is authenticated (Verifier layer)
// ---------------------------------------------------------------------------------------------

/// One report from the simulated chip and its endorsements, for the Verifier-level tests.
struct Signed {
    _setup: Setup,
    report: Vec<u8>,
    endorsements: Vec<Certificate>,
    root: Certificate,
}

fn signed() -> Signed {
    let mut s = Setup::new();
    let (_, report) = s.fresh();
    let endorsements = s.endorsement_certs();
    let root = s.psp.root().clone();
    Signed { _setup: s, report, endorsements, root }
}

/// The error `verify_report` must give for a one-bit flip at `offset` of `report` (`None`:
/// the byte is not authenticated and the report still verifies).
fn expected_flip_error(report: &[u8], flipped: &[u8], offset: usize) -> Option<SnpError> {
    let word = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    match offset {
        o if o < offset::VERSION + 4 => {
            // A known or newer version is read by the fields the verifier knows (issue 15
            // item 5), so the flip fails the signature; an older one is refused for its version.
            let version = word(flipped, offset::VERSION);
            if SUPPORTED_VERSIONS.contains(&version) || version > twi_verifier::snp::NEWEST_REPORT_VERSION {
                Some(SnpError::BadSignature)
            } else {
                Some(SnpError::OldReportVersion(version))
            }
        }
        o if (offset::SIGNATURE_ALGO..offset::SIGNATURE_ALGO + 4).contains(&o) => {
            Some(SnpError::SignatureAlgorithm(word(flipped, offset::SIGNATURE_ALGO)))
        }
        o if (offset::CHIP_ID..offset::CHIP_ID + 64).contains(&o) => Some(SnpError::ChipMismatch {
            vcek: hex(&report[offset::CHIP_ID..offset::CHIP_ID + 64]),
            report: hex(&flipped[offset::CHIP_ID..offset::CHIP_ID + 64]),
        }),
        o if o < offset::SIGNATURE_RESERVED => Some(SnpError::BadSignature),
        _ => None,
    }
}

/// Flips one bit at each of `offsets` and checks `verify_report`'s verdict, on all cores.
fn check_flips(s: &Signed, offsets: &[usize]) -> Duration {
    let start = Instant::now();
    let now = SystemTime::now();
    on_all_cores(offsets, |&offset| {
        let flipped = flipped(&s.report, offset);
        let got = verify_report(&flipped, &s.endorsements, &s.root, now);
        let want = expected_flip_error(&s.report, &flipped, offset);
        match (&got, &want) {
            (Ok(_), None) => {}
            (Err(SnpError::Malformed(_)), Some(SnpError::Malformed(_))) => {}
            (Err(e), Some(w)) if e == w => {}
            (Ok(_), Some(w)) => panic!("flipping byte {offset:#05x} went unnoticed (expected {w:?})"),
            _ => panic!("flipping byte {offset:#05x}: got {got:?}, expected {want:?}"),
        }
    });
    start.elapsed()
}

/// Signed bytes and R/S: everything that must be authenticated.
const AUTHENTICATED: std::ops::Range<usize> = 0..offset::SIGNATURE_RESERVED;
/// The reserved tail of the signature area: not covered by the signature.
const UNAUTHENTICATED: std::ops::Range<usize> = offset::SIGNATURE_RESERVED..REPORT_SIZE;

#[test]
fn unmodified_report_verifies() {
    let s = signed();
    assert_eq!(AUTHENTICATED.len(), 0x2A0 + 144);
    let report = verify_report(&s.report, &s.endorsements, &s.root, SystemTime::now()).unwrap();
    assert_eq!(report.measurement, LAUNCH_DIGEST);
}

/// Every byte of the signed region and of R and S, one bit each (bit `offset % 8`): none of
/// the 816 flips may verify, and each fails for the reason that byte's field implies.
/// Each call verifies the whole chain too (4 ECDSA P-384 verifications): 15-29 s in a debug
/// build on 2 cores (depending on load), 3 s in release; well under a minute, so it always runs.
#[test]
fn bit_flips_in_authenticated_bytes_are_all_rejected() {
    let s = signed();
    let offsets: Vec<usize> = AUTHENTICATED.collect();
    let took = check_flips(&s, &offsets);
    eprintln!("{} authenticated offsets checked in {took:?}", offsets.len());
}

/// The reserved bytes after R and S: flipping one still verifies (they are not authenticated).
/// Every 8th byte and both ends (the issuer-level test below changes all of them at once).
#[test]
fn bit_flips_in_unsigned_tail_still_verify() {
    let s = signed();
    let mut offsets: Vec<usize> = UNAUTHENTICATED.step_by(8).chain([REPORT_SIZE - 1]).collect();
    offsets.dedup();
    let took = check_flips(&s, &offsets);
    eprintln!("{} unauthenticated offsets checked in {took:?}", offsets.len());
}

/// The bytes after R and S are not signed: changing them leaves a report that verifies, and
/// the issuer accepts it (with a different evidence digest).
#[test]
fn unsigned_signature_tail_is_not_authenticated() {
    let mut s = Setup::new();
    let (nonce, report) = s.fresh();
    let mut altered = report.clone();
    for b in &mut altered[UNAUTHENTICATED] {
        *b = 0xA5;
    }
    let certs = s.endorsement_certs();
    assert!(verify_report(&altered, &certs, s.psp.root(), SystemTime::now()).is_ok());
    let issued = s.issue(&nonce, &altered).expect("the unsigned tail is not checked");
    assert_ne!(issued.appraisal.verified.evidence_sha384, <[u8; 48]>::from(Sha384::digest(&report)));
}

/// ECDSA signatures are malleable: with (r, s) valid, so is (r, n - s). The signed content is
/// unchanged, but the host can present a second byte string for the same report, so the
/// evidence digest in a credential identifies the bytes shown, not the report.
#[test]
fn high_s_twin_of_the_signature_is_accepted() {
    let mut s = Setup::new();
    let (nonce, report) = s.fresh();
    let mut parsed = AttestationReport::parse(&report).unwrap();
    let signature = Signature::from_slice(&parsed.signature.to_big_endian_rs().unwrap()).unwrap();
    let twin = Signature::from_scalars(signature.r().to_bytes(), (-*signature.s()).to_bytes()).unwrap();
    assert_ne!(twin, signature);
    parsed.signature = EcdsaP384Signature::from_big_endian_rs(&twin.to_bytes().into());
    let twin_report = parsed.to_bytes().to_vec();
    assert_eq!(twin_report[..SIGNED_LEN], report[..SIGNED_LEN]);
    assert_ne!(twin_report, report);
    let issued = s.issue(&nonce, &twin_report).expect("the high-S twin verifies");
    assert_ne!(issued.appraisal.verified.evidence_sha384, <[u8; 48]>::from(Sha384::digest(&report)));
}

#[test]
fn endorsements_must_be_valid_now() {
    let s = signed();
    let not_after = s.root.tbs_certificate().validity().not_after.to_system_time();
    for when in [SystemTime::UNIX_EPOCH + Duration::from_secs(86_400), not_after + Duration::from_secs(86_400)] {
        match verify_report(&s.report, &s.endorsements, &s.root, when) {
            Err(SnpError::Chain(ChainError::Expired(..))) => {}
            other => panic!("verification at {when:?} gave {other:?}, expected an expired chain"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Rejections through the Credential Authority's ask
// ---------------------------------------------------------------------------------------------

#[test]
fn report_bound_to_another_nonce() {
    let mut s = Setup::new();
    let (nonce1, report1) = s.fresh();
    let nonce2 = s.nonce();
    let rejection = s.reject(&nonce2, &report1);
    let expected = hex(&s.bound(&nonce2));
    let actual = hex(&s.bound(&nonce1));
    let mismatch = EvidenceRejection::ReportDataMismatch { expected: expected.clone(), actual: actual.clone() };
    assert_eq!(rejection, Rejection::Evidence(mismatch));
    assert_actionable(&rejection, &["REPORTDATA", "TACRA binding", "freshness element", &expected, &actual]);
}

#[test]
fn report_bound_to_another_key() {
    let mut s = Setup::new();
    let (nonce, report) = s.fresh();
    let other = sec1(&SigningKey::try_generate().unwrap());
    let endorsements = s.endorsements.clone();
    let rejection = s.issue_with(&nonce, &report, &other, &endorsements).unwrap_err();
    // The CSR (for the bound key) names another key than the evidence says it certifies.
    assert_eq!(rejection, Rejection::Evidence(EvidenceRejection::CsrKeyMismatch), "{rejection:?}");
    assert_actionable(&rejection, &["certification request", "another key"]);
}

/// The workload can bind any 97 bytes starting 0x04; a point that is not on the curve must be
/// refused as the client's error, not as an issuer failure.
#[test]
fn off_curve_public_key_is_a_bad_public_key() {
    let mut s = Setup::new();
    let nonce = s.nonce();
    let mut bogus = s.public_key.clone();
    bogus[96] ^= 1; // (x, y+1) is not on P-384
    assert!(p384::PublicKey::from_sec1_bytes(&bogus).is_err());
    let report = report_for(&s.psp, s.bound(&nonce));
    let endorsements = s.endorsements.clone();
    let rejection = s.issue_with(&nonce, &report, &bogus, &endorsements).unwrap_err();
    assert_eq!(rejection, Rejection::Evidence(EvidenceRejection::BadPublicKey));
}

#[test]
fn endorsements_from_another_chip() {
    let mut s = Setup::new();
    let other_dir = tempfile::tempdir().unwrap();
    let other = SimPsp::load_or_create(other_dir.path()).unwrap();
    let other_endorsements = other.endorsements().unwrap();
    let public_key = s.public_key.clone();

    // A whole other chip (its own report and chain), under a root this issuer does not trust.
    let nonce = s.nonce();
    let report = report_for(&other, s.bound(&nonce));
    let rejection = s.issue_with(&nonce, &report, &public_key, &other_endorsements).unwrap_err();
    match snp_error(&rejection) {
        Some(SnpError::Chain(ChainError::BadSignature(who))) => assert!(who.contains("SEV-Sim"), "{who}"),
        other => panic!("expected the other ASK's signature to fail, got {other:?}"),
    }
    assert_actionable(&rejection, &["endorsement chain", "does not verify"]);

    // Our chip's report with the other chip's endorsements.
    let (nonce, report) = s.fresh();
    let rejection = s.issue_with(&nonce, &report, &public_key, &other_endorsements).unwrap_err();
    assert!(matches!(snp_error(&rejection), Some(SnpError::Chain(ChainError::BadSignature(_)))), "{rejection:?}");

    // The other chip's VCEK presented under our ASK.
    let (nonce, report) = s.fresh();
    let mixed = vec![other_endorsements[0].clone(), s.endorsements[1].clone()];
    let rejection = s.issue_with(&nonce, &report, &public_key, &mixed).unwrap_err();
    match snp_error(&rejection) {
        Some(SnpError::Chain(ChainError::BadSignature(who))) => assert!(who.contains("VCEK"), "{who}"),
        other => panic!("expected the other VCEK's signature to fail, got {other:?}"),
    }
}

#[test]
fn endorsements_in_any_order_and_missing_ones() {
    let mut s = Setup::new();
    let public_key = s.public_key.clone();
    let [vcek, ask] = <[Vec<u8>; 2]>::try_from(s.endorsements.clone()).unwrap();

    // A host's certificate table is keyed by GUID, not ordered: [ASK, VCEK] is read leaf first.
    let (nonce, report) = s.fresh();
    s.issue_with(&nonce, &report, &public_key, &[ask.clone(), vcek.clone()]).expect("[ASK, VCEK] is accepted");
    // Two leaves (the VCEK twice): not a path, refused as given.
    let (nonce, report) = s.fresh();
    let twice = [vcek.clone(), vcek.clone(), ask.clone()];
    let rejection = s.issue_with(&nonce, &report, &public_key, &twice).unwrap_err();
    assert!(matches!(snp_error(&rejection), Some(SnpError::Chain(_))), "[VCEK, VCEK, ASK]: {rejection:?}");

    let mut attempt = |endorsements: Vec<Vec<u8>>| {
        let (nonce, report) = s.fresh();
        s.issue_with(&nonce, &report, &public_key, &endorsements).unwrap_err()
    };

    let rejection = attempt(vec![]);
    assert_eq!(snp_error(&rejection), Some(&SnpError::MissingEndorsements));
    assert_actionable(&rejection, &["VCEK and ASK", "missing", "host must supply"]);

    let rejection = attempt(vec![vcek.clone()]);
    assert!(
        matches!(snp_error(&rejection), Some(SnpError::Chain(ChainError::IssuerMismatch { .. }))),
        "[VCEK] alone: {rejection:?}"
    );
    assert_actionable(&rejection, &["names issuer"]);

    // The ASK alone chains to the root; the report's signature then fails under the ASK key.
    let rejection = attempt(vec![ask.clone()]);
    assert_eq!(snp_error(&rejection), Some(&SnpError::BadSignature), "[ASK] alone");
    assert_actionable(&rejection, &["does not verify under the VCEK"]);

    let rejection = attempt(vec![b"not a certificate".to_vec(), ask.clone()]);
    assert_eq!(snp_error(&rejection), Some(&SnpError::Chain(ChainError::NotDer("endorsement"))));
    assert_actionable(&rejection, &["not DER X.509"]);

    let rejection = attempt(vec![vcek, ask, vec![]]);
    assert_eq!(snp_error(&rejection), Some(&SnpError::Chain(ChainError::NotDer("endorsement"))));
}

#[test]
fn wrong_report_sizes() {
    let mut s = Setup::new();
    for len in [REPORT_SIZE - 1, REPORT_SIZE + 1, 0] {
        let (nonce, mut report) = s.fresh();
        report.resize(len, 0);
        let rejection = s.reject(&nonce, &report);
        match snp_error(&rejection) {
            Some(SnpError::Malformed(why)) => {
                assert!(why.contains(&len.to_string()) && why.contains("1184"), "{why}")
            }
            other => panic!("a {len}-byte report: expected Malformed, got {other:?}"),
        }
        assert!(rejection.to_string().starts_with("SEV-SNP report rejected: the report is malformed"));
    }
}

/// The Malformed message should be the ReportError's sentence, not its Debug form.
#[test]
fn wrong_report_size_message_is_prose() {
    let mut s = Setup::new();
    let (nonce, mut report) = s.fresh();
    report.pop();
    let rejection = s.reject(&nonce, &report);
    assert_actionable(&rejection, &["1183 bytes", "expected 1184"]);
}

#[test]
fn resigning_helper_is_faithful() {
    let mut s = Setup::new();
    let (nonce, report) = s.fresh();
    // ECDSA here is deterministic (RFC 6979): re-signing unchanged content gives the same bytes.
    assert_eq!(resign(&s.psp_dir(), &report, |_| {}), report);
    s.issue(&nonce, &report).unwrap();
}

#[test]
fn debug_policy() {
    let mut s = Setup::new();
    let (nonce, report) = s.fresh();
    let debug = resign(&s.psp_dir(), &report, |r| r.policy.0 |= 1 << 19);
    assert!(AttestationReport::parse(&debug).unwrap().policy.debug());
    let rejection = s.reject(&nonce, &debug);
    assert_eq!(snp_error(&rejection), Some(&SnpError::DebugPolicy));
    assert_actionable(&rejection, &["policy", "debug", "bit 19"]);
}

#[test]
fn chip_id_mismatch() {
    let mut s = Setup::new();
    let (nonce, report) = s.fresh();
    let chip = AttestationReport::parse(&report).unwrap().chip_id;
    let mut other_chip = chip;
    other_chip[0] ^= 0xFF;
    let moved = resign(&s.psp_dir(), &report, |r| r.chip_id = other_chip);
    let rejection = s.reject(&nonce, &moved);
    assert_eq!(snp_error(&rejection), Some(&SnpError::ChipMismatch { vcek: hex(&chip), report: hex(&other_chip) }));
    assert_actionable(&rejection, &["VCEK certifies chip", &hex(&chip), &hex(&other_chip)]);

    // A masked chip id (MASK_CHIP_KEY) cannot be checked against a VCEK either.
    let (nonce, report) = s.fresh();
    let masked = resign(&s.psp_dir(), &report, |r| r.chip_id = [0; 64]);
    assert!(matches!(snp_error(&s.reject(&nonce, &masked)), Some(SnpError::ChipMismatch { .. })));
}

#[test]
fn signature_algorithm_other_than_ecdsa_p384() {
    let mut s = Setup::new();
    let (nonce, report) = s.fresh();
    let other = resign(&s.psp_dir(), &report, |r| r.signature_algo = 2);
    let rejection = s.reject(&nonce, &other);
    assert_eq!(snp_error(&rejection), Some(&SnpError::SignatureAlgorithm(2)));
    assert_actionable(&rejection, &["signature algorithm 2", "ECDSA P-384"]);
}

#[test]
fn altered_report_is_rejected_through_the_issuer() {
    let mut s = Setup::new();
    let (nonce, report) = s.fresh();
    let mut altered = report.clone();
    altered[offset::MEASUREMENT] ^= 1;
    let rejection = s.reject(&nonce, &altered);
    assert_eq!(snp_error(&rejection), Some(&SnpError::BadSignature));
    assert_actionable(&rejection, &["signature does not verify", "altered"]);
}
