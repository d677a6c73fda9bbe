//! When each message of the acquisition crossed the bridge: the guest's message arriving and
//! the host's answer leaving, for `twi run`'s `timeline.json` (where a launch's time goes:
//! the guest's boot and key, the challenge and report, the host's issuance, the guest's check).
//! The workload's relayed traffic (TLS records, time requests, log lines) is not recorded.

use std::time::Instant;

use serde_json::{Value, json};
use twi_proto::msg::Message;

/// One guest message and the host's answer to it.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The guest's message (its variant name).
    pub asked: &'static str,
    /// When the bridge had it whole.
    pub arrived: Instant,
    /// The host's replies, in order.
    pub answered: Vec<&'static str>,
    /// When the replies were ready to send.
    pub replied: Instant,
}

/// The exchanges of one launch, in order; at most [`Timeline::MAX`] (a guest that starts over
/// and over cannot grow it without bound).
#[derive(Debug, Default)]
pub struct Timeline {
    exchanges: Vec<Exchange>,
}

impl Timeline {
    pub const MAX: usize = 64;

    /// Records `asked` (arrived at `arrived`) and the replies to it, unless it is relayed
    /// workload traffic or the timeline is full.
    pub(super) fn record(&mut self, asked: &'static str, arrived: Instant, replies: &[Message]) {
        const RELAYED: [&str; 7] = ["Connect", "Send", "Receive", "Close", "TimeRequest", "Log", "Error"];
        if RELAYED.contains(&asked) || self.exchanges.len() >= Self::MAX {
            return;
        }
        let answered = replies.iter().map(Message::name).collect();
        self.exchanges.push(Exchange { asked, arrived, answered, replied: Instant::now() });
    }

    pub fn exchanges(&self) -> &[Exchange] {
        &self.exchanges
    }

    /// Where the launch's time went, in one line: the guest's boot and key (QEMU launch →
    /// Hello), the challenge and report (→ Evidence), the host's answer to the evidence (the
    /// credential, or mechanism B's attestation result), the guest's check and sealing
    /// (→ Done), QEMU's exit. `None` without those messages.
    pub fn summary(&self, origin: Instant, exited: Instant) -> Option<String> {
        let find = |name: &str| self.exchanges.iter().find(|e| e.asked == name);
        let (hello, evidence, done) = (find("Hello")?, find("Evidence")?, find("Done")?);
        let ms = |from: Instant, to: Instant| to.saturating_duration_since(from).as_secs_f64() * 1e3;
        Some(format!(
            "QEMU launch -> guest's Hello (boot, key) {:.1} ms, -> evidence {:.1} ms, the host's answer to it \
             (appraisal, issuance) {:.1} ms, -> the guest's Done (its check, sealing) {:.1} ms, -> QEMU exited {:.1} ms",
            ms(origin, hello.arrived),
            ms(hello.arrived, evidence.arrived),
            ms(evidence.arrived, evidence.replied),
            ms(evidence.replied, done.arrived),
            ms(done.arrived, exited)
        ))
    }

    /// As JSON, in milliseconds since `origin` (the QEMU launch), with `exited` (when QEMU
    /// ended) if known.
    pub fn to_json(&self, origin: Instant, exited: Option<Instant>) -> Value {
        let ms = |at: Instant| (at.saturating_duration_since(origin).as_secs_f64() * 1e6).round() / 1e3;
        let exchanges: Vec<Value> = self
            .exchanges
            .iter()
            .map(|e| json!({ "guest": e.asked, "at_ms": ms(e.arrived), "host": e.answered, "answered_ms": ms(e.replied) }))
            .collect();
        json!({ "origin": "QEMU launch", "exchanges": exchanges, "exited_ms": exited.map(ms) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use twi_proto::msg::{ErrorCode, ErrorMsg};

    #[test]
    fn acquisition_messages_are_recorded_relayed_traffic_is_not_and_the_length_is_bounded() {
        let mut timeline = Timeline::default();
        let origin = Instant::now();
        let reply = Message::Error(ErrorMsg { code: ErrorCode::Malformed, message: "x".into() });
        timeline.record("Hello", Instant::now(), std::slice::from_ref(&reply));
        timeline.record("Send", Instant::now(), &[]);
        timeline.record("Done", Instant::now(), &[]);
        let json = timeline.to_json(origin, Some(Instant::now()));
        let asked: Vec<&str> =
            json["exchanges"].as_array().unwrap().iter().map(|e| e["guest"].as_str().unwrap()).collect();
        assert_eq!(asked, ["Hello", "Done"]);
        assert_eq!(json["exchanges"][0]["host"], json!(["Error"]));
        assert!(
            json["exchanges"][1]["answered_ms"].as_f64().unwrap() >= json["exchanges"][0]["at_ms"].as_f64().unwrap()
        );
        assert!(json["exited_ms"].as_f64().is_some());
        assert_eq!(timeline.summary(origin, Instant::now()), None, "no Evidence: no summary");
        timeline.record("Evidence", Instant::now(), &[]);
        let summary = timeline.summary(origin, Instant::now()).unwrap();
        assert!(summary.starts_with("QEMU launch -> guest's Hello (boot, key) "), "{summary}");
        for _ in 0..Timeline::MAX * 2 {
            timeline.record("Hello", Instant::now(), &[]);
        }
        assert_eq!(timeline.exchanges().len(), Timeline::MAX);
    }
}
