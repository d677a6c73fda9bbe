//! A relying party on loopback with its own server certificate (rcgen), and an HTTPS client
//! (tokio-rustls + hyper) that presents a client certificate or WIMSE headers exactly as given.

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::{HeaderMap, Request};
use hyper_util::rt::TokioIo;
use p384::pkcs8::EncodePrivateKey;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use twi_rp::RelyingParty;

use super::world;

/// A running relying party; stopped when dropped.
pub struct Rp {
    pub addr: SocketAddr,
    /// `https://127.0.0.1:PORT`, the configured public URL.
    pub url: String,
    pub server_ca_pem: String,
    pub dir: tempfile::TempDir,
    _stop: oneshot::Sender<()>,
}

/// What a test relying party is made of.
pub struct Setup {
    pub server_key: &'static rcgen::SignatureAlgorithm,
    /// The JWKS it trusts (default: the issuer's).
    pub jwks: String,
    /// More top-level settings (TOML lines).
    pub settings: String,
    /// The `[[route]]` tables.
    pub routes: String,
}

pub const ROUTES: &str = r#"
[[route]]
path = "/rows"
allow = ["spiffe://example.org/payroll-app"]
body = "alice,4200\nbob,3900\n"
content_type = "text/csv"

[[route]]
path = "/rows/pii"
allow = ["spiffe://example.org/payroll-app", "spiffe://example.org/ledger"]
body = "alice,DE-1234\n"
[route.claims]
location = "DE"
handles-pii = true

[[route]]
path = "/ledger"
methods = ["GET", "POST"]
allow = ["spiffe://example.org/ledger"]
body = "ledger\n"
"#;

impl Default for Setup {
    fn default() -> Self {
        Self {
            server_key: &rcgen::PKCS_ECDSA_P384_SHA384,
            jwks: world().issuer_jwks.clone(),
            settings: String::new(),
            routes: ROUTES.into(),
        }
    }
}

/// A relying party with the default setup.
pub async fn start() -> Rp {
    start_with(Setup::default()).await
}

pub async fn start_with(setup: Setup) -> Rp {
    let dir = tempfile::tempdir().unwrap();
    let (server_ca_pem, chain, key) = server_certificate(setup.server_key);
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("issuer-ca.pem", &world().issuer_ca_pem);
    write("issuer-jwks.json", &setup.jwks);
    write("server.pem", &chain);
    write("server.key.pem", &key);
    use std::os::unix::fs::PermissionsExt;
    let private = std::fs::Permissions::from_mode(0o600);
    std::fs::set_permissions(dir.path().join("server.key.pem"), private).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let url = format!("https://127.0.0.1:{}", addr.port());
    let config = format!(
        "listen = \"{addr}\"\npublic_url = \"{url}\"\nserver_certificate = \"server.pem\"\n\
         server_key = \"server.key.pem\"\nissuer_ca = \"issuer-ca.pem\"\nissuer_jwks = \"issuer-jwks.json\"\n{}\n{}",
        setup.settings, setup.routes
    );
    write("rp.toml", &config);
    let rp = RelyingParty::from_config_file(&dir.path().join("rp.toml")).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(rp.serve_with_shutdown(listener, async move {
        let _ = stopped.await;
    }));
    Rp { addr, url, server_ca_pem, dir, _stop: stop }
}

/// A test CA and a server certificate for 127.0.0.1 and localhost under it: (CA PEM, chain
/// PEM, key PEM).
pub fn server_certificate(alg: &'static rcgen::SignatureAlgorithm) -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "payroll-db test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate_for(alg).unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let leaf = params.signed_by(&key, &issuer).unwrap();
    (ca.pem(), leaf.pem(), key.serialize_pem())
}

/// A client's TLS settings.
#[derive(Clone)]
pub struct Client {
    config: Arc<rustls::ClientConfig>,
}

impl Client {
    /// Trusts `server_ca_pem`; presents no certificate.
    pub fn new(server_ca_pem: &str) -> Self {
        Self::build(server_ca_pem, None, &[&rustls::version::TLS13])
    }

    /// Trusts `server_ca_pem`; presents `certificate_pem` with `key`.
    pub fn with_certificate(server_ca_pem: &str, certificate_pem: &str, key: &p384::ecdsa::SigningKey) -> Self {
        Self::build(server_ca_pem, Some((certificate_pem, key)), &[&rustls::version::TLS13])
    }

    /// Offers TLS 1.2 only.
    pub fn tls12_only(server_ca_pem: &str) -> Self {
        Self::build(server_ca_pem, None, &[&rustls::version::TLS12])
    }

    fn build(
        server_ca_pem: &str,
        identity: Option<(&str, &p384::ecdsa::SigningKey)>,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(server_ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots);
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some((pem, key)) => {
                let chain = CertificateDer::pem_slice_iter(pem.as_bytes()).map(Result::unwrap).collect();
                let der = key.to_pkcs8_der().unwrap().as_bytes().to_vec();
                // Through a resolver: `with_client_auth_cert` parses the certificate with webpki,
                // which refuses one with an unknown critical extension (a simulated credential)
                // before the server could decide.
                let provider = rustls::crypto::ring::default_provider();
                let signer = provider
                    .key_provider
                    .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)))
                    .unwrap();
                let certified = Arc::new(rustls::sign::CertifiedKey::new(chain, signer));
                builder.with_client_cert_resolver(Arc::new(Present(certified)))
            }
        };
        Self { config: Arc::new(config) }
    }
}

/// Presents one certificate and key, whatever the server asks.
#[derive(Debug)]
struct Present(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for Present {
    fn resolve(&self, _: &[&[u8]], _: &[rustls::SignatureScheme]) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// An answer, or the connection's failure as text.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    /// The problem document's `check` member.
    pub fn check(&self) -> String {
        let problem: serde_json::Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("the {} body is not JSON ({e}): {}", self.status, self.body));
        problem["check"].as_str().unwrap_or_default().to_string()
    }

    pub fn detail(&self) -> String {
        let problem: serde_json::Value = serde_json::from_str(&self.body).unwrap_or_default();
        problem["detail"].as_str().unwrap_or_default().to_string()
    }

    pub fn challenge(&self) -> Option<&str> {
        self.headers.get("www-authenticate").and_then(|v| v.to_str().ok())
    }
}

/// Sends one request with exactly `headers` (repeated names are sent repeatedly).
pub async fn send(
    client: &Client,
    rp: &Rp,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Answer, String> {
    let tcp = TcpStream::connect(rp.addr).await.map_err(|e| format!("connect: {e}"))?;
    let connector = tokio_rustls::TlsConnector::from(client.config.clone());
    let name = ServerName::IpAddress(rp.addr.ip().into());
    let tls = connector.connect(name, tcp).await.map_err(|e| format!("handshake: {e}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(|e| format!("http: {e:?}"))?;
    tokio::spawn(connection);
    let mut request = Request::builder().method(method).uri(path).header("host", rp.addr.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Empty::<Bytes>::new()).unwrap();
    let response = sender.send_request(request).await.map_err(|e| format!("request: {e:?}"))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.map_err(|e| format!("body: {e:?}"))?.to_bytes();
    Ok(Answer { status, headers, body: String::from_utf8_lossy(&body).into_owned() })
}
