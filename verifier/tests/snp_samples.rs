//! The SEV-SNP verifier against attestation reports that real AMD hardware produced, with the
//! certificates AMD's KDS issued for them.
//!
//! Samples (read at run time from `tests/data`; `provenance.json`
//! there pins each file's sha256, checked below):
//! * s1 — virtee/sev `tests/certs_data/report_milan.hex` (+ `vcek_milan.der`,
//!   `cert_chain_milan`): Milan, report v2, VCEK.
//! * s2 — google/go-sev-guest `verify/testdata/attestation.bin` (+ `vcek.testcer`): Milan, v2,
//!   VCEK, launched with debugging allowed.
//! * s4 — confidential-containers/trustee `deps/verifier/test_data/snp/test-vlek-report.bin`
//!   (+ `test-vlek.der`): Milan, v3, VLEK (AWS), VMPL 1.
//! * AMD ASK/ASVK/ARK chains — google/go-sev-guest `verify/trust/*.pem`.
//!
//! `expected.json` (an independent verifier's results) gives the fields and verdicts compared
//! here. Every certificate has expired or will, so each test passes its own "now".

mod common;

use common::{at, expected, flipped, on_all_cores, provenance, read};
use twi_attester::snp::report::{REPORT_SIZE, SIGNED_LEN, TcbLayout, offset};
use twi_verifier::chain::{Cert, ChainError, split_certificates};
use twi_verifier::snp::{
    self, Anchor, PolicyViolation, Product, SnpConfig, SnpError, SnpHint, SnpPolicy, SnpTrust, VekKind, VerifiedVek,
};

/// Inside every sample certificate's validity (the VLEK's: 2024-12-10 .. 2025-12-10).
const NOW: &str = "2025-06-01T00:00:00Z";

struct Sample {
    key: &'static str,
    report: &'static str,
    vek: &'static str,
    chain: &'static str,
    kind: VekKind,
    /// What the verifier must be told to accept the sample (s2 allows debugging).
    policy: SnpPolicy,
}

fn samples() -> Vec<Sample> {
    vec![
        Sample {
            key: "s1",
            report: "snp/s1_virtee_milan_v2/report_milan.bin",
            vek: "snp/s1_virtee_milan_v2/vcek_milan.der",
            chain: "snp/s1_virtee_milan_v2/cert_chain_milan",
            kind: VekKind::Vcek,
            policy: SnpPolicy::default(),
        },
        Sample {
            key: "s2",
            report: "snp/s2_gosevguest_milan_v2/attestation.bin",
            vek: "snp/s2_gosevguest_milan_v2/vcek.testcer",
            chain: "snp/certs/ask_ark_milan.pem",
            kind: VekKind::Vcek,
            policy: SnpPolicy { allow_debug: true, ..SnpPolicy::default() },
        },
        Sample {
            key: "s4",
            report: "snp/s4_trustee_milan_vlek_v3/test-vlek-report.bin",
            vek: "snp/s4_trustee_milan_vlek_v3/test-vlek.der",
            chain: "snp/certs/asvk_ark_milan_vlek.pem",
            kind: VekKind::Vlek,
            policy: SnpPolicy::default(),
        },
    ]
}

impl Sample {
    fn report(&self) -> Vec<u8> {
        read(self.report)
    }

    /// `[VEK, intermediate, ARK]`, leaf first.
    fn certs(&self) -> Vec<Cert> {
        let mut certs = vec![Cert::from_der(&read(self.vek), "VEK").unwrap()];
        for der in split_certificates(&read(self.chain)).unwrap() {
            certs.push(Cert::from_der(&der, "chain").unwrap());
        }
        assert_eq!(certs.len(), 3, "{}: VEK + intermediate + ARK", self.key);
        certs
    }

    fn config(&self) -> SnpConfig {
        SnpConfig { trust: SnpTrust::amd(), policy: self.policy.clone() }
    }

    fn vek(&self) -> VerifiedVek {
        snp::verify_endorsements(&self.certs(), &[], &SnpTrust::amd(), at(NOW)).unwrap()
    }

    fn expected(&self) -> serde_json::Value {
        expected()["snp"][self.key].clone()
    }
}

