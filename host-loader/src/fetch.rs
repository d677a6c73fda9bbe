//! Network fetches of verification collateral, only on explicit request (`twi verify
//! snp-report --fetch`, `twi verify tdx-quote --pccs URL`): the verifier is offline by
//! default. Everything fetched is written to a directory in the offline layouts the verifier
//! reads (the VCEK cache of [`twi_verifier::snp::kds`], the PCS directory of
//! [`twi_verifier::tdx::Collateral::from_pcs_dir`]), so a later run can repeat the verdict
//! without the network, and the verdict is computed from those files by the same code as
//! offline. Nothing fetched is trusted for having been fetched: certificates chain to the
//! built-in roots, collateral is signature-checked.

use std::path::{Path, PathBuf};
use std::time::Duration;

use percent_encoding::percent_decode_str;
use twi_attester::snp::report::TcbVersion;
use twi_attester::tdx::quote::ParsedQuote;
use twi_verifier::chain::{Cert, split_certificates};
use twi_verifier::snp::{Product, VekKind, kds};
use twi_verifier::tdx::{Collateral, PckExtensions, split_pck_chain};

/// Longest response body accepted (collateral is a few KiB; a CRL a few hundred KiB at most).
const MAX_BODY: u64 = 4 << 20;
/// Per request, connection to last byte.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Intel's Provisioning Certification Service (the PCCS API is the same, under its own base).
pub const INTEL_PCS_BASE: &str = "https://api.trustedservices.intel.com";

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("GET {url} failed: {reason}")]
    Transport { url: String, reason: String },
    #[error("GET {url} answered HTTP {status}{hint}")]
    Status { url: String, status: u16, hint: &'static str },
    #[error("GET {url}: the response has no {header} header (the issuer chain of what it returned)")]
    MissingHeader { url: String, header: &'static str },
    #[error("GET {url} returned something unusable: {reason}")]
    Unusable { url: String, reason: String },
    #[error("cannot write {path}: {reason}")]
    Write { path: String, reason: String },
}

/// A fetched resource.
#[derive(Debug)]
pub struct Fetched {
    pub body: Vec<u8>,
    /// The requested headers that were present, URL-decoded, in request order.
    pub headers: Vec<(&'static str, String)>,
}

/// A blocking HTTPS client with a timeout and a body limit.
#[derive(Debug, Clone)]
pub struct Fetcher {
    agent: ureq::Agent,
}

impl Default for Fetcher {
    fn default() -> Self {
        let config = ureq::Agent::config_builder().timeout_global(Some(TIMEOUT)).http_status_as_error(false).build();
        Self { agent: config.into() }
    }
}

impl Fetcher {
    /// GET `url`; `headers` are the response headers wanted (URL-decoded, as PCS sends its
    /// issuer chains).
    pub fn get(&self, url: &str, headers: &[&'static str]) -> Result<Fetched, FetchError> {
        let transport = |e: ureq::Error| FetchError::Transport { url: url.to_string(), reason: e.to_string() };
        let mut response = self.agent.get(url).call().map_err(transport)?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let hint = match status {
                404 => " (not found: wrong product, chip id or TCB, or the service does not serve this)",
                429 => " (rate limited: retry later, or fill the cache by hand)",
                _ => "",
            };
            return Err(FetchError::Status { url: url.to_string(), status, hint });
        }
        let found = headers
            .iter()
            .filter_map(|&name| {
                let value = response.headers().get(name)?.to_str().ok()?;
                Some((name, percent_decode_str(value).decode_utf8_lossy().into_owned()))
            })
            .collect();
        let body = response.body_mut().with_config().limit(MAX_BODY).read_to_vec().map_err(transport)?;
        Ok(Fetched { body, headers: found })
    }
}

/// Writes `bytes` to `path` (creating its directory), through a temporary file so that a
/// failed write never leaves a truncated cache entry behind.
fn store(path: &Path, bytes: &[u8]) -> Result<(), FetchError> {
    let write = |e: std::io::Error| FetchError::Write { path: path.display().to_string(), reason: e.to_string() };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(write)?;
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(write)?;
    std::fs::write(tmp.path(), bytes).map_err(write)?;
    tmp.persist(path).map_err(|e| write(e.error))?;
    Ok(())
}

/// Fetches the VCEK of `chip_id` at `tcb` from KDS at `base` into the cache `dir`; returns its
/// path. Only a body that parses as a certificate is cached.
pub fn kds_vcek(
    fetcher: &Fetcher,
    base: &str,
    dir: &Path,
    product: Product,
    chip_id: &[u8; 64],
    tcb: TcbVersion,
) -> Result<PathBuf, FetchError> {
    let url = kds::vcek_url_at(base, product, chip_id, tcb);
    let fetched = fetcher.get(&url, &[])?;
    Cert::from_der(&fetched.body, "fetched VCEK")
        .map_err(|e| FetchError::Unusable { url: url.clone(), reason: format!("not a DER certificate ({e})") })?;
    let path = kds::vcek_path(dir, product, chip_id, tcb);
    store(&path, &fetched.body)?;
    Ok(path)
}

/// Fetches the intermediate + ARK chain for `kind` keys of `product` from KDS at `base` into
/// the cache `dir`; returns its path.
pub fn kds_chain(
    fetcher: &Fetcher,
    base: &str,
    dir: &Path,
    product: Product,
    kind: VekKind,
) -> Result<PathBuf, FetchError> {
    let url = kds::chain_url_at(base, product, kind);
    let fetched = fetcher.get(&url, &[])?;
    match split_certificates(&fetched.body) {
        Ok(certs) if certs.len() == 2 => {}
        _ => return Err(FetchError::Unusable { url, reason: "not a PEM chain of two certificates".into() }),
    }
    let path = kds::chain_path(dir, product, kind);
    store(&path, &fetched.body)?;
    Ok(path)
}

/// Why [`vcek_from_cache`] found no VCEK.
#[derive(Debug)]
pub enum VcekMissing {
    /// Not in the cache, and no KDS to ask: the files expected, each with its KDS URL.
    NotCached(Vec<(PathBuf, String)>),
    /// Not in the cache, and KDS did not serve it: each product's failure.
    NotFetched(Vec<FetchError>),
}

/// The VCEK for `chip_id` at `tcb` from the cache `dir`, trying each of `products` (a v2
/// report does not name its CPU); when the cache has none and `kds` is given, fetched from
/// KDS at that base into the cache. Returns its path and product.
pub fn vcek_from_cache(
    dir: &Path,
    products: &[Product],
    chip_id: &[u8; 64],
    tcb: TcbVersion,
    kds: Option<&str>,
) -> Result<(PathBuf, Product), VcekMissing> {
    for &product in products {
        let path = kds::vcek_path(dir, product, chip_id, tcb);
        if path.exists() {
            return Ok((path, product));
        }
    }
    let Some(base) = kds else {
        return Err(VcekMissing::NotCached(
            products.iter().map(|&p| (kds::vcek_path(dir, p, chip_id, tcb), kds::vcek_url(p, chip_id, tcb))).collect(),
        ));
    };
    let fetcher = Fetcher::default();
    let mut failures = Vec::new();
    for &product in products {
        match kds_vcek(&fetcher, base, dir, product, chip_id, tcb) {
            Ok(path) => return Ok((path, product)),
            Err(e) => failures.push(e),
        }
    }
    Err(VcekMissing::NotFetched(failures))
}

/// The intermediate + ARK chain for `kind` keys of `product` from the cache `dir`, fetched
/// from KDS at `kds` into the cache first when it is missing and `kds` is given. `Ok` may name
/// a file that does not exist (nothing cached, nothing to fetch from): the caller says what to
/// put there.
pub fn chain_from_cache(dir: &Path, product: Product, kind: VekKind, kds: Option<&str>) -> Result<PathBuf, FetchError> {
    let path = kds::chain_path(dir, product, kind);
    match kds {
        Some(base) if !path.exists() => kds_chain(&Fetcher::default(), base, dir, product, kind),
        _ => Ok(path),
    }
}

/// Which PCK CA issued the platform's PCK certificate (the PCK CRL to fetch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PckCa {
    Platform,
    Processor,
}

impl PckCa {
    /// From the PCK chain's intermediate ("Intel SGX PCK Platform CA" / "... Processor CA").
    pub fn from_issuer_name(common_name: &str) -> Option<Self> {
        if common_name.contains("Platform CA") {
            Some(Self::Platform)
        } else if common_name.contains("Processor CA") {
            Some(Self::Processor)
        } else {
            None
        }
    }

    fn query(self) -> &'static str {
        match self {
            Self::Platform => "platform",
            Self::Processor => "processor",
        }
    }
}

