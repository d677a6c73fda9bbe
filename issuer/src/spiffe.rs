//! SPIFFE IDs (spiffe/spiffe `standards/SPIFFE-ID.md`): `spiffe://TRUST-DOMAIN/PATH`, the trust
//! domain of lowercase letters, digits, `.`, `-` and `_`; the path of non-empty segments of
//! letters, digits, `.`, `-` and `_`, none `.` or `..`, no trailing `/`; no query, fragment,
//! port or user info; at most 2048 bytes. The policy checks its trust domain and workload
//! paths with these rules, and the Credential Authority certifies only IDs in its own trust
//! domain that follow them (issue 14: provisioning could otherwise name any URI).

/// Longest SPIFFE ID, in bytes (SPIFFE-ID.md §2.3).
const MAX_ID: usize = 2048;

/// A SPIFFE trust domain name.
pub(crate) fn valid_trust_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_'))
}

/// A SPIFFE path without its leading `/` (a workload's id in the policy).
pub(crate) fn valid_workload_path(s: &str) -> bool {
    !s.is_empty()
        && s.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        })
}

/// `id` is a workload's SPIFFE ID in `trust_domain` (not the trust domain's root ID); `Err`
/// says what is wrong with it.
pub(crate) fn check_workload_id(id: &str, trust_domain: &str) -> Result<(), String> {
    let Some(rest) = id.strip_prefix("spiffe://") else {
        return Err(format!("{id:?} is not a SPIFFE ID: it must start with spiffe://{trust_domain}/"));
    };
    if id.len() > MAX_ID {
        return Err(format!("a SPIFFE ID is at most {MAX_ID} bytes, this one {}", id.len()));
    }
    let (domain, path) = rest.split_once('/').unwrap_or((rest, ""));
    if domain != trust_domain {
        return Err(format!(
            "{id:?} is in trust domain {domain:?}, not this issuer's {trust_domain:?}: the CA certifies its own trust domain only"
        ));
    }
    if path.is_empty() {
        return Err(format!("{id:?} names the trust domain itself, not a workload: add the workload's path"));
    }
    if !valid_workload_path(path) {
        return Err(format!(
            "{id:?} is not a valid SPIFFE ID: its path must be segments of letters, digits, '.', '-', '_' separated by '/' (no query, fragment, empty, '.' or '..' segment)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_workload_ids_in_the_own_trust_domain_pass() {
        assert_eq!(check_workload_id("spiffe://example.org/payroll-app", "example.org"), Ok(()));
        assert_eq!(check_workload_id("spiffe://example.org/team/payroll_v2.1", "example.org"), Ok(()));
        let refused = [
            ("https://example.org/payroll-app", "is not a SPIFFE ID"),
            ("spiffe://other.org/payroll-app", "not this issuer's \"example.org\""),
            ("spiffe://example.org", "names the trust domain itself"),
            ("spiffe://example.org/", "names the trust domain itself"),
            ("spiffe://example.org/a?x=1", "is not a valid SPIFFE ID"),
            ("spiffe://example.org/a#f", "is not a valid SPIFFE ID"),
            ("spiffe://example.org/a//b", "is not a valid SPIFFE ID"),
            ("spiffe://example.org/a/../b", "is not a valid SPIFFE ID"),
            ("spiffe://example.org/a/", "is not a valid SPIFFE ID"),
            ("spiffe://example.org:8443/a", "not this issuer's"),
            ("spiffe://user@example.org/a", "not this issuer's"),
        ];
        for (id, why) in refused {
            let err = check_workload_id(id, "example.org").unwrap_err();
            assert!(err.contains(why), "{id}: {err}");
        }
        let long = format!("spiffe://example.org/{}", "a".repeat(MAX_ID));
        assert!(check_workload_id(&long, "example.org").unwrap_err().contains("at most 2048 bytes"));
    }
}
