//! Every request the runtime's GHCB code makes passes KVM's checks (the page is filled the way
//! `runtime/src/platform/snp/ghcb.rs` fills it: cleared, protocol version 2, usage 0, each
//! field written and marked valid), and each check refuses what KVM refuses, with KVM's code.

use super::*;
use twi_attester::snp::ghcb::{PROTOCOL_VERSION, ioio_exit_info};

const GHCB_GPA: u64 = 0x7F_E000;
const REQUEST: u64 = 0x7F_C000;
const RESPONSE: u64 = 0x7F_D000;
const CERTS: u64 = 0x7F_0000;

/// A GHCB page filled as the runtime's `Ghcb::begin` / `set` / `exit` fill it.
struct Ghcb([u8; GHCB_SIZE]);

impl Ghcb {
    fn begin() -> Self {
        let mut page = [0u8; GHCB_SIZE];
        page[offset::PROTOCOL_VERSION..offset::PROTOCOL_VERSION + 2].copy_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        Self(page)
    }

    fn set(mut self, field: usize, value: u64) -> Self {
        self.0[field..field + 8].copy_from_slice(&value.to_le_bytes());
        let bit = valid_bit(field);
        let word = offset::VALID_BITMAP + (bit / 64) * 8;
        self.0[word + (bit % 64) / 8] |= 1 << (bit % 8);
        self
    }

    fn exit(self, code: u64, info1: u64, info2: u64) -> Self {
        self.set(offset::SW_EXIT_CODE, code).set(offset::SW_EXIT_INFO_1, info1).set(offset::SW_EXIT_INFO_2, info2)
    }

    /// Clears a field's valid bit (a guest that forgot to mark it).
    fn unmark(mut self, field: usize) -> Self {
        let bit = valid_bit(field);
        self.0[offset::VALID_BITMAP + bit / 8] &= !(1 << (bit % 8));
        self
    }

    fn bytes(mut self, at: usize, bytes: &[u8]) -> Self {
        self.0[at..at + bytes.len()].copy_from_slice(bytes);
        self
    }

    /// The runtime's page-state-change descriptor for `entries` at the shared buffer.
    fn psc(self, entries: &[(u64, u64, bool)]) -> Self {
        let mut descriptor = psc::header((entries.len() - 1) as u16).to_le_bytes().to_vec();
        for &(gfn, operation, huge) in entries {
            descriptor.extend_from_slice(&psc::entry(gfn, operation, huge).to_le_bytes());
        }
        self.bytes(offset::SHARED_BUFFER, &descriptor)
            .set(offset::SW_SCRATCH, GHCB_GPA + offset::SHARED_BUFFER as u64)
            .exit(exit_code::SNP_PAGE_STATE_CHANGE, 0, 0)
    }

    fn validate(&self) -> Result<Vmgexit, Refusal> {
        validate_vmgexit(&self.0, GHCB_GPA, GHCB_GPA)
    }
}

fn answer(result: Result<impl std::fmt::Debug, Refusal>) -> Answer {
    result.expect_err("the host must refuse this").answer
}

