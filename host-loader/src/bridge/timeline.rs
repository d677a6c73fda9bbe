//! When each message of the acquisition crossed the bridge: the guest's message arriving and
//! the host's answer leaving, for `twi run`'s `timeline.json` (where a launch's time goes:
//! the guest's boot and key, the challenge and report, the host's issuance, the guest's check).
//! The workload's relayed traffic (TLS records, time requests) never reaches it (the bridge
//! answers those first), and the guest's log lines and error reports are not recorded.

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

    /// Records `asked` (arrived at `arrived`) and the replies to it, unless it is one of the
    /// guest's log lines or error reports, or the timeline is full.
    pub(super) fn record(&mut self, asked: &'static str, arrived: Instant, replies: &[Message]) {
        const NOT_ACQUISITION: [&str; 2] = ["Log", "Error"];
        if NOT_ACQUISITION.contains(&asked) || self.exchanges.len() >= Self::MAX {
            return;
        }
        let answered = replies.iter().map(Message::name).collect();
        self.exchanges.push(Exchange { asked, arrived, answered, replied: Instant::now() });
    }

    pub fn exchanges(&self) -> &[Exchange] {
        &self.exchanges
    }

    /// Where the launch's time went (`None` without a Hello, an Evidence and a Done).
    pub fn phases(&self, origin: Instant, exited: Instant) -> Option<Phases> {
        let find = |name: &str| self.exchanges.iter().find(|e| e.asked == name);
        let (hello, evidence, done) = (find("Hello")?, find("Evidence")?, find("Done")?);
        let ms = |from: Instant, to: Instant| to.saturating_duration_since(from).as_secs_f64() * 1e3;
        Some(Phases {
            to_hello: ms(origin, hello.arrived),
            to_evidence: ms(hello.arrived, evidence.arrived),
            answer: ms(evidence.arrived, evidence.replied),
            to_done: ms(evidence.replied, done.arrived),
            to_exit: ms(done.arrived, exited),
        })
    }

    /// As JSON, in milliseconds since `origin` (the QEMU launch), with `exited` (when QEMU
    /// ended) and the [`Phases`] they make.
    pub fn to_json(&self, origin: Instant, exited: Instant) -> Value {
        let ms = |at: Instant| (at.saturating_duration_since(origin).as_secs_f64() * 1e6).round() / 1e3;
        let exchanges: Vec<Value> = self
            .exchanges
            .iter()
            .map(|e| json!({ "guest": e.asked, "at_ms": ms(e.arrived), "host": e.answered, "answered_ms": ms(e.replied) }))
            .collect();
        let phases = self.phases(origin, exited).map(|p| p.to_json());
        json!({ "origin": "QEMU launch", "exchanges": exchanges, "exited_ms": ms(exited), "phases_ms": phases })
    }
}

/// Where one launch's time went, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phases {
    /// QEMU launch → the guest's Hello: QEMU's start, the boot, the key and its pairwise test.
    pub to_hello: f64,
    /// Hello → Evidence: the challenge, the report request and its answer, the evidence.
    pub to_evidence: f64,
    /// The host's answer to the evidence: appraisal and issuance (mechanism B: the attestation
    /// result).
    pub answer: f64,
    /// The answer → the guest's Done: its check of the credential, its sealing.
    pub to_done: f64,
    /// Done → QEMU exited.
    pub to_exit: f64,
}

impl Phases {
    /// The JSON `phases_ms` object's fields, as [`Self::to_json`] writes them.
    pub const FIELDS: [&str; 5] = ["to_hello", "to_evidence", "answer", "to_done", "to_exit"];

    fn values(&self) -> [f64; 5] {
        [self.to_hello, self.to_evidence, self.answer, self.to_done, self.to_exit]
    }

    fn to_json(self) -> Value {
        let round = |v: f64| (v * 1e3).round() / 1e3;
        Value::Object(Self::FIELDS.iter().zip(self.values()).map(|(k, v)| (k.to_string(), json!(round(v)))).collect())
    }

    /// In one line for the user.
    pub fn summary(&self) -> String {
        format!(
            "QEMU launch -> guest's Hello (boot, key) {:.1} ms, -> evidence {:.1} ms, the host's answer to it \
             (appraisal, issuance) {:.1} ms, -> the guest's Done (its check, sealing) {:.1} ms, -> QEMU exited {:.1} ms",
            self.to_hello, self.to_evidence, self.answer, self.to_done, self.to_exit
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use twi_proto::msg::{ErrorCode, ErrorMsg};

    #[test]
    fn acquisition_messages_are_recorded_log_lines_are_not_and_the_length_is_bounded() {
        let mut timeline = Timeline::default();
        let origin = Instant::now();
        let reply = Message::Error(ErrorMsg { code: ErrorCode::Malformed, message: "x".into() });
        timeline.record("Hello", Instant::now(), std::slice::from_ref(&reply));
        timeline.record("Log", Instant::now(), &[]);
        timeline.record("Done", Instant::now(), &[]);
        let json = timeline.to_json(origin, Instant::now());
        let asked: Vec<&str> =
            json["exchanges"].as_array().unwrap().iter().map(|e| e["guest"].as_str().unwrap()).collect();
        assert_eq!(asked, ["Hello", "Done"]);
        assert_eq!(json["exchanges"][0]["host"], json!(["Error"]));
        assert!(
            json["exchanges"][1]["answered_ms"].as_f64().unwrap() >= json["exchanges"][0]["at_ms"].as_f64().unwrap()
        );
        assert!(json["exited_ms"].as_f64().is_some());
        assert_eq!(timeline.phases(origin, Instant::now()), None, "no Evidence: no phases");
        assert!(json["phases_ms"].is_null());
        timeline.record("Evidence", Instant::now(), &[]);
        let summary = timeline.phases(origin, Instant::now()).unwrap().summary();
        assert!(summary.starts_with("QEMU launch -> guest's Hello (boot, key) "), "{summary}");
        let json = timeline.to_json(origin, Instant::now());
        for field in Phases::FIELDS {
            assert!(json["phases_ms"][field].as_f64().unwrap() >= 0.0, "{field}: {json}");
        }
        for _ in 0..Timeline::MAX * 2 {
            timeline.record("Hello", Instant::now(), &[]);
        }
        assert_eq!(timeline.exchanges().len(), Timeline::MAX);
    }
}
