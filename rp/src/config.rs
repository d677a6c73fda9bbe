//! The relying party's configuration file (TOML), checked field by field when it is loaded.
//!
//! Why a file and not flags: the relying party's policy (which workload may call which route,
//! with which business claims) is what an operator reviews and versions, like the issuer's
//! appraisal policy. It names workloads by their Stable identifier (a SPIFFE ID, a URI per
//! draft-ietf-wimse-workload-creds §3.1 `sub` and the X.509-SVID rules of SPIFFE's
//! `X509-SVID.md` §2), never by a measurement: a new build of a workload is admitted at the
//! issuer and nothing here changes.
//!
//! Relative paths are relative to the directory of the configuration file. Every error names
//! the field (`route[1].allow`) and says what to write instead.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

/// Claim names the WIT itself defines (draft-ietf-wimse-workload-creds §3.1, RFC 7519 §4.1):
/// a route cannot require them as business claims.
const REGISTERED_CLAIMS: &[&str] = &["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "cnf"];
/// Methods a route may name.
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

/// A configuration problem; each names the field and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    #[error("configuration {path}: {error}")]
    Toml { path: PathBuf, error: Box<toml::de::Error> },
    #[error("configuration field `{field}`: {reason}")]
    Field { field: String, reason: String },
}

fn field(name: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Field { field: name.into(), reason: reason.into() }
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: String,
    public_url: String,
    server_certificate: PathBuf,
    server_key: PathBuf,
    issuer_ca: Option<PathBuf>,
    issuer_jwks: Option<PathBuf>,
    #[serde(default = "default_wit_key_ids")]
    wit_key_ids: Vec<String>,
    #[serde(default = "default_wpt_max_lifetime")]
    wpt_max_lifetime_secs: u64,
    #[serde(default = "default_leeway")]
    leeway_secs: u64,
    #[serde(default = "default_replay_capacity")]
    replay_cache_capacity: usize,
    #[serde(default = "default_max_connections")]
    max_connections: usize,
    simulated_tee_oid: Option<String>,
    #[serde(default, rename = "route")]
    routes: Vec<RawRoute>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    path: String,
    #[serde(default = "default_methods")]
    methods: Vec<String>,
    allow: Vec<String>,
    #[serde(default)]
    claims: BTreeMap<String, toml::Value>,
    body: Option<String>,
    body_file: Option<PathBuf>,
    content_type: Option<String>,
}

/// The issuer's WIT keys: `twi-wit` (P-384, ES384) and `twi-wit-es256` (P-256, under the
/// issuer policy's `wit_alg = "ES256"`); the issuer publishes the one its policy uses.
fn default_wit_key_ids() -> Vec<String> {
    vec!["twi-wit".into(), "twi-wit-es256".into()]
}
fn default_wpt_max_lifetime() -> u64 {
    300
}
fn default_leeway() -> u64 {
    60
}
fn default_replay_capacity() -> usize {
    100_000
}
fn default_max_connections() -> usize {
    256
}
fn default_methods() -> Vec<String> {
    vec!["GET".into()]
}

/// A checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where `RelyingParty::run` listens.
    pub listen: SocketAddr,
    /// `scheme://authority[/base]` without a trailing slash: a WPT's `aud` must be this
    /// followed by the request's path (draft-ietf-wimse-wpt §2, "aud").
    pub public_url: String,
    /// The server's certificate chain (PEM, leaf first) and its key (PKCS#8 or SEC1 PEM,
    /// ECDSA P-256 or P-384).
    pub server_certificate: PathBuf,
    pub server_key: PathBuf,
    /// The issuer CA (PEM) client certificates must chain to; `None`: no mTLS.
    pub issuer_ca: Option<PathBuf>,
    /// The OID of the issuer's critical simulated-TEE extension, for development only: client
    /// certificates carrying it are accepted (`simulated.rs`); `None`: refused, as standard
    /// verifiers do.
    pub simulated_tee_oid: Option<der::asn1::ObjectIdentifier>,
    /// The issuer's published keys (JWKS); `None`: no WIT + WPT.
    pub issuer_jwks: Option<PathBuf>,
    /// The `kid`s in the JWKS that sign WITs; the issuer's other keys (its Verifier's, its
    /// log's) never verify a WIT.
    pub wit_key_ids: Vec<String>,
    /// How far in the future a WPT's `exp` may be.
    pub wpt_max_lifetime: Duration,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// WPT `jti`s remembered at most (each until its WPT expires).
    pub replay_cache_capacity: usize,
    /// Connections served at once.
    pub max_connections: usize,
    pub routes: Vec<Route>,
}

