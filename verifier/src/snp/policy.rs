//! What a relying party demands of a verified SEV-SNP report beyond its authenticity: the
//! guest policy the owner launched with (SEV-SNP ABI spec, "Guest Policy Structure"), the
//! privilege level that asked for the report, the launch measurement, HOST_DATA, REPORTDATA
//! and a minimum TCB.

use std::fmt;

use twi_attester::snp::report::{AttestationReport, TcbLayout, TcbVersion};

/// Appraisal policy for SEV-SNP reports. [`Default`] is the safe baseline: debugging and
/// migration agents forbidden, SMT allowed, nothing pinned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnpPolicy {
    /// Accept guests whose policy allows debugging (bit 19): the host can read their memory.
    pub allow_debug: bool,
    /// Accept guests whose policy allows a migration agent (bit 18), which can export their
    /// memory.
    pub allow_migration_agent: bool,
    /// Accept guests whose policy allows the host to use SMT (bit 16).
    pub allow_smt: bool,
    /// The guest policy's minimum firmware ABI (ABI_MAJOR.ABI_MINOR, bits 15:0) must be at
    /// least this (major, minor).
    pub min_abi: Option<(u8, u8)>,
    /// The report must have been requested at exactly this VMPL.
    pub vmpl: Option<u32>,
    pub measurement: Option<[u8; 48]>,
    pub host_data: Option<[u8; 32]>,
    pub report_data: Option<[u8; 64]>,
    /// Each component of REPORTED_TCB must be at least the same component of this one (both
    /// read in the report's TCB layout).
    pub min_tcb: Option<TcbVersion>,
}

impl Default for SnpPolicy {
    fn default() -> Self {
        Self {
            allow_debug: false,
            allow_migration_agent: false,
            allow_smt: true,
            min_abi: None,
            vmpl: None,
            measurement: None,
            host_data: None,
            report_data: None,
            min_tcb: None,
        }
    }
}

/// A report that is authentic but not what the policy admits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyViolation {
    Debug,
    MigrationAgent,
    Smt,
    Abi {
        required: (u8, u8),
        policy: (u8, u8),
    },
    Vmpl {
        required: u32,
        actual: u32,
    },
    /// Expected and actual values in hex.
    Measurement {
        expected: String,
        actual: String,
    },
    HostData {
        expected: String,
        actual: String,
    },
    ReportData {
        expected: String,
        actual: String,
    },
    Tcb {
        component: &'static str,
        required: u8,
        actual: u8,
    },
}

impl fmt::Display for PolicyViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyViolation::Debug => f.write_str(
                "the guest policy allows debugging (policy bit 19): its memory is readable by the host; relaunch without debug, or allow it explicitly for development (`--allow-debug`)",
            ),
            PolicyViolation::MigrationAgent => f.write_str(
                "the guest policy allows a migration agent (policy bit 18), which can export the guest's memory; relaunch with MIGRATE_MA=0, or allow migration agents explicitly (`--allow-migration-agent`)",
            ),
            PolicyViolation::Smt => f.write_str(
                "the guest policy allows the host to run it with SMT enabled (policy bit 16), which this verifier was told to refuse; relaunch with SMT=0 on a host with SMT off",
            ),
            PolicyViolation::Abi { required, policy } => write!(
                f,
                "the guest policy demands firmware ABI {}.{} or newer, below the required {}.{}; relaunch with a policy whose ABI_MAJOR.ABI_MINOR is at least that",
                policy.0, policy.1, required.0, required.1
            ),
            PolicyViolation::Vmpl { required, actual } => write!(
                f,
                "the report was requested at VMPL{actual}, not VMPL{required}: a less privileged guest component asked for it"
            ),
            PolicyViolation::Measurement { expected, actual } => write!(
                f,
                "the launch measurement {actual} is not the expected {expected}: the guest runs another image (or firmware, vCPU count or type)"
            ),
            PolicyViolation::HostData { expected, actual } => write!(
                f,
                "HOST_DATA {actual} is not the expected {expected}: the host launched the guest with other host data"
            ),
            PolicyViolation::ReportData { expected, actual } => write!(
                f,
                "REPORTDATA {actual} is not the expected {expected}: the report answers another challenge (stale or replayed)"
            ),
            PolicyViolation::Tcb { component, required, actual } => write!(
                f,
                "the platform's {component} SVN {actual} is below the required {required}: update the host's firmware/microcode"
            ),
        }
    }
}

impl SnpPolicy {
    /// The first way `report` (under TCB layout `layout`) falls short of the policy.
    pub fn check(&self, report: &AttestationReport, layout: TcbLayout) -> Result<(), PolicyViolation> {
        let policy = report.policy;
        if policy.debug() && !self.allow_debug {
            return Err(PolicyViolation::Debug);
        }
        if policy.migrate_ma() && !self.allow_migration_agent {
            return Err(PolicyViolation::MigrationAgent);
        }
        if policy.smt() && !self.allow_smt {
            return Err(PolicyViolation::Smt);
        }
        if let Some(required) = self.min_abi {
            let have = (policy.abi_major(), policy.abi_minor());
            if have < required {
                return Err(PolicyViolation::Abi { required, policy: have });
            }
        }
        if let Some(required) = self.vmpl
            && report.vmpl != required
        {
            return Err(PolicyViolation::Vmpl { required, actual: report.vmpl });
        }
        if let Some(expected) = self.measurement
            && report.measurement != expected
        {
            return Err(PolicyViolation::Measurement {
                expected: hex::encode(expected),
                actual: hex::encode(report.measurement),
            });
        }
        if let Some(expected) = self.host_data
            && report.host_data != expected
        {
            return Err(PolicyViolation::HostData {
                expected: hex::encode(expected),
                actual: hex::encode(report.host_data),
            });
        }
        if let Some(expected) = self.report_data
            && report.report_data != expected
        {
            return Err(PolicyViolation::ReportData {
                expected: hex::encode(expected),
                actual: hex::encode(report.report_data),
            });
        }
        if let Some(min) = self.min_tcb {
            let (min, have) = (min.parts(layout), report.reported_tcb.parts(layout));
            let pairs = [
                ("FMC", min.fmc.unwrap_or(0), have.fmc.unwrap_or(0)),
                ("boot loader", min.bootloader, have.bootloader),
                ("TEE", min.tee, have.tee),
                ("SNP firmware", min.snp, have.snp),
                ("microcode", min.microcode, have.microcode),
            ];
            if let Some((component, required, actual)) = pairs.into_iter().find(|(_, min, have)| have < min) {
                return Err(PolicyViolation::Tcb { component, required, actual });
            }
        }
        Ok(())
    }
}
