//! `twi`, the command line: one module per subcommand, each with its options and what it
//! does. [`main`] is the whole program; the `twi` binary (and the end-to-end tests' copy of
//! it, `twi-e2e`) only call it.

mod args;
mod build;
mod credential;
mod issuer;
mod keystore;
mod log;
mod measure;
mod new;
mod policy;
mod provenance;
mod rp;
mod run;
mod serve;
mod vendor;
#[path = "../verify.rs"]
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "twi", version, about = "Trustworthy Workload Identity for confidential VMs")]
struct Cli {
    /// Where the issuer's CA and the simulated TEE's keys live [default: $TWI_STATE_DIR, else
    /// .twi/state in the TWI checkout around the current directory, else $XDG_STATE_HOME/twi,
    /// else ~/.local/state/twi].
    #[arg(long, global = true, value_name = "DIR")]
    state: Option<PathBuf>,
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand, Debug)]
enum Commands {
    /// Build the bootable ROM (DIR/twi.rom) with the issuer's trust anchor in its manifest, the
    /// IGVM file (DIR/twi.igvm) and their reference values (DIR/reference-values.json).
    Build(build::BuildArgs),
    /// Make a payload crate (a workload for `twi build --payload DIR`).
    New(new::NewArgs),
    /// Print the launch measurement of an image: the SEV-SNP launch digest (a ROM or an IGVM
    /// file) or the TDX MRTD (a ROM).
    Measure(measure::MeasureArgs),
    /// Boot an image under QEMU and obtain a credential for its Credential Key.
    Run(Box<run::RunArgs>),
    /// Serve the issuer's roles (Verifier, Credential Authority, Key Store) over HTTP for
    /// `twi run --issuer-url`: JSON endpoints under /v1 (see README), until Ctrl-C.
    Serve(serve::ServeArgs),
    /// Verify attestation evidence offline; print the verdict as one JSON object (exit 0
    /// verified, 1 rejected, 2 bad usage or unreadable input).
    #[command(subcommand)]
    Verify(verify::VerifyCommand),
    /// Mechanism D's Key Store, on the workload owner's side.
    #[command(subcommand)]
    Keystore(keystore::KeystoreCommand),
    /// Check the issuer's provenance log: `twi log prove CREDENTIAL` proves a credential's
    /// record (a signed statement) against a signed C2SP checkpoint and its COSE receipt, `twi log consistency OLD NEW` that the log only grew,
    /// `twi log audit` recomputes a state's whole log.
    #[command(subcommand)]
    Log(log::LogCommand),
    /// Edit an appraisal policy file (TOML; see issuer/policy.example.toml).
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// What a credential was issued on: `twi provenance show CREDENTIAL` prints its workload,
    /// the decisions, the components of its SBOM and its record's inclusion in the log.
    #[command(subcommand)]
    Provenance(provenance::ProvenanceCommand),
    /// A workload vendor's side: `twi vendor sign` signs a statement that it supplies the
    /// workload an SBOM lists, for issuer policies with `vendor_key`.
    #[command(subcommand)]
    Vendor(vendor::VendorCommand),
    /// Run a relying party: an HTTPS service that authenticates workloads by mutual TLS or
    /// WIT + WPT and authorizes them by their Stable identifier (see rp/rp.example.toml).
    Rp(rp::RpArgs),
}

