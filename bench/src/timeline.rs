//! Where a cold start goes, from each run's `timeline.json`: `twi run` records when each
//! message of the acquisition crossed its bridge and writes the phases they make
//! (`phases_ms`, [`twi_host_loader::bridge::timeline::Phases`]); this gathers them over runs.

use serde_json::Value;
use twi_host_loader::bridge::timeline::Phases as RunPhases;

use crate::stats::{Samples, figure};

/// Each phase of [`RunPhases::FIELDS`], over the runs.
#[derive(Default)]
pub struct Phases([Samples; RunPhases::FIELDS.len()]);

impl Phases {
    /// Adds one run's phases; a run whose timeline has none is skipped.
    pub fn add(&mut self, timeline: &Value) {
        let phases = &timeline["phases_ms"];
        let values: Option<Vec<f64>> = RunPhases::FIELDS.iter().map(|field| phases[field].as_f64()).collect();
        for (samples, value) in self.0.iter_mut().zip(values.unwrap_or_default()) {
            samples.push(value);
        }
    }

    pub fn print(&self, floor: &Samples) {
        const NAMES: [&str; RunPhases::FIELDS.len()] = [
            "  QEMU launch -> Hello (boot, key, its test)",
            "  Hello -> Evidence (challenge, report)",
            "  Evidence -> Credential (host: appraisal, issuance)",
            "  Credential -> Done (guest: its check, sealing)",
            "  Done -> QEMU exited",
        ];
        for (i, (name, samples)) in NAMES.iter().zip(&self.0).enumerate() {
            figure(name, "ms", samples, (i == 0).then_some(("floor ROM", floor)));
        }
    }
}
