//! `twi keystore`: mechanism D's Key Store, on the workload owner's side.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use zeroize::Zeroizing;

use super::args::{AuditorArgs, IdentityArgs};
use twi_issuer::keystore::{OwnerCredential, provision_owner};

use super::issuer::issuer_dir;
use crate::remote::{ClientTls, RemoteIssuer};

#[derive(Subcommand, Debug)]
pub enum KeystoreCommand {
    /// Provision the owner's credential and key for a workload: the Key Store releases the key
    /// (HPKE-encrypted to a key the evidence binds) only to launches the policy admits as that
    /// workload (`twi run --mechanism d`). With --issuer-url, the remote service's Key Store
    /// provisions it (its CA certifies a fresh key), on the owner's client certificate.
    Provision(Box<ProvisionArgs>),
}

#[derive(clap::Args, Debug)]
pub struct ProvisionArgs {
    /// The workload's identifier, e.g. spiffe://example.org/payroll-app (what the policy
    /// names the workload).
    #[arg(long, value_name = "URI", required_unless_present = "issuer_url")]
    workload_id: Option<String>,
    /// The owner's P-384 private key: PKCS#8 PEM ("PRIVATE KEY") or SEC1 PEM ("EC PRIVATE
    /// KEY", what `openssl ecparam -name secp384r1 -genkey` writes).
    #[arg(long, value_name = "PEM", required_unless_present = "issuer_url")]
    key: Option<PathBuf>,
    /// The owner's certificate for the key (PEM or DER), issued by this issuer's CA (the
    /// anchor runtimes check); without it the CA certifies the key now.
    #[arg(long, value_name = "FILE")]
    certificate: Option<PathBuf>,
    /// Lifetime of a certificate the CA issues here, in hours.
    #[arg(long, default_value_t = 24)]
    lifetime_hours: u64,
    /// The replicas' PostgreSQL database (the URL their `twi serve --database` was given): the
    /// credential goes to their shared Key Store and its record to their log, so every
    /// replica releases it. Without it, this state directory's own files.
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    #[command(flatten)]
    identity: IdentityArgs,
    #[command(flatten)]
    auditor: AuditorArgs,
    #[command(flatten)]
    remote: RemoteProvision,
}

/// Provisioning at a `twi serve` (`POST /v1/key-store/provision`, an owner's endpoint).
#[derive(clap::Args, Debug)]
struct RemoteProvision {
    /// The service (https://HOST:PORT) whose Key Store provisions the workload's credential.
    #[arg(long, value_name = "URL", requires_all = ["platform", "measurement"], conflicts_with_all = ["workload_id", "key", "certificate", "database"])]
    issuer_url: Option<String>,
    /// The CA (PEM) the service's TLS certificate chains to (its STATE/issuer/issuer-ca.pem).
    #[arg(long, value_name = "PEM", requires = "issuer_url")]
    issuer_ca: Option<PathBuf>,
    /// The owner's client certificate (PEM) under the service's operator CA.
    #[arg(long, value_name = "PEM", requires = "client_key")]
    client_cert: Option<PathBuf>,
    /// The key of --client-cert (PKCS#8 or SEC1 PEM).
    #[arg(long, value_name = "PEM", requires = "client_cert")]
    client_key: Option<PathBuf>,
    /// The workload's platform as the policy names it: sim-snp, snp, tdx or sim-tdx.
    #[arg(long, value_name = "PLATFORM")]
    platform: Option<String>,
    /// The workload's launch measurement (hex): the policy's workload that admits it is the
    /// one provisioned.
    #[arg(long, value_name = "HEX")]
    measurement: Option<String>,
}

pub fn execute(state: &Path, command: KeystoreCommand) -> Result<()> {
    let KeystoreCommand::Provision(args) = command;
    if args.remote.issuer_url.is_some() {
        if args.auditor.auditor_key.is_some() {
            bail!(
                "--auditor-key encrypts the records this command writes itself; the service at --issuer-url writes the record, encrypted as its own `twi serve --auditor-key` says"
            );
        }
        return provision_remote(&args.remote);
    }
    let (Some(workload_id), Some(key)) = (&args.workload_id, &args.key) else {
        bail!("name the workload (--workload-id) and the owner's key (--key), or the service (--issuer-url)");
    };
    let signing_key = read_owner_key(key)?;
    let auditor = args.auditor.load()?;
    let certificate = args.certificate.as_deref().map(read_one_certificate).transpose()?;
    let owner = OwnerCredential {
        workload_id,
        key: &signing_key,
        certificate: certificate.as_deref(),
        lifetime: Duration::from_secs(args.lifetime_hours.saturating_mul(3600)),
        auditor: auditor.as_ref(),
    };
    let database = args.database.as_deref().map(twi_issuer::database::Postgres::connect).transpose()?;
    let provisioned =
        provision_owner(&issuer_dir(state), &args.identity.trust_domain, &owner, database.map(std::sync::Arc::new))
            .context("provisioning the Key Store")?;
    eprintln!(
        "twi: Key Store: provisioned credential {} for {} (released only under mechanism d to launches the policy admits as it)",
        provisioned.serial_hex, provisioned.workload_id
    );
    println!("{}", provisioned.serial_hex);
    Ok(())
}

