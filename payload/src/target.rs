//! Targets: what a workload acquires credentials for and connects to, named in its measured
//! manifest (`twi build --set target=https://HOST:PORT/PATH`).

use alloc::string::{String, ToString};

use crate::runtime::ConnectError;

/// `HOST:PORT` of `https://HOST:PORT/…` (port 443 when absent), or of a bare `HOST:PORT`;
/// `None` for what is not a target (no host, or user information in it).
///
/// ```
/// use twi_payload::target::origin;
/// assert_eq!(origin("https://db.example:8443/rows").as_deref(), Some("db.example:8443"));
/// ```
pub fn origin(target: &str) -> Option<String> {
    let rest = target.strip_prefix("https://").unwrap_or(target);
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let has_port =
        authority.rsplit_once(':').is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    Some(if has_port { authority.to_string() } else { alloc::format!("{authority}:443") })
}

/// Whether a launch setting names a target: `target`, `target.NAME` or `target-NAME`.
/// The runtime lets a workload connect only to an origin such a measured setting names.
pub fn is_target_key(key: &str) -> bool {
    key == "target" || key.starts_with("target.") || key.starts_with("target-")
}

/// The origin of `target` if one of `settings` (key, value) names a target with that origin:
/// the rule `Runtime::connect` applies to the measured manifest.
///
/// # Errors
/// [`ConnectError::BadTarget`] when `target` has no origin, [`ConnectError::NotInManifest`]
/// when no target setting names it.
pub fn named_origin<'a>(
    settings: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    target: &str,
) -> Result<String, ConnectError> {
    let wanted = origin(target).ok_or_else(|| ConnectError::BadTarget(target.to_string()))?;
    let named = settings
        .into_iter()
        .filter(|(key, _)| is_target_key(key))
        .filter_map(|(_, value)| core::str::from_utf8(value).ok())
        .any(|value| origin(value).as_deref() == Some(wanted.as_str()));
    if named { Ok(wanted) } else { Err(ConnectError::NotInManifest(target.to_string())) }
}

/// The host part of a target (`db.example` of `https://db.example:8443/rows`): the name TLS
/// verifies the server's certificate for.
///
/// ```
/// use twi_payload::target::host;
/// assert_eq!(host("https://10.0.2.2:8443/rows").as_deref(), Some("10.0.2.2"));
/// ```
pub fn host(target: &str) -> Option<String> {
    let origin = origin(target)?;
    let (host, _) = origin.rsplit_once(':')?;
    Some(host.trim_start_matches('[').trim_end_matches(']').to_string())
}

/// The path of a target URL (`/rows` of `https://db.example:8443/rows?x`), `/` when it has none.
///
/// ```
/// use twi_payload::target::path;
/// assert_eq!(path("https://db.example:8443/rows?month=1"), "/rows?month=1");
/// ```
pub fn path(target: &str) -> &str {
    let rest = target.strip_prefix("https://").unwrap_or(target);
    // `get`, not `[i..]`: `find` gives a char boundary, but indexing a str would link core's
    // string-slicing panic and its Unicode tables (3.5 KB of the ROM, issue 17).
    rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("/")
}

/// The request's target URI without query or fragment (a WPT's `aud`).
///
/// ```
/// use twi_payload::target::audience;
/// assert_eq!(audience("https://db.example:8443/rows?x#y"), "https://db.example:8443/rows");
/// ```
pub fn audience(target: &str) -> &str {
    target.split(['?', '#']).next().unwrap_or(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_hosts_and_paths() {
        assert_eq!(origin("https://db.example/rows?x").as_deref(), Some("db.example:443"));
        assert_eq!(origin("10.0.2.2:9443").as_deref(), Some("10.0.2.2:9443"));
        assert_eq!(origin("https://user@db.example/"), None);
        assert_eq!(origin("https:///x"), None);
        assert_eq!(host("https://db.example/rows").as_deref(), Some("db.example"));
        assert_eq!(path("https://db.example"), "/");
        assert_eq!(audience("https://db.example:1/a"), "https://db.example:1/a");
    }

    #[test]
    fn only_target_settings_name_origins() {
        let settings = [("target", &b"https://db.example/rows"[..]), ("note", b"https://other.example/")];
        assert_eq!(named_origin(settings, "https://db.example/other").as_deref(), Ok("db.example:443"));
        let other = "https://other.example/";
        assert_eq!(named_origin(settings, other), Err(ConnectError::NotInManifest(other.into())));
        assert_eq!(
            named_origin([("target-db", &b"db.example:8443"[..])], "https://db.example:8443/").as_deref(),
            Ok("db.example:8443")
        );
        let user = "https://user@db.example/";
        assert_eq!(named_origin(settings, user), Err(ConnectError::BadTarget(user.into())));
        assert!(is_target_key("target.payroll") && !is_target_key("targets"));
    }
}
