//! Instants as the verifiers read and print them: RFC 3339 UTC timestamps
//! (`2025-06-19T10:16:03Z`), the form of `--now`, of Intel's collateral dates and of
//! certificate validity in messages.

use std::str::FromStr;
use std::time::SystemTime;

use der::DateTime;

/// Parses an RFC 3339 UTC timestamp: `YYYY-MM-DDTHH:MM:SSZ`, optionally with a fraction of a
/// second (ignored) or `+00:00` for `Z`, or a bare date `YYYY-MM-DD` (midnight UTC).
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let full = if text.len() == 10 { format!("{text}T00:00:00Z") } else { text.replace("+00:00", "Z") };
    // Drop a fractional second: "…:SS.123Z" → "…:SSZ".
    let canonical = match (full.find('.'), full.strip_suffix('Z')) {
        (Some(dot), Some(_)) if dot == 19 => format!("{}Z", &full[..dot]),
        _ => full,
    };
    DateTime::from_str(&canonical).ok().map(|t| t.to_system_time())
}

/// Formats `time` as `YYYY-MM-DDTHH:MM:SSZ` (whole seconds).
pub fn format_rfc3339(time: SystemTime) -> String {
    match DateTime::from_system_time(time) {
        Ok(t) => t.to_string(),
        Err(_) => "an instant outside 1970..9999".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn round_trips_and_variants() {
        let t = parse_rfc3339("2025-06-19T10:16:03Z").unwrap();
        assert_eq!(t, UNIX_EPOCH + Duration::from_secs(1_750_328_163));
        assert_eq!(format_rfc3339(t), "2025-06-19T10:16:03Z");
        assert_eq!(parse_rfc3339("2025-06-19T10:16:03.250Z"), Some(t));
        assert_eq!(parse_rfc3339("2025-06-19T10:16:03+00:00"), Some(t));
        assert_eq!(parse_rfc3339(" 2025-06-19 "), Some(UNIX_EPOCH + Duration::from_secs(1_750_291_200)));
        for bad in ["", "2025-06-19T10:16:03", "2025-13-01T00:00:00Z", "yesterday", "2025-06-19T10:16:03+02:00"] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }
}
