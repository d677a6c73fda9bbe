//! Issuance per core: the embedded issuer (Verifier + Credential Authority + provenance log, as
//! `twi run` uses it) appraising simulated SEV-SNP evidence and issuing, one thread, beside the
//! bound `openssl speed ecdsap384` sets for the same core, measured interleaved. An issuance
//! verifies at least one P-384 signature (the report's) and makes at least one (the
//! certificate's), so 1 / (1/sign + 1/verify) per second is more than it can ever reach. The
//! service issue's bound is "one report verification + the signatures the issuance makes": the
//! issuer counts the ECDSA signatures it makes (`twi_issuer::metrics`; its Ed25519 checkpoint
//! signature is not counted), and the second bound takes that count, n per issuance.

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use der::Encode;
use p384::ecdsa::DerSignature;
use p384::ecdsa::SigningKey;
use p384::elliptic_curve::Generate;
use twi_attester::tacra;
use twi_issuer::policy::Policy;
use twi_issuer::{CredentialRequest, Evidence, EvidenceBundle, Issuer, IssuerConfig};
use twi_proto::msg::{CredentialKind, Platform};
use twi_sim::snp::SimPsp;
use x509_cert::builder::{Builder, RequestBuilder};
use x509_cert::name::Name;

use crate::stats::{Samples, figure, section};

/// The simulated chip's launch digest, the one reference value of [`policy`].
pub(crate) const LAUNCH_DIGEST: [u8; 48] = [0x5A; 48];

/// One workload, `bench`, for the simulated chip's launch: mechanism C (evidence to the
/// Credential Authority, as `twi run` asks), a single-use nonce (AF_L2).
pub(crate) fn policy() -> Result<Policy> {
    Policy::from_toml(&policy_text()).context("the benchmark's issuer policy")
}

/// [`policy`] as the TOML file `twi serve --policy` reads.
pub(crate) fn policy_text() -> String {
    let measurement: String = LAUNCH_DIGEST.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "version = \"bench-1\"\ntrust_domain = \"example.org\"\n\n[[workload]]\nid = \"bench\"\nmechanism = \"c\"\n\
         freshness = \"AF_L2\"\n\n[[workload.reference]]\nlabel = \"sim\"\nplatform = \"sim-snp\"\nmeasurement = \"{measurement}\"\n"
    )
}

/// The target the benchmark's workload acquires its credential for.
pub(crate) const TARGET: &str = "twi:bench";

/// TACRA enrollment: a PKCS#10 request for `key`, signed by it, with an empty subject.
fn csr(key: &SigningKey) -> Result<Vec<u8>> {
    let builder = RequestBuilder::new(Name::default()).context("an empty subject")?;
    let request = builder.build::<_, DerSignature>(key).context("signing the benchmark's CSR")?;
    request.to_der().context("encoding the benchmark's CSR")
}

/// The benchmark's workload on the simulated chip: its key (SEC1), the TACRA CSR for it and
/// the chip's endorsements, made once; then a report per nonce.
pub(crate) struct Workload {
    public_key: Vec<u8>,
    csr: Vec<u8>,
    endorsements: Vec<Vec<u8>>,
}

impl Workload {
    pub(crate) fn new(psp: &SimPsp) -> Result<Self> {
        let key = SigningKey::try_generate().map_err(|e| anyhow!("{e}"))?;
        let public_key = key.verifying_key().to_sec1_point(false).as_bytes().to_vec();
        Ok(Self { public_key, csr: csr(&key)?, endorsements: psp.endorsements()? })
    }

