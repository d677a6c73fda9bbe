//! The runtime below an SVSM uses the VMPCK of its own VMPL and asks for reports at that VMPL
//! (the SVSM keeps VMPCK0; Linux's sev-guest uses `vmpck_id = snp_vmpl` likewise). A firmware
//! stand-in here holds the launch's VMPCK2 and answers the guest's sealed request as the PSP
//! would, with a report whose VMPL the test chooses.

use twi_attester::snp::guest_msg::{MAX_MESSAGE, Responder, Vmpck};
use twi_attester::snp::msg::{ReportRequest, ReportResponse, STATUS_SUCCESS};
use twi_attester::snp::report::{REPORT_SIZE, offset};
use twi_attester::snp::secrets::SECRETS_PAGE_SIZE;
use twi_runtime::tee::snp::{Answer, DoorbellError, Exit, SnpDoorbell, SnpError, SnpGuest};

const VMPCK2: [u8; 32] = [0x22; 32];

/// A secrets page as an SVSM gives its guest: VMPCK0 wiped, VMPCK2 present.
fn svsm_secrets_page() -> [u8; SECRETS_PAGE_SIZE] {
    let mut page = [0u8; SECRETS_PAGE_SIZE];
    page[..4].copy_from_slice(&3u32.to_le_bytes());
    page[0x60..0x80].copy_from_slice(&VMPCK2);
    page
}

/// The PSP for VMPCK2: reports with `report_vmpl` in their VMPL field.
struct Psp {
    responder: Responder,
    report_vmpl: u32,
    asked_vmpl: Option<u32>,
}

impl SnpDoorbell for Psp {
    fn guest_request(&mut self, sealed: &[u8], _: Exit) -> Result<Answer, DoorbellError> {
        let mut plain = vec![0u8; MAX_MESSAGE];
        let (header, n) = self.responder.open_request(sealed, &mut plain).map_err(|_| DoorbellError::Refused(1))?;
        assert_eq!(header.vmpck_id, 2, "sealed under VMPCK2, and says so");
        let request = ReportRequest::parse(&plain[..n]).expect("MSG_REPORT_REQ");
        self.asked_vmpl = Some(request.vmpl);
        let mut report = vec![0u8; REPORT_SIZE];
        report[..4].copy_from_slice(&3u32.to_le_bytes());
        report[offset::VMPL..offset::VMPL + 4].copy_from_slice(&self.report_vmpl.to_le_bytes());
        report[offset::REPORT_DATA..offset::REPORT_DATA + 64].copy_from_slice(&request.report_data);
        let mut payload = vec![0u8; 0x20 + REPORT_SIZE];
        ReportResponse::encode(STATUS_SUCCESS, &report, &mut payload).unwrap();
        let mut sealed = vec![0u8; MAX_MESSAGE];
        let len = self.responder.seal_response(&header, &payload, &mut sealed).unwrap();
        sealed.truncate(len);
        Ok(Answer::sealed(sealed))
    }
}

fn psp(report_vmpl: u32) -> Psp {
    Psp { responder: Responder::new(Vmpck::new(VMPCK2), 2), report_vmpl, asked_vmpl: None }
}

#[test]
fn below_an_svsm_the_guest_uses_its_own_vmpck_and_asks_for_its_own_vmpl() {
    let page = svsm_secrets_page();
    // VMPCK0 is the SVSM's: the runtime at VMPL0's path finds none.
    assert_eq!(SnpGuest::from_secrets_page(&page).err(), Some(SnpError::NoSecrets));
    let mut guest = SnpGuest::from_secrets_page_at(&page, 2).expect("VMPCK2");
    assert_eq!(guest.vmpl(), 2);
    let mut doorbell = psp(2);
    let report = guest.report(&[7; 64], &mut doorbell).expect("a VMPL 2 report");
    assert_eq!(doorbell.asked_vmpl, Some(2), "MSG_REPORT_REQ names the guest's VMPL");
    assert_eq!(&report[offset::VMPL..offset::VMPL + 4], &2u32.to_le_bytes());
}

#[test]
fn a_report_for_another_vmpl_is_refused() {
    let mut guest = SnpGuest::from_secrets_page_at(&svsm_secrets_page(), 2).unwrap();
    let refused = guest.report(&[7; 64], &mut psp(0));
    assert_eq!(refused, Err(SnpError::VmplMismatch { asked: 2, reported: 0 }));
    // No VMPCK for VMPL 3 on this page.
    assert_eq!(SnpGuest::from_secrets_page_at(&svsm_secrets_page(), 3).err(), Some(SnpError::NoSecrets));
}

use twi_attester::svsm::attest::{self as svsm_attest, SERVICES_MANIFEST_GUID};
use twi_runtime::tee::svsm::{SvsmAttestation, SvsmDoorbell, SvsmError, attest};

/// An SVSM stand-in: COCONUT's answer (an empty services manifest, its own VMPL0 report binding
/// SHA-512(nonce || manifest)), which `tamper` may alter.
struct Svsm {
    tamper: fn(&mut SvsmAttestation),
}

impl SvsmDoorbell for Svsm {
    fn attest_services(&mut self, nonce: &[u8; 64]) -> Result<SvsmAttestation, SvsmError> {
        let mut manifest = SERVICES_MANIFEST_GUID.to_vec();
        manifest.extend(24u32.to_le_bytes());
        manifest.extend(0u32.to_le_bytes());
        let mut report = vec![0u8; REPORT_SIZE];
        report[..4].copy_from_slice(&3u32.to_le_bytes());
        report[offset::REPORT_DATA..offset::REPORT_DATA + 64]
            .copy_from_slice(&svsm_attest::report_data(nonce, &manifest));
        let mut answer = SvsmAttestation { report, manifest, certificates: None };
        (self.tamper)(&mut answer);
        Ok(answer)
    }
}

#[test]
fn the_svsms_report_must_bind_the_nonce_and_manifest_at_vmpl0() {
    let nonce = [9u8; 64];
    let honest = attest(&mut Svsm { tamper: |_| {} }, &nonce).expect("COCONUT's answer");
    assert_eq!(honest.manifest.len(), 24);
    type Tamper = fn(&mut SvsmAttestation);
    let cases: [(Tamper, SvsmError); 4] = [
        (|a| a.report[offset::REPORT_DATA] ^= 1, SvsmError::Binding),
        (|a| a.report[offset::VMPL] = 2, SvsmError::Vmpl(2)),
        (|a| a.report.truncate(100), SvsmError::Report),
        (|a| a.manifest[20] = 1, SvsmError::Attest(svsm_attest::AttestError::Manifest("more entries than fit"))),
    ];
    for (tamper, why) in cases {
        assert_eq!(attest(&mut Svsm { tamper }, &nonce), Err(why));
    }
}
