//! Arbitrary bytes through every certificate-level parser: DER/PEM splitting, the quote's
//! strict PEM chain, certificate bundles and the path built from them, certificates, CRLs, AMD's VCEK/VLEK extensions and Intel's PCK
//! extension. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twi_verifier::chain::{Cert, Crl, split_certificates};
use twi_verifier::snp::VekExtensions;
use twi_verifier::tdx::{PckExtensions, split_pck_chain};

fuzz_target!(|data: &[u8]| {
    let _ = split_certificates(data);
    let _ = split_pck_chain(data);
    if let Ok(certs) = twi_verifier::bundle::read_certificates(data, "fuzz") {
        let pool = twi_verifier::bundle::CertPool::new(certs);
        for leaf in pool.certs() {
            let _ = pool.path_from(leaf, &[]);
        }
    }
    let _ = Crl::from_der(data, "fuzz");
    if let Ok(cert) = Cert::from_der(data, "fuzz") {
        let _ = VekExtensions::parse(&cert).map(|e| (e.kind(&cert), e.tcb(twi_attester::snp::report::TcbLayout::Turin)));
        let _ = PckExtensions::parse(&cert);
        let _ = cert.common_name();
        let _ = twi_verifier::chain::verify_link(&cert, &cert);
        let _ = twi_verifier::chain::check_root(&cert, std::time::SystemTime::now());
    }
});
