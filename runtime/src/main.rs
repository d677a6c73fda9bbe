//! The runtime's own firmware image: the built-in workload (acquire the credential, check it,
//! seal it, exit) on the runtime library.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("twi-runtime is firmware for x86_64-unknown-none: build a bootable image with `twi build`");
    std::process::exit(2);
}

#[cfg(target_os = "none")]
twi_runtime::entry!(twi_runtime::firmware::acquire_and_exit);
