//! A simulated Intel TDX module and TD Quoting Enclave, for `twi run --platform sim-tdx`.
//!
//! It answers the runtime's `TDG.MR.REPORT` (a 1024-byte TDREPORT_STRUCT over the guest's
//! REPORTDATA, MRTD of the launched ROM, the RTMRs it keeps), `TDG.MR.RTMR.EXTEND`, and
//! `TDG.VP.VMCALL<GetQuote>` (the GHCI buffer): the quoting enclave checks the TDREPORT's MAC
//! (as EVERIFYREPORT2 would) and returns a DCAP quote v4 in Intel's exact format: signed by a
//! P-256 attestation key, with certification data type 6 (QE report signed by the PCK key, QE
//! auth data, REPORTDATA = SHA-256(attestation key ‖ QE auth data)) holding type 5 (the PCK
//! chain, PEM). The chain is simulated: root CA → intermediate → PCK leaf carrying Intel's SGX
//! extension, all P-256, kept in the state directory; so is the collateral (TCB info and QE
//! identity JSON signed by a simulated TCB signing key under the same root). The issuer
//! verifies these quotes with the same code as Intel's, trusting the simulated root only when
//! told to.

use std::path::Path;
use std::time::{Duration, SystemTime};

use der::asn1::{Any, ObjectIdentifier, OctetString};
use der::{Encode, EncodePem, Sequence};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use sha2::{Digest, Sha256, Sha384};
use twi_attester::tdx::enclave_report::EnclaveReport;
use twi_attester::tdx::getquote;
use twi_attester::tdx::quote::{ATT_KEY_TYPE_ECDSA_P256, INTEL_QE_VENDOR_ID, Quote, QuoteHeader, TEE_TYPE_TDX};
use twi_attester::tdx::rtmr;
use twi_attester::tdx::td_report::{REPORT_TYPE_TDX, TD_REPORT_SIZE, TdReport};
use twi_proto::msg::{DoorbellKind, DoorbellRequest, DoorbellResponse, MAX_DOORBELL_RESPONSE};
use x509_cert::Certificate;
use zeroize::Zeroizing;

use crate::certs::{self, Identity, Role, Template, VendorExtension, VendorKey};
use crate::error::{SimError, random};
use crate::state;
use crate::verifier::chain::Cert;
use crate::verifier::tdx::Collateral;
use crate::verifier::tdx::SignedJson;

