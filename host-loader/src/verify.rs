//! `twi verify`: appraise attestation evidence offline and print one JSON object.
//!
//! Exit status: 0 when the evidence is verified, 1 when it is rejected (the JSON's `reason`
//! says what failed and what to do), 2 on bad usage or input that cannot be read (a missing
//! file, a certificate file that is neither DER nor PEM, no VCEK to be found).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use twi_attester::snp::report::{AttestationReport, REPORT_SIZE, TcbLayout, TcbVersion};
use twi_attester::tdx::enclave_report::EnclaveReport;
use twi_attester::tdx::quote::{ParsedQuote, QuoteHeader};
use twi_attester::tdx::rtmr::CcelEvents;
use twi_attester::tdx::td_report::TdQuoteBody;
use twi_verifier::bundle::{CertPool, UsedCertificate, read_certificates};
use twi_verifier::chain::{Cert, Crl};
use twi_verifier::lag::ComponentLag;
use twi_verifier::snp::{self, Product, SnpAppraisal, SnpConfig, SnpError, SnpPolicy, SnpTrust, VekKind};
use twi_verifier::snp::{describe_tcb, kds};
use twi_verifier::tdx::{self as tdx_verify, PckExtensions, crl_from_any, split_pck_chain};
use twi_verifier::tdx::{Collateral, TcbStatus, TcbVerdict, TdxConfig, TdxPolicy, TdxTrust};
use twi_verifier::time::{format_rfc3339, parse_rfc3339};

use twi_host_loader::fetch;

#[derive(Subcommand, Debug)]
pub enum VerifyCommand {
    /// Verify an AMD SEV-SNP attestation report (1184 bytes, raw or hex) against AMD's roots.
    ///
    /// The VCEK comes from --vcek, or from --vcek-cache DIR laid out like AMD's KDS:
    /// DIR/<Milan|Genoa|Turin>/cert_chain.pem (ASK+ARK), DIR/<Product>/vlek_cert_chain.pem
    /// (ASVK+ARK), DIR/<Product>/crl.der (optional), DIR/<Product>/<hwid>/<tcb>.der (the VCEK;
    /// <hwid> = CHIP_ID in hex, its first 8 bytes on Turin; <tcb> = REPORTED_TCB's 8 bytes in
    /// hex, report order, e.g. 0300000000000873).
    SnpReport(SnpArgs),
    /// Verify an Intel TDX quote (v4, or v5 with a TD 1.0/1.5 body) against Intel's root and
    /// TCB collateral.
    ///
    /// --collateral takes a dcap-qvl collateral JSON file, or a directory holding either that
    /// (collateral.json, or any *collateral*.json) or raw Intel PCS responses: tcb_info.json
    /// (GET /tdx/certification/v4/tcb?fmspc=...), tcb_info_issuer_chain.pem (its
    /// TCB-Info-Issuer-Chain header, URL-decoded), qe_identity.json (GET
    /// /tdx/certification/v4/qe/identity), optionally qe_identity_issuer_chain.pem,
    /// pck_crl.der (GET /sgx/certification/v4/pckcrl?ca=platform) and root_ca_crl.der; a
    /// DIR/<fmspc>/ subdirectory (lowercase hex) is used when it exists.
    TdxQuote(TdxArgs),
}

