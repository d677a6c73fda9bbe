//! `twi`: build TWI images, run them under QEMU, and obtain a credential.

fn main() -> std::process::ExitCode {
    twi_host_loader::cli::main()
}
