//! Intel's TCB evaluation for TDX: the TCB info (JSON, `id` "TDX", version 3) and QE identity
//! (`id` "TD_QE", version 2) that Intel's PCS signs, and how a quote's platform, TDX module and
//! Quoting Enclave are matched against them (Intel "PCS API v4" documents the JSON; Intel's
//! "TDX DCAP Quote Verification" describes the matching, which the DCAP QVL implements).
//!
//! * Platform: the first TCB level (Intel lists them newest first) whose 16 SGX component
//!   SVNs and PCESVN are all at most the PCK certificate's, and whose 16 TDX component SVNs
//!   are at most the TD report's TEE_TCB_SVN — skipping bytes 0 and 1 when `TEE_TCB_SVN[1]` (the
//!   TDX module's major version) is not zero, as those are then judged by the module identity.
//! * TDX module: when `TEE_TCB_SVN[1]` > 0, the identity `TDX_%02X` of that major version: its
//!   MRSIGNER must be MRSIGNERSEAM, SEAMATTRIBUTES under its mask its attributes, and its
//!   first TCB level with ISVSVN at most `TEE_TCB_SVN[0]` gives the module's status. Otherwise
//!   the base `tdxModule` identity applies (signer and attributes only).
//! * QE: MRSIGNER, ISVPRODID, MISCSELECT and ATTRIBUTES (under their masks) of the QE report
//!   must be the identity's; its first TCB level with ISVSVN at most the report's gives the
//!   QE status.
//! * The statuses converge (a component that is OutOfDate makes the whole OutOfDate, or
//!   OutOfDateConfigurationNeeded; Revoked makes it Revoked), advisories are kept, and a TD
//!   1.5 report's current TCB (TEE_TCB_SVN_2) is judged too.

use std::fmt;

use serde::Deserialize;

use crate::lag::ComponentLag;

/// A TCB status, as the collateral spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
pub enum TcbStatus {
    UpToDate,
    SWHardeningNeeded,
    ConfigurationNeeded,
    ConfigurationAndSWHardeningNeeded,
    OutOfDate,
    OutOfDateConfigurationNeeded,
    Revoked,
    /// TD 1.5: the TD launched on an out-of-date TCB that has since been updated in place:
    /// relaunching the TD brings it up to date.
    TDRelaunchAdvised,
    TDRelaunchAdvisedConfigurationNeeded,
}

impl TcbStatus {
    pub const fn name(self) -> &'static str {
        match self {
            TcbStatus::UpToDate => "UpToDate",
            TcbStatus::SWHardeningNeeded => "SWHardeningNeeded",
            TcbStatus::ConfigurationNeeded => "ConfigurationNeeded",
            TcbStatus::ConfigurationAndSWHardeningNeeded => "ConfigurationAndSWHardeningNeeded",
            TcbStatus::OutOfDate => "OutOfDate",
            TcbStatus::OutOfDateConfigurationNeeded => "OutOfDateConfigurationNeeded",
            TcbStatus::Revoked => "Revoked",
            TcbStatus::TDRelaunchAdvised => "TDRelaunchAdvised",
            TcbStatus::TDRelaunchAdvisedConfigurationNeeded => "TDRelaunchAdvisedConfigurationNeeded",
        }
    }

    /// What a person should do about a platform in this state.
    pub const fn advice(self) -> &'static str {
        match self {
            TcbStatus::UpToDate => "nothing to do",
            TcbStatus::SWHardeningNeeded => {
                "the platform is current, but the advisories require software mitigations in the TD"
            }
            TcbStatus::ConfigurationNeeded => {
                "the platform is current, but its BIOS/host configuration must change (see the advisories)"
            }
            TcbStatus::ConfigurationAndSWHardeningNeeded => {
                "the platform is current, but needs configuration changes and software mitigations (see the advisories)"
            }
            TcbStatus::OutOfDate => "update the platform's microcode/BIOS and TDX module to the current TCB level",
            TcbStatus::OutOfDateConfigurationNeeded => {
                "update the platform's microcode/BIOS and TDX module, and change its configuration"
            }
            TcbStatus::Revoked => "the platform's keys are revoked: it cannot be trusted",
            TcbStatus::TDRelaunchAdvised => {
                "the platform was updated in place: relaunch the TD to run on the current TCB"
            }
            TcbStatus::TDRelaunchAdvisedConfigurationNeeded => {
                "relaunch the TD on the updated platform, and change the platform's configuration"
            }
        }
    }

    /// Merges a component's status into the platform's (Intel QVL's convergence).
    pub const fn converge(self, component: TcbStatus) -> TcbStatus {
        use TcbStatus::*;
        match (component, self) {
            (Revoked, _) => Revoked,
            (OutOfDate, UpToDate | SWHardeningNeeded) => OutOfDate,
            (OutOfDate, ConfigurationNeeded | ConfigurationAndSWHardeningNeeded) => OutOfDateConfigurationNeeded,
            _ => self,
        }
    }

    /// A TD 1.5 whose launch TCB is out of date but whose current TCB is not: relaunching
    /// it helps (Intel QVL's TD relaunch check).
    pub const fn with_current(self, current: TcbStatus) -> TcbStatus {
        use TcbStatus::*;
        let launch_config = matches!(self, OutOfDateConfigurationNeeded);
        match (self, current) {
            (
                OutOfDate | OutOfDateConfigurationNeeded,
                UpToDate | SWHardeningNeeded | ConfigurationNeeded | ConfigurationAndSWHardeningNeeded,
            ) => {
                if launch_config || matches!(current, ConfigurationNeeded | ConfigurationAndSWHardeningNeeded) {
                    TDRelaunchAdvisedConfigurationNeeded
                } else {
                    TDRelaunchAdvised
                }
            }
            _ => self,
        }
    }
}