/// The simulated platform: FMSPC, PCE-ID, SVNs (what the PCK certificate and TCB info say).
const FMSPC: [u8; 6] = [0x00, 0x80, 0x6F, 0x05, 0x00, 0x00];
const PCE_ID: [u8; 2] = [0, 0];
const PCE_SVN: u16 = 11;
const SGX_TCB: [u8; 16] = [7, 7, 2, 2, 3, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0];
const CPU_SVN: [u8; 16] = [7, 7, 2, 2, 3, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0];
/// TEE_TCB_SVN: TDX module SVN 3, major version 1 (so identity TDX_01 applies).
const TEE_TCB_SVN: [u8; 16] = [3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
/// XFAM of a TD with x87, SSE, AVX, AVX-512 state (as the samples show).
const XFAM: [u8; 8] = [0xE7, 0x00, 0x06, 0x00, 0, 0, 0, 0];
const QE_ISV_PROD_ID: u16 = 2;
const QE_ISV_SVN: u16 = 6;
const QE_ATTRIBUTES: [u8; 16] = [0x15, 0, 0, 0, 0, 0, 0, 0, 0xE7, 0, 0, 0, 0, 0, 0, 0];
const TCB_EVALUATION_DATA_NUMBER: u32 = 17;
/// GetQuote status the simulated VMM returns when the TDREPORT is not one the module issued.
const STATUS_ERROR: u64 = getquote::status::ERROR;

/// The guest's GetQuote buffer size (the runtime's `GET_QUOTE_BUFFER`): the runtime sends only
/// its request part over the channel, and the answer fills at most this much.
const GET_QUOTE_CAPACITY: usize = MAX_DOORBELL_RESPONSE;

const SGX_EXTENSIONS: &str = "1.2.840.113741.1.13.1";

#[derive(Sequence)]
struct Entry {
    oid: ObjectIdentifier,
    value: Any,
}

fn oid(suffix: &str) -> Result<ObjectIdentifier, SimError> {
    ObjectIdentifier::new(&format!("{SGX_EXTENSIONS}{suffix}")).map_err(|e| SimError::encoding("an SGX extension", e))
}

/// Intel's SGX extension (PCK certificate profile, "Intel SGX Extensions"): PPID, TCB
/// (16 component SVNs, PCESVN, CPUSVN), PCE-ID, FMSPC, SGX type.
fn sgx_extension(ppid: &[u8; 16]) -> Result<VendorExtension, SimError> {
    let bad = |e: der::Error| SimError::encoding("the SGX extension", e);
    let octets =
        |b: &[u8]| -> Result<Any, SimError> { OctetString::new(b).and_then(|o| Any::encode_from(&o)).map_err(bad) };
    let number = |n: u32| Any::encode_from(&n).map_err(bad);
    let mut tcb = Vec::new();
    for (i, svn) in SGX_TCB.iter().enumerate() {
        tcb.push(Entry { oid: oid(&format!(".2.{}", i + 1))?, value: number(u32::from(*svn))? });
    }
    tcb.push(Entry { oid: oid(".2.17")?, value: number(u32::from(PCE_SVN))? });
    tcb.push(Entry { oid: oid(".2.18")?, value: octets(&CPU_SVN)? });
    let entries = vec![
        Entry { oid: oid(".1")?, value: octets(ppid)? },
        Entry { oid: oid(".2")?, value: Any::encode_from(&tcb).map_err(bad)? },
        Entry { oid: oid(".3")?, value: octets(&PCE_ID)? },
        Entry { oid: oid(".4")?, value: octets(&FMSPC)? },
        Entry { oid: oid(".5")?, value: Any::new(der::Tag::Enumerated, [0u8]).map_err(bad)? },
    ];
    Ok(VendorExtension { oid: oid("")?, value_der: entries.to_der().map_err(bad)? })
}

/// RFC 3339 (UTC, seconds), as Intel's collateral writes its dates.
fn rfc3339(t: SystemTime) -> Result<String, SimError> {
    der::DateTime::from_system_time(t).map(|t| t.to_string()).map_err(|e| SimError::encoding("a collateral date", e))
}

/// The simulated TDX platform: its keys and certificates (persistent), and the state of the
/// TD it runs (MRTD, RTMRs; per launch).
pub struct SimTdx {
    root: Identity<SigningKey>,
    intermediate: Identity<SigningKey>,
    pck: Identity<SigningKey>,
    tcb_signer: Identity<SigningKey>,
    attestation_key: SigningKey,
    /// The key of the simulated REPORTMACSTRUCT MAC (the CPU's report key on hardware).
    mac_key: Zeroizing<[u8; 32]>,
    qe_mr_signer: [u8; 32],
    qe_auth_data: [u8; 32],
    mr_td: [u8; 48],
    rtmr: [[u8; 48]; 4],
    format: QuoteFormat,
}

/// What the simulated platform produces: the quote version and the TD report/quote body
/// generation (a TDX 1.5 module writes TDREPORT version 1, from which the quoting enclave
/// derives a TD 1.5 body, which only a version 5 quote can carry).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum QuoteFormat {
    /// DCAP quote v4 with a TD 1.0 body (TDX module 1.0).
    #[default]
    V4,
    /// DCAP quote v5, body type 2 (TD 1.0).
    V5Td10,
    /// DCAP quote v5, body type 3 (TD 1.5: TEE_TCB_SVN_2 and MRSERVICETD).
    V5Td15,
}

impl std::str::FromStr for QuoteFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "4" => Ok(Self::V4),
            "5" | "5-td10" => Ok(Self::V5Td10),
            "5-td15" => Ok(Self::V5Td15),
            other => Err(format!("{other:?}: expected 4, 5 (TD 1.0 body) or 5-td15 (TD 1.5 body)")),
        }
    }
}