/// Every sample file is the one provenance.json names (sha256).
#[test]
fn samples_are_the_published_files() {
    for s in samples() {
        for file in [s.vek, s.chain] {
            provenance(file);
        }
        if s.key == "s1" {
            // The .bin is derived (hex-decoded) from the pinned .hex.
            provenance("snp/s1_virtee_milan_v2/report_milan.hex");
            let text = read("snp/s1_virtee_milan_v2/report_milan.hex");
            let decoded = hex::decode(String::from_utf8(text).unwrap().split_whitespace().collect::<String>());
            assert_eq!(decoded.unwrap(), read(s.report));
        } else {
            provenance(s.report);
        }
    }
}

/// The built-in pins are the SHA-384 of the SubjectPublicKeyInfo of the ARKs AMD publishes:
/// Milan and Genoa from the sample chains, Turin from virtee/sev's built-in copy.
#[test]
fn built_in_roots_are_amds_arks() {
    let ark_of = |pem: &[u8]| {
        let ders = split_certificates(pem).unwrap();
        Cert::from_der(ders.last().unwrap(), "ARK").unwrap()
    };
    let arks = [
        (Product::Milan, ark_of(&read("snp/certs/ask_ark_milan.pem"))),
        (Product::Milan, ark_of(&read("snp/certs/asvk_ark_milan_vlek.pem"))),
        (Product::Genoa, ark_of(&read("snp/certs/ask_ark_genoa.pem"))),
        (Product::Turin, ark_of(sev::certs::snp::builtin::turin::ARK)),
    ];
    let trust = SnpTrust::amd();
    for (product, ark) in &arks {
        assert_eq!(ark.common_name(), format!("ARK-{product}"));
        assert_eq!(trust.anchor(ark), Some(&Anchor::Amd(*product)), "{product}");
        twi_verifier::chain::check_root(ark, at(NOW)).unwrap();
    }
    for (product, fp) in twi_verifier::snp::AMD_ARK_SPKI_SHA384 {
        assert!(arks.iter().any(|(p, ark)| *p == product && ark.spki_sha384() == fp), "{product} pin has no ARK");
    }
    // The Turin chain (ASK from virtee/sev too) verifies with this crate's RSA-PSS code.
    let ask = Cert::from_der(&split_certificates(sev::certs::snp::builtin::turin::ASK).unwrap()[0], "ASK").unwrap();
    twi_verifier::chain::verify_path(&[ask], &arks[3].1, at(NOW)).unwrap();
}