impl fmt::Display for TcbStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Svn {
    pub svn: u16,
    /// What the component is, as TCB info version 3 names it ("BIOS", "OS/VMM").
    #[serde(default)]
    pub category: Option<String>,
    /// Which part ("Early Microcode Update", "TDX Module", "SEAMLDR ACM").
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

impl Svn {
    /// `"{prefix} {n} (category, type)"`, with what the TCB info says of it.
    fn name(&self, prefix: &str, n: usize) -> String {
        let about: Vec<&str> = self.category.iter().chain(self.kind.iter()).map(String::as_str).collect();
        if about.is_empty() { format!("{prefix} {n}") } else { format!("{prefix} {n} ({})", about.join(", ")) }
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct PlatformTcb {
    pub sgxtcbcomponents: Vec<Svn>,
    pub pcesvn: u16,
    #[serde(default)]
    pub tdxtcbcomponents: Vec<Svn>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TcbLevel {
    pub tcb: PlatformTcb,
    pub tcb_date: String,
    pub tcb_status: TcbStatus,
    #[serde(rename = "advisoryIDs", default)]
    pub advisory_ids: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct IsvSvn {
    pub isvsvn: u16,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IsvTcbLevel {
    pub tcb: IsvSvn,
    pub tcb_date: String,
    pub tcb_status: TcbStatus,
    #[serde(rename = "advisoryIDs", default)]
    pub advisory_ids: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TdxModule {
    pub mrsigner: String,
    pub attributes: String,
    pub attributes_mask: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TdxModuleIdentity {
    pub id: String,
    pub mrsigner: String,
    pub attributes: String,
    pub attributes_mask: String,
    pub tcb_levels: Vec<IsvTcbLevel>,
}

/// TCB info (TDX, version 3).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TcbInfo {
    pub id: String,
    pub version: u32,
    pub issue_date: String,
    pub next_update: String,
    pub fmspc: String,
    pub pce_id: String,
    pub tcb_type: u32,
    pub tcb_evaluation_data_number: u32,
    pub tdx_module: Option<TdxModule>,
    #[serde(default)]
    pub tdx_module_identities: Vec<TdxModuleIdentity>,
    pub tcb_levels: Vec<TcbLevel>,
}

/// QE identity (TD_QE, version 2).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QeIdentity {
    pub id: String,
    pub version: u32,
    pub issue_date: String,
    pub next_update: String,
    pub tcb_evaluation_data_number: u32,
    pub miscselect: String,
    pub miscselect_mask: String,
    pub attributes: String,
    pub attributes_mask: String,
    pub mrsigner: String,
    pub isvprodid: u16,
    pub tcb_levels: Vec<IsvTcbLevel>,
}

/// A mismatch between the quote and the collateral.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TcbError {
    #[error(
        "the collateral is for FMSPC {collateral}, but the PCK certificate's platform is FMSPC {pck}: use the TCB info for FMSPC {pck}"
    )]
    Fmspc { collateral: String, pck: String },
    #[error("the collateral is for PCE-ID {collateral}, but the PCK certificate says {pck}")]
    PceId { collateral: String, pck: String },
    #[error("the collateral is malformed: {0}")]
    Malformed(String),
    #[error(
        "no TCB level of the TCB info (evaluation data number {evaluation_data_number}) matches this platform (PCK SGX components {sgx}, PCESVN {pce_svn}, TEE_TCB_SVN {tdx}): its TCB is older than anything Intel lists, or it is a pre-production part"
    )]
    NoMatchingTcbLevel { evaluation_data_number: u32, sgx: String, pce_svn: u16, tdx: String },
    #[error(
        "the TCB info has no identity for TDX module major version {major} (TDX_{major:02X}): use current collateral"
    )]
    NoModuleIdentity { major: u8 },
    #[error(
        "the TDX module's {what} ({actual}) is not the one Intel's TCB info names ({expected}): it is not an Intel TDX module"
    )]
    ModuleIdentity { what: &'static str, expected: String, actual: String },
    #[error("the TDX module's SVN {svn} is below every TCB level of its identity TDX_{major:02X}")]
    NoModuleTcbLevel { major: u8, svn: u8 },
    #[error(
        "the Quoting Enclave's {what} ({actual}) is not the one Intel's QE identity names ({expected}): it is not Intel's TD Quoting Enclave"
    )]
    QeIdentity { what: &'static str, expected: String, actual: String },
    #[error("the Quoting Enclave's ISVSVN {svn} is below every TCB level of the QE identity")]
    NoQeTcbLevel { svn: u16 },
}