impl std::fmt::Debug for SimTdx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimTdx").field("mr_td", &hex::encode(self.mr_td)).finish_non_exhaustive()
    }
}

impl SimTdx {
    /// Loads the simulated platform from `dir`, or creates it there.
    pub fn load_or_create(dir: &Path) -> Result<Self, SimError> {
        let _lock = state::lock(dir)?;
        let o = "O=TWI simulated TEE";
        let root = certs::load_or_create(
            dir,
            Template::new("root", &format!("CN=Sim SGX Root CA,{o}"), Role::Ca { path_len: 1 }, vec![]),
            None,
        )?;
        let intermediate = certs::load_or_create(
            dir,
            Template::new("intermediate", &format!("CN=Sim SGX PCK Platform CA,{o}"), Role::Ca { path_len: 0 }, vec![]),
            Some(&root),
        )?;
        let ppid: [u8; 16] = state::hex_bytes(&dir.join("ppid.hex"), false)?;
        let pck = certs::load_or_create(
            dir,
            Template::new(
                "pck",
                &format!("CN=Sim SGX PCK Certificate,{o}"),
                Role::Endorsement,
                vec![sgx_extension(&ppid)?],
            ),
            Some(&intermediate),
        )?;
        let tcb_signer = certs::load_or_create(
            dir,
            Template::new("tcb-signing", &format!("CN=Sim SGX TCB Signing,{o}"), Role::Endorsement, vec![]),
            Some(&root),
        )?;
        // Per process: the quoting enclave makes a new attestation key when it starts.
        let attestation_key = SigningKey::generate()?;
        let mut mac_key = Zeroizing::new([0u8; 32]);
        random(mac_key.as_mut())?;
        let mut qe_auth_data = [0u8; 32];
        random(&mut qe_auth_data)?;
        let qe_mr_signer: [u8; 32] = Sha256::digest(b"TWI simulated TD quoting enclave signer").into();
        Ok(Self {
            root,
            intermediate,
            pck,
            tcb_signer,
            attestation_key,
            mac_key,
            qe_mr_signer,
            qe_auth_data,
            mr_td: [0; 48],
            rtmr: [[0; 48]; 4],
            format: QuoteFormat::V4,
        })
    }

    /// Makes the platform produce quotes (and TD reports) of `format` from now on.
    pub fn set_quote_format(&mut self, format: QuoteFormat) {
        self.format = format;
    }

    /// The root an issuer must be told to trust to accept this platform's quotes.
    pub fn root(&self) -> &Certificate {
        &self.root.cert
    }

    /// Starts a TD whose MRTD is `mr_td`: RTMRs back to zero.
    pub fn launch(&mut self, mr_td: [u8; 48]) {
        self.mr_td = mr_td;
        self.rtmr = [[0; 48]; 4];
    }

    /// The RTMRs as the TD left them.
    pub fn rtmrs(&self) -> [[u8; 48]; 4] {
        self.rtmr
    }

    /// TDG.MR.RTMR.EXTEND: `index ‖ digest` (49 bytes, index 0..=3 as the TDX module allows:
    /// `tdg_mr_rtmr_extend` refuses `index >= NUM_RTMRS`). Status 0, or non-zero
    /// (TDX_OPERAND_INVALID) for a malformed request.
    pub fn extend(&mut self, request: &[u8]) -> u64 {
        const TDX_OPERAND_INVALID: u64 = 0xC000_0100_0000_0000;
        let Some((&index, digest)) = request.split_first() else { return TDX_OPERAND_INVALID };
        let (Some(slot), Ok(digest)) = (self.rtmr.get_mut(usize::from(index)), <&[u8; 48]>::try_from(digest)) else {
            return TDX_OPERAND_INVALID;
        };
        *slot = rtmr::extend(slot, digest);
        0
    }

