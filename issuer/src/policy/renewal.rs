//! Renewal under stickiness (TWI reference architecture §5.4.4.2): a credential promises a
//! [`Binding`] — the same TCB (CS_L1), the same platform claims (CS_L2) or the same chip
//! (CS_L3) — and a renewal that would break it is refused, naming what changed.

use std::collections::BTreeSet;

use super::admission::{Admission, Binding, FieldDiff, diff};
use super::model::{ClaimValue, Stickiness};

/// A renewal that would break the previous credential's binding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", renewal_text(.workload_id, .stickiness, .differences))]
pub struct RenewalRefused {
    pub workload_id: String,
    pub stickiness: Stickiness,
    pub differences: Vec<FieldDiff>,
}

fn renewal_text(workload_id: &str, level: &Stickiness, differences: &[FieldDiff]) -> String {
    let what = match level {
        Stickiness::SameTcb => "the platform TCB it was issued on",
        Stickiness::SameClaims => "the platform claims it was issued with",
        Stickiness::SameChip => "the chip it was issued on",
    };
    let fields: Vec<String> = differences.iter().map(ToString::to_string).collect();
    format!(
        "renewal of {workload_id} refused: its credential is bound ({level}) to {what}, and {}; the workload needs a fresh credential under a policy that allows this change",
        fields.join("; ")
    )
}

/// Checks a renewal against the previous credential's [`Binding`].
#[derive(Clone, Debug)]
pub struct RenewalCheck {
    pub previous: Binding,
}

impl RenewalCheck {
    /// Ok when `admission` keeps every value the previous credential pinned (under the
    /// previous credential's stickiness level) and names the same workload.
    pub fn check(&self, admission: &Admission) -> Result<(), RenewalRefused> {
        let prev = &self.previous;
        let now = admission.binding_at(prev.stickiness);
        let mut differences = Vec::new();
        if now.workload_id != prev.workload_id {
            differences.push(diff("workload", &prev.workload_id, &now.workload_id));
        }
        let keys: BTreeSet<&String> = prev.values.keys().chain(now.values.keys()).collect();
        for key in keys {
            let (p, n) = (prev.values.get(key), now.values.get(key));
            if p != n {
                let show = |v: Option<&ClaimValue>| v.map(ToString::to_string).unwrap_or_else(|| "(absent)".into());
                differences.push(diff(key.clone(), show(p), show(n)));
            }
        }
        if differences.is_empty() {
            Ok(())
        } else {
            Err(RenewalRefused { workload_id: prev.workload_id.clone(), stickiness: prev.stickiness, differences })
        }
    }
}
