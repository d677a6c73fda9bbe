//! A workload's DNS names (`dns_names = [...]`, issue 16 item 4): the X.509 credential carries a
//! dNSName SAN for each, beside its one SPIFFE URI SAN (the X.509-SVID specification allows
//! other SAN types), so a workload that serves TLS is found by the name standard clients check
//! (RFC 6125). Only when the policy names one: no workload gets a DNS name by default.
//!
//! Checked when the policy loads, as RFC 1123 host names in the preferred LDH form written
//! lower-case (what RFC 5280 §4.2.1.6 dNSName holds): labels of 1–63 letters, digits and inner
//! hyphens, at most 253 characters, no trailing dot; no wildcards (a credential names the hosts
//! it serves, each one); at most [`MAX_NAMES`], each once.

/// DNS names one workload may carry.
pub const MAX_NAMES: usize = 16;

/// The workload's `dns_names`, checked; the message says which name is wrong and why.
pub(super) fn dns_names(names: Vec<String>) -> Result<Vec<String>, String> {
    if names.len() > MAX_NAMES {
        return Err(format!("dns_names lists {} names; at most {MAX_NAMES} are allowed", names.len()));
    }
    for (i, name) in names.iter().enumerate() {
        host_name(name).map_err(|why| format!("dns_names: {name:?} {why}"))?;
        if names[..i].contains(name) {
            return Err(format!("dns_names lists {name:?} twice"));
        }
    }
    Ok(names)
}

/// Why `name` is not a lower-case LDH host name, if it is not.
fn host_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 253 {
        return Err("is not 1 to 253 characters long");
    }
    if name.ends_with('.') {
        return Err("ends with a dot: write the name without it");
    }
    if name.contains('*') {
        return Err("is a wildcard: name each host the workload serves");
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("has a label that is empty or longer than 63 characters");
        }
        if !label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err("may hold lower-case letters, digits, hyphens and dots only");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("has a label that starts or ends with a hyphen");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn host_names_pass_and_everything_else_is_refused_with_its_reason() {
        let good = names(&["payroll.example.org", "db-1.internal", "localhost", "a1.b2"]);
        assert_eq!(dns_names(good.clone()).unwrap(), good);
        assert_eq!(dns_names(Vec::new()).unwrap(), Vec::<String>::new());
        let cases = [
            ("", "1 to 253"),
            ("payroll.example.org.", "without it"),
            ("*.example.org", "wildcard"),
            ("Payroll.example.org", "lower-case"),
            ("pay_roll.example.org", "lower-case"),
            ("payroll..example.org", "empty"),
            ("-payroll.example.org", "hyphen"),
            ("payroll-.example.org", "hyphen"),
            ("spiffe://example.org/x", "lower-case"),
        ];
        for (name, why) in cases {
            let error = dns_names(names(&[name])).unwrap_err();
            assert!(error.contains(why) && error.contains("dns_names"), "{name:?}: {error}");
        }
        let long = format!("{}.org", "a".repeat(64));
        assert!(dns_names(vec![long]).unwrap_err().contains("63"));
        assert!(dns_names(vec![format!("{}.org", "a.".repeat(126))]).unwrap_err().contains("253"));
        assert!(dns_names(names(&["a.org", "a.org"])).unwrap_err().contains("twice"));
        let many: Vec<String> = (0..=MAX_NAMES).map(|i| format!("h{i}.org")).collect();
        assert!(dns_names(many).unwrap_err().contains("at most"));
    }
}