fn unhex(text: &str, what: &str) -> Result<Vec<u8>, TcbError> {
    hex::decode(text).map_err(|_| TcbError::Malformed(format!("{what} is not hex")))
}

fn masked_equal(actual: &[u8], expected: &str, mask: &str, what: &str) -> Result<bool, TcbError> {
    let (expected, mask) = (unhex(expected, what)?, unhex(mask, what)?);
    if expected.len() != actual.len() || mask.len() != actual.len() {
        return Err(TcbError::Malformed(format!("{what} has {} bytes, expected {}", expected.len(), actual.len())));
    }
    Ok(actual.iter().zip(&mask).zip(&expected).all(|((a, m), e)| a & m == e & m))
}

/// The platform facts the TCB is judged on.
#[derive(Clone, Copy, Debug)]
pub struct PlatformFacts<'a> {
    pub fmspc: [u8; 6],
    pub pce_id: [u8; 2],
    pub sgx_tcb_components: [u8; 16],
    pub pce_svn: u16,
    pub tee_tcb_svn: &'a [u8; 16],
    pub tee_tcb_svn_2: Option<&'a [u8; 16]>,
    pub mr_signer_seam: &'a [u8; 48],
    pub seam_attributes: &'a [u8; 8],
}

/// The Quoting Enclave facts the TCB is judged on.
#[derive(Clone, Copy, Debug)]
pub struct QeFacts<'a> {
    pub mr_signer: &'a [u8; 32],
    pub isv_prod_id: u16,
    pub misc_select: u32,
    pub attributes: &'a [u8; 16],
    pub isv_svn: u16,
}

impl<'a> QeFacts<'a> {
    /// The facts of the Quoting Enclave's own report (the quote's QE report body).
    pub fn of(report: &'a twi_attester::tdx::enclave_report::EnclaveReport) -> Self {
        Self {
            mr_signer: &report.mr_signer,
            isv_prod_id: report.isv_prod_id,
            misc_select: report.misc_select,
            attributes: &report.attributes,
            isv_svn: report.isv_svn,
        }
    }
}