/// Each sample verifies, with every field expected.json lists and every check it made.
#[test]
fn known_answers() {
    for s in samples() {
        let bytes = s.report();
        let want = s.expected();
        let a = snp::appraise(&bytes, &s.certs(), &[], &s.config(), at(NOW))
            .unwrap_or_else(|e| panic!("{}: rejected: {e}", s.key));
        let r = &a.report;
        assert_eq!(a.signer, s.kind);
        assert_eq!(a.anchor, Anchor::Amd(Product::Milan));
        assert_eq!(a.product, Some(Product::Milan));
        assert_eq!(a.tcb_layout, TcbLayout::MilanGenoa);
        assert_eq!(want["product"], "Milan");
        assert_eq!(want["kind"], s.kind.name());

        let fields = want["fields"].as_object().unwrap();
        for (name, value) in fields {
            let got = match name.as_str() {
                "version" | "guest_svn" | "vmpl" | "signature_algo" | "signing_key" => {
                    serde_json::json!(match name.as_str() {
                        "version" => r.version,
                        "guest_svn" => r.guest_svn,
                        "vmpl" => r.vmpl,
                        "signature_algo" => r.signature_algo,
                        _ => (r.key_info.0 >> 2) & 7,
                    })
                }
                "policy" => format!("{:#x}", r.policy.0).into(),
                "platform_info" => format!("{:#x}", r.platform_info).into(),
                "key_info" => format!("{:#x}", r.key_info.0).into(),
                "family_id" => hex::encode(r.family_id).into(),
                "image_id" => hex::encode(r.image_id).into(),
                "report_data" => hex::encode(r.report_data).into(),
                "measurement" => hex::encode(r.measurement).into(),
                "host_data" => hex::encode(r.host_data).into(),
                "id_key_digest" => hex::encode(r.id_key_digest).into(),
                "author_key_digest" => hex::encode(r.author_key_digest).into(),
                "report_id" => hex::encode(r.report_id).into(),
                "report_id_ma" => hex::encode(r.report_id_ma).into(),
                "chip_id" => hex::encode(r.chip_id).into(),
                "current_tcb" => hex::encode(r.current_tcb.to_le_bytes()).into(),
                "reported_tcb" => hex::encode(r.reported_tcb.to_le_bytes()).into(),
                "committed_tcb" => hex::encode(r.committed_tcb.to_le_bytes()).into(),
                "launch_tcb" => hex::encode(r.launch_tcb.to_le_bytes()).into(),
                "cpuid_fam_mod_step" => hex::encode([r.cpuid_fam_id, r.cpuid_mod_id, r.cpuid_step]).into(),
                "current_build_minor_major" => hex::encode([r.current_build, r.current_minor, r.current_major]).into(),
                "committed_build_minor_major" => {
                    hex::encode([r.committed_build, r.committed_minor, r.committed_major]).into()
                }
                "sig_reserved_area_all_zero" => bytes[offset::SIGNATURE_RESERVED..].iter().all(|&b| b == 0).into(),
                other => panic!("{}: expected.json field {other} is not compared", s.key),
            };
            assert_eq!(&got, value, "{}: {name}", s.key);
        }

        // The independent verifier's checks, each restated against this verifier.
        let vek = s.vek();
        let certs = s.certs();
        for (check, value) in want["checks"].as_object().unwrap() {
            assert_eq!(value, true, "{}: expected.json check {check} is not true", s.key);
            match check.as_str() {
                "length_1184" => assert_eq!(bytes.len(), REPORT_SIZE),
                "report_signature" => {}
                "signature_algo_is_1_ecdsa_p384_sha384" => assert_eq!(r.signature_algo, 1),
                "r_s_high_24_bytes_zero" => assert!(r.signature.to_big_endian_rs().is_ok()),
                "key_info_signing_key_matches" => assert_eq!(a.signer, s.kind),
                "vek_is_p384" => assert!(
                    p384::PublicKey::try_from(der::referenced::OwnedToRef::owned_to_ref(certs[0].spki())).is_ok()
                ),
                "ark_self_signed_pss" => twi_verifier::chain::verify_link(&certs[2], &certs[2]).unwrap(),
                "ask_signed_by_ark_pss" => twi_verifier::chain::verify_link(&certs[1], &certs[2]).unwrap(),
                "vek_signed_by_ask_pss" => twi_verifier::chain::verify_link(&certs[0], &certs[1]).unwrap(),
                "issuer_cn_is_SEV-Milan" => assert_eq!(certs[1].common_name(), "SEV-Milan"),
                "issuer_cn_is_SEV-VLEK-Milan" => assert_eq!(certs[1].common_name(), "SEV-VLEK-Milan"),
                "vcek_hwID_equals_chip_id" => assert_eq!(vek.extensions.hw_id.as_deref(), Some(&r.chip_id[..])),
                "vek_tcb_ext_equals_reported_tcb" => {
                    assert_eq!(vek.extensions.tcb(TcbLayout::MilanGenoa).unwrap(), r.reported_tcb)
                }
                "vlek_has_cspId" => assert!(vek.extensions.csp_id.is_some() && vek.extensions.hw_id.is_none()),
                other => panic!("{}: expected.json check {other} is not restated", s.key),
            }
        }
        assert_eq!(vek.kind, Some(s.kind));
        assert_eq!(vek.chain, [certs[0].common_name(), certs[1].common_name(), "ARK-Milan".to_string()]);
        // No CRL was given: said so.
        assert!(a.warnings.contains(&snp::SnpWarning::RevocationNotChecked), "{:?}", a.warnings);
    }
}

