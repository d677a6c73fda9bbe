//! Where a cold start goes, from each run's `timeline.json` (`twi run` records when each
//! message of the acquisition crossed its bridge, in milliseconds since the QEMU launch).

use serde_json::Value;

use crate::stats::{Samples, figure};

/// The phases of one launch, each over the runs.
#[derive(Default)]
pub struct Phases {
    /// QEMU launch → the guest's Hello: QEMU's start, the boot, the key and its pairwise test.
    to_hello: Samples,
    /// Hello → Evidence: the challenge, the report request and its answer, the evidence.
    to_evidence: Samples,
    /// Evidence → Credential sent: the host's appraisal and issuance.
    issuance: Samples,
    /// Credential sent → Done: the guest's check of the credential and its sealing.
    to_done: Samples,
    /// Done → QEMU exited.
    to_exit: Samples,
}

impl Phases {
    /// Adds one run's phases; a timeline without the messages is skipped.
    pub fn add(&mut self, timeline: &Value) {
        let Some(exchanges) = timeline["exchanges"].as_array() else { return };
        let find = |name: &str| exchanges.iter().find(|e| e["guest"] == name);
        let (Some(hello), Some(evidence), Some(done)) = (find("Hello"), find("Evidence"), find("Done")) else { return };
        let ms = |e: &Value, field: &str| e[field].as_f64();
        let (Some(h), Some(e), Some(c), Some(d)) =
            (ms(hello, "at_ms"), ms(evidence, "at_ms"), ms(evidence, "answered_ms"), ms(done, "at_ms"))
        else {
            return;
        };
        self.to_hello.push(h);
        self.to_evidence.push(e - h);
        self.issuance.push(c - e);
        self.to_done.push(d - c);
        if let Some(exited) = timeline["exited_ms"].as_f64() {
            self.to_exit.push(exited - d);
        }
    }

    pub fn print(&self, floor: &Samples) {
        figure("  QEMU launch -> Hello (boot, key, its test)", "ms", &self.to_hello, Some(("floor ROM", floor)));
        figure("  Hello -> Evidence (challenge, report)", "ms", &self.to_evidence, None);
        figure("  Evidence -> Credential (host: appraisal, issuance)", "ms", &self.issuance, None);
        figure("  Credential -> Done (guest: its check, sealing)", "ms", &self.to_done, None);
        figure("  Done -> QEMU exited", "ms", &self.to_exit, None);
    }
}