    /// The chip's report (at VMPL0) binding the CSR to `nonce` for the issuer `rp_id`, and the
    /// evidence it makes, handed to `f`.
    pub(crate) fn evidence<T>(
        &self,
        psp: &SimPsp,
        nonce: &[u8],
        rp_id: &str,
        f: impl FnOnce(Evidence<'_>) -> T,
    ) -> Result<T> {
        let report_data = tacra::report_data(nonce, rp_id, TARGET, &self.csr).map_err(|e| anyhow!("{e:?}"))?;
        let report = psp.report(report_data, 0);
        let bundle = EvidenceBundle {
            platform: Platform::SimSnp,
            evidence: &report,
            public_key: &self.public_key,
            nonce,
            endorsements: &self.endorsements,
            target: TARGET,
            csr: Some(&self.csr),
        };
        Ok(f(Evidence { bundle, events: &[] }))
    }
}

/// Issuances per second over `count` issuances.
pub(crate) fn issuance_rate(psp: &SimPsp, issuer: &mut Issuer, count: u32) -> Result<f64> {
    let (workload, rp_id) = (Workload::new(psp)?, issuer.rp_id());
    let start = Instant::now();
    for _ in 0..count {
        let challenge = issuer.initiate(Platform::SimSnp, &LAUNCH_DIGEST, TARGET, CredentialKind::X509, None);
        let nonce = challenge.map_err(|e| anyhow!("the issuer refused to initiate: {e}"))?.nonce;
        let issued = workload.evidence(psp, &nonce, &rp_id, |evidence| {
            issuer.ca_credential(CredentialRequest::Evidence { evidence, renewal_of: None })
        })?;
        issued.map_err(|e| anyhow!("the issuer refused simulated evidence: {e}"))?;
    }
    Ok(f64::from(count) / start.elapsed().as_secs_f64())
}

/// `openssl speed -seconds 1 ecdsap384`: (signs/s, verifies/s) on one core.
fn openssl_speed() -> Result<(f64, f64)> {
    openssl_speed_multi(1)
}

/// `openssl speed -seconds 1 -multi CORES ecdsap384`: (signs/s, verifies/s) on `cores` cores
/// together.
pub(crate) fn openssl_speed_multi(cores: usize) -> Result<(f64, f64)> {
    let out = Command::new("openssl")
        .args(["speed", "-seconds", "1", "-multi", &cores.to_string(), "ecdsap384"])
        .output()
        .context("openssl is needed (qemu/install-deps)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.contains("nistp384")).context("openssl speed printed no nistp384 line")?;
    let numbers: Vec<f64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    match numbers.as_slice() {
        [.., sign_per_s, verify_per_s] => Ok((*sign_per_s, *verify_per_s)),
        _ => bail!("cannot read openssl speed's line: {line}"),
    }
}

pub fn issuance(runs: usize) -> Result<()> {
    section("issuance per core (embedded issuer, simulated SEV-SNP evidence) vs openssl speed ecdsap384");
    let dir = tempfile::tempdir()?;
    let mut psp = SimPsp::load_or_create(&dir.path().join("psp"))?;
    psp.set_launch_digest(LAUNCH_DIGEST);
    let config = IssuerConfig { trust_domain: "example.org".into(), sim_snp_root: Some(psp.root().clone()) };
    let mut issuer = Issuer::open(&dir.path().join("issuer"), config, policy()?)?;
    let (mut rate, mut bound, mut sign, mut verify) =
        (Samples::default(), Samples::default(), Samples::default(), Samples::default());
    let (mut counted, mut made) = (Samples::default(), Samples::default());
    for _ in 0..runs {
        let before = twi_issuer::metrics::ecdsa_signatures();
        rate.push(issuance_rate(&psp, &mut issuer, 10)?);
        let per_issuance = (twi_issuer::metrics::ecdsa_signatures() - before) as f64 / 10.0;
        let (s, v) = openssl_speed()?;
        sign.push(s);
        verify.push(v);
        bound.push(1.0 / (1.0 / s + 1.0 / v));
        made.push(per_issuance);
        counted.push(1.0 / (per_issuance / s + 1.0 / v));
    }
    figure("issuances per second, one core", "/s", &rate, Some(("bound 1/(1/sign + 1/verify)", &bound)));
    figure("issuances per second, one core", "/s", &rate, Some(("bound 1/(n/sign + 1/verify), n counted", &counted)));
    figure("  n: ECDSA signatures per issuance (counted)", "", &made, None);
    figure("openssl speed ecdsap384 sign", "/s", &sign, None);
    figure("openssl speed ecdsap384 verify", "/s", &verify, None);
    Ok(())
}
