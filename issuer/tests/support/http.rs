//! The issuer's HTTP service under test (`twi_issuer::http::router`, driven in-process with
//! tower's `oneshot`) on reports signed by a simulated SEV-SNP chip: what `issuer_http.rs` and
//! `est_http.rs` share.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use p384::ecdsa::SigningKey;
use p384::elliptic_curve::Generate;
use tower::ServiceExt;
use twi_attester::snp::msg::{ReportRequest, ReportResponse};
use twi_issuer::http::{Operator, Roles, router};
use twi_issuer::policy::Policy;
use twi_issuer::{Issuer, IssuerConfig};
use twi_sim::snp::SimPsp;

pub const MEASUREMENT: [u8; 48] = [0x5A; 48];
pub const WORKLOAD_ID: &str = "spiffe://example.org/payroll-app";

pub struct Service {
    pub _dir: tempfile::TempDir,
    pub psp: SimPsp,
    pub router: Router,
    pub runtime: tokio::runtime::Runtime,
    /// The issuer's TACRA identifier, as a workload's manifest names it.
    pub rp_id: String,
    /// The policy's mechanism for the workload.
    pub mechanism: &'static str,
}

/// The target the tests acquire for.
pub const TARGET: &str = twi_testkit::tacra::TARGET;

pub fn service(roles: Roles) -> Service {
    service_with(roles, "AF_L2", "c")
}

/// A service whose policy asks `freshness` of the workload and acquires by `mechanism`
/// (`d`: Retrieval from the Key Store; else Enrollment).
pub fn service_with(roles: Roles, freshness: &str, mechanism: &'static str) -> Service {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("chip")).unwrap();
    let mut psp = SimPsp::load_or_create(&dir.path().join("chip")).unwrap();
    psp.set_launch_digest(MEASUREMENT);
    let config = IssuerConfig { trust_domain: "example.org".into(), sim_snp_root: Some(psp.root().clone()) };
    let issuer = Issuer::open(&dir.path().join("issuer"), config, policy(&MEASUREMENT, freshness, mechanism)).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let rp_id = issuer.rp_id();
    Service { router: router(issuer, roles), psp, _dir: dir, runtime, rp_id, mechanism }
}

/// [`service`] whose requests must be answered within `timeout` (408 beyond).
pub fn service_timed(timeout: std::time::Duration) -> Service {
    let mut service = service(Roles::ALL);
    let dir = service._dir.path().join("timed");
    let config = IssuerConfig { trust_domain: "example.org".into(), sim_snp_root: Some(service.psp.root().clone()) };
    let issuer = Issuer::open(&dir, config, policy(&MEASUREMENT, "AF_L2", "c")).unwrap();
    service.rp_id = issuer.rp_id();
    service.router = twi_issuer::http::router_with_timeout(issuer, Roles::ALL, timeout);
    service
}

pub fn policy(measurement: &[u8; 48], freshness: &str, mechanism: &str) -> Policy {
    Policy::from_toml(&format!(
        "version = \"http-1\"\ntrust_domain = \"example.org\"\n\n[[workload]]\nid = \"payroll-app\"\nmechanism = \"{mechanism}\"\n\
         freshness = \"{freshness}\"\nstickiness = \"CS_L1\"\n\n[[workload.reference]]\nlabel = \"v1 (sim)\"\n\
         platform = \"sim-snp\"\nmeasurement = \"{}\"\n",
        hex::encode(measurement)
    ))
    .unwrap()
}