/// Fetches the TDX collateral for `fmspc` from the PCS or PCCS at `base` (Intel PCS API v4
/// paths, which PCCS serves too) into `dir`, in the layout `Collateral::from_pcs_dir` reads.
/// Returns notes for the verdict's warnings (e.g. a root CA CRL the service does not serve).
pub fn pcs_collateral(
    fetcher: &Fetcher,
    base: &str,
    dir: &Path,
    fmspc: &[u8; 6],
    ca: PckCa,
) -> Result<Vec<String>, FetchError> {
    let base = base.trim_end_matches('/');
    let with_chain = |url: String, header: &'static str, body: &str, chain: &str| -> Result<(), FetchError> {
        let fetched = fetcher.get(&url, &[header])?;
        let (_, pem) =
            fetched.headers.into_iter().next().ok_or(FetchError::MissingHeader { url: url.clone(), header })?;
        store(&dir.join(body), &fetched.body)?;
        store(&dir.join(chain), pem.as_bytes())
    };
    with_chain(
        format!("{base}/tdx/certification/v4/tcb?fmspc={}", hex::encode(fmspc)),
        "TCB-Info-Issuer-Chain",
        "tcb_info.json",
        "tcb_info_issuer_chain.pem",
    )?;
    with_chain(
        format!("{base}/tdx/certification/v4/qe/identity"),
        "SGX-Enclave-Identity-Issuer-Chain",
        "qe_identity.json",
        "qe_identity_issuer_chain.pem",
    )?;
    with_chain(
        format!("{base}/sgx/certification/v4/pckcrl?ca={}&encoding=der", ca.query()),
        "SGX-PCK-CRL-Issuer-Chain",
        "pck_crl.der",
        "pck_crl_issuer_chain.pem",
    )?;
    // The root CA's CRL: PCCS serves it; Intel's PCS publishes it elsewhere.
    let mut notes = Vec::new();
    let url = format!("{base}/sgx/certification/v4/rootcacrl");
    match fetcher.get(&url, &[]) {
        Ok(fetched) => store(&dir.join("root_ca_crl.der"), &fetched.body)?,
        Err(e) => notes.push(format!(
            "the Intel SGX Root CA's CRL was not fetched ({e}), so a revoked PCK CA would go unnoticed: download \
             https://certificates.trustedservices.intel.com/IntelSGXRootCA.der into {}",
            dir.join("root_ca_crl.der").display()
        )),
    }
    Ok(notes)
}