/// What a route serves and to whom.
#[derive(Debug, Clone)]
pub struct Route {
    /// A path prefix, matched on segment boundaries (`/rows` matches `/rows` and `/rows/7`,
    /// not `/rowsx`).
    pub path: String,
    pub methods: Vec<String>,
    /// Workload identifiers allowed, compared exactly.
    pub allow: Vec<String>,
    /// Business claims a caller's WIT must carry with exactly these values. An X.509 caller
    /// carries none (the issuer puts no business claims in certificates), so a route with
    /// claims is for WIT + WPT callers only.
    pub claims: Map<String, Value>,
    pub body: Body,
    pub content_type: String,
}

/// Where a route's data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Inline(String),
    File(PathBuf),
}

impl Config {
    /// Reads and checks the configuration file `path`.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|error| ConfigError::Read { path: path.to_path_buf(), error })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_toml(&text, base).map_err(|e| match e {
            ConfigError::Toml { error, .. } => ConfigError::Toml { path: path.to_path_buf(), error },
            other => other,
        })
    }

    /// Checks configuration `text`; relative paths are taken relative to `base`.
    pub fn from_toml(text: &str, base: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text)
            .map_err(|error| ConfigError::Toml { path: PathBuf::from("<text>"), error: Box::new(error) })?;
        let listen = raw.listen.parse().map_err(|_| {
            field("listen", format!("{:?} is not an IP address and port, e.g. \"127.0.0.1:8443\"", raw.listen))
        })?;
        if raw.issuer_ca.is_none() && raw.issuer_jwks.is_none() {
            return Err(field(
                "issuer_ca",
                "neither `issuer_ca` (for mTLS) nor `issuer_jwks` (for WIT + WPT) is set: no workload could authenticate",
            ));
        }
        check_positive("wpt_max_lifetime_secs", raw.wpt_max_lifetime_secs)?;
        check_positive("replay_cache_capacity", raw.replay_cache_capacity as u64)?;
        check_positive("max_connections", raw.max_connections as u64)?;
        if raw.wit_key_ids.is_empty() && raw.issuer_jwks.is_some() {
            return Err(field(
                "wit_key_ids",
                "empty: name the `kid` of the issuer's WIT key (\"twi-wit\" or \"twi-wit-es256\")",
            ));
        }
        if raw.routes.is_empty() {
            return Err(field("route", "no [[route]]: the relying party would refuse every request"));
        }
        let routes =
            raw.routes.into_iter().enumerate().map(|(i, r)| route(i, r, base)).collect::<Result<Vec<_>, _>>()?;
        check_overlaps(&routes)?;
        let resolve = |p: PathBuf| base.join(p);
        Ok(Self {
            listen,
            public_url: public_url(&raw.public_url)?,
            server_certificate: resolve(raw.server_certificate),
            server_key: resolve(raw.server_key),
            issuer_ca: raw.issuer_ca.map(resolve),
            simulated_tee_oid: raw
                .simulated_tee_oid
                .map(|oid| {
                    oid.parse().map_err(|e| field("simulated_tee_oid", format!("{oid:?} is not a dotted OID: {e}")))
                })
                .transpose()?,
            issuer_jwks: raw.issuer_jwks.map(resolve),
            wit_key_ids: raw.wit_key_ids,
            wpt_max_lifetime: Duration::from_secs(raw.wpt_max_lifetime_secs),
            leeway: Duration::from_secs(raw.leeway_secs),
            replay_cache_capacity: raw.replay_cache_capacity,
            max_connections: raw.max_connections,
            routes,
        })
    }
}

fn check_positive(name: &str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(field(name, "must be at least 1"));
    }
    Ok(())
}

/// `https://authority[/base]`, no query or fragment, stored without a trailing slash.
fn public_url(text: &str) -> Result<String, ConfigError> {
    let bad =
        |why: &str| field("public_url", format!("{text:?} {why}; write e.g. \"https://payroll-db.example.org:8443\""));
    let uri: hyper::Uri = text.parse().map_err(|_| bad("is not a URI"))?;
    if uri.scheme_str() != Some("https") {
        return Err(bad("is not an https URL (WPTs travel over TLS only, draft-ietf-wimse-wpt §4)"));
    }
    let authority = uri.authority().ok_or_else(|| bad("has no host"))?;
    if uri.query().is_some() || text.contains('#') {
        return Err(bad("has a query or fragment"));
    }
    Ok(format!("https://{authority}{}", uri.path().trim_end_matches('/')))
}

