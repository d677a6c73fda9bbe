//! The simulated SVSM against calls built with the guest's own encoders: what COCONUT serves,
//! and one negative per check it makes.

use std::time::SystemTime;

use twi_attester::snp::report::GuestView;
use twi_attester::svsm::attest::{AttestRequest, Location, NONCE_LEN, SERVICES_LEN};
use twi_attester::svsm::call::rax;
use twi_attester::svsm::core::{encode_pvalidate, query_protocol, query_protocol_answer};

use super::*;

const RAM: u64 = 64 << 20;
const REPORT_PAGE: u64 = 0xA0_0000;
const MANIFEST_PAGE: u64 = 0xA0_1000;

fn setup() -> (tempfile::TempDir, SimPsp, SimSvsm) {
    let dir = tempfile::tempdir().unwrap();
    let psp = SimPsp::load_or_create(dir.path()).unwrap();
    (dir, psp, SimSvsm::new(RAM))
}

/// A calling area with `call_pending` set and `request` in its buffer.
fn calling_area(request: &[u8]) -> Vec<u8> {
    let mut page = vec![0u8; caa::SIZE];
    page[caa::CALL_PENDING] = 1;
    page[caa::BUFFER..caa::BUFFER + request.len()].copy_from_slice(request);
    page
}

/// Makes the call; returns the registers and pages as the SVSM left them.
fn call(svsm: &mut SimSvsm, psp: &SimPsp, regs: Registers, pages: &[(u64, Vec<u8>)]) -> (Registers, Vec<Vec<u8>>) {
    let windows: Vec<Window<'_>> = pages.iter().map(|(gpa, b)| Window { gpa: *gpa, bytes: b }).collect();
    let mut bytes = vec![0u8; MAX_EXCHANGE];
    let len = Exchange::encode(&regs, &windows, &mut bytes).unwrap();
    let answer = svsm.call(psp, &bytes[..len]).unwrap();
    let decoded = Exchange::decode(&answer).unwrap();
    (decoded.regs, decoded.windows().iter().map(|w| w.bytes.to_vec()).collect())
}

fn regs(protocol: u32, call: u32, rcx: u64) -> Registers {
    Registers { rax: rax(protocol, call), rcx, ..Registers::default() }
}

fn pvalidate(svsm: &mut SimSvsm, psp: &SimPsp, entries: &[u64]) -> (CallResult, u16) {
    let mut request = vec![0u8; svsm_core::HEADER_LEN];
    request[..2].copy_from_slice(&(entries.len() as u16).to_le_bytes());
    for e in entries {
        request.extend(e.to_le_bytes());
    }
    let caa_page = calling_area(&request);
    let buffer = CALLING_AREA + caa::BUFFER as u64;
    let (out, pages) = call(svsm, psp, regs(protocol::CORE, svsm_core::PVALIDATE, buffer), &[(CALLING_AREA, caa_page)]);
    assert_eq!(pages[0][caa::CALL_PENDING], 0, "the SVSM clears call_pending");
    let next = u16::from_le_bytes([pages[0][caa::BUFFER + 2], pages[0][caa::BUFFER + 3]]);
    (CallResult::decode(out.rax), next)
}

const VALIDATE_4K: u64 = 0b100;
const VALIDATE_2M: u64 = 0b101;
const IGNORE_CF: u64 = 0b1000;

#[test]
fn pvalidate_validates_guest_memory_and_advances_next() {
    let (_dir, psp, mut svsm) = setup();
    let mut request = [0u8; caa::BUFFER_LEN];
    let entries = [PvalidateEntry { gpa: 0x40_0000, huge: true, validate: true }];
    let len = encode_pvalidate(&entries, &mut request).unwrap();
    let caa_page = calling_area(&request[..len]);
    let buffer = CALLING_AREA + caa::BUFFER as u64;
    let (out, _) =
        call(&mut svsm, &psp, regs(protocol::CORE, svsm_core::PVALIDATE, buffer), &[(CALLING_AREA, caa_page)]);
    assert_eq!(CallResult::decode(out.rax), CallResult::Success);
    assert!(svsm.is_validated(0x40_0000) && svsm.is_validated(0x5F_F000) && !svsm.is_validated(0x60_0000));
    assert_eq!(svsm.calls(), 1);
    // 4 KiB pages elsewhere; the header's `next` reaches `entries`.
    assert_eq!(
        pvalidate(&mut svsm, &psp, &[0x60_0000 | VALIDATE_4K, 0x60_1000 | VALIDATE_4K]),
        (CallResult::Success, 2)
    );
    // Rescinding a page makes it invalid again.
    assert_eq!(pvalidate(&mut svsm, &psp, &[0x60_1000]), (CallResult::Success, 1));
    assert!(!svsm.is_validated(0x60_1000));
}