/// `POST /v1/key-store/provision` at the service, presenting the owner's client certificate.
fn provision_remote(remote: &RemoteProvision) -> Result<()> {
    let (Some(url), Some(platform), Some(measurement)) = (&remote.issuer_url, &remote.platform, &remote.measurement)
    else {
        bail!("--issuer-url needs --platform and --measurement");
    };
    let platform = twi_issuer::http::wire::platform(platform).map_err(|e| anyhow!("--platform: {e}"))?;
    let measurement = hex::decode(measurement).map_err(|e| anyhow!("--measurement is not hex: {e}"))?;
    let tls =
        ClientTls { ca: remote.issuer_ca.clone(), client: remote.client_cert.clone().zip(remote.client_key.clone()) };
    let client = RemoteIssuer::new(url, &tls)?;
    let (provisioned, created) =
        client.provision(platform, &measurement).map_err(|e| anyhow!("the Key Store at {url} refused: {e}"))?;
    eprintln!(
        "twi: Key Store at {url}: {} credential {} for {}",
        if created { "provisioned" } else { "holds the provisioned" },
        provisioned.serial_hex,
        provisioned.workload_id
    );
    println!("{}", provisioned.serial_hex);
    Ok(())
}

/// The owner's P-384 key from PKCS#8 or SEC1 PEM (the two forms OpenSSL writes).
pub fn read_owner_key(path: &Path) -> Result<p384::ecdsa::SigningKey> {
    use p384::elliptic_curve::SecretKey;
    use p384::pkcs8::DecodePrivateKey;
    let pem = Zeroizing::new(fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?);
    if pem.contains("-----BEGIN EC PRIVATE KEY-----") {
        return SecretKey::<p384::NistP384>::from_sec1_pem(&pem).map(Into::into).map_err(|e| {
            anyhow!(
                "{} is a SEC1 EC private key, but not a P-384 one ({e}): make one with `openssl ecparam -name secp384r1 -genkey -noout -out KEY.pem`",
                path.display()
            )
        });
    }
    p384::ecdsa::SigningKey::from_pkcs8_pem(&pem).map_err(|e| {
        anyhow!(
            "{} is not a P-384 private key in PKCS#8 PEM (\"PRIVATE KEY\") or SEC1 PEM (\"EC PRIVATE KEY\"): {e}; an encrypted key must be decrypted first, e.g. `openssl pkcs8 -topk8 -nocrypt -in KEY.pem -out KEY.p8.pem`",
            path.display()
        )
    })
}

/// Exactly one certificate from a PEM or DER file.
fn read_one_certificate(path: &Path) -> Result<Vec<u8>> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let ders = twi_verifier::chain::split_certificates(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    match <[Vec<u8>; 1]>::try_from(ders) {
        Ok([der]) => Ok(der),
        Err(_) => bail!("{} must hold exactly one certificate", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p384::elliptic_curve::SecretKey;
    use p384::pkcs8::{EncodePrivateKey, LineEnding};

    /// The two PEM forms of one key read back as that key; other curves and encrypted keys are
    /// refused with the command that helps.
    #[test]
    fn reads_pkcs8_and_sec1_keys() {
        let dir = tempfile::tempdir().unwrap();
        let secret = SecretKey::<p384::NistP384>::from_slice(&[0x5A; 48]).unwrap();
        let expected = p384::ecdsa::SigningKey::from(secret.clone());
        let pkcs8 = dir.path().join("pkcs8.pem");
        fs::write(&pkcs8, secret.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes()).unwrap();
        let sec1 = dir.path().join("sec1.pem");
        fs::write(&sec1, secret.to_sec1_pem(LineEnding::LF).unwrap().as_bytes()).unwrap();
        for path in [&pkcs8, &sec1] {
            assert_eq!(read_owner_key(path).unwrap(), expected, "{}", path.display());
        }
        let encrypted = dir.path().join("encrypted.pem");
        fs::write(&encrypted, "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n")
            .unwrap();
        let error = read_owner_key(&encrypted).unwrap_err().to_string();
        assert!(error.contains("openssl pkcs8 -topk8 -nocrypt"), "{error}");
        let p256 = dir.path().join("p256.pem");
        fs::write(&p256, "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAoAoGCCqGSM49\nAwEHoUQDQgAE\n-----END EC PRIVATE KEY-----\n").unwrap();
        let error = read_owner_key(&p256).unwrap_err().to_string();
        assert!(error.contains("not a P-384 one") && error.contains("secp384r1"), "{error}");
    }
}
