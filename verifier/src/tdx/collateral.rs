//! TDX collateral: the TCB info and QE identity Intel's PCS signs, their issuer chain, and the
//! CRLs — loaded from files (the verifier is offline) in either of two forms:
//!
//! 1. **dcap-qvl JSON** (`QuoteCollateralV3`, as Phala's dcap-qvl and many PCCS clients save
//!    it): one object with `tcb_info` and `qe_identity` (the signed JSON, as strings),
//!    `tcb_info_signature` and `qe_identity_signature` (hex r‖s), `tcb_info_issuer_chain`,
//!    `qe_identity_issuer_chain` and `pck_crl_issuer_chain` (PEM), `root_ca_crl` and `pck_crl`
//!    (hex DER).
//! 2. **Raw PCS responses** in a directory:
//!
//! ```text
//! DIR/tcb_info.json                 body of GET /tdx/certification/v4/tcb?fmspc=…
//!                                   ({"tcbInfo":{…},"signature":"…"})
//! DIR/tcb_info_issuer_chain.pem     its TCB-Info-Issuer-Chain header, URL-decoded (PEM)
//! DIR/qe_identity.json              body of GET /tdx/certification/v4/qe/identity
//!                                   ({"enclaveIdentity":{…},"signature":"…"})
//! DIR/qe_identity_issuer_chain.pem  optional: its issuer chain (default: the TCB info's)
//! DIR/pck_crl.der                   optional: GET /sgx/certification/v4/pckcrl?ca=platform|processor
//! DIR/root_ca_crl.der               optional: the Intel SGX Root CA CRL
//! ```
//!
//! CRLs may be DER, PEM or hex. The names Google's go-tdx-guest test data uses are accepted
//! too (`sample_tcbInfo_response`, `sample_qeIdentity_response`, `pckcrl`, `rootcrl.der`).
//!
//! [`Collateral::load`] takes a dcap-qvl JSON file, or a directory holding either form; a
//! directory may also hold one subdirectory per platform, named by FMSPC in lowercase hex
//! (`DIR/b0c06f000000/…`), which is used when it exists.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::bundle::read_certificates;
use crate::chain::{Cert, Crl};

/// Signed JSON: the exact bytes Intel signed, and the signature (ECDSA P-256, r‖s).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedJson {
    pub body: Vec<u8>,
    pub signature: [u8; 64],
}

/// Everything the TCB evaluation needs, as loaded (nothing verified yet).
#[derive(Clone, Debug)]
pub struct Collateral {
    pub tcb_info: SignedJson,
    /// Intel SGX TCB Signing certificate first, root last.
    pub tcb_info_chain: Vec<Cert>,
    pub qe_identity: SignedJson,
    pub qe_identity_chain: Vec<Cert>,
    /// The CRL of the PCK leaf's issuer (Platform or Processor CA).
    pub pck_crl: Option<Crl>,
    /// The Intel SGX Root CA's CRL.
    pub root_ca_crl: Option<Crl>,
    /// Where it came from, for messages.
    pub source: String,
}

/// Collateral that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read TDX collateral from {source_}: {why}")]
pub struct CollateralError {
    pub source_: String,
    pub why: String,
}

fn err(source: &Path, why: impl Into<String>) -> CollateralError {
    CollateralError { source_: source.display().to_string(), why: why.into() }
}

fn signature(hex_text: &str, source: &Path, what: &str) -> Result<[u8; 64], CollateralError> {
    hex::decode(hex_text.trim())
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .ok_or_else(|| err(source, format!("the {what} signature is not 64 bytes of hex")))
}

/// An issuer chain: PEM or DER, any order, duplicates dropped (the path is built when the
/// signature is verified).
fn chain(pem: &[u8], source: &Path, what: &str) -> Result<Vec<Cert>, CollateralError> {
    read_certificates(pem, what).map_err(|e| err(source, format!("{what}: {e}")))
}