/// The outcome of the TCB evaluation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcbVerdict {
    /// The converged status the decision is made on.
    pub status: TcbStatus,
    /// The platform's TCB level (SGX + TDX components).
    pub platform: TcbStatus,
    pub platform_tcb_date: String,
    /// The TDX module's level, when the module identity applies.
    pub module: Option<TcbStatus>,
    pub qe: TcbStatus,
    /// Every advisory of every matched level, without duplicates.
    pub advisory_ids: Vec<String>,
    pub tcb_evaluation_data_number: u32,
    pub fmspc: String,
    /// Every component below the newest TCB level Intel lists (platform SGX and TDX
    /// components, PCESVN, the TDX module's and the QE's ISVSVN): what to update, and by how
    /// much. Empty when the platform is at the newest level.
    pub behind: Vec<ComponentLag>,
}

fn add_advisories(into: &mut Vec<String>, from: &[String]) {
    for id in from {
        if !into.contains(id) {
            into.push(id.clone());
        }
    }
}

impl TcbInfo {
    /// Checks that this is TDX TCB info for the platform's FMSPC and PCE-ID.
    pub fn check_for(&self, facts: &PlatformFacts<'_>) -> Result<(), TcbError> {
        if self.id != "TDX" || self.version != 3 || self.tcb_type != 0 {
            return Err(TcbError::Malformed(format!(
                "TCB info id {:?} version {} type {} is not TDX TCB info version 3, type 0",
                self.id, self.version, self.tcb_type
            )));
        }
        let fmspc = unhex(&self.fmspc, "fmspc")?;
        if fmspc != facts.fmspc {
            return Err(TcbError::Fmspc { collateral: self.fmspc.to_lowercase(), pck: hex::encode(facts.fmspc) });
        }
        if unhex(&self.pce_id, "pceId")? != facts.pce_id {
            return Err(TcbError::PceId { collateral: self.pce_id.clone(), pck: hex::encode(facts.pce_id) });
        }
        Ok(())
    }

    /// The platform TCB level for TEE TCB SVN `tee`.
    fn platform_level(&self, facts: &PlatformFacts<'_>, tee: &[u8; 16]) -> Result<&TcbLevel, TcbError> {
        let skip = if tee[1] > 0 { 2 } else { 0 };
        for level in &self.tcb_levels {
            let t = &level.tcb;
            if t.sgxtcbcomponents.len() != 16 || t.tdxtcbcomponents.len() != 16 {
                return Err(TcbError::Malformed("a TCB level has not 16 SGX and 16 TDX components".into()));
            }
            let sgx_ok = t.sgxtcbcomponents.iter().zip(facts.sgx_tcb_components).all(|(l, p)| u16::from(p) >= l.svn);
            let tdx_ok = t.tdxtcbcomponents.iter().zip(tee).skip(skip).all(|(l, p)| u16::from(*p) >= l.svn);
            if sgx_ok && facts.pce_svn >= t.pcesvn && tdx_ok {
                return Ok(level);
            }
        }
        Err(TcbError::NoMatchingTcbLevel {
            evaluation_data_number: self.tcb_evaluation_data_number,
            sgx: hex::encode(facts.sgx_tcb_components),
            pce_svn: facts.pce_svn,
            tdx: hex::encode(tee),
        })
    }

    /// The TDX module identity check, and its TCB level when a module identity applies.
    fn module_level(&self, facts: &PlatformFacts<'_>, tee: &[u8; 16]) -> Result<Option<&IsvTcbLevel>, TcbError> {
        let major = tee[1];
        let (mrsigner, attributes, mask, levels) = if major > 0 {
            let id = format!("TDX_{major:02X}");
            let identity = self
                .tdx_module_identities
                .iter()
                .find(|m| m.id.eq_ignore_ascii_case(&id))
                .ok_or(TcbError::NoModuleIdentity { major })?;
            (&identity.mrsigner, &identity.attributes, &identity.attributes_mask, Some(&identity.tcb_levels))
        } else {
            let base = self.tdx_module.as_ref().ok_or_else(|| TcbError::Malformed("no tdxModule".into()))?;
            (&base.mrsigner, &base.attributes, &base.attributes_mask, None)
        };
        if unhex(mrsigner, "TDX module mrsigner")? != facts.mr_signer_seam {
            return Err(TcbError::ModuleIdentity {
                what: "MRSIGNERSEAM",
                expected: mrsigner.to_lowercase(),
                actual: hex::encode(facts.mr_signer_seam),
            });
        }
        if !masked_equal(facts.seam_attributes, attributes, mask, "TDX module attributes")? {
            return Err(TcbError::ModuleIdentity {
                what: "SEAMATTRIBUTES",
                expected: format!("{attributes} under mask {mask}"),
                actual: hex::encode(facts.seam_attributes),
            });
        }
        match levels {
            None => Ok(None),
            Some(levels) => levels
                .iter()
                .find(|l| u16::from(tee[0]) >= l.tcb.isvsvn)
                .map(Some)
                .ok_or(TcbError::NoModuleTcbLevel { major, svn: tee[0] }),
        }
    }

