//! Real TEE hardware (`twi run --platform snp|igvm|tdx`): QEMU runs the image as a
//! confidential VM under KVM, the runtime asks the PSP or the TDX module itself (no simulated
//! doorbell exists), and the host supplies only what a verifier needs beside the evidence: the
//! VCEK and its chain when the guest forwards no certificate table (from the VCEK cache, laid
//! out as AMD's KDS serves it), and TDX collateral fetched from a PCCS for the quote's
//! platform. Network fetches happen only when asked for (`--fetch`, `--pccs`).

use std::fs;
use std::path::{Path, PathBuf};

use twi_proto::msg::{DoorbellRequest, DoorbellResponse, Platform};
use twi_verifier::tdx::Collateral;

use crate::bridge::{Endorsements, Firmware, FirmwareError};
use crate::qemu;

/// Which hardware launch line (`qemu.rs`) the run uses.
#[derive(Debug, Clone)]
pub enum HardwareProfile {
    /// The ROM on an SEV-SNP host.
    Snp(qemu::SnpProfile),
    /// The IGVM file on an SEV-SNP host.
    Igvm(qemu::SnpProfile),
    /// The ROM on a TDX host.
    Tdx,
}

/// A launch on real TEE hardware.
#[derive(Debug, Clone)]
pub struct Hardware {
    pub profile: HardwareProfile,
    /// SEV-SNP: where to find the VCEK and its chain when the guest forwards no certificate
    /// table (the VCEK cache layout of `twi verify snp-report`).
    pub vcek_cache: Option<PathBuf>,
    /// SEV-SNP: fetch a missing VCEK and chain from KDS at this base URL into `vcek_cache`.
    pub kds: Option<String>,
    /// TDX: fetch the TCB collateral for the quote's platform from this PCCS (or Intel PCS).
    pub pccs: Option<String>,
    /// Where fetched TDX collateral is kept (the run's output directory's `collateral/`).
    pub collateral_dir: PathBuf,
}

impl HardwareProfile {
    /// QEMU's arguments for `image` with the channel on the socket `channel` and `ram`.
    pub fn qemu_args(&self, image: &Path, channel: &Path, ram: &qemu::GuestRam) -> Vec<String> {
        match self {
            Self::Snp(profile) => qemu::snp_args(image, channel, profile, ram),
            Self::Igvm(profile) => qemu::igvm_args(image, channel, profile, ram),
            Self::Tdx => qemu::tdx_args(image, channel, ram),
        }
    }

    /// What the host must offer, for the message when QEMU cannot start the VM.
    pub fn host_requirement(&self) -> &'static str {
        match self {
            Self::Snp(_) => {
                "--platform snp needs an AMD SEV-SNP host: KVM with SEV-SNP enabled and QEMU >= 9.1; see qemu/README.md"
            }
            Self::Igvm(_) => {
                "--platform igvm needs an AMD SEV-SNP host and a QEMU built with IGVM support (>= 9.2); see qemu/README.md"
            }
            Self::Tdx => {
                "--platform tdx needs an Intel TDX host: KVM with TDX, QEMU >= 10.1 with tdx-guest and a quote generation service; see qemu/README.md"
            }
        }
    }
}

impl Firmware for Hardware {
    fn platform(&self) -> Platform {
        match self.profile {
            HardwareProfile::Snp(_) | HardwareProfile::Igvm(_) => Platform::Snp,
            HardwareProfile::Tdx => Platform::Tdx,
        }
    }

    fn option(&self) -> &'static str {
        match self.profile {
            HardwareProfile::Snp(_) => "snp",
            HardwareProfile::Igvm(_) => "igvm",
            HardwareProfile::Tdx => "tdx",
        }
    }

    fn doorbell(&mut self, _request: &DoorbellRequest) -> Result<DoorbellResponse, FirmwareError> {
        Err(FirmwareError::NotSimulated)
    }

    fn endorsements(&mut self, report: &[u8]) -> Result<Endorsements, FirmwareError> {
        cached_endorsements(self, report).map_err(FirmwareError::Unavailable)
    }

    fn collateral(&mut self, quote: &[u8]) -> Result<Option<Collateral>, FirmwareError> {
        let Some(pccs) = &self.pccs else { return Ok(None) };
        let (collateral, notes) = crate::fetch::collateral_for_quote(pccs, &self.collateral_dir, quote)
            .map_err(|e| FirmwareError::Unavailable(format!("{e:#}")))?;
        for note in notes {
            eprintln!("twi: warning: {note}");
        }
        eprintln!("twi: collateral: fetched from {pccs} into {}", self.collateral_dir.display());
        Ok(Some(collateral))
    }
}