/// The `twi` program: parses the command line, runs the subcommand, and prints an error as
/// one sentence (`twi: error: …`, exit 1); bad usage exits 2 (clap's own message).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Commands::Verify(command) = &cli.command {
        // `twi verify` prints its verdict as JSON and has exit statuses of its own.
        return verify::run(command);
    }
    match execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("twi: error: {}", sentence(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes, joined with `: `.
fn sentence(e: &anyhow::Error) -> String {
    e.chain().map(ToString::to_string).collect::<Vec<_>>().join(": ")
}

fn execute(cli: Cli) -> Result<()> {
    let state = state_dir(cli.state)?;
    match cli.command {
        Commands::Build(args) => build::execute(&state, &args),
        Commands::Measure(args) => measure::execute(&args),
        Commands::New(args) => new::execute(&args),
        Commands::Run(args) => run::execute(&state, *args),
        Commands::Serve(args) => serve::execute(&state, &args),
        Commands::Rp(args) => rp::execute(&args),
        Commands::Keystore(command) => keystore::execute(&state, command),
        Commands::Policy(command) => policy::execute(command),
        Commands::Log(command) => log::execute(&state, command),
        Commands::Provenance(command) => provenance::execute(&state, command),
        Commands::Vendor(command) => vendor::execute(command),
        // Handled in main(): it has its own exit statuses.
        Commands::Verify(_) => Ok(()),
    }
}

/// `--state`, else `$TWI_STATE_DIR`, else `.twi/state` in the TWI checkout the current
/// directory is in (each clone its own issuer and chips, not one directory in the home folder
/// for every clone), else `$XDG_STATE_HOME/twi`, else `~/.local/state/twi`.
fn state_dir(explicit: Option<PathBuf>) -> Result<PathBuf> {
    let var = |name: &str| std::env::var_os(name).map(PathBuf::from);
    let cwd = std::env::current_dir().ok();
    default_state_dir(explicit.or_else(|| var("TWI_STATE_DIR")), cwd.as_deref(), var("XDG_STATE_HOME"), var("HOME"))
        .context("set --state, TWI_STATE_DIR or HOME")
}

/// The choice [`state_dir`] makes, from its inputs.
fn default_state_dir(
    explicit: Option<PathBuf>,
    cwd: Option<&std::path::Path>,
    xdg_state_home: Option<PathBuf>,
    home: Option<PathBuf>,
) -> Option<PathBuf> {
    let checkout = || cwd?.ancestors().find(|dir| is_checkout(dir)).map(|dir| dir.join(".twi").join("state"));
    explicit
        .or_else(checkout)
        .or_else(|| xdg_state_home.map(|x| x.join("twi")))
        .or_else(|| home.map(|h| h.join(".local/state/twi")))
}

/// A TWI checkout: the workspace with the runtime and the host loader.
fn is_checkout(dir: &std::path::Path) -> bool {
    ["Cargo.toml", "runtime/Cargo.toml", "host-loader/Cargo.toml"].iter().all(|f| dir.join(f).is_file())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_default_state_is_the_checkouts_own_inside_one() {
        let dir = tempfile::tempdir().unwrap();
        let checkout = dir.path().join("twi");
        for f in ["runtime", "host-loader", "examples/x"] {
            std::fs::create_dir_all(checkout.join(f)).unwrap();
        }
        for f in ["Cargo.toml", "runtime/Cargo.toml", "host-loader/Cargo.toml"] {
            std::fs::write(checkout.join(f), "").unwrap();
        }
        let (xdg, home) = (Some(PathBuf::from("/x")), Some(PathBuf::from("/h")));
        let inside = checkout.join("examples/x");
        let chosen = |explicit: Option<&str>, cwd: &std::path::Path, xdg: Option<PathBuf>| {
            default_state_dir(explicit.map(PathBuf::from), Some(cwd), xdg, home.clone())
        };
        assert_eq!(chosen(None, &inside, xdg.clone()), Some(checkout.join(".twi/state")));
        assert_eq!(chosen(Some("/s"), &inside, xdg.clone()), Some(PathBuf::from("/s")));
        assert_eq!(chosen(None, dir.path(), xdg.clone()), Some(PathBuf::from("/x/twi")));
        assert_eq!(chosen(None, dir.path(), None), Some(PathBuf::from("/h/.local/state/twi")));
    }

    /// Every option and argument of every subcommand says what it is for (`twi … --help`).
    #[test]
    fn every_option_has_help_text() {
        fn check(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() {
                    missing.push(format!("{path} --{}", arg.get_long().unwrap_or(id)));
                }
            }
            for sub in command.get_subcommands() {
                check(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        check(&Cli::command(), "twi", &mut missing);
        assert!(missing.is_empty(), "options without help text: {missing:?}");
        Cli::command().debug_assert();
    }

    /// A WIT jti is base64url: one in 64 begins with '-', and `twi log prove` must take it as
    /// the id, not as an option (a CI run failed on such a jti).
    #[test]
    fn an_id_beginning_with_a_hyphen_is_an_id() {
        let cli = Cli::try_parse_from(["twi", "log", "prove", "-rAbC_d", "--issuer-url", "https://x:1"]).unwrap();
        match cli.command {
            Commands::Log(log::LogCommand::Prove { credential, .. }) => assert_eq!(credential, "-rAbC_d"),
            other => panic!("parsed as {other:?}"),
        }
    }
}