    /// The components of the platform (and of the TDX module, for TEE TCB SVN `tee`) below
    /// the newest TCB level: the first one listed, as Intel lists them newest first.
    fn behind(&self, facts: &PlatformFacts<'_>, tee: &[u8; 16]) -> Vec<ComponentLag> {
        let Some(newest) = self.tcb_levels.first().map(|l| &l.tcb) else { return Vec::new() };
        let lag = |component: String, have: u16, newest: u16| {
            (have < newest).then_some(ComponentLag { component, have, newest })
        };
        let sgx = newest
            .sgxtcbcomponents
            .iter()
            .zip(facts.sgx_tcb_components)
            .enumerate()
            .filter_map(|(i, (n, have))| lag(n.name("SGX TCB component", i + 1), u16::from(have), n.svn));
        let pce = lag("PCESVN".to_string(), facts.pce_svn, newest.pcesvn);
        // With a module identity (major version > 0), bytes 0 and 1 are the module's, judged
        // against its identity's newest level instead.
        let skip = if tee[1] > 0 { 2 } else { 0 };
        let tdx = newest
            .tdxtcbcomponents
            .iter()
            .zip(tee)
            .enumerate()
            .skip(skip)
            .filter_map(|(i, (n, have))| lag(n.name("TDX TCB component", i + 1), u16::from(*have), n.svn));
        let module = self
            .tdx_module_identities
            .iter()
            .filter(|_| tee[1] > 0)
            .find(|m| m.id.eq_ignore_ascii_case(&format!("TDX_{:02X}", tee[1])))
            .and_then(|m| Some((m, m.tcb_levels.first()?)))
            .and_then(|(m, l)| lag(format!("TDX module {} ISVSVN", m.id), u16::from(tee[0]), l.tcb.isvsvn));
        sgx.chain(pce).chain(tdx).chain(module).collect()
    }

    /// Platform and module status for one TEE TCB SVN (launch or current).
    fn evaluate_tee(
        &self,
        facts: &PlatformFacts<'_>,
        tee: &[u8; 16],
    ) -> Result<(TcbStatus, Option<TcbStatus>, String, Vec<String>), TcbError> {
        let level = self.platform_level(facts, tee)?;
        let module = self.module_level(facts, tee)?;
        let mut status = level.tcb_status;
        let mut advisories = level.advisory_ids.clone();
        if let Some(m) = module {
            status = status.converge(m.tcb_status);
            add_advisories(&mut advisories, &m.advisory_ids);
        }
        Ok((status, module.map(|m| m.tcb_status), level.tcb_date.clone(), advisories))
    }
}

impl QeIdentity {
    fn check(&self) -> Result<(), TcbError> {
        if self.id != "TD_QE" || !(2..=3).contains(&self.version) {
            return Err(TcbError::Malformed(format!(
                "QE identity id {:?} version {} is not the TD Quoting Enclave's (TD_QE, version 2)",
                self.id, self.version
            )));
        }
        Ok(())
    }