impl Service {
    /// One request; the answer's status and JSON body (`null` when not JSON).
    pub fn call(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> (StatusCode, serde_json::Value) {
        let (status, bytes) = self.call_raw(method, path, body);
        (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    pub fn call_raw(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> (StatusCode, Vec<u8>) {
        let mut request = Request::builder().method(method).uri(path);
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let (status, _, bytes) = self.send(request.body(body.map_or_else(Body::empty, Body::from)).unwrap());
        (status, bytes)
    }

    /// A JSON POST made with `request` (headers, extensions), answered in JSON.
    fn post_json(
        &self,
        request: axum::http::request::Builder,
        body: &serde_json::Value,
    ) -> (StatusCode, serde_json::Value) {
        let request = request
            .method(Method::POST)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap();
        let (status, _, bytes) = self.send(request);
        (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    /// Any request; the answer's status, headers and body.
    pub fn send(&self, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        self.runtime.block_on(async {
            let response = self.router.clone().oneshot(request).await.unwrap();
            let (parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            (parts.status, parts.headers, bytes.to_vec())
        })
    }

    /// `body` POSTed to `path` twice at once (two requests in flight together, each worked on
    /// its own blocking thread): both answers, in no particular order.
    pub fn post_twice_at_once(&self, path: &str, body: &serde_json::Value) -> [(StatusCode, serde_json::Value); 2] {
        let request = || {
            let request = Request::builder()
                .method(Method::POST)
                .uri(path)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(serde_json::to_vec(body).unwrap()))
                .unwrap();
            let router = self.router.clone();
            async move {
                let response = router.oneshot(request).await.unwrap();
                let status = response.status();
                let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
                (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
            }
        };
        let (first, second) = self.runtime.block_on(async { tokio::join!(request(), request()) });
        [first, second]
    }

    pub fn post(&self, path: &str, body: serde_json::Value) -> (StatusCode, serde_json::Value) {
        self.call(Method::POST, path, Some(serde_json::to_vec(&body).unwrap()))
    }

    /// A POST by the workload owner: what the TLS listener marks a request with when its
    /// connection presented a client certificate under the operator CA.
    pub fn post_as_owner(&self, path: &str, body: serde_json::Value) -> (StatusCode, serde_json::Value) {
        let owner = Operator { subject: "CN=owner,O=example".into() };
        self.post_json(Request::builder().uri(path).extension(owner), &body)
    }

    /// A POST with an `Idempotency-Key` (the client's request id).
    pub fn post_with_key(&self, path: &str, body: &serde_json::Value, key: &str) -> (StatusCode, serde_json::Value) {
        self.post_json(Request::builder().uri(path).header(twi_issuer::http::idempotency::HEADER, key), body)
    }

    pub fn nonce(&self) -> Vec<u8> {
        let (status, answer) = self.post(
            "/v1/challenge",
            serde_json::json!({
                "platform": "sim-snp",
                "measurement": hex::encode(MEASUREMENT),
                "target": TARGET,
                "credential_type": "x509",
            }),
        );
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["mechanism"], self.mechanism, "the policy's mechanism for the workload");
        assert_eq!(answer["freshness"], "present-nonce", "{answer}");
        hex::decode(answer["nonce"].as_str().unwrap()).unwrap()
    }

    /// Enrollment evidence JSON from the chip: `key`'s CSR, freshness `nonce`.
    pub fn evidence(&self, key: &SigningKey, nonce: &[u8]) -> serde_json::Value {
        let (report_data, csr) = twi_testkit::tacra::enroll(key, nonce, &self.rp_id, TARGET);
        let public = key.verifying_key().to_sec1_point(false).as_bytes().to_vec();
        self.evidence_json(report_data, &public, nonce, Some(&csr))
    }

    /// Retrieval evidence JSON from the chip: to the encryption key `cek` (SEC1).
    pub fn retrieval(&self, cek: &[u8], nonce: &[u8]) -> serde_json::Value {
        let report_data = twi_testkit::tacra::retrieve(cek, nonce, &self.rp_id, TARGET);
        self.evidence_json(report_data, cek, nonce, None)
    }

    pub fn evidence_json(
        &self,
        report_data: [u8; 64],
        key: &[u8],
        nonce: &[u8],
        csr: Option<&[u8]>,
    ) -> serde_json::Value {
        let request = ReportRequest { report_data, vmpl: 0 };
        let response = self.psp.handle_report_request(&request.to_bytes());
        let report = ReportResponse::parse(&response).unwrap().report.to_vec();
        let endorsements: Vec<String> = self.psp.endorsements().unwrap().iter().map(hex::encode).collect();
        let mut json = serde_json::json!({
            "platform": "sim-snp",
            "evidence": hex::encode(report),
            "public_key": hex::encode(key),
            "nonce": hex::encode(nonce),
            "target": TARGET,
            "endorsements": endorsements,
        });
        if let Some(csr) = csr {
            json["csr"] = hex::encode(csr).into();
        }
        json
    }
}

pub fn workload_key() -> (SigningKey, Vec<u8>) {
    let key = SigningKey::try_generate().unwrap();
    let public = key.verifying_key().to_sec1_point(false).as_bytes().to_vec();
    (key, public)
}

pub fn error(answer: &serde_json::Value) -> &str {
    answer["error"].as_str().unwrap_or_else(|| panic!("no `error` reason in {answer}"))
}

pub fn assert_credential(answer: &serde_json::Value, key: &[u8], ca_pem: &[u8]) {
    use der::DecodePem;
    assert_eq!(answer["workload_id"], WORKLOAD_ID, "{answer}");
    let cert = x509_cert::Certificate::from_pem(answer["certificate_pem"].as_str().unwrap().as_bytes()).unwrap();
    let spki = cert.tbs_certificate().subject_public_key_info();
    assert_eq!(spki.subject_public_key.raw_bytes(), key, "the credential certifies the attested key");
    let ca = x509_cert::Certificate::from_pem(ca_pem).unwrap();
    assert_eq!(cert.tbs_certificate().issuer(), ca.tbs_certificate().subject());
    assert!(answer["wit"].as_str().is_some_and(|w| w.split('.').count() == 3), "{answer}");
    assert!(answer["attestation_result"].is_string() && answer["provenance"].is_object(), "{answer}");
}