/// The runtime's requests: port I/O both ways, CPUID, MSRs, guest requests, page-state changes.
#[test]
fn the_runtimes_ghcb_requests_pass_kvm() {
    let com1 = 0x3F8;
    let requests = [
        Ghcb::begin().set(offset::RAX, 0x41).exit(exit_code::IOIO, ioio_exit_info(com1, 1, false), 0),
        Ghcb::begin().set(offset::RAX, 0).exit(exit_code::IOIO, ioio_exit_info(com1 + 5, 1, true), 0),
        Ghcb::begin().set(offset::RAX, 0xD).set(offset::RCX, 0).set(offset::XCR0, 1).exit(exit_code::CPUID, 0, 0),
        Ghcb::begin().set(offset::RCX, 0xC001_0131).exit(exit_code::MSR, 0, 0),
        Ghcb::begin().set(offset::RCX, 0x1B).set(offset::RAX, 1).set(offset::RDX, 0).exit(exit_code::MSR, 1, 0),
        Ghcb::begin().exit(exit_code::SNP_GUEST_REQUEST, REQUEST, RESPONSE),
        Ghcb::begin().set(offset::RAX, CERTS).set(offset::RBX, 4).exit(
            exit_code::SNP_EXT_GUEST_REQUEST,
            REQUEST,
            RESPONSE,
        ),
        Ghcb::begin().psc(&[(0x200, msr_protocol::PSC_SHARED, true), (0x7F0, msr_protocol::PSC_PRIVATE, false)]),
    ];
    for ghcb in &requests {
        ghcb.validate().unwrap_or_else(|e| panic!("{e}"));
    }
    let ext = &requests[6];
    assert_eq!(ext_guest_request(&ext.0, guest_msg::msg_type::REPORT_REQ), Ok(Some((CERTS, 4))));
    let entries = page_state_change(&requests[7].0, GHCB_GPA).unwrap();
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|e| PSC_OPERATIONS.contains(&e.operation) && e.done == 0));
    assert_eq!((entries[0].gfn, entries[0].huge), (0x200, true));

    // A full batch of the runtime's size fits the descriptor KVM accepts.
    let full: Vec<_> = (0..psc::MAX_ENTRIES as u64).map(|i| (i, msr_protocol::PSC_PRIVATE, false)).collect();
    assert_eq!(page_state_change(&Ghcb::begin().psc(&full).0, GHCB_GPA).unwrap().len(), psc::MAX_ENTRIES);
}

#[test]
fn kvm_refuses_a_ghcb_that_is_not_registered_or_not_usage_0() {
    let ghcb = Ghcb::begin().exit(exit_code::SNP_GUEST_REQUEST, REQUEST, RESPONSE);
    assert_eq!(answer(validate_vmgexit(&ghcb.0, GHCB_GPA + PAGE, GHCB_GPA)), Answer::VmStopped);
    let usage_1 = ghcb.bytes(offset::GHCB_USAGE, &1u32.to_le_bytes());
    assert_eq!(answer(usage_1.validate()), Answer::GhcbBadInput(ghcb_err::INVALID_USAGE));
}

#[test]
fn kvm_refuses_exits_whose_inputs_are_not_marked_valid() {
    let missing = Answer::GhcbBadInput(ghcb_err::MISSING_INPUT);
    let out = || Ghcb::begin().set(offset::RAX, 0x41).exit(exit_code::IOIO, ioio_exit_info(0x3F8, 1, false), 0);
    let cpuid = || Ghcb::begin().set(offset::RAX, 0xD).set(offset::RCX, 0).set(offset::XCR0, 1);
    let wrmsr = || Ghcb::begin().set(offset::RCX, 0x1B).set(offset::RAX, 1).set(offset::RDX, 0);
    let cases = [
        out().unmark(offset::SW_EXIT_INFO_2),
        out().unmark(offset::SW_EXIT_CODE),
        out().unmark(offset::RAX),
        cpuid().unmark(offset::XCR0).exit(exit_code::CPUID, 0, 0),
        cpuid().unmark(offset::RCX).exit(exit_code::CPUID, 0, 0),
        wrmsr().unmark(offset::RDX).exit(exit_code::MSR, 1, 0),
        Ghcb::begin().exit(exit_code::MSR, 0, 0),
        Ghcb::begin().exit(exit_code::SNP_PAGE_STATE_CHANGE, 0, 0),
        Ghcb::begin().exit(exit_code::SNP_GUEST_REQUEST, REQUEST, REQUEST),
        Ghcb::begin().exit(exit_code::SNP_GUEST_REQUEST, REQUEST + 8, RESPONSE),
        Ghcb::begin().exit(exit_code::SNP_EXT_GUEST_REQUEST, REQUEST, RESPONSE + 0x800),
    ];
    for (i, ghcb) in cases.iter().enumerate() {
        assert_eq!(answer(ghcb.validate()), missing, "case {i}");
    }
    // CPUID of a leaf other than 0xD needs no XCR0; an IN needs no RAX.
    assert!(Ghcb::begin().set(offset::RAX, 1).set(offset::RCX, 0).exit(exit_code::CPUID, 0, 0).validate().is_ok());
    assert!(Ghcb::begin().exit(exit_code::IOIO, ioio_exit_info(0x3FD, 1, true), 0).validate().is_ok());
    let unknown = Ghcb::begin().exit(0x8000_0099, 0, 0);
    assert_eq!(answer(unknown.validate()), Answer::GhcbBadInput(ghcb_err::INVALID_EVENT));
}

