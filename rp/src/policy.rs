//! Authorization: which authenticated workload may do what, by its Stable identifier and
//! business claims, never by a measurement.
//!
//! A workload identifier is compared exactly (draft-ietf-wimse-workload-creds §4.2: "the full
//! workload identifier may be matched against ACLs"). Business claims come from the WIT only:
//! the TWI issuer's X.509 credentials carry the identity in their one URI SAN and, in extensions,
//! the policy version and the evidence digest, but no business claims, so a route that requires
//! claims refuses an mTLS caller and says to use WIT + WPT. No check here reads anything about the
//! launch (a measurement, a chip, a TCB): a new build admitted at the issuer keeps its identity
//! and its claims, so this relying party's configuration does not change.

use hyper::Method;
use serde_json::{Map, Value};

use crate::config::Route;

/// How the caller authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A client certificate chained to the issuer CA.
    Mtls,
    /// A WIT and its WPT.
    Wit,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub identity: String,
    pub via: Via,
    /// The WIT's claims (WIT callers only).
    pub claims: Option<Map<String, Value>>,
}

/// A route and the bytes it serves.
#[derive(Debug, Clone)]
pub struct Served {
    pub route: Route,
    pub body: hyper::body::Bytes,
}

/// Why a request is not served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("no route serves {0}")]
    NotFound(String),
    #[error("{path} is served only for {}", allowed.join(", "))]
    MethodNotAllowed { path: String, allowed: Vec<String> },
    #[error("{identity} is not allowed to {method} {path}")]
    NotAllowed { identity: String, method: String, path: String },
    #[error("{path} requires business claims, which X.509 credentials do not carry: call it with WIT + WPT")]
    ClaimsNeedWit { path: String },
    #[error("{path} requires the claim {claim} = {required}; the WIT has {found}")]
    Claim { path: String, claim: String, required: String, found: String },
}

/// The route for `path` and `method`: the longest matching prefix (on segment boundaries), then
/// the route of that prefix that serves the method.
pub fn select<'a>(routes: &'a [Served], path: &str, method: &Method) -> Result<&'a Served, Refused> {
    let longest = routes
        .iter()
        .filter(|s| prefix_matches(&s.route.path, path))
        .map(|s| s.route.path.len())
        .max()
        .ok_or_else(|| Refused::NotFound(path.to_string()))?;
    let candidates: Vec<&Served> =
        routes.iter().filter(|s| s.route.path.len() == longest && prefix_matches(&s.route.path, path)).collect();
    candidates.iter().copied().find(|s| s.route.methods.iter().any(|m| m == method.as_str())).ok_or_else(|| {
        let mut allowed: Vec<String> = candidates.iter().flat_map(|s| s.route.methods.clone()).collect();
        allowed.sort();
        Refused::MethodNotAllowed { path: path.to_string(), allowed }
    })
}

fn prefix_matches(prefix: &str, path: &str) -> bool {
    prefix == "/" || path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

/// Whether `caller` may use `served` with `method`.
pub fn authorize(served: &Served, caller: &Caller, method: &Method) -> Result<(), Refused> {
    let route = &served.route;
    if !route.allow.contains(&caller.identity) {
        return Err(Refused::NotAllowed {
            identity: caller.identity.clone(),
            method: method.to_string(),
            path: route.path.clone(),
        });
    }
    if route.claims.is_empty() {
        return Ok(());
    }
    let Some(claims) = &caller.claims else {
        return Err(Refused::ClaimsNeedWit { path: route.path.clone() });
    };
    for (name, required) in &route.claims {
        let found = claims.get(name);
        if found != Some(required) {
            return Err(Refused::Claim {
                path: route.path.clone(),
                claim: name.clone(),
                required: required.to_string(),
                found: found.map_or_else(|| "none".to_string(), Value::to_string),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Body;
    use serde_json::json;

    fn served(path: &str, methods: &[&str], allow: &[&str], claims: Value) -> Served {
        Served {
            route: Route {
                path: path.into(),
                methods: methods.iter().map(|m| m.to_string()).collect(),
                allow: allow.iter().map(|a| a.to_string()).collect(),
                claims: claims.as_object().cloned().unwrap_or_default(),
                body: Body::Inline(String::new()),
                content_type: "text/plain".into(),
            },
            body: hyper::body::Bytes::from_static(b""),
        }
    }

    const APP: &str = "spiffe://example.org/payroll-app";

    #[test]
    fn the_longest_prefix_on_a_segment_boundary_wins_then_the_method() {
        let routes = [
            served("/", &["GET"], &[APP], json!({})),
            served("/rows", &["GET"], &[APP], json!({})),
            served("/rows", &["POST"], &[APP], json!({})),
            served("/rows/secret", &["GET"], &[APP], json!({})),
        ];
        let pick =
            |p: &str, m: Method| select(&routes, p, &m).map(|s| (s.route.path.clone(), s.route.methods[0].clone()));
        assert_eq!(pick("/rows", Method::GET), Ok(("/rows".into(), "GET".into())));
        assert_eq!(pick("/rows/7", Method::POST), Ok(("/rows".into(), "POST".into())));
        assert_eq!(pick("/rows/secret/x", Method::GET), Ok(("/rows/secret".into(), "GET".into())));
        assert_eq!(pick("/rowsx", Method::GET), Ok(("/".into(), "GET".into())));
        assert_eq!(
            pick("/rows", Method::DELETE),
            Err(Refused::MethodNotAllowed { path: "/rows".into(), allowed: vec!["GET".into(), "POST".into()] })
        );
        let no_root = &routes[1..];
        assert_eq!(select(no_root, "/rowsx", &Method::GET).unwrap_err(), Refused::NotFound("/rowsx".into()));
    }

    #[test]
    fn identity_exactly_and_claims_from_the_wit_only() {
        let route = served("/rows", &["GET"], &[APP], json!({"location": "DE", "clearance": 2}));
        let wit = |claims: Value| Caller { identity: APP.into(), via: Via::Wit, claims: claims.as_object().cloned() };
        assert_eq!(authorize(&route, &wit(json!({"location": "DE", "clearance": 2, "x": 1})), &Method::GET), Ok(()));
        let e = authorize(&route, &wit(json!({"location": "US", "clearance": 2})), &Method::GET).unwrap_err();
        assert!(e.to_string().contains("location = \"DE\"; the WIT has \"US\""), "{e}");
        let e = authorize(&route, &wit(json!({"location": "DE", "clearance": "2"})), &Method::GET).unwrap_err();
        assert!(matches!(e, Refused::Claim { .. }), "a string is not the integer 2");
        assert!(authorize(&route, &wit(json!({"location": "DE"})), &Method::GET).is_err());
        let mtls = Caller { identity: APP.into(), via: Via::Mtls, claims: None };
        assert_eq!(authorize(&route, &mtls, &Method::GET), Err(Refused::ClaimsNeedWit { path: "/rows".into() }));
        let open = served("/rows", &["GET"], &[APP], json!({}));
        assert_eq!(authorize(&open, &mtls, &Method::GET), Ok(()));
        for other in
            ["spiffe://example.org/payroll-app/", "spiffe://example.org/Payroll-app", "spiffe://evil.org/payroll-app"]
        {
            let caller = Caller { identity: other.into(), via: Via::Mtls, claims: None };
            assert!(matches!(authorize(&open, &caller, &Method::GET), Err(Refused::NotAllowed { .. })), "{other}");
        }
    }
}
