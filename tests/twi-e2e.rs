//! `twi` under another name, for the end-to-end tests (see Cargo.toml).

fn main() -> std::process::ExitCode {
    twi_host_loader::cli::main()
}