/// A CRL given as DER, PEM or hex text.
pub fn crl_from_any(bytes: &[u8], what: &str) -> Result<Crl, String> {
    let text = std::str::from_utf8(bytes).ok().map(str::trim);
    let der = if let Some(Ok((_, der))) =
        text.filter(|t| t.starts_with("-----BEGIN")).map(|t| der::pem::decode_vec(t.as_bytes()))
    {
        der
    } else if let Some(Ok(der)) = text.filter(|t| !t.is_empty()).map(hex::decode) {
        der
    } else {
        bytes.to_vec()
    };
    Crl::from_der(&der, what).map_err(|e| e.to_string())
}

#[derive(Deserialize)]
struct DcapQvlJson {
    tcb_info_issuer_chain: String,
    tcb_info: String,
    tcb_info_signature: String,
    qe_identity_issuer_chain: String,
    qe_identity: String,
    qe_identity_signature: String,
    #[serde(default)]
    root_ca_crl: Option<String>,
    #[serde(default)]
    pck_crl: Option<String>,
}

#[derive(Deserialize)]
struct TcbInfoResponse<'a> {
    #[serde(rename = "tcbInfo", borrow)]
    tcb_info: &'a RawValue,
    signature: String,
}

#[derive(Deserialize)]
struct QeIdentityResponse<'a> {
    #[serde(rename = "enclaveIdentity", borrow)]
    identity: &'a RawValue,
    signature: String,
}

const TCB_INFO_NAMES: [&str; 2] = ["tcb_info.json", "sample_tcbInfo_response"];
const TCB_CHAIN_NAMES: [&str; 1] = ["tcb_info_issuer_chain.pem"];
const QE_NAMES: [&str; 2] = ["qe_identity.json", "sample_qeIdentity_response"];
const QE_CHAIN_NAMES: [&str; 1] = ["qe_identity_issuer_chain.pem"];
const PCK_CRL_NAMES: [&str; 2] = ["pck_crl.der", "pckcrl"];
const ROOT_CRL_NAMES: [&str; 2] = ["root_ca_crl.der", "rootcrl.der"];

