//! Arbitrary bytes as the certificate table of an SNP extended guest request (what a hostile
//! host writes into the guest's certificate pages). Parsing must never panic; an accepted
//! table yields entries inside the buffer, and re-encoding them gives a table that parses to
//! the same certificates.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twi_attester::snp::certs::{CertKind, CertTable, encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(table) = CertTable::parse(data) {
        assert!(table.used_len() <= data.len());
        let certs: Vec<(CertKind, &[u8])> = table.entries().map(|e| (e.kind, e.bytes)).collect();
        // Entries may share bytes in the input; the encoding packs them one after another.
        let needed = (certs.len() + 1) * 24 + certs.iter().map(|(_, c)| c.len()).sum::<usize>();
        let mut out = vec![0u8; needed];
        let n = encode(&certs, &mut out).expect("room for the same certificates");
        let again = CertTable::parse(&out[..n]).expect("re-encoded table parses");
        assert!(again.entries().map(|e| (e.kind, e.bytes)).eq(certs.iter().copied()));
    }
});