#[test]
fn sample_specific_claims() {
    let [s1, s2, s4] = <[Sample; 3]>::try_from(samples()).ok().unwrap();
    // s1, s2: version 2 reports name no CPU; the chain names Milan.
    let a = snp::appraise(&s1.report(), &s1.certs(), &[], &s1.config(), at(NOW)).unwrap();
    assert!(a.warnings.contains(&snp::SnpWarning::ProductFromChain(Product::Milan)));
    assert_eq!(s1.vek().extensions.product_name.as_deref(), Some("Milan-B0"));
    // s2 was launched with debugging allowed (policy 0xb0000): refused by default.
    let rejection = snp::appraise(&s2.report(), &s2.certs(), &[], &SnpConfig::default(), at(NOW)).unwrap_err();
    assert_eq!(rejection.error, SnpError::DebugPolicy);
    let a = snp::appraise(&s2.report(), &s2.certs(), &[], &s2.config(), at(NOW)).unwrap();
    assert!(a.warnings.contains(&snp::SnpWarning::DebugAllowed));
    let t = a.report.reported_tcb.parts(TcbLayout::MilanGenoa);
    // go-sev-guest's KDS URL for it: blSPL=2&teeSPL=0&snpSPL=5&ucodeSPL=68.
    assert_eq!((t.bootloader, t.tee, t.snp, t.microcode), (2, 0, 5, 68));
    // s4: a VLEK for AWS; VMPL 1; v3 names its CPU (Milan).
    let vek = s4.vek();
    assert_eq!(vek.extensions.csp_id.as_deref(), Some("CN=cc-us-east-2.amazonaws.com"));
    assert_eq!(vek.extensions.product_name.as_deref(), Some("Milan"));
    let a = snp::appraise(&s4.report(), &s4.certs(), &[], &s4.config(), at(NOW)).unwrap();
    assert_eq!(a.report.vmpl, 1);
    assert!(!a.warnings.iter().any(|w| matches!(w, snp::SnpWarning::ProductFromChain(_))));
    let vmpl0 = SnpConfig { policy: SnpPolicy { vmpl: Some(0), ..SnpPolicy::default() }, ..s4.config() };
    let rejection = snp::appraise(&s4.report(), &s4.certs(), &[], &vmpl0, at(NOW)).unwrap_err();
    assert_eq!(rejection.error, SnpError::Policy(PolicyViolation::Vmpl { required: 0, actual: 1 }));
}

/// The named negative cases of expected.json, each reproduced.
#[test]
fn expected_negative_cases() {
    for s in samples() {
        let bytes = s.report();
        let certs = s.certs();
        let config = s.config();
        let now = at(NOW);
        let verdict = |report: &[u8], certs: &[Cert]| snp::appraise(report, certs, &[], &config, now);
        let cert_flip = |i: usize, at: usize| {
            let mut c = certs.clone();
            c[i] = match Cert::from_der(&flipped(certs[i].der(), at), "flipped") {
                Ok(cert) => cert,
                Err(_) => return Err(()), // no longer DER: rejected before verification
            };
            verdict(&bytes, &c).map(|_| ()).map_err(|_| ())
        };
        for (case, value) in s.expected()["negative"].as_object().unwrap() {
            assert_eq!(value, true);
            let rejected = |r: Result<(), ()>| assert!(r.is_err(), "{}: {case}: accepted", s.key);
            let flip_report = |at: usize| verdict(&flipped(&bytes, at), &certs).map(|_| ()).map_err(|_| ());
            match case.as_str() {
                c if c.starts_with("flip reserved byte 0x400") => {
                    verdict(&flipped(&bytes, 0x400), &certs).unwrap_or_else(|e| panic!("{}: {case}: {e}", s.key));
                }
                c if c.starts_with("flip ") && c.contains(" byte 0x") => {
                    let hex_at = c.split(" byte 0x").nth(1).unwrap().split_whitespace().next().unwrap();
                    rejected(flip_report(usize::from_str_radix(hex_at, 16).unwrap()));
                }
                "truncated report (1183 bytes) -> rejected" => {
                    let e = verdict(&bytes[..REPORT_SIZE - 1], &certs).unwrap_err();
                    assert!(e.to_string().contains("1183 bytes, expected 1184"), "{e}");
                }
                "ASK cert: flip byte in TBS -> chain fails" => rejected(cert_flip(1, 200)),
                "VEK cert: flip byte in TBS -> chain fails" => rejected(cert_flip(0, 200)),
                "VEK cert: flip byte in signature -> chain fails" => rejected(cert_flip(0, certs[0].der().len() - 10)),
                "wrong ARK (Genoa ARK for Milan ASK or vice versa) -> chain fails" => {
                    let genoa = split_certificates(&read("snp/certs/ask_ark_genoa.pem")).unwrap();
                    let genoa_ark = Cert::from_der(&genoa[1], "ARK-Genoa").unwrap();
                    let e = verdict(&bytes, &[certs[0].clone(), certs[1].clone(), genoa_ark.clone()]).unwrap_err();
                    assert!(matches!(e.error, SnpError::Chain(ChainError::IssuerMismatch { .. })), "{e}");
                    // The Genoa ASK under the Milan ARK: the names differ too.
                    let genoa_ask = Cert::from_der(&genoa[0], "SEV-Genoa").unwrap();
                    assert!(verdict(&bytes, &[certs[0].clone(), genoa_ask, certs[2].clone()]).is_err());
                }
                other => panic!("{}: negative case {other:?} is not reproduced", s.key),
            }
        }
    }
}