fn first_existing(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    names.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

fn read(path: &Path) -> Result<Vec<u8>, CollateralError> {
    std::fs::read(path).map_err(|e| err(path, e.to_string()))
}

impl Collateral {
    /// Parses dcap-qvl's JSON collateral.
    pub fn from_dcap_qvl_json(bytes: &[u8], source: &Path) -> Result<Self, CollateralError> {
        let j: DcapQvlJson =
            serde_json::from_slice(bytes).map_err(|e| err(source, format!("not dcap-qvl JSON ({e})")))?;
        let crl = |hex_text: &Option<String>, what: &str| -> Result<Option<Crl>, CollateralError> {
            hex_text
                .as_deref()
                .filter(|t| !t.is_empty())
                .map(|t| crl_from_any(t.as_bytes(), what).map_err(|e| err(source, e)))
                .transpose()
        };
        Ok(Self {
            tcb_info: SignedJson {
                body: j.tcb_info.into_bytes(),
                signature: signature(&j.tcb_info_signature, source, "TCB info")?,
            },
            tcb_info_chain: chain(j.tcb_info_issuer_chain.as_bytes(), source, "tcb_info_issuer_chain")?,
            qe_identity: SignedJson {
                body: j.qe_identity.into_bytes(),
                signature: signature(&j.qe_identity_signature, source, "QE identity")?,
            },
            qe_identity_chain: chain(j.qe_identity_issuer_chain.as_bytes(), source, "qe_identity_issuer_chain")?,
            pck_crl: crl(&j.pck_crl, "pck_crl")?,
            root_ca_crl: crl(&j.root_ca_crl, "root_ca_crl")?,
            source: source.display().to_string(),
        })
    }

    /// Reads raw PCS responses from `dir` (layout in the module documentation).
    pub fn from_pcs_dir(dir: &Path) -> Result<Self, CollateralError> {
        let need = |names: &[&str], what: &str| {
            first_existing(dir, names)
                .ok_or_else(|| err(dir, format!("{what} is missing (expected {})", names.join(" or "))))
        };
        let tcb_path = need(&TCB_INFO_NAMES, "the TCB info")?;
        let tcb_bytes = read(&tcb_path)?;
        let tcb: TcbInfoResponse<'_> = serde_json::from_slice(&tcb_bytes)
            .map_err(|e| err(&tcb_path, format!("not a PCS TCB info response ({e})")))?;
        let qe_path = need(&QE_NAMES, "the QE identity")?;
        let qe_bytes = read(&qe_path)?;
        let qe: QeIdentityResponse<'_> = serde_json::from_slice(&qe_bytes)
            .map_err(|e| err(&qe_path, format!("not a PCS QE identity response ({e})")))?;
        let tcb_chain_path = need(&TCB_CHAIN_NAMES, "the TCB info issuer chain")?;
        let tcb_info_chain = chain(&read(&tcb_chain_path)?, &tcb_chain_path, "TCB info issuer chain")?;
        let qe_identity_chain = match first_existing(dir, &QE_CHAIN_NAMES) {
            Some(path) => chain(&read(&path)?, &path, "QE identity issuer chain")?,
            None => tcb_info_chain.clone(),
        };
        let crl = |names: &[&str]| -> Result<Option<Crl>, CollateralError> {
            first_existing(dir, names)
                .map(|path| crl_from_any(&read(&path)?, &path.display().to_string()).map_err(|e| err(&path, e)))
                .transpose()
        };
        Ok(Self {
            tcb_info: SignedJson {
                body: tcb.tcb_info.get().as_bytes().to_vec(),
                signature: signature(&tcb.signature, &tcb_path, "TCB info")?,
            },
            tcb_info_chain,
            qe_identity: SignedJson {
                body: qe.identity.get().as_bytes().to_vec(),
                signature: signature(&qe.signature, &qe_path, "QE identity")?,
            },
            qe_identity_chain,
            pck_crl: crl(&PCK_CRL_NAMES)?,
            root_ca_crl: crl(&ROOT_CRL_NAMES)?,
            source: dir.display().to_string(),
        })
    }

    /// Loads collateral for the platform `fmspc` from `path`: a dcap-qvl JSON file, or a
    /// directory with `<fmspc>/` subdirectories, `collateral.json` (or `*collateral*.json`),
    /// or raw PCS responses.
    pub fn load(path: &Path, fmspc: Option<&[u8; 6]>) -> Result<Self, CollateralError> {
        if path.is_file() {
            return Self::from_dcap_qvl_json(&read(path)?, path);
        }
        if !path.is_dir() {
            return Err(err(path, "no such file or directory"));
        }
        if let Some(sub) = fmspc.map(|f| path.join(hex::encode(f))).filter(|p| p.is_dir()) {
            return Self::load(&sub, None);
        }
        let json = std::fs::read_dir(path)
            .map_err(|e| err(path, e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|x| x == "json")
                    && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.contains("collateral"))
            })
            .min();
        match json {
            Some(file) => Self::from_dcap_qvl_json(&read(&file)?, &file),
            None => Self::from_pcs_dir(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_value_keeps_the_signed_bytes_exactly() {
        let body = br#"{"tcbInfo":{"id":"TDX", "a" : [1, 2]},"signature":"00"}"#;
        let r: TcbInfoResponse<'_> = serde_json::from_slice(body).unwrap();
        assert_eq!(r.tcb_info.get(), r#"{"id":"TDX", "a" : [1, 2]}"#);
    }

    #[test]
    fn missing_pieces_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = Collateral::load(dir.path(), None).unwrap_err();
        assert!(
            e.to_string().contains("the TCB info is missing (expected tcb_info.json or sample_tcbInfo_response)"),
            "{e}"
        );
        let e = Collateral::load(&dir.path().join("nope"), None).unwrap_err();
        assert!(e.to_string().contains("no such file or directory"), "{e}");
        std::fs::write(dir.path().join("collateral.json"), b"{}").unwrap();
        let e = Collateral::load(dir.path(), None).unwrap_err();
        assert!(e.to_string().contains("not dcap-qvl JSON"), "{e}");
    }
}