    /// The QE's TCB level.
    fn level(&self, qe: &QeFacts<'_>) -> Result<&IsvTcbLevel, TcbError> {
        self.check()?;
        let mismatch = |what, expected: String, actual: String| TcbError::QeIdentity { what, expected, actual };
        if unhex(&self.mrsigner, "QE identity mrsigner")? != qe.mr_signer {
            return Err(mismatch("MRSIGNER", self.mrsigner.to_lowercase(), hex::encode(qe.mr_signer)));
        }
        if self.isvprodid != qe.isv_prod_id {
            return Err(mismatch("ISVPRODID", self.isvprodid.to_string(), qe.isv_prod_id.to_string()));
        }
        if !masked_equal(&qe.misc_select.to_be_bytes(), &self.miscselect, &self.miscselect_mask, "miscselect")? {
            return Err(mismatch("MISCSELECT", self.miscselect.clone(), format!("{:08X}", qe.misc_select)));
        }
        if !masked_equal(qe.attributes, &self.attributes, &self.attributes_mask, "attributes")? {
            return Err(mismatch("ATTRIBUTES", self.attributes.clone(), hex::encode(qe.attributes)));
        }
        self.tcb_levels.iter().find(|l| qe.isv_svn >= l.tcb.isvsvn).ok_or(TcbError::NoQeTcbLevel { svn: qe.isv_svn })
    }
}

/// Evaluates the platform, module and QE against the collateral.
pub fn evaluate(
    tcb_info: &TcbInfo,
    qe_identity: &QeIdentity,
    facts: &PlatformFacts<'_>,
    qe: &QeFacts<'_>,
) -> Result<TcbVerdict, TcbError> {
    tcb_info.check_for(facts)?;
    let (launch, module, tcb_date, mut advisory_ids) = tcb_info.evaluate_tee(facts, facts.tee_tcb_svn)?;
    let qe_level = qe_identity.level(qe)?;
    add_advisories(&mut advisory_ids, &qe_level.advisory_ids);
    let mut status = launch.converge(qe_level.tcb_status);
    if let Some(current) = facts.tee_tcb_svn_2 {
        let (now, _, _, current_advisories) = tcb_info.evaluate_tee(facts, current)?;
        add_advisories(&mut advisory_ids, &current_advisories);
        status = status.with_current(now.converge(qe_level.tcb_status));
    }
    let mut behind = tcb_info.behind(facts, facts.tee_tcb_svn);
    if let Some(newest) = qe_identity.tcb_levels.first().filter(|l| qe.isv_svn < l.tcb.isvsvn) {
        behind.push(ComponentLag { component: "QE ISVSVN".into(), have: qe.isv_svn, newest: newest.tcb.isvsvn });
    }
    Ok(TcbVerdict {
        behind,
        status,
        platform: launch,
        platform_tcb_date: tcb_date,
        module,
        qe: qe_level.tcb_status,
        advisory_ids,
        tcb_evaluation_data_number: tcb_info.tcb_evaluation_data_number.min(qe_identity.tcb_evaluation_data_number),
        fmspc: tcb_info.fmspc.to_lowercase(),
    })
}

#[cfg(test)]
mod tests {
    use super::TcbStatus::*;

    #[test]
    fn convergence_matches_intel() {
        for (platform, component, want) in [
            (UpToDate, UpToDate, UpToDate),
            (UpToDate, OutOfDate, OutOfDate),
            (SWHardeningNeeded, OutOfDate, OutOfDate),
            (ConfigurationNeeded, OutOfDate, OutOfDateConfigurationNeeded),
            (ConfigurationAndSWHardeningNeeded, OutOfDate, OutOfDateConfigurationNeeded),
            (OutOfDate, OutOfDate, OutOfDate),
            (ConfigurationNeeded, Revoked, Revoked),
            (UpToDate, ConfigurationNeeded, UpToDate),
            (SWHardeningNeeded, UpToDate, SWHardeningNeeded),
        ] {
            assert_eq!(platform.converge(component), want, "{platform} + {component}");
        }
        for (launch, current, want) in [
            (OutOfDate, UpToDate, TDRelaunchAdvised),
            (OutOfDate, SWHardeningNeeded, TDRelaunchAdvised),
            (OutOfDate, ConfigurationNeeded, TDRelaunchAdvisedConfigurationNeeded),
            (OutOfDateConfigurationNeeded, UpToDate, TDRelaunchAdvisedConfigurationNeeded),
            (OutOfDate, OutOfDate, OutOfDate),
            (OutOfDate, Revoked, OutOfDate),
            (UpToDate, UpToDate, UpToDate),
            (ConfigurationNeeded, UpToDate, ConfigurationNeeded),
        ] {
            assert_eq!(launch.with_current(current), want, "{launch} then {current}");
        }
    }
}