/// Every byte of the signed region and of R and S, flipped one at a time: each flip is
/// rejected. Every byte after R and S (reserved, unsigned) flipped: still accepted. The
/// chain is verified once and reused ([`VerifiedVek`]); all 1184 offsets of all samples run.
#[test]
fn every_report_byte_flip() {
    for s in samples() {
        let bytes = s.report();
        let vek = s.vek();
        let offsets: Vec<usize> = (0..REPORT_SIZE).collect();
        on_all_cores(&offsets, |&at| {
            let verdict = vek.appraise(&flipped(&bytes, at), &s.policy);
            if at < offset::SIGNATURE_RESERVED {
                assert!(verdict.is_err(), "{}: flipping byte {at:#05x} went unnoticed", s.key);
            } else {
                verdict.unwrap_or_else(|e| panic!("{}: unsigned byte {at:#05x} changed the verdict: {e}", s.key));
            }
        });
        assert_eq!(offset::SIGNATURE_RESERVED, SIGNED_LEN + 144);
    }
}

/// Every byte of every certificate of every chain (VCEKs, the VLEK, ASK, ASVK, ARK),
/// flipped one at a time and run through the whole endorsement check: each is rejected.
/// Certificates that several samples share are flipped once.
#[test]
fn every_certificate_byte_flip() {
    let mut seen = std::collections::HashSet::new();
    let mut jobs = Vec::new();
    for s in samples() {
        let certs = s.certs();
        for i in 0..certs.len() {
            if seen.insert(certs[i].der().to_vec()) {
                jobs.extend((0..certs[i].der().len()).map(|at| (s.key, certs.clone(), i, at)));
            }
        }
    }
    assert!(jobs.len() > 8000, "{} flips", jobs.len());
    let trust = SnpTrust::amd();
    let now = at(NOW);
    on_all_cores(&jobs, |(key, certs, i, at)| {
        let mut c = certs.clone();
        let Ok(cert) = Cert::from_der(&flipped(certs[*i].der(), *at), "flipped") else { return };
        c[*i] = cert;
        if let Ok(vek) = snp::verify_endorsements(&c, &[], &trust, now) {
            panic!("{key}: flipping byte {at} of certificate {i} ({}) went unnoticed", vek.certificate.common_name());
        }
    });
}