#[test]
fn pvalidate_refuses_what_coconut_refuses() {
    let (_dir, psp, mut svsm) = setup();
    // Outside the guest's RAM, and the SVSM's own memory (`valid_phys_region`).
    assert_eq!(pvalidate(&mut svsm, &psp, &[RAM | VALIDATE_4K]).0, CallResult::InvalidAddress);
    assert_eq!(pvalidate(&mut svsm, &psp, &[SVSM_MEMORY.start | VALIDATE_2M]).0, CallResult::InvalidAddress);
    // A reserved bit, page size 2, a 2 MiB entry that is not 2 MiB aligned.
    assert_eq!(pvalidate(&mut svsm, &psp, &[0x1000 | 0x10 | VALIDATE_4K]).0, CallResult::InvalidParameter);
    assert_eq!(pvalidate(&mut svsm, &psp, &[0x1000 | 0b110]).0, CallResult::InvalidParameter);
    assert_eq!(pvalidate(&mut svsm, &psp, &[0x1000 | VALIDATE_2M]).0, CallResult::InvalidParameter);
    // No entries.
    assert_eq!(pvalidate(&mut svsm, &psp, &[]).0, CallResult::InvalidParameter);
    // PVALIDATE's own answers: unchanged (unless ignore-CF), and a size mismatch with the RMP.
    assert_eq!(pvalidate(&mut svsm, &psp, &[0x80_0000 | VALIDATE_4K]), (CallResult::Success, 1));
    assert_eq!(pvalidate(&mut svsm, &psp, &[0x80_0000 | VALIDATE_4K]).0, CallResult::Protocol(FAIL_UNCHANGED));
    assert_eq!(pvalidate(&mut svsm, &psp, &[0x80_0000 | VALIDATE_4K | IGNORE_CF]).0, CallResult::Success);
    assert_eq!(
        pvalidate(&mut svsm, &psp, &[0x80_0000 | VALIDATE_2M]).0,
        CallResult::Protocol(svsm_core::FAIL_SIZEMISMATCH)
    );
    // The first failure ends the call; `next` says how far it got.
    assert_eq!(
        pvalidate(&mut svsm, &psp, &[0xA0_0000 | VALIDATE_4K, RAM | VALIDATE_4K]),
        (CallResult::InvalidAddress, 1)
    );
    // RCX not 8-byte aligned.
    let caa_page = calling_area(&[1, 0, 0, 0, 0, 0, 0, 0]);
    let unaligned = regs(protocol::CORE, svsm_core::PVALIDATE, CALLING_AREA + 12);
    let (out, _) = call(&mut svsm, &psp, unaligned, &[(CALLING_AREA, caa_page)]);
    assert_eq!(CallResult::decode(out.rax), CallResult::InvalidParameter);
}

#[test]
fn unknown_protocols_and_calls_are_refused_with_their_codes() {
    let (_dir, psp, mut svsm) = setup();
    let page = || vec![(CALLING_AREA, calling_area(&[]))];
    let (out, _) = call(&mut svsm, &psp, regs(7, 0, 0), &page());
    assert_eq!(CallResult::decode(out.rax), CallResult::UnsupportedProtocol);
    let (out, _) = call(&mut svsm, &psp, regs(protocol::CORE, 99, 0), &page());
    assert_eq!(CallResult::decode(out.rax), CallResult::UnsupportedCall);
    let (out, _) = call(&mut svsm, &psp, regs(protocol::ATTEST, attest::ATTEST_SINGLE_SERVICE, 0), &page());
    assert_eq!(CallResult::decode(out.rax), CallResult::UnsupportedCall);
    // QUERY_PROTOCOL: core and attestation at version 1, nothing else.
    let (out, _) =
        call(&mut svsm, &psp, regs(protocol::CORE, svsm_core::QUERY_PROTOCOL, query_protocol(1, 1)), &page());
    assert_eq!((CallResult::decode(out.rax), query_protocol_answer(out.rcx)), (CallResult::Success, Some((1, 1))));
    let (out, _) =
        call(&mut svsm, &psp, regs(protocol::CORE, svsm_core::QUERY_PROTOCOL, query_protocol(2, 1)), &page());
    assert_eq!(query_protocol_answer(out.rcx), None);
    let (out, _) =
        call(&mut svsm, &psp, regs(protocol::CORE, svsm_core::QUERY_PROTOCOL, query_protocol(0, 2)), &page());
    assert_eq!(query_protocol_answer(out.rcx), None);
}

#[test]
fn the_calling_area_must_be_the_svsms_and_pending() {
    let (_dir, psp, mut svsm) = setup();
    // Without call_pending the SVSM takes no call: the registers come back as they were.
    let mut idle = calling_area(&[]);
    idle[caa::CALL_PENDING] = 0;
    let asked = regs(protocol::CORE, 99, 5);
    let (out, _) = call(&mut svsm, &psp, asked, &[(CALLING_AREA, idle)]);
    assert_eq!((out, svsm.calls()), (asked, 0));
    // Another page than the calling area the secrets page names.
    let windows = [Window { gpa: CALLING_AREA + 0x1000, bytes: &calling_area(&[]) }];
    let mut bytes = vec![0u8; MAX_EXCHANGE];
    let len = Exchange::encode(&asked, &windows, &mut bytes).unwrap();
    let refusal = svsm.call(&psp, &bytes[..len]).unwrap_err();
    assert_eq!(refusal, SvsmRefusal::CallingArea { expected: CALLING_AREA, found: CALLING_AREA + 0x1000 });
    assert!(refusal.to_string().contains("SVSM_CAA"), "{refusal}");
    // Garbage is refused, never a panic.
    assert!(matches!(svsm.call(&psp, &[0u8; 7]), Err(SvsmRefusal::Exchange(_))));
}

