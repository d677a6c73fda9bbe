//! Targets (draft-novak-rats-tacra): what a workload may acquire credentials for, and per
//! target how — the mode (Enrollment through mechanisms A, B, C; Retrieval through mechanism D),
//! the freshness kind and the credential types. The Attester never chooses these: the issuer
//! takes them from here when the runtime Initiates, and again when the evidence arrives (the
//! host named the launch's measurement at Initiate; only the appraised evidence is trusted).
//!
//! In the policy file, under a workload:
//!
//! ```toml
//! [[workload.target]]
//! name = "https://payroll-db.example:8443/rows"   # exactly as the workload asks
//! freshness = "present-nonce"      # or present-epoch, absent-epoch, absent-timestamp, absent-none
//! mechanism = "c"                  # default: the workload's
//! types = ["x509", "wit"]          # default: both
//! # epoch = "…hex…"                # absent-epoch: the marker the launch holds
//! hints = ["rotate"]               # the hints the issuer honours; default: none
//! ```
//!
//! A workload without `[[workload.target]]` entries serves every target the way the workload
//! says (its mechanism; `present-epoch` for AF_L1, else `present-nonce`).
//!
//! Hints: TACRA's Initiate carries an optional hint from the workload, and "rejected hint" is one
//! of its failure reasons. The hint is not part of the evidence's binding, so the untrusted host
//! can change it: the issuer therefore never lets a hint widen what the policy grants. It accepts
//! exactly the hints a target lists and refuses every other one at Initiate, before the workload
//! makes any evidence, so a workload learns that the issuer does not understand what it asked
//! instead of receiving a credential that silently ignored it.

use std::time::Duration;

use twi_proto::msg::{CredentialKind, Freshness};

use super::model::{FreshnessLevel, Mechanism, TargetRule, Workload};

/// How far an `absent-timestamp` may be from the issuer's clock, either way.
pub const TIMESTAMP_WINDOW: Duration = Duration::from_secs(300);

/// How one acquisition goes, by the policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetDecision {
    pub freshness: Freshness,
    /// The target names its freshness kind (else the workload's AF level rules, as before).
    pub explicit_freshness: bool,
    pub mechanism: Mechanism,
    pub epoch_marker: Option<Vec<u8>>,
}

/// Why a workload may not acquire for a target (TACRA's failure reasons).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TargetRefusal {
    #[error(
        "workload `{workload}` is not served for target `{target}`: add a [[workload.target]] with that name to the policy"
    )]
    NotServed { workload: String, target: String },
    #[error("workload `{workload}` gets no {kind} credential for target `{target}` (the target's `types`)")]
    UnsupportedType { workload: String, target: String, kind: &'static str },
    #[error(
        "workload `{workload}` acquires for target `{target}` under mechanism {allowed} only (the policy's `mechanism`), not {used}: run without `--mechanism` to follow the policy, or change the workload's (or the target's) `mechanism` in the policy"
    )]
    Mechanism { workload: String, target: String, allowed: Mechanism, used: Mechanism },
    #[error(
        "workload `{workload}` asked for target `{target}` with the hint {hint:?}, which the policy does not honour: list it in the target's `hints`, or acquire without it"
    )]
    RejectedHint { workload: String, target: String, hint: String },
}

impl Workload {
    /// How this workload acquires a `kind` credential for `target`.
    pub fn target(&self, target: &str, kind: CredentialKind) -> Result<TargetDecision, TargetRefusal> {
        let default_freshness =
            if self.freshness == FreshnessLevel::Epoch { Freshness::PresentEpoch } else { Freshness::PresentNonce };
        if self.targets.is_empty() {
            return Ok(TargetDecision {
                freshness: default_freshness,
                explicit_freshness: false,
                mechanism: self.mechanism,
                epoch_marker: None,
            });
        }
        let not_served = || TargetRefusal::NotServed { workload: self.id.clone(), target: target.into() };
        let rule = self.targets.iter().find(|r| r.name == target).ok_or_else(not_served)?;
        if !rule.types.is_empty() && !rule.types.contains(&kind) {
            let (workload, target) = (self.id.clone(), target.into());
            return Err(TargetRefusal::UnsupportedType { workload, target, kind: kind.name() });
        }
        Ok(TargetDecision {
            freshness: rule.freshness.unwrap_or(default_freshness),
            explicit_freshness: rule.freshness.is_some(),
            mechanism: rule.mechanism.unwrap_or(self.mechanism),
            epoch_marker: rule.epoch_marker.clone(),
        })
    }
}