#[test]
fn kvm_keeps_the_scratch_area_inside_the_shared_buffer() {
    let scratch_at = |gpa: u64| {
        let ghcb = Ghcb::begin().psc(&[(1, msr_protocol::PSC_PRIVATE, false)]).set(offset::SW_SCRATCH, gpa);
        page_state_change(&ghcb.0, GHCB_GPA)
    };
    let invalid = Answer::GhcbBadInput(ghcb_err::INVALID_SCRATCH_AREA);
    assert_eq!(answer(scratch_at(0)), invalid);
    assert_eq!(answer(scratch_at(0x10_0000)), invalid); // outside the GHCB (GHCB v1 only)
    assert_eq!(answer(scratch_at(GHCB_GPA + 0x7F8)), invalid); // before the shared buffer
    assert_eq!(answer(scratch_at(GHCB_GPA + 0xFEC)), invalid); // header runs past its end
    assert_eq!(scratch(&Ghcb::begin().set(offset::SW_SCRATCH, GHCB_GPA + 0xFE8).0, GHCB_GPA, 8), Ok((0xFE8, 8)));
}

#[test]
fn kvm_refuses_page_state_change_headers_and_entries_it_cannot_act_on() {
    let one = [(0x400, msr_protocol::PSC_SHARED, true)];
    let header = |cur: u16, end: u16| (u64::from(end) << 16 | u64::from(cur)).to_le_bytes();
    let past_end = Ghcb::begin().psc(&one).bytes(offset::SHARED_BUFFER, &header(0, psc::MAX_ENTRIES as u16));
    assert_eq!(answer(page_state_change(&past_end.0, GHCB_GPA)), Answer::PageStateChange(psc_error::INVALID_HDR));
    // A descriptor placed late in the buffer holds fewer entries.
    let late = GHCB_GPA + 0xFE0; // room for the header and 1 entry
    let two = Ghcb::begin().psc(&one).bytes(0xFE0, &header(0, 1)).set(offset::SW_SCRATCH, late);
    assert_eq!(answer(page_state_change(&two.0, GHCB_GPA)), Answer::PageStateChange(psc_error::INVALID_HDR));
    let one_late = Ghcb::begin().psc(&one).bytes(0xFE0, &header(0, 0)).set(offset::SW_SCRATCH, late);
    assert_eq!(page_state_change(&one_late.0, GHCB_GPA).unwrap().len(), 1);

    let entry_error = Answer::PageStateChange(psc_error::INVALID_ENTRY);
    let unaligned_2m = Ghcb::begin().psc(&[(0x401, msr_protocol::PSC_SHARED, true)]);
    assert_eq!(answer(page_state_change(&unaligned_2m.0, GHCB_GPA)), entry_error);
    let mut overdone = psc::entry(0x7, msr_protocol::PSC_PRIVATE, false);
    overdone |= 2; // cur_page 2 of a 4 KiB entry
    let overdone = Ghcb::begin().psc(&one).bytes(offset::SHARED_BUFFER + 8, &overdone.to_le_bytes());
    assert_eq!(answer(page_state_change(&overdone.0, GHCB_GPA)), entry_error);
    // Entries before cur_entry are done and not checked again.
    let resumed = Ghcb::begin()
        .psc(&[(0x401, msr_protocol::PSC_SHARED, true), (0x600, msr_protocol::PSC_SHARED, true)])
        .bytes(offset::SHARED_BUFFER, &header(1, 1));
    assert_eq!(page_state_change(&resumed.0, GHCB_GPA).unwrap().len(), 1);
}

