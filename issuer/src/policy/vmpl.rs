//! Which SEV-SNP VM privilege levels (VMPLs) a workload admits (`vmpls = [...]` per workload;
//! default `[0]`). A guest at VMPL0 owns the machine's view of its memory; a guest below a
//! paravisor (COCONUT-SVSM at VMPL0, the workload at VMPL2 — AMD "Secure VM Service Module for
//! SEV-SNP Guests", 58019) shares its launch with software it does not control, and its reports
//! say so in their VMPL field (SEV-SNP Firmware ABI, ATTESTATION_REPORT offset 0x30). The owner
//! says which it accepts; the credential then records the VMPL it was issued at.
//!
//! TDX evidence has no VMPL: the check applies to SEV-SNP (real and simulated) only.

use super::admission::{Admission, PolicyRejection};
use super::model::Policy;

/// The VMPLs a workload admits when its policy names none: VMPL0 only.
pub const DEFAULT_VMPLS: [u32; 1] = [0];

/// A workload's `vmpls`, checked: present means non-empty, each 0..=3, no repeats.
pub(super) fn admitted_vmpls(vmpls: Option<Vec<u32>>) -> Result<Vec<u32>, String> {
    let Some(vmpls) = vmpls else { return Ok(DEFAULT_VMPLS.to_vec()) };
    if vmpls.is_empty() {
        return Err("vmpls is empty, so nothing could be admitted: list the VMPLs (0..=3) it may run at".into());
    }
    if let Some(bad) = vmpls.iter().find(|&&v| v > 3) {
        return Err(format!("vmpls lists {bad}: SEV-SNP has VMPLs 0 to 3"));
    }
    if let Some((i, v)) = vmpls.iter().enumerate().find(|(i, v)| vmpls[..*i].contains(v)) {
        return Err(format!("vmpls lists {v} twice (entry {i})"));
    }
    Ok(vmpls)
}

impl Policy {
    /// Checks the VMPL the evidence was made at (`None`: a platform without VMPLs) against the
    /// admitted workload's `vmpls`, and records it in the admission for the credential.
    pub fn admit_vmpl(&self, admission: &mut Admission, vmpl: Option<u32>) -> Result<(), PolicyRejection> {
        let Some(vmpl) = vmpl else { return Ok(()) };
        let admitted = self.workload(&admission.workload).map_or(DEFAULT_VMPLS.to_vec(), |w| w.vmpls.clone());
        if !admitted.contains(&vmpl) {
            return Err(PolicyRejection::Vmpl { workload: admission.workload.clone(), vmpl, admitted });
        }
        admission.vmpl = Some(vmpl);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmpls_default_to_vmpl0_and_are_checked() {
        assert_eq!(admitted_vmpls(None), Ok(vec![0]));
        assert_eq!(admitted_vmpls(Some(vec![0, 2])), Ok(vec![0, 2]));
        assert!(admitted_vmpls(Some(vec![])).unwrap_err().contains("empty"));
        assert!(admitted_vmpls(Some(vec![4])).unwrap_err().contains("VMPLs 0 to 3"));
        assert!(admitted_vmpls(Some(vec![2, 2])).unwrap_err().contains("twice"));
        let text = PolicyRejection::Vmpl { workload: "payroll-app".into(), vmpl: 2, admitted: vec![0] }.to_string();
        assert!(text.contains("admits VMPL 0 only") && text.contains("made at VMPL 2"), "{text}");
    }
}
