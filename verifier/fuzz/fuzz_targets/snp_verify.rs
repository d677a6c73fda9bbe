//! The SEV-SNP verifier on hostile input: the first 1184 bytes are the report, the rest the
//! VCEK certificate (DER), under the real Milan ASK and ARK. Nothing may panic, and nothing
//! but the real report and VCEK may verify.
#![no_main]

mod samples;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use twi_verifier::chain::{Cert, split_certificates};
use twi_verifier::snp::{self, SnpConfig, SnpTrust};

struct Fixture {
    chain: Vec<Cert>,
    report: Vec<u8>,
    vcek: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| Fixture {
        chain: split_certificates(&samples::read("snp/certs/ask_ark_milan.pem"))
            .unwrap()
            .iter()
            .map(|d| Cert::from_der(d, "chain").unwrap())
            .collect(),
        report: samples::read("snp/s1_virtee_milan_v2/report_milan.bin"),
        vcek: samples::read("snp/s1_virtee_milan_v2/vcek_milan.der"),
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let (report, vcek) = data.split_at(data.len().min(1184));
    let Ok(vcek_cert) = Cert::from_der(vcek, "VCEK") else {
        // Still run the report through the verifier with the real VCEK.
        let certs: Vec<Cert> =
            std::iter::once(Cert::from_der(&f.vcek, "VCEK").unwrap()).chain(f.chain.iter().cloned()).collect();
        let verdict = snp::appraise(report, &certs, &[], &SnpConfig { trust: SnpTrust::amd(), policy: Default::default() }, samples::at("2025-06-01T00:00:00Z"));
        if verdict.is_ok() {
            assert_eq!(&report[..0x330], &f.report[..0x330], "a forged report verified");
        }
        return;
    };
    let certs: Vec<Cert> = std::iter::once(vcek_cert).chain(f.chain.iter().cloned()).collect();
    let config = SnpConfig { trust: SnpTrust::amd(), policy: Default::default() };
    if snp::appraise(report, &certs, &[], &config, samples::at("2025-06-01T00:00:00Z")).is_ok() {
        assert_eq!(&report[..0x330], &f.report[..0x330], "a forged report verified");
        assert_eq!(vcek, &f.vcek[..], "a forged VCEK verified");
    }
});