    fn mac(&self, report: &[u8; TD_REPORT_SIZE]) -> [u8; 32] {
        use twi_attester::tdx::td_report::report_offset::MAC;
        let digest = Sha384::new()
            .chain_update(b"TWI simulated REPORTMACSTRUCT MAC")
            .chain_update(self.mac_key.as_ref())
            .chain_update(&report[..MAC])
            .chain_update(&report[MAC + 32..])
            .finalize();
        let mut mac = [0u8; 32];
        mac.copy_from_slice(&digest[..32]);
        mac
    }

    /// TDG.MR.REPORT: the TDREPORT for a 64-byte REPORTDATA, or a failure status.
    pub fn report(&self, report_data: &[u8]) -> Result<Vec<u8>, u64> {
        const TDX_OPERAND_INVALID: u64 = 0xC000_0100_0000_0000;
        let report_data: [u8; 64] = report_data.try_into().map_err(|_| TDX_OPERAND_INVALID)?;
        // TDREPORT version (REPORTTYPE.VERSION): 0 from a TDX 1.0 module, 1 from TDX 1.5,
        // which also reports TEE_TCB_SVN_2 and the service-TD hash.
        let td15 = self.format == QuoteFormat::V5Td15;
        let mut report = TdReport {
            report_type: [REPORT_TYPE_TDX, 0, u8::from(td15), 0],
            cpu_svn: CPU_SVN,
            tee_tcb_info_hash: [0; 48],
            tee_info_hash: [0; 48],
            report_data,
            mac: [0; 32],
            tee_tcb_info_valid: [0xFF, 0x01, 0, 0, 0, 0, 0, 0],
            tee_tcb_svn: TEE_TCB_SVN,
            mr_seam: Sha384::digest(b"TWI simulated TDX module").into(),
            mr_signer_seam: [0; 48],
            seam_attributes: [0; 8],
            tee_tcb_svn_2: if td15 { TEE_TCB_SVN } else { [0; 16] },
            td_attributes: [0; 8],
            xfam: XFAM,
            mr_td: self.mr_td,
            mr_config_id: [0; 48],
            mr_owner: [0; 48],
            mr_owner_config: [0; 48],
            rtmr: self.rtmr,
            servtd_hash: [0; 48],
        };
        let bytes = report.to_bytes();
        use twi_attester::tdx::td_report::report_offset::{TDINFO, TEE_TCB_INFO, TEE_TCB_INFO_SIZE};
        report.tee_tcb_info_hash = Sha384::digest(&bytes[TEE_TCB_INFO..TEE_TCB_INFO + TEE_TCB_INFO_SIZE]).into();
        report.tee_info_hash = Sha384::digest(&bytes[TDINFO..]).into();
        let mut bytes = report.to_bytes();
        report.mac = self.mac(&bytes);
        bytes = report.to_bytes();
        Ok(bytes.to_vec())
    }

    /// TDG.VP.VMCALL<GetQuote>: the guest's buffer (header + TDREPORT) in, the buffer with the
    /// quote (or a failure status) out, as QEMU's quote generator writes it back. The guest
    /// sends only the request part; `capacity` is the size of its whole buffer.
    pub fn get_quote(&self, request: &[u8], capacity: usize) -> Vec<u8> {
        let mut buffer = vec![0u8; capacity.max(request.len()).min(getquote::MAX_BUFFER)];
        let n = request.len().min(buffer.len());
        buffer[..n].copy_from_slice(&request[..n]);
        let result = match getquote::parse_request(&buffer) {
            Ok(report) if TdReport::parse(&report).mac == self.mac(&report) => {
                self.quote(&report).map_err(|_| STATUS_ERROR)
            }
            _ => Err(STATUS_ERROR),
        };
        let len = match getquote::encode_response(result.as_deref().map_err(|e| *e), &mut buffer) {
            Ok(len) => len,
            Err(_) => getquote::encode_response(Err(STATUS_ERROR), &mut buffer).unwrap_or(getquote::HEADER_SIZE),
        };
        buffer.truncate(len);
        buffer
    }