#[test]
fn kvm_refuses_an_extended_report_request_without_its_certificate_pages() {
    let invalid = Answer::GhcbBadInput(ghcb_err::INVALID_INPUT);
    let base = || Ghcb::begin().exit(exit_code::SNP_EXT_GUEST_REQUEST, REQUEST, RESPONSE);
    let report = guest_msg::msg_type::REPORT_REQ;
    assert_eq!(answer(ext_guest_request(&base().set(offset::RAX, CERTS).0, report)), invalid);
    assert_eq!(answer(ext_guest_request(&base().set(offset::RBX, 1).0, report)), invalid);
    let unaligned = base().set(offset::RAX, CERTS + 0x10).set(offset::RBX, 1);
    assert_eq!(answer(ext_guest_request(&unaligned.0, report)), invalid);
    // A key request carries no certificate pages and needs none.
    assert_eq!(ext_guest_request(&base().0, guest_msg::msg_type::KEY_REQ), Ok(None));
}

/// The simulated PSP's certificate table fits the pages the runtime offers (its whole
/// forwarding budget, `MAX_CERT_TABLE`); fewer pages get INVALID_LEN with the count needed, in
/// the encoding the runtime's GHCB code reads back as "invalid length".
#[test]
fn the_certificate_table_fits_the_runtimes_pages_and_fewer_get_invalid_len() {
    use twi_attester::snp::ghcb::GuestRequestResult;
    let dir = tempfile::tempdir().unwrap();
    let psp = crate::snp::SimPsp::load_or_create(dir.path()).unwrap();
    let table = psp.certificate_table().unwrap();
    let runtime_pages = (twi_proto::msg::MAX_CERT_TABLE / PAGE as usize) as u64;
    assert_eq!(certificate_pages(runtime_pages, table.len()), Ok(()));
    let needed = table.len().div_ceil(PAGE as usize) as u64;
    assert!((1..=runtime_pages).contains(&needed));
    match answer(certificate_pages(needed - 1, table.len())) {
        Answer::GuestRequest { exit_info_2, pages_needed } => {
            assert_eq!(pages_needed, needed);
            assert_eq!(GuestRequestResult::from_exit_info_2(exit_info_2), GuestRequestResult::InvalidLength);
        }
        other => panic!("{other}"),
    }
}

/// The runtime's GHCB MSR protocol requests are ones upstream KVM answers; the Run VMPL request
/// of an SVSM call is not (a host for COCONUT-SVSM runs its patched kernel), and a page-state
/// change to anything but private or shared gets the error response.
#[test]
fn upstream_kvm_answers_the_runtimes_msr_requests_but_not_run_vmpl() {
    use msr_protocol::*;
    for request in [
        SEV_INFO_REQUEST,
        CPUID_REQUEST | (1 << 30),
        HV_FEATURES_REQUEST,
        register_ghcb(0x7FE),
        page_state_change(0x7FE, PSC_SHARED),
        terminate(REASON_SET_TWI, 1),
    ] {
        assert_eq!(msr_request(request).map_err(|e| e.to_string()), Ok(request & 0xFFF));
    }
    assert_eq!(answer(msr_request(run_vmpl(0))), Answer::MsrUnanswered);
    let refused = answer(msr_request(page_state_change(0x7FE, 3)));
    // GHCB_MSR_PSC_RESP_ERROR: bit 63 and the response code; the runtime reads it as a failure.
    assert_eq!(refused, Answer::MsrError((1 << 63) | PSC_RESPONSE));
    assert_eq!(psc_error((1 << 63) | PSC_RESPONSE), Some(0x8000_0000));
}
