//! Known-answer tests of the TDX quote layout against quotes that real Intel TDX hardware
//! produced. Read at run time from `tests/data` (a missing folder
//! fails the test). Sources (`provenance.json` there pins each file):
//! * t1 — Phala-Network/dcap-qvl `sample/tdx_quote` (v4; 70 zero bytes after the quote);
//! * t3 — google/go-tdx-guest `testing/testdata/tdx_prod_quote_SPR_E4.dat` (v4; 39 ASCII bytes
//!   after it);
//! * t8 — google/go-tdx-guest `testing/testdata/ccel/cos-113-tdx-quote.dat` (v4 from Google
//!   Cloud, in an 8000-byte buffer).
//!
//! Every field and offset is compared with `expected.json`, computed by an independent parser.

use serde_json::Value;
use twi_attester::tdx::quote::{INTEL_QE_VENDOR_ID, ParsedQuote, Quote};
use twi_testkit::samples::read;

const QUOTES: [(&str, &str); 3] = [
    ("t1", "tdx/t1_dcapqvl_v4/tdx_quote"),
    ("t3", "tdx/t3_gotdxguest_v4/tdx_prod_quote_SPR_E4.dat"),
    ("t8", "tdx/t8_gcp_v4_ccel/cos-113-tdx-quote.dat"),
];

fn h(b: &[u8]) -> Value {
    Value::String(hex::encode(b))
}

fn n(v: usize) -> Value {
    Value::from(v)
}

#[test]
fn sample_quotes_field_by_field() {
    let expected: Value = serde_json::from_slice(&read("expected.json")).unwrap();
    for (key, rel) in QUOTES {
        let bytes = read(rel);
        let want = &expected["tdx"][key];
        let p = ParsedQuote::parse(&bytes).unwrap_or_else(|e| panic!("{key}: {e}"));
        let q = &p.quote;

        let header = want["header"].as_object().unwrap();
        for (name, value) in header {
            let got = match name.as_str() {
                "version" => n(q.header.version.into()),
                "att_key_type" => n(q.header.att_key_type.into()),
                "tee_type" => Value::String(format!("{:#x}", q.header.tee_type)),
                "qe_vendor_id" => h(&q.header.qe_vendor_id),
                "user_data" => h(&q.header.user_data),
                "body_type" => n(if q.body.is_td15() { 3 } else { 2 }),
                other => panic!("{key}: header.{other} not compared"),
            };
            assert_eq!(&got, value, "{key}: header.{name}");
        }
        assert_eq!(q.header.qe_vendor_id, INTEL_QE_VENDOR_ID);

        // Offsets, found by pointer arithmetic into the input.
        let at = |s: &[u8]| s.as_ptr() as usize - bytes.as_ptr() as usize;
        let sig_data_off = p.signed.len() + 4;
        for (name, value) in want["layout"].as_object().unwrap() {
            let got = match name.as_str() {
                "body_off" => n(48),
                "signed_len" => n(p.signed.len()),
                "sig_data_off" => n(sig_data_off),
                "sig_data_len" => n(p.len - sig_data_off),
                "qe_report" => n(sig_data_off + 134),
                "qe_report_sig" => n(sig_data_off + 134 + 384),
                "qe_auth" => n(at(q.qe_auth_data)),
                "pck_pem" => n(at(q.pck_chain)),
                "quote_end" => n(p.len),
                "trailing_bytes" => n(bytes.len() - p.len),
                "pem_trailing_nul" => n(usize::from(q.pck_chain.last() == Some(&0))),
                other => panic!("{key}: layout.{other} not compared"),
            };
            assert_eq!(&got, value, "{key}: layout.{name}");
        }
        assert_eq!(&bytes[sig_data_off + 134..sig_data_off + 134 + 384], &q.qe_report[..]);

        let b = &q.body;
        for (name, value) in want["td"].as_object().unwrap() {
            let got = match name.as_str() {
                "tee_tcb_svn" => h(&b.tee_tcb_svn),
                "mrseam" => h(&b.mr_seam),
                "mrsignerseam" => h(&b.mr_signer_seam),
                "seam_attributes" => h(&b.seam_attributes),
                "td_attributes" => h(&b.td_attributes),
                "xfam" => h(&b.xfam),
                "mrtd" => h(&b.mr_td),
                "mrconfigid" => h(&b.mr_config_id),
                "mrowner" => h(&b.mr_owner),
                "mrownerconfig" => h(&b.mr_owner_config),
                "rtmr0" => h(&b.rtmr[0]),
                "rtmr1" => h(&b.rtmr[1]),
                "rtmr2" => h(&b.rtmr[2]),
                "rtmr3" => h(&b.rtmr[3]),
                "report_data" => h(&b.report_data),
                other => panic!("{key}: td.{other} not compared"),
            };
            assert_eq!(&got, value, "{key}: td.{name}");
        }

        let r = q.qe_report_body();
        for (name, value) in want["qe_report"].as_object().unwrap() {
            let got = match name.as_str() {
                "cpusvn" => h(&r.cpu_svn),
                "miscselect" => n(r.misc_select as usize),
                "attributes" => h(&r.attributes),
                "mrenclave" => h(&r.mr_enclave),
                "mrsigner" => h(&r.mr_signer),
                "isvprodid" => n(r.isv_prod_id.into()),
                "isvsvn" => n(r.isv_svn.into()),
                "report_data" => h(&r.report_data),
                other => panic!("{key}: qe_report.{other} not compared"),
            };
            assert_eq!(&got, value, "{key}: qe_report.{name}");
        }
        assert_eq!(h(q.qe_auth_data), want["qe_auth_data"], "{key}: qe_auth_data");
        assert!(q.pck_chain.starts_with(b"-----BEGIN CERTIFICATE-----"));

        // Encoding the parsed quote gives back its bytes exactly.
        let mut out = vec![0u8; p.len];
        assert_eq!(q.encode(&mut out), Ok(p.len));
        assert_eq!(out, &bytes[..p.len], "{key}: round trip");
        round_trip_is_identity(q);
    }
}

fn round_trip_is_identity(q: &Quote<'_>) {
    let mut out = vec![0u8; q.encoded_len()];
    let len = q.encode(&mut out).unwrap();
    assert_eq!(&ParsedQuote::parse(&out[..len]).unwrap().quote, q);
}

/// Truncated and oversized inputs: every prefix is an error (never a panic); anything after
/// the quote is ignored.
#[test]
fn truncations_and_trailing_bytes() {
    for (key, rel) in QUOTES {
        let bytes = read(rel);
        let len = ParsedQuote::parse(&bytes).unwrap().len;
        for cut in 0..len {
            assert!(ParsedQuote::parse(&bytes[..cut]).is_err(), "{key}: prefix of {cut} bytes parsed");
        }
        let mut long = bytes[..len].to_vec();
        long.extend(std::iter::repeat_n(0xA5, 100_000));
        assert_eq!(ParsedQuote::parse(&long).unwrap().len, len);
    }
}
