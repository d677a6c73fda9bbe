//! A simulated AMD Secure Processor (PSP) for SEV-SNP guests.
//!
//! It keeps a simulated ARK → ASK → VCEK chain (ECDSA P-384 throughout: the real ARK and ASK
//! are RSA-4096, which the issuer's AMD path verifies separately) and a chip id on disk, and
//! answers MSG_REPORT_REQ with a MSG_REPORT_RSP whose 1184-byte report is laid out and signed
//! exactly as the SEV-SNP Firmware ABI specifies.

use std::path::Path;

use der::Encode;
use der::asn1::{ObjectIdentifier, Uint};
use p384::ecdsa::SigningKey;
use p384::ecdsa::signature::Signer;
use sha2::{Digest, Sha384};
use twi_attester::snp::certs::{self as table, CertKind};
use twi_attester::snp::guest_msg::{Header, MAX_MESSAGE, Responder, Vmpck, msg_type};
use twi_attester::snp::key::{KeyRequest, KeyResponse, field};
use twi_attester::snp::msg::{
    ReportRequest, ReportResponse, STATUS_INVALID_KEY_SELECTION, STATUS_INVALID_PARAMETERS, STATUS_SUCCESS,
};
use twi_attester::snp::report::{
    AttestationReport, EcdsaP384Signature, GuestPolicy, KeyInfo, REPORT_SIZE, SIGNED_LEN, TcbVersion,
};
use twi_attester::snp::secrets;
use twi_proto::msg::{DoorbellKind, DoorbellRequest, DoorbellResponse};
use x509_cert::Certificate;
use zeroize::Zeroizing;

use crate::certs::{self, Identity, Role, Template, VendorExtension};
use crate::error::{SimError, random};
use crate::state;

/// The TCB the simulated chip reports: bootloader 3, TEE 0, SNP 8, microcode 115 (the
/// Milan-layout byte positions of TCB_VERSION).
const SIM_TCB: u64 = u64::from_le_bytes([3, 0, 0, 0, 0, 0, 8, 115]);
/// SIGNATURE_ALGO of a report signed with ECDSA P-384 with SHA-384 (SEV-SNP Firmware ABI,
/// "Signature Algorithm Encodings").
const SIG_ALGO_ECDSA_P384_SHA384: u32 = 1;

/// AMD's VCEK extensions (Versioned Chip Endorsement Key specification, "VCEK Certificate
/// Extensions"): the TCB component security patch levels and the chip id.
mod amd_oid {
    use der::asn1::ObjectIdentifier;
    pub const BL_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.1");
    pub const TEE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.2");
    pub const SNP_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.3");
    pub const UCODE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.8");
    pub const HW_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.4");
}

/// The simulated PSP of one simulated chip.
pub struct SimPsp {
    ark: Identity<SigningKey>,
    ask: Identity<SigningKey>,
    vcek: Identity<SigningKey>,
    chip_id: [u8; 64],
    /// The simulated chip's root secret, from which MSG_KEY_REQ keys are derived.
    chip_secret: Zeroizing<[u8; 48]>,
    report_id: [u8; 32],
    launch_digest: [u8; 48],
}

impl std::fmt::Debug for SimPsp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimPsp").field("chip_id", &hex::encode(self.chip_id)).finish_non_exhaustive()
    }
}

impl SimPsp {
    /// Loads the simulated chip from `dir`, or creates one there.
    pub fn load_or_create(dir: &Path) -> Result<Self, SimError> {
        // Concurrent runs on a fresh state directory must agree on one chip.
        let _lock = state::lock(dir)?;
        let chip_id: [u8; 64] = state::hex_bytes(&dir.join("chip_id.hex"), false)?;
        let o = "O=TWI simulated TEE";
        let ark = certs::load_or_create(
            dir,
            Template::new("ark", &format!("CN=ARK-Sim,{o}"), Role::Ca { path_len: 1 }, vec![]),
            None,
        )?;
        let ask = certs::load_or_create(
            dir,
            Template::new("ask", &format!("CN=SEV-Sim,{o}"), Role::Ca { path_len: 0 }, vec![]),
            Some(&ark),
        )?;
        let vcek = certs::load_or_create(
            dir,
            Template::new("vcek", &format!("CN=SEV-VCEK-Sim,{o}"), Role::Endorsement, vcek_extensions(&chip_id)?),
            Some(&ask),
        )?;
        let chip_secret = Zeroizing::new(state::hex_bytes::<48>(&dir.join("chip_secret.hex"), true)?);
        let mut report_id = [0u8; 32];
        random(&mut report_id)?;
        Ok(Self { ark, ask, vcek, chip_id, chip_secret, report_id, launch_digest: [0; 48] })
    }

