//! Hostile collateral: arbitrary bytes as dcap-qvl JSON collateral, as a PCS TCB info or QE
//! identity, and as the JSON the TCB evaluation reads (matched against fixed platform facts,
//! so the matching code sees every shape of TCB level). Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twi_verifier::tdx::Collateral;
use twi_verifier::tdx::tcb::{PlatformFacts, QeFacts, QeIdentity, TcbInfo, evaluate};

fuzz_target!(|data: &[u8]| {
    let _ = Collateral::from_dcap_qvl_json(data, std::path::Path::new("fuzz"));
    let _ = twi_verifier::tdx::crl_from_any(data, "fuzz");
    let tee = [6, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let facts = PlatformFacts {
        fmspc: [0xb0, 0xc0, 0x6f, 0, 0, 0],
        pce_id: [0, 0],
        sgx_tcb_components: [3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0],
        pce_svn: 11,
        tee_tcb_svn: &tee,
        tee_tcb_svn_2: Some(&tee),
        mr_signer_seam: &[0; 48],
        seam_attributes: &[0; 8],
    };
    let qe = QeFacts { mr_signer: &[0xdc; 32], isv_prod_id: 2, misc_select: 0, attributes: &[0x11; 16], isv_svn: 6 };
    // One input, read as TCB info followed by a QE identity (split at the first NUL).
    let (a, b) = data.split_at(data.iter().position(|&c| c == 0).unwrap_or(data.len()));
    if let (Ok(tcb), Ok(qe_id)) = (serde_json::from_slice::<TcbInfo>(a), serde_json::from_slice::<QeIdentity>(b.get(1..).unwrap_or(&[]))) {
        let _ = evaluate(&tcb, &qe_id, &facts, &qe);
    }
    if let Ok(tcb) = serde_json::from_slice::<TcbInfo>(data) {
        let qe_id: QeIdentity = serde_json::from_str(QE).unwrap();
        let _ = evaluate(&tcb, &qe_id, &facts, &qe);
    }
});

const QE: &str = r#"{"id":"TD_QE","version":2,"issueDate":"2025-06-19T10:32:27Z","nextUpdate":"2025-07-19T10:32:27Z","tcbEvaluationDataNumber":17,"miscselect":"00000000","miscselectMask":"FFFFFFFF","attributes":"11000000000000000000000000000000","attributesMask":"FBFFFFFFFFFFFFFF0000000000000000","mrsigner":"DCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDC","isvprodid":2,"tcbLevels":[{"tcb":{"isvsvn":4},"tcbDate":"2024-03-13T00:00:00Z","tcbStatus":"UpToDate"}]}"#;