fn attest_request(nonce_gpa: u64, report_size: u32) -> AttestRequest {
    AttestRequest {
        report: Location { gpa: REPORT_PAGE, size: report_size },
        nonce: Location { gpa: nonce_gpa, size: NONCE_LEN as u32 },
        manifest: Location { gpa: MANIFEST_PAGE, size: 0x1000 },
        certificates: Location::default(),
        service: None,
    }
}

/// SVSM_ATTEST_SERVICES with the request and nonce in the calling area's buffer.
fn attest(svsm: &mut SimSvsm, psp: &SimPsp, request: &AttestRequest, nonce: &[u8; 64]) -> (Registers, Vec<Vec<u8>>) {
    let mut buffer = request.encode().0[..SERVICES_LEN].to_vec();
    buffer.extend(nonce);
    let pages =
        [(CALLING_AREA, calling_area(&buffer)), (REPORT_PAGE, vec![0; 0x1000]), (MANIFEST_PAGE, vec![0; 0x1000])];
    call(svsm, psp, regs(protocol::ATTEST, ATTEST_SERVICES, CALLING_AREA + caa::BUFFER as u64), &pages)
}

#[test]
fn attest_services_returns_a_vmpl0_report_binding_the_nonce_and_the_manifest() {
    let (_dir, psp, mut svsm) = setup();
    let nonce_gpa = CALLING_AREA + (caa::BUFFER + SERVICES_LEN) as u64;
    let nonce = [0x5A; 64];
    let (out, pages) = attest(&mut svsm, &psp, &attest_request(nonce_gpa, 0x1000), &nonce);
    assert_eq!(CallResult::decode(out.rax), CallResult::Success);
    let (manifest_len, report_len) = (out.rcx as usize, out.r8 as usize);
    assert_eq!((manifest_len, out.rdx, report_len), (24, 0, 1184));
    let manifest = &pages[2][..manifest_len];
    assert_eq!(manifest, services_manifest());
    assert_eq!(attest::manifest_entries(manifest).unwrap().count(), 0);
    let report = &pages[1][..report_len];
    let view = GuestView::parse(report).unwrap();
    assert_eq!(view.vmpl, 0, "the SVSM's own report");
    assert_eq!(view.report_data, attest::report_data(&nonce, manifest));
    let endorsements: Vec<_> =
        psp.endorsements().unwrap().iter().map(|d| crate::verifier::chain::parse(d, "x").unwrap()).collect();
    crate::verifier::snp::verify_report(report, &endorsements, psp.root(), SystemTime::now()).unwrap();
}

#[test]
fn attest_services_refuses_what_coconut_refuses() {
    let (_dir, psp, mut svsm) = setup();
    let nonce_gpa = CALLING_AREA + (caa::BUFFER + SERVICES_LEN) as u64;
    // A report buffer too small: INVALID_PARAMETER with the needed sizes.
    let (out, _) = attest(&mut svsm, &psp, &attest_request(nonce_gpa, 1000), &[1; 64]);
    assert_eq!((CallResult::decode(out.rax), out.rcx, out.r8), (CallResult::InvalidParameter, 24, 1184));
    // A nonce of another size, or one crossing a page.
    let mut short = attest_request(nonce_gpa, 0x1000);
    short.nonce.size = 32;
    assert_eq!(CallResult::decode(attest(&mut svsm, &psp, &short, &[1; 64]).0.rax), CallResult::InvalidParameter);
    let crossing = attest_request(CALLING_AREA + 0xFE0, 0x1000);
    assert_eq!(CallResult::decode(attest(&mut svsm, &psp, &crossing, &[1; 64]).0.rax), CallResult::InvalidParameter);
    // A report buffer that is not page aligned.
    let mut unaligned = attest_request(nonce_gpa, 0x1000);
    unaligned.report.gpa += 8;
    assert_eq!(CallResult::decode(attest(&mut svsm, &psp, &unaligned, &[1; 64]).0.rax), CallResult::InvalidParameter);
}

#[test]
fn the_guests_secrets_page_holds_its_vmpck_and_the_svsm_fields() {
    let (_dir, psp, svsm) = setup();
    let launch = psp.launch_at(GUEST_VMPL).unwrap();
    let mut page = launch.secrets_page();
    svsm.plant(&mut page);
    assert_eq!(SvsmInfo::parse(&page), Ok(svsm.info()));
    assert!(page[0x20..0x60].iter().all(|&b| b == 0), "VMPCK0 and VMPCK1 are the SVSM's");
    assert!(page[0x60..0x80].iter().any(|&b| b != 0), "VMPCK2 is the guest's");
}