impl Workload {
    /// TACRA Initiate's hint for `target`: none is always fine; one the target lists in its
    /// `hints` is honoured; any other is refused ([`TargetRefusal::RejectedHint`]).
    pub fn hint(&self, target: &str, hint: Option<&str>) -> Result<(), TargetRefusal> {
        let Some(hint) = hint else { return Ok(()) };
        let rule = self.targets.iter().find(|r| r.name == target);
        if rule.is_some_and(|r| r.hints.iter().any(|h| h == hint)) {
            return Ok(());
        }
        Err(TargetRefusal::RejectedHint { workload: self.id.clone(), target: target.into(), hint: hint.into() })
    }
}

impl TargetDecision {
    /// The acquisition came under the mechanism the policy gives `workload` for `target`
    /// (issue 14: the host chooses the route, the issuer's policy decides whether it may).
    pub fn permits(&self, workload: &str, target: &str, used: Mechanism) -> Result<(), TargetRefusal> {
        if used == self.mechanism {
            return Ok(());
        }
        let (workload, target) = (workload.to_string(), target.to_string());
        Err(TargetRefusal::Mechanism { workload, target, allowed: self.mechanism, used })
    }
}

/// The file form of a target, checked (`Err`: the message for the user).
pub(super) fn rule(
    name: String,
    freshness: Option<&str>,
    mechanism: Option<Mechanism>,
    types: &[String],
    epoch: Option<&str>,
) -> Result<TargetRule, String> {
    if name.is_empty() || name.len() > twi_proto::msg::MAX_ACQUIRE_TARGET {
        return Err(format!("target name {name:?} must be 1 to {} bytes", twi_proto::msg::MAX_ACQUIRE_TARGET));
    }
    let freshness = freshness
        .map(|f| Freshness::from_name(f).ok_or_else(|| format!("target `{name}`: freshness {f:?} is not a TACRA freshness kind (present-nonce, present-epoch, absent-epoch, absent-timestamp, absent-none)")))
        .transpose()?;
    let types = types
        .iter()
        .map(|t| CredentialKind::from_name(t).ok_or_else(|| format!("target `{name}`: type {t:?} is not x509 or wit")))
        .collect::<Result<Vec<_>, _>>()?;
    let epoch_marker =
        epoch.map(|e| hex::decode(e).map_err(|_| format!("target `{name}`: epoch is not hex"))).transpose()?;
    if freshness == Some(Freshness::AbsentEpoch) && epoch_marker.is_none() {
        return Err(format!("target `{name}`: absent-epoch needs the `epoch` marker the launch holds (hex)"));
    }
    if mechanism == Some(Mechanism::D) && types.contains(&CredentialKind::Wit) {
        return Err(format!("target `{name}`: mechanism d releases a provisioned X.509 credential; drop \"wit\""));
    }
    Ok(TargetRule { name, freshness, mechanism, types, epoch_marker, hints: Vec::new() })
}

/// The file form of a target's `hints`, checked: each 1 to [`twi_proto::msg::MAX_HINT`] bytes
/// (what the runtime can send), listed once.
pub(super) fn hints(name: &str, hints: Vec<String>) -> Result<Vec<String>, String> {
    let max = twi_proto::msg::MAX_HINT;
    for (i, hint) in hints.iter().enumerate() {
        if hint.is_empty() || hint.len() > max {
            return Err(format!("target `{name}`: hint {hint:?} must be 1 to {max} bytes"));
        }
        if hints[..i].contains(hint) {
            return Err(format!("target `{name}`: hint {hint:?} is listed twice"));
        }
    }
    Ok(hints)
}

/// Checks the freshness element of an `absent-*` kind the target names: a timestamp within
/// [`TIMESTAMP_WINDOW`] of `now_secs`, or the epoch marker. `Ok` for the other kinds (the
/// Verifier's nonces and epochs check those).
pub fn check_absent(decision: &TargetDecision, element: &[u8], now_secs: u64) -> Result<(), String> {
    match decision.freshness {
        Freshness::AbsentTimestamp => {
            let bytes: [u8; 8] =
                element.try_into().map_err(|_| format!("absent-timestamp is 8 bytes, not {}", element.len()))?;
            let at = u64::from_be_bytes(bytes);
            if at.abs_diff(now_secs) > TIMESTAMP_WINDOW.as_secs() {
                return Err(format!(
                    "the evidence's timestamp {at} is more than {} s from the issuer's clock ({now_secs}): check the host's clock",
                    TIMESTAMP_WINDOW.as_secs()
                ));
            }
            Ok(())
        }
        Freshness::AbsentEpoch if decision.epoch_marker.as_deref() != Some(element) => {
            Err("the evidence binds another epoch marker than the policy's".into())
        }
        Freshness::AbsentNone if !element.is_empty() => Err("absent-none binds an empty freshness element".into()),
        _ => Ok(()),
    }
}