/// The collateral for `quote`'s platform (its FMSPC and PCK CA, read from the quote's PCK
/// chain), fetched from the PCCS or PCS at `base` into `dir` and read back by the offline
/// loader; and notes for the verdict's warnings.
pub fn collateral_for_quote(base: &str, dir: &Path, quote: &[u8]) -> Result<(Collateral, Vec<String>), FetchError> {
    let unusable = |reason: &str| FetchError::Unusable { url: base.to_string(), reason: reason.to_string() };
    let chain = ParsedQuote::parse(quote)
        .ok()
        .and_then(|p| split_pck_chain(p.quote.pck_chain).ok())
        .ok_or_else(|| unusable("the quote carries no readable PCK certificate chain, so its platform is unknown"))?;
    let fmspc = chain
        .first()
        .and_then(|leaf| PckExtensions::parse(leaf).ok())
        .map(|p| p.fmspc)
        .ok_or_else(|| unusable("the quote's PCK certificate has no readable FMSPC"))?;
    let ca = chain
        .get(1)
        .and_then(|ca| PckCa::from_issuer_name(&ca.common_name()))
        .ok_or_else(|| unusable("the quote's PCK chain names neither the Platform nor the Processor CA"))?;
    let notes = pcs_collateral(&Fetcher::default(), base, dir, &fmspc, ca)?;
    let collateral = Collateral::from_pcs_dir(dir).map_err(|e| unusable(&e.to_string()))?;
    Ok((collateral, notes))
}