    /// The root an issuer must be told to trust to accept this chip's reports.
    pub fn root(&self) -> &Certificate {
        &self.ark.cert
    }

    /// `[VCEK, ASK]` as DER: what the host supplies with a report (as the extended guest
    /// request's certificate table does on hardware).
    pub fn endorsements(&self) -> Result<Vec<Vec<u8>>, SimError> {
        let der = |cert: &Certificate| cert.to_der().map_err(|e| SimError::encoding("a certificate", e));
        Ok(vec![der(&self.vcek.cert)?, der(&self.ask.cert)?])
    }

    /// The certificate table of the extended guest request (GHCB specification): VCEK, ASK
    /// and ARK as DER, laid out as a hypervisor writes them into the guest's certificate pages.
    pub fn certificate_table(&self) -> Result<Vec<u8>, SimError> {
        let der = |cert: &Certificate| cert.to_der().map_err(|e| SimError::encoding("a certificate", e));
        let (vcek, ask, ark) = (der(&self.vcek.cert)?, der(&self.ask.cert)?, der(&self.ark.cert)?);
        let certs = [(CertKind::Vcek, &vcek[..]), (CertKind::Ask, &ask[..]), (CertKind::Ark, &ark[..])];
        let mut table = vec![0u8; (certs.len() + 1) * table::ENTRY_LEN + vcek.len() + ask.len() + ark.len()];
        let len = table::encode(&certs, &mut table).map_err(|e| SimError::encoding("the certificate table", e))?;
        table.truncate(len);
        Ok(table)
    }

    /// Records the launch measurement of the image this "chip" launched.
    pub fn set_launch_digest(&mut self, digest: [u8; 48]) {
        self.launch_digest = digest;
    }

    /// Answers a MSG_REPORT_REQ payload with a MSG_REPORT_RSP payload, for a guest at VMPL0.
    pub fn handle_report_request(&self, request: &[u8]) -> Vec<u8> {
        self.handle_report_request_from(request, 0)
    }

    /// As [`SimPsp::handle_report_request`] for a request sealed under the VMPCK of
    /// `current_vmpl`: the report's VMPL must be at least the requester's (SEV-SNP Firmware
    /// ABI, MSG_REPORT_REQ: "VMPL ... must be greater than or equal to the current VMPL"), so a
    /// guest below an SVSM cannot claim the SVSM's privilege.
    pub fn handle_report_request_from(&self, request: &[u8], current_vmpl: u8) -> Vec<u8> {
        let mut out = vec![0u8; 0x20 + REPORT_SIZE];
        let (status, report) = match ReportRequest::parse(request) {
            Ok(req) if req.vmpl <= 3 && req.vmpl >= u32::from(current_vmpl) => (STATUS_SUCCESS, self.sign_report(&req)),
            _ => (STATUS_INVALID_PARAMETERS, Vec::new()),
        };
        match ReportResponse::encode(status, &report, &mut out) {
            Ok(len) => out.truncate(len),
            Err(_) => out.clear(),
        }
        out
    }

    /// Answers a MSG_KEY_REQ payload with a MSG_KEY_RSP payload. The key is a deterministic
    /// function of the chip secret and exactly the fields the request selects (as the PSP
    /// derives it from the VCEK or VMRK root): SHA-384 over a label, the chip secret, the request
    /// and the selected launch values, truncated to 32 bytes.
    pub fn handle_key_request(&self, request: &[u8]) -> [u8; 64] {
        self.handle_key_request_from(request, 0)
    }