#[derive(Args, Debug)]
pub struct TdxArgs {
    /// The quote (bytes after its end are ignored).
    quote: PathBuf,
    /// TCB info, QE identity and CRLs: a dcap-qvl JSON file or a directory (layout above).
    #[arg(long, value_name = "PATH")]
    collateral: Option<PathBuf>,
    /// Fetch the collateral from this PCCS or from Intel PCS (https://api.trustedservices.intel.com;
    /// API v4 paths), into --collateral DIR when given (kept for offline runs), else a
    /// temporary directory.
    #[arg(long, value_name = "URL")]
    pccs: Option<String>,
    /// Trust exactly the self-signed roots in FILE instead of the built-in Intel SGX Root CA.
    #[arg(long, value_name = "FILE")]
    root: Option<PathBuf>,
    /// Verify as of this instant (RFC 3339) instead of now.
    #[arg(long, value_name = "TIME")]
    now: Option<String>,
    /// Check only the signatures and the PCK chain, not the TCB (when no collateral is at hand).
    #[arg(long)]
    skip_tcb: bool,
    /// Also accept this TCB status (repeatable): OutOfDate, OutOfDateConfigurationNeeded,
    /// TDRelaunchAdvised, TDRelaunchAdvisedConfigurationNeeded. UpToDate, SWHardeningNeeded,
    /// ConfigurationNeeded and ConfigurationAndSWHardeningNeeded are accepted by default;
    /// Revoked never is.
    #[arg(long, value_name = "STATUS")]
    accept: Vec<String>,
    /// Accept a debuggable TD.
    #[arg(long)]
    allow_debug: bool,
    /// Expected MRTD (96 hex digits).
    #[arg(long, value_name = "HEX")]
    mrtd: Option<String>,
    /// Expected RTMR0 (96 hex digits).
    #[arg(long, value_name = "HEX")]
    rtmr0: Option<String>,
    /// Expected RTMR1 (96 hex digits).
    #[arg(long, value_name = "HEX")]
    rtmr1: Option<String>,
    /// Expected RTMR2 (96 hex digits).
    #[arg(long, value_name = "HEX")]
    rtmr2: Option<String>,
    /// Expected RTMR3 (96 hex digits).
    #[arg(long, value_name = "HEX")]
    rtmr3: Option<String>,
    /// Expected REPORTDATA (128 hex digits).
    #[arg(long, value_name = "HEX")]
    report_data: Option<String>,
    /// Expected MRCONFIGID (96 hex digits).
    #[arg(long, value_name = "HEX")]
    mr_config_id: Option<String>,
    /// Expected MROWNER (96 hex digits).
    #[arg(long, value_name = "HEX")]
    mr_owner: Option<String>,
    /// A CC event log (TCG crypto-agile, SHA-384: the ACPI CCEL table's log area as TDVF or
    /// td-shim writes it, or `twi run`'s event-log.ccel): replayed, and each of the quote's
    /// RTMRs must be exactly its replay.
    #[arg(long, value_name = "FILE")]
    event_log: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct SnpArgs {
    /// The report: 1184 raw bytes, or their hex.
    report: PathBuf,
    /// The VCEK or VLEK certificate (DER or PEM), or a bundle with the whole chain in one
    /// file (Azure's THIM: VCEK + ASK + ARK), in any order, duplicates ignored: the verifier
    /// finds the certificate that signed the report and builds the path itself.
    #[arg(long, value_name = "FILE")]
    vcek: Option<PathBuf>,
    /// More of the chain: ASK (or ASVK) and ARK, as KDS serves cert_chain (any order, DER or
    /// PEM).
    #[arg(long, value_name = "FILE")]
    chain: Option<PathBuf>,
    /// A CRL to check the chain against (DER or PEM); repeatable.
    #[arg(long, value_name = "FILE")]
    crl: Vec<PathBuf>,
    /// Offline VCEK cache (layout above).
    #[arg(long, value_name = "DIR")]
    vcek_cache: Option<PathBuf>,
    /// Fetch the VCEK and its chain from AMD KDS when the cache lacks them, and keep them in
    /// the cache (--vcek-cache, default $XDG_CACHE_HOME/twi/kds or ~/.cache/twi/kds) so the
    /// next run is offline. VLEKs are not served by chip id: pass them with --vcek.
    #[arg(long)]
    fetch: bool,
    /// KDS base URL for --fetch (a mirror or caching proxy).
    #[arg(long, value_name = "URL", default_value = kds::KDS_BASE)]
    kds_url: String,
    /// Trust exactly the self-signed ARKs in FILE instead of AMD's built-in roots.
    #[arg(long, value_name = "FILE")]
    ark: Option<PathBuf>,
    /// Verify as of this instant (RFC 3339, e.g. 2025-06-01T00:00:00Z) instead of now.
    #[arg(long, value_name = "TIME")]
    now: Option<String>,
    /// Accept a guest policy that allows debugging.
    #[arg(long)]
    allow_debug: bool,
    /// Accept a guest policy that allows a migration agent.
    #[arg(long)]
    allow_migration_agent: bool,
    /// Refuse a guest policy that allows SMT.
    #[arg(long)]
    forbid_smt: bool,
    /// Minimum ABI version the guest policy must demand, MAJOR.MINOR.
    #[arg(long, value_name = "MAJOR.MINOR")]
    min_abi: Option<String>,
    /// The VMPL the report must have been requested at.
    #[arg(long, value_name = "N")]
    vmpl: Option<u32>,
    /// Expected launch measurement (96 hex digits).
    #[arg(long, value_name = "HEX")]
    measurement: Option<String>,
    /// Expected HOST_DATA (64 hex digits).
    #[arg(long, value_name = "HEX")]
    host_data: Option<String>,
    /// Expected REPORTDATA (128 hex digits).
    #[arg(long, value_name = "HEX")]
    report_data: Option<String>,
    /// Minimum REPORTED_TCB, as 16 hex digits in report byte order (each component compared).
    #[arg(long, value_name = "HEX")]
    min_tcb: Option<String>,
}

/// Input that could not be read or used: exit 2.
struct Unusable(String);

pub fn run(command: &VerifyCommand) -> ExitCode {
    let (code, out) = match command {
        VerifyCommand::SnpReport(args) => snp_report(args),
        VerifyCommand::TdxQuote(args) => tdx_quote(args),
    };
    let mut stdout = std::io::stdout().lock();
    let printed = serde_json::to_writer_pretty(&mut stdout, &out).is_ok() && writeln!(stdout).is_ok();
    if !printed || stdout.flush().is_err() {
        return ExitCode::from(2);
    }
    ExitCode::from(code)
}

fn unusable(tee: &str, reason: String) -> (u8, Value) {
    (2, json!({ "verified": false, "tee": tee, "reason": reason, "warnings": [] }))
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, Unusable> {
    std::fs::read(path).map_err(|e| Unusable(format!("cannot read the {what} {}: {e}", path.display())))
}

/// Every certificate in a file: DER (one, or several back to back) or PEM blocks, in any
/// order; duplicates dropped.
fn certificates(path: &Path, what: &str) -> Result<Vec<Cert>, Unusable> {
    let bytes = read(path, what)?;
    read_certificates(&bytes, &format!("the {what} file {}", path.display()))
        .map_err(|e| Unusable(format!("{}: {e}", path.display())))
}

/// A CRL file: DER, PEM or hex.
fn crl(path: &Path) -> Result<Crl, Unusable> {
    crl_from_any(&read(path, "CRL")?, &path.display().to_string()).map_err(Unusable)
}

/// A hex argument of exactly `N` bytes.
fn hex_arg<const N: usize>(value: &Option<String>, flag: &str) -> Result<Option<[u8; N]>, Unusable> {
    value
        .as_ref()
        .map(|v| {
            hex::decode(v.trim())
                .ok()
                .and_then(|b| <[u8; N]>::try_from(b).ok())
                .ok_or_else(|| Unusable(format!("--{flag} must be {} hex digits ({N} bytes), got {:?}", 2 * N, v)))
        })
        .transpose()
}

fn now_arg(now: &Option<String>) -> Result<SystemTime, Unusable> {
    match now {
        None => Ok(SystemTime::now()),
        Some(text) => parse_rfc3339(text).ok_or_else(|| {
            Unusable(format!("--now {text:?} is not an RFC 3339 UTC time such as 2025-06-01T00:00:00Z"))
        }),
    }
}

/// The report file: raw bytes, or hex text (whitespace ignored) of them.
fn report_bytes(raw: Vec<u8>) -> Vec<u8> {
    if raw.len() == REPORT_SIZE {
        return raw;
    }
    let text: String = raw.iter().filter(|b| !b.is_ascii_whitespace()).map(|&b| b as char).collect();
    hex::decode(&text).unwrap_or(raw)
}

fn snp_policy(args: &SnpArgs) -> Result<SnpPolicy, Unusable> {
    let min_abi = args
        .min_abi
        .as_ref()
        .map(|v| {
            v.split_once('.')
                .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                .ok_or_else(|| Unusable(format!("--min-abi must be MAJOR.MINOR, e.g. 1.55, got {v:?}")))
        })
        .transpose()?;
    let min_tcb = hex_arg::<8>(&args.min_tcb, "min-tcb")?.map(u64::from_le_bytes).map(TcbVersion);
    Ok(SnpPolicy {
        allow_debug: args.allow_debug,
        allow_migration_agent: args.allow_migration_agent,
        allow_smt: !args.forbid_smt,
        min_abi,
        vmpl: args.vmpl,
        measurement: hex_arg(&args.measurement, "measurement")?,
        host_data: hex_arg(&args.host_data, "host-data")?,
        report_data: hex_arg(&args.report_data, "report-data")?,
        min_tcb,
    })
}

fn snp_report(args: &SnpArgs) -> (u8, Value) {
    match snp_inputs(args) {
        Ok((bytes, certs, crls, config, now)) => snp_verdict(&bytes, &certs, &crls, &config, now),
        Err(Unusable(reason)) => unusable("sev-snp", reason),
    }
}

/// The report, the certificates of every input with the files they came from, the CRLs, the
/// configuration and the verification time.
type SnpInputs = (Vec<u8>, Sourced, Vec<Crl>, SnpConfig, SystemTime);

/// Certificates pooled from files, and the files' names (for "no certificate in FILE …").
#[derive(Default)]
struct Sourced {
    pool: CertPool,
    files: Vec<String>,
}

impl Sourced {
    fn extend(&mut self, certs: Vec<Cert>, file: &Path) {
        certs.into_iter().for_each(|c| {
            self.pool.add(c);
        });
        self.files.push(file.display().to_string());
    }
}

fn snp_inputs(args: &SnpArgs) -> Result<SnpInputs, Unusable> {
    let bytes = report_bytes(read(&args.report, "report")?);
    let now = now_arg(&args.now)?;
    let policy = snp_policy(args)?;
    let trust = match &args.ark {
        Some(path) => {
            SnpTrust::from_pem(&read(path, "ARK file")?).map_err(|e| Unusable(format!("{}: {e}", path.display())))?
        }
        None => SnpTrust::amd(),
    };
    let parsed = snp::parse_report(&bytes).ok();
    let cpu_product =
        parsed.as_ref().filter(|r| r.version >= 3).and_then(|r| Product::from_cpuid(r.cpuid_fam_id, r.cpuid_mod_id));
    let chain = args.chain.as_ref().map(|path| certificates(path, "chain")).transpose()?;
    let product = cpu_product.or_else(|| chain.iter().flatten().find_map(|c| Product::from_name(&c.common_name())));
    let mut certs = Sourced::default();
    let mut crls = args.crl.iter().map(|p| crl(p)).collect::<Result<Vec<_>, _>>()?;
    match &args.vcek {
        Some(path) => certs.extend(certificates(path, "VCEK")?, path),
        None => {
            let report = parsed.as_ref().ok_or_else(|| {
                Unusable(format!(
                    "the report is not a {REPORT_SIZE}-byte SEV-SNP report, so no VCEK can be looked up for it; pass --vcek"
                ))
            })?;
            let (vcek, path) = cached_vcek(args, report, product)?;
            certs.extend(vec![vcek], &path);
        }
    }
    match (chain, &args.chain) {
        (Some(chain), Some(path)) => certs.extend(chain, path),
        _ => {
            if let (Some(dir), Some(report)) = (&vcek_cache(args), &parsed) {
                let kind = if report.key_info.signing_key() == twi_attester::snp::report::SigningKey::Vlek {
                    VekKind::Vlek
                } else {
                    VekKind::Vcek
                };
                let product = product
                    .or_else(|| certs.pool.certs().first().and_then(product_of))
                    .ok_or_else(|| Unusable("cannot tell the product to pick the cached chain: pass --chain".into()))?;
                let path = fetch::chain_from_cache(dir, product, kind, args.fetch.then_some(args.kds_url.as_str()))
                    .map_err(|e| Unusable(format!("--fetch: {e}")))?;
                if !path.exists() {
                    return Err(Unusable(format!(
                        "no --chain, and the cache has no {} (download {})",
                        path.display(),
                        kds::chain_url(product, kind)
                    )));
                }
                certs.extend(certificates(&path, "cached chain")?, &path);
                let crl_path = kds::crl_path(dir, product);
                if crl_path.exists() {
                    crls.push(crl(&crl_path)?);
                }
            }
        }
    }
    Ok((bytes, certs, crls, SnpConfig { trust, policy }, now))
}

/// The VCEK cache: --vcek-cache, or with --fetch the user's cache directory.
fn vcek_cache(args: &SnpArgs) -> Option<PathBuf> {
    args.vcek_cache.clone().or_else(|| {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
        args.fetch.then(|| base.join("twi").join("kds"))
    })
}

fn product_of(cert: &Cert) -> Option<Product> {
    twi_verifier::snp::VekExtensions::parse(cert).ok()?.product_name.as_deref().and_then(Product::from_name)
}

/// The VCEK for `report` from the cache (or, with --fetch, the reason it cannot be fetched).
fn cached_vcek(
    args: &SnpArgs,
    report: &AttestationReport,
    product: Option<Product>,
) -> Result<(Cert, PathBuf), Unusable> {
    if report.key_info.signing_key() == twi_attester::snp::report::SigningKey::Vlek {
        return Err(Unusable(
            "the report is signed with a VLEK, which KDS does not serve by chip id: pass the VLEK certificate with --vcek".into(),
        ));
    }
    let products: Vec<Product> = product.map_or(Product::ALL.to_vec(), |p| vec![p]);
    let Some(dir) = &vcek_cache(args) else {
        let urls: Vec<String> =
            products.iter().map(|p| kds::vcek_url(*p, &report.chip_id, report.reported_tcb)).collect();
        return Err(Unusable(format!(
            "no VCEK: pass --vcek FILE, or --vcek-cache DIR holding it (download {})",
            urls.join(" or ")
        )));
    };
    let kds = args.fetch.then_some(args.kds_url.as_str());
    match fetch::vcek_from_cache(dir, &products, &report.chip_id, report.reported_tcb, kds) {
        Ok((path, _)) => {
            let vcek = certificates(&path, "cached VCEK")?
                .into_iter()
                .next()
                .ok_or_else(|| Unusable(format!("{} holds no certificate", path.display())))?;
            Ok((vcek, path))
        }
        Err(fetch::VcekMissing::NotFetched(failures)) => {
            let failures: Vec<String> = failures.iter().map(ToString::to_string).collect();
            Err(Unusable(format!("--fetch: no VCEK from KDS: {}", failures.join("; "))))
        }
        Err(fetch::VcekMissing::NotCached(wanted)) => {
            let wanted: Vec<String> =
                wanted.iter().map(|(path, url)| format!("{} (from {url})", path.display())).collect();
            Err(Unusable(format!(
                "the VCEK cache has no certificate for this chip and TCB: expected {}",
                wanted.join(" or ")
            )))
        }
    }
}

fn snp_verdict(bytes: &[u8], certs: &Sourced, crls: &[Crl], config: &SnpConfig, now: SystemTime) -> (u8, Value) {
    let parsed = snp::parse_report(bytes).ok();
    match snp::appraise_bundle(bytes, &certs.pool, crls, config, now) {
        Ok(a) => {
            let mut out = snp_json(&a.report, Some(&a), None, now);
            let unused: Vec<UsedCertificate> =
                certs.pool.certs().iter().map(UsedCertificate::of).filter(|c| !a.certificates.contains(c)).collect();
            out["unused_certificates"] = certificates_json(&unused);
            (0, out)
        }
        Err(rejection) => {
            let mut reason = rejection.to_string();
            if matches!(rejection.error, SnpError::NoSigningCertificate { .. }) {
                reason = format!("{reason} (read from {})", certs.files.join(", "));
            }
            let out = match &parsed {
                Some(report) => snp_json(report, None, Some(reason), now),
                None => json!({ "verified": false, "tee": "sev-snp", "reason": reason, "warnings": [],
                               "verified_at": format_rfc3339(now) }),
            };
            (1, out)
        }
    }
}

fn certificates_json(certs: &[UsedCertificate]) -> Value {
    json!(certs.iter().map(|c| json!({ "subject": c.subject, "sha256": c.sha256 })).collect::<Vec<_>>())
}

/// How far each component is behind the newest level: `[{component, have, newest, behind}]`.
fn behind_json(lags: &[ComponentLag]) -> Value {
    json!(
        lags.iter()
            .map(|l| json!({ "component": l.component, "have": l.have, "newest": l.newest, "behind": l.behind() }))
            .collect::<Vec<_>>()
    )
}

fn tcb_json(tcb: TcbVersion, layout: TcbLayout) -> Value {
    let p = tcb.parts(layout);
    let mut v = json!({
        "hex": hex::encode(tcb.to_le_bytes()),
        "bootloader": p.bootloader, "tee": p.tee, "snp": p.snp, "microcode": p.microcode,
    });
    if let Some(fmc) = p.fmc {
        v["fmc"] = json!(fmc);
    }
    v
}

fn snp_json(r: &AttestationReport, a: Option<&SnpAppraisal>, reason: Option<String>, now: SystemTime) -> Value {
    let layout = a.map(|a| a.tcb_layout).or_else(|| r.tcb_layout()).unwrap_or(TcbLayout::MilanGenoa);
    let mut out = json!({
        "verified": a.is_some(),
        "tee": "sev-snp",
        "verified_at": format_rfc3339(now),
        "version": r.version,
        "measurement": hex::encode(r.measurement),
        "report_data": hex::encode(r.report_data),
        "host_data": hex::encode(r.host_data),
        "chip_id": hex::encode(r.chip_id),
        "vmpl": r.vmpl,
        "guest_svn": r.guest_svn,
        "policy": {
            "hex": format!("{:#x}", r.policy.0),
            "debug": r.policy.debug(),
            "migrate_ma": r.policy.migrate_ma(),
            "smt": r.policy.smt(),
            "single_socket": r.policy.single_socket(),
            "abi_min": format!("{}.{}", r.policy.abi_major(), r.policy.abi_minor()),
        },
        "firmware": format!("{}.{}.{}", r.current_major, r.current_minor, r.current_build),
        "tcb": {
            "layout": match layout { TcbLayout::MilanGenoa => "milan-genoa", TcbLayout::Turin => "turin" },
            "reported": tcb_json(r.reported_tcb, layout),
            "committed": tcb_json(r.committed_tcb, layout),
            "current": tcb_json(r.current_tcb, layout),
            "launch": tcb_json(r.launch_tcb, layout),
            "summary": describe_tcb(r.reported_tcb, layout),
        },
        "warnings": a.map(|a| a.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>()).unwrap_or_default(),
    });
    if let Some(a) = a {
        out["signer"] = json!(a.signer.name());
        out["product"] = json!(a.product.map(|p| p.name()));
        out["root"] = json!(a.anchor.to_string());
        out["chain"] = json!(a.chain);
        out["certificates"] = certificates_json(&a.certificates);
        out["tcb"]["behind_current"] = behind_json(&a.tcb_behind);
    }
    if let Some(reason) = reason {
        out["reason"] = json!(reason);
    }
    out
}

fn tdx_policy(args: &TdxArgs) -> Result<TdxPolicy, Unusable> {
    let mut accepted = TdxPolicy::default().accepted;
    for name in &args.accept {
        let status: TcbStatus = serde_json::from_value(json!(name)).map_err(|_| {
            Unusable(format!("--accept {name:?} is not a TCB status (e.g. OutOfDate, SWHardeningNeeded)"))
        })?;
        accepted.push(status);
    }
    Ok(TdxPolicy {
        accepted,
        skip_tcb: args.skip_tcb,
        allow_debug: args.allow_debug,
        mr_td: hex_arg(&args.mrtd, "mrtd")?,
        rtmr: [
            hex_arg(&args.rtmr0, "rtmr0")?,
            hex_arg(&args.rtmr1, "rtmr1")?,
            hex_arg(&args.rtmr2, "rtmr2")?,
            hex_arg(&args.rtmr3, "rtmr3")?,
        ],
        report_data: hex_arg(&args.report_data, "report-data")?,
        mr_config_id: hex_arg(&args.mr_config_id, "mr-config-id")?,
        mr_owner: hex_arg(&args.mr_owner, "mr-owner")?,
    })
}

/// The platform's FMSPC, read (not verified) from the quote's PCK certificate: where to look
/// for collateral.
fn quote_fmspc(bytes: &[u8]) -> Option<[u8; 6]> {
    let parsed = ParsedQuote::parse(bytes).ok()?;
    let leaf = split_pck_chain(parsed.quote.pck_chain).ok()?.into_iter().next()?;
    PckExtensions::parse(&leaf).ok().map(|p| p.fmspc)
}

type TdxInputs = (Vec<u8>, Option<Collateral>, TdxConfig, SystemTime, Vec<String>, Option<Vec<u8>>);

fn tdx_quote(args: &TdxArgs) -> (u8, Value) {
    let inputs = || -> Result<TdxInputs, Unusable> {
        let bytes = read(&args.quote, "quote")?;
        let now = now_arg(&args.now)?;
        let policy = tdx_policy(args)?;
        let trust = match &args.root {
            Some(path) => TdxTrust::from_pem(&read(path, "root file")?)
                .map_err(|e| Unusable(format!("{}: {e}", path.display())))?,
            None => TdxTrust::intel(),
        };
        let fmspc = quote_fmspc(&bytes);
        let mut notes = Vec::new();
        let collateral = match &args.pccs {
            Some(pccs) => {
                let (collateral, fetch_notes) = fetched_collateral(pccs, args.collateral.as_deref(), &bytes)?;
                notes = fetch_notes;
                Some(collateral)
            }
            None => args
                .collateral
                .as_ref()
                .map(|path| Collateral::load(path, fmspc.as_ref()).map_err(|e| Unusable(e.to_string())))
                .transpose()?,
        };
        let event_log = args.event_log.as_ref().map(|path| read(path, "event log")).transpose()?;
        Ok((bytes, collateral, TdxConfig { trust, policy }, now, notes, event_log))
    };
    match inputs() {
        Ok((bytes, collateral, config, now, notes, event_log)) => {
            let (mut code, mut out) = tdx_verdict(&bytes, collateral.as_ref(), &config, now);
            if let Some(warnings) = out["warnings"].as_array_mut() {
                warnings.extend(notes.into_iter().map(Value::from));
            }
            if let (Some(log), Ok(parsed)) = (event_log, ParsedQuote::parse(&bytes)) {
                let (json, failure) = event_log_json(&log, &parsed.quote.body.rtmr);
                out["event_log"] = json;
                if let (0, Some(reason)) = (code, failure) {
                    code = 1;
                    out["verified"] = json!(false);
                    out["reason"] = json!(reason);
                }
            }
            (code, out)
        }
        Err(Unusable(reason)) => unusable("tdx", reason),
    }
}

/// `--pccs URL`: the collateral for the quote's platform, fetched into `keep` (or a temporary
/// directory) and read back by the offline loader; and notes for the warnings.
fn fetched_collateral(pccs: &str, keep: Option<&Path>, quote: &[u8]) -> Result<(Collateral, Vec<String>), Unusable> {
    let temporary;
    let dir = match keep {
        Some(dir) => dir,
        None => {
            temporary = tempfile::tempdir().map_err(|e| Unusable(format!("temporary directory: {e}")))?;
            temporary.path()
        }
    };
    fetch::collateral_for_quote(pccs, dir, quote).map_err(|e| Unusable(format!("--pccs: {e}")))
}

fn tdx_verdict(bytes: &[u8], collateral: Option<&Collateral>, config: &TdxConfig, now: SystemTime) -> (u8, Value) {
    match tdx_verify::appraise_with(bytes, collateral, config, now) {
        Ok(a) => {
            let mut out = tdx_json(&a.header, &a.body, Some(&a.qe_report), now);
            out["verified"] = json!(true);
            out["root"] = json!(a.anchor.to_string());
            out["pck"] = pck_json(&a.pck);
            out["certificates"] = certificates_json(&a.certificates);
            out["tcb"] = a.tcb.as_ref().map_or(Value::Null, tcb_verdict_json);
            out["warnings"] = json!(a.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>());
            (0, out)
        }
        Err(e) => {
            let mut out = match ParsedQuote::parse(bytes) {
                Ok(p) => tdx_json(&p.quote.header, &p.quote.body, Some(&p.quote.qe_report_body()), now),
                Err(_) => json!({ "tee": "tdx", "verified_at": format_rfc3339(now) }),
            };
            out["verified"] = json!(false);
            out["tcb"] = Value::Null;
            out["warnings"] = json!([]);
            out["reason"] = json!(e.to_string());
            (1, out)
        }
    }
}

/// The CC event log's events and replay beside the quote's RTMRs, and why they disagree.
fn event_log_json(log: &[u8], quoted: &[[u8; 48]; 4]) -> (Value, Option<String>) {
    let events = match CcelEvents::new(log).and_then(|events| events.collect::<Result<Vec<_>, _>>()) {
        Ok(events) => events,
        Err(e) => return (Value::Null, Some(format!("the CC event log does not replay: {e}"))),
    };
    let listed: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({
                "register": match e.mr_index { 0 => "MRTD".to_string(), i => format!("RTMR{}", i - 1) },
                "type": format!("{:#x}", e.event_type),
                "name": event_type_name(e.event_type),
                "digest": hex::encode(e.digest),
                "data_size": e.data.len(),
            })
        })
        .collect();
    let extended = events.iter().filter_map(|e| Some((e.rtmr()?, &e.digest)));
    let replayed = match twi_attester::tdx::rtmr::replay(extended) {
        Ok(replayed) => replayed,
        Err(e) => return (json!({ "events": listed }), Some(format!("the CC event log does not replay: {e}"))),
    };
    let matches: Vec<bool> = replayed.iter().zip(quoted).map(|(r, q)| r == q).collect();
    let failure = matches.iter().position(|m| !m).map(|i| {
        format!(
            "the quote's RTMR{i} is {}, but the event log replays to {}",
            hex::encode(quoted[i]),
            hex::encode(replayed[i])
        )
    });
    let json = json!({
        "events": listed,
        "replayed": replayed.iter().map(hex::encode).collect::<Vec<_>>(),
        "rtmr_match": matches,
    });
    (json, failure)
}