    /// The TDX doorbells as the channel carries them: `TDG.MR.REPORT`, `TDG.MR.RTMR.EXTEND`
    /// (a status and no payload) and `TDG.VP.VMCALL<GetQuote>` (the GHCI buffer, of the size
    /// the runtime's buffer has: the channel carries only its request part). `None`: not a TDX
    /// doorbell (an SEV-SNP guest request), which this module does not have.
    pub fn doorbell(&mut self, request: &DoorbellRequest) -> Option<DoorbellResponse> {
        let (status, response) = match request.kind {
            DoorbellKind::TdxReport => match self.report(&request.request) {
                Ok(report) => (0, report),
                Err(status) => (status, Vec::new()),
            },
            DoorbellKind::TdxRtmrExtend => (self.extend(&request.request), Vec::new()),
            DoorbellKind::TdxGetQuote => {
                // QEMU's checks of the buffer header come before any answer in the buffer.
                match crate::host::tdx::get_quote_header(GET_QUOTE_CAPACITY as u64, &request.request) {
                    Ok(_) => (0, self.get_quote(&request.request, GET_QUOTE_CAPACITY)),
                    Err(refusal) => (refusal_status(&refusal), Vec::new()),
                }
            }
            DoorbellKind::SnpGuestRequest | DoorbellKind::SnpExtGuestRequest | DoorbellKind::SvsmCall => return None,
        };
        Some(DoorbellResponse { kind: request.kind, status, response, certificates: None })
    }

    fn pck_chain_pem(&self) -> Result<Vec<u8>, SimError> {
        let mut pem = Vec::new();
        for cert in [&self.pck.cert, &self.intermediate.cert, &self.root.cert] {
            let text = cert.to_pem(der::pem::LineEnding::LF).map_err(|e| SimError::encoding("the PCK chain", e))?;
            pem.extend_from_slice(text.as_bytes());
        }
        Ok(pem)
    }

    /// The quoting enclave: a DCAP quote (v4, or v5 per [`QuoteFormat`]) for `td_report`.
    pub fn quote(&self, td_report: &[u8; TD_REPORT_SIZE]) -> Result<Vec<u8>, SimError> {
        let report = TdReport::parse(td_report);
        let point = self.attestation_key.verifying_key().to_sec1_point(false);
        let mut attestation_key = [0u8; 64];
        attestation_key.copy_from_slice(&point.as_bytes()[1..]);
        let mut qe_report_data = [0u8; 64];
        let binding: [u8; 32] =
            Sha256::new().chain_update(attestation_key).chain_update(self.qe_auth_data).finalize().into();
        qe_report_data[..32].copy_from_slice(&binding);
        let qe_report = EnclaveReport {
            cpu_svn: CPU_SVN,
            misc_select: 0,
            reserved_1: [0; 28],
            attributes: QE_ATTRIBUTES,
            mr_enclave: Sha256::digest(b"TWI simulated TD quoting enclave").into(),
            reserved_2: [0; 32],
            mr_signer: self.qe_mr_signer,
            reserved_3: [0; 96],
            isv_prod_id: QE_ISV_PROD_ID,
            isv_svn: QE_ISV_SVN,
            reserved_4: [0; 60],
            report_data: qe_report_data,
        }
        .to_bytes();
        let qe_sig: Signature = self.pck.key.sign(&qe_report);
        let pck_chain = self.pck_chain_pem()?;
        let mut quote = Quote {
            header: QuoteHeader {
                version: if self.format == QuoteFormat::V4 { 4 } else { 5 },
                att_key_type: ATT_KEY_TYPE_ECDSA_P256,
                tee_type: TEE_TYPE_TDX,
                reserved: [0; 4],
                qe_vendor_id: INTEL_QE_VENDOR_ID,
                user_data: [0; 20],
            },
            body: report.quote_body(),
            signature: [0; 64],
            attestation_key,
            qe_report,
            qe_report_signature: qe_sig.to_bytes().into(),
            qe_auth_data: &self.qe_auth_data,
            pck_chain: &pck_chain,
        };
        let mut out = vec![0u8; quote.encoded_len()];
        quote.encode(&mut out).map_err(|e| SimError::encoding("the quote", e))?;
        let signature: Signature = self.attestation_key.sign(&out[..quote.signed_len()]);
        quote.signature = signature.to_bytes().into();
        quote.encode(&mut out).map_err(|e| SimError::encoding("the quote", e))?;
        Ok(out)
    }