    /// As [`SimPsp::handle_key_request`] for a requester at `current_vmpl`: the key's VMPL
    /// must be at least the requester's (SEV-SNP Firmware ABI, MSG_KEY_REQ).
    pub fn handle_key_request_from(&self, request: &[u8], current_vmpl: u8) -> [u8; 64] {
        let Ok(req) = KeyRequest::parse(request) else {
            return KeyResponse::encode(STATUS_INVALID_PARAMETERS, &[0; 32]);
        };
        if req.vmpl < u32::from(current_vmpl) {
            return KeyResponse::encode(STATUS_INVALID_PARAMETERS, &[0; 32]);
        }
        // No VMRK is installed, and a guest may not ask for a future SVN or TCB.
        if req.root_key_select & 1 != 0 {
            return KeyResponse::encode(STATUS_INVALID_KEY_SELECTION, &[0; 32]);
        }
        if req.vmpl > 3 || req.guest_svn > 0 || req.tcb_version > SIM_TCB || req.guest_field_select & !field::ALL != 0 {
            return KeyResponse::encode(STATUS_INVALID_PARAMETERS, &[0; 32]);
        }
        let mut h = Sha384::new();
        h.update(b"TWI simulated PSP derived key v1\0");
        h.update(self.chip_secret.as_ref());
        h.update(request);
        let select = |bit: u64| req.guest_field_select & bit != 0;
        if select(field::GUEST_POLICY) {
            h.update(GuestPolicy::QEMU_DEFAULT.to_le_bytes());
        }
        if select(field::IMAGE_ID) || select(field::FAMILY_ID) {
            h.update([0u8; 16]);
        }
        if select(field::MEASUREMENT) {
            h.update(self.launch_digest);
        }
        let digest = Zeroizing::new(<[u8; 48]>::from(h.finalize()));
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&digest[..32]);
        KeyResponse::encode(STATUS_SUCCESS, &key)
    }

    /// Starts a launch: a fresh VMPCK0 for the guest's secrets page and the PSP's side of the
    /// guest-message channel.
    pub fn launch(&self) -> Result<SimLaunch, SimError> {
        self.launch_at(0)
    }

    /// Starts a launch whose guest runs at `vmpl` (below a simulated SVSM when not 0): its
    /// guest messages are sealed under the VMPCK of that level, the only one its copy of the
    /// secrets page holds (COCONUT gives the guest a copy with the more privileged VMPCKs
    /// cleared).
    pub fn launch_at(&self, vmpl: u8) -> Result<SimLaunch, SimError> {
        let mut vmpck = Zeroizing::new([0u8; 32]);
        random(vmpck.as_mut())?;
        let vmpl = vmpl.min(3);
        let responder = Responder::new(Vmpck::new(*vmpck), vmpl);
        Ok(SimLaunch { vmpck, vmpl, responder })
    }

    /// A report at `vmpl` for `report_data`, signed by the VCEK: what the PSP returns to a
    /// requester at a level no higher than `vmpl` (the simulated SVSM asks at VMPL0).
    pub fn report(&self, report_data: [u8; 64], vmpl: u32) -> Vec<u8> {
        self.sign_report(&ReportRequest { report_data, vmpl })
    }

    fn sign_report(&self, request: &ReportRequest) -> Vec<u8> {
        let tcb = TcbVersion(SIM_TCB);
        let mut report = AttestationReport {
            version: 3,
            guest_svn: 0,
            policy: GuestPolicy(GuestPolicy::QEMU_DEFAULT),
            family_id: [0; 16],
            image_id: [0; 16],
            vmpl: request.vmpl,
            signature_algo: SIG_ALGO_ECDSA_P384_SHA384,
            current_tcb: tcb,
            platform_info: 0,
            key_info: KeyInfo(0), // signed by the VCEK, author key absent
            report_data: request.report_data,
            measurement: self.launch_digest,
            host_data: [0; 32],
            id_key_digest: [0; 48],
            author_key_digest: [0; 48],
            report_id: self.report_id,
            report_id_ma: [0xFF; 32],
            reported_tcb: tcb,
            cpuid_fam_id: 0x19,
            cpuid_mod_id: 0x01,
            cpuid_step: 0x01,
            chip_id: self.chip_id,
            committed_tcb: tcb,
            current_build: 21,
            current_minor: 55,
            current_major: 1,
            committed_build: 21,
            committed_minor: 55,
            committed_major: 1,
            launch_tcb: tcb,
            launched_mit_vector: 0,
            current_mit_vector: 0,
            signature: EcdsaP384Signature { r: [0; 72], s: [0; 72] },
        };
        let unsigned = report.to_bytes();
        let signature: p384::ecdsa::Signature = self.vcek.key.sign(&unsigned[..SIGNED_LEN]);
        let rs: [u8; 96] = signature.to_bytes().into();
        report.signature = EcdsaP384Signature::from_big_endian_rs(&rs);
        report.to_bytes().to_vec()
    }
}

/// One launch of a guest on the simulated chip: the VMPCK of its VMPL and the sequence numbers
/// of its guest-message channel.
pub struct SimLaunch {
    vmpck: Zeroizing<[u8; 32]>,
    vmpl: u8,
    responder: Responder,
}

impl std::fmt::Debug for SimLaunch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimLaunch").finish_non_exhaustive()
    }
}

/// The status a firmware guest request returns (what SW_EXITINFO2 carries on hardware): 0, or
/// the firmware error in the low 32 bits.
pub type GuestRequestStatus = u64;

