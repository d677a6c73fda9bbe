//! TLS to the replicas' PostgreSQL database, mutually authenticated: the server's certificate
//! is checked against a CA file and the host name or address (libpq's `verify-full`), and the
//! replica presents its own client certificate (what `hostssl … cert` in `pg_hba.conf` asks
//! for). The files are named as libpq names them — `sslrootcert`, `sslcert`, `sslkey` — in the
//! database URL (`postgres://twi@db.example:5432/twi?sslrootcert=ca.pem&sslcert=replica.pem&sslkey=replica.key`)
//! or the key=value string; they are taken out before rust-postgres reads the rest, which does
//! not know them. The handshake is rustls (ring provider, as every other TLS hop of the
//! issuer) through `tokio-postgres-rustls`, the maintained rustls connector for rust-postgres.

use std::path::PathBuf;
use std::sync::Arc;

use crate::http::tls::{certificates, private_key};

/// The TLS files a database URL names.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    /// `sslrootcert`: the CA the server's certificate must chain to.
    pub root: Option<PathBuf>,
    /// `sslcert` and `sslkey`: the replica's client certificate (chain, leaf first) and key.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// `sslmode=require|verify-ca|verify-full`: TLS was asked for (then `sslrootcert` must be
    /// named: the server is always verified).
    pub required: bool,
}

/// `url` without the TLS parameters, and the files they name. Both forms: a `postgres://` URL
/// (query parameters) and a key=value string (whitespace-separated, values unquoted).
/// `sslmode` is taken too: TLS here is always libpq's `verify-full` (rust-postgres knows only
/// disable/prefer/require, and neither checks the server).
pub(crate) fn split(url: &str) -> Result<(String, TlsFiles), String> {
    let (rest, pairs, separator) = match url.split_once("://") {
        Some(_) => match url.split_once('?') {
            Some((base, query)) => (base.to_string(), query.split('&').collect::<Vec<_>>(), "&"),
            None => return Ok((url.to_string(), TlsFiles::default())),
        },
        None => (String::new(), url.split_whitespace().collect(), " "),
    };
    let mut files = TlsFiles::default();
    let mut kept = Vec::new();
    for pair in pairs {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "sslrootcert" => files.root = Some(PathBuf::from(value)),
            "sslcert" => files.cert = Some(PathBuf::from(value)),
            "sslkey" => files.key = Some(PathBuf::from(value)),
            "sslmode" if matches!(value, "verify-full" | "verify-ca" | "require") => files.required = true,
            "sslmode" => {
                return Err(format!(
                    "sslmode={value}: TLS to the database is verify-full or nothing (name sslrootcert=CA.pem, or leave both out on loopback)"
                ));
            }
            _ => kept.push(pair),
        }
    }
    let kept = kept.join(separator);
    let url = match (rest.is_empty(), kept.is_empty()) {
        (true, _) => kept,
        (false, true) => rest,
        (false, false) => format!("{rest}?{kept}"),
    };
    Ok((url, files))
}

impl TlsFiles {
    /// Whether TLS was asked for.
    pub(crate) fn any(&self) -> bool {
        self.required || self.root.is_some() || self.cert.is_some() || self.key.is_some()
    }

    /// Whether the replica authenticates itself with a client certificate.
    pub(crate) fn mutual(&self) -> bool {
        self.cert.is_some() && self.key.is_some()
    }

    /// The rustls connector for these files: TLS 1.2 or 1.3 (PostgreSQL servers speak both),
    /// the server checked against `sslrootcert`, the client certificate presented.
    pub(crate) fn connector(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
        let Some(root) = &self.root else {
            return Err(
                "TLS without sslrootcert: name the CA the server's certificate chains to (sslrootcert=CA.pem)".into()
            );
        };
        let mut roots = rustls::RootCertStore::empty();
        for cert in certificates("sslrootcert", root).map_err(|e| e.to_string())? {
            roots.add(cert).map_err(|e| format!("sslrootcert {}: {e}", root.display()))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots);
        let config = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let chain = certificates("sslcert", cert).map_err(|e| e.to_string())?;
                let key = private_key("sslkey", key).map_err(|e| e.to_string())?;
                builder.with_client_auth_cert(chain, key).map_err(|e| format!("sslcert/sslkey: {e}"))?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => return Err("sslcert and sslkey go together: the client certificate and its key".into()),
        };
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_taken_out_of_both_forms() {
        let (url, files) = split(
            "postgres://twi@db:5432/twi?sslrootcert=/c/ca.pem&application_name=x&sslcert=/c/r.pem&sslkey=/c/r.key",
        )
        .unwrap();
        assert_eq!(url, "postgres://twi@db:5432/twi?application_name=x");
        assert_eq!(files.root, Some(PathBuf::from("/c/ca.pem")));
        assert!(files.mutual());
        let (url, files) = split("host=db user=twi sslmode=verify-full sslrootcert=/c/ca.pem dbname=twi").unwrap();
        assert_eq!(url, "host=db user=twi dbname=twi");
        assert!(files.any() && !files.mutual());
        assert_eq!(
            split("postgres://twi@127.0.0.1/twi").unwrap(),
            ("postgres://twi@127.0.0.1/twi".into(), TlsFiles::default())
        );
        assert!(split("postgres://twi@db/twi?sslmode=disable").unwrap_err().contains("verify-full"));
        let (_, files) = split("postgres://twi@db/twi?sslmode=require").unwrap();
        assert!(files.any() && files.connector().err().unwrap().contains("sslrootcert=CA.pem"));
    }
}
