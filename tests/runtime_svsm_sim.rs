//! The runtime's doorbell to a simulated SVSM (`tee::sim_svsm::SimSvsm`) over a channel whose
//! host side is the real simulated SVSM and PSP (`twi_host_loader::sim`), and a host that
//! tampers with the SVSM's answer: the runtime takes back only the pages it sent, refuses a
//! call the SVSM never took, and reports the SVSM's result codes.

use std::collections::VecDeque;
use std::sync::LazyLock;

use twi_attester::snp::report::GuestView;
use twi_attester::svsm::call::{CallResult, caa, protocol};
use twi_attester::svsm::core::PvalidateEntry;
use twi_attester::svsm::exchange::{Exchange, MAX_EXCHANGE, Window};
use twi_host_loader::sim::snp::SimPsp;
use twi_host_loader::sim::svsm::SimSvsm as HostSvsm;
use twi_proto::msg::{DoorbellKind, DoorbellResponse, Message};
use twi_proto::{MessageReader, write_message};
use twi_runtime::channel::{Channel, Link};
use twi_runtime::tee::sim_svsm::SimSvsm;
use twi_runtime::tee::svsm::{self, SvsmError};

static PSP_DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("tempdir");
    SimPsp::load_or_create(dir.path()).expect("simulated PSP");
    dir
});

type Tamper = fn(&mut Vec<u8>);

/// The host: each SvsmCall is answered by the simulated SVSM, then passed through `tamper`.
struct Host {
    psp: SimPsp,
    svsm: HostSvsm,
    tamper: Option<Tamper>,
    status: u64,
    wire: Vec<u8>,
    read: usize,
    reader: MessageReader,
    to_guest: VecDeque<u8>,
}

impl Host {
    fn new(tamper: Option<Tamper>) -> Self {
        Self {
            psp: SimPsp::load_or_create(PSP_DIR.path()).expect("simulated PSP"),
            svsm: HostSvsm::new(64 << 20),
            tamper,
            status: 0,
            wire: Vec::new(),
            read: 0,
            reader: MessageReader::new(),
            to_guest: VecDeque::new(),
        }
    }

    fn answer(&mut self, msg: Message) -> Message {
        let Message::DoorbellRequest(request) = msg else { panic!("the guest sent {}", msg.name()) };
        assert_eq!(request.kind, DoorbellKind::SvsmCall);
        let mut response = self.svsm.call(&self.psp, &request.request).expect("a well-formed SVSM call");
        if let Some(tamper) = self.tamper {
            tamper(&mut response);
        }
        Message::DoorbellResponse(DoorbellResponse {
            kind: DoorbellKind::SvsmCall,
            status: self.status,
            response,
            certificates: None,
        })
    }
}

impl Link for &mut Host {
    fn write_all(&mut self, bytes: &[u8]) {
        self.wire.extend_from_slice(bytes);
    }
    fn read_byte(&mut self) -> Option<u8> {
        while self.to_guest.is_empty() && self.read < self.wire.len() {
            let byte = self.wire[self.read];
            self.read += 1;
            if let Some(msg) = self.reader.push(byte) {
                let reply = self.answer(msg.expect("well-formed guest frame"));
                let mut out = Vec::new();
                write_message(&reply, &mut out).expect("encodable");
                self.to_guest.extend(out);
            }
        }
        self.to_guest.pop_front()
    }
}

fn frames() -> PvalidateEntry {
    PvalidateEntry { gpa: 0xA0_0000, huge: true, validate: true }
}

#[test]
fn the_runtime_speaks_to_the_simulated_svsm() {
    let mut host = Host::new(None);
    let info = host.svsm.info();
    {
        let channel = Channel::new(&mut host, &|_| {});
        let mut svsm = SimSvsm::new(&channel, info);
        assert_eq!(svsm.query_protocol(protocol::CORE, 1), Ok(Some((1, 1))));
        assert_eq!(svsm.query_protocol(protocol::ATTEST, 1), Ok(Some((1, 1))));
        assert_eq!(svsm.query_protocol(protocol::VTPM, 1), Ok(None));
        assert_eq!(svsm.pvalidate(&[frames()]), Ok(()));
        // Outside the guest's RAM: the SVSM's result code comes through.
        let outside = PvalidateEntry { gpa: 1 << 30, huge: true, validate: true };
        assert_eq!(svsm.pvalidate(&[outside]), Err(SvsmError::Call(CallResult::InvalidAddress)));
        let nonce = [0x42; 64];
        let own = svsm::attest(&mut svsm, &nonce).expect("the SVSM's evidence");
        assert_eq!(GuestView::parse(&own.report).unwrap().vmpl, 0);
        assert_eq!(own.manifest, twi_host_loader::sim::svsm::services_manifest());
    }
    assert!(host.svsm.is_validated(0xA0_0000) && host.svsm.is_validated(0xBF_F000));
    assert_eq!(host.svsm.calls(), 6);
}

/// Rewrites the answer's exchange with `edit` on its registers and windows.
fn rewrite(answer: &mut Vec<u8>, edit: impl FnOnce(&mut Vec<(u64, Vec<u8>)>)) {
    let decoded = Exchange::decode(answer).unwrap();
    let regs = decoded.regs;
    let mut pages: Vec<(u64, Vec<u8>)> = decoded.windows().iter().map(|w| (w.gpa, w.bytes.to_vec())).collect();
    edit(&mut pages);
    let windows: Vec<Window<'_>> = pages.iter().map(|(gpa, b)| Window { gpa: *gpa, bytes: b }).collect();
    let mut out = vec![0u8; MAX_EXCHANGE];
    let len = Exchange::encode(&regs, &windows, &mut out).unwrap();
    out.truncate(len);
    *answer = out;
}

fn pvalidate_with(tamper: Tamper, status: u64) -> Result<(), SvsmError> {
    let mut host = Host::new(Some(tamper));
    host.status = status;
    let info = host.svsm.info();
    let channel = Channel::new(&mut host, &|_| {});
    SimSvsm::new(&channel, info).pvalidate(&[frames()])
}

#[test]
fn a_host_that_alters_the_svsms_answer_is_refused() {
    // Another page than the calling area.
    let moved = pvalidate_with(|a| rewrite(a, |p| p[0].0 += 0x1000), 0);
    assert_eq!(moved, Err(SvsmError::Doorbell("the SVSM's answer names other pages than the call")));
    // A page the call did not name.
    let extra = pvalidate_with(|a| rewrite(a, |p| p.push((0x9000, vec![0; 16]))), 0);
    assert_eq!(extra, Err(SvsmError::Doorbell("the SVSM's answer names other pages than the call")));
    // call_pending still set: the SVSM never took the call.
    let pending = pvalidate_with(|a| rewrite(a, |p| p[0].1[caa::CALL_PENDING] = 1), 0);
    assert_eq!(pending, Err(SvsmError::Doorbell("the SVSM did not take the call (call_pending still set)")));
    // Success claimed, but the request's `next` says nothing was done.
    let undone = pvalidate_with(|a| rewrite(a, |p| p[0].1[caa::BUFFER + 2] = 0), 0);
    assert_eq!(undone, Err(SvsmError::Doorbell("the SVSM reported success without validating every page")));
    // Garbage, and a refused doorbell.
    let garbage = pvalidate_with(|a| a.truncate(7), 0);
    assert_eq!(garbage, Err(SvsmError::Doorbell("the SVSM's answer is malformed")));
    assert_eq!(pvalidate_with(|_| {}, 1), Err(SvsmError::Doorbell("the host refused the SVSM call")));
}