fn route(index: usize, raw: RawRoute, base: &Path) -> Result<Route, ConfigError> {
    let name = |f: &str| format!("route[{index}].{f}");
    if !raw.path.starts_with('/') || raw.path.contains(['?', '#']) {
        return Err(field(name("path"), format!("{:?} must start with `/` and have no query or fragment", raw.path)));
    }
    let path = if raw.path == "/" { raw.path } else { raw.path.trim_end_matches('/').to_string() };
    if raw.methods.is_empty() {
        return Err(field(name("methods"), "empty: name at least one method, e.g. [\"GET\"]"));
    }
    if let Some(m) = raw.methods.iter().find(|m| !METHODS.contains(&m.as_str())) {
        return Err(field(name("methods"), format!("{m:?} is not one of {}", METHODS.join(", "))));
    }
    if raw.allow.is_empty() {
        return Err(field(name("allow"), "empty: name at least one workload identifier"));
    }
    if let Some(id) = raw.allow.iter().find(|id| !is_workload_identifier(id)) {
        return Err(field(
            name("allow"),
            format!("{id:?} is not an absolute URI with a trust domain, e.g. \"spiffe://example.org/payroll-app\""),
        ));
    }
    let claims =
        raw.claims.into_iter().map(|(k, v)| claim(&name("claims"), k, v)).collect::<Result<Map<String, Value>, _>>()?;
    let body = match (raw.body, raw.body_file) {
        (Some(text), None) => Body::Inline(text),
        (None, Some(file)) => Body::File(base.join(file)),
        _ => return Err(field(name("body"), "set exactly one of `body` (inline text) and `body_file` (a file)")),
    };
    let content_type = raw.content_type.unwrap_or_else(|| "text/plain; charset=utf-8".into());
    if hyper::header::HeaderValue::from_str(&content_type).is_err() {
        return Err(field(name("content_type"), format!("{content_type:?} is not a valid header value")));
    }
    Ok(Route { path, methods: raw.methods, allow: raw.allow, claims, body, content_type })
}

fn claim(field_name: &str, name: String, value: toml::Value) -> Result<(String, Value), ConfigError> {
    if REGISTERED_CLAIMS.contains(&name.as_str()) || name.is_empty() {
        return Err(field(
            field_name,
            format!("`{name}` is a registered JWT claim, not a business claim; authorize on `allow` instead"),
        ));
    }
    let value = match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Integer(i) => Value::from(i),
        other => {
            return Err(field(
                format!("{field_name}.{name}"),
                format!("a {} cannot be compared: use a string, boolean or integer", other.type_str()),
            ));
        }
    };
    Ok((name, value))
}

/// A WIMSE workload identifier: an absolute URI whose authority is the trust domain
/// (draft-ietf-wimse-workload-creds §3.1 `sub`; SPIFFE IDs qualify).
pub fn is_workload_identifier(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once("://") else { return false };
    let scheme_ok = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    scheme_ok
        && !authority.is_empty()
        && !text.contains('#')
        && text.chars().all(|c| c.is_ascii_graphic())
        && text.parse::<hyper::Uri>().is_ok()
}