/// The name of a CC event log event type (TCG PC Client Platform Firmware Profile; TWI's own).
fn event_type_name(event_type: u32) -> &'static str {
    match event_type {
        0x3 => "EV_NO_ACTION",
        0x4 => "EV_SEPARATOR",
        0x6 => "EV_EVENT_TAG",
        0xA => "EV_PLATFORM_CONFIG_FLAGS",
        0xD => "EV_IPL",
        0x8000_0001 => "EV_EFI_VARIABLE_DRIVER_CONFIG",
        0x8000_0002 => "EV_EFI_VARIABLE_BOOT",
        0x8000_0003 => "EV_EFI_BOOT_SERVICES_APPLICATION",
        0x8000_0007 => "EV_EFI_ACTION",
        0x8000_000A => "EV_EFI_PLATFORM_FIRMWARE_BLOB2",
        0x8000_000B => "EV_EFI_HANDOFF_TABLES2",
        0x8000_00E0 => "EV_EFI_VARIABLE_AUTHORITY",
        twi_proto::msg::event_type::LAUNCH_MANIFEST => "TWI launch manifest",
        twi_proto::msg::event_type::ISSUER_ANCHOR => "TWI issuer anchor",
        _ => "other",
    }
}

fn tcb_verdict_json(t: &TcbVerdict) -> Value {
    json!({
        "status": t.status.name(),
        "platform": t.platform.name(),
        "module": t.module.map(|m| m.name()),
        "qe": t.qe.name(),
        "advisory_ids": t.advisory_ids,
        "tcb_date": t.platform_tcb_date,
        "evaluation_data_number": t.tcb_evaluation_data_number,
        "fmspc": t.fmspc,
        "behind": behind_json(&t.behind),
    })
}