    fn signed_json(&self, body: String) -> SignedJson {
        let signature: Signature = self.tcb_signer.key.sign(body.as_bytes());
        SignedJson { body: body.into_bytes(), signature: signature.to_bytes().into() }
    }

    /// TCB info and QE identity for this platform, signed by the simulated TCB signing key and
    /// current for 30 days from now (Intel PCS API v4 formats).
    pub fn collateral(&self) -> Result<Collateral, SimError> {
        let now = SystemTime::now();
        let issued = rfc3339(now - Duration::from_secs(3600))?;
        let next = rfc3339(now + Duration::from_secs(30 * 24 * 3600))?;
        let svns = |v: &[u8]| v.iter().map(|s| serde_json::json!({ "svn": s })).collect::<Vec<_>>();
        let zeros48 = hex::encode([0u8; 48]);
        let mut tdx_components = [0u8; 16];
        tdx_components[..2].copy_from_slice(&TEE_TCB_SVN[..2]);
        let tcb_info = serde_json::json!({
            "id": "TDX", "version": 3, "issueDate": issued, "nextUpdate": next,
            "fmspc": hex::encode(FMSPC), "pceId": hex::encode(PCE_ID), "tcbType": 0,
            "tcbEvaluationDataNumber": TCB_EVALUATION_DATA_NUMBER,
            "tdxModule": { "mrsigner": zeros48, "attributes": "0000000000000000", "attributesMask": "FFFFFFFFFFFFFFFF" },
            "tdxModuleIdentities": [{
                "id": "TDX_01", "mrsigner": zeros48, "attributes": "0000000000000000",
                "attributesMask": "FFFFFFFFFFFFFFFF",
                "tcbLevels": [{ "tcb": { "isvsvn": TEE_TCB_SVN[0] }, "tcbDate": issued, "tcbStatus": "UpToDate" }]
            }],
            "tcbLevels": [{
                "tcb": { "sgxtcbcomponents": svns(&SGX_TCB), "pcesvn": PCE_SVN, "tdxtcbcomponents": svns(&tdx_components) },
                "tcbDate": issued, "tcbStatus": "UpToDate"
            }]
        });
        let qe_identity = serde_json::json!({
            "id": "TD_QE", "version": 2, "issueDate": issued, "nextUpdate": next,
            "tcbEvaluationDataNumber": TCB_EVALUATION_DATA_NUMBER,
            "miscselect": "00000000", "miscselectMask": "FFFFFFFF",
            "attributes": hex::encode(QE_ATTRIBUTES).to_uppercase(), "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000",
            "mrsigner": hex::encode(self.qe_mr_signer).to_uppercase(), "isvprodid": QE_ISV_PROD_ID,
            "tcbLevels": [{ "tcb": { "isvsvn": QE_ISV_SVN }, "tcbDate": issued, "tcbStatus": "UpToDate" }]
        });
        let cert =
            |c: &Certificate| Cert::from_certificate(c).map_err(|e| SimError::encoding("the TCB signing chain", e));
        let chain = vec![cert(&self.tcb_signer.cert)?, cert(&self.root.cert)?];
        Ok(Collateral {
            tcb_info: self.signed_json(tcb_info.to_string()),
            tcb_info_chain: chain.clone(),
            qe_identity: self.signed_json(qe_identity.to_string()),
            qe_identity_chain: chain,
            pck_crl: None,
            root_ca_crl: None,
            source: "the simulated TDX platform".into(),
        })
    }
}