impl SimLaunch {
    /// The secrets page the PSP would populate for this launch (VERSION 3, VMPCK0), or for a
    /// guest below an SVSM the copy the SVSM gives it: only the VMPCK of its own level (the
    /// SVSM adds its own fields: the simulated SVSM plants them).
    pub fn secrets_page(&self) -> [u8; secrets::SECRETS_PAGE_SIZE] {
        let mut page = secrets::simulated_page(&[0; 32]);
        let at = secrets::VMPCK_OFFSETS[usize::from(self.vmpl)];
        page[at..at + 32].copy_from_slice(self.vmpck.as_ref());
        page
    }

    /// The VMPL this launch's guest runs at.
    pub fn vmpl(&self) -> u8 {
        self.vmpl
    }

    /// SNP_GUEST_REQUEST: opens the sealed request with VMPCK0 (sequence numbers enforced),
    /// serves MSG_REPORT_REQ or MSG_KEY_REQ, and returns the sealed response. A request that
    /// does not open (altered, replayed, wrong key) gets a failure status and no response,
    /// as on hardware.
    pub fn guest_request(&mut self, psp: &SimPsp, sealed: &[u8]) -> (GuestRequestStatus, Vec<u8>) {
        self.guest_request_with(sealed, |header, request| match header.msg_type {
            msg_type::REPORT_REQ => Some(psp.handle_report_request_from(request, header.vmpck_id)),
            msg_type::KEY_REQ => Some(psp.handle_key_request_from(request, header.vmpck_id).to_vec()),
            _ => None,
        })
    }

    /// The SEV-SNP doorbells as the channel carries them: `SNP_GUEST_REQUEST` answered by
    /// [`SimLaunch::guest_request`], and the extended guest request, which also returns the
    /// chip's certificate table as a hypervisor writes it into the guest's certificate pages
    /// (GHCB specification, "SNP Extended Guest Request"; only when the request succeeded).
    /// `None`: not an SEV-SNP doorbell (a TDX one), which this firmware does not have.
    pub fn doorbell(&mut self, psp: &SimPsp, request: &DoorbellRequest) -> Result<Option<DoorbellResponse>, SimError> {
        let extended = match request.kind {
            DoorbellKind::SnpGuestRequest => false,
            DoorbellKind::SnpExtGuestRequest => true,
            DoorbellKind::TdxGetQuote
            | DoorbellKind::TdxReport
            | DoorbellKind::TdxRtmrExtend
            | DoorbellKind::SvsmCall => return Ok(None),
        };
        let (status, response) = self.guest_request(psp, &request.request);
        let certificates = if extended && status == 0 { Some(psp.certificate_table()?) } else { None };
        Ok(Some(DoorbellResponse { kind: request.kind, status, response, certificates }))
    }

    /// [`SimLaunch::guest_request`] with the firmware's answer replaced: opens the sealed
    /// request as the PSP would and seals whatever plaintext `answer` gives for its header and
    /// payload (`None`: refuse it with a failure status). Lets tests play a firmware that
    /// answers wrongly but through the genuine, correctly sealed channel.
    pub fn guest_request_with(
        &mut self,
        sealed: &[u8],
        answer: impl FnOnce(&Header, &[u8]) -> Option<Vec<u8>>,
    ) -> (GuestRequestStatus, Vec<u8>) {
        let mut plain = Zeroizing::new([0u8; MAX_MESSAGE]);
        let Ok((header, len)) = self.responder.open_request(sealed, plain.as_mut()) else {
            return (u64::from(STATUS_INVALID_PARAMETERS), Vec::new());
        };
        let Some(payload) = answer(&header, &plain[..len]).map(Zeroizing::new) else {
            return (u64::from(STATUS_INVALID_PARAMETERS), Vec::new());
        };
        let mut out = vec![0u8; MAX_MESSAGE];
        match self.responder.seal_response(&header, &payload, &mut out) {
            Ok(n) => {
                out.truncate(n);
                (0, out)
            }
            Err(_) => (u64::from(STATUS_INVALID_PARAMETERS), Vec::new()),
        }
    }
}