#[test]
fn validity_windows() {
    for s in samples() {
        let certs = s.certs();
        let config = s.config();
        let bytes = s.report();
        // Before the ARK existed, and long after the VEK expired.
        for when in ["2019-01-01T00:00:00Z", "2031-01-01T00:00:00Z"] {
            let e = snp::appraise(&bytes, &certs, &[], &config, at(when)).unwrap_err();
            assert!(matches!(e.error, SnpError::Chain(ChainError::Expired(..))), "{}: {when}: {e}", s.key);
            assert!(e.to_string().contains("is not valid at the verification time"), "{e}");
        }
    }
    // The VLEK lived one year: today it has expired.
    let s4 = &samples()[2];
    let e = snp::appraise(&s4.report(), &s4.certs(), &[], &s4.config(), at("2026-01-01T00:00:00Z")).unwrap_err();
    match &e.error {
        SnpError::Chain(ChainError::Expired(who, _, until)) => {
            assert!(who.contains("SEV-VLEK"), "{who}");
            assert!(until.starts_with("2025-12-10"), "{until}");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn wrong_or_missing_pieces() {
    let [s1, _, s4] = <[Sample; 3]>::try_from(samples()).ok().unwrap();
    let now = at(NOW);
    let certs = s1.certs();
    let bytes = s1.report();
    let config = s1.config();
    // Without the ARK, and no configured root above the ASK.
    let e = snp::appraise(&bytes, &certs[..2], &[], &config, now).unwrap_err();
    assert!(e.to_string().contains("ARK"), "{e}");
    // ...but a deployment that configured the Milan ARK itself needs only VCEK + ASK.
    // (only self-signed roots may be configured: the KDS file holds the ASK too)
    let e = SnpTrust::from_pem(&read("snp/certs/ask_ark_milan.pem")).unwrap_err();
    assert!(matches!(e, ChainError::NotSelfSigned(ref who) if who.contains("SEV-Milan")), "{e}");
    let ark_pem = split_certificates(&read("snp/certs/ask_ark_milan.pem")).unwrap()[1].clone();
    let configured = SnpConfig { trust: SnpTrust::from_pem(&ark_pem).unwrap(), ..s1.config() };
    let a = snp::appraise(&bytes, &certs[..2], &[], &configured, now).unwrap();
    assert_eq!(a.anchor, Anchor::Configured { subject: "ARK-Milan".into(), product: Some(Product::Milan) });
    // A configured root replaces the built-in ones: the Genoa ARK alone does not admit Milan.
    let genoa_ark = split_certificates(&read("snp/certs/ask_ark_genoa.pem")).unwrap()[1].clone();
    let genoa_only = SnpConfig { trust: SnpTrust::from_pem(&genoa_ark).unwrap(), ..s1.config() };
    let e = snp::appraise(&bytes, &certs, &[], &genoa_only, now).unwrap_err();
    assert!(matches!(e.error, SnpError::Chain(ChainError::UntrustedRoot { .. })), "{e}");
    // No certificates at all.
    assert_eq!(snp::appraise(&bytes, &[], &[], &config, now).unwrap_err().error, SnpError::MissingEndorsements);
    // The VLEK report with the s1 VCEK: the wrong kind of key, said before any signature.
    let e = snp::appraise(&s4.report(), &certs, &[], &config, now).unwrap_err();
    assert_eq!(
        e.error,
        SnpError::SignerMismatch { report: "VLEK", certificate: "SEV-VCEK".into(), certificate_kind: "VCEK" }
    );
    // s1's report under s2's VCEK: another chip.
    let s2_vcek = Cert::from_der(&read("snp/s2_gosevguest_milan_v2/vcek.testcer"), "VCEK").unwrap();
    let e = snp::appraise(&bytes, &[s2_vcek, certs[1].clone(), certs[2].clone()], &[], &config, now).unwrap_err();
    assert!(matches!(e.error, SnpError::ChipMismatch { .. }), "{e}");
    assert!(e.to_string().contains("the VCEK certifies chip 3ac3fe21"), "{e}");
    // The ASK passed as if it were the VCEK: an RSA key cannot have signed a report.
    let e = snp::appraise(&bytes, &certs[1..], &[], &config, now).unwrap_err();
    assert_eq!(e.error, SnpError::VekNotP384("SEV-Milan".into()));
    // Certificates in the wrong order.
    let e = snp::appraise(&bytes, &[certs[1].clone(), certs[0].clone(), certs[2].clone()], &[], &config, now);
    assert!(matches!(e.unwrap_err().error, SnpError::Chain(ChainError::NotCa(_))));
}

#[test]
fn truncated_and_oversized_inputs() {
    let s1 = &samples()[0];
    let bytes = s1.report();
    let certs = s1.certs();
    let config = s1.config();
    for len in [0, 1, 4, SIGNED_LEN, REPORT_SIZE - 1, REPORT_SIZE + 1, 2 * REPORT_SIZE, 1 << 20] {
        let mut input = bytes.clone();
        input.resize(len, 0);
        let e = snp::appraise(&input, &certs, &[], &config, at(NOW)).unwrap_err();
        assert!(matches!(e.error, SnpError::Malformed(_)), "{len}: {e}");
        assert!(e.to_string().contains(&format!("{len} bytes, expected 1184")), "{e}");
    }
    // Every truncation of every certificate: not DER, or rejected; never a panic.
    for cert in &certs {
        for len in 0..cert.der().len() {
            assert!(Cert::from_der(&cert.der()[..len], "truncated").is_err(), "truncated to {len}");
        }
        let mut long = cert.der().to_vec();
        long.push(0);
        assert!(Cert::from_der(&long, "oversized").is_err());
    }
}

/// A signature failure names the likely cause when the certificate is for another TCB.
#[test]
fn vcek_for_another_tcb_is_named() {
    let s1 = &samples()[0];
    let mut bytes = s1.report();
    // Claim another REPORTED_TCB: the signature fails (the byte is signed), and the hint
    // says the VCEK's TCB differs, with the KDS URL of the VCEK the claim would need.
    bytes[offset::REPORTED_TCB + 7] = 0x74;
    let e = snp::appraise(&bytes, &s1.certs(), &[], &s1.config(), at(NOW)).unwrap_err();
    assert_eq!(e.error, SnpError::BadSignature);
    match &e.hints[..] {
        [SnpHint::VekForAnotherTcb { vek, report, url: Some(url) }] => {
            assert!(vek.contains("ucode=115") && report.contains("ucode=116"), "{vek} / {report}");
            assert!(url.starts_with("https://kdsintf.amd.com/vcek/v1/Milan/d49554ec") && url.ends_with("ucodeSPL=116"));
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("fetch its VCEK from https://kdsintf.amd.com/"), "{e}");
}

/// virtee/sev (pure-Rust backend) gives the same verdict on the same samples: each report
/// verifies under its chain, and a flip of any signed byte fails in both.
#[test]
fn same_verdicts_as_virtee_sev() {
    use sev::certs::snp::{Certificate as SevCert, Chain, Verifiable, ca};
    use sev::firmware::guest::AttestationReport as SevReport;
    use sev::parser::ByteParser;
    for s in samples() {
        let bytes = s.report();
        let certs = s.certs();
        let sev_cert = |c: &Cert| SevCert::from_der(c.der()).unwrap();
        let chain =
            Chain { ca: ca::Chain { ark: sev_cert(&certs[2]), ask: sev_cert(&certs[1]) }, vek: sev_cert(&certs[0]) };
        let theirs =
            |b: &[u8]| SevReport::from_bytes(b).map_err(|_| ()).and_then(|r| (&chain, &r).verify().map_err(|_| ()));
        theirs(&bytes).unwrap_or_else(|_| panic!("{}: virtee/sev rejects the sample", s.key));
        snp::appraise(&bytes, &certs, &[], &s.config(), at(NOW)).unwrap();
        for at_ in [
            offset::POLICY,
            offset::MEASUREMENT,
            offset::REPORT_DATA,
            offset::CHIP_ID,
            SIGNED_LEN - 1,
            offset::SIGNATURE_S,
        ] {
            let bad = flipped(&bytes, at_);
            assert!(theirs(&bad).is_err(), "{}: virtee/sev accepts a flip at {at_:#x}", s.key);
            assert!(snp::appraise(&bad, &certs, &[], &s.config(), at(NOW)).is_err());
        }
    }
}

/// Each sample's VEK, intermediate and ARK, packed into the extended guest request's
/// certificate table as a hypervisor writes it (GHCB specification), come back out as the
/// endorsements that verify the report: the VCEK or VLEK first, then the ASK or ASVK, then the
/// ARK, which anchors the chain only because it is one of AMD's built-in roots.
#[test]
fn endorsements_from_a_certificate_table_verify_the_sample() {
    use twi_attester::snp::certs::{CertKind, encode};
    for s in samples() {
        let vek = read(s.vek);
        let chain = split_certificates(&read(s.chain)).unwrap();
        let kind = if s.kind == VekKind::Vlek { CertKind::Vlek } else { CertKind::Vcek };
        let mut table = vec![0u8; 16 * 1024];
        let len =
            encode(&[(kind, &vek[..]), (CertKind::Ask, &chain[0][..]), (CertKind::Ark, &chain[1][..])], &mut table)
                .unwrap();
        let endorsements = snp::endorsements_from_table(&table[..len]).unwrap();
        assert_eq!(endorsements, vec![vek.clone(), chain[0].clone(), chain[1].clone()], "{}", s.key);
        let certs: Vec<Cert> = endorsements.iter().map(|der| Cert::from_der(der, "table").unwrap()).collect();
        let a = snp::appraise(&s.report(), &certs, &[], &s.config(), at(NOW))
            .unwrap_or_else(|e| panic!("{}: rejected: {e}", s.key));
        assert_eq!(a.signer, s.kind);

        // A host that swaps in another root gets nowhere: the chain must verify up to it.
        let forged_root = split_certificates(&read("snp/certs/ask_ark_genoa.pem")).unwrap().remove(1);
        let len =
            encode(&[(kind, &vek[..]), (CertKind::Ask, &chain[0][..]), (CertKind::Ark, &forged_root[..])], &mut table)
                .unwrap();
        let certs: Vec<Cert> = snp::endorsements_from_table(&table[..len])
            .unwrap()
            .iter()
            .map(|der| Cert::from_der(der, "table").unwrap())
            .collect();
        assert!(snp::appraise(&s.report(), &certs, &[], &s.config(), at(NOW)).is_err(), "{}", s.key);

        // A table without the leaf, or without the intermediate, is refused with a reason.
        let len = encode(&[(CertKind::Ask, &chain[0][..])], &mut table).unwrap();
        let e = snp::endorsements_from_table(&table[..len]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the host's certificate table (extended guest request) is unusable: it holds neither a VCEK nor a VLEK"
        );
        let len = encode(&[(kind, &vek[..])], &mut table).unwrap();
        let e = snp::endorsements_from_table(&table[..len]).unwrap_err();
        assert!(e.to_string().ends_with("it holds no ASK (or ASVK)"), "{e}");
        let e = snp::endorsements_from_table(&[0xFF; 100]).unwrap_err();
        assert!(e.to_string().contains("no terminating zero entry"), "{e}");
    }
}

/// Through the common interface ([`Verifier`]): each sample gives the [`Verified`] fields an
/// issuer reads, equal to expected.json's; a refusal keeps its reason and hints.
#[test]
fn the_snp_verifier_behind_the_common_interface() {
    use sha2::Digest;
    use twi_verifier::snp::SnpVerifier;
    use twi_verifier::{Rejection, Tcb, Tee, Verifier};
    for s in samples() {
        let bytes = s.report();
        let want = &s.expected()["fields"];
        let endorsements: Vec<Vec<u8>> = s.certs().iter().map(|c| c.der().to_vec()).collect();
        let verifier: Box<dyn Verifier> = Box::new(SnpVerifier::new(s.config()));
        assert_eq!(verifier.tee(), Tee::Snp);
        let v = verifier.verify(&bytes, &endorsements, at(NOW)).unwrap_or_else(|e| panic!("{}: {e}", s.key));
        assert_eq!((v.tee, v.simulated), (Tee::Snp, false), "{}", s.key);
        assert_eq!(v.anchor, "AMD ARK-Milan (built in)");
        assert_eq!(hex::encode(v.measurement), want["measurement"], "{}", s.key);
        assert_eq!(hex::encode(v.report_data), want["report_data"], "{}", s.key);
        assert_eq!(hex::encode(&v.platform_id), want["chip_id"], "{}", s.key);
        assert_eq!(format!("{:#x}", v.policy), want["policy"], "{}", s.key);
        assert_eq!(v.vmpl.map(u64::from), want["vmpl"].as_u64(), "{}", s.key);
        assert_eq!(v.debug, s.key == "s2", "{}: only s2 allows debugging", s.key);
        match &v.tcb {
            Tcb::Snp { reported, layout } => {
                assert_eq!(hex::encode(reported.to_le_bytes()), want["reported_tcb"], "{}", s.key);
                assert_eq!(*layout, TcbLayout::MilanGenoa);
            }
            other => panic!("{}: {other:?}", s.key),
        }
        assert_eq!(v.evidence_sha384, <[u8; 48]>::from(sha2::Sha384::digest(&bytes)));
        assert_eq!(v.snp().unwrap().signer, s.kind);
        assert!(v.tdx().is_none());
        assert!(v.warnings().iter().any(|w| w.contains("revocation")), "{}: {:?}", s.key, v.warnings());
        // SEV-SNP has no RTMRs: there is no log to check.
        v.check_event_log(&[]).unwrap();
    }
    let s2 = &samples()[1];
    let endorsements: Vec<Vec<u8>> = s2.certs().iter().map(|c| c.der().to_vec()).collect();
    let strict = SnpVerifier::new(SnpConfig::default());
    match strict.verify(&s2.report(), &endorsements, at(NOW)) {
        Err(Rejection::Snp(r)) => assert_eq!(r.error, SnpError::DebugPolicy),
        other => panic!("{other:?}"),
    }
    let e = strict.verify(&s2.report(), &[vec![0x30, 0x00]], at(NOW)).unwrap_err();
    assert_eq!(e, Rejection::Snp(SnpError::Chain(ChainError::NotDer("endorsement")).into()));
    assert!(e.to_string().starts_with("SEV-SNP report rejected: "), "{e}");
}