/// Real SEV-SNP without a certificate table from the guest: the VCEK for the report's chip and
/// TCB, and its chain, from the VCEK cache (fetched from KDS first when `--fetch` allows).
fn cached_endorsements(hardware: &Hardware, report: &[u8]) -> Result<Endorsements, String> {
    use twi_attester::snp::report::{AttestationReport, SigningKey};
    use twi_verifier::snp::{Product, VekKind};
    let parsed = AttestationReport::parse(report).map_err(|e| format!("the report is malformed: {e:?}"))?;
    if parsed.signing_key() == SigningKey::Vlek {
        return Err("the report is signed with a VLEK and the guest forwarded no certificate table: the host must supply the VLEK through the extended guest request".into());
    }
    let Some(dir) = &hardware.vcek_cache else {
        return Err("the guest forwarded no certificate table (the host offers none through the extended guest request): pass --vcek-cache DIR, and --fetch to fill it from AMD KDS".into());
    };
    let products = parsed
        .tcb_layout()
        .and_then(|_| Product::from_cpuid(parsed.cpuid_fam_id, parsed.cpuid_mod_id))
        .map_or(Product::ALL.to_vec(), |p| vec![p]);
    let kds = hardware.kds.as_deref();
    let (vcek, product) = crate::fetch::vcek_from_cache(dir, &products, &parsed.chip_id, parsed.reported_tcb, kds)
        .map_err(|missing| match missing {
            crate::fetch::VcekMissing::NotCached(wanted) => format!(
                "no VCEK for this chip and TCB in {}: add --fetch, or download {}",
                dir.display(),
                wanted.iter().map(|(_, url)| url.as_str()).collect::<Vec<_>>().join(" or ")
            ),
            crate::fetch::VcekMissing::NotFetched(failures) => {
                format!("no VCEK from KDS: {}", failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
            }
        })?;
    let chain = crate::fetch::chain_from_cache(dir, product, VekKind::Vcek, kds).map_err(|e| format!("{e:#}"))?;
    let mut certificates = vec![fs::read(&vcek).map_err(|e| format!("cannot read {}: {e}", vcek.display()))?];
    let pem = fs::read(&chain).map_err(|e| format!("no chain at {}: {e}", chain.display()))?;
    certificates
        .extend(twi_verifier::chain::split_certificates(&pem).map_err(|e| format!("{}: {e}", chain.display()))?);
    Ok(Endorsements { certificates, source: format!("VCEK and chain from {}", dir.display()) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use twi_proto::msg::DoorbellKind;

    fn hardware(profile: HardwareProfile, vcek_cache: Option<PathBuf>) -> Hardware {
        Hardware { profile, vcek_cache, kds: None, pccs: None, collateral_dir: PathBuf::from("unused") }
    }

    /// Real hardware rings its own doorbells; the host offers none, and says what the guest
    /// reports and which option it is.
    #[test]
    fn no_simulated_doorbell_and_the_platform_of_each_profile() {
        let mut tdx = hardware(HardwareProfile::Tdx, None);
        let request = DoorbellRequest { kind: DoorbellKind::TdxReport, request: vec![0; 64] };
        assert!(matches!(tdx.doorbell(&request), Err(FirmwareError::NotSimulated)));
        assert_eq!((tdx.platform(), tdx.option()), (Platform::Tdx, "tdx"));
        // No PCCS: the issuer judges the quote with the collateral it was given.
        assert!(matches!(tdx.collateral(&[0; 16]), Ok(None)));
        let igvm = hardware(
            HardwareProfile::Igvm(crate::qemu::SnpProfile { vcpus: 1, cpu_type: "EPYC-v4".into(), policy: 0x30000 }),
            None,
        );
        assert_eq!((igvm.platform(), igvm.option()), (Platform::Snp, "igvm"));
        assert!(igvm.profile.host_requirement().contains("IGVM support"));
    }

    /// Without a certificate table from the guest and without a VCEK cache, the reason says
    /// which options supply the VCEK.
    #[test]
    fn missing_endorsements_name_the_options() {
        use twi_attester::snp::report::REPORT_SIZE;
        let mut snp = hardware(HardwareProfile::Tdx, None);
        let mut report = vec![0u8; REPORT_SIZE];
        report[0] = 3; // VERSION 3
        let reason = match snp.endorsements(&report) {
            Err(FirmwareError::Unavailable(reason)) => reason,
            other => panic!("{other:?}"),
        };
        assert!(reason.contains("pass --vcek-cache DIR, and --fetch"), "{reason}");
        assert!(
            matches!(snp.endorsements(&[0; 10]), Err(FirmwareError::Unavailable(r)) if r.starts_with("the report is malformed"))
        );
    }
}