/// The VCEK's AMD extensions: the TCB components and the chip id (hwID, raw 64 bytes), as in
/// AMD's VCEK certificates, so the issuer checks the same claims on both paths.
fn vcek_extensions(chip_id: &[u8; 64]) -> Result<Vec<VendorExtension>, SimError> {
    let tcb = TcbVersion(SIM_TCB);
    let spl = |oid: ObjectIdentifier, value: u8| -> Result<VendorExtension, SimError> {
        let value_der =
            Uint::new(&[value]).and_then(|v| v.to_der()).map_err(|e| SimError::encoding("a TCB extension", e))?;
        Ok(VendorExtension { oid, value_der })
    };
    Ok(vec![
        spl(amd_oid::BL_SPL, tcb.bootloader())?,
        spl(amd_oid::TEE_SPL, tcb.tee())?,
        spl(amd_oid::SNP_SPL, tcb.snp())?,
        spl(amd_oid::UCODE_SPL, tcb.microcode())?,
        VendorExtension { oid: amd_oid::HW_ID, value_der: chip_id.to_vec() },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn reports_verify_under_the_simulated_chain() {
        let dir = tempfile::tempdir().unwrap();
        let mut psp = SimPsp::load_or_create(dir.path()).unwrap();
        psp.set_launch_digest([7; 48]);
        let request = ReportRequest { report_data: [0xAB; 64], vmpl: 0 };
        let response = psp.handle_report_request(&request.to_bytes());
        let parsed = ReportResponse::parse(&response).unwrap();
        assert_eq!(parsed.status, STATUS_SUCCESS);
        let endorsements: Vec<Certificate> =
            psp.endorsements().unwrap().iter().map(|d| crate::verifier::chain::parse(d, "x").unwrap()).collect();
        let report =
            crate::verifier::snp::verify_report(parsed.report, &endorsements, psp.root(), SystemTime::now()).unwrap();
        assert_eq!(report.report_data, [0xAB; 64]);
        assert_eq!(report.measurement, [7; 48]);
        assert_eq!(&report.chip_id, &psp.chip_id);

        // The same chip comes back from disk.
        let again = SimPsp::load_or_create(dir.path()).unwrap();
        assert_eq!(&again.chip_id, &psp.chip_id);
        assert_eq!(again.root(), psp.root());
    }

    #[test]
    fn invalid_requests_get_a_failure_status() {
        let dir = tempfile::tempdir().unwrap();
        let psp = SimPsp::load_or_create(dir.path()).unwrap();
        let response = psp.handle_report_request(&[0u8; 95]);
        assert_eq!(ReportResponse::parse(&response).unwrap().status, STATUS_INVALID_PARAMETERS);
        let bad_vmpl = ReportRequest { report_data: [0; 64], vmpl: 4 };
        let response = psp.handle_report_request(&bad_vmpl.to_bytes());
        assert_eq!(ReportResponse::parse(&response).unwrap().status, STATUS_INVALID_PARAMETERS);
        // A requester at VMPL2 (below an SVSM) may not claim VMPL0 or 1, for a report or a key.
        for vmpl in 0..2 {
            let claim = ReportRequest { report_data: [0; 64], vmpl };
            let response = psp.handle_report_request_from(&claim.to_bytes(), 2);
            assert_eq!(ReportResponse::parse(&response).unwrap().status, STATUS_INVALID_PARAMETERS);
            let key = KeyRequest { vmpl, ..KeyRequest::launch_bound(SIM_TCB) };
            let response = psp.handle_key_request_from(&key.to_bytes(), 2);
            assert_eq!(KeyResponse::parse(&response).unwrap().status, STATUS_INVALID_PARAMETERS);
        }
        let own = ReportRequest { report_data: [0; 64], vmpl: 2 };
        let response = psp.handle_report_request_from(&own.to_bytes(), 2);
        assert_eq!(ReportResponse::parse(&response).unwrap().status, STATUS_SUCCESS);
        let key = KeyRequest { vmpl: 2, ..KeyRequest::launch_bound(SIM_TCB) };
        assert_eq!(
            KeyResponse::parse(&psp.handle_key_request_from(&key.to_bytes(), 2)).unwrap().status,
            STATUS_SUCCESS
        );
    }

    /// The doorbell answers what the channel asks: the extended request gets the certificate
    /// table with the sealed answer, the plain one does not, and a TDX doorbell is not this
    /// firmware's.
    #[test]
    fn doorbells_answer_guest_requests_with_the_table_when_extended() {
        let dir = tempfile::tempdir().unwrap();
        let psp = SimPsp::load_or_create(dir.path()).unwrap();
        let mut launch = psp.launch().unwrap();
        let garbage = DoorbellRequest { kind: DoorbellKind::SnpExtGuestRequest, request: vec![0; 64] };
        let refused = launch.doorbell(&psp, &garbage).unwrap().unwrap();
        assert_ne!(refused.status, 0, "a request that does not open is refused");
        assert_eq!(refused.certificates, None, "no table for a failed request");
        let tdx = DoorbellRequest { kind: DoorbellKind::TdxReport, request: vec![0; 64] };
        assert_eq!(launch.doorbell(&psp, &tdx).unwrap(), None);
    }
}