/// Two routes with the same path must not share a method: the answer would depend on order.
fn check_overlaps(routes: &[Route]) -> Result<(), ConfigError> {
    for (i, a) in routes.iter().enumerate() {
        for (j, b) in routes.iter().enumerate().skip(i + 1) {
            if a.path == b.path
                && let Some(m) = a.methods.iter().find(|m| b.methods.contains(m))
            {
                return Err(field(
                    format!("route[{j}].methods"),
                    format!("route[{i}] already serves {m} {}: merge the two routes' `allow` lists", a.path),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
listen = "127.0.0.1:8443"
public_url = "https://payroll-db.example.org:8443/"
server_certificate = "server.pem"
server_key = "server.key.pem"
issuer_ca = "/etc/twi/issuer-ca.pem"
issuer_jwks = "issuer-jwks.json"

[[route]]
path = "/rows/"
allow = ["spiffe://example.org/payroll-app"]
body = "alice,100\n"
[route.claims]
location = "DE"
clearance = 2
handles-pii = true

[[route]]
path = "/rows"
methods = ["POST"]
allow = ["spiffe://example.org/payroll-admin"]
body_file = "data/ok.json"
content_type = "application/json"
"#;

    fn err(text: &str) -> String {
        Config::from_toml(text, Path::new("/cfg")).unwrap_err().to_string()
    }

    #[test]
    fn a_good_file_is_read_with_defaults_and_resolved_paths() {
        let c = Config::from_toml(GOOD, Path::new("/cfg")).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8443".parse().unwrap());
        assert_eq!(c.public_url, "https://payroll-db.example.org:8443");
        assert_eq!(c.server_certificate, Path::new("/cfg/server.pem"));
        assert_eq!(c.issuer_ca.as_deref(), Some(Path::new("/etc/twi/issuer-ca.pem")));
        assert_eq!(c.wit_key_ids, ["twi-wit", "twi-wit-es256"]);
        assert_eq!(c.wpt_max_lifetime, Duration::from_secs(300));
        assert_eq!(c.leeway, Duration::from_secs(60));
        let r = &c.routes[0];
        assert_eq!((r.path.as_str(), r.methods.as_slice()), ("/rows", &["GET".to_string()][..]));
        assert_eq!(r.claims["clearance"], 2);
        assert_eq!(r.claims["handles-pii"], true);
        assert_eq!(r.body, Body::Inline("alice,100\n".into()));
        assert_eq!(r.content_type, "text/plain; charset=utf-8");
        assert_eq!(c.routes[1].body, Body::File("/cfg/data/ok.json".into()));
    }

    #[test]
    fn each_mistake_names_its_field() {
        let cases = [
            (GOOD.replace("127.0.0.1:8443\"", "localhost\""), "`listen`"),
            (GOOD.replace("https://payroll-db", "http://payroll-db"), "`public_url`"),
            (GOOD.replace(":8443/\"", ":8443/?x=1\""), "`public_url`"),
            (GOOD.replace("path = \"/rows/\"", "path = \"rows\""), "`route[0].path`"),
            (GOOD.replace("[\"POST\"]", "[\"post\"]"), "`route[1].methods`"),
            (GOOD.replace("[\"POST\"]", "[\"GET\"]"), "`route[1].methods`"),
            (GOOD.replace("[\"spiffe://example.org/payroll-admin\"]", "[]"), "`route[1].allow`"),
            (GOOD.replace("spiffe://example.org/payroll-app", "payroll-app"), "`route[0].allow`"),
            (GOOD.replace("clearance = 2", "sub = \"x\""), "`route[0].claims`"),
            (GOOD.replace("clearance = 2", "clearance = 2.5"), "`route[0].claims.clearance`"),
            (GOOD.replace("body = \"alice,100\\n\"", ""), "`route[0].body`"),
            (GOOD.replace("content_type = \"application/json\"", "body = \"x\""), "`route[1].body`"),
            (
                GOOD.replace("issuer_ca = \"/etc/twi/issuer-ca.pem\"\nissuer_jwks = \"issuer-jwks.json\"", ""),
                "`issuer_ca`",
            ),
            (GOOD.replace("listen =", "wpt_max_lifetime_secs = 0\nlisten ="), "`wpt_max_lifetime_secs`"),
        ];
        for (text, expected) in cases {
            assert_ne!(text, GOOD, "the case for {expected} changed nothing");
            let e = err(&text);
            assert!(e.contains(expected), "expected {expected} in: {e}");
        }
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/rp.example.toml"));
        let c = Config::from_file(path).unwrap();
        assert_eq!(c.routes.len(), 2);
        assert_eq!(c.routes[1].claims["location"], "DE");
        assert_eq!(c.server_key, path.parent().unwrap().join("server.key.pem"));
    }

    #[test]
    fn unknown_fields_and_syntax_errors_are_refused_with_their_place() {
        let e = err(&GOOD.replace("listen =", "lisen = \"x\"\nlisten ="));
        assert!(e.contains("lisen"), "{e}");
        let e = err("listen = ");
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn workload_identifiers_are_absolute_uris_with_an_authority() {
        for good in ["spiffe://example.org/payroll-app", "wimse://example.com/a/b", "spiffe://example.org"] {
            assert!(is_workload_identifier(good), "{good}");
        }
        for bad in ["payroll-app", "spiffe:/example.org/a", "spiffe:///a", "://x/y", "spiffe://e/a#f", "spiffe://e/ a"]
        {
            assert!(!is_workload_identifier(bad), "{bad}");
        }
    }
}