/// The TDG.VP.VMCALL status a host refusal leaves in R10 (the doorbell's status).
fn refusal_status(refusal: &crate::host::Refusal) -> u64 {
    match refusal.answer {
        crate::host::Answer::Tdvmcall(status) => status,
        _ => twi_attester::tdx::abi::vmcall_status::OPERAND_INVALID,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verifier::tdx::{TdxAnchor, TdxConfig, TdxTrust};
    use twi_attester::tdx::quote::ParsedQuote;

    #[test]
    fn quotes_verify_with_the_intel_verifier_under_the_simulated_root() {
        let dir = tempfile::tempdir().unwrap();
        let mut tdx = SimTdx::load_or_create(dir.path()).unwrap();
        tdx.launch([5; 48]);
        assert_eq!(tdx.extend(&[[2u8].as_slice(), &[9; 48]].concat()), 0);
        assert_ne!(tdx.extend(&[4; 49]), 0);
        assert_ne!(tdx.extend(&[1; 48]), 0);
        let report = tdx.report(&[0xAB; 64]).unwrap();
        let mut buffer = vec![0u8; 12 * 1024];
        let len = getquote::encode_request(&report.clone().try_into().unwrap(), &mut buffer).unwrap();
        let answer = tdx.get_quote(&buffer[..len], buffer.len());
        let quote = getquote::parse_response(&answer).unwrap();

        let root = Cert::from_certificate(tdx.root()).unwrap();
        let config = TdxConfig { trust: TdxTrust::intel().with_simulated_root(&root), policy: Default::default() };
        let collateral = tdx.collateral().unwrap();
        let appraisal =
            crate::verifier::tdx::appraise_with(quote, Some(&collateral), &config, SystemTime::now()).unwrap();
        assert!(matches!(appraisal.anchor, TdxAnchor::Simulated { .. }));
        assert_eq!(appraisal.body.report_data, [0xAB; 64]);
        assert_eq!(appraisal.body.mr_td, [5; 48]);
        assert_eq!(appraisal.body.rtmr[2], rtmr::extend(&[0; 48], &[9; 48]));
        assert_eq!(appraisal.tcb.unwrap().status, crate::verifier::tdx::TcbStatus::UpToDate);
        // Intel's root alone does not accept it.
        let intel = TdxConfig::default();
        assert!(crate::verifier::tdx::appraise_with(quote, Some(&collateral), &intel, SystemTime::now()).is_err());
        assert_eq!(ParsedQuote::parse(quote).unwrap().len, quote.len());

        // A TDREPORT altered on its way to the quoting enclave is refused.
        let mut forged = buffer.clone();
        forged[24 + 528] ^= 1; // MRTD
        let answer = tdx.get_quote(&forged[..len], forged.len());
        assert_eq!(getquote::parse_response(&answer), Err(getquote::GetQuoteError::Failed(STATUS_ERROR)));

        // The same platform comes back from disk.
        let again = SimTdx::load_or_create(dir.path()).unwrap();
        assert_eq!(again.root(), tdx.root());
    }

    /// Quote v5 with either body: the header, the body type and the TD 1.5 fields are what the
    /// format says, and the Intel verifier accepts each under the simulated root.
    #[test]
    fn version_5_quotes_carry_td10_or_td15_bodies() {
        let dir = tempfile::tempdir().unwrap();
        let mut tdx = SimTdx::load_or_create(dir.path()).unwrap();
        tdx.launch([5; 48]);
        let root = Cert::from_certificate(tdx.root()).unwrap();
        let config = TdxConfig { trust: TdxTrust::intel().with_simulated_root(&root), policy: Default::default() };
        let collateral = tdx.collateral().unwrap();
        for (format, version, td15) in
            [(QuoteFormat::V4, 4, false), (QuoteFormat::V5Td10, 5, false), (QuoteFormat::V5Td15, 5, true)]
        {
            tdx.set_quote_format(format);
            let report: [u8; TD_REPORT_SIZE] = tdx.report(&[0xCD; 64]).unwrap().try_into().unwrap();
            assert_eq!(TdReport::parse(&report).report_type[2], u8::from(td15), "{format:?}");
            let quote = tdx.quote(&report).unwrap();
            let parsed = ParsedQuote::parse(&quote).unwrap();
            assert_eq!(parsed.quote.header.version, version, "{format:?}");
            assert_eq!(parsed.quote.body.is_td15(), td15, "{format:?}");
            assert_eq!(parsed.len, quote.len());
            let appraisal = crate::verifier::tdx::appraise_with(&quote, Some(&collateral), &config, SystemTime::now())
                .unwrap_or_else(|e| panic!("{format:?}: {e}"));
            assert_eq!(appraisal.header.version, version);
            assert_eq!(appraisal.body.report_data, [0xCD; 64]);
            assert_eq!(appraisal.body.tee_tcb_svn_2, td15.then_some(TEE_TCB_SVN));
        }
        assert!("6".parse::<QuoteFormat>().is_err());
        assert_eq!("5-td15".parse::<QuoteFormat>(), Ok(QuoteFormat::V5Td15));
    }

    /// The doorbells carry the module's calls: a report over 64 bytes of REPORTDATA, an
    /// extension refused for a bad index, and no SEV-SNP guest request.
    #[test]
    fn doorbells_carry_report_extend_and_refuse_snp_requests() {
        let dir = tempfile::tempdir().unwrap();
        let mut tdx = SimTdx::load_or_create(dir.path()).unwrap();
        tdx.launch([5; 48]);
        let report = tdx.doorbell(&DoorbellRequest { kind: DoorbellKind::TdxReport, request: vec![0xAB; 64] }).unwrap();
        assert_eq!((report.status, report.response.len()), (0, TD_REPORT_SIZE));
        let short = tdx.doorbell(&DoorbellRequest { kind: DoorbellKind::TdxReport, request: vec![0xAB; 63] }).unwrap();
        assert_ne!(short.status, 0);
        let extend =
            DoorbellRequest { kind: DoorbellKind::TdxRtmrExtend, request: [[4u8].as_slice(), &[9; 48]].concat() };
        assert_ne!(tdx.doorbell(&extend).unwrap().status, 0);
        let snp = DoorbellRequest { kind: DoorbellKind::SnpGuestRequest, request: vec![0; 64] };
        assert_eq!(tdx.doorbell(&snp), None);
    }

    /// A GetQuote buffer QEMU would refuse (`tdx_handle_get_quote`) gets QEMU's TDVMCALL status,
    /// not a quote; the runtime's own buffer gets a quote.
    #[test]
    fn get_quote_doorbells_meet_qemus_header_checks() {
        use twi_attester::tdx::abi::vmcall_status;
        let dir = tempfile::tempdir().unwrap();
        let mut tdx = SimTdx::load_or_create(dir.path()).unwrap();
        tdx.launch([5; 48]);
        let report: [u8; TD_REPORT_SIZE] = tdx.report(&[0xAB; 64]).unwrap().try_into().unwrap();
        let mut buffer = vec![0u8; GET_QUOTE_CAPACITY];
        let len = getquote::encode_request(&report, &mut buffer).unwrap();
        let mut ask =
            |request: Vec<u8>| tdx.doorbell(&DoorbellRequest { kind: DoorbellKind::TdxGetQuote, request }).unwrap();
        let answer = ask(buffer[..len].to_vec());
        assert_eq!(answer.status, 0);
        assert!(getquote::parse_response(&answer.response).is_ok());
        let mut version_0 = buffer[..len].to_vec();
        version_0[0] = 0;
        let mut overlong = buffer[..len].to_vec();
        overlong[16..20].copy_from_slice(&(GET_QUOTE_CAPACITY as u32).to_le_bytes());
        for (request, what) in [(version_0, "version 0"), (overlong, "in_len past the buffer"), (vec![1; 8], "short")] {
            let answer = ask(request);
            assert_eq!(answer.status, vmcall_status::OPERAND_INVALID, "{what}");
            assert!(answer.response.is_empty(), "{what}");
        }
    }
}