fn pck_json(p: &PckExtensions) -> Value {
    json!({
        "fmspc": hex::encode(p.fmspc),
        "pce_id": hex::encode(p.pce_id),
        "pce_svn": p.pce_svn,
        "cpu_svn": hex::encode(p.cpu_svn),
        "sgx_tcb_components": p.sgx_tcb_components,
        "sgx_type": p.sgx_type,
    })
}

fn tdx_json(h: &QuoteHeader, b: &TdQuoteBody, qe: Option<&EnclaveReport>, now: SystemTime) -> Value {
    let mut out = json!({
        "tee": "tdx",
        "verified_at": format_rfc3339(now),
        "quote_version": h.version,
        "td_report": if b.is_td15() { "1.5" } else { "1.0" },
        "mrtd": hex::encode(b.mr_td),
        "rtmrs": b.rtmr.iter().map(hex::encode).collect::<Vec<_>>(),
        "report_data": hex::encode(b.report_data),
        "mr_config_id": hex::encode(b.mr_config_id),
        "mr_owner": hex::encode(b.mr_owner),
        "mr_owner_config": hex::encode(b.mr_owner_config),
        "mr_seam": hex::encode(b.mr_seam),
        "mr_signer_seam": hex::encode(b.mr_signer_seam),
        "seam_attributes": hex::encode(b.seam_attributes),
        "td_attributes": { "hex": hex::encode(b.td_attributes), "debug": b.debug() },
        "xfam": hex::encode(b.xfam),
        "tee_tcb_svn": hex::encode(b.tee_tcb_svn),
        "user_data": hex::encode(h.user_data),
    });
    if let Some(svn2) = b.tee_tcb_svn_2 {
        out["tee_tcb_svn_2"] = json!(hex::encode(svn2));
    }
    if let Some(service) = b.mr_service_td {
        out["mr_service_td"] = json!(hex::encode(service));
    }
    if let Some(qe) = qe {
        out["qe"] = json!({
            "isv_svn": qe.isv_svn,
            "isv_prod_id": qe.isv_prod_id,
            "mr_signer": hex::encode(qe.mr_signer),
            "mr_enclave": hex::encode(qe.mr_enclave),
        });
    }
    out
}
